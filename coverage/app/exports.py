"""Page « Exports »: the département's tables, workbook, layers and map as downloads."""

from __future__ import annotations

import streamlit as st

from coverage.app import state, views
from coverage.errors import CoverageError
from coverage.export.rapport import build_report, report_docx, report_html
from coverage.labels import type_label

__all__: list[str] = []

PNG_PREVIEW_PX = 720

sel = state.selection()
run = state.run_of(sel)
st.title(f"Exports — département {sel.dept}")
views.fictional_banner(run, "Les fichiers exportés portent la même mention.")
if state.upload_override(sel) is not None:
    st.info("Les exports portent sur les services du run, pas sur le fichier importé.")
st.caption(
    f"Carte PNG : {type_label(sel.type_service)}, seuil {sel.threshold_min:g} min "
    f"(sélection de la barre latérale). Moteur du run : {run.engine}. Export public : les "
    "petits effectifs des listes d'attente sont masqués (secret statistique)."
)
try:
    with st.spinner("Préparation des fichiers…"):
        files = views.export_files(sel.run_dir, sel.stamp, sel.dept, sel.type_service,
                                   sel.threshold_min)
except CoverageError as exc:
    st.error(f"Export impossible : {exc}")
    st.stop()

for key, (label, _fmt, mime) in views.EXPORT_ITEMS.items():
    if key not in files:
        st.warning(f"{label} : non produit par cet export.")
        continue
    name, data = files[key]
    st.download_button(f"{label} — {name} ({len(data) / 1024:.0f} Ko)", data=data,
                       file_name=name, mime=mime, key=f"dl_{key}", on_click="ignore")
if "png" in files:
    st.image(files["png"][1], caption=files["png"][0], width=PNG_PREVIEW_PX)

st.subheader("Rapport du département (SDSF)")
st.caption("Document Word (DOCX) et page HTML autonome : synthèse, cartes, communes en zone "
           "blanche, tableaux, listes d'attente (secret statistique), méthode et sources, "
           f"au seuil de {sel.threshold_min:g} min.")
if st.button("Préparer le rapport", key="rapport_build"):
    try:
        with st.spinner("Rédaction du rapport…"):
            report = build_report(run, sel.dept, seuil=sel.threshold_min)
            rapport_docx, rapport_html = report_docx(report), report_html(report)
    except CoverageError as exc:
        st.error(f"Rapport impossible : {exc}")
    else:
        st.download_button(
            f"Rapport DOCX — {sel.dept}_rapport.docx", data=rapport_docx,
            file_name=f"{sel.dept}_rapport.docx", key="dl_rapport_docx", on_click="ignore",
            mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        st.download_button(f"Rapport HTML — {sel.dept}_rapport.html",
                           data=rapport_html.encode("utf-8"),
                           file_name=f"{sel.dept}_rapport.html", mime="text/html",
                           key="dl_rapport_html", on_click="ignore")
