"""Folium maps of access times and white zones, built to work offline.

Every map made here loads Leaflet and jQuery from the app's own static files
(``static/vendor``, served by Streamlit at ``/app/static/vendor``), never from a CDN, and has
no basemap unless a tile URL is given: the vector layers (commune polygons, service markers,
isochrone bands) carry the map. Nothing here imports Streamlit, so the builders are usable
from notebooks and tests.

Geometries are expected in EPSG:4326 at the boundary; simplification for display is done in
the metric CRS of the département (:func:`coverage.settings.metric_crs_for`). Labels (service
types, engines, the FICTIONAL banner) come from :mod:`coverage.labels`.

Every string that enters a map (names of communes and services, organisms, the « Nouveau
site » tooltips, the legend, the tile attribution) goes through
:func:`coverage.safe_text.html_js_safe`: folium writes tooltips and popups inside JavaScript
template literals, where ``html.escape`` alone would let a backtick or ``${…}`` run code.
"""

from __future__ import annotations

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

from coverage.errors import CoverageError
from coverage.labels import ENGINE_SHORT, FICTIONAL_BANNER, FICTIONAL_LEGEND, type_label
from coverage.results import RunOutputs, source_line
from coverage.safe_text import html_js_safe
from coverage.settings import CRS_INPUT_OUTPUT, NO_SERVICE, metric_crs_for
from coverage.whitezones import is_white_zone

if TYPE_CHECKING:
    from coverage.siting import SitingResult

__all__ = [
    "DEFAULT_SOURCES",
    "DISPLAY_DECIMALS",
    "DISPLAY_TOLERANCE_M",
    "MINUTES_BREAKS",
    "MINUTES_COLOURS",
    "NEW_COVER_COLOUR",
    "SERVICE_COLOURS",
    "SITE_COLOUR",
    "SOURCE_MAX_CHARS",
    "STATIC_URL",
    "UNREACHABLE_COLOUR",
    "VENDOR_CSS",
    "VENDOR_JS",
    "WHITE_ZONE_OUTLINE",
    "MapExtras",
    "Tiles",
    "access_map",
    "add_new_sites",
    "commune_features",
    "departement_isochrones",
    "display_geometries",
    "external_references",
    "fmt_int",
    "legend_sources",
    "map_html",
    "minutes_colour",
    "offline_map",
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

#: Upper bounds of the minute classes of the choropleth, minutes (the last class is open).
MINUTES_BREAKS: tuple[float, ...] = (10.0, 20.0, 30.0, 45.0, 60.0)
#: Fill colours of the classes (≤ 10, 10–20, 20–30, 30–45, 45–60, > 60 min): ColorBrewer
#: RdYlGn reversed, so near is green and far is red.
MINUTES_COLOURS: tuple[str, ...] = (
    "#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027",
)
#: Fill of communes with no reachable service (NaN minutes).
UNREACHABLE_COLOUR = "#8c8c8c"
#: Outline of white-zone communes (beyond the threshold or unreachable).
WHITE_ZONE_OUTLINE = "#1b1b1b"
#: Colour of the service markers by type.
SERVICE_COLOURS: dict[str, str] = {
    "mediation_familiale": "#6a3d9a",
    "espace_rencontre": "#1f78b4",
}
#: Default simplification tolerance of commune outlines for display, metres.
DISPLAY_TOLERANCE_M = 75.0
#: Decimals kept in displayed coordinates (1e-5 degree ≈ 1 m).
DISPLAY_DECIMALS = 5
#: Outline of the communes a suggested new site would newly cover (« Nouveau site »).
NEW_COVER_COLOUR = "#00a651"
#: Fill of the suggested-site markers.
SITE_COLOUR = "#e6007e"
#: Longest source line written in a map legend, characters.
SOURCE_MAX_CHARS = 160


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


def minutes_colour(minutes: float | None) -> str:
    """Fill colour of a commune by its minutes to the nearest service.

    Parameters
    ----------
    minutes
        Minutes by car; NaN or None when no service is reachable.

    Returns
    -------
    str
        A ``#rrggbb`` colour from :data:`MINUTES_COLOURS`, or :data:`UNREACHABLE_COLOUR`.
    """
    if minutes is None or not math.isfinite(minutes):
        return UNREACHABLE_COLOUR
    for upper, colour in zip(MINUTES_BREAKS, MINUTES_COLOURS, strict=False):
        if minutes <= upper:
            return colour
    return MINUTES_COLOURS[-1]


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
        names = dict(
            zip(services["service_id"].astype(str), services["nom"].astype(str), strict=False)
        )
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
        Awesome or awesome-markers, which folium would otherwise fetch from CDNs).
    """
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        control_scale=True,
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
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def _legend_html(
    *, type_service: str, threshold_min: float, engine: str, fictif: bool,
    n_white: int, n_communes: int, has_isochrones: bool, sources: str,
) -> str:
    rows = []
    lower = 0.0
    for upper, colour in zip(MINUTES_BREAKS, MINUTES_COLOURS, strict=False):
        rows.append((colour, f"{lower:g}–{upper:g} min"))
        lower = upper
    rows.append((MINUTES_COLOURS[-1], f"> {MINUTES_BREAKS[-1]:g} min"))
    rows.append((UNREACHABLE_COLOUR, "inaccessible"))
    swatch = ("display:inline-block;width:12px;height:9px;border:1px solid #555;"
              "margin-right:4px;vertical-align:middle")
    items = "".join(
        f'<div><span style="{swatch};background:{c}"></span>{html_js_safe(t)}</div>'
        for c, t in rows
    )
    white = (
        f'<div style="margin-top:3px"><span style="display:inline-block;width:10px;'
        f"height:7px;border:2px dashed {WHITE_ZONE_OUTLINE};margin-right:4px;"
        f'vertical-align:middle"></span><b>zone blanche</b> (&gt; {threshold_min:g} min ou '
        f"inaccessible) : {n_white} / {n_communes} communes</div>"
    )
    shown = list(SERVICE_COLOURS) if type_service == NO_SERVICE else [type_service]
    marker = "".join(
        '<div><span style="display:inline-block;width:9px;height:9px;border-radius:50%;'
        f'background:{SERVICE_COLOURS.get(t, "#333")};border:2px solid #fff;'
        'outline:1px solid #333;margin-right:4px;vertical-align:middle"></span>'
        f"service : {html_js_safe(type_label(t))}</div>"
        for t in shown
    )
    iso = ("<div><i>Bandes isochrones affichées (couche « Isochrones »)</i></div>"
           if has_isochrones else "")
    fict = (f'<div style="color:#b00;font-weight:bold">{html_js_safe(FICTIONAL_LEGEND)}'
            "</div>" if fictif else "")
    return (
        '<div id="zb-legend" style="position:fixed;bottom:22px;right:8px;z-index:1000;'
        "background:rgba(255,255,255,.92);padding:5px 8px;border:1px solid #999;"
        'border-radius:4px;font:11px/1.3 sans-serif;max-width:250px">'
        f"{fict}<b>Temps d'accès en voiture — {html_js_safe(type_label(type_service))}</b>"
        '<div style="display:grid;grid-template-columns:1fr 1fr;column-gap:6px">'
        f"{items}</div>{white}{marker}{iso}"
        f'<div style="margin-top:3px">Moteur : <b>{html_js_safe(engine)}</b> '
        f"({html_js_safe(ENGINE_SHORT.get(engine, ''))})</div>"
        f'<div style="margin-top:2px;color:#555;font-size:9.5px">{sources}</div></div>'
    )


def _banner_html() -> str:
    return (
        '<div id="zb-fictif" style="position:fixed;top:8px;left:50%;transform:translateX(-50%);'
        "z-index:1000;background:#b00;color:#fff;padding:3px 12px;border-radius:3px;"
        f'font:bold 13px sans-serif">{html_js_safe(FICTIONAL_BANNER)}</div>'
    )


def _isochrone_colour(upper_min: float) -> str:
    return minutes_colour(upper_min - 1e-9)


def _isochrone_upper(frame: pd.DataFrame) -> pd.Series:
    for col in ("minutes_max", "bande_max", "max_minutes", "minutes_sup", "seuil_minutes",
                "minutes"):
        if col in frame:
            return pd.to_numeric(frame[col], errors="coerce")
    return pd.Series(np.nan, index=frame.index)


class MapExtras(TypedDict, total=False):
    """Optional layers and settings of :func:`access_map` and :func:`sites_map`.

    Attributes
    ----------
    isochrones
        Band polygons (EPSG:4326) drawn under the communes' outlines.
    tiles
        A basemap (off by default).
    static_url
        URL prefix of the app's ``static/`` folder (vendored Leaflet).
    sources
        Attribution of the data shown, as HTML whose user text is already escaped
        (:func:`legend_sources`).
    """

    isochrones: gpd.GeoDataFrame | None
    tiles: Tiles | None
    static_url: str
    sources: str


#: Attribution of a map when none is given.
DEFAULT_SOURCES = "Contours : IGN – Admin Express COG / Etalab ; population : INSEE"


def _isochrone_layer(isochrones: gpd.GeoDataFrame, type_service: str) -> folium.FeatureGroup:
    """Return the « Isochrones » layer: bands of one service type, widest first."""
    iso = isochrones.to_crs(CRS_INPUT_OUTPUT).copy()
    if "type_service" in iso:
        iso = iso[iso["type_service"] == type_service]
    iso["_upper"] = _isochrone_upper(iso)
    iso = iso.sort_values("_upper", ascending=False)
    iso["bande_txt"] = [f"≤ {u:g} min" if math.isfinite(u) else "bande" for u in iso["_upper"]]
    iso["_colour"] = [_isochrone_colour(u) if math.isfinite(u) else "#777"
                      for u in iso["_upper"]]
    layer = folium.FeatureGroup(name="Isochrones", show=True)
    folium.GeoJson(
        iso[["bande_txt", "_colour", "geometry"]].reset_index(drop=True),
        name="Isochrones",
        style_function=lambda f: {
            "fillColor": f["properties"]["_colour"], "fillOpacity": 0.35,
            "color": f["properties"]["_colour"], "weight": 1, "className": "isochrone",
            "interactive": False,
        },
    ).add_to(layer)
    return layer


def _communes_layer(feats: gpd.GeoDataFrame, *, threshold_min: float, fill_opacity: float
                    ) -> folium.FeatureGroup:
    """Return the « Communes » layer: minutes choropleth, white zones outlined, tooltips."""
    props = ["code_insee", "nom_txt", "population_txt", "minutes_txt", "service_txt", "zone_txt"]
    gj = feats[[*props, "minutes", "zone_blanche", "geometry"]].copy()
    gj["minutes"] = gj["minutes"].astype(object).where(gj["minutes"].notna(), None)
    data = gj.__geo_interface__
    for f in data["features"]:
        f["id"] = f["properties"]["code_insee"]

    def _style(feature: dict[str, Any]) -> dict[str, Any]:
        p = feature["properties"]
        white = bool(p["zone_blanche"])
        return {
            "fillColor": minutes_colour(p["minutes"]),
            "fillOpacity": fill_opacity,
            "color": WHITE_ZONE_OUTLINE if white else "#ffffff",
            "weight": 2.5 if white else 0.6,
            "dashArray": "5 3" if white else None,
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


def _service_popup(row: Any) -> str:
    """Return the HTML popup of a service marker (input text escaped)."""
    return (
        f"<b>{html_js_safe(str(row.nom))}</b><br>"
        f"Organisme : {html_js_safe(str(getattr(row, 'organisme', '') or '—'))}<br>"
        f"Type : {html_js_safe(type_label(str(row.type_service)))}<br>"
        f"Capacité : {html_js_safe(_fmt_number(getattr(row, 'capacite', None)))}"
    )


def _services_layer(services: gpd.GeoDataFrame, type_service: str) -> folium.FeatureGroup:
    """Return the services layer: one circle marker of class ``service`` per service shown."""
    svc = (services if type_service == NO_SERVICE
           else services[services["type_service"] == type_service])
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
            tooltip=html_js_safe(str(row.nom)),
        ).add_to(layer)
    return layer


def _map_bounds(feats: gpd.GeoDataFrame, services: gpd.GeoDataFrame | None) -> Sequence[float]:
    """Return the bounds to fit: the communes, else the services, else France, degrees."""
    if len(feats):
        return list(feats.total_bounds)
    if services is not None and len(services):
        return list(services.total_bounds)
    return [-5.3, 41.2, 9.7, 51.2]


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
        escaped HTML, :func:`legend_sources`).

    Returns
    -------
    folium.Map
        One SVG path of class ``commune`` per commune (``commune zone-blanche`` for white
        zones), one circle marker of class ``service`` per service. More layers may be
        added; :func:`map_html` adds the layer control last, so that it lists them all.
    """
    isochrones = extras.get("isochrones")
    has_iso = isochrones is not None and len(isochrones) > 0
    feats = commune_features(communes, access, services, threshold_min=threshold_min)
    m = offline_map(_map_bounds(feats, services), tiles=extras.get("tiles"),
                    static_url=extras.get("static_url", STATIC_URL))
    if isochrones is not None and has_iso:
        _isochrone_layer(isochrones, type_service).add_to(m)
    _communes_layer(feats, threshold_min=threshold_min,
                    fill_opacity=0.45 if has_iso else 0.75).add_to(m)
    if services is not None and len(services):
        _services_layer(services, type_service).add_to(m)

    root = m.get_root()
    root.html.add_child(folium.Element(_legend_html(  # type: ignore[attr-defined]
        type_service=type_service, threshold_min=threshold_min, engine=engine,
        fictif=fictif, n_white=int(feats["zone_blanche"].sum()), n_communes=len(feats),
        has_isochrones=has_iso, sources=extras.get("sources", DEFAULT_SOURCES),
    )))
    if fictif:
        root.html.add_child(folium.Element(_banner_html()))  # type: ignore[attr-defined]
    return m


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
