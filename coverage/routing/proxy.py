"""Straight-line proxy engine (``moteur = "proxy"``), used when no road file is given.

Method: the straight-line distance between the commune's representative point and the
service, measured in the territory's metric CRS (:func:`coverage.settings.metric_crs_for`:
Lambert-93 in metropolitan France, local UTM in each DROM), is multiplied by a detour
factor and divided by a speed that depends on the **commune's** INSEE density level::

    distance_km = straight_line_m × detour_factor / 1000
    minutes     = distance_km / speed_kmh(densite) × 60

Because the speed depends on the commune only, the nearest service in straight line is
also the nearest in time, so one KD-tree query (k = 1) per commune and type is exact for
this model. Communes and services of different territories (metropolitan France, each
DROM) are projected and matched within their own territory: a service in another
territory is never the nearest. These are **estimates**, labelled ``proxy`` on every row.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from coverage._validate import require_columns
from coverage.errors import InputError, Problem
from coverage.geo import lonlat_to_xy, metric_crs_for_lonlat
from coverage.routing.base import empty_matrix, empty_nearest, lonlat
from coverage.settings import Settings, metric_crs_for

__all__ = ["DETOUR_SOURCE", "SPEED_SOURCE", "ProxyEngine", "proxy_minutes"]

logger = logging.getLogger(__name__)

#: Where the default detour factor comes from (recorded in the manifest).
DETOUR_SOURCE = ("coverage.settings.PROXY_DETOUR_FACTOR: usual order of magnitude of the "
                 "road / straight-line detour index between French communes (1.2 to 1.4 "
                 "reported for rural France); override when a local calibration exists")
#: Where the default speeds come from (recorded in the manifest).
SPEED_SOURCE = ("coverage.settings.PROXY_SPEED_KMH_BY_DENSITY: assumed mean door-to-door "
                "speeds by INSEE density level (1 dense … 4 très peu dense), slower in dense "
                "towns, faster on rural roads; not a measurement")


def proxy_minutes(distance_m: np.ndarray | float, densite: np.ndarray | int,
                  settings: Settings = Settings()) -> np.ndarray:
    """Proxy travel time for straight-line distances.

    Parameters
    ----------
    distance_m
        Straight-line distance, metres, in a metric CRS.
    densite
        INSEE density level (1 … 4) of the commune of departure.
    settings
        ``proxy_detour_factor`` and ``proxy_speed_kmh_by_density`` (km/h).

    Returns
    -------
    numpy.ndarray
        Minutes (float64); NaN where the distance is NaN.

    Raises
    ------
    ValueError
        A density level has no speed in ``settings.proxy_speed_kmh_by_density``.
    """
    dist = np.asarray(distance_m, dtype=np.float64)
    dens = np.asarray(densite)
    speeds = settings.proxy_speed_kmh_by_density
    unknown = sorted({int(d) for d in np.unique(dens) if int(d) not in speeds})
    if unknown:
        msg = f"no proxy speed for density level(s) {unknown}: known {sorted(speeds)}"
        raise ValueError(msg)
    lookup = np.vectorize(lambda d: float(speeds[int(d)]), otypes=[np.float64])
    speed = lookup(dens) if dens.size else np.zeros(dens.shape)
    return dist * settings.proxy_detour_factor / 1000.0 / speed * 60.0


def _territory_crs(frame: pd.DataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Metric CRS of each row: from ``code_dep`` when present, else from its location."""
    out = np.empty(len(frame), dtype=object)
    deps = frame["code_dep"] if "code_dep" in frame.columns else pd.Series([None] * len(frame))
    for i, dep in enumerate(deps.to_numpy(dtype=object)):
        if isinstance(dep, str) and dep:
            out[i] = metric_crs_for(dep)
        else:
            out[i] = metric_crs_for_lonlat(float(lon[i]), float(lat[i]))
    return out


def _densities(communes: pd.DataFrame, settings: Settings) -> np.ndarray:
    require_columns(communes, ("densite",), file="communes")
    dens = pd.to_numeric(communes["densite"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(dens, np.array(sorted(settings.proxy_speed_kmh_by_density), dtype=float))
    if bad.any():
        known = ", ".join(str(k) for k in sorted(settings.proxy_speed_kmh_by_density))
        raise InputError([Problem("communes", int(r) + 1, "densite",
                                  f"an INSEE density level ({known})",
                                  str(communes["densite"].iloc[r]))
                          for r in np.flatnonzero(bad)[:20]])
    return dens.astype(np.int64)


class ProxyEngine:
    """Straight line × detour ÷ speed by density class (``moteur = "proxy"``).

    Parameters
    ----------
    settings
        ``proxy_detour_factor`` and ``proxy_speed_kmh_by_density`` (km/h).
    """

    name = "proxy"

    def __init__(self, settings: Settings = Settings()) -> None:
        self.settings = settings

    def parameters(self) -> dict[str, Any]:
        """JSON-ready parameters with their sources."""
        return {
            "moteur": self.name,
            "methode": "straight-line distance in the territory's metric CRS × detour "
                       "factor ÷ speed by the commune's INSEE density level",
            "detour_factor": self.settings.proxy_detour_factor,
            "detour_source": DETOUR_SOURCE,
            "speed_kmh_by_density": {str(k): v for k, v in
                                     self.settings.proxy_speed_kmh_by_density.items()},
            "speed_source": SPEED_SOURCE,
            "crs": "coverage.settings.metric_crs_for(code_dep) per territory",
        }

    def nearest(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
                service_types: tuple[str, ...]) -> pd.DataFrame:
        """Nearest service of each type for every commune, by the proxy formula.

        Parameters
        ----------
        communes
            ``code_insee``, ``densite``, ``lon``, ``lat`` (EPSG:4326) and ``code_dep``
            (territory; when absent, the territory comes from the location).
        services
            ``service_id``, ``type_service``, ``lon``, ``lat`` and ``code_dep`` (same rule).
        service_types
            Types to compute.

        Returns
        -------
        pandas.DataFrame
            One row per commune × type: minutes (NaN when the territory has no service of
            the type), ``distance_km`` = straight line × detour factor, ``moteur = "proxy"``,
            ``acces_hors_reseau = False``.
        """
        require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
        require_columns(services, ("service_id", "type_service", "lon", "lat"), file="services")
        dens = _densities(communes, self.settings)
        c_lon, c_lat = lonlat(communes, "communes")
        c_crs = _territory_crs(communes, c_lon, c_lat)
        codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
        stypes = services["type_service"].astype(str).to_numpy()
        s_lon, s_lat = lonlat(services, "services")
        s_crs = _territory_crs(services, s_lon, s_lat)
        ids = services["service_id"].astype(str).to_numpy(dtype=object)
        frames = []
        for stype in service_types:
            dist_m = np.full(codes.shape[0], np.nan)
            service_id = np.full(codes.shape[0], None, dtype=object)
            for crs in np.unique(c_crs):
                c_sel = np.flatnonzero(c_crs == crs)
                s_sel = np.flatnonzero((s_crs == crs) & (stypes == stype))
                if s_sel.shape[0] == 0:
                    continue
                tree = cKDTree(lonlat_to_xy(s_lon[s_sel], s_lat[s_sel], str(crs)))
                d, j = tree.query(lonlat_to_xy(c_lon[c_sel], c_lat[c_sel], str(crs)), k=1)
                dist_m[c_sel] = d
                service_id[c_sel] = ids[s_sel[j]]
            minutes = proxy_minutes(dist_m, dens, self.settings)
            frames.append(pd.DataFrame({
                "code_insee": codes, "type_service": stype, "minutes": minutes,
                "service_id": pd.Series(service_id, dtype=object),
                "distance_km": dist_m * self.settings.proxy_detour_factor / 1000.0,
                "moteur": self.name, "acces_hors_reseau": np.zeros(codes.shape[0], bool)}))
        if not frames:
            return empty_nearest()
        out = pd.concat(frames, ignore_index=True)
        out["type_service"] = out["type_service"].astype(object)
        out["moteur"] = out["moteur"].astype(object)
        return out

    def matrix(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
               cutoff_min: float) -> pd.DataFrame:
        """Service × commune proxy minutes within ``cutoff_min``, as a long table.

        Returns
        -------
        pandas.DataFrame
            ``service_id``, ``code_insee``, ``minutes`` (float32), pairs of the same
            territory within the cut-off only.
        """
        require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
        require_columns(services, ("service_id", "lon", "lat"), file="services")
        dens = _densities(communes, self.settings)
        c_lon, c_lat = lonlat(communes, "communes")
        s_lon, s_lat = lonlat(services, "services")
        c_crs = _territory_crs(communes, c_lon, c_lat)
        s_crs = _territory_crs(services, s_lon, s_lat)
        codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
        ids = services["service_id"].astype(str).to_numpy(dtype=object)
        vmax = max(self.settings.proxy_speed_kmh_by_density.values())
        radius_m = cutoff_min / 60.0 * vmax * 1000.0 / self.settings.proxy_detour_factor
        parts = []
        for crs in np.unique(c_crs):
            c_sel = np.flatnonzero(c_crs == crs)
            s_sel = np.flatnonzero(s_crs == crs)
            if s_sel.shape[0] == 0:
                continue
            s_xy = lonlat_to_xy(s_lon[s_sel], s_lat[s_sel], str(crs))
            c_xy = lonlat_to_xy(c_lon[c_sel], c_lat[c_sel], str(crs))
            # (sparse_distance_matrix would drop zero distances: list the pairs instead)
            hits = cKDTree(c_xy).query_ball_point(s_xy, radius_m)
            counts = np.array([len(h) for h in hits], dtype=np.int64)
            si = np.repeat(np.arange(s_sel.shape[0]), counts)
            ci = (np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])
                  if counts.sum() else np.zeros(0, dtype=np.int64))
            d = np.hypot(*(s_xy[si] - c_xy[ci]).T)
            minutes = proxy_minutes(d, dens[c_sel[ci]], self.settings)
            keep = minutes <= cutoff_min
            parts.append(pd.DataFrame({"service_id": ids[s_sel[si[keep]]],
                                       "code_insee": codes[c_sel[ci[keep]]],
                                       "minutes": minutes[keep].astype(np.float32)}))
        if not parts:
            return empty_matrix()
        return pd.concat(parts, ignore_index=True)
