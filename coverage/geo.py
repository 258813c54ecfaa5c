"""Coordinate transformations shared by the stages (one cached pyproj transformer per pair)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import Transformer

from coverage.settings import CRS_INPUT_OUTPUT


@lru_cache(maxsize=32)
def transformer(source_crs: str, target_crs: str) -> Transformer:
    """Cached ``pyproj.Transformer`` from ``source_crs`` to ``target_crs`` (x = lon/easting)."""
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
    """Like :func:`project_lonlat`, as an ``(n, 2)`` array of x, y (for KD-trees)."""
    x, y = project_lonlat(lon, lat, crs)
    return np.column_stack([x, y])
