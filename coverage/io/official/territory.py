"""A département's territory from the official files: its communes, clip area and roads.

:func:`prepare_communes` builds the communes of départements in the communes contract from
the Etalab/ADMIN EXPRESS contours and the INSEE density grid (carried onto newer codes by
the table de passage, :func:`harmonise_grid`), with the legal populations. The roads of
the OSM extracts are clipped (:func:`clip_osm`) to the département plus a buffer of the
largest threshold (:func:`buffer_m`, metres, :func:`clip_area` in EPSG:4326), so that
services across the border are reached; :func:`neighbour_departements` lists the
départements that buffer touches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from coverage.cog import national_communes, normalise_dept, passage_codes
from coverage.errors import InputError, Problem
from coverage.files import atomic_path
from coverage.io.communes import RURAL_FROM_LEVEL4
from coverage.io.official.readers import read_contours
from coverage.settings import CRS_INPUT_OUTPUT, Settings, metric_crs_for

__all__ = [
    "BUFFER_SPEED_KMH",
    "COMMUNES_COLUMNS",
    "buffer_m",
    "clip_area",
    "clip_osm",
    "embedded_passage",
    "harmonise_grid",
    "neighbour_departements",
    "prepare_communes",
]

log = logging.getLogger(__name__)

#: Speed that turns the largest threshold (minutes) into the clip buffer of the OSM extract,
#: km/h. 90 km/h over 45 minutes gives 67.5 km: a service reachable within the threshold on
#: French roads outside motorways lies inside it.
BUFFER_SPEED_KMH = 90.0

COMMUNES_LAYER = "communes"
COMMUNES_COLUMNS = ["code_insee", "nom", "code_dep", "code_reg", "population", "densite",
                    "rural", "lon", "lat", "code_epci", "nom_epci", "fictif", "geometry"]



def buffer_m(settings: Settings = Settings()) -> float:
    """Clip buffer around a département, metres: largest threshold × :data:`BUFFER_SPEED_KMH`."""
    return settings.max_threshold_min / 60.0 * BUFFER_SPEED_KMH * 1000.0



def embedded_passage() -> pd.DataFrame:
    """Return the embedded COG 2026 passage table as ``code_ancien`` → ``code_actuel`` pairs.

    Only the pairs whose codes differ (:func:`coverage.cog.passage_codes`).
    """
    table = passage_codes()[["code_ancien", "code_actuel"]]
    return table.loc[table["code_ancien"] != table["code_actuel"]]


def harmonise_grid(grid: pd.DataFrame, codes: Iterable[str],
                   passage: pd.DataFrame | None = None) -> pd.DataFrame:
    """Carry a density grid onto the commune codes of the contours.

    A code present in the grid keeps its level. A current code absent from the grid (a
    commune new since the grid's edition) takes the levels of its older codes from the
    table de passage: the level of the old commune that kept the code when there is one,
    else the densest of them (smallest level). The rows carried over are flagged
    ``densite_report``.
    """
    wanted = pd.Index(pd.unique(pd.Series(list(codes), dtype=str)))
    base = grid.set_index("code_insee")
    direct = base.reindex(wanted.intersection(base.index.tolist()))
    direct["densite_report"] = False
    missing = wanted.difference(base.index.tolist())
    rows = []
    if len(missing):
        table = passage if passage is not None else embedded_passage()
        olds = table.loc[table["code_actuel"].isin(missing)
                         & table["code_ancien"].isin(base.index)]
        for new, group in olds.groupby("code_actuel"):
            sub = base.loc[group["code_ancien"]]
            best = sub.sort_values("densite").iloc[0]
            rows.append({"code_insee": new, "densite": int(best["densite"]),
                         "densite7": best["densite7"], "densite_report": True})
    carried = pd.DataFrame(rows, columns=["code_insee", "densite", "densite7",
                                          "densite_report"]).set_index("code_insee")
    out = pd.concat([direct, carried])
    out.index.name = "code_insee"
    return out.reset_index()


# --- communes ----------------------------------------------------------------------------
def prepare_communes(contours: gpd.GeoDataFrame, depts: Sequence[str], grid: pd.DataFrame, *,
                     population: pd.DataFrame | None = None,
                     passage: pd.DataFrame | None = None,
                     source: str = "contours",
                     missing_density: Literal["raise", "drop"] = "raise") -> gpd.GeoDataFrame:
    """Build the communes of ``depts`` in the communes contract.

    Parameters
    ----------
    contours
        Output of :func:`read_contours` (EPSG:4326).
    depts
        Département codes kept.
    grid
        Output of :func:`read_density_grid`.
    population
        Output of :func:`read_population`; else the contours' population; else the embedded
        COG 2026 table (INSEE legal populations via @etalab/decoupage-administratif).
    passage
        Output of :func:`read_passage` to carry the grid onto newer codes (default: the
        embedded COG 2026 table).
    source
        Name of the contours file, for messages.
    missing_density
        Communes without a density level: ``raise`` an InputError naming them, or ``drop``
        them with a warning (used for the neighbouring départements).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, :data:`COMMUNES_COLUMNS`; ``lon``/``lat`` = representative point
        (guaranteed inside the polygon; not the town hall).

    Raises
    ------
    InputError
        A département with no commune, or communes with no density level.
    """
    depts = [normalise_dept(d) for d in depts]
    gdf = contours.loc[contours["code_dep"].isin(depts)].copy()
    problems = [Problem(source, None, "code_dep", f"des communes du département {d}", "aucune")
                for d in depts if not (gdf["code_dep"] == d).any()]
    if problems:
        raise InputError(problems)
    gdf = gdf.dissolve(by="code_insee", as_index=False, aggfunc="first")  # multi-part rows
    embedded = national_communes().set_index("code_insee")
    if population is not None:
        pop = population.set_index("code_insee")["population"]
        gdf["population"] = gdf["code_insee"].map(pop).astype("float")
    fill = gdf["population"].isna()
    if fill.any() and "population" in embedded:
        gdf.loc[fill, "population"] = pd.to_numeric(
            gdf.loc[fill, "code_insee"].map(embedded["population"]), errors="coerce")
    no_pop = gdf["population"].isna()
    if no_pop.any():
        log.warning("%d commune(s) sans population légale (mise à 0) : %s", int(no_pop.sum()),
                    ", ".join(gdf.loc[no_pop, "code_insee"].head(10)))
    gdf["population"] = gdf["population"].fillna(0).round().astype(int)
    for col in ("nom", "code_reg", "code_epci"):
        key = col
        if key in embedded:
            fill = gdf[col].isna()
            gdf.loc[fill, col] = gdf.loc[fill, "code_insee"].map(embedded[key])
    if "nom_epci" in embedded:
        by_epci = embedded.dropna(subset=["code_epci"]).drop_duplicates("code_epci") \
            .set_index("code_epci")["nom_epci"]
        gdf["nom_epci"] = gdf["code_epci"].map(by_epci)
    else:
        gdf["nom_epci"] = pd.NA
    dens = harmonise_grid(grid, gdf["code_insee"], passage).set_index("code_insee")
    gdf["densite"] = gdf["code_insee"].map(dens["densite"])
    lacking = gdf["densite"].isna()
    if lacking.any() and missing_density == "drop":
        log.warning("%d commune(s) sans niveau de densité écartée(s) : %s", int(lacking.sum()),
                    ", ".join(gdf.loc[lacking, "code_insee"].head(10)))
        gdf = gdf.loc[~lacking].copy()
        lacking = gdf["densite"].isna()
    if lacking.any():
        raise InputError([Problem(source, None, "densite", "un niveau dans la grille de densité "
                                  "INSEE (ou l'un de ses codes anciens dans la table de "
                                  "passage)", code)
                          for code in gdf.loc[lacking, "code_insee"]])
    carried = int(dens["densite_report"].reindex(gdf["code_insee"]).fillna(False).sum())
    if carried:
        log.info("%d communes took their density level from older codes", carried)
    gdf["densite"] = gdf["densite"].astype(int)
    gdf["rural"] = gdf["densite"] >= RURAL_FROM_LEVEL4
    points = gdf.geometry.representative_point()
    gdf["lon"] = points.x.round(6)
    gdf["lat"] = points.y.round(6)
    gdf["fictif"] = False
    for col in ("nom", "code_dep", "code_reg", "code_epci", "nom_epci"):
        gdf[col] = gdf[col].astype("string")
    gdf = gdf[COMMUNES_COLUMNS].sort_values("code_insee").reset_index(drop=True)
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=CRS_INPUT_OUTPUT)


# --- OSM ---------------------------------------------------------------------------------
def clip_area(communes: gpd.GeoDataFrame, dept: str, distance_m: float) -> BaseGeometry:
    """Union of the département's communes buffered by ``distance_m`` metres, EPSG:4326."""
    crs = metric_crs_for(normalise_dept(dept))
    metric = communes.to_crs(crs)
    area = shapely.union_all(metric.geometry.buffer(0).to_numpy())
    area = area.buffer(distance_m).simplify(min(500.0, distance_m / 10 + 1.0))
    return gpd.GeoSeries([area], crs=crs).to_crs(CRS_INPUT_OUTPUT).iloc[0]


def neighbour_departements(contours_path: str | Path, depts: Sequence[str], *,
                           settings: Settings = Settings()) -> list[str]:
    """Départements whose communes touch the clip area of ``depts`` (``depts`` included)."""
    contours = read_contours(contours_path)
    found: list[str] = []
    for dept in depts:
        code = normalise_dept(dept)
        own = contours.loc[contours["code_dep"] == code]
        if own.empty:
            continue
        area = clip_area(own, code, buffer_m(settings))
        hits = contours.loc[contours.intersects(area), "code_dep"].dropna().unique()
        found += [str(h) for h in sorted(hits)]
    return list(dict.fromkeys(found))



def clip_osm(inputs: Sequence[str | Path], area: BaseGeometry, out: str | Path) -> dict[str, int]:
    """Write the roads of ``inputs`` that enter ``area`` to ``out`` (PBF), with their nodes.

    A way is kept when it has a ``highway`` tag or ``route=ferry`` and at least one of its
    nodes lies inside ``area`` (EPSG:4326); kept ways are whole (complete ways), and every
    node they reference is written. Several inputs (neighbouring extracts) are merged,
    sorted and de-duplicated. Relations are not kept (the road graph does not use them).

    Returns
    -------
    dict
        ``ways`` written, ``nodes`` referenced by them (written when present in the
        inputs), ``ways_outside`` (road ways skipped).
    """
    import osmium

    shapely.prepare(area)
    tracker = osmium.IdTracker()
    seen: set[int] = set()
    kept = outside = 0
    for path in inputs:
        processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                     .with_locations()
                     .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                     .with_filter(osmium.filter.KeyFilter("highway", "route")))
        ids: list[int] = []
        counts: list[int] = []
        lons: list[float] = []
        lats: list[float] = []
        way: Any
        for way in processor:
            tags = way.tags
            if ("highway" not in tags and tags.get("route") != "ferry") or way.id in seen:
                continue
            seen.add(way.id)
            n = 0
            for node in way.nodes:
                loc = node.location
                if loc.valid():
                    lons.append(loc.lon)
                    lats.append(loc.lat)
                    n += 1
            ids.append(way.id)
            counts.append(n)
            if len(lons) > _CLIP_CHUNK_NODES:
                k = _ways_inside(area, ids, counts, lons, lats, tracker)
                kept, outside = kept + k, outside + len(ids) - k
                ids, counts, lons, lats = [], [], [], []
        k = _ways_inside(area, ids, counts, lons, lats, tracker)
        kept, outside = kept + k, outside + len(ids) - k
        # add the nodes of the kept ways (the id filter runs in libosmium)
        for way in osmium.FileProcessor(str(path), osmium.osm.WAY) \
                .with_filter(tracker.id_filter()):
            tracker.add_references(way)
    out = Path(out)
    with atomic_path(out) as tmp:
        # the id filter and the writer run in libosmium: no Python call per object
        writer = osmium.WriteHandler(str(tmp))
        try:
            if len(inputs) == 1:
                osmium.apply(str(inputs[0]), tracker.id_filter(), writer)
            else:
                reader = osmium.MergeInputReader()
                for path in inputs:
                    reader.add_file(str(path))
                reader.apply(tracker.id_filter(), writer, simplify=True)
        finally:
            writer.close()
    return {"ways": kept, "nodes": len(tracker.node_ids()), "ways_outside": outside}


#: Node locations tested at once by :func:`clip_osm` (bounds its memory).
_CLIP_CHUNK_NODES = 2_000_000


def _ways_inside(area: BaseGeometry, ids: Sequence[int], counts: Sequence[int],
                 lons: Sequence[float], lats: Sequence[float], tracker: Any) -> int:
    """Add to ``tracker`` the ways with a node inside ``area``; return how many."""
    if not ids:
        return 0
    x = np.asarray(lons, dtype=float)
    y = np.asarray(lats, dtype=float)
    minx, miny, maxx, maxy = area.bounds
    inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
    if inside.any():
        inside[inside] = shapely.contains_xy(area, x[inside], y[inside])
    n = np.asarray(counts)
    starts = np.concatenate(([0], np.cumsum(n)[:-1]))
    hit = np.zeros(len(n), dtype=bool)
    nonempty = n > 0
    hit[nonempty] = np.logical_or.reduceat(inside, starts[nonempty]) if inside.size else False
    for way_id in np.asarray(ids)[hit]:
        tracker.add_way(int(way_id))
    return int(hit.sum())

