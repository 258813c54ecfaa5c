"""Load and validate a communes file (contract :data:`coverage.schemas.COMMUNES`).

Accepted formats: GeoJSON, GeoPackage (layer ``communes`` when present, else its only
layer, else the layer named by ``layer=`` / ``--layer``), GeoParquet; the
communes need polygons. Documented column aliases (case- and accent-insensitive) are in
:data:`COMMUNE_ALIASES`. The INSEE density grid can come from the file itself (``densite``
/ ``dens4`` …) or from a separate CSV/XLSX joined by commune code (``densite=``).

Density levels
    4-level grid (1 dense, 2 intermédiaire, 3 peu dense, 4 très peu dense): ``rural`` when
    absent is levels 3–4 (INSEE's 2020 definition of rural communes).
    7-level grid (1 grands centres urbains, 2 centres urbains intermédiaires, 3 ceintures
    urbaines, 4 petites villes, 5 bourgs ruraux, 6 rural à habitat dispersé, 7 rural à
    habitat très dispersé), declared by a column named with a 7 (``dens7``/``densite7``)
    or by ``density_levels=7`` (``--densite-niveaux 7``): ``densite7`` keeps it, and
    ``densite`` is INSEE's 4-level grouping (1→1, 2–4→2, 5→3, 6–7→4), so that ``rural``
    (levels 5–7) is still ``densite`` ≥ 3 and the proxy engine's speeds by 4-level class
    apply. The grid is never guessed from the values: a 5 in a 4-level column is an error
    naming its row, not a switch of the whole file to 7 levels.

Where the communes are
    Every commune's point must fall in metropolitan France or an overseas territory of the
    COG (:data:`FRANCE_BBOXES`, with a margin of ``TERRITORY_MARGIN_DEG``): a file whose
    longitudes and latitudes are swapped (a GeoJSON without CRS written as lat/lon) lands
    off Somalia and is refused with a hint. A given ``lon``/``lat`` must fall inside the
    commune's polygon, within :data:`POINT_TOLERANCE_M` (1 km; beyond: an error naming the
    row, closer: a warning).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage._validate import ProblemList, duplicate_rows, require_columns
from coverage.cog import (
    dep_of_code,
    harmonise_codes,
    national_communes,
    normalise_codes,
    normalise_dep_codes,
)
from coverage.demo import demo_paths
from coverage.errors import (
    CoverageError,
    DuplicateIdError,
    InputError,
    MissingColumnError,
    OutOfTerritoryError,
    Problem,
)
from coverage.geo import transformer
from coverage.io.services import DROM_BBOXES, TERRITORY_MARGIN_DEG
from coverage.io.tables import (
    Loaded,
    gpkg_layers,
    is_blank,
    normalise_name,
    read_table,
    rename_aliases,
    to_bool,
    to_number,
)
from coverage.labels import fr_decimal, fr_int
from coverage.settings import (
    CRS_INPUT_OUTPUT,
    METRO_BBOX,
    Settings,
    is_fictional_code,
    metric_crs_for,
)

__all__ = [
    "COMMUNE_ALIASES",
    "COMMUNE_COLUMNS",
    "DENS7_TO_DENS4",
    "DENSITY_ALIASES",
    "DENSITY_LEVELS",
    "FRANCE_BBOXES",
    "MAX_POPULATION",
    "POINT_TOLERANCE_M",
    "RURAL_FROM_LEVEL4",
    "in_france",
    "interior_points",
    "load_communes",
]


log = logging.getLogger(__name__)

#: Contract column → accepted aliases (compared case- and accent-insensitively).
COMMUNE_ALIASES: Mapping[str, Sequence[str]] = {
    "code_insee": ("INSEE_COM", "code", "codgeo", "code_commune", "com", "insee",
                   "code_com", "depcom"),
    "nom": ("NOM", "nom_com", "nom_commune", "libgeo", "libelle", "name"),
    "code_dep": ("INSEE_DEP", "dep", "departement", "code_departement", "code_dept"),
    "nom_dep": ("nom_departement", "libelle_dep"),
    "code_reg": ("INSEE_REG", "reg", "region", "code_region"),
    "nom_reg": ("nom_region", "libelle_reg"),
    "population": ("POPULATION", "pop", "pmun", "population_municipale", "ptot"),
    "densite": ("dens4", "dens7", "dens", "densite4", "densite7", "grille_densite",
                "typo_degre_densite", "degre_densite"),
    "rural": ("rural_insee2020", "rural_insee", "est_rural", "commune_rurale"),
    "lon": ("longitude", "x_chef_lieu", "lon_chef_lieu"),
    "lat": ("latitude", "y_chef_lieu", "lat_chef_lieu"),
    "code_epci": ("epci", "siren_epci", "code_siren_epci"),
    "nom_epci": ("libepci", "libelle_epci"),
    "fictif": ("fictional", "fictive"),
}

#: Density-grid file column → aliases (``densite=`` argument).
DENSITY_ALIASES: Mapping[str, Sequence[str]] = {
    "code_insee": COMMUNE_ALIASES["code_insee"],
    "densite": COMMUNE_ALIASES["densite"],
    "rural": COMMUNE_ALIASES["rural"],
}

#: Output columns of :func:`load_communes`, in order.
COMMUNE_COLUMNS = ["code_insee", "nom", "code_dep", "nom_dep", "code_reg", "nom_reg",
                   "population", "densite", "densite7", "rural", "lon", "lat", "code_epci",
                   "nom_epci", "fictif", "geometry"]

#: INSEE's grouping of the 7-level density grid into the 4-level one (documented nesting:
#: dense = grands centres urbains (1); intermédiaire = centres urbains intermédiaires,
#: ceintures urbaines, petites villes (2, 3, 4); peu dense = bourgs ruraux (5); très peu
#: dense = rural à habitat dispersé and très dispersé (6, 7)).
DENS7_TO_DENS4: Mapping[int, int] = MappingProxyType({1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 4,
                                                     7: 4})
#: Smallest 4-level density class counted as rural (INSEE 2020: peu dense, très peu dense).
RURAL_FROM_LEVEL4 = 3
#: Largest population of one commune accepted, inhabitants (Paris has about 2.1 million).
MAX_POPULATION = 10_000_000
#: The INSEE density grids a file may declare (``density_levels``): 4 or 7 levels.
DENSITY_LEVELS = (4, 7)

#: Lon/lat boxes (degrees, EPSG:4326) of the territories whose communes are accepted:
#: metropolitan France with Corsica, the five DROM, Saint-Pierre-et-Miquelon (975),
#: Saint-Barthélemy (977) and Saint-Martin (978).
FRANCE_BBOXES: Mapping[str, tuple[float, float, float, float]] = MappingProxyType({
    "metropole": METRO_BBOX, **DROM_BBOXES,
    "975": (-56.5, 46.7, -56.1, 47.2),
    "977": (-62.95, 17.85, -62.78, 17.98),
    "978": (-63.17, 18.0, -62.96, 18.13),
})
#: Largest distance between a given commune point (``lon``/``lat``) and its polygon, metres:
#: beyond it the row is an error; closer but outside, a warning.
POINT_TOLERANCE_M = 1000.0


def in_france(lon: np.ndarray, lat: np.ndarray, *,
              margin_deg: float = TERRITORY_MARGIN_DEG) -> np.ndarray:
    """Return, per point, whether it falls in one of :data:`FRANCE_BBOXES` (with a margin).

    Parameters
    ----------
    lon, lat
        Degrees, EPSG:4326 (NaN: False).
    margin_deg
        Margin added around every box, degrees.

    Returns
    -------
    numpy.ndarray
        Booleans, one per point.
    """
    boxes = np.array(list(FRANCE_BBOXES.values()), dtype=float)
    x = np.asarray(lon, dtype=float)[:, None]
    y = np.asarray(lat, dtype=float)[:, None]
    m = margin_deg
    hit = ((x >= boxes[:, 0] - m) & (y >= boxes[:, 1] - m) & (x <= boxes[:, 2] + m)
           & (y <= boxes[:, 3] + m))
    return np.asarray(hit.any(axis=1), dtype=bool)


def load_communes(path: str | Path | None = None, *, densite: str | Path | None = None,
                  settings: Settings = Settings(), layer: str | None = None,
                  density_levels: int | None = None,
                  density_layer: str | None = None) -> Loaded:
    """Read, validate and complete a communes file.

    Parameters
    ----------
    path
        GeoJSON, GeoPackage or (Geo)Parquet of commune polygons (any declared CRS). None →
        the fictional demo territory (``coverage.demo.demo_paths().communes``).
    densite
        Optional INSEE density grid (CSV/XLSX/Parquet with a commune code and ``dens4``,
        ``dens`` or a 7-level column, optionally ``rural_insee2020``), joined by code; it
        replaces a density column of the communes file.
    settings
        ``max_input_bytes`` is used.
    layer
        GeoPackage layer (default: ``communes`` when present, else the only layer; a
        GeoPackage of several layers without a ``communes`` one needs it).
    density_levels
        The density grid's number of levels, 4 or 7 (of the communes file's density column
        and of ``densite``); None: 7 when the column's name has a 7 (``dens7``), else 4.
        Cells that do not fit the grid are errors naming their rows.
    density_layer
        GeoPackage layer of ``densite`` (needed when it has several layers).

    Returns
    -------
    Loaded
        ``data``: GeoDataFrame in EPSG:4326 with :data:`COMMUNE_COLUMNS`: codes as str,
        ``population`` int64 (inhabitants), ``densite`` int (grid level as given),
        ``densite4`` int (4-level equivalent), ``rural`` bool, ``lon``/``lat`` (degrees,
        the given representative point or one computed inside the polygon in the
        département's metric CRS), ``fictif`` bool, polygonal ``geometry``. ``warnings``
        lists repairs, remapped codes and completed columns; ``remapped`` the mapped codes.

    Raises
    ------
    InputError
        One problem per bad row/column (file, row, column, what was expected), e.g.
        :class:`~coverage.errors.MissingColumnError`,
        :class:`~coverage.errors.UnknownCodeError`,
        :class:`~coverage.errors.DuplicateIdError`,
        :class:`~coverage.errors.MissingCRSError`,
        :class:`~coverage.errors.OutOfTerritoryError` (a commune outside France, e.g.
        longitudes and latitudes swapped; a given point far from its polygon).
    CoverageError
        ``density_levels`` is neither 4 nor 7.
    """
    if density_levels is not None and density_levels not in DENSITY_LEVELS:
        msg = (f"density_levels={density_levels!r} : une grille de densité INSEE a 4 ou 7 "
               "niveaux")
        raise CoverageError(msg)
    if path is None:
        path = demo_paths().communes
    p = Path(path)
    file = str(p)
    gdf, notes = _read_communes_file(p, settings, layer)
    dens_name = str(gdf.attrs.get("aliases", {}).get("densite", "densite"))
    warnings = [f"{file} : {n}" for n in notes if "« densite »" in n or "« rural »" in n]
    require_columns(gdf, ["code_insee"], file=file)

    codes0 = normalise_codes(gdf["code_insee"])
    fictional = bool(codes0.notna().all()) and all(
        is_fictional_code(c) for c in pd.unique(codes0.to_numpy(dtype=object)))
    problems = ProblemList(file)
    harm = harmonise_codes(gdf["code_insee"], file=file, fictional=fictional,
                           problems=problems)
    warnings += harm.warnings
    gdf["code_insee"] = harm.codes
    duplicate_rows(codes0, file=file, column="code_insee", problems=problems)

    national = None if fictional else national_communes().set_index("code_insee")
    require_columns(gdf, ["nom", "population"] if fictional else [], file=file)
    if national is not None:
        for col in ("nom", "population"):
            if col not in gdf.columns:
                gdf[col] = gdf["code_insee"].map(national[col])
                warnings.append(f"{file} : colonne « {col} » absente, prise dans la table du "
                                "COG 2026 (Etalab – découpage administratif)")

    _text_columns(gdf, national, harm.remapped, file, problems)
    _population(gdf, file, problems)
    warnings += _check_geometry(gdf, file, problems)
    warnings += _density_and_rural(gdf, (densite, density_levels, density_layer), dens_name,
                                   settings, file, problems)
    _fictif(gdf, fictional, problems)
    point_column = "lon" if "lon" in gdf.columns else "geometry"
    warnings += _representative_points(gdf, file, problems)
    _check_in_france(gdf, (file, point_column), problems)

    problems.raise_if_any()

    gdf = _merge_remapped_duplicates(gdf, harm.remapped, file, warnings)
    out = gpd.GeoDataFrame(gdf[COMMUNE_COLUMNS], geometry="geometry", crs=CRS_INPUT_OUTPUT)
    for col in ("code_insee", "nom", "code_dep", "nom_dep", "code_reg", "nom_reg",
                "code_epci", "nom_epci"):
        out[col] = out[col].astype("str")
    out = out.reset_index(drop=True)
    log.info("%s: %d communes loaded%s", file, len(out), " (FICTIONAL)" if fictional else "")
    return Loaded(out, warnings, harm.remapped, file)


def _read_communes_file(p: Path, settings: Settings,
                        layer: str | None) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Read the polygons (layer ``communes`` of a GeoPackage when present), aliases renamed."""
    file = str(p)
    if layer is None and p.suffix.lower() == ".gpkg" and p.is_file():
        layers = gpkg_layers(p)
        layer = "communes" if "communes" in layers else None
    raw = read_table(p, max_bytes=settings.max_input_bytes, layer=layer)
    if not isinstance(raw, gpd.GeoDataFrame):
        raise MissingColumnError(Problem(
            file, None, "geometry",
            "des polygones de communes (un fichier GeoJSON, GeoPackage ou GeoParquet avec "
            "un SCR)", "une table sans géométrie"))
    return rename_aliases(raw.reset_index(drop=True), COMMUNE_ALIASES, file=file)


def _text_columns(gdf: gpd.GeoDataFrame, national: pd.DataFrame | None,
                  remapped: pd.DataFrame, file: str, problems: ProblemList) -> None:
    """Check and complete ``nom``, ``code_dep`` and the region/EPCI names and codes."""
    problems.add_rows(is_blank(gdf["nom"]), "nom", "un nom de commune", gdf["nom"])
    gdf["nom"] = gdf["nom"].astype("str").str.strip()
    derived_dep = dep_of_code(gdf["code_insee"])
    if national is not None:
        derived_dep = gdf["code_insee"].map(national["code_dep"])
    if "code_dep" in gdf.columns:
        given = normalise_dep_codes(gdf["code_dep"])
        remapped_rows = np.zeros(len(gdf), dtype=bool)
        remapped_rows[remapped["row"].to_numpy() - 1] = True
        wrong = (given.notna() & derived_dep.notna()).to_numpy() & \
            (given.fillna("") != derived_dep.fillna("")).to_numpy() & ~remapped_rows
        if wrong.any():
            found = given.astype(object).copy()
            found[wrong] = [f"{g} (code_insee {c} est dans le {d})" for g, c, d in
                            zip(given[wrong], gdf["code_insee"][wrong], derived_dep[wrong],
                                strict=True)]
            problems.add_rows(wrong, "code_dep", "le département du code de la commune",
                              found)
        gdf["code_dep"] = given.where(given.notna() & ~remapped_rows, derived_dep)
    else:
        gdf["code_dep"] = derived_dep

    for col in ("nom_dep", "code_reg", "nom_reg", "code_epci", "nom_epci"):
        if col in gdf.columns:
            gdf[col] = gdf[col].astype("str").str.strip().where(~is_blank(gdf[col]))
            if col == "code_reg":
                gdf[col] = normalise_dep_codes(gdf[col])
        elif national is not None:
            gdf[col] = gdf["code_insee"].map(national[col])
        else:
            gdf[col] = pd.Series(pd.NA, index=gdf.index, dtype="str")


def _population(gdf: gpd.GeoDataFrame, file: str, problems: ProblemList) -> None:
    """Check ``population``: a whole number of inhabitants ≥ 0 (int64)."""
    if "population" not in gdf.columns:
        raise MissingColumnError(Problem(file, None, "population",
                                         "une colonne « population » (habitants)"))
    pop = to_number(gdf["population"])
    # the range is checked before the integer cast: 1e20 must not wrap to a negative int64
    bad_pop = pop.isna() | (pop < 0) | (pop > MAX_POPULATION) | (np.floor(pop) != pop)
    problems.add_rows(bad_pop, "population",
                      f"un nombre entier d'habitants de 0 à {fr_int(MAX_POPULATION)}",
                      gdf["population"])
    gdf["population"] = pop.where(~bad_pop, 0).astype("int64")


def _density_and_rural(gdf: gpd.GeoDataFrame,
                       grid: tuple[str | Path | None, int | None, str | None], dens_name: str,
                       settings: Settings, file: str, problems: ProblemList) -> list[str]:
    """Set ``densite`` (4 levels), ``densite7`` and ``rural``; return the warnings.

    ``grid`` is the density grid file (or None), the declared number of levels (or None:
    from the column's name) and the grid's GeoPackage layer (or None).
    """
    warnings: list[str] = []
    densite, declared, layer = grid
    if densite is not None:
        dens_name, grid_warnings = _join_density_grid(gdf, (Path(densite), layer), declared,
                                                      settings, (file, problems))
        warnings += grid_warnings
        declared = None  # the grid's levels were checked in its own file
    if "densite" not in gdf.columns:
        raise MissingColumnError(Problem(
            file, None, "densite",
            "une colonne « densite » (niveau de la grille de densité INSEE, alias dens4) ou "
            "une grille de densité donnée par --densite / densite="))
    levels, dens = _parse_density(gdf["densite"], dens_name, problems, declared)
    if levels == 7:
        gdf["densite7"] = dens.astype("Int64")
        dens = dens.map(DENS7_TO_DENS4).astype("int64")
        warnings.append(f"{file} : grille de densité à 7 niveaux regroupée en 4 niveaux INSEE "
                        "(colonne « densite ») ; les 7 niveaux sont gardés dans « densite7 »")
    else:
        gdf["densite7"] = pd.array([pd.NA] * len(gdf), dtype="Int64")
    gdf["densite"] = dens
    if "rural" in gdf.columns:
        rural, bad = to_bool(gdf["rural"])
        problems.add_rows(bad, "rural", "un booléen (True/False, oui/non, 1/0)", gdf["rural"])
        missing = rural.isna() & ~bad
        rural = rural.fillna(pd.Series(dens >= RURAL_FROM_LEVEL4, index=gdf.index))
        if missing.any():
            warnings.append(f"{file} : {int(missing.sum())} cellule(s) « rural » vide(s) "
                            "déduite(s) du niveau de densité (rural = peu dense ou très peu dense)")
        gdf["rural"] = rural.astype(bool)
    else:
        gdf["rural"] = (dens >= RURAL_FROM_LEVEL4).astype(bool)
        warnings.append(f"{file} : colonne « rural » déduite de la grille de densité (rural = "
                        "peu dense ou très peu dense, INSEE 2020)")
    return warnings


def _join_density_grid(gdf: gpd.GeoDataFrame, source: tuple[Path, str | None],
                       declared: int | None, settings: Settings,
                       where: tuple[str, ProblemList]) -> tuple[str, list[str]]:
    """Replace ``densite`` (and ``rural``) by the grid's; return the level name and warnings.

    ``source`` is the grid file and its GeoPackage layer; ``where`` the communes file and
    its problem list.
    """
    file, problems = where
    densite = source[0]
    dens_col, rural_col, warnings, grid_levels = _density_from_grid(
        source, gdf["code_insee"], settings, declared)
    if "densite" in gdf.columns:
        warnings.append(f"{file} : colonne « densite » remplacée par la grille {densite}")
    if rural_col is not None:
        gdf["rural"] = rural_col
    missing = dens_col.isna() & gdf["code_insee"].notna()
    if missing.any():
        dens_col, note = _density_from_neighbours(gdf, dens_col, densite)
        warnings.append(f"{file} : {note}")
        problems.add_rows(dens_col.isna() & gdf["code_insee"].notna(), "densite",
                          f"un niveau de densité pour cette commune dans {densite} (absent, et "
                          "aucune commune voisine n'en a)", gdf["code_insee"])
    gdf["densite"] = dens_col
    return f"dens{grid_levels}", warnings


def _fictif(gdf: gpd.GeoDataFrame, fictional: bool, problems: ProblemList) -> None:
    """Set ``fictif``; a given column must agree with the codes (True only for Z… codes)."""
    if "fictif" in gdf.columns:
        fict, bad = to_bool(gdf["fictif"])
        problems.add_rows(bad, "fictif", "un booléen", gdf["fictif"])
        contradicts = fict.fillna(fictional) != fictional
        problems.add_rows(contradicts, "fictif",
                          "True exactement pour les codes Z… de la démonstration fictive",
                          gdf["fictif"])
    gdf["fictif"] = fictional


def _parse_density(s: pd.Series, source_name: str, problems: ProblemList,
                   declared: int | None = None) -> tuple[int, pd.Series]:
    """Density levels as int, on the declared grid (else 7 when the column's name has a 7).

    The values never choose the grid: a cell that does not fit it is a problem of its row.
    """
    num = to_number(s)
    if declared is not None:
        levels, why = declared, f"density_levels={declared}"
    elif "7" in normalise_name(source_name):
        levels, why = 7, f"colonne « {source_name} »"
    else:
        levels, why = 4, (f"colonne « {source_name} » ; une grille à 7 niveaux se déclare par "
                          "une colonne nommée dens7/densite7 ou par --densite-niveaux 7")
    bad = num.isna() | (np.floor(num) != num) | (num < 1) | (num > levels)
    problems.add_rows(bad, "densite",
                      f"un niveau de densité INSEE, un nombre entier de 1 à {levels} (grille à "
                      f"{levels} niveaux : {why})", s)
    return levels, num.where(~bad, 1).fillna(1).astype("int64")


def _density_from_grid(source: tuple[Path, str | None], codes: pd.Series, settings: Settings,
                       declared: int | None) -> tuple[pd.Series, pd.Series | None, list[str],
                                                      int]:
    """Density level (and rural flag) of each commune code from an INSEE grid file.

    Returns the levels as given, the rural flags (or None), warnings and the grid's number
    of levels (4 or 7). ``source`` is the grid file and its GeoPackage layer (or None).
    """
    path, layer = source
    file = str(path)
    grid = read_table(path, max_bytes=settings.max_input_bytes,
                      layer=layer).reset_index(drop=True)
    grid, _ = rename_aliases(grid, DENSITY_ALIASES, file=file)
    grid_dens_name = str(grid.attrs.get("aliases", {}).get("densite", "densite"))
    require_columns(grid, ["code_insee", "densite"], file=file, hint={
        "densite": "une colonne de densité (dens4, dens, densite ou dens7 à 7 niveaux)"})
    warnings: list[str] = []
    harm = harmonise_codes(grid["code_insee"], file=file,
                           fictional=bool(codes.map(is_fictional_code).all()))
    warnings += harm.warnings
    grid["code_insee"] = harm.codes
    grid_problems = ProblemList(file)
    levels, dens = _parse_density(grid["densite"], grid_dens_name, grid_problems, declared)
    grid_problems.raise_if_any()
    grid["densite"] = dens
    cols = ["densite"]
    if "rural" in grid.columns:
        rural, bad = to_bool(grid["rural"])
        grid_problems.add_rows(bad, "rural", "un booléen", grid["rural"])
        grid_problems.raise_if_any()
        grid["rural"] = rural
        cols.append("rural")
    if grid["code_insee"].duplicated().any():
        n = int(grid["code_insee"].duplicated().sum())
        warnings.append(f"{file} : {n} ligne(s) partagent un code en vigueur une fois les "
                        "codes anciens remplacés ; le niveau le plus dense est gardé")
        grid = grid.sort_values("densite")
    table = grid.drop_duplicates("code_insee").set_index("code_insee")
    dens_col = codes.map(table["densite"])
    rural_col = codes.map(table["rural"]).astype("boolean") if "rural" in cols else None
    return dens_col, rural_col, warnings, levels


def _density_from_neighbours(gdf: gpd.GeoDataFrame, dens: pd.Series,
                             grid: Path) -> tuple[pd.Series, str]:
    """Fill density levels missing from the grid with the most common level of neighbours.

    A commune absent from the grid (e.g. created after the grid's vintage) takes the level
    most frequent among the communes whose polygons touch it (ties: the less dense level).
    Communes with no neighbour keep NA (the caller reports them).
    """
    dens = dens.copy()
    missing = np.flatnonzero(dens.isna().to_numpy())
    geoms = gdf.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms[missing]) | shapely.is_empty(geoms[missing]))
    q = missing[ok]
    src, nbr = gdf.sindex.query(geoms[q], predicate="intersects")
    pairs = pd.DataFrame({"row": q[src], "level": dens.to_numpy()[nbr]}).dropna()
    filled: list[str] = []
    if len(pairs):
        counts = pairs.groupby(["row", "level"]).size().reset_index(name="n")
        best = (counts.sort_values(["row", "n", "level"], ascending=[True, False, False])
                .drop_duplicates("row"))
        dens.iloc[best["row"].to_numpy()] = best["level"].to_numpy()
        filled = [f"ligne {r + 1} ({gdf['code_insee'].iat[r]}) → {int(lv)}"
                  for r, lv in zip(best["row"], best["level"], strict=True)][:30]
    note = (f"{missing.size} commune(s) absente(s) de la grille de densité {grid} ; niveau "
            "pris au niveau le plus fréquent des communes voisines : " + ", ".join(filled))
    return dens, note


_POLYGONAL = ("Polygon", "MultiPolygon")


def _check_geometry(gdf: gpd.GeoDataFrame, file: str, problems: ProblemList) -> list[str]:
    warnings: list[str] = []
    geoms = gdf.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    problems.add_rows(missing, "geometry", "un polygone de commune", ["vide"] * len(gdf))
    valid = shapely.is_valid(geoms) | missing
    if not valid.all():
        bad = np.flatnonzero(~valid)
        reasons = shapely.is_valid_reason(geoms[bad])
        repaired = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
        geoms = geoms.copy()
        geoms[bad] = repaired
        rows = ", ".join(f"{r + 1} ({gdf['code_insee'].iat[r]}: {why})"
                         for r, why in list(zip(bad, reasons, strict=True))[:30])
        more = f", … et {bad.size - 30} autres" if bad.size > 30 else ""
        warnings.append(f"{file} : {bad.size} géométrie(s) invalide(s) réparée(s) (shapely "
                        f"make_valid), lignes {rows}{more}")
        gdf["geometry"] = geoms
    types = shapely.get_type_id(geoms)
    polygonal = np.isin(types, (3, 6)) | missing  # Polygon, MultiPolygon
    if not polygonal.all():
        names = gpd.GeoSeries(geoms).geom_type.to_numpy()
        problems.add_rows(~polygonal, "geometry", "un polygone (Polygon ou MultiPolygon)", names)
    return warnings


def _representative_points(gdf: gpd.GeoDataFrame, file: str,
                           problems: ProblemList) -> list[str]:
    """Fill ``lon``/``lat``: given values, else a point inside the polygon (metric CRS)."""
    warnings: list[str] = []
    n = len(gdf)
    lon = pd.Series(np.nan, index=gdf.index)
    lat = pd.Series(np.nan, index=gdf.index)
    if "lon" in gdf.columns or "lat" in gdf.columns:
        for col, lo, hi in (("lon", -180, 180), ("lat", -90, 90)):
            if col not in gdf.columns:
                raise MissingColumnError(Problem(
                    file, None, col, "« lon » et « lat » ensemble (degrés EPSG:4326) ou aucune des "
                    "deux"))
            v = to_number(gdf[col])
            bad = (v.isna() & ~is_blank(gdf[col])) | (v < lo) | (v > hi)
            problems.add_rows(bad, col, f"des degrés entre {lo} et {hi} (EPSG:4326)",
                              gdf[col])
            if col == "lon":
                lon = v.where(~bad)
            else:
                lat = v.where(~bad)
    todo = (lon.isna() | lat.isna()).to_numpy()
    geoms = gdf.geometry
    usable = todo & ~(geoms.isna() | geoms.is_empty).to_numpy()
    if usable.any():
        crs_of = gdf["code_dep"].astype("str").map(metric_crs_for).to_numpy()
        arr = geoms.to_numpy()
        for crs in np.unique(crs_of[usable]):
            sel = usable & (crs_of == crs)
            lon[sel], lat[sel] = interior_points(arr[sel], str(crs))
        if todo.sum() < n:
            warnings.append(f"{file} : {int(todo.sum())} commune(s) sans lon/lat placée(s) en un "
                            "point intérieur à leur polygone")
    gdf["lon"] = lon.astype("float64")
    gdf["lat"] = lat.astype("float64")
    warnings += _given_points_in_polygons(gdf, ~todo, file, problems)
    return warnings


def interior_points(geoms: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Return a point inside each polygon, found in a metric CRS, as EPSG:4326 degrees.

    GEOS's point on surface (``representative_point``) of each polygon projected to
    ``crs``, projected back: the values of
    ``GeoSeries(geoms, crs=4326).to_crs(crs).representative_point().to_crs(4326)``, bit
    for bit. Only the coordinates are projected (one pyproj call, as ``to_crs`` does), and
    GEOS's scan line (:func:`_scan_line_points`) runs on them as arrays, without making the
    projected polygons; a polygon the arrays cannot settle (no crossing of positive width,
    an odd number of crossings, an empty part, Z coordinates) goes through GEOS itself.

    Parameters
    ----------
    geoms
        Polygons or multipolygons (shapely, EPSG:4326, not missing nor empty).
    crs
        The metric CRS (e.g. ``"EPSG:2154"``).

    Returns
    -------
    tuple of numpy.ndarray
        Longitudes and latitudes, degrees (EPSG:4326).
    """
    geoms = np.asarray(geoms, dtype=object)
    n = geoms.shape[0]
    px, py = np.full(n, np.nan), np.full(n, np.nan)
    todo = np.ones(n, dtype=bool)  # left to GEOS
    forward = transformer(CRS_INPUT_OUTPUT, crs)
    kind = shapely.get_type_id(geoms)
    flat = ~shapely.has_z(geoms) & ~shapely.is_empty(geoms)
    simple = np.flatnonzero(flat & (kind == 3) & (shapely.get_num_interior_rings(geoms) == 0))
    if simple.size:  # one ring per polygon: its coordinates are the polygon's
        sizes = shapely.get_num_coordinates(geoms[simple])
        xy = shapely.get_coordinates(geoms[simple])
        x, y = forward.transform(xy[:, 0], xy[:, 1])
        ids = np.arange(simple.size)
        sx, sy, bad = _scan_line_points(np.asarray(x), np.asarray(y), sizes, ids, ids,
                                        simple.size)
        px[simple], py[simple] = sx, sy
        todo[simple] = bad
    other = np.flatnonzero(flat & np.isin(kind, (3, 6)))
    other = other[todo[other]]
    if other.size:  # holes or several parts
        parts, part_geom = shapely.get_parts(geoms[other], return_index=True)
        empty_part = np.zeros(other.size, dtype=bool)
        empty_part[part_geom[shapely.is_empty(parts)]] = True
        keep = ~empty_part[part_geom]
        parts, part_geom = parts[keep], part_geom[keep]
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        if rings.size:
            xy = shapely.get_coordinates(rings)
            x, y = forward.transform(xy[:, 0], xy[:, 1])
            sx, sy, bad = _scan_line_points(np.asarray(x), np.asarray(y),
                                            shapely.get_num_coordinates(rings), ring_part,
                                            part_geom, other.size)
            done = ~bad & ~empty_part
            px[other[done]], py[other[done]] = sx[done], sy[done]
            todo[other[done]] = False
    rest = np.flatnonzero(todo)
    if rest.size:  # GEOS on the projected polygons
        projected = gpd.GeoSeries(geoms[rest], crs=CRS_INPUT_OUTPUT).to_crs(crs)
        pts = shapely.get_coordinates(projected.representative_point().to_numpy())
        px[rest], py[rest] = pts[:, 0], pts[:, 1]
    lon, lat = transformer(crs, CRS_INPUT_OUTPUT).transform(px, py)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _scan_line_points(x: np.ndarray, y: np.ndarray, ring_sizes: np.ndarray,
                      ring_part: np.ndarray, part_geom: np.ndarray, n_geoms: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return GEOS's interior point (``InteriorPointArea``) of polygons given as arrays.

    Per polygon: the horizontal scan line halfway between the vertex ordinates nearest
    above and below the middle of the shell's envelope; its crossings with the rings'
    edges (horizontal edges skipped, a vertex on the line counted once), sorted; the
    middle of the widest section (the first one on a tie). Per geometry: the polygon of
    the widest section (the first one on a tie). The same floating-point operations as
    GEOS, in the same order.

    Parameters
    ----------
    x, y
        Coordinates of every ring, rings one after the other, a polygon's shell first.
    ring_sizes
        Coordinates of each ring.
    ring_part
        Polygon of each ring (0, 1, …; a polygon's rings follow each other).
    part_geom
        Geometry of each polygon (0, 1, …, ``n_geoms`` - 1; in order).
    n_geoms
        Number of geometries.

    Returns
    -------
    tuple of numpy.ndarray
        x and y of each geometry's point, and True where the arrays cannot settle it (a
        polygon with no section of positive width or an odd number of crossings).
    """
    n_parts = part_geom.shape[0]
    ring_end = np.cumsum(ring_sizes)
    part_start, scan = _scan_lines(y, ring_end - ring_sizes, ring_end, ring_part)
    part_x, part_width, unsettled = _widest_sections(x, y, ring_end, part_start, scan)
    best = np.lexsort((-part_width, part_geom))  # stable: the first polygon on a tie
    first = np.ones(n_parts, dtype=bool)
    first[1:] = part_geom[best][1:] != part_geom[best][:-1]
    best = best[first]
    out_x, out_y = np.full(n_geoms, np.nan), np.full(n_geoms, np.nan)
    out_x[part_geom[best]], out_y[part_geom[best]] = part_x[best], scan[best]
    bad = np.ones(n_geoms, dtype=bool)
    bad[part_geom[best]] = False
    bad[part_geom[unsettled]] = True
    return out_x, out_y, bad


def _scan_lines(y: np.ndarray, ring_start: np.ndarray, ring_end: np.ndarray,
                ring_part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each polygon's first coordinate and the ordinate of its scan line (GEOS's)."""
    shell = np.ones(ring_part.shape[0], dtype=bool)
    shell[1:] = ring_part[1:] != ring_part[:-1]
    part_start = ring_start[shell]
    part_len = np.diff(np.append(part_start, y.shape[0]))
    bounds = np.empty(2 * part_start.shape[0], dtype=np.intp)
    bounds[0::2], bounds[1::2] = part_start, ring_end[shell]
    y_pad = np.append(y, 0.0)  # reduceat reads one past the last shell
    min_y = np.minimum.reduceat(y_pad, bounds)[0::2]
    max_y = np.maximum.reduceat(y_pad, bounds)[0::2]
    centre = (min_y + max_y) / 2.0
    below = y <= np.repeat(centre, part_len)
    low = np.maximum(min_y, np.maximum.reduceat(np.where(below, y, -np.inf), part_start))
    high = np.minimum(max_y, np.minimum.reduceat(np.where(below, np.inf, y), part_start))
    return part_start, (high + low) / 2.0


def _widest_sections(x: np.ndarray, y: np.ndarray, ring_end: np.ndarray,
                     part_start: np.ndarray, scan: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the middle and width of each polygon's widest section of its scan line.

    Also True for the polygons the arrays cannot settle (an odd number of crossings, no
    section of positive width, no finite scan line).
    """
    n_parts = part_start.shape[0]
    part_len = np.diff(np.append(part_start, y.shape[0]))
    line = np.repeat(scan, part_len)[:-1]
    y0, y1 = y[:-1], y[1:]
    above0, above1, under0, under1 = y0 > line, y1 > line, y0 < line, y1 < line
    hit = (~((above0 & above1) | (under0 & under1)) & (y0 != y1)
           & ~((y0 == line) & under1) & ~((y1 == line) & under0))
    hit[ring_end[:-1] - 1] = False  # no edge from one ring to the next
    i0 = np.flatnonzero(hit)
    x0, x1, y0, line = x[i0], x[i0 + 1], y[i0], line[i0]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (y[i0 + 1] - y0) / (x1 - x0)
        cross = np.where(x0 == x1, x0, x0 + ((line - y0) / slope))
    part = np.searchsorted(part_start, i0, side="right") - 1
    order = np.lexsort((cross, part))
    part, cross = part[order], cross[order]
    count = np.bincount(part, minlength=n_parts)
    rank = np.arange(part.shape[0]) - (np.cumsum(count) - count)[part]
    left = np.flatnonzero((rank % 2 == 0) & (rank + 1 < count[part]))
    width = cross[left + 1] - cross[left]
    owner = part[left]
    widest = np.lexsort((-width, owner))  # stable: the first section on a tie
    first = np.ones(widest.shape[0], dtype=bool)
    first[1:] = owner[widest][1:] != owner[widest][:-1]
    widest = widest[first]
    part_width = np.zeros(n_parts)
    part_x = np.full(n_parts, np.nan)
    part_width[owner[widest]] = width[widest]
    part_x[owner[widest]] = (cross[left[widest]] + cross[left[widest] + 1]) / 2.0
    unsettled = (count % 2 == 1) | ~(part_width > 0) | ~np.isfinite(scan)
    return part_x, part_width, unsettled


def _given_points_in_polygons(gdf: gpd.GeoDataFrame, given: np.ndarray, file: str,
                              problems: ProblemList) -> list[str]:
    """Check that given commune points fall in their polygons; return the warnings.

    A point farther than :data:`POINT_TOLERANCE_M` from its polygon (measured in the
    département's metric CRS) is a problem of its row; a closer point outside, a warning.
    """
    geoms = gdf.geometry.to_numpy()
    lon = gdf["lon"].to_numpy(dtype=float)
    lat = gdf["lat"].to_numpy(dtype=float)
    check = given & ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & \
        np.isfinite(lon) & np.isfinite(lat)
    idx = np.flatnonzero(check)
    if not idx.size:
        return []
    outside = idx[~shapely.intersects_xy(geoms[idx], lon[idx], lat[idx])]
    if not outside.size:
        return []
    dist = np.zeros(len(gdf))
    crs_of = gdf["code_dep"].astype("str").map(metric_crs_for).to_numpy()
    for crs in np.unique(crs_of[outside]):
        rows = outside[crs_of[outside] == crs]
        polys = gpd.GeoSeries(geoms[rows], crs=CRS_INPUT_OUTPUT).to_crs(crs)
        pts = gpd.GeoSeries(shapely.points(lon[rows], lat[rows]),
                            crs=CRS_INPUT_OUTPUT).to_crs(crs)
        dist[rows] = shapely.distance(polys.to_numpy(), pts.to_numpy())
    far = np.zeros(len(gdf), dtype=bool)
    far[outside] = dist[outside] > POINT_TOLERANCE_M
    found = [f"lon {fr_decimal(x, 5)} ; lat {fr_decimal(y, 5)} : à {fr_decimal(d / 1000)} km "
             "du polygone de la commune"
             for x, y, d in zip(lon, lat, dist, strict=True)]
    problems.add_rows(far, "lon", "un point (lon, lat) dans le polygone de la commune, à "
                      f"{POINT_TOLERANCE_M:g} m près", found, kind=OutOfTerritoryError)
    near = outside[dist[outside] <= POINT_TOLERANCE_M]
    if not near.size:
        return []
    return [f"{file} : {near.size} point(s) de commune (lon/lat) hors de leur polygone de "
            f"moins de {POINT_TOLERANCE_M:g} m, gardé(s) : lignes "
            + ", ".join(str(r + 1) for r in near[:30]) + (" …" if near.size > 30 else "")]


def _check_in_france(gdf: gpd.GeoDataFrame, where: tuple[str, str],
                     problems: ProblemList) -> None:
    """Refuse communes whose point is outside France (:data:`FRANCE_BBOXES`).

    ``where`` is the file and the column the points come from (``lon`` or ``geometry``).
    The usual cause is a file written as lat/lon: the hint says so when the swapped point
    falls in France.
    """
    file, column = where
    lon = gdf["lon"].to_numpy(dtype=float)
    lat = gdf["lat"].to_numpy(dtype=float)
    known = np.isfinite(lon) & np.isfinite(lat)
    out = known & ~in_france(lon, lat)
    if not out.any():
        return
    swapped = in_france(lat, lon)
    found = [f"lon {fr_decimal(x, 5)} ; lat {fr_decimal(y, 5)}"
             + (" (longitude et latitude inversées ?)" if sw else "")
             for x, y, sw in zip(lon, lat, swapped, strict=True)]
    problems.add_rows(out, column, "une commune en France métropolitaine ou d'outre-mer "
                      "(EPSG:4326 : longitude puis latitude)", found, kind=OutOfTerritoryError)
    if (out & swapped).sum() * 2 >= out.sum():
        problems.add(Problem(
            file, None, column,
            "des coordonnées longitude, latitude (x = longitude) : un GeoJSON sans « crs » "
            "est en EPSG:4326 longitude/latitude (RFC 7946)",
            f"{int((out & swapped).sum())} commune(s) qui tombent en France une fois "
            "longitude et latitude inversées"), OutOfTerritoryError)


def _merge_remapped_duplicates(gdf: gpd.GeoDataFrame, remapped: pd.DataFrame, file: str,
                               warnings: list[str]) -> gpd.GeoDataFrame:
    """Dissolve communes of an older vintage that the passage table merged into one.

    Distinct old codes that map to the same current code (merged communes) become one
    commune: polygons united, populations summed, the most populous part giving the other
    attributes and the density level (a warning says so). Any other repeated code is a
    :class:`~coverage.errors.DuplicateIdError`.
    """
    dup = gdf["code_insee"].duplicated(keep=False)
    if not dup.any():
        return gdf
    remapped_rows = set((remapped["row"] - 1).tolist())
    groups = gdf[dup].groupby("code_insee").groups
    plain = [code for code, idx in groups.items()
             if not any(gdf.index.get_loc(i) in remapped_rows for i in idx)]
    if plain:
        raise DuplicateIdError([
            Problem(file, int(gdf.index.get_loc(i)) + 1, "code_insee", "une valeur unique", code)
            for code in plain for i in groups[code]])
    order = gdf.sort_values("population", ascending=False, kind="stable")
    merged = order.groupby("code_insee", sort=False).agg(
        {c: "first" for c in COMMUNE_COLUMNS if c not in ("code_insee", "geometry",
                                                         "population")}
        | {"population": "sum"})
    geom = gpd.GeoSeries(order.geometry.to_numpy(), index=order["code_insee"].to_numpy(),
                         crs=CRS_INPUT_OUTPUT)
    unions = geom[geom.index.duplicated(keep=False)].groupby(level=0).agg(
        lambda s: shapely.union_all(s.to_numpy()))
    merged["geometry"] = geom[~geom.index.duplicated()].reindex(merged.index)
    merged.loc[unions.index, "geometry"] = unions.to_numpy()
    merged = merged.reset_index()
    warnings.append(f"{file} : {len(unions)} commune(s) en vigueur formée(s) de plusieurs "
                    "communes du fichier (millésime COG antérieur) fusionnée(s) : "
                    + ", ".join(map(str, unions.index[:30]))
                    + " ; population additionnée, niveau de densité et point représentatif pris "
                    "dans la partie la plus peuplée")
    try:
        return gpd.GeoDataFrame(merged.sort_values("code_insee"), geometry="geometry",
                                crs=CRS_INPUT_OUTPUT)
    except (TypeError, ValueError) as exc:  # pragma: no cover - defensive
        raise InputError(Problem(file, None, "geometry", "des polygones fusionnables",
                                 str(exc))) from None
