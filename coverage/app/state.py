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
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from coverage import maps
from coverage.app.launch import ENV_RUN_DIR
from coverage.batch import RunOptions, run_batch
from coverage.io.inputs import load_inputs
from coverage.results import (
    RunOutputs,
    available_departements,
    departement_names,
    run_service_types,
    run_thresholds,
)

__all__ = [
    "ENV_RUN_DIR",
    "ENV_TILES_ATTRIBUTION",
    "ENV_TILES_URL",
    "SELECTION_KEY",
    "UPLOAD_KEY",
    "Selection",
    "access_for",
    "carte_map",
    "dept_access",
    "dept_communes",
    "dept_context",
    "dept_display_geometries",
    "ensure_demo_run",
    "initial_run_dir",
    "load_run",
    "manifest_stamp",
    "run_choices",
    "run_of",
    "selection",
    "services_for",
    "upload_override",
]

log = logging.getLogger(__name__)

#: Environment variable of an optional basemap tile URL (``https://…/{z}/{x}/{y}.png``).
ENV_TILES_URL = "ZONES_BLANCHES_TILES_URL"
#: Environment variable of the basemap attribution.
ENV_TILES_ATTRIBUTION = "ZONES_BLANCHES_TILES_ATTRIBUTION"

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
    """Return the run folder given at launch (``zones-blanches app --run``), or None."""
    value = os.environ.get(ENV_RUN_DIR, "").strip()
    return value or None


def manifest_stamp(run_dir: str | Path) -> float:
    """Return the modification time of the run's ``manifest.json`` (0.0 when absent)."""
    p = Path(run_dir) / "manifest.json"
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner=False)
def _demo_lock() -> threading.Lock:
    """Return the lock of this server process: two sessions never run the demo batch together."""
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
            log.info("pas de calcul de la démo dans %s : calcul de la démo", out_dir)
            run_batch(load_inputs(), out_dir=Path(out_dir), options=RunOptions(workers=1))
    return manifest_stamp(out_dir)


@st.cache_resource(show_spinner=False, max_entries=4)
def load_run(run_dir: str, stamp: float) -> RunOutputs:
    """Return the run read from its folder (shared, read-only: never modify it)."""
    del stamp  # cache key only
    return RunOutputs.load(run_dir)


@st.cache_data(show_spinner=False, max_entries=4)
def run_choices(run_dir: str, stamp: float
                ) -> tuple[list[str], dict[str, str], list[str], list[float]]:
    """Return what the sidebar offers for a run, read once per run.

    Returns
    -------
    tuple
        Département codes, their names, service types, thresholds (minutes). Scanning a
        national run's communes for its départements takes a quarter of a second: not at
        every rerun.
    """
    run = load_run(run_dir, stamp)
    return (available_departements(run), departement_names(run), run_service_types(run),
            run_thresholds(run))


def run_of(sel: Selection) -> RunOutputs:
    """Return the run of the current selection."""
    return load_run(sel.run_dir, sel.stamp)


def selection() -> Selection:
    """Return the sidebar's current selection (set by ``app.py`` before the page runs)."""
    sel = st.session_state.get(SELECTION_KEY)
    if sel is None:
        st.error("Aucune donnée chargée : choisissez un jeu de données dans la barre latérale.")
        st.stop()
    assert isinstance(sel, Selection)
    return sel


def upload_override(sel: Selection) -> dict[str, Any] | None:
    """Return the recomputed access of an uploaded services file for this département."""
    up = st.session_state.get(UPLOAD_KEY)
    if up and up.get("run_dir") == sel.run_dir and up.get("dept") == sel.dept:
        return dict(up)
    return None


# --- Cached data of a département -------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=32)
def dept_communes(run_dir: str, stamp: float, dept: str) -> pd.DataFrame:
    """Return the communes of a département without geometry (code_insee, nom, EPCI…)."""
    run = load_run(run_dir, stamp)
    c = run.communes
    out = c[c["code_dep"].astype(str) == dept].drop(columns="geometry")
    return pd.DataFrame(out).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=32)
def dept_display_geometries(run_dir: str, stamp: float, dept: str) -> gpd.GeoDataFrame:
    """Return simplified commune polygons of a département for the map (EPSG:4326)."""
    run = load_run(run_dir, stamp)
    c = run.communes
    c = c[c["code_dep"].astype(str) == dept]
    keep = [k for k in ("code_insee", "nom", "population", "code_dep", "geometry") if k in c]
    return maps.display_geometries(c[keep].reset_index(drop=True))


@st.cache_data(show_spinner=False, max_entries=32)
def dept_context(run_dir: str, stamp: float, dept: str) -> maps.DepartementContext:
    """Return the département's map context, built once per run and département.

    Outline, neighbouring communes (light grey) and their services, place names
    (:func:`coverage.maps.departement_context`); keyed on the run folder and its manifest
    stamp, so a new run into the same folder rebuilds it.
    """
    run = load_run(run_dir, stamp)
    return maps.departement_context(run.communes, run.services, dept,
                                    dept_access(run_dir, stamp, dept))


@st.cache_data(show_spinner=False, max_entries=64)
def dept_access(run_dir: str, stamp: float, dept: str) -> pd.DataFrame:
    """Return the rows of ``acces_communes`` of a département (all service types)."""
    run = load_run(run_dir, stamp)
    acc = run.tables["acces_communes"]
    return acc[acc["code_dep"].astype(str) == dept].reset_index(drop=True)


def access_for(sel: Selection) -> tuple[pd.DataFrame, str, str | None]:
    """Return the selection's access rows, engine and upload name.

    Uses the recomputed access of an uploaded services file when there is one.
    """
    up = upload_override(sel)
    if up is not None:
        return up["access"], str(up["engine"]), str(up["name"])
    run = run_of(sel)
    return dept_access(sel.run_dir, sel.stamp, sel.dept), run.engine, None


def services_for(sel: Selection) -> gpd.GeoDataFrame:
    """Return the service points shown for the selection (the uploaded ones if any)."""
    up = upload_override(sel)
    if up is not None:
        return up["services"]
    return run_of(sel).services


@st.cache_data(show_spinner=False, max_entries=32)
def carte_map(
    sel: Selection, iso_layer: str | None, data_key: str, _rows: pd.DataFrame,
    _access: pd.DataFrame, _services: gpd.GeoDataFrame, engine: str,
) -> tuple[str, str]:
    """Return the Carte map page and its legend (HTML), cached per selection and data.

    Parameters
    ----------
    sel
        The selection (département, type, threshold, basemap).
    iso_layer
        Layer of ``isochrones.gpkg`` to draw as contour lines, None for none.
    data_key
        ``run``, or the token of an uploaded services file (cache key of the data).
    _rows
        ``acces_communes`` rows of the type shown (not hashed: ``data_key`` stands for them).
    _access
        Every ``acces_communes`` row of the département (which services are drawn).
    _services
        The services of the selection (the run's, or the uploaded file's).
    engine
        ``road`` or ``proxy``.

    Returns
    -------
    tuple of str
        The map page (for ``st.iframe``) and the legend block drawn beside it.
    """
    del data_key  # cache key only
    run = load_run(sel.run_dir, sel.stamp)
    geoms = dept_display_geometries(sel.run_dir, sel.stamp, sel.dept)
    iso = (maps.departement_isochrones(run.isochrones(iso_layer), geoms, sel.dept)
           if iso_layer else None)
    m, legend = maps.access_map_and_legend(
        geoms, _rows, maps.shown_services(_services, _access, sel.dept),
        type_service=sel.type_service, threshold_min=sel.threshold_min, engine=engine,
        fictif=run.fictif, isochrones=iso, tiles=sel.tiles, sources=maps.legend_sources(run),
        thresholds=run_thresholds(run), context=dept_context(sel.run_dir, sel.stamp, sel.dept),
    )
    return maps.map_html(m), maps.legend_html(legend)
