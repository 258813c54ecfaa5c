"""The rerunnable batch: partitions by département, cache, manifest, local or Dask executors.

A run (:func:`run_batch`) checks its options, then partitions, computes, aggregates and
writes, ``manifest.json`` last. Each step has its module:

- :mod:`coverage.batch.partitions` — one partition per département, with the services its
  families may use across the border (straight-line buffer, km);
- :mod:`coverage.batch.cache` — the per-partition cache ``<out>/.cache/partitions/`` and its
  keys (input rows, engine, settings that shape travel times, code version; never the
  thresholds);
- :mod:`coverage.batch.executors` — this process, local worker processes or an existing Dask
  cluster;
- :mod:`coverage.batch.manifest` — what a run records, and the reuse of unchanged outputs;
- :mod:`coverage.batch.folder` — the run folder's lock, the staging folder and the switch
  that puts a finished run in place (whole or absent);
- :mod:`coverage.batch.run` — the sequence check → partition → compute → aggregate → write →
  manifest.

A killed run leaves finished partitions in the cache and no half-written file, and never a
folder mixing two runs; rerunning the same command resumes from there and gives the same
outputs.
"""

from __future__ import annotations

from coverage.batch.cache import code_version, frame_digest, keyed_modules
from coverage.batch.executors import auto_workers
from coverage.batch.manifest import ISOCHRONES_GEOJSON_DIR
from coverage.batch.partitions import EngineSpec, buffer_km, partition_services
from coverage.batch.run import RunOptions, RunResult, run_batch

__all__ = [
    "ISOCHRONES_GEOJSON_DIR",
    "EngineSpec",
    "RunOptions",
    "RunResult",
    "auto_workers",
    "buffer_km",
    "code_version",
    "frame_digest",
    "keyed_modules",
    "partition_services",
    "run_batch",
]
