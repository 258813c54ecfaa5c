"""Isochrone benchmark (issue 5): merged bands on a 683-commune territory, per-service bands
for 550 sites on the France-sized benchmark graph, each with a networkx peer.

Prints, in one run:

(a) merged bands per type (``isochrones_types``) on the real Cantal + Aveyron + Lozère
    territory (683 communes, ``../shared/data/territoires``; 4 real seed sites) with the
    **proxy** engine, target ≤ 5 s;
(b) the same with the **road** engine on a seeded road-like graph over the territory's box
    (jittered 250 m grid, ≈ 0.5 M nodes; the real département graphs are not available
    here), routing pass included, target ≤ 5 s; its accuracy against node minutes
    (:func:`coverage.isochrones.band_accuracy`);
(c) the peer on the same graph and sources: networkx ``multi_source_dijkstra_path_length``
    with a cut-off and the convex hull of the nodes reached within each bound (the osmnx
    isochrone recipe), its time, the ratio, and its accuracy (hulls claim unreachable land);
(d) per-service bands (``isochrones_services``) for 550 sites on the France-sized graph of
    ``benchmarks/bench_engine.py`` (4.2 M nodes), target ≤ 120 s;
(d'') issue 18: the same bands drawn by ``--workers`` forked processes (default 2), target
    ≤ 45 s wall, with the CPU seconds of this process and of the children, against (d) and
    checked byte-identical to it;
(d') issue 18: the same per-service bands on every ``PEER_STEP``-th site, drawn by our code
    and by the drawing before issue 18 (kept verbatim below as the peer), alternated, with
    the CPU ratio and the largest gap between the two drawings' vertices;
(e) the peer on the same graph: networkx ``single_source_dijkstra_path_length`` bounded at
    45 min + convex hulls, for a sample of the same sites (a networkx graph of 13 M arcs
    costs minutes and GBs to build: it runs in a child process), per site and projected to
    550 sites, with the ratio.

Usage: ``python -m benchmarks isochrones [--quick] [--no-networkx] [--workers N]``;
``--quick`` uses a 600² France graph and 60 sites.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage import isochrones as iso
from coverage.routing.network import RoadNetwork, network_from_arcs
from coverage.routing.proxy import ProxyEngine
from coverage.routing.road import RoadEngine
from coverage.settings import Settings

SEED = 20261126
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZB_SHARED_DATA", REPO.parent / "shared" / "data"))
TERRITORY = SHARED / "territoires" / "massif_central_15_12_48.gpkg"
TERRITORY_SPACING_M = 250.0
N_PEER_SITES = 10
#: (d') the drawing before issue 18 runs on every PEER_STEP-th site, PEER_ROUNDS times.
PEER_STEP = int(os.environ.get("ZB_BENCH_ISO_PEER_STEP", "5"))
PEER_ROUNDS = int(os.environ.get("ZB_BENCH_ISO_PEER_ROUNDS", "1"))


def territory_graph(bounds: tuple[float, float, float, float], spacing: float = 250.0,
                    seed: int = SEED) -> RoadNetwork:
    """Seeded road-like graph over a Lambert-93 box: jittered grid, 25 % of the streets
    removed, 5 % one-way, 35–65 km/h, a primary road every 20 lines (85 km/h)."""
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = bounds
    nx_, ny_ = int((xmax - xmin) // spacing) + 1, int((ymax - ymin) // spacing) + 1
    gx, gy = np.meshgrid(np.arange(nx_), np.arange(ny_))
    ix, iy = gx.ravel(), gy.ravel()
    n = ix.size
    x = xmin + ix * spacing + rng.normal(0, spacing * 0.12, n)
    y = ymin + iy * spacing + rng.normal(0, spacing * 0.12, n)
    node = np.arange(n).reshape(ny_, nx_)
    tail = np.concatenate([node[:, :-1].ravel(), node[:-1, :].ravel()])
    head = np.concatenate([node[:, 1:].ravel(), node[1:, :].ravel()])
    line = np.concatenate([iy[node[:, :-1].ravel()], ix[node[:-1, :].ravel()]])
    major = line % 20 == 0
    speed = np.where(major, 85.0, rng.uniform(35.0, 65.0, tail.size))
    keep = major | (rng.random(tail.size) >= 0.25)
    tail, head, speed, major = tail[keep], head[keep], speed[keep], major[keep]
    metres = np.hypot(x[tail] - x[head], y[tail] - y[head])
    minutes = metres / 1000.0 / speed * 60.0
    oneway = ~major & (rng.random(tail.size) < 0.05)
    two = ~oneway
    all_tail = np.concatenate([tail, head[two]])
    all_head = np.concatenate([head, tail[two]])
    lon, lat = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True).transform(x, y)
    return network_from_arcs(np.asarray(lon), np.asarray(lat), all_tail, all_head,
                             np.concatenate([minutes, minutes[two]]),
                             np.concatenate([metres, metres[two]]), crs="EPSG:2154",
                             source=f"synthetic territory grid {nx_}×{ny_}")


_NX_CHILD = r"""
import json, sys, time
import numpy as np, networkx as nx, shapely
data = np.load(sys.argv[1])
mode = sys.argv[2]
bounds = [float(b) for b in data["bounds"]]
t0 = time.perf_counter()
g = nx.DiGraph()
g.add_weighted_edges_from(zip(data["tail"].tolist(), data["head"].tolist(),
                              data["minutes"].tolist()))
build = time.perf_counter() - t0
x, y = data["x"], data["y"]
hulls = {}
t = time.perf_counter()
groups = [data[k].tolist() for k in sorted(data.files) if k.startswith("sources_")]
for gi, sources in enumerate(groups):
    runs = [set(sources)] if mode == "multi" else [[s] for s in sources]
    for si, src in enumerate(runs):
        if mode == "multi":
            lengths = nx.multi_source_dijkstra_path_length(g, src, cutoff=bounds[-1])
        else:
            lengths = nx.single_source_dijkstra_path_length(g, src[0], cutoff=bounds[-1])
        nodes = np.fromiter(lengths.keys(), dtype=np.int64)
        mins = np.fromiter(lengths.values(), dtype=np.float64)
        for b in bounds:
            sel = nodes[mins < b]
            hull = shapely.multipoints(np.column_stack([x[sel], y[sel]])).convex_hull
            hulls[f"{gi}_{si}_{b}"] = shapely.to_wkb(hull, hex=True)
elapsed = time.perf_counter() - t
print(json.dumps({"build_s": build, "run_s": elapsed, "runs": sum(
    1 if mode == "multi" else len(s) for s in groups), "hulls": hulls}))
"""


def _networkx_peer(net: RoadNetwork, graph_csr, groups: list[np.ndarray],  # type: ignore[no-untyped-def]
                   bounds: list[float], mode: str) -> dict[str, object] | None:
    """networkx bounded Dijkstra + convex hulls in a child process (same arcs, sources)."""
    tails = np.repeat(np.arange(net.n_nodes), np.diff(graph_csr.indptr))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.npz"
        arrays = {"tail": tails, "head": graph_csr.indices, "minutes": graph_csr.data,
                  "x": net.x, "y": net.y, "bounds": np.asarray(bounds)}
        for i, nodes in enumerate(groups):
            arrays[f"sources_{i}"] = np.asarray(nodes)
        np.savez(path, **arrays)  # type: ignore[arg-type]
        del arrays
        proc = subprocess.run([sys.executable, "-c", _NX_CHILD, str(path), mode],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"   networkx child failed (code {proc.returncode}): {proc.stderr[-500:]}")
        return None
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


class _TimedRouting:
    """The engine, with the time spent in ``node_minutes_per_source_sparse`` recorded."""

    def __init__(self, engine: RoadEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self.network = engine.network
        self.seconds = 0.0
        self.cpu = 0.0

    def node_minutes_per_source_sparse(self, services: pd.DataFrame, cutoff_min: float
                                       ) -> tuple[np.ndarray, sp.csr_array]:
        t, c = time.perf_counter(), time.process_time()
        out = self.engine.node_minutes_per_source_sparse(services, cutoff_min)
        self.seconds += time.perf_counter() - t
        self.cpu += time.process_time() - c
        return out


# --- the drawing before issue 18, kept verbatim as the peer of (d) -----------------------
# (the arc samples stored as arrays, ndimage grey erosion and minimum filter over the
# whole grid, six passes lifting the
# field off the levels, every vertex projected by pyproj)


def _previous_fill_small_holes(field: np.ndarray, max_cells: float,
                               access_min_per_cell: float) -> np.ndarray:
    from scipy import ndimage

    unreached = ~np.isfinite(field)
    if max_cells <= 0 or not unreached.any():
        return field
    labels, n = ndimage.label(unreached)
    if n == 0:
        return field
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    small = sizes <= max_cells
    small[0] = False
    small[edge] = False
    if not small.any():
        return field
    todo = np.flatnonzero(small[labels])
    out = np.array(field, copy=True, order="C")
    flat = out.reshape(-1)
    r = max(math.ceil(math.sqrt(max_cells) / 2), 1)
    while todo.size:
        grown = ndimage.minimum_filter(field, size=2 * r + 1, mode="constant", cval=np.inf)
        values = grown.reshape(-1)[todo] + np.asarray(r * access_min_per_cell,
                                                      dtype=field.dtype)
        ready = np.isfinite(values)
        flat[todo[ready]] = values[ready]
        todo = todo[~ready]
        r *= 2
    return out


def _previous_field_from_samples(  # type: ignore[no-untyped-def]
    xs: np.ndarray, ys: np.ndarray, ts: np.ndarray, *, cell_m: float, buffer_m: float,
    access_m_per_min: float | None = None, min_hole_m2: float = 0.0,
):
    from scipy import ndimage

    from coverage.isochrones.raster import _disc, _Grid

    pad = buffer_m + 2 * cell_m
    grid = _Grid.around(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()),
                        cell_m, pad)
    field = np.full(grid.nx * grid.ny, np.inf, dtype=np.float32)
    np.minimum.at(field, grid.index(xs, ys), ts.astype(np.float32))
    field2d = field.reshape(grid.ny, grid.nx)
    radius = buffer_m / grid.cell
    if radius >= 1.0:
        footprint, dist = _disc(radius)
        if access_m_per_min is None:
            field2d = ndimage.minimum_filter(field2d, footprint=footprint, mode="constant",
                                             cval=np.inf)
        else:
            cone = (-dist * grid.cell / access_m_per_min).astype(np.float32)
            field2d = ndimage.grey_erosion(field2d, footprint=footprint, structure=cone,
                                           mode="constant", cval=np.inf)
    access_per_cell = 0.0 if access_m_per_min is None else grid.cell / access_m_per_min
    field2d = _previous_fill_small_holes(field2d, min_hole_m2 / grid.cell**2,
                                         access_per_cell)
    return grid, field2d


def _previous_contour_bands(grid, field, bands):  # type: ignore[no-untyped-def]
    import contourpy

    from coverage.isochrones.raster import _polygons_from_contour

    xc, yc = grid.centres()
    top = max(high for _, high in bands)
    z = np.where(np.isfinite(field), field, top + 1.0).astype(np.float64)
    for low, high in bands:
        for level in (low, high):
            close = np.abs(z - level) <= 1e-6
            z[close] = level + 2 * 1e-6
    gen = contourpy.contour_generator(
        xc, yc, z, name="serial", fill_type=contourpy.FillType.ChunkCombinedOffsetOffset)
    out = []
    for low, high in bands:
        lower = low if low > 0 else -1.0
        points, offsets, outer = gen.filled(lower, high)  # type: ignore[misc]
        out.append(_polygons_from_contour(points[0], offsets[0], outer[0]))
    return out


def _previous_to_wgs84(geoms, crs):  # type: ignore[no-untyped-def]
    import shapely

    from coverage.geo import transformer
    from coverage.isochrones.raster import _as_multipolygon

    if not geoms:
        return []
    to_wgs84 = transformer(crs, "EPSG:4326")

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    moved = shapely.transform(np.asarray([_as_multipolygon(g) for g in geoms], dtype=object),
                              project)
    return list(moved)


def _previous_band_geometries(network, nodes, minutes, bands, *, raster,  # type: ignore[no-untyped-def]  # noqa: PLR0913
                              access_speed_kmh, direction="to_service", graph=None,
                              wgs84=False):
    """``road_band_geometries_sparse`` before issue 18: the samples of ``_arc_samples``
    stored as arrays, then ``_field_from_samples`` (the previous one, patched) on them;
    with ``wgs84`` (the per-service path now asks for it), every vertex then projected by
    pyproj as before (``_previous_to_wgs84``)."""
    if wgs84:
        return _previous_to_wgs84(_previous_band_geometries(
            network, nodes, minutes, bands, raster=raster, access_speed_kmh=access_speed_kmh,
            direction=direction, graph=graph), network.crs)
    import shapely

    import coverage.isochrones.road as road_mod

    nodes = np.asarray(nodes, dtype=np.int64)
    minutes = np.asarray(minutes, dtype=np.float64)
    if graph is None:
        graph = road_mod.sampling_graph(network, direction)
    limit = max(high for _, high in bands)
    keep = (minutes < limit) & ~network.ferry_only_nodes[nodes]
    xs, ys, ts = road_mod._arc_samples(graph, network.x, network.y, nodes[keep],
                                       minutes[keep], step_m=raster.cell_m)
    keep = ts <= limit + 1.0
    if not (ts < limit).any():
        return [shapely.MultiPolygon() for _ in bands]
    access = None if access_speed_kmh is None else access_speed_kmh * 1000.0 / 60.0
    grid, field = _previous_field_from_samples(
        xs[keep], ys[keep], ts[keep], cell_m=raster.cell_m, buffer_m=raster.buffer_m,
        access_m_per_min=access, min_hole_m2=raster.min_hole_m2)
    return _previous_contour_bands(grid, field, bands)


@contextmanager
def _previous_drawing() -> Iterator[None]:
    """Draw with the code before issue 18 (patched where it is called, then restored)."""
    import coverage.isochrones.bands as bands_mod
    import coverage.isochrones.road as road_mod

    patches = [(road_mod, "road_band_geometries_sparse", _previous_band_geometries),
               (bands_mod, "_to_wgs84", _previous_to_wgs84)]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, previous in patches:
        setattr(module, name, previous)
    try:
        yield
    finally:
        for module, name, current in saved:
            setattr(module, name, current)


def _max_vertex_gap(ours: gpd.GeoDataFrame, peer: gpd.GeoDataFrame) -> float:
    """Largest distance between matching vertices of two drawings, degrees (inf: differ)."""
    import shapely

    worst = 0.0
    for a, b in zip(ours.geometry.to_numpy(), peer.geometry.to_numpy(), strict=True):
        ca, cb = shapely.get_coordinates(a), shapely.get_coordinates(b)
        if ca.shape != cb.shape:
            return float("inf")
        if ca.size:
            worst = max(worst, float(np.abs(ca - cb).max()))
    return worst


def _snap_nodes(engine: RoadEngine, services: pd.DataFrame) -> np.ndarray:
    snap = engine.snap(services["lon"].to_numpy(), services["lat"].to_numpy())
    return np.asarray(snap.node[~snap.off_network])


def _fmt_acc(acc: pd.DataFrame) -> str:
    parts = []
    for r in acc.itertuples():
        parts.append(f"{r.bande_min:g}–{r.bande_max:g}: reached-inside "
                     f"{r.part_atteints_dedans:.1%}, band {r.part_bande_dedans:.1%}, "
                     f"beyond+5-inside {r.part_au_dela_dedans:.1%}")
    return "; ".join(parts)


def _territory(args: argparse.Namespace) -> None:
    if not TERRITORY.exists():
        print(f"(a–c) skipped: {TERRITORY} not found (../shared/data beside the checkout)")
        return
    settings = Settings()
    communes = gpd.read_file(TERRITORY, layer="communes").rename(columns={"dens4": "densite"})
    seed = gpd.read_file(TERRITORY, layer="services_seed")
    seed["service_id"] = [f"SEED-{i}" for i in range(len(seed))]
    seed["lon"], seed["lat"] = seed.geometry.x, seed.geometry.y
    print(f"territory: {len(communes)} real communes (Cantal, Aveyron, Lozère), "
          f"{len(seed)} real seed sites ({seed['type_service'].value_counts().to_dict()})")
    t = time.perf_counter()
    proxy = iso.isochrones_types(ProxyEngine(settings), communes, seed, settings=settings)
    t_a = time.perf_counter() - t
    print(f"(a) proxy merged bands: {t_a:.2f} s  [target ≤ 5 s], {len(proxy)} bands, "
          f"valid {bool(proxy.is_valid.all())}")

    bounds = tuple(communes.to_crs("EPSG:2154").total_bounds)
    t = time.perf_counter()
    net = territory_graph(bounds, TERRITORY_SPACING_M)
    engine = RoadEngine(net, settings)
    print(f"road graph over the territory box: {net.n_nodes:,} nodes, {net.n_arcs:,} arcs "
          f"(built in {time.perf_counter() - t:.1f} s)")
    engine._graph()
    t, c = time.perf_counter(), time.process_time()
    road = iso.isochrones_types(engine, communes, seed, settings=settings)
    t_b, c_b = time.perf_counter() - t, time.process_time() - c
    print(f"(b) road merged bands (routing pass per type included): {t_b:.2f} s  "
          f"[target ≤ 5 s], CPU {c_b:.2f} s, {len(road)} bands, "
          f"valid {bool(road.is_valid.all())}")
    types = [t_ for t_ in settings.service_types if t_ in set(road["type_service"])]
    minutes = {t_: engine.node_minutes(seed[seed["type_service"] == t_]) for t_ in types}
    for t_ in types:
        acc = iso.band_accuracy(road[road["type_service"] == t_], net.x, net.y, minutes[t_],
                                crs=net.crs, tolerance_m=iso.BUFFER_M)
        print(f"    accuracy {t_}: {_fmt_acc(acc)}")
    if args.no_networkx:
        return
    groups = [_snap_nodes(engine, seed[seed["type_service"] == t_]) for t_ in types]
    highs = [b for _, b in iso.bands_from_thresholds(settings.thresholds_min)]
    res = _networkx_peer(net, engine._graph()[0], groups, highs, "multi")
    if res is None:
        return
    t_c = float(res["run_s"])  # type: ignore[arg-type]
    print(f"(c) networkx multi-source bounded Dijkstra + convex hulls: {t_c:.2f} s "
          f"(graph build {float(res['build_s']):.1f} s more) → ratio {t_c / t_b:.1f}× "  # type: ignore[arg-type]
          "(ours includes contouring and reprojection)")
    import shapely

    hulls: dict[str, str] = res["hulls"]  # type: ignore[assignment]
    for gi, t_ in enumerate(types):
        rows = []
        for lo, hi in iso.bands_from_thresholds(settings.thresholds_min):
            inner = shapely.from_wkb(hulls[f"{gi}_0_{hi}"])
            outer_lo = shapely.from_wkb(hulls[f"{gi}_0_{lo}"]) if lo > 0 else None
            geom = inner if outer_lo is None else inner.difference(outer_lo)
            rows.append({"bande_min": lo, "bande_max": hi, "geometry": geom})
        peer = gpd.GeoDataFrame(rows, crs=net.crs)
        acc = iso.band_accuracy(peer, net.x, net.y, minutes[t_], crs=net.crs)
        print(f"    peer accuracy {t_}: {_fmt_acc(acc)}")


def _france_previous(engine: RoadEngine, services: gpd.GeoDataFrame,
                     settings: Settings) -> None:
    """(d') Ours against the drawing before issue 18 on every PEER_STEP-th site, alternated."""
    sub = services.iloc[::PEER_STEP]
    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    best: dict[str, tuple[float, float, float]] = {}
    frames: dict[str, gpd.GeoDataFrame] = {}
    cases = {"ours": _no_patch, "previous (before issue 18)": _previous_drawing}
    for _ in range(PEER_ROUNDS):
        for label, patch in cases.items():
            routing = _TimedRouting(engine)
            with patch():
                t, c = time.perf_counter(), time.process_time()
                frames[label] = iso.isochrones_services(
                    routing, empty, sub, settings=settings)  # type: ignore[arg-type]
                wall, cpu = time.perf_counter() - t, time.process_time() - c
            old = best.get(label, (np.inf, np.inf, np.inf))
            best[label] = (min(old[0], wall), min(old[1], cpu),
                           min(old[2], cpu - routing.cpu))
    print(f"(d') the same bands on {len(sub)} of the sites (every {PEER_STEP}th), best of "
          f"{PEER_ROUNDS} alternated rounds, routing included:")
    for label, (wall, cpu, draw) in best.items():
        print(f"    {label:<28} wall {wall:6.1f} s  CPU {cpu:6.1f} s  of which drawing "
              f"{draw:6.1f} s CPU ({draw / len(sub) * 1000:.0f} ms per site)")
    ours, prev = best["ours"], best["previous (before issue 18)"]
    gap = _max_vertex_gap(frames["ours"], frames["previous (before issue 18)"])
    print(f"    ratio previous / ours: {prev[1] / ours[1]:.2f}× CPU, drawing alone "
          f"{prev[2] / ours[2]:.2f}× CPU, {prev[0] / ours[0]:.2f}× wall  [target ≥ 2×]; "
          f"same vertices, largest gap {gap:.1e}° (the polynomial projection); load "
          f"average {os.getloadavg()[0]:.1f}")


def _children_cpu() -> float:
    """CPU seconds of the finished (waited-for) child processes of this one, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _france_workers(engine: RoadEngine, services: gpd.GeoDataFrame, settings: Settings,
                    serial: gpd.GeoDataFrame, serial_times: tuple[float, float],
                    workers: int) -> None:
    """(d'') The bands of (d) drawn by ``workers`` forked processes: wall, CPU of this
    process and of the children, against (d) in one process; the frames compared."""
    import shapely

    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    t, c, cc = time.perf_counter(), time.process_time(), _children_cpu()
    par = iso.isochrones_services(engine, empty, services, settings=settings,  # type: ignore[arg-type]
                                  workers=workers)
    wall, cpu, child = (time.perf_counter() - t, time.process_time() - c,
                        _children_cpu() - cc)
    same = (serial.drop(columns="geometry").equals(par.drop(columns="geometry"))
            and list(shapely.to_wkb(serial.geometry.to_numpy()))
            == list(shapely.to_wkb(par.geometry.to_numpy())))
    t_d, c_d = serial_times
    met = ("✔" if wall <= 45.0 else "✘") if len(services) == 550 else (
        f"— {len(services)} sites here, not 550")
    print(f"(d'') the same {len(services)} sites, {workers} forked processes: {wall:.1f} s "
          f"wall  [issue 18: ≤ 45 s for 550 {met}], CPU {cpu + child:.1f} s (this process "
          f"{cpu:.1f} s + children {child:.1f} s); one process (d): {t_d:.1f} s wall, "
          f"{c_d:.1f} s CPU → {t_d / wall:.2f}× wall, {(cpu + child) / c_d:.2f}× the CPU; "
          f"byte-identical to (d), same row order: {same}; load average "
          f"{os.getloadavg()[0]:.1f}")


@contextmanager
def _no_patch() -> Iterator[None]:
    yield


def _france(args: argparse.Namespace) -> None:
    from benchmarks.bench_engine import N_SERVICES, _places, road_like_graph

    settings = Settings()
    side = int(os.environ.get("ZB_BENCH_SIDE", 600 if args.quick else 2050))
    n_sites = 60 if args.quick else sum(N_SERVICES)
    t = time.perf_counter()
    net = road_like_graph(side)
    print(f"France-sized graph (benchmarks/bench_engine.py): {net.n_nodes:,} nodes, "
          f"{net.n_arcs:,} arcs, built in {time.perf_counter() - t:.1f} s")
    rng = np.random.default_rng(SEED + 1)
    lon, lat = _places(net, n_sites, rng)
    n_mf = min(N_SERVICES[0], n_sites * N_SERVICES[0] // sum(N_SERVICES))
    services = gpd.GeoDataFrame({
        "service_id": [f"S{i:04d}" for i in range(n_sites)],
        "type_service": ["mediation_familiale"] * n_mf
        + ["espace_rencontre"] * (n_sites - n_mf), "lon": lon, "lat": lat},
        geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    engine = RoadEngine(net, settings)
    engine._graph()
    routing = _TimedRouting(engine)
    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    t, c = time.perf_counter(), time.process_time()
    per = iso.isochrones_services(routing, empty, services, settings=settings)  # type: ignore[arg-type]
    t_d, c_d = time.perf_counter() - t, time.process_time() - c
    print(f"(d) per-service bands, {n_sites} sites, bounded at "
          f"{settings.max_threshold_min:g} min (routing included), one process: {t_d:.1f} s  "
          f"[target ≤ 120 s for 550], {len(per)} bands, "
          f"{t_d / n_sites * 1000:.0f} ms per site; CPU {c_d:.1f} s, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"    of which routing (RoadEngine.node_minutes_per_source_sparse, reached nodes "
          f"only, graph of {net.n_nodes:,} nodes): {routing.seconds:.1f} s (CPU "
          f"{routing.cpu:.1f} s); drawing the bands: {t_d - routing.seconds:.1f} s (CPU "
          f"{c_d - routing.cpu:.1f} s)")
    sample = per.iloc[:: max(len(per) // 30, 1)]
    print(f"    valid (30-band sample): {bool(sample.is_valid.all())}")
    _france_workers(engine, services, settings, per, (t_d, c_d), args.workers)
    _france_previous(engine, services, settings)
    if args.no_networkx:
        return
    nodes = _snap_nodes(engine, services.iloc[:N_PEER_SITES])
    highs = [b for _, b in iso.bands_from_thresholds(settings.thresholds_min)]
    res = _networkx_peer(net, engine._graph()[0], [nodes], highs, "single")
    if res is None:
        return
    per_site = float(str(res["run_s"])) / max(int(str(res["runs"])), 1)
    print(f"(e) networkx bounded single-source Dijkstra + convex hulls: {per_site:.2f} s per "
          f"site on {res['runs']} of the same sites (graph build {float(res['build_s']):.0f} s "  # type: ignore[arg-type]
          f"more) → {per_site * n_sites:.0f} s projected for {n_sites} → ratio "
          f"{per_site * n_sites / t_d:.1f}×")


def main(argv: list[str] | None = None) -> int:
    """Run the isochrone benchmark; print our figures, the peers' and the targets."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks isochrones")
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("ZB_BENCH_QUICK") == "1")
    parser.add_argument("--no-networkx", action="store_true")
    parser.add_argument("--only", choices=["territory", "france"], default=None)
    parser.add_argument("--workers", type=int,
                        default=int(os.environ.get("ZB_BENCH_ISO_WORKERS", "2")),
                        help="processes of (d'') (default 2, ZB_BENCH_ISO_WORKERS)")
    args = parser.parse_args(argv or [])
    print(f"machine: {os.cpu_count()} CPU(s), {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    if args.only in (None, "territory"):
        _territory(args)
    if args.only in (None, "france"):
        _france(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
