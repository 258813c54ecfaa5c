"""Incremental reruns (issue 18): after a change of services, only the communes whose nearest
service can change are recomputed, and every output file equals a fresh full run's, byte for
byte.

The demo territory is FICTIONAL; the national case reads ../shared/data in place (skipped when
absent, slow) with SYNTHETIC sites (benchmarks.bench_batch.synthetic_sites).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from coverage.batch import RunOptions, run_batch
from coverage.batch.cache import PARTITIONS_DIR, SERVICES_FILE
from coverage.cli.run import _engine_line
from coverage.io.inputs import Inputs, load_inputs
from coverage.results import CACHE_DIR
from coverage.routing import Engine, make_engine
from coverage.scenario import (
    access_rows,
    affected_communes,
    bound_minutes,
    complete_services,
    service_changes,
    update_access,
)
from coverage.settings import Settings

TYPES = ("mediation_familiale", "espace_rencontre")


def _points(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    df = pd.DataFrame(frame).drop(columns="geometry", errors="ignore").reset_index(drop=True)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")


def _changed(services: gpd.GeoDataFrame, communes: pd.DataFrame, seed: int
             ) -> gpd.GeoDataFrame:
    """Remove one service, move one to a random commune, add one in a random commune."""
    rng = np.random.default_rng(seed)
    s = pd.DataFrame(services).drop(columns="geometry").reset_index(drop=True)
    s = s.drop(index=int(rng.integers(len(s)))).reset_index(drop=True)
    i, c = int(rng.integers(len(s))), communes.iloc[int(rng.integers(len(communes)))]
    s.loc[i, ["lon", "lat", "code_insee", "code_dep"]] = [float(c.lon), float(c.lat),
                                                         c.code_insee, c.code_dep]
    c = communes.iloc[int(rng.integers(len(communes)))]
    new = s.iloc[[0]].copy()
    new[["service_id", "type_service", "lon", "lat", "code_insee", "code_dep"]] = [
        f"NEW-{seed}", TYPES[seed % 2], float(c.lon), float(c.lat), c.code_insee, c.code_dep]
    return _points(pd.concat([s, new], ignore_index=True))


def _synthetic_sites(communes: pd.DataFrame, seed: int = 2026) -> gpd.GeoDataFrame:
    """SYNTHETIC sites (not real services): communes drawn ∝ population, 300 + 250."""
    rng = np.random.default_rng(seed)
    p = communes["population"].to_numpy(dtype=float)
    rows = []
    for typ, n in zip(TYPES, (300, 250), strict=True):
        for k, i in enumerate(sorted(rng.choice(len(communes), size=n, replace=False,
                                                p=p / p.sum()))):
            c = communes.iloc[i]
            rows.append({"service_id": f"SYNTH-{typ[:2].upper()}-{k:04d}",
                         "type_service": typ, "code_insee": c["code_insee"],
                         "code_dep": c["code_dep"], "lon": float(c["lon"]),
                         "lat": float(c["lat"])})
    return _points(pd.DataFrame(rows))


def _outputs(folder: Path) -> dict[str, bytes]:
    """Every output file of a run folder but the manifest (timings) and the cache."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and CACHE_DIR not in p.relative_to(folder).parts
            and p.name != "manifest.json"}


def _assert_same_outputs(incremental: Path, full: Path) -> None:
    a, b = _outputs(incremental), _outputs(full)
    assert sorted(a) == sorted(b)
    differ = [name for name in b if a[name] != b[name]]
    assert not differ, f"files differ from a full rerun: {differ}"


@pytest.mark.parametrize("engine", ["proxy", "road"])
def test_incremental_rerun_is_byte_identical_to_a_full_run(
        engine: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inputs = load_inputs()
    options = RunOptions(engine=engine, isochrones=False, workers=1)
    run_batch(inputs, out_dir=tmp_path / "inc", options=options)
    assert (tmp_path / "inc" / CACHE_DIR / PARTITIONS_DIR / SERVICES_FILE).is_file()
    changed = replace(inputs, services=_changed(inputs.services, inputs.communes, 1))
    with caplog.at_level(logging.INFO, logger="coverage.batch.run"):
        res = run_batch(changed, out_dir=tmp_path / "inc", options=options)
    assert "updated incrementally" in caplog.text
    assert not res.reused and res.incremental == res.computed
    assert 0 < res.recomputed_communes <= len(inputs.communes)
    # the CLI summary tells the updated partitions from those computed whole
    line = _engine_line(res)
    assert f"{len(res.incremental)} mise(s) à jour" in line
    assert "0 partition(s) calculée(s) en entier" in line
    full = run_batch(changed, out_dir=tmp_path / "full",
                     options=replace(options, use_cache=False))
    assert not full.incremental
    _assert_same_outputs(tmp_path / "inc", tmp_path / "full")
    # the manifests record the same run: same key, same output digests
    assert res.manifest["run_key"] == full.manifest["run_key"]
    assert res.manifest["outputs"] == full.manifest["outputs"]


def test_second_incremental_change_and_an_undo(tmp_path: Path) -> None:
    """Two changes in a row, then back to the first list: each rerun equals a full run."""
    inputs = load_inputs()
    options = RunOptions(engine="proxy", isochrones=False, workers=1)
    out = tmp_path / "inc"
    run_batch(inputs, out_dir=out, options=options)
    first = _changed(inputs.services, inputs.communes, 2)
    second = _changed(first, inputs.communes, 3)
    for services in (first, second, inputs.services):
        step = replace(inputs, services=services)
        run_batch(step, out_dir=out, options=options)
        full = tmp_path / f"full_{len(services)}_{services.service_id.iloc[-1]}"
        run_batch(step, out_dir=full, options=replace(options, use_cache=False))
        _assert_same_outputs(out, full)
        shutil.rmtree(full)


@pytest.fixture(scope="module")
def demo() -> Inputs:
    return load_inputs()


@pytest.fixture(scope="module")
def engines(demo: Inputs) -> dict[str, Engine]:
    return {"proxy": make_engine("proxy"), "road": make_engine("road", demo.roads)}


@pytest.mark.parametrize("engine_name", ["proxy", "road"])
@pytest.mark.parametrize("seed", range(4))
def test_update_access_equals_a_full_computation(engine_name: str, seed: int, demo: Inputs,
                                                 engines: dict[str, Engine]) -> None:
    """Property-style: random removals, moves and additions; the rows equal a full run."""
    inputs, engine = demo, engines[engine_name]
    communes = pd.DataFrame(inputs.communes).drop(columns="geometry")
    old = complete_services(pd.DataFrame(inputs.services).drop(columns="geometry"), communes)
    new = complete_services(pd.DataFrame(_changed(inputs.services, communes, seed + 10))
                            .drop(columns="geometry"), communes)
    access = access_rows(engine, communes, old, TYPES)
    mask = affected_communes(engine, communes, access, old, new, types=TYPES)
    assert mask.any()
    got = update_access(engine, communes, access, new, mask, TYPES)
    want = access_rows(engine, communes, new, TYPES)
    pd.testing.assert_frame_equal(got, want)
    # the communes not recomputed kept their rows, and those are the right rows
    kept = ~got["code_insee"].isin(communes.loc[mask, "code_insee"])
    pd.testing.assert_frame_equal(got[kept], access[kept.to_numpy()])


def test_nothing_changed_recomputes_nothing(demo: Inputs, engines: dict[str, Engine]) -> None:
    inputs, engine = demo, engines["proxy"]
    communes = pd.DataFrame(inputs.communes).drop(columns="geometry")
    services = complete_services(pd.DataFrame(inputs.services).drop(columns="geometry"),
                                 communes)
    access = access_rows(engine, communes, services, TYPES)
    assert service_changes(services, services.copy()).empty
    mask = affected_communes(engine, communes, access, services, services.copy(),
                             types=TYPES)
    assert not mask.any()
    assert update_access(engine, communes, access, services, mask, TYPES) is access


def test_a_far_change_touches_few_communes(demo: Inputs, engines: dict[str, Engine]) -> None:
    """A site added in one corner recomputes only the communes it may serve."""
    inputs, engine = demo, engines["proxy"]
    communes = pd.DataFrame(inputs.communes).drop(columns="geometry")
    services = complete_services(pd.DataFrame(inputs.services).drop(columns="geometry"),
                                 communes)
    access = access_rows(engine, communes, services, TYPES)
    corner = communes.loc[communes["lon"].idxmin()]
    new = pd.concat([services, services.iloc[[0]].assign(
        service_id="NEW", lon=corner.lon, lat=corner.lat, code_insee=corner.code_insee,
        code_dep=corner.code_dep, densite=corner.densite)], ignore_index=True)
    mask = affected_communes(engine, communes, access, services, new, types=TYPES)
    assert 0 < mask.sum() < len(communes)
    got = update_access(engine, communes, access, new, mask, TYPES)
    pd.testing.assert_frame_equal(got, access_rows(engine, communes, new, TYPES))


def test_bound_minutes_is_below_every_proxy_trip() -> None:
    """The pruning bound never exceeds a trip's minutes under any parameter set."""
    from coverage.routing.proxy import trip_minutes

    settings = Settings()
    km = np.linspace(0.0, 300.0, 301)
    lb = bound_minutes(km, settings)
    for detour in (settings.proxy_detour_factor, *settings.proxy_detour_bounds):
        s = replace(settings, proxy_detour_factor=float(detour))
        for do in settings.proxy_access_min_by_density:
            for dd in settings.proxy_access_min_by_density:
                assert np.all(lb <= trip_minutes(km, do, dd, s) + 1e-9)


def test_type_appearing_recomputes_everything(demo: Inputs, engines: dict[str, Engine]) -> None:
    inputs, engine = demo, engines["proxy"]
    communes = pd.DataFrame(inputs.communes).drop(columns="geometry")
    services = pd.DataFrame(inputs.services).drop(columns="geometry")
    only_one = services[services["type_service"] == TYPES[0]]
    access = access_rows(engine, communes, only_one, TYPES)
    mask = affected_communes(engine, communes, access, only_one, services, types=TYPES)
    assert mask.all()


def test_national_incremental_rerun_equals_full(shared_data: Path, tmp_path: Path) -> None:
    """Real communes (SYNTHETIC sites): 2 services changed, every output byte-identical."""
    from coverage.io.communes import load_communes

    communes_file = shared_data / "communes" / "communes_cog2026.parquet"
    grid = shared_data / "communes" / "grille_densite_4niv_cog2026.csv"
    communes = load_communes(communes_file, densite=grid).data
    sites = _synthetic_sites(communes)
    inputs = Inputs(communes=communes, services=sites, waiting=None, roads=None,
                    fictif=False, paths={"communes": str(communes_file), "densite": str(grid)})
    options = RunOptions(engine="proxy", isochrones=False, workers=1)
    run_batch(inputs, out_dir=tmp_path / "inc", options=options)
    s = pd.DataFrame(sites).drop(columns="geometry").drop(index=[5]).reset_index(drop=True)
    s.loc[10, ["lon", "lat"]] = [s.loc[10, "lon"] + 0.1, s.loc[10, "lat"] + 0.05]
    changed = replace(inputs, services=_points(s))
    res = run_batch(changed, out_dir=tmp_path / "inc", options=options)
    assert res.incremental and len(res.incremental) < 101
    assert res.recomputed_communes < len(communes) // 10
    run_batch(changed, out_dir=tmp_path / "full", options=replace(options, use_cache=False))
    _assert_same_outputs(tmp_path / "inc", tmp_path / "full")


def test_rerun_reuses_the_previous_tables_only_when_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous run's tables replace the cached partitions' files, unless changed since.

    A rerun reads the unchanged partitions' rows from the previous ``acces_communes`` and
    copies its CSV lines; a table edited since that run is not used (its SHA-256 differs):
    the partitions are read one by one. Either way every file equals a full rerun's.
    """
    import coverage.batch.run as run_module

    reads: list[str] = []
    real = run_module.cache_table

    def counting(cache: Path, dept: str, key: str) -> pd.DataFrame:
        reads.append(dept)
        return real(cache, dept, key)

    monkeypatch.setattr(run_module, "cache_table", counting)
    inputs = load_inputs()
    options = RunOptions(engine="proxy", isochrones=False, workers=1)
    out = tmp_path / "inc"
    run_batch(inputs, out_dir=out, options=options)
    memo = json.loads((out / CACHE_DIR / "tables_file.json").read_text(encoding="utf-8"))
    assert set(memo["partitions"]) == set(inputs.communes["code_dep"].astype(str))
    csv = out / "tables" / "acces_communes.csv"
    csv.write_bytes(csv.read_bytes().replace(b"\n", b"\r\n", 1))  # edited by hand
    # new thresholds (the largest kept: same partitions): every partition is cached
    for thresholds, tampered in (((25.0, 45.0), True), ((10.0, 20.0, 45.0), False)):
        reads.clear()
        opts = replace(options, thresholds=thresholds)
        res = run_batch(inputs, out_dir=out, options=opts)
        assert not res.reused and set(res.cached) == set(memo["partitions"])
        if tampered:
            assert set(res.cached) <= set(reads)  # read one by one
        else:
            assert not reads  # taken from the previous run's table
        full = tmp_path / f"full{len(thresholds)}"
        run_batch(inputs, out_dir=full, options=replace(opts, use_cache=False))
        _assert_same_outputs(out, full)
