"""coverage.maps: offline folium maps (vendored assets only), styles, popups, simplification."""

from __future__ import annotations

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


def test_one_commune_path_per_commune_white_zones_marked(communes, access, services) -> None:
    for threshold in (10.0, 30.0, 60.0):
        styles = _styles(_build(communes, access, services, threshold_min=threshold))
        assert len(styles) == len(communes)
        assert all(s["className"].split()[0] == "commune" for s in styles)
        white = [s for s in styles if "zone-blanche" in s["className"]]
        expected = int((~(access["minutes"] <= threshold)).sum())  # NaN → white
        assert len(white) == expected
        assert all(s["dashArray"] and s["weight"] > 1 for s in white)


def test_fill_colour_follows_minutes(communes, access, services) -> None:
    styles = _styles(_build(communes, access, services))
    fills = [s["fillColor"] for s in styles]
    assert fills[4] == maps.UNREACHABLE_COLOUR  # NaN minutes
    assert fills[0] == maps.MINUTES_COLOURS[0]
    assert fills[5] == maps.MINUTES_COLOURS[-1]
    assert maps.minutes_colour(float("nan")) == maps.UNREACHABLE_COLOUR
    ordered = [maps.minutes_colour(x) for x in (0, 10, 10.01, 45, 59, 61, 500)]
    idx = [maps.MINUTES_COLOURS.index(c) for c in ordered]
    assert idx == sorted(idx) and idx[0] == 0 and idx[-1] == len(maps.MINUTES_COLOURS) - 1


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


def test_isochrone_bands_drawn_under_communes(communes, access, services) -> None:
    bands = gpd.GeoDataFrame(
        {"type_service": ["mediation_familiale"] * 2 + ["espace_rencontre"],
         "bande_min": [0.0, 20.0, 0.0], "bande_max": [20.0, 30.0, 20.0]},
        geometry=[box(2, 46, 2.05, 46.05), box(2, 46, 2.1, 46.1), box(2, 46, 2.2, 46.2)],
        crs="EPSG:4326",
    )
    m = _build(communes, access, services, isochrones=bands)
    iso = _styles(m, "Isochrones")
    assert len(iso) == 2  # only the type shown
    assert all(s["className"] == "isochrone" for s in iso)
    names = [fg.layer_name for fg in m._children.values()
             if isinstance(fg, folium.FeatureGroup)]
    assert names.index("Isochrones") < names.index("Communes")


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
