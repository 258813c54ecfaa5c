"""Shared validation helpers: required columns, the CRS policy, problem lists, duplicate keys.

The lowest layer of the input checks: every loader and stage that needs "these columns must
be there", "this geographic file must declare its CRS" or "collect the bad rows, then raise
one error naming each" uses these.

The one missing-CRS policy
    A geographic input without a coordinate reference system is an error
    (:class:`~coverage.errors.MissingCRSError`) naming the file and the fix; a CRS is never
    assumed silently. The only CRS implied is GeoJSON's: a GeoJSON without a ``crs`` member
    is EPSG:4326 by RFC 7946, so its coordinates must then be degrees
    (:func:`to_input_crs` with ``rfc7946=True``). Inputs are reprojected to EPSG:4326.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.errors import (
    DuplicateIdError,
    InputError,
    MissingColumnError,
    MissingCRSError,
    Problem,
)
from coverage.settings import CRS_INPUT_OUTPUT

log = logging.getLogger(__name__)

__all__ = [
    "CRS_FIX",
    "MAX_LISTED_PROBLEMS",
    "ProblemList",
    "duplicate_rows",
    "empty_remapped",
    "require_columns",
    "require_crs",
    "to_input_crs",
]

#: Most problems listed per (column, kind) before a "… and N more rows" line.
MAX_LISTED_PROBLEMS = 50

_EMPTY_REMAPPED_COLUMNS = ["row", "column", "code_ancien", "code_actuel"]


def empty_remapped() -> pd.DataFrame:
    """Return an empty ``remapped`` table (row, column, code_ancien, code_actuel)."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str")
                         for c in _EMPTY_REMAPPED_COLUMNS})


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, file: str,
                    hint: Mapping[str, str] | None = None) -> None:
    """Raise :class:`MissingColumnError` naming every absent column."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        hint = hint or {}
        raise MissingColumnError([
            Problem(file, None, c, hint.get(c, f"une colonne « {c} »"),
                    "colonnes : " + ", ".join(map(str, df.columns))[:300])
            for c in missing
        ])


#: What to do about a geographic file without a CRS (said in every missing-CRS error).
CRS_FIX = ("donnez un SCR au fichier (fichier .prj d'un shapefile, SCR d'une couche "
           "GeoPackage, ou gdf.set_crs('EPSG:2154') puis enregistrez), ou pour un CSV "
           "lon/lat donnez les colonnes lon et lat en degrés EPSG:4326")


def require_crs(gdf: gpd.GeoDataFrame, *, file: str) -> None:
    """Raise :class:`MissingCRSError` naming ``file`` and the fix when ``gdf`` has no CRS.

    Parameters
    ----------
    gdf
        A geographic table as read or built.
    file
        Name or path of the file (or table) it comes from, for the message.

    Raises
    ------
    MissingCRSError
        ``gdf.crs`` is None (one problem on column ``geometry``, found ``"aucun SCR"``).
    """
    if gdf.crs is None:
        raise MissingCRSError(Problem(
            file, None, "geometry",
            f"un système de coordonnées déclaré (par exemple EPSG:2154 ou EPSG:4326) : {CRS_FIX}",
            "aucun SCR"))


def _check_degrees(gdf: gpd.GeoDataFrame, file: str) -> None:
    """Raise when a GeoJSON taken as EPSG:4326 (RFC 7946) holds numbers that are not degrees."""
    if gdf.geometry.isna().all():
        return
    minx, miny, maxx, maxy = gdf.total_bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise MissingCRSError(Problem(
            file, None, "geometry",
            "des degrés de longitude/latitude (un GeoJSON sans membre « crs » est en EPSG:4326, "
            "RFC 7946) ; déclarez le SCR des coordonnées projetées ou reprojetez avec to_crs()",
            f"des coordonnées jusqu'à ({maxx:.0f} ; {maxy:.0f})"))


def to_input_crs(gdf: gpd.GeoDataFrame, *, file: str,
                 rfc7946: bool = False) -> gpd.GeoDataFrame:
    """Return ``gdf`` in EPSG:4326 (the CRS of inputs and outputs), under the one CRS policy.

    Parameters
    ----------
    gdf
        A geographic table as read.
    file
        Name or path of the file, for the messages.
    rfc7946
        The file is a GeoJSON: without a declared CRS it is EPSG:4326 (RFC 7946, not a
        silent guess), and geographic coordinates must then be degrees.

    Returns
    -------
    geopandas.GeoDataFrame
        The table reprojected to EPSG:4326 (the same table when it already is).

    Raises
    ------
    MissingCRSError
        No CRS (and not a GeoJSON), or a GeoJSON whose numbers are not degrees.
    """
    if rfc7946:
        if gdf.crs is None:
            gdf = gdf.set_crs(CRS_INPUT_OUTPUT)
        if gdf.crs.is_geographic:
            _check_degrees(gdf, file)
    require_crs(gdf, file=file)
    if gdf.crs.to_epsg() != 4326:
        log.info("%s: reprojecting from %s to %s", file, gdf.crs.to_string(), CRS_INPUT_OUTPUT)
        return gdf.to_crs(CRS_INPUT_OUTPUT)
    return gdf.set_crs(CRS_INPUT_OUTPUT, allow_override=True)


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
                             f"{extra} autres lignes de ce type"), kind)

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
    found = [f"{v} (déjà vu ligne {int(f) + 1})" if d and f != p else (str(v) if d else None)
             for v, f, p, d in zip(values, first, positions, dup, strict=True)]
    problems.add_rows(dup, column, "une valeur unique", found, kind=DuplicateIdError)
    if not collect:
        problems.raise_if_any()
