"""Road network build: tags, speeds, one-ways, ferries, missing nodes, components, cache."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from coverage.errors import InputError, UnsupportedFormatError
from coverage.geo import EARTH_RADIUS_M, haversine_m, metric_crs_for_lonlat
from coverage.routing.network import (
    KMH_PER_MPH,
    RoadNetwork,
    csr_min,
    load_network,
    network_from_arcs,
    parse_duration_min,
    parse_maxspeed,
)
from coverage.settings import DEFAULT_SPEEDS_KMH, Settings

FIXTURE = "osm_small_network.osm"


@pytest.mark.parametrize(
    ("tag", "kmh"),
    [
        ("50", 50.0),
        ("  90 ", 90.0),
        ("30 mph", 30 * KMH_PER_MPH),
        ("20mph", 20 * KMH_PER_MPH),
        ("70 km/h", 70.0),
        ("FR:urban", 50.0),
        ("FR:rural", 80.0),
        ("FR:motorway", 130.0),
        ("FR:zone30", 30.0),
        ("BE:zone30", 30.0),  # other countries' implicit codes: French value of the suffix
        ("50;70", 50.0),  # lists: the minimum
        ("90;FR:urban", 50.0),
        ("walk", 6.0),
        ("none", None),  # no limit: the class default applies
        ("signals", None),
        ("variable", None),
        ("", None),
        ("0", None),
        (None, None),
    ],
)
def test_parse_maxspeed(tag: str | None, kmh: float | None) -> None:
    got = parse_maxspeed(tag)
    if kmh is None:
        assert got is None
    else:
        assert got == pytest.approx(kmh)


@pytest.mark.parametrize(
    ("tag", "minutes"),
    [("00:30", 30.0), ("1:15", 75.0), ("01:00:30", 60.5), ("45", 45.0), ("PT1H30M", 90.0),
     ("PT20M", 20.0), ("soon", None), (None, None), ("", None)],
)
def test_parse_duration(tag: str | None, minutes: float | None) -> None:
    got = parse_duration_min(tag)
    if minutes is None:
        assert got is None
    else:
        assert got == pytest.approx(minutes)


@pytest.fixture()
def small(tests_data: Path, tmp_path: Path) -> RoadNetwork:
    return load_network(tests_data / FIXTURE, cache_dir=tmp_path)


def _arc(net: RoadNetwork, a: int, b: int) -> tuple[float, float] | None:
    """(minutes, metres) of the arc between OSM nodes a → b, None when absent."""
    ids = list(net.node_ids)
    if a not in ids or b not in ids:
        return None
    i, j = ids.index(a), ids.index(b)
    row = slice(net.minutes.indptr[i], net.minutes.indptr[i + 1])
    cols = list(net.minutes.indices[row])
    if j not in cols:
        return None
    k = net.minutes.indptr[i] + cols.index(j)
    return float(net.minutes.data[k]), float(net.metres.data[k])


def _seg_m(net: RoadNetwork, a: int, b: int) -> float:
    ids = list(net.node_ids)
    i, j = ids.index(a), ids.index(b)
    return float(haversine_m(net.lon[i], net.lat[i], net.lon[j], net.lat[j]))


def test_car_filter_and_components(small: RoadNetwork) -> None:
    d = small.report.details
    # node 9 only on a private road and a footway; 999 missing; 40-41 a separate island
    assert sorted(small.node_ids.tolist()) == [1, 2, 3, 4, 5, 6, 7, 8, 20, 21, 22, 30, 31]
    assert d["ways_denied_access"] == 1
    assert d["ways_missing_nodes"] == 1 and d["missing_node_refs"] == 1
    assert d["nodes_dropped_scc"] == 2 and d["strong_components"] == 2
    assert small.report.nodes == small.n_nodes == 13
    assert small.crs == "EPSG:2154"


def test_speeds_and_lengths(small: RoadNetwork) -> None:
    # primary with maxspeed 70
    minutes, metres = _arc(small, 1, 2)  # type: ignore[misc]
    assert metres == pytest.approx(_seg_m(small, 1, 2))
    assert minutes == pytest.approx(metres / 1000 / 70 * 60)
    # FR:rural
    minutes, metres = _arc(small, 5, 1)  # type: ignore[misc]
    assert minutes == pytest.approx(metres / 1000 / 80 * 60)
    # "50;70" → 50
    minutes, metres = _arc(small, 4, 8)  # type: ignore[misc]
    assert minutes == pytest.approx(metres / 1000 / 50 * 60)
    # mph
    minutes, metres = _arc(small, 3, 7)  # type: ignore[misc]
    assert minutes == pytest.approx(metres / 1000 / (30 * KMH_PER_MPH) * 60)
    # default speed of the class (unclassified, no maxspeed)
    minutes, metres = _arc(small, 6, 2)  # type: ignore[misc]
    assert minutes == pytest.approx(metres / 1000 / DEFAULT_SPEEDS_KMH["unclassified"] * 60)


def test_parallel_arcs_keep_minimum(small: RoadNetwork) -> None:
    # 2-3: primary at 70 and residential at 20 → the primary's time and its length
    minutes, metres = _arc(small, 2, 3)  # type: ignore[misc]
    assert minutes == pytest.approx(metres / 1000 / 70 * 60)
    # 5→6: residential one-way (30) and living_street "walk" (6) → residential
    minutes, metres = _arc(small, 5, 6)  # type: ignore[misc]
    assert minutes == pytest.approx(metres / 1000 / 30 * 60)
    # 6→5: only the living street
    minutes, metres = _arc(small, 6, 5)  # type: ignore[misc]
    assert minutes == pytest.approx(metres / 1000 / 6 * 60)
    assert small.report.details["parallel_arcs_merged"] >= 2


def test_oneways_and_roundabout(small: RoadNetwork) -> None:
    assert _arc(small, 6, 7) is not None and _arc(small, 7, 6) is None  # oneway=yes
    assert _arc(small, 6, 2) is not None and _arc(small, 2, 6) is None  # oneway=-1
    assert _arc(small, 20, 21) is not None and _arc(small, 21, 20) is None  # roundabout
    assert _arc(small, 22, 20) is not None and _arc(small, 20, 22) is None
    assert _arc(small, 1, 2) is not None and _arc(small, 2, 1) is not None  # two-way


def test_ferry_duration_and_switch(tests_data: Path, tmp_path: Path) -> None:
    net = load_network(tests_data / FIXTURE, cache_dir=tmp_path)
    minutes, _ = _arc(net, 4, 30)  # type: ignore[misc]
    assert minutes == pytest.approx(30.0)
    assert _arc(net, 30, 4) is not None
    no_ferry = load_network(tests_data / FIXTURE, cache_dir=tmp_path,
                            settings=Settings(ferries=False))
    assert 30 not in no_ferry.node_ids and 31 not in no_ferry.node_ids
    assert no_ferry.n_nodes == net.n_nodes - 2



def _ferry_flag(net: RoadNetwork, a: int, b: int) -> bool:
    """Ferry flag of the arc between OSM nodes a → b (which must exist)."""
    ids = list(net.node_ids)
    i, j = ids.index(a), ids.index(b)
    row = slice(net.minutes.indptr[i], net.minutes.indptr[i + 1])
    k = net.minutes.indptr[i] + list(net.minutes.indices[row]).index(j)
    return bool(net.ferry[k])


def test_ferry_arcs_are_flagged_and_cached(tests_data: Path, tmp_path: Path) -> None:
    net = load_network(tests_data / "osm_ferry_lake.osm", cache_dir=tmp_path)
    assert net.ferry.shape == (net.n_arcs,) and net.ferry.dtype == bool
    crossing = [(4, 10), (10, 11), (11, 20)]
    for a, b in crossing:
        assert _ferry_flag(net, a, b) and _ferry_flag(net, b, a)
    # every other arc is a road (5 road ways: 3 + 1 + 3 + 1 segments, both directions)
    assert int(net.ferry.sum()) == 2 * len(crossing)
    assert not _ferry_flag(net, 1, 2) and not _ferry_flag(net, 20, 21)
    assert net.report.details["ferry_arcs"] == 6
    # the 6-minute crossing is spread over its segments in proportion to length
    arcs = [_arc(net, a, b) for a, b in crossing]
    total = sum(arc[0] for arc in arcs if arc is not None)
    assert total == pytest.approx(6.0)
    water = set(net.node_ids[net.ferry_only_nodes].tolist())
    assert water == {10, 11}  # the piers 4 and 20 are on a road
    cached = load_network(tests_data / "osm_ferry_lake.osm", cache_dir=tmp_path)
    assert cached.report.details["cache"] == "hit"
    np.testing.assert_array_equal(cached.ferry, net.ferry)
    # the small fixture's ferry (way 111) is flagged too, nothing else
    small = load_network(tests_data / FIXTURE, cache_dir=tmp_path)
    assert _ferry_flag(small, 4, 30) and not _ferry_flag(small, 30, 31)


def test_ferry_flags_must_match_the_arcs() -> None:
    lon, lat = np.array([2.0, 2.01, 2.02]), np.array([45.0, 45.0, 45.0])
    tail, head = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1])
    net = network_from_arcs(lon, lat, tail, head, np.ones(4),
                            ferry=np.array([False, False, True, True]))
    assert int(net.ferry.sum()) == 2
    assert net.ferry_only_nodes.tolist() == [False, False, True]  # node 2: no road
    plain = network_from_arcs(lon, lat, tail, head, np.ones(4))
    assert not plain.ferry.any() and plain.ferry.shape == (4,)
    with pytest.raises(ValueError, match="one per arc"):
        dataclasses.replace(plain, ferry=np.zeros(3, dtype=bool))


def test_cache_roundtrip(tests_data: Path, tmp_path: Path) -> None:
    first = load_network(tests_data / FIXTURE, cache_dir=tmp_path)
    assert first.report.details["cache"] == "miss"
    files = list((tmp_path / "networks").glob("*.npz"))
    assert len(files) == 1
    second = load_network(tests_data / FIXTURE, cache_dir=tmp_path)
    assert second.report.details["cache"] == "hit"
    np.testing.assert_array_equal(first.node_ids, second.node_ids)
    np.testing.assert_array_equal(first.minutes.toarray(), second.minutes.toarray())
    np.testing.assert_array_equal(first.metres.toarray(), second.metres.toarray())
    assert second.crs == first.crs
    # other parameters → another key
    load_network(tests_data / FIXTURE, cache_dir=tmp_path,
                 settings=dataclasses.replace(Settings(), ferries=False))
    assert len(list((tmp_path / "networks").glob("*.npz"))) == 2
    # no pickle anywhere
    with np.load(files[0], allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_cache_dir_from_environment(tests_data: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZB_CACHE_DIR", str(tmp_path / "env"))
    load_network(tests_data / FIXTURE)
    assert len(list((tmp_path / "env" / "networks").glob("*.npz"))) == 1


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fichier de réseau routier existant"):
        load_network(tmp_path / "absent.osm.pbf")
    bad = tmp_path / "roads.csv"
    bad.write_text("a,b\n")
    with pytest.raises(UnsupportedFormatError, match=r"roads\.csv"):
        load_network(bad)


def test_csr_min_keeps_minimum_and_aligned_values() -> None:
    tail = np.array([0, 0, 0, 1, 1])
    head = np.array([1, 1, 1, 0, 2])
    w = np.array([5.0, 2.0, 7.0, 0.0, 1.0])
    other = np.array([50.0, 20.0, 70.0, 0.0, 10.0])
    m, (o,), merged = csr_min(tail, head, w, 3, other)
    assert merged == 2
    assert m[0, 1] == 2.0 and o[0, 1] == 20.0
    assert m.nnz == 3  # the zero-minute arc 1→0 is an explicit entry
    assert o[1, 2] == 10.0


def test_snap_tree_is_built_once_per_network(small: RoadNetwork) -> None:
    tree = small.snap_tree
    assert tree is small.snap_tree  # cached on the network, shared by its engines
    assert tree.n == small.n_nodes
    dist, node = tree.query([[float(small.x[3]), float(small.y[3])]])
    assert float(dist[0]) == 0.0 and int(node[0]) == 3
    # never written to the network's disk cache: a copy of the fields has no tree
    assert "snap_tree" not in {f.name for f in dataclasses.fields(small)}


def test_haversine_and_crs_choice() -> None:
    one_degree = haversine_m(np.array(0.0), np.array(0.0), np.array(1.0), np.array(0.0))
    assert float(one_degree) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)
    assert metric_crs_for_lonlat(1.52, 42.5) == "EPSG:2154"  # Andorra: inside Lambert-93
    assert metric_crs_for_lonlat(55.5, -21.1) == "EPSG:2975"  # La Réunion
    assert metric_crs_for_lonlat(13.4, 52.5) == "EPSG:32633"  # Berlin: UTM 33N
    assert metric_crs_for_lonlat(-70.0, -33.0) == "EPSG:32719"
