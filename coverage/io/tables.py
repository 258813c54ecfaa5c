"""Read one input table, whatever its format, and the shared helpers of the loaders.

:func:`read_table` reads CSV (``,`` or ``;``; UTF-8 with or without BOM, then CP1252 /
Latin-1 as French spreadsheet exports often are), XLSX, GeoJSON, GeoPackage and
(Geo)Parquet. Geographic inputs come back as a GeoDataFrame in EPSG:4326; every column of a
CSV comes back as ``str`` (empty cells are missing values). Problems raise an
:class:`~coverage.errors.InputError` subclass naming the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio

from coverage._validate import empty_remapped, to_input_crs
from coverage.errors import (
    EmptyInputError,
    FileTooLargeError,
    InputError,
    Problem,
    UnsupportedFormatError,
)

__all__ = [
    "CSV_ENCODINGS",
    "CSV_SUFFIXES",
    "GEOJSON_SUFFIXES",
    "GPKG_SUFFIXES",
    "PARQUET_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "XLSX_SUFFIXES",
    "Loaded",
    "check_file",
    "file_suffix",
    "gpkg_layers",
    "is_blank",
    "normalise_name",
    "read_table",
    "rename_aliases",
    "to_bool",
    "to_number",
]


log = logging.getLogger(__name__)

#: Extensions read by :func:`read_table`, by kind.
CSV_SUFFIXES = (".csv", ".txt", ".csv.gz")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
GEOJSON_SUFFIXES = (".geojson", ".json")
GPKG_SUFFIXES = (".gpkg",)
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
SUPPORTED_SUFFIXES = (*CSV_SUFFIXES, *XLSX_SUFFIXES, *GEOJSON_SUFFIXES, *GPKG_SUFFIXES,
                      *PARQUET_SUFFIXES)

#: Encodings tried in order for CSV files. ``utf-8-sig`` also reads UTF-8 without a BOM;
#: CP1252 is what French Excel writes; Latin-1 decodes any byte and closes the list.
CSV_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")

@dataclass
class Loaded:
    """A validated input table and what the loader had to say about it.

    Attributes
    ----------
    data
        The table in its contract's columns (GeoDataFrame in EPSG:4326 for geographic data).
    warnings
        One line per warning (repairs, remapped codes, defaults applied).
    remapped
        Commune codes of older COG vintages mapped to current ones: columns ``row``
        (1-based data row), ``column``, ``code_ancien``, ``code_actuel``.
    path
        The file read (or a description of the embedded data).
    """

    data: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    remapped: pd.DataFrame = field(default_factory=empty_remapped)
    path: str = ""


def file_suffix(path: Path) -> str:
    """Lower-case suffix of ``path``, two-part for ``.csv.gz`` / ``.osm.pbf``-like names."""
    name = path.name.lower()
    suffixes = [s for s in (".csv.gz", ".osm.gz", ".osm.bz2", ".osm.pbf") if name.endswith(s)]
    return suffixes[0] if suffixes else path.suffix.lower()


def check_file(path: str | Path, *, max_bytes: int | None = None) -> Path:
    """Check that ``path`` is a non-empty file no larger than ``max_bytes``.

    Raises
    ------
    InputError
        The file does not exist or is not a file.
    EmptyInputError
        The file has zero bytes.
    FileTooLargeError
        The file is larger than ``max_bytes``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(Problem(str(p), None, None, "an existing file",
                                 "a folder" if p.is_dir() else "no such file"))
    size = p.stat().st_size
    if size == 0:
        raise EmptyInputError(Problem(str(p), None, None, "a file with data rows",
                                      "an empty file (0 bytes)"))
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(Problem(
            str(p), None, None,
            f"a file of at most {max_bytes:,} bytes (settings.max_input_bytes)",
            f"{size:,} bytes"))
    return p


def read_table(path: str | Path, *, max_bytes: int | None = None,
               layer: str | None = None) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a table from CSV, XLSX, GeoJSON, GeoPackage or (Geo)Parquet.

    Parameters
    ----------
    path
        The file. Its extension chooses the reader: ``.csv``/``.txt``/``.csv.gz``,
        ``.xlsx``, ``.geojson``/``.json``, ``.gpkg``, ``.parquet``/``.geoparquet``.
    max_bytes
        Largest accepted file size, bytes (``None``: no limit).
    layer
        GeoPackage layer; default: the only layer, else the first one (with a log line).

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        A CSV or XLSX gives a DataFrame of ``str`` columns (missing cells are NA). A
        geographic file gives a GeoDataFrame reprojected to EPSG:4326. A Parquet file
        without geometry gives a DataFrame with its stored types.

    Raises
    ------
    InputError
        Missing, empty (:class:`EmptyInputError`), too large
        (:class:`FileTooLargeError`), of an unsupported extension
        (:class:`UnsupportedFormatError`), unreadable, or a geographic file without CRS
        (:class:`MissingCRSError`).
    """
    p = check_file(path, max_bytes=max_bytes)
    suffix = file_suffix(p)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(Problem(
            str(p), None, None,
            "one of the extensions " + ", ".join(SUPPORTED_SUFFIXES), suffix or "none"))
    if suffix in CSV_SUFFIXES:
        df: pd.DataFrame = _read_csv(p)
    elif suffix in XLSX_SUFFIXES:
        df = _read_xlsx(p)
    else:
        df = _read_geo(p, suffix, layer)
    if len(df) == 0:
        raise EmptyInputError(Problem(str(p), None, None, "at least one data row",
                                      "a header without rows" if len(df.columns) else
                                      "no rows"))
    return df


def _decode(p: Path, raw: bytes) -> tuple[str, str]:
    for enc in CSV_ENCODINGS:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte")  # pragma: no cover


def _sniff_separator(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        header = text.split("\n", 1)[0]
        counts = {sep: header.count(sep) for sep in (";", ",", "\t")}
        return max(counts, key=lambda s: counts[s])


def _read_csv(p: Path) -> pd.DataFrame:
    raw = p.read_bytes()
    if file_suffix(p) == ".csv.gz":
        try:
            raw = gzip.decompress(raw)
        except OSError as exc:
            raise InputError(Problem(str(p), None, None, "a gzip-compressed CSV file",
                                     str(exc))) from None
    text, encoding = _decode(p, raw)
    if not text.strip():
        raise EmptyInputError(Problem(str(p), None, None, "a header and data rows",
                                      "only blank characters"))
    sep = _sniff_separator(text)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         na_values=[""], skip_blank_lines=True)
    except pd.errors.ParserError as exc:
        msg = str(exc)
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if m:
            raise InputError(Problem(
                str(p), int(m.group(2)) - 1, None,
                f"{m.group(1)} fields separated by {sep!r} as in the header",
                f"{m.group(3)} fields")) from None
        raise InputError(Problem(str(p), None, None, "a well-formed CSV file", msg)) from None
    except pd.errors.EmptyDataError:
        raise EmptyInputError(Problem(str(p), None, None, "a header and data rows",
                                      "no header")) from None
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["encoding"] = encoding
    df.attrs["separator"] = sep
    if encoding != "utf-8-sig":
        log.info("%s: read as %s", p, encoding)
    return df


def _read_xlsx(p: Path) -> pd.DataFrame:
    try:
        df = pd.read_excel(p, sheet_name=0, dtype=object, engine="openpyxl")
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise InputError(Problem(str(p), None, None, "a readable XLSX workbook",
                                 f"{type(exc).__name__}: {exc}")) from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.dropna(how="all").reset_index(drop=True)
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        out[col] = _excel_cells_to_str(df[col])
    return out


def _excel_cells_to_str(s: pd.Series) -> pd.Series:
    """Excel cells as text: whole floats lose their ``.0``; empty cells stay missing."""

    def conv(v: object) -> object:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        if isinstance(v, pd.Timestamp):
            return v.date().isoformat() if v == v.normalize() else v.isoformat()
        text = str(v).strip()
        return text if text else pd.NA

    return s.map(conv).astype("str")


def _list_layers(p: Path) -> list[str]:
    try:
        return [str(name) for name, _ in pyogrio.list_layers(p)]
    except Exception as exc:  # pyogrio raises several DataSourceError flavours
        raise InputError(Problem(str(p), None, None, "a readable GeoPackage",
                                 f"{type(exc).__name__}: {exc}")) from None


def gpkg_layers(path: str | Path) -> list[str]:
    """Layer names of a GeoPackage."""
    return _list_layers(Path(path))


def _read_geo(p: Path, suffix: str, layer: str | None) -> pd.DataFrame:
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(p)
    kwargs: dict[str, object] = {}
    if suffix in GPKG_SUFFIXES:
        layers = _list_layers(p)
        if layer is None:
            if not layers:
                raise EmptyInputError(Problem(str(p), None, None, "at least one layer",
                                              "no layer"))
            layer = layers[0]
            if len(layers) > 1:
                log.info("%s: %d layers, reading the first one (%s)", p, len(layers), layer)
        elif layer not in layers:
            raise InputError(Problem(str(p), None, "layer",
                                     "one of the layers " + ", ".join(layers), layer))
        kwargs["layer"] = layer
    try:
        gdf = gpd.read_file(p, engine="pyogrio", **kwargs)
    except Exception as exc:  # pyogrio/GDAL errors have no common base class
        raise InputError(Problem(str(p), None, None, f"a readable {suffix} file",
                                 f"{type(exc).__name__}: {exc}")) from None
    if not isinstance(gdf, gpd.GeoDataFrame) or "geometry" not in gdf.columns:
        return pd.DataFrame(gdf)
    out: pd.DataFrame = to_input_crs(gdf, file=str(p), rfc7946=suffix in GEOJSON_SUFFIXES)
    return out


def _read_parquet(p: Path) -> pd.DataFrame:
    try:
        meta = pq.read_schema(p).metadata or {}
    except Exception as exc:  # pyarrow.ArrowInvalid and OSError
        raise InputError(Problem(str(p), None, None, "a readable Parquet file",
                                 f"{type(exc).__name__}: {exc}")) from None
    if b"geo" not in meta:
        return pd.read_parquet(p)
    try:
        gdf = gpd.read_parquet(p)
    except Exception as exc:  # invalid GeoParquet metadata
        raise InputError(Problem(str(p), None, None, "a readable GeoParquet file",
                                 f"{type(exc).__name__}: {exc}")) from None
    geo: pd.DataFrame = to_input_crs(gdf, file=str(p))
    return geo


# --- helpers shared by the loaders ---------------------------------------------------------


def normalise_name(name: str) -> str:
    """Column-name key: lower case, no accents, runs of non-alphanumerics → ``_``."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def rename_aliases(df: pd.DataFrame, aliases: Mapping[str, Sequence[str]], *,
                   file: str) -> tuple[pd.DataFrame, list[str]]:
    """Rename columns found under a documented alias to their contract name.

    Parameters
    ----------
    df
        The table as read.
    aliases
        Contract name → accepted names (compared case- and accent-insensitively; the
        contract name itself is always accepted first).
    file
        File name for the messages.

    Returns
    -------
    (DataFrame, list of str)
        The renamed table, and one note per renamed column.

    Raises
    ------
    InputError
        Two columns of the file map to the same contract column.
    """
    by_key: dict[str, str] = {}
    for col in df.columns:
        by_key.setdefault(normalise_name(col), col)
    rename: dict[str, str] = {}
    notes: list[str] = []
    problems: list[Problem] = []
    for target, names in aliases.items():
        found = [by_key[k] for k in dict.fromkeys(normalise_name(n) for n in (target, *names))
                 if k in by_key]
        found = [c for c in found if c not in rename]
        if not found:
            continue
        exact = [c for c in found if c == target]
        chosen = exact[0] if exact else found[0]
        if chosen in rename.values() or chosen in rename:
            continue
        if len(found) > 1 and not exact:
            problems.append(Problem(file, None, chosen,
                                    f"a single column for '{target}'",
                                    "columns " + ", ".join(found)))
            continue
        if chosen != target:
            rename[chosen] = target
            notes.append(f"column '{chosen}' read as '{target}'")
    if problems:
        raise InputError(problems)
    # a column already named like a target must not be shadowed by its renamed alias
    clash = [src for src, dst in rename.items() if dst in df.columns and dst != src]
    for src in clash:
        del rename[src]
        notes = [n for n in notes if not n.startswith(f"column '{src}'")]
    out = df.rename(columns=rename)
    out.attrs["aliases"] = {dst: src for src, dst in rename.items()}
    return out, notes


def to_number(s: pd.Series) -> pd.Series:
    """Parse numbers written with ``.`` or a French decimal comma; bad cells become NaN."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    text = s.astype("str").str.strip().str.replace("\u00a0", "", regex=False)
    text = text.str.replace(" ", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")


def is_blank(s: pd.Series) -> pd.Series:
    """Return True where a cell is missing or only blanks."""
    return s.isna() | (s.astype("str").str.strip() == "")


_TRUE = frozenset({"true", "vrai", "oui", "yes", "y", "o", "1", "1.0", "t"})
_FALSE = frozenset({"false", "faux", "non", "no", "n", "0", "0.0", "f"})


def to_bool(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse booleans (True/False, vrai/faux, oui/non, 1/0).

    Returns
    -------
    (Series, Series)
        Nullable booleans (NA where missing or unreadable) and the mask of unreadable,
        non-missing cells.
    """
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean"), pd.Series(False, index=s.index)
    text = s.astype("str").str.strip().str.lower()
    text = text.where(s.notna(), "")
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[text.isin(_TRUE)] = True
    out[text.isin(_FALSE)] = False
    bad = out.isna() & (text != "")
    return out, bad
