"""Upload of a services CSV: validate it with the loader, recompute the département's access.

The file goes through :func:`coverage.io.services.load_services` (the same validation as the
CLI) against the run's communes. Problems are shown in the page, one line per file / row /
column, never as a traceback: a short message in the sidebar, and the table of problems
(ligne, colonne, problème, in French) at the top of the main area, where it is wide enough to
read (:func:`render_upload_problems`). A valid file replaces the run's services for the selected
département only, in this browser session: the access times are recomputed with the run's
engine (:func:`coverage.routing.engine_of_run`: ``road`` when its road file is still
readable, else ``proxy``, and the page says so), then the map and the tables use them.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from coverage.app import state
from coverage.errors import CoverageError, InputError, Problem
from coverage.io.services import load_services
from coverage.io.tables import Loaded
from coverage.labels import fr_decimal
from coverage.results import RunOutputs, run_service_types, run_settings
from coverage.routing import engine_of_run
from coverage.whitezones import nearest_services

__all__ = [
    "MAX_UPLOAD_BYTES",
    "PROBLEMS_KEY",
    "RecomputedAccess",
    "UploadedFile",
    "fallback_note",
    "load_uploaded",
    "problems_frame",
    "problems_table",
    "recompute_access",
    "render_services_upload",
    "render_upload_problems",
]

log = logging.getLogger(__name__)

#: Largest services file accepted by the app, bytes.
MAX_UPLOAD_BYTES = 5_000_000
#: Session key of the last refused services file: name, message, table of problems.
PROBLEMS_KEY = "zb_upload_problems"


@dataclass(frozen=True)
class UploadedFile:
    """A file received from the browser.

    Attributes
    ----------
    name
        Its name as uploaded (only the last path part is kept).
    content
        Its bytes.
    """

    name: str
    content: bytes

    @property
    def safe_name(self) -> str:
        """Return the file name without any folder part (``upload`` when empty)."""
        return Path(self.name).name or "upload"


@dataclass(frozen=True)
class RecomputedAccess:
    """Access of a département's communes to uploaded services.

    Attributes
    ----------
    access
        Rows of the ``acces_communes`` contract (minutes, NaN when unreachable).
    engine
        Engine name, ``road`` or ``proxy``.
    note
        French note naming the engine and why it was chosen.
    """

    access: pd.DataFrame
    engine: str
    note: str


def problems_frame(exc: InputError) -> pd.DataFrame:
    """Return one row per problem of an :class:`InputError`.

    Parameters
    ----------
    exc
        The loader's error.

    Returns
    -------
    pandas.DataFrame
        Columns ``fichier, ligne, colonne, attendu, trouvé``.
    """
    return pd.DataFrame(
        {
            "fichier": [Path(p.file).name for p in exc.problems],
            "ligne": [p.row for p in exc.problems],
            "colonne": [p.column or "" for p in exc.problems],
            "attendu": [p.expected for p in exc.problems],
            "trouvé": [p.found or "" for p in exc.problems],
        }
    )


def problems_table(exc: InputError) -> pd.DataFrame:
    """Return the problems of an :class:`InputError` as a table a planner reads.

    Parameters
    ----------
    exc
        The loader's error.

    Returns
    -------
    pandas.DataFrame
        Columns ``Ligne`` (data row, header excluded; « — » for the whole file),
        ``Colonne`` (« — » when not about one column) and ``Problème`` (« attendu …, trouvé
        « … » »), as text.
    """
    def message(p: Problem) -> str:
        text = f"attendu {p.expected}"
        return text + (f", trouvé « {p.found} »" if p.found is not None else "")

    return pd.DataFrame({
        "Ligne": ["—" if p.row is None else str(p.row) for p in exc.problems],
        "Colonne": [p.column or "—" for p in exc.problems],
        "Problème": [message(p) for p in exc.problems],
    })


def _refused(name: str, message: str, table: pd.DataFrame | None = None) -> None:
    """Record a refused file for the main area and say so briefly in the sidebar."""
    st.session_state[PROBLEMS_KEY] = {"name": name, "message": message, "table": table}
    st.error(f"{name} : fichier refusé — {message} Détail dans la page.")


def render_upload_problems() -> None:
    """Draw the last refused services file in the main area: message and problem table."""
    refused = st.session_state.get(PROBLEMS_KEY)
    if not refused:
        return
    st.error(f"Fichier de services **{refused['name']}** refusé : {refused['message']} "
             "Les pages utilisent les services du run. Corrigez le fichier puis importez-le "
             "à nouveau (barre latérale, « Tester une autre liste de services »).")
    table = refused.get("table")
    if table is not None and len(table):
        st.table(table)


def fallback_note(sel: state.Selection) -> str | None:
    """Return the note of a map that shows the run's services instead of an uploaded file.

    Parameters
    ----------
    sel
        The sidebar's selection.

    Returns
    -------
    str or None
        A French sentence when the last file uploaded was refused (the map then shows the
        run's services of the département); None when the map shows what was asked for.
    """
    refused = st.session_state.get(PROBLEMS_KEY)
    if refused:
        return (f"Le fichier {refused['name']} a été refusé : pour le département "
                f"{sel.dept}, la carte montre les services du run.")
    return None


def load_uploaded(upload: UploadedFile, loader: Callable[..., Loaded], **kwargs: Any
                  ) -> Loaded:
    """Validate an uploaded file with a library loader, through a temporary copy.

    Parameters
    ----------
    upload
        The uploaded file (its extension chooses the reader).
    loader
        :func:`coverage.io.services.load_services`, :func:`coverage.io.waiting.load_waiting`…
    **kwargs
        Passed on to the loader (``communes``, ``settings``).

    Returns
    -------
    Loaded
        The loader's result; warnings name the uploaded file, not the temporary copy.

    Raises
    ------
    InputError
        The loader's, unchanged.
    """
    with tempfile.TemporaryDirectory(prefix="zb-upload-") as tmp:
        path = Path(tmp) / upload.safe_name
        path.write_bytes(upload.content)
        loaded = loader(path, **kwargs)
    warnings = [w.replace(str(path), upload.safe_name) for w in loaded.warnings]
    return replace(loaded, warnings=warnings, path=upload.safe_name)


def recompute_access(run: RunOutputs, dept: str, services: gpd.GeoDataFrame
                     ) -> RecomputedAccess:
    """Time a département's communes to the given services with the run's engine.

    Parameters
    ----------
    run
        The open run (its engine is rebuilt by :func:`coverage.routing.engine_of_run`,
        falling back to ``proxy`` when the road file is gone).
    dept
        Département code.
    services
        Service points, EPSG:4326.

    Returns
    -------
    RecomputedAccess
        The ``acces_communes`` rows of every service type of the run, the engine and a note.
    """
    communes = run.communes[run.communes["code_dep"].astype(str) == dept]
    types = run_service_types(run)
    chosen = engine_of_run(run, dept=dept, fallback_to_proxy=True)
    access = nearest_services(communes, services, engine=chosen.engine, service_types=types)
    return RecomputedAccess(access.reset_index(drop=True), str(chosen.engine.name),
                            chosen.note)


def _validated(upload: UploadedFile, run: RunOutputs, dept: str
               ) -> tuple[Loaded, RecomputedAccess] | None:
    """Validate and recompute, showing problems in the page; None when it failed."""
    settings = replace(run_settings(run), max_input_bytes=MAX_UPLOAD_BYTES)
    try:
        loaded = load_uploaded(upload, load_services, communes=run.communes,
                               settings=settings)
        with st.spinner("Recalcul des temps d'accès du département…"):
            recomputed = recompute_access(run, dept, loaded.data)
    except InputError as exc:
        _refused(upload.name, f"{len(exc.problems)} problème(s).", problems_table(exc))
        return None
    except CoverageError as exc:
        _refused(upload.name, f"{exc}.")
        return None
    except Exception as exc:  # shown in the page, never as a traceback
        log.exception("échec du recalcul avec %s", upload.name)
        _refused(upload.name, f"le recalcul a échoué ({type(exc).__name__} : {exc}).")
        return None
    return loaded, recomputed


def render_services_upload(sel: state.Selection, run: RunOutputs) -> None:
    """Draw the upload widget, its validation messages and the recomputation (sidebar).

    Parameters
    ----------
    sel
        The sidebar's selection (run folder and département).
    run
        The open run.
    """
    st.caption(
        "CSV au format du modèle `data/services/modele_services.csv` "
        f"(≤ {MAX_UPLOAD_BYTES // 1_000_000} Mo). Remplace les services du run pour ce "
        "département, dans cette session seulement."
    )
    f = st.file_uploader("Fichier de services (CSV)", type=["csv"], key="services_upload")
    current = st.session_state.get(state.UPLOAD_KEY)
    if f is None:
        st.session_state.pop(PROBLEMS_KEY, None)
        if current is not None:
            st.session_state.pop(state.UPLOAD_KEY, None)
        return
    token = (f.file_id, sel.run_dir, sel.dept)
    if current is not None and current.get("token") == token:
        st.success(f"{current['name']} : {len(current['services'])} services, temps "
                   f"recalculés ({current['note']}).")
        return
    if f.size > MAX_UPLOAD_BYTES:
        _refused(f.name, f"{fr_decimal(f.size / 1e6)} Mo, au-delà de la limite de "
                 f"{MAX_UPLOAD_BYTES / 1e6:.0f} Mo.")
        return
    done = _validated(UploadedFile(f.name, f.getvalue()), run, sel.dept)
    if done is None:
        return
    st.session_state.pop(PROBLEMS_KEY, None)
    loaded, recomputed = done
    for w in loaded.warnings:
        st.warning(w)
    st.session_state[state.UPLOAD_KEY] = {
        "token": token, "run_dir": sel.run_dir, "dept": sel.dept, "name": f.name,
        "services": loaded.data, "access": recomputed.access, "engine": recomputed.engine,
        "note": recomputed.note,
    }
    st.success(f"{f.name} : {len(loaded.data)} services, temps recalculés "
               f"({recomputed.note}).")
