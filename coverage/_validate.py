"""Shared validation helpers: required columns, row-level problem lists, duplicate keys.

The lowest layer of the input checks: every loader and stage that needs "these columns must
be there" or "collect the bad rows, then raise one error naming each" uses these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from coverage.errors import DuplicateIdError, InputError, MissingColumnError, Problem

__all__ = [
    "MAX_LISTED_PROBLEMS",
    "ProblemList",
    "duplicate_rows",
    "empty_remapped",
    "require_columns",
]

#: Most problems listed per (column, kind) before a "… and N more rows" line.
MAX_LISTED_PROBLEMS = 50

_EMPTY_REMAPPED_COLUMNS = ["row", "column", "code_ancien", "code_actuel"]


def empty_remapped() -> pd.DataFrame:
    """An empty ``remapped`` table (row, column, code_ancien, code_actuel)."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str")
                         for c in _EMPTY_REMAPPED_COLUMNS})


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, file: str,
                    hint: Mapping[str, str] | None = None) -> None:
    """Raise :class:`MissingColumnError` naming every absent column."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        hint = hint or {}
        raise MissingColumnError([
            Problem(file, None, c, hint.get(c, f"a column '{c}'"),
                    "columns: " + ", ".join(map(str, df.columns))[:300])
            for c in missing
        ])


class ProblemList:
    """Collects row-level problems, then raises them together as one error."""

    def __init__(self, file: str):
        self.file = file
        self._items: list[tuple[type[InputError], Problem]] = []

    def __len__(self) -> int:
        return len(self._items)

    def extend(self, other: ProblemList) -> None:
        """Add every problem of ``other``."""
        self._items.extend(other._items)

    def add(self, problem: Problem, kind: type[InputError] = InputError) -> None:
        """Add one problem."""
        self._items.append((kind, problem))

    def add_rows(self, mask: pd.Series | np.ndarray, column: str | None, expected: str,
                 found: pd.Series | Sequence[object] | None = None,
                 kind: type[InputError] = InputError) -> None:
        """Add one problem per True row of ``mask`` (row numbers are 1-based positions).

        At most :data:`MAX_LISTED_PROBLEMS` rows are listed, then one summary line.
        """
        m = np.asarray(mask, dtype=bool)
        positions = np.flatnonzero(m)
        if positions.size == 0:
            return
        values = None if found is None else np.asarray(found, dtype=object)
        for pos in positions[:MAX_LISTED_PROBLEMS]:
            value = None
            if values is not None:
                v = values[pos]
                value = "" if v is None or (isinstance(v, float) and np.isnan(v)) or \
                    v is pd.NA else str(v)[:80]
            self.add(Problem(self.file, int(pos) + 1, column, expected, value), kind)
        extra = positions.size - MAX_LISTED_PROBLEMS
        if extra > 0:
            self.add(Problem(self.file, None, column, expected,
                             f"{extra} more rows like these"), kind)

    def raise_if_any(self) -> None:
        """Raise the collected problems (the common subclass when they share one)."""
        if not self._items:
            return
        kinds = {k for k, _ in self._items}
        cls = kinds.pop() if len(kinds) == 1 else InputError
        problems = [p for _, p in self._items]
        problems.sort(key=lambda p: np.inf if p.row is None else p.row)
        raise cls(problems)


def duplicate_rows(values: pd.Series, *, file: str, column: str,
                   problems: ProblemList | None = None) -> None:
    """Report the rows of repeated non-empty values as :class:`DuplicateIdError`.

    Raised at once, or added to ``problems`` when given.
    """
    dup = values.notna() & values.duplicated(keep=False)
    if not dup.any():
        return
    collect = problems is not None
    problems = problems if problems is not None else ProblemList(file)
    positions = pd.Series(np.arange(len(values)), index=values.index)
    first = positions.groupby(values.to_numpy(), dropna=True).transform("min")
    found = [f"{v} (first seen row {int(f) + 1})" if d and f != p else (str(v) if d else None)
             for v, f, p, d in zip(values, first, positions, dup, strict=True)]
    problems.add_rows(dup, column, "a unique value", found, kind=DuplicateIdError)
    if not collect:
        problems.raise_if_any()
