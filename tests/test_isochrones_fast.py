"""The fast raster and projection steps of the isochrones (issue 18) give the same results as
the library calls they replace: ndimage erosion, minimum filter and labels, the float64
lifting of values off the band levels, pyproj for every vertex (to 1e-10 degrees), the
intersects pass of the land masses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import shapely
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from coverage.geo import transformer
from coverage.isochrones.raster import (
    _POLY_MIN_VERTICES,
    _POLY_TOL_DEG,
    _contour_bands,
    _disc,
    _erode_cone,
    _field_from_samples,
    _fill_small_holes,
    _Grid,
    _lift_levels,
    _poly_eval,
    _poly_eval_pass_jit,
    _poly_terms,
    _project_xy,
    _small_holes_jit,
    _square_min,
    _to_wgs84,
)
from coverage.routing import landmass


def _random_field(rng: np.random.Generator, shape: tuple[int, int],
                  unreached: float = 0.6) -> np.ndarray:
    field = rng.uniform(0.0, 50.0, shape).astype(np.float32)
    field[rng.random(shape) < unreached] = np.inf
    return field


@pytest.mark.parametrize(("cell_m", "buffer_m"), [(100.0, 150.0), (75.0, 150.0),
                                                  (50.0, 150.0), (100.0, 100.0)])
def test_cone_erosion_is_ndimage_grey_erosion(cell_m: float, buffer_m: float) -> None:
    rng = np.random.default_rng(7)
    field = _random_field(rng, (83, 97))
    footprint, dist = _disc(buffer_m / cell_m)
    cone = (-dist * cell_m / (4000.0 / 60.0)).astype(np.float32)
    expected = ndimage.grey_erosion(field, footprint=footprint, structure=cone,
                                    mode="constant", cval=np.inf)
    got = _erode_cone(field, footprint, cone)
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("r", [1, 2, 3, 6, 12, 40])
@pytest.mark.parametrize("shape", [(1, 1), (3, 50), (37, 41)])
def test_square_minimum_is_ndimage_minimum_filter(r: int, shape: tuple[int, int]) -> None:
    field = _random_field(np.random.default_rng(r), shape, unreached=0.5)
    expected = ndimage.minimum_filter(field, size=2 * r + 1, mode="constant", cval=np.inf)
    assert np.array_equal(_square_min(field, r), expected)


def _fill_reference(field: np.ndarray, max_cells: float, per_cell: float) -> np.ndarray:
    """The hole filling before issue 18: whole-grid ndimage minimum filters."""
    unreached = ~np.isfinite(field)
    labels, n = ndimage.label(unreached)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    small = sizes <= max_cells
    small[0] = False
    small[edge] = False
    todo = np.flatnonzero(small[labels])
    out = field.copy()
    flat = out.reshape(-1)
    r = max(math.ceil(math.sqrt(max_cells) / 2), 1)
    while todo.size:
        grown = ndimage.minimum_filter(field, size=2 * r + 1, mode="constant", cval=np.inf)
        values = grown.reshape(-1)[todo] + np.float32(r * per_cell)
        ready = np.isfinite(values)
        flat[todo[ready]] = values[ready]
        todo = todo[~ready]
        r *= 2
    return out


def test_hole_filling_is_unchanged() -> None:
    rng = np.random.default_rng(11)
    field = _random_field(rng, (120, 130), unreached=0.45)
    # a wide hole (an L of 60 cells) needs a second, wider pass at max_cells 64
    field[40:50, 40:46] = np.inf
    for max_cells in (9.0, 25.0, 64.0):
        got = _fill_small_holes(field, max_cells, 1.5)
        assert np.array_equal(got, _fill_reference(field, max_cells, 1.5))
        assert np.isfinite(got).sum() > np.isfinite(field).sum()


def test_lifting_off_the_levels_matches_the_float64_rule() -> None:
    levels = [0.0, 20.0, 30.0, 45.0]
    eps = 1e-6
    values = np.array([0.0, 5e-7, 1e-6, 2e-6, 20.0, np.nextafter(np.float32(20), 0),
                       np.nextafter(np.float32(20), 99), 30.0, 29.999998, 45.0, 44.0, np.inf],
                      dtype=np.float32)
    field = np.tile(values, (3, 1))
    z32 = np.where(np.isfinite(field), field, 46.0).astype(np.float64)
    z64 = z32.copy()
    _lift_levels(z32, field, levels)  # float32 field: candidates found on it
    _lift_levels(z64, field.astype(np.float64), levels)  # the plain float64 rule
    assert np.array_equal(z32, z64)
    expected = z64.copy()
    for level in levels:
        close = np.abs(expected - level) <= eps
        expected[close] = level + 2 * eps
    assert np.array_equal(z32, expected)
    assert z32[0, 0] == 2 * eps and z32[0, 4] == 20.0 + 2 * eps


@pytest.mark.parametrize(("crs", "x0", "y0", "size_m"), [
    ("EPSG:2154", 650_000.0, 6_600_000.0, 120_000.0),  # Lambert-93, a 45-minute reach
    ("EPSG:2154", 1_150_000.0, 6_150_000.0, 300_000.0),  # the edge of Lambert-93, larger
    ("EPSG:32740", 340_000.0, 7_650_000.0, 80_000.0),  # UTM 40S (La Réunion)
])
def test_polynomial_projection_is_pyproj_to_1e_10_degrees(crs: str, x0: float, y0: float,
                                                          size_m: float) -> None:
    rng = np.random.default_rng(3)
    xy = np.column_stack([x0 + rng.uniform(0, size_m, 50_000),
                          y0 + rng.uniform(0, size_m, 50_000)])
    lon, lat = transformer(crs, "EPSG:4326").transform(xy[:, 0], xy[:, 1])
    got = _project_xy(xy, transformer(crs, "EPSG:4326"))
    assert got.shape == xy.shape
    assert np.abs(got - np.column_stack([lon, lat])).max() <= _POLY_TOL_DEG


def test_a_box_too_wide_for_the_polynomial_goes_through_pyproj() -> None:
    rng = np.random.default_rng(5)
    xy = np.column_stack([rng.uniform(100_000, 1_200_000, 5000),
                          rng.uniform(6_050_000, 7_100_000, 5000)])
    lon, lat = transformer("EPSG:2154", "EPSG:4326").transform(xy[:, 0], xy[:, 1])
    got = _project_xy(xy, transformer("EPSG:2154", "EPSG:4326"))
    assert np.array_equal(got, np.column_stack([lon, lat]))  # exactly pyproj's


def test_bands_are_the_same_polygons_as_before() -> None:
    """Field, contours and projection on a seeded cloud of road points: the same vertices
    as the whole-grid ndimage / pyproj path, to 1e-10 degrees."""
    rng = np.random.default_rng(2)
    n = 12_000
    ang, rad = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 12_000, n)
    xs, ys = 700_000 + rad * np.cos(ang), 6_500_000 + rad * np.sin(ang)
    ts = rad / 12_000 * 46 + rng.uniform(0, 3, n)
    ts[:40] = 20.0  # values exactly on a level are lifted off it
    bands = [(0.0, 20.0), (20.0, 30.0), (30.0, 45.0)]
    grid, field = _field_from_samples(xs, ys, ts, cell_m=100.0, buffer_m=150.0,
                                      access_m_per_min=4000 / 60, min_hole_m2=250_000.0)
    # the previous field: ndimage erosion, then the reference hole filling
    g0 = _Grid.around(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()),
                      100.0, 350.0)
    raw = np.full(g0.nx * g0.ny, np.inf, dtype=np.float32)
    np.minimum.at(raw, g0.index(xs, ys), ts.astype(np.float32))
    footprint, dist = _disc(1.5)
    cone = (-dist * 100.0 / (4000 / 60)).astype(np.float32)
    before = ndimage.grey_erosion(raw.reshape(g0.ny, g0.nx), footprint=footprint,
                                  structure=cone, mode="constant", cval=np.inf)
    assert np.array_equal(field, _fill_reference(before, 25.0, 1.5))
    metric = _contour_bands(grid, field, bands)
    assert all(g.is_valid and not g.is_empty for g in metric)
    assert shapely.get_num_coordinates(metric).max() >= _POLY_MIN_VERTICES  # the polynomial
    moved = _to_wgs84(metric, "EPSG:2154")
    to_wgs84 = transformer("EPSG:2154", "EPSG:4326")
    for m, w in zip(metric, moved, strict=True):
        xy = shapely.get_coordinates(m)
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        assert np.abs(shapely.get_coordinates(w) - np.column_stack([lon, lat])).max() <= 1e-10
        assert w.is_valid


@pytest.mark.parametrize("sample", [1, 8])
def test_touching_components_are_those_of_the_intersects_pass(
        sample: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared vertices join most pairs (all of them, or a sample); the rest (a T-junction,
    a corner on an edge, a bridge) come from the intersects test on the remaining boxes."""
    monkeypatch.setattr(landmass, "_VERTEX_SAMPLE", sample)
    squares = [shapely.box(x, y, x + 1, y + 1) for x in range(6) for y in range(4)]
    extra = [
        shapely.box(6.0, 1.5, 7.0, 2.5),  # touches x=6 squares mid-edge: no shared vertex
        shapely.Polygon([(8, 1), (9, 2), (8, 3), (7, 2)]),  # its corner on that box's edge
        shapely.box(6.0, 0.1, 6.4, 0.4),  # touches a square's edge, no shared vertex
        shapely.box(20, 20, 21, 21),  # an island
        shapely.box(21, 20, 22, 21),  # the island's neighbour
        shapely.box(30, 30, 31, 31),  # another island, bridged below
    ]
    native = np.array(squares + extra, dtype=object)
    rng = np.random.default_rng(0)
    order = rng.permutation(native.size)
    native = native[order]
    where = {int(k): i for i, k in enumerate(order)}
    bridges = np.array([[where[len(squares) + 5], where[0]]], dtype=np.int64)
    tree = shapely.STRtree(native)
    left, right = tree.query(native, predicate="intersects")
    edges = (np.concatenate([left, bridges[:, 0]]), np.concatenate([right, bridges[:, 1]]))
    graph = coo_matrix((np.ones(edges[0].size), edges), shape=(native.size,) * 2)
    expected = connected_components(graph, directed=False)[1]
    got = landmass._touching_components(native, tree, bridges)
    assert np.array_equal(got, expected)
    assert np.unique(got).size == 2  # the mainland with its bridged island, and 20–22


@pytest.mark.parametrize("radius", [math.sqrt(2.0), 1.5, 1.99])
def test_the_3x3_cone_erosion_is_ndimage_grey_erosion(radius: float) -> None:
    """The 3 × 3 path (discs of radius √2 to 2 cells, the per-service raster) gives
    ndimage's values, edges included."""
    rng = np.random.default_rng(13)
    field = _random_field(rng, (64, 71), unreached=0.7)
    footprint, dist = _disc(radius)
    assert footprint.shape == (3, 3) and footprint.all()
    cone = (-dist * 100.0 / (20_000.0 / 60.0)).astype(np.float32)
    expected = ndimage.grey_erosion(field, footprint=footprint, structure=cone,
                                    mode="constant", cval=np.inf)
    got = _erode_cone(field, footprint, cone)
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)


def test_index_inside_is_the_clipped_index() -> None:
    rng = np.random.default_rng(17)
    x = rng.uniform(650_000, 760_000, 20_000)
    y = rng.uniform(6_500_000, 6_590_000, 20_000)
    x[:4], y[:4] = x.min(), y.min()  # the box's corners
    x[4:8], y[4:8] = x.max(), y.max()
    for cell, pad in ((100.0, 350.0), (75.0, 300.0), (500.0, 500.0)):
        grid = _Grid.around(float(x.min()), float(y.min()), float(x.max()), float(y.max()),
                            cell, pad)
        got = grid.index_inside(x, y)
        assert got.dtype == np.int64
        assert np.array_equal(got, grid.index(x, y))


def test_the_direct_generator_gives_contour_generators_polygons() -> None:
    """An unmasked field goes to contourpy's serial generator without the masked-array
    pass: the same vertices, in the same order, as through ``contour_generator``."""
    import contourpy

    from coverage.isochrones.raster import _polygons_from_contour

    rng = np.random.default_rng(19)
    field = rng.uniform(0.0, 50.0, (90, 110)).astype(np.float32)
    field[rng.random(field.shape) < 0.3] = np.inf
    grid = _Grid(700_000.0, 6_500_000.0, 100.0, 110, 90)
    bands = [(0.0, 20.0), (20.0, 30.0), (30.0, 45.0)]
    got = _contour_bands(grid, field, bands)
    xc, yc = grid.centres()
    z = np.where(np.isfinite(field), field, 46.0).astype(np.float64)
    _lift_levels(z, field, [0.0, 20.0, 30.0, 45.0])
    gen = contourpy.contour_generator(
        xc, yc, z, name="serial", fill_type=contourpy.FillType.ChunkCombinedOffsetOffset)
    for (low, high), g in zip(bands, got, strict=True):
        points, offsets, outer = gen.filled(low if low > 0 else -1.0, high)
        expected = _polygons_from_contour(points[0], offsets[0], outer[0])
        assert not g.is_empty and g.is_valid
        assert np.array_equal(shapely.get_coordinates(g), shapely.get_coordinates(expected))


def test_the_one_pass_lifting_is_where_then_lift_levels() -> None:
    from coverage.isochrones.raster import _lifted_z

    levels = [0.0, 20.0, 30.0, 45.0]
    rng = np.random.default_rng(23)
    field = rng.uniform(0.0, 50.0, (40, 60)).astype(np.float32)
    field[rng.random(field.shape) < 0.3] = np.inf
    field[0, :12] = [0.0, 5e-7, 1e-6, 2e-6, 20.0, np.nextafter(np.float32(20), 0),
                     np.nextafter(np.float32(20), 99), 30.0, 29.999998, 45.0, 44.0, np.nan]
    expected = np.where(np.isfinite(field), field, 46.0).astype(np.float64)
    _lift_levels(expected, field, levels)
    got = _lifted_z(field, 46.0, levels)
    assert got.dtype == np.float64
    assert np.array_equal(got, expected)


def test_the_compiled_sampler_drops_the_samples_of_arc_samples() -> None:
    """The box and the float32 minima of the compiled sampler are those of the sample
    arrays of ``_arc_samples`` (kept up to the top bound + 1 minute) on the same grid."""
    from coverage.isochrones import road

    rng = np.random.default_rng(29)
    side = 60
    jj, ii = np.divmod(np.arange(side * side), side)
    x = 700_000 + ii * 430.0 + rng.normal(0, 40, ii.size)
    y = 6_500_000 + jj * 430.0 + rng.normal(0, 40, ii.size)
    node = np.arange(side * side).reshape(side, side)
    tail = np.concatenate([node[:, :-1].ravel(), node[:-1, :].ravel(), node[5, 5:6]])
    head = np.concatenate([node[:, 1:].ravel(), node[1:, :].ravel(), node[50, 50:51]])
    keep = rng.random(tail.size) > 0.2
    keep[-1] = True  # a long diagonal arc (28 km)
    tail, head = tail[keep], head[keep]
    minutes = np.hypot(x[tail] - x[head], y[tail] - y[head]) / 1000.0 / 50.0 * 60.0
    graph = sp.csr_array((np.concatenate([minutes, minutes]),
                          (np.concatenate([tail, head]), np.concatenate([head, tail]))),
                         shape=(side * side,) * 2)
    reached = np.flatnonzero(rng.random(side * side) < 0.5)
    t_nodes = rng.uniform(0.0, 45.0, reached.size)
    for step, t_max in ((100.0, 46.0), (75.0, 21.0)):
        xs, ys, ts = road._arc_samples(graph, x, y, reached, t_nodes, step_m=step)
        kept = ts <= t_max
        xs, ys, ts = xs[kept], ys[kept], ts[kept]
        args = (graph.indptr, graph.indices, graph.data, x, y, reached, t_nodes, step, t_max)
        box = road._samples_box_jit(*args)
        assert box == (xs.min(), ys.min(), xs.max(), ys.max())
        grid = _Grid.around(*box, step, 150.0 + 2 * step)
        expected = np.full(grid.nx * grid.ny, np.inf, dtype=np.float32)
        np.minimum.at(expected, grid.index(xs, ys), ts.astype(np.float32))
        got = np.full(grid.nx * grid.ny, np.inf, dtype=np.float32)
        road._samples_drop_jit(*args, grid.x0, grid.y0, grid.cell, grid.nx, got)
        assert np.isfinite(got).sum() > 1000
        assert np.array_equal(got, expected)


def test_the_small_hole_cells_and_their_minima_are_ndimages() -> None:
    from coverage.isochrones.raster import _square_min_at

    rng = np.random.default_rng(31)
    field = _random_field(rng, (70, 90), unreached=0.5)
    cells = np.flatnonzero(rng.random(field.size) < 0.2)
    for r in (1, 3, 8):
        expected = ndimage.minimum_filter(field, size=2 * r + 1, mode="constant",
                                          cval=np.inf).reshape(-1)[cells]
        assert np.array_equal(_square_min_at(field, r, cells), expected)


def _small_hole_cells_reference(field: np.ndarray, max_cells: float) -> np.ndarray:
    """The cells of the small enclosed patches by ndimage.label, sizes and edge labels."""
    labels, n = ndimage.label(~np.isfinite(field))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    small = sizes <= max_cells
    small[0] = False
    small[edge] = False
    return np.flatnonzero(small[labels])


@hsettings(max_examples=60, deadline=None)
@given(ny=st.integers(1, 40), nx=st.integers(1, 40), unreached=st.floats(0.0, 0.9),
       max_cells=st.sampled_from([1.0, 4.0, 9.0, 25.0, 2.5, 400.0]),
       seed=st.integers(0, 2**32 - 1))
def test_the_one_pass_small_holes_are_ndimage_labels(
        ny: int, nx: int, unreached: float, max_cells: float, seed: int) -> None:
    """The compiled walk of the patches lists the same cells, in the same order, as
    ndimage.label with the sizes and edge labels, whatever the grid (a row, a column,
    mostly unreached, mostly reached)."""
    field = _random_field(np.random.default_rng(seed), (ny, nx), unreached=unreached)
    got = _small_holes_jit(field, max_cells)
    assert got.dtype == np.int64
    assert np.array_equal(got, _small_hole_cells_reference(field, max_cells))


def test_the_small_holes_of_a_drawn_raster_are_ndimage_labels() -> None:
    """On a real per-service field (holes of every size, one huge outer patch)."""
    rng = np.random.default_rng(2)
    n = 12_000
    ang, rad = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 12_000, n)
    xs, ys = 700_000 + rad * np.cos(ang), 6_500_000 + rad * np.sin(ang)
    ts = rad / 12_000 * 46
    _, field = _field_from_samples(xs, ys, ts, cell_m=100.0, buffer_m=150.0,
                                   access_m_per_min=4000 / 60, min_hole_m2=0.0)
    for max_cells in (25.0, 9.0):
        expected = _small_hole_cells_reference(field, max_cells)
        assert expected.size > 50  # there are small holes to find
        assert np.array_equal(_small_holes_jit(field, max_cells), expected)


@pytest.mark.parametrize("degree", [5, 7])
def test_the_compiled_horner_is_poly_eval(degree: int) -> None:
    """The compiled evaluation of the projection's polynomials gives _poly_eval's values
    exactly (the same steps in the same order, no fused multiply-add)."""
    rng = np.random.default_rng(degree)
    coef = rng.normal(size=((degree + 1) * (degree + 2) // 2, 2))
    xy = np.column_stack([rng.uniform(600_000, 760_000, 5000),
                          rng.uniform(6_400_000, 6_600_000, 5000)])
    centre, half = np.array([680_000.0, 6_500_000.0]), np.array([80_000.0, 100_000.0])
    expected = _poly_eval(coef, (xy[:, 0] - centre[0]) / half[0],
                          (xy[:, 1] - centre[1]) / half[1], degree).T
    got = np.empty_like(xy)
    _poly_eval_pass_jit(xy, centre, half, coef[_poly_terms(degree)], degree, got)
    assert np.array_equal(got, expected)


def test_contours_projected_before_building_are_the_projected_polygons() -> None:
    """Building the polygons from projected contour vertices gives, WKB for WKB, the
    metric polygons projected afterwards (the same vertices, in the same order, through
    the polynomial or pyproj)."""
    rng = np.random.default_rng(4)
    n = 12_000
    ang, rad = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 12_000, n)
    xs, ys = 700_000 + rad * np.cos(ang), 6_500_000 + rad * np.sin(ang)
    ts = rad / 12_000 * 46 + rng.uniform(0, 3, n)
    bands = [(0.0, 20.0), (20.0, 30.0), (30.0, 45.0)]
    grid, field = _field_from_samples(xs, ys, ts, cell_m=100.0, buffer_m=150.0,
                                      access_m_per_min=4000 / 60, min_hole_m2=250_000.0)
    after = _to_wgs84(_contour_bands(grid, field, bands), "EPSG:2154")
    before = _contour_bands(grid, field, bands, transformer("EPSG:2154", "EPSG:4326"))
    counts = shapely.get_num_coordinates(np.array(before, dtype=object))
    # pyproj for the small band, the polynomial for the large ones
    assert counts[0] < _POLY_MIN_VERTICES <= counts.max()
    assert list(shapely.to_wkb(np.array(before, dtype=object))) == list(
        shapely.to_wkb(np.array(after, dtype=object)))


def test_chunks_sent_back_by_forked_processes_rebuild_the_same_geometries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk packed as ragged arrays (or as geometries when one is not a MultiPolygon)
    comes back with the same WKB, grouped per service as it left."""
    import shapely

    from coverage.isochrones import road as iso_road

    holed = shapely.box(2, 2, 3, 3).difference(shapely.box(2.2, 2.2, 2.5, 2.5))
    multi = [[shapely.MultiPolygon(), shapely.MultiPolygon([shapely.box(0, 0, 1, 1), holed])],
             [shapely.MultiPolygon([holed]), shapely.MultiPolygon()]]
    mixed = [[shapely.box(0, 0, 1, 1)], [shapely.MultiPolygon([holed])]]
    for geoms in (multi, mixed):
        flat = [g for per in geoms for g in per]
        counts = [len(per) for per in geoms]
        is_multi = all(g.geom_type == "MultiPolygon" for g in flat)
        packed = shapely.to_ragged_array(flat) if is_multi else flat
        ids, back = iso_road._unpack_chunk(["a", "b"], counts, packed)
        assert ids == ["a", "b"]
        assert [[g.wkb for g in per] for per in back] == [[g.wkb for g in per] for per in geoms]
    # the child's packing: ragged arrays for MultiPolygons only
    chunks = iter([(["a", "b"], mixed), (["a", "b"], multi)])
    monkeypatch.setattr(iso_road, "_service_chunk", lambda state, start: next(chunks))
    assert isinstance(iso_road._service_chunk_in_child(0)[2], list)
    assert isinstance(iso_road._service_chunk_in_child(0)[2], tuple)
