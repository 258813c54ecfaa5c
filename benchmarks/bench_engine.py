"""Road engine benchmark on a seeded France-sized road-like graph (issue 3).

Prints, in one run:

(a) our nearest-service pass (``RoadEngine.nearest``) for both service types (``workers``
    automatic: the two searches in two threads when a CPU is idle), and the same call
    with ``workers=1`` (one search after the other) and ``workers=2`` (two threads);
(a') the routing cores side by side, each in its own forked process (one process, both
    types, minutes + nearest service + road metres of the communes): scipy
    ``csgraph.dijkstra`` (the core before issue 18: virtual source nodes, predecessor
    tree walked for the metres), the compiled search in the network's node order, the
    compiled search on the Hilbert-renumbered graph without prefetching, and the compiled
    search on the Hilbert-renumbered graph (what ``nearest`` uses); CPU, wall and peak RSS
    of each, and the largest gap of its minutes to scipy's;
(b) networkx ``multi_source_dijkstra_path_length`` on the same graph (same reversed
    arcs, same source nodes, one call per type) in a subprocess, and the ratio to (a)
    and to each core of (a');
(c) the 60-minute bounded matrix, 550 services × 35,000 communes (``RoadEngine.matrix``),
    and the same pairs by scipy ``dijkstra(limit=...)`` in chunks of dense rows (the
    matrix before issue 18), each in a forked process;
(d) peak RSS of this process (``resource.getrusage``; networkx runs in a child process so
    that its memory is reported separately);
(e) OSM parse + build throughput on the real Andorra extract (``../shared/data/osm``), and
    osmnx ``graph_from_xml`` on the same data converted to XML, with the ratio.

The graph: a jittered square grid (500 m spacing, Lambert-93 coordinates over a
France-sized square) with 20 % of its streets removed, 5 % of the rest one-way, random
speeds of 35–65 km/h, a "primary" line every 40 nodes (85 km/h), a "motorway" line every
200 nodes (120 km/h) and random diagonal shortcuts at 70 km/h. Full size: 2,050 × 2,050
nodes (4.2 M) and ≈ 13 M arcs; ``--quick``: 600 × 600.

Usage: ``python -m benchmarks engine [--quick] [--no-networkx]``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from coverage.routing.kernel import NUMBA_VERSION, SearchGraph
from coverage.routing.matrix import Snap
from coverage.routing.network import RoadNetwork, network_from_arcs
from coverage.routing.road import RoadEngine
from coverage.settings import Settings

SEED = 20261126
SPACING_M = 500.0
X0, Y0 = 100_000.0, 6_100_000.0  # Lambert-93, south-west corner
N_SERVICES = (400, 150)  # médiation familiale, espace de rencontre: 550 in all
N_COMMUNES = 35_000
CUTOFF_MIN = 60.0
REPO = Path(__file__).resolve().parents[1]
ANDORRA = Path(os.environ.get("ZB_SHARED_DATA", REPO.parent / "shared" / "data")) / "osm" / \
    "andorra-2013.osm.pbf"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB


def road_like_graph(side: int, seed: int = SEED) -> RoadNetwork:
    """Seeded France-sized road-like graph (see the module docstring)."""
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    grid_x, grid_y = np.meshgrid(np.arange(side), np.arange(side))
    ix: np.ndarray = grid_x.ravel()
    iy: np.ndarray = grid_y.ravel()
    n = side * side
    x = X0 + ix * SPACING_M + rng.normal(0, 60, n)
    y = Y0 + iy * SPACING_M + rng.normal(0, 60, n)
    node = np.arange(n).reshape(side, side)
    h = (node[:, :-1].ravel(), node[:, 1:].ravel())
    v = (node[:-1, :].ravel(), node[1:, :].ravel())
    tail = np.concatenate([h[0], v[0]])
    head = np.concatenate([h[1], v[1]])
    # classes: a street on a row/column multiple of 40 is primary, of 200 motorway
    row_h = iy[h[0]]
    col_v = ix[v[0]]
    line = np.concatenate([row_h, col_v])
    speed = np.asarray(rng.uniform(35.0, 65.0, tail.shape[0]), dtype=np.float64)
    speed[line % 40 == 0] = 85.0
    speed[line % 200 == 0] = 120.0
    major = line % 40 == 0
    keep = major | (rng.random(tail.shape[0]) >= 0.20)
    tail, head, speed, major = tail[keep], head[keep], speed[keep], major[keep]
    # diagonal shortcuts
    k = n // 14
    a = rng.integers(0, n, k)
    dx = rng.integers(-3, 4, k)
    dy = rng.integers(-3, 4, k)
    bx, by = ix[a] + dx, iy[a] + dy
    ok = (bx >= 0) & (bx < side) & (by >= 0) & (by < side) & ((dx != 0) | (dy != 0))
    a, b = a[ok], (by * side + bx)[ok]
    tail = np.concatenate([tail, a])
    head = np.concatenate([head, b])
    speed = np.concatenate([speed, np.full(a.shape[0], 70.0)])
    major = np.concatenate([major, np.zeros(a.shape[0], dtype=bool)])
    metres = np.hypot(x[tail] - x[head], y[tail] - y[head])
    minutes = metres / 1000.0 / speed * 60.0
    oneway = ~major & (rng.random(tail.shape[0]) < 0.05)
    flip = oneway & (rng.random(tail.shape[0]) < 0.5)
    tail, head = np.where(flip, head, tail), np.where(flip, tail, head)
    two = ~oneway
    all_tail = np.concatenate([tail, head[two]])
    all_head = np.concatenate([head, tail[two]])
    all_min = np.concatenate([minutes, minutes[two]])
    all_m = np.concatenate([metres, metres[two]])
    lon, lat = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True).transform(x, y)
    return network_from_arcs(np.asarray(lon), np.asarray(lat), all_tail, all_head, all_min,
                             all_m, crs="EPSG:2154", source=f"synthetic grid {side}²")


def _places(net: RoadNetwork, count: int, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Points within 300 m of random nodes (EPSG:4326)."""
    nodes = rng.integers(0, net.n_nodes, count)
    return (net.lon[nodes] + rng.uniform(-0.003, 0.003, count),
            net.lat[nodes] + rng.uniform(-0.002, 0.002, count))


_NX_CHILD = r"""
import json, os, resource, sys, time
import numpy as np, networkx as nx
data = np.load(sys.argv[1])
t0 = time.perf_counter()
g = nx.DiGraph()
g.add_weighted_edges_from(zip(data["tail"].tolist(), data["head"].tolist(),
                              data["minutes"].tolist()))
build = time.perf_counter() - t0
times = []
cpu = []
for key in ("sources_0", "sources_1"):
    t = time.perf_counter()
    c = time.process_time()
    lengths = nx.multi_source_dijkstra_path_length(g, set(data[key].tolist()))
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
    reached = len(lengths)
    del lengths
print(json.dumps({"build_s": build, "pass_s": times, "cpu_s": cpu, "reached": reached,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "load": os.getloadavg()[0]}))
"""


def _networkx_pass(net: RoadNetwork, engine: RoadEngine, services: pd.DataFrame
                   ) -> dict[str, Any] | None:
    """networkx multi-source Dijkstra on the same reversed arcs and source nodes."""
    graph, _ = engine._graph()
    tails, heads = np.repeat(np.arange(net.n_nodes), np.diff(graph.indptr)), graph.indices
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.npz"
        arrays = {"tail": tails, "head": heads, "minutes": graph.data}
        for i, stype in enumerate(("mediation_familiale", "espace_rencontre")):
            sel = services[services["type_service"] == stype]
            snap = engine.snap(sel["lon"].to_numpy(), sel["lat"].to_numpy())
            arrays[f"sources_{i}"] = np.unique(snap.node[~snap.off_network])
        np.savez(path, **arrays)  # type: ignore[arg-type]
        del arrays
        proc = subprocess.run([sys.executable, "-c", _NX_CHILD, str(path)],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"   networkx child failed (code {proc.returncode}): {proc.stderr[-500:]}")
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _scipy_core(engine: RoadEngine, snap: Snap, targets: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The core before issue 18: scipy Dijkstra from virtual nodes, tree walked for metres."""
    graph, _ = engine._graph()
    n = engine.network.n_nodes
    ok = np.flatnonzero(~snap.off_network)
    k = ok.shape[0]
    nnz = int(graph.indptr[-1])
    aug = sp.csr_array((np.concatenate([graph.data, snap.minutes[ok]]),
                        np.concatenate([graph.indices, snap.node[ok]]).astype(np.int32),
                        np.concatenate([graph.indptr, nnz + np.arange(1, k + 1)]
                                       ).astype(np.int32)), shape=(n + k, n + k))
    dist, pred, src = dijkstra(aug, directed=True, indices=n + np.arange(k), min_only=True,
                               return_predecessors=True)
    which = np.where(src[:n] >= 0, src[:n] - n, -1)
    place = np.where(which >= 0, ok[np.maximum(which, 0)], -1)
    # road metres: all targets walk up the predecessor tree together, one arc per step
    transpose = engine.network.metres
    indptr = transpose.indptr.astype(np.int64)
    uniq, back = np.unique(targets, return_inverse=True)
    total = np.zeros(uniq.shape[0])
    cur = uniq.copy()
    active = np.arange(uniq.shape[0])
    pred = pred.astype(np.int64)
    walked, owners = [], []
    while active.shape[0]:
        v = cur[active]
        p = pred[v]
        at_root, lost = p >= n, p < 0
        done = active[at_root]
        total[done] += snap.distance_m[place[cur[done]]]
        total[active[lost]] = np.nan
        go = ~(at_root | lost)
        active, v, p = active[go], v[go], p[go]
        walked.append(v)
        owners.append(active)
        cur[active] = p
    nodes = np.concatenate(walked)
    heads = pred[nodes]
    arc = np.full(nodes.shape[0], np.nan)
    start, stop = indptr[nodes], indptr[nodes + 1]
    todo = np.arange(nodes.shape[0])
    step = 0
    while todo.shape[0]:
        pos = start[todo] + step
        inside = pos < stop[todo]
        todo, pos = todo[inside], pos[inside]
        hit = transpose.indices[pos] == heads[todo]
        arc[todo[hit]] = transpose.data[pos[hit]]
        todo = todo[~hit]
        step += 1
    total += np.bincount(np.concatenate(owners), weights=arc, minlength=uniq.shape[0])
    return dist[:n], place, total[back]


def _vm_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _in_child(job: Any) -> dict[str, Any]:
    """Run ``job()`` in this forked child: wall, CPU, peak RSS, RSS at start, result."""
    rss0 = _vm_rss_gb()
    t, c = time.perf_counter(), time.process_time()
    result = job()
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c,
            "rss_gb": _rss_gb(), "rss0_gb": rss0, "result": result}


def _forked(job: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        out: dict[str, Any] = pool.submit(_in_child, job).result()
        return out


_JOB: dict[str, Any] = {}


def _core_job(name: str) -> np.ndarray:
    """Both types' passes with the core ``name``; returns the communes' minutes."""
    engine, snaps, targets = _JOB["engine"], _JOB["snaps"], _JOB["targets"]
    outs = []
    for snap in snaps:
        if name == "scipy":
            minutes, _, _ = _scipy_core(engine, snap, targets)
        else:
            search = _JOB["search_" + name]
            ok = np.flatnonzero(~snap.off_network)
            minutes, _, _ = search.multi_source(snap.node[ok], snap.minutes[ok])
        outs.append(minutes[targets])
    return np.concatenate(outs)


def _cores(engine: RoadEngine, services: pd.DataFrame, communes: pd.DataFrame,
           settings: Settings) -> dict[str, dict[str, Any]]:
    """(a'): each core in a forked process, one after the other."""
    snaps = [engine.snap(services.loc[services["type_service"] == t, "lon"].to_numpy(),
                         services.loc[services["type_service"] == t, "lat"].to_numpy())
             for t in settings.service_types]
    targets = engine.snap(communes["lon"].to_numpy(), communes["lat"].to_numpy()).node
    graph, metres = engine._graph()
    t = time.perf_counter()
    plain = SearchGraph(graph, metres, engine.network.x, engine.network.y, renumber=False)
    t_plain = time.perf_counter() - t
    hilbert = engine._compiled("to_service")
    no_prefetch = copy.copy(hilbert)  # the same arrays, prefetching off
    no_prefetch.ahead = (0, 0)
    _JOB.update(engine=engine, snaps=snaps, targets=targets, search_plain=plain,
                search_hilbert=hilbert, search_noprefetch=no_prefetch)
    out = {}
    for name in ("scipy", "plain", "noprefetch", "hilbert"):
        out[name] = _forked(functools.partial(_core_job, name))
    out["plain"]["prep_s"] = t_plain
    _JOB.clear()
    return out


def _matrix_job(name: str) -> int:
    engine, communes, services = _JOB["engine"], _JOB["communes"], _JOB["services"]
    if name == "ours":
        return len(engine.matrix(communes, services, cutoff_min=CUTOFF_MIN))
    c_snap = engine.snap(communes["lon"].to_numpy(), communes["lat"].to_numpy())
    s_snap = engine.snap(services["lon"].to_numpy(), services["lat"].to_numpy())
    t_ok = np.flatnonzero(~c_snap.off_network)
    t_conn = c_snap.minutes[t_ok].astype(np.float32)
    pairs = 0
    for _rows, block in engine._search.dense_blocks(engine._graph()[0], s_snap, CUTOFF_MIN,
                                                    columns=c_snap.node[t_ok]):
        pairs += int(((block + t_conn[None, :]) <= np.float32(CUTOFF_MIN)).sum())
    return pairs


def _osm_throughput() -> None:
    import osmium

    from coverage.routing.network import load_network

    if not ANDORRA.exists():
        print(f"(e) skipped: {ANDORRA} not found")
        return
    size_mb = ANDORRA.stat().st_size / 1e6
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        net = load_network(ANDORRA, use_cache=False)
        runs.append(time.perf_counter() - t)
    ours = min(runs)
    ways = net.report.details["ways_kept"]
    print(f"(e) OSM parse + car graph build, Andorra ({size_mb:.2f} MB .pbf): {ours:.3f} s "
          f"(best of 3) = {size_mb / ours:.1f} MB/s, {ways / ours:,.0f} car ways/s, "
          f"{net.n_nodes:,} nodes, {net.n_arcs:,} arcs")
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "andorra.osm"
        with osmium.SimpleWriter(str(xml)) as writer:
            for obj in osmium.FileProcessor(str(ANDORRA)):
                writer.add(obj)
        t = time.perf_counter()
        ours_xml = load_network(xml, use_cache=False)
        t_ours_xml = time.perf_counter() - t
        import osmnx as ox

        t = time.perf_counter()
        g = ox.graph_from_xml(xml, bidirectional=False, simplify=False, retain_all=True)
        t_ox = time.perf_counter() - t
        print(f"    same data as XML ({xml.stat().st_size / 1e6:.1f} MB): ours {t_ours_xml:.3f} s "
              f"({ours_xml.n_nodes:,} nodes, car network, largest SCC, CSR); osmnx "
              f"graph_from_xml (no simplification, all highways, no CSR) {t_ox:.2f} s "
              f"({g.number_of_nodes():,} nodes) → ratio {t_ox / t_ours_xml:.1f}×")


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one report, in order
    """Run the engine benchmark; print the figures and the targets."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks engine")
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("ZB_BENCH_QUICK") == "1")
    parser.add_argument("--no-networkx", action="store_true")
    args = parser.parse_args(argv or [])
    side = int(os.environ.get("ZB_BENCH_SIDE", 600 if args.quick else 2050))
    print(f"machine: {os.cpu_count()} CPU(s), {_cpu_model()}, Python "
          f"{platform.python_version()}, load average at start "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t = time.perf_counter()
    net = road_like_graph(side)
    print(f"graph: {net.n_nodes:,} nodes, {net.n_arcs:,} arcs (largest SCC of "
          f"{side}² grid), built in {time.perf_counter() - t:.1f} s")
    rng = np.random.default_rng(SEED + 1)
    s_lon, s_lat = _places(net, sum(N_SERVICES), rng)
    services = pd.DataFrame({
        "service_id": [f"S{i:04d}" for i in range(sum(N_SERVICES))],
        "type_service": ["mediation_familiale"] * N_SERVICES[0]
        + ["espace_rencontre"] * N_SERVICES[1], "lon": s_lon, "lat": s_lat})
    c_lon, c_lat = _places(net, N_COMMUNES, rng)
    communes = pd.DataFrame({"code_insee": [f"{i:05d}" for i in range(N_COMMUNES)],
                             "lon": c_lon, "lat": c_lat})
    settings = Settings()

    t = time.perf_counter()
    c = _cpu_s()
    engine = RoadEngine(net, settings)
    engine._graph()
    search = engine._compiled("to_service")
    t_prep, cpu_prep = time.perf_counter() - t, _cpu_s() - c
    t = time.perf_counter()
    c = _cpu_s()
    search.warm_up()
    t_jit, cpu_jit = time.perf_counter() - t, _cpu_s() - c
    load_a = os.getloadavg()[0]
    threads_a = engine._type_workers(2)  # auto: two threads only when a CPU is idle
    t = time.perf_counter()
    c = _cpu_s()
    table = engine.nearest(communes, services, service_types=settings.service_types)
    t_a = time.perf_counter() - t
    cpu_a = _cpu_s() - c
    reached = int(table["minutes"].notna().sum())
    print(f"(a) nearest service, both types ({N_SERVICES[0]} + {N_SERVICES[1]} services, "
          f"{N_COMMUNES:,} communes): {t_a:.2f} s wall, {cpu_a:.2f} s CPU "
          f"(auto: {threads_a} thread(s), load {load_a:.1f})  [target ≤ 10 s]; "
          f"{reached:,}/{len(table):,} rows reached, median "
          f"{table['minutes'].median():.1f} min")
    # the same call with the two searches one after the other, then in two threads
    wanted = engine.workers
    others: dict[int, tuple[float, float]] = {}
    for workers in (1, 2):
        engine.workers = workers
        load_w = os.getloadavg()[0]
        t = time.perf_counter()
        c = _cpu_s()
        again = engine.nearest(communes, services, service_types=settings.service_types)
        others[workers] = (time.perf_counter() - t, _cpu_s() - c)
        how = "one search after the other" if workers == 1 else "two threads"
        wall_w, cpu_w = others[workers]
        print(f"    same, workers={workers} ({how}): {wall_w:.2f} s wall, {cpu_w:.2f} s CPU "
              f"(load {load_w:.1f}); same table as (a): {again.equals(table)}")
    engine.workers = wanted
    print(f"    once per network: KD-tree, reversed graph, Hilbert renumbering "
          f"{t_prep:.2f} s wall, {cpu_prep:.2f} s CPU; numba compile or cache load "
          f"(numba {NUMBA_VERSION}) {t_jit:.2f} s wall, {cpu_jit:.2f} s CPU")
    cores = _cores(engine, services, communes, settings)
    ref = cores["scipy"]["result"]
    labels = {"scipy": "scipy csgraph.dijkstra + tree walk (before)",
              "plain": "compiled Δ-stepping, network order",
              "noprefetch": "compiled Δ-stepping, Hilbert order, no prefetch",
              "hilbert": "compiled Δ-stepping, Hilbert order, prefetch (ours)"}
    print(f"(a') cores, both types, one forked process each (load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}):")
    for name, res in cores.items():
        got = res["result"]
        same = np.array_equal(np.isfinite(got), np.isfinite(ref))
        gap = float(np.nanmax(np.abs(np.where(np.isfinite(ref), got - ref, 0.0))))
        print(f"    {labels[name]}: {res['wall']:.2f} s wall, {res['cpu']:.2f} s CPU, peak "
              f"RSS {res['rss_gb']:.2f} GB (+{res['rss_gb'] - res['rss0_gb']:.2f} GB over "
              f"the inherited {res['rss0_gb']:.2f} GB); minutes vs scipy: max gap "
              f"{gap:.1e}, same reach {same}")
    if not args.no_networkx:
        res = _networkx_pass(net, engine, services)
        if res is not None:
            t_nx = float(sum(res["pass_s"]))
            cpu_nx = float(sum(res["cpu_s"]))
            print(f"(b) networkx multi_source_dijkstra_path_length, both types: {t_nx:.1f} s "
                  f"wall, {cpu_nx:.1f} s CPU (graph build {res['build_s']:.0f} s, child peak "
                  f"RSS {res['rss_gb']:.1f} GB, load {res['load']:.1f}) → ratio to (a) "
                  f"{t_nx / t_a:.0f}× wall, {cpu_nx / cpu_a:.1f}× CPU [target ≥ 25× CPU]; "
                  + "; ".join(f"to workers={w} {t_nx / tw:.0f}× wall, {cpu_nx / cw:.1f}× "
                              "CPU" for w, (tw, cw) in others.items()))
            for name, core in cores.items():
                print(f"    ratio to {labels[name]}: {t_nx / core['wall']:.1f}× wall, "
                      f"{cpu_nx / core['cpu']:.1f}× CPU")
    _JOB.update(engine=engine, communes=communes, services=services)
    for name, label in (("ours", "compiled bounded searches (ours)"),
                        ("scipy", "scipy dijkstra(limit) in dense chunks (before)")):
        res = _forked(functools.partial(_matrix_job, name))
        print(f"(c) bounded matrix {len(services)} × {N_COMMUNES:,} within {CUTOFF_MIN:.0f} "
              f"min, {label}: {res['wall']:.1f} s wall, {res['cpu']:.1f} s CPU, peak RSS "
              f"{res['rss_gb']:.2f} GB (+{res['rss_gb'] - res['rss0_gb']:.2f} GB), "
              f"{res['result']:,} pairs  [target ≤ 120 s]")
    _JOB.clear()
    print(f"(d) peak RSS of this process (the threads of (a) included): {_rss_gb():.2f} GB  "
          "[target ≤ 6 GB]")
    _osm_throughput()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          "(2 cores shared with other work: wall times include waiting for a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
