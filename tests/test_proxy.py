"""Proxy engine: the trip-level model on hand-computed cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from coverage.errors import CoverageError, InputError, MissingColumnError
from coverage.labels import REASON_ISLAND
from coverage.routing.proxy import (
    ProxyEngine,
    access_minutes,
    drive_minutes,
    straight_km_within,
    trip_minutes,
)
from coverage.settings import Settings

#: Round parameters for hand computations: τ by level, 30 km/h on the first 10 road km,
#: 60 km/h beyond, detour 1.3.
S = Settings(proxy_detour_factor=1.3,
             proxy_access_min_by_density={1: 3.0, 2: 2.5, 3: 2.0, 4: 1.0},
             proxy_speed_near_kmh=30.0, proxy_speed_far_kmh=60.0, proxy_speed_break_km=10.0)


def _lonlat(crs: str, x: float, y: float) -> tuple[float, float]:
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return float(lon), float(lat)


def test_trip_minutes_formula() -> None:
    # 5 km straight × 1.3 = 6.5 road km at 30 km/h = 13 min; + τ4 (1) + τ1 (3) = 17
    # 10 km straight = 13 road km: 10 km at 30 (20 min) + 3 km at 60 (3 min) = 23 (+ 2 + 2)
    got = trip_minutes(np.array([5.0, 10.0, np.nan]), np.array([4, 3, 2]),
                       np.array([1, 3, 2]), S)
    assert got[:2].tolist() == pytest.approx([17.0, 27.0])
    assert np.isnan(got[2])
    assert trip_minutes(0.0, 1, 1, S) == pytest.approx(6.0)  # both access times
    with pytest.raises(ValueError, match="de densité"):
        trip_minutes(1.0, 7, 1, S)
    assert access_minutes(np.array([1, 4]), S).tolist() == [3.0, 1.0]


def test_model_is_increasing_and_inverse() -> None:
    km = np.linspace(0, 200, 2001)
    t = trip_minutes(km, 2, 4)
    assert np.all(np.diff(t) > 0)
    drive = drive_minutes(km * S.proxy_detour_factor, S)
    assert straight_km_within(drive, S) == pytest.approx(km)
    assert straight_km_within(-5.0, S) == 0.0


def test_a_town_is_not_slowed_over_the_whole_trip() -> None:
    # the same 30 km trip from a dense town and from a very sparse village: the town differs
    # only by its access time, not by a slower speed over 30 km
    town, village = trip_minutes(np.array([30.0, 30.0]), np.array([2, 4]), 4)
    assert abs(town - village) == pytest.approx(
        abs(Settings().proxy_access_min_by_density[2] - Settings().proxy_access_min_by_density[4]))


def _case() -> tuple[pd.DataFrame, pd.DataFrame]:
    # Lambert-93: commune A at (700000, 6600000); service m1 3-4-5 triangle away (5 km),
    # service m2 10 km east; La Réunion (UTM 40S, EPSG:2975): commune R and service r1 5 km
    a = _lonlat("EPSG:2154", 700_000, 6_600_000)
    b = _lonlat("EPSG:2154", 720_000, 6_600_000)
    m1 = _lonlat("EPSG:2154", 703_000, 6_604_000)
    m2 = _lonlat("EPSG:2154", 710_000, 6_600_000)
    r = _lonlat("EPSG:2975", 340_000, 7_660_000)
    r1 = _lonlat("EPSG:2975", 343_000, 7_664_000)
    communes = pd.DataFrame([
        {"code_insee": "01001", "code_dep": "01", "densite": 4, "lon": a[0], "lat": a[1]},
        {"code_insee": "01002", "code_dep": "01", "densite": 1, "lon": b[0], "lat": b[1]},
        {"code_insee": "97401", "code_dep": "974", "densite": 3, "lon": r[0], "lat": r[1]},
    ])
    services = pd.DataFrame([
        {"service_id": "m1", "type_service": "mediation_familiale", "code_dep": "01",
         "densite": 1, "lon": m1[0], "lat": m1[1]},
        {"service_id": "m2", "type_service": "mediation_familiale", "code_dep": "01",
         "densite": 4, "lon": m2[0], "lat": m2[1]},
        {"service_id": "r1", "type_service": "espace_rencontre", "code_dep": "974",
         "densite": 3, "lon": r1[0], "lat": r1[1]},
    ])
    return communes, services


def test_nearest_hand_computed() -> None:
    communes, services = _case()
    out = ProxyEngine(S).nearest(communes, services,
                                 service_types=("mediation_familiale", "espace_rencontre"))
    med = out[out["type_service"] == "mediation_familiale"].set_index("code_insee")
    # A (τ 1): m1 (τ 3) at 5 km → 13 + 4 = 17; m2 (τ 1) at 10 km → 23 + 2 = 25
    assert med.loc["01001", "service_id"] == "m1"
    assert med.loc["01001", "minutes"] == pytest.approx(17.0, abs=1e-6)
    assert med.loc["01001", "distance_km"] == pytest.approx(6.5, abs=1e-6)
    # B (τ 3): m2 at 10 km → 23 + 4 = 27
    assert med.loc["01002", "service_id"] == "m2"
    assert med.loc["01002", "minutes"] == pytest.approx(27.0, abs=1e-6)
    # La Réunion has no médiation familiale: NaN with the land-mass reason, never a
    # service of the metropole
    assert np.isnan(med.loc["97401", "minutes"]) and med.loc["97401", "service_id"] is None
    ranged = ProxyEngine(S).nearest_with_ranges(communes, services,
                                                service_types=("mediation_familiale",))
    assert ranged.set_index("code_insee").loc["97401", "raison"] == REASON_ISLAND
    er = out[out["type_service"] == "espace_rencontre"].set_index("code_insee")
    # R (τ 2): r1 (τ 2) at 5 km in UTM 40S → 13 + 4 = 17
    assert er.loc["97401", "service_id"] == "r1"
    assert er.loc["97401", "minutes"] == pytest.approx(17.0, abs=1e-6)
    assert np.isnan(er.loc["01001", "minutes"])  # the Réunion service is never used in 01
    assert (out["moteur"] == "proxy").all() and not out["acces_hors_reseau"].any()


def test_destination_class_can_beat_the_nearest_in_straight_line() -> None:
    c = _lonlat("EPSG:2154", 700_000, 6_600_000)
    close = _lonlat("EPSG:2154", 702_000, 6_600_000)
    far = _lonlat("EPSG:2154", 697_500, 6_600_000)
    communes = pd.DataFrame([{"code_insee": "01001", "code_dep": "01", "densite": 4,
                              "lon": c[0], "lat": c[1]}])
    services = pd.DataFrame([
        {"service_id": "close", "type_service": "t", "densite": 1, "lon": close[0],
         "lat": close[1]},
        {"service_id": "far", "type_service": "t", "densite": 4, "lon": far[0],
         "lat": far[1]}])
    out = ProxyEngine(S).nearest(communes, services, service_types=("t",))
    # close: 1 + 3 + 2.6 km at 30 = 9.2; far: 1 + 1 + 3.25 km at 30 = 8.5
    assert out.loc[0, "service_id"] == "far"
    assert out.loc[0, "minutes"] == pytest.approx(8.5, abs=1e-6)


def test_service_density_from_its_commune() -> None:
    communes, services = _case()
    services = services.drop(columns="densite").assign(code_insee=["01002", "01001", "97401"])
    out = ProxyEngine(S).nearest(communes, services, service_types=("mediation_familiale",))
    a = out.set_index("code_insee").loc["01001"]
    # m1 now lies in commune 01002 (τ 3): 17 min as before
    assert a["minutes"] == pytest.approx(17.0, abs=1e-6)


def test_matrix_hand_computed() -> None:
    communes, services = _case()
    table = ProxyEngine(S).matrix(communes, services, cutoff_min=26.0)
    pairs = {(r.service_id, r.code_insee): float(r.minutes) for r in table.itertuples()}
    # A–m1 17, A–m2 25; B–m2 27 and B–m1 > 26: out; R–r1 17; nothing across territories
    assert pairs == pytest.approx({("m1", "01001"): 17.0, ("m2", "01001"): 25.0,
                                   ("r1", "97401"): 17.0}, abs=1e-4)
    assert table["minutes"].dtype == np.float32


def test_zero_distance_pair_is_kept() -> None:
    communes, services = _case()
    services.loc[0, ["lon", "lat"]] = communes.loc[0, ["lon", "lat"]].to_numpy()
    table = ProxyEngine(S).matrix(communes, services, cutoff_min=5.0)
    assert ("m1", "01001") in set(zip(table["service_id"], table["code_insee"], strict=True))


def test_ranges_bracket_the_minutes() -> None:
    communes, services = _case()
    out = ProxyEngine(S).nearest_with_ranges(communes, services,
                                             service_types=("mediation_familiale",))
    ok = out["minutes"].notna()
    assert (out.loc[ok, "minutes_min"] < out.loc[ok, "minutes"]).all()
    assert (out.loc[ok, "minutes"] < out.loc[ok, "minutes_max"]).all()
    a = out.set_index("code_insee").loc["01001"]
    assert a["minutes_min"] == pytest.approx(4 + 6.0 / 30 * 60)  # detour 1.2
    assert a["minutes_max"] == pytest.approx(4 + 7.25 / 30 * 60)  # detour 1.45


def test_parameters_record_values_and_sources() -> None:
    s = dataclasses.replace(Settings(), proxy_detour_factor=1.4)
    params = ProxyEngine(s).parameters()
    assert params["moteur"] == "proxy" and params["detour_factor"] == 1.4
    assert params["access_min_by_density"] == {
        str(k): v for k, v in Settings().proxy_access_min_by_density.items()}
    assert params["speed_near_kmh"] == Settings().proxy_speed_near_kmh
    assert params["detour_bounds"] == [1.2, 1.45]
    assert "PROXY_DETOUR_FACTOR" in params["detour_source"]
    assert "PROXY_SPEED_NEAR_KMH" in params["speed_source"]
    assert params["liaisons"] == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(CoverageError, match="proxy_speed_far_kmh"):
        ProxyEngine(dataclasses.replace(S, proxy_speed_far_kmh=0.0))
    with pytest.raises(CoverageError, match="croît avec la distance"):
        ProxyEngine(dataclasses.replace(S, proxy_speed_far_kmh=20.0))
    with pytest.raises(CoverageError, match="proxy_access_min_by_density"):
        ProxyEngine(dataclasses.replace(S, proxy_access_min_by_density={1: -1.0}))


def test_bad_density_and_missing_columns() -> None:
    communes, services = _case()
    communes.loc[1, "densite"] = 9
    with pytest.raises(InputError, match=r"communes, ligne 2, colonne « densite »"):
        ProxyEngine().nearest(communes, services, service_types=("mediation_familiale",))
    with pytest.raises(MissingColumnError, match="densite"):
        ProxyEngine().nearest(communes.drop(columns="densite"), services,
                              service_types=("mediation_familiale",))
