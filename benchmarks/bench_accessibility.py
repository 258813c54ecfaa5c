"""Accessibility index benchmark (issue 14): our 2SFCA / E2SFCA against PySAL ``access``.

Same input for both, in the same process: a SYNTHETIC commune × service matrix of national
size (34,868 communes, 600 services, each commune within 45 min of 1 to 12 services, minutes
drawn uniformly in 0–45; seed 2026; ``--quick``: 5,000 communes, 100 services). Both
compute the index at 30 min: 2SFCA, then E2SFCA with the bands 0–10/10–20/20–30 min
weighted 1/0.68/0.22 (``access.weights.step_fn``). Printed: wall and CPU seconds of each,
the ratio, the largest relative gap between the two results, and the load average. The
matrix is made up: the figures are speeds, not accessibility figures.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from coverage.accessibility import DecayBands, floating_catchment

SEED = 2026


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def synthetic(n_communes: int, n_services: int, seed: int = SEED
              ) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Return (pairs, demand, supply): a SYNTHETIC matrix, populations and capacities."""
    rng = np.random.default_rng(seed)
    codes = np.array([f"C{i:05d}" for i in range(n_communes)], dtype=object)
    ids = np.array([f"S{j:04d}" for j in range(n_services)], dtype=object)
    per = rng.integers(1, 13, n_communes)
    rows = np.repeat(np.arange(n_communes), per)
    cols = np.concatenate([rng.choice(n_services, size=k, replace=False) for k in per])
    pairs = pd.DataFrame({"code_insee": codes[rows], "service_id": ids[cols],
                          "minutes": rng.uniform(0, 45, rows.shape[0]).round(2)})
    demand = pd.Series(rng.lognormal(6.5, 1.4, n_communes).round(), index=codes)
    supply = pd.Series(rng.uniform(0.2, 4.0, n_services).round(1), index=ids)
    return pairs, demand, supply


def _timed(fn: object) -> tuple[object, float, float]:
    w0, c0 = time.perf_counter(), _cpu()
    out = fn()  # type: ignore[operator]
    return out, time.perf_counter() - w0, _cpu() - c0


def _peer(pairs: pd.DataFrame, demand: pd.Series, supply: pd.Series, *, enhanced: bool
          ) -> pd.Series:
    from access import Access, weights

    acc = Access(demand_df=demand.rename("population").rename_axis("code_insee")
                 .reset_index(), demand_index="code_insee", demand_value="population",
                 supply_df=supply.rename("capacite").rename_axis("service_id").reset_index(),
                 supply_index="service_id", supply_value="capacite", cost_df=pairs,
                 cost_origin="code_insee", cost_dest="service_id", cost_name="minutes")
    if enhanced:
        out = acc.enhanced_two_stage_fca(
            name="x", max_cost=30, weight_fn=weights.step_fn({10: 1.0, 20: 0.68, 30: 0.22}))
    else:
        out = acc.two_stage_fca(name="x", max_cost=30)
    return out["x_capacite"].reindex(demand.index).fillna(0.0)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 (1 when the two results differ beyond 1e-9)."""
    quick = "--quick" in (argv or []) or os.environ.get("ZB_BENCH_QUICK") == "1"
    n_c, n_s = (5_000, 100) if quick else (34_868, 600)
    pairs, demand, supply = synthetic(n_c, n_s)
    print(f"SYNTHETIC matrix: {n_c:,} communes × {n_s} services, {len(pairs):,} pairs "
          f"(seed {SEED}); catchment 30 min")
    failed = 0
    for label, bands in (("2SFCA", None), ("E2SFCA", DecayBands.thirds(30))):
        ours, w_o, c_o = _timed(lambda b=bands: floating_catchment(  # type: ignore[misc]
            pairs, demand, supply, threshold_min=30, bands=b))
        peer, w_p, c_p = _timed(lambda b=bands: _peer(  # type: ignore[misc]
            pairs, demand, supply, enhanced=b is not None))
        mine = ours.communes["indice"].to_numpy()  # type: ignore[attr-defined]
        theirs = peer.to_numpy()  # type: ignore[attr-defined]
        gap = float(np.max(np.abs(mine - theirs) / np.maximum(np.abs(theirs), 1e-300)))
        failed += int(not np.allclose(mine, theirs, rtol=1e-9, atol=1e-15))
        print(f"{label}: ours (numpy bincount) {w_o:.3f} s wall, {c_o:.3f} s CPU | PySAL "
              f"access {w_p:.3f} s wall, {c_p:.3f} s CPU | peer / ours {w_p / w_o:.1f}× "
              f"wall, {c_p / max(c_o, 1e-9):.1f}× CPU | largest relative gap {gap:.1e}")
    print(f"load average {os.getloadavg()[0]:.1f} (2-CPU shared machine)")
    return failed
