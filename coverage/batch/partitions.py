"""Partitions of a run: one per département, with the services its families may use.

A partition holds the département's communes and the services a family there may use,
including services across the border:

- ``proxy`` engine: the services within ``B = max threshold / 60 × fastest proxy speed``
  (km, straight line) of one of the département's communes, and, per type, within the
  distance of the farthest commune's nearest service when that is larger. The proxy's
  nearest service in time is its nearest in straight line, so the partition's minutes are
  exactly those of a run on all services, while a change to a far service leaves the
  partition untouched.
- ``road`` engine: the whole road network of the file given (one network per run, loaded
  once per worker process and cached on disk by :func:`coverage.routing.network.load_network`)
  and all services. Clipping a national network to each département's box plus
  ``B`` (at the fastest road speed) is not done yet: give one network per run.

Distances are measured in the département's metric CRS
(:func:`coverage.settings.metric_crs_for`: EPSG:2154 in metropolitan France, a local UTM
zone per DROM); ``lon``/``lat`` columns are EPSG:4326 degrees.

This module also holds what travels between the driver and the workers: the engine
specification (:class:`EngineSpec`), one partition's work (:class:`PartitionTask`) and its
result (:class:`PartitionOutput`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from coverage.geo import lonlat_to_xy
from coverage.settings import Settings, metric_crs_for

__all__ = [
    "COMMUNE_TASK_COLUMNS",
    "SERVICE_TASK_COLUMNS",
    "EngineSpec",
    "PartitionOutput",
    "PartitionTask",
    "buffer_km",
    "partition_services",
    "task_frame",
]

#: Commune columns sent to the workers (engines use ``lon``/``lat``, EPSG:4326).
COMMUNE_TASK_COLUMNS = ("code_insee", "nom", "code_dep", "population", "densite", "rural",
                        "lon", "lat")
#: Service columns sent to the workers.
SERVICE_TASK_COLUMNS = ("service_id", "type_service", "code_insee", "code_dep", "lon", "lat")


@dataclass(frozen=True)
class EngineSpec:
    """How a worker builds the run's engine (picklable, cheap to send).

    Attributes
    ----------
    name
        ``road`` or ``proxy``.
    roads
        Road file (road engine), as a string path.
    cache_dir
        Network cache folder of :func:`coverage.routing.network.load_network`.
    settings
        Run settings.
    """

    name: str
    roads: str | None
    cache_dir: str | None
    settings: Settings

    def __post_init__(self) -> None:
        """Give the workers plain dicts instead of the settings' read-only mappings.

        Settings hold read-only mappings (MappingProxyType), which do not pickle: the
        workers get plain dicts with the same values.
        """
        plain: dict[str, Any] = {f.name: dict(getattr(self.settings, f.name))
                                 for f in fields(Settings)
                                 if isinstance(getattr(self.settings, f.name), Mapping)}
        object.__setattr__(self, "settings", replace(self.settings, **plain))

    def memo_key(self) -> str:
        """Return the key of the per-process engine memo."""
        return json.dumps([self.name, self.roads, self.cache_dir, self.settings.as_dict()],
                          sort_keys=True, default=str)


@dataclass(frozen=True)
class PartitionTask:
    """One département's work: its communes, the services it may use, the engine."""

    dept: str
    key: str
    communes: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    types: tuple[str, ...]
    engine: EngineSpec


@dataclass(frozen=True)
class PartitionOutput:
    """What a worker sends back: the partition's ``acces_communes`` rows and metadata."""

    dept: str
    key: str
    access: pd.DataFrame
    seconds: float
    engine_parameters: dict[str, Any]


def _max_speed_kmh(engine: str, settings: Settings) -> float:
    """Return the fastest speed of an engine, km/h."""
    if engine == "proxy":
        return float(max(settings.proxy_speed_kmh_by_density.values()))
    return float(max(settings.default_speeds_kmh.values()))


def buffer_km(engine: str, settings: Settings) -> float:
    """Return the cross-border search distance of a partition, km.

    It is the largest threshold (minutes) × the fastest speed.

    Parameters
    ----------
    engine
        ``proxy`` (fastest proxy speed) or ``road`` (fastest default road speed).
    settings
        ``thresholds_min`` (minutes) and the speeds (km/h).
    """
    return settings.max_threshold_min / 60.0 * _max_speed_kmh(engine, settings)


def partition_services(
    communes: pd.DataFrame, services: pd.DataFrame, dept: str, engine: str,
    settings: Settings,
) -> pd.DataFrame:
    """Select the services a partition needs (see the module docstring for the rule).

    Parameters
    ----------
    communes
        The département's communes (``lon``, ``lat`` in EPSG:4326).
    services
        All services of the run's types (``lon``, ``lat``, ``type_service``).
    dept
        Département code (chooses the metric CRS, :func:`coverage.settings.metric_crs_for`).
    engine
        ``road`` or ``proxy``.
    settings
        Thresholds and speeds.

    Returns
    -------
    pandas.DataFrame
        The selected rows of ``services``, in their original order.
    """
    if engine != "proxy" or services.empty or communes.empty:
        return services
    crs = metric_crs_for(dept)
    c_xy = lonlat_to_xy(communes["lon"].to_numpy(float), communes["lat"].to_numpy(float), crs)
    s_xy = lonlat_to_xy(services["lon"].to_numpy(float), services["lat"].to_numpy(float), crs)
    tree = cKDTree(c_xy)
    d_to_dept, _ = tree.query(s_xy, k=1)
    base_m = buffer_km(engine, settings) * 1000.0
    keep = np.zeros(len(services), dtype=bool)
    types = services["type_service"].astype(str).to_numpy()
    for t in np.unique(types):
        sel = types == t
        far_m = float(cKDTree(s_xy[sel]).query(c_xy, k=1)[0].max())
        radius = max(base_m, far_m) * (1 + 1e-9) + 1.0
        keep |= sel & (d_to_dept <= radius)
    return services[keep]


def task_frame(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Return a light copy for the workers: attribute columns only.

    Engines use ``lon``/``lat`` (EPSG:4326); geometries are not sent.

    Parameters
    ----------
    frame
        Communes or services of the run.
    columns
        The columns to keep, when present (:data:`COMMUNE_TASK_COLUMNS`,
        :data:`SERVICE_TASK_COLUMNS`).
    """
    cols = [c for c in columns if c in frame.columns]
    return pd.DataFrame(frame[cols]).reset_index(drop=True)
