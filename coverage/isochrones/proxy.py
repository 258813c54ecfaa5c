"""Proxy-engine bands: straight-line minutes on a grid over each territory.

A ``proxy_cell_m`` grid (:data:`PROXY_CELL_M`, 500 m) covers each territory (the communes
sharing one metric CRS: EPSG:2154 in metropolitan France, the local UTM zone of each DROM,
:func:`coverage.settings.metric_crs_for`). Each cell takes the commune containing it (cells
outside every commune take the commune of the nearest cell inside): its density level and
its land mass (:mod:`coverage.routing.landmass`). Each cell's minutes are those of the
engine's trip-level model (:func:`coverage.routing.proxy.trip_minutes`): the cell's access
time + the best, over the services **of its land mass**, of the service's access time + the
drive minutes of the straight distance × detour. As in the engine, the best is exact: one
KD-tree per destination density class, the nearest of each class, the smallest time kept.
Ferry links are not drawn (a land mass without a service has no band). The field is
contoured (:mod:`coverage.isochrones.raster`), then clipped to the territory (the union of
its communes). A service's own bands are contoured on the window of the grid it can reach
within the top bound.
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
from coverage.routing.landmass import LAND_MASS_COLUMN, land_masses
from coverage.routing.proxy import (
    access_minutes,
    best_connected_level,
    drive_minutes,
    straight_km_within,
)
from coverage.settings import Settings, metric_crs_for

__all__ = ["PROXY_CELL_M"]

#: Grid cell of the proxy-engine bands, metres.
PROXY_CELL_M = 500.0


@dataclass(frozen=True)
class _ProxyTerritory:
    """Proxy grid of one territory (one metric CRS)."""

    crs: str
    grid: _Grid
    tau: np.ndarray  # access minutes of each cell's commune (ny, nx)
    mass: np.ndarray  # land mass number of each cell's commune (ny, nx), int
    commune: np.ndarray  # row of each cell's commune in the territory's communes (ny, nx)
    xc: np.ndarray  # cell centres (ny, nx), metres
    yc: np.ndarray
    union: shapely.Geometry  # the territory (union of its communes), metric CRS


def _densities(communes_m: gpd.GeoDataFrame, settings: Settings) -> np.ndarray:
    """Return the communes' INSEE density levels, or raise InputError naming the bad rows."""
    dens = pd.to_numeric(communes_m["densite"], errors="coerce").to_numpy(dtype=np.float64)
    known = np.array(sorted(settings.proxy_access_min_by_density), dtype=np.float64)
    bad = np.flatnonzero(~np.isin(dens, known))
    if bad.size:
        raise InputError([
            Problem("communes", int(i) + 1, "densite",
                    f"an INSEE density level among {[int(k) for k in known]}",
                    str(communes_m["densite"].iloc[i]))
            for i in bad[:20]
        ])
    return np.asarray(dens, dtype=np.int64)


def _commune_raster(geoms: np.ndarray, xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """Return the row of the commune containing each cell centre (nearest inside if none)."""
    gx, gy = np.meshgrid(xc, yc)
    which = np.full(gx.shape, -1, dtype=np.int64)
    for i, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        bx0, by0, bx1, by1 = geom.bounds
        c0, c1 = np.searchsorted(xc, [bx0, bx1])
        r0, r1 = np.searchsorted(yc, [by0, by1])
        if c1 <= c0 or r1 <= r0:
            continue
        inside = shapely.contains_xy(geom, gx[r0:r1, c0:c1], gy[r0:r1, c0:c1])
        which[r0:r1, c0:c1][inside] = i
    # cells outside every commune (border, slivers) take the commune of the nearest cell
    # inside; the bands are clipped to the territory at the end
    missing = which < 0
    if missing.all():
        which[:] = 0
    elif missing.any():
        nearest = ndimage.distance_transform_edt(missing, return_distances=False,
                                                 return_indices=True)
        which = which[nearest[0], nearest[1]]
    return which


def _mass_numbers(communes_m: gpd.GeoDataFrame, settings: Settings) -> np.ndarray:
    """Return each commune's land mass as a number (column, else from the polygons)."""
    if LAND_MASS_COLUMN in communes_m.columns and communes_m[LAND_MASS_COLUMN].notna().all():
        labels = communes_m[LAND_MASS_COLUMN].astype(str).to_numpy()
    elif "code_dep" in communes_m.columns and "code_insee" in communes_m.columns:
        labels = land_masses(communes_m, settings).astype(str).to_numpy()
    else:
        labels = np.zeros(len(communes_m), dtype=str)
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def _proxy_territory(communes_m: gpd.GeoDataFrame, settings: Settings, cell_m: float,
                     crs: str) -> _ProxyTerritory:
    """Build the grid over the communes; each cell takes its commune's τ and land mass."""
    tau = access_minutes(_densities(communes_m, settings), settings)
    mass = _mass_numbers(communes_m, settings)
    geoms = communes_m.geometry.to_numpy()
    union = shapely.union_all(geoms)
    xmin, ymin, xmax, ymax = union.bounds
    grid = _Grid.around(xmin, ymin, xmax, ymax, cell_m, cell_m)
    xc, yc = grid.centres()
    gx, gy = np.meshgrid(xc, yc)
    which = _commune_raster(geoms, xc, yc)
    shapely.prepare(union)
    return _ProxyTerritory(crs, grid, tau[which], mass[which], which, gx, gy, union)


def _service_cells(terr: _ProxyTerritory, pts: gpd.GeoSeries) -> np.ndarray:
    """Return the flat index of the grid cell under each service point (clipped to the grid)."""
    grid = terr.grid
    col = np.clip(((pts.x.to_numpy() - grid.x0) // grid.cell).astype(np.int64), 0, grid.nx - 1)
    row = np.clip(((pts.y.to_numpy() - grid.y0) // grid.cell).astype(np.int64), 0, grid.ny - 1)
    return np.asarray(row * grid.nx + col, dtype=np.int64)


def _service_ends(terr: _ProxyTerritory, sv: gpd.GeoDataFrame, cm: gpd.GeoDataFrame,
                  settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Return each service's access minutes and land mass number.

    The density is the service's ``densite``, else its commune's (``code_insee``), else
    the best-connected level, as in the engine; the land mass is that of the commune under
    it.
    """
    cells = _service_cells(terr, sv.geometry)
    dens = _densities(cm, settings)
    dens_s = pd.Series(float(best_connected_level(settings)), index=sv.index)
    if "code_insee" in sv.columns:
        by_code = pd.Series(dens, index=cm["code_insee"].astype(str).to_numpy())
        by_code = by_code[~by_code.index.duplicated()]
        mapped = sv["code_insee"].astype(str).map(by_code)
        dens_s = mapped.where(mapped.notna(), dens_s)
    if "densite" in sv.columns:
        own = pd.to_numeric(sv["densite"], errors="coerce")
        ok = own.isin(list(settings.proxy_access_min_by_density))
        dens_s = own.where(ok, dens_s)
    tau = access_minutes(dens_s.to_numpy(dtype=np.int64), settings)
    return tau, terr.mass.ravel()[cells]


def _type_field(terr: _ProxyTerritory, pts: gpd.GeoSeries, tau_s: np.ndarray,
                mass_s: np.ndarray, settings: Settings) -> np.ndarray:
    """Return the minutes field of one type: exact best over the services of each land mass."""
    best = np.full(terr.xc.size, np.inf)
    cells_xy = np.column_stack([terr.xc.ravel(), terr.yc.ravel()])
    cell_mass = terr.mass.ravel()
    s_xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    for m in np.unique(mass_s):
        on = np.flatnonzero(cell_mass == m)
        for t in np.unique(tau_s[mass_s == m]):  # one tree per destination access time
            pool = np.flatnonzero((mass_s == m) & (tau_s == t))
            dist, _ = cKDTree(s_xy[pool]).query(cells_xy[on])
            time = t + drive_minutes(dist / 1000.0 * settings.proxy_detour_factor, settings)
            best[on] = np.minimum(best[on], time)
    field = best.reshape(terr.xc.shape) + terr.tau
    return np.where(np.isfinite(field), field, np.nan)


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
            sel = sv[sv["type_service"].astype(str) == t]
            if len(sel) == 0:
                continue
            tau_s, mass_s = _service_ends(terr, sel, cm, settings)
            field = _type_field(terr, sel.geometry, tau_s, mass_s, settings)
            by_type[t] = _proxy_band_geometries(terr, field, bands)
        out.append((territory, by_type))
    return out


def _reach_m(terr: _ProxyTerritory, cutoff_min: float, settings: Settings) -> float:
    """Return the farthest straight distance reached within ``cutoff_min``, metres (+2 cells)."""
    tau_min = float(np.nanmin(terr.tau))
    km = float(straight_km_within(cutoff_min - 2 * tau_min, settings))
    return km * 1000.0 + 2 * terr.grid.cell


def _service_window_geometries(terr: _ProxyTerritory, pt: shapely.Point, ends: tuple[float, int],
                               reach: float, bands: Sequence[tuple[float, float]],
                               settings: Settings) -> list[shapely.Geometry]:
    """Contour one service's bands on the window of the grid within ``reach`` metres.

    ``ends`` is the service's (access minutes, land mass number); cells of another land
    mass are unreachable.
    """
    grid = terr.grid
    c0 = max(int((pt.x - reach - grid.x0) // grid.cell), 0)
    c1 = min(int((pt.x + reach - grid.x0) // grid.cell) + 2, grid.nx)
    r0 = max(int((pt.y - reach - grid.y0) // grid.cell), 0)
    r1 = min(int((pt.y + reach - grid.y0) // grid.cell) + 2, grid.ny)
    if c1 - c0 < 2 or r1 - r0 < 2:  # the service is far outside the territory
        return [shapely.MultiPolygon() for _ in bands]
    win = (slice(r0, r1), slice(c0, c1))
    dist = np.hypot(terr.xc[win] - pt.x, terr.yc[win] - pt.y)
    tau_s, mass_s = ends
    minutes = (terr.tau[win] + tau_s
               + drive_minutes(dist / 1000.0 * settings.proxy_detour_factor, settings))
    minutes = np.where(terr.mass[win] == mass_s, minutes, np.nan)
    return _proxy_band_geometries(terr, minutes, bands, window=win)


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
        reach = _reach_m(terr, bands[-1][1], settings)
        tau_s, mass_s = _service_ends(terr, sv, cm, settings)
        sids, metric = [], []
        rows = zip(sv["service_id"].astype(str), sv.geometry, tau_s, mass_s, strict=True)
        for sid, pt, tau, mass in progress(rows, total=len(sv), desc="isochrones per service",
                                           unit="service"):
            sids.append(sid)
            metric.append(_service_window_geometries(terr, pt, (float(tau), int(mass)),
                                                     reach, bands, settings))
        yield territory, sids, metric
