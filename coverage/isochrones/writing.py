"""Write the bands: ``isochrones.gpkg`` (exact and display layers), GeoJSON on request.

The exact bands are written as they were drawn; the display layers are simplified copies
for the map (:func:`display_version`: the bands of one type, or one service, simplified
together so that no gap or overlap appears between them), with their tolerance (metres)
recorded in the column :data:`TOLERANCE_COLUMN`. Every file is replaced atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely

from coverage._validate import require_columns
from coverage.errors import CRSError, OutputError, os_error_sentence
from coverage.files import atomic_path
from coverage.isochrones.bands import SERVICES_COLUMNS, TYPES_COLUMNS
from coverage.isochrones.raster import _as_valid_multipolygon
from coverage.settings import CRS_INPUT_OUTPUT

__all__ = [
    "DISPLAY_TOLERANCE_M",
    "LAYER_SERVICES",
    "LAYER_SERVICES_DISPLAY",
    "LAYER_TYPES",
    "LAYER_TYPES_DISPLAY",
    "TOLERANCE_COLUMN",
    "display_version",
    "write_isochrones",
]

#: Default simplification tolerance of the display layers, metres.
DISPLAY_TOLERANCE_M = 50.0

LAYER_SERVICES = "isochrones_services"
LAYER_TYPES = "isochrones_types"
LAYER_SERVICES_DISPLAY = "isochrones_services_affichage"
LAYER_TYPES_DISPLAY = "isochrones_types_affichage"
#: Column of the display layers holding their simplification tolerance, metres.
TOLERANCE_COLUMN = "tolerance_affichage_m"


def display_version(gdf: gpd.GeoDataFrame, tolerance_m: float,
                    group: Sequence[str]) -> gpd.GeoDataFrame:
    """Return a copy simplified for the map, tolerance recorded in ``tolerance_affichage_m``.

    Bands of one group (one type, or one service) share their edges: they are simplified
    together (:func:`shapely.coverage_simplify`) so that no gap or overlap appears between
    them. The work is done in the frame's local UTM CRS (metres); the result is EPSG:4326.

    Parameters
    ----------
    gdf
        Bands, EPSG:4326.
    tolerance_m
        Simplification tolerance, metres (>= 0).
    group
        Columns identifying the bands that form one coverage.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, the columns of ``gdf`` plus ``tolerance_affichage_m``; valid
        MultiPolygons.
    """
    if tolerance_m < 0 or not math.isfinite(tolerance_m):
        msg = f"display tolerance must be a non-negative number of metres, got {tolerance_m}"
        raise ValueError(msg)
    out = gdf.copy()
    out[TOLERANCE_COLUMN] = float(tolerance_m)
    if len(out) == 0 or tolerance_m == 0:
        return out
    metric_crs = out.estimate_utm_crs()
    metric = out.geometry.to_crs(metric_crs)
    simplified = metric.copy()
    for _, idx in out.groupby(list(group), sort=False).indices.items():
        geoms = metric.iloc[idx].to_numpy()
        try:
            new = shapely.coverage_simplify(geoms, tolerance_m)
        except shapely.errors.GEOSException:
            new = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
        simplified.iloc[idx] = [_as_valid_multipolygon(g) for g in new]
    out["geometry"] = simplified.to_crs(CRS_INPUT_OUTPUT).to_numpy()
    out["geometry"] = [_as_valid_multipolygon(g) for g in out.geometry]
    return out


def _check_layer(gdf: gpd.GeoDataFrame, columns: Sequence[str], name: str) -> None:
    """Raise when a layer lacks a column or is not in EPSG:4326."""
    require_columns(gdf, [*columns, "geometry"], file=name)
    if gdf.crs is None or not gdf.crs.equals(CRS_INPUT_OUTPUT):
        msg = f"{name} must be in {CRS_INPUT_OUTPUT}, found {gdf.crs}: call to_crs('EPSG:4326')"
        raise CRSError(msg)


def write_isochrones(
    types_gdf: gpd.GeoDataFrame, services_gdf: gpd.GeoDataFrame, path: str | Path, *,
    geojson_dir: str | Path | None = None, display_tolerance_m: float = DISPLAY_TOLERANCE_M,
) -> list[Path]:
    """Write ``isochrones.gpkg`` (and GeoJSON files on request), atomically.

    Layers: ``isochrones_services``, ``isochrones_types`` (exact bands) and
    ``isochrones_services_affichage``, ``isochrones_types_affichage`` (simplified for the
    map; column ``tolerance_affichage_m`` holds the tolerance, metres).

    Parameters
    ----------
    types_gdf
        From :func:`coverage.isochrones.bands.isochrones_types`, EPSG:4326.
    services_gdf
        From :func:`coverage.isochrones.bands.isochrones_services`, EPSG:4326.
    path
        The GeoPackage to write (replaced atomically).
    geojson_dir
        When given, also write ``<layer>.geojson`` for each of the four layers there.
    display_tolerance_m
        Simplification tolerance of the display layers, metres.

    Returns
    -------
    list of pathlib.Path
        Files written.
    """
    _check_layer(types_gdf, TYPES_COLUMNS, LAYER_TYPES)
    _check_layer(services_gdf, SERVICES_COLUMNS, LAYER_SERVICES)
    layers = {
        LAYER_SERVICES: services_gdf[[*SERVICES_COLUMNS, "geometry"]],
        LAYER_TYPES: types_gdf[[*TYPES_COLUMNS, "geometry"]],
    }
    layers[LAYER_SERVICES_DISPLAY] = display_version(
        layers[LAYER_SERVICES], display_tolerance_m, ["service_id"])
    layers[LAYER_TYPES_DISPLAY] = display_version(
        layers[LAYER_TYPES], display_tolerance_m, ["type_service"])
    path = Path(path)
    written: list[Path] = []
    try:
        with atomic_path(path) as tmp:
            for name, gdf in layers.items():
                _write_layer(gdf, tmp, name, driver="GPKG")
        written.append(path)
        if geojson_dir is not None:
            for name, gdf in layers.items():
                target = Path(geojson_dir) / f"{name}.geojson"
                with atomic_path(target) as tmp:
                    _write_layer(gdf, tmp, name, driver="GeoJSON")
                written.append(target)
    except OSError as exc:
        msg = f"isochrones non écrites dans {path} : {os_error_sentence(exc, path)}"
        raise OutputError(msg) from exc
    return written


def _write_layer(gdf: gpd.GeoDataFrame, target: Path, layer: str, *, driver: str) -> None:
    """Write one layer as MultiPolygons (a GeoPackage gains a layer, GeoJSON is one file)."""
    frame = gdf.copy()
    frame["geometry"] = gpd.GeoSeries(
        [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
         for g in frame.geometry], crs=frame.crs)
    kwargs: dict[str, Any] = {"driver": driver, "engine": "pyogrio",
                              "geometry_type": "MultiPolygon"}
    if driver == "GPKG":
        kwargs["layer"] = layer  # a new layer is added to an existing GeoPackage
    frame.to_file(target, **kwargs)
