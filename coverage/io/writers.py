"""Writers of the run outputs: contract tables (CSV + Parquet + Table Schema) and GeoParquet.

Every write goes through :mod:`coverage.files` (temporary file, then rename), so a run
killed mid-write leaves the previous file or none, never half a file.

CSV files are UTF-8 without BOM, ``,``-separated, ``.``-decimal, missing values written as
empty cells (the Table Schema's ``missingValues`` is ``[""]``). The French-Excel variant
(``;`` and BOM) is an export, see :mod:`coverage.export`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import schemas as schemas_module
from coverage._validate import require_crs
from coverage.errors import OutputError
from coverage.files import atomic_path, write_text_atomic
from coverage.schemas import Contract, table_schema
from coverage.settings import CRS_INPUT_OUTPUT

__all__ = [
    "PreviousTable",
    "conform_to_contract",
    "csv_text",
    "write_geoparquet",
    "write_table",
    "writer_version",
]


log = logging.getLogger(__name__)


def _as_str(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.StringDtype) or (
        s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
    ):  # text already (missing values aside): the same values, without a Python loop
        return s.astype("str")
    out = s.astype(object)
    out = out.where(s.notna(), None)
    return pd.Series(
        [None if v is None else str(v) for v in out], index=s.index, dtype="str"
    )


def _as_integer(s: pd.Series, name: str, contract: str) -> pd.Series:
    if s.dtype == np.int64:  # already whole numbers, none missing: nothing to check
        return s.astype("int64")
    num = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & num.isna()
    finite = num.dropna()
    if bad.any() or (len(finite) and not np.all(np.isfinite(finite.to_numpy(dtype=float)))):
        found = s[bad].head(3).tolist()
        msg = f"table « {contract} », colonne « {name} » : attendu des entiers, trouvé {found}"
        raise OutputError(msg)
    if len(finite) and not np.all(np.mod(finite.to_numpy(dtype=float), 1) == 0):
        msg = f"table « {contract} », colonne « {name} » : attendu des nombres entiers"
        raise OutputError(msg)
    if num.isna().any():
        return num.astype("Int64")
    return num.astype("int64")


def _as_boolean(s: pd.Series) -> pd.Series:
    if s.isna().any():
        return s.astype("boolean")
    return s.astype(bool)


def conform_to_contract(df: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Select and order the contract's columns and give each its contract type.

    Parameters
    ----------
    df
        Table with at least the contract's columns (extra columns are dropped).
    contract
        Output contract (:mod:`coverage.schemas`).

    Returns
    -------
    pandas.DataFrame
        A new frame with exactly ``contract.columns``, index reset. Types: ``string`` → str
        (missing kept as NaN), ``integer``/``year`` → int64 (Int64 when a value is missing),
        ``number`` → float64 (NaN missing), ``boolean`` → bool (``boolean`` when missing).

    Raises
    ------
    OutputError
        A required contract column is absent (an absent optional one is written empty)
        or a value does not fit its type.
    """
    missing = [c for c in contract.required if c not in df.columns]
    if missing:
        msg = (f"table « {contract.name} » : colonne(s) du contrat absente(s) : "
               f"{', '.join(missing)}")
        raise OutputError(msg)
    out = {}
    for f in contract.fields:
        # an optional column absent from the table is written empty
        s = (df[f.name].reset_index(drop=True) if f.name in df.columns
             else pd.Series([None] * len(df), dtype=object))
        if f.type == "string":
            out[f.name] = _as_str(s)
        elif f.type in ("integer", "year"):
            out[f.name] = _as_integer(s, f.name, contract.name)
        elif f.type == "number":
            out[f.name] = pd.to_numeric(s, errors="raise").astype("float64")
        elif f.type == "boolean":
            out[f.name] = _as_boolean(s)
        else:  # date, geometry: written as text in tables
            out[f.name] = _as_str(s)
    return pd.DataFrame(out, columns=contract.columns)


@dataclass(frozen=True)
class PreviousTable:
    """The same table as an earlier writer wrote it: its rows and the bytes of its CSV.

    :func:`write_table` copies the CSV line of every row equal to the row at the same
    place in ``table`` (same values, floats compared bit for bit) instead of formatting it
    again: the CSV is the same, byte for byte, as one written whole. The caller guarantees
    that ``csv`` was written from ``table`` by this writer (:func:`writer_version`).

    Attributes
    ----------
    table
        The earlier table, conformed to its contract (as read back from its Parquet file).
    csv
        The bytes of its CSV file.
    """

    table: pd.DataFrame
    csv: bytes


@functools.cache
def writer_version() -> str:
    """Return a digest of what shapes the bytes this module writes.

    The source of this module and of :mod:`coverage.schemas`, and the versions of numpy,
    pandas and pyarrow: a :class:`PreviousTable` is only valid under the same digest.
    """
    h = hashlib.sha256()
    for module in (sys.modules[__name__], schemas_module):
        h.update(Path(str(module.__file__)).read_bytes())
    for pkg in ("numpy", "pandas", "pyarrow"):
        h.update(f"{pkg}={importlib.metadata.version(pkg)}".encode())
    return h.hexdigest()


def write_table(df: pd.DataFrame, contract: Contract, folder: str | Path, *,
                previous: PreviousTable | None = None) -> list[Path]:
    """Write one output table as CSV, Parquet and a Frictionless Table Schema JSON.

    Parameters
    ----------
    df
        The table; must hold the contract's columns (extra columns are dropped, columns are
        put in contract order and given the contract's types, see
        :func:`conform_to_contract`).
    contract
        Output contract; its ``name`` gives the file names.
    folder
        Destination folder (created if needed).
    previous
        The table as written earlier (:class:`PreviousTable`), or None: the CSV lines of
        the rows it shares with ``df`` are copied from it instead of formatted again (the
        bytes are those of a whole write).

    Returns
    -------
    list of pathlib.Path
        ``<folder>/<name>.csv``, ``<name>.parquet``, ``<name>.schema.json``.

    Raises
    ------
    OutputError
        The table does not fit its contract.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = conform_to_contract(df, contract)
    csv_path = folder / f"{contract.name}.csv"
    parquet_path = folder / f"{contract.name}.parquet"
    schema_path = folder / f"{contract.name}.schema.json"
    spliced = _spliced_csv(table, previous) if previous is not None else None
    text = csv_text(table) if spliced is None else None
    with atomic_path(csv_path) as tmp:
        if spliced is not None:
            Path(tmp).write_bytes(spliced)
        elif text is None:  # a column of another kind, or a carriage return in a text
            table.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
    with atomic_path(parquet_path) as tmp:
        table.to_parquet(tmp, index=False)
    write_text_atomic(
        schema_path, json.dumps(table_schema(contract), ensure_ascii=False, indent=2) + "\n"
    )
    log.debug("wrote %s (%d rows)", contract.name, len(table))
    return [csv_path, parquet_path, schema_path]


#: pandas' nullable integer and boolean dtypes (NA written as an empty field).
_NULLABLE_DTYPES = (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype, pd.UInt8Dtype,
                    pd.UInt16Dtype, pd.UInt32Dtype, pd.UInt64Dtype, pd.BooleanDtype)


def _csv_field(text: str) -> str:
    """Return ``text`` as a CSV field: quoted (quotes doubled) when it holds a special char."""
    if "," in text or '"' in text or "\n" in text:  # what QUOTE_MINIMAL quotes
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_fields(column: pd.Series) -> np.ndarray | None:
    """Return the CSV fields of a column as ``DataFrame.to_csv`` writes them, or None.

    Each distinct value is formatted once: float64 as numpy's ``astype(str)`` writes it (pandas'
    formatting), integers and booleans (numpy or nullable) by ``str``, text quoted as the
    csv module does (``QUOTE_MINIMAL``); missing values are empty. None for any other
    dtype and for text holding a carriage return (left to pandas).
    """
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype):
        codes, uniques = pd.factorize(column)
        values = uniques.to_numpy(dtype=object)
        if any("\r" in v for v in values):
            return None
        text = [_csv_field(v) for v in values]
    elif dtype == np.float64:  # by bit pattern: -0.0 is written apart from 0.0
        values = np.ascontiguousarray(column.to_numpy())
        codes, bits = pd.factorize(values.view(np.int64))
        codes[np.isnan(values)] = -1
        # Python's repr: the shortest round-trip digits, the very strings of numpy's
        # astype(str) (same exponent thresholds), at about half its cost
        text = list(map(repr, bits.view(np.float64).tolist()))
    elif dtype.kind in "iub" and isinstance(dtype, (np.dtype, *_NULLABLE_DTYPES)):
        codes, uniques = pd.factorize(column)
        text = [str(v) for v in uniques.tolist()]
    else:
        return None
    # code -1 (a missing value) takes the last entry: the empty field
    return np.array([*text, ""], dtype=object)[codes]


def csv_text(table: pd.DataFrame) -> str | None:
    r"""Return the CSV text of ``table`` byte for byte as ``to_csv`` writes it, or None.

    ``table.to_csv(index=False, lineterminator="\n")`` (``,``, ``.`` decimal, missing
    values empty, quotes only where needed), without its per-cell Python calls. None when
    a column is not text, float64, integer or boolean, when text holds a carriage return,
    or when the table has fewer than two columns: the caller then uses ``to_csv``.

    Parameters
    ----------
    table
        A table conformed to its contract (:func:`conform_to_contract`).

    Returns
    -------
    str or None
        The CSV text (header, then one line per row, each ended by ``\n``), or None.
    """
    if table.shape[1] < 2:  # a lone empty field would be written '""'
        return None
    columns = []
    for name in table.columns:
        fields = _csv_fields(table[name])
        if fields is None or "\r" in str(name):
            return None
        columns.append(fields)
    lines = [",".join(_csv_field(str(name)) for name in table.columns)]
    lines.extend(map(",".join, zip(*columns, strict=True)))
    return "\n".join(lines) + "\n"


def _kind(dtype: object) -> str:
    """Return the family of a column's dtype whose values format alike in CSV."""
    if isinstance(dtype, pd.StringDtype):
        return "text"
    if dtype == np.float64:
        return "float"
    if isinstance(dtype, pd.BooleanDtype) or dtype == np.bool_:
        return "bool"
    kind = getattr(dtype, "kind", "")
    if isinstance(dtype, (np.dtype, *_NULLABLE_DTYPES)) and kind in ("i", "u"):
        return "int"
    return "other"


def _equal_rows(new: pd.DataFrame, old: pd.DataFrame) -> np.ndarray:
    """Return, per row, True when every value of ``new`` equals ``old``'s (same length).

    Floats are compared bit for bit (``-0.0`` is written apart from ``0.0``), missing
    values equal missing values.
    """
    same = np.ones(len(new), dtype=bool)
    for col in new.columns:
        a, b = new[col], old[col]
        if _kind(a.dtype) == "float":
            x = np.ascontiguousarray(a.to_numpy(dtype=np.float64))
            y = np.ascontiguousarray(b.to_numpy(dtype=np.float64))
            nan_x, nan_y = np.isnan(x), np.isnan(y)
            same &= (nan_x & nan_y) | (~nan_x & ~nan_y & (x.view(np.int64) == y.view(np.int64)))
        else:
            na_a, na_b = a.isna().to_numpy(), b.isna().to_numpy()
            eq = (a.reset_index(drop=True) == b.reset_index(drop=True))
            same &= (na_a & na_b) | (~na_a & ~na_b & eq.fillna(False).to_numpy(dtype=bool))
    return same


def _spliced_csv(table: pd.DataFrame, previous: PreviousTable) -> bytes | None:
    r"""Return the CSV bytes of ``table``, reusing the lines of ``previous``, or None.

    The rows are compared place by place: None (the caller writes the table whole) when
    the two tables differ in length, columns or dtype families, when a line of the
    previous CSV does not map to one row (a line break inside a field), or when
    :func:`csv_text` cannot write the table (a column of another kind, a carriage return
    in a text).
    """
    old = previous.table
    if len(old) != len(table) or list(old.columns) != list(table.columns) \
            or table.shape[1] < 2 or any(
            _kind(table[c].dtype) != _kind(old[c].dtype) or _kind(table[c].dtype) == "other"
            for c in table.columns):
        return None
    for col in table.columns:  # what csv_text leaves to to_csv: a carriage return
        if "\r" in str(col) or (_kind(table[col].dtype) == "text"
                                 and table[col].str.contains("\r", regex=False).any()):
            return None
    lines = previous.csv.split(b"\n")
    header = ",".join(_csv_field(str(name)) for name in table.columns).encode("utf-8")
    if len(lines) != len(old) + 2 or lines[-1] != b"" or lines[0] != header:
        return None
    todo = np.flatnonzero(~_equal_rows(table, old))
    out = lines[:-1]
    if len(todo):
        text = csv_text(table.iloc[todo].reset_index(drop=True))
        if text is None:
            return None
        fresh = text.encode("utf-8").split(b"\n")
        if len(fresh) != len(todo) + 2:  # a line break inside a field
            return None
        for i, line in zip(todo.tolist(), fresh[1:-1], strict=True):
            out[i + 1] = line
    out.append(b"")
    return b"\n".join(out)


def write_geoparquet(gdf: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write a GeoDataFrame as GeoParquet in EPSG:4326, atomically.

    Parameters
    ----------
    gdf
        Frame with a CRS; it is reprojected to EPSG:4326 when needed.
    path
        Target ``.parquet`` file.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    MissingCRSError
        The frame has no CRS (a :class:`~coverage.errors.CRSError`; the one CRS policy of
        :func:`coverage._validate.require_crs`).
    """
    path = Path(path)
    require_crs(gdf, file=f"{path.name} (non écrit)")
    if gdf.crs != CRS_INPUT_OUTPUT:
        gdf = gdf.to_crs(CRS_INPUT_OUTPUT)
    with atomic_path(path) as tmp:
        gdf.reset_index(drop=True).to_parquet(tmp, index=False)
    return path
