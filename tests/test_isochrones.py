"""Isochrone bands: geometry on synthetic networks, accuracy against node minutes on the
fictional demo territory and on the real Andorra OSM extract, proxy bands, the writer."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra

from coverage import isochrones as iso
from coverage.errors import CRSError, InputError, MissingColumnError
from coverage.isochrones.bands import _frame
from coverage.routing.network import RoadNetwork, load_network, network_from_arcs
from coverage.routing.proxy import ProxyEngine
from coverage.routing.road import RoadEngine
from coverage.settings import Settings

L93 = "EPSG:2154"
TO_WGS84 = Transformer.from_crs(L93, "EPSG:4326", always_xy=True)
#: Lower-left corner of the synthetic networks, Lambert-93 metres (central France).
X0, Y0 = 650_000.0, 6_500_000.0
MIN_SHARE = 0.97
MAX_BEYOND_SHARE = 0.03
#: Shares over fewer nodes are too noisy to test (one node of 7 is 14 %): reported only.
MIN_NODES = 50


# --- helpers ---------------------------------------------------------------------------------

def grid_network(n: int = 40, spacing: float = 200.0, speed_kmh: float = 30.0,
                 hole: tuple[int, int, int, int] | None = None) -> RoadNetwork:
    """Two-way grid of ``n`` × ``n`` nodes; ``hole`` (i0, i1, j0, j1) removes a lake."""
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="xy")
    ii, jj = ii.ravel(), jj.ravel()
    keep = np.ones(ii.size, dtype=bool)
    if hole is not None:
        i0, i1, j0, j1 = hole
        keep &= ~((ii >= i0) & (ii < i1) & (jj >= j0) & (jj < j1))
    lut = np.full(n * n, -1)
    lut[np.flatnonzero(keep)] = np.arange(int(keep.sum()))
    tails, heads = [], []
    for di, dj in ((1, 0), (0, 1)):
        ok = keep & (ii + di < n) & (jj + dj < n)
        a = lut[(jj * n + ii)[ok]]
        b = lut[((jj + dj) * n + ii + di)[ok]]
        good = b >= 0
        tails += [a[good], b[good]]
        heads += [b[good], a[good]]
    tail, head = np.concatenate(tails), np.concatenate(heads)
    x = X0 + ii[keep] * spacing
    y = Y0 + jj[keep] * spacing
    lon, lat = TO_WGS84.transform(x, y)
    minutes = np.full(tail.size, spacing / (speed_kmh * 1000.0 / 60.0))
    return network_from_arcs(np.asarray(lon), np.asarray(lat), tail, head, minutes,
                             np.full(tail.size, spacing), crs=L93, largest_component=False)


def minutes_from(network: RoadNetwork, nodes: list[int]) -> np.ndarray:
    """Multi-source minutes from ``nodes`` over the network (NaN unreachable)."""
    m = dijkstra(network.minutes, directed=True, indices=nodes, min_only=True)
    return np.where(np.isfinite(m), m, np.nan)


def band_frame(geoms: list[shapely.Geometry], bands: list[tuple[float, float]],
               crs: str = L93) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"bande_min": [b[0] for b in bands],
                             "bande_max": [b[1] for b in bands]},
                            geometry=geoms, crs=crs)


def assert_accurate(acc: pd.DataFrame, *, what: str) -> None:
    """The accuracy contract of the issue on a :func:`band_accuracy` table."""
    assert len(acc), what
    for row in acc.itertuples():
        label = f"{what} band {row.bande_min:g}–{row.bande_max:g}"
        if row.n_atteints >= MIN_NODES:
            assert row.part_atteints_dedans >= MIN_SHARE, label
        if row.n_bande >= MIN_NODES:
            assert row.part_bande_dedans >= MIN_SHARE, label
        if row.n_au_dela >= MIN_NODES:
            assert row.part_au_dela_dedans <= MAX_BEYOND_SHARE, label


def accuracy_of(bands_gdf: gpd.GeoDataFrame, network: RoadNetwork,
                minutes: np.ndarray) -> pd.DataFrame:
    # documented tolerances: 1 minute after a band's lower bound, and the buffer width
    return iso.band_accuracy(bands_gdf, network.x, network.y, minutes, crs=network.crs,
                             slack_min=1.0, tolerance_m=iso.BUFFER_M)


# --- bands ----------------------------------------------------------------------------------

def test_bands_follow_the_thresholds() -> None:
    assert iso.bands_from_thresholds(Settings().thresholds_min) == [
        (0.0, 20.0), (20.0, 30.0), (30.0, 45.0)]
    assert iso.bands_from_thresholds([15, 10, 15]) == [(0.0, 10.0), (10.0, 15.0)]


@pytest.mark.parametrize("bad", [[], [0], [-5, 10], [float("nan")], [float("inf")]])
def test_bad_thresholds_are_refused(bad: list[float]) -> None:
    with pytest.raises(InputError, match="thresholds_min"):
        iso.bands_from_thresholds(bad)


# --- geometry on synthetic networks ---------------------------------------------------------

def test_lake_leaves_a_hole_and_no_land_is_claimed_on_it() -> None:
    # 40 × 40 grid at 200 m, a 2.4 km × 2.4 km lake in the middle; service at a corner
    net = grid_network(hole=(14, 26, 14, 26))
    minutes = minutes_from(net, [0])
    bands = [(0.0, 20.0), (20.0, 30.0), (30.0, 45.0)]
    geoms = iso.road_band_geometries(net, minutes, bands, direction="from_service")
    union = shapely.union_all(geoms)
    assert all(g.is_valid for g in geoms)
    lake = shapely.box(X0 + 14 * 200 + 250, Y0 + 14 * 200 + 250,
                       X0 + 25 * 200 - 250, Y0 + 25 * 200 - 250)
    assert union.intersection(lake).area == 0.0
    # the lake is enclosed by reached roads: it is a hole (an interior ring), not a bay
    holes = [shapely.Polygon(r) for p in shapely.get_parts(union) for r in p.interiors]
    assert any(h.contains(lake) for h in holes)
    assert_accurate(accuracy_of(band_frame(geoms, bands), net, minutes), what="lake grid")


def test_bands_are_the_buffer_of_the_reached_arcs() -> None:
    # the raster must equal the vector definition (union of buffered reached segments)
    # up to the raster cell
    net = grid_network(n=25, spacing=300.0, hole=(8, 16, 5, 20))
    minutes = minutes_from(net, [0, 24])
    high = 12.0
    (geom,) = iso.road_band_geometries(net, minutes, [(0.0, high)], buffer_m=200.0,
                                       cell_m=50.0, direction="from_service",
                                       access_speed_kmh=None)
    tails, heads = net.arcs()
    w = net.minutes.data
    segs = []
    for u, v, wt in zip(tails, heads, w, strict=True):
        tu = minutes[u]
        if not tu < high:
            continue
        f = min(1.0, (high - tu) / wt)
        segs.append(shapely.LineString([(net.x[u], net.y[u]),
                                        (net.x[u] + f * (net.x[v] - net.x[u]),
                                         net.y[u] + f * (net.y[v] - net.y[u]))]))
    vector = shapely.union_all(shapely.buffer(segs, 200.0))
    sym = geom.symmetric_difference(vector).area
    assert sym / vector.area < 0.05
    assert geom.difference(vector.buffer(75.0)).area == pytest.approx(0.0, abs=1.0)


def test_partially_reached_arc_is_cut_by_linear_interpolation() -> None:
    # one straight two-way road: 3 arcs of 6 km at 60 km/h (6 min each); band 0–9 min
    # must stop 9 km from the service, half-way along the second arc
    x = X0 + np.array([0.0, 6000.0, 12000.0, 18000.0])
    y = np.full(4, Y0)
    lon, lat = TO_WGS84.transform(x, y)
    tail = np.array([0, 1, 1, 2, 2, 3])
    head = np.array([1, 0, 2, 1, 3, 2])
    net = network_from_arcs(np.asarray(lon), np.asarray(lat), tail, head, np.full(6, 6.0),
                            np.full(6, 6000.0), crs=L93, largest_component=False)
    minutes = minutes_from(net, [0])
    # flat buffer: the land within 200 m of the road reached within 9 minutes
    (flat,) = iso.road_band_geometries(net, minutes, [(0.0, 9.0)], buffer_m=200.0,
                                       cell_m=50.0, direction="from_service",
                                       access_speed_kmh=None)
    xmin, _, xmax, _ = flat.bounds
    assert xmax - X0 == pytest.approx(9000.0 + 200.0, abs=50.0)
    assert X0 - xmin == pytest.approx(200.0, abs=50.0)
    # with the off-road leg at 20 km/h the land beyond the 9-minute point is later than 9
    (cone,) = iso.road_band_geometries(net, minutes, [(0.0, 9.0)], buffer_m=200.0,
                                       cell_m=50.0, direction="from_service",
                                       access_speed_kmh=20.0)
    xmin, _, xmax, ymax = cone.bounds
    assert xmax - X0 == pytest.approx(9000.0, abs=50.0)
    assert ymax - Y0 == pytest.approx(200.0, abs=50.0)
    assert X0 - xmin == pytest.approx(200.0, abs=50.0)


def test_minutes_to_the_service_follow_one_way_arcs_backwards() -> None:
    # one-way road 0 → 1 → 2 with the service at node 2: families at 0 and 1 reach it, so
    # the to-service bands cover the road; minutes from the service reach nothing
    x = X0 + np.array([0.0, 1000.0, 2000.0])
    lon, lat = TO_WGS84.transform(x, np.full(3, Y0))
    net = network_from_arcs(np.asarray(lon), np.asarray(lat), np.array([0, 1]),
                            np.array([1, 2]), np.full(2, 1.0), np.full(2, 1000.0), crs=L93,
                            largest_component=False)
    to_service = np.array([2.0, 1.0, 0.0])
    (geom,) = iso.road_band_geometries(net, to_service, [(0.0, 5.0)], direction="to_service")
    assert shapely.contains_xy(geom, x + 1.0, np.full(3, Y0)).all()
    from_service = np.array([np.nan, np.nan, 0.0])
    (geom,) = iso.road_band_geometries(net, from_service, [(0.0, 5.0)],
                                       direction="from_service")
    assert not shapely.contains_xy(geom, X0 + 500.0, Y0)


def test_wrong_minutes_shape_is_refused() -> None:
    net = grid_network(n=5)
    with pytest.raises(ValueError, match="one value per network node"):
        iso.road_band_geometries(net, np.zeros(3), [(0.0, 10.0)])


@pytest.mark.parametrize(("buffer_m", "cell_m"), [(0.0, 75.0), (150.0, 0.0), (-1.0, -1.0)])
def test_a_non_positive_buffer_or_cell_is_refused(buffer_m: float, cell_m: float) -> None:
    with pytest.raises(ValueError, match="positive metres"):
        iso.RoadRaster(buffer_m=buffer_m, cell_m=cell_m)
    net = grid_network(n=5)
    with pytest.raises(ValueError, match="positive metres"):
        iso.road_band_geometries(net, np.zeros(net.n_nodes), [(0.0, 10.0)],
                                 buffer_m=buffer_m, cell_m=cell_m)


def test_sparse_minutes_give_the_dense_bands() -> None:
    # the per-service path (reached nodes only, a reused sampling graph) draws the same
    # polygons as the dense path from every node's minutes
    net = grid_network(n=20, hole=(6, 12, 6, 12))
    minutes = minutes_from(net, [0])
    bands = [(0.0, 10.0), (10.0, 20.0)]
    dense = iso.road_band_geometries(net, minutes, bands, direction="from_service")
    reached = np.flatnonzero(np.isfinite(minutes))
    sparse = iso.road_band_geometries_sparse(
        net, reached, minutes[reached], bands, raster=iso.RoadRaster(),
        graph=iso.sampling_graph(net, "from_service"))
    assert [g.wkb for g in sparse] == [g.wkb for g in dense]
    service = iso.SERVICE_RASTER
    assert (service.cell_m, service.min_hole_m2) == (iso.SERVICE_CELL_M, iso.SERVICE_MIN_HOLE_M2)


def test_the_package_hands_on_its_public_names() -> None:
    import importlib

    for name in iso.__all__:
        assert getattr(iso, name) is not None, name
    for module in ("raster", "road", "proxy", "bands", "accuracy", "writing"):
        sub = importlib.import_module(f"coverage.isochrones.{module}")
        assert all(hasattr(sub, name) for name in sub.__all__), module


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(4, 14), source=st.integers(0, 10_000), high=st.floats(1.0, 15.0),
       lake=st.tuples(st.integers(0, 10), st.integers(1, 5), st.integers(0, 10),
                      st.integers(1, 5)))
def test_every_reached_node_is_inside_and_polygons_are_valid(
        n: int, source: int, high: float, lake: tuple[int, int, int, int]) -> None:
    i0, di, j0, dj = lake
    net = grid_network(n=n, spacing=250.0, hole=(i0, i0 + di, j0, j0 + dj))
    assume(net.n_nodes > 0)  # a lake over the whole grid leaves no road to start from
    minutes = minutes_from(net, [source % net.n_nodes])
    bands = [(0.0, high / 2), (high / 2, high)]
    geoms = iso.road_band_geometries(net, minutes, bands, direction="from_service")
    assert all(g.is_valid and g.geom_type == "MultiPolygon" for g in geoms)
    # the land around a node is reached a little later than the node (off-road leg at the
    # access speed): a node within that leg's time of the bound may fall just outside —
    # half a minute covers the leg across one and a half cells at 20 km/h
    reached = np.flatnonzero(minutes < high - 0.5)
    union = shapely.union_all(geoms)
    assert shapely.contains_xy(union, net.x[reached], net.y[reached]).all()


# --- the fictional demo territory (road engine and proxy engine) -----------------------------

def test_a_ferry_reaches_the_far_shore_without_drawing_the_water(
        tests_data: Path, tmp_path: Path) -> None:
    import dataclasses

    net = load_network(tests_data / "osm_ferry_lake.osm", cache_dir=tmp_path)
    assert net.ferry.any()
    services = gpd.GeoDataFrame(
        {"service_id": ["W"], "type_service": ["mediation_familiale"], "lon": [2.0],
         "lat": [45.0]}, geometry=shapely.points([(2.0, 45.0)]), crs="EPSG:4326")
    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    # piers at lon 2.030 and 2.070; the 150 m buffer is 0.0019° of longitude here
    water = shapely.LineString([(2.034, 45.0), (2.066, 45.0)])
    far_shore = shapely.points([(2.080, 45.0), (2.100, 45.0), (2.090, 45.010)])

    def union_of(network: RoadNetwork) -> shapely.Geometry:
        engine = RoadEngine(network)
        minutes = engine.node_minutes(services)
        assert np.isfinite(minutes).all()  # routing crosses the lake by the ferry
        types = iso.isochrones_types(engine, empty, services)
        per = iso.isochrones_services(engine, empty, services)
        assert types.is_valid.all() and per.is_valid.all()
        u_types, u_per = types.union_all(), per.union_all()
        assert u_types.intersection(water).is_empty == u_per.intersection(water).is_empty
        return u_types

    union = union_of(net)
    assert shapely.covers(union, far_shore).all()  # the far shore's roads are in a band
    assert union.intersection(water).is_empty  # the water between is not
    # the same graph without the ferry flags draws the crossing as a strip of land
    as_road = union_of(dataclasses.replace(net, ferry=np.zeros(net.n_arcs, dtype=bool)))
    assert not as_road.intersection(water).is_empty


@pytest.fixture(scope="module")
def demo() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, RoadEngine]:
    """FICTIONAL demo territory: communes, services and its road engine."""
    from coverage.io.inputs import load_inputs

    inputs = load_inputs()
    assert inputs.fictif and inputs.roads is not None
    return inputs.communes, inputs.services, RoadEngine(load_network(inputs.roads))


def test_demo_type_bands_are_true_to_node_minutes(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    types = iso.isochrones_types(engine, communes, services)
    assert list(types.columns) == [*iso.TYPES_COLUMNS, "geometry"]
    assert types.crs.equals("EPSG:4326")
    assert set(types["moteur"]) == {"road"}
    assert types.is_valid.all()
    for t, sub in types.groupby("type_service"):
        minutes = engine.node_minutes(services[services["type_service"] == t])
        assert_accurate(accuracy_of(sub, engine.network, minutes), what=f"demo {t}")
    report = iso.types_accuracy(engine, types, services)
    assert set(report["type_service"]) == set(types["type_service"])
    assert len(report) == len(types)
    assert_accurate(report, what="demo report")
    assert iso.types_accuracy(ProxyEngine(), types, services).empty


def test_demo_type_bands_reuse_the_callers_node_minutes(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    t = "mediation_familiale"
    minutes = engine.node_minutes(services[services["type_service"] == t])
    given_ = iso.isochrones_types(engine, communes, services, node_minutes={t: minutes},
                                  settings=Settings(service_types=(t,)))
    computed = iso.isochrones_types(engine, communes, services,
                                    settings=Settings(service_types=(t,)))
    assert len(given_) == len(computed) == 3
    for a, b in zip(given_.geometry, computed.geometry, strict=True):
        assert a.equals_exact(b, tolerance=1e-9)


def test_demo_service_bands_are_true_to_each_services_minutes(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    some = services.iloc[[0, 3, 7]]
    per = iso.isochrones_services(engine, communes, some)
    assert list(per.columns) == [*iso.SERVICES_COLUMNS, "geometry"]
    assert set(per["service_id"]) == set(some["service_id"])
    assert per.is_valid.all()
    for i, sid in enumerate(some["service_id"]):
        # reference: the service's minutes without cut-off (NaN only when unreachable)
        minutes = engine.node_minutes(some.iloc[[i]])
        acc = accuracy_of(per[per["service_id"] == sid], engine.network, minutes)
        assert_accurate(acc, what=f"demo service {sid}")
    # on the same raster, a service's 0–20 band lies inside its type's merged 0–20 band
    # (the nearest service is never farther than this one), up to the contour interpolation
    same = iso.isochrones_services(
        engine, communes, some,
        raster=iso.RoadRaster(cell_m=iso.CELL_M, min_hole_m2=iso.SERVICE_MIN_HOLE_M2)).to_crs(L93)
    types = iso.isochrones_types(engine, communes, some).to_crs(L93)
    for sid, t in zip(some["service_id"], some["type_service"], strict=True):
        own = same[(same["service_id"] == sid) & (same["bande_max"] == 20.0)].geometry.iloc[0]
        merged = types[(types["type_service"] == t) & (types["bande_max"] == 20.0)]
        assert own.difference(merged.geometry.iloc[0]).area <= 0.005 * own.area


def test_service_bands_drawn_by_two_processes_are_byte_identical(demo) -> None:  # type: ignore[no-untyped-def]
    """Chunks drawn by forked processes give the serial frame: the same rows in the same
    order and the same WKB, vertex for vertex; the children did the work."""
    import resource

    from coverage.isochrones.road import _fork_workers

    if _fork_workers(2, 2) == 1:
        pytest.skip("forking is not safe in this process (no fork, another thread or a "
                    "daemon): the parallel path falls back to the serial one")
    communes, services, engine = demo
    some = services.iloc[:5]
    serial = iso.isochrones_services(engine, communes, some, chunk=2)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    forked = iso.isochrones_services(engine, communes, some, chunk=2, workers=2)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert after.ru_utime + after.ru_stime > before.ru_utime + before.ru_stime
    assert len(serial) == len(forked) >= 10
    pd.testing.assert_frame_equal(serial.drop(columns="geometry"),
                                  forked.drop(columns="geometry"))
    assert list(shapely.to_wkb(serial.geometry.to_numpy())) == list(
        shapely.to_wkb(forked.geometry.to_numpy()))


def test_demo_proxy_bands_are_clipped_to_the_territory(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, _ = demo
    engine = ProxyEngine()
    types = iso.isochrones_types(engine, communes, services)
    assert set(types["moteur"]) == {"proxy"}
    assert types.is_valid.all()
    territory = communes.to_crs(L93).union_all()
    outside = types.to_crs(L93).difference(territory).area
    assert (outside < 1.0).all()  # m²: clipped, up to rounding
    # communes' proxy minutes (the engine's own figures) agree with the polygons
    near = engine.nearest(communes, services, service_types=Settings().service_types)
    pts = communes.set_index("code_insee")[["lon", "lat"]]
    for t, sub in types.groupby("type_service"):
        m = near[near["type_service"] == t].set_index("code_insee")["minutes"]
        lon = pts.loc[m.index, "lon"].to_numpy()
        lat = pts.loc[m.index, "lat"].to_numpy()
        x, y = Transformer.from_crs("EPSG:4326", L93, always_xy=True).transform(lon, lat)
        acc = iso.band_accuracy(sub, np.asarray(x), np.asarray(y), m.to_numpy(), crs=L93)
        assert_accurate(acc, what=f"demo proxy {t}")
    per = iso.isochrones_services(engine, communes, services.iloc[:3])
    assert set(per["moteur"]) == {"proxy"}
    assert per.is_valid.all()
    assert (per.to_crs(L93).difference(territory).area < 1.0).all()


def test_missing_columns_name_the_column(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    with pytest.raises(MissingColumnError, match="type_service"):
        iso.isochrones_types(engine, communes, services.drop(columns="type_service"))
    with pytest.raises(MissingColumnError, match="densite"):
        iso.isochrones_types(ProxyEngine(), communes.drop(columns="densite"), services)


def test_bad_density_is_an_input_error(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, _ = demo
    bad = communes.copy()
    bad["densite"] = bad["densite"].astype(object)
    bad.loc[bad.index[4], "densite"] = 9
    with pytest.raises(InputError, match="ligne 5, colonne « densite »"):
        iso.isochrones_types(ProxyEngine(), bad, services)


def test_a_type_without_services_has_no_bands(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    only = services[services["type_service"] == "espace_rencontre"]
    types = iso.isochrones_types(engine, communes, only)
    assert set(types["type_service"]) == {"espace_rencontre"}


# --- writer ---------------------------------------------------------------------------------

def test_write_isochrones_layers_display_and_geojson(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    types = iso.isochrones_types(engine, communes, services)
    per = iso.isochrones_services(engine, communes, services.iloc[:2])
    target = tmp_path / "run" / "isochrones.gpkg"
    written = iso.write_isochrones(types, per, target, geojson_dir=tmp_path / "gj",
                                   display_tolerance_m=80.0)
    assert target in written
    layers = set(gpd.list_layers(target)["name"])
    assert layers == {iso.LAYER_TYPES, iso.LAYER_SERVICES, iso.LAYER_TYPES_DISPLAY,
                      iso.LAYER_SERVICES_DISPLAY}
    back = gpd.read_file(target, layer=iso.LAYER_TYPES)
    assert list(back.columns) == [*iso.TYPES_COLUMNS, "geometry"]
    assert back.crs.equals("EPSG:4326")
    show = gpd.read_file(target, layer=iso.LAYER_TYPES_DISPLAY)
    assert (show[iso.TOLERANCE_COLUMN] == 80.0).all()
    assert show.is_valid.all()
    n_exact = shapely.get_num_coordinates(back.geometry.to_numpy()).sum()
    n_show = shapely.get_num_coordinates(show.geometry.to_numpy()).sum()
    assert n_show < n_exact
    # simplified within its tolerance (plus the raster cell): display ≈ exact
    exact_m, show_m = back.to_crs(L93), show.to_crs(L93)
    for a, b in zip(exact_m.geometry, show_m.geometry, strict=True):
        # the boundary moves by about the tolerance, not more
        assert a.symmetric_difference(b).area <= 80.0 * a.boundary.length
    svc = gpd.read_file(target, layer=iso.LAYER_SERVICES)
    assert list(svc.columns) == [*iso.SERVICES_COLUMNS, "geometry"]
    assert sorted((tmp_path / "gj").glob("*.geojson")) == sorted(
        tmp_path / "gj" / f"{name}.geojson" for name in layers)
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


def test_write_isochrones_refuses_a_metric_frame_and_writes_nothing(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    types = iso.isochrones_types(engine, communes, services)
    target = tmp_path / "isochrones.gpkg"
    with pytest.raises(CRSError, match="to_crs"):
        iso.write_isochrones(types.to_crs(L93), types.iloc[:0].assign(service_id=[]), target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_empty_layers_are_written(tmp_path: Path) -> None:
    empty_types = _frame([], iso.TYPES_COLUMNS, [])
    empty_services = _frame([], iso.SERVICES_COLUMNS, [])
    target = tmp_path / "isochrones.gpkg"
    iso.write_isochrones(empty_types, empty_services, target)
    assert len(gpd.read_file(target, layer=iso.LAYER_TYPES_DISPLAY)) == 0


# --- the real Andorra extract -----------------------------------------------------------------

#: Real places of the extract (lon, lat): Andorra la Vella, Canillo, Pas de la Casa (AD).
ANDORRA_SITES = {"AD-ALV": (1.5218, 42.5063), "AD-CAN": (1.5976, 42.5670),
                 "AD-PAS": (1.7335, 42.5426)}


@pytest.fixture(scope="module")
def andorra(shared_data: Path) -> tuple[RoadEngine, gpd.GeoDataFrame]:
    engine = RoadEngine(load_network(shared_data / "osm" / "andorra-2013.osm.pbf"))
    lon = [p[0] for p in ANDORRA_SITES.values()]
    lat = [p[1] for p in ANDORRA_SITES.values()]
    services = gpd.GeoDataFrame(
        {"service_id": list(ANDORRA_SITES), "type_service": ["mediation_familiale"] * 3,
         "lon": lon, "lat": lat}, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    return engine, services


@pytest.mark.shared
@pytest.mark.parametrize("thresholds", [(20.0, 30.0, 45.0), (5.0, 10.0, 15.0)])
def test_andorra_bands_are_true_to_node_minutes(andorra, thresholds) -> None:  # type: ignore[no-untyped-def]
    engine, services = andorra
    settings = Settings(thresholds_min=thresholds)
    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    for sites in (["AD-ALV"], ["AD-CAN", "AD-PAS"]):
        chosen = services[services["service_id"].isin(sites)]
        types = iso.isochrones_types(engine, empty, chosen, settings=settings)
        assert types.is_valid.all()
        minutes = engine.node_minutes(chosen)
        acc = accuracy_of(types, engine.network, minutes)
        assert acc["n_atteints"].iloc[0] > 0
        assert_accurate(acc, what=f"Andorra {sites} {thresholds}")


@pytest.mark.shared
def test_andorra_service_bands_are_true_to_each_services_minutes(andorra) -> None:  # type: ignore[no-untyped-def]
    engine, services = andorra
    settings = Settings(thresholds_min=(5.0, 10.0, 15.0))
    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    per = iso.isochrones_services(engine, empty, services, settings=settings)
    assert set(per["service_id"]) == set(services["service_id"])
    for i, sid in enumerate(services["service_id"]):
        minutes = engine.node_minutes(services.iloc[[i]])  # no cut-off: the reference
        acc = accuracy_of(per[per["service_id"] == sid], engine.network, minutes)
        assert_accurate(acc, what=f"Andorra {sid}")


def test_bands_of_a_sparse_jittered_network_are_valid() -> None:
    # 500 m jittered grid, a fifth of the streets removed, diagonal shortcuts: blocks wider
    # than twice the buffer leave enclosed holes, and diagonal roads leave diagonal gaps
    # where masked contouring pinched rings into self-touching (invalid) polygons
    rng = np.random.default_rng(7)
    n, spacing = 120, 500.0
    ii, jj = np.meshgrid(np.arange(n), np.arange(n))
    ii, jj = ii.ravel(), jj.ravel()
    node = np.arange(n * n).reshape(n, n)
    tail = np.concatenate([node[:, :-1].ravel(), node[:-1, :].ravel()])
    head = np.concatenate([node[:, 1:].ravel(), node[1:, :].ravel()])
    keep = rng.random(tail.size) >= 0.2
    tail, head = tail[keep], head[keep]
    a = rng.integers(0, n * n, n * n // 14)
    bi = ii[a] + rng.integers(-3, 4, a.size)
    bj = jj[a] + rng.integers(-3, 4, a.size)
    ok = (bi >= 0) & (bi < n) & (bj >= 0) & (bj < n)
    tail = np.concatenate([tail, a[ok]])
    head = np.concatenate([head, (bj * n + bi)[ok]])
    x = X0 + ii * spacing + rng.normal(0, 60, ii.size)
    y = Y0 + jj * spacing + rng.normal(0, 60, jj.size)
    lon, lat = TO_WGS84.transform(x, y)
    metres = np.hypot(x[tail] - x[head], y[tail] - y[head])
    minutes = metres / 1000.0 / rng.uniform(35, 65, tail.size) * 60.0
    net = network_from_arcs(np.asarray(lon), np.asarray(lat), np.concatenate([tail, head]),
                            np.concatenate([head, tail]), np.concatenate([minutes, minutes]),
                            np.concatenate([metres, metres]), crs=L93)
    bands = [(0.0, 20.0), (20.0, 30.0), (30.0, 45.0)]
    holes = 0
    for source in range(0, net.n_nodes, net.n_nodes // 6):
        minutes_ = minutes_from(net, [source])
        for cell in (iso.CELL_M, iso.SERVICE_CELL_M):
            geoms = iso.road_band_geometries(net, minutes_, bands, cell_m=cell)
            assert all(g.is_valid for g in geoms), shapely.is_valid_reason(
                shapely.union_all(geoms))
            holes += sum(len(p.interiors) for g in geoms for p in g.geoms)
    assert holes > 0


def test_a_service_off_the_network_has_no_bands(demo) -> None:  # type: ignore[no-untyped-def]
    communes, services, engine = demo
    far = services.iloc[[0]].copy()
    far["service_id"] = "FAR"
    far["lon"], far["lat"] = far["lon"] + 1.0, far["lat"]  # ≈ 78 km into the sea
    far = far.set_geometry(gpd.points_from_xy(far["lon"], far["lat"]), crs="EPSG:4326")
    both = pd.concat([services.iloc[[1]], far], ignore_index=True)
    per = iso.isochrones_services(engine, communes, both, settings=Settings(
        thresholds_min=(15.0,)))
    assert set(per["service_id"]) == {services["service_id"].iloc[1]}
    assert per[["bande_min", "bande_max"]].drop_duplicates().to_numpy().tolist() == [[0.0, 15.0]]
