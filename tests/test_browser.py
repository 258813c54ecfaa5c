"""The app in a real browser: Debian Chromium driven by Playwright, fully offline.

A fixture starts ``streamlit run app.py`` on a free loopback port with a run of the FICTIONAL
demo territory and waits for ``/_stcore/health``. The test then checks that the Carte page
draws one SVG path per commune of the département, that switching the département redraws
the map with the other département's communes, and that no request (page, frames,
web sockets) leaves 127.0.0.1. A screenshot is kept in ``test-artifacts/``.

Skipped, with the reason, when ``/usr/bin/chromium`` is absent (``make test`` installs it
when run as root). No browser is ever downloaded.
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
from pathlib import Path
from typing import TYPE_CHECKING
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
MAP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """URL of the app started with ``streamlit run`` on a free loopback port."""
    port = _free_port()
    env = dict(os.environ, ZONES_BLANCHES_RUN_DIR=str(demo_run_dir))
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]
    log_path = ARTIFACTS / "streamlit_server.log"
    ARTIFACTS.mkdir(exist_ok=True)
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


def _communes_per_dept(run_dir: Path) -> dict[str, int]:
    import geopandas as gpd

    communes = gpd.read_parquet(run_dir / "communes.parquet")
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


def _check_departement_map(page: Page, dept: str, expected: int, first: bool) -> None:
    """Wait for the map of ``dept``: every commune drawn, all leaflet-interactive."""
    counts = _wait_for_paths(page, expected)
    if first:
        assert counts == (expected, expected), (
            f"département {dept}: expected {expected} commune paths "
            f"(all leaflet-interactive), found {counts}"
        )
    else:
        assert counts == (expected, expected), (
            f"département {dept}: expected {expected} commune paths, found {counts}"
        )
    # Wait for tiles-less vector rendering to finish before the screenshot.
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / f"app_carte_{dept}.png"), full_page=True)


def _check_popup_and_tooltip(frame: Frame, n_communes: int) -> None:
    # Service markers are circle markers (no icon font); a click opens the popup.
    services = frame.locator("path.leaflet-interactive.service")
    assert services.count() > 0, "no service marker on the map"
    services.first.click(force=True)
    popup = frame.locator(".leaflet-popup-content")
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


def _visit_other_pages(page: Page, white_left: bool) -> None:
    # The other pages load nothing from outside either.
    for title in ("Zones blanches", "Nouveau site", "Exports", "À propos"):
        page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
        page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
        if title == "Nouveau site" and white_left:
            page.wait_for_timeout(2000)
            assert max(f.locator(".nouveau-site").count() for f in page.frames), (
                "no suggested site on the Nouveau site map")
        page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "app_a_propos.png"))


def test_map_in_chromium_offline(app_url: str, demo_run_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    per_dept = _communes_per_dept(demo_run_dir)
    white_left = _white_population(demo_run_dir, sorted(per_dept)[1]) > 0
    depts = sorted(per_dept)
    assert len(depts) >= 2, "the demo should have two départements"
    assert per_dept[depts[0]] != per_dept[depts[1]], "the test needs different counts"

    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1300})
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
            _check_departement_map(page, depts[0], per_dept[depts[0]], first=True)

            # Switch the département in the shared sidebar.
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_test_id("stSelectbox").filter(has_text="Département").click()
            page.get_by_role("option", name=re.compile(rf"^{re.escape(depts[1])}\b")).click()
            _check_departement_map(page, depts[1], per_dept[depts[1]], first=False)

            frame = _map_frame(page)
            _check_popup_and_tooltip(frame, per_dept[depts[1]])
            _check_panning_sends_nothing(page, frame, sent)
            _visit_other_pages(page, white_left)
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
