"""The run's manifest: what a run records, and the reuse of unchanged outputs.

Every file of a run is written into a staging folder and switched into place
(:mod:`coverage.batch.folder`), ``manifest.json`` last: a folder with a manifest holds a
finished run (layout in :mod:`coverage.results`). The manifest records the SHA-256 and size
of every output (``outputs``), which :class:`coverage.results.RunOutputs` checks. The
manifest records the inputs (path, SHA-256, bytes), the engine and its parameters, the
départements, types, thresholds (minutes) and settings, each partition's key and timing, the
cross-border rule, the executor, the tables and isochrone files written, the code version,
the library versions and the run key. When nothing changed since the previous run in the
same folder (same run key, every output present), the outputs are left as they are.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from coverage._version import __version__
from coverage.batch.partitions import PartitionOutput, PartitionTask
from coverage.demo import demo_paths
from coverage.files import write_text_atomic
from coverage.io.inputs import Inputs
from coverage.labels import FICTIONAL_LABEL, OTHER_FICTIONAL_LABEL
from coverage.results import (
    CACHE_DIR,
    COMMUNES_FILE,
    ISOCHRONES_FILE,
    MANIFEST,
    OUTPUTS_KEY,
    SERVICES_FILE,
    TABLES_DIR,
    RunFolderError,
    check_outputs,
    output_digests,
)
from coverage.schemas import OUTPUT_CONTRACT_VERSION
from coverage.settings import REPO_ROOT, Settings

__all__ = [
    "CROSS_BORDER_RULE",
    "ISOCHRONES_GEOJSON_DIR",
    "RunRecord",
    "fictional_label",
    "partitions_record",
    "relative_path",
    "remove_stale_geojson",
    "reusable_outputs",
    "versions",
    "write_manifest",
]

#: Folder of the run holding the isochrone layers as GeoJSON (``--isochrones-geojson``).
ISOCHRONES_GEOJSON_DIR = "isochrones_geojson"
#: How a partition picks its services across the border (see :mod:`coverage.batch.partitions`).
CROSS_BORDER_RULE = ("proxy: services within the buffer (or the farthest nearest-service "
                     "distance) of the département's communes; road: whole network and all "
                     "services")
log = logging.getLogger(__name__)

_LIBRARIES = ("numpy", "pandas", "geopandas", "shapely", "pyproj", "scipy", "pyarrow",
              "networkx", "osmium", "dask", "distributed")


def versions() -> dict[str, str]:
    """Return the versions of Python, zones-blanches and the installed libraries."""
    out = {"python": platform.python_version(), "zones-blanches": __version__}
    for pkg in _LIBRARIES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def fictional_label(inputs: Inputs | None = None) -> str:
    """Return the demo's label when the communes are the embedded demo's, else a generic one.

    Parameters
    ----------
    inputs
        Fictional inputs (their ``paths["communes"]`` is compared with the demo's file);
        None gives the demo's label.
    """
    paths = getattr(inputs, "paths", None) or {}
    communes_path = paths.get("communes", "")
    if inputs is not None and communes_path and \
            Path(communes_path).resolve() != demo_paths().communes.resolve():
        return OTHER_FICTIONAL_LABEL
    return FICTIONAL_LABEL


def relative_path(path: str | Path) -> str:
    """Return ``path`` relative to the repository when it is inside, else absolute."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def _expected_outputs(out_dir: Path, tables: Sequence[str], isochrones: bool,
                      geojson: Sequence[str] = ()) -> list[Path]:
    """Return the files a finished run with these tables and isochrones holds."""
    files = [out_dir / COMMUNES_FILE, out_dir / SERVICES_FILE]
    for name in tables:
        files += [out_dir / TABLES_DIR / f"{name}{ext}"
                  for ext in (".csv", ".parquet", ".schema.json")]
    if isochrones:
        files.append(out_dir / ISOCHRONES_FILE)
    files += [out_dir / g for g in geojson]
    return files


def _previous_manifest(out_dir: Path) -> dict[str, Any] | None:
    """Return the manifest of the run already in ``out_dir``, or None."""
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError):
        return None


def reusable_outputs(out_dir: Path, run_key: str
                     ) -> tuple[dict[str, Any], dict[str, pd.DataFrame]] | None:
    """Return the previous run's manifest and tables when they can be kept as they are.

    Parameters
    ----------
    out_dir
        Run folder.
    run_key
        Key of the run about to be made.

    Returns
    -------
    tuple or None
        The manifest and the tables by name when the previous run in ``out_dir`` has the
        same run key and all its outputs; None otherwise.
    """
    previous = _previous_manifest(out_dir)
    if previous is None or previous.get("run_key") != run_key:
        return None
    expected = _expected_outputs(out_dir, previous.get("tables", []),
                                 bool(previous.get("isochrones_file")),
                                 previous.get("isochrones_geojson") or ())
    if not all(p.exists() for p in expected):
        return None
    try:
        check_outputs(out_dir, previous)
    except RunFolderError as exc:
        log.info("previous outputs not reused: %s", exc)
        return None
    tables = {name: pd.read_parquet(out_dir / TABLES_DIR / f"{name}.parquet")
              for name in previous.get("tables", [])}
    return previous, tables


def remove_stale_geojson(out_dir: Path) -> None:
    """Remove the GeoJSON layers of an earlier run (this run writes none)."""
    folder = out_dir / ISOCHRONES_GEOJSON_DIR
    if not folder.is_dir():
        return
    for path in folder.glob("isochrones_*.geojson"):
        path.unlink()
    with contextlib.suppress(OSError):  # other files there: not ours to remove
        folder.rmdir()


def partitions_record(tasks: Sequence[PartitionTask],
                      outputs: Mapping[str, PartitionOutput], cached: Sequence[str]
                      ) -> dict[str, dict[str, Any]]:
    """Return the manifest's ``partitions`` entry: key, sizes, cache hit and seconds."""
    return {
        t.dept: {"key": t.key, "communes": len(t.communes), "services": len(t.services),
                 "cached": t.dept in cached, "seconds": round(outputs[t.dept].seconds, 4)}
        for t in tasks}


@dataclass(frozen=True)
class RunRecord:
    """What the manifest of a run records (one field per manifest entry).

    Attributes
    ----------
    fictif
        True on fictional inputs; ``fictional_label`` then names them.
    engine, engine_parameters
        ``road`` or ``proxy`` and the engine's parameters.
    depts, types, thresholds_min, settings
        The run's départements, service types, thresholds (minutes) and settings.
    inputs
        Input name → ``path``, ``sha256``, ``bytes``.
    partitions
        :func:`partitions_record`.
    buffer_km
        Cross-border search distance, km (:func:`coverage.batch.partitions.buffer_km`).
    scheduler
        Dask scheduler address, or None (local executor).
    tables, isochrones_file, isochrones_geojson
        The files written (table names; GeoPackage name or None; GeoJSON paths).
    code_version, run_key
        :func:`coverage.batch.cache.code_version` and the key of the whole run.
    timings
        Seconds per stage.
    warnings
        Warnings of the input loaders.
    avertissements
        French warnings for the user: empty offers, a type with no service in the list or
        none in a département of the run (``proxy_inputs.empty_offer_warnings``).
    """

    fictif: bool
    fictional_label: str | None
    engine: str
    engine_parameters: dict[str, Any]
    depts: list[str]
    types: tuple[str, ...]
    thresholds_min: tuple[float, ...]
    settings: Settings
    inputs: dict[str, dict[str, Any]]
    partitions: dict[str, dict[str, Any]]
    buffer_km: float
    scheduler: str | None
    tables: list[str]
    isochrones_file: str | None
    isochrones_geojson: list[str]
    code_version: str
    run_key: str
    timings: dict[str, float]
    warnings: list[str]
    avertissements: list[str] = field(default_factory=list)

    def as_manifest(self) -> dict[str, Any]:
        """Return the manifest's content (stamped with the current UTC time)."""
        return {
            "format": "zones-blanches-run",
            "output_contract_version": OUTPUT_CONTRACT_VERSION,
            "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fictif": self.fictif,
            "fictional_label": self.fictional_label,
            "engine": {"name": self.engine, "parameters": self.engine_parameters},
            "depts": self.depts,
            "types": list(self.types),
            "thresholds_min": list(self.thresholds_min),
            "parameters": self.settings.as_dict(),
            "inputs": self.inputs,
            "partitions": self.partitions,
            "cross_border": {"buffer_km": round(self.buffer_km, 3), "rule": CROSS_BORDER_RULE},
            "executor": ("dask " + self.scheduler) if self.scheduler else "local",
            "tables": self.tables,
            "isochrones_file": self.isochrones_file,
            "isochrones_geojson": self.isochrones_geojson or None,
            "code_version": self.code_version,
            "versions": versions(),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "run_key": self.run_key,
            "warnings": self.warnings,
            "avertissements": self.avertissements,
        }


def write_manifest(out_dir: Path, record: RunRecord) -> dict[str, Any]:
    """Write ``<out_dir>/manifest.json`` atomically (the run's last file); return its content.

    The manifest records the SHA-256 and size of every output file (entry ``outputs``):
    those the record names, and any other file written in ``out_dir`` (the run's staging
    folder, :mod:`coverage.batch.folder`).
    """
    manifest = record.as_manifest()
    files = _expected_outputs(out_dir, record.tables, bool(record.isochrones_file),
                              record.isochrones_geojson)
    files += [p for p in out_dir.rglob("*") if p.is_file() and p.name != MANIFEST
              and CACHE_DIR not in p.relative_to(out_dir).parts]
    manifest[OUTPUTS_KEY] = output_digests(
        out_dir, [p.relative_to(out_dir).as_posix() for p in files])
    write_text_atomic(out_dir / MANIFEST,
                      json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n")
    return manifest
