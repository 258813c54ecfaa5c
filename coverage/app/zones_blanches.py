"""Page « Zones blanches »: key figures and sortable tables by commune, EPCI, density."""

from __future__ import annotations

import streamlit as st

from coverage.app import views
from coverage.labels import DISTANCE_COLUMN_TITLES, density_label, engine_label, fr_minutes
from coverage.schemas import COUVERTURE_DEPARTEMENTS
from coverage.whitezones import distance_column

__all__: list[str] = []

shown = views.open_access_page("Zones blanches")
sel, engine, upload_name = shown.sel, shown.engine, shown.upload_name
st.caption(f"Seuil : {fr_minutes(sel.threshold_min)}. Moteur : "
           f"{engine_label(engine)}."
           + (f" Services du fichier importé {upload_name}." if upload_name else ""))

views.show_key_figures(sel)

pct = st.column_config.NumberColumn("Taux de couverture", format="percent")
#: Decimals in the browser's locale (« 12,3 » in French); printf formats write « 12.3 ».
DECIMAL = "localized"
minutes = st.column_config.NumberColumn("Temps (min)", format=DECIMAL)
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

tab_c, tab_e, tab_d = st.tabs(["Par commune", "Par EPCI", "Par classe de densité"])
with tab_c:
    table = views.commune_table(sel)
    distance = distance_column(table)  # the road km, or the proxy's estimate
    table = table.round({"minutes": 1, **({distance: 1} if distance else {})})  # one decimal
    st.dataframe(
        table, hide_index=True, width="stretch", key="table_communes",
        column_order=["code_insee", "nom", "population", "minutes", "zone_blanche", "service",
                      *([distance] if distance else []), "densite", "rural", "nom_epci",
                      "moteur"],
        column_config={
            "code_insee": "Code INSEE", "nom": "Commune",
            "population": common["population"], "densite": "Densité", "rural": "Rurale",
            "nom_epci": "EPCI", "minutes": minutes,
            **({distance: st.column_config.NumberColumn(DISTANCE_COLUMN_TITLES[distance],
                                                        format=DECIMAL)} if distance else {}),
            "moteur": "Moteur", "service": "Service le plus proche",
            "zone_blanche": st.column_config.CheckboxColumn(
                f"Zone blanche (> {fr_minutes(sel.threshold_min)})"),
        },
    )
    st.caption("Cliquez sur un en-tête de colonne pour trier. Temps vide : aucun service "
               "accessible.")
with tab_e:
    st.dataframe(views.level_table(sel, "epci").round({"minutes_mediane": 1,
                                                       "minutes_p90": 1}),
                 hide_index=True, width="stretch",
                 key="table_epci",
                 column_config={
                     "code_epci": "SIREN EPCI", "nom_epci": "EPCI", **common,
                     "population": st.column_config.NumberColumn(
                         "Population (communes du département)", format="localized"),
                     "population_epci": st.column_config.NumberColumn(
                         "Population de l'EPCI entier", format="localized"),
                     "population_zone_blanche_epci": st.column_config.NumberColumn(
                         "Pop. en ZB de l'EPCI entier", format="localized"),
                     "taux_couverture_epci": st.column_config.NumberColumn(
                         "Taux de couverture de l'EPCI entier", format="percent"),
                     "couverture_partielle": st.column_config.CheckboxColumn(
                         "EPCI aussi hors du département"),
                     "departements_manquants": "Autres départements de l'EPCI",
                 })
    st.caption("EPCI ayant au moins une commune dans le département : chaque ligne porte sur "
               "les communes du département de l'EPCI (comme le classeur XLSX et le "
               "rapport) ; les colonnes « EPCI entier » donnent l'EPCI sur toutes ses "
               "communes du calcul. Temps médian / P90 pondérés par la population ; vide "
               "quand la part de population sans service accessible les rend infinis.")
with tab_d:
    dens = views.level_table(sel, "densite").round({"minutes_mediane": 1, "minutes_p90": 1})
    dens["densite"] = dens["densite"].map(density_label)
    st.dataframe(dens, hide_index=True, width="stretch", key="table_densite",
                 column_config={"densite": "Densité (grille INSEE)", **common})
