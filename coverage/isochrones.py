"""Isochrone bands: polygons of the land within 0–20, 20–30, 30–45 minutes of a service.

Method (road engine): **buffered reached arcs, rasterised**. Every arc of the road graph is
a straight segment between two consecutive OSM nodes (the topology is not simplified).
Along an arc taking ``w`` minutes, the point at fraction ``f`` from its reached end is at
``t + f·w`` minutes (linear interpolation of the time along the arc), so a partially
reached arc is cut exactly where a band's bound falls. Points are sampled along the arcs
every grid cell and dropped onto a metric grid (``cell_m``, 75 m by default) keeping
the *minimum* time per cell. A grey erosion with a cone over a disc of radius ``buffer_m``
(150 m by default) then gives each cell centre the minutes of the land there: the minimum,
over the road points within ``buffer_m``, of the point's minutes plus the distance at the
engine's connector speed (``settings.access_speed_kmh``, as for a commune's snapping leg).
Cells with no reached road within ``buffer_m`` are unreached (given the top bound plus one
minute, so that the contouring has no mask: masked quads pinch rings into invalid
polygons); enclosed unreached patches smaller than ``min_hole_m2`` (9 ha; 25 ha for the
per-service bands) are filled, being the inside of street blocks. The band ``[a, b)`` is
the filled contour of that field between ``a`` and ``b`` (``contourpy``), so:

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
per-service bands use a 100 m raster (``SERVICE_CELL_M``): there can be hundreds of them.

Method (proxy engine): a ``proxy_cell_m`` grid (500 m) over each territory; each cell's
minutes are the straight distance to the nearest service of the territory × the detour
factor ÷ the proxy speed of the density class of the commune containing the cell
(:func:`coverage.routing.proxy.proxy_minutes`), contoured, then clipped to the territory (the union
of its communes).

Statistics are never computed from these polygons: they are for display and export. Their
accuracy against node minutes is measured by :func:`band_accuracy`.

Outputs are EPSG:4326 GeoDataFrames with the columns ``type_service`` (or ``service_id,
type_service``), ``bande_min``, ``bande_max`` (minutes), ``moteur`` (``road``/``proxy``),
``geometry`` (MultiPolygon). Empty bands are left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import contourpy
import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree

from coverage.errors import CRSError, InputError, MissingColumnError, OutputError, Problem
from coverage.files import atomic_path
from coverage.geo import transformer
from coverage.progress import progress
from coverage.routing.network import RoadNetwork
from coverage.settings import CRS_INPUT_OUTPUT, Settings, metric_crs_for

logger = logging.getLogger(__name__)

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
#: Grid cell of the proxy-engine bands, metres.
PROXY_CELL_M = 500.0
#: Largest number of grid cells of one raster; above it the cell is enlarged (logged).
MAX_CELLS = 40_000_000
#: Default simplification tolerance of the display layers, metres.
DISPLAY_TOLERANCE_M = 50.0
#: Default slack of the per-band accuracy at the lower bound of a band, minutes.
ACCURACY_SLACK_MIN = 1.0
#: Nodes this many minutes beyond a band's upper bound must not be inside it, minutes.
ACCURACY_BEYOND_MIN = 5.0

LAYER_SERVICES = "isochrones_services"
LAYER_TYPES = "isochrones_types"
LAYER_SERVICES_DISPLAY = "isochrones_services_affichage"
LAYER_TYPES_DISPLAY = "isochrones_types_affichage"
#: Column of the display layers holding their simplification tolerance, metres.
TOLERANCE_COLUMN = "tolerance_affichage_m"

TYPES_COLUMNS = ("type_service", "bande_min", "bande_max", "moteur")
SERVICES_COLUMNS = ("service_id", "type_service", "bande_min", "bande_max", "moteur")

#: Field values this close to a band bound are lifted above it before contouring, minutes.
_LEVEL_EPS_MIN = 1e-6
#: Services processed per bounded per-source call (one step of the progress bar).
_SOURCE_CHUNK = 16


class _IsochroneEngine(Protocol):
    name: str


@dataclass(frozen=True)
class _Grid:
    """A regular grid of cell centres in a metric CRS."""

    x0: float  # centre of the first column, metres
    y0: float  # centre of the first row, metres
    cell: float
    nx: int
    ny: int

    @classmethod
    def around(cls, xmin: float, ymin: float, xmax: float, ymax: float, cell: float,
               pad: float) -> _Grid:
        """Grid covering a box padded by ``pad`` metres, cell enlarged beyond MAX_CELLS."""
        width, height = xmax - xmin + 2 * pad, ymax - ymin + 2 * pad
        n = (width / cell + 1) * (height / cell + 1)
        if n > MAX_CELLS:
            new_cell = cell * math.sqrt(n / MAX_CELLS) * 1.01
            logger.warning("isochrone grid of %.0f cells: cell enlarged from %.0f m to %.0f m",
                           n, cell, new_cell)
            cell = new_cell
        nx = math.ceil(width / cell) + 1
        ny = math.ceil(height / cell) + 1
        return cls(xmin - pad, ymin - pad, cell, nx, ny)

    def index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat index of the cell whose centre is nearest to each point."""
        ix = np.clip(np.rint((x - self.x0) / self.cell).astype(np.int64), 0, self.nx - 1)
        iy = np.clip(np.rint((y - self.y0) / self.cell).astype(np.int64), 0, self.ny - 1)
        return iy * self.nx + ix

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """1-D arrays of the column and row centre coordinates, metres."""
        return (self.x0 + self.cell * np.arange(self.nx),
                self.y0 + self.cell * np.arange(self.ny))


# --- Bands ---------------------------------------------------------------------------------

def bands_from_thresholds(thresholds_min: Sequence[float]) -> list[tuple[float, float]]:
    """Bands ``[(0, t1), (t1, t2), …]`` from the thresholds, minutes.

    Parameters
    ----------
    thresholds_min
        Positive thresholds, minutes, in any order (duplicates are dropped).

    Raises
    ------
    InputError
        A threshold is not a positive finite number, or there is none.
    """
    values = sorted({float(t) for t in thresholds_min})
    if not values or not all(math.isfinite(t) and t > 0 for t in values):
        raise InputError(Problem("settings", None, "thresholds_min",
                                 "one or more positive finite minutes",
                                 str(list(thresholds_min))))
    lows = [0.0, *values[:-1]]
    return list(zip(lows, values, strict=True))


# --- Road engine: arcs → samples → field → contours ----------------------------------------

def _arc_samples(
    graph: sp.csr_array, x: np.ndarray, y: np.ndarray, reached: np.ndarray,
    t_nodes: np.ndarray, *, step_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points along the arcs leaving the ``reached`` nodes, with their minutes.

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


def _disc(radius_cells: float) -> tuple[np.ndarray, np.ndarray]:
    """Disc footprint of a radius in cells, and each cell's distance to the centre (cells)."""
    r = max(math.floor(radius_cells), 0)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    dist = np.hypot(xx, yy)
    return np.asarray(dist <= radius_cells + 1e-9), dist


def _fill_small_holes(field: np.ndarray, max_cells: float,
                      access_min_per_cell: float) -> np.ndarray:
    """Fill the unreached patches smaller than ``max_cells`` that do not touch the grid
    edge with the earliest minutes of the reached cells within ``r`` cells, plus ``r``
    cells at the access speed (``access_min_per_cell`` minutes per cell; 0: flat fill).
    """
    unreached = ~np.isfinite(field)
    if max_cells <= 0 or not unreached.any():
        return field
    labels, n = ndimage.label(unreached)
    if n == 0:
        return field
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    small = sizes <= max_cells
    small[0] = False
    small[edge] = False
    if not small.any():
        return field
    todo = np.flatnonzero(small[labels])
    out = np.array(field, copy=True, order="C")
    flat = out.reshape(-1)  # a view: writing it fills out
    # a patch of at most max_cells cells has no cell farther than r from its edge: one
    # (2r + 1)² minimum filter reaches every cell (a wider pass finishes odd shapes)
    r = max(math.ceil(math.sqrt(max_cells) / 2), 1)
    while todo.size:
        grown = ndimage.minimum_filter(field, size=2 * r + 1, mode="constant", cval=np.inf)
        values = grown.reshape(-1)[todo] + np.asarray(r * access_min_per_cell,
                                                      dtype=field.dtype)
        ready = np.isfinite(values)
        flat[todo[ready]] = values[ready]
        todo = todo[~ready]
        r *= 2
    return out


def _field_from_samples(
    xs: np.ndarray, ys: np.ndarray, ts: np.ndarray, *, cell_m: float, buffer_m: float,
    access_m_per_min: float | None = None, min_hole_m2: float = 0.0,
) -> tuple[_Grid, np.ndarray]:
    """Minutes of the land: ``min(t(p) + d(p)/access speed)`` over the samples ``p`` within
    ``buffer_m`` of each cell centre (``d`` the distance, no access term when the speed is
    None); +inf where there is none (masked by the contouring).
    """
    pad = buffer_m + 2 * cell_m
    grid = _Grid.around(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()),
                        cell_m, pad)
    field = np.full(grid.nx * grid.ny, np.inf, dtype=np.float32)
    np.minimum.at(field, grid.index(xs, ys), ts.astype(np.float32))
    field2d = field.reshape(grid.ny, grid.nx)
    radius = buffer_m / grid.cell
    if radius >= 1.0:
        footprint, dist = _disc(radius)
        if access_m_per_min is None:
            field2d = ndimage.minimum_filter(field2d, footprint=footprint, mode="constant",
                                             cval=np.inf)
        else:  # grey erosion with a cone: min over the disc of t + distance / speed
            cone = (-dist * grid.cell / access_m_per_min).astype(np.float32)
            field2d = ndimage.grey_erosion(field2d, footprint=footprint, structure=cone,
                                           mode="constant", cval=np.inf)
    access_per_cell = 0.0 if access_m_per_min is None else grid.cell / access_m_per_min
    field2d = _fill_small_holes(field2d, min_hole_m2 / grid.cell**2, access_per_cell)
    return grid, field2d


def _contour_bands(
    grid: _Grid, field: np.ndarray, bands: Sequence[tuple[float, float]],
) -> list[shapely.Geometry]:
    """One (Multi)Polygon per band from the filled contours of ``field`` (metric CRS).

    Unreached cells (non-finite) take the top bound plus one minute rather than a mask:
    the edges of masked quads pinch rings into self-touching (invalid) polygons, while a
    finite field gives marching squares with saddle disambiguation, hence valid rings. The
    edge then lies between the last reached cell centre and the next one (by
    interpolation), within one cell of where a mask would put it.
    """
    xc, yc = grid.centres()
    top = max(high for _, high in bands)
    z = np.where(np.isfinite(field), field, top + 1.0).astype(np.float64)
    # a value within rounding of a level puts the contour through the grid point itself,
    # where two quads' rings then touch (invalid): lift such values clear of the level
    for low, high in bands:
        for level in (low, high):
            close = np.abs(z - level) <= _LEVEL_EPS_MIN
            z[close] = level + 2 * _LEVEL_EPS_MIN
    gen = contourpy.contour_generator(
        xc, yc, z, name="serial", fill_type=contourpy.FillType.ChunkCombinedOffsetOffset,
    )
    out: list[shapely.Geometry] = []
    for low, high in bands:
        # contourpy fills low < z <= high: start the first band below zero to keep z == 0
        lower = low if low > 0 else -1.0
        points, offsets, outer = gen.filled(lower, high)  # type: ignore[misc]
        out.append(_polygons_from_contour(points[0], offsets[0], outer[0]))
    return out


def _polygons_from_contour(points: Any, offsets: Any, outer: Any) -> shapely.Geometry:
    if points is None or len(points) == 0:
        return shapely.MultiPolygon()
    polys = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, np.asarray(points, dtype=np.float64),
        (np.asarray(offsets, dtype=np.int64), np.asarray(outer, dtype=np.int64)),
    )
    # filled contours of one band are valid and disjoint (tested): no costly re-validation
    return shapely.multipolygons(polys)


def _as_multipolygon(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal parts of a valid geometry as one MultiPolygon (no validity check)."""
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    if geom.geom_type == "MultiPolygon":
        return geom
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    return shapely.MultiPolygon(parts)


def _as_valid_multipolygon(geom: shapely.Geometry) -> shapely.Geometry:
    """A valid MultiPolygon (repairs with make_valid and keeps the polygonal parts)."""
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return shapely.MultiPolygon()
    return shapely.MultiPolygon(parts)


def sampling_graph(network: RoadNetwork, direction: str = "to_service") -> sp.csr_array:
    """The arcs along which node minutes spread, as a CSR matrix of minutes.

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


def road_band_geometries(
    network: RoadNetwork, minutes: np.ndarray, bands: Sequence[tuple[float, float]], *,
    direction: str = "to_service", buffer_m: float = BUFFER_M, cell_m: float = CELL_M,
    access_speed_kmh: float | None = Settings().access_speed_kmh,
    min_hole_m2: float = MIN_HOLE_M2, graph: sp.csr_array | None = None,
) -> list[shapely.Geometry]:
    """Band polygons in ``network.crs`` from the minutes of every node.

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
    graph
        ``sampling_graph(network, direction)`` when the caller reuses it across calls.

    Returns
    -------
    list of shapely geometries
        One valid MultiPolygon per band (possibly empty), in ``network.crs`` (metres).
    """
    minutes = np.asarray(minutes)
    if minutes.shape != (network.n_nodes,):
        msg = (f"node minutes have shape {minutes.shape}, expected ({network.n_nodes},): "
               "one value per network node")
        raise ValueError(msg)
    limit = max(high for _, high in bands)
    reached = np.flatnonzero(minutes < limit)  # NaN compares False: unreachable dropped
    return road_band_geometries_sparse(
        network, reached, minutes[reached], bands, direction=direction, buffer_m=buffer_m,
        cell_m=cell_m, access_speed_kmh=access_speed_kmh, min_hole_m2=min_hole_m2,
        graph=graph)


def road_band_geometries_sparse(
    network: RoadNetwork, nodes: np.ndarray, minutes: np.ndarray,
    bands: Sequence[tuple[float, float]], *, direction: str = "to_service",
    buffer_m: float = BUFFER_M, cell_m: float = CELL_M,
    access_speed_kmh: float | None = Settings().access_speed_kmh,
    min_hole_m2: float = MIN_HOLE_M2, graph: sp.csr_array | None = None,
) -> list[shapely.Geometry]:
    """:func:`road_band_geometries` from the reached nodes only (sparse minutes).

    Parameters
    ----------
    nodes
        Indices of the reached nodes (e.g. from
        ``RoadEngine.node_minutes_per_source_sparse``); nodes not listed are unreached.
    minutes
        Minutes of those nodes (same length), connector legs included.
    network, bands, direction, buffer_m, cell_m, access_speed_kmh, min_hole_m2, graph
        As in :func:`road_band_geometries`.

    Returns
    -------
    list of shapely geometries
        One valid MultiPolygon per band (possibly empty), in ``network.crs`` (metres).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    minutes = np.asarray(minutes, dtype=np.float64)
    if nodes.shape != minutes.shape or nodes.ndim != 1:
        msg = f"nodes {nodes.shape} and minutes {minutes.shape} must be 1-D of equal length"
        raise ValueError(msg)
    if buffer_m <= 0 or cell_m <= 0:
        msg = f"buffer_m and cell_m must be positive metres, got {buffer_m} and {cell_m}"
        raise ValueError(msg)
    if graph is None:
        graph = sampling_graph(network, direction)
    limit = max(high for _, high in bands)
    # nodes of a crossing (on the water) are not land: their minutes still reached the far
    # shore through the routing, whose roads are drawn from their own minutes
    keep = (minutes < limit) & ~network.ferry_only_nodes[nodes]
    # one sample per cell crossed is enough: the erosion spreads it over buffer_m
    xs, ys, ts = _arc_samples(graph, network.x, network.y, nodes[keep], minutes[keep],
                              step_m=cell_m)
    # points a minute beyond the top bound let the contour interpolate there instead of
    # stopping at the mask; farther ones (the rest of a long arc) only enlarge the grid
    keep = ts <= limit + 1.0
    if not (ts < limit).any():
        return [shapely.MultiPolygon() for _ in bands]
    access = None if access_speed_kmh is None else access_speed_kmh * 1000.0 / 60.0
    grid, field = _field_from_samples(xs[keep], ys[keep], ts[keep], cell_m=cell_m,
                                      buffer_m=buffer_m, access_m_per_min=access,
                                      min_hole_m2=min_hole_m2)
    return _contour_bands(grid, field, bands)


# --- Proxy engine ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _ProxyTerritory:
    """Proxy grid of one territory (one metric CRS)."""

    crs: str
    grid: _Grid
    min_per_m: np.ndarray  # proxy minutes per straight-line metre of each cell (ny, nx)
    xc: np.ndarray  # cell centres (ny, nx), metres
    yc: np.ndarray
    union: shapely.Geometry  # the territory (union of its communes), metric CRS


def _proxy_territory(communes_m: gpd.GeoDataFrame, settings: Settings, cell_m: float,
                     crs: str) -> _ProxyTerritory:
    """Grid over the communes; each cell takes the density class of its commune."""
    from coverage.routing.proxy import proxy_minutes

    dens = pd.to_numeric(communes_m["densite"], errors="coerce").to_numpy(dtype=np.float64)
    known = np.array(sorted(settings.proxy_speed_kmh_by_density), dtype=np.float64)
    bad = np.flatnonzero(~np.isin(dens, known))
    if bad.size:
        raise InputError([
            Problem("communes", int(i) + 1, "densite",
                    f"an INSEE density level among {[int(k) for k in known]}",
                    str(communes_m["densite"].iloc[i]))
            for i in bad[:20]
        ])
    per_m = proxy_minutes(np.ones(dens.shape), dens.astype(np.int64), settings)
    geoms = communes_m.geometry.to_numpy()
    union = shapely.union_all(geoms)
    xmin, ymin, xmax, ymax = union.bounds
    grid = _Grid.around(xmin, ymin, xmax, ymax, cell_m, cell_m)
    xc, yc = grid.centres()
    gx, gy = np.meshgrid(xc, yc)
    cell_per_m = np.full(gx.shape, np.nan)
    # rasterise the communes: each cell centre takes its commune's minutes per metre
    for geom, value in zip(geoms, per_m, strict=True):
        if geom is None or geom.is_empty:
            continue
        bx0, by0, bx1, by1 = geom.bounds
        c0, c1 = np.searchsorted(xc, [bx0, bx1])
        r0, r1 = np.searchsorted(yc, [by0, by1])
        if c1 <= c0 or r1 <= r0:
            continue
        inside = shapely.contains_xy(geom, gx[r0:r1, c0:c1], gy[r0:r1, c0:c1])
        cell_per_m[r0:r1, c0:c1][inside] = value
    # cells outside every commune (border, slivers) take the value of the nearest cell
    # inside; the bands are clipped to the territory at the end
    missing = np.isnan(cell_per_m)
    if missing.all():
        cell_per_m[:] = float(np.nanmin(per_m))
    elif missing.any():
        nearest = ndimage.distance_transform_edt(missing, return_distances=False,
                                                 return_indices=True)
        cell_per_m = cell_per_m[nearest[0], nearest[1]]
    shapely.prepare(union)
    return _ProxyTerritory(crs, grid, cell_per_m, gx, gy, union)


def _proxy_band_geometries(terr: _ProxyTerritory, minutes: np.ndarray,
                           bands: Sequence[tuple[float, float]],
                           window: tuple[slice, slice] | None = None) -> list[shapely.Geometry]:
    """Contours of a proxy minutes field (whole grid or a window), clipped to the territory."""
    grid = terr.grid
    sub = grid
    if window is not None:
        sy, sx = window
        sub = _Grid(float(terr.xc[0, sx.start]), float(terr.yc[sy.start, 0]), grid.cell,
                    sx.stop - sx.start, sy.stop - sy.start)
    out = []
    for g in _contour_bands(sub, np.ma.masked_invalid(minutes), bands):
        if not g.is_empty:
            g = shapely.intersection(g, shapely.clip_by_rect(terr.union, *g.bounds))
        out.append(_as_multipolygon(g))
    return out


def _territory_of(frame: gpd.GeoDataFrame, crs: str | None) -> np.ndarray:
    """Metric CRS of each row: ``crs`` when given, else from ``code_dep``, else location."""
    from coverage.routing.network import metric_crs_for_lonlat

    if crs is not None:
        return np.full(len(frame), crs, dtype=object)
    out = np.empty(len(frame), dtype=object)
    deps = (frame["code_dep"].to_numpy(dtype=object) if "code_dep" in frame.columns
            else np.full(len(frame), None, dtype=object))
    points = frame.geometry.representative_point() if len(frame) else frame.geometry
    for i, dep in enumerate(deps):
        if isinstance(dep, str) and dep:
            out[i] = metric_crs_for(dep)
        else:
            p = points.iloc[i]
            out[i] = metric_crs_for_lonlat(float(p.x), float(p.y))
    return out


def _proxy_groups(communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, crs: str | None
                  ) -> list[tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame]]:
    """Communes and services of each territory (metric CRS), as the proxy engine pairs them."""
    _require(communes, ["densite", "geometry"], "communes")
    _check_crs(communes, "communes")
    _check_crs(services, "services")
    c_crs = _territory_of(communes, crs)
    s_crs = _territory_of(services, crs)
    groups = []
    for territory in sorted({str(c) for c in c_crs}):
        cm = communes[c_crs == territory].to_crs(territory)
        sv = services[s_crs == territory].to_crs(territory)
        groups.append((territory, cm, sv))
    return groups


# --- Inputs ----------------------------------------------------------------------------------

def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnError([Problem(name, None, c, "a column named " + repr(c))
                                  for c in missing])


def _check_crs(frame: gpd.GeoDataFrame, name: str) -> None:
    if getattr(frame, "crs", None) is None:
        msg = (f"{name} has no CRS: set it (set_crs('{CRS_INPUT_OUTPUT}')) before computing "
               "isochrones")
        raise CRSError(msg)


def _network_of(engine: Any) -> RoadNetwork:
    network = getattr(engine, "network", None)
    if not isinstance(network, RoadNetwork):
        msg = (f"the {getattr(engine, 'name', '?')!r} engine exposes no road network "
               "(attribute 'network'): road isochrones need the RoadEngine")
        raise TypeError(msg)
    return network


def _types_of(services: pd.DataFrame, settings: Settings) -> list[str]:
    present = set(services["type_service"].astype(str))
    return [t for t in settings.service_types if t in present]


def _to_wgs84(geoms: list[shapely.Geometry], crs: str) -> list[shapely.Geometry]:
    """Metric MultiPolygons → EPSG:4326 MultiPolygons (every vertex through pyproj)."""
    if not geoms:
        return []
    to_wgs84 = transformer(crs, CRS_INPUT_OUTPUT)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    moved = shapely.transform(np.asarray([_as_multipolygon(g) for g in geoms], dtype=object),
                              project)
    return list(moved)


def _merge_parts(parts: list[shapely.Geometry]) -> shapely.Geometry:
    """One MultiPolygon from the bands of disjoint territories."""
    if len(parts) == 1:
        return parts[0]
    return _as_multipolygon(shapely.union_all(parts))


def _frame(rows: list[dict[str, Any]], columns: Sequence[str],
           geoms: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    """EPSG:4326 GeoDataFrame of band rows (empty geometries left out)."""
    keep = [i for i, g in enumerate(geoms) if not g.is_empty]
    df = pd.DataFrame([rows[i] for i in keep], columns=list(columns))
    for col in ("bande_min", "bande_max"):
        df[col] = df[col].astype("float64")
    for col in columns:
        if col not in ("bande_min", "bande_max"):
            df[col] = df[col].astype(object)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([geoms[i] for i in keep],
                                                       crs=CRS_INPUT_OUTPUT))


# --- Public API ------------------------------------------------------------------------------

def isochrones_types(
    engine: _IsochroneEngine, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
    settings: Settings = Settings(), node_minutes: Mapping[str, np.ndarray] | None = None,
    buffer_m: float = BUFFER_M, cell_m: float = CELL_M, proxy_cell_m: float = PROXY_CELL_M,
    crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Bands of the nearest service of each type, merged over the services of that type.

    Parameters
    ----------
    engine
        The run's engine: ``RoadEngine`` (``name == "road"``, attribute ``network``,
        method ``node_minutes``) or ``ProxyEngine`` (``name == "proxy"``).
    communes
        Communes of the territory, EPSG:4326 polygons. The proxy engine needs ``densite``
        (and ``code_dep`` to pick each territory's metric CRS) and clips to their union.
    services
        Service points, EPSG:4326, with ``service_id``, ``type_service`` (and ``lon``,
        ``lat`` for the road engine).
    settings
        ``thresholds_min`` give the bands (0–t1, t1–t2, …), ``service_types`` the types.
    node_minutes
        Road engine only: minutes from every node to the nearest service, by type, when
        the caller already has them (one multi-source pass per type, direction
        ``to_service``); otherwise ``engine.node_minutes`` is called once per type.
    buffer_m, cell_m
        Road engine: width of land around reached roads, raster cell, metres.
    proxy_cell_m
        Proxy engine: grid cell, metres.
    crs
        Proxy engine: one metric CRS for everything (default: per territory,
        :func:`coverage.settings.metric_crs_for`). The road engine works in the
        network's CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``type_service, bande_min, bande_max, moteur, geometry``
        (MultiPolygon); one row per type × non-empty band.
    """
    _require(services, ["service_id", "type_service"], "services")
    bands = bands_from_thresholds(settings.thresholds_min)
    types = _types_of(services, settings)
    parts: dict[tuple[str, int], list[shapely.Geometry]] = {}
    if engine.name == "road":
        network = _network_of(engine)
        graph = sampling_graph(network)
        for t in types:
            if node_minutes is not None and t in node_minutes:
                minutes = np.asarray(node_minutes[t], dtype=np.float64)
            else:
                minutes = np.asarray(engine.node_minutes(  # type: ignore[attr-defined]
                    services[services["type_service"].astype(str) == t]), dtype=np.float64)
            geoms = road_band_geometries(network, minutes, bands, buffer_m=buffer_m,
                                         cell_m=cell_m, graph=graph,
                                         access_speed_kmh=settings.access_speed_kmh)
            for k, g in enumerate(_to_wgs84(geoms, network.crs)):
                parts.setdefault((t, k), []).append(g)
    else:
        for territory, cm, sv in _proxy_groups(communes, services, crs):
            terr = _proxy_territory(cm, settings, proxy_cell_m, territory)
            for t in types:
                pts = sv[sv["type_service"].astype(str) == t].geometry
                if len(pts) == 0:
                    continue
                tree = cKDTree(np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()]))
                dist, _ = tree.query(np.column_stack([terr.xc.ravel(), terr.yc.ravel()]))
                field = dist.reshape(terr.xc.shape) * terr.min_per_m
                geoms = _proxy_band_geometries(terr, field, bands)
                for k, g in enumerate(_to_wgs84(geoms, territory)):
                    parts.setdefault((t, k), []).append(g)
    rows: list[dict[str, Any]] = []
    out: list[shapely.Geometry] = []
    for t in types:
        for k, (low, high) in enumerate(bands):
            if (t, k) in parts:
                rows.append({"type_service": t, "bande_min": low, "bande_max": high,
                             "moteur": engine.name})
                out.append(_merge_parts(parts[(t, k)]))
    logger.info("isochrones by type: %d bands for %d types (%s engine)", len(rows),
                len(types), engine.name)
    return _frame(rows, TYPES_COLUMNS, out)


def isochrones_services(
    engine: _IsochroneEngine, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
    settings: Settings = Settings(), buffer_m: float = BUFFER_M,
    cell_m: float = SERVICE_CELL_M, min_hole_m2: float = SERVICE_MIN_HOLE_M2,
    proxy_cell_m: float = PROXY_CELL_M, crs: str | None = None, chunk: int = _SOURCE_CHUNK,
) -> gpd.GeoDataFrame:
    """Bands of each service from a search bounded at the largest threshold.

    Parameters
    ----------
    engine, communes, services, settings, buffer_m, proxy_cell_m, crs
        As in :func:`isochrones_types`. The road engine's
        ``node_minutes_per_source_sparse(services, cutoff_min)`` gives each service's
        reached nodes and minutes (direction ``to_service``, connector leg included), in
        chunks of services.
    cell_m
        Road engine raster cell, metres (:data:`SERVICE_CELL_M`).
    min_hole_m2
        Road engine: enclosed unreached patches smaller than this are filled, m²
        (:data:`SERVICE_MIN_HOLE_M2`).
    chunk
        Services per bounded call (the progress bar's step; memory follows the nodes
        each service reaches).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``service_id, type_service, bande_min, bande_max, moteur,
        geometry`` (MultiPolygon); one row per service × non-empty band. Services of a type
        not in ``settings.service_types`` are left out.
    """
    _require(services, ["service_id", "type_service"], "services")
    bands = bands_from_thresholds(settings.thresholds_min)
    cutoff = bands[-1][1]
    wanted = services[services["type_service"].astype(str).isin(settings.service_types)]
    type_of = dict(zip(wanted["service_id"].astype(str), wanted["type_service"].astype(str),
                       strict=True))
    rows: list[dict[str, Any]] = []
    out: list[shapely.Geometry] = []

    def add(sids: list[str], metric: list[list[shapely.Geometry]], crs_: str) -> None:
        flat = _to_wgs84([g for gs in metric for g in gs], crs_)
        for i, sid in enumerate(sids):
            for k, (low, high) in enumerate(bands):
                rows.append({"service_id": sid, "type_service": type_of[sid],
                             "bande_min": low, "bande_max": high, "moteur": engine.name})
                out.append(flat[i * len(bands) + k])

    if engine.name == "road":
        network = _network_of(engine)
        graph = sampling_graph(network)
        step = max(int(chunk), 1)
        starts = range(0, len(wanted), step)
        for s in progress(starts, total=len(starts), desc="isochrones per service",
                          unit="chunk"):
            ids, mat = engine.node_minutes_per_source_sparse(  # type: ignore[attr-defined]
                wanted.iloc[s:s + step], cutoff)
            ptr = np.asarray(mat.indptr)
            add([str(i) for i in ids],
                [road_band_geometries_sparse(
                    network, mat.indices[ptr[i]:ptr[i + 1]], mat.data[ptr[i]:ptr[i + 1]],
                    bands, buffer_m=buffer_m, cell_m=cell_m, graph=graph,
                    access_speed_kmh=settings.access_speed_kmh, min_hole_m2=min_hole_m2)
                 for i in range(len(ids))], network.crs)
    else:
        for territory, cm, sv in _proxy_groups(communes, wanted, crs):
            if len(sv) == 0:
                continue
            terr = _proxy_territory(cm, settings, proxy_cell_m, territory)
            grid = terr.grid
            fastest = float(np.nanmin(terr.min_per_m))  # minutes per metre
            reach = cutoff / fastest + 2 * grid.cell
            sids, metric = [], []
            for sid, pt in progress(zip(sv["service_id"].astype(str), sv.geometry,
                                        strict=True), total=len(sv),
                                    desc="isochrones per service", unit="service"):
                c0 = max(int((pt.x - reach - grid.x0) // grid.cell), 0)
                c1 = min(int((pt.x + reach - grid.x0) // grid.cell) + 2, grid.nx)
                r0 = max(int((pt.y - reach - grid.y0) // grid.cell), 0)
                r1 = min(int((pt.y + reach - grid.y0) // grid.cell) + 2, grid.ny)
                sids.append(sid)
                if c1 - c0 < 2 or r1 - r0 < 2:  # the service is far outside the territory
                    metric.append([shapely.MultiPolygon() for _ in bands])
                    continue
                win = (slice(r0, r1), slice(c0, c1))
                dist = np.hypot(terr.xc[win] - pt.x, terr.yc[win] - pt.y)
                metric.append(_proxy_band_geometries(terr, dist * terr.min_per_m[win], bands,
                                                     window=win))
            add(sids, metric, territory)
    result = _frame(rows, SERVICES_COLUMNS, out)
    logger.info("isochrones per service: %d bands for %d services (%s engine)", len(result),
                len(wanted), engine.name)
    return result


# --- Accuracy ----------------------------------------------------------------------------------

def band_accuracy(
    bands: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, minutes: np.ndarray, *, crs: str,
    slack_min: float = ACCURACY_SLACK_MIN, beyond_min: float = ACCURACY_BEYOND_MIN,
    tolerance_m: float = 0.0,
) -> pd.DataFrame:
    """Accuracy of band polygons against the minutes of the road nodes.

    Parameters
    ----------
    bands
        Bands of **one** source set (one type, or one service): ``bande_min``,
        ``bande_max``, geometry in any CRS (projected to ``crs``).
    x, y
        Node coordinates in ``crs``, metres.
    minutes
        Minutes between each node and the same sources, NaN only when unreachable: pass
        minutes without a cut-off (a search bounded at the top threshold would make nodes
        just beyond it look unreachable, hence "beyond").
    crs
        CRS of ``x``/``y``.
    slack_min
        Tolerance at the lower bound of a band: a node reached within ``slack_min`` minutes
        after ``bande_min`` may lie in the previous band (the reach of a road point covers
        ``buffer_m`` of land, which may hold a road reached a little earlier).
    beyond_min
        Nodes reached more than this many minutes after ``bande_max`` (or never) must not be
        inside the union of the bands up to ``bande_max``.
    tolerance_m
        Tolerance of the per-band share at the band's edges, metres: a node of the band
        outside its polygon but within this distance of it counts as inside (use the
        buffer width: land within ``buffer_m`` of a road reached earlier shows in the
        earlier band, as on hairpin bends and one-way loops).

    Returns
    -------
    pandas.DataFrame
        One row per band: ``bande_min``, ``bande_max``, ``n_atteints`` (nodes with minutes
        < bande_max), ``part_atteints_dedans`` (share of them inside the union of bands up
        to bande_max), ``n_bande`` (nodes with minutes in [bande_min + slack, bande_max)),
        ``part_bande_dedans`` (share of them inside this band's polygon, or within
        ``tolerance_m`` of it), ``n_au_dela``
        (nodes unreachable or beyond bande_max + beyond_min), ``part_au_dela_dedans``
        (share of them inside the union up to bande_max). Shares are NaN when a count is 0.
    """
    _require(bands, ["bande_min", "bande_max", "geometry"], "bands")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    minutes = np.asarray(minutes, dtype=float)
    metric = bands.to_crs(crs) if bands.crs is not None else bands
    metric = metric.sort_values("bande_max")
    reached = np.isfinite(minutes)
    out = []
    inside_union = np.zeros(x.shape, dtype=bool)
    for low, high, geom in zip(metric["bande_min"], metric["bande_max"], metric.geometry,
                               strict=True):
        shapely.prepare(geom)
        inside = shapely.contains_xy(geom, x, y) | shapely.intersects_xy(geom, x, y)
        inside_union |= inside
        within = reached & (minutes < high)
        in_band = reached & (minutes >= low + (slack_min if low > 0 else 0.0)) & (minutes < high)
        near = inside.copy()
        if tolerance_m > 0:
            check = np.flatnonzero(in_band & ~inside)
            near[check] = shapely.dwithin(geom, shapely.points(x[check], y[check]),
                                          tolerance_m)
        beyond = ~reached | (minutes > high + beyond_min)
        out.append({
            "bande_min": float(low), "bande_max": float(high),
            "n_atteints": int(within.sum()),
            "part_atteints_dedans": _share(inside_union, within),
            "n_bande": int(in_band.sum()),
            "part_bande_dedans": _share(near, in_band),
            "n_au_dela": int(beyond.sum()),
            "part_au_dela_dedans": _share(inside_union, beyond),
        })
    return pd.DataFrame(out)


def types_accuracy(
    engine: _IsochroneEngine, types_gdf: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
    settings: Settings = Settings(), tolerance_m: float = BUFFER_M,
) -> pd.DataFrame:
    """:func:`band_accuracy` of the merged bands of each type against the road nodes.

    Parameters
    ----------
    engine
        The ``RoadEngine`` that drew ``types_gdf`` (its network and ``node_minutes``).
    types_gdf
        From :func:`isochrones_types` (EPSG:4326).
    services
        The services the bands were drawn from.
    settings
        ``service_types`` to report.
    tolerance_m
        Edge tolerance of the per-band share, metres (the buffer width).

    Returns
    -------
    pandas.DataFrame
        ``type_service`` plus the columns of :func:`band_accuracy`, one row per type × band;
        empty for the proxy engine (it has no road nodes).
    """
    if engine.name != "road":
        return pd.DataFrame()
    network = _network_of(engine)
    frames = []
    for t in settings.service_types:
        bands = types_gdf[types_gdf["type_service"] == t]
        chosen = services[services["type_service"].astype(str) == t]
        if bands.empty or chosen.empty:
            continue
        minutes = engine.node_minutes(chosen)  # type: ignore[attr-defined]
        acc = band_accuracy(bands, network.x, network.y, minutes, crs=network.crs,
                            tolerance_m=tolerance_m)
        acc.insert(0, "type_service", t)
        frames.append(acc)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _share(flag: np.ndarray, among: np.ndarray) -> float:
    n = int(among.sum())
    return float((flag & among).sum() / n) if n else float("nan")


# --- Writing -------------------------------------------------------------------------------------

def display_version(gdf: gpd.GeoDataFrame, tolerance_m: float,
                    group: Sequence[str]) -> gpd.GeoDataFrame:
    """Simplified copy for the map, tolerance recorded in ``tolerance_affichage_m``.

    Bands of one group (one type, or one service) share their edges: they are simplified
    together (:func:`shapely.coverage_simplify`) so that no gap or overlap appears between
    them. The work is done in the frame's local UTM CRS (metres); the result is EPSG:4326.

    Parameters
    ----------
    gdf
        Bands, EPSG:4326.
    tolerance_m
        Simplification tolerance, metres (>= 0).
    group
        Columns identifying the bands that form one coverage.
    """
    if tolerance_m < 0 or not math.isfinite(tolerance_m):
        msg = f"display tolerance must be a non-negative number of metres, got {tolerance_m}"
        raise ValueError(msg)
    out = gdf.copy()
    out[TOLERANCE_COLUMN] = float(tolerance_m)
    if len(out) == 0 or tolerance_m == 0:
        return out
    metric_crs = out.estimate_utm_crs()
    metric = out.geometry.to_crs(metric_crs)
    simplified = metric.copy()
    for _, idx in out.groupby(list(group), sort=False).indices.items():
        geoms = metric.iloc[idx].to_numpy()
        try:
            new = shapely.coverage_simplify(geoms, tolerance_m)
        except shapely.errors.GEOSException:
            new = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
        simplified.iloc[idx] = [_as_valid_multipolygon(g) for g in new]
    out["geometry"] = simplified.to_crs(CRS_INPUT_OUTPUT).to_numpy()
    out["geometry"] = [_as_valid_multipolygon(g) for g in out.geometry]
    return out


def _check_layer(gdf: gpd.GeoDataFrame, columns: Sequence[str], name: str) -> None:
    _require(gdf, [*columns, "geometry"], name)
    if gdf.crs is None or not gdf.crs.equals(CRS_INPUT_OUTPUT):
        msg = f"{name} must be in {CRS_INPUT_OUTPUT}, found {gdf.crs}: call to_crs('EPSG:4326')"
        raise CRSError(msg)


def write_isochrones(
    types_gdf: gpd.GeoDataFrame, services_gdf: gpd.GeoDataFrame, path: str | Path, *,
    geojson_dir: str | Path | None = None, display_tolerance_m: float = DISPLAY_TOLERANCE_M,
) -> list[Path]:
    """Write ``isochrones.gpkg`` (and GeoJSON files on request), atomically.

    Layers: ``isochrones_services``, ``isochrones_types`` (exact bands) and
    ``isochrones_services_affichage``, ``isochrones_types_affichage`` (simplified for the
    map; column ``tolerance_affichage_m`` holds the tolerance, metres).

    Parameters
    ----------
    types_gdf
        From :func:`isochrones_types`, EPSG:4326.
    services_gdf
        From :func:`isochrones_services`, EPSG:4326.
    path
        The GeoPackage to write (replaced atomically).
    geojson_dir
        When given, also write ``<layer>.geojson`` for each of the four layers there.
    display_tolerance_m
        Simplification tolerance of the display layers, metres.

    Returns
    -------
    list of pathlib.Path
        Files written.
    """
    _check_layer(types_gdf, TYPES_COLUMNS, LAYER_TYPES)
    _check_layer(services_gdf, SERVICES_COLUMNS, LAYER_SERVICES)
    layers = {
        LAYER_SERVICES: services_gdf[[*SERVICES_COLUMNS, "geometry"]],
        LAYER_TYPES: types_gdf[[*TYPES_COLUMNS, "geometry"]],
    }
    layers[LAYER_SERVICES_DISPLAY] = display_version(
        layers[LAYER_SERVICES], display_tolerance_m, ["service_id"])
    layers[LAYER_TYPES_DISPLAY] = display_version(
        layers[LAYER_TYPES], display_tolerance_m, ["type_service"])
    path = Path(path)
    written: list[Path] = []
    try:
        with atomic_path(path) as tmp:
            for name, gdf in layers.items():
                _write_layer(gdf, tmp, name, driver="GPKG")
        written.append(path)
        if geojson_dir is not None:
            for name, gdf in layers.items():
                target = Path(geojson_dir) / f"{name}.geojson"
                with atomic_path(target) as tmp:
                    _write_layer(gdf, tmp, name, driver="GeoJSON")
                written.append(target)
    except OSError as exc:
        msg = f"could not write the isochrones to {path}: {exc}"
        raise OutputError(msg) from exc
    return written


def _write_layer(gdf: gpd.GeoDataFrame, target: Path, layer: str, *, driver: str) -> None:
    frame = gdf.copy()
    frame["geometry"] = gpd.GeoSeries(
        [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
         for g in frame.geometry], crs=frame.crs)
    kwargs: dict[str, Any] = {"driver": driver, "engine": "pyogrio",
                              "geometry_type": "MultiPolygon"}
    if driver == "GPKG":
        kwargs["layer"] = layer  # a new layer is added to an existing GeoPackage
    frame.to_file(target, **kwargs)
