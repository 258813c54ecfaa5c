"""The rerunnable batch: partitions by département, cache, manifest, local or Dask executors.

A run (:func:`run`) does, in order:

1. **Check** the arguments (départements, service types, thresholds, engine) before writing
   anything: a bad argument raises :class:`~coverage.errors.CoverageError` and leaves no file.
2. **Partition** the communes by département. A partition holds the département's communes
   and the services a family there may use, including services across the border:

   - ``proxy`` engine: the services within ``B = max threshold / 60 × fastest proxy speed``
     (km, straight line) of one of the département's communes, and, per type, within the
     distance of the farthest commune's nearest service when that is larger. The proxy's
     nearest service in time is its nearest in straight line, so the partition's minutes are
     exactly those of a run on all services, while a change to a far service leaves the
     partition untouched.
   - ``road`` engine: the whole road network of the file given (one network per run, loaded
     once per worker process and cached on disk by :func:`coverage.routing.network.load_network`)
     and all services. Clipping a national network to each département's box plus
     ``B`` (at the fastest road speed) is not done yet: give one network per run.

3. **Compute** each partition (engine ``nearest`` → :func:`coverage.whitezones.access_table`)
   unless the per-partition cache ``<out>/.cache/partitions/`` already holds it. The cache
   key is a SHA-256 of the partition's commune rows, its service rows, the engine and its
   parameters (and the road file's SHA-256), the settings that shape travel times, and the
   code version (package version + the source of the modules that compute times). The
   thresholds are not part of it: travel times do not depend on them.
4. **Aggregate** over all partitions: white zones and coverage tables
   (:mod:`coverage.whitezones`), waiting-list indicators when a waiting file is given,
   isochrones when asked, the communes and services as GeoParquet.
5. **Write** every file atomically (:mod:`coverage.files`), ``manifest.json`` last. When
   nothing changed since the previous run in the same folder (same run key), the outputs are
   left as they are.

A killed run leaves finished partitions in the cache and no half-written file; rerunning the
same command resumes from there and gives the same outputs.

Executors: local processes (:class:`concurrent.futures.ProcessPoolExecutor`, ``workers``,
spawn context), in this process when ``workers=1`` or when processes would cost more than they
save (:func:`auto_workers`: proxy runs and road runs of fewer than four partitions), or an
existing Dask distributed cluster (``scheduler="tcp://HOST:PORT"``). Workers return the
partition table to the driver, which writes the cache: Dask workers need no shared file
system.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from coverage import geo, schemas, whitezones
from coverage._version import __version__
from coverage.cog import normalise_dept
from coverage.errors import CoverageError
from coverage.files import sha256_file, write_text_atomic
from coverage.geo import lonlat_to_xy
from coverage.io.writers import write_geoparquet, write_table
from coverage.progress import progress
from coverage.results import (
    CACHE_DIR,
    COMMUNES_FILE,
    ISOCHRONES_FILE,
    MANIFEST,
    SERVICES_FILE,
    TABLES_DIR,
)
from coverage.routing import network, proxy
from coverage.routing import road as traveltime
from coverage.schemas import (
    ACCES_COMMUNES,
    OUTPUT_CONTRACT_VERSION,
    OUTPUT_CONTRACTS,
    ZONES_BLANCHES,
)
from coverage.settings import (
    CRS_INPUT_OUTPUT,
    NO_SERVICE,
    REPO_ROOT,
    Settings,
    metric_crs_for,
)
from coverage.whitezones import access_table, coverage_tables, white_zones

log = logging.getLogger(__name__)

_PARTITIONS_DIR = "partitions"
_TMP_RE = re.compile(r"^\..+\.tmp")
#: Settings fields that do not change travel times (left out of the partition key).
_NOT_IN_PARTITION_KEY = ("thresholds_min", "secrecy_threshold", "max_input_bytes",
                         "service_types")
WAITING_TABLE = "listes_attente_departements"
#: Road runs with at least this many partitions to compute use worker processes by default.
MIN_PARTITIONS_FOR_PROCESSES = 4
#: Seconds to wait for the Dask scheduler before giving up.
DASK_CONNECT_TIMEOUT_S = 20.0


# --- Data classes --------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineSpec:
    """How a worker builds the run's engine (picklable, cheap to send).

    Attributes
    ----------
    name
        ``road`` or ``proxy``.
    roads
        Road file (road engine), as a string path.
    cache_dir
        Network cache folder of :func:`coverage.routing.network.load_network`.
    settings
        Run settings.
    """

    name: str
    roads: str | None
    cache_dir: str | None
    settings: Settings

    def __post_init__(self) -> None:
        # Settings hold read-only mappings (MappingProxyType), which do not pickle: give the
        # workers plain dicts with the same values.
        plain: dict[str, Any] = {f.name: dict(getattr(self.settings, f.name))
                                 for f in fields(Settings)
                                 if isinstance(getattr(self.settings, f.name), Mapping)}
        object.__setattr__(self, "settings", replace(self.settings, **plain))

    def memo_key(self) -> str:
        """Key of the per-process engine memo."""
        return json.dumps([self.name, self.roads, self.cache_dir, self.settings.as_dict()],
                          sort_keys=True, default=str)


@dataclass(frozen=True)
class PartitionTask:
    """One département's work: its communes, the services it may use, the engine."""

    dept: str
    key: str
    communes: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    types: tuple[str, ...]
    engine: EngineSpec


@dataclass(frozen=True)
class PartitionOutput:
    """What a worker sends back: the partition's ``acces_communes`` rows and metadata."""

    dept: str
    key: str
    access: pd.DataFrame
    seconds: float
    engine_parameters: dict[str, Any]


@dataclass
class RunResult:
    """Result of :func:`run`.

    Attributes
    ----------
    out_dir
        Run folder (layout in :mod:`coverage.results`).
    manifest
        The manifest written (or kept) in ``out_dir/manifest.json``.
    tables
        Output tables by contract name.
    engine
        ``road`` or ``proxy``.
    fictif
        True on the fictional demo territory.
    computed, cached
        Départements computed in this run, and taken from the cache.
    reused
        True when nothing changed since the previous run in ``out_dir``: the outputs were
        left as they were.
    timings
        Seconds per stage.
    """

    out_dir: Path
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    engine: str
    fictif: bool
    computed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    reused: bool = False
    timings: dict[str, float] = field(default_factory=dict)


# --- Hashing -------------------------------------------------------------------------------

def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def frame_digest(df: pd.DataFrame) -> str:
    """SHA-256 of a frame's content: column names, dtypes, values (geometry as WKB).

    Row order matters; the index does not.
    """
    h = hashlib.sha256()
    for col in df.columns:
        s = df[col]
        h.update(f"{col}:{s.dtype}".encode())
        if isinstance(s, gpd.GeoSeries) or str(s.dtype) == "geometry":
            for wkb in shapely.to_wkb(np.asarray(s.values), hex=False):
                h.update(b"\x00" if wkb is None else wkb)
        else:
            h.update(pd.util.hash_pandas_object(s, index=False).to_numpy().tobytes())
    return h.hexdigest()


def keyed_modules() -> tuple[ModuleType, ...]:
    """The imported modules whose source is part of the cache key.

    They are module *objects*, imported at the top of this module: moving or renaming one
    breaks the import (loudly) instead of silently dropping it from the key.
    """
    return (sys.modules[__name__], geo, network, proxy, traveltime, whitezones, schemas)


def code_version(modules: Sequence[ModuleType] | None = None) -> str:
    """Package version plus a digest of the modules that compute travel times and tables.

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
            msg = (f"the cache key cannot read the source of module {module.__name__!r} "
                   f"({source}); reinstall the package")
            raise CoverageError(msg)
        h.update(module.__name__.encode() + b"\x00" + data)
    return f"{__version__}+{h.hexdigest()[:12]}"


def _file_sha256(path: Path, memo_file: Path | None) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime) in ``memo_file``."""
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


# --- Engines in workers --------------------------------------------------------------------

_ENGINES: dict[str, Any] = {}


def _engine_for(spec: EngineSpec) -> Any:
    """The engine of ``spec``, built once per process."""
    key = spec.memo_key()
    if key not in _ENGINES:
        from coverage.routing.road import make_engine

        _ENGINES[key] = make_engine(spec.name, spec.roads, spec.settings,
                                    cache_dir=spec.cache_dir)
    return _ENGINES[key]


def _run_partition(task: PartitionTask) -> PartitionOutput:
    """Compute one partition (runs in a worker: local process, Dask worker or in-process)."""
    t0 = time.perf_counter()
    engine = _engine_for(task.engine)
    if len(task.services):
        nearest = engine.nearest(task.communes, task.services, service_types=task.types)
    else:
        from coverage.routing.road import empty_nearest

        nearest = empty_nearest()
    access = access_table(task.communes, nearest, service_types=task.types, moteur=engine.name)
    return PartitionOutput(task.dept, task.key, access, time.perf_counter() - t0,
                           engine.parameters())


# --- Partitions ----------------------------------------------------------------------------

def _max_speed_kmh(engine: str, settings: Settings) -> float:
    if engine == "proxy":
        return float(max(settings.proxy_speed_kmh_by_density.values()))
    return float(max(settings.default_speeds_kmh.values()))


def buffer_km(engine: str, settings: Settings) -> float:
    """Cross-border search distance of a partition, km: largest threshold × fastest speed.

    Parameters
    ----------
    engine
        ``proxy`` (fastest proxy speed) or ``road`` (fastest default road speed).
    settings
        ``thresholds_min`` (minutes) and the speeds (km/h).
    """
    return settings.max_threshold_min / 60.0 * _max_speed_kmh(engine, settings)


def partition_services(
    communes: pd.DataFrame, services: pd.DataFrame, dept: str, engine: str,
    settings: Settings,
) -> pd.DataFrame:
    """Services a partition needs (see the module docstring for the rule).

    Parameters
    ----------
    communes
        The département's communes (``lon``, ``lat`` in EPSG:4326).
    services
        All services of the run's types (``lon``, ``lat``, ``type_service``).
    dept
        Département code (chooses the metric CRS, :func:`coverage.settings.metric_crs_for`).
    engine
        ``road`` or ``proxy``.
    settings
        Thresholds and speeds.

    Returns
    -------
    pandas.DataFrame
        The selected rows of ``services``, in their original order.
    """
    if engine != "proxy" or services.empty or communes.empty:
        return services
    crs = metric_crs_for(dept)
    c_xy = lonlat_to_xy(communes["lon"].to_numpy(float), communes["lat"].to_numpy(float), crs)
    s_xy = lonlat_to_xy(services["lon"].to_numpy(float), services["lat"].to_numpy(float), crs)
    tree = cKDTree(c_xy)
    d_to_dept, _ = tree.query(s_xy, k=1)
    base_m = buffer_km(engine, settings) * 1000.0
    keep = np.zeros(len(services), dtype=bool)
    types = services["type_service"].astype(str).to_numpy()
    for t in np.unique(types):
        sel = types == t
        far_m = float(cKDTree(s_xy[sel]).query(c_xy, k=1)[0].max())
        radius = max(base_m, far_m) * (1 + 1e-9) + 1.0
        keep |= sel & (d_to_dept <= radius)
    return services[keep]


_COMMUNE_TASK_COLS = ("code_insee", "nom", "code_dep", "population", "densite", "rural",
                      "lon", "lat")
_SERVICE_TASK_COLS = ("service_id", "type_service", "code_insee", "code_dep", "lon", "lat")


def _task_frame(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Light copy for workers: attribute columns only (engines use ``lon``/``lat``)."""
    cols = [c for c in columns if c in frame.columns]
    return pd.DataFrame(frame[cols]).reset_index(drop=True)


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One uint64 hash per row of the (non-geometry) columns, vectorised."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _rows_digest(columns: Iterable[str], dtypes: Iterable[Any], hashes: np.ndarray) -> str:
    h = hashlib.sha256(json.dumps([list(columns), [str(d) for d in dtypes]]).encode())
    h.update(np.ascontiguousarray(hashes).tobytes())
    return h.hexdigest()


def _partition_key(communes_digest: str, services_digest: str, dept: str, spec: EngineSpec,
                   roads_sha: str | None, types: Sequence[str], version: str) -> str:
    settings = {k: v for k, v in spec.settings.as_dict().items()
                if k not in _NOT_IN_PARTITION_KEY}
    return _sha({
        "dept": dept, "version": version, "engine": spec.name, "roads_sha256": roads_sha,
        "settings": settings, "types": list(types), "communes": communes_digest,
        "services": services_digest,
    })


# --- Cache ---------------------------------------------------------------------------------

def _cache_paths(cache: Path, dept: str, key: str) -> tuple[Path, Path]:
    stem = f"{dept}-{key[:20]}"
    return cache / f"{stem}.parquet", cache / f"{stem}.json"


def _cache_read(cache: Path, dept: str, key: str) -> PartitionOutput | None:
    data, meta = _cache_paths(cache, dept, key)
    if not (data.exists() and meta.exists()):
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("key") != key:
            return None
        access = pd.read_parquet(data)
    except (OSError, ValueError) as exc:
        log.warning("cache entry %s unreadable (%s): recomputing", data.name, exc)
        return None
    return PartitionOutput(dept, key, access, float(info.get("seconds", 0.0)),
                           dict(info.get("engine_parameters", {})))


def _cache_write(cache: Path, out: PartitionOutput) -> None:
    data, meta = _cache_paths(cache, out.dept, out.key)
    from coverage.files import atomic_path

    with atomic_path(data) as tmp:
        out.access.to_parquet(tmp, index=False)
    write_text_atomic(meta, json.dumps({
        "dept": out.dept, "key": out.key, "seconds": round(out.seconds, 4),
        "engine_parameters": out.engine_parameters}, ensure_ascii=False, indent=1,
        default=str))
    for old in cache.glob(f"{out.dept}-*"):  # entries of older keys of this département
        if old.name not in (data.name, meta.name) and not old.name.startswith("."):
            old.unlink(missing_ok=True)


def _clean_stale_temps(out_dir: Path) -> None:
    """Remove temporary files left by a killed run (hidden ``.<name>.*.tmp*`` files)."""
    for folder in (out_dir, out_dir / TABLES_DIR, out_dir / CACHE_DIR,
                   out_dir / CACHE_DIR / _PARTITIONS_DIR):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and _TMP_RE.match(p.name):
                    log.info("removing %s left by an interrupted run", p)
                    p.unlink(missing_ok=True)


# --- Executors -----------------------------------------------------------------------------

def auto_workers(engine: str, n_partitions: int) -> int:
    """Local worker processes chosen when ``workers`` is not given.

    Starting a worker process (spawn, imports, engine) costs one to three seconds here; a
    proxy partition takes milliseconds and a road partition on a small network a fraction of
    a second. So: the CPU count for road runs of at least
    :data:`MIN_PARTITIONS_FOR_PROCESSES` partitions, else 1 (in this process). Measured in
    ``benchmarks/README.md``.
    """
    if engine == "road" and n_partitions >= MIN_PARTITIONS_FOR_PROCESSES:
        return os.cpu_count() or 1
    return 1


def _execute(tasks: list[PartitionTask], *, scheduler: str | None, workers: int | None
             ) -> Iterator[PartitionOutput]:
    """Run the tasks; yield outputs as they complete."""
    if not tasks:
        return
    if scheduler:
        yield from _execute_dask(tasks, scheduler)
        return
    n = workers if workers is not None else auto_workers(tasks[0].engine.name, len(tasks))
    n = max(1, min(n, len(tasks)))
    if n == 1:
        for task in tasks:
            yield _run_partition(task)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        futures = [pool.submit(_run_partition, t) for t in tasks]
        for fut in as_completed(futures):
            yield fut.result()


def _dask_client(scheduler: str) -> Any:
    """A client of the existing Dask scheduler at ``scheduler`` (CoverageError if none)."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        msg = "--scheduler needs dask.distributed (pip install 'dask[distributed]')"
        raise CoverageError(msg) from exc
    if not str(scheduler).startswith(("tcp://", "tls://")):
        msg = f"--scheduler expects tcp://HOST:PORT, got {scheduler!r}"
        raise CoverageError(msg)
    try:
        return Client(scheduler, timeout=f"{DASK_CONNECT_TIMEOUT_S}s", set_as_default=False)
    except OSError as exc:
        msg = f"cannot reach the Dask scheduler at {scheduler}: {exc}"
        raise CoverageError(msg) from exc


def _execute_dask(tasks: list[PartitionTask], scheduler: str) -> Iterator[PartitionOutput]:
    from distributed import as_completed as dask_completed

    client = _dask_client(scheduler)
    try:
        futures = [client.submit(_run_partition, t, key=f"zb-{t.dept}-{t.key[:16]}",
                                 pure=False) for t in tasks]
        with client.as_current():
            for fut in dask_completed(futures):
                yield fut.result()
    finally:
        client.close()


# --- Validation ----------------------------------------------------------------------------

def _check_args(inputs: Any, depts: Sequence[str] | None, types: Sequence[str] | None,
                thresholds: Sequence[float] | None, engine: str | None, settings: Settings
                ) -> tuple[list[str], Settings, str]:
    if types is not None:
        unknown = [t for t in types if t not in settings.service_types]
        if unknown or not types:
            msg = (f"unknown service type(s) {unknown}: expected a comma-separated list of "
                   f"{', '.join(settings.service_types)}")
            raise CoverageError(msg)
        settings = replace(settings, service_types=tuple(dict.fromkeys(types)))
    if thresholds is not None:
        values = [float(t) for t in thresholds]
        if not values or any(not np.isfinite(v) or v <= 0 for v in values):
            msg = f"thresholds must be positive minutes, got {list(thresholds)}"
            raise CoverageError(msg)
        settings = replace(settings, thresholds_min=tuple(sorted(set(values))))
    name = engine if engine is not None else ("road" if inputs.roads is not None else "proxy")
    if name not in ("road", "proxy"):
        msg = f"unknown engine {name!r}: expected 'road' or 'proxy'"
        raise CoverageError(msg)
    if name == "road" and inputs.roads is None:
        msg = ("the road engine needs a road network: give --roads FILE (.osm, .osm.pbf, "
               ".osm.gz/.bz2, .graphml) or use --engine proxy")
        raise CoverageError(msg)
    communes = inputs.communes
    if communes is None or len(communes) == 0:
        msg = "the communes table is empty: nothing to run"
        raise CoverageError(msg)
    available = sorted(set(communes["code_dep"].astype(str)))
    if depts is None:
        chosen = available
    else:
        chosen = list(dict.fromkeys(normalise_dept(d) for d in depts))
        unknown = [d for d in chosen if d not in available]
        if unknown:
            shown = ", ".join(available[:12]) + (" …" if len(available) > 12 else "")
            msg = (f"unknown département code(s) {unknown}: the communes file has {shown} "
                   f"({len(available)} départements)")
            raise CoverageError(msg)
    return chosen, settings, name


# --- The run -------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "zones-blanches": __version__}
    for pkg in ("numpy", "pandas", "geopandas", "shapely", "pyproj", "scipy", "pyarrow",
                "networkx", "osmium", "dask", "distributed"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


#: Label of fictional inputs other than the embedded demo (codes « Z… » made up for a test).
OTHER_FICTIONAL_LABEL = (
    "Données FICTIVES : communes (codes « Z… ») et services inventés pour un essai ; aucune "
    "population réelle."
)


def _fictional_label(inputs: Any = None) -> str:
    """The demo's label when the communes are the embedded demo's, else a generic one."""
    from coverage.demo import FICTIONAL_LABEL, demo_paths

    paths = getattr(inputs, "paths", None) or {}
    communes_path = paths.get("communes", "")
    if inputs is not None and communes_path and \
            Path(communes_path).resolve() != demo_paths().communes.resolve():
        return OTHER_FICTIONAL_LABEL
    return FICTIONAL_LABEL


def _expected_outputs(out_dir: Path, tables: Sequence[str], isochrones: bool,
                      geojson: Sequence[str] = ()) -> list[Path]:
    files = [out_dir / COMMUNES_FILE, out_dir / SERVICES_FILE]
    for name in tables:
        files += [out_dir / TABLES_DIR / f"{name}{ext}"
                  for ext in (".csv", ".parquet", ".schema.json")]
    if isochrones:
        files.append(out_dir / ISOCHRONES_FILE)
    files += [out_dir / g for g in geojson]
    return files


#: Folder of the run holding the isochrone layers as GeoJSON (``--isochrones-geojson``).
ISOCHRONES_GEOJSON_DIR = "isochrones_geojson"


def _remove_stale_geojson(out_dir: Path) -> None:
    """Remove the GeoJSON layers of an earlier run (this run writes none)."""
    folder = out_dir / ISOCHRONES_GEOJSON_DIR
    if not folder.is_dir():
        return
    for path in folder.glob("isochrones_*.geojson"):
        path.unlink()
    with contextlib.suppress(OSError):  # other files there: not ours to remove
        folder.rmdir()


def _previous_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError):
        return None


def _rel(path: str | Path) -> str:
    p = Path(path).resolve()
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def run(
    inputs: Any, *, depts: Sequence[str] | None = None, types: Sequence[str] | None = None,
    thresholds: Sequence[float] | None = None, engine: str | None = None,
    out_dir: str | Path, scheduler: str | None = None, workers: int | None = None,
    use_cache: bool = True, isochrones: bool = True, settings: Settings | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    isochrones_geojson: bool = False,
) -> RunResult:
    """Compute access times, white zones and coverage tables for some départements.

    Parameters
    ----------
    inputs
        :class:`coverage.io.inputs.Inputs` (``communes`` and ``services`` GeoDataFrames in
        EPSG:4326, ``waiting`` or None, ``roads`` or None, ``fictif``, ``paths``).
    depts
        Département codes to run; default every département of ``inputs.communes``.
    types
        Service types (default ``settings.service_types``).
    thresholds
        White-zone thresholds, minutes (default ``settings.thresholds_min``).
    engine
        ``road`` (needs ``inputs.roads``) or ``proxy``; default road when roads are given.
    out_dir
        Run folder (layout in :mod:`coverage.results`).
    scheduler
        ``tcp://HOST:PORT`` of an existing Dask distributed scheduler; default local.
    workers
        Local worker processes; 1 runs in this process. Default :func:`auto_workers`:
        processes for road runs of several partitions, this process otherwise.
    use_cache
        Reuse cached partitions and unchanged outputs; False recomputes everything.
    isochrones
        Write ``isochrones.gpkg`` (bands of the thresholds, :mod:`coverage.isochrones`).
    settings
        Run settings (defaults: :class:`coverage.settings.Settings`).
    on_progress
        Called with (stage, done, total) after each partition (for the app).
    isochrones_geojson
        Also write each isochrone layer as ``<out_dir>/isochrones_geojson/<layer>.geojson``
        (EPSG:4326, one file per layer, atomically); needs ``isochrones``.

    Returns
    -------
    RunResult

    Raises
    ------
    CoverageError
        Bad arguments (nothing is written) or a failure of a stage.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    settings = settings or Settings()
    if isochrones_geojson and not isochrones:
        msg = ("GeoJSON isochrones need the isochrones: drop --no-isochrones or "
               "--isochrones-geojson")
        raise CoverageError(msg)
    chosen, settings, engine_name = _check_args(inputs, depts, types, thresholds, engine,
                                                settings)
    out_dir = Path(out_dir)
    if scheduler:  # fail before writing anything when the cluster is not there
        _dask_client(scheduler).close()
    types_t = tuple(settings.service_types)
    thresholds_t = tuple(settings.thresholds_min)
    fictif = bool(getattr(inputs, "fictif", False))

    communes_all: gpd.GeoDataFrame = inputs.communes
    dep_col = communes_all["code_dep"].astype(str)
    communes_run = communes_all[dep_col.isin(chosen)].reset_index(drop=True)
    services_all: gpd.GeoDataFrame = inputs.services
    services_run = services_all[services_all["type_service"].astype(str).isin(types_t)]
    services_run = services_run.reset_index(drop=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(out_dir)
    cache_root = out_dir / CACHE_DIR
    part_cache = cache_root / _PARTITIONS_DIR
    part_cache.mkdir(parents=True, exist_ok=True)
    hash_memo = cache_root / "file_hashes.json"

    # --- Inputs and keys -------------------------------------------------------------------
    t0 = time.perf_counter()
    input_files: dict[str, dict[str, Any]] = {}
    for name, p in sorted((getattr(inputs, "paths", None) or {}).items()):
        if p and Path(p).is_file():
            input_files[name] = {"path": _rel(p), "sha256": _file_sha256(Path(p), hash_memo),
                                 "bytes": Path(p).stat().st_size}
    roads_sha = None
    if engine_name == "road":
        roads_sha = _file_sha256(Path(inputs.roads), hash_memo)
        input_files.setdefault("roads", {"path": _rel(inputs.roads), "sha256": roads_sha,
                                         "bytes": Path(inputs.roads).stat().st_size})
    spec = EngineSpec(engine_name, str(inputs.roads) if engine_name == "road" else None,
                      str(cache_root / "network"), settings)
    version = code_version()
    com_all = _task_frame(communes_run, _COMMUNE_TASK_COLS)
    svc_all = _task_frame(services_run, _SERVICE_TASK_COLS)
    com_hash, svc_hash = _row_hashes(com_all), _row_hashes(svc_all)
    com_dep = com_all["code_dep"].astype(str).to_numpy()
    tasks: list[PartitionTask] = []
    for dept in chosen:
        c_sel = np.flatnonzero(com_dep == dept)
        com = com_all.iloc[c_sel].reset_index(drop=True)
        s_rows = partition_services(com, svc_all, dept, engine_name, settings).index
        s_sel = svc_all.index.get_indexer(s_rows)
        svc = svc_all.iloc[s_sel].reset_index(drop=True)
        key = _partition_key(
            _rows_digest(com.columns, com.dtypes, com_hash[c_sel]),
            _rows_digest(svc.columns, svc.dtypes, svc_hash[s_sel]),
            dept, spec, roads_sha, types_t, version)
        tasks.append(PartitionTask(dept, key, com, svc, types_t, spec))
    timings["partitions_s"] = time.perf_counter() - t0

    # --- Run key: keep the outputs when nothing changed ------------------------------------
    waiting = getattr(inputs, "waiting", None)
    run_key = _sha({
        "version": version, "contract": OUTPUT_CONTRACT_VERSION,
        "partitions": [t.key for t in tasks], "thresholds": list(thresholds_t),
        "types": list(types_t), "isochrones": isochrones, "fictif": fictif,
        "communes": frame_digest(communes_run), "services": frame_digest(services_all),
        "waiting": frame_digest(waiting) if waiting is not None else None,
        "settings": settings.as_dict(),
        # only when asked: the keys of runs without GeoJSON stay those of earlier versions
        **({"isochrones_geojson": True} if isochrones_geojson else {}),
    })
    previous = _previous_manifest(out_dir)
    if (use_cache and previous is not None and previous.get("run_key") == run_key
            and all(p.exists() for p in _expected_outputs(
                out_dir, previous.get("tables", []), bool(previous.get("isochrones_file")),
                previous.get("isochrones_geojson") or ()))):
        tables_prev = {name: pd.read_parquet(out_dir / TABLES_DIR / f"{name}.parquet")
                       for name in previous.get("tables", [])}
        timings["total_s"] = time.perf_counter() - t_start
        log.info("nothing changed since the previous run: outputs in %s kept", out_dir)
        return RunResult(out_dir, previous, tables_prev, engine_name, fictif, [],
                         [t.dept for t in tasks], reused=True, timings=timings)

    # --- Partitions ------------------------------------------------------------------------
    t0 = time.perf_counter()
    outputs: dict[str, PartitionOutput] = {}
    todo: list[PartitionTask] = []
    for task in tasks:
        hit = _cache_read(part_cache, task.dept, task.key) if use_cache else None
        if hit is not None:
            outputs[task.dept] = hit
        else:
            todo.append(task)
    cached = [t.dept for t in tasks if t.dept in outputs]
    if cached:
        log.info("%d partition(s) unchanged, taken from the cache: %s", len(cached),
                 ", ".join(cached))
    done = len(cached)
    if todo and engine_name == "road" and not scheduler:
        _engine_for(spec)  # build the network once here; worker processes read its cache
    for out in progress(_execute(todo, scheduler=scheduler, workers=workers), total=len(todo),
                        desc=f"partitions ({engine_name})", unit="dépt"):
        _cache_write(part_cache, out)
        outputs[out.dept] = out
        done += 1
        log.info("partition %s computed in %.2f s", out.dept, out.seconds)
        if on_progress is not None:
            on_progress("partitions", done, len(tasks))
    computed = [t.dept for t in todo]
    timings["compute_s"] = time.perf_counter() - t0

    engine_parameters = next((outputs[t.dept].engine_parameters for t in tasks
                              if outputs[t.dept].engine_parameters), {})
    access = pd.concat([outputs[t.dept].access for t in tasks], ignore_index=True)
    access = access.sort_values(["code_insee"], kind="mergesort").reset_index(drop=True)

    # --- Tables ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    tables: dict[str, pd.DataFrame] = {
        ACCES_COMMUNES.name: access,
        ZONES_BLANCHES.name: white_zones(access, thresholds_t),
    }
    tables.update(coverage_tables(access, communes_run, thresholds_t))
    if waiting is not None:
        try:
            from coverage import waiting as waiting_mod
        except ImportError:
            log.warning("waiting lists given but coverage.waiting is not available: "
                        "%s not written", WAITING_TABLE)
        else:
            tables[WAITING_TABLE] = waiting_mod.indicators_for_run(waiting, communes_run)
    timings["aggregate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tables_dir = out_dir / TABLES_DIR
    for name, df in tables.items():
        write_table(df, OUTPUT_CONTRACTS[name], tables_dir)
    table_names = list(tables)
    write_geoparquet(communes_run, out_dir / COMMUNES_FILE)
    write_geoparquet(services_all, out_dir / SERVICES_FILE)
    timings["write_s"] = time.perf_counter() - t0

    iso_file: str | None = None
    iso_geojson: list[str] = []
    if not isochrones_geojson:
        _remove_stale_geojson(out_dir)
    if isochrones:
        t0 = time.perf_counter()
        iso_file, iso_geojson = _write_isochrones(
            spec, communes_run, services_run, settings, out_dir,
            geojson_dir=out_dir / ISOCHRONES_GEOJSON_DIR if isochrones_geojson else None)
        timings["isochrones_s"] = time.perf_counter() - t0
    elif (out_dir / ISOCHRONES_FILE).exists():
        (out_dir / ISOCHRONES_FILE).unlink()

    timings["total_s"] = time.perf_counter() - t_start
    manifest: dict[str, Any] = {
        "format": "zones-blanches-run",
        "output_contract_version": OUTPUT_CONTRACT_VERSION,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fictif": fictif,
        "fictional_label": _fictional_label(inputs) if fictif else None,
        "engine": {"name": engine_name, "parameters": engine_parameters},
        "depts": chosen,
        "types": list(types_t),
        "thresholds_min": list(thresholds_t),
        "parameters": settings.as_dict(),
        "inputs": input_files,
        "partitions": {
            t.dept: {"key": t.key, "communes": len(t.communes), "services": len(t.services),
                     "cached": t.dept in cached, "seconds": round(outputs[t.dept].seconds, 4)}
            for t in tasks},
        "cross_border": {
            "buffer_km": round(buffer_km(engine_name, settings), 3),
            "rule": ("proxy: services within the buffer (or the farthest nearest-service "
                     "distance) of the département's communes; road: whole network and all "
                     "services"),
        },
        "executor": ("dask " + scheduler) if scheduler else "local",
        "tables": table_names,
        "isochrones_file": iso_file,
        "isochrones_geojson": iso_geojson or None,
        "code_version": version,
        "versions": _versions(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "run_key": run_key,
        "warnings": list(getattr(inputs, "warnings", []) or []),
    }
    write_text_atomic(out_dir / MANIFEST,
                      json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n")
    return RunResult(out_dir, manifest, tables, engine_name, fictif, computed, cached,
                     reused=False, timings=timings)


def _write_isochrones(spec: EngineSpec, communes: gpd.GeoDataFrame,
                      services: gpd.GeoDataFrame, settings: Settings, out_dir: Path, *,
                      geojson_dir: Path | None = None) -> tuple[str | None, list[str]]:
    """Isochrone bands of the run into ``isochrones.gpkg`` (and one GeoJSON file per layer
    in ``geojson_dir`` when given): the GeoPackage's name (None, logged, when unavailable)
    and the GeoJSON files' paths relative to ``out_dir``.
    """
    try:
        from coverage import isochrones as iso
    except ImportError:
        log.warning("coverage.isochrones is not available: isochrones.gpkg skipped")
        return None, []
    if services.empty:
        log.warning("no service: isochrones.gpkg skipped")
        return None, []
    engine = _engine_for(spec)
    svc = services.to_crs(CRS_INPUT_OUTPUT)
    com = communes.to_crs(CRS_INPUT_OUTPUT)
    if spec.name == "road":
        groups = [(com, svc, None)]
    else:  # one metric CRS per territory (metropolitan France, each DROM)
        c_crs = com["code_dep"].astype(str).map(metric_crs_for)
        s_dep = svc["code_dep"].astype(str) if "code_dep" in svc.columns else None
        groups = []
        for crs in sorted(set(c_crs)):
            s_sel = (s_dep.map(metric_crs_for) == crs) if s_dep is not None else slice(None)
            groups.append((com[c_crs == crs], svc[s_sel], crs))
    types_parts, service_parts = [], []
    for c, s, crs in groups:
        if s.empty or c.empty:
            continue
        types_parts.append(iso.isochrones_types(engine, c, s, settings=settings, crs=crs))
        service_parts.append(iso.isochrones_services(engine, c, s, settings=settings, crs=crs))
    if not types_parts:
        return None, []
    types_gdf = gpd.GeoDataFrame(pd.concat(types_parts, ignore_index=True),
                                 crs=CRS_INPUT_OUTPUT)
    services_gdf = gpd.GeoDataFrame(pd.concat(service_parts, ignore_index=True),
                                    crs=CRS_INPUT_OUTPUT)
    written = iso.write_isochrones(types_gdf, services_gdf, out_dir / ISOCHRONES_FILE,
                                   geojson_dir=geojson_dir)
    geojson = [p.relative_to(out_dir).as_posix() for p in written
               if p.suffix == ".geojson"]
    return ISOCHRONES_FILE, geojson


# --- CLI -------------------------------------------------------------------------------------

def _data_dir_inputs(data_dir: Path, depts: Sequence[str]) -> dict[str, Path | None]:
    """Input files of the ``fetch`` + ``prepare`` layout for one département.

    Layout (:func:`coverage.io.official.prepare.prepared_paths`):
    ``<data-dir>/<dept>/communes.gpkg``, ``services.csv`` (the user's own list) and
    ``routes.osm.pbf`` (optional: without it the proxy engine runs).
    """
    from coverage.io.official.prepare import prepared_paths

    if len(depts) != 1:
        msg = "--data-dir takes exactly one --dept CODE (one prepared folder per département)"
        raise CoverageError(msg)
    paths = prepared_paths(data_dir, depts[0])
    if not paths["communes"].exists():
        msg = (f"{paths['communes']} not found: run `zones-blanches fetch --dept {depts[0]} "
               f"--data-dir {data_dir}` then `zones-blanches prepare --dept {depts[0]} "
               f"--data-dir {data_dir}` first")
        raise CoverageError(msg)
    if not paths["services"].exists():
        msg = (f"{paths['services']} not found: put your services list there (template: "
               "data/services/modele_services.csv) or give --services FILE")
        raise CoverageError(msg)
    return {"communes": paths["communes"], "services": paths["services"],
            "roads": paths["roads"] if paths["roads"].exists() else None}


def _default_out(inputs: Any, communes_path: Path | None) -> Path:
    if getattr(inputs, "fictif", False):
        return Path("sorties") / "demo"
    stem = communes_path.name.split(".")[0] if communes_path else "run"
    return Path("sorties") / stem


def summary_lines(result: RunResult) -> list[str]:
    """Short text summary of a run: engine, white-zone populations, where the outputs are."""
    lines: list[str] = []
    if result.fictif:
        label = result.manifest.get("fictional_label") or _fictional_label()
        lines.append(f"FICTIONAL DATA — {label}")
    n_com = int(result.tables[ACCES_COMMUNES.name]["code_insee"].nunique())
    lines.append(f"Engine: {result.engine} "
                 f"({'OSM road graph' if result.engine == 'road' else 'straight line × detour ÷ speed, an estimate'}); "  # noqa: E501
                 f"{n_com} communes in {len(result.manifest.get('depts', []))} département(s); "
                 f"{len(result.computed)} partition(s) computed, {len(result.cached)} from "
                 "the cache" + (" (outputs unchanged)" if result.reused else ""))
    france = result.tables.get("couverture_france")
    if france is not None and len(france):
        ths = sorted(set(france["seuil_minutes"]))
        show = sorted({max(ths)} | ({30.0} if 30.0 in ths else set()))
        for t in show:
            sub = france[france["seuil_minutes"] == t]
            parts = []
            for _, r in sub.iterrows():
                label = "none of the types" if r["type_service"] == NO_SERVICE else \
                    str(r["type_service"])
                n = int(r["communes_zone_blanche"])
                parts.append(f"{label}: {int(r['population_zone_blanche']):,} inhabitants in "
                             f"{n} commune{'' if n == 1 else 's'}".replace(",", " "))
            lines.append(f"White zones beyond {t:g} min — " + "; ".join(parts))
    lines.append(f"Outputs: {result.out_dir}/ (tables/, manifest.json, communes.parquet, "
                 "services.parquet" + (", isochrones.gpkg" if result.manifest.get(
                     "isochrones_file") else "")
                 + (f", {ISOCHRONES_GEOJSON_DIR}/" if result.manifest.get(
                     "isochrones_geojson") else "") + ")")
    return lines


def run_from_cli(args: argparse.Namespace) -> int:
    """``zones-blanches run``: load the inputs, run, print where the outputs are.

    Returns the exit code (0). Errors are raised as :class:`CoverageError` (printed by the
    CLI without traceback, exit non-zero); nothing is written when the arguments are bad.
    """
    from coverage.io.inputs import load_inputs

    communes, services, roads = args.communes, args.services, args.roads
    depts = list(args.dept) if args.dept else None
    if getattr(args, "data_dir", None) is not None:
        if not depts:
            msg = "--data-dir needs --dept CODE"
            raise CoverageError(msg)
        files = _data_dir_inputs(Path(args.data_dir), depts)
        communes = communes or files["communes"]
        services = services or files["services"]
        if roads is None and args.engine != "proxy":
            roads = files["roads"]
    if args.engine == "road" and roads is None and communes is not None:
        msg = ("the road engine needs a road network: give --roads FILE (.osm, .osm.pbf, "
               ".osm.gz/.bz2, .graphml) or use --engine proxy")
        raise CoverageError(msg)
    from coverage.cli import settings_from_args

    settings = settings_from_args(args)
    inputs = load_inputs(communes=communes, densite=args.densite, services=services,
                         waiting=args.waiting, roads=roads, settings=settings)
    for w in inputs.warnings:
        log.warning("%s", w)
    out_dir = args.out or _default_out(inputs, communes)
    result = run(
        inputs, depts=None if args.all else depts, types=args.types,
        thresholds=args.thresholds, engine=args.engine, out_dir=out_dir,
        scheduler=args.scheduler, workers=args.workers, use_cache=not args.no_cache,
        isochrones=not args.no_isochrones, settings=settings,
        isochrones_geojson=bool(getattr(args, "isochrones_geojson", False)),
    )
    for line in summary_lines(result):
        print(line)
    sys.stdout.flush()
    return 0
