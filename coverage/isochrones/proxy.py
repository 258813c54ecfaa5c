"""Proxy-engine bands: straight-line minutes on a grid over each territory.

A ``proxy_cell_m`` grid (:data:`PROXY_CELL_M`, 500 m) covers each territory (the communes
sharing one metric CRS: EPSG:2154 in metropolitan France, the local UTM zone of each DROM,
:func:`coverage.settings.metric_crs_for`). Each cell's minutes are the straight distance
to the nearest service of the territory × the detour factor ÷ the proxy speed of the
density class of the commune containing the cell
(:func:`coverage.routing.proxy.proxy_minutes`); cells outside every commune take the value
of the nearest cell inside. The field is contoured (:mod:`coverage.isochrones.raster`),
then clipped to the territory (the union of its communes). A service's own bands are
contoured on the window of the grid it can reach within the top bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree

from coverage._validate import require_columns, require_crs
from coverage.errors import InputError, Problem
from coverage.geo import metric_crs_for_lonlat
from coverage.isochrones.raster import _as_multipolygon, _contour_bands, _Grid
from coverage.progress import progress
from coverage.routing.proxy import proxy_minutes
from coverage.settings import Settings, metric_crs_for

__all__ = ["PROXY_CELL_M"]

#: Grid cell of the proxy-engine bands, metres.
PROXY_CELL_M = 500.0


@dataclass(frozen=True)
class _ProxyTerritory:
    """Proxy grid of one territory (one metric CRS)."""

    crs: str
    grid: _Grid
    min_per_m: np.ndarray  # proxy minutes per straight-line metre of each cell (ny, nx)
    xc: np.ndarray  # cell centres (ny, nx), metres
    yc: np.ndarray
    union: shapely.Geometry  # the territory (union of its communes), metric CRS


def _densities(communes_m: gpd.GeoDataFrame, settings: Settings) -> np.ndarray:
    """Return the communes' INSEE density levels, or raise InputError naming the bad rows."""
    dens = pd.to_numeric(communes_m["densite"], errors="coerce").to_numpy(dtype=np.float64)
    known = np.array(sorted(settings.proxy_speed_kmh_by_density), dtype=np.float64)
    bad = np.flatnonzero(~np.isin(dens, known))
    if bad.size:
        raise InputError([
            Problem("communes", int(i) + 1, "densite",
                    f"an INSEE density level among {[int(k) for k in known]}",
                    str(communes_m["densite"].iloc[i]))
            for i in bad[:20]
        ])
    return np.asarray(dens, dtype=np.int64)


def _proxy_territory(communes_m: gpd.GeoDataFrame, settings: Settings, cell_m: float,
                     crs: str) -> _ProxyTerritory:
    """Build the grid over the communes; each cell takes the density class of its commune."""
    per_m = proxy_minutes(np.ones(len(communes_m)), _densities(communes_m, settings), settings)
    geoms = communes_m.geometry.to_numpy()
    union = shapely.union_all(geoms)
    xmin, ymin, xmax, ymax = union.bounds
    grid = _Grid.around(xmin, ymin, xmax, ymax, cell_m, cell_m)
    xc, yc = grid.centres()
    gx, gy = np.meshgrid(xc, yc)
    cell_per_m = np.full(gx.shape, np.nan)
    # rasterise the communes: each cell centre takes its commune's minutes per metre
    for geom, value in zip(geoms, per_m, strict=True):
        if geom is None or geom.is_empty:
            continue
        bx0, by0, bx1, by1 = geom.bounds
        c0, c1 = np.searchsorted(xc, [bx0, bx1])
        r0, r1 = np.searchsorted(yc, [by0, by1])
        if c1 <= c0 or r1 <= r0:
            continue
        inside = shapely.contains_xy(geom, gx[r0:r1, c0:c1], gy[r0:r1, c0:c1])
        cell_per_m[r0:r1, c0:c1][inside] = value
    # cells outside every commune (border, slivers) take the value of the nearest cell
    # inside; the bands are clipped to the territory at the end
    missing = np.isnan(cell_per_m)
    if missing.all():
        cell_per_m[:] = float(np.nanmin(per_m))
    elif missing.any():
        nearest = ndimage.distance_transform_edt(missing, return_distances=False,
                                                 return_indices=True)
        cell_per_m = cell_per_m[nearest[0], nearest[1]]
    shapely.prepare(union)
    return _ProxyTerritory(crs, grid, cell_per_m, gx, gy, union)


def _proxy_band_geometries(terr: _ProxyTerritory, minutes: np.ndarray,
                           bands: Sequence[tuple[float, float]],
                           window: tuple[slice, slice] | None = None) -> list[shapely.Geometry]:
    """Contour a proxy minutes field (whole grid or a window), clipped to the territory."""
    grid = terr.grid
    sub = grid
    if window is not None:
        sy, sx = window
        sub = _Grid(float(terr.xc[0, sx.start]), float(terr.yc[sy.start, 0]), grid.cell,
                    sx.stop - sx.start, sy.stop - sy.start)
    out = []
    for g in _contour_bands(sub, np.ma.masked_invalid(minutes), bands):
        if not g.is_empty:
            g = shapely.intersection(g, shapely.clip_by_rect(terr.union, *g.bounds))
        out.append(_as_multipolygon(g))
    return out


def _territory_of(frame: gpd.GeoDataFrame, crs: str | None) -> np.ndarray:
    """Return each row's metric CRS: ``crs`` when given, else from ``code_dep``, else place."""
    if crs is not None:
        return np.full(len(frame), crs, dtype=object)
    out = np.empty(len(frame), dtype=object)
    deps = (frame["code_dep"].to_numpy(dtype=object) if "code_dep" in frame.columns
            else np.full(len(frame), None, dtype=object))
    points = frame.geometry.representative_point() if len(frame) else frame.geometry
    for i, dep in enumerate(deps):
        if isinstance(dep, str) and dep:
            out[i] = metric_crs_for(dep)
        else:
            p = points.iloc[i]
            out[i] = metric_crs_for_lonlat(float(p.x), float(p.y))
    return out


def _proxy_groups(communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, crs: str | None
                  ) -> list[tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame]]:
    """Return the communes and services of each territory (metric CRS), as the engine pairs them."""
    require_columns(communes, ["densite", "geometry"], file="communes")
    require_crs(communes, file="communes")
    require_crs(services, file="services")
    c_crs = _territory_of(communes, crs)
    s_crs = _territory_of(services, crs)
    groups = []
    for territory in sorted({str(c) for c in c_crs}):
        cm = communes[c_crs == territory].to_crs(territory)
        sv = services[s_crs == territory].to_crs(territory)
        groups.append((territory, cm, sv))
    return groups


def _proxy_type_geometries(
    communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, types: Sequence[str],
    bands: Sequence[tuple[float, float]], *, settings: Settings, cell_m: float,
    crs: str | None,
) -> list[tuple[str, dict[str, list[shapely.Geometry]]]]:
    """Draw the merged bands of each type, territory by territory.

    Returns ``[(territory CRS, {type: one metric geometry per band})]``; a type without a
    service in a territory has no entry there.
    """
    out = []
    for territory, cm, sv in _proxy_groups(communes, services, crs):
        terr = _proxy_territory(cm, settings, cell_m, territory)
        by_type: dict[str, list[shapely.Geometry]] = {}
        for t in types:
            pts = sv[sv["type_service"].astype(str) == t].geometry
            if len(pts) == 0:
                continue
            tree = cKDTree(np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()]))
            dist, _ = tree.query(np.column_stack([terr.xc.ravel(), terr.yc.ravel()]))
            field = dist.reshape(terr.xc.shape) * terr.min_per_m
            by_type[t] = _proxy_band_geometries(terr, field, bands)
        out.append((territory, by_type))
    return out


def _reach_m(terr: _ProxyTerritory, cutoff_min: float) -> float:
    """Return the farthest straight distance reached within ``cutoff_min``, metres (+2 cells)."""
    fastest = float(np.nanmin(terr.min_per_m))  # minutes per metre
    return cutoff_min / fastest + 2 * terr.grid.cell


def _service_window_geometries(terr: _ProxyTerritory, pt: shapely.Point, reach: float,
                               bands: Sequence[tuple[float, float]]) -> list[shapely.Geometry]:
    """Contour one service's bands on the window of the grid within ``reach`` metres."""
    grid = terr.grid
    c0 = max(int((pt.x - reach - grid.x0) // grid.cell), 0)
    c1 = min(int((pt.x + reach - grid.x0) // grid.cell) + 2, grid.nx)
    r0 = max(int((pt.y - reach - grid.y0) // grid.cell), 0)
    r1 = min(int((pt.y + reach - grid.y0) // grid.cell) + 2, grid.ny)
    if c1 - c0 < 2 or r1 - r0 < 2:  # the service is far outside the territory
        return [shapely.MultiPolygon() for _ in bands]
    win = (slice(r0, r1), slice(c0, c1))
    dist = np.hypot(terr.xc[win] - pt.x, terr.yc[win] - pt.y)
    return _proxy_band_geometries(terr, dist * terr.min_per_m[win], bands, window=win)


def _proxy_service_geometries(
    communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame,
    bands: Sequence[tuple[float, float]], *, settings: Settings, cell_m: float,
    crs: str | None,
) -> Iterator[tuple[str, list[str], list[list[shapely.Geometry]]]]:
    """Draw each service's bands, territory by territory.

    Yields ``(territory CRS, service ids, one list of metric geometries per band per
    service)`` for each territory that has services.
    """
    for territory, cm, sv in _proxy_groups(communes, services, crs):
        if len(sv) == 0:
            continue
        terr = _proxy_territory(cm, settings, cell_m, territory)
        reach = _reach_m(terr, bands[-1][1])
        sids, metric = [], []
        for sid, pt in progress(zip(sv["service_id"].astype(str), sv.geometry, strict=True),
                                total=len(sv), desc="isochrones per service", unit="service"):
            sids.append(sid)
            metric.append(_service_window_geometries(terr, pt, reach, bands))
        yield territory, sids, metric
