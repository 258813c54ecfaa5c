"""Page « Nouveau site »: where would 1 to 5 new sites cover the most families?

Calls :func:`coverage.siting.plan_new_sites` (greedy maximal covering) for the sidebar's
département: candidates are the chef-lieux of its communes, the population newly covered is
counted over all the communes of the run (across the border), and the new sites are timed
by the run's engine (``road`` when the run's road file is still readable, else ``proxy``,
and the page says so). The candidate × commune matrix is cached per département, type,
threshold and engine, so changing the number of sites does not route again.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import pandas as pd
import streamlit as st

from coverage import maps
from coverage.app import state, views
from coverage.errors import CoverageError
from coverage.settings import NO_SERVICE, Settings, metric_crs_for

if TYPE_CHECKING:
    from coverage.results import RunOutputs
    from coverage.routing.road import Engine
    from coverage.siting import SitingResult

log = logging.getLogger(__name__)

MAP_HEIGHT_PX = 620
#: Outline of the communes a suggested site would newly cover.
NEW_COVER_COLOUR = "#00a651"
#: Fill of the suggested-site markers.
SITE_COLOUR = "#e6007e"
MAX_SITES = 5


@st.cache_resource(show_spinner=False, max_entries=2)
def _road_engine(roads: str, crs: str, settings_json: str) -> Engine:
    """Road engine of a road file with the run's settings (built once, shared read-only)."""
    from coverage.routing.road import make_engine

    raw = json.loads(settings_json)
    settings = replace(Settings(), snap_max_m=raw["snap_max_m"],
                       access_speed_kmh=raw["access_speed_kmh"])
    return make_engine("road", Path(roads), settings, crs)


def run_engine(run: RunOutputs, dept: str) -> tuple[Engine, str]:
    """The engine of the run (road when its road file is readable, else proxy) and a note."""
    from coverage.results import run_roads_path, run_settings
    from coverage.routing.proxy import ProxyEngine

    settings = run_settings(run)
    if run.engine == "road":
        roads = run_roads_path(run)
        if roads is None:
            note = ("le run a été calculé par la route, mais son fichier routier n'est plus "
                    "disponible : temps estimés à vol d'oiseau (proxy), existants compris")
            return ProxyEngine(settings), note
        params = (run.manifest.get("engine") or {}).get("parameters") or {}
        crs = str(params.get("crs_metrique") or metric_crs_for(dept))
        key = json.dumps({"snap_max_m": settings.snap_max_m,
                          "access_speed_kmh": settings.access_speed_kmh})
        try:
            return _road_engine(str(roads), crs, key), f"graphe routier du run ({roads.name})"
        except CoverageError as exc:
            return ProxyEngine(settings), f"réseau routier illisible ({exc}) : proxy"
    return ProxyEngine(settings), "comme le run"


@st.cache_data(show_spinner=False, max_entries=16)
def _cost(run_dir: str, stamp: float, dept: str, type_service: str, threshold_min: float,
          engine_key: str, _engine: Engine) -> pd.DataFrame:
    """Candidate × commune minutes within the threshold (cached: routing is the slow part)."""
    from coverage.siting import candidate_matrix, candidate_sites

    run = state.load_run(run_dir, stamp)
    cands = candidate_sites(run.communes, depts=[dept])
    return candidate_matrix(_engine, run.communes, cands, threshold_min=threshold_min,
                            type_service=type_service)


@st.cache_data(show_spinner=False, max_entries=32)
def _plan(run_dir: str, stamp: float, dept: str, type_service: str, threshold_min: float,
          k: int, engine_key: str, data_key: str, _engine: Engine,
          _access: pd.DataFrame | None, _services: gpd.GeoDataFrame) -> SitingResult:
    from coverage.siting import plan_new_sites

    run = state.load_run(run_dir, stamp)
    cost = _cost(run_dir, stamp, dept, type_service, threshold_min, engine_key, _engine)
    return plan_new_sites(run.communes, _access, _services, _engine,
                          type_service=type_service, threshold_min=threshold_min, k=k,
                          depts=[dept], cost=cost)


def sites_map(result: SitingResult, geoms: gpd.GeoDataFrame, access: pd.DataFrame,
              services: gpd.GeoDataFrame, *, type_service: str, threshold_min: float,
              engine: str, fictif: bool, tiles: maps.Tiles | None, sources: str
              ) -> folium.Map:
    """The Carte map (minutes, white zones, services) plus newly covered communes and sites."""
    m = maps.access_map(geoms, access, services, type_service=type_service,
                        threshold_min=threshold_min, engine=engine, fictif=fictif,
                        tiles=tiles, sources=sources)
    cov = geoms.merge(result.covered[["code_insee", "rang", "site_id", "minutes"]],
                      on="code_insee", how="inner")
    if len(cov):
        cov["txt"] = [html.escape(f"{n} : couverte par le site n° {r} ({mi:.0f} min)")
                      for n, r, mi in zip(cov["nom"], cov["rang"], cov["minutes"],
                                          strict=True)]
        fg = folium.FeatureGroup(name="Communes nouvellement couvertes", show=True)
        folium.GeoJson(
            cov[["txt", "geometry"]].reset_index(drop=True),
            style_function=lambda f: {"fillOpacity": 0.0, "color": NEW_COVER_COLOUR,
                                      "weight": 3, "className": "nouvellement-couverte"},
            tooltip=folium.GeoJsonTooltip(fields=["txt"], labels=False),
        ).add_to(fg)
        fg.add_to(m)
    fg_sites = folium.FeatureGroup(name="Nouveaux sites suggérés", show=True)
    for row in result.table.to_dict("records"):
        rank = int(row["rang"])
        label = html.escape(
            f"Site n° {rank} : {row['nom']} — "
            f"{views.fmt_int(float(row['population_nouvellement_couverte']))} habitants "
            f"nouvellement couverts ({int(row['communes_nouvellement_couvertes'])} communes)")
        folium.Marker(
            location=[float(row["lat"]), float(row["lon"])],
            icon=folium.DivIcon(
                html=(f'<div style="width:24px;height:24px;'
                      f"border-radius:50%;background:{SITE_COLOUR};color:#fff;"
                      "border:2px solid #fff;box-shadow:0 0 0 1px #333;font:bold 13px/24px "
                      f'sans-serif;text-align:center">{rank}</div>'),
                icon_size=(28, 28), icon_anchor=(14, 14), class_name="nouveau-site"),
            tooltip=label,
        ).add_to(fg_sites)
    fg_sites.add_to(m)
    return m


def _sources(run: RunOutputs) -> str:
    """Short, escaped source line of the run for the map legend."""
    from coverage.results import source_line

    text = source_line(run)
    if len(text) > views.SOURCE_MAX_CHARS:
        text = text[: views.SOURCE_MAX_CHARS - 1] + "… (voir « À propos »)"
    return html.escape(text)


# --- the page ------------------------------------------------------------------------------

sel = state.selection()
run = state.run_of(sel)
st.title(f"Nouveau site — département {sel.dept}")
views.fictional_banner(run)
st.write("Où un nouveau service couvrirait-il le plus de familles ? Les candidats sont les "
         "chefs-lieux des communes du département ; la population nouvellement couverte "
         "compte aussi les communes voisines des autres départements du run.")

types = state.run_types(run)
c1, c2, c3 = st.columns(3)
default_type = sel.type_service if sel.type_service in types else types[0]
type_service = str(c1.selectbox("Type du nouveau service", types, index=types.index(default_type),
                                key="site_type", format_func=maps.service_label))
threshold = float(c2.number_input("Seuil (minutes)", min_value=5.0, max_value=90.0, step=5.0,
                                  value=float(sel.threshold_min), key="site_threshold"))
k = int(c3.slider("Nombre de nouveaux sites", 1, MAX_SITES, 1, key="site_k"))
if sel.type_service == NO_SERVICE:
    st.caption("La barre latérale montre la vue combinée ; un nouveau site offre un type de "
               "service : choisissez-le ci-dessus.")

engine, engine_note = run_engine(run, sel.dept)
up = state.upload_override(sel)
services: gpd.GeoDataFrame = run.services
access: pd.DataFrame | None = run.tables.get("acces_communes")
data_key = "run"
if up is not None:
    # Uploaded services replace the run's in this département (as on the other pages).
    others = run.services[run.services["code_dep"].astype(str) != sel.dept]
    services = gpd.GeoDataFrame(pd.concat([others, up["services"].to_crs(others.crs)],
                                          ignore_index=True), crs=others.crs)
    access = None
    data_key = repr(up["token"])
    st.info(f"Services du fichier importé **{up['name']}** pour ce département.")
if access is not None and set(access["moteur"].dropna().astype(str)) != {engine.name}:
    access = None  # existing coverage recomputed with the engine that times the new sites

try:
    with st.spinner("Recherche des meilleurs emplacements…"):
        result = _plan(sel.run_dir, sel.stamp, sel.dept, type_service, threshold, k,
                       engine.name, data_key, engine, access, services)
except CoverageError as exc:
    st.error(str(exc))
    st.stop()

st.caption(f"Moteur : {maps.ENGINE_LABELS.get(engine.name, engine.name)} — {engine_note}.")
table = result.table
communes_dep = state.dept_communes(sel.run_dir, sel.stamp, sel.dept)
if table.empty:
    st.success(f"Aucun chef-lieu du département ne couvrirait de nouvelle commune à "
               f"{threshold:g} min : pas de zone blanche atteignable depuis le département.")
else:
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

st.dataframe(
    table, hide_index=True, width="stretch", key="table_sites",
    column_order=["rang", "nom", "code_insee", "population_nouvellement_couverte",
                  "communes_nouvellement_couvertes",
                  "population_nouvellement_couverte_hors_departement",
                  "population_zone_blanche_restante", "moteur", "seuil_minutes"],
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
csv = table.to_csv(index=False).encode("utf-8")
st.download_button("Télécharger le tableau (CSV)", csv, key="sites_csv",
                   file_name=f"nouveaux_sites_{sel.dept}_{type_service}_{threshold:g}min.csv",
                   mime="text/csv")
st.caption(
    "Méthode : couverture maximale résolue de façon gloutonne — à chaque étape, le chef-lieu "
    "qui couvre le plus d'habitants encore au-delà du seuil (des services existants et des "
    "sites déjà choisis). Exact pour un site ; heuristique pour plusieurs (au moins 63 % de "
    "l'optimum garanti, souvent optimal). Une commune sans temps (inaccessible, hors "
    "réseau) n'est jamais comptée comme couverte. Chaque commune est représentée par son "
    "chef-lieu."
)

geoms = state.dept_display_geometries(sel.run_dir, sel.stamp, sel.dept)
outside = sorted({str(d) for d in result.covered["code_dep"]} - {sel.dept})
if outside:
    extra = [state.dept_display_geometries(sel.run_dir, sel.stamp, d) for d in outside]
    extra = [g[g["code_insee"].isin(result.covered["code_insee"])] for g in extra]
    geoms = gpd.GeoDataFrame(pd.concat([geoms, *extra], ignore_index=True), crs=geoms.crs)
shown_access = access if access is not None else engine.nearest(
    run.communes, services[services["type_service"] == type_service],  # type: ignore[arg-type]
    service_types=(type_service,))
m = sites_map(result, geoms, views.type_rows(shown_access, type_service), services,
              type_service=type_service, threshold_min=threshold, engine=engine.name,
              fictif=run.fictif, tiles=sel.tiles,
              sources=_sources(run))
st.iframe(maps.map_html(m), height=MAP_HEIGHT_PX,
          alt=f"Carte des nouveaux sites suggérés, département {sel.dept}")
st.caption(f"Contour vert : communes que les sites suggérés (pastilles numérotées) "
           f"couvriraient à {threshold:g} min ou moins. Contour noir pointillé : zone blanche "
           f"actuelle. Communes représentées : {len(communes_dep)} du département"
           + (f", plus celles couvertes dans {', '.join(outside)}." if outside else "."))
