"""Coordinates shared by the stages: projections, great-circle lengths, metric CRS choice.

* :func:`project_lonlat` / :func:`lonlat_to_xy`: EPSG:4326 degrees → a metric CRS (one
  cached ``pyproj`` transformer per pair, ``always_xy``: x = longitude / easting);
* :func:`haversine_m`: great-circle length in metres on the mean Earth radius
  (6,371,009 m, the value osmnx uses);
* :func:`metric_crs_for_lonlat`: the metric CRS of a place — Lambert-93 (EPSG:2154) in
  metropolitan France, the DROM's CRS in a DROM, else the local UTM zone (WGS 84).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from pyproj import Transformer

from coverage.settings import CRS_DROM, CRS_INPUT_OUTPUT, CRS_METRO, METRO_BBOX

__all__ = [
    "DROM_BBOX",
    "EARTH_RADIUS_M",
    "haversine_m",
    "lonlat_to_xy",
    "metric_crs_for_lonlat",
    "project_lonlat",
    "transformer",
]

#: Mean Earth radius, metres (the value osmnx uses for great-circle lengths).
EARTH_RADIUS_M = 6_371_009.0

#: Approximate boxes (lon_min, lat_min, lon_max, lat_max) of the DROM, to pick their CRS.
DROM_BBOX: Mapping[str, tuple[float, float, float, float]] = {
    "971": (-61.9, 15.8, -60.9, 16.6),
    "972": (-61.3, 14.3, -60.7, 14.95),
    "973": (-54.7, 2.0, -51.5, 6.0),
    "974": (55.1, -21.5, 56.0, -20.8),
    "976": (44.9, -13.1, 45.4, -12.5),
}


@lru_cache(maxsize=32)
def transformer(source_crs: str, target_crs: str) -> Transformer:
    """Return the cached ``pyproj.Transformer`` from ``source_crs`` to ``target_crs``.

    Axis order is always x = longitude / easting, y = latitude / northing.
    """
    return Transformer.from_crs(source_crs, target_crs, always_xy=True)


def project_lonlat(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Project EPSG:4326 degrees to ``crs``.

    Parameters
    ----------
    lon, lat
        Longitudes and latitudes, degrees (EPSG:4326).
    crs
        Target CRS, usually metric (EPSG:2154 in metropolitan France, a UTM CRS in a DROM).

    Returns
    -------
    tuple of numpy.ndarray
        x and y in ``crs`` units (metres for a metric CRS), float64.
    """
    x, y = transformer(CRS_INPUT_OUTPUT, crs).transform(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def lonlat_to_xy(lon: np.ndarray, lat: np.ndarray, crs: str) -> np.ndarray:
    """Project EPSG:4326 degrees to ``crs`` as an ``(n, 2)`` array of x, y (for KD-trees).

    The same values as :func:`project_lonlat`, in ``crs`` units (metres for a metric CRS).
    """
    x, y = project_lonlat(lon, lat, crs)
    return np.column_stack([x, y])


def haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray,
                lat2: np.ndarray) -> np.ndarray:
    """Return the great-circle distance between EPSG:4326 points, metres.

    Parameters
    ----------
    lon1, lat1, lon2, lat2
        Degrees (EPSG:4326); arrays of one shape (or broadcastable).

    Returns
    -------
    numpy.ndarray
        Metres on the mean Earth radius :data:`EARTH_RADIUS_M`, float64.
    """
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    out: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def metric_crs_for_lonlat(lon: float, lat: float) -> str:
    """Return the metric CRS of a place.

    Lambert-93 (EPSG:2154) in metropolitan France (its box, border strips and Andorra
    included), the DROM's CRS in a DROM, else the local UTM zone (WGS 84).

    Parameters
    ----------
    lon, lat
        EPSG:4326 degrees (e.g. the centre of a network's nodes).

    Returns
    -------
    str
        ``"EPSG:…"``.
    """
    lo0, la0, lo1, la1 = METRO_BBOX
    if lo0 <= lon <= lo1 and la0 <= lat <= la1:
        return CRS_METRO
    for dep, (a, b, c, d) in DROM_BBOX.items():
        if a <= lon <= c and b <= lat <= d:
            return CRS_DROM[dep]
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"
