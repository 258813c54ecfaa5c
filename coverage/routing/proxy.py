"""Straight-line proxy engine (``moteur = "proxy"``), used when no road file is given.

Method — a **trip-level** model: the time of a trip depends on both of its ends and on the
straight-line distance between them, measured in the territory's metric CRS
(:func:`coverage.settings.metric_crs_for`: Lambert-93 in metropolitan France, local UTM in
each DROM)::

    road_km   = straight_km × detour                       (proxy_detour_factor)
    drive_min = 60 × (min(road_km, B) / v_near + max(road_km − B, 0) / v_far)
    minutes   = τ[densité origine] + τ[densité destination] + drive_min

``τ[k]`` (``proxy_access_min_by_density``) is the access time of one end of the trip whose
INSEE density level is ``k``: from the commune's centre onto the inter-urban network. The
speed grows with distance: ``v_near`` on the first ``B`` road km
(``proxy_speed_near_kmh``, ``proxy_speed_break_km``), ``v_far`` beyond
(``proxy_speed_far_kmh``). A town is thus never slowed down over a whole trip because it is
a town: only its own access time differs from its neighbours'. :func:`trip_minutes` is the
one implementation; docs/proxy.md says why this model and how it was fitted.

The minutes grow strictly with the distance for fixed ends (both slopes are positive).

**Exact nearest service.** The destination's density matters, so the nearest service in
straight line need not be the nearest in time. But within one destination density class
``k`` the access time ``τ[k]`` is the same for every service, so the nearest service *of
class k* in straight line is the nearest of class ``k`` in time (the drive minutes grow with
the distance). The engine therefore queries one KD-tree per (land mass, type, destination
class), k = 1 nearest in each, and keeps the smallest of these (at most four) times: the
minimum over classes of the minimum within each class is the minimum over all services.
Exact, and checked against brute force in ``tests/test_proxy_model.py``.

**Land masses** (:mod:`coverage.routing.landmass`): communes and services are matched
within their land mass only (column ``masse_terrestre``; when absent it is computed from the
communes' polygons, or else each territory — metropolitan France, each DROM — is one land
mass). A trip to another land mass goes through a user-given ferry link: drive to the port
(origin access time + drive) + crossing minutes + drive from the other port (+ the
destination's access time); ports add no access time of their own (the crossing time
includes boarding). A commune whose land mass has no service of a type (and no link to one)
gets NaN minutes and the reason :data:`coverage.labels.REASON_ISLAND`.

The destination density of a service is its ``densite`` column, else that of its commune
(``code_insee``) in the communes table; a service with no commune code (a candidate site
placed by its point) takes that of the commune nearest its point; a service whose commune is
not in the table (across the border of a regional run) takes the level with the smallest
access time: services sit in towns, and this never makes a far service look slower.
These are **estimates**, labelled ``proxy`` on every row; ``distance_km`` is the estimated
road distance (straight line × detour, crossings excluded).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from coverage._validate import require_columns
from coverage.errors import CoverageError, InputError, Problem
from coverage.geo import lonlat_to_xy, metric_crs_for_lonlat
from coverage.labels import REASON_ISLAND
from coverage.routing.base import empty_matrix, empty_nearest, lonlat
from coverage.routing.landmass import (
    LAND_MASS_COLUMN,
    FerryNetwork,
    RunLandMasses,
    land_masses,
)
from coverage.settings import Settings, metric_crs_for

__all__ = [
    "ACCESS_SOURCE",
    "DETOUR_SOURCE",
    "SPEED_SOURCE",
    "ProxyEngine",
    "access_minutes",
    "best_connected_level",
    "check_proxy_settings",
    "drive_minutes",
    "straight_km_within",
    "trip_minutes",
]

logger = logging.getLogger(__name__)

#: Where the default detour factor comes from (recorded in the manifest).
DETOUR_SOURCE = ("coverage.settings.PROXY_DETOUR_FACTOR : ordre de grandeur habituel de "
                 "l'indice de détour route / vol d'oiseau entre communes françaises (1,2 à "
                 "1,4 relevés en France rurale) ; gardé fixe quand les vitesses sont ajustées, "
                 "car seul le rapport détour ÷ vitesse se déduit des temps")
#: Where the default speeds come from (recorded in the manifest).
SPEED_SOURCE = ("coverage.settings.PROXY_SPEED_NEAR_KMH / PROXY_SPEED_FAR_KMH / "
                "PROXY_SPEED_BREAK_KM : ajustées sur des temps réels en voiture (OSRM) entre "
                "les communes de l'Isère (docs/proxy.md) ; à remplacer par une calibration "
                "locale quand elle existe")
#: Where the default access times come from (recorded in the manifest).
ACCESS_SOURCE = ("coverage.settings.PROXY_ACCESS_MIN_BY_DENSITY : temps d'accès à chaque "
                 "bout du trajet selon le niveau de densité INSEE, ajusté avec les vitesses "
                 "(docs/proxy.md)")

# --- The model -------------------------------------------------------------------------------

def check_proxy_settings(settings: Settings) -> None:
    """Raise when the proxy parameters cannot give minutes (speeds ≤ 0, negative times).

    The far speed must be at least the near speed: the drive minutes are then concave in
    the distance and zero at 0, hence subadditive, so a stop on the way (a port) never
    shortens a trip on one land mass.

    Raises
    ------
    coverage.errors.CoverageError
        The message names the setting and what is expected.
    """
    for name in ("proxy_speed_near_kmh", "proxy_speed_far_kmh", "proxy_detour_factor"):
        value = float(getattr(settings, name))
        if not (np.isfinite(value) and value > 0):
            msg = f"réglage {name}={value!r} : attendu un nombre > 0"
            raise CoverageError(msg)
    if settings.proxy_speed_far_kmh < settings.proxy_speed_near_kmh:
        msg = (f"réglage proxy_speed_far_kmh={settings.proxy_speed_far_kmh!r} : attendu au "
               f"moins proxy_speed_near_kmh ({settings.proxy_speed_near_kmh!r}), la vitesse "
               "croît avec la distance")
        raise CoverageError(msg)
    if not (np.isfinite(settings.proxy_speed_break_km) and settings.proxy_speed_break_km >= 0):
        msg = f"réglage proxy_speed_break_km={settings.proxy_speed_break_km!r} : attendu ≥ 0"
        raise CoverageError(msg)
    bad = {k: v for k, v in settings.proxy_access_min_by_density.items()
           if not (np.isfinite(v) and v >= 0)}
    if bad or not settings.proxy_access_min_by_density:
        msg = (f"réglage proxy_access_min_by_density={bad} : attendu des minutes ≥ 0 par "
               "niveau")
        raise CoverageError(msg)


def access_minutes(densite: np.ndarray | int, settings: Settings = Settings()) -> np.ndarray:
    """Return the access time of trip ends by INSEE density level, minutes.

    Parameters
    ----------
    densite
        INSEE density levels (1 … 4).
    settings
        ``proxy_access_min_by_density`` (minutes).

    Raises
    ------
    ValueError
        A level has no access time in the settings.
    """
    dens = np.asarray(densite)
    table = settings.proxy_access_min_by_density
    levels = np.unique(dens) if dens.size else np.zeros(0)
    unknown = sorted({int(d) for d in levels if int(d) not in table})
    if unknown:
        msg = (f"pas de temps d'accès du proxy pour le(s) niveau(x) de densité {unknown} : "
               f"niveaux connus {sorted(table)}")
        raise ValueError(msg)
    keys = np.array(sorted(table), dtype=np.int64)
    values = np.array([float(table[int(k)]) for k in keys], dtype=np.float64)
    pos = np.searchsorted(keys, dens.astype(np.int64)) if dens.size else dens
    return values[pos] if dens.size else np.zeros(dens.shape)


def drive_minutes(road_km: np.ndarray | float, settings: Settings = Settings()) -> np.ndarray:
    """Return the drive minutes of road distances (the two-speed part of the model).

    Parameters
    ----------
    road_km
        Road distance, km (NaN gives NaN).
    settings
        ``proxy_speed_near_kmh``, ``proxy_speed_far_kmh`` (km/h), ``proxy_speed_break_km``.
    """
    road = np.asarray(road_km, dtype=np.float64)
    brk = settings.proxy_speed_break_km
    near = np.minimum(road, brk) / settings.proxy_speed_near_kmh
    far = np.maximum(road - brk, 0.0) / settings.proxy_speed_far_kmh
    return np.asarray(60.0 * (near + far), dtype=np.float64)


def trip_minutes(straight_km: np.ndarray | float, dens_origin: np.ndarray | int,
                 dens_destination: np.ndarray | int, settings: Settings = Settings()
                 ) -> np.ndarray:
    """Return the proxy minutes of trips (the one implementation of the model).

    ``τ[dens_origin] + τ[dens_destination] + drive_minutes(straight_km × detour)``; see the
    module docstring. Vectorised with numpy broadcasting over the three arrays.

    Parameters
    ----------
    straight_km
        Straight-line distance between the two ends, km, in a metric CRS (NaN gives NaN).
    dens_origin, dens_destination
        INSEE density levels (1 … 4) of the two ends.
    settings
        ``proxy_detour_factor``, ``proxy_access_min_by_density`` (minutes),
        ``proxy_speed_near_kmh``, ``proxy_speed_far_kmh`` (km/h), ``proxy_speed_break_km``.

    Returns
    -------
    numpy.ndarray
        Minutes, float64.

    Raises
    ------
    ValueError
        A density level has no access time in the settings.
    """
    road = np.asarray(straight_km, dtype=np.float64) * settings.proxy_detour_factor
    total = (access_minutes(dens_origin, settings) + access_minutes(dens_destination, settings)
             + drive_minutes(road, settings))
    return np.asarray(total, dtype=np.float64)


def straight_km_within(drive_min: np.ndarray | float, settings: Settings = Settings()
                       ) -> np.ndarray:
    """Return the longest straight-line km whose drive minutes are at most ``drive_min``.

    The inverse of :func:`drive_minutes` (after the detour); negative minutes give 0.

    Parameters
    ----------
    drive_min
        Drive minutes (access times excluded).
    settings
        The proxy parameters.
    """
    t = np.maximum(np.asarray(drive_min, dtype=np.float64), 0.0)
    brk = settings.proxy_speed_break_km
    t_brk = 60.0 * brk / settings.proxy_speed_near_kmh
    road = np.where(t <= t_brk, t / 60.0 * settings.proxy_speed_near_kmh,
                    brk + (t - t_brk) / 60.0 * settings.proxy_speed_far_kmh)
    return np.asarray(road / settings.proxy_detour_factor, dtype=np.float64)


# --- Inputs ----------------------------------------------------------------------------------

def _territory_crs(frame: pd.DataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Metric CRS of each row: from ``code_dep`` when present, else from its location."""
    deps = (frame["code_dep"].to_numpy(dtype=object) if "code_dep" in frame.columns
            else np.full(len(frame), None, dtype=object))
    # each distinct code once (missing values: code -1, unknown)
    codes, uniques = pd.factorize(pd.Index(deps, dtype=object), use_na_sentinel=True)
    good = np.array([isinstance(d, str) and bool(d) for d in uniques], dtype=bool)
    crs = np.array([metric_crs_for(d) if g else None for d, g in zip(uniques, good,
                                                                      strict=True)],
                   dtype=object)
    known = np.zeros(len(frame), dtype=bool)
    known[codes >= 0] = good[codes[codes >= 0]]
    out = np.empty(len(frame), dtype=object)
    out[known] = crs[codes[known]]
    for i in np.flatnonzero(~known):
        out[i] = metric_crs_for_lonlat(float(lon[i]), float(lat[i]))
    return out


def _densities(communes: pd.DataFrame, settings: Settings) -> np.ndarray:
    require_columns(communes, ("densite",), file="communes")
    dens = pd.to_numeric(communes["densite"], errors="coerce").to_numpy(dtype=np.float64)
    known_levels = sorted(settings.proxy_access_min_by_density)
    bad = ~np.isin(dens, np.array(known_levels, dtype=float))
    if bad.any():
        known = ", ".join(str(k) for k in known_levels)
        raise InputError([Problem("communes", int(r) + 1, "densite",
                                  f"un niveau de densité INSEE ({known})",
                                  str(communes["densite"].iloc[r]))
                          for r in np.flatnonzero(bad)[:20]])
    return dens.astype(np.int64)


def _has_polygons(frame: pd.DataFrame) -> bool:
    """Return True when ``frame`` is a GeoDataFrame of (multi)polygons."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        return False
    kinds = shapely.get_type_id(frame.geometry.to_numpy())  # -1: missing
    kinds = kinds[kinds >= 0]
    return bool(kinds.size) and bool(np.isin(kinds, (3, 6)).all())  # Polygon, MultiPolygon


@dataclass(frozen=True)
class _Places:
    """Communes and services ready for the proxy: land mass, CRS, metric points, densities."""

    codes: np.ndarray  # commune codes (object)
    c_dens: np.ndarray  # commune density levels (int)
    c_mass: np.ndarray  # commune land mass (object)
    c_xy: np.ndarray  # commune points in their land mass's CRS (n, 2), metres
    ids: np.ndarray  # service ids (object)
    s_type: np.ndarray  # service types (str)
    s_dens: np.ndarray  # service (destination) density levels (int)
    s_mass: np.ndarray  # service land mass (object)
    s_xy: np.ndarray  # service points in their land mass's CRS (m, 2), metres
    mass_crs: dict[str, str]  # land mass → metric CRS


def _project(lon: np.ndarray, lat: np.ndarray, crs: np.ndarray) -> np.ndarray:
    """Return the points projected each in its own metric CRS, metres."""
    xy = np.full((lon.shape[0], 2), np.nan)
    for c in np.unique(crs.astype(str)) if crs.size else []:
        sel = crs.astype(str) == c
        xy[sel] = lonlat_to_xy(lon[sel], lat[sel], str(c))
    return xy


def _commune_masses(communes: pd.DataFrame, c_crs: np.ndarray, settings: Settings,
                    known: RunLandMasses | None = None) -> np.ndarray:
    """Return each commune's land mass.

    Its column, else the run's record (``known``, when it knows every commune), else from
    its polygons, else its territory's CRS.
    """
    if LAND_MASS_COLUMN in communes.columns and communes[LAND_MASS_COLUMN].notna().all():
        return communes[LAND_MASS_COLUMN].astype(str).to_numpy(dtype=object)
    if known is not None and len(communes):
        recorded = known.land_mass_of(communes["code_insee"].astype(str))
        if all(m is not None for m in recorded):
            return recorded
    if _has_polygons(communes) and "code_dep" in communes.columns:
        return land_masses(communes, settings).to_numpy(dtype=object)
    return np.asarray(c_crs, dtype=object)


def _service_attr(services: pd.DataFrame, column: str, by_code: pd.Series,
                  nearest: np.ndarray) -> np.ndarray:
    """Return a service attribute: its column, else its commune's, else the nearest's."""
    if column in services.columns and services[column].notna().all():  # the batch's case
        return services[column].to_numpy(dtype=object)
    out = pd.Series(nearest, index=services.index, dtype=object)
    if "code_insee" in services.columns:
        mapped = services["code_insee"].astype(str).map(by_code)
        out = mapped.where(mapped.notna(), out)
    if column in services.columns:
        own = services[column]
        out = own.where(own.notna(), out)
    return out.to_numpy(dtype=object)


def best_connected_level(settings: Settings) -> int:
    """Return the density level with the smallest access time (assumed for unknown ends).

    Parameters
    ----------
    settings
        ``proxy_access_min_by_density`` (minutes).
    """
    table = settings.proxy_access_min_by_density
    return int(min(sorted(table), key=lambda k: table[k]))


def _with_known(by_code: pd.Series, mass_by_code: pd.Series, services: pd.DataFrame,
                known: RunLandMasses | None) -> tuple[pd.Series, pd.Series]:
    """Return the density and land mass by commune code, with the run's record added.

    The record (``known``) gives the land mass and density of the services' communes
    outside the communes table, as the run that recorded it found them.
    """
    if known is None or "code_insee" not in services.columns:
        return by_code, mass_by_code
    codes = pd.Series(services["code_insee"].dropna().astype(str).unique())
    codes = codes[~codes.isin(mass_by_code.index)]
    masses = pd.Series(known.land_mass_of(codes), index=codes.to_numpy()).dropna()
    dens = pd.Series(known.densities, dtype=object)
    dens = dens[dens.index.isin(codes) & ~dens.index.isin(by_code.index)]
    return (pd.concat([by_code, dens]) if len(dens) else by_code,
            pd.concat([mass_by_code, masses]) if len(masses) else mass_by_code)


def _places(communes: pd.DataFrame, services: pd.DataFrame, settings: Settings,
            known: RunLandMasses | None = None) -> _Places:
    """Read, place and project the communes and services (see the module docstring)."""
    dens = _densities(communes, settings)
    c_lon, c_lat = lonlat(communes, "communes")
    s_lon, s_lat = lonlat(services, "services")
    c_crs = _territory_crs(communes, c_lon, c_lat)
    s_crs = _territory_crs(services, s_lon, s_lat)
    c_mass = _commune_masses(communes, c_crs, settings, known)
    codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
    mass_crs = {str(m): str(c) for m, c in zip(c_mass, c_crs, strict=True)}
    c_xy = _project(c_lon, c_lat, c_crs)
    s_xy0 = _project(s_lon, s_lat, s_crs)
    # nearest commune of each service in its territory (fallback for density and land mass)
    near = np.zeros(len(services), dtype=np.int64)
    for crs in np.unique(s_crs.astype(str)) if len(services) else []:
        s_sel = np.flatnonzero(s_crs.astype(str) == crs)
        c_sel = np.flatnonzero(c_crs.astype(str) == crs)
        pool = c_sel if c_sel.size else np.arange(len(codes))
        near[s_sel] = pool[cKDTree(c_xy[pool]).query(s_xy0[s_sel], k=1)[1]]
    index = pd.Index(codes, dtype=object)
    first = ~index.duplicated() if not index.is_unique else slice(None)
    by_code = pd.Series(dens, index=index)[first]
    mass_by_code = pd.Series(c_mass, index=index)[first]
    by_code, mass_by_code = _with_known(by_code, mass_by_code, services, known)
    town = best_connected_level(settings)
    # no commune code (e.g. a candidate site): the commune nearest its point; a code
    # outside the communes table: the best-connected level (see the module docstring)
    no_code = (services["code_insee"].isna().to_numpy() if "code_insee" in services.columns
               else np.ones(len(services), dtype=bool))
    fallback = np.where(no_code, dens[near], town)
    s_dens = pd.to_numeric(pd.Series(_service_attr(services, "densite", by_code, fallback)),
                           errors="coerce").to_numpy(dtype=np.float64)
    unknown = ~np.isin(s_dens, list(settings.proxy_access_min_by_density))
    if unknown.any():
        logger.info("%d service(s) in a commune outside the communes table: access time of "
                    "density level %d assumed (services sit in towns)", int(unknown.sum()),
                    town)
    s_dens = np.where(unknown, town, s_dens).astype(np.int64)
    s_mass = np.asarray([str(m) for m in _service_attr(services, LAND_MASS_COLUMN,
                                                       mass_by_code, c_mass[near])],
                        dtype=object)
    s_xy = s_xy0.copy()
    for m in np.unique(s_mass):  # a service is projected in its land mass's CRS
        crs = mass_crs.get(str(m))
        sel = np.flatnonzero(s_mass == m)
        if crs is not None and sel.size:
            s_xy[sel] = lonlat_to_xy(s_lon[sel], s_lat[sel], crs)
    return _Places(codes, dens, c_mass, c_xy,
                   services["service_id"].astype(str).to_numpy(dtype=object),
                   services["type_service"].astype(str).to_numpy(), s_dens, s_mass, s_xy,
                   mass_crs)


# --- Geometry once, times per parameter set ----------------------------------------------------

@dataclass(frozen=True)
class _Candidates:
    """Straight-line nearest service of each destination class, per origin point.

    ``km[i, j]`` is the straight km from origin ``i`` to its nearest service of class
    ``classes[j]`` on its land mass (NaN when none); ``ids[i, j]`` that service.
    """

    classes: np.ndarray  # (K,) density levels
    km: np.ndarray  # (n, K)
    ids: np.ndarray  # (n, K) object


def _class_candidates(o_xy: np.ndarray, o_mass: np.ndarray, places: _Places,
                      s_sel: np.ndarray) -> _Candidates:
    """Return the per-class nearest services (of the rows ``s_sel``) of every origin point."""
    classes = np.unique(places.s_dens[s_sel]) if s_sel.size else np.zeros(0, np.int64)
    km = np.full((o_xy.shape[0], classes.shape[0]), np.nan)
    ids = np.full(km.shape, None, dtype=object)
    for mass in np.unique(o_mass) if o_xy.shape[0] else []:
        o_rows = np.flatnonzero(o_mass == mass)
        here = s_sel[places.s_mass[s_sel] == mass]
        for j, k in enumerate(classes):
            pool = here[places.s_dens[here] == k]
            if pool.size == 0:
                continue
            d, nn = cKDTree(places.s_xy[pool]).query(o_xy[o_rows], k=1)
            km[o_rows, j] = d / 1000.0
            ids[o_rows, j] = places.ids[pool[nn]]
    return _Candidates(classes, km, ids)


@dataclass(frozen=True)
class _Ferry:
    """The ports of a run's ferry links, with the straight km the proxy needs.

    ``to_port[i, p]``: straight km from commune ``i`` to port ``p`` (NaN on another land
    mass); ``between[p, q]``: straight km between ports of one land mass (NaN otherwise);
    ``crossing[p, q]``: crossing minutes (NaN when no link).
    """

    mass: np.ndarray  # (P,) land mass of each port
    to_port: np.ndarray  # (n, P)
    between: np.ndarray  # (P, P)
    crossing: np.ndarray  # (P, P)
    xy: np.ndarray  # (P, 2) metres, in the port's land mass CRS


def _ferry(ferries: FerryNetwork | None, places: _Places) -> _Ferry | None:
    """Return the ports' geometry for this run, or None without ferry links."""
    if ferries is None or not ferries.links:
        return None
    ports = ferries.ports
    mass = np.array([p.land_mass for p in ports], dtype=object)
    xy = np.full((len(ports), 2), np.nan)
    for i, port in enumerate(ports):
        crs = places.mass_crs.get(port.land_mass, metric_crs_for_lonlat(port.lon, port.lat))
        xy[i] = lonlat_to_xy(np.array([port.lon]), np.array([port.lat]), crs)[0]
    same_c = places.c_mass[:, None] == mass[None, :]
    to_port = np.where(same_c, np.hypot(*(places.c_xy[:, None, :] - xy[None, :, :])
                                        .transpose(2, 0, 1)) / 1000.0, np.nan)
    same_p = mass[:, None] == mass[None, :]
    between = np.where(same_p, np.hypot(*(xy[:, None, :] - xy[None, :, :])
                                        .transpose(2, 0, 1)) / 1000.0, np.nan)
    index = {p.code_insee: i for i, p in enumerate(ports)}
    crossing = np.full((len(ports), len(ports)), np.nan)
    for link in ferries.links:
        a, b = index[link.port_1], index[link.port_2]
        crossing[a, b] = crossing[b, a] = np.fmin(crossing[a, b], link.minutes)
    return _Ferry(mass, to_port, between, crossing, xy)


@dataclass(frozen=True)
class _Best:
    """Best trip found: minutes, service and estimated road km per origin (NaN: none)."""

    minutes: np.ndarray
    ids: np.ndarray
    road_km: np.ndarray


def _ids_where(found: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Return ``ids`` where ``found``, None elsewhere (an object array)."""
    out = np.full(found.shape, None, dtype=object)
    out[found] = ids[found]
    return out


def _direct(cands: _Candidates, dens_o: np.ndarray | None, settings: Settings) -> _Best:
    """Return the best direct trips from the per-class candidates (origin τ when given)."""
    n = cands.km.shape[0]
    if cands.classes.size == 0:
        return _Best(np.full(n, np.nan), np.full(n, None, dtype=object), np.full(n, np.nan))
    tau_o = access_minutes(dens_o, settings)[:, None] if dens_o is not None else 0.0
    times = (tau_o + access_minutes(cands.classes, settings)[None, :]
             + drive_minutes(cands.km * settings.proxy_detour_factor, settings))
    filled = np.where(np.isnan(times), np.inf, times)
    j = np.argmin(filled, axis=1)
    rows = np.arange(n)
    minutes = times[rows, j]
    found = np.isfinite(filled[rows, j])
    ids = _ids_where(found, cands.ids[rows, j])
    return _Best(np.where(found, minutes, np.nan), ids,
                 np.where(found, cands.km[rows, j] * settings.proxy_detour_factor, np.nan))


def _port_chain(ferry: _Ferry, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Return the fastest port-to-port minutes through any chain of ports, and its road km.

    A Floyd–Warshall pass on the ports (few): edges are the crossings (0 road km) and the
    drives between ports of one land mass. Minutes are inf where no chain exists.
    """
    detour = settings.proxy_detour_factor
    drive = drive_minutes(ferry.between * detour, settings)
    cost = np.fmin(ferry.crossing, drive)
    km = np.where(np.isnan(ferry.crossing) | (drive < ferry.crossing), ferry.between * detour,
                  0.0)
    cost = np.where(np.isnan(cost), np.inf, cost)
    np.fill_diagonal(cost, 0.0)
    km = np.where(np.isinf(cost), np.nan, km)
    np.fill_diagonal(km, 0.0)
    for k in range(cost.shape[0]):
        through = cost[:, k:k + 1] + cost[k:k + 1, :]
        better = through < cost
        km = np.where(better, km[:, k:k + 1] + km[k:k + 1, :], km)
        cost = np.where(better, through, cost)
    return cost, km


def _port_best(ferry: _Ferry, sinks: _Best, settings: Settings) -> _Best:
    """Return from each port the best service reachable through any chain of ports.

    Each port takes the best of (chain to a port + that port's own nearest service on its
    land mass, ``sinks``: drive + the service's access time).
    """
    cost, km = _port_chain(ferry, settings)
    total = cost + np.where(np.isnan(sinks.minutes), np.inf, sinks.minutes)[None, :]
    q = np.argmin(total, axis=1)
    rows = np.arange(cost.shape[0])
    best = total[rows, q]
    found = np.isfinite(best)
    return _Best(np.where(found, best, np.nan), _ids_where(found, sinks.ids[q]),
                 np.where(found, km[rows, q] + sinks.road_km[q], np.nan))


def _via_ports(ferry: _Ferry, port_best: _Best, dens_o: np.ndarray, settings: Settings
               ) -> _Best:
    """Return each commune's best trip through a port of its own land mass."""
    detour = settings.proxy_detour_factor
    leg = drive_minutes(ferry.to_port * detour, settings)
    total = leg + np.where(np.isnan(port_best.minutes), np.inf, port_best.minutes)[None, :]
    total = np.where(np.isnan(total), np.inf, total)
    p = np.argmin(total, axis=1)
    rows = np.arange(total.shape[0])
    best = total[rows, p]
    found = np.isfinite(best)
    minutes = access_minutes(dens_o, settings) + best
    return _Best(np.where(found, minutes, np.nan), _ids_where(found, port_best.ids[p]),
                 np.where(found, ferry.to_port[rows, p] * detour + port_best.road_km[p],
                          np.nan))


def _better(a: _Best, b: _Best) -> _Best:
    """Return, per origin, the faster of two trips (``a`` on ties)."""
    take_b = np.isnan(a.minutes) | (b.minutes < a.minutes)
    ids = a.ids.copy()
    ids[take_b] = b.ids[take_b]
    return _Best(np.where(take_b, b.minutes, a.minutes), ids,
                 np.where(take_b, b.road_km, a.road_km))


@dataclass(frozen=True)
class _TypeGeometry:
    """Everything distance-related for one service type (independent of the parameters)."""

    communes: _Candidates
    ports: _Candidates | None


def _type_geometry(places: _Places, ferry: _Ferry | None, stype: str) -> _TypeGeometry:
    """Return the straight-line candidates of one type for communes and ports."""
    s_sel = np.flatnonzero(places.s_type == stype)
    communes = _class_candidates(places.c_xy, places.c_mass, places, s_sel)
    ports = (_class_candidates(ferry.xy, ferry.mass, places, s_sel)
             if ferry is not None else None)
    return _TypeGeometry(communes, ports)


def _best_trips(geo: _TypeGeometry, ferry: _Ferry | None, dens: np.ndarray,
                settings: Settings) -> _Best:
    """Return the best trip of every commune for one type under one parameter set."""
    best = _direct(geo.communes, dens, settings)
    if ferry is not None and geo.ports is not None:
        sinks = _direct(geo.ports, None, settings)
        best = _better(best, _via_ports(ferry, _port_best(ferry, sinks, settings), dens,
                                        settings))
    return best


# --- The engine --------------------------------------------------------------------------------

class ProxyEngine:
    """Trip-level straight-line proxy (``moteur = "proxy"``), see the module docstring.

    Parameters
    ----------
    settings
        The proxy parameters (``proxy_*``) and ``land_mass_gap_m``.
    ferries
        Ferry links between land masses (:func:`coverage.routing.landmass.ferry_network`);
        None: no link, land masses never reach each other.
    known
        The land masses and service densities a finished run recorded
        (:class:`coverage.routing.landmass.RunLandMasses`, given by
        :func:`coverage.routing.engine_of_run`): used for the communes and services that
        have no ``masse_terrestre`` / ``densite`` column, before the polygons. None: found
        from the tables given.
    """

    name = "proxy"

    def __init__(self, settings: Settings = Settings(), ferries: FerryNetwork | None = None,
                 *, known: RunLandMasses | None = None) -> None:
        check_proxy_settings(settings)
        self.settings = settings
        self.ferries = ferries
        self.known = known

    def parameters(self) -> dict[str, Any]:
        """Return the JSON-ready parameters with their sources."""
        s = self.settings
        return {
            "moteur": self.name,
            "methode": "par trajet : temps d'accès à chaque bout selon son niveau de "
                       "densité INSEE + distance à vol d'oiseau dans le SCR métrique du "
                       "territoire × détour, à une vitesse qui change au-delà de "
                       "proxy_speed_break_km km de route ; les trajets restent sur leur masse "
                       "terrestre sauf par les liaisons maritimes",
            "detour_factor": s.proxy_detour_factor,
            "detour_source": DETOUR_SOURCE,
            "access_min_by_density": {str(k): v for k, v in
                                      s.proxy_access_min_by_density.items()},
            "access_source": ACCESS_SOURCE,
            "speed_near_kmh": s.proxy_speed_near_kmh,
            "speed_far_kmh": s.proxy_speed_far_kmh,
            "speed_break_km": s.proxy_speed_break_km,
            "speed_source": SPEED_SOURCE,
            "detour_bounds": list(s.proxy_detour_bounds),
            "land_mass_gap_m": s.land_mass_gap_m,
            "liaisons": self.ferries.as_dict() if self.ferries is not None else [],
            "crs": "coverage.settings.metric_crs_for(code_dep) per territory",
        }

    def bound_settings(self) -> tuple[Settings, Settings]:
        """Return the (optimistic, pessimistic) settings of the ranges (detour bounds)."""
        low, high = (float(b) for b in self.settings.proxy_detour_bounds)
        return (replace(self.settings, proxy_detour_factor=min(low, high)),
                replace(self.settings, proxy_detour_factor=max(low, high)))

    def nearest(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
                service_types: tuple[str, ...]) -> pd.DataFrame:
        """Return the nearest service of each type for every commune, by the proxy model.

        Parameters
        ----------
        communes
            ``code_insee``, ``densite``, ``lon``, ``lat`` (EPSG:4326), ``code_dep``
            (territory; when absent, from the location) and ``masse_terrestre`` (when
            absent: from the polygons, else the territory).
        services
            ``service_id``, ``type_service``, ``lon``, ``lat``, ``code_dep`` (same rule),
            optionally ``code_insee``, ``densite`` and ``masse_terrestre``.
        service_types
            Types to compute.

        Returns
        -------
        pandas.DataFrame
            The engine contract's columns (:data:`coverage.routing.base.NEAREST_COLUMNS`),
            one row per commune × type: minutes (NaN when the land mass has no service of
            the type and no ferry link to one), ``distance_km`` = estimated road km,
            ``moteur = "proxy"``, ``acces_hors_reseau = False``.
        """
        return self._nearest(communes, services, service_types, ranges=False)

    def nearest_with_ranges(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame,
                            *, service_types: tuple[str, ...]) -> pd.DataFrame:
        """Return :meth:`nearest` plus ``raison``, ``minutes_min`` and ``minutes_max``.

        ``raison`` is :data:`coverage.labels.REASON_ISLAND` where the commune's land mass has
        no service of a type that exists elsewhere (and no ferry link to one), else None.
        ``minutes_min`` / ``minutes_max`` are the minutes to the nearest service under the
        optimistic / pessimistic detour (``settings.proxy_detour_bounds``); the geometry
        (KD-tree queries) is shared, so the ranges cost only the arithmetic. The minutes
        grow with the detour, so ``minutes_min ≤ minutes ≤ minutes_max``.
        """
        return self._nearest(communes, services, service_types, ranges=True)

    def _nearest(self, communes: pd.DataFrame, services: pd.DataFrame,
                 service_types: Sequence[str], *, ranges: bool) -> pd.DataFrame:
        require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
        require_columns(services, ("service_id", "type_service", "lon", "lat"), file="services")
        if len(communes) == 0 or not service_types:
            return empty_nearest()
        places = _places(communes, services, self.settings, self.known)
        ferry = _ferry(self.ferries, places)
        n = places.codes.shape[0]
        columns: dict[str, list[np.ndarray]] = {}

        def add(name: str, values: np.ndarray) -> None:
            columns.setdefault(name, []).append(values)

        for stype in service_types:
            geo = _type_geometry(places, ferry, stype)
            best = _best_trips(geo, ferry, places.c_dens, self.settings)
            add("code_insee", places.codes)
            add("type_service", np.full(n, stype, dtype=object))
            add("minutes", best.minutes)
            add("service_id", np.asarray(best.ids, dtype=object))
            add("distance_km", best.road_km)
            add("moteur", np.full(n, self.name, dtype=object))
            add("acces_hors_reseau", np.zeros(n, bool))
            if ranges:
                exists = bool((places.s_type == stype).any())
                add("raison", _ids_where(np.isnan(best.minutes) & exists,
                                         np.full(n, REASON_ISLAND, dtype=object)))
                low, high = self.bound_settings()
                add("minutes_min", _best_trips(geo, ferry, places.c_dens, low).minutes)
                add("minutes_max", _best_trips(geo, ferry, places.c_dens, high).minutes)
        # one frame from whole columns; these stay object (not inferred as strings)
        kept = ("type_service", "service_id", "moteur", "raison")
        return pd.DataFrame({
            name: pd.Series(np.concatenate(parts), dtype=object) if name in kept
            else np.concatenate(parts) for name, parts in columns.items()})

    def matrix(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
               cutoff_min: float) -> pd.DataFrame:
        """Return the service × commune proxy minutes within ``cutoff_min``, as a long table.

        Pairs on one land mass come from a KD-tree ball query of radius
        :func:`straight_km_within` (``cutoff_min`` − 2 × the smallest access time), then the
        exact minutes; pairs on two land masses joined by ferry links go through the ports
        (drive + crossing + drive), the fastest chain of ports kept.

        Returns
        -------
        pandas.DataFrame
            ``service_id``, ``code_insee``, ``minutes`` (float32), pairs within the
            cut-off only.
        """
        require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
        require_columns(services, ("service_id", "lon", "lat"), file="services")
        if len(communes) == 0 or len(services) == 0:
            return empty_matrix()
        services = services if "type_service" in services.columns else services.assign(
            type_service="")
        places = _places(communes, services, self.settings, self.known)
        parts = [_same_mass_pairs(places, cutoff_min, self.settings)]
        ferry = _ferry(self.ferries, places)
        if ferry is not None:
            parts.append(_ferry_pairs(places, ferry, cutoff_min, self.settings))
        out = pd.concat([p for p in parts if len(p)] or [empty_matrix()], ignore_index=True)
        if len(out):  # the fastest way (direct or through ferries) of each pair
            out = pd.DataFrame(out.groupby(["service_id", "code_insee"], sort=False,
                                           as_index=False)["minutes"].min())
        out["minutes"] = out["minutes"].astype(np.float32)
        return out[["service_id", "code_insee", "minutes"]].reset_index(drop=True)


def _ball_pairs(a_xy: np.ndarray, b_xy: np.ndarray, radius_km: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (a index, b index, straight km) of every pair within ``radius_km``."""
    if a_xy.shape[0] == 0 or b_xy.shape[0] == 0 or not radius_km >= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    # (sparse_distance_matrix would drop zero distances: list the pairs instead)
    hits = cKDTree(b_xy).query_ball_point(a_xy, radius_km * 1000.0)
    counts = np.array([len(h) for h in hits], dtype=np.int64)
    ai = np.repeat(np.arange(a_xy.shape[0]), counts)
    bi = (np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])
          if counts.sum() else np.zeros(0, dtype=np.int64))
    return ai, bi, np.hypot(*(a_xy[ai] - b_xy[bi]).T) / 1000.0


def _same_mass_pairs(places: _Places, cutoff_min: float, settings: Settings) -> pd.DataFrame:
    """Return the service × commune pairs within the cut-off on each land mass."""
    tau_min = float(min(settings.proxy_access_min_by_density.values()))
    radius = float(straight_km_within(cutoff_min - 2 * tau_min, settings))
    parts = []
    for mass in np.unique(places.c_mass):
        c_sel = np.flatnonzero(places.c_mass == mass)
        s_sel = np.flatnonzero(places.s_mass == mass)
        si, ci, km = _ball_pairs(places.s_xy[s_sel], places.c_xy[c_sel], radius)
        minutes = trip_minutes(km, places.c_dens[c_sel[ci]], places.s_dens[s_sel[si]],
                               settings)
        keep = minutes <= cutoff_min
        parts.append(pd.DataFrame({"service_id": places.ids[s_sel[si[keep]]],
                                   "code_insee": places.codes[c_sel[ci[keep]]],
                                   "minutes": minutes[keep]}))
    return pd.concat(parts, ignore_index=True) if parts else empty_matrix()


def _ferry_pairs(places: _Places, ferry: _Ferry, cutoff_min: float, settings: Settings
                 ) -> pd.DataFrame:
    """Return the service × commune pairs within the cut-off through ferry ports."""
    detour = settings.proxy_detour_factor
    chain, _ = _port_chain(ferry, settings)
    tau_c = access_minutes(places.c_dens, settings)
    tau_s = access_minutes(places.s_dens, settings)
    parts = []
    for p in range(len(ferry.mass)):
        c_sel = np.flatnonzero(places.c_mass == ferry.mass[p])
        to_p = tau_c[c_sel] + drive_minutes(ferry.to_port[c_sel, p] * detour, settings)
        for q in range(len(ferry.mass)):
            if p == q or not np.isfinite(chain[p, q]):
                continue
            s_sel = np.flatnonzero(places.s_mass == ferry.mass[q])
            s_km = np.hypot(*(places.s_xy[s_sel] - ferry.xy[q]).T) / 1000.0
            from_q = drive_minutes(s_km * detour, settings) + tau_s[s_sel]
            total = to_p[:, None] + chain[p, q] + from_q[None, :]
            ci, si = np.nonzero(total <= cutoff_min)
            parts.append(pd.DataFrame({"service_id": places.ids[s_sel[si]],
                                       "code_insee": places.codes[c_sel[ci]],
                                       "minutes": total[ci, si]}))
    return pd.concat(parts, ignore_index=True) if parts else empty_matrix()


