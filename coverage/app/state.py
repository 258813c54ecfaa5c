"""Shared state of the app: which run is open, what the sidebar selected, cached data.

Pages only read :func:`selection` and call the cached helpers here, which call the library
(:mod:`coverage.results`, :mod:`coverage.whitezones`, :mod:`coverage.maps`, …). Cached
functions take hashable arguments: the run folder as a string and the manifest's
modification time (``stamp``), so a rerun of the batch into the same folder invalidates
them.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from coverage import maps
from coverage.settings import REPO_ROOT

if TYPE_CHECKING:
    from coverage.results import RunOutputs

log = logging.getLogger(__name__)

#: Environment variable naming the run folder the app opens first (set by ``launch_app``).
ENV_RUN_DIR = "ZONES_BLANCHES_RUN_DIR"
#: Environment variable of an optional basemap tile URL (``https://…/{z}/{x}/{y}.png``).
ENV_TILES_URL = "ZONES_BLANCHES_TILES_URL"
#: Environment variable of the basemap attribution.
ENV_TILES_ATTRIBUTION = "ZONES_BLANCHES_TILES_ATTRIBUTION"
#: Run folder of the demo (the default ``--out`` of ``zones-blanches run``).
DEMO_RUN_DIR = REPO_ROOT / "sorties" / "demo"

SELECTION_KEY = "zb_selection"
UPLOAD_KEY = "zb_upload"


@dataclass(frozen=True)
class Selection:
    """What the shared sidebar selected.

    Attributes
    ----------
    run_dir
        Run output folder (str, hashable for the caches).
    stamp
        Modification time of the run's manifest (cache key).
    dept
        Département code.
    type_service
        Service type.
    threshold_min
        White-zone threshold, minutes.
    tiles
        Optional basemap, None by default.
    """

    run_dir: str
    stamp: float
    dept: str
    type_service: str
    threshold_min: float
    tiles: maps.Tiles | None = None


def initial_run_dir() -> str | None:
    """Run folder given at launch (``zones-blanches app --run``), or None."""
    value = os.environ.get(ENV_RUN_DIR, "").strip()
    return value or None


def manifest_stamp(run_dir: str | Path) -> float:
    """Modification time of the run's ``manifest.json`` (0.0 when absent)."""
    p = Path(run_dir) / "manifest.json"
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner=False)
def _demo_lock() -> threading.Lock:
    """One lock per server process: two sessions never run the demo batch together."""
    return threading.Lock()


def ensure_demo_run(out_dir: str) -> float:
    """Run the demo batch into ``out_dir`` when it holds no finished run.

    Returns
    -------
    float
        The manifest stamp of the run (a later batch into the same folder changes it, which
        invalidates the caches keyed on it).
    """
    with _demo_lock():
        if manifest_stamp(out_dir) == 0.0:
            from coverage.batch import run
            from coverage.io.inputs import load_inputs

            log.info("no demo run in %s: running the demo batch", out_dir)
            run(load_inputs(), out_dir=Path(out_dir), workers=1)
    return manifest_stamp(out_dir)


@st.cache_resource(show_spinner=False, max_entries=4)
def load_run(run_dir: str, stamp: float) -> RunOutputs:
    """The run read from its folder (shared, read-only: never modify it)."""
    from coverage.results import RunOutputs

    del stamp  # cache key only
    return RunOutputs.load(run_dir)


def run_of(sel: Selection) -> RunOutputs:
    """The run of the current selection."""
    return load_run(sel.run_dir, sel.stamp)


def selection() -> Selection:
    """The sidebar's current selection (set by ``app.py`` before the page runs)."""
    sel = st.session_state.get(SELECTION_KEY)
    if sel is None:
        st.error("Aucune donnée chargée : choisissez un jeu de données dans la barre latérale.")
        st.stop()
    assert isinstance(sel, Selection)
    return sel


def run_depts(run: RunOutputs) -> list[str]:
    """Département codes of a run (manifest, else the communes)."""
    depts = run.depts or sorted(run.communes["code_dep"].astype(str).unique())
    return sorted(depts)


def dept_names(run: RunOutputs) -> dict[str, str]:
    """Département code → name, from the run's communes (``nom_dep``) when present."""
    c = run.communes
    if "nom_dep" not in c:
        return {}
    pairs = c[["code_dep", "nom_dep"]].dropna().drop_duplicates("code_dep")
    return dict(zip(pairs["code_dep"].astype(str), pairs["nom_dep"].astype(str), strict=False))


def run_types(run: RunOutputs) -> list[str]:
    """Service types of a run, in the order of the settings."""
    acc = run.tables.get("acces_communes")
    types = [] if acc is None else [str(t) for t in acc["type_service"].unique()]
    from coverage.settings import SERVICE_TYPES

    return [t for t in SERVICE_TYPES if t in types] + sorted(
        t for t in types if t not in SERVICE_TYPES
    )


def run_thresholds(run: RunOutputs) -> list[float]:
    """Thresholds of a run, minutes (manifest, else the white-zone table)."""
    th = run.thresholds
    if not th and "zones_blanches" in run.tables:
        th = [float(t) for t in run.tables["zones_blanches"]["seuil_minutes"].unique()]
    if not th:
        from coverage.settings import Settings

        th = list(Settings().thresholds_min)
    return sorted(set(th))


def upload_override(sel: Selection) -> dict[str, Any] | None:
    """The recomputed access of an uploaded services file for this département, if any."""
    up = st.session_state.get(UPLOAD_KEY)
    if up and up.get("run_dir") == sel.run_dir and up.get("dept") == sel.dept:
        return dict(up)
    return None


# --- Cached data of a département -------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=32)
def dept_communes(run_dir: str, stamp: float, dept: str) -> pd.DataFrame:
    """Communes of a département without geometry (code_insee, nom, population, EPCI…)."""
    run = load_run(run_dir, stamp)
    c = run.communes
    out = c[c["code_dep"].astype(str) == dept].drop(columns="geometry")
    return pd.DataFrame(out).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=32)
def dept_display_geometries(run_dir: str, stamp: float, dept: str) -> gpd.GeoDataFrame:
    """Simplified commune polygons of a département for the map (EPSG:4326)."""
    run = load_run(run_dir, stamp)
    c = run.communes
    c = c[c["code_dep"].astype(str) == dept]
    keep = [k for k in ("code_insee", "nom", "population", "code_dep", "geometry") if k in c]
    return maps.display_geometries(c[keep].reset_index(drop=True))


@st.cache_data(show_spinner=False, max_entries=64)
def dept_access(run_dir: str, stamp: float, dept: str) -> pd.DataFrame:
    """Rows of ``acces_communes`` of a département (all service types)."""
    run = load_run(run_dir, stamp)
    acc = run.tables["acces_communes"]
    return acc[acc["code_dep"].astype(str) == dept].reset_index(drop=True)


def access_for(sel: Selection) -> tuple[pd.DataFrame, str, str | None]:
    """Access rows of the selection's département, the engine, and the upload's name.

    Uses the recomputed access of an uploaded services file when there is one.
    """
    up = upload_override(sel)
    if up is not None:
        return up["access"], str(up["engine"]), str(up["name"])
    run = run_of(sel)
    return dept_access(sel.run_dir, sel.stamp, sel.dept), run.engine, None


def services_for(sel: Selection) -> gpd.GeoDataFrame:
    """Service points shown for the selection (the uploaded ones when there are)."""
    up = upload_override(sel)
    if up is not None:
        return up["services"]
    return run_of(sel).services
