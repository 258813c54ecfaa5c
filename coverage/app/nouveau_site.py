"""Page « Nouveau site »: where would 1 to 5 new sites cover the most families.

Calls :func:`coverage.siting.plan_new_sites` (greedy maximal covering) for the sidebar's
département: candidates are the chef-lieux of its communes, the population newly covered is
counted over all the communes of the run (across the border), and the new sites are timed
by the run's engine (:func:`coverage.routing.engine_of_run`: ``road`` when the run's road
file is still readable, else ``proxy``, and the page says so). The candidate × commune
matrix is cached per département, type, threshold and engine, so changing the number of
sites does not route again. The map is :func:`coverage.maps.access_map` with
:func:`coverage.maps.add_new_sites`.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import pandas as pd
import streamlit as st

from coverage import maps
from coverage.app import state, views
from coverage.errors import CoverageError
from coverage.labels import engine_label, type_label
from coverage.results import RunOutputs, run_service_types
from coverage.routing import RunEngine, engine_of_run
from coverage.routing.base import Engine
from coverage.safe_text import spreadsheet_safe_frame
from coverage.settings import NO_SERVICE
from coverage.siting import SitingResult, candidate_matrix, candidate_sites, plan_new_sites
from coverage.whitezones import nearest_services

__all__: list[str] = []

log = logging.getLogger(__name__)

MAP_HEIGHT_PX = 620
MAX_SITES = 5
#: Column headings of the sites table.
SITES_COLUMNS = ["rang", "nom", "code_insee", "population_nouvellement_couverte",
                 "communes_nouvellement_couvertes",
                 "population_nouvellement_couverte_hors_departement",
                 "population_zone_blanche_restante", "moteur", "seuil_minutes"]
METHOD = (
    "Méthode : couverture maximale résolue de façon gloutonne — à chaque étape, le chef-lieu "
    "qui couvre le plus d'habitants encore au-delà du seuil (des services existants et des "
    "sites déjà choisis). Exact pour un site ; heuristique pour plusieurs (au moins 63 % de "
    "l'optimum garanti, souvent optimal). Une commune sans temps (inaccessible, hors "
    "réseau) n'est jamais comptée comme couverte. Chaque commune est représentée par son "
    "chef-lieu."
)


@st.cache_data(show_spinner=False, max_entries=16)
def _cost(run_dir: str, stamp: float, dept: str, type_service: str, threshold_min: float,
          engine_key: str, _engine: Engine) -> pd.DataFrame:
    """Return candidate × commune minutes within the threshold (cached: routing is slow)."""
    del engine_key  # cache key only
    run = state.load_run(run_dir, stamp)
    cands = candidate_sites(run.communes, depts=[dept])
    return candidate_matrix(_engine, run.communes, cands, threshold_min=threshold_min,
                            type_service=type_service)


@st.cache_data(show_spinner=False, max_entries=32)
def _plan(sel: state.Selection, type_service: str, threshold_min: float, k: int,
          engine_key: str, data_key: str, _engine: Engine, _data: views.SitingData
          ) -> SitingResult:
    """Return the plan of ``k`` new sites (cached per selection, data and engine)."""
    del data_key  # cache key only
    run = state.load_run(sel.run_dir, sel.stamp)
    cost = _cost(sel.run_dir, sel.stamp, sel.dept, type_service, threshold_min, engine_key,
                 _engine)
    return plan_new_sites(run.communes, _data.access, _data.services, _engine,
                          type_service=type_service, threshold_min=threshold_min, k=k,
                          depts=[sel.dept], cost=cost)


def _controls(sel: state.Selection, run: RunOutputs) -> tuple[str, float, int]:
    """Draw the type, threshold and number-of-sites controls; return their values."""
    types = run_service_types(run)
    c1, c2, c3 = st.columns(3)
    default_type = sel.type_service if sel.type_service in types else types[0]
    type_service = str(c1.selectbox("Type du nouveau service", types,
                                    index=types.index(default_type), key="site_type",
                                    format_func=type_label))
    threshold = float(c2.number_input("Seuil (minutes)", min_value=5.0, max_value=90.0,
                                      step=5.0, value=float(sel.threshold_min),
                                      key="site_threshold"))
    k = int(c3.slider("Nombre de nouveaux sites", 1, MAX_SITES, 1, key="site_k"))
    if sel.type_service == NO_SERVICE:
        st.caption("La barre latérale montre la vue combinée ; un nouveau site offre un type "
                   "de service : choisissez-le ci-dessus.")
    return type_service, threshold, k


def _figures(result: SitingResult, threshold: float, k: int) -> None:
    """Draw the white-zone population before and after the suggested sites."""
    table = result.table
    if table.empty:
        st.success(f"Aucun chef-lieu du département ne couvrirait de nouvelle commune à "
                   f"{threshold:g} min : pas de zone blanche atteignable depuis le "
                   "département.")
        return
    first_white = int(result.parameters["population_zone_blanche_initiale"])
    m1, m2, m3 = st.columns(3)
    m1.metric("Population en zone blanche (département)", views.fmt_int(first_white))
    m2.metric(f"Nouvellement couverte par {len(table)} site(s)",
              views.fmt_int(table["population_nouvellement_couverte"].sum()),
              help="Toutes communes du run, y compris hors du département")
    m3.metric("Restant en zone blanche (département)",
              views.fmt_int(int(table["population_zone_blanche_restante"].iloc[-1])))
    if len(table) < k:
        st.info(f"Seulement {len(table)} site(s) : aucun autre chef-lieu du département ne "
                "couvrirait de commune supplémentaire.")


def _sites_table(result: SitingResult, dept: str, type_service: str, threshold: float
                 ) -> None:
    """Draw the sites table, its CSV download and the method."""
    table = result.table
    st.dataframe(
        table, hide_index=True, width="stretch", key="table_sites",
        column_order=SITES_COLUMNS,
        column_config={
            "rang": "Rang", "nom": "Chef-lieu candidat", "code_insee": "Code INSEE",
            "population_nouvellement_couverte": st.column_config.NumberColumn(
                "Pop. nouvellement couverte", format="localized"),
            "communes_nouvellement_couvertes": "Communes nouvellement couvertes",
            "population_nouvellement_couverte_hors_departement": st.column_config.NumberColumn(
                "dont hors département", format="localized"),
            "population_zone_blanche_restante": st.column_config.NumberColumn(
                "Pop. restant en zone blanche (dép.)", format="localized"),
            "moteur": "Moteur", "seuil_minutes": "Seuil (min)",
        },
    )
    csv = spreadsheet_safe_frame(table).to_csv(index=False).encode("utf-8")
    st.download_button("Télécharger le tableau (CSV)", csv, key="sites_csv",
                       file_name=f"nouveaux_sites_{dept}_{type_service}_{threshold:g}min.csv",
                       mime="text/csv")
    st.caption(METHOD)


def _map(sel: state.Selection, run: RunOutputs, result: SitingResult, chosen: RunEngine,
         data: views.SitingData, type_service: str, threshold: float) -> None:
    """Draw the map of the suggested sites and the communes they would newly cover."""
    engine = chosen.engine
    geoms, outside = views.siting_geometries(sel, result.covered)
    services: gpd.GeoDataFrame = data.services
    shown_access = data.access if data.access is not None else nearest_services(
        run.communes, services[services["type_service"] == type_service], engine=engine,
        service_types=(type_service,))
    m = maps.access_map(geoms, views.type_rows(shown_access, type_service), services,
                        type_service=type_service, threshold_min=threshold,
                        engine=engine.name, fictif=run.fictif, tiles=sel.tiles,
                        sources=maps.legend_sources(run))
    maps.add_new_sites(m, result, geoms)
    st.iframe(maps.map_html(m), height=MAP_HEIGHT_PX,
              alt=f"Carte des nouveaux sites suggérés, département {sel.dept}")
    n_dept = len(state.dept_communes(sel.run_dir, sel.stamp, sel.dept))
    st.caption(f"Contour vert : communes que les sites suggérés (pastilles numérotées) "
               f"couvriraient à {threshold:g} min ou moins. Contour noir pointillé : zone "
               f"blanche actuelle. Communes représentées : {n_dept} du département"
               + (f", plus celles couvertes dans {', '.join(outside)}." if outside else "."))


def render() -> None:
    """Draw the page (reads the sidebar's selection)."""
    sel = state.selection()
    run = state.run_of(sel)
    st.title(f"Nouveau site — département {sel.dept}")
    views.fictional_banner(run)
    st.write("Où un nouveau service couvrirait-il le plus de familles ? Les candidats sont "
             "les chefs-lieux des communes du département ; la population nouvellement "
             "couverte compte aussi les communes voisines des autres départements du run.")
    type_service, threshold, k = _controls(sel, run)
    chosen = engine_of_run(run, dept=sel.dept, fallback_to_proxy=True)
    data = views.siting_data(sel, chosen.engine.name)
    if data.upload_name is not None:
        st.info(f"Services du fichier importé **{data.upload_name}** pour ce département.")
    try:
        with st.spinner("Recherche des meilleurs emplacements…"):
            result = _plan(sel, type_service, threshold, k, chosen.engine.name,
                           data.data_key, chosen.engine, data)
    except CoverageError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(f"Moteur : {engine_label(chosen.engine.name)} — {chosen.note}.")
    _figures(result, threshold, k)
    _sites_table(result, sel.dept, type_service, threshold)
    _map(sel, run, result, chosen, data, type_service, threshold)


render()
