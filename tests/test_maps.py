"""coverage.maps: offline folium maps (vendored assets only), styles, popups, simplification."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, Polygon, box

from coverage import maps
from coverage.classes import UNREACHABLE_COLOUR, minute_classes

REPO_ROOT = Path(__file__).resolve().parents[1]
STATIC = REPO_ROOT / "static"


@pytest.fixture
def communes() -> gpd.GeoDataFrame:
    """Six square communes of ~4 km (EPSG:4326), one with a hostile name."""
    polys = [box(2 + i * 0.05, 46 + j * 0.05, 2.05 + i * 0.05, 46.05 + j * 0.05)
             for i in range(3) for j in range(2)]
    return gpd.GeoDataFrame(
        {
            "code_insee": [f"ZA00{i}" for i in range(1, 7)],
            "nom": ["Aval", "Bourg", "<script>alert(1)</script>", "Dune", "Esse", "Fay"],
            "population": [120, 2300, 310, 45, 980, 60],
            "code_dep": "ZA",
        },
        geometry=polys, crs="EPSG:4326",
    )


@pytest.fixture
def access(communes: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "code_insee": communes["code_insee"],
        "type_service": "mediation_familiale",
        "minutes": [4.0, 12.5, 25.0, 31.0, np.nan, 70.0],
        "service_id": ["S1", "S1", "S1", "S2", None, "S2"],
        "distance_km": [2.0, 8.0, 20.0, 25.0, np.nan, 60.0],
    })


@pytest.fixture
def services() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "service_id": ["S1", "S2", "S3"],
            "type_service": ["mediation_familiale", "mediation_familiale", "espace_rencontre"],
            "nom": ["Médiation Aval", "Point famille Fay", "Espace Bourg"],
            "organisme": ["CAF de ZA", "UDAF", "Association Lien"],
            "capacite": [2.5, np.nan, 12.0],
        },
        geometry=[Point(2.01, 46.01), Point(2.12, 46.06), Point(2.06, 46.02)],
        crs="EPSG:4326",
    )


def _geojson(m: folium.Map, name: str) -> folium.GeoJson:
    for fg in m._children.values():
        for child in fg._children.values():
            if isinstance(child, folium.GeoJson) and child.layer_name == name:
                return child
    raise AssertionError(f"no GeoJson layer {name!r}")


def _styles(m: folium.Map, name: str = "Communes") -> list[dict[str, Any]]:
    gj = _geojson(m, name)
    assert gj.style_function is not None
    return [gj.style_function(f) for f in gj.data["features"]]


def _build(communes: gpd.GeoDataFrame, access: pd.DataFrame, services: gpd.GeoDataFrame,
           **kw: Any) -> folium.Map:
    args: dict[str, Any] = {"type_service": "mediation_familiale", "threshold_min": 30.0,
                            "engine": "road", "fictif": True}
    args.update(kw)
    return maps.access_map(communes, access, services, **args)


def test_map_page_loads_only_vendored_assets(communes, access, services) -> None:
    page = maps.map_html(_build(communes, access, services))
    assert maps.external_references(page) == []
    srcs = re.findall(r'<script src="([^"]+)"', page)
    hrefs = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert srcs and hrefs
    for url in [*srcs, *hrefs]:
        assert url.startswith(f"{maps.STATIC_URL}/vendor/"), url
        local = STATIC / url[len(maps.STATIC_URL) + 1:]
        assert local.is_file(), f"{url} is not vendored at {local}"
    assert "tileLayer" not in page, "no basemap by default"


def test_folium_defaults_would_use_cdns() -> None:
    """The guard can fail: a plain folium map references CDNs, which map_html refuses."""
    plain = folium.Map(tiles=None)
    assert maps.external_references(plain.get_root().render())
    with pytest.raises(ValueError, match="other hosts"):
        maps.map_html(folium.Map(tiles=None))


def test_vendored_files_have_licences() -> None:
    assert (STATIC / "vendor" / "leaflet" / "LICENSE").is_file()
    assert (STATIC / "vendor" / "jquery" / "LICENSE.txt").is_file()
    readme = (STATIC / "vendor" / "README.md").read_text(encoding="utf-8")
    assert "leaflet" in readme and "1.9.4" in readme and "npm pack" in readme
    # Leaflet's CSS refers to images by relative URL: they must be there.
    css = (STATIC / "vendor" / "leaflet" / "leaflet.css").read_text(encoding="utf-8")
    for rel in re.findall(r"url\((images/[^)]+)\)", css):
        assert (STATIC / "vendor" / "leaflet" / rel).is_file(), rel


def test_one_commune_path_per_commune_white_zones_hatched(communes, access, services) -> None:
    for threshold in (10.0, 30.0, 60.0):
        styles = _styles(_build(communes, access, services, threshold_min=threshold))
        assert len(styles) == len(communes)
        assert all(s["className"].split()[0] == "commune" for s in styles)
        white = [s for s in styles if "zone-blanche" in s["className"]]
        expected = int((~(access["minutes"] <= threshold)).sum())  # NaN → white
        assert len(white) == expected
        # hatched fill (an SVG pattern), a thin outline: never an outline alone
        assert all(s["fillColor"].startswith(f"url(#{maps.HATCH_ID}-") for s in white)
        assert all(s["fillOpacity"] > 0.5 and s["weight"] < 1.5 for s in white)
        assert not any("dashArray" in s for s in styles)
        others = [s for s in styles if "zone-blanche" not in s["className"]]
        assert all(s["fillColor"].startswith("#") for s in others)


def test_hatch_patterns_one_per_class_colour(communes, access, services) -> None:
    page = maps.map_html(_build(communes, access, services, thresholds=[20, 30, 45]))
    classes = minute_classes([20, 30, 45])
    for i, colour in enumerate(classes.colours):
        assert f'<pattern id="{maps.HATCH_ID}-{i}"' in page
        assert f'fill="{colour}"' in page
    assert f'<pattern id="{maps.HATCH_ID}-na"' in page
    # the unreachable commune (NaN) and the 70-min one are white zones at 30 min
    styles = _styles(_build(communes, access, services, thresholds=[20, 30, 45]))
    assert styles[4]["fillColor"] == f"url(#{maps.HATCH_ID}-na)"
    assert styles[5]["fillColor"] == f"url(#{maps.HATCH_ID}-3)"


def test_fill_colour_follows_the_runs_classes(communes, access, services) -> None:
    styles = _styles(_build(communes, access, services, thresholds=[20, 30, 45]))
    classes = minute_classes([20, 30, 45])
    assert [s["fillColor"] for s in styles[:3]] == [classes.colours[0]] * 2 + [
        classes.colours[1]]
    assert maps.minutes_colour(float("nan")) == UNREACHABLE_COLOUR
    ordered = [maps.minutes_colour(x, classes) for x in (0, 20, 20.01, 45, 46, 500)]
    idx = [classes.colours.index(c) for c in ordered]
    assert idx == [0, 0, 1, 2, 3, 3]


def test_minute_classes_from_thresholds() -> None:
    c = minute_classes([45, 20, 30, 30])
    assert c.edges == (20.0, 30.0, 45.0)
    assert c.labels == ["≤ 20 min", "20 à 30 min", "30 à 45 min", "> 45 min"]
    assert len(set(c.colours)) == 4 and UNREACHABLE_COLOUR not in c.colours
    assert [c.index(x) for x in (0.0, 20.0, 29.9, 30.0, 45.0, 45.5)] == [0, 0, 1, 1, 2, 3]
    assert c.index(float("nan")) == -1 and c.index(None) == -1
    assert list(c.indices([5.0, np.nan, 60.0])) == [0, -1, 3]
    assert c.rows()[-1] == (UNREACHABLE_COLOUR, "non accessible")

    def luminance(hex_colour: str) -> float:
        r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    lum = [luminance(x) for x in c.colours]
    assert lum == sorted(lum, reverse=True), "sequential: farther is darker"
    # one threshold: edges added below and above, so the map keeps a gradient
    assert minute_classes([30]).edges == (15.0, 30.0, 45.0)
    assert minute_classes([22.5, 45]).labels[0] == "≤ 11,25 min"
    with pytest.raises(ValueError, match="threshold"):
        minute_classes([])


def test_png_uses_the_same_classes_as_the_app() -> None:
    from coverage.export import figures

    minutes = pd.Series([10.0, 25.0, 50.0, np.nan])
    labels, colours, face = figures._minute_classes(minutes, [20.0, 30.0, 45.0])
    classes = minute_classes([20.0, 30.0, 45.0])
    assert labels == classes.labels and colours == list(classes.colours)
    assert face == [classes.colour(m) for m in minutes]
    # a 50-min commune has one colour everywhere
    assert face[2] == maps.minutes_colour(50.0, classes)


def test_tooltip_fields_escaped_and_complete(communes, access, services) -> None:
    gj = _geojson(_build(communes, access, services), "Communes")
    props = [f["properties"] for f in gj.data["features"]]
    hostile = next(p for p in props if p["code_insee"] == "ZA003")
    assert "<script>" not in hostile["nom_txt"] and "&lt;script&gt;" in hostile["nom_txt"]
    bourg = next(p for p in props if p["code_insee"] == "ZA002")
    assert bourg["population_txt"] == "2\u202f300"
    assert bourg["minutes_txt"] == "12 min" or bourg["minutes_txt"] == "13 min"
    assert bourg["service_txt"].startswith("Médiation Aval")
    assert next(p for p in props if p["code_insee"] == "ZA005")["minutes_txt"] == (
        "aucun service accessible")
    tooltip = next(c for c in gj._children.values() if isinstance(c, folium.GeoJsonTooltip))
    assert tooltip.fields == ["nom_txt", "population_txt", "minutes_txt", "service_txt",
                              "zone_txt"]


def test_service_markers_popup_and_type_filter(communes, access, services) -> None:
    page = maps.map_html(_build(communes, access, services))
    assert page.count('"className": "service"') == 2  # only médiation familiale
    for text in ("Médiation Aval", "CAF de ZA", "Médiation familiale", "Capacité : 2.5",
                 "Capacité : non renseignée"):
        assert text in page
    assert "Espace Bourg" not in page
    combined = maps.map_html(_build(communes, access, services, type_service="aucun_service"))
    assert combined.count('"className": "service"') == 3


def test_legend_banner_engine(communes, access, services) -> None:
    fict = maps.map_html(_build(communes, access, services, engine="proxy"))
    assert 'id="zb-fictif"' in fict and "FICTIF" in fict
    assert "Moteur : <b>proxy</b>" in fict
    real = maps.map_html(_build(communes, access, services, fictif=False))
    assert 'id="zb-fictif"' not in real and "Moteur : <b>road</b>" in real
    white = int((~(access["minutes"] <= 30)).sum())
    assert f"{white} / {len(communes)} communes" in real


def test_optional_tiles(communes, access, services) -> None:
    tiles = maps.Tiles("http://127.0.0.1:8080/{z}/{x}/{y}.png", "© tuiles locales")
    page = maps.map_html(_build(communes, access, services, tiles=tiles))
    assert "http://127.0.0.1:8080/{z}/{x}/{y}.png" in page
    assert "\\u00a9 tuiles locales" in page


def test_isochrone_bands_are_dashed_lines_with_their_own_legend(communes, access,
                                                                services) -> None:
    bands = gpd.GeoDataFrame(
        {"type_service": ["mediation_familiale"] * 2 + ["espace_rencontre"],
         "bande_min": [0.0, 20.0, 0.0], "bande_max": [20.0, 30.0, 20.0]},
        geometry=[box(2, 46, 2.05, 46.05), box(2, 46, 2.1, 46.1), box(2, 46, 2.2, 46.2)],
        crs="EPSG:4326",
    )
    m, legend = maps.access_map_and_legend(
        communes, access, services, type_service="mediation_familiale", threshold_min=30.0,
        engine="road", fictif=False, isochrones=bands)
    iso = _styles(m, "Isochrones")
    assert len(iso) == 2  # only the type shown
    assert all(s["className"] == "isochrone" for s in iso)
    # contour lines in their own colour, not filled with the choropleth's colours
    assert all(s["fill"] is False and s["dashArray"] and s["color"] == maps.ISOCHRONE_COLOUR
               for s in iso)
    assert maps.ISOCHRONE_COLOUR not in minute_classes([20, 30, 45]).colours
    assert legend.bands == (20.0, 30.0)
    html = maps.legend_html(legend)
    assert "Isochrones" in html and "≤ 20 min d’un service" in html
    assert "Isochrones" not in maps.legend_html(_build_legend(communes, access, services))


def _build_legend(communes, access, services) -> maps.MapLegend:
    return maps.access_map_and_legend(communes, access, services,
                                      type_service="mediation_familiale", threshold_min=30.0,
                                      engine="road", fictif=False)[1]


def test_metric_scale_only(communes, access, services) -> None:
    page = maps.map_html(_build(communes, access, services))
    assert "L.control.scale({metric: true, imperial: false" in page
    assert "L.control.scale()" not in page


def test_legend_outside_the_map_and_collapsible_inside(communes, access, services) -> None:
    m, legend = maps.access_map_and_legend(communes, access, services,
                                           type_service="mediation_familiale",
                                           threshold_min=30.0, engine="proxy", fictif=True)
    page = maps.map_html(m)
    assert '<details id="zb-legend"' in page and "open" not in page.split(
        '<details id="zb-legend"')[1].split(">")[0], "the in-map legend is closed by default"
    block = maps.legend_html(legend)
    assert block.startswith('<div id="zb-app-legend"') and "<script" not in block
    for label in minute_classes([20, 30, 45]).labels:
        assert html.escape(label) in block
    assert "zone blanche" in block and "3 / 6 communes" in block
    assert "FICTIF" in block and "Moteur : <b>proxy</b>" in block


def test_display_geometries_simplify_in_metres() -> None:
    # A 10 km-wide polygon with 2,000 vertices of ~10 m noise.
    t = np.linspace(0, 2 * math.pi, 2000, endpoint=False)
    r = 0.05 + 0.0001 * np.sin(t * 300)
    poly = Polygon(np.c_[2 + r * np.cos(t), 46 + r * np.sin(t) * 0.7])
    tiny = box(2.3, 46.3, 2.3005, 46.3005)  # ~40 m: must not vanish
    gdf = gpd.GeoDataFrame({"code_insee": ["ZA001", "ZA002"], "code_dep": "ZA"},
                           geometry=[poly, tiny], crs="EPSG:4326")
    out = maps.display_geometries(gdf, tolerance_m=75.0)
    assert out.crs.to_epsg() == 4326
    assert list(out["code_insee"]) == ["ZA001", "ZA002"]
    assert not out.geometry.is_empty.any()
    n_before = len(poly.exterior.coords)
    n_after = len(out.geometry.iloc[0].exterior.coords)
    assert n_after < n_before / 5
    # Area kept within 2 % (measured in Lambert-93).
    a0 = gdf.to_crs(2154).area.iloc[0]
    a1 = out.to_crs(2154).area.iloc[0]
    assert abs(a1 - a0) / a0 < 0.02
    coords = np.asarray(out.geometry.iloc[0].exterior.coords)
    assert np.allclose(coords, np.round(coords, maps.DISPLAY_DECIMALS))


def test_display_geometries_need_crs() -> None:
    gdf = gpd.GeoDataFrame({"code_insee": ["ZA001"]}, geometry=[box(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="set_crs"):
        maps.display_geometries(gdf)


def test_layers_added_after_access_map_come_before_the_control(communes, access,
                                                               services) -> None:
    """A page may add layers to the map; the layer control must still be defined last."""
    m = _build(communes, access, services)
    extra = folium.FeatureGroup(name="Nouveaux sites", show=True)
    folium.CircleMarker([46.02, 2.07], radius=5, class_name="nouveau-site").add_to(extra)
    extra.add_to(m)
    page = maps.map_html(m)
    control = page.index("L.control.layers(")
    groups = re.findall(r"var (feature_group_\w+) = L\.featureGroup", page)
    assert len(groups) == 3  # communes, services, the page's layer
    for name in groups:
        assert page.index(f"var {name} =") < control, name
    assert page.count("L.control.layers(") == 1
    assert maps.map_html(m).count("L.control.layers(") == 1  # idempotent


def test_new_sites_added_to_the_access_map(communes, access, services) -> None:
    from types import SimpleNamespace

    result = SimpleNamespace(
        table=pd.DataFrame({"rang": [1], "nom": ["Esse"], "lon": [2.075], "lat": [46.075],
                            "population_nouvellement_couverte": [980.0],
                            "communes_nouvellement_couvertes": [1]}),
        covered=pd.DataFrame({"code_insee": ["ZA005"], "rang": [1], "site_id": ["ZA005"],
                              "minutes": [3.0]}))
    m = maps.add_new_sites(_build(communes, access, services), result, communes)
    page = maps.map_html(m)
    assert page.count('"className": "nouveau-site"') == 1
    assert "nouvellement-couverte" in page and "Site n° 1 : Esse" in page
    assert "980 habitants" in page and not maps.external_references(page)


def test_shown_services_and_departement_isochrones(communes, access, services) -> None:
    svc = services.assign(code_dep=["ZB", "ZB", "ZA"])
    # S1, S2: nearest of a commune (across the border); S3: located in the département
    assert set(maps.shown_services(svc, access, "ZA")["service_id"]) == {"S1", "S2", "S3"}
    assert set(maps.shown_services(svc, access.head(1), "ZB")["service_id"]) == {"S1", "S2"}
    bands = gpd.GeoDataFrame({"code_dep": ["ZA", "ZB"], "bande_max": [20.0, 20.0]},
                             geometry=[box(1.9, 45.9, 2.5, 46.5), box(2, 46, 2.1, 46.1)],
                             crs="EPSG:4326")
    clipped = maps.departement_isochrones(bands, communes, "ZA")
    assert clipped is not None and len(clipped) == 1
    assert clipped.total_bounds == pytest.approx(communes.total_bounds)
    assert maps.departement_isochrones(None, communes, "ZA") is None


def test_legend_sources_short_and_escaped() -> None:
    from types import SimpleNamespace

    run = SimpleNamespace(fictif=True, engine="proxy", manifest={})
    line = maps.legend_sources(run)  # type: ignore[arg-type]
    assert line.startswith("Source : territoire fictif") and "moteur proxy" in line
    short = maps.legend_sources(run, max_chars=20)  # type: ignore[arg-type]
    assert short.endswith("… (voir « À propos »)") and len(short) < len(line)
    assert "&lt;" not in line


@pytest.fixture
def two_departements() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Département ZA (a 3×2 block) and its neighbour ZB to the east, plus a far ZC."""
    rows = []
    for dep, x0 in (("ZA", 2.0), ("ZB", 2.15), ("ZC", 5.0)):
        for i in range(3):
            for j in range(2):
                rows.append({"code_insee": f"{dep}{i}{j}00"[:5], "code_dep": dep,
                             "nom": f"{dep} commune {i}{j}", "population": 100 * (i + j + 1),
                             "geometry": box(x0 + i * 0.05, 46 + j * 0.05,
                                             x0 + 0.05 + i * 0.05, 46.05 + j * 0.05)})
    rows[1]["nom"] = "<script>alert(1)</script>"
    communes = gpd.GeoDataFrame(rows, crs="EPSG:4326")
    services = gpd.GeoDataFrame(
        {"service_id": ["S1", "S2", "S3"], "code_dep": ["ZA", "ZB", "ZC"],
         "type_service": "mediation_familiale", "nom": ["Ici", "Voisin", "Loin"],
         "organisme": "o", "capacite": 1.0},
        geometry=[Point(2.02, 46.02), Point(2.2, 46.02), Point(5.1, 46.02)], crs="EPSG:4326")
    return communes, services


def test_departement_context_outline_neighbours_labels(two_departements) -> None:
    communes, services = two_departements
    chefs = {"ZA100": "prefecture", "ZB200": "sous-prefecture"}
    ctx = maps.departement_context(communes, services, "ZA")
    assert len(ctx.outline) == 1 and ctx.outline.crs.to_epsg() == 4326
    assert ctx.outline.geometry.iloc[0].area == pytest.approx(0.15 * 0.1, rel=0.05)
    # neighbours: ZB's six communes, not the far ZC; their service, not ZA's own
    assert len(ctx.neighbours) == 6
    assert list(ctx.services["service_id"]) == ["S2"]
    # no chef-lieu known for the fictional codes: the largest commune is level 0
    top = ctx.labels[ctx.labels["level"] == 0]
    assert list(top["text"]) == ["ZA commune 21"] and not top["voisin"].any()
    hostile = ctx.labels[ctx.labels["text"].str.contains("script")]
    assert list(hostile["text"]) == ["&lt;script&gt;alert(1)&lt;/script&gt;"]
    labels = maps.place_labels(communes[communes["code_dep"] != "ZC"], "ZA", chefs=chefs)
    assert labels.iloc[0]["text"] == "ZA commune 10" and labels.iloc[0]["level"] == 0
    assert set(labels["level"]) <= {0, 1, 2, 3}
    # in ZB only its sous-préfecture is named, from the second zoom level on
    neighbour = labels[labels["voisin"]]
    assert list(neighbour["text"]) == ["ZB commune 20"] and list(neighbour["level"]) == [2]


def test_map_with_context_draws_outline_neighbours_and_labels(two_departements) -> None:
    communes, services = two_departements
    own = communes[communes["code_dep"] == "ZA"]
    access = pd.DataFrame({"code_insee": own["code_insee"], "type_service":
                           "mediation_familiale", "minutes": [5.0, 10, 20, 35, 50, np.nan],
                           "service_id": "S1"})
    ctx = maps.departement_context(communes, services, "ZA", access)
    page = maps.map_html(maps.access_map(
        own, access, services[services["code_dep"] == "ZA"],
        type_service="mediation_familiale", threshold_min=30.0, engine="proxy", fictif=False,
        context=ctx))
    assert '"className": "departement-contour"' in page
    # grey neighbours: one SVG path laid over their box (Web Mercator units)
    assert "zb-neighbours" in page and "L.svgOverlay(" in page
    grey = json.loads(ctx.neighbour_rings)
    assert grey["d"].count("M") == 6 and grey["d"].count("z") == 6  # ZB's six communes
    (south, west), (north, east) = grey["bounds"]
    assert west == pytest.approx(2.15, abs=0.002) and east == pytest.approx(2.30, abs=0.002)
    assert south == pytest.approx(46.0, abs=0.002) and north == pytest.approx(46.1, abs=0.002)
    assert grey["box"][2] > 0 and grey["box"][3] > 0
    assert page.count('"className": "service"') == 1
    assert page.count('"className": "service-voisin"') == 1 and "Voisin (autre" in page
    assert "zb-label" in page and "ZA commune 21" in page
    assert "<script>alert(1)" not in page
    assert "\\u0026lt;script\\u0026gt;alert(1)" in page  # escaped, then JSON-escaped
    # the neighbours carry no commune code: the page's codes are the département's only
    assert set(re.findall(r'"code_insee": "([^"]+)"', page)) == set(own["code_insee"])
    assert maps.external_references(page) == []


def test_view_fits_the_departement_and_its_nearest_services(communes, access,
                                                            services) -> None:
    near = services.copy()
    near.loc[1, "geometry"] = Point(2.4, 46.06)  # ~14 km east of the communes: fitted
    far = services.copy()
    far.loc[1, "geometry"] = Point(4.5, 46.06)  # ~180 km: drawn, not fitted
    for svc, east in ((near, 2.4), (far, 2.15)):
        m = _build(communes, access, svc)
        fit = next(c for c in m._children.values() if type(c).__name__ == "FitBounds")
        (_s, w), (_n, e) = fit.bounds
        margin = 0.03 * (east - 2.0)  # 3 % of the width on each side
        assert e == pytest.approx(east + margin) and w == pytest.approx(2.0 - margin)


def test_chefs_lieux_table() -> None:
    chefs = maps.chefs_lieux()
    assert sum(v == "prefecture" for v in chefs.values()) >= 101  # with the DROM and COM
    assert chefs["48095"] == "prefecture"  # Mende
    assert chefs["12145"] == "sous-prefecture"  # Millau
    assert chefs["12202"] == "prefecture"  # Rodez


def test_neighbour_path_lies_where_leaflet_draws_the_polygons() -> None:
    # two squares; their corners, read back from the path through its box, are in place
    squares = np.array([box(2.0, 46.0, 2.2, 46.2), box(3.0, 45.0, 3.1, 45.1)])
    grey = json.loads(maps._neighbour_svg(squares))
    (south, west), (north, east) = grey["bounds"]
    width, height = grey["box"][2], grey["box"][3]

    def merc_y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    starts = [tuple(int(v) for v in m.split("l")[0].split()) for m in grey["d"].split("M")[1:]]
    assert len(starts) == 2 and grey["d"].count("z") == 2
    firsts = [tuple(sq.exterior.coords[0]) for sq in squares]
    for (x, y), (lon, lat) in zip(starts, firsts, strict=True):
        lon_back = west + (east - west) * x / width
        y_frac = y / height  # downwards from the north edge, linear in Mercator
        lat_back = math.degrees(2 * math.atan(math.exp(
            merc_y(north) - y_frac * (merc_y(north) - merc_y(south)))) - math.pi / 2)
        assert lon_back == pytest.approx(lon, abs=0.002)
        assert lat_back == pytest.approx(lat, abs=0.002)
    assert maps._neighbour_svg(np.array([], dtype=object)) == "[]"
