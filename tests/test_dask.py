"""The batch on a Dask distributed cluster gives the same tables as a local run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coverage.batch import RunOptions, run_batch
from coverage.io.inputs import load_inputs


@pytest.mark.parametrize("processes", [False, True])
def test_dask_run_equals_local_run(tmp_path: Path, processes: bool) -> None:
    distributed = pytest.importorskip("distributed")
    inputs = load_inputs()  # the FICTIONAL demo territory, road engine
    local = run_batch(inputs, out_dir=tmp_path / "local",
                      options=RunOptions(workers=1, isochrones=False))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=processes,
                                  host="127.0.0.1", protocol="tcp://", dashboard_address=None,
                                  silence_logs=40) as cluster:
        remote = run_batch(inputs, out_dir=tmp_path / "dask", options=RunOptions(
            scheduler=cluster.scheduler_address, isochrones=False))
    assert sorted(remote.computed) == ["ZA", "ZB"] and remote.cached == []
    assert remote.manifest["executor"].startswith("dask tcp://127.0.0.1:")
    assert set(local.tables) == set(remote.tables)
    for name, df in local.tables.items():
        pd.testing.assert_frame_equal(df, remote.tables[name])
    for csv in sorted((tmp_path / "local" / "tables").glob("*.csv")):
        assert csv.read_bytes() == (tmp_path / "dask" / "tables" / csv.name).read_bytes()


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    import coverage.batch.executors
    from coverage.errors import CoverageError

    monkeypatch.setattr(coverage.batch.executors, "DASK_CONNECT_TIMEOUT_S", 2.0)
    with pytest.raises(CoverageError, match="ordonnanceur Dask injoignable"):
        run_batch(load_inputs(), out_dir=tmp_path / "o",
                  options=RunOptions(scheduler="tcp://127.0.0.1:9", isochrones=False))
    assert not (tmp_path / "o").exists()


def test_missing_dask_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without dask.distributed, a --scheduler run says which extra to install."""
    import builtins

    from coverage.batch import executors
    from coverage.errors import CoverageError

    real_import = builtins.__import__

    def no_distributed(name: str, *args: object, **kwargs: object) -> object:
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(CoverageError, match=r"extra « dask »"):
        executors._dask_client("tcp://127.0.0.1:1")
