"""The run: check → partition → compute → aggregate → write → manifest.

:func:`run_batch` does, in order:

1. **Check** the options (départements, service types, thresholds, engine, scheduler) before
   writing anything: a bad option raises :class:`~coverage.errors.CoverageError` and leaves
   no file.
2. **Partition** the communes by département (:mod:`coverage.batch.partitions`) and key each
   partition (:mod:`coverage.batch.cache`).
3. **Compute** each partition unless the cache already holds it
   (:mod:`coverage.batch.executors`: this process, local processes or a Dask cluster).
   A partition cached under another key whose communes, engine, settings and code are the
   same (only its services changed) is **updated incrementally**
   (:mod:`coverage.scenario`): only the communes whose nearest service can change are
   recomputed, and the rows equal a full computation's. The land masses of a proxy run
   and an unchanged ``communes.parquet`` are reused from the run folder's ``.cache``.
   The tables of cached partitions are not read: their rows come from the previous run's
   ``acces_communes`` when that run recorded the same partition keys
   (``.cache/tables_file.json``, checked by SHA-256), else from the cache.
4. **Aggregate** over all partitions: white zones and coverage tables
   (:mod:`coverage.whitezones`), waiting-list indicators when a waiting file is given
   (:mod:`coverage.waiting`), isochrones when asked (:mod:`coverage.isochrones`), the
   communes and services as GeoParquet (EPSG:4326).
5. **Write** every file into a staging folder, ``manifest.json`` last with the SHA-256 of
   every output (:mod:`coverage.batch.manifest`), then switch it into place
   (:mod:`coverage.batch.folder`). The CSV lines of the rows a table shares with the
   previous run's are copied instead of formatted again (the same bytes). When nothing
   changed since the previous run in the same folder (same run key), the outputs are left
   as they are.

The whole run holds the folder's lock (:func:`coverage.batch.folder.locked_run_folder`): a
second run into the same folder waits a few seconds, then is refused. A run killed or failing
at any point leaves the previous run, the new run, or a folder that readers refuse with the
fix (« relancez zones-blanches run … »), never a mix of two runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from coverage.batch.cache import (
    PARTITIONS_DIR,
    SERVICE_HASH_COLUMN,
    cache_previous,
    cache_read,
    cache_table,
    cache_write,
    clean_stale_temps,
    code_version,
    file_sha256,
    frame_digest,
    geometry_digests,
    json_digest,
    partition_key,
    row_hashes,
    rows_digest,
    services_read,
    services_write,
)
from coverage.batch.executors import check_scheduler, engine_for, execute
from coverage.batch.folder import RunFolder, locked_run_folder, reached, writing_into
from coverage.batch.manifest import (
    ISOCHRONES_GEOJSON_DIR,
    RunRecord,
    fictional_label,
    partitions_record,
    relative_path,
    reusable_outputs,
    write_manifest,
)
from coverage.batch.outdir import check_run_out, run_input_files
from coverage.batch.partitions import (
    COMMUNE_TASK_COLUMNS,
    SERVICE_TASK_COLUMNS,
    EngineSpec,
    PartitionOutput,
    PartitionTask,
    ServicePoints,
    buffer_km,
    land_masses_of,
    partition_service_rows,
    task_frame,
)
from coverage.batch.proxy_inputs import (
    MEMO_PREFIX,
    ProxyInputs,
    empty_offer_warnings,
    proxy_inputs,
    save_land_masses,
)
from coverage.cog import normalise_dept
from coverage.errors import CoverageError
from coverage.files import sha256_file, write_text_atomic
from coverage.io.inputs import Inputs
from coverage.io.writers import PreviousTable, write_geoparquet, write_table, writer_version
from coverage.isochrones import isochrones_services, isochrones_types, write_isochrones
from coverage.progress import progress
from coverage.results import (
    CACHE_DIR,
    COMMUNES_FILE,
    ISOCHRONES_FILE,
    OUTPUTS_KEY,
    SERVICES_FILE,
    TABLES_DIR,
)
from coverage.routing.imported import ENGINE_NAME as MATRIX_ENGINE
from coverage.routing.imported import ImportedCheck, ImportedEngine
from coverage.routing.landmass import RECORD_KEY
from coverage.routing.road import check_network_coverage
from coverage.scenario import ServiceChange, affected_communes, update_access
from coverage.schemas import (
    ACCES_COMMUNES,
    CONFLITS_LISTES_ATTENTE,
    COUVERTURE_DEPARTEMENTS,
    LISTES_ATTENTE_DEPARTEMENTS,
    OUTPUT_CONTRACT_VERSION,
    OUTPUT_CONTRACTS,
    ZONES_BLANCHES,
)
from coverage.settings import CRS_INPUT_OUTPUT, Settings, check_settings, metric_crs_for
from coverage.waiting import indicators_for_run, reconcile_returns
from coverage.waiting.followup import RunFollowup, followup_for_run
from coverage.whitezones import combined_access, coverage_tables, white_zones

__all__ = [
    "ROAD_NETWORK_NEEDED",
    "TIMES_NEEDED",
    "ProgressCallback",
    "RunOptions",
    "RunResult",
    "run_batch",
]

log = logging.getLogger(__name__)

#: Called with (stage, done, total) after each partition (for the app).
ProgressCallback = Callable[[str, int, int], None]

#: Error of the road engine without a road file (also raised by the CLI before loading).
ROAD_NETWORK_NEEDED = ("le moteur road a besoin d'un réseau routier : donnez --roads FICHIER "
                       "(.osm, .osm.pbf, .osm.gz/.bz2, .graphml) ou utilisez --engine proxy")
#: Error of the matrice engine without a time table.
TIMES_NEEDED = ("le moteur matrice a besoin d'une table de temps : donnez --temps FICHIER "
                "(CSV, XLSX ou Parquet : origine, destination, minutes)")
_DEPTS_SHOWN = 12
#: Memo of the communes file written last (:func:`_write_communes`), in ``<out>/.cache``.
COMMUNES_MEMO = "communes_file.json"
#: Memo of the tables written last (:func:`_previous_table`), in ``<out>/.cache``.
TABLES_MEMO = "tables_file.json"


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
        ``road`` (needs road inputs), ``proxy`` or ``matrice`` (needs ``times``); None:
        matrice when ``times`` is given, else road when roads are given, else proxy.
    times
        Time table of the ``matrice`` engine (:mod:`coverage.routing.imported`: commune ×
        service or commune × commune, minutes), or None.
    times_unit
        Unit of its times (``min``, ``s``, ``h``); None: from its columns, else minutes.
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
    force_network
        Run the road engine even when most communes are farther than
        ``settings.snap_max_m`` from its network (``--force-reseau``); by default such a
        run is refused (:func:`coverage.routing.road.require_snap_coverage`).
    force_out
        Write into a non-empty folder that is not a run folder (``--force``;
        :func:`coverage.batch.outdir.check_run_out`).
    liaisons
        Ferry links table of the proxy engine (``--liaisons``: ``port_1``, ``port_2``,
        ``minutes``; :func:`coverage.routing.landmass.read_ferry_links`), or None: no
        link, land masses never reach each other.
    """

    depts: Sequence[str] | None = None
    types: Sequence[str] | None = None
    thresholds: Sequence[float] | None = None
    engine: str | None = None
    times: str | Path | None = None
    times_unit: str | None = None
    isochrones: bool = True
    isochrones_geojson: bool = False
    workers: int | None = None
    scheduler: str | None = None
    use_cache: bool = True
    force_network: bool = False
    force_out: bool = False
    liaisons: str | Path | None = None

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
    incremental
        Départements of ``computed`` updated incrementally: only the communes whose
        nearest service could change were recomputed (:mod:`coverage.scenario`).
    recomputed_communes
        Number of communes recomputed by those updates.
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
    incremental: list[str] = field(default_factory=list)
    recomputed_communes: int = 0


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
    times_check: ImportedCheck | None = None
    proxy: ProxyInputs | None = None
    #: :func:`~coverage.batch.cache.geometry_digests` of ``communes`` (None: no polygons).
    communes_geometry: list[bytes] | None = None

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
    """The partitions' outputs, and which were computed, updated or taken from the cache."""

    outputs: dict[str, PartitionOutput]
    computed: list[str]
    cached: list[str]
    updated: list[str] = field(default_factory=list)
    recomputed_communes: int = 0
    #: Cached partitions whose table was not read (:func:`_partition_access` reads it).
    unread: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Partitioned:
    """The partitions of a run, and its service rows with their hashes (for the cache)."""

    tasks: list[PartitionTask]
    services: pd.DataFrame
    service_hashes: np.ndarray


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
            msg = (f"type(s) de service inconnu(s) : {', '.join(unknown) or 'aucun'} ; "
                   f"attendu : une liste séparée par des virgules parmi "
                   f"{', '.join(settings.service_types)}")
            raise CoverageError(msg)
        settings = replace(settings, service_types=tuple(dict.fromkeys(types)))
    if options.thresholds is not None:
        values = [float(t) for t in options.thresholds]
        if not values or any(not np.isfinite(v) or v <= 0 for v in values):
            shown = ", ".join(str(t) for t in options.thresholds) or "aucun"
            msg = f"seuils refusés ({shown}) : des minutes positives sont attendues"
            raise CoverageError(msg)
        settings = replace(settings, thresholds_min=tuple(sorted(set(values))))
    return check_settings(settings)


def _checked_engine(engine: str | None, roads: Path | None, times: str | Path | None
                    ) -> str:
    """Return the engine's name (default: matrice with a time table, road with roads, proxy)."""
    default = MATRIX_ENGINE if times is not None else "road" if roads is not None else "proxy"
    name = engine if engine is not None else default
    if name not in ("road", "proxy", MATRIX_ENGINE):
        msg = f"moteur inconnu « {name} » : road, proxy ou matrice attendu"
        raise CoverageError(msg)
    if name == "road" and roads is None:
        raise CoverageError(ROAD_NETWORK_NEEDED)
    if name == MATRIX_ENGINE and times is None:
        raise CoverageError(TIMES_NEEDED)
    if name != MATRIX_ENGINE and times is not None:
        msg = (f"une table de temps (--temps) sert au moteur matrice, pas au moteur "
               f"« {name} »")
        raise CoverageError(msg)
    return name


def _times_spec(options: RunOptions, settings: Settings) -> EngineSpec:
    """Return the matrice engine's spec (the same in the check and in the workers)."""
    return EngineSpec(MATRIX_ENGINE, None, None, settings,
                      times=str(Path(str(options.times)).resolve()),
                      times_unit=options.times_unit)


def _checked_times(options: RunOptions, settings: Settings, inputs: Inputs,
                   services_run: gpd.GeoDataFrame) -> ImportedCheck:
    """Read the time table and check it against the inputs (before anything is written).

    Raises
    ------
    InputError
        A bad table: one line per problem (file, row, column, what was expected).
    """
    engine = engine_for(_times_spec(options, settings))
    if not isinstance(engine, ImportedEngine):  # pragma: no cover (make_engine's contract)
        msg = "internal: the matrice engine is not an ImportedEngine"
        raise CoverageError(msg)
    check = engine.check(inputs.communes, services_run)
    note = check.warning(engine.table.path.name)
    if note:
        log.warning("%s", note)
    return check


def _checked_depts(communes: gpd.GeoDataFrame | None, depts: Sequence[str] | None
                   ) -> list[str]:
    """Return the départements to run (codes normalised, each once, all known)."""
    if communes is None or len(communes) == 0:
        msg = "la table des communes est vide : rien à calculer"
        raise CoverageError(msg)
    available = sorted(set(communes["code_dep"].astype(str)))
    if depts is None:
        return available
    chosen = list(dict.fromkeys(normalise_dept(d) for d in depts))
    unknown = [d for d in chosen if d not in available]
    if unknown:
        shown = ", ".join(available[:_DEPTS_SHOWN]) + (
            " …" if len(available) > _DEPTS_SHOWN else "")
        msg = (f"code(s) de département inconnu(s) : {', '.join(unknown)} ; le fichier des "
               f"communes contient {shown} ({len(available)} départements)")
        raise CoverageError(msg)
    return chosen


def _check(inputs: Inputs, out_dir: Path, options: RunOptions, settings: Settings) -> _Plan:
    """Check every option before anything is written; return the run's plan."""
    if options.isochrones_geojson and not options.isochrones:
        msg = ("les isochrones GeoJSON demandent les isochrones : retirez --no-isochrones "
               "ou --isochrones-geojson")
        raise CoverageError(msg)
    if options.workers is not None and options.workers < 1:
        msg = (f"workers={options.workers} refusé : un nombre entier de processus ≥ 1 est "
               "attendu (1 calcule dans ce processus)")
        raise CoverageError(msg)
    settings = _checked_settings(options, settings)
    engine = _checked_engine(options.engine, inputs.roads, options.times)
    depts = _checked_depts(inputs.communes, options.depts)
    if options.scheduler:  # fail before writing anything when the cluster is not there
        check_scheduler(options.scheduler)
    communes = inputs.communes
    in_run = communes["code_dep"].astype(str).isin(depts).to_numpy()
    communes_run = communes[in_run]
    geometry = _geometry_rows(communes)  # hashed once: the land-mass memo and the run key
    services = inputs.services
    services_run = services[services["type_service"].astype(str).isin(
        settings.service_types)].reset_index(drop=True)
    times_check = (_checked_times(options, settings, inputs, services_run)
                   if engine == MATRIX_ENGINE else None)
    communes_run = communes_run.reset_index(drop=True)
    return _Plan(inputs, out_dir, options, settings, engine, depts, communes_run,
                 services_run, times_check,
                 _checked_proxy(engine, options, inputs, out_dir, communes_run,
                                services_run, settings, geometry),
                 None if geometry is None else [geometry[i] for i in np.flatnonzero(in_run)])


def _geometry_rows(communes: pd.DataFrame) -> list[bytes] | None:
    """Return the geometry digests of the communes' ``geometry`` column (None: none).

    Only for a frame whose one geometry column is ``geometry``.
    """
    geo_cols = [c for c in communes.columns if str(communes[c].dtype) == "geometry"]
    if geo_cols != ["geometry"]:
        return None
    return geometry_digests(communes["geometry"].values)


def _checked_proxy(engine: str, options: RunOptions, inputs: Inputs, out_dir: Path,
                   communes_run: gpd.GeoDataFrame, services_run: gpd.GeoDataFrame,
                   settings: Settings, geometry: list[bytes] | None = None
                   ) -> ProxyInputs | None:
    """Return the proxy's land masses and ferry links (proxy runs), None otherwise.

    The land masses are memoised in the run's cache folder, named by a digest of the
    communes' codes and polygons (``geometry``: their digests, when known), the settings
    and the code version.
    """
    if engine != "proxy":
        if options.liaisons is not None:
            msg = (f"les liaisons maritimes (--liaisons) servent au moteur proxy, pas au "
                   f"moteur « {engine} »")
            raise CoverageError(msg)
        return None
    memo = None
    if isinstance(inputs.communes, gpd.GeoDataFrame) and "geometry" in inputs.communes:
        shape = inputs.communes[[c for c in ("code_insee", "code_dep", "geometry")
                                 if c in inputs.communes.columns]]
        digest = json_digest([frame_digest(shape, geometry=geometry), settings.as_dict(),
                              code_version()])
        memo = out_dir / CACHE_DIR / f"{MEMO_PREFIX}{digest[:24]}.json"
    return proxy_inputs(inputs.communes, communes_run, services_run, settings,
                        options.liaisons, memo_file=memo)



# --- 2. Partition ----------------------------------------------------------------------------

def _hash_inputs(plan: _Plan) -> _Keys:
    """Prepare the run folder and hash the input files (memoised in the cache folder)."""
    out_dir = plan.out_dir
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
    if plan.engine == MATRIX_ENGINE:
        spec = _times_spec(plan.options, plan.settings)
        times = Path(str(spec.times))
        times_sha = file_sha256(times, hash_memo)
        spec = replace(spec, times_sha256=times_sha)
        input_files.setdefault("temps", {"path": relative_path(times), "sha256": times_sha,
                                         "bytes": times.stat().st_size})
    else:
        spec = EngineSpec(plan.engine, str(roads) if plan.engine == "road" else None,
                          str(cache_root / "network"), plan.settings,
                          ferries=plan.proxy.ferries if plan.proxy else None)
    return _Keys(input_files, roads_sha, spec, code_version(), part_cache)


def _partition(plan: _Plan, keys: _Keys) -> _Partitioned:
    """Split the run by département; key each partition for the cache."""
    com_all = task_frame(plan.proxy.communes if plan.proxy else plan.communes,
                         COMMUNE_TASK_COLUMNS)
    svc_all = task_frame(plan.proxy.services if plan.proxy else plan.services_run,
                         SERVICE_TASK_COLUMNS)
    com_hash, svc_hash = row_hashes(com_all), row_hashes(svc_all)
    com_dep = com_all["code_dep"].astype(str).to_numpy()
    # partition_services' rule, on arrays prepared once for all partitions
    ferries = keys.spec.ferries
    select = plan.engine == "proxy" and len(svc_all) > 0 and not (ferries and ferries.links)
    points = ServicePoints(svc_all) if select else None
    c_lon, c_lat = com_all["lon"].to_numpy(float), com_all["lat"].to_numpy(float)
    c_mass = land_masses_of(com_all) if select else None
    com_cols, com_dtypes = list(com_all.columns), list(com_all.dtypes)
    svc_cols, svc_dtypes = list(svc_all.columns), list(svc_all.dtypes)
    tasks: list[PartitionTask] = []
    for dept in plan.depts:
        c_sel = np.flatnonzero(com_dep == dept)
        com = _rows_of(com_all, c_sel)
        if points is not None and c_mass is not None and len(c_sel):
            s_sel = np.flatnonzero(partition_service_rows(
                c_lon[c_sel], c_lat[c_sel], c_mass[c_sel], dept, plan.engine, plan.settings,
                points))
        else:
            s_sel = np.arange(len(svc_all))
        svc = _rows_of(svc_all, s_sel)
        c_digest = rows_digest(com_cols, com_dtypes, com_hash[c_sel])
        key = partition_key(c_digest, rows_digest(svc_cols, svc_dtypes, svc_hash[s_sel]),
                            dept, keys.spec, keys.roads_sha, plan.types, keys.version)
        context = partition_key(c_digest, "", dept, keys.spec, keys.roads_sha, plan.types,
                                keys.version)
        tasks.append(PartitionTask(dept, key, com, svc, plan.types, keys.spec, context,
                                   svc_hash[s_sel]))
    return _Partitioned(tasks, svc_all, svc_hash)


def _rows_of(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Return the rows ``rows`` of ``frame``, index reset (a slice when they follow)."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and bool(np.all(np.diff(rows) == 1)):
        return frame.iloc[int(rows[0]):int(rows[-1]) + 1].reset_index(drop=True)
    return frame.iloc[rows].reset_index(drop=True)


def _run_key(plan: _Plan, tasks: Sequence[PartitionTask], version: str,
             communes_digest: str) -> str:
    """Return the key of the whole run: same key, same outputs."""
    waiting = plan.inputs.waiting
    return json_digest({
        "version": version, "contract": OUTPUT_CONTRACT_VERSION,
        "partitions": [t.key for t in tasks], "thresholds": list(plan.thresholds),
        "types": list(plan.types), "isochrones": plan.options.isochrones,
        "fictif": bool(plan.inputs.fictif),
        "communes": communes_digest,
        "services": frame_digest(plan.inputs.services),
        "waiting": frame_digest(waiting) if waiting is not None else None,
        "settings": plan.settings.as_dict(),
        # only when asked: the keys of runs without GeoJSON stay those of earlier versions
        **({"isochrones_geojson": True} if plan.options.isochrones_geojson else {}),
    })


# --- 3. Compute ------------------------------------------------------------------------------

def _incremental(plan: _Plan, keys: _Keys, task: PartitionTask,
                 old_services: pd.DataFrame | None) -> tuple[PartitionOutput, int] | None:
    """Update a partition cached under another key when only its services changed.

    Returns its output and the number of communes recomputed, or None (compute it in full):
    no cached entry of the same context (communes, engine, settings, code version), no
    stored services, or an engine other than ``proxy`` and ``road``.
    """
    if old_services is None or plan.engine not in ("proxy", "road"):
        return None
    prev = cache_previous(keys.part_cache, task.dept)
    if prev is None or prev.context != task.context:
        return None
    t0 = time.perf_counter()
    hashes = old_services[SERVICE_HASH_COLUMN].to_numpy(dtype=np.uint64)
    old = old_services[np.isin(hashes, prev.service_hashes)]
    if len(np.unique(prev.service_hashes)) != len(old):
        return None  # the stored services are not those of the entry
    old_hashes = old[SERVICE_HASH_COLUMN].to_numpy(dtype=np.uint64)
    old = old.drop(columns=SERVICE_HASH_COLUMN).reset_index(drop=True)
    new_hashes = np.asarray(task.service_hashes, dtype=np.uint64)
    change = ServiceChange(  # rows are told apart by the hashes of the partition keys
        removed=old[~np.isin(old_hashes, new_hashes)].reset_index(drop=True),
        added=task.services[~np.isin(new_hashes, old_hashes)].reset_index(drop=True))
    engine = engine_for(task.engine)
    mask = affected_communes(engine, task.communes, prev.output.access, old, task.services,
                             types=task.types, change=change)
    access = update_access(engine, task.communes, prev.output.access, task.services, mask,
                           task.types)
    out = PartitionOutput(task.dept, task.key, access, time.perf_counter() - t0,
                          prev.output.engine_parameters)
    return out, int(mask.sum())


def _compute(plan: _Plan, keys: _Keys, parts: _Partitioned,
             on_progress: ProgressCallback | None) -> _Computed:
    """Take the cached partitions, update or compute the others (and cache them)."""
    tasks = parts.tasks
    use_cache = plan.options.use_cache
    outputs: dict[str, PartitionOutput] = {}
    todo: list[PartitionTask] = []
    misses: list[PartitionTask] = []
    for task in tasks:  # the tables of cached partitions are read only when needed
        hit = (cache_read(keys.part_cache, task.dept, task.key, table=False) if use_cache
               else None)
        if hit is not None:
            outputs[task.dept] = hit
        else:
            misses.append(task)
    cached = [t.dept for t in tasks if t.dept in outputs]
    if cached:
        log.info("%d partition(s) unchanged, taken from the cache: %s", len(cached),
                 ", ".join(cached))
    old_services = services_read(keys.part_cache) if use_cache and misses else None
    updated: list[str] = []
    recomputed = 0
    for task in misses:
        inc = _incremental(plan, keys, task, old_services)
        if inc is None:
            todo.append(task)
            continue
        outputs[task.dept], n = inc
        cache_write(keys.part_cache, inc[0], context=task.context,
                    service_hashes=task.service_hashes)
        updated.append(task.dept)
        recomputed += n
    if updated:
        log.info("%d partition(s) updated incrementally (%d commune(s) recomputed): %s",
                 len(updated), recomputed, ", ".join(updated))
    done = len(cached) + len(updated)
    scheduler = plan.options.scheduler
    if todo and plan.engine == "road":
        # build the network once here (worker processes read its cache), and refuse one that
        # misses most communes before any partition is computed (issue 17)
        check_network_coverage(engine_for(keys.spec), plan.communes,
                               force=plan.options.force_network)
    by_dept = {t.dept: t for t in todo}
    for out in progress(execute(todo, scheduler=scheduler, workers=plan.options.workers),
                        total=len(todo), desc=f"partitions ({plan.engine})", unit="dépt"):
        task = by_dept[out.dept]
        if use_cache:  # a run without the cache leaves no partition cache behind
            cache_write(keys.part_cache, out, context=task.context,
                        service_hashes=task.service_hashes)
        outputs[out.dept] = out
        done += 1
        log.info("partition %s computed in %.2f s", out.dept, out.seconds)
        if on_progress is not None:
            on_progress("partitions", done, len(tasks))
    if misses and use_cache:
        services_write(keys.part_cache, parts.services, parts.service_hashes)
    return _Computed(outputs, [t.dept for t in misses], cached, updated, recomputed,
                     frozenset(cached))


# --- 4. Aggregate ----------------------------------------------------------------------------

def _partition_access(keys: _Keys, computed: _Computed, task: PartitionTask) -> pd.DataFrame:
    """Return a partition's ``acces_communes`` rows (read from the cache if not yet read)."""
    if task.dept in computed.unread:
        return cache_table(keys.part_cache, task.dept, task.key)
    return computed.outputs[task.dept].access


def _spliced_access(plan: _Plan, keys: _Keys, tasks: Sequence[PartitionTask],
                    computed: _Computed, previous: _PreviousRun) -> pd.DataFrame | None:
    """Return the run's access rows from the previous run's table and the changed partitions.

    The rows of a partition whose key is the one the previous run in the folder recorded
    are taken from that run's ``acces_communes`` (one file instead of one per partition);
    the others from the partitions. None when there is no such previous table or its rows
    do not match the partitions.
    """
    kept = [t for t in tasks if previous.partitions.get(t.dept) == t.key]
    if not kept or (prev := previous.table(ACCES_COMMUNES.name)) is None:
        return None
    codes = pd.Index(prev.table["code_insee"].astype(str).to_numpy(dtype=object), dtype=object)
    kept_codes = np.concatenate([t.communes["code_insee"].astype(str).to_numpy(dtype=object)
                                 for t in kept])
    rows = np.flatnonzero(codes.isin(kept_codes))
    if len(rows) != len(kept_codes) * len(plan.types):
        return None  # not the rows of those partitions
    fresh = [_partition_access(keys, computed, t) for t in tasks
             if previous.partitions.get(t.dept) != t.key]
    access = pd.concat([prev.table.iloc[rows], *fresh], ignore_index=True)
    return access.sort_values(["code_insee"], kind="mergesort").reset_index(drop=True)


def _aggregate(plan: _Plan, keys: _Keys, tasks: Sequence[PartitionTask], computed: _Computed,
               previous: _PreviousRun) -> dict[str, pd.DataFrame]:
    """Return the output tables by contract name (access, white zones, coverage, waiting)."""
    access = _spliced_access(plan, keys, tasks, computed, previous)
    if access is None:
        access = pd.concat([_partition_access(keys, computed, t) for t in tasks],
                           ignore_index=True)
        access = access.sort_values(["code_insee"], kind="mergesort").reset_index(drop=True)
    # the combined view once for all tables (each would add it again otherwise)
    full = pd.concat([access, combined_access(access)], ignore_index=True)
    tables: dict[str, pd.DataFrame] = {
        ACCES_COMMUNES.name: access,
        ZONES_BLANCHES.name: white_zones(full, plan.thresholds),
    }
    tables.update(coverage_tables(full, plan.communes, plan.thresholds))
    if plan.inputs.waiting is not None:
        rows, conflicts = reconcile_returns(plan.inputs.waiting)
        tables[LISTES_ATTENTE_DEPARTEMENTS.name] = indicators_for_run(rows, plan.communes)
        tables[CONFLITS_LISTES_ATTENTE.name] = conflicts
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


#: Services of one group from which the per-service bands are drawn by forked processes
#: when ``workers`` is not given (forking costs a fraction of a second; a road service's
#: bands about a tenth: ``benchmarks/bench_isochrones.py``).
MIN_SERVICES_FOR_PROCESSES = 64


def _isochrone_workers(workers: int | None, n_services: int) -> int:
    """Return the processes drawing per-service bands.

    ``workers`` when given, else the CPU count for at least
    :data:`MIN_SERVICES_FOR_PROCESSES` services, else 1.
    """
    if workers is not None:
        return workers
    return (os.cpu_count() or 1) if n_services >= MIN_SERVICES_FOR_PROCESSES else 1


def _write_isochrones(plan: _Plan, spec: EngineSpec, out_dir: Path
                      ) -> tuple[str | None, list[str]]:
    """Write the run's isochrone bands into ``<out_dir>/isochrones.gpkg`` (and GeoJSON).

    Returns
    -------
    tuple
        The GeoPackage's name (None, logged, when there is no service) and the GeoJSON
        files' paths relative to the run folder.
    """
    if plan.services_run.empty:
        log.warning("aucun service : isochrones.gpkg n'est pas écrit")
        return None, []
    engine = engine_for(spec)
    groups = _isochrone_groups(spec, plan.communes.to_crs(CRS_INPUT_OUTPUT),
                               plan.services_run.to_crs(CRS_INPUT_OUTPUT))
    types_parts, service_parts = [], []
    for c, s, crs in groups:
        if s.empty or c.empty:
            continue
        types_parts.append(isochrones_types(engine, c, s, settings=plan.settings, crs=crs))
        service_parts.append(isochrones_services(
            engine, c, s, settings=plan.settings, crs=crs,
            workers=_isochrone_workers(plan.options.workers, len(s))))
    if not types_parts:
        return None, []
    types_gdf = gpd.GeoDataFrame(pd.concat(types_parts, ignore_index=True),
                                 crs=CRS_INPUT_OUTPUT)
    services_gdf = gpd.GeoDataFrame(pd.concat(service_parts, ignore_index=True),
                                    crs=CRS_INPUT_OUTPUT)
    geojson_dir = out_dir / ISOCHRONES_GEOJSON_DIR if plan.options.isochrones_geojson else None
    written = write_isochrones(types_gdf, services_gdf, out_dir / ISOCHRONES_FILE,
                               geojson_dir=geojson_dir)
    geojson = [p.relative_to(out_dir).as_posix() for p in written if p.suffix == ".geojson"]
    return ISOCHRONES_FILE, geojson


# --- 5. Write --------------------------------------------------------------------------------

def _write_communes(plan: _Plan, out_dir: Path, communes_digest: str) -> None:
    """Write ``communes.parquet``, or link the previous run's when the communes are the same.

    ``<out>/.cache/communes_file.json`` records the digest of the communes written and the
    SHA-256 of the file: when both still hold, the file is linked (or copied) into the
    staging folder instead of being written again (34,868 polygons take seconds).
    """
    memo = plan.out_dir / CACHE_DIR / COMMUNES_MEMO
    previous = plan.out_dir / COMMUNES_FILE
    target = out_dir / COMMUNES_FILE
    try:
        recorded = json.loads(memo.read_text(encoding="utf-8")) if memo.exists() else {}
    except (OSError, json.JSONDecodeError):
        recorded = {}
    if (recorded.get("digest") == communes_digest and previous.is_file()
            and sha256_file(previous) == recorded.get("sha256")):
        try:
            os.link(previous, target)
        except OSError:
            shutil.copyfile(previous, target)
        return
    write_geoparquet(plan.communes, target)
    write_text_atomic(memo, json.dumps({"digest": communes_digest,
                                        "sha256": sha256_file(target)}))


class _PreviousRun:
    """The tables of the previous run in the folder, as ``.cache/tables_file.json`` records.

    ``partitions`` are the partition keys that run recorded (département → key); each
    table is read at most once (:func:`_previous_table`).
    """

    def __init__(self, plan: _Plan) -> None:
        """Read the memo of the previous run's tables (nothing without the cache)."""
        self.plan = plan
        self.memo = (_read_memo(plan.out_dir / CACHE_DIR / TABLES_MEMO)
                     if plan.options.use_cache else {})
        parts = self.memo.get("partitions")
        self.partitions: dict[str, str] = dict(parts) if isinstance(parts, dict) else {}
        self._tables: dict[str, PreviousTable | None] = {}

    def table(self, name: str, rows: int | None = None) -> PreviousTable | None:
        """Return the previous table ``name`` (None: absent, changed, or not ``rows`` rows)."""
        if name not in self._tables:
            self._tables[name] = _previous_table(self.plan, name, rows, self.memo)
        return self._tables[name]


def _previous_table(plan: _Plan, name: str, rows: int | None, memo: dict[str, Any]
                    ) -> PreviousTable | None:
    """Return the table ``name`` as the previous run in the folder wrote it, or None.

    Only when ``<out>/.cache/tables_file.json`` recorded it under the same writer
    (:func:`coverage.io.writers.writer_version`), its CSV and Parquet files still have the
    SHA-256 recorded, and it has ``rows`` rows when given (the writer copies the lines of
    the rows left unchanged, :class:`coverage.io.writers.PreviousTable`).
    """
    if not plan.options.use_cache or memo.get("writer") != writer_version():
        return None
    folder = plan.out_dir / TABLES_DIR
    csv_path, parquet_path = folder / f"{name}.csv", folder / f"{name}.parquet"
    files = memo.get("files", {})
    try:
        if (not csv_path.is_file() or not parquet_path.is_file()
                or (rows is not None
                    and pq.ParquetFile(parquet_path).metadata.num_rows != rows)):
            return None
        parquet = parquet_path.read_bytes()
        csv = csv_path.read_bytes()
    except (OSError, ValueError):
        return None
    if (hashlib.sha256(csv).hexdigest() != files.get(f"{TABLES_DIR}/{name}.csv")
            or hashlib.sha256(parquet).hexdigest() != files.get(f"{TABLES_DIR}/{name}.parquet")):
        return None
    return PreviousTable(pd.read_parquet(io.BytesIO(parquet)), csv)


def _read_memo(path: Path) -> dict[str, Any]:
    """Return a JSON memo of ``.cache`` ({} when absent or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_tables_memo(plan: _Plan, tasks: Sequence[PartitionTask], manifest: dict[str, Any]
                      ) -> None:
    """Record the tables just switched into place and their partitions' keys.

    (:class:`_PreviousRun`). Written after the switch: a run killed before leaves the
    memo of the run before, whose SHA-256 no longer match (nothing is reused).
    """
    if not plan.options.use_cache:
        return
    outputs = manifest.get(OUTPUTS_KEY, {})
    files = {rel: entry["sha256"] for rel, entry in outputs.items()
             if rel.startswith(f"{TABLES_DIR}/") and rel.endswith((".csv", ".parquet"))}
    write_text_atomic(plan.out_dir / CACHE_DIR / TABLES_MEMO, json.dumps({
        "writer": writer_version(), "files": files,
        "partitions": {t.dept: t.key for t in tasks}}))


def _write_tables(plan: _Plan, tables: dict[str, pd.DataFrame], out_dir: Path,
                  communes_digest: str, previous: _PreviousRun) -> None:
    """Write the tables (CSV, Parquet, schema) and the communes and services (GeoParquet).

    The CSV lines of the rows a table shares with the previous run's are copied
    (:func:`_previous_table`): the files are those a whole write gives.
    """
    tables_dir = out_dir / TABLES_DIR
    for name, df in tables.items():
        write_table(df, OUTPUT_CONTRACTS[name], tables_dir,
                    previous=previous.table(name, len(df)))
    _write_communes(plan, out_dir, communes_digest)
    write_geoparquet(plan.inputs.services, out_dir / SERVICES_FILE)
    if plan.inputs.waiting is not None:  # the shared follow-up (secrecy applied)
        followup_for_run(plan.inputs.waiting, RunFollowup(
            plan.communes, plan.inputs.services, tables.get(COUVERTURE_DEPARTEMENTS.name),
            plan.inputs.waiting_files), out_dir, settings=plan.settings)


def _isochrones_step(plan: _Plan, spec: EngineSpec, timings: dict[str, float], out_dir: Path
                     ) -> tuple[str | None, list[str]]:
    """Write the isochrones into the staging folder ``out_dir`` when asked.

    Those of an earlier run are removed when the new run is switched into place.
    """
    if plan.options.isochrones and plan.engine == MATRIX_ENGINE:
        log.warning("isochrones non calculées : un tableau de temps (moteur matrice) ne "
                    "donne pas de temps hors des communes et services qu'il relie")
    elif plan.options.isochrones:
        with _timed(timings, "isochrones_s"):
            return _write_isochrones(plan, spec, out_dir)
    return None, []


def _record(plan: _Plan, keys: _Keys, tasks: Sequence[PartitionTask], computed: _Computed,
            written: _Written, run_key: str, timings: dict[str, float]) -> RunRecord:
    """Return what the manifest of the run records."""
    outputs = computed.outputs
    engine_parameters = next((outputs[t.dept].engine_parameters for t in tasks
                              if outputs[t.dept].engine_parameters), {})
    warnings = list(plan.inputs.warnings or [])
    if plan.times_check is not None:
        engine_parameters = {**engine_parameters, **plan.times_check.record()}
        note = plan.times_check.warning(str(engine_parameters.get("fichier", "")))
        warnings += [note] if note else []
    if plan.proxy is not None:  # what engine_of_run needs to rebuild the engine exactly
        engine_parameters = {**engine_parameters,
                             RECORD_KEY: plan.proxy.recorded.as_record()}
    fictif = bool(plan.inputs.fictif)
    return RunRecord(
        fictif=fictif, fictional_label=fictional_label(plan.inputs) if fictif else None,
        engine=plan.engine, engine_parameters=engine_parameters, depts=plan.depts,
        types=plan.types, thresholds_min=plan.thresholds, settings=plan.settings,
        inputs=keys.input_files, partitions=partitions_record(tasks, outputs, computed.cached),
        buffer_km=buffer_km(plan.engine, plan.settings), scheduler=plan.options.scheduler,
        tables=written.tables, isochrones_file=written.isochrones_file,
        isochrones_geojson=written.isochrones_geojson, code_version=keys.version,
        run_key=run_key, timings=timings, warnings=warnings,
        avertissements=[*(plan.proxy.warnings if plan.proxy else ()),
                        *empty_offer_warnings(plan.services_run, plan.depts, plan.types)])


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
    check_run_out(plan.out_dir, inputs=run_input_files(inputs, plan.options.times),
                  force=plan.options.force_out)
    with locked_run_folder(plan.out_dir) as folder, writing_into(plan.out_dir):
        return _run_locked(plan, folder, on_progress, timings, t_start)


def _run_locked(plan: _Plan, folder: RunFolder, on_progress: ProgressCallback | None,
                timings: dict[str, float], t_start: float) -> RunResult:
    """Run the checked plan in its locked folder: stage every output, then switch."""
    fictif = bool(plan.inputs.fictif)
    with _timed(timings, "partitions_s"):
        keys = _hash_inputs(plan)
        if plan.proxy is not None:
            save_land_masses(plan.proxy)
        parts = _partition(plan, keys)
        tasks = parts.tasks
    communes_digest = frame_digest(plan.communes, geometry=plan.communes_geometry)
    run_key = _run_key(plan, tasks, keys.version, communes_digest)
    if plan.options.use_cache and (kept := reusable_outputs(plan.out_dir, run_key)):
        timings["total_s"] = time.perf_counter() - t_start
        log.info("nothing changed since the previous run: outputs in %s kept", plan.out_dir)
        return RunResult(plan.out_dir, kept[0], kept[1], plan.engine, fictif, [],
                         [t.dept for t in tasks], reused=True, timings=timings)
    with _timed(timings, "compute_s"):
        computed = _compute(plan, keys, parts, on_progress)
    reached("computed")
    with _timed(timings, "aggregate_s"):
        previous = _PreviousRun(plan)
        tables = _aggregate(plan, keys, tasks, computed, previous)
    staging = folder.stage()
    with _timed(timings, "write_s"):
        _write_tables(plan, tables, staging, communes_digest, previous)
    iso_file, iso_geojson = _isochrones_step(plan, keys.spec, timings, staging)
    timings["total_s"] = time.perf_counter() - t_start
    written = _Written(list(tables), iso_file, iso_geojson)
    manifest = write_manifest(staging, _record(plan, keys, tasks, computed, written,
                                               run_key, timings))
    reached("staged")
    folder.switch()
    reached("switched")
    _save_tables_memo(plan, tasks, manifest)
    return RunResult(plan.out_dir, manifest, tables, plan.engine, fictif, computed.computed,
                     computed.cached, reused=False, timings=timings,
                     incremental=computed.updated,
                     recomputed_communes=computed.recomputed_communes)
