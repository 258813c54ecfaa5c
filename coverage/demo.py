"""Deterministic generator of the FICTIONAL demo territory « Brumeval ».

The demo lets the tool run on a fresh machine with no other data. It is **not a real place**:
it lies in the Atlantic, off the French coast (around 45.6° N, 3.2° W), where no French
commune exists, its département codes are ``ZA`` and ``ZB`` (the prefix ``Z`` never exists
in the COG), and every file, table and map made from it says it is fictional.

What is generated (one seed gives byte-identical files):

- ``communes_fictives.geojson``: ~230 communes (Voronoi cells of settlement points clipped to
  an irregular island outline), two départements, EPCI groupings (k-means of the commune
  centres, per département), a rural population skew (three towns, many villages of a few
  hundred inhabitants, a sparsely settled upland in the north-west) and INSEE-like density
  levels derived from the commune density (a fictional approximation of the INSEE grid,
  which is built on 1 km cells). ``lon``/``lat`` are the chef-lieu (the village centre).
- ``routes_fictives.osm``: OSM XML road network with real highway classes (motorway and
  links, primary … residential, living_street), one-way streets (``oneway=yes`` and
  ``oneway=-1``), a roundabout, ``maxspeed`` on some ways (``80``, ``FR:rural``,
  ``FR:urban``, ``FR:zone30`` …), a ferry across the lake (``route=ferry`` with
  ``duration``), and ways that a car network must drop (footway, cycleway, track, a private
  service road). Roads avoid the lake, so the network has a hole there.
- ``services_fictifs.csv``: ten services of both types, most with coordinates, two placed
  at their commune only.
- ``listes_attente_fictives.csv``: per-service waiting lists for 2023–2025 in the contract
  columns plus activity-return extras.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer
from scipy.sparse import coo_array
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay
from shapely.geometry import LineString, MultiPoint, Point, Polygon

from coverage.files import write_text_atomic
from coverage.labels import FICTIONAL_LABEL, fr_int
from coverage.settings import CRS_INPUT_OUTPUT, CRS_METRO, DEMO_DIR

__all__ = [
    "COMMUNES_FILE",
    "DEFAULT_SEED",
    "ROADS_FILE",
    "SERVICES_FILE",
    "WAITING_FILE",
    "DemoPaths",
    "demo_paths",
    "generate_demo",
    "write_demo",
]


log = logging.getLogger(__name__)

DEFAULT_SEED = 2026

COMMUNES_FILE = "communes_fictives.geojson"
SERVICES_FILE = "services_fictifs.csv"
WAITING_FILE = "listes_attente_fictives.csv"
ROADS_FILE = "routes_fictives.osm"

# Geometry of the island, Lambert-93 metres.
_CENTRE = (215_000.0, 6_520_000.0)
_HALF_AXES = (46_000.0, 34_000.0)
_LAKE_CENTRE = (228_000.0, 6_512_000.0)
_LAKE_AXES = (6_500.0, 3_500.0)
_UPLAND_CENTRE = (185_000.0, 6_540_000.0)  # sparsely settled north-west
_TOWNS = (  # (x, y, population, name)
    (196_000.0, 6_514_000.0, 24_800, "Brumeval"),
    (240_000.0, 6_522_000.0, 17_300, "Port-Ombrelle"),
    (226_000.0, 6_541_000.0, 7_900, "Sainte-Nébuline"),
)
_N_COMMUNES = 230

_SYL_A = ("Bru", "Vel", "Cor", "Mar", "Lau", "Fen", "Gri", "Sal", "Ter", "Aub", "Ros",
          "Pel", "Val", "Mon", "Ker", "Lis", "Dor", "Tav", "Bel", "Cas")
_SYL_B = ("mont", "ville", "lac", "bois", "val", "court", "lande", "roche", "pré",
          "sac", "nay", "gny", "zac", "ric", "dol")
_SUFFIX = ("", "", "", "", "-sur-Brume", "-le-Haut", "-en-Lande", "-les-Pins",
           "-la-Fictive", "-d'Ombre")


@dataclass(frozen=True)
class DemoPaths:
    """Paths of the demo files."""

    communes: Path
    services: Path
    waiting: Path
    roads: Path

    def all(self) -> list[Path]:
        """Return the four paths."""
        return [self.communes, self.services, self.waiting, self.roads]


def demo_paths(folder: Path | None = None) -> DemoPaths:
    """Paths of the demo files in ``folder`` (default: the embedded ``data/demo``)."""
    folder = DEMO_DIR if folder is None else Path(folder)
    return DemoPaths(folder / COMMUNES_FILE, folder / SERVICES_FILE, folder / WAITING_FILE,
                     folder / ROADS_FILE)


# --- Territory ---------------------------------------------------------------------------

def _ellipse(centre: tuple[float, float], axes: tuple[float, float], rng: np.random.Generator,
             noise: float, n: int = 72) -> Polygon:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    wobble = 1 + noise * (np.sin(3 * t + rng.uniform(0, 6)) * 0.5
                          + np.sin(7 * t + rng.uniform(0, 6)) * 0.3
                          + rng.normal(0, 0.15, n))
    x = centre[0] + axes[0] * np.cos(t) * wobble
    y = centre[1] + axes[1] * np.sin(t) * wobble
    return Polygon(np.column_stack([x, y])).buffer(0)


def _settlements(rng: np.random.Generator, outline: Polygon, lake: Polygon) -> np.ndarray:
    """Settlement points: the towns first, then villages with a sparser upland."""
    pts = [np.array([x, y]) for x, y, _, _ in _TOWNS]
    minx, miny, maxx, maxy = outline.bounds
    inner = outline.buffer(-1_500)
    keep_out = lake.buffer(800)
    tries = 0
    while len(pts) < _N_COMMUNES and tries < 200_000:
        tries += 1
        p = np.array([rng.uniform(minx, maxx), rng.uniform(miny, maxy)])
        d_up = np.hypot(*(p - _UPLAND_CENTRE))
        upland = d_up < 22_000
        if upland and rng.uniform() < 0.55:
            continue
        min_gap = 4_600.0 if upland else 2_900.0
        if min(float(np.hypot(*(p - q))) for q in pts) < min_gap:
            continue
        point = Point(p)
        if not inner.contains(point) or keep_out.contains(point):
            continue
        pts.append(p)
    return np.array(pts)


def _names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = [t[3] for t in _TOWNS]
    seen = set(names)
    while len(names) < n:
        name = (rng.choice(_SYL_A) + rng.choice(_SYL_B)).capitalize()
        name += str(rng.choice(_SUFFIX))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _populations(rng: np.random.Generator, pts: np.ndarray) -> np.ndarray:
    pop = np.empty(len(pts), dtype=np.int64)
    for i, town in enumerate(_TOWNS):
        pop[i] = town[2]
    towns = np.array([(x, y) for x, y, _, _ in _TOWNS])
    for i in range(len(_TOWNS), len(pts)):
        d_town = float(np.min(np.hypot(*(towns - pts[i]).T)))
        d_up = float(np.hypot(*(pts[i] - _UPLAND_CENTRE)))
        median = 260.0 * (1 + 3.0 * np.exp(-d_town / 7_000.0))
        if d_up < 22_000:
            median *= 0.45
        pop[i] = max(12, round(float(rng.lognormal(np.log(median), 0.75))))
    return pop


def _density_level(pop: np.ndarray, area_km2: np.ndarray) -> np.ndarray:
    """Fictional approximation of the INSEE 4-level grid from commune density (hab/km²)."""
    dens = pop / area_km2
    level = np.full(len(pop), 4, dtype=np.int64)
    level[dens >= 25] = 3
    level[(dens >= 150) & (pop >= 5_000)] = 2
    level[(dens >= 600) & (pop >= 15_000)] = 1
    return level


def _epci(pts: np.ndarray, dep: np.ndarray, rng_seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    labels = np.empty(len(pts), dtype=object)
    counter = 0
    for code, k in (("ZA", 5), ("ZB", 4)):
        idx = np.flatnonzero(dep == code)
        km = KMeans(n_clusters=k, n_init=10, random_state=rng_seed).fit(pts[idx])
        # number the clusters from west to east so that codes are stable and readable
        order = np.argsort(km.cluster_centers_[:, 0])
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        for j, i in enumerate(idx):
            labels[i] = counter + int(rank[km.labels_[j]])
        counter += k
    return labels


# --- Roads -------------------------------------------------------------------------------

class _OsmWriter:
    """Collects nodes and ways and writes deterministic OSM XML (lon/lat, 7 decimals)."""

    def __init__(self, to_wgs84: Transformer):
        self._to = to_wgs84
        self.nodes: list[tuple[int, float, float]] = []
        self.ways: list[tuple[int, list[int], dict[str, str]]] = []
        self._node_at: dict[tuple[int, int], int] = {}

    def node(self, x: float, y: float) -> int:
        key = (round(x), round(y))
        if key in self._node_at:
            return self._node_at[key]
        lon, lat = self._to.transform(x, y)
        nid = len(self.nodes) + 1
        self.nodes.append((nid, round(lat, 7), round(lon, 7)))
        self._node_at[key] = nid
        return nid

    def way(self, coords: Iterable[tuple[float, float]], tags: dict[str, str]) -> int:
        refs = [self.node(x, y) for x, y in coords]
        refs = [r for k, r in enumerate(refs) if k == 0 or r != refs[k - 1]]
        wid = len(self.ways) + 1
        self.ways.append((wid, refs, tags))
        return wid

    def xml(self) -> str:
        lats = [n[1] for n in self.nodes]
        lons = [n[2] for n in self.nodes]
        out = io.StringIO()
        out.write("<?xml version='1.0' encoding='UTF-8'?>\n")
        out.write("<!-- FICTIONAL road network of the demo territory 'Brumeval', generated by "
                  "coverage.demo: not a real place, not OpenStreetMap data. -->\n")
        out.write('<osm version="0.6" generator="zones-blanches demo (fictional)">\n')
        out.write(f' <bounds minlat="{min(lats):.7f}" minlon="{min(lons):.7f}" '
                  f'maxlat="{max(lats):.7f}" maxlon="{max(lons):.7f}"/>\n')
        for nid, lat, lon in self.nodes:
            out.write(f' <node id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>\n')
        for wid, refs, tags in self.ways:
            out.write(f' <way id="{wid}" version="1">\n')
            for r in refs:
                out.write(f'  <nd ref="{r}"/>\n')
            for k in sorted(tags):
                out.write(f"  <tag k={quoteattr(k)} v={quoteattr(tags[k])}/>\n")
            out.write(" </way>\n")
        out.write("</osm>\n")
        return out.getvalue()


def _wiggly(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, step: float = 400.0,
            amplitude: float = 0.06) -> list[tuple[float, float]]:
    """Points from a to b every ~step metres with a smooth sideways wiggle."""
    length = float(np.hypot(*(b - a)))
    n = max(2, int(length // step) + 1)
    t = np.linspace(0, 1, n)
    normal = np.array([-(b - a)[1], (b - a)[0]]) / max(length, 1.0)
    bend = amplitude * length * np.sin(np.pi * t) * rng.uniform(-1, 1)
    bend += 0.01 * length * np.sin(3 * np.pi * t) * rng.uniform(-1, 1)
    pts = a[None, :] + t[:, None] * (b - a)[None, :] + bend[:, None] * normal[None, :]
    return [(float(x), float(y)) for x, y in pts]


def _road_network(rng: np.random.Generator, pts: np.ndarray, pop: np.ndarray, lake: Polygon,
                  to_wgs84: Transformer) -> str:
    """Return the OSM XML of the demo's roads (the ways are written in a fixed order)."""
    w = _OsmWriter(to_wgs84)
    _rural_roads(w, rng, pts, pop, lake)
    _motorway(w, pts)
    for k, (tx, ty, _, _) in enumerate(_TOWNS):
        _town_streets(w, float(tx), float(ty), 3 if k < 2 else 2)
    _ferry(w, pts, lake)
    return w.xml()


_Link = tuple[int, int]


def _link_graph(pts: np.ndarray, lake: Polygon) -> tuple[list[_Link], set[_Link], set[_Link]]:
    """Return the candidate links between villages, their spanning tree and the primary links.

    Candidates are Delaunay edges shorter than 13 km that keep off the lake; primary links
    are the shortest paths between the three towns.
    """
    n = len(pts)
    tri = Delaunay(pts)
    edges: set[_Link] = set()
    for simplex in tri.simplices:
        for i in range(3):
            u, v = sorted((int(simplex[i]), int(simplex[(i + 1) % 3])))
            edges.add((u, v))
    lake_zone = lake.buffer(300)
    kept = sorted(
        (u, v) for u, v in edges
        if np.hypot(*(pts[u] - pts[v])) < 13_000
        and not LineString([pts[u], pts[v]]).intersects(lake_zone)
    )
    lengths = np.array([np.hypot(*(pts[u] - pts[v])) for u, v in kept])
    graph = coo_array((lengths, ([u for u, _ in kept], [v for _, v in kept])),
                      shape=(n, n)).tocsr()
    mst = minimum_spanning_tree(graph).tocoo()
    mst_edges = {(min(int(a), int(b)), max(int(a), int(b)))
                 for a, b in zip(mst.row, mst.col, strict=True)}
    primary: set[_Link] = set()
    _, pred = dijkstra(graph, directed=False, indices=list(range(len(_TOWNS))),
                       return_predecessors=True)
    for s in range(len(_TOWNS)):
        for t in range(len(_TOWNS)):
            node = t
            while node != s and pred[s, node] >= 0:
                prev = int(pred[s, node])
                primary.add((min(node, prev), max(node, prev)))
                node = prev
    return kept, mst_edges, primary


def _link_tags(rng: np.random.Generator, primary: bool, small: int) -> dict[str, str]:
    """Return the tags of a link by the smaller population it joins (draws once from rng)."""
    if primary:
        tags = {"highway": "primary"}
        if rng.uniform() < 0.5:
            tags["maxspeed"] = "80"
        tags["ref"] = "D 1"
        return tags
    highway, chance, speed = (("secondary", 0.4, "FR:rural") if small >= 700 else
                              ("tertiary", 0.25, "70") if small >= 250 else
                              ("unclassified", 0.2, "50"))
    tags = {"highway": highway}
    if rng.uniform() < chance:
        tags["maxspeed"] = speed
    return tags


def _rural_roads(w: _OsmWriter, rng: np.random.Generator, pts: np.ndarray, pop: np.ndarray,
                 lake: Polygon) -> None:
    """Write the roads between villages: a spanning tree, primary roads, some minor links."""
    kept, mst_edges, primary = _link_graph(pts, lake)
    for u, v in kept:
        small = int(min(pop[u], pop[v]))
        is_mst = (u, v) in mst_edges
        if not is_mst and (u, v) not in primary and small < 150 and rng.uniform() < 0.35:
            continue  # drop some minor links; the spanning tree keeps everything connected
        tags = _link_tags(rng, (u, v) in primary, small)
        w.way(_wiggly(pts[u], pts[v], rng), tags)


def _motorway(w: _OsmWriter, pts: np.ndarray) -> None:
    """Write a motorway between the two prefectures: two one-way carriageways and links."""
    a, b = pts[0], pts[1]
    d = (b - a) / np.hypot(*(b - a))
    off = np.array([-d[1], d[0]]) * 20.0
    start, end = a + d * 2_500, b - d * 2_500
    line = [(float(x), float(y)) for x, y in np.linspace(start, end, 40)]
    w.way([(x + off[0], y + off[1]) for x, y in line],
          {"highway": "motorway", "oneway": "yes", "maxspeed": "130", "ref": "A 99"})
    w.way([(x - off[0], y - off[1]) for x, y in reversed(line)],
          {"highway": "motorway", "oneway": "yes", "maxspeed": "FR:motorway", "ref": "A 99"})
    for town, end_pt, sign in ((a, start, 1), (b, end, -1)):
        on_ramp = (float(end_pt[0] + off[0]), float(end_pt[1] + off[1]))
        off_ramp = (float(end_pt[0] - off[0]), float(end_pt[1] - off[1]))
        town_pt = (float(town[0]), float(town[1]))
        if sign == 1:
            w.way([town_pt, on_ramp], {"highway": "motorway_link", "oneway": "yes"})
            w.way([off_ramp, town_pt], {"highway": "motorway_link", "oneway": "yes"})
        else:
            w.way([on_ramp, town_pt], {"highway": "motorway_link", "oneway": "yes"})
            w.way([town_pt, off_ramp], {"highway": "motorway_link", "oneway": "yes"})


def _town_streets(w: _OsmWriter, tx: float, ty: float, size: int) -> None:
    """Write a town's streets: a small grid, one-way streets, a contraflow, a roundabout."""
    xs = tx + np.arange(-size, size + 1) * 220.0
    ys = ty + np.arange(-size, size + 1) * 220.0
    for j, y in enumerate(ys):
        tags = {"highway": "residential"}
        if j % 2 == 1:
            tags["oneway"] = "yes"
        if j == 0:
            tags["maxspeed"] = "FR:zone30"
        w.way([(float(x), float(y)) for x in xs], tags)
    for i, x in enumerate(xs):
        tags = {"highway": "residential", "maxspeed": "FR:urban"}
        if i == 1:
            tags["oneway"] = "-1"
        if i == len(xs) - 1:
            tags = {"highway": "living_street"}
        w.way([(float(x), float(y)) for y in ys], tags)
    # roundabout east of the centre, joined to the grid and the main node
    cx, cy = xs[-1] + 400.0, ty
    ring = [(cx + 60 * np.cos(t), cy + 60 * np.sin(t))
            for t in np.linspace(0, 2 * np.pi, 9)[:-1]]
    ring_pts = [(float(x), float(y)) for x, y in ring]
    w.way([*ring_pts, ring_pts[0]],
          {"highway": "primary", "junction": "roundabout", "maxspeed": "50"})
    w.way([(float(xs[-1]), float(ty)), ring_pts[4]], {"highway": "tertiary"})
    w.way([ring_pts[0], (float(cx + 900), float(cy + 300))],
          {"highway": "tertiary", "maxspeed": "50;70"})
    w.way([(float(cx + 900), float(cy + 300)), (float(tx), float(ty) + 2_000)],
          {"highway": "unclassified"})
    # ways a car network must drop
    w.way([(float(xs[0]), float(ys[0])), (float(xs[0]) - 500, float(ys[0]) - 400)],
          {"highway": "footway"})
    w.way([(float(xs[0]), float(ys[-1])), (float(xs[0]) - 700, float(ys[-1]) + 300)],
          {"highway": "cycleway"})
    w.way([(float(xs[1]), float(ys[0])), (float(xs[1]), float(ys[0]) - 600)],
          {"highway": "service", "access": "private"})
    w.way([(float(xs[-1]), float(ys[-1])), (float(xs[-1]) + 300, float(ys[-1]) + 900)],
          {"highway": "track", "tracktype": "grade3"})


def _ferry(w: _OsmWriter, pts: np.ndarray, lake: Polygon) -> None:
    """Write a ferry across the lake and a road from each pier to the nearest village.

    The piers lie just off the lake's west and east shores; each road goes straight to the
    nearest village it can reach without crossing water.
    """
    lx, ly = _LAKE_CENTRE
    piers = []
    for side in (-1.0, 1.0):
        far = Point(lx + side * _LAKE_AXES[0] * 3, ly)
        shore = shapely.ops.nearest_points(lake.exterior.intersection(
            LineString([(lx, ly), (far.x, far.y)])), far)[0]
        piers.append((shore.x + side * 150.0, shore.y))
    w.way([piers[0], (lx, ly + 400.0), piers[1]],
          {"route": "ferry", "duration": "00:12", "name": "Bac du lac (fictif)"})
    for pier in piers:
        p = np.array(pier)
        dist = np.hypot(*(pts - p).T)
        for j in np.argsort(dist):
            village = (float(pts[j][0]), float(pts[j][1]))
            if not LineString([pier, village]).intersects(lake):
                steps = np.linspace(0.0, 1.0, max(2, int(dist[j] // 400) + 1))
                w.way([(pier[0] + t * (village[0] - pier[0]),
                        pier[1] + t * (village[1] - pier[1])) for t in steps],
                      {"highway": "unclassified"})
                break


# --- Assembly ----------------------------------------------------------------------------

def _fmt(v: float, nd: int = 6) -> str:
    return f"{v:.{nd}f}"


def generate_demo(seed: int = DEFAULT_SEED) -> dict[str, str]:
    """Generate the demo files' contents.

    Parameters
    ----------
    seed
        Seed of the random generator; the same seed gives the same bytes.

    Returns
    -------
    dict
        File name → text content.
    """
    rng = np.random.default_rng(seed)
    to_wgs84 = Transformer.from_crs(CRS_METRO, CRS_INPUT_OUTPUT, always_xy=True)
    outline = _ellipse(_CENTRE, _HALF_AXES, rng, noise=0.12)
    lake = _ellipse(_LAKE_CENTRE, _LAKE_AXES, rng, noise=0.05, n=36)
    pts = _settlements(rng, outline, lake)
    n = len(pts)
    cells = shapely.voronoi_polygons(MultiPoint(pts), extend_to=outline, ordered=True)
    polys = [shapely.make_valid(c.intersection(outline)) for c in cells.geoms]
    polys = [p if p.geom_type == "Polygon" else max(p.geoms, key=lambda g: g.area)
             for p in polys]
    area_km2 = np.array([p.area for p in polys]) / 1e6
    pop = _populations(rng, pts)
    dens = _density_level(pop, area_km2)
    # curved border between the two départements
    split_x = 214_000.0 + 6_000.0 * np.sin((pts[:, 1] - _CENTRE[1]) / 12_000.0)
    dep = np.where(pts[:, 0] < split_x, "ZA", "ZB")
    names = _names(rng, n)
    epci = _epci(pts, dep, seed)
    # codes: numbered west to east inside each département
    codes = np.empty(n, dtype=object)
    for d in ("ZA", "ZB"):
        idx = np.flatnonzero(dep == d)
        for rank, i in enumerate(idx[np.argsort(pts[idx, 0], kind="stable")], start=1):
            codes[i] = f"{d}{rank:03d}"
    dep_names = {"ZA": "Hautes-Brumes (fictif)", "ZB": "Val-d'Ombrelle (fictif)"}
    features = []
    order = sorted(range(n), key=lambda i: str(codes[i]))
    for i in order:
        poly = shapely.set_precision(
            shapely.transform(polys[i], lambda c: np.column_stack(
                to_wgs84.transform(c[:, 0], c[:, 1]))), 1e-6)
        lon, lat = to_wgs84.transform(pts[i][0], pts[i][1])
        e = int(epci[i])
        features.append({
            "type": "Feature",
            "properties": {
                "code_insee": codes[i], "nom": names[i], "code_dep": dep[i],
                "nom_dep": dep_names[str(dep[i])], "code_reg": "ZR",
                "nom_reg": "Région fictive de Brumeval",
                "code_epci": f"ZE{e + 1:07d}",
                "nom_epci": f"Communauté de communes fictive n° {e + 1}",
                "population": int(pop[i]), "densite": int(dens[i]),
                "rural": bool(dens[i] >= 3), "lon": round(lon, 6), "lat": round(lat, 6),
                "fictif": True,
            },
            "geometry": shapely.geometry.mapping(poly),
        })
    geojson = {
        "type": "FeatureCollection",
        "name": "communes_fictives",
        "description": FICTIONAL_LABEL,
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": features,
    }
    communes_text = json.dumps(geojson, ensure_ascii=False, separators=(",", ":"),
                               default=float)
    communes_text = communes_text.replace('{"type":"Feature"', '\n{"type":"Feature"') + "\n"

    roads_text = _road_network(rng, pts, pop, lake, to_wgs84)
    services_text, service_rows = _services(rng, seed, pts, pop, codes, names, dep, to_wgs84)
    waiting_text = _waiting(rng, service_rows)
    return {
        COMMUNES_FILE: communes_text,
        ROADS_FILE: roads_text,
        SERVICES_FILE: services_text,
        WAITING_FILE: waiting_text,
        "README.md": _readme(seed, n, int(pop.sum())),
    }


def _services(rng: np.random.Generator, seed: int, pts: np.ndarray, pop: np.ndarray,
              codes: np.ndarray, names: list[str], dep: np.ndarray,
              to_wgs84: Transformer) -> tuple[str, list[dict[str, str]]]:
    """Ten services: in the towns and some larger villages, both types."""
    candidates = list(np.argsort(-pop, kind="stable")[:40])
    chosen_mf = [0, 1, 2] + [int(i) for i in rng.choice(candidates[3:], 3, replace=False)]
    chosen_er = [0, 1] + [int(i) for i in rng.choice(candidates[3:], 2, replace=False)]
    rows: list[dict[str, str]] = []
    for type_service, chosen, label, org in (
        ("mediation_familiale", chosen_mf, "Service de médiation familiale",
         "Association fictive de médiation"),
        ("espace_rencontre", chosen_er, "Espace de rencontre",
         "Association fictive Liens d'enfance"),
    ):
        for k, i in enumerate(chosen):
            sid = f"{'MF' if type_service == 'mediation_familiale' else 'ER'}-{k + 1:02d}"
            with_coords = k != len(chosen) - 1
            x, y = pts[i] + rng.normal(0, 150, 2)
            lon, lat = to_wgs84.transform(x, y)
            rows.append({
                "service_id": sid,
                "type_service": type_service,
                "nom": f"{label} de {names[i]} (fictif)",
                "organisme": f"{org} {('des Hautes-Brumes' if dep[i] == 'ZA' else 'du Val')}",
                "adresse": f"{rng.integers(1, 40)} rue Imaginaire, {names[i]}",
                "code_insee": str(codes[i]),
                "lon": _fmt(lon) if with_coords else "",
                "lat": _fmt(lat) if with_coords else "",
                "capacite": f"{rng.choice([0.5, 0.8, 1.0, 1.5, 2.0]):.1f}",
                "source": f"Données fictives générées par coverage.demo (graine {seed})",
                "date_source": "2026-01-01",
            })
    out = io.StringIO()
    wr = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    return out.getvalue(), rows


def _waiting(rng: np.random.Generator, services: list[dict[str, str]]) -> str:
    """Per-service waiting lists at 31 December, 2023–2025, with activity-return extras."""
    fields = ["code_dep", "type_service", "annee", "service_id", "familles_en_attente",
              "delai_moyen_jours", "familles_recues", "mesures_judiciaires",
              "demandes_spontanees", "entretiens_information", "mediations"]
    out = io.StringIO()
    wr = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    wr.writeheader()
    for s in services:
        base = int(rng.integers(4, 30))
        for year in (2023, 2024, 2025):
            waiting = max(0, base + int(rng.integers(-4, 7)) * (year - 2022))
            is_er = s["type_service"] == "espace_rencontre"
            received = int(rng.integers(30, 120))
            judicial = int(received * rng.uniform(0.6, 0.9)) if is_er else 0
            wr.writerow({
                "code_dep": s["code_insee"][:2], "type_service": s["type_service"],
                "annee": year, "service_id": s["service_id"],
                "familles_en_attente": waiting,
                "delai_moyen_jours": int(rng.integers(10, 40) + 4 * waiting) if waiting else 0,
                "familles_recues": received,
                "mesures_judiciaires": judicial if is_er else "",
                "demandes_spontanees": received - judicial if is_er else "",
                "entretiens_information": "" if is_er else int(rng.integers(40, 160)),
                "mediations": "" if is_er else int(rng.integers(10, 60)),
            })
    return out.getvalue()


def _readme(seed: int, n: int, population: int) -> str:
    return f"""# Territoire fictif « Brumeval » — données de démonstration

**FICTIF. Ce territoire n'existe pas.** {FICTIONAL_LABEL}

Produit par `coverage.demo` (graine {seed}) ; pour le régénérer : `make demo` ou
`zones-blanches demo`. La même graine donne des fichiers identiques à l'octet près.

- Il est placé dans l'Atlantique, au large des côtes françaises (vers 45,6° N, 3,2° O), là
  où il n'y a aucune commune ; ses codes de département sont `ZA` (Hautes-Brumes) et `ZB`
  (Val-d'Ombrelle) : le préfixe `Z` n'est jamais un code INSEE réel.
- `{COMMUNES_FILE}` : {n} communes, {fr_int(population)} habitants (inventés), polygones en
  EPSG:4326, les colonnes du contrat (`code_insee, nom, code_dep, population, densite,
  rural`), le point du chef-lieu (`lon`, `lat`), un regroupement en EPCI fictifs et
  `fictif=true`. `densite` imite la grille communale de densité de l'INSEE (4 niveaux) à
  partir de la densité de la commune ; elle est inventée elle aussi.
- `{ROADS_FILE}` : un réseau routier OSM XML au balisage OSM réel (classes de routes, sens
  uniques, un giratoire, limitations de vitesse, un bac, des voies qu'un réseau automobile
  écarte). **Ce ne sont pas des données OpenStreetMap.**
- `{SERVICES_FILE}` : dix services inventés (six de médiation familiale, quatre espaces de
  rencontre) ; deux n'ont pas de coordonnées et sont placés au chef-lieu de leur commune.
- `{WAITING_FILE}` : des listes d'attente par service, inventées, au 31 décembre 2023 à
  2025.
"""


def write_demo(out: Path | None = None, *, seed: int | None = None) -> list[Path]:
    """Write the demo files (atomically) into ``out`` (default: the embedded ``data/demo``).

    Parameters
    ----------
    out
        Target folder.
    seed
        Random seed (default :data:`DEFAULT_SEED`).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    folder = DEMO_DIR if out is None else Path(out)
    contents = generate_demo(DEFAULT_SEED if seed is None else seed)
    written = []
    for name, text in contents.items():
        path = folder / name
        write_text_atomic(path, text)
        written.append(path)
    log.info("fictional demo territory written to %s", folder)
    return written
