"""Bands of the thresholds, by service type or by service, for either engine.

The thresholds ``t1 < t2 < …`` (minutes) give the bands ``0–t1, t1–t2, …``
(:func:`bands_from_thresholds`). :func:`isochrones_types` draws the bands of the nearest
service of each type (merged over the services of that type), :func:`isochrones_services`
the bands of each service; the road engine's are drawn by :mod:`coverage.isochrones.road`,
the proxy engine's by :mod:`coverage.isochrones.proxy`, and both are projected to
EPSG:4326 here.

Outputs are EPSG:4326 GeoDataFrames with the columns ``type_service`` (or ``service_id,
type_service``), ``bande_min``, ``bande_max`` (minutes), ``moteur`` (``road``/``proxy``),
``geometry`` (MultiPolygon). Empty bands are left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage._validate import require_columns
from coverage.errors import InputError, Problem
from coverage.isochrones.proxy import (
    PROXY_CELL_M,
    _proxy_service_geometries,
    _proxy_type_geometries,
)
from coverage.isochrones.raster import _as_multipolygon, _to_wgs84
from coverage.isochrones.road import (
    _SOURCE_CHUNK,
    SERVICE_RASTER,
    RoadRaster,
    _road_service_geometries,
    _road_type_geometries,
)
from coverage.routing.base import Engine
from coverage.settings import CRS_INPUT_OUTPUT, Settings

__all__ = [
    "SERVICES_COLUMNS",
    "TYPES_COLUMNS",
    "bands_from_thresholds",
    "isochrones_services",
    "isochrones_types",
]

log = logging.getLogger(__name__)

#: Columns of the bands by type (geometry apart).
TYPES_COLUMNS = ("type_service", "bande_min", "bande_max", "moteur")
#: Columns of the bands by service (geometry apart).
SERVICES_COLUMNS = ("service_id", "type_service", "bande_min", "bande_max", "moteur")

#: Metric geometries drawn for one CRS: ``(crs, ids, one geometry per band for each id)``.
_Drawn = tuple[str, list[str], list[list[shapely.Geometry]]]


def bands_from_thresholds(thresholds_min: Sequence[float]) -> list[tuple[float, float]]:
    """Return the bands ``[(0, t1), (t1, t2), …]`` of the thresholds, minutes.

    Parameters
    ----------
    thresholds_min
        Positive thresholds, minutes, in any order (duplicates are dropped).

    Returns
    -------
    list of (float, float)
        ``(bande_min, bande_max)`` pairs, minutes, increasing and contiguous from 0.

    Raises
    ------
    InputError
        A threshold is not a positive finite number, or there is none.
    """
    values = sorted({float(t) for t in thresholds_min})
    if not values or not all(math.isfinite(t) and t > 0 for t in values):
        raise InputError(Problem("settings", None, "thresholds_min",
                                 "une ou plusieurs durées en minutes, finies et positives",
                                 str(list(thresholds_min))))
    lows = [0.0, *values[:-1]]
    return list(zip(lows, values, strict=True))


def _types_of(services: pd.DataFrame, settings: Settings) -> list[str]:
    """Return the types of ``settings.service_types`` that have a service, in that order."""
    present = set(services["type_service"].astype(str))
    return [t for t in settings.service_types if t in present]


def _merge_parts(parts: list[shapely.Geometry]) -> shapely.Geometry:
    """Merge the bands of disjoint territories into one MultiPolygon."""
    if len(parts) == 1:
        return parts[0]
    return _as_multipolygon(shapely.union_all(parts))


def _frame(rows: list[dict[str, Any]], columns: Sequence[str],
           geoms: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    """Build the EPSG:4326 GeoDataFrame of band rows (empty geometries left out)."""
    keep = [i for i, g in enumerate(geoms) if not g.is_empty]
    df = pd.DataFrame([rows[i] for i in keep], columns=list(columns))
    for col in ("bande_min", "bande_max"):
        df[col] = df[col].astype("float64")
    for col in columns:
        if col not in ("bande_min", "bande_max"):
            df[col] = df[col].astype(object)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([geoms[i] for i in keep],
                                                       crs=CRS_INPUT_OUTPUT))


def isochrones_types(
    engine: Engine, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
    settings: Settings = Settings(), node_minutes: Mapping[str, np.ndarray] | None = None,
    raster: RoadRaster = RoadRaster(), proxy_cell_m: float = PROXY_CELL_M,
    crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Draw the bands of the nearest service of each type, merged over that type's services.

    Parameters
    ----------
    engine
        The run's engine: ``RoadEngine`` (``name == "road"``, attribute ``network``,
        method ``node_minutes``) or ``ProxyEngine`` (``name == "proxy"``).
    communes
        Communes of the territory, EPSG:4326 polygons. The proxy engine needs ``densite``
        (and ``code_dep`` to pick each territory's metric CRS) and clips to their union.
    services
        Service points, EPSG:4326, with ``service_id``, ``type_service`` (and ``lon``,
        ``lat`` for the road engine).
    settings
        ``thresholds_min`` give the bands (0–t1, t1–t2, …), ``service_types`` the types,
        ``access_speed_kmh`` the road engine's off-road speed.
    node_minutes
        Road engine only: minutes from every node to the nearest service, by type, when
        the caller already has them (one multi-source pass per type, direction
        ``to_service``); otherwise ``engine.node_minutes`` is called once per type.
    raster
        Road engine: width of land around reached roads, raster cell (metres) and holes
        filled (m²).
    proxy_cell_m
        Proxy engine: grid cell, metres.
    crs
        Proxy engine: one metric CRS for everything (default: per territory,
        :func:`coverage.settings.metric_crs_for`). The road engine works in the
        network's CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``type_service, bande_min, bande_max, moteur, geometry``
        (MultiPolygon); one row per type × non-empty band.
    """
    require_columns(services, ["service_id", "type_service"], file="services")
    bands = bands_from_thresholds(settings.thresholds_min)
    types = _types_of(services, settings)
    if engine.name == "road":
        drawn = _road_type_geometries(
            engine, services, types, bands, access_speed_kmh=settings.access_speed_kmh,
            node_minutes=node_minutes, raster=raster)
    else:
        drawn = _proxy_type_geometries(communes, services, types, bands, settings=settings,
                                       cell_m=proxy_cell_m, crs=crs)
    parts: dict[tuple[str, int], list[shapely.Geometry]] = {}
    for metric_crs, by_type in drawn:
        for t, geoms in by_type.items():
            for k, g in enumerate(_to_wgs84(geoms, metric_crs)):
                parts.setdefault((t, k), []).append(g)
    rows: list[dict[str, Any]] = []
    out: list[shapely.Geometry] = []
    for t in types:
        for k, (low, high) in enumerate(bands):
            if (t, k) in parts:
                rows.append({"type_service": t, "bande_min": low, "bande_max": high,
                             "moteur": engine.name})
                out.append(_merge_parts(parts[(t, k)]))
    log.info("isochrones by type: %d bands for %d types (%s engine)", len(rows),
             len(types), engine.name)
    return _frame(rows, TYPES_COLUMNS, out)


def _projected(drawn: Iterable[_Drawn]
               ) -> Iterator[tuple[list[str], list[list[shapely.Geometry]]]]:
    """Project the metric geometries of each chunk to EPSG:4326, one list per service."""
    for metric_crs, sids, metric in drawn:
        flat = iter(_to_wgs84([g for gs in metric for g in gs], metric_crs))
        yield sids, [[next(flat) for _ in gs] for gs in metric]


def isochrones_services(  # noqa: PLR0913 - the options of one call, keywords only
    engine: Engine, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
    settings: Settings = Settings(), raster: RoadRaster = SERVICE_RASTER,
    proxy_cell_m: float = PROXY_CELL_M, crs: str | None = None,
    chunk: int = _SOURCE_CHUNK, workers: int = 1,
) -> gpd.GeoDataFrame:
    """Draw the bands of each service from a search bounded at the largest threshold.

    Parameters
    ----------
    engine, communes, services, settings, proxy_cell_m, crs
        As in :func:`isochrones_types`. The road engine's
        ``node_minutes_per_source_sparse(services, cutoff_min)`` gives each service's
        reached nodes and minutes (direction ``to_service``, connector leg included), in
        chunks of services.
    raster
        Road engine: width of land around reached roads, raster cell (metres) and holes
        filled (m²); by default :data:`~coverage.isochrones.road.SERVICE_RASTER`, coarser
        than the bands by type (there can be hundreds of services).
    chunk
        Services per bounded call (the progress bar's step; memory follows the nodes
        each service reaches).
    workers
        Road engine: processes drawing the chunks (forked, reading the engine from this
        process's memory; 1: this process). The result is the same, row for row and
        vertex for vertex, whatever the number; more than one is used only where forking
        is safe (POSIX ``fork``, a single-threaded process, not a daemon).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``service_id, type_service, bande_min, bande_max, moteur,
        geometry`` (MultiPolygon); one row per service × non-empty band. Services of a type
        not in ``settings.service_types`` are left out.
    """
    require_columns(services, ["service_id", "type_service"], file="services")
    bands = bands_from_thresholds(settings.thresholds_min)
    wanted = services[services["type_service"].astype(str).isin(settings.service_types)]
    projected: Iterable[tuple[list[str], list[list[shapely.Geometry]]]]
    if engine.name == "road":
        projected = _road_service_geometries(
            engine, wanted, bands, raster=raster, chunk=chunk, workers=workers,
            access_speed_kmh=settings.access_speed_kmh)
    else:
        projected = _projected(_proxy_service_geometries(
            communes, wanted, bands, settings=settings, cell_m=proxy_cell_m, crs=crs))
    type_of = dict(zip(wanted["service_id"].astype(str), wanted["type_service"].astype(str),
                       strict=True))
    rows: list[dict[str, Any]] = []
    out: list[shapely.Geometry] = []
    for sids, geoms in projected:
        for sid, per_band in zip(sids, geoms, strict=True):
            for (low, high), geom in zip(bands, per_band, strict=True):
                rows.append({"service_id": sid, "type_service": type_of[sid],
                             "bande_min": low, "bande_max": high, "moteur": engine.name})
                out.append(geom)
    result = _frame(rows, SERVICES_COLUMNS, out)
    log.info("isochrones per service: %d bands for %d services (%s engine)", len(result),
             len(wanted), engine.name)
    return result
