"""Proxy benchmark (issue 12): the national proxy run with ranges vs the previous model.

Side by side in one process, on the same input (34,868 communes of ../shared/data, the 550
SYNTHETIC sites of :mod:`benchmarks.bench_batch`, thresholds 20/30/45 min, no isochrones,
no cache), alternated A B A B … and the best of each kept:

- **A, baseline** — the model before issue 12, re-implemented here: straight line × 1.3 ÷
  a speed by the *origin's* density level (30/45/60/65 km/h), one KD-tree query (k = 1) per
  territory and type, no land masses, no ranges;
- **B, issue 12** — what ``run`` does now: land masses from the commune polygons (once per
  run), the trip-level model with one KD-tree per destination density class, and the
  low–high ranges (detour 1.2 and 1.45) from the same queries;
- **C** — B without the ranges (``nearest`` instead of ``nearest_with_ranges``), to show
  what the ranges themselves cost;
- **B before issue 18** — B with the land masses' ``intersects`` pass on every pair of
  boxes and the proxy frames built column by column, as before issue 18 (the peer of the
  issue-18 speed-up; its tables must be identical to B's).

Issue 18 target: load + B ≤ 10 s CPU end to end.

Target: B ≤ 1.5 × A (wall). The sites are SYNTHETIC, not the real offer.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from benchmarks.bench_batch import SHARED, _Clock, synthetic_sites

TARGET_RATIO = 1.5
#: Issue 18: the national proxy run, end to end (load + run), CPU seconds.
TARGET_CPU_S = 10.0
B18 = "B before issue 18 (land masses, proxy frames)"
ROUNDS = int(os.environ.get("ZB_BENCH_PROXY_ROUNDS", "2"))
_OLD_SPEEDS = {1: 30.0, 2: 45.0, 3: 60.0, 4: 65.0}


class OldProxyEngine:
    """The proxy of issue 11: straight line × 1.3 ÷ speed of the origin's density level."""

    name = "proxy"

    def parameters(self) -> dict[str, Any]:
        return {"moteur": "proxy", "methode": "baseline (issue 11 model)"}

    def nearest(self, communes: pd.DataFrame, services: pd.DataFrame, *,
                service_types: tuple[str, ...]) -> pd.DataFrame:
        from coverage.geo import lonlat_to_xy
        from coverage.settings import metric_crs_for

        crs = communes["code_dep"].astype(str).map(metric_crs_for).to_numpy()
        s_crs = services["code_dep"].astype(str).map(metric_crs_for).to_numpy()
        speed = communes["densite"].astype(int).map(_OLD_SPEEDS).to_numpy(dtype=float)
        frames = []
        for stype in service_types:
            dist = np.full(len(communes), np.nan)
            sid = np.full(len(communes), None, dtype=object)
            for c in np.unique(crs):
                cs = np.flatnonzero(crs == c)
                ss = np.flatnonzero((s_crs == c)
                                    & (services["type_service"].to_numpy() == stype))
                if not ss.size:
                    continue
                sxy = lonlat_to_xy(services["lon"].to_numpy(float)[ss],
                                   services["lat"].to_numpy(float)[ss], str(c))
                cxy = lonlat_to_xy(communes["lon"].to_numpy(float)[cs],
                                   communes["lat"].to_numpy(float)[cs], str(c))
                d, j = cKDTree(sxy).query(cxy, k=1)
                dist[cs] = d
                sid[cs] = services["service_id"].to_numpy()[ss[j]]
            frames.append(pd.DataFrame({
                "code_insee": communes["code_insee"].to_numpy(), "type_service": stype,
                "minutes": dist * 1.3 / 1000 / speed * 60, "service_id": sid,
                "distance_km": dist * 1.3 / 1000, "moteur": "proxy",
                "acces_hors_reseau": False}))
        return pd.concat(frames, ignore_index=True)


@contextmanager
def _baseline() -> Iterator[None]:
    """Run the batch with the old engine and without land masses (patched, then restored)."""
    import coverage.batch.executors as ex
    import coverage.batch.run as run_mod
    from coverage.batch.proxy_inputs import ProxyInputs
    from coverage.routing.landmass import FerryNetwork

    old_engine_for, old_inputs = ex.engine_for, run_mod.proxy_inputs

    def engine_for(spec: Any) -> Any:
        return OldProxyEngine() if spec.name == "proxy" else old_engine_for(spec)

    def no_masses(_all: Any, communes: Any, services: Any, *_a: Any, **_k: Any) -> Any:
        return ProxyInputs(communes, services, FerryNetwork())

    ex.engine_for, run_mod.proxy_inputs = engine_for, no_masses  # type: ignore[assignment]
    try:
        yield
    finally:
        ex.engine_for, run_mod.proxy_inputs = old_engine_for, old_inputs


@contextmanager
def _without_ranges() -> Iterator[None]:
    """Run the batch with the new model but ``nearest`` instead of ``nearest_with_ranges``."""
    from coverage.routing.proxy import ProxyEngine

    old = ProxyEngine.nearest_with_ranges
    ProxyEngine.nearest_with_ranges = ProxyEngine.nearest  # type: ignore[method-assign]
    try:
        yield
    finally:
        ProxyEngine.nearest_with_ranges = old  # type: ignore[method-assign]


def _previous_touching(native: Any, tree: Any, bridges: Any) -> Any:
    """The land masses' first pass before issue 18: ``intersects`` on every box pair."""
    from coverage.routing.landmass import _connected

    left, right = tree.query(native, predicate="intersects")
    return _connected(native.shape[0], np.concatenate([left, bridges[:, 0]]),
                      np.concatenate([right, bridges[:, 1]]))


def _previous_nearest(self: Any, communes: pd.DataFrame, services: pd.DataFrame,
                      service_types: Any, *, ranges: bool) -> pd.DataFrame:
    """``ProxyEngine._nearest`` before issue 18: one frame per type, columns set one by one."""
    from coverage._validate import require_columns
    from coverage.labels import REASON_ISLAND
    from coverage.routing import proxy as px
    from coverage.routing.base import empty_nearest

    require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
    require_columns(services, ("service_id", "type_service", "lon", "lat"), file="services")
    if len(communes) == 0 or not service_types:
        return empty_nearest()
    places = px._places(communes, services, self.settings, self.known)
    ferry = px._ferry(self.ferries, places)
    n = places.codes.shape[0]
    frames = []
    for stype in service_types:
        geo = px._type_geometry(places, ferry, stype)
        best = px._best_trips(geo, ferry, places.c_dens, self.settings)
        frame = pd.DataFrame({
            "code_insee": places.codes, "type_service": stype, "minutes": best.minutes,
            "service_id": pd.Series(best.ids, dtype=object), "distance_km": best.road_km,
            "moteur": self.name, "acces_hors_reseau": np.zeros(n, bool)})
        if ranges:
            exists = bool((places.s_type == stype).any())
            frame["raison"] = px._ids_where(np.isnan(best.minutes) & exists,
                                            np.full(n, REASON_ISLAND, dtype=object))
            low, high = self.bound_settings()
            frame["minutes_min"] = px._best_trips(geo, ferry, places.c_dens, low).minutes
            frame["minutes_max"] = px._best_trips(geo, ferry, places.c_dens, high).minutes
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    for col in ("type_service", "moteur", "raison"):
        if col in out.columns:
            out[col] = out[col].astype(object)
    return out


@contextmanager
def _before_issue_18() -> Iterator[None]:
    """B with the land masses and proxy frames as before issue 18 (patched, then restored)."""
    from coverage.routing import landmass
    from coverage.routing.proxy import ProxyEngine

    saved = landmass._touching_components, ProxyEngine._nearest
    landmass._touching_components = _previous_touching
    ProxyEngine._nearest = _previous_nearest  # type: ignore[method-assign]
    try:
        yield
    finally:
        landmass._touching_components, ProxyEngine._nearest = saved  # type: ignore[method-assign]


@contextmanager
def _as_is() -> Iterator[None]:
    yield


def main(argv: list[str] | None = None) -> int:
    """Run the side-by-side benchmark; return 0 (prints the figures and the target)."""
    del argv
    os.environ.setdefault("ZB_PROGRESS", "0")
    from coverage.batch import RunOptions, run_batch
    from coverage.io.communes import load_communes
    from coverage.io.inputs import Inputs

    communes_file = SHARED / "communes" / "communes_cog2026.parquet"
    grid = SHARED / "communes" / "grille_densite_4niv_cog2026.csv"
    if not communes_file.exists():
        print(f"  proxy benchmark skipped: {communes_file} not found")
        return 0
    with _Clock() as load:
        communes = load_communes(communes_file, densite=grid).data
    load_cpu = load.cpu
    sites = synthetic_sites(communes)
    inputs = Inputs(communes=communes, services=sites, waiting=None, roads=None, fictif=False,
                    paths={})
    options = RunOptions(engine="proxy", isochrones=False, use_cache=False, workers=1)
    workdir = Path(tempfile.mkdtemp(prefix="zb-bench-proxy-"))
    cases: dict[str, Callable[[], Any]] = {
        "A baseline (issue 11 model, no land masses, no ranges)": _baseline,
        "B issue 12 (land masses + trip model + ranges)": _as_is,
        "C issue 12 without the ranges": _without_ranges,
        B18: _before_issue_18,
    }
    best: dict[str, tuple[float, float]] = {}
    figures: dict[str, pd.DataFrame] = {}
    try:
        for k in range(ROUNDS):
            for i, (label, patch) in enumerate(cases.items()):
                with patch(), _Clock() as clock:
                    res = run_batch(inputs, out_dir=workdir / f"r{k}_{i}", options=options)
                wall, cpu = best.get(label, (np.inf, np.inf))
                best[label] = (min(wall, clock.wall), min(cpu, clock.cpu))
                figures[label] = res.tables["couverture_france"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base_wall, base_cpu = best[next(iter(cases))]
    print(f"  {len(communes):,} communes, {len(sites)} SYNTHETIC sites, thresholds 20/30/45 "
          f"min, no isochrones, no cache, 1 process; best of {ROUNDS} alternated rounds")
    for label, (wall, cpu) in best.items():
        print(f"  {label:<58} wall {wall:6.2f} s  CPU {cpu:6.2f} s  "
              f"ratio {wall / base_wall:4.2f}× wall, {cpu / base_cpu:4.2f}× CPU")
    ratio = best["B issue 12 (land masses + trip model + ranges)"][0] / base_wall
    print(f"  target B ≤ {TARGET_RATIO:g} × A: {'OK' if ratio <= TARGET_RATIO else 'OVER'} "
          f"({ratio:.2f}×); load average {os.getloadavg()[0]:.1f} at the end, "
          f"{os.cpu_count()} CPUs")
    b = figures["B issue 12 (land masses + trip model + ranges)"]
    same = b.equals(figures[B18])
    b_wall, b_cpu = best["B issue 12 (land masses + trip model + ranges)"]
    p_wall, p_cpu = best[B18]
    print(f"  issue 18: B {b_cpu:.2f} s CPU against {p_cpu:.2f} s before (peer, same run): "
          f"{p_cpu / b_cpu:.2f}× CPU, {p_wall / b_wall:.2f}× wall; tables identical: {same}")
    print(f"  end to end (load {load_cpu:.2f} s CPU + run B): {load_cpu + b_cpu:.2f} s CPU  "
          f"[target ≤ {TARGET_CPU_S:g} s CPU]: "
          f"{'OK' if load_cpu + b_cpu <= TARGET_CPU_S else 'OVER'}; before issue 18 "
          f"{load_cpu + p_cpu:.2f} s")
    w45 = b[(b.seuil_minutes == 45) & (b.type_service == "aucun_service")].iloc[0]
    print(f"  SYNTHETIC sites, 45 min, no type: {int(w45.population_zone_blanche):,} inhabitants"
          f" in white zone (range {int(w45.population_zone_blanche_min):,}–"
          f"{int(w45.population_zone_blanche_max):,}); not a real figure")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
