"""make_engine and the one interface of both engines; GraphML input."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from coverage.errors import CoverageError
from coverage.results import RunOutputs
from coverage.routing import RunEngine, _road_engine, engine_of_run, make_engine
from coverage.routing.base import NEAREST_COLUMNS
from coverage.routing.network import load_network
from coverage.routing.proxy import ProxyEngine
from coverage.routing.road import RoadEngine
from coverage.settings import Settings

FIXTURE = "osm_small_network.osm"


def test_make_engine_choice(tests_data: Path, tmp_path: Path) -> None:
    assert isinstance(make_engine(None, None, Settings()), ProxyEngine)
    road = make_engine(None, tests_data / FIXTURE, Settings(), cache_dir=tmp_path)
    assert isinstance(road, RoadEngine) and road.name == "road"
    assert isinstance(make_engine("proxy", tests_data / FIXTURE), ProxyEngine)
    # the public API's spelling: keywords only, the engine chosen from the roads
    assert isinstance(make_engine(), ProxyEngine)
    assert isinstance(make_engine(roads=tests_data / FIXTURE, cache_dir=tmp_path), RoadEngine)
    with pytest.raises(CoverageError, match="demande un fichier de réseau routier"):
        make_engine("road", None)
    with pytest.raises(CoverageError, match="moteur inconnu « bus »"):
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


# --- engine_of_run: the one way to rebuild a finished run's engine -------------------------

def _run(tmp_path: Path, manifest: dict[str, object]) -> RunOutputs:
    empty = gpd.GeoDataFrame({"code_dep": pd.Series([], dtype=object)}, geometry=[],
                             crs="EPSG:4326")
    return RunOutputs(run_dir=tmp_path, manifest=manifest, tables={}, communes=empty,
                      services=empty)


def _road_manifest(roads: Path) -> dict[str, object]:
    return {"engine": {"name": "road", "parameters": {"crs_metrique": "EPSG:2154",
                                                       "reseau": str(roads)}},
            "inputs": {"roads": {"path": str(roads)}},
            "parameters": {"snap_max_m": 3000.0, "access_speed_kmh": 15.0,
                           "proxy_detour_factor": 1.5}}


@pytest.fixture
def network_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZB_CACHE_DIR", str(tmp_path / "cache"))
    _road_engine.cache_clear()
    return tmp_path / "cache"


def test_engine_of_run_road_with_its_file(tests_data: Path, tmp_path: Path,
                                          network_cache: Path) -> None:
    roads = tmp_path / "routes.osm"
    shutil.copy(tests_data / FIXTURE, roads)
    run = _run(tmp_path, _road_manifest(roads))
    chosen = engine_of_run(run, dept="31")
    assert isinstance(chosen, RunEngine)
    assert isinstance(chosen.engine, RoadEngine)
    assert chosen.engine.network.crs == "EPSG:2154"
    assert chosen.engine.settings.snap_max_m == 3000.0
    assert chosen.engine.settings.access_speed_kmh == 15.0
    assert chosen.note == "road : graphe routier du run (routes.osm)"
    # memoised per process: the same graph on the next rerun, with or without fallback
    assert engine_of_run(run, dept="31").engine is chosen.engine
    assert engine_of_run(run, dept="31", fallback_to_proxy=True).engine is chosen.engine
    # another metric CRS is another engine
    other = _road_manifest(roads)
    other["engine"] = {"name": "road", "parameters": {"crs_metrique": "EPSG:32631"}}
    assert engine_of_run(_run(tmp_path, other), dept="31").engine is not chosen.engine
    with pytest.raises(AttributeError):
        chosen.note = "x"  # type: ignore[misc]


def test_engine_of_run_road_file_missing(tmp_path: Path, network_cache: Path) -> None:
    run = _run(tmp_path, _road_manifest(tmp_path / "gone" / "routes.osm"))
    with pytest.raises(CoverageError,
                       match=r"viennent du réseau routier .*routes\.osm.* est introuvable"):
        engine_of_run(run, dept="31")
    chosen = engine_of_run(run, dept="31", fallback_to_proxy=True)
    assert isinstance(chosen.engine, ProxyEngine)
    assert chosen.engine.settings.proxy_detour_factor == 1.5  # the run's settings
    assert chosen.note.startswith("proxy : le fichier routier du run n'est plus disponible")


def test_engine_of_run_road_file_unreadable(tmp_path: Path, network_cache: Path) -> None:
    roads = tmp_path / "routes.osm"
    roads.write_text("ceci n'est pas un fichier OSM", encoding="utf-8")
    run = _run(tmp_path, _road_manifest(roads))
    with pytest.raises(CoverageError):
        engine_of_run(run, dept="31")
    chosen = engine_of_run(run, dept="31", fallback_to_proxy=True)
    assert isinstance(chosen.engine, ProxyEngine)
    assert chosen.note.startswith("proxy : le réseau routier du run n'a pas pu être chargé (")


def test_engine_of_run_proxy_run(tmp_path: Path) -> None:
    manifest: dict[str, object] = {"engine": {"name": "proxy", "parameters": {}},
                                   "parameters": {"proxy_detour_factor": 1.4,
                                                  "proxy_access_min_by_density":
                                                  {"1": 2, "2": 3, "3": 4, "4": 60},
                                                  "proxy_speed_far_kmh": 90}}
    for fallback in (False, True):
        chosen = engine_of_run(_run(tmp_path, manifest), dept="ZA",
                               fallback_to_proxy=fallback)
        assert isinstance(chosen.engine, ProxyEngine)
        assert chosen.engine.settings.proxy_detour_factor == 1.4
        assert chosen.engine.settings.proxy_access_min_by_density[4] == 60.0
        assert chosen.engine.settings.proxy_speed_far_kmh == 90.0
        assert chosen.note.startswith("proxy : ") and "comme le run" in chosen.note


# --- the contract's shared helpers (routing.base) ------------------------------------------

def test_base_empty_tables_and_lonlat() -> None:
    from coverage.errors import InputError
    from coverage.routing.base import MATRIX_COLUMNS, empty_matrix, empty_nearest, lonlat

    near = empty_nearest()
    assert tuple(near.columns) == NEAREST_COLUMNS and near.empty
    assert near["minutes"].dtype == np.float64 and near["acces_hors_reseau"].dtype == bool
    mat = empty_matrix()
    assert tuple(mat.columns) == MATRIX_COLUMNS and mat["minutes"].dtype == np.float32
    lon, lat = lonlat(pd.DataFrame({"lon": ["1.5", 2], "lat": [43.0, "44.5"]}), "services")
    assert lon.tolist() == [1.5, 2.0] and lat.tolist() == [43.0, 44.5]
    with pytest.raises(InputError) as err:
        lonlat(pd.DataFrame({"lon": [1.0, None, 3.0], "lat": [43.0, 44.0, "x"]}), "communes")
    assert [p.row for p in err.value.problems] == [2, 3]
    assert all(p.file == "communes" for p in err.value.problems)
