"""Writers of the run outputs: contract tables (CSV + Parquet + Table Schema) and GeoParquet.

Every write goes through :mod:`coverage.files` (temporary file, then rename), so a run
killed mid-write leaves the previous file or none, never half a file.

CSV files are UTF-8 without BOM, ``,``-separated, ``.``-decimal, missing values written as
empty cells (the Table Schema's ``missingValues`` is ``[""]``). The French-Excel variant
(``;`` and BOM) is an export, see :mod:`coverage.export`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage._validate import require_crs
from coverage.errors import OutputError
from coverage.files import atomic_path, write_text_atomic
from coverage.schemas import Contract, table_schema
from coverage.settings import CRS_INPUT_OUTPUT

__all__ = [
    "conform_to_contract",
    "write_geoparquet",
    "write_table",
]


log = logging.getLogger(__name__)


def _as_str(s: pd.Series) -> pd.Series:
    out = s.astype(object)
    out = out.where(s.notna(), None)
    return pd.Series(
        [None if v is None else str(v) for v in out], index=s.index, dtype="str"
    )


def _as_integer(s: pd.Series, name: str, contract: str) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & num.isna()
    finite = num.dropna()
    if bad.any() or (len(finite) and not np.all(np.isfinite(finite.to_numpy(dtype=float)))):
        found = s[bad].head(3).tolist()
        msg = f"table {contract!r}, column {name!r}: expected integers, found {found}"
        raise OutputError(msg)
    if len(finite) and not np.all(np.mod(finite.to_numpy(dtype=float), 1) == 0):
        msg = f"table {contract!r}, column {name!r}: expected whole numbers"
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
        msg = f"table {contract.name!r} lacks the contract column(s) {missing}"
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


def write_table(df: pd.DataFrame, contract: Contract, folder: str | Path) -> list[Path]:
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
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    with atomic_path(parquet_path) as tmp:
        table.to_parquet(tmp, index=False)
    write_text_atomic(
        schema_path, json.dumps(table_schema(contract), ensure_ascii=False, indent=2) + "\n"
    )
    log.debug("wrote %s (%d rows)", contract.name, len(table))
    return [csv_path, parquet_path, schema_path]


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
    require_crs(gdf, file=f"{path.name} (not written)")
    if gdf.crs != CRS_INPUT_OUTPUT:
        gdf = gdf.to_crs(CRS_INPUT_OUTPUT)
    with atomic_path(path) as tmp:
        gdf.reset_index(drop=True).to_parquet(tmp, index=False)
    return path
