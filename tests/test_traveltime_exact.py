"""RoadEngine exactness against networkx: random graphs, parallel arcs, one-ways, islands."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from coverage.geo import project_lonlat
from coverage.routing.matrix import BoundedSearch
from coverage.routing.network import RoadNetwork, network_from_arcs
from coverage.routing.road import RoadEngine
from coverage.settings import Settings

LON0, LAT0 = 2.35, 46.5  # centre of France, Lambert-93


def _random_network(seed: int, n: int, m: int) -> tuple[RoadNetwork, nx.MultiDiGraph]:
    rng = np.random.default_rng(seed)
    lon = LON0 + rng.uniform(0, 0.2, n)
    lat = LAT0 + rng.uniform(0, 0.2, n)
    tail = rng.integers(0, n, m)
    head = rng.integers(0, n, m)
    keep = tail != head
    tail, head = tail[keep], head[keep]
    minutes = rng.uniform(0.0, 5.0, tail.shape[0])
    minutes[rng.random(tail.shape[0]) < 0.05] = 0.0  # some zero-time arcs
    metres = rng.uniform(10.0, 3000.0, tail.shape[0])
    net = network_from_arcs(lon, lat, tail, head, minutes, metres, crs="EPSG:2154",
                            largest_component=False)
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(n))
    for a, b, w, d in zip(tail, head, minutes, metres, strict=True):
        g.add_edge(int(a), int(b), weight=float(w), metres=float(d))
    return net, g


def _places(net: RoadNetwork, nodes: np.ndarray, seed: int, prefix: str) -> pd.DataFrame:
    """Points a few metres from the given nodes (so the connector leg is not zero)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "service_id": [f"{prefix}{i}" for i in range(nodes.shape[0])],
        "code_insee": [f"{prefix}{i:04d}" for i in range(nodes.shape[0])],
        "type_service": "mediation_familiale",
        "lon": net.lon[nodes] + rng.uniform(-2e-5, 2e-5, nodes.shape[0]),
        "lat": net.lat[nodes] + rng.uniform(-2e-5, 2e-5, nodes.shape[0]),
    })


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 40), density=st.floats(0.5, 4.0),
       k=st.integers(1, 4))
def test_node_minutes_equal_networkx(seed: int, n: int, density: float, k: int) -> None:
    net, g = _random_network(seed, n, int(n * density) + 1)
    engine = RoadEngine(net, Settings(snap_max_m=1e6))
    rng = np.random.default_rng(seed + 1)
    services = _places(net, rng.choice(n, size=min(k, n), replace=False), seed, "s")
    snap = engine.snap(services["lon"].to_numpy(), services["lat"].to_numpy())
    got = engine.node_minutes(services)
    # networkx: node → service (the family's trip) = service → node on the reversed graph
    expected = np.full(n, np.inf)
    for j in range(len(services)):
        lengths = nx.single_source_dijkstra_path_length(g.reverse(), int(snap.node[j]))
        for v, d in lengths.items():
            expected[v] = min(expected[v], d + snap.minutes[j])
    expected[~np.isfinite(expected)] = np.nan
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, equal_nan=True)
    # the "from_service" direction equals networkx's multi-source search (equal connectors)
    plain = _places(net, snap.node[:1], seed, "p")
    plain["lon"], plain["lat"] = net.lon[snap.node[:1]], net.lat[snap.node[:1]]
    from_svc = engine.node_minutes(plain, direction="from_service")
    ref = nx.multi_source_dijkstra_path_length(g, {int(snap.node[0])})
    exp2 = np.array([ref.get(v, np.nan) for v in range(n)])
    np.testing.assert_allclose(from_svc, exp2, atol=1e-9, equal_nan=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 30), k=st.integers(1, 3),
       cutoff=st.floats(1.0, 12.0))
def test_nearest_and_matrix_equal_networkx(seed: int, n: int, k: int, cutoff: float) -> None:
    net, g = _random_network(seed, n, 3 * n)
    engine = RoadEngine(net, Settings(snap_max_m=1e6))
    rng = np.random.default_rng(seed + 2)
    services = _places(net, rng.choice(n, size=min(k, n), replace=False), seed, "s")
    communes = _places(net, rng.choice(n, size=min(8, n), replace=False), seed + 3, "c")
    s_snap = engine.snap(services["lon"].to_numpy(), services["lat"].to_numpy())
    c_snap = engine.snap(communes["lon"].to_numpy(), communes["lat"].to_numpy())
    table = engine.nearest(communes, services, service_types=("mediation_familiale",))
    matrix = engine.matrix(communes, services, cutoff_min=cutoff)
    pairs = {(r.service_id, r.code_insee): r.minutes for r in matrix.itertuples()}
    simple = nx.DiGraph()  # minimum over parallel arcs, with the kept arc's metres
    for a, b, data in g.edges(data=True):
        if not simple.has_edge(a, b) or data["weight"] < simple[a][b]["weight"]:
            simple.add_edge(a, b, **data)
    simple.add_nodes_from(g.nodes)
    for i, row in enumerate(table.itertuples()):
        best, best_j = math.inf, -1
        for j in range(len(services)):
            try:
                d = nx.shortest_path_length(simple, int(c_snap.node[i]), int(s_snap.node[j]),
                                            weight="weight")
            except nx.NetworkXNoPath:
                continue
            total = d + s_snap.minutes[j] + c_snap.minutes[i]
            key = (f"s{j}", f"c{i:04d}")
            if total <= cutoff - 1e-4:
                assert pairs[key] == pytest.approx(total, abs=1e-4)
            elif total > cutoff + 1e-4:
                assert key not in pairs
            if total < best:
                best, best_j = total, j
        if best_j < 0:
            assert math.isnan(row.minutes) and row.service_id is None
            assert math.isnan(row.distance_km)
            continue
        assert row.minutes == pytest.approx(best, abs=1e-9)
        # ties: the chosen service must be one of the equally near ones
        j = int(row.service_id[1:])
        d_j = nx.shortest_path_length(simple, int(c_snap.node[i]), int(s_snap.node[j]),
                                      weight="weight")
        assert d_j + s_snap.minutes[j] + c_snap.minutes[i] == pytest.approx(best, abs=1e-9)
        # road distance: metres along *a* fastest path to that service + both connectors
        paths = nx.all_shortest_paths(simple, int(c_snap.node[i]), int(s_snap.node[j]),
                                      weight="weight")
        lengths = {round(sum(simple[a][b]["metres"] for a, b in itertools.pairwise(p)), 6)
                   for p in paths}
        got_m = row.distance_km * 1000 - s_snap.distance_m[j] - c_snap.distance_m[i]
        assert any(abs(got_m - m) < 1e-6 for m in lengths)
        assert row.moteur == "road" and not row.acces_hors_reseau


def _line(minutes_forward: list[float], minutes_backward: list[float] | None = None,
          extra: list[tuple[int, int, float]] | None = None) -> RoadNetwork:
    """Nodes on an east-west line 1 km apart; arcs i → i+1 (and back when given)."""
    n = len(minutes_forward) + 1
    lon = LON0 + np.arange(n) * 0.013
    lat = np.full(n, LAT0)
    tail = list(range(n - 1))
    head = list(range(1, n))
    w = list(minutes_forward)
    if minutes_backward is not None:
        tail += list(range(1, n))
        head += list(range(n - 1))
        w += list(minutes_backward)
    for a, b, m in extra or []:
        tail.append(a)
        head.append(b)
        w.append(m)
    return network_from_arcs(lon, lat, np.array(tail), np.array(head), np.array(w),
                             crs="EPSG:2154", largest_component=False)


def test_parallel_arcs_use_minimum() -> None:
    net = _line([10.0, 10.0], [10.0, 10.0], extra=[(1, 0, 3.0), (1, 0, 7.0), (2, 1, 4.0)])
    engine = RoadEngine(net)
    svc = pd.DataFrame({"service_id": ["s"], "type_service": "t", "lon": [net.lon[0]],
                        "lat": [net.lat[0]]})
    assert engine.node_minutes(svc).tolist() == pytest.approx([0.0, 3.0, 7.0])


def test_oneway_direction_is_the_family_trip() -> None:
    # 0 → 1 → 2 only (one-way): a family at 2 cannot reach a service at 0
    net = _line([1.0, 2.0])
    engine = RoadEngine(net)
    svc = pd.DataFrame({"service_id": ["s"], "type_service": "t", "lon": [net.lon[2]],
                        "lat": [net.lat[2]]})
    to_service = engine.node_minutes(svc)
    assert to_service.tolist() == pytest.approx([3.0, 2.0, 0.0])
    from_service = engine.node_minutes(svc, direction="from_service")
    assert np.isnan(from_service[:2]).all() and from_service[2] == 0.0
    communes = pd.DataFrame({"code_insee": ["00001", "00002"], "lon": net.lon[[0, 2]],
                             "lat": net.lat[[0, 2]]})
    svc0 = svc.assign(lon=[net.lon[0]], lat=[net.lat[0]])
    out = engine.nearest(communes, svc0, service_types=("t",))
    assert out["minutes"].iloc[0] == 0.0
    assert np.isnan(out["minutes"].iloc[1]) and out["service_id"].iloc[1] is None


def test_disconnected_parts_are_nan() -> None:
    # two islands {0, 1} and {2, 3}
    lon = LON0 + np.arange(4) * 0.013
    lat = np.full(4, LAT0)
    net = network_from_arcs(lon, lat, np.array([0, 1, 2, 3]), np.array([1, 0, 3, 2]),
                            np.ones(4), crs="EPSG:2154", largest_component=False)
    engine = RoadEngine(net)
    svc = pd.DataFrame({"service_id": ["s"], "type_service": "t", "lon": [lon[0]],
                        "lat": [lat[0]]})
    minutes = engine.node_minutes(svc)
    assert minutes[:2].tolist() == [0.0, 1.0]
    assert np.isnan(minutes[2:]).all()
    ids, per = engine.node_minutes_per_source(svc, 30.0)
    assert ids.tolist() == ["s"] and per.dtype == np.float32
    np.testing.assert_array_equal(per[0], minutes.astype(np.float32))
    # sparse: the service's own node is stored with 0.0 minutes, the other island not at all
    far = pd.DataFrame({"service_id": ["far"], "type_service": "t", "lon": [lon[0]],
                        "lat": [lat[0] + 1.0]})  # 111 km north: off the network
    ids, sparse = engine.node_minutes_per_source_sparse(pd.concat([svc, far]), 30.0)
    assert ids.tolist() == ["s", "far"] and sparse.shape == (2, 4)
    assert sparse.indptr.tolist() == [0, 2, 2]
    assert sparse.indices.tolist() == [0, 1] and sparse.data.tolist() == [0.0, 1.0]


def test_snapping_connector_and_off_network_flag() -> None:
    net = _line([1.0, 1.0], [1.0, 1.0])
    s = Settings(snap_max_m=500.0, access_speed_kmh=20.0)
    engine = RoadEngine(net, s)
    # 300 m north of node 0 (≈ 0.0027° of latitude) and 2 km north of node 2
    communes = pd.DataFrame({"code_insee": ["near", "far"],
                             "lon": [net.lon[0], net.lon[2]],
                             "lat": [LAT0 + 300 / 111_200, LAT0 + 2000 / 111_200]})
    snap = engine.snap(communes["lon"].to_numpy(), communes["lat"].to_numpy())
    assert snap.node.tolist() == [0, 2]
    assert snap.distance_m[0] == pytest.approx(300, rel=0.01)
    assert snap.minutes[0] == pytest.approx(snap.distance_m[0] / 1000 / 20 * 60)
    assert snap.off_network.tolist() == [False, True] and np.isnan(snap.minutes[1])
    svc = pd.DataFrame({"service_id": ["s"], "type_service": "t", "lon": [net.lon[1]],
                        "lat": [net.lat[1]]})
    out = engine.nearest(communes, svc, service_types=("t",))
    assert out["acces_hors_reseau"].tolist() == [False, True]
    assert out["minutes"].iloc[0] == pytest.approx(1.0 + snap.minutes[0])
    assert np.isnan(out["minutes"].iloc[1]) and out["service_id"].iloc[1] is None
    # a service beyond the snap distance is not used
    far_svc = svc.assign(lat=[LAT0 + 2000 / 111_200])
    assert np.isnan(engine.node_minutes(far_svc)).all()
    assert engine.matrix(communes, svc, cutoff_min=60.0)["code_insee"].tolist() == ["near"]


def test_snapping_in_curve_order_equals_the_plain_query() -> None:
    """Many points are queried along a Hilbert curve: the same node and distance each."""
    net, _ = _random_network(21, 300, 900)
    engine = RoadEngine(net, Settings(snap_max_m=1e6))
    assert engine._tree is net.snap_tree
    assert RoadEngine(net, Settings())._tree is engine._tree  # one tree per network
    rng = np.random.default_rng(5)
    lon = LON0 + rng.uniform(-0.05, 0.25, 3000)
    lat = LAT0 + rng.uniform(-0.05, 0.25, 3000)
    lon[:200] = net.lon[rng.integers(0, 300, 200)]  # points on nodes: distance 0
    lat[:200] = net.lat[rng.integers(0, 300, 200)]
    snap = engine.snap(lon, lat)
    x, y = project_lonlat(lon, lat, net.crs)
    dist, node = cKDTree(np.column_stack([net.x, net.y])).query(np.column_stack([x, y]))
    np.testing.assert_array_equal(snap.node, node)
    np.testing.assert_array_equal(snap.distance_m, dist)
    few = engine.snap(lon[:10], lat[:10])  # below the sorting threshold
    np.testing.assert_array_equal(few.node, node[:10])


def test_nearest_columns_and_types() -> None:
    net = _line([1.0], [1.0])
    engine = RoadEngine(net)
    communes = pd.DataFrame({"code_insee": ["00001"], "lon": [net.lon[0]], "lat": [LAT0]})
    svc = pd.DataFrame({"service_id": ["a", "b"], "type_service": ["t1", "t2"],
                        "lon": net.lon[[0, 1]], "lat": net.lat[[0, 1]]})
    out = engine.nearest(communes, svc, service_types=("t1", "t2", "t3"))
    assert list(out.columns) == ["code_insee", "type_service", "minutes", "service_id",
                                 "distance_km", "moteur", "acces_hors_reseau"]
    assert out["type_service"].tolist() == ["t1", "t2", "t3"]
    assert out["minutes"].iloc[:2].tolist() == [0.0, 1.0]
    assert np.isnan(out["minutes"].iloc[2])  # no service of that type
    assert out["distance_km"].iloc[1] == pytest.approx(net.metres[0, 1] / 1000)
    assert (out["moteur"] == "road").all()
    assert engine.parameters()["moteur"] == "road"
    assert engine.nearest(communes, svc, service_types=()).empty


def test_nearest_with_node_minutes_matches_node_minutes() -> None:
    net, _ = _random_network(5, 30, 90)
    engine = RoadEngine(net, Settings(snap_max_m=1e6))
    services = _places(net, np.array([0, 7, 12]), 1, "s")
    services["type_service"] = ["a", "a", "b"]
    communes = _places(net, np.array([3, 4]), 2, "c")
    table, per_type = engine.nearest_with_node_minutes(communes, services,
                                                       service_types=("a", "b"))
    assert table.equals(engine.nearest(communes, services, service_types=("a", "b")))
    for t in ("a", "b"):
        np.testing.assert_array_equal(
            per_type[t], engine.node_minutes(services[services["type_service"] == t]))


def test_parallel_type_passes_equal_serial() -> None:
    net, _ = _random_network(9, 60, 200)
    services = _places(net, np.array([0, 7, 12, 30, 41]), 1, "s")
    services["type_service"] = ["a", "a", "b", "b", "c"]
    communes = _places(net, np.arange(0, 60, 3), 2, "c")
    serial = RoadEngine(net, Settings(snap_max_m=1e6), workers=1)
    parallel = RoadEngine(net, Settings(snap_max_m=1e6), workers=2)
    auto = RoadEngine(net, Settings(snap_max_m=1e6))
    assert serial._type_workers(3) == 1
    assert parallel._type_workers(3) == 2 and parallel._type_workers(1) == 1
    assert auto._type_workers(3) == 1  # a small graph: no thread
    types = ("a", "b", "c")
    t1, m1 = serial.nearest_with_node_minutes(communes, services, service_types=types)
    t2, m2 = parallel.nearest_with_node_minutes(communes, services, service_types=types)
    pd.testing.assert_frame_equal(t1, t2)
    pd.testing.assert_frame_equal(parallel.nearest(communes, services, service_types=types),
                                  t1)
    for t in types:
        np.testing.assert_array_equal(m1[t], m2[t])


def test_nearest_reads_the_communes_nodes_as_the_node_minutes() -> None:
    """The table read at the communes' nodes only equals the one read from every node."""
    net, _ = _random_network(11, 80, 260)
    engine = RoadEngine(net, Settings(snap_max_m=1e6))
    rng = np.random.default_rng(3)
    services = _places(net, rng.choice(80, 6, replace=False), 4, "s")
    services["type_service"] = ["a", "b", "a", "b", "a", "b"]
    communes = _places(net, rng.choice(80, 30, replace=True), 5, "c")
    types = ("b", "a", "absent")
    table, per_type = engine.nearest_with_node_minutes(communes, services,
                                                       service_types=types)
    pd.testing.assert_frame_equal(engine.nearest(communes, services, service_types=types),
                                  table, check_exact=True)
    assert table["code_insee"].tolist() == communes["code_insee"].tolist() * 3
    assert table["type_service"].tolist() == [t for t in types for _ in range(30)]
    assert [str(table[c].dtype) for c in ("type_service", "service_id", "moteur")] == \
        ["object"] * 3
    snap = engine.snap(communes["lon"].to_numpy(), communes["lat"].to_numpy())
    for t in ("a", "b"):
        rows = table[table["type_service"] == t]
        np.testing.assert_array_equal(rows["minutes"].to_numpy(),
                                      per_type[t][snap.node] + snap.minutes)
    assert table[table["type_service"] == "absent"]["minutes"].isna().all()
    assert table[table["type_service"] == "absent"]["service_id"].isna().all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 30), k=st.integers(1, 4),
       cutoff=st.floats(0.5, 15.0))
def test_node_minutes_per_source_equal_networkx(seed: int, n: int, k: int,
                                                cutoff: float) -> None:
    net, g = _random_network(seed, n, 3 * n)
    engine = RoadEngine(net, Settings(snap_max_m=1e6))
    rng = np.random.default_rng(seed + 4)
    services = _places(net, rng.choice(n, size=min(k, n), replace=False), seed, "s")
    snap = engine.snap(services["lon"].to_numpy(), services["lat"].to_numpy())
    for direction, graph in (("to_service", g.reverse()), ("from_service", g)):
        ids, per = engine.node_minutes_per_source(services, cutoff, direction=direction)
        assert ids.tolist() == services["service_id"].tolist()
        assert per.shape == (len(services), n) and per.dtype == np.float32
        for j in range(len(services)):
            ref = nx.single_source_dijkstra_path_length(graph, int(snap.node[j]))
            total = np.full(n, np.inf)
            for v, d in ref.items():
                total[v] = d + snap.minutes[j]
            expected = np.where(total <= cutoff, total, np.nan)
            close = np.abs(total - cutoff) < 1e-4
            got = per[j].astype(np.float64)
            # float32 rounding at the cut-off itself may flip a value in or out
            np.testing.assert_allclose(got[~close], expected[~close], rtol=1e-6, atol=1e-5,
                                       equal_nan=True)
        # the sparse result stores exactly the dense row's non-NaN values
        sids, sparse = engine.node_minutes_per_source_sparse(services, cutoff,
                                                             direction=direction)
        assert sids.tolist() == ids.tolist() and sparse.shape == per.shape
        assert sparse.dtype == np.float32
        for j in range(len(services)):
            row = slice(sparse.indptr[j], sparse.indptr[j + 1])
            np.testing.assert_array_equal(sparse.indices[row], np.flatnonzero(~np.isnan(per[j])))
            np.testing.assert_array_equal(sparse.data[row], per[j][~np.isnan(per[j])])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bounded_search_on_the_reachable_disc_equals_the_whole_graph(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # 60 × 60 jittered grid at 500 m (30 km wide), 20–90 km/h, 10 % one-way: a 3-minute
    # search stays within 4.5 km (90 km/h), in at most 3 × 3 of the 5 km buckets
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    side, spacing = 60, 500.0
    ii, jj = np.meshgrid(np.arange(side), np.arange(side))
    x = 600_000.0 + ii.ravel() * spacing + rng.normal(0, 60, side * side)
    y = 6_600_000.0 + jj.ravel() * spacing + rng.normal(0, 60, side * side)
    node = np.arange(side * side).reshape(side, side)
    tail = np.concatenate([node[:, :-1].ravel(), node[:-1, :].ravel()])
    head = np.concatenate([node[:, 1:].ravel(), node[1:, :].ravel()])
    metres = np.hypot(x[tail] - x[head], y[tail] - y[head])
    minutes = metres / 1000.0 / rng.uniform(20.0, 90.0, tail.size) * 60.0
    two = rng.random(tail.size) >= 0.1
    lon, lat = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True).transform(x, y)
    net = network_from_arcs(np.asarray(lon), np.asarray(lat),
                            np.concatenate([tail, head[two]]),
                            np.concatenate([head, tail[two]]),
                            np.concatenate([minutes, minutes[two]]), crs="EPSG:2154")
    engine = RoadEngine(net)
    calls: list[bool] = []
    original = BoundedSearch.disc_graph

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = original(self, *args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(BoundedSearch, "disc_graph", spy)
    # the discs here hold up to a quarter of the nodes: allow them (a speed choice only)
    monkeypatch.setattr("coverage.routing.matrix.DISC_MAX_SHARE", 0.5)
    services = _places(net, rng.choice(net.n_nodes, size=6, replace=False), seed, "s")
    for direction in ("to_service", "from_service"):
        _ids, sparse = engine.node_minutes_per_source_sparse(services, 3.0,
                                                             direction=direction)
        assert calls and all(calls)  # every search ran on its disc
        _, dense = engine.node_minutes_per_source(services, 3.0, direction=direction)
        for j in range(len(services)):
            row = slice(sparse.indptr[j], sparse.indptr[j + 1])
            expected = np.flatnonzero(~np.isnan(dense[j]))
            assert 0 < expected.size < net.n_nodes // 4  # bounded, and reaching something
            np.testing.assert_array_equal(sparse.indices[row], expected)
            np.testing.assert_array_equal(sparse.data[row], dense[j][expected])
        calls.clear()
