"""make_engine and the one interface of both engines; GraphML input."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from coverage.errors import CoverageError
from coverage.routing.network import load_network
from coverage.routing.proxy import ProxyEngine
from coverage.routing.road import NEAREST_COLUMNS, RoadEngine, make_engine
from coverage.settings import Settings

FIXTURE = "osm_small_network.osm"


def test_make_engine_choice(tests_data: Path, tmp_path: Path) -> None:
    assert isinstance(make_engine(None, None, Settings()), ProxyEngine)
    road = make_engine(None, tests_data / FIXTURE, Settings(), cache_dir=tmp_path)
    assert isinstance(road, RoadEngine) and road.name == "road"
    assert isinstance(make_engine("proxy", tests_data / FIXTURE), ProxyEngine)
    with pytest.raises(CoverageError, match="needs a road network file"):
        make_engine("road", None)
    with pytest.raises(CoverageError, match="unknown engine 'bus'"):
        make_engine("bus", None)


def test_both_engines_same_interface(tests_data: Path, tmp_path: Path) -> None:
    net = load_network(tests_data / FIXTURE, cache_dir=tmp_path)
    communes = pd.DataFrame({"code_insee": ["31001", "31002"], "code_dep": ["31", "31"],
                             "densite": [2, 4], "lon": [1.401, 1.429],
                             "lat": [43.6005, 43.6095]})
    services = pd.DataFrame({"service_id": ["A", "B"],
                             "type_service": ["mediation_familiale", "espace_rencontre"],
                             "code_dep": ["31", "31"], "lon": [1.420, 1.400],
                             "lat": [43.600, 43.610]})
    types = ("mediation_familiale", "espace_rencontre")
    for engine in (RoadEngine(net), ProxyEngine()):
        out = engine.nearest(communes, services, service_types=types)
        assert tuple(out.columns) == NEAREST_COLUMNS
        assert len(out) == 4 and (out["moteur"] == engine.name).all()
        assert out["minutes"].between(0, 60).all()
        assert out["service_id"].tolist() == ["A", "A", "B", "B"]
        matrix = engine.matrix(communes, services, cutoff_min=60.0)
        assert list(matrix.columns) == ["service_id", "code_insee", "minutes"]
        assert len(matrix) == 4 and matrix["minutes"].dtype == np.float32
        assert engine.parameters()["moteur"] == engine.name
    # the road time of commune 1 to A: connector + road; cross-check with the matrix
    road = RoadEngine(net)
    near = road.nearest(communes, services, service_types=types)
    mat = road.matrix(communes, services, cutoff_min=60.0).set_index(
        ["service_id", "code_insee"])["minutes"]
    for row in near.itertuples():
        assert mat[(row.service_id, row.code_insee)] == pytest.approx(row.minutes, abs=1e-4)


def test_graphml_input(tmp_path: Path) -> None:
    ox = pytest.importorskip("osmnx")
    g = nx.MultiDiGraph(crs="epsg:4326")
    coords = {10: (1.40, 43.60), 11: (1.41, 43.60), 12: (1.41, 43.61)}
    for node, (x, y) in coords.items():
        g.add_node(node, x=x, y=y)
    g.add_edge(10, 11, length=800.0, highway="primary", maxspeed="80")
    g.add_edge(11, 10, length=800.0, highway="primary", maxspeed="80")
    g.add_edge(11, 12, length=1100.0, highway="residential")
    g.add_edge(12, 11, length=1100.0, highway="residential", travel_time=300.0)
    g.add_edge(12, 10, length=500.0, highway="footway")
    path = tmp_path / "tiny.graphml"
    ox.save_graphml(g, path)
    net = load_network(path, cache_dir=tmp_path)
    assert net.node_ids.tolist() == [10, 11, 12]
    dense = net.minutes.toarray()
    assert dense[0, 1] == pytest.approx(800 / 1000 / 80 * 60)
    assert dense[1, 2] == pytest.approx(1100 / 1000 / 30 * 60)  # residential default
    assert dense[2, 1] == pytest.approx(5.0)  # travel_time in seconds
    assert dense[2, 0] == 0.0 and net.n_arcs == 4  # the footway is not a car arc
