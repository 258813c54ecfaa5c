"""The batch package's seams: run options, the CLI's translation of its arguments, the key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from coverage import batch
from coverage.batch import RunOptions, run_batch
from coverage.batch.manifest import fictional_label
from coverage.cli import build_parser
from coverage.cli.arguments import settings_from_args, thresholds
from coverage.cli.run import _default_out, options_from_args
from coverage.errors import CoverageError
from coverage.io.inputs import load_inputs
from coverage.labels import FICTIONAL_LABEL
from coverage.results import DEMO_RUN_DIR


def test_options_are_frozen_tuples() -> None:
    opts = RunOptions(depts=["15", "2A"], types=["mediation_familiale"], thresholds=[30, 20])
    assert opts.depts == ("15", "2A") and opts.types == ("mediation_familiale",)
    assert opts.thresholds == (30, 20)  # sorted and checked by the run, not here
    assert RunOptions(depts="2A").depts == ("2A",)  # one code, not its letters
    with pytest.raises(AttributeError):
        opts.workers = 2  # type: ignore[misc]
    assert RunOptions() == RunOptions(depts=None, isochrones=True, use_cache=True)


def test_cli_arguments_become_options_and_settings() -> None:
    args = build_parser().parse_args([
        "run", "--dept", "15", "2A", "--types", "espace_rencontre", "--thresholds", "45,20",
        "--engine", "proxy", "--workers", "2", "--no-cache", "--no-isochrones",
        "--set", "proxy_detour_factor=1.5"])
    opts = options_from_args(args)
    assert opts == RunOptions(depts=("15", "2A"), types=("espace_rencontre",),
                              thresholds=(20.0, 45.0), engine="proxy", workers=2,
                              use_cache=False, isochrones=False)
    assert settings_from_args(args).proxy_detour_factor == 1.5
    every = options_from_args(build_parser().parse_args(["run", "--all"]))
    assert every.depts is None and every.isochrones and every.use_cache
    geojson = options_from_args(build_parser().parse_args(["run", "--isochrones-geojson"]))
    assert geojson.isochrones_geojson


def test_threshold_argument_is_checked() -> None:
    assert thresholds("30, 20,30") == (20.0, 30.0)
    for bad in ("0,20", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            thresholds(bad)


def test_geojson_without_isochrones_is_refused_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(CoverageError, match="les isochrones GeoJSON demandent les isochrones"):
        run_batch(load_inputs(), out_dir=out,
                  options=RunOptions(isochrones=False, isochrones_geojson=True))
    assert not out.exists()


def test_demo_default_folder_is_the_one_demo_run_folder() -> None:
    demo = load_inputs()  # FICTIONAL demo
    assert _default_out(demo, None) == DEMO_RUN_DIR
    assert DEMO_RUN_DIR.is_absolute()
    assert fictional_label(demo) == FICTIONAL_LABEL == fictional_label()


def test_key_covers_the_batch_modules_that_shape_partitions() -> None:
    names = {m.__name__ for m in batch.keyed_modules()}
    assert {"coverage.batch.partitions", "coverage.batch.executors", "coverage.batch.cache",
            "coverage.routing.base", "coverage.routing.matrix"} <= names
    assert "coverage.batch" not in names  # the package's __init__ only re-exports
