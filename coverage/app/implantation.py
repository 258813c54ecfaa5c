"""Page « Nouveaux sites »: where would k new sites cover the most families?

Calls :func:`coverage.siting.plan_new_sites` (greedy maximal covering) with the run's engine
(``road`` graph when its file is readable, else ``proxy``, named on the page). The
candidate × commune matrix is cached per département, type and threshold, so that changing
the number of sites does not route again.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from coverage import maps
from coverage.app import state, upload, views
from coverage.errors import CoverageError
from coverage.settings import NO_SERVICE

MAX_SITES = 5
MAP_HEIGHT_PX = 600


def _demand_communes(run_dir: str, stamp: float) -> pd.DataFrame:
    run = state.load_run(run_dir, stamp)
    return pd.DataFrame(run.communes.drop(columns="geometry"))


@st.cache_data(show_spinner=False, max_entries=16)
def cost_matrix(run_dir: str, stamp: float, dept: str, type_service: str,
                threshold_min: float) -> tuple[pd.DataFrame, str]:
    """Candidate (chef-lieux of the département) × commune minutes within the threshold."""
    from coverage.siting import candidate_matrix, candidate_sites

    run = state.load_run(run_dir, stamp)
    communes = _demand_communes(run_dir, stamp)
    engine, note = upload.engine_for(run, dept, upload._run_settings(run))
    cands = candidate_sites(communes, depts=[dept])
    return candidate_matrix(engine, communes, cands, threshold_min=threshold_min,
                            type_service=type_service), note


@st.cache_data(show_spinner=False, max_entries=32)
def plan(run_dir: str, stamp: float, dept: str, type_service: str, threshold_min: float,
         k: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Suggested sites and newly covered communes (cached), with the engine note."""
    from coverage.siting import plan_new_sites

    run = state.load_run(run_dir, stamp)
    cost, note = cost_matrix(run_dir, stamp, dept, type_service, threshold_min)
    engine, _ = upload.engine_for(run, dept, upload._run_settings(run))
    result = plan_new_sites(
        _demand_communes(run_dir, stamp), run.tables["acces_communes"], None, engine,
        type_service=type_service, threshold_min=threshold_min, k=k, depts=[dept],
        cost=cost,
    )
    return result.table, result.covered, note


@st.cache_data(show_spinner=False, max_entries=16)
def siting_map(run_dir: str, stamp: float, dept: str, type_service: str, threshold_min: float,
               k: int) -> str:
    """HTML of the map: existing access of the type, services, suggested sites."""
    run = state.load_run(run_dir, stamp)
    sites, _covered, _note = plan(run_dir, stamp, dept, type_service, threshold_min, k)
    access = state.dept_access(run_dir, stamp, dept)
    rows = views.type_rows(access, type_service)
    m = maps.access_map(
        state.dept_display_geometries(run_dir, stamp, dept), rows,
        views.shown_services(run.services, access, dept),
        type_service=type_service, threshold_min=threshold_min, engine=run.engine,
        fictif=run.fictif, new_sites=sites,
    )
    return maps.map_html(m)


sel = state.selection()
run = state.run_of(sel)
st.title(f"Nouveaux sites — département {sel.dept}")
if run.fictif:
    st.warning(f"FICTIF — {run.fictional_label or 'territoire de démonstration inventé'}")
st.markdown(
    "Où **k nouveaux sites** couvriraient-ils le plus de familles ? Chaque étape retient le "
    "chef-lieu de commune du département qui met le plus d'habitants à moins du seuil, en "
    "plus de ceux déjà couverts par les services existants (couverture maximale, méthode "
    "gloutonne : exacte pour un site, au moins 63 % de l'optimum au-delà). Les communes "
    "voisines hors du département comptent aussi."
)
type_service = sel.type_service
if type_service == NO_SERVICE:
    types = state.run_types(run)
    type_service = st.radio("Type du nouveau service", types, key="siting_type",
                            format_func=maps.service_label, horizontal=True)
k = st.slider("Nombre de nouveaux sites", 1, MAX_SITES, 1, key="k_sites")

try:
    with st.spinner("Calcul des temps depuis chaque chef-lieu candidat…"):
        sites, covered, note = plan(sel.run_dir, sel.stamp, sel.dept, type_service,
                                    sel.threshold_min, int(k))
except CoverageError as exc:
    st.error(f"Calcul impossible : {exc}")
    st.stop()

st.caption(f"Service : {maps.service_label(type_service)} ; seuil {sel.threshold_min:g} min ; "
           f"moteur {note}.")
if sites.empty:
    st.info("Aucun chef-lieu du département ne couvrirait d'habitant de plus : la "
            "couverture est déjà complète à ce seuil.")
    st.stop()

if len(sites) < k:
    st.info(f"Seuls {len(sites)} site(s) couvrent de nouvelles communes.")
last = sites.iloc[-1]
cols = st.columns(3)
cols[0].metric("Population nouvellement couverte",
               views.fmt_int(sites["population_nouvellement_couverte"].sum()))
cols[1].metric("Communes nouvellement couvertes",
               str(int(sites["communes_nouvellement_couvertes"].sum())))
cols[2].metric("Population du département encore en zone blanche",
               views.fmt_int(last["population_zone_blanche_restante"]))

st.dataframe(
    sites[["rang", "nom", "code_insee", "population_nouvellement_couverte",
           "communes_nouvellement_couvertes",
           "population_nouvellement_couverte_hors_departement",
           "population_zone_blanche_restante", "moteur"]],
    hide_index=True, width="stretch", key="table_sites",
    column_config={
        "rang": "Rang", "nom": "Chef-lieu", "code_insee": "Code INSEE",
        "population_nouvellement_couverte": st.column_config.NumberColumn(
            "Pop. nouvellement couverte", format="localized"),
        "communes_nouvellement_couvertes": "Communes couvertes",
        "population_nouvellement_couverte_hors_departement": st.column_config.NumberColumn(
            "dont hors département", format="localized"),
        "population_zone_blanche_restante": st.column_config.NumberColumn(
            "Pop. du département encore en ZB", format="localized"),
        "moteur": "Moteur",
    },
)

st.iframe(siting_map(sel.run_dir, sel.stamp, sel.dept, type_service, sel.threshold_min,
                     int(k)),
          height=MAP_HEIGHT_PX, alt=f"Carte des nouveaux sites suggérés, département {sel.dept}")
with st.expander("Communes nouvellement couvertes"):
    st.dataframe(covered, hide_index=True, width="stretch", key="table_covered")
