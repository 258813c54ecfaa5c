"""Folium map of the accessibility index (2SFCA / E2SFCA) of a département's communes.

A choropleth of ``indice_pour_100k`` (:mod:`coverage.accessibility`): communes with no
service within the threshold (index 0) in grey, the others in five classes of equal counts
(quintiles of the département's positive values), light to dark. Built on
:func:`coverage.maps.offline_map` (vendored Leaflet, no basemap by default, no CDN); every
text goes through :func:`coverage.safe_text.html_js_safe`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import maps
from coverage.accessibility import PER_INHABITANTS
from coverage.labels import FICTIONAL_LEGEND, fr_decimal, fr_int, type_label
from coverage.safe_text import html_js_safe

__all__ = ["INDEX_COLOURS", "NO_SERVICE_COLOUR", "accessibility_map", "index_breaks"]

#: Fill of the classes, low to high (ColorBrewer YlGnBu, 5 classes).
INDEX_COLOURS: tuple[str, ...] = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
#: Fill of the communes with no service within the threshold (index 0).
NO_SERVICE_COLOUR = "#bdbdbd"


def index_breaks(values: pd.Series | np.ndarray) -> list[float]:
    """Return the upper bounds of the classes of the positive values (quintiles, distinct).

    Parameters
    ----------
    values
        Index per commune (capacity per 100 000 inhabitants); zeros are left out.

    Returns
    -------
    list of float
        Increasing upper bounds, the last being the largest value; empty when no value is
        positive.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if v.shape[0] == 0:
        return []
    q = np.quantile(v, np.linspace(0.2, 1.0, len(INDEX_COLOURS)))
    return sorted({float(x) for x in q})


def _colour(value: float, breaks: Sequence[float]) -> str:
    """Return the fill of one commune's index."""
    if not (math.isfinite(value) and value > 0) or not breaks:
        return NO_SERVICE_COLOUR
    offset = len(INDEX_COLOURS) - len(breaks)
    for k, upper in enumerate(breaks):
        if value <= upper:
            return INDEX_COLOURS[offset + k]
    return INDEX_COLOURS[-1]


def _legend(breaks: Sequence[float], *, title: str, fictif: bool, threshold: float) -> str:
    """Return the HTML legend of the classes."""
    swatch = ("display:inline-block;width:12px;height:9px;border:1px solid #555;"
              "margin-right:4px;vertical-align:middle")
    rows = [(NO_SERVICE_COLOUR, f"0 : aucun service à {fr_decimal(threshold, 0)} min ou moins")]
    lower, offset = 0.0, len(INDEX_COLOURS) - len(breaks)
    for k, upper in enumerate(breaks):
        start = "> 0" if k == 0 else fr_decimal(lower, 2)
        rows.append((INDEX_COLOURS[offset + k], f"{start} – {fr_decimal(upper, 2)}"))
        lower = upper
    items = "".join(f'<div><span style="{swatch};background:{c}"></span>{html_js_safe(t)}</div>'
                    for c, t in rows)
    fict = (f'<div style="color:#b00;font-weight:bold">{html_js_safe(FICTIONAL_LEGEND)}</div>'
            if fictif else "")
    return ('<div id="zb-legend" style="position:fixed;bottom:22px;right:8px;z-index:1000;'
            "background:rgba(255,255,255,.92);padding:5px 8px;border:1px solid #999;"
            'border-radius:4px;font:11px/1.3 sans-serif;max-width:260px">'
            f"<b>{html_js_safe(title)}</b>{fict}{items}</div>")


def accessibility_map(communes: gpd.GeoDataFrame, index: pd.DataFrame, *,
                      services: gpd.GeoDataFrame | None = None, fictif: bool = False,
                      **extras: Any) -> folium.Map:
    """Draw the index of a département's communes (one polygon of class ``commune-indice``).

    Parameters
    ----------
    communes
        Commune polygons (EPSG:4326, e.g. :func:`coverage.maps.display_geometries`) with
        ``code_insee``.
    index
        :attr:`coverage.accessibility.AccessibilityResult.communes` of one type.
    services
        Service points (EPSG:4326) with ``nom`` drawn as small circles, or None.
    fictif
        Draw the FICTIF line in the legend.
    **extras
        ``tiles`` (:class:`coverage.maps.Tiles`) and ``static_url`` of
        :func:`coverage.maps.offline_map`.

    Returns
    -------
    folium.Map
    """
    cols = ["code_insee", "nom", "population", "indice_pour_100k", "services_accessibles"]
    feats = communes[["code_insee", "geometry"]].merge(index[cols], on="code_insee",
                                                       how="inner")
    breaks = index_breaks(feats["indice_pour_100k"])
    feats["_colour"] = [_colour(float(v), breaks) for v in feats["indice_pour_100k"]]
    feats["txt"] = [html_js_safe(f"{n} : {fr_decimal(v, 2)} pour {fr_int(PER_INHABITANTS)} "
                                 f"hab. ({s} service(s) à portée, {fr_int(p)} hab.)")
                    for n, v, s, p in zip(feats["nom"], feats["indice_pour_100k"],
                                          feats["services_accessibles"], feats["population"],
                                          strict=True)]
    bounds = list(feats.total_bounds) if len(feats) else [-5.3, 41.2, 9.7, 51.2]
    m = maps.offline_map(bounds, tiles=extras.get("tiles"),
                         static_url=extras.get("static_url", maps.STATIC_URL))
    layer = folium.FeatureGroup(name="Indice d'accessibilité", show=True)
    folium.GeoJson(
        feats[["txt", "_colour", "geometry"]].reset_index(drop=True),
        style_function=lambda f: {"fillColor": f["properties"]["_colour"], "fillOpacity": 0.8,
                                  "color": "#ffffff", "weight": 0.6,
                                  "className": "commune-indice"},
        tooltip=folium.GeoJsonTooltip(fields=["txt"], labels=False),
    ).add_to(layer)
    layer.add_to(m)
    if services is not None and len(services):
        pts = folium.FeatureGroup(name="Services", show=True)
        for row in services.itertuples(index=False):
            if row.geometry is None or row.geometry.is_empty:
                continue
            folium.CircleMarker(location=[row.geometry.y, row.geometry.x], radius=6,
                                color="#ffffff", weight=2, fill=True, fill_color="#6a3d9a",
                                fill_opacity=1.0, class_name="service",
                                tooltip=html_js_safe(str(row.nom))).add_to(pts)
        pts.add_to(m)
    type_service = str(index["type_service"].iloc[0]) if len(index) else ""
    threshold = float(index["seuil_minutes"].iloc[0]) if len(index) else 0.0
    title = (f"{type_label(type_service)} : capacité pour {fr_int(PER_INHABITANTS)} hab. "
             f"({str(index['methode'].iloc[0]).upper() if len(index) else ''})")
    m.get_root().html.add_child(folium.Element(  # type: ignore[attr-defined]
        _legend(breaks, title=title, fictif=fictif, threshold=threshold)))
    return m
