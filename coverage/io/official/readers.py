"""Readers of the official files as published: contours, INSEE tables, density grids.

- Etalab contours GeoJSON (``.geojson`` or ``.geojson.gz``; properties ``code``, ``nom``,
  ``departement``, ``region``, ``epci``) and IGN ADMIN EXPRESS ``COMMUNE`` layer, shapefile
  or GeoPackage (``INSEE_COM``, ``NOM``, ``INSEE_DEP``, ``INSEE_REG``, ``POPULATION``,
  ``SIREN_EPCI``; any case): :func:`read_contours`, EPSG:4326;
- INSEE density grids at 4 or 7 levels, XLSX (title rows above the header are skipped), zip
  of XLSX, or CSV: :func:`read_density_grid`;
- INSEE populations légales (zip with ``donnees_communes.csv``, or the CSV):
  :func:`read_population`;
- INSEE table de passage (zip of XLSX, sheet ``COM``, ``CODGEO_YYYY`` columns):
  :func:`read_passage`.

Commune codes are read with the code rules of :mod:`coverage.cog`.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from coverage._validate import to_input_crs
from coverage.cog import dep_of_code, valid_commune_codes
from coverage.errors import InputError, MissingColumnError, Problem
from coverage.io.communes import DENS7_TO_DENS4
from coverage.io.tables import normalise_name as _norm

__all__ = [
    "DENSITE7_TO_4",
    "read_contours",
    "read_density_grid",
    "read_passage",
    "read_population",
]

log = logging.getLogger(__name__)

#: INSEE 7-level grid → 4 levels (INSEE's documented nesting; the one table is
#: :data:`coverage.io.communes.DENS7_TO_DENS4`).
DENSITE7_TO_4 = DENS7_TO_DENS4


# --- contours ----------------------------------------------------------------------------
_CONTOUR_COLUMNS = {
    "code_insee": ("code", "insee_com", "code_insee", "codgeo", "com"),
    "nom": ("nom", "nom_com", "nom_m", "libelle", "libgeo"),
    "code_dep": ("departement", "insee_dep", "code_dep", "dep", "codedepartement",
                 "code_departement"),
    "code_reg": ("region", "insee_reg", "code_reg", "reg", "coderegion", "code_region"),
    "code_epci": ("epci", "siren_epci", "code_epci", "codeepci"),
    "population": ("population", "pmun", "ptot"),
}


def read_contours(path: str | Path) -> gpd.GeoDataFrame:
    """Read commune contours (Etalab GeoJSON[.gz], ADMIN EXPRESS shapefile/GeoPackage, GeoParquet).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``code_insee, nom, code_dep, code_reg, code_epci`` (str or
        missing) and ``population`` (float, NaN when the file has none), ``geometry``.

    Raises
    ------
    InputError
        Unreadable file, no CRS, or no commune-code column.
    """
    path = Path(path)
    frame = _read_contour_frame(path)
    columns = {_norm(c): c for c in frame.columns if c != frame.geometry.name}
    out: dict[str, Any] = {}
    for target, candidates in _CONTOUR_COLUMNS.items():
        source = next((columns[c] for c in candidates if c in columns), None)
        out[target] = frame[source] if source is not None else None
    if out["code_insee"] is None:
        raise MissingColumnError(Problem(
            str(path), None, "code", "une colonne de code commune (« code » d'Etalab, "
            "« INSEE_COM » d'ADMIN EXPRESS)", ", ".join(map(str, frame.columns))))
    result = pd.DataFrame(index=frame.index)
    result["code_insee"] = valid_commune_codes(out["code_insee"]).to_numpy()
    for col in ("nom", "code_dep", "code_reg", "code_epci"):
        values = out[col]
        result[col] = (values.astype("string").str.strip().replace({"": pd.NA})
                       if values is not None else pd.Series(pd.NA, index=frame.index,
                                                            dtype="string"))
    pop = out["population"]
    result["population"] = (pd.to_numeric(pop, errors="coerce") if pop is not None
                            else np.nan)
    bad = result["code_insee"].isna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())[:5]
        log.warning("%s : %d entité(s) sans code commune valide écartée(s) (lignes %s…)", path,
                    int(bad.sum()), ", ".join(str(r + 1) for r in rows))
    gdf = gpd.GeoDataFrame(result, geometry=frame.geometry.to_numpy(), crs=frame.crs)
    gdf = gdf.loc[~bad]
    missing_dep = gdf["code_dep"].isna()
    gdf.loc[missing_dep, "code_dep"] = dep_of_code(gdf.loc[missing_dep, "code_insee"])
    return gdf.reset_index(drop=True)


def _read_contour_frame(path: Path) -> gpd.GeoDataFrame:
    """Read the contours file as it is, in EPSG:4326 (the one CRS policy)."""
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                frame = gpd.read_file(io.BytesIO(fh.read()))
        elif name.endswith((".parquet", ".geoparquet")):
            frame = gpd.read_parquet(path)
        elif name.endswith(".gpkg"):
            layers = [str(row[0]) for row in pyogrio.list_layers(path)]
            layer = next((lay for lay in layers if _norm(lay) in ("commune", "communes")),
                         layers[0])
            frame = gpd.read_file(path, layer=layer)
        else:
            frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(Problem(str(path), None, None, "des contours de communes (GeoJSON "
                                 "Etalab, shapefile ou GeoPackage ADMIN EXPRESS)",
                                 f"{type(exc).__name__}: {exc}")) from None
    geojson = name.endswith((".geojson", ".geojson.gz", ".json"))
    return to_input_crs(frame, file=str(path), rfc7946=geojson)


# --- tables: XLSX with title rows, zip, CSV ----------------------------------------------
def _raw_frames(path: Path) -> list[tuple[str, pd.DataFrame]]:
    """Every sheet/table in ``path`` as a header-less all-str frame, with its name.

    Raises
    ------
    InputError
        The file cannot be read as what its name says (XLSX, CSV, zip of them).
    """
    try:
        return _raw_frames_unchecked(path)
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, pd.errors.ParserError) as exc:
        raise InputError(Problem(str(path), None, None, "un XLSX, un CSV ou un zip de ceux-ci, "
                                 "lisible (tel que publié par l'INSEE)",
                                 f"{type(exc).__name__}: {exc}")) from None


def _raw_frames_unchecked(path: Path) -> list[tuple[str, pd.DataFrame]]:
    name = path.name.lower()
    if name.endswith(".zip"):
        out: list[tuple[str, pd.DataFrame]] = []
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                low = member.lower()
                if low.endswith((".xlsx", ".csv")) and not member.startswith("__MACOSX"):
                    data = zf.read(member)
                    out += [(f"{path.name}!{member}{'' if s == '' else '#' + s}", f)
                            for s, f in _raw_from_bytes(low, data)]
        return out
    return [(f"{path.name}{'' if s == '' else '#' + s}", f)
            for s, f in _raw_from_bytes(name, path.read_bytes())]


def _raw_from_bytes(name: str, data: bytes) -> list[tuple[str, pd.DataFrame]]:
    if name.endswith((".xlsx", ".xlsm")):
        sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, header=None, dtype=str,
                               engine="openpyxl")
        return list(sheets.items())
    if name.endswith(".csv"):
        for encoding in ("utf-8-sig", "cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        first = text.split("\n", 1)[0]
        sep = ";" if first.count(";") > first.count(",") else ","
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=str,
                            keep_default_na=False)
        return [("", frame)]
    return []


_CODE_HEADERS = ("codgeo", "code_commune", "depcom", "code_insee", "codecommune", "code",
                 "com", "codgeo_2024", "codgeo_2025", "codgeo_2026", "insee_com")


def _with_header(raw: pd.DataFrame, *, max_title_rows: int = 20) -> pd.DataFrame | None:
    """Find the header row under INSEE's title rows; the frame below it, or None."""
    for i in range(min(max_title_rows, len(raw))):
        cells = [_norm(c) for c in raw.iloc[i].tolist()]
        if any(_is_code_header(c) for c in cells):
            frame = raw.iloc[i + 1:].reset_index(drop=True).copy()
            frame.columns = [str(c) if str(c) != "nan" else f"col{j}"
                             for j, c in enumerate(raw.iloc[i].tolist())]
            return frame.replace({"": pd.NA})
    return None


def _is_code_header(name: str) -> bool:
    """Return True for a normalised header naming a commune code (``CODGEO``…)."""
    return name in _CODE_HEADERS or name.startswith(("codgeo", "code_insee", "code_commune"))


def _code_column(frame: pd.DataFrame, *, named_only: bool = False) -> str | None:
    named = [c for c in frame.columns if _is_code_header(_norm(c))]
    others = [] if named_only else [c for c in frame.columns if c not in named]
    for col in named + others:
        values = frame[col].dropna().head(200)
        if len(values) and valid_commune_codes(values).notna().mean() > 0.9:
            return str(col)
    return None


def _levels(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


#: Exact names of a density-level column (normalised), preferred to other candidates.
_LEVEL_NAMES = frozenset({"dens", "dens4", "dens7", "densite", "densite4", "densite7",
                          "typo_degre_densite", "degre_densite", "grille_densite"})
#: Words of columns that look like levels but are not (min/max of merged communes…).
_NOT_LEVEL_WORDS = frozenset({"min", "max", "part", "approx", "nb", "pop", "pmun", "reg",
                              "dep", "zone"})


def read_density_grid(path: str | Path) -> pd.DataFrame:
    """Read an INSEE density grid (4 or 7 levels; XLSX with title rows, zip, or CSV).

    The level column is found by its values (integers 1…7 for nearly every row), preferring
    a column with levels above 4, then names that start with ``dens``. The grid has 7
    levels when a level above 4 occurs or the title rows, file or column name say so
    ("7 niveaux", ``DENS7``, INSEE's ``fichier_diffusion_2025``), else 4.

    Returns
    -------
    pandas.DataFrame
        ``code_insee`` (str), ``densite`` (int, 4 levels), ``densite7`` (Int64, 7 levels or
        missing when the file has 4), and the attribute ``attrs["niveaux"]`` (4 or 7).

    Raises
    ------
    InputError
        No sheet with a commune-code column and a level column.
    """
    path = Path(path)
    best: tuple[int, pd.DataFrame, str, str, str, int] | None = None
    for name, raw in _raw_frames(path):
        frame = _with_header(raw)
        if frame is None or frame.empty:
            continue
        code_col = _code_column(frame)
        if code_col is None:
            continue
        for col in frame.columns:
            if col == code_col:
                continue
            values = _levels(frame[col])
            filled = values.notna().mean()
            valid = values.dropna()
            if filled < 0.9 or valid.empty or not valid.isin(range(1, 8)).all():
                continue
            top = int(valid.max())
            low = _norm(col)
            if any(w in low.split("_") for w in _NOT_LEVEL_WORDS) or low.startswith("n_"):
                continue
            if top < 2 and not low.startswith("dens"):
                continue
            score = ((2 if top > 4 else 1) * 10 + (5 if low in _LEVEL_NAMES else 0)
                     + (1 if low.startswith(("dens", "typo_degre", "degre")) else 0))
            if best is None or score > best[0]:
                title = " ".join(str(v) for v in raw.head(10).to_numpy().ravel())
                seven = (top > 4 or "7" in _norm(col) or "7_niveaux" in _norm(title)
                         or "7_niveaux" in _norm(name) or "fichier_diffusion" in _norm(name))
                best = (score, frame, code_col, str(col), name, 7 if seven else 4)
    if best is None:
        raise InputError(Problem(str(path), None, None,
                                 "une grille de densité INSEE : une colonne de code commune "
                                 "(CODGEO) et une colonne de niveau de valeurs 1…4 ou 1…7"))
    _, frame, code_col, level_col, where, niveaux = best
    levels = _levels(frame[level_col])
    out = pd.DataFrame({"code_insee": valid_commune_codes(frame[code_col]),
                        "level": levels})
    out = out.dropna(subset=["code_insee", "level"])
    out["level"] = out["level"].astype(int)
    if niveaux == 7:
        out["densite7"] = out["level"].astype("Int64")
        out["densite"] = out["level"].map(DENSITE7_TO_4).astype(int)
    else:
        out["densite7"] = pd.array([pd.NA] * len(out), dtype="Int64")
        out["densite"] = out["level"]
    out = out.drop(columns="level").drop_duplicates("code_insee").reset_index(drop=True)
    out.attrs["niveaux"] = niveaux
    out.attrs["source"] = f"{where}, colonne « {level_col} »"
    log.info("%s: %d communes, %d levels (column %r)", where, len(out), niveaux, level_col)
    return out


def read_population(path: str | Path) -> pd.DataFrame:
    """Read INSEE populations légales (zip with ``donnees_communes.csv``, CSV or XLSX).

    The commune code is ``COM``/``CODGEO`` when it has 5 characters, else département +
    ``CODCOM``. The population is the municipal population (``PMUN``).

    Returns
    -------
    pandas.DataFrame
        ``code_insee`` (str), ``population`` (int, inhabitants).
    """
    path = Path(path)
    frames = _raw_frames(path)
    preferred = [f for f in frames if "communes" in f[0].lower()] or frames
    for name, raw in preferred:
        frame = _with_header(raw)
        if frame is None:
            continue
        cols = {_norm(c): c for c in frame.columns}
        pop_col = next((cols[c] for c in ("pmun", "population_municipale", "population",
                                          "ptot", "population_totale") if c in cols), None)
        if pop_col is None:
            continue
        code_col = _code_column(frame, named_only=True)
        if code_col is not None:
            codes = valid_commune_codes(frame[code_col]).tolist()
        elif "codcom" in cols and ("dep" in cols or "code_departement" in cols):
            dep = frame[cols.get("dep", cols.get("code_departement"))].astype(str).str.strip()
            com = frame[cols["codcom"]].astype(str).str.strip()
            codes = valid_commune_codes(pd.Series(
                [c if len(c) == 5 else (d[:2] + c if len(c) == 3 else d + c)
                 for d, c in zip(dep, com, strict=True)])).tolist()
        else:
            continue
        pop = pd.to_numeric(frame[pop_col].astype(str).str.replace(r"[\s\u202f]", "",
                                                                  regex=True),
                            errors="coerce")
        out = pd.DataFrame({"code_insee": codes, "population": pop}).dropna()
        out["population"] = out["population"].round().astype(int)
        log.info("%s: %d populations (column %r)", name, len(out), pop_col)
        return out.drop_duplicates("code_insee").reset_index(drop=True)
    raise InputError(Problem(str(path), None, None, "populations légales INSEE : un code "
                             "commune (COM/CODGEO, ou DEP + CODCOM) et PMUN"))


def read_passage(path: str | Path) -> pd.DataFrame:
    """Read an INSEE table de passage: every older ``CODGEO_YYYY`` code → the newest one.

    Returns
    -------
    pandas.DataFrame
        ``code_ancien``, ``code_actuel`` (str), unique pairs, old ≠ new.
    """
    path = Path(path)
    for _name, raw in _raw_frames(path):
        frame = _with_header(raw)
        if frame is None:
            continue
        year_cols = sorted((c for c in frame.columns if re.fullmatch(r"codgeo_\d{4}", _norm(c))),
                           key=lambda c: _norm(c))
        if len(year_cols) < 2:
            continue
        newest = year_cols[-1]
        pairs = [pd.DataFrame({"code_ancien": frame[c], "code_actuel": frame[newest]})
                 for c in year_cols[:-1]]
        extra = [c for c in frame.columns if _norm(c) == "codgeo_ini"]
        pairs += [pd.DataFrame({"code_ancien": frame[c], "code_actuel": frame[newest]})
                  for c in extra]
        out = pd.concat(pairs, ignore_index=True)
        out["code_ancien"] = valid_commune_codes(out["code_ancien"])
        out["code_actuel"] = valid_commune_codes(out["code_actuel"])
        out = out.dropna().drop_duplicates()
        return out.loc[out["code_ancien"] != out["code_actuel"]].reset_index(drop=True)
    raise InputError(Problem(str(path), None, None, "table de passage INSEE : une feuille "
                             "avec des colonnes CODGEO_AAAA (feuille COM)"))

