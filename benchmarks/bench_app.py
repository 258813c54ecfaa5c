"""App benchmark: server-side time of the Carte page on a ~700-commune département.

Target (issue 6): the Carte page of a 700-commune territory renders in ≤ 3 s server-side
once cached. The page is run with Streamlit's ``AppTest`` (the script run of the server,
without the browser): cold (run folder read, outlines simplified, map built), warm (same
selection again), and after a threshold change (map rebuilt from the cached outlines).

Input: Seine-Maritime (76, 707 communes) from ``../shared/data`` read in place, with the
real but partial list of public sites (``services_sites_publics_partiels.csv``, not the
complete offer), proxy engine. When ``../shared`` is absent, the FICTIONAL demo is used.

Peer, same input, same run: the plain folium way — one ``folium.GeoJson`` of the
département's full-resolution outlines with a style function, rendered to HTML — against
our cached, simplified builder (:func:`coverage.maps.access_map` on
:func:`coverage.maps.display_geometries`). Both are timed, with the HTML sizes.

Measured on 2026-11-26 on the shared 2-CPU machine under load (eight engineers at work),
Seine-Maritime, 707 communes: Carte first run 0.56 s, cached 0.02 s (target ≤ 3 s),
threshold change 0.33 s, Zones blanches 0.10 s, map page 0.80 MB. Peer: plain folium
0.25 s / 0.87 MB against our uncached builder 0.31 s / 0.80 MB — our builder does more
(tooltips, service markers with popups, legend, 75 m simplification of outlines that are
already simplified at the source); the page is fast because the built map is cached per
selection, and outlines are simplified once per département.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("ZB_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO_ROOT = Path(__file__).resolve().parents[1]
DEPT = "76"
TARGET_CACHED_S = 3.0


def _make_run(out: Path) -> tuple[str, str]:
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    communes = SHARED / "communes" / "communes_cog2026.parquet"
    if communes.exists():
        inputs = load_inputs(
            communes=communes,
            densite=SHARED / "communes" / "grille_densite_4niv_cog2026.csv",
            services=SHARED / "services" / "services_sites_publics_partiels.csv",
        )
        run_batch(inputs, out_dir=out,
                  options=RunOptions(depts=[DEPT], workers=1, isochrones=False))
        return DEPT, "Seine-Maritime (76), real outlines, partial real sites, proxy"
    run_batch(load_inputs(), out_dir=out, options=RunOptions(workers=1, isochrones=False))
    return "ZB", "FICTIONAL demo (../shared/data absent)"


def _timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def main() -> int:
    """Print the timings; return 1 when the cached Carte page is over target."""
    import folium
    from streamlit.testing.v1 import AppTest

    from coverage import maps
    from coverage.results import RunOutputs

    with tempfile.TemporaryDirectory(prefix="zb-bench-app-") as tmp:
        run_dir = Path(tmp) / "run"
        t0 = time.perf_counter()
        dept, label = _make_run(run_dir)
        t_run = time.perf_counter() - t0
        os.environ["ZONES_BLANCHES_RUN_DIR"] = str(run_dir)
        run = RunOutputs.load(run_dir)
        n = int((run.communes["code_dep"] == dept).sum())
        print(f"  input: {label}, {n} communes (run made in {t_run:.1f} s)")

        at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=600)
        cold = _timed(at.run)  # the run's first département
        if at.selectbox(key="dept").value != dept:
            at.selectbox(key="dept").set_value(dept)
            cold = _timed(at.run)
        if at.exception:
            print(f"  app error: {at.exception[0].value}", file=sys.stderr)
            return 1
        warm = min(_timed(at.run) for _ in range(3))
        current = at.selectbox(key="threshold").value
        at.selectbox(key="threshold").set_value(next(t for t in run.thresholds if t != current))
        rebuilt = _timed(at.run)
        html_size = len(at.get("iframe")[0].proto.srcdoc)
        at.switch_page("coverage/app/zones_blanches.py")
        tables = _timed(at.run)

        ok = warm <= TARGET_CACHED_S
        rows = [
            ("Carte, first run (read run, simplify, build map)", f"{cold:.2f} s"),
            (f"Carte, cached (target ≤ {TARGET_CACHED_S:g} s)",
             f"{warm:.2f} s  {'OK' if ok else 'OVER TARGET'}"),
            ("Carte, threshold changed (map rebuilt)", f"{rebuilt:.2f} s"),
            ("Zones blanches page (tables)", f"{tables:.2f} s"),
            ("map page sent to the browser", f"{html_size / 1e6:.2f} MB"),
        ]
        for what, value in rows:
            print(f"  {what:<52} {value}")

        # Peer: plain folium on the full-resolution outlines, against our builder.
        communes = run.communes[run.communes["code_dep"] == dept]
        access = run.tables["acces_communes"]
        access = access[(access["code_dep"] == dept)
                        & (access["type_service"] == access["type_service"].iloc[0])]
        minutes = dict(zip(access["code_insee"], access["minutes"], strict=False))
        full = communes[["code_insee", "nom", "geometry"]].copy()
        full["minutes"] = full["code_insee"].map(minutes)

        def plain() -> str:
            m = folium.Map(tiles=None)
            folium.GeoJson(
                full, style_function=lambda f: {
                    "fillColor": maps.minutes_colour(f["properties"]["minutes"])},
                tooltip=folium.GeoJsonTooltip(fields=["nom", "minutes"]),
            ).add_to(m)
            return str(m.get_root().render())

        def ours() -> str:
            light = maps.display_geometries(communes)
            m = maps.access_map(light, access, run.services,
                                type_service=str(access["type_service"].iloc[0]),
                                threshold_min=30.0, engine=run.engine, fictif=run.fictif)
            return maps.map_html(m)

        t_plain = min(_timed(plain) for _ in range(2))
        t_ours = min(_timed(ours) for _ in range(2))
        size_plain, size_ours = len(plain()), len(ours())
        print(f"  {'peer: plain folium GeoJson, full outlines':<52} {t_plain:.2f} s, "
              f"{size_plain / 1e6:.2f} MB")
        print(f"  {'ours: simplified outlines + access_map (uncached)':<52} {t_ours:.2f} s, "
              f"{size_ours / 1e6:.2f} MB")
        print(f"  peer / ours: time {t_plain / t_ours:.1f}x, HTML size "
              f"{size_plain / size_ours:.1f}x (and ours is cached per selection)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
