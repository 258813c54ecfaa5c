"""Real OSM extracts (../shared/data/osm): exactness vs networkx, build vs osmnx."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from coverage.routing.network import RoadNetwork, _car_allowed, _kept_classes, load_network
from coverage.routing.road import RoadEngine
from coverage.settings import Settings

pytestmark = pytest.mark.shared

EXTRACTS = ["andorra-2013.osm.pbf", "monaco-2012.osm.gz"]


def _digraph(net: RoadNetwork) -> nx.DiGraph:
    tails, heads = net.arcs()
    g = nx.DiGraph()
    g.add_weighted_edges_from(zip(tails.tolist(), heads.tolist(), net.minutes.data.tolist(),
                                  strict=True))
    return g


@pytest.fixture(scope="module")
def networks(shared_data: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, RoadNetwork]:
    cache = tmp_path_factory.mktemp("cache")
    return {name: load_network(shared_data / "osm" / name, cache_dir=cache)
            for name in EXTRACTS}


@pytest.mark.parametrize("name", EXTRACTS)
def test_sampled_pairs_equal_networkx(networks: dict[str, RoadNetwork], name: str) -> None:
    net = networks[name]
    engine = RoadEngine(net)
    g = _digraph(net)
    rng = np.random.default_rng(7)
    targets = rng.choice(net.n_nodes, 6, replace=False)
    for target in targets:
        # a service exactly on the node: zero connector leg
        svc = pd.DataFrame({"service_id": ["s"], "type_service": "t",
                            "lon": [net.lon[target]], "lat": [net.lat[target]]})
        minutes = engine.node_minutes(svc)
        for origin in rng.choice(net.n_nodes, 5, replace=False):
            expected = nx.shortest_path_length(g, int(origin), int(target), weight="weight")
            assert minutes[origin] == pytest.approx(expected, abs=1e-6)
    assert np.isfinite(minutes).all()  # one strongly connected component


def test_multi_source_equals_networkx(networks: dict[str, RoadNetwork]) -> None:
    net = networks["andorra-2013.osm.pbf"]
    engine = RoadEngine(net)
    rng = np.random.default_rng(11)
    nodes = rng.choice(net.n_nodes, 8, replace=False)
    svc = pd.DataFrame({"service_id": [f"s{i}" for i in range(8)], "type_service": "t",
                        "lon": net.lon[nodes], "lat": net.lat[nodes]})
    got = engine.node_minutes(svc)
    ref = nx.multi_source_dijkstra_path_length(_digraph(net).reverse(copy=False),
                                               set(nodes.tolist()))
    expected = np.array([ref[v] for v in range(net.n_nodes)])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", EXTRACTS)
def test_compiled_core_equals_scipy_and_networkx(networks: dict[str, RoadNetwork],
                                                 name: str) -> None:
    """The compiled search (Hilbert-renumbered) gives scipy's minutes bit for bit on real
    graphs, and its bounded searches networkx's within the bound."""
    net = networks[name]
    engine = RoadEngine(net)
    graph = engine._graph()[0]
    rng = np.random.default_rng(19)
    nodes = rng.choice(net.n_nodes, 12, replace=False)
    start = rng.uniform(0.0, 2.0, 12)
    n, k = net.n_nodes, 12
    aug = sp.csr_array((np.concatenate([graph.data, start]),
                        np.concatenate([graph.indices, nodes]).astype(np.int32),
                        np.concatenate([graph.indptr, graph.nnz + np.arange(1, k + 1)]
                                       ).astype(np.int32)), shape=(n + k, n + k))
    expected = dijkstra(aug, indices=n + np.arange(k), min_only=True)[:n]
    dist, which, _ = engine._compiled("to_service").multi_source(nodes, start)
    np.testing.assert_array_equal(dist, expected)
    assert (which >= 0).all()  # one strongly connected component
    reverse = _digraph(net).reverse(copy=False)
    for i, reached, minutes in engine._compiled("to_service").bounded(nodes[:3],
                                                                      np.full(3, 8.0)):
        ref = nx.single_source_dijkstra_path_length(reverse, int(nodes[i]), cutoff=8.0)
        assert set(reached.tolist()) == set(ref)
        got = dict(zip(reached.tolist(), minutes.tolist(), strict=True))
        assert max(abs(got[v] - d) for v, d in ref.items()) < 1e-9


@pytest.mark.parametrize("name", EXTRACTS)
def test_build_matches_osmnx(shared_data: Path, networks: dict[str, RoadNetwork],
                             tmp_path: Path, name: str) -> None:
    """osmnx.graph_from_xml (no simplification) filtered by the same car rules gives the
    same nodes and arcs and the same lengths."""
    osmium = pytest.importorskip("osmium")
    ox = pytest.importorskip("osmnx")
    xml = tmp_path / "extract.osm"
    with osmium.SimpleWriter(str(xml)) as writer:
        for obj in osmium.FileProcessor(str(shared_data / "osm" / name)):
            writer.add(obj)
    tags = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = [*tags, "motor_vehicle", "motorcar"]
    try:
        full = ox.graph_from_xml(xml, bidirectional=False, simplify=False, retain_all=True)
    finally:
        ox.settings.useful_tags_way = tags
    classes = _kept_classes(Settings())
    car = nx.DiGraph()
    for u, v, data in full.edges(data=True):
        access = {k: data[k] for k in ("access", "motorcar", "motor_vehicle")
                  if isinstance(data.get(k), str)}
        if (data.get("highway") in classes and data.get("area") != "yes"
                and _car_allowed(access) and u != v):
            length = float(data["length"])
            if not car.has_edge(u, v) or length < car[u][v]["length"]:
                car.add_edge(u, v, length=length)
    largest = car.subgraph(max(nx.strongly_connected_components(car), key=len))
    net = networks[name]
    assert net.n_nodes == largest.number_of_nodes()
    assert net.n_arcs == largest.number_of_edges()
    tails, heads = net.arcs()
    ours = dict(zip(zip(net.node_ids[tails].tolist(), net.node_ids[heads].tolist(),
                        strict=True), net.metres.data.tolist(), strict=True))
    assert set(ours) == set(largest.edges())
    for (u, v), metres in list(ours.items())[:2000]:
        assert metres == pytest.approx(largest[u][v]["length"], rel=1e-6, abs=1e-3)


def test_real_nearest_snapping_and_distances(networks: dict[str, RoadNetwork]) -> None:
    """Andorra: a place 100 km away is off the network; road km ≥ straight-line km."""
    net = networks["andorra-2013.osm.pbf"]
    engine = RoadEngine(net)
    rng = np.random.default_rng(3)
    nodes = rng.choice(net.n_nodes, 40, replace=False)
    communes = pd.DataFrame({"code_insee": [f"C{i:03d}" for i in range(40)] + ["TLSE"],
                             "lon": [*net.lon[nodes].tolist(), 1.444],  # + Toulouse
                             "lat": [*net.lat[nodes].tolist(), 43.604]})
    services = pd.DataFrame({"service_id": ["A", "B"], "type_service": "t",
                             "lon": net.lon[nodes[:2]], "lat": net.lat[nodes[:2]]})
    out = engine.nearest(communes, services, service_types=("t",))
    assert out["acces_hors_reseau"].tolist() == [False] * 40 + [True]
    assert np.isnan(out["minutes"].iloc[-1]) and out["service_id"].iloc[-1] is None
    on = out.iloc[:40]
    assert on["minutes"].notna().all() and on["service_id"].isin(["A", "B"]).all()
    assert on["minutes"].iloc[:2].tolist() == [0.0, 0.0]  # the services' own nodes
    from coverage.geo import haversine_m

    chosen = np.where(on["service_id"] == "A", nodes[0], nodes[1])
    crow_km = haversine_m(net.lon[nodes], net.lat[nodes], net.lon[chosen],
                          net.lat[chosen]) / 1000
    assert (on["distance_km"].to_numpy() >= crow_km - 1e-6).all()
    # the same minutes from the bounded matrix (float32)
    matrix = engine.matrix(communes, services, cutoff_min=float(on["minutes"].max()) + 1)
    best = matrix.groupby("code_insee")["minutes"].min()
    np.testing.assert_allclose(best.loc[on["code_insee"]].to_numpy(),
                               on["minutes"].to_numpy(), rtol=1e-5, atol=1e-4)
