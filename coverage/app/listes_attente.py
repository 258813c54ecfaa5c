"""Page « Listes d'attente » (placeholder: filled by the waiting-lists work)."""

from __future__ import annotations

import streamlit as st

st.title("Listes d'attente")
st.info("Cette page sera remplie par l'analyse des listes d'attente.")
