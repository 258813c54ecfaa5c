"""Executors: where the partitions are computed.

Each partition is computed by the run's engine (:func:`coverage.scenario.access_rows`:
``nearest`` → :func:`coverage.whitezones.access_table`, minutes, NaN when unreachable,
``moteur`` on every row), built once per process from its
:class:`~coverage.batch.partitions.EngineSpec`.

Executors: local processes (:class:`concurrent.futures.ProcessPoolExecutor`, ``workers``,
spawn context), in this process when ``workers=1`` or when processes would cost more than they
save (:func:`auto_workers`: proxy runs and road runs of fewer than four partitions), or an
existing Dask distributed cluster (``scheduler="tcp://HOST:PORT"``, the ``dask`` extra).
Workers return the partition table to the driver, which writes the cache: Dask workers need
no shared file system.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from coverage.batch.partitions import EngineSpec, PartitionOutput, PartitionTask
from coverage.errors import CoverageError, os_error_cause
from coverage.routing import Engine, make_engine
from coverage.scenario import access_rows

__all__ = [
    "DASK_CONNECT_TIMEOUT_S",
    "MIN_PARTITIONS_FOR_PROCESSES",
    "auto_workers",
    "check_scheduler",
    "engine_for",
    "execute",
    "run_partition",
]

#: Road runs with at least this many partitions to compute use worker processes by default.
MIN_PARTITIONS_FOR_PROCESSES = 4
#: Seconds to wait for the Dask scheduler before giving up.
DASK_CONNECT_TIMEOUT_S = 20.0

_ENGINES: dict[str, Engine] = {}


def engine_for(spec: EngineSpec) -> Engine:
    """Return the engine of ``spec``, built once per process.

    Parameters
    ----------
    spec
        Engine name, road file, network cache folder and settings.
    """
    key = spec.memo_key()
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(spec.name, spec.roads, spec.settings,
                                    cache_dir=spec.cache_dir, times=spec.times,
                                    times_unit=spec.times_unit, ferries=spec.ferries)
    return _ENGINES[key]


def run_partition(task: PartitionTask) -> PartitionOutput:
    """Compute one partition (in a worker: local process, Dask worker or in-process).

    Parameters
    ----------
    task
        The partition's communes and services (``lon``/``lat`` in EPSG:4326) and engine.

    Returns
    -------
    PartitionOutput
        The ``acces_communes`` rows (minutes, NaN when unreachable), the seconds it took
        and the engine's parameters.
    """
    t0 = time.perf_counter()
    engine = engine_for(task.engine)
    access = access_rows(engine, task.communes, task.services, task.types)
    return PartitionOutput(task.dept, task.key, access, time.perf_counter() - t0,
                           engine.parameters())


def auto_workers(engine: str, n_partitions: int) -> int:
    """Return the local worker processes chosen when ``workers`` is not given.

    Starting a worker process (spawn, imports, engine) costs one to three seconds here; a
    proxy partition takes milliseconds and a road partition on a small network a fraction of
    a second. So: the CPU count for road runs of at least
    :data:`MIN_PARTITIONS_FOR_PROCESSES` partitions, else 1 (in this process). Measured in
    ``benchmarks/README.md``.
    """
    if engine == "road" and n_partitions >= MIN_PARTITIONS_FOR_PROCESSES:
        return os.cpu_count() or 1
    return 1


def execute(tasks: list[PartitionTask], *, scheduler: str | None, workers: int | None
            ) -> Iterator[PartitionOutput]:
    """Run the tasks; yield their outputs as they complete.

    Parameters
    ----------
    tasks
        The partitions to compute.
    scheduler
        ``tcp://HOST:PORT`` of an existing Dask scheduler, or None (local).
    workers
        Local worker processes (None: :func:`auto_workers`; 1: in this process).
    """
    if not tasks:
        return
    if scheduler:
        yield from _execute_dask(tasks, scheduler)
        return
    n = workers if workers is not None else auto_workers(tasks[0].engine.name, len(tasks))
    n = max(1, min(n, len(tasks)))
    if n == 1:
        for task in tasks:
            yield run_partition(task)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        futures = [pool.submit(run_partition, t) for t in tasks]
        for fut in as_completed(futures):
            yield fut.result()


def _dask_client(scheduler: str) -> Any:
    """Return a client of the existing Dask scheduler at ``scheduler`` (CoverageError if none)."""
    try:
        from distributed import Client
    except ImportError as exc:
        msg = ("--scheduler a besoin de dask.distributed : installez l'extra « dask » "
               "(pip install \"zones-blanches[dask]\", ou \"dask[distributed]\")")
        raise CoverageError(msg) from exc
    if not str(scheduler).startswith(("tcp://", "tls://")):
        msg = f"--scheduler expects tcp://HOST:PORT, got {scheduler!r}"
        raise CoverageError(msg)
    try:
        return Client(scheduler, timeout=f"{DASK_CONNECT_TIMEOUT_S}s", set_as_default=False)
    except OSError as exc:
        msg = f"ordonnanceur Dask injoignable à {scheduler} : {os_error_cause(exc)}"
        raise CoverageError(msg) from exc


def check_scheduler(scheduler: str) -> None:
    """Connect to the Dask scheduler once and close (fail before anything is written).

    Raises
    ------
    CoverageError
        Dask is not installed, the address is not ``tcp://HOST:PORT`` or the scheduler
        cannot be reached within :data:`DASK_CONNECT_TIMEOUT_S` seconds.
    """
    _dask_client(scheduler).close()


def _execute_dask(tasks: list[PartitionTask], scheduler: str) -> Iterator[PartitionOutput]:
    """Run the tasks on the Dask cluster; yield their outputs as they complete."""
    from distributed import as_completed as dask_completed

    client = _dask_client(scheduler)
    try:
        futures = [client.submit(run_partition, t, key=f"zb-{t.dept}-{t.key[:16]}",
                                 pure=False) for t in tasks]
        with client.as_current():
            for fut in dask_completed(futures):
                yield fut.result()
    finally:
        client.close()
