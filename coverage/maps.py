"""Folium maps of access times and white zones, built to work offline.

Every map made here loads Leaflet and jQuery from the app's own static files
(``static/vendor``, served by Streamlit at ``/app/static/vendor``), never from a CDN, and has
no basemap unless a tile URL is given: the vector layers (commune polygons, service markers,
isochrone bands) carry the map. Nothing here imports Streamlit, so the builders are usable
from notebooks and tests.

Geometries are expected in EPSG:4326 at the boundary; simplification for display is done in
the metric CRS of the département (:func:`coverage.settings.metric_crs_for`).
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.settings import CRS_INPUT_OUTPUT, NO_SERVICE, metric_crs_for

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

SERVICE_LABELS: dict[str, str] = {
    "mediation_familiale": "Médiation familiale",
    "espace_rencontre": "Espace de rencontre",
    "aucun_service": "Tous services (vue combinée)",
}
ENGINE_SHORT: dict[str, str] = {
    "road": "graphe routier OSM",
    "proxy": "estimation à vol d'oiseau",
}
ENGINE_LABELS: dict[str, str] = {
    "road": "road : temps sur le graphe routier OpenStreetMap",
    "proxy": "proxy : distance à vol d'oiseau × facteur de détour ÷ vitesse (estimation)",
}


@dataclass(frozen=True)
class Tiles:
    """An optional raster basemap.

    Parameters
    ----------
    url
        XYZ tile URL template (``https://…/{z}/{x}/{y}.png``). Requests go to this host: use a
        local tile server to stay offline.
    attribution
        Attribution shown on the map (required by most tile providers).
    """

    url: str
    attribution: str = ""


def service_label(type_service: str) -> str:
    """French label of a service type (the code itself when unknown)."""
    return SERVICE_LABELS.get(type_service, type_service)


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


def is_white_zone(minutes: pd.Series, threshold_min: float) -> pd.Series:
    """White-zone flag: no service within ``threshold_min`` minutes (NaN counts as beyond)."""
    values = pd.to_numeric(minutes, errors="coerce")
    return ~(values <= threshold_min)


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


def _fmt_int(value: Any) -> str:
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
    out["nom_txt"] = [html.escape(str(n)) for n in out["nom"]]
    out["service_txt"] = [html.escape(t) for t in out["service_txt"]]
    out["population_txt"] = [_fmt_int(p) for p in out.get("population", pd.Series(dtype=int))]
    out["minutes_txt"] = [_fmt_minutes(m) for m in out["minutes"]]
    out["zone_txt"] = np.where(out["zone_blanche"], "oui", "non")
    return out


def offline_map(
    bounds: Sequence[float],
    *,
    tiles: Tiles | None = None,
    static_url: str = STATIC_URL,
) -> folium.Map:
    """An empty folium map whose scripts and style sheets are the app's vendored copies.

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
            attr=tiles.attribution or html.escape(tiles.url.split("/")[2]),
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
        f'<div><span style="{swatch};background:{c}"></span>{html.escape(t)}</div>'
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
        f"service : {html.escape(service_label(t))}</div>"
        for t in shown
    )
    iso = ("<div><i>Bandes isochrones affichées (couche « Isochrones »)</i></div>"
           if has_isochrones else "")
    fict = ('<div style="color:#b00;font-weight:bold">FICTIF — territoire de démonstration'
            "</div>" if fictif else "")
    return (
        '<div id="zb-legend" style="position:fixed;bottom:22px;right:8px;z-index:1000;'
        "background:rgba(255,255,255,.92);padding:5px 8px;border:1px solid #999;"
        'border-radius:4px;font:11px/1.3 sans-serif;max-width:250px">'
        f"{fict}<b>Temps d'accès en voiture — {html.escape(service_label(type_service))}</b>"
        '<div style="display:grid;grid-template-columns:1fr 1fr;column-gap:6px">'
        f"{items}</div>{white}{marker}{iso}"
        f'<div style="margin-top:3px">Moteur : <b>{html.escape(engine)}</b> '
        f"({html.escape(ENGINE_SHORT.get(engine, ''))})</div>"
        f'<div style="margin-top:2px;color:#555;font-size:9.5px">{sources}</div></div>'
    )


def _banner_html() -> str:
    return (
        '<div id="zb-fictif" style="position:fixed;top:8px;left:50%;transform:translateX(-50%);'
        "z-index:1000;background:#b00;color:#fff;padding:3px 12px;border-radius:3px;"
        'font:bold 13px sans-serif">FICTIF — données de démonstration, pas un territoire '
        "réel</div>"
    )


def _isochrone_colour(upper_min: float) -> str:
    return minutes_colour(upper_min - 1e-9)


def _isochrone_upper(frame: pd.DataFrame) -> pd.Series:
    for col in ("minutes_max", "bande_max", "max_minutes", "minutes_sup", "seuil_minutes",
                "minutes"):
        if col in frame:
            return pd.to_numeric(frame[col], errors="coerce")
    return pd.Series(np.nan, index=frame.index)


def access_map(
    communes: gpd.GeoDataFrame,
    access: pd.DataFrame,
    services: gpd.GeoDataFrame | None,
    *,
    type_service: str,
    threshold_min: float,
    engine: str,
    fictif: bool,
    isochrones: gpd.GeoDataFrame | None = None,
    tiles: Tiles | None = None,
    static_url: str = STATIC_URL,
    sources: str = "Contours : IGN – Admin Express COG / Etalab ; population : INSEE",
) -> folium.Map:
    """Choropleth of minutes to the nearest service, white zones outlined, services marked.

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
    isochrones
        Optional band polygons (EPSG:4326) drawn under the communes' outlines.
    tiles
        Optional basemap (off by default).
    static_url
        URL prefix of the app's ``static/`` folder (vendored Leaflet).
    sources
        Attribution text of the data shown (HTML allowed).

    Returns
    -------
    folium.Map
        One SVG path of class ``commune`` per commune (``commune zone-blanche`` for white
        zones), one circle marker of class ``service`` per service. More layers may be
        added; :func:`map_html` adds the layer control last, so that it lists them all.
    """
    feats = commune_features(communes, access, services, threshold_min=threshold_min)
    if len(feats):
        bounds = feats.total_bounds
    elif services is not None and len(services):
        bounds = services.total_bounds
    else:
        bounds = np.array([-5.3, 41.2, 9.7, 51.2])
    m = offline_map(bounds, tiles=tiles, static_url=static_url)

    if isochrones is not None and len(isochrones):
        iso = isochrones.to_crs(CRS_INPUT_OUTPUT).copy()
        if "type_service" in iso:
            iso = iso[iso["type_service"] == type_service]
        iso["_upper"] = _isochrone_upper(iso)
        iso = iso.sort_values("_upper", ascending=False)
        iso["bande_txt"] = [
            f"≤ {u:g} min" if math.isfinite(u) else "bande" for u in iso["_upper"]
        ]
        iso["_colour"] = [_isochrone_colour(u) if math.isfinite(u) else "#777"
                          for u in iso["_upper"]]
        iso_fg = folium.FeatureGroup(name="Isochrones", show=True)
        folium.GeoJson(
            iso[["bande_txt", "_colour", "geometry"]].reset_index(drop=True),
            name="Isochrones",
            style_function=lambda f: {
                "fillColor": f["properties"]["_colour"], "fillOpacity": 0.35,
                "color": f["properties"]["_colour"], "weight": 1, "className": "isochrone",
                "interactive": False,
            },
        ).add_to(iso_fg)
        iso_fg.add_to(m)

    props = ["code_insee", "nom_txt", "population_txt", "minutes_txt", "service_txt", "zone_txt"]
    gj = feats[[*props, "minutes", "zone_blanche", "geometry"]].copy()
    gj["minutes"] = gj["minutes"].astype(object).where(gj["minutes"].notna(), None)
    data = gj.__geo_interface__
    for f in data["features"]:
        f["id"] = f["properties"]["code_insee"]
    fill_opacity = 0.45 if isochrones is not None and len(isochrones) else 0.75

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

    communes_fg = folium.FeatureGroup(name="Communes", show=True)
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
    ).add_to(communes_fg)
    communes_fg.add_to(m)

    if services is not None and len(services):
        svc = (services if type_service == NO_SERVICE
               else services[services["type_service"] == type_service])
        svc_fg = folium.FeatureGroup(name=f"Services — {service_label(type_service)}",
                                     show=True)
        for row in svc.itertuples(index=False):
            colour = SERVICE_COLOURS.get(str(row.type_service), "#333333")
            geom = row.geometry
            if geom is None or geom.is_empty:
                continue
            popup = (
                f"<b>{html.escape(str(row.nom))}</b><br>"
                f"Organisme : {html.escape(str(getattr(row, 'organisme', '') or '—'))}<br>"
                f"Type : {html.escape(service_label(str(row.type_service)))}<br>"
                f"Capacité : {html.escape(_fmt_number(getattr(row, 'capacite', None)))}"
            )
            folium.CircleMarker(
                location=[geom.y, geom.x],
                radius=7,
                color="#ffffff",
                weight=2,
                fill=True,
                fill_color=colour,
                fill_opacity=1.0,
                class_name="service",
                popup=folium.Popup(popup, max_width=320),
                tooltip=html.escape(str(row.nom)),
            ).add_to(svc_fg)
        svc_fg.add_to(m)

    n_white = int(feats["zone_blanche"].sum())
    root = m.get_root()
    root.html.add_child(folium.Element(_legend_html(  # type: ignore[attr-defined]
        type_service=type_service, threshold_min=threshold_min, engine=engine,
        fictif=fictif, n_white=n_white, n_communes=len(feats),
        has_isochrones=isochrones is not None and len(isochrones) > 0, sources=sources,
    )))
    if fictif:
        root.html.add_child(folium.Element(_banner_html()))  # type: ignore[attr-defined]
    return m


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
    """The complete HTML page of a map (for ``st.iframe`` or a file).

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
