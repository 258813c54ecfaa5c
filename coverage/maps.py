"""Folium maps of access times and white zones, built to work offline.

Every map made here loads Leaflet and jQuery from the app's own static files
(``static/vendor``, served by Streamlit at ``/app/static/vendor``), never from a CDN, and has
no basemap unless a tile URL is given: the vector layers carry the map. Nothing here imports
Streamlit, so the builders are usable from notebooks and tests.

What a planner reads on a département's map (:func:`access_map`):

- communes coloured by class of minutes to the nearest service, the classes built from the
  run's thresholds (:func:`coverage.classes.minute_classes`, the same as the PNG and the
  report), in a colour-blind-safe sequential palette (viridis);
- white zones hatched (an SVG ``<pattern>`` per class colour, ``fill="url(#zb-hatch-…)"``)
  with a thin dark outline, never an outline alone;
- with a :class:`DepartementContext` (:func:`departement_context`): the département's
  outline, the neighbouring départements' communes in light grey with their services, and
  place names (préfectures, sous-préfectures, largest communes) whose density follows the
  zoom (Leaflet markers centred by CSS, shown or hidden on ``zoomend``);
- a metric-only scale bar, isochrone bands as dashed contour lines (not fills) with their
  own legend, and the view fitted to the département plus its nearest services.

The legend is a collapsible panel in the map (closed by default) and is available as HTML
for a page to draw beside the map (:func:`legend_html`).

Geometries are expected in EPSG:4326 at the boundary; simplification for display is done in
the metric CRS of the département (:func:`coverage.settings.metric_crs_for`). Labels (service
types, engines, the FICTIONAL banner) come from :mod:`coverage.labels`.

Every string that enters a map (names of communes and services, organisms, place labels,
the « Nouveau site » tooltips, the legend, the tile attribution) goes through
:func:`coverage.safe_text.html_js_safe`: folium writes tooltips and popups inside JavaScript
template literals, where ``html.escape`` alone would let a backtick or ``${…}`` run code.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from jinja2 import Template

from coverage.classes import HATCH_COLOUR, UNREACHABLE_COLOUR, MinuteClasses, minute_classes
from coverage.errors import CoverageError
from coverage.labels import ENGINE_SHORT, FICTIONAL_BANNER, FICTIONAL_LEGEND, type_label
from coverage.results import RunOutputs, source_line
from coverage.safe_text import html_js_safe
from coverage.settings import (
    COMMUNES_DATA_DIR,
    CRS_INPUT_OUTPUT,
    NO_SERVICE,
    Settings,
    metric_crs_for,
)
from coverage.whitezones import is_white_zone

if TYPE_CHECKING:
    from coverage.siting import SitingResult

__all__ = [
    "CHEFS_LIEUX_FILE",
    "DEFAULT_SOURCES",
    "DISPLAY_DECIMALS",
    "DISPLAY_TOLERANCE_M",
    "HATCH_ID",
    "ISOCHRONE_COLOUR",
    "NEIGHBOUR_FILL",
    "NEW_COVER_COLOUR",
    "OUTLINE_COLOUR",
    "SERVICE_COLOURS",
    "SITE_COLOUR",
    "SOURCE_MAX_CHARS",
    "STATIC_URL",
    "UNREACHABLE_COLOUR",
    "VENDOR_CSS",
    "VENDOR_JS",
    "DepartementContext",
    "MapExtras",
    "MapLegend",
    "Tiles",
    "access_map",
    "access_map_and_legend",
    "add_new_sites",
    "chefs_lieux",
    "commune_features",
    "departement_context",
    "departement_isochrones",
    "display_geometries",
    "external_references",
    "fmt_int",
    "legend_html",
    "legend_sources",
    "map_html",
    "minutes_colour",
    "offline_map",
    "place_labels",
    "shown_services",
]

log = logging.getLogger(__name__)

#: URL under which Streamlit serves ``static/`` (``[server] enableStaticServing = true``).
STATIC_URL = "/app/static"
#: Vendored scripts each map loads, relative to :data:`STATIC_URL` (see static/vendor/README.md).
VENDOR_JS: tuple[tuple[str, str], ...] = (
    ("leaflet", "vendor/leaflet/leaflet.js"),
    ("jquery", "vendor/jquery/jquery.min.js"),
)
#: Vendored style sheets each map loads, relative to :data:`STATIC_URL`.
VENDOR_CSS: tuple[tuple[str, str], ...] = (("leaflet_css", "vendor/leaflet/leaflet.css"),)

#: Prefix of the ids of the hatch patterns of white zones (``zb-hatch-0`` … one per class,
#: ``zb-hatch-na`` for unreachable communes).
HATCH_ID = "zb-hatch"
#: Outline of white-zone communes (thin: the hatching carries the meaning).
WHITE_ZONE_EDGE = "#1b1b1b"
#: Outline of the département.
OUTLINE_COLOUR = "#111111"
#: Fill of the neighbouring départements' communes.
NEIGHBOUR_FILL = "#e4e4e4"
#: Colour of the isochrone contour lines (not a colour of the choropleth).
ISOCHRONE_COLOUR = "#d94801"
#: Colour of the service markers by type (the PNG's colours).
SERVICE_COLOURS: dict[str, str] = {
    "mediation_familiale": "#e66101",
    "espace_rencontre": "#c51b7d",
}
#: Default simplification tolerance of commune outlines for display, metres.
DISPLAY_TOLERANCE_M = 75.0
#: Simplification of the neighbouring communes (drawn in grey, for context), metres.
NEIGHBOUR_TOLERANCE_M = 500.0
#: Margin of context drawn around the département and its nearest services, metres.
CONTEXT_MARGIN_M = 12_000.0
#: Farthest a service may lie from the communes' box to be fitted in the view, degrees of
#: latitude (≈ 40 km; 1.4 times more in longitude).
FIT_REACH_DEG = 0.36
#: Decimals kept in displayed coordinates (1e-5 degree ≈ 1 m).
DISPLAY_DECIMALS = 5
#: Outline of the communes a suggested new site would newly cover (« Nouveau site »).
NEW_COVER_COLOUR = "#00a651"
#: Fill of the suggested-site markers.
SITE_COLOUR = "#e6007e"
#: Longest source line written in a map legend, characters.
SOURCE_MAX_CHARS = 160
#: Préfectures and sous-préfectures (``code_insee, chef_lieu``), built by
#: ``scripts/build_chefs_lieux.py`` from Etalab's « découpage administratif ».
CHEFS_LIEUX_FILE = COMMUNES_DATA_DIR / "chefs_lieux_cog2026.csv"
#: Place labels by zoom level: (largest communes of the département beyond its chefs-lieux,
#: zoom steps above the fitted view at which they appear).
_LABEL_LEVELS = ((6, 0.0), (14, 0.75), (40, 1.5))


#: A tile URL template: http or https, a host, then a path.
_TILE_URL = re.compile(r"^https?://[^/\s\\\"'<>`]+/\S*$", re.IGNORECASE)


@dataclass(frozen=True)
class Tiles:
    """An optional raster basemap.

    Parameters
    ----------
    url
        XYZ tile URL template (``https://…/{z}/{x}/{y}.png``). Requests go to this host: use a
        local tile server to stay offline.
    attribution
        Attribution shown on the map (required by most tile providers), as plain text: it
        is escaped like every other string of a map (:func:`coverage.safe_text.html_js_safe`),
        so HTML tags show as typed.

    Raises
    ------
    coverage.errors.CoverageError
        The URL is not ``http(s)://host/…``.
    """

    url: str
    attribution: str = ""

    def __post_init__(self) -> None:
        """Check the URL: ``http(s)://host/…`` only.

        Raises
        ------
        coverage.errors.CoverageError
            Another scheme (``javascript:``, ``data:``, ``file:``…) or no host.
        """
        if not _TILE_URL.match(self.url):
            msg = (f"URL de tuiles refusée : {self.url!r} ; attendu un modèle "
                   "http(s)://hôte/{z}/{x}/{y}.png")
            raise CoverageError(msg)


def _default_classes() -> MinuteClasses:
    """Return the classes of the default thresholds (:class:`coverage.settings.Settings`)."""
    return minute_classes(Settings().thresholds_min)


def minutes_colour(minutes: float | None, classes: MinuteClasses | None = None) -> str:
    """Fill colour of a commune by its minutes to the nearest service.

    Parameters
    ----------
    minutes
        Minutes by car; NaN or None when no service is reachable.
    classes
        The run's classes (:func:`coverage.classes.minute_classes`); default: those of
        the default thresholds.

    Returns
    -------
    str
        A ``#rrggbb`` colour of the classes, or :data:`UNREACHABLE_COLOUR`.
    """
    return (classes or _default_classes()).colour(minutes)


def display_geometries(
    frame: gpd.GeoDataFrame,
    *,
    tolerance_m: float = DISPLAY_TOLERANCE_M,
    metric_crs: str | None = None,
    decimals: int = DISPLAY_DECIMALS,
) -> gpd.GeoDataFrame:
    """Light copies of polygons for display: simplified in metres, rounded in degrees.

    Parameters
    ----------
    frame
        Polygons with a CRS (any; EPSG:4326 expected).
    tolerance_m
        Douglas–Peucker tolerance, metres, applied in ``metric_crs`` with topology kept.
    metric_crs
        Metric CRS for the simplification; default: that of the first ``code_dep`` of the
        frame (:func:`coverage.settings.metric_crs_for`), else Lambert-93.
    decimals
        Decimals kept in the EPSG:4326 output coordinates.

    Returns
    -------
    geopandas.GeoDataFrame
        Same rows and columns, geometries in EPSG:4326. Never empties a geometry: a polygon
        that the simplification would erase keeps its original outline.
    """
    if frame.crs is None:
        msg = "display_geometries needs a CRS on the frame; call set_crs() first"
        raise ValueError(msg)
    if metric_crs is None:
        code_dep = str(frame["code_dep"].iloc[0]) if "code_dep" in frame and len(frame) else ""
        metric_crs = metric_crs_for(code_dep)
    out = frame.copy()
    if tolerance_m > 0 and len(out):
        metric = out.geometry.to_crs(metric_crs)
        simple = metric.simplify(tolerance_m, preserve_topology=True)
        lost = simple.is_empty | simple.isna()
        simple[lost] = metric[lost]
        out = out.set_geometry(simple.to_crs(CRS_INPUT_OUTPUT))
    else:
        out = out.to_crs(CRS_INPUT_OUTPUT)
    rounded = shapely.transform(
        out.geometry.values, lambda xy: np.round(xy, decimals)  # type: ignore[arg-type]
    )
    return out.set_geometry(gpd.GeoSeries(rounded, index=out.index, crs=CRS_INPUT_OUTPUT))


def fmt_int(value: Any) -> str:
    """Return a whole number with a narrow no-break space between thousands (« — » if none)."""
    try:
        return f"{int(value):,}".replace(",", "\u202f")
    except (TypeError, ValueError):
        return "—"


def _fmt_minutes(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "aucun service accessible"
    if not math.isfinite(v):
        return "aucun service accessible"
    return f"{v:.0f} min"


def _fmt_number(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "non renseignée"
    if not math.isfinite(v):
        return "non renseignée"
    return f"{v:g}"


def commune_features(
    communes: gpd.GeoDataFrame,
    access: pd.DataFrame,
    services: pd.DataFrame | None,
    *,
    threshold_min: float,
) -> gpd.GeoDataFrame:
    """Communes joined to their access times, with display fields for a map.

    Parameters
    ----------
    communes
        Commune polygons (EPSG:4326) with ``code_insee, nom, population``.
    access
        Rows of the ``acces_communes`` contract for ONE service type: ``code_insee,
        minutes`` (NaN unreachable), optionally ``service_id, distance_km, moteur``.
    services
        Services with ``service_id, nom`` (to name the nearest one), or None.
    threshold_min
        White-zone threshold, minutes.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per commune (EPSG:4326) with ``code_insee, nom, population, minutes,
        zone_blanche`` and HTML-escaped text fields ``nom_txt, population_txt, minutes_txt,
        service_txt, zone_txt``.
    """
    cols = [c for c in ("code_insee", "minutes", "service_id", "distance_km") if c in access]
    acc = access[cols].drop_duplicates("code_insee")
    keep = [c for c in ("code_insee", "nom", "population", "code_dep", "geometry")
            if c in communes]
    out = communes[keep].merge(acc, on="code_insee", how="left")
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=communes.crs)
    if "minutes" not in out:
        out["minutes"] = np.nan
    out["minutes"] = pd.to_numeric(out["minutes"], errors="coerce").astype(float)
    out["zone_blanche"] = is_white_zone(out["minutes"], threshold_min)
    names: dict[str, str] = {}
    if services is not None and len(services) and "service_id" in services:
        names = dict(zip(services["service_id"].astype(str),
                         [_service_name(r) for r in services.itertuples(index=False)],
                         strict=False))
    sid = out["service_id"] if "service_id" in out else pd.Series(pd.NA, index=out.index)
    out["service_txt"] = [
        names.get(str(s), str(s)) if isinstance(s, str) and s else "—" for s in sid
    ]
    if "distance_km" in out:
        km = pd.to_numeric(out["distance_km"], errors="coerce")
        out["service_txt"] = [
            f"{t} ({k:.1f} km)" if t != "—" and math.isfinite(k) else t
            for t, k in zip(out["service_txt"], km, strict=True)
        ]
    # Tooltips insert these strings as HTML: escape what comes from input files.
    out["nom_txt"] = [html_js_safe(str(n)) for n in out["nom"]]
    out["service_txt"] = [html_js_safe(t) for t in out["service_txt"]]
    out["population_txt"] = [fmt_int(p) for p in out.get("population", pd.Series(dtype=int))]
    out["minutes_txt"] = [_fmt_minutes(m) for m in out["minutes"]]
    out["zone_txt"] = np.where(out["zone_blanche"], "oui", "non")
    return out


def offline_map(
    bounds: Sequence[float],
    *,
    tiles: Tiles | None = None,
    static_url: str = STATIC_URL,
) -> folium.Map:
    """Build an empty folium map whose scripts and style sheets are the app's vendored copies.

    Parameters
    ----------
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` to fit, degrees (EPSG:4326).
    tiles
        Optional basemap; None (default) draws no tiles at all, so the map makes no
        request outside the app.
    static_url
        URL prefix of the app's ``static/`` folder.

    Returns
    -------
    folium.Map
        With ``default_js``/``default_css`` replaced by local URLs (no Bootstrap, Font
        Awesome or awesome-markers, which folium would otherwise fetch from CDNs), and a
        metric-only scale bar (kilometres and metres, no miles).
    """
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        control_scale=False,
        prefer_canvas=False,
        zoom_snap=0.25,
    )
    prefix = static_url.rstrip("/")
    # Instance attributes shadow folium's class-level CDN lists (JSCSSMixin reads self.*).
    m.default_js = [(name, f"{prefix}/{path}") for name, path in VENDOR_JS]
    m.default_css = [(name, f"{prefix}/{path}") for name, path in VENDOR_CSS]
    if tiles is not None:
        folium.TileLayer(
            tiles=tiles.url,
            attr=html_js_safe(tiles.attribution or tiles.url.split("/")[2]),
            name="Fond de carte",
            overlay=False,
            control=True,
        ).add_to(m)
    _Script("L.control.scale({metric: true, imperial: false, maxWidth: 160})"
            ".addTo(__MAP__);").add_to(m)
    # a margin in degrees, not Leaflet's pixel padding: a map drawn in a frame that has no
    # size yet would get a negative size, then a NaN centre, with pixel padding
    dx, dy = (maxx - minx) * 0.03, (maxy - miny) * 0.03
    # fitted at once, before any layer is added: an animated zoom from folium's default
    # view would draw every layer twice (at zoom 10, then at the fitted zoom)
    fit = folium.FitBounds([[miny - dy, minx - dx], [maxy + dy, maxx + dx]])
    fit.options["animate"] = False
    m.add_child(fit)
    return m


class _Text(Element):
    """A piece of a page written as it is (not parsed as a template: fast for large data)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self._template = _TEXT_TEMPLATE


_TEXT_TEMPLATE = Template("{{ this.text }}")


class _Script(MacroElement):
    """A script run once the map exists.

    ``__MAP__`` in ``js`` is replaced by the map's variable, ``__DATA__`` by ``data``:
    ``data`` is JSON whose text fields are already escaped with
    :func:`coverage.safe_text.html_js_safe`; the script is written as it is, never parsed as
    a Jinja template (branca would parse a rendered script again, slowly for large data).
    """

    def __init__(self, js: str, data: str = "null") -> None:
        super().__init__()
        self._name = "ZbScript"
        self.js = js
        self.data = data

    def render(self, **kwargs: Any) -> str:
        """Add the script to the page's scripts (after the map's own); return ``""``."""
        del kwargs
        parent = self._parent
        assert parent is not None, "add the script to a map first"
        code = self.js.replace("__MAP__", parent.get_name()).replace("__DATA__", self.data)
        self.get_root().script.add_child(  # type: ignore[attr-defined]
            _Text(code), name=self.get_name())
        return ""


# --- Département context: outline, neighbours, place names --------------------------------


@functools.cache
def chefs_lieux() -> dict[str, str]:
    """Return the préfectures and sous-préfectures by code INSEE (empty without the file).

    Returns
    -------
    dict
        Code INSEE → ``prefecture`` or ``sous-prefecture`` (:data:`CHEFS_LIEUX_FILE`).
    """
    if not CHEFS_LIEUX_FILE.exists():
        log.warning("%s absent : les noms de lieux retombent sur les plus grandes communes",
                    CHEFS_LIEUX_FILE)
        return {}
    table = pd.read_csv(CHEFS_LIEUX_FILE, dtype=str)
    return dict(zip(table["code_insee"], table["chef_lieu"], strict=True))


def _points(communes: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return (lon, lat) of each commune: its ``lon``/``lat`` columns, else a point inside."""
    if {"lon", "lat"} <= set(communes.columns):
        lon = pd.to_numeric(communes["lon"], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(communes["lat"], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(lon).all() and np.isfinite(lat).all():
            return lon, lat
    pts = communes.geometry.representative_point()
    return pts.x.to_numpy(dtype=float), pts.y.to_numpy(dtype=float)


def _own_levels(own: pd.DataFrame, chefs: Mapping[str, str]) -> pd.Series:
    """Return the label level of the département's communes (NaN: not labelled)."""
    kind = own["code_insee"].astype(str).map(chefs)
    level = pd.Series(np.nan, index=own.index)
    level[kind == "prefecture"] = 0
    level[kind == "sous-prefecture"] = 1
    pop = (pd.to_numeric(own["population"], errors="coerce").fillna(0)
           if "population" in own else pd.Series(0.0, index=own.index))
    others = pop[level.isna()].sort_values(ascending=False, kind="stable")
    if not (level == 0).any() and len(others):  # no préfecture known: the largest commune
        level[others.index[0]] = 0
        others = others.iloc[1:]
    start = 0
    for lvl, (count, _step) in enumerate(_LABEL_LEVELS, start=1):
        level[others.index[start:start + count]] = lvl
        start += count
    return level


def place_labels(communes: gpd.GeoDataFrame, dept: str,
                 chefs: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Choose the place names of a département's map and the zoom level of each.

    Parameters
    ----------
    communes
        Communes of the département and of the area around it (EPSG:4326) with
        ``code_insee, nom, code_dep, population`` and, when known, ``lon, lat``.
    dept
        Département code.
    chefs
        Code INSEE → ``prefecture``/``sous-prefecture``; default :func:`chefs_lieux`.

    Returns
    -------
    pandas.DataFrame
        ``lat, lon`` (degrees), ``text`` (escaped name), ``level`` (0: always shown — the
        préfecture, or the largest commune when no préfecture is known; 1: sous-préfectures
        and the 6 next largest, shown from the fitted view on; 2 and 3: 14 and 40 more,
        shown when zoomed in) and ``voisin`` (True for the chefs-lieux of the neighbouring
        départements, shown from level 1 and 2), sorted by level.
    """
    chefs = chefs_lieux() if chefs is None else chefs
    lon, lat = _points(communes)
    frame = pd.DataFrame({"code_insee": communes["code_insee"].astype(str).to_numpy(),
                          "nom": communes["nom"].astype(str).to_numpy(),
                          "code_dep": communes["code_dep"].astype(str).to_numpy(),
                          "population": pd.to_numeric(communes.get("population"),
                                                      errors="coerce").to_numpy(),
                          "lon": lon, "lat": lat})
    is_own = frame["code_dep"] == dept
    frame["level"] = np.nan
    frame.loc[is_own, "level"] = _own_levels(frame[is_own], chefs)
    kind = frame["code_insee"].map(chefs)
    frame.loc[~is_own & (kind == "prefecture"), "level"] = 1
    frame.loc[~is_own & (kind == "sous-prefecture"), "level"] = 2
    frame["voisin"] = ~is_own
    out = frame[frame["level"].notna()].copy()
    out["level"] = out["level"].astype(int)
    out["text"] = [html_js_safe(n) for n in out["nom"]]
    out = out.sort_values(["level", "population"], ascending=[True, False], kind="stable")
    return out[["lat", "lon", "text", "level", "voisin"]].reset_index(drop=True)


@dataclass(frozen=True)
class DepartementContext:
    """What a département's map draws around its communes (from :func:`departement_context`).

    Attributes
    ----------
    dept
        Département code.
    outline
        One row: the département's outline, simplified (EPSG:4326).
    neighbours
        Communes of the other départements around it, simplified more (EPSG:4326), drawn
        in light grey with no text.
    services
        Services of the other départements around it (EPSG:4326), every type.
    labels
        Place names (:func:`place_labels`).
    neighbour_rings
        The neighbours' outlines as the map script reads them, encoded once with the
        context (:func:`_neighbour_svg`): JSON ``{"bounds", "box", "d"}``, one SVG path in
        Web Mercator units, ``"[]"`` when there are none.
    """

    dept: str
    outline: gpd.GeoDataFrame
    neighbours: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    labels: pd.DataFrame
    neighbour_rings: str = "[]"


def _extent_4326(extent_m: Sequence[float] | np.ndarray, metric_crs: str) -> tuple[float, ...]:
    """Return a metric box as (min_lon, min_lat, max_lon, max_lat) covering it, degrees."""
    box = gpd.GeoSeries([shapely.box(*extent_m)], crs=metric_crs).to_crs(CRS_INPUT_OUTPUT)
    return tuple(float(v) for v in box.total_bounds)


def _outline(polygons: np.ndarray) -> Any:
    """Return the union of communes that tile a territory (metric CRS).

    Communes sharing their edges exactly are merged by :func:`shapely.coverage_union_all`
    (milliseconds); when the result is not a valid polygon without holes (edges that do not
    match), by a general union that closes slivers narrower than 10 m.
    """
    merged = shapely.coverage_union_all(polygons)
    if shapely.is_valid(merged) and not shapely.get_num_interior_rings(
            shapely.get_parts(merged)).any():
        return merged
    return shapely.union_all(shapely.buffer(polygons, 5.0)).buffer(-5.0)


def _grey_outlines(geoms: np.ndarray) -> np.ndarray:
    """Return light outlines of context communes, drawn in grey and never measured.

    Simplified in degrees (≈ 500 m) without keeping topology, 3 decimals (≈ 100 m); none
    emptied.
    """
    if not len(geoms):
        return geoms
    tol = NEIGHBOUR_TOLERANCE_M / 111_000.0
    simple = shapely.simplify(geoms, tol, preserve_topology=False)
    lost = shapely.is_empty(simple) | shapely.is_missing(simple)
    simple[lost] = geoms[lost]
    return shapely.transform(simple, lambda xy: np.round(xy, 3))  # type: ignore[arg-type]


def departement_context(
    communes: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    dept: str,
    access: pd.DataFrame | None = None,
) -> DepartementContext:
    """Prepare the context of a département's map once: outline, neighbours, place names.

    Parameters
    ----------
    communes
        Every commune of the run (EPSG:4326) with ``code_insee, nom, code_dep,
        population`` and, when known, ``lon, lat``.
    services
        Every service of the run (EPSG:4326) with ``service_id, code_dep``.
    dept
        Département code.
    access
        The département's ``acces_communes`` rows (``service_id``): the area drawn reaches
        the nearest services of its communes, plus a margin of 12 km.

    Returns
    -------
    DepartementContext
        Outline simplified at 75 m, neighbouring communes at 250 m (in the département's
        metric CRS, :func:`coverage.settings.metric_crs_for`).
    """
    metric = metric_crs_for(dept)
    is_own = communes["code_dep"].astype(str) == dept
    own = communes[is_own]
    own_m = own.geometry.to_crs(metric)
    outline = _outline(own_m.to_numpy()).simplify(DISPLAY_TOLERANCE_M)
    outline_gdf = display_geometries(
        gpd.GeoDataFrame({"code_dep": [dept]}, geometry=[outline], crs=metric),
        tolerance_m=0.0)
    extent = np.array(own_m.total_bounds, dtype=float)
    if access is not None and "service_id" in access and "service_id" in services:
        near = _near(services[services["service_id"].astype(str).isin(
            set(access["service_id"].dropna().astype(str)))], own.total_bounds)
        if len(near):
            nb = near.geometry.to_crs(metric).total_bounds
            extent = np.r_[np.minimum(extent[:2], nb[:2]), np.maximum(extent[2:], nb[2:])]
    extent = extent + np.array([-1, -1, 1, 1]) * CONTEXT_MARGIN_M
    # a map is wider than tall: widen the area drawn to a 1.6:1 view (or heighten to 2:1)
    cx, cy = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    half_w = max(extent[2] - extent[0], 1.6 * (extent[3] - extent[1])) / 2
    half_h = max(extent[3] - extent[1], (extent[2] - extent[0]) / 2) / 2
    extent = np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
    minx, miny, maxx, maxy = _extent_4326(extent, metric)
    # the spatial index of the run's communes is built once and kept with them
    hits = communes.sindex.query(shapely.box(minx, miny, maxx, maxy))
    around = communes.iloc[np.sort(hits)]
    around = around[around["code_dep"].astype(str) != dept]
    keep = [c for c in ("code_insee", "nom", "code_dep", "population", "lon", "lat",
                        "geometry") if c in communes]
    neighbours = gpd.GeoDataFrame(geometry=_grey_outlines(around.geometry.to_numpy()),
                                  crs=CRS_INPUT_OUTPUT)
    other = services[services["code_dep"].astype(str) != dept] if "code_dep" in services \
        else services.iloc[:0]
    other = other.cx[minx:maxx, miny:maxy].reset_index(drop=True)
    labelled = pd.concat([own[keep], around[keep]], ignore_index=True)
    labels = place_labels(gpd.GeoDataFrame(labelled, geometry="geometry",
                                           crs=communes.crs), dept)
    rings = _neighbour_svg(neighbours.geometry.to_numpy())
    return DepartementContext(dept, outline_gdf, neighbours, other, labels, rings)


# --- Legend ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MapLegend:
    """What the legend of an access map says (:func:`access_map_and_legend`).

    Attributes
    ----------
    classes
        Classes of minutes of the choropleth.
    type_service, threshold_min, engine, fictif
        What the map shows (threshold in minutes).
    n_white, n_communes
        White-zone communes and communes drawn.
    bands
        Upper limits of the isochrone bands drawn, minutes (empty: none).
    sources
        Attribution, escaped HTML.
    neighbours
        True when the neighbouring départements and the outline are drawn.
    """

    classes: MinuteClasses
    type_service: str
    threshold_min: float
    engine: str
    fictif: bool
    n_white: int
    n_communes: int
    bands: tuple[float, ...]
    sources: str
    neighbours: bool


_SWATCH = ("display:inline-block;width:14px;height:10px;border:1px solid #555;"
           "margin-right:5px;vertical-align:middle")


def _hatch_css(colour: str) -> str:
    """Return a CSS background that looks like the map's hatching over ``colour``."""
    return (f"background:repeating-linear-gradient(45deg,{HATCH_COLOUR} 0 1.5px,"
            f"transparent 1.5px 5px),{colour}")


def _legend_inner(lg: MapLegend) -> str:
    """Return the legend's HTML (user text escaped), without its frame."""
    classes = "".join(
        f'<div><span style="{_SWATCH};background:{c}"></span>{html_js_safe(t)}</div>'
        for c, t in lg.classes.rows())
    dark = lg.classes.colours[-1]
    white = (
        f'<div style="margin-top:4px"><span style="{_SWATCH};{_hatch_css(dark)}"></span>'
        f"<b>zone blanche</b> (&gt; {lg.threshold_min:g} min ou non accessible) : "
        f"{lg.n_white} / {lg.n_communes} communes</div>")
    shown = list(SERVICE_COLOURS) if lg.type_service == NO_SERVICE else [lg.type_service]
    dot = ("display:inline-block;width:10px;height:10px;border-radius:50%;"
           "border:2px solid #fff;outline:1px solid #333;margin-right:5px;"
           "vertical-align:middle")
    markers = "".join(
        f'<div><span style="{dot};background:{SERVICE_COLOURS.get(t, "#333")}"></span>'
        f"service : {html_js_safe(type_label(t))}</div>" for t in shown)
    context = (
        f'<div><span style="{_SWATCH};background:{NEIGHBOUR_FILL};border-color:#bbb"></span>'
        "communes des départements voisins (leurs services en plus petit)</div>"
        f'<div><span style="display:inline-block;width:14px;height:0;border-top:3px solid '
        f'{OUTLINE_COLOUR};margin-right:5px;vertical-align:middle"></span>'
        "limite du département</div>" if lg.neighbours else "")
    bands = ""
    if lg.bands:
        items = "".join(
            f'<div><span style="display:inline-block;width:22px;height:0;border-top:'
            f"{_band_weight(i, len(lg.bands)):g}px dashed {ISOCHRONE_COLOUR};margin-right:5px;"
            f'vertical-align:middle"></span>≤ {u:g} min d’un service</div>'
            for i, u in enumerate(lg.bands))
        bands = ('<div style="margin-top:4px"><b>Isochrones</b> (limites des bandes de '
                 f"temps, traits orange)</div>{items}")
    fict = (f'<div style="color:#b00;font-weight:bold">{html_js_safe(FICTIONAL_LEGEND)}'
            "</div>" if lg.fictif else "")
    return (
        f"{fict}<div><b>Temps d'accès en voiture au service le plus proche — "
        f"{html_js_safe(type_label(lg.type_service))}</b></div>"
        f"{classes}{white}{markers}{context}{bands}"
        f'<div style="margin-top:4px">Moteur : <b>{html_js_safe(lg.engine)}</b> '
        f"({html_js_safe(ENGINE_SHORT.get(lg.engine, ''))})</div>"
        f'<div style="margin-top:2px;color:#555;font-size:0.85em">{lg.sources}</div>'
    )


def legend_html(legend: MapLegend, element_id: str = "zb-app-legend") -> str:
    """Return the legend of a map as an HTML block for a page, outside the map.

    Parameters
    ----------
    legend
        The legend of an :func:`access_map_and_legend` map.
    element_id
        ``id`` of the block.

    Returns
    -------
    str
        A ``<div>`` with inline styles only (no script); user text is escaped.
    """
    return (f'<div id="{element_id}" role="region" aria-label="Légende de la carte" '
            'style="font:13px/1.45 sans-serif;border:1px solid #ccc;border-radius:4px;'
            f'padding:6px 9px;background:#fff">{_legend_inner(legend)}</div>')


def _legend_panel(legend: MapLegend) -> str:
    """Return the legend as a collapsible panel of the map page (closed by default)."""
    return (
        '<details id="zb-legend" style="position:fixed;top:10px;right:54px;z-index:1000;'
        "background:rgba(255,255,255,.95);padding:3px 8px;border:1px solid #999;"
        'border-radius:4px;font:11px/1.35 sans-serif;max-width:270px">'
        '<summary style="cursor:pointer;font-weight:bold">Légende</summary>'
        f"{_legend_inner(legend)}</details>"
    )


def _banner_html() -> str:
    return (
        '<div id="zb-fictif" style="position:fixed;top:8px;left:50%;transform:translateX(-50%);'
        "z-index:1000;background:#b00;color:#fff;padding:3px 12px;border-radius:3px;"
        f'font:bold 13px sans-serif">{html_js_safe(FICTIONAL_BANNER)}</div>'
    )


def _hatch_defs(classes: MinuteClasses) -> str:
    """Return a hidden SVG with one hatch pattern per class colour (and unreachable)."""
    def pattern(suffix: str, colour: str) -> str:
        return (f'<pattern id="{HATCH_ID}-{suffix}" patternUnits="userSpaceOnUse" width="8" '
                'height="8" patternTransform="rotate(45)">'
                f'<rect width="8" height="8" fill="{colour}"/>'
                f'<rect width="1.6" height="8" fill="{HATCH_COLOUR}"/></pattern>')

    patterns = "".join(pattern(str(i), c) for i, c in enumerate(classes.colours))
    patterns += pattern("na", UNREACHABLE_COLOUR)
    return ('<svg id="zb-patterns" width="0" height="0" aria-hidden="true" '
            f'style="position:absolute"><defs>{patterns}</defs></svg>')


_LABEL_CSS = """<style>
html .leaflet-container{background:#fff}
.leaflet-marker-icon.zb-label{width:0;height:0;background:none;border:0;pointer-events:none}
.zb-label span{position:absolute;left:0;top:0;transform:translate(-50%,-50%);
 background:rgba(255,255,255,.8);padding:0 3px;border-radius:2px;color:#111;
 font:600 11px/1.25 sans-serif;white-space:nowrap;pointer-events:none}
.zb-label-0 span{font-size:14px;font-weight:700}
.zb-label-1 span{font-size:12px}
.zb-voisin span{color:#555;font-style:italic;font-weight:400;background:rgba(255,255,255,.55)}
</style>"""

_LABELS_JS = """(function () {
  var map = __MAP__;
  var data = __DATA__;
  var steps = [-99, -0.3, 0.75, 1.5];
  var labels = data.labels.map(function (d) {
    /* a marker centred by CSS: unlike a permanent tooltip, Leaflet never measures it
       (one forced layout per label and per zoom) */
    var css = 'zb-label zb-label-' + d[3] + (d[4] ? ' zb-voisin' : '');
    var t = L.marker([d[0], d[1]], {interactive: false, keyboard: false,
      icon: L.divIcon({className: css, html: '<span>' + d[2] + '</span>', iconSize: null})});
    return [t, d[3]];
  });
  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }
  function update() {
    var base = map.getBoundsZoom(data.bounds);
    if (!isFinite(base)) { return; }  /* a frame with no size yet */
    var z = map.getZoom();
    var shown = labels.filter(function (l) {
      var show = z >= base + steps[l[1]];
      if (show && !map.hasLayer(l[0])) { l[0].addTo(map); }
      if (!show && map.hasLayer(l[0])) { map.removeLayer(l[0]); }
      return show;
    });
    /* one layout for all the boxes, then keep the labels of higher rank first */
    var boxes = shown.map(function (l) {
      return l[0].getElement().firstChild.getBoundingClientRect();
    });
    var placed = [];
    shown.forEach(function (l, i) {
      if (l[1] > 0 && placed.some(function (p) { return overlaps(p, boxes[i]); })) {
        map.removeLayer(l[0]);  /* a label of higher rank is already there */
      } else {
        placed.push(boxes[i]);
      }
    });
  }
  map.on('zoomend resize', update);
  update();
})();"""

_NEIGHBOURS_JS = """(function () {
  /* zb-neighbours: one SVG path in Web Mercator units (the map's own projection), laid on
     the map as an image of vectors: the browser draws it natively, Leaflet never
     projects, clips or simplifies its thousands of rings */
  var map = __MAP__, data = __DATA__, ns = 'http://www.w3.org/2000/svg';
  var pane = map.createPane('zbVoisins');
  pane.style.zIndex = 350;
  pane.style.pointerEvents = 'none';
  var svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', data.box.join(' '));
  svg.setAttribute('preserveAspectRatio', 'none');
  var path = document.createElementNS(ns, 'path');
  path.setAttribute('class', 'zb-neighbours');
  path.setAttribute('d', data.d);
  path.setAttribute('fill', '""" + NEIGHBOUR_FILL + """');
  path.setAttribute('stroke', '#ffffff');
  path.setAttribute('stroke-width', '0.7');
  path.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.appendChild(path);
  L.svgOverlay(svg, data.bounds, {pane: 'zbVoisins', interactive: false}).addTo(map);
})();"""

#: Earth radius of Leaflet's spherical Web Mercator (``L.CRS.EPSG3857``), metres.
_MERCATOR_R = 6378137.0
#: Unit of the neighbours' SVG path, Web Mercator metres (their outlines are simplified at
#: about 500 m).
_NEIGHBOUR_UNIT_M = 80.0


def _neighbour_svg(geoms: np.ndarray) -> str:
    """Return the neighbours' outer rings as one SVG path for the map script (JSON).

    Coordinates are projected to spherical Web Mercator (Leaflet's CRS), so that the path,
    stretched linearly over its box, lies exactly where Leaflet would draw each polygon;
    units of :data:`_NEIGHBOUR_UNIT_M`, y downwards, relative moves (``M x y l dx dy … z``
    per ring), repeated points dropped.

    Returns
    -------
    str
        JSON ``{"bounds": [[south, west], [north, east]] (degrees), "box": [0, 0, width,
        height] (the path's viewBox), "d": path}``, or ``"[]"`` without any ring.
    """
    if not len(geoms):
        return "[]"
    rings = shapely.get_exterior_ring(shapely.get_parts(geoms))
    lonlat, ring = shapely.get_coordinates(rings, return_index=True)
    if not len(lonlat):
        return "[]"
    x = _MERCATOR_R * np.radians(lonlat[:, 0])
    lat = np.radians(np.clip(lonlat[:, 1], -85.0, 85.0))
    y = _MERCATOR_R * np.log(np.tan(np.pi / 4 + lat / 2))
    x0, y1 = x.min(), y.max()
    u = _NEIGHBOUR_UNIT_M
    xy = np.column_stack([np.rint((x - x0) / u), np.rint((y1 - y) / u)]).astype(np.int64)
    start = np.r_[True, ring[1:] != ring[:-1]]
    step = np.diff(xy, axis=0, prepend=xy[:1])
    keep = start | (step != 0).any(axis=1)
    xy, step, start, ring = xy[keep], step[keep], start[keep], ring[keep]
    sizes = np.bincount(np.cumsum(start) - 1)  # points kept per ring
    whole = np.repeat(sizes >= 3, sizes)  # a ring of fewer points draws nothing
    xy, step, start = xy[whole], step[whole], start[whole]
    if not len(xy):
        return "[]"
    parts: list[str] = []
    for i, (a, b) in enumerate(step.tolist()):
        if start[i]:
            if parts:
                parts.append("z")
            parts.append(f"M{xy[i, 0]} {xy[i, 1]}l")
        else:
            parts.append(f"{a} {b} ")
    parts.append("z")
    width, height = int(xy[:, 0].max()) or 1, int(xy[:, 1].max()) or 1
    west, east = float(np.degrees(x0 / _MERCATOR_R)), float(
        np.degrees((x0 + width * u) / _MERCATOR_R))
    y0 = y1 - height * u
    north = float(np.degrees(2 * np.arctan(np.exp(y1 / _MERCATOR_R)) - np.pi / 2))
    south = float(np.degrees(2 * np.arctan(np.exp(y0 / _MERCATOR_R)) - np.pi / 2))
    return _json({"bounds": [[round(south, 6), round(west, 6)], [round(north, 6), round(east, 6)]],
                  "box": [0, 0, width, height], "d": "".join(parts).replace(" z", "z")})


def _json(data: Any) -> str:
    """Return JSON that is safe inside a ``<script>`` (``<``, ``>``, ``&`` escaped)."""
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _add_context(m: folium.Map, context: DepartementContext, *, type_service: str,
                 shown_ids: set[str]) -> None:
    """Draw the neighbours (one SVG path, in a pane under the communes) and their services."""
    if context.neighbour_rings != "[]":
        _Script(_NEIGHBOURS_JS, context.neighbour_rings).add_to(m)
    svc = context.services
    if len(svc):
        if type_service != NO_SERVICE:
            svc = svc[svc["type_service"] == type_service]
        svc = svc[~svc["service_id"].astype(str).isin(shown_ids)]
    if len(svc):
        layer = folium.FeatureGroup(name="Services des départements voisins", show=True)
        for row in svc.itertuples(index=False):
            folium.CircleMarker(
                location=[row.geometry.y, row.geometry.x], radius=5, color="#555555",
                weight=1, fill=True, fill_opacity=0.75,
                fill_color=SERVICE_COLOURS.get(str(row.type_service), "#333333"),
                class_name="service-voisin",
                tooltip=html_js_safe(f"{_service_name(row)} (autre département)"),
            ).add_to(layer)
        layer.add_to(m)


def _add_outline_and_labels(m: folium.Map, context: DepartementContext,
                            bounds: Sequence[float]) -> None:
    """Draw the département's outline and its place labels (density follows the zoom)."""
    folium.GeoJson(
        context.outline[["geometry"]], name="Limite du département", control=False,
        style_function=lambda f: {"fill": False, "color": OUTLINE_COLOUR, "weight": 2.5,
                                  "className": "departement-contour", "interactive": False},
    ).add_to(m)
    lab = context.labels
    if len(lab):
        rows = [[round(float(a), 5), round(float(o), 5), str(t), int(v), bool(w)]
                for a, o, t, v, w in zip(lab["lat"], lab["lon"], lab["text"], lab["level"],
                                         lab["voisin"], strict=True)]
        minx, miny, maxx, maxy = (round(float(b), 5) for b in bounds)
        _Script(_LABELS_JS, _json({"bounds": [[miny, minx], [maxy, maxx]],
                                   "labels": rows})).add_to(m)


def _isochrone_upper(frame: pd.DataFrame) -> pd.Series:
    for col in ("minutes_max", "bande_max", "max_minutes", "minutes_sup", "seuil_minutes",
                "minutes"):
        if col in frame:
            return pd.to_numeric(frame[col], errors="coerce")
    return pd.Series(np.nan, index=frame.index)


def _band_weight(i: int, n: int) -> float:
    """Return the line width of the ``i``-th band (nearest first) of ``n``, pixels."""
    return round(1.5 + 1.5 * (n - 1 - i) / max(n - 1, 1), 1)


class MapExtras(TypedDict, total=False):
    """Optional layers and settings of :func:`access_map`.

    Attributes
    ----------
    isochrones
        Band polygons (EPSG:4326), drawn as dashed contour lines.
    tiles
        A basemap (off by default).
    static_url
        URL prefix of the app's ``static/`` folder (vendored Leaflet).
    sources
        Attribution of the data shown, as HTML whose user text is already escaped
        (:func:`legend_sources`).
    thresholds
        The run's thresholds, minutes: the classes of the choropleth
        (:func:`coverage.classes.minute_classes`); default: the default thresholds.
    context
        Outline, neighbours and place names (:func:`departement_context`); none by default.
    """

    isochrones: gpd.GeoDataFrame | None
    tiles: Tiles | None
    static_url: str
    sources: str
    thresholds: Sequence[float]
    context: DepartementContext | None


#: Attribution of a map when none is given.
DEFAULT_SOURCES = "Contours : IGN – Admin Express COG / Etalab ; population : INSEE"


def _isochrone_layer(isochrones: gpd.GeoDataFrame, type_service: str
                     ) -> tuple[folium.FeatureGroup, tuple[float, ...]]:
    """Return the « Isochrones » layer (dashed contour lines, no fill) and its band limits."""
    iso = isochrones.to_crs(CRS_INPUT_OUTPUT).copy()
    if "type_service" in iso:
        iso = iso[iso["type_service"] == type_service]
    iso["_upper"] = _isochrone_upper(iso)
    iso = iso.sort_values("_upper", ascending=False)
    uppers = tuple(sorted({float(u) for u in iso["_upper"] if math.isfinite(u)}))
    iso["bande_txt"] = [f"≤ {u:g} min" if math.isfinite(u) else "bande" for u in iso["_upper"]]
    iso["_weight"] = [_band_weight(uppers.index(float(u)), len(uppers))
                      if math.isfinite(u) else 1.5 for u in iso["_upper"]]
    layer = folium.FeatureGroup(name="Isochrones", show=True)
    folium.GeoJson(
        iso[["bande_txt", "_weight", "geometry"]].reset_index(drop=True),
        name="Isochrones",
        style_function=lambda f: {
            "fill": False, "color": ISOCHRONE_COLOUR, "weight": f["properties"]["_weight"],
            "dashArray": "7 4", "opacity": 0.95, "className": "isochrone",
            "interactive": False,
        },
    ).add_to(layer)
    return layer, uppers


def _communes_layer(feats: gpd.GeoDataFrame, *, classes: MinuteClasses, threshold_min: float
                    ) -> folium.FeatureGroup:
    """Return the « Communes » layer: choropleth, white zones hatched, tooltips."""
    props = ["code_insee", "nom_txt", "population_txt", "minutes_txt", "service_txt", "zone_txt"]
    gj = feats[[*props, "zone_blanche", "geometry"]].copy()
    cls = classes.indices(feats["minutes"])
    gj["_fill"] = [
        (f"url(#{HATCH_ID}-{'na' if c < 0 else c})" if w
         else (UNREACHABLE_COLOUR if c < 0 else classes.colours[c]))
        for c, w in zip(cls, gj["zone_blanche"], strict=True)]
    # GeoJSON built at once (geopandas' __geo_interface__ goes row by row in Python)
    geoms = shapely.to_geojson(gj.geometry.to_numpy())
    records = pd.DataFrame(gj.drop(columns="geometry")).to_dict("records")
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r["code_insee"], "properties": r, "geometry": json.loads(g)}
        for r, g in zip(records, geoms, strict=True)]}

    def _style(feature: dict[str, Any]) -> dict[str, Any]:
        p = feature["properties"]
        white = bool(p["zone_blanche"])
        return {
            "fillColor": p["_fill"],
            "fillOpacity": 0.9,
            "color": WHITE_ZONE_EDGE if white else "#ffffff",
            "weight": 0.8 if white else 0.5,
            "className": "commune zone-blanche" if white else "commune",
        }

    layer = folium.FeatureGroup(name="Communes", show=True)
    folium.GeoJson(
        data,
        name="Communes",
        style_function=_style,
        highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["nom_txt", "population_txt", "minutes_txt", "service_txt", "zone_txt"],
            aliases=["Commune", "Population", "Temps d'accès", "Service le plus proche",
                     f"Zone blanche (> {threshold_min:g} min)"],
            sticky=True,
        ),
    ).add_to(layer)
    return layer


def _service_name(row: Any) -> str:
    """Return a service's name: ``nom``, else its organism, else its identifier."""
    for field in ("nom", "organisme", "service_id"):
        value = getattr(row, field, None)
        if isinstance(value, str) and value.strip():
            return value
    return "service"


def _service_popup(row: Any) -> str:
    """Return the HTML popup of a service marker (input text escaped)."""
    return (
        f"<b>{html_js_safe(_service_name(row))}</b><br>"
        f"Organisme : {html_js_safe(str(getattr(row, 'organisme', '') or '—'))}<br>"
        f"Type : {html_js_safe(type_label(str(row.type_service)))}<br>"
        f"Capacité : {html_js_safe(_fmt_number(getattr(row, 'capacite', None)))}"
    )


def _of_type(services: gpd.GeoDataFrame, type_service: str) -> gpd.GeoDataFrame:
    """Return the services of ``type_service`` (all of them for the combined view)."""
    return (services if type_service == NO_SERVICE
            else services[services["type_service"] == type_service])


def _services_layer(services: gpd.GeoDataFrame, type_service: str) -> folium.FeatureGroup:
    """Return the services layer: one circle marker of class ``service`` per service shown."""
    svc = _of_type(services, type_service)
    layer = folium.FeatureGroup(name=f"Services — {type_label(type_service)}", show=True)
    for row in svc.itertuples(index=False):
        geom = row.geometry
        if geom is None or geom.is_empty:
            continue
        folium.CircleMarker(
            location=[geom.y, geom.x],
            radius=7,
            color="#ffffff",
            weight=2,
            fill=True,
            fill_color=SERVICE_COLOURS.get(str(row.type_service), "#333333"),
            fill_opacity=1.0,
            class_name="service",
            popup=folium.Popup(_service_popup(row), max_width=320),
            tooltip=html_js_safe(_service_name(row)),
        ).add_to(layer)
    return layer


def _near(services: gpd.GeoDataFrame, bounds: Sequence[float] | np.ndarray
          ) -> gpd.GeoDataFrame:
    """Return the services within :data:`FIT_REACH_DEG` of ``bounds`` (degrees)."""
    if not len(services):
        return services
    minx, miny, maxx, maxy = bounds
    r = FIT_REACH_DEG
    return services.cx[minx - r * 1.4:maxx + r * 1.4, miny - r:maxy + r]


def _map_bounds(feats: gpd.GeoDataFrame, services: gpd.GeoDataFrame | None) -> Sequence[float]:
    """Return the bounds to fit: the communes and the services shown near them, degrees.

    Services farther than about 40 km from the communes' box are drawn but not fitted: the
    département would otherwise shrink to a corner of the map.
    """
    if len(feats) and services is not None:
        services = _near(services, feats.total_bounds)
    parts = [np.asarray(g.total_bounds, dtype=float) for g in (feats, services)
             if g is not None and len(g)]
    parts = [b for b in parts if np.isfinite(b).all()]
    if not parts:
        return [-5.3, 41.2, 9.7, 51.2]
    stack = np.vstack(parts)
    return [*stack[:, :2].min(axis=0), *stack[:, 2:].max(axis=0)]


def access_map_and_legend(
    communes: gpd.GeoDataFrame,
    access: pd.DataFrame,
    services: gpd.GeoDataFrame | None,
    *,
    type_service: str,
    threshold_min: float,
    engine: str,
    fictif: bool,
    **extras: Unpack[MapExtras],
) -> tuple[folium.Map, MapLegend]:
    """Draw :func:`access_map` and return its legend too (for :func:`legend_html`).

    Parameters and returns are those of :func:`access_map`, plus the legend.
    """
    isochrones = extras.get("isochrones")
    classes = minute_classes(extras.get("thresholds") or Settings().thresholds_min)
    context = extras.get("context")
    feats = commune_features(communes, access, services, threshold_min=threshold_min)
    shown = _of_type(services, type_service) if services is not None else None
    bounds = _map_bounds(feats, shown)
    m = offline_map(bounds, tiles=extras.get("tiles"),
                    static_url=extras.get("static_url", STATIC_URL))
    root = m.get_root()
    root.header.add_child(_Text(_LABEL_CSS))  # type: ignore[attr-defined]
    root.html.add_child(_Text(_hatch_defs(classes)))  # type: ignore[attr-defined]
    if context is not None:
        ids = set(services["service_id"].astype(str)) if services is not None else set()
        _add_context(m, context, type_service=type_service, shown_ids=ids)
    _communes_layer(feats, classes=classes, threshold_min=threshold_min).add_to(m)
    bands: tuple[float, ...] = ()
    if isochrones is not None and len(isochrones):
        layer, bands = _isochrone_layer(isochrones, type_service)
        layer.add_to(m)
    if context is not None:
        _add_outline_and_labels(m, context, bounds)
    if services is not None and len(services):
        _services_layer(services, type_service).add_to(m)
    legend = MapLegend(classes, type_service, float(threshold_min), engine, fictif,
                     int(feats["zone_blanche"].sum()), len(feats), bands,
                     extras.get("sources", DEFAULT_SOURCES), context is not None)
    root.html.add_child(folium.Element(_legend_panel(legend)))  # type: ignore[attr-defined]
    if fictif:
        root.html.add_child(folium.Element(_banner_html()))  # type: ignore[attr-defined]
    return m, legend


def access_map(
    communes: gpd.GeoDataFrame,
    access: pd.DataFrame,
    services: gpd.GeoDataFrame | None,
    *,
    type_service: str,
    threshold_min: float,
    engine: str,
    fictif: bool,
    **extras: Unpack[MapExtras],
) -> folium.Map:
    """Draw the choropleth of minutes to the nearest service, white zones and services.

    Parameters
    ----------
    communes
        Commune polygons to draw (EPSG:4326, ideally from :func:`display_geometries`) with
        ``code_insee, nom, population``.
    access
        ``acces_communes`` rows of the service type shown: ``code_insee, minutes`` (NaN
        unreachable), ``service_id``, ``distance_km``.
    services
        Service points (EPSG:4326) with ``service_id, type_service, nom, organisme,
        capacite``; only those of ``type_service`` are drawn (all of them for the combined
        view ``aucun_service``). None draws none.
    type_service
        Service type shown (``mediation_familiale``, ``espace_rencontre``).
    threshold_min
        White-zone threshold, minutes.
    engine
        ``road`` or ``proxy``: named in the legend.
    fictif
        True for the fictional demo territory: a FICTIF banner is drawn.
    **extras
        :class:`MapExtras`: ``isochrones`` (bands, EPSG:4326), ``tiles`` (a basemap, off by
        default), ``static_url`` (default :data:`STATIC_URL`), ``sources`` (attribution,
        escaped HTML, :func:`legend_sources`), ``thresholds`` (the run's, for the classes),
        ``context`` (:func:`departement_context`).

    Returns
    -------
    folium.Map
        One SVG path of class ``commune`` per commune (``commune zone-blanche``, filled
        with a hatch pattern ``url(#zb-hatch-…)``, for white zones), one circle marker of
        class ``service`` per service shown; the view fits the communes and those
        services. More layers may be added; :func:`map_html` adds the layer control last,
        so that it lists them all.
    """
    return access_map_and_legend(communes, access, services, type_service=type_service,
                                 threshold_min=threshold_min, engine=engine, fictif=fictif,
                                 **extras)[0]


def _site_marker(row: Mapping[Hashable, Any]) -> folium.Marker:
    """Return the numbered marker of one suggested site (class ``nouveau-site``)."""
    rank = int(row["rang"])
    label = html_js_safe(
        f"Site n° {rank} : {row['nom']} — "
        f"{fmt_int(float(row['population_nouvellement_couverte']))} habitants "
        f"nouvellement couverts ({int(row['communes_nouvellement_couvertes'])} communes)")
    return folium.Marker(
        location=[float(row["lat"]), float(row["lon"])],
        icon=folium.DivIcon(
            html=(f'<div style="width:24px;height:24px;'
                  f"border-radius:50%;background:{SITE_COLOUR};color:#fff;"
                  "border:2px solid #fff;box-shadow:0 0 0 1px #333;font:bold 13px/24px "
                  f'sans-serif;text-align:center">{rank}</div>'),
            icon_size=(28, 28), icon_anchor=(14, 14), class_name="nouveau-site"),
        tooltip=label,
    )


def add_new_sites(m: folium.Map, result: SitingResult, communes: gpd.GeoDataFrame
                  ) -> folium.Map:
    """Add suggested new sites and the communes they would newly cover to an access map.

    Parameters
    ----------
    m
        A map from :func:`access_map` (the current access, before the new sites).
    result
        :func:`coverage.siting.plan_new_sites`' result: ``table`` (one row per site, with
        ``rang, nom, lon, lat``, EPSG:4326) and ``covered`` (``code_insee, rang, site_id,
        minutes``).
    communes
        Commune polygons drawn (EPSG:4326) with ``code_insee, nom``.

    Returns
    -------
    folium.Map
        ``m``, with a layer of green outlines (class ``nouvellement-couverte``) and one
        numbered marker of class ``nouveau-site`` per suggested site.
    """
    cov = communes.merge(result.covered[["code_insee", "rang", "site_id", "minutes"]],
                         on="code_insee", how="inner")
    if len(cov):
        cov["txt"] = [html_js_safe(f"{n} : couverte par le site n° {r} ({mi:.0f} min)")
                      for n, r, mi in zip(cov["nom"], cov["rang"], cov["minutes"],
                                          strict=True)]
        covered = folium.FeatureGroup(name="Communes nouvellement couvertes", show=True)
        folium.GeoJson(
            cov[["txt", "geometry"]].reset_index(drop=True),
            style_function=lambda f: {"fillOpacity": 0.0, "color": NEW_COVER_COLOUR,
                                      "weight": 3, "className": "nouvellement-couverte"},
            tooltip=folium.GeoJsonTooltip(fields=["txt"], labels=False),
        ).add_to(covered)
        covered.add_to(m)
    sites = folium.FeatureGroup(name="Nouveaux sites suggérés", show=True)
    for row in result.table.to_dict("records"):
        _site_marker(row).add_to(sites)
    sites.add_to(m)
    return m


def shown_services(services: gpd.GeoDataFrame, access: pd.DataFrame, dept: str
                   ) -> gpd.GeoDataFrame:
    """Return the services drawn on a département's map.

    Parameters
    ----------
    services
        Service points with ``service_id`` and, when known, ``code_dep``.
    access
        ``acces_communes`` rows of the département's communes.
    dept
        Département code.

    Returns
    -------
    geopandas.GeoDataFrame
        The services located in the département, plus those that are the nearest service
        of one of its communes (across the border).
    """
    nearest = (set(access["service_id"].dropna().astype(str)) if "service_id" in access
               else set())
    keep = services["service_id"].astype(str).isin(nearest)
    if "code_dep" in services:
        keep |= services["code_dep"].astype(str) == dept
    return services[keep]


def departement_isochrones(isochrones: gpd.GeoDataFrame | None, communes: gpd.GeoDataFrame,
                           dept: str) -> gpd.GeoDataFrame | None:
    """Return the isochrone bands over a département's communes.

    Parameters
    ----------
    isochrones
        Band polygons of a run (any CRS), with ``code_dep`` when the run wrote it; None.
    communes
        The département's commune polygons (EPSG:4326, from :func:`display_geometries`).
    dept
        Département code.

    Returns
    -------
    geopandas.GeoDataFrame or None
        The bands of the département clipped to its communes (bands of a run cover every
        département), in the communes' CRS; None when there are none.
    """
    if isochrones is None:
        return None
    iso = isochrones
    if "code_dep" in iso:
        iso = iso[iso["code_dep"].astype(str) == dept]
    if len(iso) and len(communes):
        iso = gpd.clip(iso.to_crs(communes.crs), communes.geometry.union_all())
    return iso


def legend_sources(run: RunOutputs, max_chars: int = SOURCE_MAX_CHARS) -> str:
    """Return the run's source line for a map legend: short and HTML-escaped.

    Parameters
    ----------
    run
        The run (:func:`coverage.results.source_line`).
    max_chars
        Longest line kept, characters; a longer one is cut and points to « À propos ».

    Returns
    -------
    str
        HTML-escaped text.
    """
    text = source_line(run)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "… (voir « À propos »)"
    return html_js_safe(text)


_EXTERNAL_REF = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""",
    re.IGNORECASE,
)


def external_references(page: str) -> list[str]:
    """URLs of scripts, style sheets, images or frames that ``page`` would fetch elsewhere.

    Links the user may click (``<a href>``) are not requests and are not listed.
    """
    return _EXTERNAL_REF.findall(page)


def map_html(m: folium.Map) -> str:
    """Return the complete HTML page of a map (for ``st.iframe`` or a file).

    Adds a layer control when the map has none, after every layer: folium writes the
    control's script where the control is, and a layer defined after it would be undefined
    in the browser.

    Raises
    ------
    ValueError
        If the page would load anything from another host (a guard against a folium
        upgrade or plugin bringing CDN links back).
    """
    if not any(isinstance(c, folium.LayerControl) for c in m._children.values()):
        folium.LayerControl(collapsed=True).add_to(m)
    page: str = m.get_root().render()
    refs = external_references(page)
    if refs:
        msg = f"the map would load files from other hosts: {refs}; vendor them in static/"
        raise ValueError(msg)
    return page
