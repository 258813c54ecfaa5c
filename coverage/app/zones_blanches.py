"""Page « Zones blanches »: key figures and sortable tables by commune, EPCI, density."""

from __future__ import annotations

import streamlit as st

from coverage.app import views
from coverage.labels import DISTANCE_COLUMN_TITLES, density_label, engine_label
from coverage.whitezones import distance_column

__all__: list[str] = []

shown = views.open_access_page("Zones blanches")
sel, engine, upload_name = shown.sel, shown.engine, shown.upload_name
st.caption(f"Seuil : {sel.threshold_min:g} min. Moteur : "
           f"{engine_label(engine)}."
           + (f" Services du fichier importé {upload_name}." if upload_name else ""))

views.show_key_figures(sel)

pct = st.column_config.NumberColumn("Taux de couverture", format="percent")
minutes = st.column_config.NumberColumn("Temps (min)", format="%.1f")
common = {
    "population": st.column_config.NumberColumn("Population", format="localized"),
    "population_couverte": st.column_config.NumberColumn("Pop. couverte", format="localized"),
    "taux_couverture": pct,
    "communes_zone_blanche": st.column_config.NumberColumn("Communes en ZB"),
    "population_zone_blanche": st.column_config.NumberColumn("Pop. en ZB", format="localized"),
    "minutes_mediane": st.column_config.NumberColumn("Temps médian (min)", format="%.1f"),
    "minutes_p90": st.column_config.NumberColumn("Temps P90 (min)", format="%.1f"),
    "population_rurale": st.column_config.NumberColumn("Pop. rurale", format="localized"),
    "population_rurale_zone_blanche": st.column_config.NumberColumn(
        "Pop. rurale en ZB", format="localized"),
}

tab_c, tab_e, tab_d = st.tabs(["Par commune", "Par EPCI", "Par classe de densité"])
with tab_c:
    table = views.commune_table(sel)
    distance = distance_column(table)  # the road km, or the proxy's estimate
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
                                                        format="%.1f")} if distance else {}),
            "moteur": "Moteur", "service": "Service le plus proche",
            "zone_blanche": st.column_config.CheckboxColumn(
                f"Zone blanche (> {sel.threshold_min:g} min)"),
        },
    )
    st.caption("Cliquez sur un en-tête de colonne pour trier. Temps vide : aucun service "
               "accessible.")
with tab_e:
    st.dataframe(views.level_table(sel, "epci"), hide_index=True, width="stretch",
                 key="table_epci",
                 column_config={"code_epci": "SIREN EPCI", "nom_epci": "EPCI", **common})
    st.caption("EPCI ayant au moins une commune dans le département, sur leurs communes du "
               "département. Temps médian / P90 pondérés par la population ; vide quand la "
               "part de population sans service accessible les rend infinis.")
with tab_d:
    dens = views.level_table(sel, "densite")
    dens["densite"] = dens["densite"].map(density_label)
    st.dataframe(dens, hide_index=True, width="stretch", key="table_densite",
                 column_config={"densite": "Densité (grille INSEE)", **common})
