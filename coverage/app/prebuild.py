"""Carte maps built ahead of a visit, in a separate process that does not hold the server.

The app's background warming (:mod:`coverage.app.state`) asks this module's worker process
for the Carte maps of the départements nearest to the one shown. Building a map is a
second of CPU in Python (simplification, context, folium); in the server's own thread it
took turns with the pages for the GIL, so a département switch that arrived during a build
waited for it. In a process of its own, at the lowest priority, it competes with nothing
but idle CPU. Nothing here imports Streamlit: the worker starts light.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd

from coverage import maps
from coverage.results import RunOutputs, run_thresholds

__all__ = ["ORPHAN_CHECK_S", "PREBUILD_NICE", "CarteView", "carte_page", "carte_page_in_worker",
           "shutdown_worker"]

#: Nice value of the worker process (Linux): the pages and the browser come first.
PREBUILD_NICE = 19
#: Seconds between two checks by the worker that the server is still there.
ORPHAN_CHECK_S = 1.0

#: The runs read by this process (the worker reads its run once).
_RUNS: dict[tuple[str, float], RunOutputs] = {}
_POOL: dict[str, ProcessPoolExecutor] = {}


@dataclass(frozen=True)
class CarteView:
    """What a Carte map shows.

    Attributes
    ----------
    dept, type_service
        Département and service type.
    threshold_min
        White-zone threshold, minutes.
    engine
        ``road`` or ``proxy``.
    tiles
        Optional basemap.
    """

    dept: str
    type_service: str
    threshold_min: float
    engine: str
    tiles: maps.Tiles | None = None


def carte_page(
    run: RunOutputs, view: CarteView, *, rows: pd.DataFrame, access: pd.DataFrame,
    services: gpd.GeoDataFrame, geoms: gpd.GeoDataFrame, context: maps.DepartementContext,
    isochrones: gpd.GeoDataFrame | None = None,
) -> tuple[str, str]:
    """Return the Carte map page and its legend block (HTML) of one département.

    Parameters
    ----------
    run
        The run.
    view
        What the map shows.
    rows
        ``acces_communes`` rows of the type shown.
    access
        Every ``acces_communes`` row of the département (which services are drawn).
    services
        The services (EPSG:4326): the run's, or an uploaded file's.
    geoms
        The département's display polygons (:func:`coverage.maps.display_geometries`).
    context
        :func:`coverage.maps.departement_context` of the département.
    isochrones
        Optional isochrone bands (EPSG:4326).

    Returns
    -------
    tuple of str
        The map page (for ``st.iframe``) and the legend drawn beside it.
    """
    m, legend = maps.access_map_and_legend(
        geoms, rows, maps.shown_services(services, access, view.dept),
        type_service=view.type_service, threshold_min=view.threshold_min, engine=view.engine,
        fictif=run.fictif, isochrones=isochrones, tiles=view.tiles,
        sources=maps.legend_sources(run), thresholds=run_thresholds(run), context=context)
    return maps.map_html(m), maps.legend_html(legend)


def _display_geometries(run: RunOutputs, dept: str) -> gpd.GeoDataFrame:
    c = run.communes
    c = c[c["code_dep"].astype(str) == dept]
    keep = [k for k in ("code_insee", "nom", "population", "code_dep", "geometry") if k in c]
    return maps.display_geometries(c[keep].reset_index(drop=True))


def _worker_page(run_dir: str, stamp: float, dept: str, type_service: str,
                 threshold_min: float, engine: str, tiles: maps.Tiles | None
                 ) -> tuple[str, str] | None:
    """Build one Carte map in the worker (the run's services); None when it has no rows."""
    run = _RUNS.get((run_dir, stamp))
    if run is None:
        _RUNS.clear()
        run = _RUNS[(run_dir, stamp)] = RunOutputs.load(run_dir)
    acc = run.tables["acces_communes"]
    access = acc[acc["code_dep"].astype(str) == dept].reset_index(drop=True)
    rows = access[access["type_service"] == type_service].reset_index(drop=True)
    if not len(rows) and len(access):
        return None
    return carte_page(run, CarteView(dept, type_service, threshold_min, engine, tiles),
                      rows=rows, access=access, services=run.services,
                      geoms=_display_geometries(run, dept),
                      context=maps.departement_context(run.communes, run.services, dept,
                                                       access))


def _start_worker(parent: int) -> None:
    """Set up the worker: lowest priority, and exit as soon as the server is gone.

    A server stopped by a signal does not shut its pool down: the worker, left waiting on
    its queue, would outlive it with the run in memory.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.nice(PREBUILD_NICE)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="zb-prebuild-watch").start()


def _pool() -> ProcessPoolExecutor:
    """Return the worker (one process, started on first use, ``spawn``: no forked threads)."""
    pool = _POOL.get("pool")
    if pool is None:
        pool = _POOL["pool"] = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(os.getpid(),))
    return pool


def carte_page_in_worker(run_dir: str, stamp: float, dept: str, type_service: str,
                         threshold_min: float, engine: str, tiles: maps.Tiles | None
                         ) -> Future[Any]:
    """Ask the worker process for a Carte map of the run's services.

    Returns
    -------
    concurrent.futures.Future
        Its result is ``(page, legend)``, or None when the département has no row of the
        type. Waiting on it holds no lock of this process.
    """
    return _pool().submit(_worker_page, run_dir, stamp, dept, type_service,
                          float(threshold_min), engine, tiles)


def shutdown_worker() -> None:
    """Stop the worker process (it is started again on the next request)."""
    pool = _POOL.pop("pool", None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
