"""Road engine: snap places to the network, nearest service per type by Dijkstra.

:class:`RoadEngine` is the ``road`` engine of the :class:`~coverage.routing.base.Engine`
contract: it routes on a :class:`~coverage.routing.network.RoadNetwork` with the compiled
exact searches of :class:`~coverage.routing.kernel.SearchGraph` (nearest service, matrix)
and ``scipy.sparse.csgraph.dijkstra`` (per-source rows). Its bounded searches (the
service × commune matrix and the per-source minutes of the isochrones) are those of
:class:`~coverage.routing.matrix.BoundedSearch`; :func:`coverage.routing.make_engine` picks
an engine.

Method of :class:`RoadEngine` (all times in minutes, distances in metres inside, km out):

* **Snapping**: each commune's representative point and each service go to the nearest
  graph node (KD-tree on the nodes' coordinates in the network's metric CRS, built once
  per network: ``RoadNetwork.snap_tree``; many places are queried along a Hilbert curve,
  the same answers with fewer cache misses). The
  straight connector leg is timed at ``settings.access_speed_kmh``. A place farther than
  ``settings.snap_max_m`` from every node is flagged ``acces_hors_reseau`` and gets NaN
  minutes: it is never silently snapped across a valley. Such services are not used.
* **Direction**: times are those of the family's trip, commune → service, so the routing
  runs on the reversed graph from the services (this matters on one-way streets).
* **Nearest service per type**: one exact multi-source search per type on the reversed
  graph renumbered along a Hilbert curve (built once per engine,
  :meth:`RoadEngine._compiled`): each service starts at its snapped node with its
  connector minutes, and the search gives, for every node, the minutes to the nearest
  service, which service it is, and the road metres of the path (carried along the
  search tree). The minutes are those of ``scipy.sparse.csgraph.dijkstra`` on a graph
  with one virtual node per service, bit for bit. Commune minutes = node minutes + the
  commune's connector leg; the road distance (km) includes both connector legs. On graphs
  of ≥ ``PARALLEL_MIN_NODES`` nodes the types run in threads when a CPU is idle (the
  compiled search releases the GIL; ``RoadEngine(workers=1)`` turns it off,
  ``workers=2`` forces two). :meth:`RoadEngine.nearest` reads the
  searches at the communes' nodes only; :meth:`RoadEngine.nearest_with_node_minutes` also
  returns every node's minutes.
* **Bounded matrix** and **per-source minutes for the isochrones**: see
  :mod:`coverage.routing.matrix` (one bounded search per service node; on the disc it can
  reach for the isochrones).

A road file that does not cover the run's communes (another country, a partial extract)
would give a run where every commune is unreachable: :meth:`RoadEngine.snap_coverage`
measures the share of communes within ``settings.snap_max_m`` of the network, and
:func:`require_snap_coverage` refuses a run where more than
:data:`MAX_OFF_NETWORK_SHARE` of them fall off it, unless forced.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from coverage._validate import require_columns
from coverage.errors import NetworkCoverageError
from coverage.geo import project_lonlat
from coverage.labels import fr_decimal, fr_int, fr_percent
from coverage.routing.base import empty_matrix, empty_nearest, lonlat
from coverage.routing.kernel import SearchGraph, hilbert_order
from coverage.routing.matrix import BoundedSearch, Snap
from coverage.routing.network import RoadNetwork
from coverage.settings import Settings

__all__ = [
    "MAX_OFF_NETWORK_SHARE",
    "PARALLEL_MIN_NODES",
    "RoadEngine",
    "Snap",
    "SnapCoverage",
    "check_network_coverage",
    "require_snap_coverage",
]

logger = logging.getLogger(__name__)

#: Graphs with at least this many nodes run the per-type passes of ``nearest`` in parallel
#: threads (see :meth:`RoadEngine._type_workers`).
PARALLEL_MIN_NODES = 1_000_000
#: Largest share of a run's communes that may fall off the road network (farther than
#: ``settings.snap_max_m`` from every node) before the run is refused (unless forced).
MAX_OFF_NETWORK_SHARE = 0.5

_BBox = tuple[float, float, float, float]


def _bbox(lon: np.ndarray, lat: np.ndarray) -> _BBox:
    """Return ``(min lon, min lat, max lon, max lat)`` of finite points (NaN when none)."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return (np.nan, np.nan, np.nan, np.nan)
    return (float(lon[ok].min()), float(lat[ok].min()), float(lon[ok].max()),
            float(lat[ok].max()))


def _fr_bbox(box: _BBox) -> str:
    """Return a lon/lat box in French (degrees, 2 decimals)."""
    return (f"longitudes {fr_decimal(box[0], 2)} à {fr_decimal(box[2], 2)}, latitudes "
            f"{fr_decimal(box[1], 2)} à {fr_decimal(box[3], 2)}")


@dataclass(frozen=True)
class SnapCoverage:
    """How many of a run's communes the road network reaches (within the snap distance).

    Attributes
    ----------
    source
        The road file.
    communes
        Communes checked (those with a representative point).
    snapped
        Communes within ``snap_max_m`` of a network node.
    snap_max_m
        The snap distance, metres.
    network_bbox, communes_bbox
        ``(min lon, min lat, max lon, max lat)``, degrees EPSG:4326.
    """

    source: str
    communes: int
    snapped: int
    snap_max_m: float
    network_bbox: _BBox
    communes_bbox: _BBox

    @property
    def share(self) -> float:
        """Share of the communes on the network, 0–1 (1 when there is none to check)."""
        return self.snapped / self.communes if self.communes else 1.0

    @property
    def boxes_overlap(self) -> bool:
        """Whether the network's and the communes' lon/lat boxes intersect."""
        n, c = self.network_bbox, self.communes_bbox
        return bool(n[0] <= c[2] and c[0] <= n[2] and n[1] <= c[3] and c[1] <= n[3])

    def line(self) -> str:
        """Return the French report line: communes on the network, share, snap distance."""
        return (f"réseau routier {self.source} : {fr_int(self.snapped)} communes sur "
                f"{fr_int(self.communes)} ({fr_percent(self.share)}) à moins de "
                f"{fr_int(self.snap_max_m)} m d'un nœud du réseau")

    def refusal(self) -> str:
        """Return the French error of a network that misses most communes."""
        where = ("leurs emprises ne se recouvrent pas : le fichier routier couvre-t-il un "
                 "autre territoire ?" if not self.boxes_overlap else
                 "l'extrait est-il incomplet ou coupé ?")
        return (f"le réseau routier {self.source} ne dessert que {fr_int(self.snapped)} "
                f"communes sur {fr_int(self.communes)} ({fr_percent(self.share)} à moins de "
                f"{fr_int(self.snap_max_m)} m d'un nœud) ; emprise du réseau : "
                f"{_fr_bbox(self.network_bbox)} ; emprise des communes : "
                f"{_fr_bbox(self.communes_bbox)} ; {where} Donnez le fichier routier du "
                "territoire, ou relancez avec --force-reseau pour calculer quand même (les "
                "communes hors réseau seront « non accessibles »).")


def check_network_coverage(engine: object, communes: pd.DataFrame, *, force: bool = False
                           ) -> SnapCoverage | None:
    """Report and check the share of a run's communes on the road network.

    Parameters
    ----------
    engine
        The run's engine; only a :class:`RoadEngine` is checked (others: None).
    communes
        The run's communes (``lon``, ``lat`` in EPSG:4326).
    force
        Accept a network that misses most communes (``--force-reseau``).

    Returns
    -------
    SnapCoverage or None
        What was measured (logged: a warning when a commune is off the network).

    Raises
    ------
    NetworkCoverageError
        See :func:`require_snap_coverage`.
    """
    if not isinstance(engine, RoadEngine) or not len(communes):
        return None
    coverage = engine.snap_coverage(communes)
    level = logging.INFO if coverage.snapped == coverage.communes else logging.WARNING
    logger.log(level, "%s", coverage.line())
    require_snap_coverage(coverage, force=force)
    return coverage


def require_snap_coverage(coverage: SnapCoverage, *, force: bool = False,
                          max_off_share: float = MAX_OFF_NETWORK_SHARE) -> None:
    """Refuse a network that leaves most communes off it, unless ``force``.

    Parameters
    ----------
    coverage
        From :meth:`RoadEngine.snap_coverage`.
    force
        Accept the network anyway (the refusal is logged as a warning).
    max_off_share
        Largest accepted share of communes off the network, 0–1.

    Raises
    ------
    NetworkCoverageError
        More than ``max_off_share`` of the communes are off the network and not ``force``;
        the French message names the road file, the share and both extents.
    """
    if 1.0 - coverage.share <= max_off_share:
        return
    if force:
        logger.warning("--force-reseau : %s", coverage.refusal())
        return
    raise NetworkCoverageError(coverage.refusal())


class RoadEngine:
    """Travel times by road on an OSM car graph (``moteur = "road"``).

    Parameters
    ----------
    network
        The road network (see :func:`coverage.routing.network.load_network`).
    settings
        ``snap_max_m`` (metres) and ``access_speed_kmh`` (km/h) are used here.
    workers
        Threads for the per-type searches of :meth:`nearest` (None: automatic, see
        :meth:`_type_workers`; 1: one search after the other in the calling thread).
    """

    name = "road"

    def __init__(self, network: RoadNetwork, settings: Settings = Settings(), *,
                 workers: int | None = None) -> None:
        self.network = network
        self.settings = settings
        self.workers = workers
        self._tree = network.snap_tree  # built once per network, shared by its engines
        self._reverse: tuple[sp.csr_array, sp.csr_array] | None = None
        self._search = BoundedSearch(network)
        self._searches: dict[str, SearchGraph] = {}

    def _type_workers(self, n_types: int) -> int:
        """Return the threads for the per-type searches of :meth:`nearest` (1 = this one).

        The compiled search releases the GIL, so threads search at the same time in this
        process's memory (no fork, nothing copied). Two searches at once cost about 10 %
        more CPU than one after the other (they share the memory bus and the L3 cache:
        measured on the France-sized benchmark graph), so ``workers=None`` (auto) uses
        them only where they save wall time: on large graphs (≥ ``PARALLEL_MIN_NODES``),
        in a main process (a batch's worker processes already share the CPUs), and when
        a CPU is idle (1-minute load average ≤ CPUs − 1), one thread per idle CPU plus
        this one.
        """
        wanted = self.workers
        if wanted is None:
            if (self.network.n_nodes < PARALLEL_MIN_NODES
                    or multiprocessing.parent_process() is not None):
                return 1
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
            idle = cpus - os.getloadavg()[0] if hasattr(os, "getloadavg") else cpus - 1
            wanted = 1 + max(0, min(cpus - 1, int(idle)))
        return max(1, min(wanted, n_types))

    # -- graph views ---------------------------------------------------------------------
    def _graph(self) -> tuple[sp.csr_array, sp.csr_array]:
        """Reversed graph (minutes, metres): routing from services gives node → service."""
        if self._reverse is None:
            # transposition keeps explicit zeros; both matrices share one sparsity pattern,
            # so their data stay aligned arc by arc
            minutes = sp.csr_array(self.network.minutes.T.tocsr())
            metres = sp.csr_array(self.network.metres.T.tocsr())
            minutes.sort_indices()
            metres.sort_indices()
            self._reverse = (minutes, metres)
        return self._reverse

    def _routed(self, direction: str) -> sp.csr_array:
        """Return the graph searched from the services for ``direction`` (minutes)."""
        if _check_direction(direction) == "to_service":
            return self._graph()[0]
        return self.network.minutes

    def _snapped_services(self, services: pd.DataFrame) -> tuple[np.ndarray, Snap]:
        """Return the ``service_id`` values (object array) and the snapped services."""
        require_columns(services, ("service_id", "lon", "lat"), file="services")
        lon, lat = lonlat(services, "services")
        return services["service_id"].astype(str).to_numpy(dtype=object), self.snap(lon, lat)

    # -- snapping ------------------------------------------------------------------------
    def snap(self, lon: np.ndarray, lat: np.ndarray) -> Snap:
        """Snap EPSG:4326 points to the nearest node.

        Parameters
        ----------
        lon, lat
            Degrees, EPSG:4326.

        Returns
        -------
        Snap
            Node index, distance (metres, network CRS), connector minutes (NaN off the
            network) and the off-network flag (distance > ``settings.snap_max_m``).
        """
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        if lon.shape[0] == 0:
            empty = np.zeros(0)
            return Snap(np.zeros(0, dtype=np.int64), empty, empty, np.zeros(0, dtype=bool))
        x, y = project_lonlat(lon, lat, self.network.crs)
        dist, node = _query_in_curve_order(self._tree, x, y)
        off = ~np.isfinite(dist) | (dist > self.settings.snap_max_m)
        minutes = dist / 1000.0 / self.settings.access_speed_kmh * 60.0
        minutes[off] = np.nan
        return Snap(np.asarray(node, dtype=np.int64), dist, minutes, off)

    def snap_coverage(self, communes: pd.DataFrame) -> SnapCoverage:
        """Return how many communes are within ``settings.snap_max_m`` of the network.

        Parameters
        ----------
        communes
            Rows with ``lon``, ``lat`` (EPSG:4326 representative points); rows without
            coordinates are not counted.

        Returns
        -------
        SnapCoverage
            Counts, snap distance (metres) and both lon/lat extents (degrees).
        """
        require_columns(communes, ("lon", "lat"), file="communes")
        lon, lat = lonlat(communes, "communes")
        ok = np.isfinite(lon) & np.isfinite(lat)
        snap = self.snap(lon[ok], lat[ok])
        return SnapCoverage(
            source=self.network.report.source, communes=int(ok.sum()),
            snapped=int((~snap.off_network).sum()), snap_max_m=self.settings.snap_max_m,
            network_bbox=_bbox(self.network.lon, self.network.lat),
            communes_bbox=_bbox(lon[ok], lat[ok]))

    # -- multi-source pass ---------------------------------------------------------------
    def _compiled(self, direction: str) -> SearchGraph:
        """Return the compiled search graph of ``direction`` (built once per engine).

        The routed graph (minutes) and its aligned metres, renumbered along a Hilbert curve
        (:class:`~coverage.routing.kernel.SearchGraph`).
        """
        direction = _check_direction(direction)
        if direction not in self._searches:
            if direction == "to_service":
                minutes, metres = self._graph()
            else:
                minutes, metres = self.network.minutes, self.network.metres
            self._searches[direction] = SearchGraph(minutes, metres, self.network.x,
                                                    self.network.y)
        return self._searches[direction]

    def _multi_source(self, snap: Snap, *, targets: np.ndarray | None = None,
                      direction: str = "to_service",
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Minutes to the nearest snapped place for every node, which place, road metres.

        One compiled search from all on-network places, each starting at its node with its
        connector minutes (:meth:`SearchGraph.multi_source`).

        Parameters
        ----------
        snap
            The places (services); off-network ones are left out.
        targets
            Node indices whose road metres are wanted (e.g. the communes' nodes).
        direction
            ``to_service`` routes on the reversed graph.

        Returns
        -------
        tuple
            ``(minutes per node (inf unreachable), index of the place per node (−1),
            metres from each target to its place along the fastest path, connector of the
            place included (None without targets))``.
        """
        n = self.network.n_nodes
        ok = np.flatnonzero(~snap.off_network)
        if ok.shape[0] == 0:
            return (np.full(n, np.inf), np.full(n, -1, dtype=np.int64),
                    None if targets is None else np.full(targets.shape[0], np.nan))
        dist, which, length = self._compiled(direction).multi_source(snap.node[ok],
                                                                     snap.minutes[ok])
        place = np.where(which >= 0, ok[np.maximum(which, 0)], -1)
        if targets is None:
            return dist, place, None
        targets = np.asarray(targets, dtype=np.int64)
        root = place[targets]
        metres = length[targets] + snap.distance_m[np.maximum(root, 0)]
        metres[root < 0] = np.nan
        return dist, place, metres

    def node_minutes(self, services: pd.DataFrame, *, direction: str = "to_service"
                     ) -> np.ndarray:
        """Minutes between every node and the nearest of ``services`` (connector included).

        Parameters
        ----------
        services
            Rows with ``lon``, ``lat`` (EPSG:4326). Services beyond ``settings.snap_max_m``
            from the network are not used.
        direction
            ``"to_service"`` (default: the family's trip node → service, the same
            direction as :meth:`nearest`) or ``"from_service"`` (service → node).

        Returns
        -------
        numpy.ndarray
            float64, one value per node (minutes), NaN when unreachable.
        """
        require_columns(services, ("lon", "lat"), file="services")
        lon, lat = lonlat(services, "services")
        minutes, _, _ = self._multi_source(self.snap(lon, lat),
                                           direction=_check_direction(direction))
        minutes = minutes.copy()
        minutes[~np.isfinite(minutes)] = np.nan
        return minutes

    def node_minutes_per_source(self, services: pd.DataFrame, cutoff_min: float, *,
                                direction: str = "to_service"
                                ) -> tuple[np.ndarray, np.ndarray]:
        """Minutes between every node and each service, within a cut-off.

        Parameters
        ----------
        services
            Rows with ``service_id``, ``lon``, ``lat``.
        cutoff_min
            Cut-off, minutes (connector leg included); larger values are NaN.
        direction
            As in :meth:`node_minutes`.

        Returns
        -------
        tuple
            ``(service_ids (object array, in the order of the rows), minutes (float32
            array n_services × n_nodes, NaN beyond the cut-off, unreachable or for a service
            off the network))``. Memory is ``4 × n_services × n_nodes`` bytes: call it per
            partition, or use :meth:`node_minutes_per_source_sparse` (the same values, only
            the nodes reached; what the per-service isochrones use).
        """
        ids, snap = self._snapped_services(services)
        return ids, self._search.per_source_dense(self._routed(direction), snap, cutoff_min)

    def node_minutes_per_source_sparse(self, services: pd.DataFrame, cutoff_min: float, *,
                                       direction: str = "to_service"
                                       ) -> tuple[np.ndarray, sp.csr_array]:
        """Minutes between each service and the nodes it reaches within a cut-off, sparse.

        The same values as :meth:`node_minutes_per_source`, without the dense rows of every
        node: memory and time follow the nodes reached, not the size of the graph.

        Parameters
        ----------
        services
            Rows with ``service_id``, ``lon``, ``lat`` (EPSG:4326).
        cutoff_min
            Cut-off, minutes (connector leg included).
        direction
            As in :meth:`node_minutes`.

        Returns
        -------
        tuple
            ``(service_ids (object array, in the order of the rows), minutes (float32 CSR
            array n_services × n_nodes))``. Row ``i`` holds the nodes reached by service
            ``i`` within ``cutoff_min`` (column indices sorted) and their minutes; a stored
            value may be 0.0 (a service on a node), so read the stored entries
            (``indptr``/``indices``/``data``), never ``toarray()``: absent entries are
            beyond the cut-off, unreachable, or the service is off the network.
        """
        ids, snap = self._snapped_services(services)
        return ids, self._search.per_source_sparse(self._routed(direction), snap, cutoff_min)

    # -- Engine API ----------------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        """JSON-ready parameters: network source and counts, CRS, snapping, speeds."""
        rep = self.network.report
        return {
            "moteur": self.name,
            "methode": "plus court chemin exact (recherche multi-source compilée, mêmes "
                       "minutes que le Dijkstra de scipy.sparse.csgraph) sur le graphe "
                       "voiture OSM, commune → service, raccords au réseau à la vitesse "
                       "d'accès",
            "reseau": rep.source,
            "reseau_sha256": rep.details.get("file_sha256"),
            "noeuds": rep.nodes,
            "arcs": rep.arcs,
            "crs_metrique": self.network.crs,
            "snap_max_m": self.settings.snap_max_m,
            "access_speed_kmh": self.settings.access_speed_kmh,
            "include_service_roads": self.settings.include_service_roads,
            "ferries": self.settings.ferries,
            "default_speeds_kmh": dict(self.settings.default_speeds_kmh),
            "default_speeds_source": "coverage.settings.DEFAULT_SPEEDS_KMH (limites du "
                                     "Code de la route R413-2, réduites pour les petites "
                                     "classes)",
        }

    def nearest(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
                service_types: tuple[str, ...]) -> pd.DataFrame:
        """Nearest service of each type for every commune, by road.

        Parameters
        ----------
        communes
            ``code_insee``, ``lon``, ``lat`` (EPSG:4326 representative point).
        services
            ``service_id``, ``type_service``, ``lon``, ``lat``.
        service_types
            Types to compute (one multi-source search each).

        Returns
        -------
        pandas.DataFrame
            One row per commune × type (see :class:`Engine`); ``distance_km`` is the road
            length of the fastest path plus both straight connector legs, km.
        """
        return self._nearest(communes, services, service_types, node_minutes=False)[0]

    def nearest_with_node_minutes(
        self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
        service_types: tuple[str, ...],
    ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """:meth:`nearest`, plus the node minutes of each type from the same search.

        Returns
        -------
        tuple
            ``(nearest table, {type: node minutes})``; the node minutes are those of
            :meth:`node_minutes` (float64, NaN unreachable), ready for the isochrones
            without a second search.
        """
        return self._nearest(communes, services, service_types, node_minutes=True)

    def _nearest(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame,
                 service_types: tuple[str, ...], *, node_minutes: bool
                 ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """Nearest table (and every node's minutes when ``node_minutes``), one search a type.

        The table is built from the values read at the communes' nodes only; with
        ``node_minutes`` the searches also renumber their minutes back for every node.
        """
        require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
        require_columns(services, ("service_id", "type_service", "lon", "lat"), file="services")
        c_lon, c_lat = lonlat(communes, "communes")
        c_snap = self.snap(c_lon, c_lat)
        codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
        kinds = services["type_service"].astype(str).to_numpy(dtype=object)
        all_ids = services["service_id"].astype(str).to_numpy(dtype=object)
        ids, snaps = [], []
        for stype in service_types:
            rows = np.flatnonzero(kinds == stype)
            s_snap = self.snap(*lonlat(services.iloc[rows], "services"))
            if s_snap.off_network.any():
                logger.warning("%d service(s) de type %s à plus de %.0f m du réseau routier, "
                               "non utilisé(s)", int(s_snap.off_network.sum()),
                               stype, self.settings.snap_max_m)
            ids.append(all_ids[rows])
            snaps.append(s_snap)
        if not snaps:
            return empty_nearest(), {}
        results = self._passes(snaps, c_snap.node, node_minutes=node_minutes)
        n_c = codes.shape[0]
        k = len(snaps)
        minutes = np.empty(k * n_c)
        dist_km = np.empty(k * n_c)
        service_id = np.full(k * n_c, None, dtype=object)
        per_type: dict[str, np.ndarray] = {}
        for i, (stype, type_ids, (at_min, place, metres, node_min)) in enumerate(
                zip(service_types, ids, results, strict=True)):
            if node_min is not None:
                node_min[~np.isfinite(node_min)] = np.nan
                per_type[stype] = node_min
            part = slice(i * n_c, (i + 1) * n_c)
            got = at_min + c_snap.minutes
            reach = np.isfinite(got) & (place >= 0)
            got[~reach] = np.nan
            minutes[part] = got
            km = (metres + c_snap.distance_m) / 1000.0
            km[~reach] = np.nan
            dist_km[part] = km
            service_id[part][reach] = type_ids[place[reach]]
        out = pd.DataFrame({  # the dtypes of the Engine contract (see base.empty_nearest)
            "code_insee": np.tile(codes, k),
            "type_service": pd.Series(np.repeat(np.array(service_types, dtype=object), n_c),
                                      dtype=object),
            "minutes": minutes, "service_id": pd.Series(service_id, dtype=object),
            "distance_km": dist_km,
            "moteur": pd.Series(np.full(k * n_c, self.name, dtype=object), dtype=object),
            "acces_hors_reseau": np.tile(c_snap.off_network, k)})
        return out, per_type

    def _pass(self, snap: Snap, targets: np.ndarray, node_minutes: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """One multi-source search from the on-network places of ``snap``.

        Returns
        -------
        tuple
            At each target node: minutes (inf unreachable), index of the place in ``snap``
            (−1 unreachable), road metres from the target to it with the place's connector
            (NaN unreachable); and every node's minutes (inf unreachable) when
            ``node_minutes``, else None.
        """
        ok = np.flatnonzero(~snap.off_network)
        if ok.shape[0] == 0:
            m = targets.shape[0]
            return (np.full(m, np.inf), np.full(m, -1, dtype=np.int64), np.full(m, np.nan),
                    np.full(self.network.n_nodes, np.inf) if node_minutes else None)
        search = self._compiled("to_service")
        dist = None
        if node_minutes:
            dist, which_all, length_all = search.multi_source(snap.node[ok], snap.minutes[ok])
            at_min, which, length = dist[targets], which_all[targets], length_all[targets]
        else:
            at_min, which, length = search.multi_source_at(snap.node[ok], snap.minutes[ok],
                                                           targets)
        place = np.where(which >= 0, ok[np.maximum(which, 0)], -1)
        metres = length + snap.distance_m[np.maximum(place, 0)]
        metres[place < 0] = np.nan
        return at_min, place, metres, dist

    def _passes(self, snaps: list[Snap], targets: np.ndarray, *, node_minutes: bool
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Run :meth:`_pass` per snap set, in threads when worthwhile (see _type_workers)."""
        targets = np.asarray(targets, dtype=np.int64)
        workers = self._type_workers(len(snaps))
        if workers == 1:
            return [self._pass(sn, targets, node_minutes) for sn in snaps]
        self._compiled("to_service").warm_up()  # compiled (or loaded) once, not per thread
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda sn: self._pass(sn, targets, node_minutes), snaps))

    def matrix(self, communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
               cutoff_min: float) -> pd.DataFrame:
        """Service × commune road minutes within ``cutoff_min``, as a long table.

        One compiled bounded search per service node (see
        :meth:`~coverage.routing.matrix.BoundedSearch.pairs`); results are float32.

        Returns
        -------
        pandas.DataFrame
            ``service_id``, ``code_insee``, ``minutes`` (float32, commune → service, both
            connector legs included), pairs within ``cutoff_min`` only, sorted by service
            row then commune row.
        """
        require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
        require_columns(services, ("service_id", "lon", "lat"), file="services")
        c_lon, c_lat = lonlat(communes, "communes")
        s_lon, s_lat = lonlat(services, "services")
        c_snap = self.snap(c_lon, c_lat)
        s_snap = self.snap(s_lon, s_lat)
        codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
        ids = services["service_id"].astype(str).to_numpy(dtype=object)
        rows, cols, minutes = self._search.pairs(self._compiled("to_service"), s_snap, c_snap,
                                                 cutoff_min)
        if not rows.shape[0]:
            return empty_matrix()
        return pd.DataFrame({"service_id": ids[rows], "code_insee": codes[cols],
                             "minutes": minutes})


#: From this many points on, :func:`_query_in_curve_order` sorts them along a Hilbert curve.
_SORTED_QUERY_MIN = 512


def _query_in_curve_order(tree: cKDTree, x: np.ndarray, y: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest node of each point ``(x, y)`` (metres): ``tree.query``, the same answers.

    Many points are queried in the order of a Hilbert curve over them, so that successive
    queries walk the same branches of the tree (fewer cache misses); each answer depends
    on its point only, so the order changes no result.

    Returns
    -------
    tuple of numpy.ndarray
        Distance (float64, metres) and node index (int64) of each point, in input order.
    """
    points = np.column_stack([x, y])
    if points.shape[0] < _SORTED_QUERY_MIN or not np.isfinite(points).all():
        dist, node = tree.query(points)
        return np.asarray(dist, dtype=np.float64), np.asarray(node, dtype=np.int64)
    order = hilbert_order(x, y)
    dist_sorted, node_sorted = tree.query(points[order])
    dist = np.empty(points.shape[0])
    node = np.empty(points.shape[0], dtype=np.int64)
    dist[order] = dist_sorted
    node[order] = node_sorted
    return dist, node


def _check_direction(direction: str) -> str:
    if direction not in ("to_service", "from_service"):
        msg = f"direction must be 'to_service' or 'from_service', not {direction!r}"
        raise ValueError(msg)
    return direction
