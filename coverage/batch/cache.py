"""The per-partition cache and the keys of a run.

A partition is computed unless the cache ``<out>/.cache/partitions/`` already holds it. The
cache key is a SHA-256 of the partition's commune rows, its service rows, the engine and its
parameters (and the road file's SHA-256), the settings that shape travel times, and the code
version (package version + the source of the modules that compute times,
:func:`keyed_modules`). The thresholds are not part of it: travel times do not depend on
them.

Each entry also records its **context** (the key without the services) and the row hashes
of its services, and ``services.parquet`` holds the run's service rows: a partition whose
context is unchanged but whose services changed is then updated incrementally by the run
(:func:`cache_previous`, :mod:`coverage.scenario`) instead of recomputed. The keys
themselves are unchanged.

A killed run leaves finished partitions in the cache and no half-written file
(:func:`clean_stale_temps` removes the temporary files of interrupted writes); rerunning the
same command resumes from there and gives the same outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import shapely

import coverage.batch.executors
import coverage.batch.partitions
import coverage.batch.proxy_inputs
from coverage import geo, scenario, schemas, whitezones
from coverage._version import __version__
from coverage.batch.partitions import EngineSpec, PartitionOutput
from coverage.errors import CoverageError
from coverage.files import atomic_path, sha256_file, write_text_atomic
from coverage.results import CACHE_DIR, TABLES_DIR
from coverage.routing import base, imported, landmass, matrix, network, proxy, road

__all__ = [
    "PARTITIONS_DIR",
    "SERVICES_FILE",
    "SERVICE_HASH_COLUMN",
    "PreviousPartition",
    "cache_previous",
    "cache_read",
    "cache_table",
    "cache_write",
    "clean_stale_temps",
    "code_version",
    "file_sha256",
    "frame_digest",
    "geometry_digests",
    "json_digest",
    "keyed_modules",
    "partition_key",
    "row_hashes",
    "rows_digest",
    "services_read",
    "services_write",
]

log = logging.getLogger(__name__)

#: Folder of the partition cache inside ``<out>/.cache``.
PARTITIONS_DIR = "partitions"
#: The run's service rows in the partition cache (:func:`services_write`).
SERVICES_FILE = "services.parquet"
#: Column of the row hashes in :data:`SERVICES_FILE`.
SERVICE_HASH_COLUMN = "_row_hash"
_TMP_RE = re.compile(r"^\.(?P<stem>.+?)\.[^.]+\.tmp")
#: Settings fields that do not change travel times (left out of the partition key).
_NOT_IN_PARTITION_KEY = ("thresholds_min", "secrecy_threshold", "max_input_bytes",
                         "service_types")


# --- Hashing -------------------------------------------------------------------------------

def json_digest(obj: Any) -> str:
    """Return the SHA-256 (hex) of ``obj`` as sorted JSON (``str`` for other values)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


#: Digest of a missing geometry in :func:`geometry_digests` (no WKB is empty).
_NO_GEOMETRY = hashlib.blake2b(b"", digest_size=16).digest()


def geometry_digests(geometry: Any) -> list[bytes]:
    """Return a 16-byte BLAKE2b digest of each geometry's WKB (a fixed one when missing).

    Parameters
    ----------
    geometry
        A GeoSeries, GeometryArray or array of shapely geometries (any CRS).
    """
    wkbs = shapely.to_wkb(np.asarray(geometry), hex=False)
    return [_NO_GEOMETRY if w is None else hashlib.blake2b(w, digest_size=16).digest()
            for w in wkbs]


def frame_digest(df: pd.DataFrame, *, geometry: Sequence[bytes] | None = None) -> str:
    """Return the SHA-256 of a frame's content: column names, dtypes, values (geometry as WKB).

    Row order matters; the index does not. ``geometry`` gives the
    :func:`geometry_digests` of the geometry column when already known (the same digest
    results, without making the WKB again).
    """
    h = hashlib.sha256()
    for col in df.columns:
        s = df[col]
        h.update(f"{col}:{s.dtype}".encode())
        if isinstance(s, gpd.GeoSeries) or str(s.dtype) == "geometry":
            rows = geometry if geometry is not None else geometry_digests(s.values)
            if len(rows) != len(s):
                msg = "internal: frame_digest got geometry digests of another length"
                raise CoverageError(msg)
            h.update(b"".join(rows))
        else:
            h.update(pd.util.hash_pandas_object(s, index=False).to_numpy().tobytes())
    return h.hexdigest()


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Return one uint64 hash per row of the (non-geometry) columns, vectorised."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def rows_digest(columns: Iterable[str], dtypes: Iterable[Any], hashes: np.ndarray) -> str:
    """Return the SHA-256 of some rows: column names, dtypes and their :func:`row_hashes`."""
    h = hashlib.sha256(json.dumps([list(columns), [str(d) for d in dtypes]]).encode())
    h.update(np.ascontiguousarray(hashes).tobytes())
    return h.hexdigest()


def keyed_modules() -> tuple[ModuleType, ...]:
    """Return the imported modules whose source is part of the cache key.

    They are module *objects*, imported at the top of this module: moving or renaming one
    breaks the import (loudly) instead of silently dropping it from the key. They are the
    batch modules that shape a partition's table (its services, its computation, its cache),
    the engines, the stages and the contracts.
    """
    return (coverage.batch.partitions, coverage.batch.proxy_inputs, coverage.batch.executors,
            sys.modules[__name__], geo, base, network, matrix, proxy, road, imported, landmass,
            whitezones, scenario, schemas)


def code_version(modules: Sequence[ModuleType] | None = None) -> str:
    """Return the package version plus a digest of the modules that compute times and tables.

    Each module contributes its dotted name and the bytes of its source file, so a change, a
    move or a rename of a keyed module changes the key.

    Parameters
    ----------
    modules
        The keyed modules (default: :func:`keyed_modules`).

    Raises
    ------
    CoverageError
        When a keyed module has no readable source file.
    """
    h = hashlib.sha256(__version__.encode())
    for module in keyed_modules() if modules is None else modules:
        source = getattr(module, "__file__", None)
        try:
            data = Path(source).read_bytes() if source else None
        except OSError:
            data = None
        if data is None:
            msg = (f"la clé du cache ne peut pas lire la source du module {module.__name__} "
                   f"({source}) ; réinstallez le paquet")
            raise CoverageError(msg)
        h.update(module.__name__.encode() + b"\x00" + data)
    return f"{__version__}+{h.hexdigest()[:12]}"


def file_sha256(path: Path, memo_file: Path | None) -> str:
    """Return the SHA-256 of a file, memoised on (path, size, mtime) in ``memo_file``."""
    st = path.stat()
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo: dict[str, str] = {}
    if memo_file is not None and memo_file.exists():
        try:
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            memo = {}
    if stamp in memo:
        return memo[stamp]
    digest = sha256_file(path)
    if memo_file is not None:
        memo[stamp] = digest
        write_text_atomic(memo_file, json.dumps(memo, indent=1, sort_keys=True))
    return digest


def partition_key(communes_digest: str, services_digest: str, dept: str, spec: EngineSpec,
                  roads_sha: str | None, types: Sequence[str], version: str) -> str:
    """Return the cache key of a partition (see the module docstring).

    Parameters
    ----------
    communes_digest, services_digest
        :func:`rows_digest` of the partition's communes and services.
    dept
        Département code.
    spec
        The engine (its name and the settings that shape travel times).
    roads_sha
        SHA-256 of the road file (road engine), else None.
    types
        Service types of the run.
    version
        :func:`code_version`.
    """
    settings = {k: v for k, v in spec.settings.as_dict().items()
                if k not in _NOT_IN_PARTITION_KEY}
    return json_digest({
        "dept": dept, "version": version, "engine": spec.name, "roads_sha256": roads_sha,
        "settings": settings, "types": list(types), "communes": communes_digest,
        "services": services_digest,
        # only for the matrice engine: the keys of road and proxy runs stay as they were
        **({"times_sha256": spec.times_sha256} if spec.times_sha256 else {}),
        # only with ferry links (proxy): the keys of runs without links stay as they were
        **({"liaisons": spec.ferries.as_dict()} if spec.ferries and spec.ferries.links else {}),
    })


# --- Cache ---------------------------------------------------------------------------------

def _cache_paths(cache: Path, dept: str, key: str) -> tuple[Path, Path]:
    """Return the table and metadata files of a cache entry."""
    stem = f"{dept}-{key[:20]}"
    return cache / f"{stem}{_TABLE_SUFFIX}", cache / f"{stem}.json"


#: Suffix of an entry's table: an Arrow IPC file, uncompressed (a partition's table is
#: small, and a Parquet write costs about twice the CPU).
_TABLE_SUFFIX = ".arrow"


def _plain_column(s: pd.Series) -> bool:
    """Return whether a column converts to Arrow and back without pandas' metadata.

    numpy bool, int64 and float64 columns, and text (``str``, Arrow-backed, NaN missing).
    """
    dtype = s.dtype
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow" and dtype.na_value is np.nan
    return isinstance(dtype, np.dtype) and dtype in (np.bool_, np.int64, np.float64)


def _write_arrow(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as an Arrow IPC file (atomically); :func:`_read_arrow` reads it back.

    A frame of plain columns (:func:`_plain_column`) under a RangeIndex from 0 is written
    column by column, without pandas' metadata (its text columns already are Arrow
    arrays); any other frame goes through ``pyarrow.Table.from_pandas``, which records the
    dtypes in the schema so that they come back as they were.
    """
    columns = list(df.items())
    plain = (isinstance(df.index, pd.RangeIndex) and df.index.start == 0
             and df.index.step == 1 and df.columns.is_unique
             and all(isinstance(c, str) and _plain_column(s) for c, s in columns))
    if plain:
        table = pa.table([s.array.__arrow_array__() if isinstance(s.dtype, pd.StringDtype)
                          else pa.array(s.to_numpy())  # NaN kept as a value, not null
                          for _, s in columns], names=[c for c, _ in columns])
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, \
            pa_ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_arrow(path: Path) -> pd.DataFrame:
    """Return the frame :func:`_write_arrow` wrote (OSError, ValueError when unreadable)."""
    with pa.OSFile(str(path), "rb") as source:
        table = pa_ipc.open_file(source).read_all()
    return table.to_pandas()


def cache_read(cache: Path, dept: str, key: str, *, table: bool = True
               ) -> PartitionOutput | None:
    """Return the cached output of a partition, or None when absent, stale or unreadable.

    With ``table=False`` its table is not read: ``access`` is an empty frame (the run
    reads it only when it needs it, :func:`cache_table`).
    """
    data, meta = _cache_paths(cache, dept, key)
    if not (data.exists() and meta.exists()):
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("key") != key:
            return None
        access = _read_arrow(data) if table else pd.DataFrame()
    except (OSError, ValueError) as exc:
        log.warning("entrée de cache %s illisible (%s) : recalculée", data.name, exc)
        return None
    return PartitionOutput(dept, key, access, float(info.get("seconds", 0.0)),
                           dict(info.get("engine_parameters", {})))


def cache_table(cache: Path, dept: str, key: str) -> pd.DataFrame:
    """Return the table of a cache entry found by :func:`cache_read` (``table=False``).

    Raises
    ------
    CoverageError
        The entry vanished or cannot be read since (the run holds the folder's lock).
    """
    data, _ = _cache_paths(cache, dept, key)
    try:
        return _read_arrow(data)
    except (OSError, ValueError) as exc:
        msg = (f"entrée de cache {data.name} illisible ({exc}) : relancez le calcul avec "
               "--no-cache")
        raise CoverageError(msg) from exc


def cache_write(cache: Path, out: PartitionOutput, *, context: str | None = None,
                service_hashes: np.ndarray | None = None) -> None:
    """Write a partition's output atomically (table first, metadata last).

    Entries of older keys of the same département are removed. ``context`` (the key
    without the services) and ``service_hashes`` (row hashes of the partition's services)
    let the next run update the partition incrementally (:func:`cache_previous`).
    """
    data, meta = _cache_paths(cache, out.dept, out.key)
    _write_arrow(out.access, data)
    extra: dict[str, Any] = {}
    if context and service_hashes is not None:
        extra = {"context": context,
                 "service_hashes": [f"{int(h):016x}" for h in service_hashes]}
    write_text_atomic(meta, json.dumps({
        "dept": out.dept, "key": out.key, "seconds": round(out.seconds, 4),
        "engine_parameters": out.engine_parameters, **extra}, ensure_ascii=False, indent=1,
        default=str))
    prefix = f"{out.dept}-"  # entries of older keys of this département
    for name in os.listdir(cache):
        if name.startswith(prefix) and name not in (data.name, meta.name):
            (cache / name).unlink(missing_ok=True)


@dataclass(frozen=True)
class PreviousPartition:
    """A département's cache entry of an earlier key, with what it was computed from.

    Attributes
    ----------
    output
        Its ``acces_communes`` rows and metadata.
    context
        Its key without the services (:class:`coverage.batch.partitions.PartitionTask`).
    service_hashes
        Row hashes of its services.
    """

    output: PartitionOutput
    context: str
    service_hashes: np.ndarray


def cache_previous(cache: Path, dept: str) -> PreviousPartition | None:
    """Return the département's entry of another key (None when absent or unreadable).

    Only entries that recorded their context and service hashes (:func:`cache_write`)
    are returned.
    """
    metas = sorted(p for p in cache.glob(f"{dept}-*.json") if not p.name.startswith("."))
    for meta in metas:
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if info.get("dept") != dept or "context" not in info:
            continue
        hit = cache_read(cache, dept, str(info.get("key", "")))
        if hit is not None:
            hashes = np.array([int(h, 16) for h in info.get("service_hashes", [])],
                              dtype=np.uint64)
            return PreviousPartition(hit, str(info["context"]), hashes)
    return None


def services_write(cache: Path, services: pd.DataFrame, hashes: np.ndarray) -> None:
    """Write the run's service rows (the workers' columns) and their row hashes.

    The next run finds there the services of each cached partition
    (:func:`services_read`).
    """
    frame = pd.DataFrame(services).assign(**{SERVICE_HASH_COLUMN: hashes.astype(np.uint64)})
    with atomic_path(cache / SERVICES_FILE) as tmp:
        frame.to_parquet(tmp, index=False)


def services_read(cache: Path) -> pd.DataFrame | None:
    """Return the service rows :func:`services_write` stored (None when absent).

    The row hashes are in the column ``_row_hash``.
    """
    path = cache / SERVICES_FILE
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        log.warning("%s illisible (%s) : partitions entièrement recalculées", path.name, exc)
        return None


def _own_stems() -> frozenset[str]:
    """Return the names (without suffix) of the files a run writes in its folder."""
    return frozenset({*schemas.OUTPUT_CONTRACTS, "manifest", "communes", "services", "isochrones"})


def clean_stale_temps(out_dir: Path) -> None:
    """Remove temporary files left by a killed run (hidden ``.<name>.*.tmp*`` files).

    In ``.cache`` (the tool's own folder) every such file goes; in the run folder and its
    ``tables/`` only those of the files a run writes (``.acces_communes.x1y2.tmp.csv``),
    never a user's file that merely looks alike (``.brouillon.tmp.txt``).
    """
    own = _own_stems()
    for folder, everything in ((out_dir, False), (out_dir / TABLES_DIR, False),
                               (out_dir / CACHE_DIR, True),
                               (out_dir / CACHE_DIR / PARTITIONS_DIR, True)):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            m = _TMP_RE.match(p.name)
            if p.is_file() and m and (everything or m.group("stem") in own):
                log.info("removing %s left by an interrupted run", p)
                p.unlink(missing_ok=True)
