"""Page « Nouveau site »: where would 1 to 5 new sites cover the most families.

Calls :func:`coverage.siting.plan_new_sites` (exact maximal covering, an integer program
solved by HiGHS, with the greedy's gap shown) for the sidebar's département: candidates are
the chef-lieux of its communes, the population newly covered is counted over the
département's communes only (the base stated in the titles), and the new sites are timed
by the run's engine (:func:`coverage.routing.engine_of_run`: ``road`` when the run's road
file is still readable, else ``proxy``, and the page says so). The candidate × commune
matrix is cached per département, type, threshold and engine, so changing the number of
sites does not route again. The map is :func:`coverage.maps.access_map` with
:func:`coverage.maps.add_new_sites`.

Below, **scenarios A and B** side by side (issue 14): add a site in a commune of the
département (chosen from a list: streamlit-folium is not used, so the map is not
clickable), move a service to another commune, or remove one; each column shows at once its
white zones, the population gained or lost against the run, the communes that change, and
its map, and the département's mean accessibility index (E2SFCA,
:func:`coverage.accessibility.accessibility_for_run`, recomputed for the département). Each
change is applied incrementally (:class:`coverage.scenario.Scenario`): only the communes
whose nearest service can change are timed again, with the run's engine.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st

from coverage import maps
from coverage.accessibility import accessibility_for_run
from coverage.app import state, views
from coverage.errors import CoverageError
from coverage.labels import (
    PLACEHOLDER_CHOICE,
    engine_label,
    fr_decimal,
    fr_minutes,
    fr_percent,
    type_label,
)
from coverage.results import RunOutputs, run_service_types, run_thresholds
from coverage.routing import RunEngine, engine_of_run
from coverage.routing.base import Engine
from coverage.safe_text import spreadsheet_safe_frame
from coverage.scenario import Scenario
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
                 "population_zone_blanche_restante", "methode", "moteur", "seuil_minutes"]
METHOD = (
    "Méthode : couverture maximale exacte — programme linéaire en nombres entiers résolu par "
    "HiGHS (scipy), qui choisit ensemble les chefs-lieux couvrant le plus d'habitants du "
    "département encore au-delà du seuil ; les services existants sont fixes. L'écart de "
    "la méthode gloutonne (un site après l'autre) à cet optimum est indiqué. Seules les "
    "familles du département sont comptées (la commande « zones-blanches sites "
    "--avec-voisins » compte aussi celles des départements voisins, dans une colonne à "
    "part). Une commune sans temps (inaccessible, hors réseau) n'est jamais comptée comme "
    "couverte. Chaque commune est représentée par son chef-lieu."
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
                                    placeholder=PLACEHOLDER_CHOICE,
                                    format_func=type_label))
    threshold = float(c2.number_input("Seuil (minutes)", min_value=5.0, max_value=90.0,
                                      step=5.0, value=float(sel.threshold_min),
                                      format="%g", key="site_threshold"))
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
                   f"{fr_minutes(threshold)} : pas de zone blanche atteignable depuis le "
                   "département.")
        return
    first_white = int(result.parameters["population_zone_blanche_initiale"])
    m1, m2, m3 = st.columns(3)
    m1.metric("Population en zone blanche (département)", views.fmt_int(first_white))
    m2.metric(f"Nouvellement couverte par {len(table)} site(s)",
              views.fmt_int(table["population_nouvellement_couverte"].sum()),
              help="Communes du département seulement")
    m3.metric("Restant en zone blanche (département)",
              views.fmt_int(int(table["population_zone_blanche_restante"].iloc[-1])))
    gap = result.parameters.get("ecart_glouton_population")
    if gap is not None:
        st.caption(f"Écart de la méthode gloutonne à l'optimum : {views.fmt_int(int(gap))} "
                   f"habitant(s) ({fr_percent(float(result.parameters['ecart_glouton_part']))}"
                   ").")
    if len(table) < k:
        st.info(f"Seulement {len(table)} site(s) : aucun autre chef-lieu du département ne "
                "couvrirait de commune supplémentaire.")


def _sites_table(result: SitingResult, dept: str, type_service: str, threshold: float
                 ) -> None:
    """Draw the sites table, its CSV download and the method."""
    table = result.table
    views.show_table(
        table, key="table_sites", column_order=SITES_COLUMNS,
        config={
            "rang": "Rang", "nom": "Chef-lieu candidat", "code_insee": "Code INSEE",
            "population_nouvellement_couverte": st.column_config.NumberColumn(
                "Pop. nouvellement couverte (dép.)", format="localized"),
            "communes_nouvellement_couvertes": "Communes nouvellement couvertes",
            "population_zone_blanche_restante": st.column_config.NumberColumn(
                "Pop. restant en zone blanche (dép.)", format="localized"),
            "methode": "Méthode", "moteur": "Moteur", "seuil_minutes": "Seuil (min)",
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
                        sources=maps.legend_sources(run), thresholds=run_thresholds(run),
                        context=state.dept_context(sel.run_dir, sel.stamp, sel.dept))
    maps.add_new_sites(m, result, geoms)
    st.iframe(maps.map_html(m), height=MAP_HEIGHT_PX,
              alt=f"Carte des nouveaux sites suggérés, département {sel.dept}")
    n_dept = len(state.dept_communes(sel.run_dir, sel.stamp, sel.dept))
    st.caption(f"Contour vert : communes que les sites suggérés (pastilles numérotées) "
               f"couvriraient à {fr_minutes(threshold)} ou moins. Communes hachurées : zone "
               f"blanche actuelle. Communes représentées : {n_dept} du département"
               + (f", plus celles couvertes dans {', '.join(outside)}." if outside else "."))


# --- Scenarios A and B ------------------------------------------------------------------

SCENARIO_COLUMNS = ("A", "B")
SCENARIO_MAP_HEIGHT_PX = 460
#: Session key of the memo of computed scenarios (per run, département, engine, changes).
_MEMO_KEY = "scenario_memo"
_ACCESS_MEMO_KEY = "scenario_accessibility_memo"
_MEMO_MAX = 24
ACTIONS = {"ajout": "Ajouter un site", "deplacement": "Déplacer un service",
           "retrait": "Retirer un service"}
#: One change of a scenario: (action, service_id or "", code_insee or "", type or "").
Change = tuple[str, str, str, str]


@dataclass(frozen=True)
class _ScenarioView:
    """A scenario computed for the page, with the seconds its last change took."""

    scenario: Scenario
    last_change_s: float


def _ops_key(name: str) -> str:
    return f"scenario_{name}_changes"


def _base_scenario(sel: state.Selection, run: RunOutputs, chosen: RunEngine,
                   data: views.SitingData) -> Scenario:
    """Return the département's scenario before any change (the run's access reused)."""
    com = state.dept_communes(sel.run_dir, sel.stamp, sel.dept)
    types = [t for t in run_service_types(run) if t != NO_SERVICE]
    return Scenario.of_run(chosen.engine, com, data.services, data.access, types,
                           all_communes=pd.DataFrame(run.communes).drop(columns="geometry"))


def _scenario(sel: state.Selection, run: RunOutputs, chosen: RunEngine,
              data: views.SitingData, changes: tuple[Change, ...]) -> _ScenarioView:
    """Return the scenario of ``changes``, each applied incrementally (memoised)."""
    memo: dict[tuple[object, ...], _ScenarioView] = st.session_state.setdefault(_MEMO_KEY, {})
    base_key = (sel.run_dir, sel.stamp, sel.dept, chosen.engine.name, data.data_key)
    key = (*base_key, changes)
    if key in memo:
        return memo[key]
    if changes:
        prev = _scenario(sel, run, chosen, data, changes[:-1]).scenario
        action, service_id, code, type_service = changes[-1]
        t0 = time.perf_counter()
        if action == "ajout":
            scn = prev.add(code, type_service)
        elif action == "deplacement":
            scn = prev.move(service_id, code)
        else:
            scn = prev.remove(service_id)
        view = _ScenarioView(scn, time.perf_counter() - t0)
    else:
        view = _ScenarioView(_base_scenario(sel, run, chosen, data), 0.0)
    if len(memo) >= _MEMO_MAX:
        memo.pop(next(iter(memo)))
    memo[key] = view
    return view


def _commune_label(com: pd.DataFrame) -> dict[str, str]:
    return {str(c): f"{n} ({c})" for c, n in zip(com["code_insee"], com["nom"], strict=True)}


def _service_choices(scn: Scenario, dept: str, type_service: str) -> dict[str, str]:
    """Return the services of the type that a change may move or remove (the département's)."""
    svc = scn.services
    mine = svc[(svc["type_service"].astype(str) == type_service)
               & (svc["code_dep"].astype(str) == dept)]
    names = mine["nom"] if "nom" in mine.columns else mine["service_id"]
    return {str(i): f"{n} ({i})" for i, n in zip(mine["service_id"], names, strict=True)}


def _change_form(name: str, scn: Scenario, dept: str, type_service: str) -> Change | None:
    """Draw one column's change controls; return the change asked for, or None."""
    action = str(st.selectbox("Changement", list(ACTIONS), key=f"scenario_{name}_action",
                              format_func=ACTIONS.__getitem__,
                              placeholder=PLACEHOLDER_CHOICE))
    communes = _commune_label(scn.communes)
    services = _service_choices(scn, dept, type_service)
    service_id = code = ""
    if action in ("deplacement", "retrait"):
        if not services:
            st.caption(f"Aucun service « {type_label(type_service)} » dans le département.")
            return None
        service_id = str(st.selectbox("Service", list(services), key=f"scenario_{name}_service",
                                      format_func=services.__getitem__,
                                      placeholder=PLACEHOLDER_CHOICE))
    if action in ("ajout", "deplacement"):
        code = str(st.selectbox("Commune", list(communes), key=f"scenario_{name}_commune",
                                format_func=communes.__getitem__,
                                placeholder=PLACEHOLDER_CHOICE,
                                help="Le site est placé au point de la commune (chef-lieu)."))
    if st.button("Appliquer", key=f"scenario_{name}_apply"):
        return action, service_id, code, type_service
    return None


def _scenario_figures(view: _ScenarioView, base: Scenario, type_service: str,
                      threshold: float) -> None:
    """Draw a scenario's white-zone figures against the run's, and the communes changed."""
    scn = view.scenario
    fig, ref = scn.figures(type_service, threshold), base.figures(type_service, threshold)
    delta = fig.population_white - ref.population_white
    m1, m2 = st.columns(2)
    m1.metric("Population en zone blanche", views.fmt_int(fig.population_white),
              delta=(f"{'+' if delta > 0 else '−' if delta < 0 else ''}"
                     f"{views.fmt_int(abs(delta))}"), delta_color="inverse")
    m2.metric("Communes en zone blanche", views.fmt_int(fig.communes_white),
              delta=fig.communes_white - ref.communes_white or None, delta_color="inverse")
    gained = int(fig.gained["population"].sum())
    lost = int(fig.lost["population"].sum())
    st.write(f"Population sortie des zones blanches : **{views.fmt_int(gained)}** "
             f"({len(fig.gained)} commune(s)) ; entrée en zone blanche : "
             f"**{views.fmt_int(lost)}** ({len(fig.lost)} commune(s)).")
    changed = pd.concat([fig.gained.assign(effet="sort de la zone blanche"),
                         fig.lost.assign(effet="entre en zone blanche")], ignore_index=True)
    if len(changed):
        shown = changed.round({"minutes_avant": 1, "minutes_apres": 1})
        views.show_table(shown[["nom", "code_insee", "population", "minutes_avant",
                                "minutes_apres", "effet"]],
                         {"nom": "Commune", "code_insee": "Code INSEE",
                          "population": st.column_config.NumberColumn("Population"),
                          "minutes_avant": "Temps, run (min)",
                          "minutes_apres": "Temps, scénario (min)", "effet": "Effet"})
        st.caption("Temps vide : aucun service accessible.")
    if scn.changes:
        st.caption("Changements : " + " ; ".join(scn.changes) + f". Dernier recalcul : "
                   f"{fr_decimal(view.last_change_s, 2)} s, "
                   f"{views.fmt_int(scn.recomputed[-1])} commune(s) recalculée(s) sur "
                   f"{views.fmt_int(len(scn.communes))}.")
    else:
        st.caption("Aucun changement : les chiffres du run.")


def _accessibility(sel: state.Selection, run: RunOutputs, chosen: RunEngine,
                   changes: tuple[Change, ...], scn: Scenario, type_service: str,
                   threshold: float) -> float | None:
    """Return the département's mean accessibility index of a scenario (memoised), or None.

    :func:`coverage.accessibility.accessibility_for_run` (E2SFCA) on the scenario's
    services: the population-weighted mean of the communes' index, capacity per 100 000
    inhabitants.
    """
    memo: dict[tuple[object, ...], float | None] = st.session_state.setdefault(
        _ACCESS_MEMO_KEY, {})
    key = (sel.run_dir, sel.stamp, sel.dept, chosen.engine.name, changes, type_service,
           threshold)
    if key not in memo:
        try:
            result = accessibility_for_run(run, sel.dept, type_service=type_service,
                                           threshold_min=threshold, engine=chosen.engine,
                                           services=scn.services)
            dept = result.departements
            memo[key] = (float(dept["indice_moyen_pour_100k"].iloc[0]) if len(dept)
                         else None)
        except CoverageError as exc:
            log.info("indice d'accessibilité du scénario non calculé : %s", exc)
            memo[key] = None
        if len(memo) > _MEMO_MAX:
            memo.pop(next(iter(memo)))
    return memo[key]


def _scenario_map(sel: state.Selection, run: RunOutputs, scn: Scenario, name: str,
                  type_service: str, threshold: float) -> None:
    """Draw a scenario's map (minutes to the nearest service, white zones, services)."""
    geoms = state.dept_display_geometries(sel.run_dir, sel.stamp, sel.dept)
    svc = scn.services
    points = gpd.GeoDataFrame(svc, geometry=gpd.points_from_xy(svc["lon"], svc["lat"]),
                              crs="EPSG:4326")
    m = maps.access_map(geoms, views.type_rows(scn.access, type_service), points,
                        type_service=type_service, threshold_min=threshold,
                        engine=scn.engine.name, fictif=run.fictif, tiles=sel.tiles,
                        sources=maps.legend_sources(run), thresholds=run_thresholds(run),
                        context=state.dept_context(sel.run_dir, sel.stamp, sel.dept))
    st.iframe(maps.map_html(m), height=SCENARIO_MAP_HEIGHT_PX,
              alt=f"Carte du scénario {name}, département {sel.dept}")


def _stored_changes(name: str, scope: tuple[object, ...]) -> tuple[Change, ...]:
    """Return the changes of scenario ``name`` made on this run, département and engine.

    Changes made on another département (or run, engine, services) are dropped.
    """
    stored = st.session_state.get(_ops_key(name))
    if isinstance(stored, dict) and stored.get("scope") == scope:
        return tuple(stored.get("changes", ()))
    return ()


def _store_changes(name: str, scope: tuple[object, ...], changes: tuple[Change, ...]) -> None:
    st.session_state[_ops_key(name)] = {"scope": scope, "changes": changes}


def _index_metric(index: float | None, ref: float | None) -> None:
    """Draw the mean accessibility index of a scenario and its change against the run."""
    if index is None or ref is None or not (np.isfinite(index) and np.isfinite(ref)):
        st.caption("Indice d'accessibilité non calculé pour ce scénario.")
        return
    diff = index - ref
    st.metric("Indice d'accessibilité moyen (pour 100 000 hab.)", fr_decimal(index, 2),
              delta=(f"{'+' if diff > 0 else '−' if diff < 0 else ''}"
                     f"{fr_decimal(abs(diff), 2)}") if abs(diff) > 1e-12 else None,
              help="E2SFCA au seuil choisi, moyenne des communes du département "
                   "pondérée par la population (voir la page « Accessibilité »).")


def _scenario_column(name: str, sel: state.Selection, run: RunOutputs, chosen: RunEngine,
                     data: views.SitingData, type_service: str, threshold: float) -> None:
    """Draw one scenario column: its changes, figures, accessibility index and map."""
    st.subheader(f"Scénario {name}")
    scope = (sel.run_dir, sel.stamp, sel.dept, chosen.engine.name, data.data_key)
    changes = _stored_changes(name, scope)
    view = _scenario(sel, run, chosen, data, changes)
    asked = _change_form(name, view.scenario, sel.dept, type_service)
    if asked is not None:
        try:
            view = _scenario(sel, run, chosen, data, (*changes, asked))
        except CoverageError as exc:
            st.error(str(exc))
        else:
            changes = (*changes, asked)
            _store_changes(name, scope, changes)
    if changes and st.button("Revenir au run", key=f"scenario_{name}_reset"):
        changes = ()
        _store_changes(name, scope, changes)
        view = _scenario(sel, run, chosen, data, changes)
    base = _scenario(sel, run, chosen, data, ()).scenario
    _scenario_figures(view, base, type_service, threshold)
    _index_metric(
        _accessibility(sel, run, chosen, changes, view.scenario, type_service, threshold),
        _accessibility(sel, run, chosen, (), base, type_service, threshold))
    _scenario_map(sel, run, view.scenario, name, type_service, threshold)


def _scenarios(sel: state.Selection, run: RunOutputs, chosen: RunEngine,
               data: views.SitingData, type_service: str, threshold: float) -> None:
    """Draw scenarios A and B side by side."""
    st.write(f"Ajoutez, déplacez ou retirez un site « {type_label(type_service)} » et voyez "
             f"aussitôt les zones blanches à {threshold:g} min du département : seules les "
             "communes dont le service le plus proche peut changer sont recalculées, avec le "
             "moteur du run. Deux scénarios côte à côte, comparés au run.")
    st.caption("Les communes se choisissent dans les listes (la carte n'est pas cliquable). "
               "L'indice d'accessibilité (E2SFCA, capacité pour 100 000 habitants, page "
               "« Accessibilité ») est recalculé pour chaque scénario sur tout le "
               "département.")
    for col, name in zip(st.columns(len(SCENARIO_COLUMNS)), SCENARIO_COLUMNS, strict=True):
        with col:
            _scenario_column(name, sel, run, chosen, data, type_service, threshold)


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
    suggested, scenarios = st.tabs(["Sites suggérés", "Scénarios A et B"])
    with suggested:
        _figures(result, threshold, k)
        _sites_table(result, sel.dept, type_service, threshold)
        _map(sel, run, result, chosen, data, type_service, threshold)
    with scenarios:
        _scenarios(sel, run, chosen, data, type_service, threshold)


render()
