"""Commune-code harmonisation: spreadsheet-mangled and older COG codes → current codes.

Codes are first normalised (blanks removed, upper case, a spreadsheet's ``1001`` or
``1001.0`` back to ``01001``), then compared with the embedded COG 2026 table
(:mod:`coverage.io.national`). A current code always wins; an older or subordinate code
(commune déléguée / associée, municipal arrondissement) is mapped through the passage table
with a warning listing the rows; anything else is an :class:`~coverage.errors.UnknownCodeError`
listing the rows. Codes starting with ``Z`` belong to the fictional demo territory
(:func:`coverage.settings.is_fictional_code`) and are accepted only in a wholly fictional
data set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from coverage.errors import UnknownCodeError
from coverage.io.national import is_current_code, passage_codes
from coverage.io.tables import ProblemList, empty_remapped
from coverage.settings import FICTIONAL_DEP_PREFIX

log = logging.getLogger(__name__)

#: Remapped rows listed in a warning before "… and N more".
MAX_LISTED_REMAPS = 30

_CODE_RE = r"^(?:\d{5}|2[AB]\d{3})$"
_FICTIONAL_RE = rf"^{FICTIONAL_DEP_PREFIX}[A-Z0-9]{{4}}$"


@dataclass
class Harmonised:
    """Result of :func:`harmonise_codes`.

    Attributes
    ----------
    codes
        Current codes, same index as the input.
    remapped
        One row per mapped code: ``row`` (1-based), ``column``, ``code_ancien``,
        ``code_actuel``.
    warnings
        Human-readable lines (empty when nothing was mapped).
    """

    codes: pd.Series
    remapped: pd.DataFrame = field(default_factory=empty_remapped)
    warnings: list[str] = field(default_factory=list)


def normalise_codes(codes: pd.Series) -> pd.Series:
    """Commune codes as 5-character upper-case strings.

    Strips blanks and a trailing ``.0`` (a number that went through a spreadsheet), upper
    cases ``2a``/``2b``, and left-pads 4-digit codes with a zero (``1001`` → ``01001``).
    Missing values stay missing; other malformed codes are returned unchanged for the
    caller to report.
    """
    s = codes.astype("str").str.strip().str.upper().str.replace(r"\.0+$", "", regex=True)
    s = s.where(~s.str.fullmatch(r"\d{4}"), "0" + s)
    s = s.where(~s.str.fullmatch(r"2[AB]\d{2}"), s)  # 4-char Corsican codes are not padded
    return s.where(codes.notna() & (s != ""))


def normalise_dep_codes(codes: pd.Series) -> pd.Series:
    """Département codes as strings: ``1`` → ``01``, ``2a`` → ``2A``, ``971`` kept."""
    s = codes.astype("str").str.strip().str.upper().str.replace(r"\.0+$", "", regex=True)
    s = s.where(~s.str.fullmatch(r"\d"), "0" + s)
    return s.where(codes.notna() & (s != ""))


def dep_of_code(codes: pd.Series) -> pd.Series:
    """Département code of each commune code (3 characters for 97x, else 2)."""
    s = codes.astype("str")
    return s.str[:2].where(~s.str.startswith("97"), s.str[:3]).where(codes.notna())


def harmonise_codes(codes: pd.Series, *, file: str, column: str = "code_insee",
                    fictional: bool = False, problems: ProblemList | None = None) -> Harmonised:
    """Map commune codes to current COG 2026 codes.

    Parameters
    ----------
    codes
        Codes as read (any dtype); row ``i`` of the frame is reported as row ``i + 1``.
    file
        File name for the messages.
    column
        Column name for the messages.
    fictional
        The data set is the fictional demo territory: every code must then be a fictional
        ``Z…`` code, and no code is looked up in the COG.
    problems
        When given, bad codes are added to it (and are NA in the result) instead of being
        raised, so that a loader can report them with its other problems.

    Returns
    -------
    Harmonised
        Current codes, the remapped rows and a warning listing them.

    Raises
    ------
    UnknownCodeError
        Missing, malformed, unknown or ambiguous codes, and fictional codes in a real data
        set (or real codes in the fictional one), one problem per row (unless ``problems``
        is given).
    """
    norm = normalise_codes(codes)
    external = problems
    collect = external is not None
    own = ProblemList(file)
    problems = own
    missing = norm.isna()
    problems.add_rows(missing, column, "a commune code (5 characters)", codes,
                      kind=UnknownCodeError)
    if fictional:
        bad = ~missing & ~norm.str.fullmatch(_FICTIONAL_RE).fillna(False)
        problems.add_rows(bad, column, "a fictional demo code (Z + 4 characters) like the "
                          "rest of this fictional data set", codes, kind=UnknownCodeError)
        return _finish(Harmonised(norm.where(~bad)), own, collect, external)

    is_current = is_current_code(norm)
    is_fict = ~missing & norm.str.startswith(FICTIONAL_DEP_PREFIX).fillna(False)
    problems.add_rows(is_fict, column,
                      "a current COG code (fictional Z… codes are accepted only in the "
                      "fictional demo data set, not mixed with real communes)", codes,
                      kind=UnknownCodeError)
    todo = ~missing & ~is_current & ~is_fict
    malformed = todo & ~norm.str.fullmatch(_CODE_RE).fillna(False)
    problems.add_rows(malformed, column,
                      "a 5-character commune code (digits, or 2A/2B + 3 digits)", codes,
                      kind=UnknownCodeError)
    todo &= ~malformed
    out = norm.copy()
    remapped = empty_remapped()
    if todo.any():
        passage = passage_codes()
        passage = passage[~passage["code_actuel_aussi"]]
        targets = passage.groupby("code_ancien")["code_actuel"].agg(
            lambda v: ",".join(sorted(set(v))))
        found = norm[todo].map(targets)
        ambiguous = found.str.contains(",", regex=False).fillna(False)
        unknown_mask = pd.Series(False, index=norm.index)
        unknown_mask[found.index[found.isna().to_numpy()]] = True
        problems.add_rows(unknown_mask, column,
                          "a current COG 2026 commune code or an older code listed in the "
                          "passage table", codes, kind=UnknownCodeError)
        amb_mask = pd.Series(False, index=norm.index)
        amb_mask[found.index[ambiguous.to_numpy()]] = True
        amb_found = norm.astype(object).copy()
        amb_found[amb_mask] = [f"{c} (old code split between {t})"
                               for c, t in zip(norm[amb_mask], found[ambiguous], strict=True)]
        problems.add_rows(amb_mask, column,
                          "an unambiguous commune code (give the current code)", amb_found,
                          kind=UnknownCodeError)
        ok = found.notna() & ~ambiguous
        idx = found.index[ok.to_numpy()]
        out[idx] = found[ok]
        positions = np.flatnonzero(norm.index.isin(idx))
        remapped = pd.DataFrame({
            "row": (positions + 1).astype("int64"),
            "column": column,
            "code_ancien": norm.iloc[positions].to_numpy(),
            "code_actuel": out.iloc[positions].to_numpy(),
        })
    unresolved = missing | is_fict | malformed
    if todo.any():
        unresolved |= unknown_mask | amb_mask
    out = out.where(~unresolved)
    warnings = []
    if len(remapped):
        listed = ", ".join(f"row {r} {a}→{b}" for r, a, b in
                           remapped[["row", "code_ancien", "code_actuel"]]
                           .head(MAX_LISTED_REMAPS).itertuples(index=False))
        more = len(remapped) - MAX_LISTED_REMAPS
        if more > 0:
            listed += f", … and {more} more"
        warnings.append(f"{file}: {len(remapped)} commune code(s) of older COG vintages in "
                        f"column '{column}' mapped to current codes: {listed}")
    return _finish(Harmonised(out, remapped, warnings), own, collect, external)


def _finish(result: Harmonised, own: ProblemList, collect: bool,
            external: ProblemList | None) -> Harmonised:
    if not collect:
        own.raise_if_any()
    elif external is not None:
        external.extend(own)
    return result
