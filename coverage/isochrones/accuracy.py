"""Accuracy checks of band polygons against the minutes of the road nodes.

Statistics are never computed from the band polygons: they are for display and export.
Their accuracy is measured here, node by node, against the engine's own minutes:

- **reached inside**: the nodes reached before a band's upper bound lie inside the union of
  the bands up to that bound;
- **band inside**: the nodes reached within a band (a little after its lower bound, by
  ``slack_min`` minutes) lie inside that band's polygon, or within ``tolerance_m`` metres
  of it;
- **beyond outside**: the nodes never reached, or reached more than ``beyond_min`` minutes
  after the upper bound, lie outside the union of the bands up to that bound.

The tests hold these shares, wherever they count at least 50 nodes, to ≥ 97 % (the first
two) and ≤ 3 % of the nodes inside (the last) on synthetic grids, the fictional demo
territory and the real Andorra extract.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage._validate import require_columns
from coverage.isochrones.road import BUFFER_M, _road_source
from coverage.routing.base import Engine
from coverage.settings import Settings

__all__ = [
    "ACCURACY_BEYOND_MIN",
    "ACCURACY_SLACK_MIN",
    "band_accuracy",
    "types_accuracy",
]

#: Default slack of the per-band accuracy at the lower bound of a band, minutes.
ACCURACY_SLACK_MIN = 1.0
#: Nodes this many minutes beyond a band's upper bound must not be inside it, minutes.
ACCURACY_BEYOND_MIN = 5.0


def band_accuracy(
    bands: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, minutes: np.ndarray, *, crs: str,
    slack_min: float = ACCURACY_SLACK_MIN, beyond_min: float = ACCURACY_BEYOND_MIN,
    tolerance_m: float = 0.0,
) -> pd.DataFrame:
    """Measure the accuracy of band polygons against the minutes of the road nodes.

    Parameters
    ----------
    bands
        Bands of **one** source set (one type, or one service): ``bande_min``,
        ``bande_max``, geometry in any CRS (projected to ``crs``).
    x, y
        Node coordinates in ``crs``, metres.
    minutes
        Minutes between each node and the same sources, NaN only when unreachable: pass
        minutes without a cut-off (a search bounded at the top threshold would make nodes
        just beyond it look unreachable, hence "beyond").
    crs
        CRS of ``x``/``y``.
    slack_min
        Tolerance at the lower bound of a band: a node reached within ``slack_min`` minutes
        after ``bande_min`` may lie in the previous band (the reach of a road point covers
        ``buffer_m`` of land, which may hold a road reached a little earlier).
    beyond_min
        Nodes reached more than this many minutes after ``bande_max`` (or never) must not be
        inside the union of the bands up to ``bande_max``.
    tolerance_m
        Tolerance of the per-band share at the band's edges, metres: a node of the band
        outside its polygon but within this distance of it counts as inside (use the
        buffer width: land within ``buffer_m`` of a road reached earlier shows in the
        earlier band, as on hairpin bends and one-way loops).

    Returns
    -------
    pandas.DataFrame
        One row per band: ``bande_min``, ``bande_max``, ``n_atteints`` (nodes with minutes
        < bande_max), ``part_atteints_dedans`` (share of them inside the union of bands up
        to bande_max), ``n_bande`` (nodes with minutes in [bande_min + slack, bande_max)),
        ``part_bande_dedans`` (share of them inside this band's polygon, or within
        ``tolerance_m`` of it), ``n_au_dela``
        (nodes unreachable or beyond bande_max + beyond_min), ``part_au_dela_dedans``
        (share of them inside the union up to bande_max). Shares are NaN when a count is 0.
    """
    require_columns(bands, ["bande_min", "bande_max", "geometry"], file="bands")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    minutes = np.asarray(minutes, dtype=float)
    metric = bands.to_crs(crs) if bands.crs is not None else bands
    metric = metric.sort_values("bande_max")
    reached = np.isfinite(minutes)
    out = []
    inside_union = np.zeros(x.shape, dtype=bool)
    for low, high, geom in zip(metric["bande_min"], metric["bande_max"], metric.geometry,
                               strict=True):
        shapely.prepare(geom)
        inside = shapely.contains_xy(geom, x, y) | shapely.intersects_xy(geom, x, y)
        inside_union |= inside
        within = reached & (minutes < high)
        in_band = reached & (minutes >= low + (slack_min if low > 0 else 0.0)) & (minutes < high)
        near = inside.copy()
        if tolerance_m > 0:
            check = np.flatnonzero(in_band & ~inside)
            near[check] = shapely.dwithin(geom, shapely.points(x[check], y[check]),
                                          tolerance_m)
        beyond = ~reached | (minutes > high + beyond_min)
        out.append({
            "bande_min": float(low), "bande_max": float(high),
            "n_atteints": int(within.sum()),
            "part_atteints_dedans": _share(inside_union, within),
            "n_bande": int(in_band.sum()),
            "part_bande_dedans": _share(near, in_band),
            "n_au_dela": int(beyond.sum()),
            "part_au_dela_dedans": _share(inside_union, beyond),
        })
    return pd.DataFrame(out)


def types_accuracy(
    engine: Engine, types_gdf: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
    settings: Settings = Settings(), tolerance_m: float = BUFFER_M,
) -> pd.DataFrame:
    """Measure :func:`band_accuracy` of the merged bands of each type on the road nodes.

    Parameters
    ----------
    engine
        The ``RoadEngine`` that drew ``types_gdf`` (its network and ``node_minutes``).
    types_gdf
        From :func:`coverage.isochrones.bands.isochrones_types` (EPSG:4326).
    services
        The services the bands were drawn from.
    settings
        ``service_types`` to report.
    tolerance_m
        Edge tolerance of the per-band share, metres (the buffer width).

    Returns
    -------
    pandas.DataFrame
        ``type_service`` plus the columns of :func:`band_accuracy`, one row per type × band;
        empty for the proxy engine (it has no road nodes).
    """
    if engine.name != "road":
        return pd.DataFrame()
    road = _road_source(engine)
    network = road.network
    frames = []
    for t in settings.service_types:
        bands = types_gdf[types_gdf["type_service"] == t]
        chosen = services[services["type_service"].astype(str) == t]
        if bands.empty or chosen.empty:
            continue
        minutes = road.node_minutes(chosen)
        acc = band_accuracy(bands, network.x, network.y, minutes, crs=network.crs,
                            tolerance_m=tolerance_m)
        acc.insert(0, "type_service", t)
        frames.append(acc)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _share(flag: np.ndarray, among: np.ndarray) -> float:
    """Return the share of the ``among`` entries that are ``flag``, NaN when there is none."""
    n = int(among.sum())
    return float((flag & among).sum() / n) if n else float("nan")
