"""Page « Carte »: minutes to the nearest service, white zones, services, isochrones.

The map (an iframe of :func:`coverage.maps.access_map_and_legend`, cached per selection in
:func:`coverage.app.state.carte_map`) is drawn first, beside its legend (page text outside
the map): the browser draws it while the server still writes the rest of the page. Below
it: the isochrone toggle, the key figures and « Version texte de la carte », which gives the
same information to a screen reader or keyboard user (the key figures in sentences and the
table of white zones), built only when opened.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from coverage.app import state, upload, views
from coverage.labels import REASON_UNREACHABLE, engine_label, fr_int, fr_minutes, type_label

__all__: list[str] = []

MAP_HEIGHT_PX = 640
#: Session key of the isochrone toggle (read before the map, drawn below it).
ISOCHRONES_KEY = "show_isochrones"


def _minutes_text(value: float) -> str:
    return f"{value:.0f} min" if math.isfinite(value) else REASON_UNREACHABLE


def _white_zones_table(sel: state.Selection) -> pd.DataFrame:
    """Return the white zones of the selection as text columns (farthest first)."""
    table = views.commune_table(sel)
    white = table[table["zone_blanche"]]
    return pd.DataFrame({
        "Commune": white["nom"].astype(str),
        "Code INSEE": white["code_insee"].astype(str),
        "Population": [fr_int(p) for p in white["population"]],
        "Temps d'accès": [_minutes_text(float(m)) for m in white["minutes"]],
        "Service le plus proche": [str(s) if isinstance(s, str) else "—"
                                   for s in white.get("service", pd.Series(index=white.index))],
    }).reset_index(drop=True)


def _html_table(table: pd.DataFrame) -> str:
    """Return the table as one plain HTML ``<table>`` (text escaped).

    One element instead of ``st.table``, which renders every cell as Markdown: 1,000 cells
    of a large département cost the browser more than a second at each département switch.
    """
    body = table.to_html(index=False, escape=True, border=0, classes="zb-table")
    return ('<style>.zb-table{border-collapse:collapse;font-size:0.9rem}'
            '.zb-table th,.zb-table td{border-bottom:1px solid #ddd;padding:2px 8px;'
            'text-align:left}</style>' + body)


@st.cache_data(show_spinner=False, max_entries=64)
def _white_zones_html(sel: state.Selection, data_key: str) -> tuple[str, int]:
    """Return the white-zone table of the selection as HTML and its number of rows.

    ``data_key`` (``run`` or an uploaded file's token, :func:`state.data_key`) stands for
    the access rows read.
    """
    del data_key  # cache key only
    table = _white_zones_table(sel)
    return ("" if table.empty else _html_table(table)), len(table)


def _text_version(sel: state.Selection, figures: dict[str, Any], label: str) -> None:
    """Draw « Version texte de la carte »: key figures in sentences, white-zone table.

    Its content is written only while it is open (a click on its title reruns the page):
    a page load does not build and send the table of white zones.
    """
    box = st.expander("Version texte de la carte", expanded=False, key=views.TEXT_VERSION_KEY,
                      on_change="rerun")
    if not box.open:
        return
    with box:
        st.markdown(f"### Version texte de la carte — {label}, département {sel.dept}")
        if figures:
            st.markdown(
                f"- {fr_int(figures['population'])} habitants dans "
                f"{figures['communes']} communes.\n"
                f"- {figures['communes_zone_blanche']} communes en zone blanche (à plus de "
                f"{fr_minutes(sel.threshold_min)} du service le plus proche, ou sans service "
                f"accessible), soit {fr_int(figures['population_zone_blanche'])} habitants.\n"
                f"- Taux de couverture : {views.fmt_rate(float(figures['taux_couverture']))}.")
        block, count = _white_zones_html(sel, state.data_key(sel))
        if not count:
            st.markdown("Aucune commune en zone blanche.")
        else:
            st.markdown(f"#### Communes en zone blanche ({count}), les plus éloignées d'abord")
            st.html(block)


shown = views.open_access_page("Carte")
sel, engine, upload_name = shown.sel, shown.engine, shown.upload_name
label = type_label(sel.type_service)
if upload_name:
    note = (state.upload_override(sel) or {}).get("note", "")
    st.info(f"Services du fichier importé **{upload_name}** ({note}).")
fallback = upload.fallback_note(sel)
if fallback:
    st.warning(fallback)

for note in views.empty_offer_notes(state.run_of(sel), sel.dept):
    st.warning(note)

# The map first: its frame is sent, and drawn by the browser, before the rest of the page.
iso_available = views.has_isochrones(sel)
show_iso = bool(st.session_state.get(ISOCHRONES_KEY, False)) and iso_available
with st.spinner("Préparation de la carte…"):
    page, legend = state.carte_map(
        sel, views.ISOCHRONES_LAYER if show_iso else None, state.data_key(sel),
        views.type_rows(shown.access, sel.type_service), shown.access,
        state.services_for(sel), engine)
map_col, legend_col = st.columns([4, 1], gap="small")
with map_col:
    st.iframe(page, height=MAP_HEIGHT_PX,
              alt=f"Carte des temps d'accès, {label}, département {sel.dept}")
with legend_col:
    st.html(legend)
toggle_col, caption_col = st.columns([2, 3], vertical_alignment="top")
toggle_col.toggle(
    "Afficher les isochrones (limites des bandes de temps)", value=False,
    key=ISOCHRONES_KEY, disabled=not iso_available or upload_name is not None,
    help=("Limites des bandes de temps autour des services, calculées par le run, "
          "tracées en traits orange." if iso_available
          else "Ce run n'a pas de couche d'isochrones."),
)
caption_col.caption(
    f"Zone blanche : commune à plus de {fr_minutes(sel.threshold_min)} du service le plus proche, "
    f"ou sans service accessible (hachurée). Moteur : {engine_label(engine)}. "
    "Survolez une commune pour son temps d'accès ; cliquez sur un service pour sa fiche ; "
    "les noms de lieux se densifient en zoomant. Pas de fond de carte par défaut "
    "(hors ligne) : voir « Fond de carte » dans la barre latérale."
)
figures = views.show_key_figures(sel)
_text_version(sel, figures, label)
