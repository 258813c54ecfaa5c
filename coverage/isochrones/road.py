"""Road-engine bands: **buffered reached arcs, rasterised**.

Every arc of the road graph is a straight segment between two consecutive OSM nodes (the
topology is not simplified). Along an arc taking ``w`` minutes, the point at fraction
``f`` from its reached end is at ``t + f·w`` minutes (linear interpolation of the time
along the arc), so a partially reached arc is cut exactly where a band's bound falls.
Points are sampled along the arcs every grid cell and dropped onto a metric grid
(``cell_m``, 75 m by default) keeping the *minimum* time per cell. A grey erosion with a
cone over a disc of radius ``buffer_m`` (150 m by default) then gives each cell centre the
minutes of the land there: the minimum, over the road points within ``buffer_m``, of the
point's minutes plus the distance at the engine's connector speed
(``settings.access_speed_kmh``, as for a commune's snapping leg). Cells with no reached
road within ``buffer_m`` are unreached (given the top bound plus one minute, so that the
contouring has no mask); enclosed unreached patches smaller than ``min_hole_m2`` (9 ha;
25 ha for the per-service bands) are filled, being the inside of street blocks. The band
``[a, b)`` is the filled contour of that field between ``a`` and ``b`` (the raster, the
unreached value, the hole filling and the contours are :mod:`coverage.isochrones.raster`),
so:

- land farther than ``buffer_m`` (± one cell) from every reached road is never claimed,
  small enclosed patches apart — lakes, mountain blocks and gaps between valleys come out
  as holes;
- the union of the bands up to ``b`` is the ``buffer_m`` neighbourhood of the road reached
  within ``b`` minutes, and the bands of one source set never overlap;
- merged bands per service type come from the one multi-source pass per type
  (``RoadEngine.node_minutes``), per-service bands from bounded per-source searches
  (``RoadEngine.node_minutes_per_source_sparse``: the reached nodes only), both with the
  service's connector leg, both in the engine's direction (minutes *to* the service:
  one-way arcs are walked backwards); ferry crossings route but are not drawn as land.

This is the set ``union(buffer(reached part of each arc, buffer_m))`` of the vector
method, rasterised at ``cell_m`` (a test checks the two agree): it runs in a fraction of a
second where the vector union of hundreds of thousands of buffers takes minutes. The
per-service bands use a 100 m raster (:data:`SERVICE_CELL_M`, :data:`SERVICE_RASTER`):
there can be hundreds of them. The samples are never stored: two loops compiled by numba
walk them, for their box (the grid), then onto the grid (:func:`_samples_box`,
:func:`_samples_drop`: the same arithmetic, hence the same grid and minutes, as
:func:`_arc_samples` then ``_field_from_samples``, tested). The per-service bands are
drawn and projected chunk by chunk, in this process or, when asked (``workers``), in
forked processes reading the engine from this one's memory: the same geometries in the
same order either way (tested byte for byte).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from tqdm import TMonitor

from coverage.geo import transformer
from coverage.isochrones.raster import (
    _contour_bands,
    _Grid,
    _land_field,
    _warm_up_raster,
)
from coverage.progress import progress
from coverage.routing import kernel as _kernel
from coverage.routing.network import RoadNetwork
from coverage.settings import CRS_INPUT_OUTPUT, Settings

__all__ = [
    "BUFFER_M",
    "CELL_M",
    "MIN_HOLE_M2",
    "SERVICE_CELL_M",
    "SERVICE_MIN_HOLE_M2",
    "SERVICE_RASTER",
    "RoadRaster",
    "road_band_geometries",
    "road_band_geometries_sparse",
    "sampling_graph",
]

#: Width of land around a reached road counted as reached, metres. A house, a farm track or
#: a parking lot within 150 m of the road is reachable; land beyond is not claimed. 150 m
#: was the best of 100/150/200 m on the demo and the Andorra extract (hairpin bends and
#: one-way loops put roads reached minutes apart within 200 m of each other).
BUFFER_M = 150.0
#: Grid cell of the road-engine raster, metres (half of ``BUFFER_M``).
CELL_M = 75.0
#: Grid cell of the per-service bands, metres: coarser, as there are hundreds of them and
#: each spans a 45-minute reach (≈ 1–2 M cells at 75 m).
SERVICE_CELL_M = 100.0
#: Enclosed patches filled in the per-service bands, m²: 25 ha (a 500 m square, centre
#: within about 400 m of a reached road). Coarser than :data:`MIN_HOLE_M2` because the
#: hundreds of per-service bands otherwise carry hundreds of thousands of vertices each.
SERVICE_MIN_HOLE_M2 = 250_000.0
#: Holes (land farther than ``BUFFER_M`` from every reached road) smaller than this are
#: filled, m²: a 300 m square (9 ha), whose centre is at most about 300 m from a road. They
#: are the inside of street blocks, not lakes or mountains, and would multiply the vertices.
MIN_HOLE_M2 = (2 * BUFFER_M) ** 2

log = logging.getLogger(__name__)

#: Services processed per bounded per-source call (one step of the progress bar).
_SOURCE_CHUNK = 16


@dataclass(frozen=True)
class RoadRaster:
    """How the reached roads become land: buffer width, raster cell and holes filled.

    Attributes
    ----------
    buffer_m
        Width of land around a reached road point counted as reached, metres (> 0).
    cell_m
        Raster cell, metres (> 0; ``buffer_m`` / 2 or finer is advised).
    min_hole_m2
        Enclosed unreached patches smaller than this are filled, m² (see
        :data:`MIN_HOLE_M2`); 0 keeps every hole.
    """

    buffer_m: float = BUFFER_M
    cell_m: float = CELL_M
    min_hole_m2: float = MIN_HOLE_M2

    def __post_init__(self) -> None:
        """Refuse a non-positive buffer or cell."""
        if self.buffer_m <= 0 or self.cell_m <= 0:
            msg = (f"buffer_m and cell_m must be positive metres, got {self.buffer_m} "
                   f"and {self.cell_m}")
            raise ValueError(msg)


#: Raster of the per-service bands: :data:`SERVICE_CELL_M` cells, :data:`SERVICE_MIN_HOLE_M2`.
SERVICE_RASTER = RoadRaster(cell_m=SERVICE_CELL_M, min_hole_m2=SERVICE_MIN_HOLE_M2)


class _RoadSource(Protocol):
    """What the road bands need of an engine: the ``RoadEngine``, or a wrapper of it."""

    name: str
    network: RoadNetwork

    def node_minutes(self, services: pd.DataFrame) -> np.ndarray:
        """Return the minutes from every node to the nearest of ``services``."""
        ...

    def node_minutes_per_source_sparse(self, services: pd.DataFrame, cutoff_min: float
                                       ) -> tuple[np.ndarray, sp.csr_array]:
        """Return each service's reached nodes and minutes within ``cutoff_min``."""
        ...


def _road_source(engine: object) -> _RoadSource:
    """Return ``engine`` as a road source, or raise TypeError if it has no road network."""
    network = getattr(engine, "network", None)
    if not isinstance(network, RoadNetwork):
        msg = (f"the {getattr(engine, 'name', '?')!r} engine exposes no road network "
               "(attribute 'network'): road isochrones need the RoadEngine")
        raise TypeError(msg)
    return cast("_RoadSource", engine)


def sampling_graph(network: RoadNetwork, direction: str = "to_service") -> sp.csr_array:
    """Return the arcs along which node minutes spread, as a CSR matrix of minutes.

    Ferry arcs (``network.ferry``) are left out: a crossing is water, not land reached
    (the land on the far shore is drawn from its own roads, reached through the ferry).

    Parameters
    ----------
    network
        Road graph.
    direction
        ``"to_service"``: minutes are *to* the services (the engine's default, the trip of
        the family): a point at fraction ``f`` of arc ``u → v`` needs ``(1 − f)·w + t(v)``,
        i.e. the transposed graph is walked from ``v``. ``"from_service"``: the network.

    Returns
    -------
    scipy.sparse.csr_array
        ``n_nodes × n_nodes``, arc minutes (explicit zero-minute arcs kept).
    """
    if direction not in ("from_service", "to_service"):
        msg = f"direction must be 'to_service' or 'from_service', got {direction!r}"
        raise ValueError(msg)
    graph = network.minutes
    if network.ferry.any():
        tails, heads = network.arcs()
        land = ~network.ferry
        # built from CSR arrays directly: explicit zero-minute arcs stay arcs
        indptr = np.zeros(network.n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(tails[land], minlength=network.n_nodes), out=indptr[1:])
        graph = sp.csr_array((np.asarray(graph.data)[land], heads[land], indptr),
                             shape=graph.shape)
    if direction == "from_service":
        return graph
    return sp.csr_array(graph.T.tocsr())


def _arc_samples(
    graph: sp.csr_array, x: np.ndarray, y: np.ndarray, reached: np.ndarray,
    t_nodes: np.ndarray, *, step_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample points along the arcs leaving the ``reached`` nodes, with their minutes.

    Each arc ``u → v`` of ``graph`` (a straight segment, weight ``w`` minutes) is sampled
    every ``step_m`` metres or less; the point at fraction ``f`` is reached at
    ``t(u) + f·w`` (``t_nodes``: minutes of the reached nodes). The reached nodes
    themselves are included once. ``graph`` is the graph the minutes were spread on,
    ferries left out (:func:`sampling_graph`): the network for minutes *from* the
    services, its transpose for minutes *to* them.
    """
    if reached.size == 0:
        empty = np.empty(0)
        return empty, empty, empty
    csr = graph
    indptr = np.asarray(csr.indptr)
    starts = indptr[reached]
    counts = indptr[reached + 1] - starts
    n_arcs = int(counts.sum())
    t_nodes = np.asarray(t_nodes, dtype=np.float64)
    if n_arcs == 0:
        return x[reached].astype(float), y[reached].astype(float), t_nodes
    first = np.cumsum(counts) - counts
    arc = np.arange(n_arcs) + np.repeat(starts - first, counts)
    u = np.repeat(reached, counts)
    v = np.asarray(csr.indices)[arc]
    w = np.asarray(csr.data)[arc].astype(np.float64)
    tu = np.repeat(t_nodes, counts)
    xu, yu = x[u], y[u]
    dx, dy = x[v] - xu, y[v] - yu
    n_seg = np.maximum(np.ceil(np.hypot(dx, dy) / step_m).astype(np.int64), 1)
    # interior points only (k = 1 … n_seg − 1): the ends are nodes, added once each below
    # (a head beyond the bound is not needed: the interior carries the interpolation)
    n_int = n_seg - 1
    total = int(n_int.sum())
    k = np.arange(total) - np.repeat(np.cumsum(n_int) - n_int, n_int) + 1
    f = k / np.repeat(n_seg, n_int)
    xs = np.concatenate([x[reached], np.repeat(xu, n_int) + f * np.repeat(dx, n_int)])
    ys = np.concatenate([y[reached], np.repeat(yu, n_int) + f * np.repeat(dy, n_int)])
    ts = np.concatenate([t_nodes, np.repeat(tu, n_int) + f * np.repeat(w, n_int)])
    return xs, ys, ts


def _samples_box(  # noqa: PLR0913, PLR0917  (positional arrays: numba compiles them)
        indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray,
        y: np.ndarray, reached: np.ndarray, t_nodes: np.ndarray, step_m: float,
        t_max: float) -> tuple[float, float, float, float]:  # pragma: no cover
    """Return the box of the samples of :func:`_arc_samples` reached by ``t_max``.

    The reached nodes, then the interior points of each arc leaving them (compiled: the
    same arithmetic as :func:`_arc_samples`, without its arrays).
    """
    xmin, ymin, xmax, ymax = np.inf, np.inf, -np.inf, -np.inf
    for i in range(reached.size):
        u = reached[i]
        xu, yu, tu = x[u], y[u], t_nodes[i]
        if tu <= t_max:
            xmin, xmax = min(xmin, xu), max(xmax, xu)
            ymin, ymax = min(ymin, yu), max(ymax, yu)
        for a in range(indptr[u], indptr[u + 1]):
            v = indices[a]
            dx, dy, w = x[v] - xu, y[v] - yu, np.float64(data[a])
            n_seg = max(int(np.ceil(np.hypot(dx, dy) / step_m)), 1)
            for k in range(1, n_seg):
                f = k / n_seg
                t = tu + f * w
                if t <= t_max:
                    xs, ys = xu + f * dx, yu + f * dy
                    xmin, xmax = min(xmin, xs), max(xmax, xs)
                    ymin, ymax = min(ymin, ys), max(ymax, ys)
    return xmin, ymin, xmax, ymax


_samples_box_jit: Callable[..., Any] = _kernel.compiled(_samples_box)


def _samples_drop(  # noqa: PLR0913, PLR0917  (positional arrays: numba compiles them)
        indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray,
        y: np.ndarray, reached: np.ndarray, t_nodes: np.ndarray, step_m: float,
        t_max: float, x0: float, y0: float, cell: float, nx: int,
        field: np.ndarray) -> None:  # pragma: no cover
    """Drop the samples of :func:`_samples_box` onto a flat float32 grid, keeping minima.

    The cell of a point is ``_Grid.index_inside``'s; its minutes are rounded to float32,
    as ``np.minimum.at`` over the sample arrays would.
    """
    for i in range(reached.size):
        u = reached[i]
        xu, yu, tu = x[u], y[u], t_nodes[i]
        if tu <= t_max:
            c = np.int64(np.rint((yu - y0) / cell) * nx + np.rint((xu - x0) / cell))
            field[c] = min(field[c], np.float32(tu))
        for a in range(indptr[u], indptr[u + 1]):
            v = indices[a]
            dx, dy, w = x[v] - xu, y[v] - yu, np.float64(data[a])
            n_seg = max(int(np.ceil(np.hypot(dx, dy) / step_m)), 1)
            for k in range(1, n_seg):
                f = k / n_seg
                t = tu + f * w
                if t <= t_max:
                    xs, ys = xu + f * dx, yu + f * dy
                    c = np.int64(np.rint((ys - y0) / cell) * nx + np.rint((xs - x0) / cell))
                    field[c] = min(field[c], np.float32(t))


_samples_drop_jit: Callable[..., Any] = _kernel.compiled(_samples_drop)


def road_band_geometries(
    network: RoadNetwork, minutes: np.ndarray, bands: Sequence[tuple[float, float]], *,
    direction: str = "to_service", buffer_m: float = BUFFER_M, cell_m: float = CELL_M,
    access_speed_kmh: float | None = Settings().access_speed_kmh,
    min_hole_m2: float = MIN_HOLE_M2,
) -> list[shapely.Geometry]:
    """Draw the band polygons in ``network.crs`` from the minutes of every node.

    Parameters
    ----------
    network
        Road graph; arcs are straight segments between its nodes (metric CRS).
    minutes
        Minutes between each node and the sources (length ``network.n_nodes``), NaN when
        unreachable, connector legs included.
    bands
        ``(low, high)`` pairs, minutes, increasing and contiguous from 0.
    direction
        Direction of the minutes (see :func:`sampling_graph`).
    buffer_m
        Width of land around a reached road point counted as reached, metres.
    cell_m
        Raster cell, metres (``buffer_m`` / 2 or finer is advised).
    access_speed_kmh
        Speed off the road, km/h (the engine's connector speed,
        ``settings.access_speed_kmh``): land at ``d`` metres from a road point reached at
        ``t`` is reached at ``t + d / speed``. None: at ``t`` (flat buffer).
    min_hole_m2
        Enclosed unreached patches smaller than this (m²) are filled (see
        :data:`MIN_HOLE_M2`); 0 keeps every hole.

    Returns
    -------
    list of shapely geometries
        One valid MultiPolygon per band (possibly empty), in ``network.crs`` (metres).
    """
    nodes, reached_minutes = _reached_nodes(network, minutes, bands)
    return road_band_geometries_sparse(
        network, nodes, reached_minutes, bands, direction=direction,
        raster=RoadRaster(buffer_m=buffer_m, cell_m=cell_m, min_hole_m2=min_hole_m2),
        access_speed_kmh=access_speed_kmh)


def _reached_nodes(network: RoadNetwork, minutes: np.ndarray,
                   bands: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Return the nodes reached before the top bound and their minutes (dense → sparse)."""
    minutes = np.asarray(minutes)
    if minutes.shape != (network.n_nodes,):
        msg = (f"node minutes have shape {minutes.shape}, expected ({network.n_nodes},): "
               "one value per network node")
        raise ValueError(msg)
    limit = max(high for _, high in bands)
    reached = np.flatnonzero(minutes < limit)  # NaN compares False: unreachable dropped
    return reached, minutes[reached]


def road_band_geometries_sparse(  # noqa: PLR0913 - the options of one call, keywords only
    network: RoadNetwork, nodes: np.ndarray, minutes: np.ndarray,
    bands: Sequence[tuple[float, float]], *, raster: RoadRaster = RoadRaster(),
    access_speed_kmh: float | None = Settings().access_speed_kmh,
    direction: str = "to_service", graph: sp.csr_array | None = None,
    wgs84: bool = False,
) -> list[shapely.Geometry]:
    """Draw :func:`road_band_geometries` from the reached nodes only (sparse minutes).

    Parameters
    ----------
    network
        Road graph (metric CRS).
    nodes
        Indices of the reached nodes (e.g. from
        ``RoadEngine.node_minutes_per_source_sparse``); nodes not listed are unreached.
    minutes
        Minutes of those nodes (same length), connector legs included.
    bands
        ``(low, high)`` pairs, minutes, increasing and contiguous from 0.
    raster
        Buffer width, raster cell (metres) and holes filled (m²).
    access_speed_kmh, direction
        As in :func:`road_band_geometries`.
    graph
        ``sampling_graph(network, direction)`` when the caller reuses it across calls.
    wgs84
        Return the polygons in EPSG:4326 (degrees): the contours' vertices are projected
        before the polygons are built, the same geometries as the metric ones projected
        afterwards (``raster._to_wgs84``).

    Returns
    -------
    list of shapely geometries
        One valid MultiPolygon per band (possibly empty), in ``network.crs`` (metres), or
        EPSG:4326 with ``wgs84``.
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    minutes = np.asarray(minutes, dtype=np.float64)
    if nodes.shape != minutes.shape or nodes.ndim != 1:
        msg = f"nodes {nodes.shape} and minutes {minutes.shape} must be 1-D of equal length"
        raise ValueError(msg)
    if graph is None:
        graph = sampling_graph(network, direction)
    limit = max(high for _, high in bands)
    # nodes of a crossing (on the water) are not land: their minutes still reached the far
    # shore through the routing, whose roads are drawn from their own minutes
    keep = (minutes < limit) & ~network.ferry_only_nodes[nodes]
    reached = np.ascontiguousarray(nodes[keep])
    if reached.size == 0:  # no sample before the top bound
        return [shapely.MultiPolygon() for _ in bands]
    # one sample per cell crossed is enough: the erosion spreads it over buffer_m; points
    # a minute beyond the top bound let the contour interpolate there instead of stopping
    # at the mask, farther ones (the rest of a long arc) only enlarge the grid. The
    # samples of _arc_samples are walked twice by compiled loops (their box, then the
    # grid), never stored: the same grid and minutes as _field_from_samples on them.
    args = (np.asarray(graph.indptr), np.asarray(graph.indices), np.asarray(graph.data),
            network.x, network.y, reached, np.ascontiguousarray(minutes[keep]),
            float(raster.cell_m), limit + 1.0)
    xmin, ymin, xmax, ymax = _samples_box_jit(*args)
    grid = _Grid.around(xmin, ymin, xmax, ymax, raster.cell_m,
                        raster.buffer_m + 2 * raster.cell_m)
    raw = np.full(grid.nx * grid.ny, np.inf, dtype=np.float32)
    _samples_drop_jit(*args, grid.x0, grid.y0, grid.cell, grid.nx, raw)
    access = None if access_speed_kmh is None else access_speed_kmh * 1000.0 / 60.0
    field = _land_field(grid, raw, buffer_m=raster.buffer_m, access_m_per_min=access,
                        min_hole_m2=raster.min_hole_m2)
    return _contour_bands(grid, field, bands,
                          transformer(network.crs, CRS_INPUT_OUTPUT) if wgs84 else None)


def _road_type_geometries(
    engine: object, services: gpd.GeoDataFrame, types: Sequence[str],
    bands: Sequence[tuple[float, float]], *, access_speed_kmh: float | None,
    node_minutes: Mapping[str, np.ndarray] | None, raster: RoadRaster,
) -> list[tuple[str, dict[str, list[shapely.Geometry]]]]:
    """Draw the merged bands of each type from one multi-source pass per type.

    Returns ``[(network CRS, {type: one metric geometry per band})]``; a type's minutes
    come from ``node_minutes`` when given, else from ``engine.node_minutes``.
    """
    road = _road_source(engine)
    network = road.network
    graph = sampling_graph(network)
    by_type: dict[str, list[shapely.Geometry]] = {}
    for t in types:
        if node_minutes is not None and t in node_minutes:
            minutes = np.asarray(node_minutes[t], dtype=np.float64)
        else:
            minutes = np.asarray(road.node_minutes(
                services[services["type_service"].astype(str) == t]), dtype=np.float64)
        nodes, reached = _reached_nodes(network, minutes, bands)
        by_type[t] = road_band_geometries_sparse(
            network, nodes, reached, bands, raster=raster, access_speed_kmh=access_speed_kmh,
            graph=graph)
    return [(network.crs, by_type)]


def _road_service_geometries(
    engine: object, services: gpd.GeoDataFrame, bands: Sequence[tuple[float, float]], *,
    access_speed_kmh: float | None, raster: RoadRaster, chunk: int = _SOURCE_CHUNK,
    workers: int = 1,
) -> Iterator[tuple[list[str], list[list[shapely.Geometry]]]]:
    """Draw each service's bands from bounded per-source searches, in chunks of services.

    Yields ``(service ids, one list of EPSG:4326 geometries per band per service)`` for
    each chunk of ``chunk`` services (the progress bar's step), in the order of the
    services. With ``workers`` > 1 the chunks are drawn by that many forked processes
    (when forking is safe, see :func:`_fork_workers`), which read the engine from this
    process's memory and send back the projected geometries: the same geometries, in the
    same order, as in this process (shapely pickles them as WKB, every double exact).
    """
    road = _road_source(engine)
    graph = sampling_graph(road.network)
    step = max(int(chunk), 1)
    starts = list(range(0, len(services), step))
    state = {"road": road, "graph": graph, "services": services, "bands": list(bands),
             "access": access_speed_kmh, "raster": raster, "step": step}
    n_proc = _fork_workers(workers, len(starts))
    if n_proc == 1:
        for s in progress(starts, total=len(starts), desc="isochrones per service",
                          unit="chunk"):
            yield _service_chunk(state, s)
        return
    # the loops compiled (or read from numba's cache) and the engine's lazy search state
    # built once, here, before forking: the children inherit them
    _warm_up(road.network, graph)
    road.node_minutes_per_source_sparse(services.iloc[:1], bands[-1][1])
    _FORK_STATE.update(state)
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=n_proc, mp_context=ctx) as pool:
            futures = [pool.submit(_service_chunk_in_child, s) for s in starts]
            try:
                for future in progress(futures, total=len(futures),
                                       desc="isochrones per service", unit="chunk"):
                    yield _unpack_chunk(*future.result())
            finally:  # an error, or the caller stopping early: chunks not started are dropped
                for future in futures:
                    future.cancel()
    finally:
        _FORK_STATE.clear()


#: What the forked processes of :func:`_road_service_geometries` read (set before forking).
_FORK_STATE: dict[str, Any] = {}


def _fork_workers(workers: int, n_chunks: int) -> int:
    """Return the processes drawing the chunks (1: this process alone).

    More than one only when asked, with more than one chunk, and when forking is safe: a
    ``fork`` start method, this process single-threaded (no lock can be held by another
    thread) and not a daemon. tqdm's monitor thread (started by any progress bar, even a
    hidden one) is let through: it only sleeps and takes tqdm's own lock, which the
    children never use (their progress bar is this process's).
    """
    wanted = max(1, min(int(workers), n_chunks))
    if wanted == 1:
        return 1
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and not isinstance(t, TMonitor)]
    if ("fork" not in multiprocessing.get_all_start_methods() or others
            or multiprocessing.current_process().daemon):
        log.info("isochrones per service drawn in this process: forking is not safe here")
        return 1
    return wanted


def _warm_up(network: RoadNetwork, graph: sp.csr_array) -> None:
    """Compile (or load) the drawing's numba loops in this process, on empty inputs.

    The arrays of the sampling loops are the real ones (their types are the types of the
    calls to come); the raster's loops are warmed up by :func:`_warm_up_raster`.
    """
    args = (np.asarray(graph.indptr), np.asarray(graph.indices), np.asarray(graph.data),
            network.x, network.y, np.zeros(0, dtype=np.int64), np.zeros(0), 1.0, 1.0)
    _samples_box_jit(*args)
    _samples_drop_jit(*args, 0.0, 0.0, 1.0, 1, np.full(1, np.inf, dtype=np.float32))
    _warm_up_raster()


def _service_chunk(state: Mapping[str, Any], start: int
                   ) -> tuple[list[str], list[list[shapely.Geometry]]]:
    """Route and draw the chunk of services starting at row ``start``, in EPSG:4326."""
    road: _RoadSource = state["road"]
    network = road.network
    bands = state["bands"]
    ids, mat = road.node_minutes_per_source_sparse(
        state["services"].iloc[start:start + state["step"]], bands[-1][1])
    ptr = np.asarray(mat.indptr)
    return [str(i) for i in ids], [road_band_geometries_sparse(
        network, mat.indices[ptr[i]:ptr[i + 1]], mat.data[ptr[i]:ptr[i + 1]], bands,
        raster=state["raster"], access_speed_kmh=state["access"], graph=state["graph"],
        wgs84=True) for i in range(len(ids))]


#: A chunk as a forked process sends it back: service ids, bands per service and the
#: flat geometries as shapely ragged arrays (geometry type, coordinates, offsets).
_PackedChunk = tuple[list[str], list[int],
                     tuple[Any, np.ndarray, tuple[np.ndarray, ...]] | list[Any]]


def _service_chunk_in_child(start: int) -> _PackedChunk:
    """:func:`_service_chunk` in a forked process: everything comes from the parent.

    The geometries go back as coordinate and offset arrays (:func:`shapely.to_ragged_array`,
    pickled as raw buffers) rather than one WKB per geometry: the per-service bands hold
    tens of thousands of vertices each, and the arrays cost a copy where WKB costs an
    encoding here and a decoding in the parent. The same doubles come back, in order.
    """
    ids, geoms = _service_chunk(_FORK_STATE, start)
    flat = [g for per_service in geoms for g in per_service]
    counts = [len(per_service) for per_service in geoms]
    if not flat or not (shapely.get_type_id(flat) == _MULTIPOLYGON).all():
        return ids, counts, flat  # ragged arrays would turn a Polygon into a MultiPolygon
    return ids, counts, shapely.to_ragged_array(flat)


#: shapely's type id of MultiPolygon.
_MULTIPOLYGON = 6


def _unpack_chunk(ids: list[str], counts: list[int],
                  packed: tuple[Any, np.ndarray, tuple[np.ndarray, ...]] | list[Any]
                  ) -> tuple[list[str], list[list[shapely.Geometry]]]:
    """Rebuild a chunk of :func:`_service_chunk_in_child` (the same geometries)."""
    flat = packed if isinstance(packed, list) else list(shapely.from_ragged_array(*packed))
    ends = np.cumsum(counts)
    return ids, [flat[end - n:end] for n, end in zip(counts, ends, strict=True)]
