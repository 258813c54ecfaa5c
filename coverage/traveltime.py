"""Travel times: snap places to the network, nearest service per type, bounded matrix.

TO BE COMPLETED by the engine work (issue 3). :class:`Engine` is the one interface that the
batch, the isochrones, the exports and the app use, whichever engine ran.
"""

from __future__ import annotations

from typing import Any, Protocol

import geopandas as gpd
import pandas as pd


class Engine(Protocol):
    """A travel-time engine: ``road`` (OSM graph) or ``proxy`` (straight line).

    Inputs are GeoDataFrames in EPSG:4326. ``communes`` has at least ``code_insee``,
    ``code_dep``, ``densite``, ``lon``, ``lat`` (the representative point); ``services`` has
    ``service_id``, ``type_service``, ``lon``, ``lat``.
    """

    name: str

    def parameters(self) -> dict[str, Any]:
        """JSON-ready parameters of the engine, recorded in every manifest."""
        ...

    def nearest(
        self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame,
        *, service_types: tuple[str, ...],
    ) -> pd.DataFrame:
        """Nearest service of each type for every commune.

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
        """Bounded service × commune matrix as a long table.

        Returns
        -------
        pandas.DataFrame
            ``service_id``, ``code_insee``, ``minutes`` (float32), only pairs within
            ``cutoff_min`` minutes.
        """
        ...
