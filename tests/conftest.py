"""Shared fixtures: where the real reference data lives, and tiny helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(os.environ.get("ZB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real reference data (``../shared/data``); skips when it is absent."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real reference data not found at {SHARED_DATA} (../shared/data beside the "
                    "checkout, or set ZB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tests_data() -> Path:
    """Folder of the tiny hand-written fixtures (``tests/data``)."""
    return TESTS_DATA


@pytest.fixture(scope="session")
def demo_road_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the FICTIONAL demo, road engine, no isochrones: made once per session.

    Read-only for the tests that use it (they may write exports under ``<run>/exports``).
    """
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    out = tmp_path_factory.mktemp("session_road") / "demo"
    run_batch(load_inputs(), out_dir=out, options=RunOptions(workers=1, isochrones=False))
    return out


@pytest.fixture(scope="session")
def demo_proxy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the FICTIONAL demo, proxy engine, no isochrones: made once per session."""
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    out = tmp_path_factory.mktemp("session_proxy") / "demo"
    run_batch(load_inputs(), out_dir=out,
              options=RunOptions(engine="proxy", isochrones=False, workers=1))
    return out


@pytest.fixture(autouse=True)
def _restore_main_module() -> Iterator[None]:
    """Streamlit's AppTest replaces ``sys.modules["__main__"]`` with the page script; restore
    it so that later tests starting processes with "spawn" (Dask, the batch's pool) do not
    re-run that script in their children."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
