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

Readers accept the official formats as published:

- Etalab contours GeoJSON (``.geojson`` or ``.geojson.gz``; properties ``code``, ``nom``,
  ``departement``, ``region``, ``epci``);
- IGN ADMIN EXPRESS ``COMMUNE`` layer, shapefile or GeoPackage (``INSEE_COM``, ``NOM``,
  ``INSEE_DEP``, ``INSEE_REG``, ``POPULATION``, ``SIREN_EPCI``; any case);
- INSEE density grids at 4 or 7 levels, XLSX (title rows above the header are skipped),
  zip of XLSX, or CSV;
- INSEE populations légales (zip with ``donnees_communes.csv``, or the CSV);
- INSEE table de passage (zip of XLSX, sheet ``COM``, ``CODGEO_YYYY`` columns);
- OSM PBF extracts, clipped with pyosmium (no ``osmium`` command needed).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from coverage.errors import FetchError, InputError, MissingColumnError, Problem
from coverage.files import atomic_path, write_text_atomic
from coverage.settings import (
    COMMUNES_DATA_DIR,
    CRS_INPUT_OUTPUT,
    Settings,
    metric_crs_for,
)

log = logging.getLogger(__name__)

#: INSEE 7-level grid → 4 levels. INSEE's documented nesting: dense = grands centres urbains
#: (1); intermédiaire = centres urbains intermédiaires, ceintures urbaines, petites villes
#: (2, 3, 4); peu dense = bourgs ruraux (5); très peu dense = rural à habitat dispersé and
#: très dispersé (6, 7).
DENSITE7_TO_4: Mapping[int, int] = MappingProxyType({1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 4, 7: 4})

#: Speed that turns the largest threshold (minutes) into the clip buffer of the OSM extract,
#: km/h. 90 km/h over 45 minutes gives 67.5 km: a service reachable within the threshold on
#: French roads outside motorways lies inside it.
BUFFER_SPEED_KMH = 90.0

COMMUNES_LAYER = "communes"
COMMUNES_COLUMNS = ["code_insee", "nom", "code_dep", "code_reg", "population", "densite",
                    "rural", "lon", "lat", "code_epci", "nom_epci", "fictif", "geometry"]

_CODE_RE = re.compile(r"^(\d{5}|2[AB]\d{3})$")


# --- layout ------------------------------------------------------------------------------
def prepared_paths(data_dir: str | Path, dept: str) -> dict[str, Path]:
    """Paths of the prepared inputs of one département (they may not exist yet).

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
    folder = Path(data_dir) / _dept_folder(dept)
    return {
        "folder": folder,
        "communes": folder / "communes.gpkg",
        "roads": folder / "routes.osm.pbf",
        "services": folder / "services.csv",
        "manifest": folder / "prepare.json",
    }


def _dept_folder(dept: str) -> str:
    text = dept.strip().upper()
    return "0" + text if text.isdigit() and len(text) == 1 else text


def buffer_m(settings: Settings = Settings()) -> float:
    """Clip buffer around a département, metres: largest threshold × :data:`BUFFER_SPEED_KMH`."""
    return settings.max_threshold_min / 60.0 * BUFFER_SPEED_KMH * 1000.0


# --- small helpers -----------------------------------------------------------------------
def _norm(name: object) -> str:
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _code5(value: object) -> str | None:
    """A commune code as 5 characters (``1001`` → ``01001``), or None when it is not one."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().upper()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    if text.isdigit() and len(text) == 4:
        text = "0" + text
    return text if _CODE_RE.match(text) else None


def _dep_of(code: str) -> str:
    return code[:3] if code.startswith("97") else code[:2]


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
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                frame = gpd.read_file(io.BytesIO(fh.read()))
        elif name.endswith((".parquet", ".geoparquet")):
            frame = gpd.read_parquet(path)
        elif name.endswith(".gpkg"):
            import pyogrio

            layers = [str(row[0]) for row in pyogrio.list_layers(path)]
            layer = next((lay for lay in layers if _norm(lay) in ("commune", "communes")),
                         layers[0])
            frame = gpd.read_file(path, layer=layer)
        else:
            frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(Problem(str(path), None, None, "commune contours (Etalab GeoJSON, "
                                 "ADMIN EXPRESS shapefile or GeoPackage)",
                                 f"{type(exc).__name__}: {exc}")) from None
    if frame.crs is None:
        raise InputError(Problem(str(path), None, None, "a coordinate reference system "
                                 "(GeoJSON is EPSG:4326; a shapefile needs its .prj)"))
    columns = {_norm(c): c for c in frame.columns if c != frame.geometry.name}
    out: dict[str, Any] = {}
    for target, candidates in _CONTOUR_COLUMNS.items():
        source = next((columns[c] for c in candidates if c in columns), None)
        out[target] = frame[source] if source is not None else None
    if out["code_insee"] is None:
        raise MissingColumnError(Problem(
            str(path), None, "code", "a commune-code column (Etalab 'code', ADMIN EXPRESS "
            "'INSEE_COM')", ", ".join(map(str, frame.columns))))
    result = pd.DataFrame(index=frame.index)
    result["code_insee"] = [_code5(v) for v in out["code_insee"]]
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
        log.warning("%s: %d features without a valid commune code dropped (rows %s…)", path,
                    int(bad.sum()), ", ".join(str(r + 1) for r in rows))
    gdf = gpd.GeoDataFrame(result, geometry=frame.geometry.to_numpy(), crs=frame.crs)
    gdf = gdf.loc[~bad].to_crs(CRS_INPUT_OUTPUT)
    missing_dep = gdf["code_dep"].isna()
    gdf.loc[missing_dep, "code_dep"] = [_dep_of(c) for c in gdf.loc[missing_dep, "code_insee"]]
    return gdf.reset_index(drop=True)


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
        raise InputError(Problem(str(path), None, None, "a readable XLSX, CSV or zip of them "
                                 "(as published by INSEE)", f"{type(exc).__name__}: {exc}")
                         ) from None


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
    """A normalised header that names a commune code (``CODGEO``, ``code_insee_2022``…)."""
    return name in _CODE_HEADERS or name.startswith(("codgeo", "code_insee", "code_commune"))


def _code_column(frame: pd.DataFrame, *, named_only: bool = False) -> str | None:
    named = [c for c in frame.columns if _is_code_header(_norm(c))]
    others = [] if named_only else [c for c in frame.columns if c not in named]
    for col in named + others:
        values = frame[col].dropna().head(200)
        if len(values) and np.mean([_code5(v) is not None for v in values]) > 0.9:
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
                                 "an INSEE density grid: a commune-code column (CODGEO) and "
                                 "a level column with values 1…4 or 1…7"))
    _, frame, code_col, level_col, where, niveaux = best
    levels = _levels(frame[level_col])
    out = pd.DataFrame({"code_insee": [_code5(v) for v in frame[code_col]],
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
    out.attrs["source"] = f"{where}, column {level_col!r}"
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
            codes = [_code5(v) for v in frame[code_col]]
        elif "codcom" in cols and ("dep" in cols or "code_departement" in cols):
            dep = frame[cols.get("dep", cols.get("code_departement"))].astype(str).str.strip()
            com = frame[cols["codcom"]].astype(str).str.strip()
            codes = [_code5(c if len(c) == 5 else (d[:2] + c if len(c) == 3 else d + c))
                     for d, c in zip(dep, com, strict=True)]
        else:
            continue
        pop = pd.to_numeric(frame[pop_col].astype(str).str.replace(r"[\s\u202f]", "",
                                                                  regex=True),
                            errors="coerce")
        out = pd.DataFrame({"code_insee": codes, "population": pop}).dropna()
        out["population"] = out["population"].round().astype(int)
        log.info("%s: %d populations (column %r)", name, len(out), pop_col)
        return out.drop_duplicates("code_insee").reset_index(drop=True)
    raise InputError(Problem(str(path), None, None, "INSEE populations légales: a commune "
                             "code (COM/CODGEO, or DEP + CODCOM) and PMUN"))


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
        out["code_ancien"] = [_code5(v) for v in out["code_ancien"]]
        out["code_actuel"] = [_code5(v) for v in out["code_actuel"]]
        out = out.dropna().drop_duplicates()
        return out.loc[out["code_ancien"] != out["code_actuel"]].reset_index(drop=True)
    raise InputError(Problem(str(path), None, None, "INSEE table de passage: a sheet with "
                             "CODGEO_YYYY columns (sheet COM)"))


def _embedded_passage() -> pd.DataFrame:
    path = COMMUNES_DATA_DIR / "passage_codes_cog2026.csv.gz"
    if not path.exists():
        return pd.DataFrame(columns=["code_ancien", "code_actuel"])
    frame = pd.read_csv(path, dtype=str, usecols=["code_ancien", "code_actuel"])
    return frame.loc[frame["code_ancien"] != frame["code_actuel"]]


def _embedded_communes() -> pd.DataFrame:
    """The embedded COG 2026 table (coverage.cog, or its CSV directly)."""
    try:
        from coverage.cog import national_communes

        return national_communes()
    except ImportError:
        path = COMMUNES_DATA_DIR / "communes_cog2026.csv.gz"
        return pd.read_csv(path, dtype=str)


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
        table = passage if passage is not None else _embedded_passage()
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
    """The communes of ``depts`` in the communes contract.

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
    depts = [_dept_folder(d) for d in depts]
    gdf = contours.loc[contours["code_dep"].isin(depts)].copy()
    problems = [Problem(source, None, "code_dep", f"communes of département {d}", "none")
                for d in depts if not (gdf["code_dep"] == d).any()]
    if problems:
        raise InputError(problems)
    gdf = gdf.dissolve(by="code_insee", as_index=False, aggfunc="first")  # multi-part rows
    embedded = _embedded_communes().set_index("code_insee")
    if population is not None:
        pop = population.set_index("code_insee")["population"]
        gdf["population"] = gdf["code_insee"].map(pop).astype("float")
    fill = gdf["population"].isna()
    if fill.any() and "population" in embedded:
        gdf.loc[fill, "population"] = pd.to_numeric(
            gdf.loc[fill, "code_insee"].map(embedded["population"]), errors="coerce")
    no_pop = gdf["population"].isna()
    if no_pop.any():
        log.warning("%d communes without a legal population (set to 0): %s", int(no_pop.sum()),
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
        log.warning("%d communes without a density level left out: %s", int(lacking.sum()),
                    ", ".join(gdf.loc[lacking, "code_insee"].head(10)))
        gdf = gdf.loc[~lacking].copy()
        lacking = gdf["densite"].isna()
    if lacking.any():
        raise InputError([Problem(source, None, "densite", "a level in the INSEE density grid "
                                  "(or an older code of it in the table de passage)", code)
                          for code in gdf.loc[lacking, "code_insee"]])
    carried = int(dens["densite_report"].reindex(gdf["code_insee"]).fillna(False).sum())
    if carried:
        log.info("%d communes took their density level from older codes", carried)
    gdf["densite"] = gdf["densite"].astype(int)
    gdf["rural"] = gdf["densite"].isin([3, 4])
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
    crs = metric_crs_for(_dept_folder(dept))
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
        code = _dept_folder(dept)
        own = contours.loc[contours["code_dep"] == code]
        if own.empty:
            continue
        area = clip_area(own, code, buffer_m(settings))
        hits = contours.loc[contours.intersects(area), "code_dep"].dropna().unique()
        found += [str(h) for h in sorted(hits)]
    return list(dict.fromkeys(found))


_ROAD_KEYS = ("highway",)


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


# --- locating the fetched files ----------------------------------------------------------
_PATTERNS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "contours": ("communes-*.geojson.gz", "communes-*.geojson", "COMMUNE.shp", "COMMUNE.gpkg",
                 "*ADMIN-EXPRESS*.gpkg", "ADE*.gpkg"),
    "densite7": ("grille_densite_7_niveaux*.xlsx", "fichier_diffusion_*.xlsx"),
    "densite4": ("grille_densite*.zip", "grille_densite*.xlsx", "grille_densite*.csv"),
    "population": ("ensemble.zip", "donnees_communes.csv"),
    "passage": ("table_passage_annuelle_*.zip",),
    "osm": ("*.osm.pbf",),
})


def find_inputs(data_dir: str | Path) -> dict[str, list[Path]]:
    """Files of each source key in ``<data-dir>/cache``: from the index, else by name."""
    from coverage.io.official.fetch import cache_dir, read_index

    cache = cache_dir(data_dir)
    found: dict[str, list[Path]] = {k: [] for k in _PATTERNS}
    for record in read_index(data_dir).values():
        path = Path(str(record.get("path", "")))
        key = str(record.get("key", ""))
        if key in found and path.exists() and path not in found[key]:
            found[key].append(path)
    if cache.exists():
        for key, patterns in _PATTERNS.items():
            for pattern in patterns:
                for path in sorted(cache.rglob(pattern)):
                    if path.is_file() and path not in found[key] \
                            and not path.name.endswith(".part"):
                        found[key].append(path)
    return found


def _osm_for(found: Sequence[Path], depts: Sequence[str]) -> list[Path]:
    """The extracts among ``found`` that cover ``depts`` (département files of
    download.openstreetmap.fr or Geofabrik régions, by name), else every file found (extracts
    put by hand under other names).
    """
    from coverage.io.official.sources import osm_file

    names = {Path(u).name for d in depts
             for u in (osm_file(d).url, *osm_file(d).fallbacks)}
    chosen = [p for p in found if p.name in names]
    return chosen or list(found)


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
        Thresholds (the OSM clip buffer is :func:`buffer_m` of them).
    osm
        Also clip the OSM extracts (skipped with a warning when none was fetched).

    Returns
    -------
    dict
        Département → :func:`prepared_paths` of the files written.

    Raises
    ------
    FetchError
        A required source (contours, density grid) is not in the cache.
    InputError
        A file is not in the expected official format.
    """
    from coverage.io.official.fetch import read_index, sha256_file
    from coverage.io.official.sources import DEPARTEMENTS, osm_file

    found = find_inputs(data_dir)
    if not found["contours"]:
        msg = (f"no commune contours in {Path(data_dir) / 'cache'}: run 'zones-blanches fetch "
               f"--dept {' '.join(depts)} --data-dir {data_dir}' or put an Etalab "
               "communes-*.geojson.gz or an ADMIN EXPRESS COMMUNE layer there")
        raise FetchError(msg)
    grids = list(dict.fromkeys(found["densite7"] + found["densite4"]))
    if not grids:
        msg = (f"no INSEE density grid in {Path(data_dir) / 'cache'}: run 'zones-blanches "
               "fetch' or put the INSEE file there (grille_densite_*.xlsx/.zip/.csv or "
               "fichier_diffusion_YYYY.xlsx)")
        raise FetchError(msg)
    index = {str(r.get("path")): r for r in read_index(data_dir).values()}
    contours_path = _newest(found["contours"])
    grid_path = _newest(grids)
    contours = read_contours(contours_path)
    grid = read_density_grid(grid_path)
    population = None
    population_note = "embedded COG 2026 table (coverage.cog)"
    if found["population"]:
        pop_path = _newest(found["population"])
        pop_year, cog_year = _year(pop_path, index), _year(contours_path, index)
        if pop_year and cog_year and pop_year < cog_year - POPULATION_LAG_YEARS:
            population_note = (f"{pop_path.name} (reference year {pop_year}) is older than the "
                               f"populations in force with COG {cog_year}; the embedded COG "
                               "2026 table is used instead")
            log.warning(population_note)
        else:
            population = read_population(pop_path)
            population_note = str(pop_path)
    passage = read_passage(_newest(found["passage"])) if found["passage"] else None
    if passage is not None:
        passage = pd.concat([passage, _embedded_passage()]).drop_duplicates()
    results: dict[str, dict[str, Path]] = {}
    for dept in depts:
        code = _dept_folder(dept)
        if code not in DEPARTEMENTS:
            msg = f"unknown département code {dept!r}"
            raise FetchError(msg)
        paths = prepared_paths(data_dir, code)
        communes = prepare_communes(contours, [code], grid, population=population,
                                    passage=passage, source=str(contours_path))
        area = clip_area(communes, code, buffer_m(settings))
        neighbours = sorted(str(d) for d in contours.loc[contours.intersects(area),
                                                         "code_dep"].dropna().unique()
                            if str(d) != code)
        context = prepare_communes(contours, neighbours, grid, population=population,
                                   passage=passage, source=str(contours_path),
                                   missing_density="drop") if neighbours else None
        everything = communes if context is None else gpd.GeoDataFrame(
            pd.concat([communes, context], ignore_index=True), crs=communes.crs)
        with atomic_path(paths["communes"]) as tmp:
            everything.to_file(tmp, layer=COMMUNES_LAYER, driver="GPKG")
        used = {"contours": contours_path, "densite": grid_path}
        if population is not None:
            used["population"] = _newest(found["population"])
        if passage is not None:
            used["passage"] = _newest(found["passage"])
        manifest: dict[str, Any] = {
            "departement": code,
            "communes": {"path": str(paths["communes"]), "rows": len(communes),
                         "population": int(communes["population"].sum()),
                         "rural": int(communes["rural"].sum()),
                         "densite_niveaux_source": grid.attrs.get("niveaux"),
                         "densite_colonne": grid.attrs.get("source"),
                         "population_source": population_note,
                         "departements_voisins": neighbours,
                         "communes_voisines": 0 if context is None else len(context)},
            "sources": {k: {"path": str(p), "sha256": index.get(str(p), {}).get("sha256")
                            or sha256_file(p),
                            "url": index.get(str(p), {}).get("url")} for k, p in used.items()},
        }
        if osm:
            extracts = found["osm"]
            if not extracts:
                log.warning("no OSM extract in the cache: %s has no road network; run "
                            "'zones-blanches fetch' without --no-osm", code)
            else:
                chosen = _osm_for(extracts, [d for d in [code, *neighbours]
                                             if d in DEPARTEMENTS])
                own = {Path(u).name for u in (osm_file(code).url, *osm_file(code).fallbacks)}
                if not any(p.name in own for p in chosen):
                    log.warning("the OSM extract of département %s itself is not in the "
                                "cache; its roads come from: %s", code,
                                ", ".join(p.name for p in chosen))
                stats = clip_osm(chosen, area, paths["roads"])
                manifest["routes"] = {"path": str(paths["roads"]), **stats,
                                      "buffer_m": buffer_m(settings),
                                      "extracts": [str(p) for p in chosen]}
                log.info("%s: %d road ways, %d nodes", paths["roads"], stats["ways"],
                         stats["nodes"])
        write_text_atomic(paths["manifest"],
                          json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        results[code] = paths
    return results


#: Legal populations of reference year N are in force from 1 January N+3, with COG N+3.
POPULATION_LAG_YEARS = 3


def _year(path: Path, index: Mapping[str, Mapping[str, object]]) -> int | None:
    """Edition year of a fetched file: from the cache index, else from its path."""
    year = index.get(str(path), {}).get("year")
    if isinstance(year, int):
        return year
    return _path_year(path) or None


def _path_year(path: Path) -> int:
    """Highest 20xx year in the path below ``cache/`` (0 when none)."""
    text = str(path).replace("\\", "/").split("/cache/", 1)[-1]
    years = [int(y) for y in re.findall(r"(?<!\d)(20\d\d)(?!\d)", text)]
    return max(years) if years else 0


def _newest(paths: Sequence[Path]) -> Path:
    """The path with the highest year in its name (else the last by name)."""
    return sorted(paths, key=lambda p: (_path_year(p), p.name))[-1]


def prepare_from_cli(args: argparse.Namespace) -> int:
    """``zones-blanches prepare``: prepare, print the files written. Returns the exit code."""
    from coverage.io.official.sources import normalise_dept

    depts = [normalise_dept(d) for d in args.dept]
    results = prepare(depts, args.data_dir)
    for code, paths in results.items():
        print(f"Département {code}:")
        for key in ("communes", "roads", "manifest"):
            if paths[key].exists():
                print(f"  {key:<9} {paths[key]}")
        if not paths["services"].exists():
            print(f"  services  (none: put your own list at {paths['services']} — there is no "
                  "official open list of these services)")
        print(f"Next: zones-blanches run --dept {code} --data-dir {args.data_dir}")
    return 0
