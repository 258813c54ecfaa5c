"""App benchmark: the Carte page in a real browser on a national run, with a naive peer.

Targets (issue 15): on a national proxy run, the Carte page of a département is usable
(every commune drawn, labels and legend shown) in ≤ 3 s, and a département switch in
≤ 1.5 s, measured in headless Debian Chromium (``/usr/bin/chromium``) driven by Playwright,
against ``streamlit run app.py`` on a free loopback port.

Input: the national proxy run of ``bench_batch`` (34,868 communes from ``../shared/data``
read in place, 550 SYNTHETIC sites, seed 2026: not the real offer). ``ZB_BENCH_APP_RUN``
names a finished run folder to reuse instead. Without ``../shared/data`` and without that
variable, the benchmark is skipped with the reason.

Timed, in one browser:

- Carte, cold: first page load of a fresh server (the run is read, the département's display
  data built), until the map of the first département is drawn;
- Carte, usable on Lozère (48): choose it in the sidebar from the first département, until
  its map is drawn (first time: display data built);
- Carte, fresh page load on 48: the app's URL with ``?dep=48`` (the sidebar keeps the
  département shown in the URL) opened in a new tab of the same browser (Streamlit's front
  end in its HTTP cache), then from a new browser profile (empty cache: every script of the
  front end fetched and compiled again), from the request until its map is drawn;
- département switch 48 → 12 (first visit), 12 → 48 and 48 → 12 (visited), until the map is
  drawn; then a reload of the page (the URL keeps 12).

Before each switch the benchmark waits :data:`READ_S` seconds (a planner reading the map),
during which the app prepares the nearest départements' maps in a worker process
(:func:`coverage.app.state.warm_departements`); ``ZB_BENCH_APP_READ_S=0`` clicks at once.
Each step prints the server's CPU (from ``/proc``) and the browser renderer's (CDP
``Performance.getMetrics``: main thread, whole renderer process) from the click or the
request: on a shared machine they say what a step costs whatever the wall-clock wait.

Peer, same input, same run, same browser: a naive folium rendering of the same layer — one
``folium.GeoJson`` of the département's full-resolution outlines coloured by a style
function, with tooltips, saved as a page (Leaflet from the vendored static files) — against
our map page (:func:`coverage.maps.access_map`, uncached): Python build time, HTML size, and
time until the browser has drawn every commune.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("ZB_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO_ROOT = Path(__file__).resolve().parents[1]
STATIC = REPO_ROOT / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DEPT, OTHER = "48", "12"
VIEWPORT = {"width": 1440, "height": 900}
TARGET_CARTE_S = 3.0
TARGET_SWITCH_S = 1.5
TIMEOUT_S = 120.0
#: Milliseconds between two looks for the drawn map (each look queries every frame of the
#: page: the renderer's CPU figures include them, as for the peer).
POLL_MS = 50
#: Seconds a planner reads a map before choosing another département (the app warms the
#: other départements' display data in the background meanwhile); ``ZB_BENCH_APP_READ_S``.
READ_S = float(os.environ.get("ZB_BENCH_APP_READ_S", "8"))


def _make_national_run(out: Path) -> None:
    """Write the national proxy run of ``bench_batch`` (SYNTHETIC sites) into ``out``."""
    from benchmarks.bench_batch import synthetic_sites
    from coverage.batch import RunOptions, run_batch
    from coverage.io.communes import load_communes
    from coverage.io.inputs import Inputs

    communes_file = SHARED / "communes" / "communes_cog2026.parquet"
    grid = SHARED / "communes" / "grille_densite_4niv_cog2026.csv"
    communes = load_communes(communes_file, densite=grid).data
    inputs = Inputs(communes=communes, services=synthetic_sites(communes), waiting=None,
                    roads=None, fictif=False,
                    paths={"communes": str(communes_file), "densite": str(grid)})
    run_batch(inputs, out_dir=out,
              options=RunOptions(engine="proxy", isochrones=False, workers=1))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Process id of the running Streamlit server (its CPU time is read from /proc).
_SERVER: dict[str, Any] = {}


def _proc_cpu(pid: int | None) -> float:
    """Return the CPU seconds (user + system) of one process, NaN when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int | None) -> list[int]:
    """Return the live child processes of ``pid`` (Linux: their ``/proc/*/stat`` ppid)."""
    out: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _server_cpu() -> float:
    """Return the CPU seconds used so far by the Streamlit server and its live children.

    The children are the warming's worker process (:mod:`coverage.app.prebuild`): its
    work is counted too, in the step during which it happens.
    """
    pid = _SERVER.get("pid")
    total = _proc_cpu(pid)
    for child in _children(pid):
        seen = _SERVER.setdefault("children", {})
        cpu = _proc_cpu(child)
        if math.isfinite(cpu):
            seen[child] = cpu
    if isinstance(_SERVER.get("children"), dict):
        total += sum(_SERVER["children"].values())
    return total


@contextmanager
def _server(run_dir: Path, log_path: Path) -> Iterator[str]:
    """Start ``streamlit run app.py`` on the run; yield its URL; stop it."""
    port = _free_port()
    env = dict(os.environ, ZONES_BLANCHES_RUN_DIR=str(run_dir))
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--server.enableStaticServing", "true",
           "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        _SERVER["pid"] = proc.pid
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _drawn(page: Any, n: int, legend: bool = True) -> bool:
    """Return True when a frame holds exactly ``n`` commune paths (and the page a legend)."""
    if legend and not page.locator("#zb-app-legend").count():
        return False
    for frame in page.frames:
        try:
            if frame.locator("path.commune").count() == n:
                return True
        except Exception:
            continue
    return False


def _wait_drawn(page: Any, n: int, t0: float, legend: bool = True) -> float:
    """Wait until the map of ``n`` communes is drawn; return seconds since ``t0``."""
    while time.perf_counter() - t0 < TIMEOUT_S:
        if _drawn(page, n, legend):
            return time.perf_counter() - t0
        page.wait_for_timeout(POLL_MS)
    msg = f"map of {n} communes not drawn after {TIMEOUT_S:.0f} s"
    raise TimeoutError(msg)


class _Renderer:
    """CPU seconds of a page's renderer (main thread and whole process), read over CDP.

    ``Performance.getMetrics`` gives ``ThreadTime`` (the renderer's main thread: the
    Streamlit front end and the map's same-origin frame) and ``ProcessTime``; on a shared
    machine they say what a step cost the browser whatever the wall-clock wait.
    """

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        self.mark = self._read()

    def _read(self) -> tuple[float, float]:
        try:
            m = {x["name"]: x["value"] for x in self.cdp.send("Performance.getMetrics")["metrics"]}
        except Exception:
            return float("nan"), float("nan")
        return float(m.get("ThreadTime", "nan")), float(m.get("ProcessTime", "nan"))

    def since_mark(self) -> str:
        """Return the browser CPU since the last call, as text."""
        now = self._read()
        main, proc = now[0] - self.mark[0], now[1] - self.mark[1]
        if main < 0 or proc < 0:  # a new renderer process since the mark: all of it is ours
            main, proc = now
        self.mark = now
        return f"   browser CPU {main:4.2f} s main thread, {proc:4.2f} s renderer"


def _choose_dept(page: Any, dept: str, browser: _Renderer | None = None) -> float:
    """Read the map for :data:`READ_S`, choose ``dept`` in the sidebar; return the click time.

    The server's CPU is counted from the click: what the background warming did while the
    user was reading is not charged to the step.
    """
    page.wait_for_timeout(READ_S * 1000)
    if browser is not None:
        browser.since_mark()
    cpu = _server_cpu()
    if math.isfinite(cpu):
        _SERVER["cpu_mark"] = int(cpu * 1000)
    sidebar = page.get_by_test_id("stSidebar")
    box = sidebar.get_by_test_id("stSelectbox").filter(has_text="Département")
    box.click()
    page.keyboard.type(f"{dept} — ")
    t0 = time.perf_counter()
    page.keyboard.press("Enter")
    return t0


def _line(what: str, seconds: float, target: float | None) -> str:
    flag = ""
    if target is not None:
        flag = f"  (target ≤ {target:g} s) {'OK' if seconds <= target else 'OVER TARGET'}"
    return f"  {what:<66} {seconds:6.2f} s{flag}"


def _row(what: str, seconds: float, target: float | None, browser: Any = None
         ) -> tuple[str, float, float | None]:
    """Print a timing (and the server's and browser's CPU since the last row) when measured."""
    cpu = _server_cpu()
    used = cpu - _SERVER.get("cpu_mark", 0) / 1000 if math.isfinite(cpu) else float("nan")
    if math.isfinite(cpu):
        _SERVER["cpu_mark"] = int(cpu * 1000)
    server = f"   server CPU {used:5.2f} s" if math.isfinite(used) and "pid" in _SERVER else ""
    extra = browser.since_mark() if browser is not None else ""
    print(_line(what, seconds, target) + server + extra, flush=True)
    return what, seconds, target


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _browser_pages(run_dir: Path, counts: dict[str, int], work: Path) -> list[tuple[str, float,
                                                                                   float | None]]:
    """Time the app in Chromium; return (what, seconds, target) rows."""
    from playwright.sync_api import sync_playwright

    first = sorted(counts)[0]
    rows: list[tuple[str, float, float | None]] = []
    with _server(run_dir, work / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            cpu = _Renderer(page)
            t0 = time.perf_counter()
            page.goto(url, wait_until="commit")
            rows.append(_row(f"Carte, cold server: département {first} drawn",
                             _wait_drawn(page, counts[first], t0), None, cpu))
            t0 = _choose_dept(page, DEPT, cpu)
            rows.append(_row(f"Carte, usable on {DEPT} (first visit, display data built)",
                             _wait_drawn(page, counts[DEPT], t0), TARGET_CARTE_S, cpu))
            page.wait_for_timeout(READ_S * 1000)
            page.close()
            # a planner opens the app again on Lozère (the URL keeps ``?dep=48``): in a new
            # tab of the same browser (its HTTP cache holds Streamlit's front end), then
            # from a new browser profile (nothing cached: every script fetched again)
            for what, opener in (("new tab, same browser", context.new_page),
                                 ("new browser profile, empty HTTP cache",
                                  lambda: browser.new_page(viewport=VIEWPORT))):
                _SERVER["cpu_mark"] = int(_server_cpu() * 1000)
                page = opener()
                cpu = _Renderer(page)
                t0 = time.perf_counter()
                page.goto(f"{url}/?dep={DEPT}", wait_until="commit")
                rows.append(_row(f"Carte, fresh page load on {DEPT} ({what})",
                                 _wait_drawn(page, counts[DEPT], t0), TARGET_CARTE_S, cpu))
                if opener is context.new_page:
                    page.wait_for_timeout(READ_S * 1000)
                    page.close()
            t0 = _choose_dept(page, OTHER, cpu)
            rows.append(_row(f"département switch {DEPT} → {OTHER} (first visit)",
                             _wait_drawn(page, counts[OTHER], t0), TARGET_SWITCH_S, cpu))
            t0 = _choose_dept(page, DEPT, cpu)
            rows.append(_row(f"département switch {OTHER} → {DEPT} (visited)",
                             _wait_drawn(page, counts[DEPT], t0), TARGET_SWITCH_S, cpu))
            t0 = _choose_dept(page, OTHER, cpu)
            rows.append(_row(f"département switch {DEPT} → {OTHER} (visited)",
                             _wait_drawn(page, counts[OTHER], t0), TARGET_SWITCH_S, cpu))
            page.wait_for_timeout(READ_S * 1000)
            cpu.since_mark()
            _SERVER["cpu_mark"] = int(_server_cpu() * 1000)
            t0 = time.perf_counter()
            page.reload(wait_until="commit")
            cpu = _Renderer(page)  # the reloaded page may get a new renderer process
            rows.append(_row(f"Carte, page reload on {OTHER} (the URL keeps the département)",
                             _wait_drawn(page, counts[OTHER], t0), TARGET_CARTE_S, cpu))
            _SERVER.pop("pid", None)  # the peer is built here, not in the server
            rows += _peer(browser, run_dir, work)
        finally:
            browser.close()
    return rows


def _peer(browser: Any, run_dir: Path, work: Path) -> list[tuple[str, float, float | None]]:
    """Naive folium against our map page: build time, size, time to draw in the browser."""
    import folium

    from coverage import maps
    from coverage.results import RunOutputs

    run = RunOutputs.load(run_dir)
    communes = run.communes[run.communes["code_dep"] == DEPT]
    everything = run.tables["acces_communes"]
    everything = everything[everything["code_dep"] == DEPT]
    access = everything[everything["type_service"] == "mediation_familiale"]
    minutes = dict(zip(access["code_insee"], access["minutes"], strict=False))
    full = communes[["code_insee", "nom", "geometry"]].copy()
    full["minutes"] = full["code_insee"].map(minutes)
    static = STATIC.as_uri()

    def naive() -> str:
        m = folium.Map(tiles=None)
        m.default_js = [(k, f"{static}/{p}") for k, p in maps.VENDOR_JS]
        m.default_css = [(k, f"{static}/{p}") for k, p in maps.VENDOR_CSS]
        folium.GeoJson(
            full, style_function=lambda f: {
                "fillColor": "#777" if f["properties"]["minutes"] is None else "#3b528b",
                "className": "commune"},
            tooltip=folium.GeoJsonTooltip(fields=["nom", "minutes"]),
        ).add_to(m)
        m.fit_bounds([[full.total_bounds[1], full.total_bounds[0]],
                      [full.total_bounds[3], full.total_bounds[2]]])
        return str(m.get_root().render())

    def ours() -> str:
        light = maps.display_geometries(communes)
        shown = maps.shown_services(run.services, everything, DEPT)
        m = maps.access_map(light, access, shown, type_service="mediation_familiale",
                            threshold_min=30.0, engine=run.engine, fictif=run.fictif,
                            static_url=static, context=maps.departement_context(
                                run.communes, run.services, DEPT, everything))
        return maps.map_html(m)

    rows: list[tuple[str, float, float | None]] = []
    n = len(communes)
    for name, build in (("peer: naive folium GeoJson, full outlines", naive),
                        ("ours: access_map (simplified, labels, context)", ours)):
        t_build, html = min((_timed(build) for _ in range(2)), key=lambda r: r[0])
        path = work / f"{name.split(':')[0]}.html"
        path.write_text(html, encoding="utf-8")
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        cpu = _Renderer(page)
        t0 = time.perf_counter()
        page.goto(path.as_uri(), wait_until="commit")
        t_draw = _wait_drawn(page, n, t0, legend=False)
        page.wait_for_timeout(1000)  # what the page still does once every commune is drawn
        rows.append(_row(f"{name}: build", t_build, None))
        rows.append(_row(f"{name}: browser draw ({len(html) / 1e6:.2f} MB)", t_draw, None,
                         cpu))
        page.close()
    return rows


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> int:
    """Print the timings; return 1 when a target is missed, 0 otherwise (or skipped)."""
    import geopandas as gpd

    reuse = os.environ.get("ZB_BENCH_APP_RUN")
    if not CHROMIUM.exists():
        print(f"  skipped: {CHROMIUM} is absent (Debian chromium; no browser is downloaded)")
        return 0
    if not reuse and not (SHARED / "communes" / "communes_cog2026.parquet").exists():
        print(f"  skipped: no national communes in {SHARED} and no ZB_BENCH_APP_RUN")
        return 0
    os.environ.setdefault("ZB_PROGRESS", "0")
    c0 = _cpu()
    with tempfile.TemporaryDirectory(prefix="zb-bench-app-") as tmp:
        work = Path(tmp)
        run_dir = Path(reuse) if reuse else work / "national"
        if not reuse:
            t_run, _ = _timed(lambda: _make_national_run(run_dir))
            print(f"  national proxy run (550 SYNTHETIC sites) made in {t_run:.1f} s")
        code_dep = gpd.read_parquet(run_dir / "communes.parquet",
                                    columns=["code_dep", "geometry"])["code_dep"]
        counts = {str(k): int(v) for k, v in code_dep.astype(str).value_counts().items()}
        print(f"  run: {len(code_dep):,} communes, {len(counts)} départements; "
              f"{DEPT}: {counts[DEPT]} communes, {OTHER}: {counts[OTHER]}; "
              f"{READ_S:g} s of reading before each département switch")
        rows = _browser_pages(run_dir, counts, work)
    ok = all(target is None or seconds <= target for _w, seconds, target in rows)
    peer = {w.split(":")[0]: s for w, s, _ in rows if "browser draw" in w}
    if len(peer) == 2:
        print(f"  peer / ours, browser draw: {peer['peer'] / peer['ours']:.1f}x")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"CPU of this process and its children {_cpu() - c0:.1f} s (the server's is "
          "counted when it stops)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
