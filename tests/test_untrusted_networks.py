"""Road networks that cannot be trusted are refused or loudly flagged (issue 17, item 6).

Tiny hand-written fixtures (``tests/data/osm_untrusted_tags.osm``,
``osm_footways_only.osm``, ``graphml_small.graphml``) and variants written in ``tmp_path``:
negative / NaN / infinite GraphML times, implausible ``maxspeed`` and ferry durations, a file
without drivable ways, an extract missing a third of its nodes, a network that misses the
communes (another territory).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coverage.cli import main
from coverage.errors import NetworkCoverageError, NetworkError
from coverage.routing import make_engine
from coverage.routing.network import (
    FERRY_DEFAULT_SPEED_KMH,
    MAXSPEED_MAX_KMH,
    RoadNetwork,
    load_network,
    network_from_arcs,
    network_summary,
    parse_duration_min,
    parse_maxspeed,
)
from coverage.routing.road import (
    MAX_OFF_NETWORK_SHARE,
    RoadEngine,
    check_network_coverage,
    require_snap_coverage,
)
from coverage.settings import DEFAULT_SPEEDS_KMH, Settings

UNTRUSTED = "osm_untrusted_tags.osm"
GRAPHML = "graphml_small.graphml"


def _arc(net: RoadNetwork, a: int, b: int) -> tuple[float, float]:
    """(minutes, metres) of the arc a → b (OSM node ids)."""
    ids = net.node_ids.tolist()
    i, j = ids.index(a), ids.index(b)
    row = slice(net.minutes.indptr[i], net.minutes.indptr[i + 1])
    k = net.minutes.indptr[i] + net.minutes.indices[row].tolist().index(j)
    return float(net.minutes.data[k]), float(net.metres.data[k])


def _kmh(net: RoadNetwork, a: int, b: int) -> float:
    minutes, metres = _arc(net, a, b)
    return metres / 1000 / (minutes / 60)


# --- maxspeed --------------------------------------------------------------------------

@pytest.mark.parametrize(("tag", "kmh"), [
    ("5000", None), ("151", None), ("5000 mph", None), ("0", None), ("-20", None),
    ("150", 150.0), ("50;5000", 50.0), ("5000;FR:urban", 50.0), ("94 mph", None),
    ("93 mph", 93 * 1.609344),
])
def test_maxspeed_outside_the_plausible_range_is_not_used(tag: str, kmh: float | None
                                                          ) -> None:
    got = parse_maxspeed(tag)
    assert got == (pytest.approx(kmh) if kmh is not None else None)


def test_implausible_maxspeed_falls_back_to_the_class_default(tests_data: Path,
                                                               caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    with caplog.at_level(logging.WARNING, logger="coverage.routing.network"):
        net = load_network(tests_data / UNTRUSTED, use_cache=False)
    # primary maxspeed=5000, secondary maxspeed=0, unclassified "5000 mph": class defaults
    assert _kmh(net, 1, 2) == pytest.approx(DEFAULT_SPEEDS_KMH["primary"])
    assert _kmh(net, 2, 3) == pytest.approx(DEFAULT_SPEEDS_KMH["secondary"])
    assert _kmh(net, 6, 1) == pytest.approx(DEFAULT_SPEEDS_KMH["unclassified"])
    assert _kmh(net, 3, 4) == pytest.approx(70.0)  # a plausible tag is used
    d = net.report.details
    assert d["maxspeed_implausible"] == 3 and d["maxspeed_used"] == 1
    assert set(d["maxspeed_implausible_values"]) == {"5000", "0", "5000 mph"}
    assert net.minutes.data.max() < 60  # no arc takes an hour, no arc is free
    warned = [r.getMessage() for r in caplog.records if "invraisemblable" in r.getMessage()]
    assert any("3 voie(s)" in w and "5000" in w for w in warned)


# --- ferries ---------------------------------------------------------------------------

@pytest.mark.parametrize(("tag", "minutes"), [("-00:30", -30.0), ("-1:15", -75.0),
                                              ("-30", -30.0), ("00:30", 30.0)])
def test_negative_durations_keep_their_sign(tag: str, minutes: float) -> None:
    assert parse_duration_min(tag) == pytest.approx(minutes)


def test_negative_or_absurd_ferry_duration_is_ignored(tests_data: Path,
                                                      caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    with caplog.at_level(logging.WARNING, logger="coverage.routing.network"):
        net = load_network(tests_data / UNTRUSTED, use_cache=False)
    # way 204 duration=-00:30 and way 205 duration=00:00:01 (≈ 2900 km/h): default speed
    for a, b in ((4, 5), (5, 4), (5, 6), (6, 5)):
        minutes, metres = _arc(net, a, b)
        assert minutes > 0
        assert minutes == pytest.approx(metres / 1000 / FERRY_DEFAULT_SPEED_KMH * 60)
    # way 208 duration=00:10 is plausible and kept
    assert _arc(net, 7, 9)[0] == pytest.approx(10.0)
    d = net.report.details
    assert d["ferry_durations_ignored"] == 2
    assert d["ferry_durations_ignored_ways"] == ["way 204 duration=-00:30",
                                                 "way 205 duration=00:00:01"]
    assert any("2 bac(s)" in r.getMessage() and "way 204" in r.getMessage()
               for r in caplog.records)


# --- GraphML times: refused before any routing ------------------------------------------

def _graphml_variant(tests_data: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = (tests_data / GRAPHML).read_text(encoding="utf-8")
    assert old in text
    out = tmp_path / "variant.graphml"
    out.write_text(text.replace(old, new), encoding="utf-8")
    return out


@pytest.fixture()
def no_dijkstra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any shortest-path search fail: the error must come before one."""
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a shortest-path search ran on an untrusted network")

    monkeypatch.setattr("coverage.routing.kernel._delta_search_jit", forbidden)
    monkeypatch.setattr("coverage.routing.matrix.dijkstra", forbidden)


@pytest.mark.parametrize("bad", ["-30", "nan", "inf", "-inf"])
def test_graphml_bad_travel_time_is_refused_before_routing(tests_data: Path, tmp_path: Path,
                                                           bad: str, no_dijkstra: None
                                                           ) -> None:
    """A negative time made ``run`` hang forever; NaN was accepted: both are refused."""
    roads = _graphml_variant(tests_data, tmp_path, '<data key="d9">36.2</data>',
                             f'<data key="d9">{bad}</data>')
    with pytest.raises(NetworkError) as exc:
        make_engine("road", roads, Settings(), cache_dir=tmp_path / "cache")
    msg = str(exc.value)
    assert str(roads) in msg and "travel_time" in msg
    assert "101 → 102" in msg and "osmid 401" in msg  # the edge is named
    assert "réseau routier refusé" in msg


def test_graphml_good_times_are_taken_as_they_are(tests_data: Path) -> None:
    net = load_network(tests_data / GRAPHML, use_cache=False)
    assert _arc(net, 101, 102)[0] == pytest.approx(36.2 / 60)
    assert network_summary(net).travel_time_used == 8


def test_graphml_bad_node_coordinates_are_refused(tests_data: Path, tmp_path: Path) -> None:
    roads = _graphml_variant(tests_data, tmp_path, '<data key="d2">43.61</data>',
                             '<data key="d2">95.0</data>')
    with pytest.raises(NetworkError, match="103"):
        load_network(roads, use_cache=False)


def test_unreadable_graphml_is_one_sentence(tmp_path: Path) -> None:
    roads = tmp_path / "broken.graphml"
    roads.write_text("<graphml><graph>", encoding="utf-8")
    with pytest.raises(NetworkError, match="GraphML illisible"):
        load_network(roads, use_cache=False)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_arcs_with_bad_times_are_refused_whatever_the_source(bad: float) -> None:
    lon, lat = np.array([1.40, 1.41, 1.42]), np.array([43.6, 43.6, 43.6])
    tail, head = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1])
    minutes = np.array([1.0, 1.0, bad, 1.0])
    for largest in (True, False):
        with pytest.raises(NetworkError, match="arc 1 → 2"):
            network_from_arcs(lon, lat, tail, head, minutes, largest_component=largest)


# --- files that are not a car network ----------------------------------------------------

def test_footways_only_osm_is_refused(tests_data: Path) -> None:
    with pytest.raises(NetworkError) as exc:
        load_network(tests_data / "osm_footways_only.osm", use_cache=False)
    msg = str(exc.value)
    assert "aucune voie carrossable" in msg and "4 voie(s) d'autres classes" in msg
    assert "footway 1" in msg and "osm_footways_only.osm" in msg


def test_footways_only_graphml_is_refused(tests_data: Path, tmp_path: Path) -> None:
    text = (tests_data / GRAPHML).read_text(encoding="utf-8")
    text = re.sub(r'<data key="d5">\w+</data>', '<data key="d5">footway</data>', text)
    roads = tmp_path / "footways.graphml"
    roads.write_text(text, encoding="utf-8")
    with pytest.raises(NetworkError, match=r"aucune voie carrossable.*8 voie"):
        load_network(roads, use_cache=False)


def test_extract_missing_a_third_of_its_nodes_is_flagged(tests_data: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    text = (tests_data / UNTRUSTED).read_text(encoding="utf-8")
    for node in (2, 5, 8):  # 3 of the 9 nodes
        text = re.sub(rf'\s*<node id="{node}" [^>]*/>', "", text)
    roads = tmp_path / "cut.osm"
    roads.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="coverage.routing.network"):
        net = load_network(roads, use_cache=False)
    summary = network_summary(net)
    assert summary.cut == 5 and summary.cut_share > 0.5
    assert any("coupées" in w for w in summary.warnings())
    assert any("nœuds absents" in r.getMessage() for r in caplog.records)


# --- validate --roads says what it found --------------------------------------------------

def test_network_summary_in_french(tests_data: Path) -> None:
    net = load_network(tests_data / UNTRUSTED, use_cache=False)
    s = network_summary(net)
    assert (s.nodes, s.arcs, s.ways_read, s.ways_kept) == (9, 22, 8, 8)
    assert (s.ferry_ways, s.ferry_arcs, s.ferry_ignored) == (3, 6, 2)
    assert s.maxspeed_share == pytest.approx(1 / 8)
    assert s.bbox == pytest.approx((1.40, 43.60, 1.42, 43.62))
    text = "\n".join(s.lines())
    for words in ("9 nœuds, 22 arcs", "12,5 % des voies gardées", "3 invraisemblable",
                  "bacs : 3 voie(s) (6 arcs)", "longitudes 1,400 à 1,420",
                  "ATTENTION : 2 durée(s) de bac", f"> {MAXSPEED_MAX_KMH:g} km/h"):
        assert words in text, words


def test_cli_validate_roads_reports_what_it_found(tests_data: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "--roads", str(tests_data / UNTRUSTED)])
    out = capsys.readouterr().out
    assert code == 0
    for words in ("réseau voiture : 9 nœuds", "voies lues : 8", "maxspeed utilisé",
                  "bacs :", "coupées au bord de l'extrait", "emprise (EPSG:4326)"):
        assert words in out, words


# --- the communes must be on the network ----------------------------------------------------

def test_cli_validate_checks_the_communes_against_the_roads(
        tests_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from coverage.demo import demo_paths

    code = main(["validate", "--communes", str(demo_paths().communes), "--roads",
                 str(tests_data / UNTRUSTED)])
    out = capsys.readouterr().out
    assert code != 0
    assert "0 communes sur 230 (0,0 %)" in out and "ne dessert que 0 communes" in out


def _far_communes() -> pd.DataFrame:
    """Four communes 600 km from the Toulouse fixtures, one on it."""
    return pd.DataFrame({"code_insee": ["A", "B", "C", "D", "E"],
                         "lon": [5.0, 5.1, 5.2, 5.3, 1.41], "lat": [48.0, 48.1, 48.2, 48.3,
                                                                    43.605]})


def test_snap_coverage_and_refusal(tests_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    roads = tests_data / UNTRUSTED
    engine = RoadEngine(load_network(roads, use_cache=False), Settings())
    cov = engine.snap_coverage(_far_communes())
    assert (cov.communes, cov.snapped) == (5, 1) and cov.share == pytest.approx(0.2)
    assert cov.boxes_overlap  # one commune is on the network
    assert "1 communes sur 5 (20,0 %)" in cov.line()
    with pytest.raises(NetworkCoverageError) as exc:
        require_snap_coverage(cov)
    msg = str(exc.value)
    assert str(roads) in msg and "20,0 %" in msg and "--force-reseau" in msg
    assert "emprise du réseau : longitudes 1,40 à 1,42" in msg
    assert "incomplet" in msg
    far = engine.snap_coverage(_far_communes().iloc[:4])
    assert far.share == 0 and not far.boxes_overlap
    assert "emprises ne se recouvrent pas" in far.refusal()
    with caplog.at_level(logging.WARNING, logger="coverage.routing.road"):
        require_snap_coverage(cov, force=True)  # forced: a warning, no error
    assert any("--force-reseau" in r.getMessage() for r in caplog.records)


def test_half_of_the_communes_on_the_network_is_accepted(tests_data: Path) -> None:
    engine = RoadEngine(load_network(tests_data / UNTRUSTED, use_cache=False), Settings())
    communes = _far_communes().iloc[2:]  # 2 off, 1 on: a third on the network
    with pytest.raises(NetworkCoverageError):
        check_network_coverage(engine, communes)
    on = pd.DataFrame({"lon": [5.0, 1.41], "lat": [48.0, 43.605]})  # half off: accepted
    assert pytest.approx(0.5) == 1 - MAX_OFF_NETWORK_SHARE
    cov = check_network_coverage(engine, on)
    assert cov is not None and cov.share == pytest.approx(0.5)
    assert check_network_coverage(object(), on) is None  # other engines are not checked


def test_run_refuses_a_network_of_another_territory(tests_data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The demo territory with a road file near Toulouse: refused, no table written."""
    out = tmp_path / "run"
    code = main(["run", "--roads", str(tests_data / UNTRUSTED), "--out", str(out),
                 "--no-isochrones", "--workers", "1"])
    err = capsys.readouterr().err
    assert code != 0
    assert "ne dessert que 0 communes sur 230 (0,0 %" in err
    assert "osm_untrusted_tags.osm" in err and "--force-reseau" in err
    assert not list(out.rglob("*.parquet")) and not (out / "manifest.json").exists()


@pytest.mark.slow
def test_forced_run_goes_through_with_the_communes_unreachable(tests_data: Path,
                                                               tmp_path: Path) -> None:
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    inputs = load_inputs(roads=tests_data / UNTRUSTED)
    options = RunOptions(isochrones=False, workers=1, force_network=True)
    result = run_batch(inputs, out_dir=tmp_path / "run", options=options)
    access = result.tables["acces_communes"]
    assert len(access) and access["minutes"].isna().all()
    assert access["service_id"].isna().all()
