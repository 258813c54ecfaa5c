"""Proxy engine: straight line × detour ÷ speed by density, on hand-computed cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from coverage.errors import InputError, MissingColumnError
from coverage.routing.proxy import ProxyEngine, proxy_minutes
from coverage.settings import Settings


def _lonlat(crs: str, x: float, y: float) -> tuple[float, float]:
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return float(lon), float(lat)


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_proxy_minutes_formula() -> None:
    # 5 km straight × 1.3 = 6.5 km; at 65 km/h (level 4) = 6 min, at 30 km/h (level 1) = 13
    got = proxy_minutes(np.array([5000.0, 5000.0, np.nan]), np.array([4, 1, 2]))
    assert got[:2].tolist() == pytest.approx([6.0, 13.0])
    assert np.isnan(got[2])
    custom = Settings(proxy_detour_factor=1.0, proxy_speed_kmh_by_density={1: 60.0})
    assert proxy_minutes(1000.0, 1, custom) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="density level"):
        proxy_minutes(1000.0, 7)


def _case() -> tuple[pd.DataFrame, pd.DataFrame]:
    # Lambert-93: commune A at (700000, 6600000); service m1 3-4-5 triangle away (5 km),
    # service m2 10 km east; La Réunion (UTM 40S, EPSG:2975): commune R and service r1 5 km
    a = _lonlat("EPSG:2154", 700_000, 6_600_000)
    b = _lonlat("EPSG:2154", 720_000, 6_600_000)
    m1 = _lonlat("EPSG:2154", 703_000, 6_604_000)
    m2 = _lonlat("EPSG:2154", 710_000, 6_600_000)
    r = _lonlat("EPSG:2975", 340_000, 7_660_000)
    r1 = _lonlat("EPSG:2975", 343_000, 7_664_000)
    communes = _frame([
        {"code_insee": "01001", "code_dep": "01", "densite": 4, "lon": a[0], "lat": a[1]},
        {"code_insee": "01002", "code_dep": "01", "densite": 1, "lon": b[0], "lat": b[1]},
        {"code_insee": "97401", "code_dep": "974", "densite": 3, "lon": r[0], "lat": r[1]},
    ])
    services = _frame([
        {"service_id": "m1", "type_service": "mediation_familiale", "code_dep": "01",
         "lon": m1[0], "lat": m1[1]},
        {"service_id": "m2", "type_service": "mediation_familiale", "code_dep": "01",
         "lon": m2[0], "lat": m2[1]},
        {"service_id": "r1", "type_service": "espace_rencontre", "code_dep": "974",
         "lon": r1[0], "lat": r1[1]},
    ])
    return communes, services


def test_nearest_hand_computed() -> None:
    communes, services = _case()
    out = ProxyEngine().nearest(communes, services,
                                service_types=("mediation_familiale", "espace_rencontre"))
    med = out[out["type_service"] == "mediation_familiale"].set_index("code_insee")
    # A: nearest m1 at 5 km → 6.5 km → 6 min at 65 km/h
    assert med.loc["01001", "service_id"] == "m1"
    assert med.loc["01001", "minutes"] == pytest.approx(6.0, abs=1e-6)
    assert med.loc["01001", "distance_km"] == pytest.approx(6.5, abs=1e-6)
    # B: nearest m2 at 10 km → 13 km → 26 min at 30 km/h
    assert med.loc["01002", "service_id"] == "m2"
    assert med.loc["01002", "minutes"] == pytest.approx(26.0, abs=1e-6)
    # La Réunion has no médiation familiale: NaN, never a service of the metropole
    assert np.isnan(med.loc["97401", "minutes"]) and med.loc["97401", "service_id"] is None
    er = out[out["type_service"] == "espace_rencontre"].set_index("code_insee")
    # R: r1 at 5 km in UTM 40S → 6.5 km at 60 km/h = 6.5 min
    assert er.loc["97401", "service_id"] == "r1"
    assert er.loc["97401", "minutes"] == pytest.approx(6.5, abs=1e-6)
    assert np.isnan(er.loc["01001", "minutes"])  # the Réunion service is never used in 01
    assert (out["moteur"] == "proxy").all() and not out["acces_hors_reseau"].any()


def test_matrix_hand_computed() -> None:
    communes, services = _case()
    table = ProxyEngine().matrix(communes, services, cutoff_min=20.0)
    pairs = {(r.service_id, r.code_insee): float(r.minutes) for r in table.itertuples()}
    # A–m1 6 min, A–m2 10 km×1.3/65×60 = 12 min; B–m2 26 min and B–m1 > 20: out;
    # R–r1 6.5 min; nothing across territories
    assert pairs == pytest.approx({("m1", "01001"): 6.0, ("m2", "01001"): 12.0,
                                   ("r1", "97401"): 6.5}, abs=1e-4)
    assert table["minutes"].dtype == np.float32


def test_zero_distance_pair_is_kept() -> None:
    communes, services = _case()
    services.loc[0, ["lon", "lat"]] = communes.loc[0, ["lon", "lat"]].to_numpy()
    table = ProxyEngine().matrix(communes, services, cutoff_min=5.0)
    assert ("m1", "01001") in set(zip(table["service_id"], table["code_insee"], strict=True))


def test_parameters_record_values_and_sources() -> None:
    s = dataclasses.replace(Settings(), proxy_detour_factor=1.4)
    params = ProxyEngine(s).parameters()
    assert params["moteur"] == "proxy" and params["detour_factor"] == 1.4
    assert params["speed_kmh_by_density"] == {"1": 30.0, "2": 45.0, "3": 60.0, "4": 65.0}
    assert "PROXY_DETOUR_FACTOR" in params["detour_source"]
    assert "PROXY_SPEED_KMH_BY_DENSITY" in params["speed_source"]


def test_bad_density_and_missing_columns() -> None:
    communes, services = _case()
    communes.loc[1, "densite"] = 9
    with pytest.raises(InputError, match=r"communes, row 2, column 'densite'"):
        ProxyEngine().nearest(communes, services, service_types=("mediation_familiale",))
    with pytest.raises(MissingColumnError, match="densite"):
        ProxyEngine().nearest(communes.drop(columns="densite"), services,
                              service_types=("mediation_familiale",))
