"""The run: check → partition → compute → aggregate → write → manifest.

:func:`run_batch` does, in order:

1. **Check** the options (départements, service types, thresholds, engine, scheduler) before
   writing anything: a bad option raises :class:`~coverage.errors.CoverageError` and leaves
   no file.
2. **Partition** the communes by département (:mod:`coverage.batch.partitions`) and key each
   partition (:mod:`coverage.batch.cache`).
3. **Compute** each partition unless the cache already holds it
   (:mod:`coverage.batch.executors`: this process, local processes or a Dask cluster).
4. **Aggregate** over all partitions: white zones and coverage tables
   (:mod:`coverage.whitezones`), waiting-list indicators when a waiting file is given
   (:mod:`coverage.waiting`), isochrones when asked (:mod:`coverage.isochrones`), the
   communes and services as GeoParquet (EPSG:4326).
5. **Write** every file atomically, ``manifest.json`` last
   (:mod:`coverage.batch.manifest`). When nothing changed since the previous run in the same
   folder (same run key), the outputs are left as they are.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.batch.cache import (
    PARTITIONS_DIR,
    cache_read,
    cache_write,
    clean_stale_temps,
    code_version,
    file_sha256,
    frame_digest,
    json_digest,
    partition_key,
    row_hashes,
    rows_digest,
)
from coverage.batch.executors import check_scheduler, engine_for, execute
from coverage.batch.manifest import (
    ISOCHRONES_GEOJSON_DIR,
    RunRecord,
    fictional_label,
    partitions_record,
    relative_path,
    remove_stale_geojson,
    reusable_outputs,
    write_manifest,
)
from coverage.batch.partitions import (
    COMMUNE_TASK_COLUMNS,
    SERVICE_TASK_COLUMNS,
    EngineSpec,
    PartitionOutput,
    PartitionTask,
    buffer_km,
    partition_services,
    task_frame,
)
from coverage.cog import normalise_dept
from coverage.errors import CoverageError
from coverage.io.inputs import Inputs
from coverage.io.writers import write_geoparquet, write_table
from coverage.isochrones import isochrones_services, isochrones_types, write_isochrones
from coverage.progress import progress
from coverage.results import CACHE_DIR, COMMUNES_FILE, ISOCHRONES_FILE, SERVICES_FILE, TABLES_DIR
from coverage.schemas import (
    ACCES_COMMUNES,
    LISTES_ATTENTE_DEPARTEMENTS,
    OUTPUT_CONTRACT_VERSION,
    OUTPUT_CONTRACTS,
    ZONES_BLANCHES,
)
from coverage.settings import CRS_INPUT_OUTPUT, Settings, metric_crs_for
from coverage.waiting import indicators_for_run
from coverage.whitezones import coverage_tables, white_zones

__all__ = ["ROAD_NETWORK_NEEDED", "ProgressCallback", "RunOptions", "RunResult", "run_batch"]

log = logging.getLogger(__name__)

#: Called with (stage, done, total) after each partition (for the app).
ProgressCallback = Callable[[str, int, int], None]

#: Error of the road engine without a road file (also raised by the CLI before loading).
ROAD_NETWORK_NEEDED = ("the road engine needs a road network: give --roads FILE (.osm, .osm.pbf, "
                       ".osm.gz/.bz2, .graphml) or use --engine proxy")
_DEPTS_SHOWN = 12


@dataclass(frozen=True)
class RunOptions:
    """What to run and how (every field has a default: all départements, local, cached).

    Attributes
    ----------
    depts
        Département codes to run; None: every département of the communes.
    types
        Service types; None: ``settings.service_types``.
    thresholds
        White-zone thresholds, minutes; None: ``settings.thresholds_min``.
    engine
        ``road`` (needs road inputs) or ``proxy``; None: road when roads are given.
    isochrones
        Write ``isochrones.gpkg`` (bands of the thresholds, :mod:`coverage.isochrones`).
    isochrones_geojson
        Also write each isochrone layer as ``<out_dir>/isochrones_geojson/<layer>.geojson``
        (EPSG:4326, one file per layer, atomically); needs ``isochrones``.
    workers
        Local worker processes; 1 runs in this process. None:
        :func:`coverage.batch.executors.auto_workers`.
    scheduler
        ``tcp://HOST:PORT`` of an existing Dask distributed scheduler; None: local.
    use_cache
        Reuse cached partitions and unchanged outputs; False recomputes everything.
    """

    depts: Sequence[str] | None = None
    types: Sequence[str] | None = None
    thresholds: Sequence[float] | None = None
    engine: str | None = None
    isochrones: bool = True
    isochrones_geojson: bool = False
    workers: int | None = None
    scheduler: str | None = None
    use_cache: bool = True

    def __post_init__(self) -> None:
        """Store the sequences as tuples (a lone string is one code, not its letters)."""
        for name in ("depts", "types", "thresholds"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif value is not None:
                object.__setattr__(self, name, tuple(value))


@dataclass
class RunResult:
    """Result of :func:`run_batch`.

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


@dataclass(frozen=True)
class _Plan:
    """The checked run: options, settings, engine, départements and the rows they select."""

    inputs: Inputs
    out_dir: Path
    options: RunOptions
    settings: Settings
    engine: str
    depts: list[str]
    communes: gpd.GeoDataFrame
    services_run: gpd.GeoDataFrame

    @property
    def types(self) -> tuple[str, ...]:
        """Return the run's service types."""
        return tuple(self.settings.service_types)

    @property
    def thresholds(self) -> tuple[float, ...]:
        """Return the run's thresholds, minutes."""
        return tuple(self.settings.thresholds_min)


@dataclass(frozen=True)
class _Keys:
    """The hashed inputs of a run: files, engine, code version, partition cache folder."""

    input_files: dict[str, dict[str, Any]]
    roads_sha: str | None
    spec: EngineSpec
    version: str
    part_cache: Path


@dataclass(frozen=True)
class _Computed:
    """The partitions' outputs, and which were computed or taken from the cache."""

    outputs: dict[str, PartitionOutput]
    computed: list[str]
    cached: list[str]


@dataclass(frozen=True)
class _Written:
    """The files of a run: table names, the isochrones' GeoPackage and GeoJSON files."""

    tables: list[str]
    isochrones_file: str | None
    isochrones_geojson: list[str]


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the seconds of the ``with`` block in ``timings[name]``."""
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0


# --- 1. Check --------------------------------------------------------------------------------

def _checked_settings(options: RunOptions, settings: Settings) -> Settings:
    """Return ``settings`` with the options' service types and thresholds (minutes)."""
    if options.types is not None:
        types = options.types
        unknown = [t for t in types if t not in settings.service_types]
        if unknown or not types:
            msg = (f"unknown service type(s) {unknown}: expected a comma-separated list of "
                   f"{', '.join(settings.service_types)}")
            raise CoverageError(msg)
        settings = replace(settings, service_types=tuple(dict.fromkeys(types)))
    if options.thresholds is not None:
        values = [float(t) for t in options.thresholds]
        if not values or any(not np.isfinite(v) or v <= 0 for v in values):
            msg = f"thresholds must be positive minutes, got {list(options.thresholds)}"
            raise CoverageError(msg)
        settings = replace(settings, thresholds_min=tuple(sorted(set(values))))
    return settings


def _checked_engine(engine: str | None, roads: Path | None) -> str:
    """Return the engine's name (default: road when roads are given, else proxy)."""
    name = engine if engine is not None else ("road" if roads is not None else "proxy")
    if name not in ("road", "proxy"):
        msg = f"unknown engine {name!r}: expected 'road' or 'proxy'"
        raise CoverageError(msg)
    if name == "road" and roads is None:
        raise CoverageError(ROAD_NETWORK_NEEDED)
    return name


def _checked_depts(communes: gpd.GeoDataFrame | None, depts: Sequence[str] | None
                   ) -> list[str]:
    """Return the départements to run (codes normalised, each once, all known)."""
    if communes is None or len(communes) == 0:
        msg = "the communes table is empty: nothing to run"
        raise CoverageError(msg)
    available = sorted(set(communes["code_dep"].astype(str)))
    if depts is None:
        return available
    chosen = list(dict.fromkeys(normalise_dept(d) for d in depts))
    unknown = [d for d in chosen if d not in available]
    if unknown:
        shown = ", ".join(available[:_DEPTS_SHOWN]) + (
            " …" if len(available) > _DEPTS_SHOWN else "")
        msg = (f"unknown département code(s) {unknown}: the communes file has {shown} "
               f"({len(available)} départements)")
        raise CoverageError(msg)
    return chosen


def _check(inputs: Inputs, out_dir: Path, options: RunOptions, settings: Settings) -> _Plan:
    """Check every option before anything is written; return the run's plan."""
    if options.isochrones_geojson and not options.isochrones:
        msg = ("GeoJSON isochrones need the isochrones: drop --no-isochrones or "
               "--isochrones-geojson")
        raise CoverageError(msg)
    settings = _checked_settings(options, settings)
    engine = _checked_engine(options.engine, inputs.roads)
    depts = _checked_depts(inputs.communes, options.depts)
    if options.scheduler:  # fail before writing anything when the cluster is not there
        check_scheduler(options.scheduler)
    communes = inputs.communes
    communes_run = communes[communes["code_dep"].astype(str).isin(depts)]
    services = inputs.services
    services_run = services[services["type_service"].astype(str).isin(
        settings.service_types)]
    return _Plan(inputs, out_dir, options, settings, engine, depts,
                 communes_run.reset_index(drop=True), services_run.reset_index(drop=True))


# --- 2. Partition ----------------------------------------------------------------------------

def _hash_inputs(plan: _Plan) -> _Keys:
    """Prepare the run folder and hash the input files (memoised in the cache folder)."""
    out_dir = plan.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    cache_root = out_dir / CACHE_DIR
    part_cache = cache_root / PARTITIONS_DIR
    part_cache.mkdir(parents=True, exist_ok=True)
    hash_memo = cache_root / "file_hashes.json"
    input_files: dict[str, dict[str, Any]] = {}
    for name, p in sorted((plan.inputs.paths or {}).items()):
        if p and Path(p).is_file():
            input_files[name] = {"path": relative_path(p),
                                 "sha256": file_sha256(Path(p), hash_memo),
                                 "bytes": Path(p).stat().st_size}
    roads = plan.inputs.roads
    roads_sha = None
    if plan.engine == "road" and roads is not None:
        roads_sha = file_sha256(Path(roads), hash_memo)
        input_files.setdefault("roads", {"path": relative_path(roads), "sha256": roads_sha,
                                         "bytes": Path(roads).stat().st_size})
    spec = EngineSpec(plan.engine, str(roads) if plan.engine == "road" else None,
                      str(cache_root / "network"), plan.settings)
    return _Keys(input_files, roads_sha, spec, code_version(), part_cache)


def _partition(plan: _Plan, keys: _Keys) -> list[PartitionTask]:
    """Split the run by département; key each partition for the cache."""
    com_all = task_frame(plan.communes, COMMUNE_TASK_COLUMNS)
    svc_all = task_frame(plan.services_run, SERVICE_TASK_COLUMNS)
    com_hash, svc_hash = row_hashes(com_all), row_hashes(svc_all)
    com_dep = com_all["code_dep"].astype(str).to_numpy()
    tasks: list[PartitionTask] = []
    for dept in plan.depts:
        c_sel = np.flatnonzero(com_dep == dept)
        com = com_all.iloc[c_sel].reset_index(drop=True)
        s_rows = partition_services(com, svc_all, dept, plan.engine, plan.settings).index
        s_sel = svc_all.index.get_indexer(s_rows)
        svc = svc_all.iloc[s_sel].reset_index(drop=True)
        key = partition_key(
            rows_digest(com.columns, com.dtypes, com_hash[c_sel]),
            rows_digest(svc.columns, svc.dtypes, svc_hash[s_sel]),
            dept, keys.spec, keys.roads_sha, plan.types, keys.version)
        tasks.append(PartitionTask(dept, key, com, svc, plan.types, keys.spec))
    return tasks


def _run_key(plan: _Plan, tasks: Sequence[PartitionTask], version: str) -> str:
    """Return the key of the whole run: same key, same outputs."""
    waiting = plan.inputs.waiting
    return json_digest({
        "version": version, "contract": OUTPUT_CONTRACT_VERSION,
        "partitions": [t.key for t in tasks], "thresholds": list(plan.thresholds),
        "types": list(plan.types), "isochrones": plan.options.isochrones,
        "fictif": bool(plan.inputs.fictif),
        "communes": frame_digest(plan.communes),
        "services": frame_digest(plan.inputs.services),
        "waiting": frame_digest(waiting) if waiting is not None else None,
        "settings": plan.settings.as_dict(),
        # only when asked: the keys of runs without GeoJSON stay those of earlier versions
        **({"isochrones_geojson": True} if plan.options.isochrones_geojson else {}),
    })


# --- 3. Compute ------------------------------------------------------------------------------

def _compute(plan: _Plan, keys: _Keys, tasks: list[PartitionTask],
             on_progress: ProgressCallback | None) -> _Computed:
    """Take the cached partitions, compute the others (and cache them)."""
    use_cache = plan.options.use_cache
    outputs: dict[str, PartitionOutput] = {}
    todo: list[PartitionTask] = []
    for task in tasks:
        hit = cache_read(keys.part_cache, task.dept, task.key) if use_cache else None
        if hit is not None:
            outputs[task.dept] = hit
        else:
            todo.append(task)
    cached = [t.dept for t in tasks if t.dept in outputs]
    if cached:
        log.info("%d partition(s) unchanged, taken from the cache: %s", len(cached),
                 ", ".join(cached))
    done = len(cached)
    scheduler = plan.options.scheduler
    if todo and plan.engine == "road" and not scheduler:
        engine_for(keys.spec)  # build the network once here; worker processes read its cache
    for out in progress(execute(todo, scheduler=scheduler, workers=plan.options.workers),
                        total=len(todo), desc=f"partitions ({plan.engine})", unit="dépt"):
        cache_write(keys.part_cache, out)
        outputs[out.dept] = out
        done += 1
        log.info("partition %s computed in %.2f s", out.dept, out.seconds)
        if on_progress is not None:
            on_progress("partitions", done, len(tasks))
    return _Computed(outputs, [t.dept for t in todo], cached)


# --- 4. Aggregate ----------------------------------------------------------------------------

def _aggregate(plan: _Plan, tasks: Sequence[PartitionTask], computed: _Computed
               ) -> dict[str, pd.DataFrame]:
    """Return the output tables by contract name (access, white zones, coverage, waiting)."""
    access = pd.concat([computed.outputs[t.dept].access for t in tasks], ignore_index=True)
    access = access.sort_values(["code_insee"], kind="mergesort").reset_index(drop=True)
    tables: dict[str, pd.DataFrame] = {
        ACCES_COMMUNES.name: access,
        ZONES_BLANCHES.name: white_zones(access, plan.thresholds),
    }
    tables.update(coverage_tables(access, plan.communes, plan.thresholds))
    if plan.inputs.waiting is not None:
        tables[LISTES_ATTENTE_DEPARTEMENTS.name] = indicators_for_run(plan.inputs.waiting,
                                                                      plan.communes)
    return tables


def _isochrone_groups(spec: EngineSpec, communes: gpd.GeoDataFrame,
                      services: gpd.GeoDataFrame
                      ) -> list[tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, str | None]]:
    """Split communes and services by metric CRS (proxy: metropolitan France, each DROM)."""
    if spec.name == "road":
        return [(communes, services, None)]
    c_crs = communes["code_dep"].astype(str).map(metric_crs_for)
    s_dep = services["code_dep"].astype(str) if "code_dep" in services.columns else None
    groups = []
    for crs in sorted(set(c_crs)):
        s_sel = (s_dep.map(metric_crs_for) == crs) if s_dep is not None else slice(None)
        groups.append((communes[c_crs == crs], services[s_sel], crs))
    return groups


def _write_isochrones(plan: _Plan, spec: EngineSpec) -> tuple[str | None, list[str]]:
    """Write the run's isochrone bands into ``isochrones.gpkg`` (and GeoJSON when asked).

    Returns
    -------
    tuple
        The GeoPackage's name (None, logged, when there is no service) and the GeoJSON
        files' paths relative to the run folder.
    """
    if plan.services_run.empty:
        log.warning("no service: isochrones.gpkg skipped")
        return None, []
    engine = engine_for(spec)
    groups = _isochrone_groups(spec, plan.communes.to_crs(CRS_INPUT_OUTPUT),
                               plan.services_run.to_crs(CRS_INPUT_OUTPUT))
    types_parts, service_parts = [], []
    for c, s, crs in groups:
        if s.empty or c.empty:
            continue
        types_parts.append(isochrones_types(engine, c, s, settings=plan.settings, crs=crs))
        service_parts.append(isochrones_services(engine, c, s, settings=plan.settings,
                                                 crs=crs))
    if not types_parts:
        return None, []
    types_gdf = gpd.GeoDataFrame(pd.concat(types_parts, ignore_index=True),
                                 crs=CRS_INPUT_OUTPUT)
    services_gdf = gpd.GeoDataFrame(pd.concat(service_parts, ignore_index=True),
                                    crs=CRS_INPUT_OUTPUT)
    out_dir = plan.out_dir
    geojson_dir = out_dir / ISOCHRONES_GEOJSON_DIR if plan.options.isochrones_geojson else None
    written = write_isochrones(types_gdf, services_gdf, out_dir / ISOCHRONES_FILE,
                               geojson_dir=geojson_dir)
    geojson = [p.relative_to(out_dir).as_posix() for p in written if p.suffix == ".geojson"]
    return ISOCHRONES_FILE, geojson


# --- 5. Write --------------------------------------------------------------------------------

def _write_tables(plan: _Plan, tables: dict[str, pd.DataFrame]) -> None:
    """Write the tables (CSV, Parquet, schema) and the communes and services (GeoParquet)."""
    tables_dir = plan.out_dir / TABLES_DIR
    for name, df in tables.items():
        write_table(df, OUTPUT_CONTRACTS[name], tables_dir)
    write_geoparquet(plan.communes, plan.out_dir / COMMUNES_FILE)
    write_geoparquet(plan.inputs.services, plan.out_dir / SERVICES_FILE)


def _isochrones_step(plan: _Plan, spec: EngineSpec, timings: dict[str, float]
                     ) -> tuple[str | None, list[str]]:
    """Write the isochrones when asked, else remove those of an earlier run."""
    out_dir = plan.out_dir
    if not plan.options.isochrones_geojson:
        remove_stale_geojson(out_dir)
    if plan.options.isochrones:
        with _timed(timings, "isochrones_s"):
            return _write_isochrones(plan, spec)
    if (out_dir / ISOCHRONES_FILE).exists():
        (out_dir / ISOCHRONES_FILE).unlink()
    return None, []


def _record(plan: _Plan, keys: _Keys, tasks: Sequence[PartitionTask], computed: _Computed,
            written: _Written, run_key: str, timings: dict[str, float]) -> RunRecord:
    """Return what the manifest of the run records."""
    outputs = computed.outputs
    engine_parameters = next((outputs[t.dept].engine_parameters for t in tasks
                              if outputs[t.dept].engine_parameters), {})
    fictif = bool(plan.inputs.fictif)
    return RunRecord(
        fictif=fictif, fictional_label=fictional_label(plan.inputs) if fictif else None,
        engine=plan.engine, engine_parameters=engine_parameters, depts=plan.depts,
        types=plan.types, thresholds_min=plan.thresholds, settings=plan.settings,
        inputs=keys.input_files, partitions=partitions_record(tasks, outputs, computed.cached),
        buffer_km=buffer_km(plan.engine, plan.settings), scheduler=plan.options.scheduler,
        tables=written.tables, isochrones_file=written.isochrones_file,
        isochrones_geojson=written.isochrones_geojson, code_version=keys.version,
        run_key=run_key, timings=timings, warnings=list(plan.inputs.warnings or []))


# --- The run ---------------------------------------------------------------------------------

def run_batch(inputs: Inputs, *, out_dir: str | Path, options: RunOptions | None = None,
              settings: Settings | None = None, on_progress: ProgressCallback | None = None
              ) -> RunResult:
    """Compute access times, white zones and coverage tables for some départements.

    Parameters
    ----------
    inputs
        :class:`coverage.io.inputs.Inputs` (``communes`` and ``services`` GeoDataFrames in
        EPSG:4326, ``waiting`` or None, ``roads`` or None, ``fictif``, ``paths``), as
        :func:`coverage.io.inputs.load_inputs` builds them.
    out_dir
        Run folder (layout in :mod:`coverage.results`).
    options
        Départements, types, thresholds (minutes), engine, isochrones, executor and cache
        (:class:`RunOptions`; default: everything, locally, with the cache).
    settings
        Run settings (defaults: :class:`coverage.settings.Settings`).
    on_progress
        Called with (stage, done, total) after each partition (for the app).

    Returns
    -------
    RunResult

    Raises
    ------
    CoverageError
        Bad options (nothing is written) or a failure of a stage.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    plan = _check(inputs, Path(out_dir), options or RunOptions(), settings or Settings())
    with _timed(timings, "partitions_s"):
        keys = _hash_inputs(plan)
        tasks = _partition(plan, keys)
    run_key = _run_key(plan, tasks, keys.version)
    if plan.options.use_cache and (kept := reusable_outputs(plan.out_dir, run_key)):
        timings["total_s"] = time.perf_counter() - t_start
        log.info("nothing changed since the previous run: outputs in %s kept", plan.out_dir)
        return RunResult(plan.out_dir, kept[0], kept[1], plan.engine, bool(inputs.fictif), [],
                         [t.dept for t in tasks], reused=True, timings=timings)
    with _timed(timings, "compute_s"):
        computed = _compute(plan, keys, tasks, on_progress)
    with _timed(timings, "aggregate_s"):
        tables = _aggregate(plan, tasks, computed)
    with _timed(timings, "write_s"):
        _write_tables(plan, tables)
    iso_file, iso_geojson = _isochrones_step(plan, keys.spec, timings)
    timings["total_s"] = time.perf_counter() - t_start
    written = _Written(list(tables), iso_file, iso_geojson)
    manifest = write_manifest(plan.out_dir,
                              _record(plan, keys, tasks, computed, written, run_key, timings))
    return RunResult(plan.out_dir, manifest, tables, plan.engine, bool(inputs.fictif),
                     computed.computed, computed.cached, reused=False, timings=timings)
