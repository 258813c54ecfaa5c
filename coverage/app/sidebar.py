"""The shared sidebar: data set, département, service type, threshold, basemap, upload.

Called by ``app.py`` before the selected page runs; it stores a :class:`state.Selection` in
the session state, which the pages read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

from coverage import maps, results
from coverage.app import state, upload
from coverage.errors import CoverageError
from coverage.labels import (
    DEMO_CHOICE,
    FICTIONAL_SIDEBAR,
    PLACEHOLDER_CHOICE,
    engine_label,
    fr_minutes,
    type_label,
)
from coverage.results import RunOutputs
from coverage.settings import NO_SERVICE

__all__ = ["DEPT_PARAM", "RUN_CHOICE", "render_sidebar"]

log = logging.getLogger(__name__)

RUN_CHOICE = "Dossier de sortie d'un run"
#: Query parameter of the URL that names the département shown (``?dep=48``).
DEPT_PARAM = "dep"
#: Threshold selected first when the run has it, minutes.
DEFAULT_THRESHOLD_MIN = 30.0


def _fmt_threshold(t: float) -> str:
    return fr_minutes(t)


def _open_run(choice: str) -> tuple[str, float] | None:
    """Resolve the data-set choice to (run folder, manifest stamp), running the demo once."""
    if choice == DEMO_CHOICE:
        # Read at call time: tests point the demo folder elsewhere.
        out = str(results.DEMO_RUN_DIR)
        stamp = state.manifest_stamp(out)
        if stamp == 0.0:
            with st.spinner("Premier lancement : calcul de la démo (territoire fictif)…"):
                stamp = state.ensure_demo_run(out)
        return out, stamp
    default = state.initial_run_dir() or ""
    path = st.sidebar.text_input(
        "Dossier du run", value=default, key="run_dir",
        help="Dossier écrit par `zones-blanches run --out DOSSIER` (contient manifest.json).",
    ).strip()
    if not path:
        st.sidebar.info("Indiquez le dossier de sortie d'un run.")
        return None
    stamp = state.manifest_stamp(path)
    if stamp == 0.0:
        st.sidebar.error(f"{path} : pas de manifest.json, ce n'est pas un run terminé.")
        return None
    return str(Path(path).resolve()), stamp


def _opened_run() -> tuple[str, float, RunOutputs] | None:
    """Draw the data-set choice and open its run: (folder, stamp, run), None when none."""
    sb = st.sidebar
    initial = state.initial_run_dir()
    is_demo_dir = initial is None or (
        Path(initial).resolve() == Path(results.DEMO_RUN_DIR).resolve()
    )
    choice = sb.radio(
        "Jeu de données", (DEMO_CHOICE, RUN_CHOICE), key="dataset",
        index=0 if is_demo_dir else 1,
    )
    try:
        opened = _open_run(str(choice))
        if opened is None:
            return None
        run_dir, stamp = opened
        return run_dir, stamp, state.load_run(run_dir, stamp)
    except CoverageError as exc:
        sb.error(str(exc))
        return None


def _tiles() -> maps.Tiles | None:
    """Draw the optional basemap box; the basemap, None when no URL is given."""
    with st.sidebar.expander("Fond de carte (optionnel)"):
        url = st.text_input(
            "URL de tuiles", value=os.environ.get(state.ENV_TILES_URL, ""), key="tiles_url",
            help="Modèle XYZ, ex. http://127.0.0.1:8080/{z}/{x}/{y}.png. Vide = pas de fond : "
                 "la carte ne fait aucune requête hors de l'application.",
        ).strip()
        attribution = st.text_input(
            "Attribution", value=os.environ.get(state.ENV_TILES_ATTRIBUTION, ""),
            key="tiles_attr", help="Texte affiché tel quel sur la carte (pas de HTML).",
        ).strip()
        if not url:
            return None
        try:  # the map escapes the attribution; the URL must be http(s)://host/…
            return maps.Tiles(url, attribution)
        except CoverageError as exc:
            st.error(str(exc))
            return None


def _dept_from_url(depts: list[str]) -> None:
    """Select the URL's département (``?dep=48``) when a session opens, if the run has it.

    The sidebar writes the département shown back into the URL: a reload, a bookmark or a
    link opens the app on that département instead of the run's first one.
    """
    wanted = st.query_params.get(DEPT_PARAM)
    if "dept" not in st.session_state and wanted in depts:
        st.session_state["dept"] = wanted


def render_sidebar() -> state.Selection | None:
    """Draw the shared sidebar and store the selection.

    Returns
    -------
    state.Selection or None
        The selection (also stored in the session state), None when no run is open.
    """
    sb = st.sidebar
    sb.header("Zones blanches")
    opened = _opened_run()
    if opened is None:
        st.session_state.pop(state.SELECTION_KEY, None)
        return None
    run_dir, stamp, run = opened
    if run.fictif:
        sb.warning(FICTIONAL_SIDEBAR)

    depts, names, run_types, thresholds = state.run_choices(run_dir, stamp)  # once per run
    _dept_from_url(depts)
    dept = sb.selectbox("Département", depts, key="dept",
                        placeholder=PLACEHOLDER_CHOICE,
                        format_func=lambda d: f"{d} — {names[d]}" if names.get(d) else d)
    types = [*run_types, NO_SERVICE]
    type_service = sb.selectbox("Type de service", types, key="type_service",
                                placeholder=PLACEHOLDER_CHOICE,
                                format_func=type_label)
    default_t = (DEFAULT_THRESHOLD_MIN if DEFAULT_THRESHOLD_MIN in thresholds
                 else thresholds[len(thresholds) // 2])
    threshold = sb.selectbox("Seuil de zone blanche", thresholds, key="threshold",
                             placeholder=PLACEHOLDER_CHOICE,
                             index=thresholds.index(default_t), format_func=_fmt_threshold)
    sb.caption(f"Moteur du run — {engine_label(run.engine) if run.engine else '?'}")

    if st.query_params.get(DEPT_PARAM) != str(dept):
        st.query_params[DEPT_PARAM] = str(dept)
    sel = state.Selection(
        run_dir=run_dir, stamp=stamp, dept=str(dept), type_service=str(type_service),
        threshold_min=float(threshold), tiles=_tiles(),
    )
    with sb.expander("Tester une autre liste de services"):
        upload.render_services_upload(sel, run)
    upload.render_upload_problems()  # main area: wide enough for the table of problems
    st.session_state[state.SELECTION_KEY] = sel
    return sel
