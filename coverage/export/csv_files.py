"""CSV files of an export and their Table Schema, with the secrecy markers declared.

Two flavours: the open one (UTF-8 without BOM, ``,`` separator, ``.`` decimal, empty cell =
missing) with a Frictionless Table Schema beside it, and the French-Excel one (``;``
separator, decimal comma, UTF-8 with BOM, CRLF). A masked cell holds ``< 5`` (a count) or
``secret`` (a derived figure); the schema lists both in ``missingValues``.

Both flavours are opened in spreadsheets, so a text cell starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading single quote
(:func:`coverage.safe_text.spreadsheet_safe_frame`, the OWASP advice on CSV injection): a
commune or service named ``=cmd|' /C calc'!A0`` is written ``'=cmd|' /C calc'!A0``.
Numbers are never altered (a negative float stays ``-3.5``). The run's own tables
(``<run>/tables/*.csv``, :mod:`coverage.io.writers`) are machine-readable and stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coverage.files import atomic_path
from coverage.safe_text import spreadsheet_safe_frame
from coverage.schemas import Contract, table_schema
from coverage.secrecy import SECRET_MARKER

__all__ = ["masked_schema", "write_csv"]


def masked_schema(contract: Contract, masked: Sequence[str], marker: str,
                  threshold: int) -> dict[str, Any]:
    """Return the Table Schema of a contract whose ``masked`` columns may hold markers.

    Parameters
    ----------
    contract
        The table's contract.
    masked
        Columns subject to secrecy (may be empty: the plain schema).
    marker
        Text of a masked count (``"< 5"``).
    threshold
        Secrecy threshold, families (named in the columns' descriptions).

    Returns
    -------
    dict
        The JSON-ready schema: ``missingValues`` holds ``""``, ``marker`` and
        :data:`coverage.secrecy.SECRET_MARKER`, and each masked column's description says
        how it is masked.
    """
    schema = table_schema(contract)
    if masked:
        schema["missingValues"] = ["", marker, SECRET_MARKER]
        for f in schema["fields"]:
            if f["name"] in masked:
                f["description"] = (
                    f"{f.get('description', '')} Secret statistique : « {marker} » pour un "
                    f"effectif inférieur à {threshold}, « {SECRET_MARKER} » pour une valeur "
                    "qui en dérive (dans le Parquet : valeur nulle et colonne "
                    f"{f['name']}_masque = vrai)."
                ).strip()
    return schema


def _decimal_comma(value: Any) -> Any:
    """Return a float as text with a decimal comma; any other value unchanged."""
    if isinstance(value, float | np.floating) and not isinstance(value, bool):
        return repr(float(value)).replace(".", ",")
    return value


def write_csv(df: pd.DataFrame, path: Path, *, french: bool) -> Path:
    """Write a table as CSV (atomic write), text cells neutralised against formulas.

    Parameters
    ----------
    df
        The table, masked when the export is public.
    path
        Target ``.csv``.
    french
        French-Excel flavour (``;``, decimal comma, UTF-8 with BOM, CRLF) instead of the
        open one (``,``, ``.``, UTF-8, LF).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    df = spreadsheet_safe_frame(df)  # text only: before floats become "3,5" text
    if french:
        # text columns holding numbers (a masked column mixes "< 5" and floats) get the
        # decimal comma too; float columns get it from to_csv(decimal=",")
        for col in df.columns:
            if df[col].dtype == object:
                df[col] = pd.Series([_decimal_comma(v) for v in df[col].tolist()],
                                    index=df.index, dtype=object)
    with atomic_path(path) as tmp:
        if french:
            df.to_csv(tmp, index=False, sep=";", decimal=",", encoding="utf-8-sig",
                      lineterminator="\r\n")
        else:
            df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    return path
