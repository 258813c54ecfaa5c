"""The app in a real browser: Debian Chromium driven by Playwright, fully offline.

A fixture starts ``streamlit run app.py`` on a free loopback port with a run and waits for
``/_stcore/health``. On the FICTIONAL demo, the test checks that the Carte page draws one SVG
path per commune of the département, that switching the département redraws the map with
the other département's communes, that no request (page, frames, web sockets) leaves
127.0.0.1, and what a planner reads: the préfecture's label (the largest commune where no
préfecture is known), white zones hatched with an SVG pattern, the legend outside the map,
a scale bar without miles. The same is checked on Lozère (48) of a national proxy run, and
every page is screenshotted for the demo and for Lozère of a Massif Central run (both
skipped, with the reason, without ``../shared/data``).

Screenshots go to ``test-artifacts/`` (not committed; the path is printed). Skipped, with the
reason, when ``/usr/bin/chromium`` is absent (``make test`` installs it when run as root). No
browser is ever downloaded.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Frame, Page, WebSocket

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is absent: install Debian's chromium (`make test` does it as "
               "root) to run the browser test; no browser is downloaded",
    ),
]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
STARTUP_TIMEOUT_S = 90.0
MAP_TIMEOUT_S = 180.0
VIEWPORT = {"width": 1440, "height": 900}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(run_dir: Path, name: str) -> Iterator[str]:
    """Start ``streamlit run app.py`` on ``run_dir``; yield its URL; stop it."""
    port = _free_port()
    env = dict(os.environ, ZONES_BLANCHES_RUN_DIR=str(run_dir))
    env.pop("ZONES_BLANCHES_NO_WARM", None)  # the real app: warming on
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--server.enableStaticServing", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"streamlit_server_{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited with {proc.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit not healthy after {STARTUP_TIMEOUT_S:.0f} s; "
                                f"see {log_path}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def demo_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the fictional demo, made once (or ``$ZB_TEST_RUN_DIR``, to reuse)."""
    reuse = os.environ.get("ZB_TEST_RUN_DIR")
    if reuse:
        return Path(reuse)
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    out = tmp_path_factory.mktemp("browser_run") / "demo"
    run_batch(load_inputs(), out_dir=out, options=RunOptions(workers=1))
    return out


@pytest.fixture(scope="module")
def app_url(demo_run_dir: Path) -> Iterator[str]:
    """URL of the app started with ``streamlit run`` on the demo run."""
    with _serve(demo_run_dir, "demo") as url:
        yield url


def _communes_per_dept(run_dir: Path) -> dict[str, int]:
    import geopandas as gpd

    communes = gpd.read_parquet(run_dir / "communes.parquet", columns=["code_dep", "geometry"])
    return {str(k): int(v) for k, v in communes["code_dep"].astype(str).value_counts().items()}


def _white_population(run_dir: Path, dept: str) -> int:
    """White-zone population of a département at the sidebar's defaults (first type, 30 min)."""
    import pandas as pd

    from coverage.results import RunOutputs, run_service_types

    run = RunOutputs.load(run_dir)
    t = pd.read_parquet(run_dir / "tables" / "couverture_departements.parquet")
    row = t[(t["code_dep"] == dept) & (t["type_service"] == run_service_types(run)[0])
            & (t["seuil_minutes"] == 30.0)]
    return int(row["population_zone_blanche"].sum())


def _top_label(run_dir: Path, dept: str) -> str:
    """The label always shown on a département's map: its préfecture, else its largest."""
    import html

    import geopandas as gpd

    from coverage import maps

    communes = gpd.read_parquet(run_dir / "communes.parquet")
    labels = maps.place_labels(communes[communes["code_dep"] == dept], dept)
    return html.unescape(str(labels.loc[labels["level"] == 0, "text"].iloc[0]))


def _commune_paths(page: Page) -> tuple[int, int]:
    """(paths of class commune, of which leaflet-interactive) in the map's frame."""
    for frame in page.frames:
        try:
            n = frame.locator("path.commune").count()
        except Exception:  # a frame being replaced
            continue
        if n:
            return n, frame.locator("path.leaflet-interactive.commune").count()
    return 0, 0


def _map_frame(page: Page) -> Frame:
    for frame in page.frames:
        if frame.locator("path.commune").count():
            return frame
    raise AssertionError("no frame holds the map")


def _wait_for_paths(page: Page, expected: int) -> tuple[int, int]:
    deadline = time.monotonic() + MAP_TIMEOUT_S
    counts = (0, 0)
    while time.monotonic() < deadline:
        counts = _commune_paths(page)
        if counts[0] == expected:
            # let a redraw in progress settle, then read again
            time.sleep(0.5)
            counts = _commune_paths(page)
            if counts[0] == expected:
                return counts
        time.sleep(0.5)
    return counts


def _check_departement_map(page: Page, dept: str, expected: int, shot: str) -> None:
    """Wait for the map of ``dept``: every commune drawn, all leaflet-interactive."""
    counts = _wait_for_paths(page, expected)
    assert counts == (expected, expected), (
        f"département {dept}: expected {expected} commune paths "
        f"(all leaflet-interactive), found {counts}"
    )
    page.wait_for_timeout(1000)  # vector rendering settles before the screenshot
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)


def _choose_dept(page: Page, dept: str) -> None:
    """Choose ``dept`` in the sidebar by typing its code (long lists are virtual)."""
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Département").click()
    page.keyboard.type(f"{dept} — ")
    page.keyboard.press("Enter")


def _check_what_a_planner_reads(page: Page, label: str) -> dict[str, Any]:
    """The préfecture's label, white zones hatched, the legend outside the map, no miles."""
    frame = _map_frame(page)
    top = frame.locator(".leaflet-marker-icon.zb-label-0 span")  # the box is a 0×0 anchor
    top.first.wait_for(timeout=10_000)
    assert top.first.inner_text().strip() == label
    assert frame.locator(".leaflet-marker-icon.zb-label").count() > 1, "only one place name"
    # white zones: filled with a hatch pattern that exists in the page
    assert frame.locator("pattern[id^='zb-hatch-']").count() >= 2
    white = frame.locator("path.commune.zone-blanche")
    hatched = frame.locator("path.commune.zone-blanche[fill^='url(#zb-hatch-']")
    assert hatched.count() == white.count()
    assert frame.locator("path.commune:not(.zone-blanche)[fill^='url(']").count() == 0
    # the legend is page text beside the map, not over it; the map's own is closed
    legend = page.locator("#zb-app-legend")
    legend.wait_for(timeout=10_000)
    assert "zone blanche" in legend.inner_text()
    lbox, mbox = legend.bounding_box(), page.locator("iframe").first.bounding_box()
    assert lbox is not None and mbox is not None
    assert (lbox["x"] >= mbox["x"] + mbox["width"] or lbox["y"] >= mbox["y"] + mbox["height"]
            ), f"legend {lbox} overlaps the map {mbox}"
    assert frame.locator("#zb-legend[open]").count() == 0
    # a metric scale bar only
    scale = frame.locator(".leaflet-control-scale-line")
    assert scale.count() == 1
    text = scale.inner_text()
    assert re.fullmatch(r"\d+ (km|m)", text.strip()), text
    assert not re.search(r"\b(mi|ft)\b", frame.locator(".leaflet-control-scale").inner_text())
    # the neighbours and the département's outline are drawn
    assert frame.locator("path.departement-contour").count() == 1
    return {"white": white.count(), "labels": frame.locator(".zb-label").count()}


def _check_popup_and_tooltip(frame: Frame, n_communes: int) -> None:
    # Service markers are circle markers (no icon font); a click opens the popup.
    services = frame.locator("path.leaflet-interactive.service")
    assert services.count() > 0, "no service marker on the map"
    view = frame.locator(".leaflet-container").bounding_box()
    assert view is not None
    inside = [m for m in services.all() if (b := m.bounding_box()) is not None
              and view["x"] < b["x"] < view["x"] + view["width"] - b["width"]
              and view["y"] + 60 < b["y"] < view["y"] + view["height"] - b["height"]]
    assert inside, "no service marker inside the map's view"
    popup = frame.locator(".leaflet-popup-content")
    for _ in range(3):  # the first click into the frame may only give it the focus
        inside[0].click(force=True)
        page_wait = 1000
        frame.wait_for_timeout(page_wait)
        if popup.count():
            break
    popup.wait_for(timeout=10_000)
    for label in ("Organisme", "Type", "Capacité"):
        assert label in popup.inner_text()
    # Hovering a commune shows its tooltip.
    frame.locator("path.commune").nth(n_communes // 2).hover(force=True)
    tip = frame.locator(".leaflet-tooltip.foliumtooltip")
    tip.wait_for(timeout=10_000)
    for label in ("Population", "Temps d'accès", "Service le plus proche"):
        assert label in tip.inner_text()


def _check_panning_sends_nothing(page: Page, frame: Frame, sent: list[object]) -> None:
    # Panning the map sends nothing to the server (no rerun).
    assert sent, "web-socket frames are not recorded (the département switch sent one)"
    before = len(sent)
    box = frame.locator(".leaflet-container").bounding_box()
    iframe_box = page.locator("iframe").first.bounding_box()
    assert box is not None and iframe_box is not None
    x = iframe_box["x"] + iframe_box["width"] * 0.3
    y = iframe_box["y"] + iframe_box["height"] * 0.3
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 150, y + 80, steps=8)
    page.mouse.up()
    page.wait_for_timeout(1500)
    assert len(sent) == before, "panning the map sent messages to the server"


def _screenshot_every_page(page: Page, prefix: str, white_left: bool) -> list[Path]:
    """Visit every page of the navigation and screenshot it (full page); return the files."""
    nav = page.get_by_test_id("stSidebarNav")
    titles = [t.strip() for t in nav.locator("a").all_inner_texts() if t.strip()]
    assert "Carte" in titles and "À propos" in titles, titles
    shots = []
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 2400})  # the whole page
    for i, title in enumerate(titles):
        nav.get_by_text(title, exact=True).click()
        heading = page.get_by_role("heading", name=re.compile(re.escape(title.split()[0])))
        heading.first.wait_for(timeout=120_000)
        _wait_idle(page)
        if title == "Nouveau site" and white_left:
            deadline = time.monotonic() + 120
            while not max(f.locator(".nouveau-site").count() for f in page.frames):
                assert time.monotonic() < deadline, "no suggested site on the Nouveau site map"
                page.wait_for_timeout(500)
        slug = re.sub(r"[^a-z0-9]+", "_", title.lower().encode("ascii", "ignore").decode())
        path = ARTIFACTS / f"{prefix}_{i:02d}_{slug.strip('_')}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)
    page.set_viewport_size(VIEWPORT)
    print(f"\nscreenshots of every page ({prefix}): {ARTIFACTS}")
    return shots


def _wait_idle(page: Page, timeout_s: float = 120.0) -> None:
    """Wait until the script run is over (no « Running » status), then let it paint."""
    deadline = time.monotonic() + timeout_s
    page.wait_for_timeout(800)
    while time.monotonic() < deadline:
        if not page.get_by_test_id("stStatusWidget").count():
            break
        page.wait_for_timeout(300)
    page.wait_for_timeout(1500)


def _launch(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def test_map_in_chromium_offline(app_url: str, demo_run_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    per_dept = _communes_per_dept(demo_run_dir)
    white_left = _white_population(demo_run_dir, sorted(per_dept)[1]) > 0
    depts = sorted(per_dept)
    assert len(depts) >= 2, "the demo should have two départements"
    assert per_dept[depts[0]] != per_dept[depts[1]], "the test needs different counts"

    requests: list[str] = []
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            sent: list[object] = []

            def on_ws(ws: WebSocket) -> None:
                requests.append(ws.url)
                ws.on("framesent", lambda payload: sent.append(payload))

            page.on("websocket", on_ws)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(app_url, wait_until="domcontentloaded")
            _check_departement_map(page, depts[0], per_dept[depts[0]],
                                   f"app_carte_{depts[0]}.png")
            _check_what_a_planner_reads(page, _top_label(demo_run_dir, depts[0]))

            # Switch the département in the shared sidebar.
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_test_id("stSelectbox").filter(has_text="Département").click()
            page.get_by_role("option", name=re.compile(rf"^{re.escape(depts[1])}\b")).click()
            _check_departement_map(page, depts[1], per_dept[depts[1]],
                                   f"app_carte_{depts[1]}.png")
            _check_what_a_planner_reads(page, _top_label(demo_run_dir, depts[1]))

            frame = _map_frame(page)
            _check_popup_and_tooltip(frame, per_dept[depts[1]])
            _check_panning_sends_nothing(page, frame, sent)
            shots = _screenshot_every_page(page, "demo", white_left)
            assert all(p.stat().st_size > 10_000 for p in shots)
            assert not errors, f"JavaScript errors in the pages: {errors}"
        finally:
            browser.close()

    assert requests, "no request recorded: the recorder is broken"
    outside = sorted({
        u for u in requests
        if urlsplit(u).scheme not in ("data", "blob", "about")
        and urlsplit(u).hostname not in LOCAL_HOSTS
    })
    assert not outside, f"requests left the app's host: {outside}"
    assert any("/app/static/vendor/leaflet/leaflet.js" in u for u in requests), (
        "Leaflet was not loaded from the app's static files"
    )


def _grid_column(table: Any, column: int) -> list[float]:
    """Return the numbers of one column of a table's visible rows, top to bottom.

    The table (``st.dataframe``) draws on a canvas; its accessible grid lists the cells of
    the visible rows with their numbers (the canvas shows their French texts). ``column``
    counts from 1.
    """
    cells = table.locator(f"td[aria-colindex='{column}']")
    return [float(t) for t in cells.all_inner_texts() if t.strip()]


def test_table_sorts_french_numbers_as_numbers(app_url: str, demo_run_dir: Path) -> None:
    """Zones blanches, table by commune: a click on « Population » sorts by the numbers."""
    import pandas as pd
    from playwright.sync_api import sync_playwright

    dept = sorted(_communes_per_dept(demo_run_dir))[0]
    communes = pd.read_parquet(demo_run_dir / "communes.parquet", columns=["code_dep",
                                                                         "population"])
    population = sorted(communes.loc[communes["code_dep"].astype(str) == dept, "population"]
                        .astype(float))
    # the check can fail: sorted as text, the populations would come in another order
    assert population != sorted(population, key=lambda v: str(int(v)))
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{app_url}/zones_blanches?dep={dept}", wait_until="domcontentloaded")
            table = page.get_by_test_id("stDataFrame").first  # « Par commune », shown first
            grid = table.locator("canvas").first
            grid.wait_for(timeout=120_000)
            _wait_idle(page)
            box = grid.bounding_box()
            assert box is not None
            # « Population » is the third column: Commune 180 px, Code INSEE 80 px, then 90 px
            heading = (box["x"] + 180 + 80 + 45, box["y"] + 18)
            page.mouse.click(*heading)
            page.wait_for_timeout(1000)
            rising = _grid_column(table, 3)
            assert len(rising) >= 5, "too few rows visible to judge the order"
            assert rising == population[:len(rising)]  # the smallest first, as numbers
            page.mouse.click(*heading)
            page.wait_for_timeout(1000)
            falling = _grid_column(table, 3)
            assert falling == population[::-1][:len(falling)]
            table.screenshot(
                path=str(ARTIFACTS / "zones_blanches_tri_population.png"))
        finally:
            browser.close()


def _synthetic_sites(communes: Any) -> Any:
    """550 SYNTHETIC sites (the national benchmark's: not the real offer)."""
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.bench_batch import synthetic_sites

    return synthetic_sites(communes)


@pytest.fixture(scope="module")
def national_run_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A national proxy run with SYNTHETIC sites (or ``$ZB_TEST_NATIONAL_RUN``, to reuse)."""
    reuse = os.environ.get("ZB_TEST_NATIONAL_RUN")
    if reuse:
        return Path(reuse)
    from coverage.batch import RunOptions, run_batch
    from coverage.io.communes import load_communes
    from coverage.io.inputs import Inputs

    communes_file = shared_data / "communes" / "communes_cog2026.parquet"
    grid = shared_data / "communes" / "grille_densite_4niv_cog2026.csv"
    communes = load_communes(communes_file, densite=grid).data
    inputs = Inputs(communes=communes, services=_synthetic_sites(communes), waiting=None,
                    roads=None, fictif=False)
    out = tmp_path_factory.mktemp("browser_national") / "run"
    run_batch(inputs, out_dir=out,
              options=RunOptions(engine="proxy", isochrones=False, workers=1))
    return out


@pytest.fixture(scope="module")
def massif_central_run_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory
                           ) -> Path:
    """A proxy run of the Massif Central (15, 12, 48) with the partial real sites."""
    import geopandas as gpd
    import pandas as pd

    from coverage.batch import RunOptions, run_batch
    from coverage.io.communes import load_communes
    from coverage.io.inputs import Inputs

    communes = load_communes(shared_data / "territoires" / "massif_central_15_12_48.gpkg").data
    pts = pd.read_csv(shared_data / "communes" / "points_interieurs_cog2026.csv", dtype=str)
    svc = pd.read_csv(shared_data / "services" / "services_sites_publics_partiels.csv",
                      dtype=str).merge(pts[["code_insee", "lon", "lat"]], on="code_insee")
    svc["service_id"] = [f"S{i:03d}" for i in range(len(svc))]
    svc["nom"] = svc["organisme"].str.split(" (", regex=False).str[0] + " — " + svc["commune"]
    svc[["lon", "lat"]] = svc[["lon", "lat"]].astype(float)
    services = gpd.GeoDataFrame(svc, geometry=gpd.points_from_xy(svc.lon, svc.lat),
                                crs="EPSG:4326")
    out = tmp_path_factory.mktemp("browser_mc") / "run"
    run_batch(Inputs(communes=communes, services=services, waiting=None, roads=None,
                     fictif=False),
              out_dir=out, options=RunOptions(engine="proxy", workers=1))
    return out


def test_carte_on_lozere_of_a_national_run(national_run_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    per_dept = _communes_per_dept(national_run_dir)
    with _serve(national_run_dir, "national") as url, sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url, wait_until="domcontentloaded")
            first = sorted(per_dept)[0]
            _check_departement_map(page, first, per_dept[first], f"national_carte_{first}.png")
            _choose_dept(page, "48")
            _check_departement_map(page, "48", per_dept["48"], "national_carte_48.png")
            seen = _check_what_a_planner_reads(page, "Mende")
            frame = _map_frame(page)
            assert "Florac Trois Rivières" in frame.content()  # the sous-préfecture
            assert seen["white"] > 0
            assert not errors, errors
        finally:
            browser.close()


def test_every_page_of_lozere_in_a_massif_central_run(massif_central_run_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    per_dept = _communes_per_dept(massif_central_run_dir)
    with _serve(massif_central_run_dir, "massif_central") as url, sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url, wait_until="domcontentloaded")
            first = sorted(per_dept)[0]
            _check_departement_map(page, first, per_dept[first], f"mc_carte_{first}.png")
            _choose_dept(page, "48")
            _check_departement_map(page, "48", per_dept["48"], "mc_carte_48.png")
            _check_what_a_planner_reads(page, "Mende")
            shots = _screenshot_every_page(page, "massif_central_48", white_left=True)
            assert len(shots) >= 6
            assert not errors, errors
        finally:
            browser.close()
