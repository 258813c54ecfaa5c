"""Read one input table, whatever its format, and the shared helpers of the loaders.

:func:`read_table` reads CSV (``,`` or ``;``; UTF-8 with or without BOM, then CP1252 /
Latin-1 as French spreadsheet exports often are), XLSX, GeoJSON, GeoPackage and
(Geo)Parquet. Geographic inputs come back as a GeoDataFrame in EPSG:4326; every column of a
CSV comes back as ``str`` (empty cells are missing values). Problems raise an
:class:`~coverage.errors.InputError` subclass naming the file.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from xml.etree import ElementTree

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
from coverage.io.limits import TableLimits, check_xlsx, read_capped_bytes
from coverage.labels import fr_int

__all__ = [
    "CSV_ENCODINGS",
    "CSV_SUFFIXES",
    "GEOJSON_SUFFIXES",
    "GPKG_SUFFIXES",
    "HEADER_WITHOUT_ROWS",
    "PARQUET_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "XLSX_SUFFIXES",
    "Loaded",
    "check_file",
    "check_headers",
    "file_suffix",
    "gpkg_layers",
    "is_blank",
    "normalise_name",
    "read_table",
    "rename_aliases",
    "to_bool",
    "to_number",
    "xlsx_formula_cells",
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
#: What an empty table with a header was found to be (``found`` of its problem).
HEADER_WITHOUT_ROWS = "un en-tête sans lignes"

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
        raise InputError(Problem(str(p), None, None, "un fichier existant",
                                 "un dossier" if p.is_dir() else "fichier introuvable"))
    size = p.stat().st_size
    if size == 0:
        raise EmptyInputError(Problem(str(p), None, None, "un fichier avec des lignes de données",
                                      "un fichier vide (0 octet)"))
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(Problem(
            str(p), None, None,
            f"un fichier d'au plus {fr_int(max_bytes)} octets (settings.max_input_bytes)",
            f"{fr_int(size)} octets"))
    return p


def read_table(path: str | Path, *, max_bytes: int | None = None,
               layer: str | None = None,
               limits: TableLimits | None = None) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a table from CSV, XLSX, GeoJSON, GeoPackage or (Geo)Parquet.

    Parameters
    ----------
    path
        The file. Its extension chooses the reader: ``.csv``/``.txt``/``.csv.gz``,
        ``.xlsx``, ``.geojson``/``.json``, ``.gpkg``, ``.parquet``/``.geoparquet``.
    max_bytes
        Largest accepted file size, bytes (``None``: no limit); for CSV and XLSX also the
        largest decoded size (text after decompression, XML of the workbook).
    layer
        GeoPackage layer; default: the only layer. A GeoPackage of several layers needs it
        (never the first one silently).
    limits
        Columns, rows and cells of a CSV or XLSX table (default
        :class:`coverage.io.limits.TableLimits`: 500 columns, 2 million rows, 20 million
        cells), checked before parsing (:mod:`coverage.io.limits`).

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        A CSV or XLSX gives a DataFrame of ``str`` columns (missing cells are NA). A
        geographic file gives a GeoDataFrame reprojected to EPSG:4326. A Parquet file
        without geometry gives a DataFrame with its stored types.

    Raises
    ------
    InputError
        Missing, empty (:class:`EmptyInputError`), too large on disk or once decoded
        (:class:`FileTooLargeError`), of an unsupported extension
        (:class:`UnsupportedFormatError`), unreadable, or a geographic file without CRS
        (:class:`MissingCRSError`).
    """
    p = check_file(path, max_bytes=max_bytes)
    suffix = file_suffix(p)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(Problem(
            str(p), None, None,
            "une des extensions " + ", ".join(SUPPORTED_SUFFIXES), suffix or "aucune"))
    limits = replace(limits or TableLimits(),
                     max_bytes=max_bytes if max_bytes is not None else
                     (limits.max_bytes if limits else None))
    if suffix in CSV_SUFFIXES:
        df: pd.DataFrame = _read_csv(p, limits)
    elif suffix in XLSX_SUFFIXES:
        df = _read_xlsx(p, limits)
    else:
        df = _read_geo(p, suffix, layer)
    if len(df) == 0:
        raise EmptyInputError(Problem(str(p), None, None, "au moins une ligne de données",
                                      HEADER_WITHOUT_ROWS if len(df.columns) else
                                      "aucune ligne"))
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


def _read_csv(p: Path, limits: TableLimits) -> pd.DataFrame:
    raw = read_capped_bytes(p, limits, gzipped=file_suffix(p) == ".csv.gz")
    text, encoding = _decode(p, raw)
    if not text.strip():
        raise EmptyInputError(Problem(str(p), None, None, "un en-tête et des lignes de données",
                                      "seulement des blancs"))
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
                f"{m.group(1)} champs séparés par « {sep} » comme dans l'en-tête",
                f"{m.group(3)} champs")) from None
        raise InputError(Problem(str(p), None, None, "un fichier CSV bien formé", msg)) from None
    except pd.errors.EmptyDataError:
        raise EmptyInputError(Problem(str(p), None, None, "un en-tête et des lignes de données",
                                      "aucun en-tête")) from None
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["encoding"] = encoding
    df.attrs["separator"] = sep
    if encoding != "utf-8-sig":
        log.info("%s: read as %s", p, encoding)
    return df


def _read_xlsx(p: Path, limits: TableLimits) -> pd.DataFrame:
    check_xlsx(p, limits)
    try:
        df = pd.read_excel(p, sheet_name=0, dtype=object, engine="openpyxl")
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise InputError(Problem(str(p), None, None, "un classeur XLSX lisible",
                                 f"{type(exc).__name__}: {exc}")) from None
    df.columns = [str(c).strip() for c in df.columns]
    check_headers(df.columns, file=str(p))
    _check_formulas(p)
    df = df.dropna(how="all").reset_index(drop=True)
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        out[col] = _excel_cells_to_str(df[col])
    return out


_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
#: Formula cells listed in an error or a warning before « … et N autres ».
_FORMULAS_LISTED = 20


def _first_sheet_part(zf: zipfile.ZipFile) -> str | None:
    """Return the zip part of the workbook's first sheet (the one pandas reads)."""
    try:
        book = ElementTree.fromstring(zf.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return None
    first = book.find(f"{_SHEET_NS}sheets/{_SHEET_NS}sheet")
    rid = first.get(_REL_ID) if first is not None else None
    target = next((r.get("Target") for r in rels if r.get("Id") == rid), None)
    if not target:
        return None
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def xlsx_formula_cells(path: str | Path) -> list[tuple[str, str, bool]]:
    """Return the formula cells of a workbook's first sheet, streamed from its XML.

    Parameters
    ----------
    path
        An ``.xlsx`` / ``.xlsm`` file.

    Returns
    -------
    list of (str, str, bool)
        Per formula cell: its reference (``C3``), its formula (``=A3*2``, ``=…`` for a
        shared formula) and whether the file holds a value computed for it (cached by
        the spreadsheet program that saved it; a workbook written by a script has none).
    """
    found: list[tuple[str, str, bool]] = []
    try:
        with zipfile.ZipFile(path) as zf:
            part = _first_sheet_part(zf)
            if part is None or part not in zf.namelist():
                return found
            with zf.open(part) as fh:
                for _event, elem in ElementTree.iterparse(fh, events=("end",)):
                    if elem.tag == f"{_SHEET_NS}c":
                        formula = elem.find(f"{_SHEET_NS}f")
                        if formula is not None:
                            value = elem.find(f"{_SHEET_NS}v")
                            found.append((str(elem.get("r", "?")), f"={formula.text or '…'}",
                                          value is not None and bool(value.text)))
                    elif elem.tag == f"{_SHEET_NS}row":
                        elem.clear()
    except (zipfile.BadZipFile, ElementTree.ParseError, OSError):
        return found  # pandas reports the unreadable workbook
    return found


def _check_formulas(p: Path) -> None:
    """Refuse formula cells without a computed value; say when cached values are read.

    Raises
    ------
    InputError
        One problem per formula cell whose value the file does not hold (it would read as
        an empty cell): the cell's reference and formula.
    """
    cells = xlsx_formula_cells(p)
    if not cells:
        return
    blind = [(ref, formula) for ref, formula, cached in cells if not cached]
    if blind:
        problems = [Problem(str(p), None, None,
                            "une valeur, pas une formule sans valeur calculée (ouvrez et "
                            "enregistrez le classeur dans Excel ou LibreOffice pour calculer "
                            "ses formules, ou collez-les en valeurs)",
                            f"cellule {ref} : {formula}")
                    for ref, formula in blind[:_FORMULAS_LISTED]]
        if len(blind) > _FORMULAS_LISTED:
            problems.append(Problem(str(p), None, None, "des valeurs, pas des formules",
                                    f"{len(blind) - _FORMULAS_LISTED} autres cellules à "
                                    "formule sans valeur calculée"))
        raise InputError(problems)
    refs = ", ".join(ref for ref, _, _ in cells[:_FORMULAS_LISTED])
    more = f" … et {len(cells) - _FORMULAS_LISTED} autres" if len(cells) > _FORMULAS_LISTED \
        else ""
    log.warning("%s : %d cellule(s) à formule lue(s) par la valeur calculée enregistrée "
                "dans le fichier (%s%s)", p, len(cells), refs, more)


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
        raise InputError(Problem(str(p), None, None, "un GeoPackage lisible",
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
                raise EmptyInputError(Problem(str(p), None, None, "au moins une couche",
                                              "aucune couche"))
            if len(layers) > 1:
                raise InputError(Problem(
                    str(p), None, "layer",
                    "le nom de la couche à lire (option --layer, paramètre layer=) : ce "
                    f"GeoPackage a {len(layers)} couches", ", ".join(layers)))
            layer = layers[0]
        elif layer not in layers:
            raise InputError(Problem(str(p), None, "layer",
                                     "une des couches " + ", ".join(layers), layer))
        kwargs["layer"] = layer
    try:
        gdf = gpd.read_file(p, engine="pyogrio", **kwargs)
    except Exception as exc:  # pyogrio/GDAL errors have no common base class
        raise InputError(Problem(str(p), None, None, f"un fichier {suffix} lisible",
                                 f"{type(exc).__name__}: {exc}")) from None
    if not isinstance(gdf, gpd.GeoDataFrame) or "geometry" not in gdf.columns:
        return pd.DataFrame(gdf)
    out: pd.DataFrame = to_input_crs(gdf, file=str(p), rfc7946=suffix in GEOJSON_SUFFIXES)
    return out


def _read_parquet(p: Path) -> pd.DataFrame:
    try:
        meta = pq.read_schema(p).metadata or {}
    except Exception as exc:  # pyarrow.ArrowInvalid and OSError
        raise InputError(Problem(str(p), None, None, "un fichier Parquet lisible",
                                 f"{type(exc).__name__}: {exc}")) from None
    if b"geo" not in meta:
        return pd.read_parquet(p)
    try:
        gdf = gpd.read_parquet(p)
    except Exception as exc:  # invalid GeoParquet metadata
        raise InputError(Problem(str(p), None, None, "un fichier GeoParquet lisible",
                                 f"{type(exc).__name__}: {exc}")) from None
    geo: pd.DataFrame = to_input_crs(gdf, file=str(p))
    return geo


# --- helpers shared by the loaders ---------------------------------------------------------


def normalise_name(name: str) -> str:
    """Column-name key: lower case, no accents, runs of non-alphanumerics → ``_``."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


_MANGLED = re.compile(r"^(?P<base>.+)\.(?P<n>\d+)$")


def check_headers(columns: Iterable[object], *, file: str) -> None:
    """Refuse a header that appears twice in a table.

    Headers are compared after trimming blanks; pandas renames a repeated header ``x`` to
    ``x.1`` while reading, so a pair ``x`` / ``x.1`` is a repeated header too.

    Parameters
    ----------
    columns
        The headers as read.
    file
        File name for the messages.

    Raises
    ------
    InputError
        One problem per repeated header, naming both.
    """
    names = [str(c).strip() for c in columns]
    present = set(names)
    seen: set[str] = set()
    problems: list[Problem] = []
    for name in names:
        if name in seen:
            problems.append(Problem(file, None, name, "des en-têtes de colonnes distincts",
                                    f"l'en-tête '{name}' répété"))
        seen.add(name)
        mangled = _MANGLED.match(name)
        if mangled and mangled.group("base") in present:
            base = mangled.group("base")
            problems.append(Problem(file, None, base, "des en-têtes de colonnes distincts",
                                    f"'{base}' et '{name}' (l'en-tête '{base}' répété)"))
    if problems:
        raise InputError(problems)


def rename_aliases(df: pd.DataFrame, aliases: Mapping[str, Sequence[str]], *,
                   file: str) -> tuple[pd.DataFrame, list[str]]:
    """Rename columns found under a documented alias to their contract name.

    Parameters
    ----------
    df
        The table as read.
    aliases
        Contract name → accepted names (compared case- and accent-insensitively; the
        contract name itself is always accepted).
    file
        File name for the messages.

    Returns
    -------
    (DataFrame, list of str)
        The renamed table, and one note per renamed column.

    Raises
    ------
    InputError
        A header is repeated (:func:`check_headers`), or two columns of the file map to
        the same contract column (e.g. ``lon`` and ``longitude``, or ``Lon`` and
        ``lon``): both are named, never one dropped silently.
    """
    check_headers(df.columns, file=file)
    groups: dict[str, list[str]] = {}
    for col in df.columns:
        groups.setdefault(normalise_name(col), []).append(col)
    rename: dict[str, str] = {}
    claimed: set[str] = set()
    notes: list[str] = []
    problems: list[Problem] = []
    for target, names in aliases.items():
        keys = dict.fromkeys(normalise_name(n) for n in (target, *names))
        found = [c for k in keys for c in groups.get(k, []) if c not in claimed]
        if not found:
            continue
        if len(found) > 1:
            problems.append(Problem(file, None, found[0],
                                    f"une seule colonne pour « {target} »",
                                    "colonnes " + ", ".join(map(str, found))))
            continue
        chosen = found[0]
        claimed.add(chosen)
        if chosen != target:
            rename[chosen] = target
            notes.append(f"colonne « {chosen} » lue comme « {target} »")
    if problems:
        raise InputError(problems)
    out = df.rename(columns=rename)
    out.attrs["aliases"] = {dst: src for src, dst in rename.items()}
    return out, notes


def to_number(s: pd.Series) -> pd.Series:
    """Parse numbers written with ``.`` or a French decimal comma; bad cells become NaN.

    Non-finite values (``inf``, ``-inf``, ``1e999``) are bad cells too: the loaders then
    report them as not a number, naming the cell.
    """
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        number = s.astype("float64")
    else:
        text = s.astype("str").str.strip().str.replace("\u00a0", "", regex=False)
        text = text.str.replace(" ", "", regex=False).str.replace(",", ".", regex=False)
        number = pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")
    # ``inf``, ``-inf`` (and ``nan`` as text) are not numbers of any input: bad cells
    return number.where(np.isfinite(number.to_numpy(dtype="float64", na_value=np.nan)))


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
