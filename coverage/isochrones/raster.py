"""Raster of minutes → band polygons: the grid, the land's minutes, holes, the contours.

Shared by the road bands (:mod:`coverage.isochrones.road`) and the proxy bands
(:mod:`coverage.isochrones.proxy`); everything here is in a metric CRS (metres) until
:func:`_to_wgs84` projects the polygons to EPSG:4326.

- **Grid**: a regular grid of cell centres (:class:`_Grid`) over the points, padded; above
  :data:`MAX_CELLS` cells the cell is enlarged (logged).
- **Field**: points carrying minutes are dropped onto the grid keeping the *minimum* per
  cell. A grey erosion with a cone over a disc of radius ``buffer_m`` then gives each cell
  centre the minutes of the land there: the minimum, over the points within ``buffer_m``,
  of the point's minutes plus the distance at the access speed (none: a flat buffer).
- **Unreached value**: cells with no point within ``buffer_m`` are unreached, +inf in the
  field. At contouring they take the top bound plus one minute rather than a mask:
  masked quads pinch rings into self-touching (invalid) polygons, while a finite field
  gives marching squares with saddle disambiguation, hence valid rings. The edge then lies
  between the last reached cell centre and the next one, within one cell of where a mask
  would put it.
- **Hole filling**: enclosed unreached patches (not touching the grid edge) smaller than
  ``min_hole_m2`` are filled with the earliest minutes of the reached cells around them,
  plus the off-road leg across the patch: they are the inside of street blocks, not lakes
  or mountains, and would multiply the vertices.
- **Contours**: the band ``[a, b)`` is the filled contour of the field between ``a`` and
  ``b`` (``contourpy``); the filled contours of one band are valid and disjoint.
- **Projection** to EPSG:4326 (:func:`_to_wgs84`): the vertices of a large polygon go
  through a polynomial fitted on points projected by pyproj over the polygon's box, used
  only when it agrees with pyproj within 1e-10 degrees (0.01 mm) on check points; else,
  and for small polygons, every vertex goes through pyproj.

The erosion, the minimum filters and the lifting off the levels give the same values as
the ``scipy.ndimage`` calls and float64 passes they replace (issue 18, tested against
them): whole-array passes, or, for the per-service raster (a 3 × 3 cone, float32), loops
compiled by numba (:mod:`coverage.routing.kernel` imports it) — the erosion, the minima
around the holes' cells only, and one pass building the float64 field to contour. The
small enclosed patches are found by one compiled walk of the unreached patches (the cells
of ``ndimage.label`` with its sizes and edge labels, tested), and the projection's
polynomials are evaluated by one compiled Horner pass (the same values as the numpy
steps). An unmasked field goes to contourpy's serial generator directly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import contourpy
import numpy as np
import shapely
from pyproj import Transformer
from scipy import ndimage

from coverage.geo import transformer
from coverage.routing import kernel as _kernel
from coverage.settings import CRS_INPUT_OUTPUT

__all__ = ["MAX_CELLS"]

log = logging.getLogger(__name__)

#: Largest number of grid cells of one raster; above it the cell is enlarged (logged).
MAX_CELLS = 40_000_000

#: Field values this close to a band bound are lifted above it before contouring, minutes.
_LEVEL_EPS_MIN = 1e-6

#: Polynomial projection of the polygons' vertices to EPSG:4326 (:func:`_project_xy`):
#: total degrees tried, Chebyshev points per axis, largest error accepted (degrees),
#: fewest vertices worth it.
_POLY_DEGREES = (5, 7)
_POLY_NODES = 12
_POLY_TOL_DEG = 1e-10
_POLY_MIN_VERTICES = 2_000


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
        """Build the grid covering a box padded by ``pad`` metres (cell enlarged if needed).

        The cell grows beyond ``cell`` metres when the grid would exceed :data:`MAX_CELLS`.
        """
        width, height = xmax - xmin + 2 * pad, ymax - ymin + 2 * pad
        n = (width / cell + 1) * (height / cell + 1)
        if n > MAX_CELLS:
            new_cell = cell * math.sqrt(n / MAX_CELLS) * 1.01
            log.warning("grille d'isochrones de %.0f cellules : cellule agrandie de %.0f m à "
                        "%.0f m", n, cell, new_cell)
            cell = new_cell
        nx = math.ceil(width / cell) + 1
        ny = math.ceil(height / cell) + 1
        return cls(xmin - pad, ymin - pad, cell, nx, ny)

    def index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the flat index of the cell whose centre is nearest to each point."""
        ix = np.clip(np.rint((x - self.x0) / self.cell).astype(np.int64), 0, self.nx - 1)
        iy = np.clip(np.rint((y - self.y0) / self.cell).astype(np.int64), 0, self.ny - 1)
        return iy * self.nx + ix

    def index_inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return :meth:`index` for points of the box the grid was built :meth:`around`.

        Such points are at least ``pad`` from the grid's edge, so the nearest centre is
        never clipped: the same indices, by in-place passes in float64 (exact for whole
        numbers below 2**53) instead of two clipped integer arrays.
        """
        fx = np.subtract(x, self.x0, dtype=np.float64)
        fx /= self.cell
        np.rint(fx, out=fx)
        fy = np.subtract(y, self.y0, dtype=np.float64)
        fy /= self.cell
        np.rint(fy, out=fy)
        fy *= self.nx
        fy += fx
        return np.asarray(fy.astype(np.int64))

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Return 1-D arrays of the column and row centre coordinates, metres."""
        return (self.x0 + self.cell * np.arange(self.nx),
                self.y0 + self.cell * np.arange(self.ny))


def _disc(radius_cells: float) -> tuple[np.ndarray, np.ndarray]:
    """Return a disc footprint of a radius in cells and each cell's distance to its centre."""
    r = max(math.floor(radius_cells), 0)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    dist = np.hypot(xx, yy)
    return np.asarray(dist <= radius_cells + 1e-9), dist


def _running_min(a: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Return the minimum of every ``width`` consecutive values of ``a`` along ``axis``.

    Windows of 1, 2, 4, … values are built by doubling, then two overlapping ones cover
    ``width``: ``log2(width) + 1`` passes; the result is ``width − 1`` shorter.
    """
    def cut(x: np.ndarray, start: int, stop: int) -> np.ndarray:
        index: list[slice] = [slice(None)] * x.ndim
        index[axis] = slice(start, stop)
        return x[tuple(index)]

    size, m = 1, a
    while size * 2 <= width:
        n = m.shape[axis]
        m = np.minimum(cut(m, 0, n - size), cut(m, size, n))
        size *= 2
    n, rest = m.shape[axis], width - size
    return m if rest == 0 else np.minimum(cut(m, 0, n - rest), cut(m, rest, n))


def _square_min(field: np.ndarray, r: int) -> np.ndarray:
    """Return the minimum over the (2r + 1)² square around every cell, +inf beyond the edge.

    The same values as ``ndimage.minimum_filter(field, size=2r + 1, mode="constant",
    cval=inf)``, by running minima along each axis (a few whole-array passes).
    """
    ny, nx = field.shape
    padded = np.full((ny + 2 * r, nx + 2 * r), np.inf, dtype=field.dtype)
    padded[r:r + ny, r:r + nx] = field
    return _running_min(_running_min(padded, 2 * r + 1, 0), 2 * r + 1, 1)


def _square_min_at(field: np.ndarray, r: int, cells: np.ndarray) -> np.ndarray:
    """Return :func:`_square_min` of ``field`` at some cells only (flat indices).

    The same values, read from the (2r + 1)² square around each cell by a compiled
    loop: the holes to fill are a few percent of the grid.
    """
    out = np.empty(cells.size, dtype=field.dtype)
    _square_min_pass_jit(np.ascontiguousarray(field), r, np.asarray(cells, dtype=np.int64), out)
    return out


def _square_min_pass(field: np.ndarray, r: int, cells: np.ndarray,
                     out: np.ndarray) -> None:  # pragma: no cover
    """Fill ``out`` for :func:`_square_min_at` (+inf beyond the grid's edge)."""
    ny, nx = field.shape
    for k in range(cells.size):
        i, j = cells[k] // nx, cells[k] % nx
        best = np.inf
        for a in range(max(i - r, 0), min(i + r + 1, ny)):
            for b in range(max(j - r, 0), min(j + r + 1, nx)):
                best = min(best, field[a, b])
        out[k] = best


_square_min_pass_jit: Callable[..., Any] = _kernel.compiled(_square_min_pass)


def _small_holes(  # noqa: C901, PLR0912 - one compiled loop over the grid
        field: np.ndarray, max_cells: float) -> np.ndarray:  # pragma: no cover
    """Return the flat indices (increasing) of the cells of the small enclosed patches.

    ``field`` is the 2-D grid of minutes, non-finite where unreached. A patch is a
    4-connected component of unreached cells (``ndimage.label``'s default structure); it
    is small when it has at most ``max_cells`` cells and no cell on the grid's edge.

    One compiled pass in grid order. An unreached cell next to a cell known to be in a
    large patch (above or to the left) is in that patch. Otherwise its patch is walked
    breadth first, stopping as soon as it is known to be large (more than ``max_cells``
    cells, a cell on the edge, or a cell known to be in a large patch): the cells walked
    are then marked large, and the rest of the patch follows from them, so the large
    patches (most of the unreached land) cost one look at each cell. The cells of the
    small patches are listed at the end, in grid order.
    """
    ny, nx = field.shape
    values = field.reshape(-1)
    n = ny * nx
    # 0 unreached, not seen; 1 in a large patch; 2 in a small patch; 3 reached; 4 queued
    state = np.empty(n, dtype=np.uint8)
    for c in range(n):
        state[c] = 3 if np.isfinite(values[c]) else 0
    queue = np.empty(min(n, int(max_cells) + 5), dtype=np.int64)
    count = 0
    for start in range(n):
        if state[start] != 0:
            continue
        i = start // nx
        j = start - i * nx
        if (i > 0 and state[start - nx] == 1) or (j > 0 and state[start - 1] == 1):
            state[start] = 1
            continue
        state[start] = 4
        queue[0] = start
        head, tail, large = 0, 1, False
        while head < tail and not large:
            c = queue[head]
            head += 1
            i = c // nx
            j = c - i * nx
            if i == 0 or i == ny - 1 or j == 0 or j == nx - 1:
                large = True
                break
            for nb in (c - nx, c + nx, c - 1, c + 1):  # inside: not on the edge
                if state[nb] == 1:
                    large = True
                    break
                if state[nb] == 0:
                    state[nb] = 4
                    queue[tail] = nb
                    tail += 1
            if tail > max_cells:
                large = True
        mark = 1 if large else 2
        for k in range(tail):
            state[queue[k]] = mark
        if not large:
            count += tail
    out = np.empty(count, dtype=np.int64)
    k = 0
    for c in range(n):
        if state[c] == 2:
            out[k] = c
            k += 1
    return out


_small_holes_jit: Callable[..., Any] = _kernel.compiled(_small_holes)


def _fill_small_holes(field: np.ndarray, max_cells: float,
                      access_min_per_cell: float) -> np.ndarray:
    """Fill the small enclosed unreached patches of a field of minutes.

    A patch of at most ``max_cells`` cells that does not touch the grid edge takes the
    earliest minutes of the reached cells within ``r`` cells, plus ``r`` cells at the
    access speed (``access_min_per_cell`` minutes per cell; 0: flat fill). The patches
    are found by one compiled pass (:func:`_small_holes`: the same cells as
    ``ndimage.label`` then the sizes and edge labels, tested).
    """
    if max_cells <= 0:
        return field
    todo = _small_holes_jit(np.ascontiguousarray(field), float(max_cells))
    if not todo.size:
        return field
    out = np.array(field, copy=True, order="C")
    flat = out.reshape(-1)  # a view: writing it fills out
    # a patch of at most max_cells cells has no cell farther than r from its edge: one
    # (2r + 1)² minimum filter reaches every cell (a wider pass finishes odd shapes)
    r = max(math.ceil(math.sqrt(max_cells) / 2), 1)
    grown = _square_min_at(field, r, todo)
    while True:
        values = grown + np.asarray(r * access_min_per_cell, dtype=field.dtype)
        ready = np.isfinite(values)
        flat[todo[ready]] = values[ready]
        todo = todo[~ready]
        if not todo.size:
            return out
        r *= 2
        grown = _square_min(field, r).reshape(-1)[todo]


def _erode_cone(field: np.ndarray, footprint: np.ndarray, cone: np.ndarray) -> np.ndarray:
    """Grey erosion of ``field`` by a cone, +inf beyond the edges, as shifted minima.

    The same values as ``ndimage.grey_erosion(field, footprint=footprint,
    structure=cone, mode="constant", cval=inf)`` for a symmetric ``cone`` ≤ 0, a few
    times faster for the small discs used here: the footprint cells at one distance are
    reduced by ``min`` first, then the cone's value is subtracted once (rounding is
    monotonic, so ``min(a, b) − c`` is ``min(a − c, b − c)`` exactly).
    """
    r = footprint.shape[0] // 2
    ny, nx = field.shape
    padded = np.full((ny + 2 * r, nx + 2 * r), np.inf, dtype=field.dtype)
    padded[r:r + ny, r:r + nx] = field
    if r == 1 and bool(footprint.all()) and field.dtype == np.float32:
        eroded = np.empty_like(field)
        _erode_3x3_pass_jit(padded, np.float32(cone[0, 1]), np.float32(cone[0, 0]), eroded)
        return eroded
    out: np.ndarray | None = None
    for value in np.unique(cone[footprint]):
        ring: np.ndarray | None = None
        for dy, dx in zip(*np.nonzero(footprint & (cone == value)), strict=True):
            view = padded[dy:dy + ny, dx:dx + nx]
            ring = view.copy() if ring is None else np.minimum(ring, view, out=ring)
        assert ring is not None  # value comes from the footprint
        ring -= value
        out = ring if out is None else np.minimum(out, ring, out=out)
    assert out is not None  # the footprint holds its centre
    return out


def _erode_3x3_pass(padded: np.ndarray, side_value: np.float32, corner_value: np.float32,
                    out: np.ndarray) -> None:  # pragma: no cover
    """:func:`_erode_cone` over the full 3 × 3 square, compiled (float32).

    ``padded`` is the field with one row and column of +inf on each side; the side and
    corner cells are reduced by ``min`` first, then their cone value is subtracted once:
    the same operations, hence the same float32 values, as the whole-array passes.
    """
    ny, nx = out.shape
    for i in range(ny):
        for j in range(nx):
            side = min(min(padded[i + 1, j], padded[i + 1, j + 2]),
                       min(padded[i, j + 1], padded[i + 2, j + 1]))
            corner = min(min(padded[i, j], padded[i, j + 2]),
                         min(padded[i + 2, j], padded[i + 2, j + 2]))
            out[i, j] = min(min(side - side_value, corner - corner_value),
                            padded[i + 1, j + 1])


_erode_3x3_pass_jit: Callable[..., Any] = _kernel.compiled(_erode_3x3_pass)


def _erode_cone_3x3(padded: np.ndarray, cone: np.ndarray) -> np.ndarray:
    """:func:`_erode_cone` over the full 3 × 3 square (a disc of radius √2 to 2 cells).

    ``padded`` is the field with one row and column of +inf on each side. The minimum of
    each pair of horizontal neighbours is computed once and serves the side cells of its
    row and the diagonal cells of the rows above and below: 6 whole-array ``min`` passes
    instead of 10, the same values (``min`` is exact, one subtraction per distance).
    """
    ny, nx = padded.shape[0] - 2, padded.shape[1] - 2
    pair = np.minimum(padded[:, :nx], padded[:, 2:])  # left/right neighbours, every row
    side: np.ndarray = np.minimum(padded[:ny, 1:nx + 1], padded[2:, 1:nx + 1])  # up/down
    np.minimum(side, pair[1:ny + 1], out=side)
    diagonal = np.minimum(pair[:ny], pair[2:])
    side -= cone[0, 1]
    diagonal -= cone[0, 0]
    np.minimum(side, diagonal, out=side)
    np.minimum(side, padded[1:ny + 1, 1:nx + 1], out=side)
    return side


def _field_from_samples(
    xs: np.ndarray, ys: np.ndarray, ts: np.ndarray, *, cell_m: float, buffer_m: float,
    access_m_per_min: float | None = None, min_hole_m2: float = 0.0,
) -> tuple[_Grid, np.ndarray]:
    """Compute the minutes of the land around sample points on a grid.

    Each cell centre takes ``min(t(p) + d(p)/access speed)`` over the samples ``p`` within
    ``buffer_m`` metres (``d`` the distance; no access term when the speed, metres per
    minute, is None); +inf where there is none. Enclosed unreached patches smaller than
    ``min_hole_m2`` (m²) are then filled.
    """
    pad = buffer_m + 2 * cell_m
    grid = _Grid.around(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()),
                        cell_m, pad)
    field = np.full(grid.nx * grid.ny, np.inf, dtype=np.float32)
    np.minimum.at(field, grid.index_inside(xs, ys), ts.astype(np.float32))
    return grid, _land_field(grid, field, buffer_m=buffer_m,
                             access_m_per_min=access_m_per_min, min_hole_m2=min_hole_m2)


def _land_field(grid: _Grid, raw: np.ndarray, *, buffer_m: float,
                access_m_per_min: float | None = None,
                min_hole_m2: float = 0.0) -> np.ndarray:
    """Spread the minima of the samples dropped on a grid over the land around them.

    ``raw`` is the flat float32 grid of the samples' minutes (+inf: no sample); returns
    the 2-D field of :func:`_field_from_samples` (erosion, then hole filling).
    """
    field2d = raw.reshape(grid.ny, grid.nx)
    radius = buffer_m / grid.cell
    if radius >= 1.0:
        footprint, dist = _disc(radius)
        if access_m_per_min is None:
            field2d = ndimage.minimum_filter(field2d, footprint=footprint, mode="constant",
                                             cval=np.inf)
        else:  # grey erosion with a cone: min over the disc of t + distance / speed
            cone = (-dist * grid.cell / access_m_per_min).astype(np.float32)
            field2d = _erode_cone(field2d, footprint, cone)
    access_per_cell = 0.0 if access_m_per_min is None else grid.cell / access_m_per_min
    return _fill_small_holes(field2d, min_hole_m2 / grid.cell**2, access_per_cell)


def _lift_levels(z: np.ndarray, field: np.ndarray, levels: Sequence[float]) -> None:
    """Lift the values of ``z`` within :data:`_LEVEL_EPS_MIN` of a level just above it.

    ``z`` is the float64 copy of ``field`` (unreached cells replaced). For a float32
    ``field`` the candidates are found on it, within one float32 step beyond the
    tolerance (a quarter of the memory traffic), then checked exactly on ``z``.
    """
    flat = z.reshape(-1)
    small = type(field) is np.ndarray and field.dtype == np.float32
    for level in levels:
        if small:
            lo = np.nextafter(np.float32(level - _LEVEL_EPS_MIN), np.float32(-np.inf))
            hi = np.nextafter(np.float32(level + _LEVEL_EPS_MIN), np.float32(np.inf))
            cand = np.flatnonzero((field >= lo) & (field <= hi))
            cand = cand[np.abs(flat[cand] - level) <= _LEVEL_EPS_MIN]
        else:
            cand = np.flatnonzero(np.abs(flat - level) <= _LEVEL_EPS_MIN)
        flat[cand] = level + 2 * _LEVEL_EPS_MIN


def _lifted_z(field: np.ndarray, unreached: float, levels: Sequence[float]) -> np.ndarray:
    """Return the float64 field to contour: unreached cells set, values lifted off levels.

    The same array as ``np.where(np.isfinite(field), field, unreached)`` in float64 then
    :func:`_lift_levels`, in one compiled pass over a float32 ``field``.
    """
    z = np.empty(field.shape, dtype=np.float64)
    _lift_pass_jit(np.ascontiguousarray(field).reshape(-1), float(unreached),
               np.asarray(levels, dtype=np.float64), _LEVEL_EPS_MIN, z.reshape(-1))
    return z


def _lift_pass(field: np.ndarray, unreached: float, levels: np.ndarray, eps: float,
               z: np.ndarray) -> None:  # pragma: no cover
    """Fill ``z`` for :func:`_lifted_z` (levels in increasing order)."""
    for i in range(field.size):
        v = float(field[i])
        if not np.isfinite(v):
            v = unreached
        for level in levels:
            if abs(v - level) <= eps:
                v = level + 2 * eps
        z[i] = v


_lift_pass_jit: Callable[..., Any] = _kernel.compiled(_lift_pass)


def _contour_bands(
    grid: _Grid, field: np.ndarray, bands: Sequence[tuple[float, float]],
    to_wgs84: Transformer | None = None,
) -> list[shapely.Geometry]:
    """Return one (Multi)Polygon per band from the filled contours of ``field`` (metric CRS).

    Unreached cells (non-finite) take the top bound plus one minute rather than a mask
    (see the module docstring). A plain array (the road bands: no mask) goes to
    contourpy's serial generator directly, without the masked-array pass of
    ``contour_generator`` over the grid; a masked field (the proxy bands) through it.
    With ``to_wgs84`` (the grid's CRS → EPSG:4326) the polygons are built from the
    projected vertices: the same geometries as :func:`_to_wgs84` of the metric ones
    (the same vertices in the same order go through :func:`_project_xy`), without
    building and copying the metric ones.
    """
    xc, yc = grid.centres()
    top = max(high for _, high in bands)
    # a value within rounding of a level puts the contour through the grid point itself,
    # where two quads' rings then touch (invalid): lift such values clear of the level
    levels = sorted({float(v) for band in bands for v in band})
    if isinstance(field, np.ma.MaskedArray) or field.dtype != np.float32:
        z = np.where(np.isfinite(field), field, top + 1.0).astype(np.float64)
        _lift_levels(z, field, levels)
    else:
        z = _lifted_z(field, top + 1.0, levels)
    fill_type = contourpy.FillType.ChunkCombinedOffsetOffset
    gen: Any
    if isinstance(field, np.ma.MaskedArray):
        gen = contourpy.contour_generator(xc, yc, z, name="serial", fill_type=fill_type)
    else:
        x2d, y2d = np.meshgrid(xc, yc)
        gen = contourpy.SerialContourGenerator(
            x2d, y2d, z, None, corner_mask=True,  # type: ignore[arg-type]  # no mask
            line_type=contourpy.LineType.SeparateCode, fill_type=fill_type,
            quad_as_tri=False, z_interp=contourpy.ZInterp.Linear, x_chunk_size=0,
            y_chunk_size=0)
    out: list[shapely.Geometry] = []
    for low, high in bands:
        # contourpy fills low < z <= high: start the first band below zero to keep z == 0
        lower = low if low > 0 else -1.0
        points, offsets, outer = gen.filled(lower, high)
        out.append(_polygons_from_contour(points[0], offsets[0], outer[0], to_wgs84))
    return out


def _polygons_from_contour(points: Any, offsets: Any, outer: Any,
                           to_wgs84: Transformer | None = None) -> shapely.Geometry:
    """Build the MultiPolygon of one filled contour (contourpy's offset arrays).

    With ``to_wgs84``, its vertices are projected first (:func:`_project_xy`).
    """
    if points is None or len(points) == 0:
        return shapely.MultiPolygon()
    xy = np.asarray(points, dtype=np.float64)
    if to_wgs84 is not None:
        xy = _project_xy(xy, to_wgs84)
    polys = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, xy,
        (np.asarray(offsets, dtype=np.int64), np.asarray(outer, dtype=np.int64)),
    )
    # filled contours of one band are valid and disjoint (tested): no costly re-validation
    return shapely.multipolygons(polys)


def _as_multipolygon(geom: shapely.Geometry) -> shapely.Geometry:
    """Return the polygonal parts of a valid geometry as one MultiPolygon (not validated)."""
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    if geom.geom_type == "MultiPolygon":
        return geom
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    return shapely.MultiPolygon(parts)


def _as_valid_multipolygon(geom: shapely.Geometry) -> shapely.Geometry:
    """Return a valid MultiPolygon (repaired with make_valid, polygonal parts kept)."""
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return shapely.MultiPolygon()
    return shapely.MultiPolygon(parts)


def _poly_basis(u: np.ndarray, v: np.ndarray, degree: int) -> np.ndarray:
    """Return the monomials ``u**i * v**j`` (i + j ≤ degree) of points, one row each."""
    return np.column_stack([u**i * v**j for j in range(degree + 1)
                            for i in range(degree + 1 - j)])


def _poly_eval(coef: np.ndarray, u: np.ndarray, v: np.ndarray, degree: int) -> np.ndarray:
    """Evaluate the fitted polynomials (columns of ``coef``) at points, by Horner's rule.

    ``coef`` rows follow :func:`_poly_basis`; returns one row per output (lon, lat).
    """
    rows = {term: k for k, term in enumerate(
        (i, j) for j in range(degree + 1) for i in range(degree + 1 - j))}
    c = coef.T[:, :, None]  # (outputs, terms, 1)
    total: np.ndarray | None = None
    for j in range(degree, -1, -1):  # Horner in v of the polynomials in u
        acc = np.repeat(c[:, rows[(degree - j, j)]], u.size, axis=1)
        for i in range(degree - j - 1, -1, -1):
            acc *= u
            acc += c[:, rows[(i, j)]]
        if total is None:
            total = acc
        else:
            total *= v
            total += acc
    assert total is not None  # degree ≥ 0
    return total


def _poly_terms(degree: int) -> np.ndarray:
    """Return the rows of :func:`_poly_basis` in the order :func:`_poly_eval` reads them.

    For ``j`` from ``degree`` down to 0, the rows of ``u**i * v**j`` for ``i`` from
    ``degree − j`` down to 0: the coefficients of each Horner step, in sequence.
    """
    rows = {term: k for k, term in enumerate(
        (i, j) for j in range(degree + 1) for i in range(degree + 1 - j))}
    return np.array([rows[(i, j)] for j in range(degree, -1, -1)
                     for i in range(degree - j, -1, -1)], dtype=np.int64)


def _poly_eval_pass(xy: np.ndarray, centre: np.ndarray, half: np.ndarray,
                    coef: np.ndarray, degree: int, out: np.ndarray) -> None:  # pragma: no cover
    """:func:`_poly_eval` at metric points ``xy`` (n × 2), compiled, into ``out`` (n × 2).

    ``coef`` holds the coefficients of both outputs in the order of the Horner steps
    (``coef[k] = (lon, lat)`` of row ``_poly_terms(degree)[k]``). Each point is scaled
    to the box (``(x − centre) / half``) and both polynomials are evaluated by the same
    Horner steps, in the same order, as :func:`_poly_eval` (no fused multiply-add): the
    same float64 values.
    """
    for p in range(xy.shape[0]):
        u = (xy[p, 0] - centre[0]) / half[0]
        v = (xy[p, 1] - centre[1]) / half[1]
        k = 0
        total0 = 0.0
        total1 = 0.0
        for j in range(degree, -1, -1):
            acc0 = coef[k, 0]
            acc1 = coef[k, 1]
            k += 1
            for _ in range(degree - j):
                acc0 = acc0 * u + coef[k, 0]
                acc1 = acc1 * u + coef[k, 1]
                k += 1
            if j == degree:
                total0 = acc0
                total1 = acc1
            else:
                total0 = total0 * v + acc0
                total1 = total1 * v + acc1
        out[p, 0] = total0
        out[p, 1] = total1


_poly_eval_pass_jit: Callable[..., Any] = _kernel.compiled(_poly_eval_pass)


def _project_xy(xy: np.ndarray, to_wgs84: Transformer) -> np.ndarray:
    """Project metric vertices to EPSG:4326 degrees, by a checked polynomial when many.

    A geometry of many vertices spans a box of at most a few hundred kilometres, where
    the inverse projection is smooth: a polynomial fitted on Chebyshev points projected
    by pyproj reproduces it to about 1e-12 degrees. It is used only when its largest
    error on a grid of check points (pyproj again, the box's edges included) is at most
    :data:`_POLY_TOL_DEG` (1e-10 degrees, 0.01 mm); degree 5 is tried, then 7,
    otherwise every vertex goes through pyproj.
    """
    n = xy.shape[0]
    if n < _POLY_MIN_VERTICES:
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])
    cols = np.ascontiguousarray(xy.T)  # column reductions of an (n, 2) array are slow
    lo, hi = cols.min(axis=1), cols.max(axis=1)
    centre, half = (lo + hi) / 2.0, np.maximum((hi - lo) / 2.0, 1.0)
    nodes = np.cos(np.pi * (np.arange(_POLY_NODES) + 0.5) / _POLY_NODES)
    check = np.linspace(-1.0, 1.0, _POLY_NODES + 1)
    fit_u, fit_v = (a.ravel() for a in np.meshgrid(nodes, nodes))
    chk_u, chk_v = (a.ravel() for a in np.meshgrid(check, check))
    u, v = np.concatenate([fit_u, chk_u]), np.concatenate([fit_v, chk_v])
    lon, lat = to_wgs84.transform(centre[0] + half[0] * u, centre[1] + half[1] * v)
    exact = np.column_stack([lon, lat])
    k = fit_u.size
    for degree in _POLY_DEGREES:
        basis = _poly_basis(u, v, degree)
        coef = np.linalg.lstsq(basis[:k], exact[:k], rcond=None)[0]
        error = float(np.abs(basis[k:] @ coef - exact[k:]).max())
        if np.isfinite(error) and error <= _POLY_TOL_DEG:
            out = np.empty((n, 2), dtype=np.float64)
            _poly_eval_pass_jit(np.ascontiguousarray(xy, dtype=np.float64), centre, half,
                                np.ascontiguousarray(coef[_poly_terms(degree)]), degree, out)
            return out
    log.debug("polynomial projection off by %.1e degrees: pyproj for %d vertices", error, n)
    lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def _to_wgs84(geoms: list[shapely.Geometry], crs: str) -> list[shapely.Geometry]:
    """Project metric MultiPolygons to EPSG:4326 MultiPolygons (see :func:`_project_xy`)."""
    if not geoms:
        return []
    to_wgs84 = transformer(crs, CRS_INPUT_OUTPUT)
    return [shapely.transform(_as_multipolygon(g), lambda xy: _project_xy(xy, to_wgs84))
            for g in geoms]


def _warm_up_raster() -> None:
    """Compile (or load) this module's numba loops on tiny inputs of the real types."""
    field = np.zeros((3, 3), dtype=np.float32)
    _small_holes_jit(field, 1.0)
    _square_min_pass_jit(field, 1, np.zeros(1, dtype=np.int64), np.empty(1, dtype=np.float32))
    _erode_3x3_pass_jit(np.zeros((5, 5), dtype=np.float32), np.float32(1.0), np.float32(1.0),
                        field.copy())
    _lift_pass_jit(field.reshape(-1), 1.0, np.zeros(1), _LEVEL_EPS_MIN, np.empty(9))
    _poly_eval_pass_jit(np.zeros((1, 2)), np.zeros(2), np.ones(2), np.zeros((21, 2)), 5,
                        np.empty((1, 2)))
