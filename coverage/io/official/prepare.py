"""Official open-data files → the project's input contracts (``zones-blanches prepare``).

Layout of a data folder (``--data-dir``, default ``donnees``), the contract between
``fetch``, ``prepare`` and ``run --dept CODE --data-dir DIR`` (call
:func:`prepared_paths` rather than building these paths by hand)::

    <data-dir>/cache/<host>/<official path>   files downloaded by ``fetch`` (or put by hand)
    <data-dir>/cache/index.json               URL, size, SHA-256 and date of each file
    <data-dir>/<dept>/communes.gpkg           layer "communes", EPSG:4326, the columns of
                                              the communes contract: code_insee, nom,
                                              code_dep, code_reg, population, densite (INSEE
                                              4 levels), rural, lon, lat, code_epci,
                                              nom_epci, fictif (False), geometry. It holds
                                              the communes of the département AND of every
                                              neighbouring département that the buffer
                                              touches, so that services across the border
                                              are accepted; run it with --dept CODE (the
                                              tables cover the département only)
    <data-dir>/<dept>/routes.osm.pbf          OSM roads (highway=*, route=ferry) of the
                                              département plus a buffer of the largest
                                              threshold (:func:`buffer_m`)
    <data-dir>/<dept>/services.csv            NOT official and NOT written by prepare: the
                                              user's own list of services (CAF/MSA/court
                                              lists), in the services contract
    <data-dir>/<dept>/prepare.json            what was read (files, SHA-256) and counts

The official files are read by :mod:`coverage.io.official.readers`, found in the download
cache by :func:`coverage.io.official.cache.find_inputs`, and turned into a département's
communes and roads by :mod:`coverage.io.official.territory`; this module orchestrates them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from coverage.cog import normalise_dept
from coverage.errors import FetchError
from coverage.files import atomic_path, sha256_file, write_text_atomic
from coverage.io.official.cache import cache_dir, find_inputs, read_index
from coverage.io.official.readers import (
    read_contours,
    read_density_grid,
    read_passage,
    read_population,
)
from coverage.io.official.sources import DEPARTEMENTS, osm_file
from coverage.io.official.territory import (
    buffer_m,
    clip_area,
    clip_osm,
    embedded_passage,
    prepare_communes,
)
from coverage.settings import Settings

__all__ = [
    "COMMUNES_LAYER",
    "POPULATION_LAG_YEARS",
    "prepare",
    "prepared_paths",
]

log = logging.getLogger(__name__)

#: GeoPackage layer of the prepared communes.
COMMUNES_LAYER = "communes"
#: Legal populations of reference year N are in force from 1 January N+3, with COG N+3.
POPULATION_LAG_YEARS = 3


# --- layout ------------------------------------------------------------------------------
def prepared_paths(data_dir: str | Path, dept: str) -> dict[str, Path]:
    """Return the paths of the prepared inputs of one département (they may not exist yet).

    Parameters
    ----------
    data_dir
        Data folder given to ``fetch`` / ``prepare`` (``--data-dir``).
    dept
        Département code (``"15"``, ``"2A"``, ``"974"``).

    Returns
    -------
    dict of str to Path
        ``communes`` (GeoPackage, layer ``communes``), ``roads`` (``routes.osm.pbf``),
        ``services`` (the user's own ``services.csv``, never written by ``prepare``),
        ``manifest`` (``prepare.json``), ``folder``.
    """
    folder = Path(data_dir) / normalise_dept(dept)
    return {
        "folder": folder,
        "communes": folder / "communes.gpkg",
        "roads": folder / "routes.osm.pbf",
        "services": folder / "services.csv",
        "manifest": folder / "prepare.json",
    }


# --- the national sources, read once ---------------------------------------------------------
@dataclass(frozen=True)
class _Sources:
    """The national files read once for every département prepared."""

    contours_path: Path
    contours: gpd.GeoDataFrame
    grid_path: Path
    grid: pd.DataFrame
    population: pd.DataFrame | None
    population_path: Path | None
    population_note: str
    passage: pd.DataFrame | None
    passage_path: Path | None
    index: Mapping[str, Mapping[str, object]]


def _read_sources(found: Mapping[str, list[Path]], data_dir: str | Path,
                  depts: Sequence[str]) -> _Sources:
    """Read the contours, the density grid, the populations and the table de passage.

    Raises
    ------
    FetchError
        No contours or no density grid in the cache.
    """
    if not found["contours"]:
        msg = (f"pas de contours des communes dans {cache_dir(data_dir)} : lancez "
               f"« zones-blanches fetch --dept {' '.join(depts)} --data-dir {data_dir} » ou "
               "placez-y un fichier Etalab communes-*.geojson.gz ou une couche ADMIN EXPRESS "
               "COMMUNE")
        raise FetchError(msg)
    grids = list(dict.fromkeys(found["densite7"] + found["densite4"]))
    if not grids:
        msg = (f"pas de grille de densité INSEE dans {cache_dir(data_dir)} : lancez "
               "« zones-blanches fetch » ou placez-y le fichier de l'INSEE "
               "(grille_densite_*.xlsx/.zip/.csv ou fichier_diffusion_AAAA.xlsx)")
        raise FetchError(msg)
    index = {str(r.get("path")): r for r in read_index(data_dir).values()}
    contours_path = _newest(found["contours"])
    grid_path = _newest(grids)
    population, pop_path, population_note = _read_population_if_current(
        found["population"], contours_path, index)
    passage_path = _newest(found["passage"]) if found["passage"] else None
    passage = None
    if passage_path is not None:
        passage = pd.concat([read_passage(passage_path), embedded_passage()]).drop_duplicates()
    return _Sources(contours_path, read_contours(contours_path), grid_path,
                    read_density_grid(grid_path), population, pop_path, population_note,
                    passage, passage_path, index)


def _read_population_if_current(
        paths: Sequence[Path], contours_path: Path,
        index: Mapping[str, Mapping[str, object]],
) -> tuple[pd.DataFrame | None, Path | None, str]:
    """Read the newest populations légales unless older than those in force with the COG."""
    if not paths:
        return None, None, "embedded COG 2026 table (coverage.cog)"
    pop_path = _newest(paths)
    pop_year, cog_year = _year(pop_path, index), _year(contours_path, index)
    if pop_year and cog_year and pop_year < cog_year - POPULATION_LAG_YEARS:
        note = (f"{pop_path.name} (année de référence {pop_year}) est plus ancien que les "
                f"populations en vigueur avec le COG {cog_year} ; la table COG 2026 "
                "intégrée est utilisée à la place")
        log.warning(note)
        return None, None, note
    return read_population(pop_path), pop_path, str(pop_path)


# --- the command -------------------------------------------------------------------------
def prepare(depts: Sequence[str], data_dir: str | Path, *, settings: Settings = Settings(),
            osm: bool = True) -> dict[str, dict[str, Path]]:
    """Turn the fetched official files into each département's inputs (layout above).

    Parameters
    ----------
    depts
        Département codes.
    data_dir
        Data folder filled by ``fetch`` (or by hand in ``<data-dir>/cache``).
    settings
        Thresholds (the OSM clip buffer is :func:`buffer_m` of them, metres).
    osm
        Also clip the OSM extracts (skipped with a warning when none was fetched).

    Returns
    -------
    dict
        Département → :func:`prepared_paths` of the files written.

    Raises
    ------
    FetchError
        A required source (contours, density grid) is not in the cache, or an unknown
        département code.
    InputError
        A file is not in the expected official format.
    """
    found = find_inputs(data_dir)
    src = _read_sources(found, data_dir, depts)
    results: dict[str, dict[str, Path]] = {}
    for dept in depts:
        code = normalise_dept(dept)
        if code not in DEPARTEMENTS:
            msg = f"code de département inconnu « {dept} »"
            raise FetchError(msg)
        results[code] = _prepare_one(code, src, found["osm"], data_dir,
                                     settings=settings, osm=osm)
    return results


def _prepare_one(code: str, src: _Sources, extracts: Sequence[Path], data_dir: str | Path,
                 *, settings: Settings, osm: bool) -> dict[str, Path]:
    """Write the communes, the roads and the manifest of one département."""
    paths = prepared_paths(data_dir, code)
    communes = prepare_communes(src.contours, [code], src.grid, population=src.population,
                                passage=src.passage, source=str(src.contours_path))
    area = clip_area(communes, code, buffer_m(settings))
    contours = src.contours
    neighbours = sorted(str(d) for d in contours.loc[contours.intersects(area),
                                                     "code_dep"].dropna().unique()
                        if str(d) != code)
    context = prepare_communes(contours, neighbours, src.grid, population=src.population,
                               passage=src.passage, source=str(src.contours_path),
                               missing_density="drop") if neighbours else None
    everything = communes if context is None else gpd.GeoDataFrame(
        pd.concat([communes, context], ignore_index=True), crs=communes.crs)
    with atomic_path(paths["communes"]) as tmp:
        everything.to_file(tmp, layer=COMMUNES_LAYER, driver="GPKG")
    manifest = _manifest(code, communes, src, paths, neighbours,
                         0 if context is None else len(context))
    if osm:
        routes = _clip_roads(code, extracts, neighbours, area, paths["roads"], settings)
        if routes is not None:
            manifest["routes"] = routes
    write_text_atomic(paths["manifest"],
                      json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return paths


def _manifest(code: str, communes: gpd.GeoDataFrame, src: _Sources, paths: Mapping[str, Path],
              neighbours: Sequence[str], n_context: int) -> dict[str, Any]:
    """Return what was read (files, SHA-256, URL) and the counts of one département."""
    used = {"contours": src.contours_path, "densite": src.grid_path}
    if src.population_path is not None:
        used["population"] = src.population_path
    if src.passage_path is not None:
        used["passage"] = src.passage_path
    return {
        "departement": code,
        "communes": {"path": str(paths["communes"]), "rows": len(communes),
                     "population": int(communes["population"].sum()),
                     "rural": int(communes["rural"].sum()),
                     "densite_niveaux_source": src.grid.attrs.get("niveaux"),
                     "densite_colonne": src.grid.attrs.get("source"),
                     "population_source": src.population_note,
                     "departements_voisins": list(neighbours),
                     "communes_voisines": n_context},
        "sources": {k: {"path": str(p), "sha256": src.index.get(str(p), {}).get("sha256")
                        or sha256_file(p),
                        "url": src.index.get(str(p), {}).get("url")} for k, p in used.items()},
    }


def _clip_roads(code: str, extracts: Sequence[Path], neighbours: Sequence[str],
                area: BaseGeometry, out: Path, settings: Settings) -> dict[str, Any] | None:
    """Clip the OSM extracts to the département plus its buffer; None when none was fetched."""
    if not extracts:
        log.warning("pas d'extrait OSM dans le cache : %s n'a pas de réseau routier ; "
                    "lancez « zones-blanches fetch » sans --no-osm", code)
        return None
    chosen = _osm_for(extracts, [d for d in [code, *neighbours] if d in DEPARTEMENTS])
    own = {Path(u).name for u in (osm_file(code).url, *osm_file(code).fallbacks)}
    if not any(p.name in own for p in chosen):
        log.warning("l'extrait OSM du département %s lui-même n'est pas dans le "
                    "cache ; ses routes viennent de : %s", code,
                    ", ".join(p.name for p in chosen))
    stats = clip_osm(chosen, area, out)
    log.info("%s: %d road ways, %d nodes", out, stats["ways"], stats["nodes"])
    return {"path": str(out), **stats, "buffer_m": buffer_m(settings),
            "extracts": [str(p) for p in chosen]}


def _osm_for(found: Sequence[Path], depts: Sequence[str]) -> list[Path]:
    """Return the extracts among ``found`` that cover ``depts``, else every file found.

    Département files of download.openstreetmap.fr or Geofabrik régions are recognised by
    name; extracts put by hand under other names are all used.
    """
    names = {Path(u).name for d in depts
             for u in (osm_file(d).url, *osm_file(d).fallbacks)}
    chosen = [p for p in found if p.name in names]
    return chosen or list(found)


def _year(path: Path, index: Mapping[str, Mapping[str, object]]) -> int | None:
    """Return the edition year of a fetched file: from the cache index, else from its path."""
    year = index.get(str(path), {}).get("year")
    if isinstance(year, int):
        return year
    return _path_year(path) or None


def _path_year(path: Path) -> int:
    """Return the highest 20xx year in the path below ``cache/`` (0 when none)."""
    text = str(path).replace("\\", "/").split("/cache/", 1)[-1]
    years = [int(y) for y in re.findall(r"(?<!\d)(20\d\d)(?!\d)", text)]
    return max(years) if years else 0


def _newest(paths: Sequence[Path]) -> Path:
    """Return the path with the highest year in its name (else the last by name)."""
    return sorted(paths, key=lambda p: (_path_year(p), p.name))[-1]
