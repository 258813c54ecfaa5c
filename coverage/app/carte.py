"""Page « Carte »: minutes to the nearest service, white zones, services, isochrones."""

from __future__ import annotations

import streamlit as st

from coverage.app import state, views
from coverage.labels import engine_label, type_label

__all__: list[str] = []

MAP_HEIGHT_PX = 700

shown = views.open_access_page("Carte")
sel, engine, upload_name = shown.sel, shown.engine, shown.upload_name
label = type_label(sel.type_service)
if upload_name:
    note = (state.upload_override(sel) or {}).get("note", "")
    st.info(f"Services du fichier importé **{upload_name}** ({note}).")

for note in views.empty_offer_notes(state.run_of(sel), sel.dept):
    st.warning(note)
views.show_key_figures(sel)

iso_available = views.has_isochrones(sel)
show_iso = st.toggle(
    "Afficher les bandes isochrones", value=False, key="show_isochrones",
    disabled=not iso_available or upload_name is not None,
    help=("Bandes de temps autour des services, calculées par le run."
          if iso_available else "Ce run n'a pas de couche d'isochrones."),
)
with st.spinner("Préparation de la carte…"):
    page = views.map_page_html(sel, show_isochrones=show_iso and iso_available)
st.iframe(page, height=MAP_HEIGHT_PX,
          alt=f"Carte des temps d'accès, {label}, département {sel.dept}")
st.caption(
    f"Zone blanche : commune à plus de {sel.threshold_min:g} min du service le plus proche, "
    f"ou sans service accessible (contour noir pointillé). Moteur : "
    f"{engine_label(engine)}. Survolez une commune pour son temps "
    "d'accès ; cliquez sur un service pour sa fiche. Pas de fond de carte par défaut "
    "(hors ligne) : voir « Fond de carte » dans la barre latérale."
)
