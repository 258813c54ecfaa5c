"""Land masses and ferry links: proxy trips never cross the sea except by a given ferry.

A **land mass** is a connected component of the graph whose nodes are the communes and whose
edges join two communes whose polygons touch, counting a gap of up to
``settings.land_mass_gap_m`` metres (300 m by default, measured in the territory's metric
CRS, :func:`coverage.settings.metric_crs_for`: EPSG:2154 in metropolitan France) as
touching, so that an estuary or a river splitting a commune pair does not cut the land.
Metropolitan France (the continent, Corsica, Belle-Île, Île d'Yeu, Ouessant …) is split
from its own polygons; each DROM département is split from its own polygons on its own
(Guadeloupe's islands are several land masses), never joined to another territory. The
pairs come from ``shapely.STRtree`` queries (touching pairs, then the pairs within the gap
for the communes off the continent only) and the components from
``scipy.sparse.csgraph.connected_components``: once per run, vectorised (≈ 1.5 s of CPU for
the 34,868 communes of France).

Islands joined to the mainland by a **road bridge** are not islands for a car: the bridges
of :data:`ROAD_BRIDGES` (Île de Ré, Oléron, Noirmoutier) join their two communes as if they
touched. Every other island of metropolitan France found this way (Corsica, Belle-Île,
Groix, Yeu, Ouessant, Sein, Molène, Batz, Bréhat, Aix, Houat, Hœdic, Île-aux-Moines,
Île-d'Arz) and of the DROM (Marie-Galante, La Désirade, Les Saintes, Petite-Terre) is
reached by boat only: through the ferry links the user gives.

A land mass is labelled by the smallest INSEE code of its communes (``"01001"`` for the
continent, ``"2A001"`` for Corsica): stable while the communes don't change.

**Ferry links** are given by the user in a small table (CSV/XLSX: ``port_1``, ``port_2``
— commune INSEE codes — and ``minutes``, the crossing time, both directions; empty by
default). :func:`read_ferry_links` validates it (one problem per bad cell, naming file, row
and column) and :func:`ferry_network` places each port on its land mass. A proxy trip
through a link costs the drive to the port + the crossing + the drive from the other port
(:mod:`coverage.routing.proxy`).

A proxy run **records** its land masses, the density levels of its services' communes
outside its départements and its ferry ports in the manifest (:class:`RunLandMasses`, key
:data:`RECORD_KEY` of ``engine.parameters``; the links themselves are ``liaisons``), so that
:func:`coverage.routing.engine_of_run` times new sites exactly as the run timed its
services, with only the run's communes at hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from coverage._validate import require_columns
from coverage.cog import dep_of_code
from coverage.errors import EmptyInputError, InputError, Problem
from coverage.io.tables import HEADER_WITHOUT_ROWS, read_table
from coverage.settings import Settings, metric_crs_for

__all__ = [
    "FERRY_COLUMNS",
    "FRAGMENTED_WARNING",
    "LAND_MASS_COLUMN",
    "MAX_LAND_MASSES",
    "RECORD_KEY",
    "ROAD_BRIDGES",
    "FerryLink",
    "FerryNetwork",
    "Port",
    "RunLandMasses",
    "ferry_network",
    "land_masses",
    "links_of_record",
    "read_ferry_links",
]

log = logging.getLogger(__name__)

#: Column of the communes and services tables holding the land mass label.
LAND_MASS_COLUMN = "masse_terrestre"
#: Road bridges to islands (commune on the mainland, commune on the island; COG 2026):
#: pont de l'île de Ré (La Rochelle – Rivedoux-Plage), pont d'Oléron (Bourcefranc-le-Chapus
#: – Le Château-d'Oléron), pont de Noirmoutier (La Barre-de-Monts – Barbâtre).
ROAD_BRIDGES: tuple[tuple[str, str], ...] = (
    ("17300", "17297"),
    ("17058", "17093"),
    ("85012", "85011"),
)
#: Columns of the ferry links table: two port communes (INSEE codes), crossing minutes.
FERRY_COLUMNS = ("port_1", "port_2", "minutes")


def _territory_key(code_dep: str) -> str:
    """Return the territory whose polygons are split together: ``metro`` or a DROM code."""
    crs = metric_crs_for(code_dep)
    return code_dep if code_dep.startswith("97") else f"metro:{crs}"


#: Fewest metres in a degree of longitude or latitude below 60° of latitude (every French
#: territory): a gap of ``g`` metres is at most ``g / this`` degrees.
_MIN_METRES_PER_DEGREE = 111_320.0 * 0.5


def _components(geoms: gpd.GeoSeries, crs: str, gap_m: float, codes: np.ndarray
                ) -> np.ndarray:
    """Return the component number of each geometry (touching within ``gap_m`` metres).

    Two passes, the same components as one metric ``dwithin`` pass but faster: the touching
    pairs (``intersects``, in the geometries' own CRS: projecting keeps touching) first; then,
    for the communes outside the largest component only (island candidates; a pair inside
    the largest component changes nothing), the pairs within ``gap_m``, measured in the
    metric ``crs`` (candidates found in degrees with a generous bound, then checked in
    metres). The communes of a :data:`ROAD_BRIDGES` pair count as touching.
    """
    n = len(geoms)
    native = geoms.to_numpy()
    geographic = geoms.crs is None or geoms.crs.is_geographic
    tree = shapely.STRtree(native)
    where = {str(c): i for i, c in enumerate(codes)}
    bridges = np.array([(where[a], where[b]) for a, b in ROAD_BRIDGES
                        if a in where and b in where], dtype=np.int64).reshape(-1, 2)
    labels = _touching_components(native, tree, bridges)
    largest = np.bincount(labels).argmax()
    outside = np.flatnonzero(labels != largest)
    if outside.size == 0 or gap_m <= 0:
        return labels
    bound = gap_m / _MIN_METRES_PER_DEGREE if geographic else gap_m
    near_left, near_right = tree.query(native[outside], predicate="dwithin", distance=bound)
    near_left = outside[near_left]
    if geographic and near_left.size:  # check the candidates in metres
        used = np.unique(np.concatenate([near_left, near_right]))
        metric = np.empty(n, dtype=object)
        metric[used] = geoms.iloc[used].to_crs(crs).to_numpy()
        keep = shapely.dwithin(metric[near_left], metric[near_right], gap_m)
        near_left, near_right = near_left[keep], near_right[keep]
    # each node joined to one representative node of its first-pass component
    rep = _representative(labels)
    return _connected(n, np.concatenate([rep[labels], near_left]),
                      np.concatenate([np.arange(n), near_right]))


#: One vertex in this many (a power of 2) is used to join communes sharing it.
_VERTEX_SAMPLE = 8


def _touching_components(native: np.ndarray, tree: shapely.STRtree, bridges: np.ndarray
                         ) -> np.ndarray:
    """Return the components of the geometries joined when they intersect (or are bridged).

    The components of ``tree.query(native, predicate="intersects")`` plus the bridges,
    found cheaply: geometries sharing a vertex intersect (the point is in both), which
    joins the communes of a tiling along their common boundaries (a sample of the points,
    chosen by their coordinates so that it is the same on both sides: one in
    :data:`_VERTEX_SAMPLE`); the ``intersects`` test then runs only on the pairs of
    overlapping boxes still in two components.
    """
    n = native.shape[0]
    xy, owner = shapely.get_coordinates(native, return_index=True)
    # a sample of the points, the same in every geometry (by their bits): a boundary shared
    # over a few dozen vertices keeps some of them; a pair missed is tested below
    bits = np.ascontiguousarray(xy).view(np.int64)
    mixed = bits[:, 0] * np.int64(-7046029254386353131) + bits[:, 1]
    sample = ((mixed ^ (mixed >> 29)) & (_VERTEX_SAMPLE - 1)) == 0
    xy, owner = xy[sample], owner[sample]
    # one code per distinct point (float equality, by hashing each coordinate)
    cx = pd.factorize(xy[:, 0])[0].astype(np.int64)
    cy = pd.factorize(xy[:, 1])[0].astype(np.int64)
    point = pd.factorize(cx * (int(cy.max(initial=0)) + 1) + cy)[0]
    first = np.full(int(point.max(initial=-1)) + 1, -1, dtype=np.int64)
    first[point] = owner  # a geometry holding each point (any one will do)
    labels = _connected(n, np.concatenate([owner, bridges[:, 0]]),
                        np.concatenate([first[point], bridges[:, 1]]))
    left, right = tree.query(native)
    cross = labels[left] != labels[right]
    if not cross.any():
        return labels
    left, right = left[cross], right[cross]
    hit = shapely.intersects(native[left], native[right])
    # each node joined to one node of its component, plus the pairs found intersecting
    return _connected(n, np.concatenate([np.arange(n), left[hit]]),
                      np.concatenate([_representative(labels)[labels], right[hit]]))


def _representative(labels: np.ndarray) -> np.ndarray:
    """Return, for each component label, one node of that component."""
    rep = np.zeros(int(labels.max(initial=-1)) + 1, dtype=np.int64)
    rep[labels] = np.arange(labels.size)
    return rep


def _connected(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Return the connected components of ``n`` nodes joined by the pairs (left, right)."""
    graph = coo_matrix((np.ones(left.shape[0], dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def _territory_labels(frame: gpd.GeoDataFrame, crs: str, gap_m: float
                      ) -> tuple[np.ndarray, bool]:
    """Return the land mass label of each commune of one territory (metric ``crs``).

    Also returns True when the polygons do not tile the territory (:func:`_fragmented`):
    the whole territory is then one land mass.
    """
    geoms = frame.geometry
    codes = frame["code_insee"].astype(str).to_numpy(dtype=object)
    missing = (shapely.is_missing(geoms.to_numpy()) | shapely.is_empty(geoms.to_numpy()))
    labels = np.full(len(frame), -1, dtype=np.int64)
    have = np.flatnonzero(~missing)
    if have.size:
        labels[have] = _components(geoms.iloc[have], crs, gap_m, codes[have])
    lost = np.flatnonzero(missing)
    if lost.size and have.size and {"lon", "lat"} <= set(frame.columns):
        pts = gpd.GeoSeries(gpd.points_from_xy(frame["lon"].to_numpy(float)[lost],
                                               frame["lat"].to_numpy(float)[lost]),
                            crs="EPSG:4326").to_crs(crs).to_numpy()
        nearest = shapely.STRtree(geoms.iloc[have].to_crs(crs).to_numpy()).nearest(pts)
        labels[lost] = labels[have][nearest]
        log.info("%d commune(s) without a polygon take the land mass of the nearest "
                 "commune: %s", lost.size, ", ".join(codes[lost][:5]))
    alone = np.flatnonzero(labels < 0)
    labels[alone] = labels.max(initial=-1) + 1 + np.arange(alone.size)
    scattered = _fragmented(labels)
    if scattered:
        labels[:] = 0
    smallest = pd.Series(codes).groupby(labels).transform("min")
    return smallest.to_numpy(dtype=object), scattered


def _fragmented(labels: np.ndarray) -> bool:
    """Return True when the polygons do not tile a territory (too many pieces to be islands).

    More than :data:`MAX_LAND_MASSES` pieces, or more than half of the communes off the
    largest piece: the communes file holds scattered communes (a selection, points drawn as
    boxes), not a territory, and its islands cannot be told from its gaps.
    """
    if labels.size == 0:
        return False
    sizes = np.bincount(labels)
    return bool(sizes.size > MAX_LAND_MASSES or sizes.max() * 2 < labels.size)


#: Most land masses a territory may have before its polygons count as not tiling it (France
#: has 19 in metropolitan France, at most 6 in a DROM).
MAX_LAND_MASSES = 40
#: French warning when a territory's polygons do not tile it (one land mass is then used).
FRAGMENTED_WARNING = ("Les polygones des communes ne forment pas un territoire continu "
                      "({territory}) : îles non détectées, le territoire est traité comme une "
                      "seule masse terrestre.")


def land_masses(communes: gpd.GeoDataFrame, settings: Settings = Settings()) -> pd.Series:
    """Return the land mass of every commune (see the module docstring for the rule).

    Parameters
    ----------
    communes
        ``code_insee``, ``code_dep`` and polygons (any CRS; projected per territory to
        :func:`coverage.settings.metric_crs_for`). Communes without a polygon take the land
        mass of the nearest commune (by ``lon``/``lat``, EPSG:4326, when present) or one of
        their own.
    settings
        ``land_mass_gap_m``: the largest gap counted as touching, metres.

    Returns
    -------
    pandas.Series
        Land mass label (the smallest INSEE code of the land mass) indexed by
        ``code_insee`` (str), in the order of ``communes``. A territory whose polygons do
        not tile it (:func:`_fragmented`) is one land mass, with a French warning in the
        Series' ``attrs["avertissements"]``.
    """
    require_columns(communes, ("code_insee", "code_dep", "geometry"), file="communes")
    deps = communes["code_dep"].astype(str).to_numpy(dtype=object)
    dep_index, dep_codes = pd.factorize(deps, use_na_sentinel=False)  # one key per code
    keys = np.array([_territory_key(d) for d in dep_codes], dtype=object)[dep_index]
    out = np.empty(len(communes), dtype=object)
    notes = []
    for key in sorted(set(keys)):
        sel = np.flatnonzero(keys == key)
        crs = metric_crs_for(str(deps[sel[0]]))
        out[sel], scattered = _territory_labels(communes.iloc[sel], crs,
                                                settings.land_mass_gap_m)
        if scattered:
            territory = "France métropolitaine" if key.startswith("metro") else key
            notes.append(FRAGMENTED_WARNING.format(territory=territory))
            log.warning("%s", notes[-1])
    index = pd.Index(communes["code_insee"].astype(str), name="code_insee")
    series = pd.Series(out, index=index, name=LAND_MASS_COLUMN, dtype=object)
    series.attrs["avertissements"] = notes
    return series


@dataclass(frozen=True)
class FerryLink:
    """A ferry crossing between two port communes, both ways.

    Attributes
    ----------
    port_1, port_2
        INSEE codes of the port communes.
    minutes
        Crossing time, minutes (boarding included).
    """

    port_1: str
    port_2: str
    minutes: float


@dataclass(frozen=True)
class Port:
    """A port commune placed on its land mass.

    Attributes
    ----------
    code_insee
        INSEE code of the port commune.
    lon, lat
        Its representative point, EPSG:4326 degrees.
    land_mass
        Its land mass label (:func:`land_masses`).
    """

    code_insee: str
    lon: float
    lat: float
    land_mass: str


@dataclass(frozen=True)
class FerryNetwork:
    """The ferry links of a run with their ports placed (hashable, picklable).

    Attributes
    ----------
    ports
        Every port named by a link, once.
    links
        The crossings.
    """

    ports: tuple[Port, ...] = ()
    links: tuple[FerryLink, ...] = ()

    def as_dict(self) -> list[dict[str, object]]:
        """Return the links as plain JSON (for manifests and cache keys)."""
        return [{"port_1": link.port_1, "port_2": link.port_2, "minutes": link.minutes}
                for link in self.links]


def _cell_problems(raw: pd.DataFrame, name: str) -> list[Problem]:
    """Return the problems of the ferry table's cells (codes, minutes, pairs)."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(raw.itertuples(index=False), start=1):
        ports = [str(getattr(row, c) if pd.notna(getattr(row, c)) else "").strip()
                 for c in ("port_1", "port_2")]
        for col, code in zip(("port_1", "port_2"), ports, strict=True):
            if len(code) != 5:
                problems.append(Problem(name, i, col, "un code commune INSEE (5 caractères)",
                                        code))
        minutes = pd.to_numeric(pd.Series([row.minutes]), errors="coerce").iloc[0]
        if not (np.isfinite(minutes) and minutes >= 0):
            problems.append(Problem(name, i, "minutes", "une durée de traversée en minutes ≥ 0",
                                    str(row.minutes)))
        if ports[0] == ports[1] and ports[0]:
            problems.append(Problem(name, i, "port_2", "un port autre que port_1", ports[1]))
        pair = (min(ports), max(ports))
        if pair in seen:
            problems.append(Problem(name, i, "port_1/port_2",
                                    "chaque paire de ports une seule fois",
                                    " – ".join(ports)))
        seen.add(pair)
    return problems


def read_ferry_links(path: str | Path) -> tuple[FerryLink, ...]:
    """Read and validate a ferry links table (``port_1``, ``port_2``, ``minutes``).

    Parameters
    ----------
    path
        CSV (``,`` or ``;``) or XLSX file; one row per crossing, used both ways.

    Returns
    -------
    tuple of FerryLink
        The links, in file order (empty for a table with a header only).

    Raises
    ------
    coverage.errors.InputError
        Missing column, a port that is not a 5-character INSEE code, minutes that are not a
        number ≥ 0, a port linked to itself, or a pair given twice; one problem per bad
        cell, naming the file, row and column.
    """
    p = Path(path)
    try:
        raw = read_table(p)
    except EmptyInputError as exc:  # a header without rows: no link
        if p.is_file() and p.stat().st_size > 0 and any(
                pb.found == HEADER_WITHOUT_ROWS for pb in exc.problems):
            return ()
        raise
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    require_columns(raw, FERRY_COLUMNS, file=p.name)
    problems = _cell_problems(raw, p.name)
    if problems:
        raise InputError(problems[:20])
    minutes = pd.to_numeric(raw["minutes"]).to_numpy(dtype=np.float64)
    return tuple(FerryLink(str(a).strip(), str(b).strip(), float(m))
                 for a, b, m in zip(raw["port_1"], raw["port_2"], minutes, strict=True))


def ferry_network(links: Sequence[FerryLink], communes: pd.DataFrame,
                  land_mass: pd.Series, *, file: str = "liaisons") -> FerryNetwork:
    """Place the ports of ``links`` on their land masses.

    Parameters
    ----------
    links
        Ferry links (:func:`read_ferry_links`).
    communes
        ``code_insee``, ``lon``, ``lat`` (EPSG:4326) of every commune of the run.
    land_mass
        :func:`land_masses` of those communes.
    file
        Name of the links file in error messages.

    Returns
    -------
    FerryNetwork

    Raises
    ------
    coverage.errors.InputError
        A port is not a commune of the communes table (one problem per row).
    """
    if not links:
        return FerryNetwork()
    require_columns(communes, ("code_insee", "lon", "lat"), file="communes")
    ref = pd.DataFrame(communes[["code_insee", "lon", "lat"]]).astype({"code_insee": str})
    ref = ref.drop_duplicates("code_insee").set_index("code_insee")
    problems = [Problem(file, i, col, "une commune de la table des communes", code)
                for i, link in enumerate(links, start=1)
                for col, code in (("port_1", link.port_1), ("port_2", link.port_2))
                if code not in ref.index or code not in land_mass.index]
    if problems:
        raise InputError(problems[:20])
    codes = list(dict.fromkeys(c for link in links for c in (link.port_1, link.port_2)))
    lon = pd.to_numeric(ref["lon"]).astype(np.float64)
    lat = pd.to_numeric(ref["lat"]).astype(np.float64)
    ports = tuple(Port(c, float(lon[c]), float(lat[c]), str(land_mass[c])) for c in codes)
    return FerryNetwork(ports, tuple(links))


# --- What a run records to rebuild its proxy engine ----------------------------------------

#: Key of the manifest's ``engine.parameters`` holding :meth:`RunLandMasses.as_record`.
RECORD_KEY = "masses_terrestres"


def _port_of(raw: object) -> Port | None:
    """Return the port of one recorded entry, None when malformed."""
    if not isinstance(raw, Mapping):
        return None
    try:
        return Port(str(raw["code_insee"]), float(raw["lon"]), float(raw["lat"]),
                    str(raw[LAND_MASS_COLUMN]))
    except (KeyError, TypeError, ValueError):
        return None


def _modes(labels: pd.Series, deps: pd.Series) -> pd.Series:
    """Return the most frequent label of each département (index: sorted départements).

    The values of ``labels.groupby(deps).agg(lambda s: s.value_counts().index[0])``
    (départements NA left out): counted at once for the départements whose most frequent
    label is alone at the top, by that very lambda for those with a tie (its order of
    ties is pandas').
    """
    d = deps.to_numpy(dtype=object)
    lab = labels.to_numpy(dtype=object)
    ok = pd.notna(d)
    counts = pd.DataFrame({"d": d[ok], "l": lab[ok]}).value_counts(sort=False)
    if counts.empty:
        return labels.groupby(deps).agg(lambda s: s.value_counts().index[0])
    top = counts[counts.to_numpy() == counts.groupby(level=0).transform("max").to_numpy()]
    top_deps = top.index.get_level_values(0).to_numpy(dtype=object)
    tied = pd.Index(top_deps, dtype=object).duplicated(keep=False)
    mode = dict(zip(top_deps[~tied], top.index.get_level_values(1).to_numpy(dtype=object)[~tied],
                    strict=True))
    for dep in set(top_deps[tied]):
        mode[dep] = labels[d == dep].value_counts().index[0]
    keys = sorted(mode)
    return pd.Series([mode[k] for k in keys], index=pd.Index(keys, dtype=object), dtype=object)


@dataclass(frozen=True)
class RunLandMasses:
    """The land masses, service densities and ferry ports of a proxy run, as it recorded them.

    What :func:`coverage.routing.engine_of_run` needs to time new sites exactly as the run
    did, without the communes the run loaded outside its départements: the land mass of any
    commune of the run's communes file, the density level of the services' communes outside
    the run's départements, and the ports of the ferry links (point, land mass). Recorded in
    the manifest (``engine.parameters.masses_terrestres``, :meth:`as_record`), compactly: the
    label of the main land mass of each département and the communes off it (islands), so a
    national run records a few hundred codes.

    Attributes
    ----------
    main
        Département code → label of the land mass of most of its communes.
    islands
        Commune code → land mass label, for the communes off their département's main land
        mass.
    densities
        Commune code → INSEE density level (1 … 4) of the services' communes outside the
        run's départements.
    ports
        The ports of the run's ferry links, placed on their land masses.
    """

    main: Mapping[str, str] = field(default_factory=dict)
    islands: Mapping[str, str] = field(default_factory=dict)
    densities: Mapping[str, int] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()

    @classmethod
    def of_run(cls, mass: pd.Series | None, ferries: FerryNetwork,
               densities: Mapping[str, int] | None = None) -> RunLandMasses:
        """Return the record of a run's land masses.

        Parameters
        ----------
        mass
            :func:`land_masses` of every commune loaded (indexed by ``code_insee``), or None
            without polygons (the engine then uses one land mass per territory, its metric
            CRS: nothing to record but the ports).
        ferries
            The run's ferry network.
        densities
            Density level of the services' communes outside the run's départements.
        """
        main: dict[str, str] = {}
        islands: dict[str, str] = {}
        if mass is not None and len(mass):
            labels = pd.Series(mass.astype(str).to_numpy(), index=mass.index.astype(str))
            labels = labels[~labels.index.duplicated()]
            deps = dep_of_code(pd.Series(labels.index, index=labels.index))
            mode = _modes(labels, deps)
            main = {str(d): str(m) for d, m in mode.items()}
            off = labels[labels.to_numpy() != deps.map(mode).to_numpy()]
            islands = {str(c): str(m) for c, m in off.items()}
        return cls(main, islands, dict(densities or {}), tuple(ferries.ports))

    def as_record(self) -> dict[str, Any]:
        """Return the record as plain JSON (for the manifest's engine parameters)."""
        by_mass: dict[str, list[str]] = {}
        for code, label in sorted(self.islands.items()):
            by_mass.setdefault(label, []).append(code)
        return {
            "principales": dict(sorted(self.main.items())),
            "iles": by_mass,
            "densites_services": {c: int(d) for c, d in sorted(self.densities.items())},
            "ports": [{"code_insee": p.code_insee, "lon": p.lon, "lat": p.lat,
                       LAND_MASS_COLUMN: p.land_mass} for p in self.ports],
        }

    @classmethod
    def from_record(cls, raw: object) -> RunLandMasses | None:
        """Return the record read back from a manifest, None when absent (older runs).

        Malformed entries are skipped (a port without its point, a density that is not a
        number).
        """
        if not isinstance(raw, Mapping):
            return None
        main = raw.get("principales")
        islands = raw.get("iles")
        dens = raw.get("densites_services")
        ports = raw.get("ports")
        by_code = {str(c): str(label) for label, codes in
                   (islands.items() if isinstance(islands, Mapping) else ())
                   if isinstance(codes, list) for c in codes}
        levels = {str(c): int(d) for c, d in (dens.items() if isinstance(dens, Mapping) else ())
                  if isinstance(d, (int, float)) and np.isfinite(d)}
        placed = tuple(p for p in map(_port_of, ports if isinstance(ports, list) else [])
                       if p is not None)
        return cls({str(d): str(m) for d, m in main.items()} if isinstance(main, Mapping)
                   else {}, by_code, levels, placed)

    def land_mass_of(self, codes: pd.Series) -> np.ndarray:
        """Return the recorded land mass of commune codes (None where unknown).

        Parameters
        ----------
        codes
            Commune INSEE codes (missing codes give None).
        """
        text = codes.astype(object).where(codes.notna(), None)
        deps = dep_of_code(codes)
        out = [self.islands.get(str(c), self.main.get(str(d))) if c is not None else None
               for c, d in zip(text, deps, strict=True)]
        return np.array(out, dtype=object)

    def ferries(self, links: Sequence[FerryLink]) -> FerryNetwork | None:
        """Return the ferry network of ``links`` on the recorded ports (None without link).

        A link whose ports were not recorded is dropped, with a log warning.
        """
        known = {p.code_insee for p in self.ports}
        kept = tuple(link for link in links if {link.port_1, link.port_2} <= known)
        if len(kept) < len(links):
            log.warning("%d liaison(s) maritime(s) sans ports enregistrés ignorée(s)",
                        len(links) - len(kept))
        if not kept:
            return None
        used = {c for link in kept for c in (link.port_1, link.port_2)}
        return FerryNetwork(tuple(p for p in self.ports if p.code_insee in used), kept)


def links_of_record(raw: object) -> tuple[FerryLink, ...]:
    """Return the ferry links of a manifest's ``engine.parameters.liaisons`` (JSON list).

    Parameters
    ----------
    raw
        :meth:`FerryNetwork.as_dict` read back; entries that are not a link are skipped.
    """
    out: list[FerryLink] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        try:
            out.append(FerryLink(str(item["port_1"]), str(item["port_2"]),
                                 float(item["minutes"])))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)
