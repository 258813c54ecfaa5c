"""Partitions of a run: one per département, with the services its families may use.

A partition holds the département's communes and the services a family there may use,
including services across the border:

- ``proxy`` engine: the services within ``B`` (:func:`buffer_km`: the longest straight
  line a proxy trip covers within the largest threshold) of one of the département's
  communes, and, per type and land mass, every service of that land mass within the radius
  beyond which no service can beat a commune's nearest in straight line (that nearest's
  drive minutes + the largest difference of access times, :func:`_exact_radius_m`). So the
  partition's minutes are exactly those of a run on all services, while a change to a far
  service leaves the partition untouched. With ferry links, every service is kept.
- ``matrice`` engine (imported time table): all services and the whole table, like road.
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
from coverage.routing.landmass import LAND_MASS_COLUMN, FerryNetwork
from coverage.routing.proxy import drive_minutes, straight_km_within
from coverage.settings import Settings, metric_crs_for

__all__ = [
    "COMMUNE_TASK_COLUMNS",
    "SERVICE_TASK_COLUMNS",
    "EngineSpec",
    "PartitionOutput",
    "PartitionTask",
    "ServicePoints",
    "buffer_km",
    "land_masses_of",
    "partition_service_rows",
    "partition_services",
    "task_frame",
]

#: Commune columns sent to the workers (engines use ``lon``/``lat``, EPSG:4326).
COMMUNE_TASK_COLUMNS = ("code_insee", "nom", "code_dep", "population", "densite", "rural",
                        "lon", "lat", "masse_terrestre")
#: Service columns sent to the workers (``densite``, ``masse_terrestre``: proxy runs).
SERVICE_TASK_COLUMNS = ("service_id", "type_service", "code_insee", "code_dep", "lon", "lat",
                        "densite", "masse_terrestre")


@dataclass(frozen=True)
class EngineSpec:
    """How a worker builds the run's engine (picklable, cheap to send).

    Attributes
    ----------
    name
        ``road``, ``proxy`` or ``matrice``.
    roads
        Road file (road engine), as a string path.
    cache_dir
        Network cache folder of :func:`coverage.routing.network.load_network`.
    settings
        Run settings.
    times
        Time table (matrice engine), as a string path; the whole table serves every
        partition, like the road network.
    times_unit
        Unit of its times (``min``, ``s``, ``h``) or None (from its columns).
    times_sha256
        SHA-256 of the time table (in the partitions' cache keys).
    ferries
        Ferry links of the proxy engine with their ports placed, or None.
    """

    name: str
    roads: str | None
    cache_dir: str | None
    settings: Settings
    times: str | None = None
    times_unit: str | None = None
    times_sha256: str | None = None
    ferries: FerryNetwork | None = None

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
        return json.dumps([self.name, self.roads, self.cache_dir, self.settings.as_dict(),
                           self.times, self.times_unit,
                           self.ferries.as_dict() if self.ferries else []],
                          sort_keys=True, default=str)


@dataclass(frozen=True)
class PartitionTask:
    """One département's work: its communes, the services it may use, the engine.

    ``context`` is the partition's key without its services
    (:func:`coverage.batch.cache.partition_key` with an empty services digest) and
    ``service_hashes`` the row hashes of its services: a cached partition of the same
    context is updated incrementally (:mod:`coverage.scenario`) instead of recomputed.
    """

    dept: str
    key: str
    communes: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    types: tuple[str, ...]
    engine: EngineSpec
    context: str = ""
    service_hashes: np.ndarray | None = None


@dataclass(frozen=True)
class PartitionOutput:
    """What a worker sends back: the partition's ``acces_communes`` rows and metadata."""

    dept: str
    key: str
    access: pd.DataFrame
    seconds: float
    engine_parameters: dict[str, Any]


def _max_speed_kmh(settings: Settings) -> float:
    """Return the fastest default road speed, km/h."""
    return float(max(settings.default_speeds_kmh.values()))


def buffer_km(engine: str, settings: Settings) -> float:
    """Return the cross-border search distance of a partition, km.

    Road: the largest threshold (minutes) × the fastest default road speed. Proxy: the
    longest straight line a proxy trip covers within the largest threshold (both ends at the
    smallest access time, :func:`coverage.routing.proxy.straight_km_within`).

    Parameters
    ----------
    engine
        ``proxy`` or ``road``.
    settings
        ``thresholds_min`` (minutes) and the speeds (km/h).
    """
    if engine == "proxy":
        tau_min = float(min(settings.proxy_access_min_by_density.values()))
        return float(straight_km_within(settings.max_threshold_min - 2 * tau_min, settings))
    return settings.max_threshold_min / 60.0 * _max_speed_kmh(settings)


def _exact_radius_m(c_xy: np.ndarray, s_tree: cKDTree, settings: Settings) -> float:
    """Return the straight radius (m) beyond which no service beats a commune's nearest.

    For a commune whose nearest service in straight line is ``d1`` away, a service farther
    than ``straight_km_within(drive(d1) + τmax − τmin)`` takes more drive minutes than the
    nearest plus the largest difference of access times, so it is never faster. The
    largest such radius over the communes is returned.
    """
    d1_km = s_tree.query(c_xy, k=1)[0] / 1000.0
    access = settings.proxy_access_min_by_density.values()
    spread = float(max(access) - min(access))
    drive = drive_minutes(d1_km.max() * settings.proxy_detour_factor, settings)
    return float(straight_km_within(drive + spread, settings)) * 1000.0


def land_masses_of(frame: pd.DataFrame) -> np.ndarray:
    """Return the land mass of each row of ``frame`` (``''`` when unknown), as objects."""
    return _masses(frame)


def _masses(frame: pd.DataFrame) -> np.ndarray:
    """Return the land mass of each row ('' when unknown: it matches every land mass)."""
    if LAND_MASS_COLUMN not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[LAND_MASS_COLUMN].fillna("").astype(str).to_numpy(dtype=object)


class ServicePoints:
    """The run's services prepared once for every partition's selection.

    Their types, land masses and projected points per metric CRS, and a KD-tree per CRS,
    type and land mass, made on first use and shared by the partitions
    (:func:`partition_services`): the selection is the same as without them.

    Parameters
    ----------
    services
        All services of the run's types (``lon``, ``lat`` EPSG:4326, ``type_service``;
        ``masse_terrestre`` when known).
    """

    def __init__(self, services: pd.DataFrame) -> None:
        """Keep the services and their types and land masses."""
        self.services = services
        self.types = services["type_service"].astype(str).to_numpy()
        self.masses = _masses(services)
        self._lon = services["lon"].to_numpy(float)
        self._lat = services["lat"].to_numpy(float)
        self._xy: dict[str, np.ndarray] = {}
        self._trees: dict[tuple[str, str, str], cKDTree] = {}

    def xy(self, crs: str) -> np.ndarray:
        """Return the services' points in ``crs`` (metres), ``(n, 2)``."""
        if crs not in self._xy:
            self._xy[crs] = lonlat_to_xy(self._lon, self._lat, crs)
        return self._xy[crs]

    def tree(self, crs: str, stype: str, mass: str, sel: np.ndarray) -> cKDTree:
        """Return the KD-tree of the selected services (``sel``: of ``stype`` on ``mass``)."""
        key = (crs, stype, mass)
        if key not in self._trees:
            self._trees[key] = cKDTree(self.xy(crs)[sel])
        return self._trees[key]


def partition_services(
    communes: pd.DataFrame, services: pd.DataFrame, dept: str, engine: str,
    settings: Settings, *, ferries: FerryNetwork | None = None,
    points: ServicePoints | None = None,
) -> pd.DataFrame:
    """Select the services a partition needs (see the module docstring for the rule).

    Parameters
    ----------
    communes
        The département's communes (``lon``, ``lat`` in EPSG:4326; ``masse_terrestre``
        when known).
    services
        All services of the run's types (``lon``, ``lat``, ``type_service``;
        ``masse_terrestre`` when known).
    dept
        Département code (chooses the metric CRS, :func:`coverage.settings.metric_crs_for`).
    engine
        ``road`` or ``proxy``.
    settings
        Thresholds and speeds.
    ferries
        Ferry links of the proxy: with any link, every service is kept.
    points
        ``services`` prepared once for all partitions (:class:`ServicePoints`), or None.

    Returns
    -------
    pandas.DataFrame
        The selected rows of ``services``, in their original order.
    """
    if (engine != "proxy" or services.empty or communes.empty
            or (ferries is not None and ferries.links)):
        return services
    if points is None or points.services is not services:
        points = ServicePoints(services)
    keep = partition_service_rows(communes["lon"].to_numpy(float),
                                  communes["lat"].to_numpy(float), _masses(communes), dept,
                                  engine, settings, points)
    return services[keep]


def partition_service_rows(lon: np.ndarray, lat: np.ndarray, masses: np.ndarray, dept: str,
                           engine: str, settings: Settings, points: ServicePoints
                           ) -> np.ndarray:
    """Return which of ``points.services`` a proxy partition needs (boolean mask).

    The rule of :func:`partition_services` (which checks the engine and the ferry links
    first), on arrays: the département's communes at ``lon``, ``lat`` (EPSG:4326 degrees)
    on their land masses ``masses`` (``''``: unknown).
    """
    crs = metric_crs_for(dept)
    c_xy = lonlat_to_xy(lon, lat, crs)
    s_xy = points.xy(crs)
    d_to_dept, _ = cKDTree(c_xy).query(s_xy, k=1)
    base_m = buffer_km(engine, settings) * 1000.0
    keep = d_to_dept <= base_m * (1 + 1e-9) + 1.0
    types, s_mass = points.types, points.masses
    c_mass = masses
    masses_here = np.unique(c_mass)
    for t in np.unique(types):
        for mass in masses_here:
            c_sel = c_mass == mass
            sel = (types == t) & ((s_mass == mass) | (s_mass == "") | (mass == ""))
            if not sel.any():
                continue
            tree = points.tree(crs, t, mass, sel)
            radius = _exact_radius_m(c_xy[c_sel], tree, settings) * (1 + 1e-9) + 1.0
            # one land mass: the distances to the département's communes, found above
            d_mass = (d_to_dept if len(masses_here) == 1
                      else cKDTree(c_xy[c_sel]).query(s_xy, k=1)[0])
            keep |= sel & (d_mass <= radius)
    return keep


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
