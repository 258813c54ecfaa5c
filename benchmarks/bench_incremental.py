"""Incremental reruns and instant scenarios (issues 18 and 14), with their peers.

Targets: a national proxy rerun after 2 changed services ≤ 5 s, byte-identical to a full
rerun (issue 18); one scenario change in a département ≤ 1 s with either engine (issue 14).

What is timed, each beside its peer on the same input in the same run:

- **national rerun** (../shared/data, 34,868 communes, the 550 SYNTHETIC sites of
  ``bench_batch.synthetic_sites``, thresholds 20/30/45 min, no isochrones): after a full run,
  one site moved and one site added; ours = ``run_batch`` into the same folder (incremental),
  peer = ``run_batch`` of the same inputs into a fresh folder (``use_cache=False``, what a
  rerun cost before). Every output file is compared byte for byte.
- **scenario changes** (:class:`coverage.scenario.Scenario`): add a site, move it, remove an
  existing service, in one département of the national proxy run, and in the demo
  (FICTIONAL) road run; peer = a full recomputation of the département after the same
  change (:func:`coverage.scenario.access_rows` on all its communes: what a partition
  computes).

The national sites are SYNTHETIC, the demo territory FICTIONAL. Real data are read in place
(never copied); the national part is skipped when they are absent (``--quick`` skips it too).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from benchmarks.bench_batch import SHARED, synthetic_sites

TARGET_RERUN_S = 5.0
#: ``--profile`` (or ZB_BENCH_PROFILE=1): print a cProfile of the national rerun.
PROFILE = "--profile" in sys.argv or os.environ.get("ZB_BENCH_PROFILE") == "1"
TARGET_CHANGE_S = 1.0
NATIONAL_DEPT = "48"  # Lozère
#: (label, ours wall, ours CPU, peer wall, peer CPU, target or None)
Row = tuple[str, float, float, float, float, float | None]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w0, c0 = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - w0, _cpu() - c0


def _points(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    df = pd.DataFrame(frame).drop(columns="geometry", errors="ignore").reset_index(drop=True)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".cache" not in p.relative_to(folder).parts
            and p.name != "manifest.json"}


def _two_changes(sites: gpd.GeoDataFrame, communes: pd.DataFrame) -> gpd.GeoDataFrame:
    """Move one SYNTHETIC site 8 km east, add one in a commune (seeded)."""
    s = pd.DataFrame(sites).drop(columns="geometry").reset_index(drop=True)
    s.loc[10, "lon"] = float(s.loc[10, "lon"]) + 0.1
    c = communes.iloc[int(np.random.default_rng(7).integers(len(communes)))]
    new = s.iloc[[0]].assign(service_id="SYNTH-NEW", code_insee=c["code_insee"],
                             code_dep=c["code_dep"], lon=float(c["lon"]), lat=float(c["lat"]))
    return _points(pd.concat([s, new], ignore_index=True))


def bench_national(workdir: Path) -> tuple[list[Row], Path | None]:
    """National proxy rerun after 2 changed services, against a full rerun."""
    from coverage.batch import RunOptions, run_batch
    from coverage.io.communes import load_communes
    from coverage.io.inputs import Inputs

    communes_file = SHARED / "communes" / "communes_cog2026.parquet"
    grid = SHARED / "communes" / "grille_densite_4niv_cog2026.csv"
    if not communes_file.exists():
        print(f"  national part skipped: {communes_file} not found")
        return [], None
    communes = load_communes(communes_file, densite=grid).data
    sites = synthetic_sites(communes)
    inputs = Inputs(communes=communes, services=sites, waiting=None, roads=None, fictif=False,
                    paths={"communes": str(communes_file), "densite": str(grid)})
    options = RunOptions(engine="proxy", isochrones=False, workers=1)
    out = workdir / "national"
    _, w_first, c_first = _timed(lambda: run_batch(inputs, out_dir=out, options=options))
    print(f"  first national run (not compared): {w_first:.1f} s wall, {c_first:.1f} s CPU")
    changed = replace(inputs, services=_two_changes(sites, communes))
    if PROFILE:  # a copy of the folder, rerun under cProfile (not the figure timed)
        prof_dir = workdir / "national_profiled"
        shutil.copytree(out, prof_dir)
        profiler = cProfile.Profile()
        profiler.runcall(run_batch, changed, out_dir=prof_dir, options=options)
        print("  cProfile of the incremental rerun (cumulative, top 25; profiling slows it):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
        shutil.rmtree(prof_dir, ignore_errors=True)
    res, w_inc, c_inc = _timed(lambda: run_batch(changed, out_dir=out, options=options))
    print(f"  incremental rerun: {len(res.incremental)} partition(s) updated, "
          f"{res.recomputed_communes} commune(s) recomputed; stages (s): "
          f"{ {k: round(v, 2) for k, v in res.timings.items()} }")
    full_dir = workdir / "national_full"
    full, w_full, c_full = _timed(lambda: run_batch(
        changed, out_dir=full_dir, options=replace(options, use_cache=False)))
    print(f"  full rerun stages (s): { {k: round(v, 2) for k, v in full.timings.items()} }")
    a, b = _outputs(out), _outputs(full_dir)
    same = sorted(a) == sorted(b) and all(a[k] == b[k] for k in b)
    print(f"  outputs byte-identical to the full rerun: {'yes' if same else 'NO'} "
          f"({len(b)} files)")
    shutil.rmtree(full_dir, ignore_errors=True)
    return [("national proxy rerun, 2 services changed (ours: incremental; peer: full)",
             w_inc, c_inc, w_full, c_full, TARGET_RERUN_S)], out


def _scenario_rows(label: str, scn: Any, dept: str, type_service: str) -> list[Row]:
    """Time three changes (add, move, remove) against a full recomputation of each."""
    from coverage.scenario import access_rows

    codes = scn.communes["code_insee"].astype(str).to_numpy()
    rng = np.random.default_rng(3)
    mine = scn.services[(scn.services["code_dep"].astype(str) == dept)
                        & (scn.services["type_service"].astype(str) == type_service)]
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("add a site", lambda s: s.add(str(rng.choice(codes)), type_service)),
        ("move it", lambda s: s.move("SCENARIO-1", str(rng.choice(codes)))),
    ]
    if len(mine):
        sid = str(mine["service_id"].iloc[0])
        steps.append(("remove a service", lambda s: s.remove(sid)))
    rows: list[Row] = []
    for name, step in steps:
        nxt, w, c = _timed(lambda st=step, now=scn: st(now))
        _, wf, cf = _timed(lambda s=nxt: access_rows(s.engine, s.communes, s.services,
                                                     s.types))
        rows.append((f"{label}: {name} ({nxt.recomputed[-1]}/{len(nxt.communes)} communes)",
                     w, c, wf, cf, TARGET_CHANGE_S))
        scn = nxt
    return rows


def bench_scenarios(national: Path | None, workdir: Path) -> list[Row]:
    """Scenario changes in a national département (proxy) and in the demo (road)."""
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs
    from coverage.results import RunOutputs
    from coverage.routing import engine_of_run
    from coverage.scenario import Scenario

    rows: list[Row] = []
    demo = workdir / "demo"
    run_batch(load_inputs(), out_dir=demo, options=RunOptions(isochrones=False, workers=1))
    for folder, dept, label in ((national, NATIONAL_DEPT, f"national proxy, dept {NATIONAL_DEPT}"),
                                (demo, "ZA", "demo road (FICTIONAL), dept ZA")):
        if folder is None:
            continue
        run = RunOutputs.load(folder)
        engine = engine_of_run(run, dept=dept).engine
        com = pd.DataFrame(run.communes).drop(columns="geometry")
        types = tuple(sorted(set(run.tables["acces_communes"]["type_service"].astype(str))))
        scn, w0, c0 = _timed(lambda r=run, e=engine, c=com, d=dept, t=types: Scenario.of_run(
            e, c[c["code_dep"].astype(str) == d], r.services, r.tables["acces_communes"],
            t, all_communes=c))
        print(f"  {label}: {len(scn.communes)} communes, {len(scn.services)} services, "
              f"engine {engine.name}; scenario set up in {w0:.2f} s ({c0:.2f} s CPU)")
        rows += _scenario_rows(label, scn, dept, types[0])
    return rows


def bench_graph_scenario(side: int = 600) -> list[Row]:
    """Scenario changes with the road engine on a larger SYNTHETIC graph (bench_engine).

    A ``side``² road-like lattice (``bench_engine.road_like_graph``), 500 communes placed
    near random nodes of its central quarter (one « département », SYNTHETIC), 30 services
    of each type anywhere on the graph.
    """
    from benchmarks.bench_engine import road_like_graph
    from coverage.routing.road import RoadEngine
    from coverage.scenario import Scenario

    net = road_like_graph(side)
    rng = np.random.default_rng(11)
    lo, hi = side * side // 4, 3 * side * side // 4
    nodes = rng.integers(lo, hi, 500)
    communes = pd.DataFrame({
        "code_insee": [f"S{i:04d}" for i in range(500)],
        "nom": [f"Commune SYNTHÉTIQUE {i}" for i in range(500)], "code_dep": "SY",
        "population": rng.integers(50, 5000, 500), "densite": 4, "rural": True,
        "lon": net.lon[nodes] + rng.uniform(-0.002, 0.002, 500),
        "lat": net.lat[nodes] + rng.uniform(-0.002, 0.002, 500)})
    s_nodes = rng.integers(0, net.n_nodes, 60)
    services = pd.DataFrame({
        "service_id": [f"SV{i:03d}" for i in range(60)],
        "type_service": ["mediation_familiale", "espace_rencontre"] * 30,
        "code_insee": None, "code_dep": "SY", "lon": net.lon[s_nodes], "lat": net.lat[s_nodes]})
    engine = RoadEngine(net)
    types = ("mediation_familiale", "espace_rencontre")
    scn, w0, c0 = _timed(lambda: Scenario.of_run(engine, communes, services, None, types))
    print(f"  SYNTHETIC graph {net.n_nodes:,} nodes: {len(communes)} communes, "
          f"{len(services)} services; first full computation {w0:.2f} s ({c0:.2f} s CPU)")
    return _scenario_rows(f"road, SYNTHETIC {net.n_nodes:,}-node graph", scn, "SY", types[0])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (prints figures, peers, ratios and targets)."""
    quick = "--quick" in (argv or []) or os.environ.get("ZB_BENCH_QUICK") == "1"
    os.environ.setdefault("ZB_PROGRESS", "0")
    workdir = Path(tempfile.mkdtemp(prefix="zb-bench-incremental-"))
    try:
        rows, national = ([], None) if quick else bench_national(workdir)
        rows += bench_scenarios(national, workdir)
        if not quick:
            rows += bench_graph_scenario()
        print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at "
              "the end (wall grows with the load; CPU = user + system of this process)")
        for label, w, c, wp, cp, target in rows:
            flag = "" if target is None else ("  OK" if w <= target else "  OVER TARGET")
            print(f"  {label}\n      ours {w:7.3f} s (CPU {c:6.3f} s)   peer {wp:7.3f} s "
                  f"(CPU {cp:6.3f} s)   peer/ours {wp / max(w, 1e-9):5.1f}× wall, "
                  f"{cp / max(c, 1e-9):5.1f}× CPU   target ≤ {target:g} s{flag}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
