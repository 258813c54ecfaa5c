"""Page « Accessibilité »: the 2SFCA / E2SFCA index of the département's communes.

Calls :func:`coverage.accessibility.accessibility_for_run` for the sidebar's département
(timed by the run's engine, :func:`coverage.routing.engine_of_run`, the proxy when a road
run's road file is gone, and the page says so), then draws the key figures, the map
(:func:`coverage.export.accessibility_map.accessibility_map`) and the tables by commune and
EPCI.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from coverage import maps
from coverage.accessibility import (
    PER_INHABITANTS,
    AccessibilityResult,
    DecayBands,
    accessibility_for_run,
)
from coverage.app import state, views
from coverage.errors import CoverageError
from coverage.export.accessibility_map import accessibility_map
from coverage.labels import (
    PLACEHOLDER_CHOICE,
    engine_label,
    fr_decimal,
    fr_int,
    fr_minutes,
    type_label,
)
from coverage.results import run_service_types
from coverage.routing import engine_of_run
from coverage.routing.base import Engine
from coverage.safe_text import spreadsheet_safe_frame

__all__: list[str] = []

MAP_HEIGHT_PX = 600
METHOD_CHOICES = {"e2sfca": "E2SFCA (poids décroissants par bande de temps)",
                  "2sfca": "2SFCA (poids 1 jusqu'au seuil)"}
UNIT = f"capacité (ETP ou places) pour {fr_int(PER_INHABITANTS)} habitants"


@st.cache_data(show_spinner=False, max_entries=32)
def _index(sel: state.Selection, type_service: str, threshold: float, method: str,
           keys: tuple[str, str], _engine: Engine, _data: views.SitingData
           ) -> AccessibilityResult:
    """Return the index of the selection's département (cached: routing is slow).

    ``keys`` (engine name, data key) stand for the unhashed engine and services.
    """
    del keys  # cache key only
    run = state.run_of(sel)
    return accessibility_for_run(run, sel.dept, type_service=type_service,
                                 threshold_min=threshold, method=method, engine=_engine,
                                 services=_data.services)


def _controls(sel: state.Selection, types: list[str]) -> tuple[str, str, float]:
    """Draw the type, method and threshold controls; return their values."""
    c1, c2, c3 = st.columns(3)
    default = sel.type_service if sel.type_service in types else types[0]
    type_service = str(c1.selectbox("Type de service", types, index=types.index(default),
                                    key="acc_type", format_func=type_label,
                                    placeholder=PLACEHOLDER_CHOICE))
    method = str(c2.radio("Méthode", list(METHOD_CHOICES), key="acc_method",
                          format_func=METHOD_CHOICES.__getitem__))
    threshold = float(c3.number_input("Aire de chalandise (minutes)", min_value=5.0,
                                      max_value=90.0, step=5.0, format="%g",
                                      value=float(sel.threshold_min), key="acc_threshold"))
    return type_service, method, threshold


def _figures(result: AccessibilityResult) -> None:
    """Draw the département's weighted mean and the communes with no service within reach."""
    row = result.departements.iloc[0]
    m1, m2, m3 = st.columns(3)
    mean = row["indice_moyen_pour_100k"]
    m1.metric(f"Indice moyen (pour {fr_int(PER_INHABITANTS)} hab.)",
              "sans objet" if pd.isna(mean) else fr_decimal(float(mean), 2),
              help="Moyenne des communes pondérée par leur population")
    m2.metric("Communes sans service à portée", fr_int(row["communes_sans_service"]))
    m3.metric("Population sans service à portée", fr_int(row["population_sans_service"]))
    for w in result.warnings:
        st.warning(w)


def _tables(result: AccessibilityResult, dept: str) -> None:
    """Draw the tables by commune and EPCI, and the CSV download."""
    number = st.column_config.NumberColumn
    config: dict[str, Any] = {"code_insee": "Code INSEE", "nom": "Commune", "nom_epci": "EPCI",
              "population": number("Population", format="localized"),
              "services_accessibles": number("Services à portée"),
              "capacite_accessible": number("Capacité à portée", format="localized"),
              "indice_pour_100k": number(f"Indice ({UNIT})", format="localized"),
              "indice_moyen_pour_100k": number(f"Indice moyen ({UNIT})", format="localized"),
              "communes": number("Communes"),
              "communes_sans_service": number("Communes sans service"),
              "population_sans_service": number("Pop. sans service", format="localized")}
    tab_c, tab_e = st.tabs(["Par commune", "Par EPCI"])
    with tab_c:
        views.show_table(result.communes, config, key="acc_communes",
                         column_order=["code_insee", "nom", "population",
                                       "services_accessibles", "capacite_accessible",
                                       "indice_pour_100k", "nom_epci"])
    with tab_e:
        views.show_table(result.epci, config, key="acc_epci",
                         column_order=["nom_epci", "communes", "population",
                                       "indice_moyen_pour_100k", "communes_sans_service",
                                       "population_sans_service"])
    csv = spreadsheet_safe_frame(result.communes).to_csv(index=False).encode("utf-8")
    st.download_button("Télécharger l'indice par commune (CSV)", csv, key="acc_csv",
                       file_name=f"{dept}_accessibilite_communes.csv", mime="text/csv")


def render() -> None:
    """Draw the page (reads the sidebar's selection)."""
    sel = state.selection()
    run = state.run_of(sel)
    st.title(f"Accessibilité — département {sel.dept}")
    views.fictional_banner(run)
    st.write("Quelle capacité de service chaque famille peut-elle atteindre, quand un service "
             "est partagé par plusieurs communes ? Indice à deux étapes (2SFCA) : capacité de "
             "chaque service divisée par la population à sa portée, puis somme sur les "
             f"services à portée de chaque commune ; en {UNIT}.")
    types = run_service_types(run)
    if not types:
        st.info("Ce calcul n'a aucun type de service.")
        st.stop()
    type_service, method, threshold = _controls(sel, types)
    chosen = engine_of_run(run, dept=sel.dept, fallback_to_proxy=True)
    data = views.siting_data(sel, chosen.engine.name)  # an uploaded list replaces the run's
    if data.upload_name is not None:
        st.info(f"Services du fichier importé **{data.upload_name}** pour ce département.")
    try:
        with st.spinner("Calcul de l'indice d'accessibilité…"):
            result = _index(sel, type_service, threshold, method,
                            (chosen.engine.name, data.data_key), chosen.engine, data)
    except CoverageError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(f"Moteur : {engine_label(chosen.engine.name)} — {chosen.note}.")
    _figures(result)
    geoms = state.dept_display_geometries(sel.run_dir, sel.stamp, sel.dept)
    services = data.services[data.services["type_service"].astype(str) == type_service]
    m = accessibility_map(geoms, result.communes, services=services, fictif=run.fictif,
                          tiles=sel.tiles)
    st.iframe(maps.map_html(m), height=MAP_HEIGHT_PX,
              alt=f"Carte de l'indice d'accessibilité, département {sel.dept}")
    bands = ("" if method == "2sfca" else " Bandes de décroissance : "
             + DecayBands.thirds(threshold).describe() + ".")
    st.caption(f"Gris : aucun service à {fr_minutes(threshold)} ou moins (indice 0). Classes : "
               "quintiles des communes du département dont l'indice est positif."
               + bands + " Voir docs/accessibilite.md.")
    _tables(result, sel.dept)


render()
