"""The engine contract: what every travel-time engine takes and returns.

:class:`Engine` is the one interface that the batch, the isochrones, the exports and the app
use, whichever engine ran (:class:`coverage.routing.road.RoadEngine` on the OSM graph,
:class:`coverage.routing.proxy.ProxyEngine` in straight line). Inputs are EPSG:4326 points
(``lon``, ``lat`` in degrees); outputs are minutes (float, **NaN when unreachable**, never a
magic number), distances in km, and the engine's name in ``moteur`` on every row.

This module also holds the small helpers both engines share: the empty tables of the
contract and the reading of ``lon``/``lat`` columns.
"""

from __future__ import annotations

from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.errors import InputError, Problem

__all__ = [
    "MATRIX_COLUMNS",
    "NEAREST_COLUMNS",
    "Engine",
    "empty_matrix",
    "empty_nearest",
    "lonlat",
]

#: Columns of the table returned by ``nearest``.
NEAREST_COLUMNS = ("code_insee", "type_service", "minutes", "service_id", "distance_km",
                   "moteur", "acces_hors_reseau")
#: Columns of the table returned by ``matrix``.
MATRIX_COLUMNS = ("service_id", "code_insee", "minutes")


class Engine(Protocol):
    """A travel-time engine: ``road`` (OSM graph) or ``proxy`` (straight line).

    Inputs are GeoDataFrames in EPSG:4326. ``communes`` has at least ``code_insee``,
    ``code_dep``, ``densite``, ``lon``, ``lat`` (the representative point); ``services`` has
    ``service_id``, ``type_service``, ``lon``, ``lat``.
    """

    name: str

    def parameters(self) -> dict[str, Any]:
        """Return the JSON-ready parameters of the engine, recorded in every manifest."""
        ...

    def nearest(
        self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame,
        *, service_types: tuple[str, ...],
    ) -> pd.DataFrame:
        """Return the nearest service of each type for every commune.

        Returns
        -------
        pandas.DataFrame
            One row per commune × type: ``code_insee``, ``type_service``, ``minutes``
            (float, NaN when unreachable or off-network), ``service_id`` (None when
            unreachable), ``distance_km`` (float), ``moteur`` (``road``/``proxy``),
            ``acces_hors_reseau`` (bool).
        """
        ...

    def matrix(
        self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *, cutoff_min: float,
    ) -> pd.DataFrame:
        """Return the bounded service × commune matrix as a long table.

        Returns
        -------
        pandas.DataFrame
            ``service_id``, ``code_insee``, ``minutes`` (float32), only pairs within
            ``cutoff_min`` minutes.
        """
        ...


def lonlat(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the ``lon`` and ``lat`` columns of ``frame`` as float64 degrees (EPSG:4326).

    Parameters
    ----------
    frame
        Rows with ``lon`` and ``lat`` columns.
    name
        Name of the table in error messages (``communes``, ``services``).

    Returns
    -------
    tuple of numpy.ndarray
        Longitudes and latitudes, degrees, float64.

    Raises
    ------
    InputError
        A coordinate is missing or not numeric (one problem per row, up to 20).
    """
    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype=np.float64)
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        rows = np.flatnonzero(bad)[:20]
        raise InputError([Problem(name, int(r) + 1, "lon/lat", "numeric WGS 84 coordinates",
                                  f"{frame['lon'].iloc[r]}, {frame['lat'].iloc[r]}")
                          for r in rows])
    return lon, lat


def empty_nearest() -> pd.DataFrame:
    """Return an empty ``nearest`` table with the contract's columns and dtypes."""
    return pd.DataFrame({"code_insee": pd.Series([], dtype=object),
                         "type_service": pd.Series([], dtype=object),
                         "minutes": pd.Series([], dtype=np.float64),
                         "service_id": pd.Series([], dtype=object),
                         "distance_km": pd.Series([], dtype=np.float64),
                         "moteur": pd.Series([], dtype=object),
                         "acces_hors_reseau": pd.Series([], dtype=bool)})


def empty_matrix() -> pd.DataFrame:
    """Return an empty ``matrix`` table with the contract's columns and dtypes."""
    return pd.DataFrame({"service_id": pd.Series([], dtype=object),
                         "code_insee": pd.Series([], dtype=object),
                         "minutes": pd.Series([], dtype=np.float32)})
