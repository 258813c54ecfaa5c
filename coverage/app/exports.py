"""Page « Exports »: each file built on demand, one button per file, cached per run digest.

The tables, workbook, layers, map and report are made from the run as it is now.
"""

from __future__ import annotations

import streamlit as st

from coverage.app import state, views
from coverage.batch.outdir import EXPORTS_DIR
from coverage.errors import CoverageError
from coverage.export import export_status
from coverage.export.rapport import build_report, report_docx, report_html
from coverage.labels import fr_minutes, type_label

__all__: list[str] = []

PNG_PREVIEW_PX = 720

sel = state.selection()
run = state.run_of(sel)
st.title(f"Exports — département {sel.dept}")
views.fictional_banner(run, "Les fichiers exportés portent la même mention.")
if state.upload_override(sel) is not None:
    st.info("Les exports portent sur les services du run, pas sur le fichier importé.")
st.caption(
    f"Carte PNG : {type_label(sel.type_service)}, seuil {fr_minutes(sel.threshold_min)} "
    f"(sélection de la barre latérale). Moteur du run : {run.engine}. Export public : les "
    "petits effectifs des listes d'attente sont masqués (secret statistique)."
)
digest = views.run_digest_of(sel)
folder = run.run_dir / EXPORTS_DIR / sel.dept
if export_status(folder, digest).stale:
    st.warning(f"Les fichiers déjà écrits dans {folder} viennent d'un calcul antérieur : ils "
               "sont périmés (le prochain `zones-blanches export` les retire). Les fichiers "
               "ci-dessous sont faits à partir du calcul actuel.")
st.caption("Chaque fichier est préparé à la demande : cliquez sur « Préparer », puis "
           "téléchargez-le.")
#: What the files below are made from: a new selection or run asks for them again.
wanted = (sel.run_dir, digest, sel.dept, sel.type_service, sel.threshold_min)
ready: dict[str, tuple[str, bytes]] = {}
for key, (label, _fmt, mime) in views.EXPORT_ITEMS.items():
    state_key = f"export_prepare_{key}"
    if st.button(f"Préparer : {label}", key=f"build_{key}"):
        st.session_state[state_key] = wanted
    if st.session_state.get(state_key) != wanted:
        continue
    try:
        with st.spinner(f"Préparation : {label}…"):
            name, data = views.export_file(sel.run_dir, digest, sel.dept, key,
                                           sel.type_service, sel.threshold_min)
    except CoverageError as exc:
        st.error(f"Export impossible ({label}) : {exc}")
        continue
    ready[key] = (name, data)
    st.download_button(f"{label} — {name} ({len(data) / 1024:.0f} Ko)", data=data,
                       file_name=name, mime=mime, key=f"dl_{key}", on_click="ignore")
if "png" in ready:
    st.image(ready["png"][1], caption=ready["png"][0], width=PNG_PREVIEW_PX)

st.subheader("Rapport du département (SDSF)")
st.caption("Document Word (DOCX) et page HTML autonome : synthèse, cartes, communes en zone "
           "blanche, tableaux, listes d'attente (secret statistique), méthode et sources, "
           f"au seuil de {fr_minutes(sel.threshold_min)}.")
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
