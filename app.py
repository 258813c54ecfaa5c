"""Streamlit router of zones-blanches: page config, shared sidebar, navigation.

Start it with ``zones-blanches app`` (or ``streamlit run app.py``). Pages live in
``coverage/app/``; they only read the sidebar's selection, call the library and draw.
"""

from __future__ import annotations

import streamlit as st

from coverage.app.sidebar import render_sidebar

st.set_page_config(
    page_title="Zones blanches — médiation familiale et espaces de rencontre",
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = [
    st.Page("coverage/app/carte.py", title="Carte", default=True),
    st.Page("coverage/app/zones_blanches.py", title="Zones blanches", url_path="zones_blanches"),
    st.Page("coverage/app/nouveau_site.py", title="Nouveau site", url_path="nouveau_site"),
    st.Page("coverage/app/listes_attente.py", title="Listes d'attente",
            url_path="listes_attente"),
    st.Page("coverage/app/exports.py", title="Exports", url_path="exports"),
    st.Page("coverage/app/a_propos.py", title="À propos", url_path="a_propos"),
]

page = st.navigation(PAGES)
render_sidebar()
page.run()
