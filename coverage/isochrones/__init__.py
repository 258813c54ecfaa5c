"""Isochrone bands: polygons of the land within 0–20, 20–30, 30–45 minutes of a service.

The method, module by module:

- :mod:`~coverage.isochrones.bands`: the bands of the thresholds, merged per service type
  (:func:`isochrones_types`) or per service (:func:`isochrones_services`), for either
  engine, as EPSG:4326 GeoDataFrames;
- :mod:`~coverage.isochrones.road` (road engine): **buffered reached arcs, rasterised**.
  The time along each arc is interpolated linearly, the land within ``buffer_m``
  (:data:`BUFFER_M`, 150 m) of a reached road point gets its minutes plus the off-road leg
  at the engine's connector speed; per-service bands use a coarser raster
  (:data:`SERVICE_RASTER`);
- :mod:`~coverage.isochrones.proxy` (proxy engine): straight-line proxy minutes on a
  :data:`PROXY_CELL_M` grid over each territory, clipped to the territory;
- :mod:`~coverage.isochrones.raster`: the shared raster — grid, the unreached value (the
  top bound plus one minute, never a mask), hole filling (enclosed patches below
  ``min_hole_m2``: 9 ha; 25 ha per service) and contouring (``contourpy``);
- :mod:`~coverage.isochrones.accuracy`: the checks of the polygons against the node
  minutes (:func:`band_accuracy`, :func:`types_accuracy`);
- :mod:`~coverage.isochrones.writing`: ``isochrones.gpkg`` with exact and simplified
  display layers (:func:`write_isochrones`).

Statistics are never computed from these polygons: they are for display and export.
Outputs are EPSG:4326 GeoDataFrames with the columns ``type_service`` (or ``service_id,
type_service``), ``bande_min``, ``bande_max`` (minutes), ``moteur`` (``road``/``proxy``),
``geometry`` (MultiPolygon). Empty bands are left out.
"""

from __future__ import annotations

from coverage.isochrones.accuracy import (
    ACCURACY_BEYOND_MIN,
    ACCURACY_SLACK_MIN,
    band_accuracy,
    types_accuracy,
)
from coverage.isochrones.bands import (
    SERVICES_COLUMNS,
    TYPES_COLUMNS,
    bands_from_thresholds,
    isochrones_services,
    isochrones_types,
)
from coverage.isochrones.proxy import PROXY_CELL_M
from coverage.isochrones.raster import MAX_CELLS
from coverage.isochrones.road import (
    BUFFER_M,
    CELL_M,
    MIN_HOLE_M2,
    SERVICE_CELL_M,
    SERVICE_MIN_HOLE_M2,
    SERVICE_RASTER,
    RoadRaster,
    road_band_geometries,
    road_band_geometries_sparse,
    sampling_graph,
)
from coverage.isochrones.writing import (
    DISPLAY_TOLERANCE_M,
    LAYER_SERVICES,
    LAYER_SERVICES_DISPLAY,
    LAYER_TYPES,
    LAYER_TYPES_DISPLAY,
    TOLERANCE_COLUMN,
    display_version,
    write_isochrones,
)

__all__ = [
    "ACCURACY_BEYOND_MIN",
    "ACCURACY_SLACK_MIN",
    "BUFFER_M",
    "CELL_M",
    "DISPLAY_TOLERANCE_M",
    "LAYER_SERVICES",
    "LAYER_SERVICES_DISPLAY",
    "LAYER_TYPES",
    "LAYER_TYPES_DISPLAY",
    "MAX_CELLS",
    "MIN_HOLE_M2",
    "PROXY_CELL_M",
    "SERVICES_COLUMNS",
    "SERVICE_CELL_M",
    "SERVICE_MIN_HOLE_M2",
    "SERVICE_RASTER",
    "TOLERANCE_COLUMN",
    "TYPES_COLUMNS",
    "RoadRaster",
    "band_accuracy",
    "bands_from_thresholds",
    "display_version",
    "isochrones_services",
    "isochrones_types",
    "road_band_geometries",
    "road_band_geometries_sparse",
    "sampling_graph",
    "types_accuracy",
    "write_isochrones",
]
