"""Travel-time engines: the engine contract, the road graph, the straight-line proxy.

* :mod:`coverage.routing.base` — the :class:`~coverage.routing.base.Engine` contract that
  every stage uses (minutes, NaN when unreachable, ``moteur`` on every row);
* :mod:`coverage.routing.network` — OSM / GraphML file → car graph → CSR matrices;
* :mod:`coverage.routing.road` — :class:`~coverage.routing.road.RoadEngine`: snapping and
  the nearest service per type by Dijkstra on that graph;
* :mod:`coverage.routing.matrix` — bounded per-source searches (matrices, isochrones);
* :mod:`coverage.routing.proxy` — :class:`~coverage.routing.proxy.ProxyEngine`: straight
  line × detour ÷ speed by density level;
* :mod:`coverage.routing.imported` — :class:`~coverage.routing.imported.ImportedEngine`
  (``matrice``): minutes looked up in a time table made by another router (``--temps``).
* :mod:`coverage.routing.calibration` — fit of the proxy's parameters to real road times
  (``zones-blanches calibrer``).

Two entry points pick an engine: :func:`make_engine` for a new run, :func:`engine_of_run` —
the one way to rebuild the engine of a finished run (siting, the app's upload and
« Nouveau site » pages).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from coverage.errors import CoverageError
from coverage.results import RunOutputs, run_roads_path, run_settings
from coverage.routing.base import Engine
from coverage.routing.imported import ENGINE_NAME as MATRIX_ENGINE
from coverage.routing.imported import ImportedEngine
from coverage.routing.landmass import RECORD_KEY, FerryNetwork, RunLandMasses, links_of_record
from coverage.routing.network import load_network
from coverage.routing.proxy import ProxyEngine
from coverage.routing.road import RoadEngine
from coverage.settings import Settings, metric_crs_for

__all__ = ["Engine", "RunEngine", "engine_of_run", "make_engine"]

log = logging.getLogger(__name__)

#: Notes of :func:`engine_of_run` (shown to users, in French).
NOTE_ROAD = "road : graphe routier du run ({name})"
NOTE_PROXY_RUN = "proxy : distance à vol d'oiseau × détour ÷ vitesse (comme le run)"
NOTE_ROADS_MISSING = ("proxy : le fichier routier du run n'est plus disponible ; temps "
                      "estimés à vol d'oiseau, existants compris")
NOTE_ROADS_UNREADABLE = "proxy : le réseau routier du run n'a pas pu être chargé ({error})"
NOTE_TIMES = ("matrice : tableau de temps du run ({name}) ; un site absent du tableau est "
              "injoignable")
NOTE_TIMES_MISSING = ("proxy : le tableau de temps du run ({name}) n'est plus disponible ou a "
                      "changé ; temps estimés à vol d'oiseau, existants compris")
#: Road engines kept in memory by :func:`engine_of_run` (one graph each).
ROAD_ENGINES_CACHED = 4


def make_engine(engine: str | None = None, roads: Path | str | None = None,
                settings: Settings = Settings(), crs: str | None = None, *,
                cache_dir: Path | str | None = None, times: Path | str | None = None,
                times_unit: str | None = None, ferries: FerryNetwork | None = None) -> Engine:
    """Build the travel-time engine of a run.

    Parameters
    ----------
    engine
        ``"road"``, ``"proxy"``, ``"matrice"`` or ``None`` (matrice when ``times`` is
        given, else road when ``roads`` is given, else proxy).
    roads
        OSM / GraphML road file (needed by the road engine).
    settings
        Run settings.
    crs
        Metric CRS of the road network (``None``: chosen from the data's location).
    cache_dir
        Network cache folder (default ``$ZB_CACHE_DIR`` or ``~/.cache/zones-blanches``).
    times
        Time table of the ``matrice`` engine (:func:`coverage.routing.imported.read_times`).
    times_unit
        Unit of its times (``min``, ``s``, ``h``; default: from its columns, else minutes).
    ferries
        Ferry links of the proxy engine (:func:`coverage.routing.landmass.ferry_network`).

    Returns
    -------
    Engine
        A :class:`~coverage.routing.road.RoadEngine`, a
        :class:`~coverage.routing.proxy.ProxyEngine` or an
        :class:`~coverage.routing.imported.ImportedEngine`.

    Raises
    ------
    CoverageError
        Unknown engine name, the road engine without a road file, or the matrice engine
        without a time table (or a bad table: :class:`~coverage.errors.InputError`).
    """
    if engine is None:
        engine = MATRIX_ENGINE if times is not None else "road" if roads is not None \
            else "proxy"
    if engine == MATRIX_ENGINE:
        if times is None:
            msg = "le moteur matrice demande un tableau de temps : donnez --temps FICHIER"
            raise CoverageError(msg)
        return ImportedEngine.from_file(times, settings, unit=times_unit)
    if engine == "proxy":
        return ProxyEngine(settings, ferries)
    if engine == "road":
        if roads is None:
            msg = ("le moteur road demande un fichier de réseau routier (OSM .pbf/.osm/.osm.gz ou "
                   ".graphml)")
            raise CoverageError(msg)
        network = load_network(roads, settings=settings, crs=crs, cache_dir=cache_dir)
        return RoadEngine(network, settings)
    msg = f"moteur inconnu « {engine} » : attendu road, proxy ou matrice"
    raise CoverageError(msg)


@dataclass(frozen=True)
class RunEngine:
    """The engine rebuilt for a finished run, and a French note naming it and why.

    Attributes
    ----------
    engine
        The engine (``road`` or ``proxy``).
    note
        For the user, e.g. « road : graphe routier du run (routes.osm) » or « proxy : le
        fichier routier du run n'est plus disponible … ».
    """

    engine: Engine
    note: str


@dataclass(frozen=True)
class _RoadKey:
    """What a memoised road engine depends on: the file (as it is now), CRS and settings."""

    path: str
    mtime_ns: int
    size: int
    crs: str
    snap_max_m: float
    access_speed_kmh: float
    include_service_roads: bool
    ferries: bool
    default_speeds_kmh: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, roads: Path, crs: str, settings: Settings) -> _RoadKey:
        """Return the key of ``roads`` (resolved) with ``crs`` and the road settings."""
        path = roads.resolve()
        stat = path.stat()
        return cls(str(path), stat.st_mtime_ns, stat.st_size, crs, settings.snap_max_m,
                   settings.access_speed_kmh, settings.include_service_roads,
                   settings.ferries, tuple(sorted(settings.default_speeds_kmh.items())))

    def settings(self, base: Settings) -> Settings:
        """Return ``base`` with the road settings of the key."""
        return replace(base, snap_max_m=self.snap_max_m,
                       access_speed_kmh=self.access_speed_kmh,
                       include_service_roads=self.include_service_roads, ferries=self.ferries,
                       default_speeds_kmh=dict(self.default_speeds_kmh))


@lru_cache(maxsize=ROAD_ENGINES_CACHED)
def _road_engine(key: _RoadKey) -> Engine:
    """Return the road engine of a key, built once per process (shared read-only)."""
    log.info("building the road engine of %s (%s)", key.path, key.crs)
    return make_engine("road", Path(key.path), key.settings(Settings()), key.crs)


def _run_crs(run: RunOutputs, dept: str) -> str:
    """Return the metric CRS the run's network used (manifest), else that of ``dept``."""
    crs = _engine_parameters(run).get("crs_metrique")
    return str(crs or metric_crs_for(dept))


def _missing_roads_error(run: RunOutputs) -> CoverageError:
    """Return the error of a road run whose road file is gone (it names the file)."""
    inputs = run.manifest.get("inputs") or {}
    roads = inputs.get("roads") if isinstance(inputs, dict) else None
    name = roads.get("path") if isinstance(roads, dict) else roads
    msg = (f"les temps du calcul {run.run_dir} viennent du réseau routier mais son fichier "
           f"routier {name or '(sans nom)'} est introuvable : les temps des nouveaux sites "
           "doivent venir du même moteur ; remettez le fichier ou relancez le calcul "
           "avec le moteur proxy")
    return CoverageError(msg)


def engine_of_run(run: RunOutputs, *, dept: str, fallback_to_proxy: bool = False
                  ) -> RunEngine:
    """Rebuild the engine that timed a finished run, with the run's settings.

    A ``road`` run gets its road graph back from the road file named by the manifest
    (:func:`coverage.results.run_roads_path`), in the metric CRS it used
    (``engine.parameters.crs_metrique``, else :func:`coverage.settings.metric_crs_for` of
    ``dept``). Road engines are memoised per process (file, modification time, CRS, road
    settings), so the app does not rebuild the graph on every rerun. Any other run gets the
    proxy engine with the run's detour factor and speeds, and with the land masses, service
    densities and ferry links the run recorded (``engine.parameters.masses_terrestres`` and
    ``liaisons``, :class:`coverage.routing.landmass.RunLandMasses`): new sites are timed
    across the sea as the run timed its services. Runs older than that record get the land
    masses of their communes' polygons and no ferry link.

    Parameters
    ----------
    run
        The run folder read back.
    dept
        Département whose metric CRS is used when the manifest does not record one.
    fallback_to_proxy
        When the road file of a road run is missing or unreadable: False raises, True
        returns the proxy engine with a note saying why (the app's pages).

    Returns
    -------
    RunEngine
        The engine and a French note naming it and the reason for the choice.

    Raises
    ------
    CoverageError
        ``fallback_to_proxy`` is False and the road file of a road run is not found (the
        message names it) or cannot be read: new sites must be timed by the same engine
        as the existing services.
    """
    settings = run_settings(run)
    if run.engine == MATRIX_ENGINE:
        return _times_engine_of_run(run, settings, fallback_to_proxy=fallback_to_proxy)
    if run.engine != "road":
        return RunEngine(_proxy_engine_of_run(run, settings), NOTE_PROXY_RUN)
    roads = run_roads_path(run)
    if roads is None:
        if not fallback_to_proxy:
            raise _missing_roads_error(run)
        return RunEngine(ProxyEngine(settings), NOTE_ROADS_MISSING)
    try:
        engine = _road_engine(_RoadKey.of(roads, _run_crs(run, dept), settings))
    except (CoverageError, OSError) as exc:
        if not fallback_to_proxy:
            raise
        return RunEngine(ProxyEngine(settings), NOTE_ROADS_UNREADABLE.format(error=exc))
    return RunEngine(engine, NOTE_ROAD.format(name=roads.name))


def _engine_parameters(run: RunOutputs) -> dict[str, Any]:
    """Return the manifest's ``engine.parameters`` (empty when absent or malformed)."""
    engine = run.manifest.get("engine") or {}
    params = engine.get("parameters") if isinstance(engine, dict) else None
    return params if isinstance(params, dict) else {}


def _proxy_engine_of_run(run: RunOutputs, settings: Settings) -> ProxyEngine:
    """Rebuild a proxy run's engine with its recorded land masses and ferry links."""
    params = _engine_parameters(run)
    known = RunLandMasses.from_record(params.get(RECORD_KEY))
    if known is None:  # a run older than the record: polygons, no link
        return ProxyEngine(settings)
    return ProxyEngine(settings, known.ferries(links_of_record(params.get("liaisons"))),
                       known=known)


def _times_engine_of_run(run: RunOutputs, settings: Settings, *, fallback_to_proxy: bool
                         ) -> RunEngine:
    """Rebuild the ``matrice`` engine of a run from its table (same file, same SHA-256)."""
    params = _engine_parameters(run)
    path = Path(str(params.get("chemin") or ""))
    name = str(params.get("fichier") or path.name or "?")
    unit = params.get("unite")
    found = next((q for q in (path, run.run_dir / path) if str(path) and q.is_file()), None)
    if found is not None:
        try:
            kind = params.get("destinations")  # what the run read the table as
            imported = ImportedEngine.from_file(
                found, settings, unit=unit if unit in ("min", "s", "h") else None,
                destinations=kind if kind in ("services", "communes") else None)
        except (CoverageError, OSError):
            imported = None
        if imported is not None and imported.table.sha256 == params.get("sha256"):
            return RunEngine(imported, NOTE_TIMES.format(name=name))
    if not fallback_to_proxy:
        msg = (f"les temps du calcul {run.run_dir} viennent du tableau {name}, "
               "introuvable ou modifié depuis : les temps des nouveaux sites doivent venir "
               "du même moteur ; remettez le fichier ou relancez le calcul")
        raise CoverageError(msg)
    return RunEngine(ProxyEngine(settings), NOTE_TIMES_MISSING.format(name=name))
