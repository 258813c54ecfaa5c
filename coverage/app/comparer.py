"""Page « Comparer deux calculs »: what changed between another run (A) and the open one (B).

The open run of the sidebar is B (the newer); the page asks for the folder of A (the older,
e.g. last year's service list), calls :func:`coverage.export.compare.compare_runs` (compared
only on what both share, with French warnings for the rest) and draws the summary, the
communes entering or leaving white zones, the coverage change by département, EPCI and cour
d'appel, the services added or removed and the map
(:func:`coverage.export.compare.comparison_map`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from coverage import maps
from coverage.app import state, views
from coverage.errors import CoverageError
from coverage.export.compare import RunComparison, compare_runs, comparison_map, standalone_html
from coverage.labels import PLACEHOLDER_CHOICE, fr_minutes, type_label
from coverage.results import load_finished_run
from coverage.safe_text import spreadsheet_safe_frame

__all__: list[str] = []

MAP_HEIGHT_PX = 600
#: Titles of the coverage tabs, by level.
LEVEL_TITLES = {"departements": "Par département", "epci": "Par EPCI",
                "cours_appel": "Par cour d'appel"}


@st.cache_data(show_spinner=False, max_entries=8)
def _comparison(dir_a: str, stamp_a: float, dir_b: str, stamp_b: float) -> RunComparison:
    """Return the comparison of two run folders (cached on their manifests' stamps)."""
    del stamp_a, stamp_b  # cache keys only
    return compare_runs(state.load_run(dir_a, state.manifest_stamp(dir_a)),
                        state.load_run(dir_b, state.manifest_stamp(dir_b)))


def _other_run() -> str | None:
    """Draw the folder field of run A; return its resolved folder, None when not usable."""
    path = st.text_input(
        "Dossier du calcul à comparer (A, l'ancien)", key="compare_run_a",
        help="Dossier écrit par `zones-blanches run --out DOSSIER` (contient manifest.json), "
             "par exemple le calcul de l'an dernier.").strip()
    if not path:
        st.info("Indiquez le dossier d'un autre calcul : la page le compare au calcul ouvert "
                "dans la barre latérale (B, le nouveau).")
        return None
    try:
        run = load_finished_run(path)
    except CoverageError as exc:
        st.error(str(exc))
        return None
    return str(run.run_dir.resolve())


def _changes(cmp: RunComparison) -> None:
    """Draw the communes that change, filtered by type and threshold."""
    c1, c2 = st.columns(2)
    type_service = c1.selectbox("Type", cmp.types, key="compare_type", format_func=type_label,
                                placeholder=PLACEHOLDER_CHOICE)
    threshold = c2.selectbox("Seuil", cmp.thresholds, key="compare_threshold",
                             placeholder=PLACEHOLDER_CHOICE,
                             index=cmp.thresholds.index(30.0) if 30.0 in cmp.thresholds
                             else 0, format_func=fr_minutes)
    rows = cmp.changes[(cmp.changes["type_service"] == type_service)
                       & (cmp.changes["seuil_minutes"] == threshold)]
    number = st.column_config.NumberColumn
    views.show_table(rows, {
        "code_insee": "Code INSEE", "nom": "Commune", "code_dep": "Département",
        "changement": "Changement", "population": number("Population"),
        "minutes_a": number("Temps A (min)"), "minutes_b": number("Temps B (min)")},
        key="compare_communes",
        column_order=["code_insee", "nom", "code_dep", "population", "changement",
                      "minutes_a", "minutes_b"])
    st.caption("Temps vide : aucun service accessible.")


#: French titles of the columns of the coverage and services tables (A, B: the two runs).
COLUMN_TITLES: dict[str, str] = {
    "code_dep": "Département", "code_epci": "SIREN EPCI", "nom_epci": "EPCI",
    "cour_appel": "Cour d'appel", "type_service": "Type de service",
    "seuil_minutes": "Seuil (min)", "variation_taux_points": "Variation du taux (points)",
    "variation_population_zone_blanche": "Variation de la pop. en zone blanche",
    "service_id": "Identifiant", "changement": "Changement", "nom": "Nom",
    "code_insee": "Code INSEE", "capacite_a": "Capacité A", "capacite_b": "Capacité B",
    "detail": "Ce qui change",
    **{f"{code}_{run}": f"{title} {run.upper()}" for run in ("a", "b")
       for code, title in (("population", "Population"),
                           ("population_couverte", "Pop. couverte"),
                           ("taux_couverture", "Taux de couverture"),
                           ("communes_zone_blanche", "Communes en zone blanche"),
                           ("population_zone_blanche", "Pop. en zone blanche"))},
}


def _titles(columns: pd.Index) -> dict[str, Any]:
    """Return the column configuration giving each known column its French title."""
    return {str(c): COLUMN_TITLES[str(c)] for c in columns if str(c) in COLUMN_TITLES}


def render() -> None:
    """Draw the page (reads the sidebar's selection: the open run is B)."""
    sel = state.selection()
    run_b = state.run_of(sel)
    st.title("Comparer deux calculs")
    views.fictional_banner(run_b)
    dir_a = _other_run()
    if dir_a is None:
        st.stop()
        return
    try:
        with st.spinner("Comparaison des deux calculs…"):
            cmp = _comparison(dir_a, state.manifest_stamp(dir_a), sel.run_dir, sel.stamp)
    except CoverageError as exc:
        st.error(str(exc))
        st.stop()
        return
    for w in cmp.warnings:
        st.warning(w)
    st.markdown("\n".join(f"- {line.removeprefix('- ')}" for line in cmp.summary()
                          if not line.startswith("Attention")))
    _changes(cmp)
    tabs = st.tabs([LEVEL_TITLES[k] for k in cmp.coverage] + ["Services"])
    for tab, (name, table) in zip(tabs, cmp.coverage.items(), strict=False):
        with tab:
            views.show_table(
                table.assign(type_service=table["type_service"].map(type_label)),
                _titles(table.columns), key=f"compare_{name}")
    with tabs[-1]:
        views.show_table(cmp.services.assign(
            type_service=cmp.services["type_service"].map(type_label)),
            _titles(cmp.services.columns), key="compare_services")
    run_a = state.load_run(dir_a, state.manifest_stamp(dir_a))
    m = comparison_map(cmp, run_a, run_b)
    st.iframe(maps.map_html(m), height=MAP_HEIGHT_PX, alt="Carte des communes qui changent")
    st.caption("Vert : commune qui sort de la zone blanche ; rouge : qui y entre. Une couche "
               "par type et seuil (menu des couches en haut à droite).")
    c1, c2 = st.columns(2)
    c1.download_button("Communes qui changent (CSV)", key="compare_csv",
                       data=spreadsheet_safe_frame(cmp.changes).to_csv(index=False)
                       .encode("utf-8"), file_name="comparaison_communes.csv", mime="text/csv")
    c2.download_button("Carte autonome (HTML)", key="compare_html",
                       data=standalone_html(comparison_map(cmp, run_a, run_b, static_url=""))
                       .encode("utf-8"), file_name=f"comparaison_{Path(dir_a).name}.html",
                       mime="text/html")


render()
