"""Road engine benchmark on a seeded France-sized road-like graph (issue 3).

Prints, in one run:

(a) our nearest-service pass (``RoadEngine.nearest``) for both service types;
(b) networkx ``multi_source_dijkstra_path_length`` on the same graph (same reversed
    arcs, same source nodes, one call per type) in a subprocess, and the ratio to (a);
(c) the 60-minute bounded matrix, 550 services × 35,000 communes (``RoadEngine.matrix``);
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
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
import json, resource, sys, time
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
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
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


def main(argv: list[str] | None = None) -> int:
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
    engine = RoadEngine(net, settings)
    engine._graph()
    t_prep = time.perf_counter() - t
    t = time.perf_counter()
    c = _cpu_s()
    table = engine.nearest(communes, services, service_types=settings.service_types)
    t_a = time.perf_counter() - t
    cpu_a = _cpu_s() - c
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    reached = int(table["minutes"].notna().sum())
    print(f"(a) nearest service, both types ({N_SERVICES[0]} + {N_SERVICES[1]} services, "
          f"{N_COMMUNES:,} communes): {t_a:.2f} s wall, {cpu_a:.2f} s CPU "
          f"({engine._type_workers(2)} process(es))  [target ≤ 10 s] "
          f"(+ {t_prep:.2f} s once per network: KD-tree, reversed graph); "
          f"{reached:,}/{len(table):,} rows reached, median "
          f"{table['minutes'].median():.1f} min")
    if not args.no_networkx:
        res = _networkx_pass(net, engine, services)
        if res is not None:
            t_nx = float(sum(res["pass_s"]))
            cpu_nx = float(sum(res["cpu_s"]))
            print(f"(b) networkx multi_source_dijkstra_path_length, both types: {t_nx:.1f} s "
                  f"wall, {cpu_nx:.1f} s CPU (graph build {res['build_s']:.0f} s, child peak "
                  f"RSS {res['rss_gb']:.1f} GB) → ratio {t_nx / t_a:.0f}× wall, "
                  f"{cpu_nx / cpu_a:.0f}× CPU [target ≥ 20×]")
    t = time.perf_counter()
    c = _cpu_s()
    matrix = engine.matrix(communes, services, cutoff_min=CUTOFF_MIN)
    t_c = time.perf_counter() - t
    cpu_c = _cpu_s() - c
    print(f"(c) bounded matrix {len(services)} × {N_COMMUNES:,} within {CUTOFF_MIN:.0f} min: "
          f"{t_c:.1f} s wall, {cpu_c:.1f} s CPU  [target ≤ 120 s], {len(matrix):,} pairs, "
          f"{matrix.memory_usage(deep=False).sum() / 1e6:.0f} MB")
    print(f"(d) peak RSS of this process: {_rss_gb():.2f} GB  [target ≤ 6 GB]; forked "
          f"child of (a): {child_rss:.2f} GB (its pages are mostly shared with this process)")
    _osm_throughput()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          "(2 cores shared with other work: wall times include waiting for a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
