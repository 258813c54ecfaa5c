"""Page « Zones blanches »: key figures and sortable tables by commune, EPCI, density.

Each table shows its main columns at a width that fits a 1440 px screen beside the sidebar;
its other columns are in « Autres colonnes » below it, in tables of a few columns each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from coverage.app import views
from coverage.labels import DISTANCE_COLUMN_TITLES, density_label, engine_label, fr_minutes
from coverage.schemas import COUVERTURE_DEPARTEMENTS
from coverage.whitezones import distance_column

__all__: list[str] = []

#: Columns per table in « Autres colonnes » (besides the row's name).
OTHER_COLUMNS_PER_TABLE = 5


def _fitted_table(table: pd.DataFrame, main: Sequence[str], name: str,
                  config: Mapping[str, Any], key: str) -> None:
    """Draw ``table``'s ``main`` columns, then its other columns in an expander.

    Parameters
    ----------
    table
        The table (every column).
    main
        Columns shown first, in this order (absent ones skipped); the first one names the
        row and starts each table of the expander too.
    name
        Column naming a row in the expander's tables (besides the first main column).
    config
        ``column_config`` of every column.
    key
        Widget key of the main table (the expander's tables get ``key_autres_i``).
    """
    shown = [c for c in main if c in table]
    views.show_table(table[shown], config, key=key)
    ids = [c for c in dict.fromkeys((shown[0], name)) if c in table]
    rest = [c for c in table.columns if c not in shown and c not in ids]
    if not rest:
        return
    with st.expander(f"Autres colonnes ({len(rest)})", expanded=False):
        for i in range(0, len(rest), OTHER_COLUMNS_PER_TABLE):
            cols = [*ids, *rest[i:i + OTHER_COLUMNS_PER_TABLE]]
            views.show_table(table[cols], config, key=f"{key}_autres_{i}")


shown = views.open_access_page("Zones blanches")
sel, engine, upload_name = shown.sel, shown.engine, shown.upload_name
st.caption(f"Seuil : {fr_minutes(sel.threshold_min)}. Moteur : "
           f"{engine_label(engine)}."
           + (f" Services du fichier importé {upload_name}." if upload_name else ""))

views.show_key_figures(sel)

pct = st.column_config.NumberColumn("Taux de couverture", format="percent")
#: Numbers written in French by :func:`views.show_table` (« 1 234,5 », « 12,3 % »), whatever
#: the browser's language; the columns still sort as numbers.
DECIMAL = "localized"
common = {
    "population": st.column_config.NumberColumn("Population", format="localized"),
    "population_couverte": st.column_config.NumberColumn("Pop. couverte", format="localized"),
    "taux_couverture": pct,
    "communes_zone_blanche": st.column_config.NumberColumn("Communes en ZB"),
    "population_zone_blanche": st.column_config.NumberColumn("Pop. en ZB", format="localized"),
    "minutes_mediane": st.column_config.NumberColumn("Temps médian (min)", format=DECIMAL),
    "minutes_p90": st.column_config.NumberColumn("Temps P90 (min)", format=DECIMAL),
    "population_rurale": st.column_config.NumberColumn("Pop. rurale", format="localized"),
    "population_rurale_zone_blanche": st.column_config.NumberColumn(
        "Pop. rurale en ZB", format="localized"),
    **{f.name: st.column_config.NumberColumn(f.title, format="localized")  # proxy ranges
       for f in COUVERTURE_DEPARTEMENTS.fields if f.name.endswith(("_min", "_max"))},
}

#: Main columns of each table, by order of importance; the others go under « Autres
#: colonnes ».
LEVEL_MAIN = ("population", "population_couverte", "taux_couverture", "communes_zone_blanche",
              "population_zone_blanche", "minutes_mediane", "minutes_p90")

tab_c, tab_e, tab_d = st.tabs(["Par commune", "Par EPCI", "Par classe de densité"])
with tab_c:
    table = views.commune_table(sel)
    distance = distance_column(table)  # the road km, or the proxy's estimate
    table = table.round({"minutes": 1, **({distance: 1} if distance else {})})  # one decimal
    table = table.drop(columns=[c for c in DISTANCE_COLUMN_TITLES if c in table and c != distance])
    _fitted_table(
        table, ["nom", "code_insee", "population", "minutes", "zone_blanche", "service",
                *([distance] if distance else [])], "code_insee",
        {
            "code_insee": st.column_config.TextColumn("Code INSEE", width=80),
            "nom": st.column_config.TextColumn("Commune", width=180),
            "population": st.column_config.NumberColumn("Population", format="localized",
                                                        width=90),
            "densite": "Densité", "rural": "Rurale", "nom_epci": "EPCI",
            "minutes": st.column_config.NumberColumn("Temps (min)", format=DECIMAL,
                                                     width=90),
            **({distance: st.column_config.NumberColumn(
                "Distance (km)", format=DECIMAL, width=100,
                help=DISTANCE_COLUMN_TITLES[distance])} if distance else {}),
            "moteur": "Moteur",
            "service": st.column_config.TextColumn("Service le plus proche", width=270),
            "zone_blanche": st.column_config.CheckboxColumn(
                "Zone blanche", width=100,
                help=f"À plus de {fr_minutes(sel.threshold_min)} du service le plus proche, "
                     "ou sans service accessible"),
        },
        key="table_communes")
    st.caption("Cliquez sur un en-tête de colonne pour trier. Temps vide : aucun service "
               "accessible. Densité, EPCI et moteur : sous « Autres colonnes ».")
with tab_e:
    _fitted_table(
        views.level_table(sel, "epci").round({"minutes_mediane": 1, "minutes_p90": 1}),
        ["nom_epci", *LEVEL_MAIN[:-1]], "code_epci",
        {
            "code_epci": "SIREN EPCI",
            "nom_epci": st.column_config.TextColumn("EPCI", width=250), **common,
            "population": st.column_config.NumberColumn(
                "Population (dép.)", format="localized",
                help="Population des communes de l'EPCI situées dans le département"),
            "population_epci": st.column_config.NumberColumn(
                "Population de l'EPCI entier", format="localized"),
            "population_zone_blanche_epci": st.column_config.NumberColumn(
                "Pop. en ZB de l'EPCI entier", format="localized"),
            "taux_couverture_epci": st.column_config.NumberColumn(
                "Taux de couverture de l'EPCI entier", format="percent"),
            "couverture_partielle": st.column_config.CheckboxColumn(
                "EPCI aussi hors du département"),
            "departements_manquants": "Autres départements de l'EPCI",
        },
        key="table_epci")
    st.caption("EPCI ayant au moins une commune dans le département : chaque ligne porte sur "
               "les communes du département de l'EPCI (comme le classeur XLSX et le "
               "rapport) ; les colonnes « EPCI entier » (sous « Autres colonnes ») donnent "
               "l'EPCI sur toutes ses communes du calcul. Temps médian / P90 pondérés par la "
               "population ; vide quand la part de population sans service accessible les "
               "rend infinis.")
with tab_d:
    dens = views.level_table(sel, "densite").round({"minutes_mediane": 1, "minutes_p90": 1})
    dens["densite"] = dens["densite"].map(density_label)
    _fitted_table(dens, ["densite", *LEVEL_MAIN], "densite",
                  {"densite": st.column_config.TextColumn("Densité (grille INSEE)",
                                                          width=170), **common},
                  key="table_densite")
