"""Road network: OSM file → car graph → :class:`RoadNetwork` (CSR matrix of minutes).

The build keeps **every OSM node** of the kept ways as a graph node (no topological
simplification), so each arc is a straight segment between two consecutive nodes of a way:
the isochrones buffer reached arcs and need their true geometry.

Steps (each counted in :class:`NetworkReport` ``details``):

1. read the ways of the car network (``highway`` classes of ``settings.default_speeds_kmh``;
   ``service`` only with ``settings.include_service_roads``; ``route=ferry`` ways with
   ``settings.ferries``), dropping ``access=private|no`` (unless a motor-vehicle tag
   re-allows cars) and ``motor_vehicle``/``motorcar`` ``=no|private``;
2. drop ways that reference nodes missing from the extract (cut at its edge) and count them;
3. speed of each way: its parsed ``maxspeed`` (:func:`parse_maxspeed`), else the French
   default of its class; a ``maxspeed`` outside the plausible range (0, 150] km/h
   (:data:`MAXSPEED_MAX_KMH`, e.g. ``maxspeed=5000``) is ignored in favour of the class
   default and counted (``maxspeed_implausible``, with a warning); ferries are timed by their
   ``duration`` tag (:func:`parse_duration_min`), spread over their segments in proportion
   to length; a zero, negative or absurd duration (longer than
   :data:`FERRY_MAX_DURATION_MIN`, or faster than :data:`FERRY_MAX_SPEED_KMH`) is ignored
   in favour of :data:`FERRY_DEFAULT_SPEED_KMH` and counted
   (``ferry_durations_ignored``, with a warning);
4. directions: ``oneway=yes|true|1`` forward, ``oneway=-1|reverse`` backward,
   ``junction=roundabout|circular`` and ``highway=motorway`` imply one-way, everything else
   (including ``oneway=reversible|alternating``, open in each direction at some time) both;
5. keep the largest strongly connected component (report what was dropped);
6. CSR matrix of minutes keeping the **minimum** over parallel arcs, and a matrix of metres
   aligned with the kept arc, and its ferry flag.

Checked against ``osmnx.graph_from_xml`` (no simplification) filtered by the same car rules
(``tests/test_network_shared.py``): the same nodes, arcs and lengths on the Andorra and
Monaco extracts of ``../shared/data/osm``.

Untrusted networks are refused before any routing (:class:`~coverage.errors.NetworkError`
naming the file): an arc time that is negative, NaN or infinite (a GraphML
``travel_time``: a negative weight would make the shortest-path search loop), a node with
non-finite or out-of-range coordinates, or a file with no drivable way at all (e.g. only
footways). :func:`network_summary` says what a build found (``validate --roads``).

Lengths are great-circle lengths (metres, mean Earth radius 6,371,009 m, as osmnx) of the
straight segments. Builds are cached on disk as ``.npz`` arrays (never pickled), keyed by
the file's SHA-256 and the parameters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from coverage.errors import InputError, NetworkError, Problem, UnsupportedFormatError
from coverage.files import atomic_path, sha256_file
from coverage.geo import haversine_m, metric_crs_for_lonlat, project_lonlat
from coverage.labels import fr_decimal, fr_int, fr_percent
from coverage.settings import FR_IMPLICIT_MAXSPEED_KMH, Settings

__all__ = [
    "BUILD_VERSION",
    "CACHE_ENV",
    "FERRY_DEFAULT_SPEED_KMH",
    "FERRY_MAX_DURATION_MIN",
    "FERRY_MAX_SPEED_KMH",
    "KMH_PER_MPH",
    "MAXSPEED_MAX_KMH",
    "NetworkReport",
    "NetworkSummary",
    "RoadNetwork",
    "csr_min",
    "default_cache_dir",
    "load_network",
    "network_from_arcs",
    "network_summary",
    "parse_duration_min",
    "parse_maxspeed",
]

logger = logging.getLogger(__name__)

#: km/h per mile per hour.
KMH_PER_MPH = 1.609344
#: Speed of a ferry whose ``duration`` tag is absent or unreadable, km/h (a slow car ferry;
#: such ferries are counted in the report as ``ferry_ways_without_duration``).
FERRY_DEFAULT_SPEED_KMH = 15.0
#: Largest plausible ``maxspeed``, km/h (French limits stop at 130; 150 leaves room for
#: odd but honest tags). Values above, or ≤ 0, are ignored: the class default applies.
MAXSPEED_MAX_KMH = 150.0
#: Longest plausible ferry ``duration``, minutes (48 h; Marseille–Corsica is ~12 h).
FERRY_MAX_DURATION_MIN = 48 * 60.0
#: Fastest plausible ferry, km/h (length ÷ duration; fast ferries sail at ~40 knots).
FERRY_MAX_SPEED_KMH = 80.0
#: Version of the build: part of the cache key, bump it when the build changes.
BUILD_VERSION = 3  # 2: per-arc ferry flag; 3: implausible maxspeed / ferry durations ignored
#: Environment variable that overrides the default cache folder.
CACHE_ENV = "ZB_CACHE_DIR"

_OSM_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2", ".osm.pbf", ".pbf", ".o5m", ".xml")
_ONEWAY_FORWARD = frozenset({"yes", "true", "1"})
_ONEWAY_BACKWARD = frozenset({"-1", "reverse"})
_ROUNDABOUT = frozenset({"roundabout", "circular"})
_DENIED = frozenset({"private", "no"})
_ALLOWED = frozenset({"yes", "designated", "permissive", "destination", "customers",
                      "delivery", "agricultural;forestry"})


@dataclass(frozen=True)
class NetworkReport:
    """What the build kept and dropped (counts), for logs and manifests."""

    source: str
    nodes: int
    arcs: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoadNetwork:
    """A drivable road graph ready for routing.

    Attributes
    ----------
    node_ids
        OSM node id of each graph node (int64), index ``i`` ↔ row/column ``i``.
    x, y
        Node coordinates in ``crs``, metres.
    lon, lat
        Node coordinates in EPSG:4326, degrees.
    crs
        Metric CRS of ``x``/``y`` (EPSG:2154 in metropolitan France, local UTM in a DROM).
    minutes
        CSR matrix (n × n) of arc travel times, minutes; the minimum over parallel arcs.
    metres
        CSR matrix with the same sparsity as ``minutes``: length in metres of the arc kept.
    report
        Counts of what was kept and dropped.
    ferry
        Boolean per arc, aligned with ``minutes.data`` (CSR order): the kept arc is a
        ferry crossing (``route=ferry``). Routing uses ferries; the isochrones do not draw
        them as land. Default: no ferry.
    """

    node_ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    crs: str
    minutes: sp.csr_array
    metres: sp.csr_array
    report: NetworkReport
    ferry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        """Check the arc times (finite, ≥ 0) and the ferry flags (one per arc, or none).

        Raises
        ------
        NetworkError
            An arc time is negative, NaN or infinite: no search may run on such a graph.
        """
        data = np.asarray(self.minutes.data)
        if data.size and not (np.isfinite(data).all() and (data >= 0).all()):
            tails, heads = self.arcs()
            bad = np.flatnonzero(~(np.isfinite(data) & (data >= 0)))
            raise NetworkError(_bad_times_message(self.report.source, [
                f"arc {self.node_ids[tails[k]]} → {self.node_ids[heads[k]]} : "
                f"{data[k]} min" for k in bad]))
        ferry = np.asarray(self.ferry, dtype=bool)
        nnz = int(self.minutes.nnz)
        if ferry.shape == (0,) and nnz:
            ferry = np.zeros(nnz, dtype=bool)
        if ferry.shape != (nnz,):
            msg = f"ferry flags have shape {ferry.shape}, expected ({nnz},): one per arc"
            raise ValueError(msg)
        object.__setattr__(self, "ferry", ferry)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_ids.shape[0])

    @property
    def n_arcs(self) -> int:
        """Number of arcs (after the minimum over parallel arcs)."""
        return int(self.minutes.nnz)

    @functools.cached_property
    def snap_tree(self) -> cKDTree:
        """KD-tree of the nodes' ``x``, ``y`` (metres, ``crs``), built once per network.

        Every engine on this network snaps places with it (nearest node); it is kept in
        memory only (never written to the network's disk cache).
        """
        return cKDTree(np.column_stack([self.x, self.y]))

    @functools.cached_property
    def ferry_only_nodes(self) -> np.ndarray:
        """Return, per node, whether every arc at it is a ferry arc (boolean array).

        Such a node is on the water, inside a crossing; piers joined to a road are not.
        """
        if not self.ferry.any():
            return np.zeros(self.n_nodes, dtype=bool)
        tails, heads = self.arcs()
        land = np.zeros(self.n_nodes, dtype=bool)
        land[tails[~self.ferry]] = True
        land[heads[~self.ferry]] = True
        return ~land

    def arcs(self) -> tuple[np.ndarray, np.ndarray]:
        """Tail and head node indices of every arc, in CSR order (int64 arrays)."""
        indptr = self.minutes.indptr
        tails = np.repeat(np.arange(self.n_nodes, dtype=np.int64), np.diff(indptr))
        return tails, self.minutes.indices.astype(np.int64)


# --- Tag parsing -------------------------------------------------------------------------

_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)


def _implicit_maxspeed(value: str) -> float | None:
    """Return the km/h of ``walk`` or of an implicit ``XX:…`` code (French values)."""
    if value.lower() == "walk":
        return FR_IMPLICIT_MAXSPEED_KMH["FR:walk"]
    if value in FR_IMPLICIT_MAXSPEED_KMH:
        return FR_IMPLICIT_MAXSPEED_KMH[value]
    # other countries' implicit values (border strips): read with the French values
    suffix = value.split(":", 1)[1]
    return FR_IMPLICIT_MAXSPEED_KMH.get(f"FR:{suffix}")


def _parse_one_maxspeed(value: str) -> float | None:
    """Return the km/h of one ``maxspeed`` value (plausible or not), None when unreadable."""
    value = value.strip()
    if not value or value.lower() == "none":  # none: no limit (never signed in France)
        return None
    if value.lower() == "walk" or ":" in value:
        return _implicit_maxspeed(value)
    match = _NUMBER_UNIT.match(value)
    if match is None:
        return None
    speed = float(match.group(1).replace(",", "."))
    if match.group(2) and match.group(2).lower() == "mph":
        speed *= KMH_PER_MPH
    return speed  # plausibility is checked by the callers


def _maxspeed_values(value: str) -> list[float]:
    """Return the km/h of every readable part of a ``maxspeed`` value (plausible or not)."""
    parts = [p for p in re.split(r"[;|]", value) if p.strip()]
    return [s for s in (_parse_one_maxspeed(p) for p in parts) if s is not None]


def _plausible_kmh(speed: float) -> bool:
    """Return whether a speed is in the plausible range (0, :data:`MAXSPEED_MAX_KMH`] km/h."""
    return bool(np.isfinite(speed)) and 0.0 < speed <= MAXSPEED_MAX_KMH


def parse_maxspeed(value: str | None) -> float | None:
    """Parse an OSM ``maxspeed`` tag into km/h.

    Parameters
    ----------
    value
        The tag's value, e.g. ``"50"``, ``"30 mph"``, ``"FR:rural"``, ``"50;70"``.

    Returns
    -------
    float or None
        Speed in km/h; ``None`` when absent or unusable (``"none"``, ``"signals"``,
        ``"variable"``, garbage, or outside the plausible range (0,
        :data:`MAXSPEED_MAX_KMH`] km/h such as ``"5000"``), in which case the road class
        default applies.

    Notes
    -----
    Implicit values (``FR:urban`` 50, ``FR:rural`` 80, ``FR:motorway`` 130, ``FR:zone30``
    30, …) come from :data:`coverage.settings.FR_IMPLICIT_MAXSPEED_KMH`; other countries'
    implicit codes are read with the French value of the same suffix. ``walk`` is the
    ``FR:walk`` value. Lists such as ``"50;70"`` (several limits on one way, by lane or by
    time) give their **minimum**, the conservative choice for access times.
    """
    if value is None:
        return None
    speeds = [s for s in _maxspeed_values(value) if _plausible_kmh(s)]
    return min(speeds) if speeds else None


def _implausible_maxspeed(value: str | None) -> bool:
    """Return whether a ``maxspeed`` value reads as numbers that are all implausible."""
    if value is None:
        return False
    speeds = _maxspeed_values(value)
    return bool(speeds) and not any(_plausible_kmh(s) for s in speeds)


_ISO_DURATION = re.compile(r"^P(?:T)?(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"
                           r"(?:(\d+(?:\.\d+)?)S)?$", re.IGNORECASE)


def parse_duration_min(value: str | None) -> float | None:
    """Parse an OSM ``duration`` tag (ferries) into minutes.

    Parameters
    ----------
    value
        ``"HH:MM"``, ``"HH:MM:SS"``, ``"MM"`` (minutes) or ISO 8601 (``"PT1H30M"``).

    Returns
    -------
    float or None
        Minutes (negative when the tag is, e.g. ``"-00:30"``: the callers refuse it), or
        ``None`` when absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.startswith("-") and ":" in value:  # "-00:30": the sign applies to the whole
        minutes = _clock_minutes(value[1:])
        return None if minutes is None else -minutes
    if ":" in value:
        return _clock_minutes(value)
    try:
        return float(value.replace(",", "."))
    except ValueError:
        pass
    match = _ISO_DURATION.match(value)
    if match is None or not any(match.groups()):
        return None
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 60.0 + m + s / 60.0


def _trusted_ferry_minutes(duration: float | None, length_m: float) -> float | None:
    """Return a ferry's ``duration`` (minutes) when it is plausible, else None.

    Implausible: not finite, zero or negative, longer than :data:`FERRY_MAX_DURATION_MIN`,
    or implying a speed above :data:`FERRY_MAX_SPEED_KMH` over the crossing's ``length_m``
    (metres).
    """
    if duration is None or not np.isfinite(duration) or duration <= 0:
        return None
    if duration > FERRY_MAX_DURATION_MIN:
        return None
    if length_m / 1000.0 / (duration / 60.0) > FERRY_MAX_SPEED_KMH:
        return None
    return float(duration)


def _clock_minutes(value: str) -> float | None:
    """Return the minutes of ``HH:MM`` or ``HH:MM:SS``, None when unreadable."""
    try:
        parts = [float(p) for p in value.split(":")]
    except ValueError:
        return None
    if len(parts) == 2:
        return parts[0] * 60.0 + parts[1]
    if len(parts) == 3:
        return parts[0] * 60.0 + parts[1] + parts[2] / 60.0
    return None


def _oneway(tags: Mapping[str, str], highway: str | None) -> int:
    """+1 forward only, -1 backward only, 0 both directions."""
    value = tags.get("oneway")
    if value is not None:
        value = value.strip().lower()
        if value in _ONEWAY_FORWARD:
            return 1
        if value in _ONEWAY_BACKWARD:
            return -1
        if value in {"no", "false", "0", "reversible", "alternating"}:
            return 0
    if tags.get("junction") in _ROUNDABOUT or highway == "motorway":
        return 1
    return 0


def _car_allowed(tags: Mapping[str, str]) -> bool:
    for key in ("motorcar", "motor_vehicle"):
        value = tags.get(key)
        if value in _DENIED:
            return False
        if value in _ALLOWED:
            return True
    return tags.get("access") not in _DENIED


def _kept_classes(settings: Settings) -> frozenset[str]:
    classes = set(settings.default_speeds_kmh)
    if not settings.include_service_roads:
        classes.discard("service")
    return frozenset(classes)


# --- Readers -----------------------------------------------------------------------------

@dataclass
class _RawGraph:
    """Arcs before components and the minimum over parallel arcs."""

    node_ids: np.ndarray  # int64, OSM ids
    lon: np.ndarray
    lat: np.ndarray
    tail: np.ndarray  # int64 indices into node_ids
    head: np.ndarray
    minutes: np.ndarray
    metres: np.ndarray
    details: dict[str, Any]
    ferry: np.ndarray  # bool per arc


def _osm_ways(path: Path) -> Iterator[Any]:
    """Yield the ways tagged ``highway`` or ``route`` of an OSM file, with node locations.

    Node locations are stored before the filters run: only tagged ways reach Python.

    Raises
    ------
    NetworkError
        The file cannot be read as OSM (the message names it).
    """
    import osmium

    try:
        processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        processor = (processor.with_locations()
                     .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                     .with_filter(osmium.filter.KeyFilter("highway", "route")))
        for obj in processor:
            if isinstance(obj, osmium.osm.Way):
                yield obj
    except RuntimeError as exc:
        msg = f"{path} : fichier OSM illisible ({exc})"
        raise NetworkError(msg) from exc


@dataclass
class _OsmWays:
    """The car network's ways of an OSM file, as runs of segments, with counts.

    Per kept way: its node ids and locations, its speed (km/h, or −duration in minutes for
    a timed ferry), its direction (+1, −1, 0), its number of segments and its ferry flag.
    """

    settings: Settings
    classes: frozenset[str]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((
        "ways_read", "ways_kept", "ways_missing_nodes", "missing_node_refs",
        "ways_denied_access", "ways_too_short", "ferry_ways", "ferry_ways_without_duration",
        "ferry_durations_ignored", "maxspeed_used", "maxspeed_unparsed",
        "maxspeed_implausible", "ways_other_class"), 0))
    unparsed: dict[str, int] = field(default_factory=dict)
    implausible: dict[str, int] = field(default_factory=dict)
    other_classes: dict[str, int] = field(default_factory=dict)
    ignored_ferries: list[str] = field(default_factory=list)
    refs: list[np.ndarray] = field(default_factory=list)
    lons: list[np.ndarray] = field(default_factory=list)
    lats: list[np.ndarray] = field(default_factory=list)
    speed: list[float] = field(default_factory=list)
    direction: list[int] = field(default_factory=list)
    nseg: list[int] = field(default_factory=list)
    ferry: list[bool] = field(default_factory=list)

    def _wanted(self, tags: Any, is_ferry: bool) -> bool:
        """Return whether a way is of a kept class (or a ferry, when ferries are used)."""
        if is_ferry:
            return self.settings.ferries
        highway = tags.get("highway")
        if highway is not None and highway not in self.classes:
            self.counts["ways_other_class"] += 1
            self.other_classes[highway] = self.other_classes.get(highway, 0) + 1
        return highway in self.classes and tags.get("area") != "yes"

    def _points(self, way: Any) -> tuple[list[int], list[float], list[float]] | None:
        """Return the node ids, lon and lat of a way; None (counted) when unusable."""
        refs: list[int] = []
        lons: list[float] = []
        lats: list[float] = []
        missing = 0
        for nref in way.nodes:
            loc = nref.location
            if not loc.valid():
                missing += 1
                continue
            refs.append(nref.ref)
            lons.append(loc.lon)
            lats.append(loc.lat)
        if missing:
            self.counts["ways_missing_nodes"] += 1
            self.counts["missing_node_refs"] += missing
            return None
        if len(refs) < 2:
            self.counts["ways_too_short"] += 1
            return None
        return refs, lons, lats

    def _ferry_timing(self, way: Any, tag_map: Mapping[str, str],
                      points: tuple[list[int], list[float], list[float]]
                      ) -> tuple[float, int]:
        """Return (speed km/h, or −duration minutes; direction) of a ferry way.

        A zero, negative or absurd duration is ignored (counted, the way named): the ferry
        is then timed at :data:`FERRY_DEFAULT_SPEED_KMH`.
        """
        tag = way.tags.get("duration")
        duration = parse_duration_min(tag)
        self.counts["ferry_ways"] += 1
        if duration is None:
            self.counts["ferry_ways_without_duration"] += 1
            return FERRY_DEFAULT_SPEED_KMH, _oneway(tag_map, None)
        lon, lat = np.asarray(points[1]), np.asarray(points[2])
        length = float(np.sum(haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])))
        trusted = _trusted_ferry_minutes(duration, length)
        if trusted is None:
            self.counts["ferry_durations_ignored"] += 1
            self.ignored_ferries.append(f"way {way.id} duration={tag}")
            return FERRY_DEFAULT_SPEED_KMH, _oneway(tag_map, None)
        return -trusted, _oneway(tag_map, None)

    def _road_timing(self, tags: Any, tag_map: Mapping[str, str]) -> tuple[float, int]:
        """Return (speed km/h; direction) of a road way: its maxspeed, else its class's."""
        highway = str(tags.get("highway"))
        maxspeed_tag = tags.get("maxspeed")
        parsed = parse_maxspeed(maxspeed_tag)
        if parsed is not None:
            self.counts["maxspeed_used"] += 1
            return parsed, _oneway(tag_map, highway)
        if _implausible_maxspeed(maxspeed_tag):
            self.counts["maxspeed_implausible"] += 1
            self.implausible[maxspeed_tag] = self.implausible.get(maxspeed_tag, 0) + 1
        elif maxspeed_tag is not None:
            self.counts["maxspeed_unparsed"] += 1
            self.unparsed[maxspeed_tag] = self.unparsed.get(maxspeed_tag, 0) + 1
        return float(self.settings.default_speeds_kmh[highway]), _oneway(tag_map, highway)

    def add(self, way: Any) -> None:
        """Keep ``way`` when it belongs to the car network (else count why not)."""
        tags = way.tags
        is_ferry = tags.get("route") == "ferry"
        if not self._wanted(tags, is_ferry):
            return
        self.counts["ways_read"] += 1
        tag_map = {k: str(tags.get(k)) for k in ("access", "motorcar", "motor_vehicle",
                                                 "oneway", "junction") if k in tags}
        if not _car_allowed(tag_map):
            self.counts["ways_denied_access"] += 1
            return
        points = self._points(way)
        if points is None:
            return
        speed, direction = (self._ferry_timing(way, tag_map, points) if is_ferry
                            else self._road_timing(tags, tag_map))
        refs, lons, lats = points
        self.refs.append(np.asarray(refs, dtype=np.int64))
        self.lons.append(np.asarray(lons, dtype=np.float64))
        self.lats.append(np.asarray(lats, dtype=np.float64))
        self.speed.append(speed)
        self.direction.append(direction)
        self.nseg.append(len(refs) - 1)
        self.ferry.append(is_ferry)
        self.counts["ways_kept"] += 1

    def raw(self, path: Path) -> _RawGraph:
        """Return the arcs of the kept ways.

        Raises
        ------
        NetworkError
            No way was kept.
        """
        details: dict[str, Any] = dict(self.counts)
        details["maxspeed_unparsed_values"] = dict(sorted(self.unparsed.items())[:50])
        details["maxspeed_implausible_values"] = dict(sorted(self.implausible.items())[:50])
        details["ferry_durations_ignored_ways"] = self.ignored_ferries[:50]
        details["other_classes"] = dict(sorted(self.other_classes.items(),
                                               key=lambda kv: -kv[1])[:20])
        if not self.refs:
            raise NetworkError(_no_drivable_way(path, details, self.settings))
        return _segments_to_raw(self.refs, self.lons, self.lats, np.asarray(self.speed),
                                np.asarray(self.direction, dtype=np.int8),
                                np.asarray(self.nseg, dtype=np.int64), details,
                                np.asarray(self.ferry, dtype=bool))


def _read_osm(path: Path, settings: Settings) -> _RawGraph:
    """Read the car network's ways of an OSM file (pyosmium) into arcs."""
    ways = _OsmWays(settings, _kept_classes(settings))
    for way in _osm_ways(path):
        ways.add(way)
    return ways.raw(path)


def _segments_to_raw(refs: list[np.ndarray], lons: list[np.ndarray], lats: list[np.ndarray],
                     way_speed: np.ndarray, way_dir: np.ndarray, way_nseg: np.ndarray,
                     details: dict[str, Any], way_ferry: np.ndarray) -> _RawGraph:
    all_refs = np.concatenate(refs)
    all_lon = np.concatenate(lons)
    all_lat = np.concatenate(lats)
    node_ids, first, inverse = np.unique(all_refs, return_index=True, return_inverse=True)
    lon = all_lon[first]
    lat = all_lat[first]
    # consecutive pairs within each way
    lengths = np.array([r.shape[0] for r in refs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    is_last = np.zeros(all_refs.shape[0], dtype=bool)
    is_last[starts + lengths - 1] = True
    a_pos = np.flatnonzero(~is_last)
    u = inverse[a_pos].astype(np.int64)
    v = inverse[a_pos + 1].astype(np.int64)
    metres = haversine_m(all_lon[a_pos], all_lat[a_pos], all_lon[a_pos + 1],
                         all_lat[a_pos + 1])
    way_of_seg = np.repeat(np.arange(way_nseg.shape[0]), way_nseg)
    speed = way_speed[way_of_seg]
    minutes = np.empty_like(metres)
    timed = speed > 0
    minutes[timed] = metres[timed] / 1000.0 / speed[timed] * 60.0
    if (~timed).any():  # ferries with a duration: spread it in proportion to length
        way_len = np.bincount(way_of_seg, weights=metres, minlength=way_nseg.shape[0])
        w = way_of_seg[~timed]
        share = np.divide(metres[~timed], way_len[w], out=np.full(w.shape[0], 0.0),
                          where=way_len[w] > 0)
        share[way_len[w] <= 0] = 1.0 / way_nseg[w[way_len[w] <= 0]]
        minutes[~timed] = -speed[~timed] * share
    direction = way_dir[way_of_seg]
    ferry = way_ferry[way_of_seg]
    loops = u == v
    details["self_loops_dropped"] = int(loops.sum())
    fwd = (direction >= 0) & ~loops
    bwd = (direction <= 0) & ~loops
    tail = np.concatenate([u[fwd], v[bwd]])
    head = np.concatenate([v[fwd], u[bwd]])
    return _RawGraph(node_ids=node_ids, lon=lon, lat=lat, tail=tail, head=head,
                     minutes=np.concatenate([minutes[fwd], minutes[bwd]]),
                     metres=np.concatenate([metres[fwd], metres[bwd]]), details=details,
                     ferry=np.concatenate([ferry[fwd], ferry[bwd]]))


def _graphml_kept(data: Mapping[str, Any], settings: Settings, classes: frozenset[str],
                  counts: dict[str, int]) -> bool:
    """Return whether an osmnx edge belongs to the car network (else count why not)."""
    highway = _graphml_highway(data)
    is_ferry = data.get("route") == "ferry"
    if is_ferry and not settings.ferries:
        return False
    if not is_ferry and highway is not None and highway not in classes:
        counts["edges_other_class"] += 1
        return False
    if not _car_allowed({k: str(data[k]) for k in ("access", "motorcar", "motor_vehicle")
                         if isinstance(data.get(k), str)}):
        counts["edges_denied_access"] += 1
        return False
    return True


def _graphml_highway(data: Mapping[str, Any]) -> Any:
    """Return the edge's ``highway`` class (the first one of a merged edge's list)."""
    highway = data.get("highway")
    return highway[0] if isinstance(highway, list) else highway


def _graphml_float(value: Any) -> float | None:
    """Return an edge attribute as a float (the first of a merged edge's list), None if absent."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _edge_label(u: Any, v: Any, key: Any, data: Mapping[str, Any]) -> str:
    """Return how an error names a GraphML edge: its ends, key and OSM id."""
    osmid = data.get("osmid")
    return f"arête {u} → {v} (clé {key}" + (f", osmid {osmid}" if osmid is not None else "") + ")"


def _graphml_speed(data: Mapping[str, Any], settings: Settings, counts: dict[str, int]
                   ) -> float:
    """Return an osmnx edge's speed, km/h: ``maxspeed``, else ``speed_kph``, else its class's.

    Implausible values (outside (0, :data:`MAXSPEED_MAX_KMH`] km/h) are ignored and counted.
    """
    maxspeed = data.get("maxspeed")
    if isinstance(maxspeed, list):
        maxspeed = ";".join(str(m) for m in maxspeed)
    text = str(maxspeed) if maxspeed is not None else None
    speed = parse_maxspeed(text)
    if speed is not None:
        counts["maxspeed_used"] += 1
        return speed
    if _implausible_maxspeed(text):
        counts["maxspeed_implausible"] += 1
    kph = _graphml_float(data.get("speed_kph"))
    if kph is not None and _plausible_kmh(kph):
        return kph
    if kph is not None:
        counts["speed_kph_implausible"] += 1
    return float(settings.default_speeds_kmh.get(str(_graphml_highway(data)),
                                                 settings.default_speeds_kmh["road"]))


def _graphml_minutes(data: Mapping[str, Any], length_m: float, settings: Settings,
                     counts: dict[str, int]) -> float:
    """Return an osmnx edge's minutes: its ``travel_time``, else length ÷ speed.

    The speed is that of :func:`_graphml_speed`. A ferry without ``travel_time`` is timed
    by its plausible ``duration`` tag, else at :data:`FERRY_DEFAULT_SPEED_KMH`. A
    ``travel_time`` is returned as it is (NaN or negative included: the caller refuses it).
    """
    travel_time = _graphml_float(data.get("travel_time"))
    if travel_time is not None:
        counts["travel_time_used"] += 1
        return travel_time / 60.0
    if data.get("route") == "ferry":
        duration = parse_duration_min(str(data["duration"])) if data.get("duration") else None
        trusted = _trusted_ferry_minutes(duration, length_m)
        if trusted is not None:
            return trusted
        if duration is not None:
            counts["ferry_durations_ignored"] += 1
        return length_m / 1000.0 / FERRY_DEFAULT_SPEED_KMH * 60.0
    return length_m / 1000.0 / _graphml_speed(data, settings, counts) * 60.0


def _load_graphml(path: Path) -> Any:
    """Return the osmnx graph of a GraphML file.

    Raises
    ------
    NetworkError
        The file is not a readable osmnx GraphML (one French sentence naming it).
    """
    import osmnx as ox

    try:
        return ox.load_graphml(path)
    except (ElementTree.ParseError, ValueError, KeyError, TypeError, IndexError) as exc:
        msg = (f"{path} : fichier GraphML illisible comme graphe osmnx "
               f"({type(exc).__name__} : {exc})")
        raise NetworkError(msg) from None


def _graphml_nodes(graph: Any, path: Path) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Return the nodes of an osmnx graph and their lon/lat (degrees, checked).

    Raises
    ------
    NetworkError
        A node's ``x``/``y`` is missing, not finite or outside the lon/lat ranges.
    """
    nodes = list(graph.nodes)
    lon = np.array([_graphml_float(graph.nodes[n].get("x")) for n in nodes], dtype=float)
    lat = np.array([_graphml_float(graph.nodes[n].get("y")) for n in nodes], dtype=float)
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        listed = ", ".join(f"nœud {nodes[i]} (x={lon[i]}, y={lat[i]})"
                           for i in np.flatnonzero(bad)[:10])
        msg = (f"{path} : {int(bad.sum())} nœud(s) sans coordonnées lon/lat valides "
               f"(degrés EPSG:4326, |x| ≤ 180, |y| ≤ 90) : {listed}")
        raise NetworkError(msg)
    return nodes, lon, lat


def _read_graphml(path: Path, settings: Settings) -> _RawGraph:
    """Read the car edges of an osmnx GraphML file into arcs (taken as they are).

    Raises
    ------
    NetworkError
        Unreadable file, bad node coordinates, an edge time that is negative, NaN or
        infinite (each such edge named), or no drivable edge.
    """
    graph = _load_graphml(path)
    nodes, lon, lat = _graphml_nodes(graph, path)
    try:
        node_ids = np.asarray(nodes, dtype=np.int64)
    except (TypeError, ValueError):
        node_ids = np.arange(len(nodes), dtype=np.int64)
    index = {n: i for i, n in enumerate(nodes)}
    tail, head, minutes, metres = [], [], [], []
    ferry: list[bool] = []
    bad: list[str] = []
    counts = {"edges_read": 0, "edges_denied_access": 0, "edges_other_class": 0,
              "maxspeed_used": 0, "maxspeed_implausible": 0, "speed_kph_implausible": 0,
              "ferry_durations_ignored": 0, "travel_time_used": 0}
    classes = _kept_classes(settings)
    for u, v, key, data in graph.edges(keys=True, data=True):
        counts["edges_read"] += 1
        if not _graphml_kept(data, settings, classes, counts):
            continue
        length = _graphml_float(data.get("length"))
        if length is None or not np.isfinite(length) or length <= 0:
            length = float(haversine_m(lon[index[u]], lat[index[u]], lon[index[v]],
                                       lat[index[v]]))
        mins = _graphml_minutes(data, length, settings, counts)
        if not np.isfinite(mins) or mins < 0:
            bad.append(f"{_edge_label(u, v, key, data)} : travel_time="
                       f"{data.get('travel_time')!r}")
        if u == v:
            continue
        tail.append(index[u])
        head.append(index[v])
        minutes.append(mins)
        metres.append(length)
        ferry.append(data.get("route") == "ferry")
    if bad:
        raise NetworkError(_bad_times_message(path, bad))
    details: dict[str, Any] = dict(counts)
    details["edges_kept"] = len(tail)
    details["ferry_edges"] = int(sum(ferry))
    if not tail:
        raise NetworkError(_no_drivable_way(path, details, settings))
    return _RawGraph(node_ids=node_ids, lon=lon, lat=lat,
                     tail=np.asarray(tail, dtype=np.int64), head=np.asarray(head, np.int64),
                     minutes=np.asarray(minutes, dtype=np.float64),
                     metres=np.asarray(metres, dtype=np.float64), details=details,
                     ferry=np.asarray(ferry, dtype=bool))


def _bad_times_message(source: str | Path, bad: list[str]) -> str:
    """Return the French error of arcs whose time is negative, NaN or infinite."""
    more = f" … et {len(bad) - 10} autre(s)" if len(bad) > 10 else ""
    return (f"{source} : réseau routier refusé : {len(bad)} arc(s) dont le temps de "
            "parcours n'est pas un nombre fini ≥ 0 (un temps négatif fait boucler la "
            "recherche d'itinéraire, un NaN la fausse) : " + " ; ".join(bad[:10]) + more
            + ". Corrigez ou supprimez ces temps (travel_time, en secondes).")


def _no_drivable_way(source: str | Path, details: Mapping[str, Any], settings: Settings
                     ) -> str:
    """Return the French error of a road file without any drivable way."""
    others = details.get("other_classes") or {}
    other_n = int(details.get("ways_other_class", details.get("edges_other_class", 0)))
    listed = ", ".join(f"{k} {v}" for k, v in list(others.items())[:8])
    parts = [f"{other_n} voie(s) d'autres classes" + (f" ({listed})" if listed else ""),
             f"{int(details.get('ways_denied_access', details.get('edges_denied_access', 0)))}"
             " interdite(s) aux voitures"]
    if "ways_missing_nodes" in details:
        parts.append(f"{int(details['ways_missing_nodes'])} coupée(s) au bord de "
                     "l'extrait (nœuds absents)")
    return (f"{source} : aucune voie carrossable (réseau voiture : highway="
            + "|".join(sorted(_kept_classes(settings))) + ", bacs "
            + ("compris" if settings.ferries else "exclus") + ") ; trouvé : "
            + ", ".join(parts) + ". Donnez un extrait OSM du réseau routier du territoire.")


# --- CSR and components ------------------------------------------------------------------

def csr_min(tail: np.ndarray, head: np.ndarray, weight: np.ndarray, n: int,
            *aligned: np.ndarray) -> tuple[sp.csr_array, list[sp.csr_array], int]:
    """CSR matrix keeping the **minimum** weight over parallel arcs.

    Parameters
    ----------
    tail, head
        Node indices of each arc (0 … n-1).
    weight
        Arc weight (e.g. minutes).
    n
        Number of nodes.
    *aligned
        Other arc attributes (e.g. metres), returned as CSR matrices holding the value of the
        kept (minimum-weight) arc.

    Returns
    -------
    tuple
        ``(weights CSR, [aligned CSRs], number of parallel arcs dropped)``. Zero weights are
        kept as explicit entries (scipy.sparse.csgraph treats them as arcs).
    """
    tail = np.asarray(tail, dtype=np.int64)
    head = np.asarray(head, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    order = np.lexsort((weight, head, tail))
    t, h = tail[order], head[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = (t[1:] != t[:-1]) | (h[1:] != h[:-1])
    keep = order[first]
    t, h = tail[keep], head[keep]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(t, minlength=n), out=indptr[1:])
    idx_dtype = np.int32 if max(n, keep.shape[0]) < 2**31 - 1 else np.int64
    indices = h.astype(idx_dtype)
    indptr_c = indptr.astype(idx_dtype)

    def build(values: np.ndarray) -> sp.csr_array:
        m = sp.csr_array((np.asarray(values, dtype=np.float64)[keep], indices.copy(),
                          indptr_c.copy()), shape=(n, n))
        m.has_sorted_indices = True
        return m

    return build(weight), [build(a) for a in aligned], int(order.shape[0] - keep.shape[0])


def _largest_scc(raw: _RawGraph) -> tuple[np.ndarray, dict[str, Any]]:
    n = raw.node_ids.shape[0]
    graph = sp.csr_array((np.ones(raw.tail.shape[0]), (raw.tail, raw.head)), shape=(n, n))
    n_comp, labels = connected_components(graph, directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=n_comp)
    big = int(np.argmax(sizes))
    keep = labels == big
    arcs_kept = keep[raw.tail] & keep[raw.head]
    info = {"nodes_before_scc": int(n), "arcs_before_scc": int(raw.tail.shape[0]),
            "strong_components": int(n_comp),
            "nodes_dropped_scc": int(n - keep.sum()),
            "arcs_dropped_scc": int((~arcs_kept).sum()),
            "second_component_nodes": int(np.sort(sizes)[-2]) if n_comp > 1 else 0}
    return keep, info


def _check_raw(raw: _RawGraph, source: str) -> None:
    """Refuse arcs whose time is negative, NaN or infinite and nodes off the globe.

    Raises
    ------
    NetworkError
        Naming ``source`` and the first bad arcs (OSM node ids) or nodes.
    """
    ok = np.isfinite(raw.lon) & np.isfinite(raw.lat) & (np.abs(raw.lon) <= 180) & \
        (np.abs(raw.lat) <= 90)
    if not ok.all():
        listed = ", ".join(f"nœud {raw.node_ids[i]} ({raw.lon[i]}, {raw.lat[i]})"
                           for i in np.flatnonzero(~ok)[:10])
        msg = (f"{source} : réseau routier refusé : {int((~ok).sum())} nœud(s) hors des "
               f"longitudes/latitudes possibles (degrés EPSG:4326) : {listed}")
        raise NetworkError(msg)
    minutes = raw.minutes
    good = np.isfinite(minutes) & (minutes >= 0)
    if not good.all():
        bad = np.flatnonzero(~good)
        raise NetworkError(_bad_times_message(source, [
            f"arc {raw.node_ids[raw.tail[k]]} → {raw.node_ids[raw.head[k]]} : "
            f"{minutes[k]} min" for k in bad]))


#: Share of ways cut at the extract's edge above which the build warns (incomplete file).
_CUT_WAYS_WARNING_SHARE = 0.1


def _warn_untrusted(details: Mapping[str, Any], source: str) -> None:
    """Log one French warning per kind of tag ignored or part of the file missing."""
    implausible = int(details.get("maxspeed_implausible", 0))
    if implausible:
        values = ", ".join(details.get("maxspeed_implausible_values", {}))
        logger.warning("%s : %d voie(s) avec une vitesse maximale invraisemblable (≤ 0 ou "
                       "> %g km/h%s) : vitesse par défaut de leur classe utilisée", source,
                       implausible, MAXSPEED_MAX_KMH, f" : {values}" if values else "")
    ferries = int(details.get("ferry_durations_ignored", 0))
    if ferries:
        ways = "; ".join(details.get("ferry_durations_ignored_ways", [])[:10])
        logger.warning("%s : %d bac(s) à durée invraisemblable (≤ 0, > %g h ou plus de %g "
                       "km/h) ignorée : bac compté à %g km/h%s", source, ferries,
                       FERRY_MAX_DURATION_MIN / 60, FERRY_MAX_SPEED_KMH,
                       FERRY_DEFAULT_SPEED_KMH, f" ({ways})" if ways else "")
    cut = int(details.get("ways_missing_nodes", 0))
    read = int(details.get("ways_read", 0))
    if read and cut / read > _CUT_WAYS_WARNING_SHARE:
        logger.warning("%s : %s des voies voiture (%d sur %d) référencent des nœuds absents "
                       "du fichier et sont écartées : extrait incomplet ou coupé ?", source,
                       fr_percent(cut / read), cut, read)


def _finish(raw: _RawGraph, source: str, crs: str | None) -> RoadNetwork:
    _check_raw(raw, source)
    _warn_untrusted(raw.details, source)
    keep, info = _largest_scc(raw)
    new_index = np.full(raw.node_ids.shape[0], -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    arcs = keep[raw.tail] & keep[raw.head]
    n = int(keep.sum())
    minutes, (metres, ferry), merged = csr_min(
        new_index[raw.tail[arcs]], new_index[raw.head[arcs]], raw.minutes[arcs], n,
        raw.metres[arcs], raw.ferry[arcs].astype(np.float64))
    lon, lat = raw.lon[keep], raw.lat[keep]
    if crs is None:
        crs = metric_crs_for_lonlat(float(np.median(lon)), float(np.median(lat)))
    x, y = project_lonlat(lon, lat, crs)
    details = dict(raw.details)
    details.update(info)
    details["parallel_arcs_merged"] = merged
    details["ferry_arcs"] = int((ferry.data > 0.5).sum())
    details["crs"] = crs
    report = NetworkReport(source=source, nodes=n, arcs=int(minutes.nnz), details=details)
    logger.info("road network %s: %d nodes, %d arcs (dropped %d nodes outside the largest "
                "strongly connected component, %d ways with missing nodes)", source, n,
                minutes.nnz, info["nodes_dropped_scc"], details.get("ways_missing_nodes", 0))
    return RoadNetwork(node_ids=raw.node_ids[keep], x=x, y=y, lon=lon, lat=lat, crs=crs,
                       minutes=minutes, metres=metres, report=report,
                       ferry=ferry.data > 0.5)


def network_from_arcs(  # noqa: PLR0913 - the columns of one arc table, as numpy arrays
        lon: np.ndarray, lat: np.ndarray, tail: np.ndarray, head: np.ndarray,
        minutes: np.ndarray, metres: np.ndarray | None = None, *, crs: str | None = None,
        node_ids: np.ndarray | None = None, largest_component: bool = True,
        source: str = "arcs", ferry: np.ndarray | None = None) -> RoadNetwork:
    """Build a :class:`RoadNetwork` from plain arrays (tests, benchmarks, other sources).

    Parameters
    ----------
    lon, lat
        Node coordinates, EPSG:4326 degrees.
    tail, head
        Arc ends (node indices, directed arcs).
    minutes
        Arc travel times, minutes (parallel arcs: the minimum is kept).
    metres
        Arc lengths, metres (default: great-circle length between the ends).
    crs
        Metric CRS (default from the location, see :func:`coverage.geo.metric_crs_for_lonlat`).
    node_ids
        Node identifiers (default 0 … n-1).
    largest_component
        Keep only the largest strongly connected component (as :func:`load_network`);
        ``False`` keeps every node.
    source
        Label of the source in the report.
    ferry
        Boolean per arc (aligned with ``tail``): the arc is a ferry crossing (default:
        none).
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    tail = np.asarray(tail, dtype=np.int64)
    head = np.asarray(head, dtype=np.int64)
    if metres is None:
        metres = haversine_m(lon[tail], lat[tail], lon[head], lat[head])
    if node_ids is None:
        node_ids = np.arange(lon.shape[0], dtype=np.int64)
    raw = _RawGraph(node_ids=np.asarray(node_ids, dtype=np.int64), lon=lon, lat=lat,
                    tail=tail, head=head, minutes=np.asarray(minutes, dtype=np.float64),
                    metres=np.asarray(metres, dtype=np.float64), details={},
                    ferry=(np.zeros(tail.shape[0], dtype=bool) if ferry is None
                           else np.asarray(ferry, dtype=bool)))
    if largest_component:
        return _finish(raw, source, crs)
    n = lon.shape[0]
    m, (me, fe), merged = csr_min(tail, head, raw.minutes, n, raw.metres,
                                  raw.ferry.astype(np.float64))
    if crs is None:
        crs = metric_crs_for_lonlat(float(np.median(lon)), float(np.median(lat)))
    x, y = project_lonlat(lon, lat, crs)
    report = NetworkReport(source=source, nodes=n, arcs=int(m.nnz),
                           details={"parallel_arcs_merged": merged, "crs": crs})
    return RoadNetwork(node_ids=raw.node_ids, x=x, y=y, lon=lon, lat=lat, crs=crs,
                       minutes=m, metres=me, report=report, ferry=fe.data > 0.5)


# --- What a build found ------------------------------------------------------------------

@dataclass(frozen=True)
class NetworkSummary:
    """What a road network build found, for ``validate --roads`` and the logs.

    Attributes
    ----------
    source
        The road file.
    nodes, arcs
        Nodes and car arcs kept (largest strongly connected component, minimum over
        parallel arcs).
    nodes_dropped
        Nodes outside the largest strongly connected component.
    ways_read, ways_kept
        Car ways (OSM) or edges (GraphML) read, and kept.
    other_class
        Ways or edges of classes that are not driven (footway, path, …).
    denied
        Ways or edges closed to cars (``access=private`` …).
    cut
        Ways dropped because they reference nodes missing from the file (OSM only).
    maxspeed_used, maxspeed_unparsed, maxspeed_implausible
        Ways timed by their ``maxspeed``, with an unreadable one, with an implausible one
        (ignored: class default).
    ferry_ways, ferry_arcs, ferry_without_duration, ferry_ignored
        Ferries: ways, arcs kept, without ``duration``, with an implausible one (ignored).
    bbox
        ``(min lon, min lat, max lon, max lat)`` of the kept nodes, degrees (EPSG:4326).
    crs
        Metric CRS of the network.
    graphml
        The file was a GraphML (counts are of edges).
    travel_time_used
        GraphML edges timed by their own ``travel_time`` (taken as they are).
    """

    source: str
    nodes: int
    arcs: int
    nodes_dropped: int
    ways_read: int
    ways_kept: int
    other_class: int
    denied: int
    cut: int
    maxspeed_used: int
    maxspeed_unparsed: int
    maxspeed_implausible: int
    ferry_ways: int
    ferry_arcs: int
    ferry_without_duration: int
    ferry_ignored: int
    bbox: tuple[float, float, float, float]
    crs: str
    graphml: bool
    travel_time_used: int = 0

    @property
    def maxspeed_share(self) -> float:
        """Share of the kept ways (or edges) timed by their own ``maxspeed``, 0–1."""
        return self.maxspeed_used / self.ways_kept if self.ways_kept else 0.0

    @property
    def cut_share(self) -> float:
        """Share of the car ways read that are cut (nodes missing from the file), 0–1."""
        return self.cut / self.ways_read if self.ways_read else 0.0

    def warnings(self) -> list[str]:
        """Return the French warnings: what makes the network doubtful."""
        out: list[str] = []
        if self.cut_share > _CUT_WAYS_WARNING_SHARE:
            out.append(f"{fr_percent(self.cut_share)} des voies voiture sont coupées (nœuds "
                       "absents du fichier) : extrait incomplet ?")
        if self.maxspeed_implausible:
            out.append(f"{fr_int(self.maxspeed_implausible)} vitesse(s) maximale(s) "
                       f"invraisemblable(s) (≤ 0 ou > {MAXSPEED_MAX_KMH:g} km/h) ignorée(s) : "
                       "vitesse par défaut de la classe")
        if self.ferry_ignored:
            out.append(f"{fr_int(self.ferry_ignored)} durée(s) de bac invraisemblable(s) "
                       f"ignorée(s) : bac compté à {FERRY_DEFAULT_SPEED_KMH:g} km/h")
        return out

    def lines(self) -> list[str]:
        """Return the French report lines (counts, speeds, ferries, extent, warnings)."""
        what = "arêtes" if self.graphml else "voies"
        lon0, lat0, lon1, lat1 = self.bbox
        lines = [
            f"réseau voiture : {fr_int(self.nodes)} nœuds, {fr_int(self.arcs)} arcs "
            f"(plus grande composante fortement connexe ; {fr_int(self.nodes_dropped)} "
            f"nœud(s) écarté(s)), SCR métrique {self.crs}",
            f"{what} lues : {fr_int(self.ways_read)} de classe voiture, "
            f"{fr_int(self.ways_kept)} gardées ; {fr_int(self.other_class)} d'autres classes "
            f"(piétons, cycles…) ; {fr_int(self.denied)} interdites aux voitures"
            + ("" if self.graphml else
               f" ; {fr_int(self.cut)} coupées au bord de l'extrait (nœuds absents)"),
            f"vitesses : maxspeed utilisé sur {fr_int(self.maxspeed_used)} {what} "
            f"({fr_percent(self.maxspeed_share)} des {what} gardées) ; "
            f"{fr_int(self.maxspeed_unparsed)} illisible(s), "
            f"{fr_int(self.maxspeed_implausible)} invraisemblable(s) ignorée(s) ; sinon "
            "vitesse par défaut de la classe"
            + (f" (travel_time donné sur {fr_int(self.travel_time_used)} arêtes, pris tel "
               "quel)" if self.graphml else ""),
            f"bacs : {fr_int(self.ferry_ways)} {what[:-1]}(s) ({fr_int(self.ferry_arcs)} "
            "arcs) ; "
            f"{fr_int(self.ferry_without_duration)} sans durée, {fr_int(self.ferry_ignored)} "
            "à durée invraisemblable ignorée",
            f"emprise (EPSG:4326) : longitudes {fr_decimal(lon0, 3)} à {fr_decimal(lon1, 3)}, "
            f"latitudes {fr_decimal(lat0, 3)} à {fr_decimal(lat1, 3)}",
        ]
        return lines + [f"ATTENTION : {w}" for w in self.warnings()]


def network_summary(network: RoadNetwork) -> NetworkSummary:
    """Return what the build of ``network`` found (from its report), for the user.

    Parameters
    ----------
    network
        A network from :func:`load_network` (its ``report.details`` holds the counts).

    Returns
    -------
    NetworkSummary
        Counts of nodes, arcs, ways, speeds and ferries, and the extent (EPSG:4326 degrees).
    """
    d = network.report.details
    graphml = "edges_read" in d

    def count(osm_key: str, graphml_key: str | None = None) -> int:
        key = graphml_key if graphml and graphml_key else osm_key
        return int(d.get(key, 0) or 0)

    bbox = ((float(network.lon.min()), float(network.lat.min()), float(network.lon.max()),
             float(network.lat.max())) if network.n_nodes else (np.nan,) * 4)
    return NetworkSummary(
        source=network.report.source, nodes=network.n_nodes, arcs=network.n_arcs,
        nodes_dropped=count("nodes_dropped_scc"),
        ways_read=count("ways_read", "edges_read") - (count("edges_other_class")
                                                       if graphml else 0),
        ways_kept=count("ways_kept", "edges_kept"),
        other_class=count("ways_other_class", "edges_other_class"),
        denied=count("ways_denied_access", "edges_denied_access"),
        cut=count("ways_missing_nodes"), maxspeed_used=count("maxspeed_used"),
        maxspeed_unparsed=count("maxspeed_unparsed"),
        maxspeed_implausible=count("maxspeed_implausible"),
        ferry_ways=count("ferry_ways", "ferry_edges"),
        ferry_arcs=int(network.ferry.sum()),
        ferry_without_duration=count("ferry_ways_without_duration"),
        ferry_ignored=count("ferry_durations_ignored"),
        bbox=bbox,  # type: ignore[arg-type]
        crs=network.crs, graphml=graphml, travel_time_used=count("travel_time_used"))


# --- Cache -------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """Cache folder: ``$ZB_CACHE_DIR`` or ``~/.cache/zones-blanches``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "zones-blanches"


def _cache_key(file_hash: str, settings: Settings, crs: str | None) -> str:
    params = {"version": BUILD_VERSION, "file": file_hash, "crs": crs,
              "include_service_roads": settings.include_service_roads,
              "ferries": settings.ferries,
              "default_speeds_kmh": dict(sorted(settings.default_speeds_kmh.items())),
              "implicit": dict(sorted(FR_IMPLICIT_MAXSPEED_KMH.items())),
              "ferry_default_kmh": FERRY_DEFAULT_SPEED_KMH}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:32]


def _save(network: RoadNetwork, target: Path) -> None:
    report = {"source": network.report.source, "nodes": network.report.nodes,
              "arcs": network.report.arcs, "details": network.report.details}
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, node_ids=network.node_ids, x=network.x, y=network.y,
                 lon=network.lon, lat=network.lat,
                 indptr=network.minutes.indptr, indices=network.minutes.indices,
                 minutes=network.minutes.data, metres=network.metres.data,
                 ferry=network.ferry,
                 crs=np.array(network.crs), report=np.array(json.dumps(report)))


def _load(target: Path) -> RoadNetwork:
    with np.load(target, allow_pickle=False) as z:
        n = int(z["node_ids"].shape[0])
        indptr, indices = z["indptr"], z["indices"]
        minutes = sp.csr_array((z["minutes"], indices, indptr), shape=(n, n))
        metres = sp.csr_array((z["metres"], indices.copy(), indptr.copy()), shape=(n, n))
        rep = json.loads(str(z["report"]))
        details = dict(rep["details"])
        details["cache"] = "hit"
        return RoadNetwork(node_ids=z["node_ids"], x=z["x"], y=z["y"], lon=z["lon"],
                           lat=z["lat"], crs=str(z["crs"]), minutes=minutes, metres=metres,
                           report=NetworkReport(source=rep["source"], nodes=rep["nodes"],
                                                arcs=rep["arcs"], details=details),
                           ferry=z["ferry"])


# --- Public entry point ------------------------------------------------------------------

def load_network(path: str | Path, *, settings: Settings = Settings(), crs: str | None = None,
                 cache_dir: str | Path | None = None, use_cache: bool = True) -> RoadNetwork:
    """Build (or read from the cache) the car road network of an OSM or GraphML file.

    Parameters
    ----------
    path
        ``.osm.pbf``, ``.osm``, ``.osm.gz``, ``.osm.bz2`` (read with pyosmium) or
        ``.graphml`` (an osmnx graph, read with ``osmnx.load_graphml``; its edges are taken
        as they are, with their ``length`` and ``travel_time`` when present).
    settings
        Road classes, default speeds by class, ferries switch, service roads.
    crs
        Metric CRS of the node coordinates; ``None`` picks it from the data's location
        (:func:`coverage.geo.metric_crs_for_lonlat`: Lambert-93 in metropolitan France and
        its border strips, the DROM's CRS in a DROM, else local UTM).
    cache_dir
        Cache folder (default :func:`default_cache_dir`). The key is the file's SHA-256
        plus the parameters above and the build version.
    use_cache
        Read and write the cache.

    Returns
    -------
    RoadNetwork
        Largest strongly connected component of the car network; ``report.details`` counts
        what was read, kept and dropped.

    Raises
    ------
    InputError
        The file does not exist or has an unsupported extension.
    NetworkError
        The file holds no drivable way (the classes found are named), is not a readable
        OSM / GraphML file, or holds an arc time that is negative, NaN or infinite or a node
        off the globe (each named): such a network is refused before any routing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(Problem(str(path), None, None, "un fichier de réseau routier existant"))
    name = path.name.lower()
    is_graphml = name.endswith(".graphml")
    if not is_graphml and not name.endswith(_OSM_SUFFIXES):
        raise UnsupportedFormatError(Problem(
            str(path), None, None,
            "un fichier OSM (.osm, .osm.gz, .osm.bz2, .osm.pbf) ou un .graphml d'osmnx",
            path.suffix))
    target: Path | None = None
    file_hash = ""
    if use_cache:
        file_hash = sha256_file(path)
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        target = folder / "networks" / f"{_cache_key(file_hash, settings, crs)}.npz"
        if target.is_file():
            try:
                network = _load(target)
            except (OSError, ValueError, KeyError, NetworkError) as exc:
                logger.warning("cache du réseau illisible ignoré %s : %s", target, exc)
            else:
                logger.info("road network read from the cache %s", target)
                return network
    start = time.perf_counter()
    raw = _read_graphml(path, settings) if is_graphml else _read_osm(path, settings)
    network = _finish(raw, str(path), crs)
    network.report.details["build_seconds"] = round(time.perf_counter() - start, 3)
    network.report.details["file_sha256"] = file_hash or None
    network.report.details["cache"] = "miss" if use_cache else "off"
    if target is not None:
        try:
            _save(network, target)
        except OSError as exc:
            logger.warning("cache du réseau non écrit %s : %s", target, exc)
    return network
