"""Shared state of the app: which run is open, what the sidebar selected, cached data.

Pages only read :func:`selection` and call the cached helpers here, which call the library
(:mod:`coverage.results`, :mod:`coverage.whitezones`, :mod:`coverage.maps`, …). Cached
functions take hashable arguments: the run folder as a string and the manifest's
modification time (``stamp``), so a rerun of the batch into the same folder invalidates
them.

Once a Carte map is drawn, :func:`warm_departements` prepares the other départements of the
run from a background thread while the app is idle, nearest first: the Carte maps of the
12 nearest, built by a worker process (:mod:`coverage.app.prebuild`, which holds no lock of
the server), and the communes and access rows of all, so that a first visit finds them
ready; ``ZONES_BLANCHES_NO_WARM=1`` turns it off.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st

from coverage import maps
from coverage.app import prebuild
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
    "DEPT_ENTRIES",
    "ENV_NO_WARM",
    "ENV_RUN_DIR",
    "ENV_TILES_ATTRIBUTION",
    "ENV_TILES_URL",
    "PREBUILT_ENTRIES",
    "SELECTION_KEY",
    "UPLOAD_KEY",
    "WARM_IDLE_S",
    "WARM_MAPS",
    "Selection",
    "access_for",
    "carte_map",
    "data_key",
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
    "warm_departements",
]

log = logging.getLogger(__name__)

#: Environment variable of an optional basemap tile URL (``https://…/{z}/{x}/{y}.png``).
ENV_TILES_URL = "ZONES_BLANCHES_TILES_URL"
#: Environment variable of the basemap attribution.
ENV_TILES_ATTRIBUTION = "ZONES_BLANCHES_TILES_ATTRIBUTION"

#: Environment variable that turns the background warming of départements off (``1``).
ENV_NO_WARM = "ZONES_BLANCHES_NO_WARM"

SELECTION_KEY = "zb_selection"
UPLOAD_KEY = "zb_upload"
#: Cache entries kept per département-keyed function: every département of a national run
#: (101) and a few runs' worth of the small ones.
DEPT_ENTRIES = 256
#: Maps built ahead of a visit: the Carte maps of this many départements nearest to the one
#: shown, for the current type, threshold and basemap (every département gets its display
#: geometries and context).
WARM_MAPS = 12
#: Seconds without a page run before the background warming does its next step: it works
#: between the user's clicks, once the browser has drawn the page, not during them.
WARM_IDLE_S = 2.0


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
    _WARM_CLOCK["last"] = time.monotonic()
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


@st.cache_data(show_spinner=False, max_entries=DEPT_ENTRIES)
def dept_communes(run_dir: str, stamp: float, dept: str) -> pd.DataFrame:
    """Return the communes of a département without geometry (code_insee, nom, EPCI…)."""
    run = load_run(run_dir, stamp)
    c = run.communes
    out = c[c["code_dep"].astype(str) == dept].drop(columns="geometry")
    return pd.DataFrame(out).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=DEPT_ENTRIES)
def dept_display_geometries(run_dir: str, stamp: float, dept: str) -> gpd.GeoDataFrame:
    """Return simplified commune polygons of a département for the map (EPSG:4326)."""
    run = load_run(run_dir, stamp)
    c = run.communes
    c = c[c["code_dep"].astype(str) == dept]
    keep = [k for k in ("code_insee", "nom", "population", "code_dep", "geometry") if k in c]
    return maps.display_geometries(c[keep].reset_index(drop=True))


@st.cache_data(show_spinner=False, max_entries=DEPT_ENTRIES)
def dept_context(run_dir: str, stamp: float, dept: str) -> maps.DepartementContext:
    """Return the département's map context, built once per run and département.

    Outline, neighbouring communes (light grey) and their services, place names
    (:func:`coverage.maps.departement_context`); keyed on the run folder and its manifest
    stamp, so a new run into the same folder rebuilds it.
    """
    run = load_run(run_dir, stamp)
    return maps.departement_context(run.communes, run.services, dept,
                                    dept_access(run_dir, stamp, dept))


@st.cache_data(show_spinner=False, max_entries=DEPT_ENTRIES)
def dept_access(run_dir: str, stamp: float, dept: str) -> pd.DataFrame:
    """Return the rows of ``acces_communes`` of a département (all service types)."""
    run = load_run(run_dir, stamp)
    acc = run.tables["acces_communes"]
    return acc[acc["code_dep"].astype(str) == dept].reset_index(drop=True)


def data_key(sel: Selection) -> str:
    """Return the cache key of the selection's data: ``run``, or the uploaded file's token."""
    up = upload_override(sel)
    return "run" if up is None else repr(up["token"])


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


def carte_map(
    sel: Selection, iso_layer: str | None, data_key: str, _rows: pd.DataFrame,
    _access: pd.DataFrame, _services: gpd.GeoDataFrame, engine: str,
) -> tuple[str, str]:
    """Return the Carte map page and its legend (HTML), cached per selection and data.

    Then starts (once per run) or refocuses the background warming of the other
    départements (:func:`warm_departements`), so that their first visit finds its data
    ready.

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
    with _WARM_LOCK:
        _WARM_CLOCK["busy"] += 1
    try:
        out = _carte_map(sel, iso_layer, data_key, _rows, _access, _services, engine)
    finally:
        with _WARM_LOCK:
            _WARM_CLOCK["busy"] -= 1
            _WARM_CLOCK["last"] = time.monotonic()
    if data_key == "run" and iso_layer is None:
        warm_departements(sel, engine)
    return out


@st.cache_data(show_spinner=False, max_entries=48)
def _carte_map(
    sel: Selection, iso_layer: str | None, data_key: str, _rows: pd.DataFrame,
    _access: pd.DataFrame, _services: gpd.GeoDataFrame, engine: str,
) -> tuple[str, str]:
    """Build the Carte map page and its legend (:func:`carte_map`, cached)."""
    if data_key == "run" and iso_layer is None:
        ready = _PREBUILT.get(_prebuilt_key(sel, engine))
        if ready is not None:  # built ahead by the warming's worker process
            return ready
    run = load_run(sel.run_dir, sel.stamp)
    geoms = dept_display_geometries(sel.run_dir, sel.stamp, sel.dept)
    iso = (maps.departement_isochrones(run.isochrones(iso_layer), geoms, sel.dept)
           if iso_layer else None)
    return prebuild.carte_page(
        run, prebuild.CarteView(sel.dept, sel.type_service, sel.threshold_min, engine,
                                sel.tiles),
        rows=_rows, access=_access, services=_services, geoms=geoms,
        context=dept_context(sel.run_dir, sel.stamp, sel.dept), isochrones=iso)


#: Carte maps (page, legend) built ahead by the worker process, by :func:`_prebuilt_key`.
_PREBUILT: dict[tuple[str, ...], tuple[str, str]] = {}
#: Most maps kept in :data:`_PREBUILT` (the oldest go first), about 0.5 MB each.
PREBUILT_ENTRIES = 64


def _prebuilt_key(sel: Selection, engine: str) -> tuple[str, ...]:
    return (sel.run_dir, repr(sel.stamp), sel.dept, sel.type_service,
            repr(float(sel.threshold_min)), repr(sel.tiles), engine)


# --- Warming the other départements in the background -----------------------------------

#: When a page last ran (``time.monotonic()``) and how many Carte maps are being built now:
#: the warming thread waits for the user's page to be done.
_WARM_CLOCK: dict[str, float] = {"last": 0.0, "busy": 0}
_WARM_LOCK = threading.Lock()


class _Warmer:
    """Prepares the other départements of one run from a daemon thread.

    The départements nearest to the one shown come first: for the :data:`WARM_MAPS`
    nearest, the Carte map of the current type, threshold and basemap, built by the worker
    process of :mod:`coverage.app.prebuild` (the thread only waits for it, holding no GIL)
    and kept for :func:`carte_map`; for every département, its communes and access rows,
    through the same Streamlit caches as a page. A step starts only after
    :data:`WARM_IDLE_S` seconds without a page run.
    """

    def __init__(self, run_dir: str, stamp: float) -> None:
        self.run_dir, self.stamp = run_dir, stamp
        self.lock = threading.Lock()
        self.focus: tuple[Selection, str] | None = None
        self.done: set[tuple[str, ...]] = set()
        self.centres = _dept_centres(load_run(run_dir, stamp))
        self.thread: threading.Thread | None = None

    def refocus(self, sel: Selection, engine: str) -> None:
        """Put the départements nearest to ``sel.dept`` first; start the thread once."""
        with self.lock:
            self.focus = (sel, engine)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, daemon=True,
                                               name=f"zb-warm-{Path(self.run_dir).name}")
                self.thread.start()

    def _next(self) -> tuple[str, Selection, str] | None:
        """Return the next step: (``map`` or ``data``, selection of its département, engine)."""
        with self.lock:
            if self.focus is None:
                return None
            sel, engine = self.focus
        x0, y0 = self.centres.get(sel.dept, (0.0, 0.0))
        order = sorted(self.centres, key=lambda d: (self.centres[d][0] - x0) ** 2
                       + (self.centres[d][1] - y0) ** 2)
        maps_key = (sel.type_service, str(sel.threshold_min), repr(sel.tiles), engine)
        for dept in order[1:WARM_MAPS + 1]:
            if ("map", dept, *maps_key) not in self.done:
                return "map", dataclasses.replace(sel, dept=dept), engine
        for dept in order:
            if ("data", dept) not in self.done:
                return "data", dataclasses.replace(sel, dept=dept), engine
        return None

    def _step(self, kind: str, sel: Selection, engine: str) -> None:
        """Build one département's data (``data``) or Carte map (``map``) into the caches.

        Stops between its parts when a page starts running (the part is then redone from
        the caches at the next step).
        """
        rd, st_, dept = self.run_dir, self.stamp, sel.dept
        parts: list[Any] = [lambda: dept_communes(rd, st_, dept),
                            lambda: dept_access(rd, st_, dept)]
        if kind == "map":
            parts.append(lambda: self._map(sel, engine))
        for part in parts:
            if not _idle():
                return
            part()
        self.done.add(("data", dept))
        if kind == "map":
            self.done.add(("map", dept, sel.type_service, str(sel.threshold_min),
                           repr(sel.tiles), engine))

    def _map(self, sel: Selection, engine: str) -> None:
        """Have the Carte map of ``sel`` built by the worker process (the run's services)."""
        key = _prebuilt_key(sel, engine)
        if key in _PREBUILT:
            return
        built = prebuild.carte_page_in_worker(
            self.run_dir, self.stamp, sel.dept, sel.type_service, sel.threshold_min, engine,
            sel.tiles).result()
        if built is not None:
            while len(_PREBUILT) >= PREBUILT_ENTRIES:
                _PREBUILT.pop(next(iter(_PREBUILT)))
            _PREBUILT[key] = built

    def _loop(self) -> None:
        """Warm step by step while the app is idle; stop when everything is warm.

        The thread keeps the process's priority: a niced thread holding the GIL, preempted
        by the browser, held up the server's event loop (the page's messages) for seconds.
        """
        while True:
            if not _idle():
                time.sleep(0.1)
                continue
            step = self._next()
            if step is None or manifest_stamp(self.run_dir) != self.stamp:
                return  # all warm, or the run was rewritten: its caches are obsolete
            try:
                self._step(*step)
            except Exception:  # a warming failure must never reach a page: it rebuilds
                log.exception("préparation en arrière-plan du département %s échouée",
                              step[1].dept)
                self.done.add(("data", step[1].dept))
                self.done.add(("map", step[1].dept, step[1].type_service,
                               str(step[1].threshold_min), repr(step[1].tiles), step[2]))


def _idle() -> bool:
    """Return True when no page is running nor has run for :data:`WARM_IDLE_S` seconds."""
    return (_WARM_CLOCK["busy"] <= 0
            and time.monotonic() - _WARM_CLOCK["last"] >= WARM_IDLE_S)


def _dept_centres(run: RunOutputs) -> dict[str, tuple[float, float]]:
    """Return the centre of each département's communes (x scaled by cos(latitude))."""
    c = run.communes
    b = c.geometry.bounds
    frame = pd.DataFrame({"dep": c["code_dep"].astype(str).to_numpy(),
                          "x": ((b["minx"] + b["maxx"]) / 2).to_numpy(),
                          "y": ((b["miny"] + b["maxy"]) / 2).to_numpy()}).dropna()
    mean = frame.groupby("dep")[["x", "y"]].mean()
    scale = np.cos(np.radians(mean["y"].clip(-89, 89)))
    return {str(d): (float(x * k), float(y))
            for d, x, y, k in zip(mean.index, mean["x"], mean["y"], scale, strict=True)}


@st.cache_resource(show_spinner=False, max_entries=4)
def _warmer(run_dir: str, stamp: float) -> _Warmer:
    """Return the warmer of a run (one per run folder and manifest stamp)."""
    return _Warmer(run_dir, stamp)


def warm_departements(sel: Selection, engine: str) -> None:
    """Prepare the other départements of the run in the background, nearest first.

    Parameters
    ----------
    sel
        The selection just shown: its département is the centre of the order, its type,
        threshold and basemap those of the maps built ahead.
    engine
        ``road`` or ``proxy``: the engine of the run's access rows.
    """
    if os.environ.get(ENV_NO_WARM, "").strip() in ("1", "true", "oui"):
        return
    _warmer(sel.run_dir, sel.stamp).refocus(sel, engine)
