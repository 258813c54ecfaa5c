"""New sites by maximal covering (greedy and exact), checked against independent computations.

* On the FICTIONAL demo territory with the road engine, every candidate is evaluated by
  brute force with ``engine.nearest`` (one multi-source Dijkstra over the existing services
  plus that candidate): an independent code path from the bounded per-candidate matrix used
  by :mod:`coverage.siting`. k = 1 must find the brute-force optimum; k = 2 is rechecked the
  same way with both picks added.
* The proxy engine on a tiny hand-made line of communes whose result is computed by hand.
* Random covering instances (hypothesis) against exhaustive enumeration.
* NaN / unreachable communes are never counted as covered.
* The default base is the département's families; ``neighbours`` counts the others apart.

The exact optimum against brute force and spopt, the p-median and the candidate filters are
in ``test_siting_exact.py``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from coverage.errors import CoverageError, InputError, MissingColumnError
from coverage.routing.proxy import ProxyEngine
from coverage.settings import Settings
from coverage.siting import (
    COVERED_COLUMNS,
    SITES_COLUMNS,
    MaximalCovering,
    SitingOptions,
    best_new_sites,
    plan_new_sites,
)

ER, MF = "espace_rencontre", "mediation_familiale"


# --- the FICTIONAL demo, road engine ------------------------------------------------------

@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    """Demo inputs (FICTIONAL territory « Brumeval »), its road engine, and access rows."""
    from coverage.demo import demo_paths
    from coverage.io.inputs import load_inputs
    from coverage.routing import make_engine
    from coverage.routing.road import RoadEngine

    paths = demo_paths()
    inputs = load_inputs()
    assert inputs.fictif
    assert inputs.roads is not None and inputs.roads.resolve() == paths.roads.resolve()
    engine = make_engine("road", inputs.roads)
    assert isinstance(engine, RoadEngine)
    nearest = engine.nearest(inputs.communes, inputs.services, service_types=(MF, ER))
    return {"communes": inputs.communes, "services": inputs.services, "engine": engine,
            "access": nearest}


def _minutes_with(engine: Any, communes: pd.DataFrame, services: pd.DataFrame,
                  extra: pd.DataFrame, stype: str) -> np.ndarray:
    """Minutes to the nearest of the existing services of ``stype`` plus ``extra`` points."""
    base = services[services["type_service"] == stype][["service_id", "type_service", "lon",
                                                        "lat"]]
    add = pd.DataFrame({"service_id": [f"new{i}" for i in range(len(extra))],
                        "type_service": stype, "lon": extra["lon"].to_numpy(),
                        "lat": extra["lat"].to_numpy()})
    both = pd.concat([base, add], ignore_index=True)
    near = engine.nearest(communes, both, service_types=(stype,))
    return near["minutes"].to_numpy(dtype=np.float64)


def _brute_gain(before: np.ndarray, after: np.ndarray, pop: np.ndarray, t: float,
                base: np.ndarray | None = None) -> tuple[int, int]:
    new = (after <= t) & ~(before <= t)
    if base is not None:  # the communes counted (the département's by default)
        new &= base
    return int(pop[new].sum()), int(new.sum())


@pytest.mark.parametrize(("stype", "threshold"), [(ER, 20.0), (MF, 30.0)])
def test_k1_equals_brute_force_on_demo(demo: dict[str, Any], stype: str,
                                       threshold: float) -> None:
    communes, services, engine = demo["communes"], demo["services"], demo["engine"]
    pop = communes["population"].to_numpy(dtype=np.int64)
    za = (communes["code_dep"] == "ZA").to_numpy()
    before = _minutes_with(engine, communes, services, communes.iloc[:0], stype)
    cands = communes[communes["code_dep"] == "ZA"]
    brute: dict[str, tuple[int, int]] = {}
    for i in range(len(cands)):
        after = _minutes_with(engine, communes, services, cands.iloc[[i]], stype)
        brute[str(cands["code_insee"].iloc[i])] = _brute_gain(before, after, pop, threshold,
                                                              za)
    best_pop = max(g for g, _ in brute.values())
    assert best_pop > 0  # the demo has white zones at this threshold

    table = best_new_sites(communes, demo["access"], services, engine, type_service=stype,
                           threshold_min=threshold, k=1, depts=["ZA"])
    assert list(table.columns) == list(SITES_COLUMNS)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["code_dep"] == "ZA"
    assert int(row["population_nouvellement_couverte"]) == best_pop
    assert brute[str(row["code_insee"])] == (int(row["population_nouvellement_couverte"]),
                                             int(row["communes_nouvellement_couvertes"]))
    assert row["moteur"] == "road" and row["type_service"] == stype
    assert bool(row["fictif"]) is True  # FICTIONAL demo territory, labelled in the output
    # Remaining white-zone population of ZA, recomputed from the brute-force minutes.
    after = _minutes_with(engine, communes, services,
                          communes[communes["code_insee"] == row["code_insee"]], stype)
    assert int(row["population_zone_blanche_restante"]) == int(pop[za & ~(after <= threshold)]
                                                               .sum())
    assert int(row["population_couverte_cumulee"]) == int(pop[za & (after <= threshold)].sum())


def test_greedy_k2_on_demo_no_double_count(demo: dict[str, Any]) -> None:
    communes, services, engine = demo["communes"], demo["services"], demo["engine"]
    stype, threshold = ER, 20.0
    pop = communes["population"].to_numpy(dtype=np.int64)
    greedy = SitingOptions(method="gloutonne")
    one = plan_new_sites(communes, demo["access"], services, engine, type_service=stype,
                         threshold_min=threshold, k=1, options=greedy)
    two = plan_new_sites(communes, demo["access"], services, engine, type_service=stype,
                         threshold_min=threshold, k=2, options=greedy)
    exact = plan_new_sites(communes, demo["access"], services, engine, type_service=stype,
                           threshold_min=threshold, k=2)
    assert exact.parameters["optimum_population"] >= int(
        two.table["population_nouvellement_couverte"].sum())
    assert exact.parameters["glouton_population"] == int(
        two.table["population_nouvellement_couverte"].sum())
    assert len(two.table) == 2
    t1, t2 = one.table, two.table
    assert t2.iloc[0]["site_id"] == t1.iloc[0]["site_id"]
    assert t2["population_nouvellement_couverte"].sum() >= t1[
        "population_nouvellement_couverte"].sum()
    assert t2.iloc[1]["population_nouvellement_couverte"] <= t2.iloc[0][
        "population_nouvellement_couverte"]
    # No double counting: the two gains add up to the population newly covered when both
    # sites are added to the services (independent multi-source Dijkstra).
    before = _minutes_with(engine, communes, services, communes.iloc[:0], stype)
    picked = communes.set_index("code_insee").loc[t2["code_insee"]].reset_index()
    after = _minutes_with(engine, communes, services, picked, stype)
    gain, count = _brute_gain(before, after, pop, threshold)
    assert gain == int(t2["population_nouvellement_couverte"].sum())
    assert count == int(t2["communes_nouvellement_couvertes"].sum())
    cov = two.covered
    assert list(cov.columns) == list(COVERED_COLUMNS)
    assert cov["code_insee"].is_unique
    assert len(cov) == count
    assert (cov["minutes"] <= threshold).all()
    already = set(communes["code_insee"][before <= threshold])
    assert not already & set(cov["code_insee"])


def test_off_network_commune_is_never_covered(demo: dict[str, Any]) -> None:
    communes = demo["communes"].copy()
    services, engine = demo["services"], demo["engine"]
    # Move one commune's representative point 50 km out to sea: off the road network.
    idx = int(np.flatnonzero(communes["code_dep"].to_numpy() == "ZA")[0])
    code = str(communes["code_insee"].iloc[idx])
    communes.loc[communes.index[idx], "lat"] = float(communes["lat"].max()) + 0.5
    near = engine.nearest(communes, services, service_types=(ER,))
    assert np.isnan(near.loc[near["code_insee"] == code, "minutes"]).all()
    res = plan_new_sites(communes, near, services, engine, type_service=ER,
                         threshold_min=45.0, k=5, depts=["ZA"])
    assert code not in set(res.covered["code_insee"])
    assert code not in set(res.table["site_id"])
    # it stays in the white-zone population, whatever the number of sites
    pop = int(communes["population"].iloc[idx])
    assert pop > 0
    assert int(res.table["population_zone_blanche_restante"].iloc[-1]) >= pop


# --- proxy engine on a hand-made line of communes ------------------------------------------

#: Proxy parameters of the hand-made line: no access time, one speed (65 km/h).
_LINE_SETTINGS = Settings(proxy_access_min_by_density={1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0},
                          proxy_speed_near_kmh=65.0, proxy_speed_far_kmh=65.0)


def _line(deps: list[str] | None = None) -> gpd.GeoDataFrame:
    """Six communes on an east-west line in Lambert-93 (Cantal-like), density level 4.

    Proxy with :data:`_LINE_SETTINGS` (no access time, 65 km/h throughout): minutes =
    straight_m × 1.3 / 1000 / 65 × 60 = 0.0012 × metres, so 30 min ↔ 25 km in a straight
    line.
    """
    x_km = [0.0, 20.0, 40.0, 60.0, 90.0, 100.0]
    pops = [100, 50, 300, 200, 500, 10]
    tr = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.array(x_km) * 1000 + 650_000, np.full(6, 6_430_000.0))
    deps = deps or ["15"] * 6
    return gpd.GeoDataFrame({
        "code_insee": [f"{d}00{i + 1}" for i, d in enumerate(deps)],
        "nom": list("ABCDEF"), "code_dep": deps, "population": pops, "densite": 4,
        "lon": lon, "lat": lat,
    }, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def _service_at(communes: pd.DataFrame, i: int, stype: str = ER) -> pd.DataFrame:
    return pd.DataFrame({"service_id": ["s1"], "type_service": [stype],
                         "lon": [communes["lon"].iloc[i]], "lat": [communes["lat"].iloc[i]],
                         "code_dep": [communes["code_dep"].iloc[i]]})


def test_proxy_hand_computed() -> None:
    communes = _line()
    services = _service_at(communes, 0)  # at A: A (0 min) and B (24 min) covered at 30 min
    # New coverage per candidate (25 km radius): A 0, B {C} 300, C {C,D} 500, D {C,D} 500,
    # E {E,F} 510, F {E,F} 510 → E (tie with F, same communes, E first by code).
    # Then C and D tie at 500 with 2 communes each → C.
    table = best_new_sites(communes, None, services, ProxyEngine(_LINE_SETTINGS), type_service=ER,
                           threshold_min=30.0, k=3)
    assert table["code_insee"].tolist() == ["15005", "15003"]  # third: nothing left
    assert table["population_nouvellement_couverte"].tolist() == [510, 500]
    assert table["communes_nouvellement_couvertes"].tolist() == [2, 2]
    assert table["population_zone_blanche_restante"].tolist() == [500, 0]
    assert table["population_couverte_cumulee"].tolist() == [660, 1160]
    assert table["rang"].tolist() == [1, 2]
    assert (table["moteur"] == "proxy").all()
    assert not table["fictif"].any()


def test_proxy_candidates_limited_to_dept_base_and_neighbours() -> None:
    communes = _line(["15"] * 5 + ["43"])  # F in the neighbouring département
    services = _service_at(communes, 0)
    # Base 15 only (default): C {C,D} 500, D {C,D} 500, E {E} 500 → C (two communes),
    # then E; F is not counted.
    res = plan_new_sites(communes, None, services, ProxyEngine(_LINE_SETTINGS), type_service=ER,
                         threshold_min=30.0, k=2, depts=["15"])
    t = res.table
    assert set(t["code_dep"]) == {"15"}
    assert t["code_insee"].tolist() == ["15003", "15005"]
    assert t["population_nouvellement_couverte"].tolist() == [500, 500]
    assert t["population_nouvellement_couverte_hors_departement"].isna().all()
    assert t["population_zone_blanche_restante"].tolist() == [500, 0]
    assert "43006" not in set(res.covered["code_insee"])
    assert (t["base_comptage"] == "département 15").all()
    # With the neighbours: E covers E and F (510) and goes first; F's 10 inhabitants are in
    # the separate column, the other columns stay on département 15.
    res = plan_new_sites(communes, None, services, ProxyEngine(_LINE_SETTINGS), type_service=ER,
                         threshold_min=30.0, k=2, depts=["15"],
                         options=SitingOptions(neighbours=True))
    t = res.table
    assert t["code_insee"].tolist() == ["15005", "15003"]
    assert t["population_nouvellement_couverte"].tolist() == [500, 500]
    assert t["population_nouvellement_couverte_hors_departement"].tolist() == [10, 0]
    assert t["population_zone_blanche_restante"].tolist() == [500, 0]
    assert res.parameters["optimum_population"] == 1010
    assert res.covered.set_index("code_insee").loc["43006", "rang"] == 1
    assert res.covered.set_index("code_insee").loc["43006", "minutes"] == pytest.approx(12.0,
                                                                                        abs=1e-3)


def test_given_candidates_and_nan_access() -> None:
    communes = _line()
    # Hand-made access: D unreachable (NaN), F absent → both white; C beyond the threshold.
    access = pd.DataFrame({"code_insee": ["15001", "15002", "15003", "15004", "15005"],
                           "type_service": ER,
                           "minutes": [0.0, 24.0, 48.0, np.nan, 108.0], "moteur": "proxy"})
    candidates = pd.DataFrame({"site_id": ["P1", "P2"], "nom": ["x", "y"],
                               "lon": [communes["lon"].iloc[3], communes["lon"].iloc[5]],
                               "lat": [communes["lat"].iloc[3], communes["lat"].iloc[5]],
                               "code_dep": ["15", "15"]})
    res = plan_new_sites(communes, access, None, ProxyEngine(_LINE_SETTINGS), type_service=ER,
                         threshold_min=30.0, candidates=candidates, k=2)
    assert res.table["site_id"].tolist() == ["P2", "P1"]  # {E, F} 510, then {C, D} 500
    assert res.table["population_nouvellement_couverte"].tolist() == [510, 500]
    assert res.table["code_insee"].isna().all()
    # A and B stay covered by the existing service, never credited to a new site
    assert set(res.covered["code_insee"]) == {"15003", "15004", "15005", "15006"}


def test_nan_minutes_in_cost_never_cover() -> None:
    cost = pd.DataFrame({"site_id": ["a", "a", "b"], "code_insee": ["1", "2", "2"],
                         "minutes": [np.nan, 10.0, np.nan]})
    m = MaximalCovering.from_cost_matrix(cost, candidate_ids=["a", "b"],
                                         demand_ids=["1", "2"], weights=[1000, 1],
                                         threshold_min=30.0).solve(2)
    assert m.picks == [0] and m.gains == [1]
    assert m.assignment.tolist() == [-1, 0]


# --- random instances against exhaustive enumeration --------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.data())
def test_greedy_against_enumeration(n_cand: int, n_dem: int, data: st.DataObject) -> None:
    cover = np.array(data.draw(st.lists(st.lists(st.booleans(), min_size=n_dem,
                                                 max_size=n_dem),
                                        min_size=n_cand, max_size=n_cand)), dtype=bool)
    weights = np.array(data.draw(st.lists(st.integers(0, 100), min_size=n_dem,
                                          max_size=n_dem)), dtype=np.int64)
    already = np.array(data.draw(st.lists(st.booleans(), min_size=n_dem, max_size=n_dem)))
    r, c = np.nonzero(cover)
    cost = pd.DataFrame({"site_id": [f"c{i}" for i in r], "code_insee": [f"d{j}" for j in c],
                         "minutes": 5.0})
    cands = [f"c{i}" for i in range(n_cand)]
    dems = [f"d{j}" for j in range(n_dem)]

    def value(rows: tuple[int, ...]) -> int:
        hit = cover[list(rows)].any(axis=0) & ~already if rows else np.zeros(n_dem, bool)
        return int(weights[hit].sum())

    for k in (1, 2):
        m = MaximalCovering.from_cost_matrix(cost, candidate_ids=cands, demand_ids=dems,
                                             weights=weights, threshold_min=10.0,
                                             covered=already).solve(k)
        best = max(value(s) for s in itertools.combinations(range(n_cand), min(k, n_cand)))
        assert sum(m.gains) == value(tuple(m.picks))  # no double counting
        assert len(set(m.picks)) == len(m.picks)
        if k == 1:
            assert sum(m.gains) == best  # exact
        else:
            assert (1 - 1 / np.e) * best <= sum(m.gains) <= best
        assigned = m.assignment >= 0
        assert not (assigned & already).any()
        assert int(weights[assigned].sum()) == sum(m.gains)


# --- errors -------------------------------------------------------------------------------

def test_errors() -> None:
    communes = _line()
    services = _service_at(communes, 0)
    eng = ProxyEngine()
    kw: dict[str, Any] = {"type_service": ER, "threshold_min": 30.0}
    with pytest.raises(CoverageError, match="vue combinée"):
        best_new_sites(communes, None, services, eng, type_service="aucun_service",
                       threshold_min=30.0)
    with pytest.raises(CoverageError, match="k"):
        best_new_sites(communes, None, services, eng, k=0, **kw)
    with pytest.raises(CoverageError, match="seuil"):
        best_new_sites(communes, None, services, eng, type_service=ER, threshold_min=float("nan"))
    road_access = pd.DataFrame({"code_insee": communes["code_insee"], "type_service": ER,
                                "minutes": 1.0, "moteur": "road"})
    with pytest.raises(CoverageError, match="viennent du moteur road"):
        best_new_sites(communes, road_access, services, eng, **kw)
    with pytest.raises(MissingColumnError, match="code_dep"):
        best_new_sites(communes, None, services, eng, depts=["15"],
                       candidates=pd.DataFrame({"lon": [2.5], "lat": [45.0]}), **kw)
    bad = communes.copy()
    bad["population"] = bad["population"].astype(object)
    bad.loc[bad.index[2], "population"] = "beaucoup"
    with pytest.raises(InputError) as exc:
        best_new_sites(bad, None, services, eng, **kw)
    text = str(exc.value)
    assert "population" in text and "3" in text and "beaucoup" in text


# --- the page « Nouveau site » (AppTest, on a demo run without isochrones) -----------------

@pytest.fixture(scope="module")
def demo_run(demo_road_run: Path) -> Any:
    from coverage.results import RunOutputs

    return RunOutputs.load(demo_road_run)


def test_page_nouveau_site(demo_run: Any) -> None:
    from streamlit.testing.v1 import AppTest

    from coverage import maps
    from coverage.app import state
    from coverage.settings import REPO_ROOT

    dept, threshold = "ZA", 20.0
    sel = state.Selection(run_dir=str(demo_run.run_dir), stamp=state.manifest_stamp(
        demo_run.run_dir), dept=dept, type_service=ER, threshold_min=threshold)
    at = AppTest.from_file(str(REPO_ROOT / "coverage" / "app" / "nouveau_site.py"),
                           default_timeout=120)
    at.session_state[state.SELECTION_KEY] = sel
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("FICTIF" in w.value for w in at.warning)
    assert any("road" in c.value for c in at.caption)  # the engine is named
    # initial white-zone population = the run's own coverage table
    cov = demo_run.tables["couverture_departements"]
    row = cov[(cov["code_dep"] == dept) & (cov["type_service"] == ER)
              & np.isclose(cov["seuil_minutes"], threshold)].iloc[0]
    from coverage.app.views import fmt_int

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Population en zone blanche (département)"] == fmt_int(
        row["population_zone_blanche"])
    table = at.dataframe[0].value
    assert len(table) == 1 and (table["moteur"] == "road").all()
    page = at.get("iframe")[0].proto.srcdoc
    assert page.count('"className": "nouveau-site"') == 1 and "nouvellement-couverte" in page
    assert "FICTIF" in page and not maps.external_references(page)
    at.slider(key="site_k").set_value(3).run()
    assert not at.exception
    table3 = at.dataframe[0].value
    assert 1 <= len(table3) <= 3
    assert table3["rang"].tolist() == list(range(1, len(table3) + 1))
    # the exact optimum of 3 sites need not contain the best single site; it covers more
    assert table3["population_nouvellement_couverte"].sum() >= table[
        "population_nouvellement_couverte"].sum()
    assert at.get("iframe")[0].proto.srcdoc.count('"className": "nouveau-site"') == len(table3)


def test_cli_sites(demo_run: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from coverage.cli import main
    from coverage.routing import engine_of_run
    from coverage.siting import sites_for_run

    out = tmp_path / "sites" / "za.csv"
    code = main(["sites", "--dept", "ZA", "--type", ER, "--seuil", "20", "-k", "2",
                 "--run", str(demo_run.run_dir), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "TERRITOIRE FICTIF" in text and "moteur road" in text
    assert "Optimum exact" in text and "Base des comptes : familles du département ZA" in text
    written = pd.read_csv(out, dtype={"code_insee": str, "site_id": str})
    engine = engine_of_run(demo_run, dept="ZA").engine
    assert engine.name == "road"
    # same as the library on the run's communes and access table
    expected = best_new_sites(demo_run.communes, demo_run.tables["acces_communes"],
                              demo_run.services, engine, type_service=ER, threshold_min=20.0,
                              k=2, depts=["ZA"])
    pd.testing.assert_frame_equal(written[["rang", "code_insee",
                                           "population_nouvellement_couverte"]],
                                  expected[["rang", "code_insee",
                                            "population_nouvellement_couverte"]],
                                  check_dtype=False)
    assert written["fictif"].all() and (written["moteur"] == "road").all()
    assert written["population_nouvellement_couverte_hors_departement"].isna().all()
    assert sites_for_run(demo_run, "ZA", type_service=ER, threshold_min=20.0,
                         k=2).table["code_insee"].tolist() == written["code_insee"].tolist()
    # --dept-only is the default, kept as an explicit choice: same table
    only = tmp_path / "only.csv"
    assert main(["sites", "--dept", "ZA", "--type", ER, "--seuil", "20", "-k", "2",
                 "--run", str(demo_run.run_dir), "--out", str(only), "--dept-only"]) == 0
    capsys.readouterr()
    za = demo_run.communes[demo_run.communes["code_dep"] == "ZA"]
    got = pd.read_csv(only, dtype={"code_insee": str})
    exp = best_new_sites(za, demo_run.tables["acces_communes"], None, engine,
                         type_service=ER, threshold_min=20.0, k=2)
    assert got["code_insee"].tolist() == exp["code_insee"].tolist()
    assert got["population_nouvellement_couverte"].tolist() == exp[
        "population_nouvellement_couverte"].tolist()
    # --avec-voisins: the neighbours' families in their own column
    both = tmp_path / "both.csv"
    assert main(["sites", "--dept", "ZA", "--type", ER, "--seuil", "20", "-k", "2",
                 "--run", str(demo_run.run_dir), "--out", str(both), "--avec-voisins"]) == 0
    assert "Pop. des voisins (à part)" in capsys.readouterr().out
    assert pd.read_csv(both)["population_nouvellement_couverte_hors_departement"].notna().all()
    # errors: exit 2, one French line, no traceback, nothing written
    bad = tmp_path / "bad.csv"
    for argv in (["--dept", "ZQ", "--type", ER], ["--dept", "ZA", "--type", "inconnu"],
                 ["--dept", "ZA", "--type", ER, "-k", "0"],
                 ["--dept", "ZA", "--type", ER, "--avec-voisins", "--dept-only"]):
        assert main(["sites", *argv, "--run", str(demo_run.run_dir), "--out", str(bad)]) == 2
        err = capsys.readouterr().err
        assert "zones-blanches sites" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert not bad.exists()


# --- real territory of ../shared/data (Cantal, Aveyron, Lozère), proxy engine -------------

@pytest.mark.shared
def test_massif_central_proxy_k1_brute_force(shared_data: Any) -> None:
    from coverage.io.communes import load_communes
    from coverage.routing.proxy import best_connected_level, trip_minutes
    from coverage.settings import Settings

    communes = load_communes(shared_data / "territoires" / "massif_central_15_12_48.gpkg").data
    # the partial real services list (not the official offer), at their communes' interior
    # points; most lie outside the three départements
    pts = pd.read_csv(shared_data / "communes" / "points_interieurs_cog2026.csv", dtype=str)
    svc = pd.read_csv(shared_data / "services" / "services_sites_publics_partiels.csv",
                      dtype=str).merge(pts[["code_insee", "lon", "lat"]], on="code_insee")
    svc["service_id"] = [f"S{i:03d}" for i in range(len(svc))]
    svc["lon"], svc["lat"] = svc["lon"].astype(float), svc["lat"].astype(float)
    svc["code_dep"] = svc["code_insee"].str[:2]
    engine, stype, t = ProxyEngine(), MF, 30.0
    res = plan_new_sites(communes, None, svc, engine, type_service=stype, threshold_min=t,
                         k=3, depts=["15"])  # base: the families of Cantal
    assert len(res.table) >= 1 and set(res.table["code_dep"]) == {"15"}
    assert (res.table["moteur"] == "proxy").all() and not res.table["fictif"].any()
    # brute force with the proxy model: Lambert-93 distances, trip minutes between the
    # commune's and the site's density levels
    s = Settings()
    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    cx, cy = tr.transform(communes["lon"].to_numpy(float), communes["lat"].to_numpy(float))
    sel = svc[svc["type_service"] == stype]
    sx, sy = tr.transform(sel["lon"].to_numpy(float), sel["lat"].to_numpy(float))
    dens = communes["densite"].to_numpy(np.int64)
    dens_of = dict(zip(communes["code_insee"].astype(str), dens, strict=True))
    # a service's end: its commune's level, else (outside the table) the best-connected one
    sdens = np.array([dens_of.get(c, best_connected_level(s)) for c in sel["code_insee"]])

    def minutes(px: np.ndarray, py: np.ndarray, pdens: np.ndarray) -> np.ndarray:
        d = np.hypot(cx[:, None] - px[None, :], cy[:, None] - py[None, :]) / 1000
        return trip_minutes(d, dens[:, None], pdens[None, :], s)

    already = minutes(np.asarray(sx), np.asarray(sy), sdens).min(axis=1) <= t
    cand = (communes["code_dep"] == "15").to_numpy()
    new = (minutes(np.asarray(cx)[cand], np.asarray(cy)[cand], dens[cand]) <= t) \
        & ~already[:, None]
    pop = communes["population"].to_numpy(np.int64) * cand  # Cantal's families only
    gains = pop @ new
    assert int(res.table["population_nouvellement_couverte"].iloc[0]) == int(gains.max())
    assert int(res.model.gains[0]) == int(gains.max())
    assert (np.diff(res.table["population_nouvellement_couverte"].to_numpy()) <= 0).all()
