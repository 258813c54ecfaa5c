"""Shared coordinate transformations."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from coverage.geo import lonlat_to_xy, project_lonlat, transformer


@pytest.mark.parametrize(("lon", "lat", "crs"), [
    ((2.35, 2.45), (48.85, 48.80), "EPSG:2154"),    # Paris, Lambert-93
    ((2.44, 2.60), (44.93, 45.03), "EPSG:2154"),    # Cantal, Lambert-93
    ((55.45, 55.50), (-20.90, -21.00), "EPSG:2975"),  # La Réunion, UTM 40S
])
def test_projected_distances_are_metres(lon: tuple[float, float], lat: tuple[float, float],
                                         crs: str) -> None:
    xy = lonlat_to_xy(np.array(lon), np.array(lat), crs)
    planar = float(np.hypot(*(xy[1] - xy[0])))
    _, _, geodesic = Geod(ellps="GRS80").inv(lon[0], lat[0], lon[1], lat[1])
    assert planar == pytest.approx(geodesic, rel=3e-3)  # projection scale error only


def test_round_trip_and_cache() -> None:
    lon, lat = np.array([3.0, -1.5]), np.array([45.0, 47.2])
    x, y = project_lonlat(lon, lat, "EPSG:2154")
    back_lon, back_lat = transformer("EPSG:2154", "EPSG:4326").transform(x, y)
    assert np.allclose(back_lon, lon, atol=1e-9) and np.allclose(back_lat, lat, atol=1e-9)
    assert transformer("EPSG:4326", "EPSG:2154") is transformer("EPSG:4326", "EPSG:2154")
