"""White zones and coverage tables against an independent brute-force computation.

The brute force walks the rows with plain Python loops and dicts (no pandas groupby), on
small inline frames, on random frames (hypothesis), on the FICTIONAL demo territory run with
the road engine, and on the real Massif Central territory of ../shared/data with the proxy
engine (whose nearest services are also recomputed by brute force over every service).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coverage.cog import court_of, national_communes
from coverage.errors import CoverageError
from coverage.schemas import OUTPUT_CONTRACTS
from coverage.settings import NO_SERVICE
from coverage.whitezones import (
    FICTIONAL_TERRITORY,
    FRANCE_CODE,
    FRANCE_PARTIAL_CODE,
    NO_EPCI_CODE,
    access_table,
    coverage_table,
    coverage_tables,
    is_white_zone,
    nearest_services,
    white_zones,
)

MF, ER = "mediation_familiale", "espace_rencontre"


# --- brute force ---------------------------------------------------------------------------

def _is_white(m: Any, t: float) -> bool:
    return m is None or (isinstance(m, float) and math.isnan(m)) or m > t


def _rows(access: pd.DataFrame) -> list[dict[str, Any]]:
    rows = [dict(r) for r in access.to_dict("records")]
    # combined view: smallest minutes over the types, plain loop
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = r["minutes"]
        m = None if m is None or (isinstance(m, float) and math.isnan(m)) else float(m)
        cur = best.get(r["code_insee"])
        if cur is None:
            best[r["code_insee"]] = {**r, "type_service": NO_SERVICE, "minutes": m}
        elif m is not None and (cur["minutes"] is None or m < cur["minutes"]):
            cur["minutes"] = m
    return rows + list(best.values())


def brute_white(access: pd.DataFrame, thresholds: list[float]) -> set[tuple[str, str, float]]:
    out = set()
    for r in _rows(access):
        for t in thresholds:
            if _is_white(r["minutes"], t):
                out.add((r["code_insee"], r["type_service"], float(t)))
    return out


def _wq(pairs: list[tuple[float, int]], num: int, den: int) -> float:
    total = sum(p for _, p in pairs)
    if total == 0:
        return math.nan
    cum = 0
    for m, p in sorted(pairs, key=lambda x: x[0]):
        cum += p
        if cum * den >= total * num:
            return m
    raise AssertionError("unreachable")


def brute_coverage(access: pd.DataFrame, thresholds: list[float], key_of) -> dict:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in _rows(access):
        groups[(key_of(r), r["type_service"])].append(r)
    out = {}
    for (key, typ), rs in groups.items():
        pairs = [(math.inf if _is_white(r["minutes"], math.inf) else float(r["minutes"]),
                  int(r["population"])) for r in rs]
        med, p90 = _wq(pairs, 1, 2), _wq(pairs, 9, 10)
        for t in thresholds:
            pop = cov = nwhite = popwhite = rur = rurwhite = 0
            for r in rs:
                p = int(r["population"])
                w = _is_white(r["minutes"], t)
                pop += p
                cov += 0 if w else p
                nwhite += 1 if w else 0
                popwhite += p if w else 0
                rur += p if r["rural"] else 0
                rurwhite += p if (r["rural"] and w) else 0
            out[(key, typ, float(t))] = {
                "population": pop, "population_couverte": cov,
                "taux_couverture": cov / pop if pop else math.nan,
                "communes_zone_blanche": nwhite, "population_zone_blanche": popwhite,
                "minutes_mediane": med, "minutes_p90": p90, "population_rurale": rur,
                "population_rurale_zone_blanche": rurwhite}
    return out


def _same(a: float, b: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)


def check_against_brute(access: pd.DataFrame, communes: pd.DataFrame,
                        thresholds: list[float]) -> int:
    """Compare white_zones and every coverage level with the brute force; returns #cells."""
    wz = white_zones(access, thresholds)
    got = {(r.code_insee, r.type_service, float(r.seuil_minutes)) for r in wz.itertuples()}
    assert got == brute_white(access, thresholds)
    assert len(got) == len(wz)  # no duplicate rows
    extra = {r["code_insee"]: r for r in communes.to_dict("records")}
    # the national total is « FR » only when the run holds every département of France
    nat = national_communes()
    whole = set(nat.loc[nat["zone"].isin(["metro", "drom"]), "code_dep"])
    france = FRANCE_CODE if whole <= set(access["code_dep"]) else FRANCE_PARTIAL_CODE
    key_fns = {
        "departements": lambda r: (r["code_dep"],),
        "densite": lambda r: (int(r["densite"]),),
        "cours_appel": lambda r: (court_of(r["code_dep"]),),
        "regions": lambda r: (extra[r["code_insee"]]["code_reg"],),
        "epci": lambda r: (extra[r["code_insee"]]["code_epci"]
                           if isinstance(extra[r["code_insee"]]["code_epci"], str)
                           else NO_EPCI_CODE,),
        "france": lambda r: (FICTIONAL_TERRITORY if r["code_dep"].startswith("Z")
                             else france,),
    }
    cells = 0
    for level, key_of in key_fns.items():
        table = coverage_table(access, communes, thresholds, level)
        contract_name = f"couverture_{level}"
        assert list(table.columns) == OUTPUT_CONTRACTS[contract_name].columns
        brute = brute_coverage(access, thresholds, key_of)
        nkey = 1
        assert len(table) == len(brute)
        for rec in table.to_dict("records"):
            key = tuple(rec[c] for c in table.columns[:nkey])
            if level == "densite":
                key = (int(key[0]),)
            b = brute[(key, rec["type_service"], float(rec["seuil_minutes"]))]
            for col, val in b.items():
                assert _same(val, rec[col]), (level, key, rec["type_service"], col, val,
                                              rec[col])
                cells += 1
    return cells


# --- small inline frames -------------------------------------------------------------------

def _communes() -> pd.DataFrame:
    return pd.DataFrame({
        "code_insee": ["15001", "15002", "12001", "12002", "2A001"],
        "nom": ["a", "b", "c", "d", "e"],
        "code_dep": ["15", "15", "12", "12", "2A"],
        "population": [1000, 200, 0, 50, 300],
        "densite": [2, 4, 3, 4, 1],
        "rural": [False, True, True, True, False],
        "code_reg": ["84", "84", "76", "76", "94"],
        "code_epci": ["200000001", "200000001", "200000002", None, "200000003"],
        "nom_epci": ["E1", "E1", "E2", None, "E3"],
    })


def _nearest() -> pd.DataFrame:
    return pd.DataFrame({
        "code_insee": ["15001", "15002", "12001", "12002", "2A001"] * 2,
        "type_service": [MF] * 5 + [ER] * 5,
        "minutes": [5.0, 31.0, np.nan, 45.0, 20.0, 50.0, 10.0, 12.0, np.nan, 20.0],
        "service_id": ["m1", "m1", None, "m2", "m3", "e1", "e1", "e2", None, "e3"],
        "distance_km": [3.0, 30.0, np.nan, 40.0, 10.0, 60.0, 8.0, 9.0, np.nan, 11.0],
        "moteur": ["proxy"] * 10,
        "acces_hors_reseau": [False] * 10,
    })


def test_access_table_contract_and_completion() -> None:
    near = _nearest()
    near = near[~((near.code_insee == "12002") & (near.type_service == ER))]  # missing row
    acc = access_table(_communes(), near, service_types=(MF, ER))
    assert list(acc.columns) == OUTPUT_CONTRACTS["acces_communes"].columns
    assert len(acc) == 10
    row = acc[(acc.code_insee == "12002") & (acc.type_service == ER)].iloc[0]
    assert math.isnan(row["minutes"]) and row["moteur"] == "proxy"
    assert acc["code_insee"].tolist() == sorted(acc["code_insee"].tolist())


def test_access_table_rejects_unknown_commune() -> None:
    near = _nearest()
    near.loc[0, "code_insee"] = "99999"
    with pytest.raises(CoverageError, match="99999"):
        access_table(_communes(), near)


def test_white_zone_definitions_on_small_frame() -> None:
    acc = access_table(_communes(), _nearest())
    wz = white_zones(acc, [30.0])
    white = {(r.code_insee, r.type_service) for r in wz.itertuples()}
    # beyond the threshold and unreachable are white; exactly at the threshold is covered
    assert ("15002", MF) in white and ("12001", MF) in white
    assert ("2A001", MF) not in white and ("15001", MF) not in white
    # combined: white only when neither type is within 30 min
    combined = {c for c, t in white if t == NO_SERVICE}
    assert combined == {"12002"}  # 45 min and unreachable


def test_is_white_zone_the_one_rule() -> None:
    # beyond the threshold or unreachable; exactly at the threshold is covered
    assert is_white_zone(30.5, 30.0) is True
    assert is_white_zone(30.0, 30.0) is False
    assert is_white_zone(0.0, 30.0) is False
    assert is_white_zone(float("nan"), 30.0) is True
    assert is_white_zone(float("inf"), 30.0) is True
    assert is_white_zone(None, 30.0) is True  # type: ignore[call-overload]
    values = [5.0, 30.0, 31.0, np.nan, 45.0, np.inf]
    arr = is_white_zone(np.array(values), 30.0)
    assert isinstance(arr, np.ndarray) and arr.dtype == bool
    assert arr.tolist() == [False, False, True, True, True, True]
    assert arr.tolist() == [_is_white(v, 30.0) for v in values]
    series = pd.Series([5.0, None, 31.0, "x"], index=["a", "b", "c", "d"], dtype=object)
    flags = is_white_zone(series, 30.0)
    assert isinstance(flags, pd.Series) and flags.index.tolist() == ["a", "b", "c", "d"]
    assert flags.tolist() == [False, True, True, True]  # not a number: unreachable
    # white_zones applies exactly this rule, row by row
    acc = access_table(_communes(), _nearest())
    wz = white_zones(acc, [30.0])
    expected = {(r.code_insee, r.type_service) for r in acc.itertuples()
                if is_white_zone(r.minutes, 30.0)}
    got = {(r.code_insee, r.type_service) for r in wz.itertuples() if r.type_service != NO_SERVICE}
    assert got == expected


def _services() -> pd.DataFrame:
    # placed near the communes' points of _points() (Cantal, Aveyron)
    return pd.DataFrame({
        "service_id": ["m1", "e1", "e2"],
        "type_service": [MF, ER, ER],
        "code_dep": ["15", "15", "12"],
        "lon": [2.44, 2.45, 2.57],
        "lat": [44.93, 44.92, 44.35],
    })


def _points() -> pd.DataFrame:
    com = _communes()
    com.loc[4, ["code_insee", "code_dep"]] = ["97411", "974"]  # La Réunion
    com["lon"] = [2.44, 2.90, 2.57, 2.10, 55.45]
    com["lat"] = [44.93, 45.10, 44.35, 44.20, -20.88]
    return com


def test_nearest_services_is_the_access_table_of_the_engine() -> None:
    from coverage.routing.proxy import ProxyEngine

    engine = ProxyEngine()
    com, svc = _points(), _services()
    acc = nearest_services(com, svc, engine=engine)
    # the proxy's nearest with its low–high minutes and island reasons (issue 12)
    direct = access_table(com, engine.nearest_with_ranges(com, svc, service_types=(MF, ER)),
                          service_types=(MF, ER), moteur="proxy")
    pd.testing.assert_frame_equal(acc, direct)
    assert list(acc.columns) == OUTPUT_CONTRACTS["acces_communes"].columns
    assert len(acc) == 2 * len(com) and (acc["moteur"] == "proxy").all()
    # La Réunion has no service in its territory: unreachable, so white at any threshold
    reunion = acc[acc["code_insee"] == "97411"]
    assert reunion["minutes"].isna().all() and reunion["service_id"].isna().all()
    assert is_white_zone(reunion["minutes"], 1e9).all()
    # default types: those of the services, settings order
    only_er = nearest_services(com, svc[svc["type_service"] == ER], engine=engine)
    assert set(only_er["type_service"]) == {ER}
    # a type asked for without any service: NaN minutes for every commune
    asked = nearest_services(com, svc[svc["type_service"] == ER], engine=engine,
                             service_types=(MF, ER))
    assert asked[asked["type_service"] == MF]["minutes"].isna().all()
    pd.testing.assert_frame_equal(
        asked[asked["type_service"] == ER].reset_index(drop=True),
        only_er.reset_index(drop=True))
    # no services at all: every commune × type unreachable, named by the engine
    empty = nearest_services(com, svc.iloc[0:0], engine=engine, service_types=(MF, ER))
    assert len(empty) == 2 * len(com) and empty["minutes"].isna().all()
    assert (empty["moteur"] == "proxy").all()


def test_aggregates_small_frame_brute_force() -> None:
    acc = access_table(_communes(), _nearest())
    assert check_against_brute(acc, _communes(), [20.0, 30.0, 45.0]) > 100


def test_percentiles_inf_and_nan() -> None:
    acc = access_table(_communes(), _nearest())
    dep = coverage_table(acc, None, [30.0], "departements").set_index(
        ["code_dep", "type_service"])
    # 12: population 0 (unreachable) + 50 (45 min) → median 45 min
    assert dep.loc[("12", MF), "minutes_mediane"] == 45.0
    # 12 / espace_rencontre: the only populated commune is unreachable → +inf, not NaN
    assert dep.loc[("12", ER), "minutes_mediane"] == math.inf
    zero = acc[acc.code_insee == "12001"]
    t = coverage_table(zero, None, [30.0], "departements")
    assert t["minutes_mediane"].isna().all() and t["taux_couverture"].isna().all()


def test_unknown_level() -> None:
    with pytest.raises(CoverageError, match="unknown coverage level"):
        coverage_table(access_table(_communes(), _nearest()), None, [30.0], "cantons")


def test_coverage_tables_skip_levels_without_keys() -> None:
    acc = access_table(_communes(), _nearest())
    tables = coverage_tables(acc, _communes().drop(columns=["code_reg"]), [30.0])
    assert "couverture_regions" not in tables and "couverture_epci" in tables


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(
    st.sampled_from(["01", "15", "2B", "971"]),
    st.integers(0, 5000),
    st.sampled_from([1, 2, 3, 4]),
    st.one_of(st.none(), st.floats(0, 90, allow_nan=False)),
    st.one_of(st.none(), st.floats(0, 90, allow_nan=False)),
), min_size=1, max_size=25),
    st.lists(st.sampled_from([10.0, 20.0, 30.0, 45.0, 60.0]), min_size=1, max_size=3,
             unique=True))
def test_aggregates_random_frames_brute_force(rows, thresholds) -> None:
    com = pd.DataFrame({
        "code_insee": [f"{d[:2]}{i:03d}" for i, (d, *_r) in enumerate(rows)],
        "nom": [f"c{i}" for i in range(len(rows))],
        "code_dep": [r[0] for r in rows],
        "population": [r[1] for r in rows],
        "densite": [r[2] for r in rows],
        "rural": [r[2] >= 3 for r in rows],
        "code_reg": [{"01": "84", "15": "84", "2B": "94", "971": "01"}[r[0]] for r in rows],
        "code_epci": [None if i % 5 == 0 else f"2000000{i % 3}" for i in range(len(rows))],
        "nom_epci": [None if i % 5 == 0 else f"E{i % 3}" for i in range(len(rows))],
    })
    near = pd.DataFrame({
        "code_insee": list(com.code_insee) * 2,
        "type_service": [MF] * len(rows) + [ER] * len(rows),
        "minutes": [np.nan if r[3] is None else r[3] for r in rows]
        + [np.nan if r[4] is None else r[4] for r in rows],
        "service_id": "s", "distance_km": 1.0, "moteur": "road",
    })
    # the EPCI name follows its code in this frame, as in the COG
    com.loc[com.code_epci.notna(), "nom_epci"] = "E" + com.code_epci.str[-1]
    acc = access_table(com, near)
    check_against_brute(acc, com, thresholds)


# --- the FICTIONAL demo territory, road engine ---------------------------------------------

@pytest.fixture(scope="module")
def demo_run(demo_road_run):
    from coverage.io.inputs import load_inputs
    from coverage.results import RunOutputs

    return load_inputs(), RunOutputs.load(demo_road_run)  # the FICTIONAL demo territory


def test_demo_road_white_zones_brute_force(demo_run) -> None:
    inputs, result = demo_run
    assert result.engine == "road" and result.fictif
    acc = result.tables["acces_communes"]
    assert set(acc["moteur"]) == {"road"}
    assert len(acc) == 2 * len(inputs.communes)
    cells = check_against_brute(acc, inputs.communes, list(result.manifest["thresholds_min"]))
    assert cells > 1000
    # partitions by département give the same minutes as one engine call on everything
    from coverage.routing import make_engine

    engine = make_engine("road", inputs.roads, cache_dir=result.run_dir / ".cache" / "network")
    near = engine.nearest(inputs.communes, inputs.services, service_types=(MF, ER))
    direct = access_table(inputs.communes, near)
    pd.testing.assert_series_equal(acc["minutes"], direct["minutes"])
    assert (acc["service_id"].fillna("") == direct["service_id"].fillna("")).all()


# --- real territory of ../shared/data, proxy engine ----------------------------------------

def _massif_central_inputs(shared: Path):
    import geopandas as gpd

    from coverage.io.communes import load_communes
    from coverage.io.inputs import Inputs

    gpkg = shared / "territoires" / "massif_central_15_12_48.gpkg"
    communes = load_communes(gpkg).data
    # the partial real services list, each placed at its commune's interior point; most
    # lie outside the three départements (cross-border access is exercised)
    pts = pd.read_csv(shared / "communes" / "points_interieurs_cog2026.csv", dtype=str)
    svc = pd.read_csv(shared / "services" / "services_sites_publics_partiels.csv", dtype=str)
    svc = svc.merge(pts[["code_insee", "lon", "lat"]], on="code_insee", how="inner")
    svc["service_id"] = [f"S{i:03d}" for i in range(len(svc))]
    svc["lon"] = svc["lon"].astype(float)
    svc["lat"] = svc["lat"].astype(float)
    svc["code_dep"] = svc["code_insee"].str[:2]
    services = gpd.GeoDataFrame(svc, geometry=gpd.points_from_xy(svc.lon, svc.lat),
                                crs="EPSG:4326")
    return Inputs(communes=communes, services=services, waiting=None, roads=None,
                  fictif=False)


@pytest.mark.shared
def test_massif_central_proxy_brute_force(shared_data: Path, tmp_path: Path) -> None:
    from pyproj import Transformer

    from coverage.batch import RunOptions, run_batch
    from coverage.routing.proxy import best_connected_level, trip_minutes
    from coverage.settings import Settings

    inputs = _massif_central_inputs(shared_data)
    result = run_batch(inputs, out_dir=tmp_path,
                       options=RunOptions(workers=1, isochrones=False, engine="proxy"))
    acc = result.tables["acces_communes"]
    assert set(acc["moteur"]) == {"proxy"} and set(acc["code_dep"]) == {"12", "15", "48"}
    parts = result.manifest["partitions"]
    # the cross-border buffer keeps services of other départements but not all of them
    assert all(0 < parts[d]["services"] < len(inputs.services) for d in ("12", "15", "48"))
    # brute-force nearest over EVERY service (no partition buffer), proxy formula
    s = Settings()
    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    sx, sy = tr.transform(inputs.services.lon.to_numpy(), inputs.services.lat.to_numpy())
    stypes = inputs.services.type_service.tolist()
    com = inputs.communes.set_index("code_insee")
    # destination density: the service's commune, else the best-connected level
    dens_of = dict(zip(inputs.communes.code_insee.astype(str),
                       inputs.communes.densite.astype(int), strict=True))
    sdens = [dens_of.get(str(code), best_connected_level(s))
             for code in inputs.services.code_insee]
    checked = 0
    for rec in acc.to_dict("records"):
        c = com.loc[rec["code_insee"]]
        cx, cy = tr.transform(float(c.lon), float(c.lat))
        expect = math.inf
        for x, y, t, d in zip(sx, sy, stypes, sdens, strict=True):
            if t == rec["type_service"]:
                km = math.hypot(x - cx, y - cy) / 1000
                expect = min(expect, float(trip_minutes(km, int(c.densite), d, s)))
        assert math.isclose(rec["minutes"], expect, rel_tol=1e-9), rec
        checked += 1
    assert checked == 2 * len(inputs.communes)
    check_against_brute(acc, inputs.communes, [20.0, 30.0, 45.0])
