"""Statistical secrecy: mask small counts, and the figures derived from them, in public outputs.

Waiting-list figures concern few families in a département. In a public output every count
(families, measures, requests, interviews, mediations) strictly below a threshold
(``settings.secrecy_threshold``, default 5 families), zero included, is masked, together
with the cells of the same row derived from it (rate per 100,000 inhabitants, mean waiting
time in days, changes on the previous year). Missing values stay missing.

Two ways of marking a masked cell, one per kind of file:

* text (CSV, XLSX): the count becomes :func:`secrecy_marker` (``"< 5"``) and a derived
  cell :data:`SECRET_MARKER` (``"secret"``: a masked delay must not read as "< 5 days");
* null (Parquet, tables handed on to pandas code): the cell becomes null and a boolean
  column ``<colonne>_masque`` is set to true on the masked rows.

The rule of the waiting-list table itself (changes that would reveal a masked previous
year, services with a list) is :func:`coverage.waiting.mask_public`, built on
:func:`mask_small_counts`. No secondary suppression is done here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from coverage.schemas import Contract

__all__ = [
    "SECRET_COUNTS",
    "SECRET_MARKER",
    "mask_cells",
    "mask_small_counts",
    "secrecy_marker",
    "secret_columns",
]

#: Text of a masked cell derived from a small count (rate, delay, change) in CSV and XLSX.
SECRET_MARKER = "secret"

#: Waiting-list count columns subject to secrecy, and the columns derived from each.
#: Other integer columns whose unit is a number of families are treated as counts too.
SECRET_COUNTS: Mapping[str, tuple[str, ...]] = {
    "familles_en_attente": ("delai_moyen_jours",),
    "familles_accueillies": (),
    "familles_recues": (),
    "mediations": (),
    "mesures_judiciaires": (),
    "demandes_spontanees": (),
    "entretiens_information": (),
    "mediations_engagees": (),
    "mediations_terminees": (),
}
#: Units (of a contract's integer field) that make a column a count subject to secrecy.
_COUNT_UNITS = ("familles", "mesures", "demandes", "entretiens", "médiations", "mediations")


def secrecy_marker(threshold: int) -> str:
    """Return the text of a masked count in CSV and XLSX exports (``"< 5"`` by default).

    Parameters
    ----------
    threshold
        Secrecy threshold, families (counts strictly below it are masked).

    Returns
    -------
    str
        ``"< {threshold}"``.
    """
    return f"< {threshold}"


def mask_small_counts(
    df: pd.DataFrame,
    columns: Sequence[str],
    threshold: int,
    marker: str | None,
    *,
    derived: Mapping[str, Sequence[str]] | None = None,
    derived_marker: str | None = None,
) -> pd.DataFrame:
    """Mask the cells of small counts (statistical secrecy).

    Parameters
    ----------
    df
        Table to mask (not modified).
    columns
        Count columns to check (families, measures…). Absent columns are ignored.
    threshold
        Counts strictly below it (zero included) are masked; missing values stay missing.
    marker
        Text put in the masked cells (CSV/XLSX, e.g. ``"< 5"``); the column becomes text.
        ``None``: the cells become null and a boolean column ``<colonne>_masque`` is added
        after each checked column (Parquet).
    derived
        For a count column, the columns of the same row computed from it (rate, change,
        mean delay): they are masked on the same rows. Absent columns are ignored.
    derived_marker
        Text put in the masked derived cells (default: ``marker``); the exports use
        :data:`SECRET_MARKER` so that a masked delay does not read as "< 5 days".

    Returns
    -------
    pandas.DataFrame
        A copy with the masked cells replaced.
    """
    derived = derived or {}
    to_mask: dict[str, pd.Series] = {}
    for col in columns:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        small = (values < threshold).fillna(False).astype(bool)
        to_mask[col] = to_mask.get(col, pd.Series(False, index=df.index)) | small
        for dep in derived.get(col, ()):
            if dep in df.columns:
                to_mask[dep] = to_mask.get(dep, pd.Series(False, index=df.index)) | small
    return mask_cells(df, to_mask, marker, counts=columns, derived_marker=derived_marker)


def _null_and_flag(out: pd.DataFrame, col: str, mask: np.ndarray) -> None:
    """Null the masked cells of ``col`` and set (or insert after it) ``<col>_masque``."""
    s = out[col]
    if pd.api.types.is_integer_dtype(s.dtype):
        s = s.astype("Int64")
    elif pd.api.types.is_bool_dtype(s.dtype):
        s = s.astype("boolean")
    out[col] = s.mask(mask)
    flag = f"{col}_masque"
    if flag in out.columns:
        out[flag] = out[flag].astype(bool) | mask
    else:
        pos = out.columns.get_loc(col)
        assert isinstance(pos, int)
        out.insert(pos + 1, flag, mask)


def _as_text(values: list[object], mask: np.ndarray, text: str, *, is_count: bool
             ) -> list[object]:
    """Return the cells of a column once text: ``text`` where masked, missing as None."""
    out: list[object] = []
    for v, small in zip(values, mask.tolist(), strict=True):
        if small:
            out.append(text)
        elif v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif is_count and isinstance(v, float) and v.is_integer():
            out.append(int(v))  # counts: 12.0 → 12 once the column is text
        else:
            out.append(v)
    return out


def mask_cells(
    df: pd.DataFrame,
    cells: Mapping[str, pd.Series],
    marker: str | None,
    *,
    counts: Sequence[str] = (),
    derived_marker: str | None = None,
) -> pd.DataFrame:
    """Replace chosen cells by the secrecy marker (the rows are given per column).

    Parameters
    ----------
    df
        Table (not modified).
    cells
        Column → boolean Series aligned on ``df``: True where the cell is masked. Every
        column given is treated as subject to secrecy, even with no True.
    marker
        Text marker (the column becomes text), or ``None`` for null plus a boolean
        ``<colonne>_masque`` column inserted after it.
    counts
        Count columns: once text, their whole values are written without decimals.
    derived_marker
        Text marker of the columns that are not in ``counts`` (default: ``marker``).

    Returns
    -------
    pandas.DataFrame
        The masked copy.
    """
    out = df.copy()
    for col, rows in cells.items():
        if col not in out.columns:
            continue
        mask = rows.reindex(out.index, fill_value=False).fillna(False).to_numpy(dtype=bool)
        if marker is None:
            _null_and_flag(out, col, mask)
            continue
        is_count = col in counts
        text = marker if is_count or derived_marker is None else derived_marker
        out[col] = pd.Series(_as_text(out[col].tolist(), mask, text, is_count=is_count),
                             index=out.index, dtype=object)
    return out


def secret_columns(
    df: pd.DataFrame, contract: Contract | None = None
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Return the count columns of a waiting-list table and the columns derived from each.

    A count column is one of :data:`SECRET_COUNTS`, or an integer field of the contract
    whose unit is a number of families, measures or interviews. Its derived columns are
    those listed in :data:`SECRET_COUNTS` and every column whose name starts with
    ``<count>_`` (``familles_en_attente_pour_100k``, ``familles_en_attente_variation``…),
    except the ``<count>_masque`` flags.

    Parameters
    ----------
    df
        The table.
    contract
        Its contract, whose integer fields counted in families, measures… are counts too.

    Returns
    -------
    tuple
        The count columns present in ``df``, and for each the derived columns present.
    """
    counts = [c for c in SECRET_COUNTS if c in df.columns]
    if contract is not None:
        for f in contract.fields:
            if (f.type == "integer" and f.name in df.columns and f.name not in counts
                    and any(u in f.unit.lower() for u in _COUNT_UNITS)):
                counts.append(f.name)
    derived: dict[str, tuple[str, ...]] = {}
    for c in counts:
        deps = [d for d in SECRET_COUNTS.get(c, ()) if d in df.columns]
        deps += [str(d) for d in df.columns
                 if str(d).startswith(f"{c}_") and d not in deps
                 and not str(d).endswith("_masque")]
        derived[c] = tuple(deps)
    return counts, derived
