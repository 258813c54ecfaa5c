"""No script through the maps: hostile names are shown as text in Chromium, never run.

folium writes tooltip and popup text inside JavaScript template literals, where
``html.escape`` alone lets a backtick or ``${…}`` run code. Every string that enters a map
goes through :func:`coverage.safe_text.html_js_safe`. The browser tests load a map page
(vendored Leaflet read from ``static/`` by ``file://``) in Debian Chromium with Playwright,
open every tooltip and popup, and check that no injected code ran (``window`` flags stay
unset, no page error) and that the names show as typed.
"""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from coverage import maps
from coverage.errors import CoverageError
from coverage.safe_text import html_js_safe

REPO_ROOT = Path(__file__).resolve().parents[1]
STATIC = REPO_ROOT / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: no browser is downloaded")

#: Each payload sets a window flag when it runs.
PAYLOADS = {
    "X": "${window.X=1}",
    "B": "`+(window.B=1)+`",
    "Y": "</script><script>window.Y=1</script>",
    "Z": "<img src=x onerror=window.Z=1>",
    "S": "fin \\",  # a trailing backslash would swallow the closing backtick
}
FLAGS = ("X", "B", "Y", "Z", "S")


def test_html_js_safe_neutralises_html_and_template_literals() -> None:
    for text in [*PAYLOADS.values(), "a & b \"c\" 'd' {e} $f \\g `h`"]:
        safe = html_js_safe(text)
        assert not set(safe) & set("<>\"'`${}\\"), safe
        assert html.unescape(safe) == text  # the browser shows the text as typed
    assert html_js_safe(12.5) == "12.5"
    assert html_js_safe("Saint-Étienne — n° 3") == "Saint-Étienne — n° 3"


def test_tiles_url_must_be_http(tmp_path: Path) -> None:
    for bad in ("javascript:alert(1)//{z}", "data:text/html,x", "file:///etc/passwd",
                "http://", "//cdn.example/{z}/{x}/{y}.png", 'http://h"/{z}'):
        with pytest.raises(CoverageError, match="URL de tuiles refusée"):
            maps.Tiles(bad, "x")
    assert maps.Tiles("https://tiles.example/{z}/{x}/{y}.png").url.startswith("https://")


def _hostile_inputs() -> tuple[gpd.GeoDataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    names = [*PAYLOADS.values(), "Ordinaire"]
    polys = [box(2 + i * 0.05, 46, 2.05 + i * 0.05, 46.05) for i in range(len(names))]
    communes = gpd.GeoDataFrame(
        {"code_insee": [f"ZA00{i}" for i in range(1, len(names) + 1)], "nom": names,
         "population": 100, "code_dep": "ZA"}, geometry=polys, crs="EPSG:4326")
    sids = [f"S{i}" for i in range(len(PAYLOADS))]
    services = gpd.GeoDataFrame(
        {"service_id": sids, "type_service": "mediation_familiale",
         "nom": list(PAYLOADS.values()), "organisme": list(reversed(PAYLOADS.values())),
         "capacite": 2.0},
        geometry=[Point(2.02 + i * 0.05, 46.02) for i in range(len(sids))], crs="EPSG:4326")
    access = pd.DataFrame({
        "code_insee": communes["code_insee"], "type_service": "mediation_familiale",
        "minutes": [5.0, 12.0, 25.0, 40.0, np.nan, 70.0],
        "service_id": [*sids, None], "distance_km": [1.0, 2.0, 3.0, 4.0, np.nan, 9.0]})
    return communes, access, services


def _hostile_map(monkeypatch: pytest.MonkeyPatch) -> folium.Map:
    communes, access, services = _hostile_inputs()
    monkeypatch.setattr(maps, "source_line", lambda run: "Source : " + PAYLOADS["Y"])
    sources = maps.legend_sources(SimpleNamespace())  # type: ignore[arg-type]
    tiles = maps.Tiles("http://127.0.0.1:9/{z}/{x}/{y}.png", PAYLOADS["Z"] + PAYLOADS["X"])
    m = maps.access_map(communes, access, services, type_service="mediation_familiale",
                        threshold_min=30.0, engine="road", fictif=True, tiles=tiles,
                        sources=sources, static_url=STATIC.as_uri())
    table = pd.DataFrame({
        "rang": [1, 2], "nom": [PAYLOADS["B"], PAYLOADS["S"]], "lon": [2.03, 2.13],
        "lat": [46.03, 46.03], "population_nouvellement_couverte": [100.0, 50.0],
        "communes_nouvellement_couvertes": [1, 1]})
    covered = pd.DataFrame({"code_insee": ["ZA005", "ZA006"], "rang": [1, 2],
                            "site_id": ["N1", "N2"], "minutes": [8.0, 9.0]})
    maps.add_new_sites(m, SimpleNamespace(table=table, covered=covered),  # type: ignore[arg-type]
                       communes)
    return m


def test_hostile_page_source_has_no_raw_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    page = maps.map_html(_hostile_map(monkeypatch))
    for flag in ("X", "B", "Y", "Z"):  # "fin \\" is in any JSON escape such as "\\u0026"
        assert PAYLOADS[flag] not in page
    assert "${window" not in page and "`+(window" not in page
    assert "<img" not in page and "</script><script>window" not in page


_OPEN_EVERYTHING = """() => {
  const map = Object.keys(window).map(k => window[k]).find(v => v instanceof L.Map);
  const texts = [];
  const leaves = [];
  map.eachLayer(l => { if (l.getLatLng || (l.getBounds && l.feature)) leaves.push(l); });
  for (const l of leaves) {
    const at = l.getLatLng ? l.getLatLng() : l.getBounds().getCenter();
    l.fire('mouseover', {latlng: at, containerPoint: map.latLngToContainerPoint(at)}, true);
    document.querySelectorAll('.leaflet-tooltip').forEach(t => texts.push(t.textContent));
    l.fire('mouseout', {}, true);
    if (l.getPopup && l.getPopup()) {
      l.openPopup();
      document.querySelectorAll('.leaflet-popup-content')
        .forEach(p => texts.push(p.textContent));
      l.closePopup();
    }
  }
  texts.push(document.querySelector('.leaflet-control-attribution').textContent);
  texts.push(document.getElementById('zb-legend').textContent);
  return {texts: texts, leaves: leaves.length};
}"""


def _open_in_chromium(page_html: str, tmp_path: Path) -> dict[str, Any]:
    """Load a map page, open every tooltip and popup; return texts, flags and errors."""
    from playwright.sync_api import sync_playwright

    path = tmp_path / "map.html"
    path.write_text(page_html, encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(path.as_uri())
            page.wait_for_function("() => typeof L !== 'undefined' && "
                                   "document.querySelectorAll('path.commune').length > 0")
            opened = page.evaluate(_OPEN_EVERYTHING)
            page.wait_for_timeout(500)  # let a broken <img> fire its onerror, if any
            flags = page.evaluate(f"() => {list(FLAGS)!r}.filter(f => window[f] !== undefined)")
            images = page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length")
        finally:
            chromium.close()
    return {"texts": opened["texts"], "leaves": opened["leaves"], "flags": flags,
            "errors": errors, "images": images}


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_hostile_names_are_inert_in_chromium(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    seen = _open_in_chromium(maps.map_html(_hostile_map(monkeypatch)), tmp_path)
    assert seen["flags"] == [], f"injected code ran: window.{seen['flags']}"
    assert seen["errors"] == [], seen["errors"]
    assert seen["images"] == 0
    text = "\n".join(seen["texts"])
    assert seen["leaves"] >= 6 + 5 + 2 + 2  # communes, services, sites, covered communes
    for payload in PAYLOADS.values():
        assert payload in text, f"{payload!r} is not shown as text"
    assert "Site n° 1 : " + PAYLOADS["B"] in text
    assert PAYLOADS["S"] + " : couverte par le site n° 1" in text
    assert PAYLOADS["Z"] + PAYLOADS["X"] in text  # the tile attribution, as typed


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_the_check_catches_html_escape_alone(tmp_path: Path) -> None:
    """The browser check can fail: ``html.escape`` in a folium tooltip lets ``${…}`` run."""
    m = maps.offline_map([2.0, 46.0, 2.1, 46.1], static_url=STATIC.as_uri())
    m.get_root().html.add_child(folium.Element('<div id="zb-legend"></div>'))
    folium.GeoJson(gpd.GeoDataFrame(geometry=[box(2, 46, 2.1, 46.1)], crs="EPSG:4326"),
                   style_function=lambda f: {"className": "commune"}).add_to(m)
    folium.CircleMarker([46.05, 2.05], tooltip=html.escape(PAYLOADS["X"])).add_to(m)
    folium.TileLayer(tiles="http://127.0.0.1:9/{z}/{x}/{y}.png", attr="t").add_to(m)
    seen = _open_in_chromium(maps.map_html(m), tmp_path)
    assert seen["flags"] == ["X"]


# --- the app: tile attribution from the environment and the sidebar -----------------------
@pytest.fixture(scope="module")
def proxy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    out = tmp_path_factory.mktemp("maps_app") / "run"
    run_batch(load_inputs(), out_dir=out, options=RunOptions(
        workers=1, isochrones=False, engine="proxy", thresholds=[30.0]))
    return out


@pytest.mark.slow
def test_app_tile_attribution_is_escaped_and_bad_urls_refused(
        proxy_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from coverage.app import state

    monkeypatch.setenv(state.ENV_RUN_DIR, str(proxy_run))
    monkeypatch.setenv(state.ENV_TILES_URL, "http://127.0.0.1:9/{z}/{x}/{y}.png")
    monkeypatch.setenv(state.ENV_TILES_ATTRIBUTION, PAYLOADS["Z"] + PAYLOADS["X"])
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    page = at.get("iframe")[0].proto.srcdoc
    assert "tileLayer" in page
    assert PAYLOADS["Z"] not in page and "${window" not in page
    assert html_js_safe(PAYLOADS["Z"] + PAYLOADS["X"]).replace("&", "\\u0026") in page
    at.text_input(key="tiles_url").set_value("javascript:alert(1)//{z}").run()
    assert not at.exception
    assert any("URL de tuiles refusée" in e.value for e in at.error)
    assert "tileLayer" not in at.get("iframe")[0].proto.srcdoc
