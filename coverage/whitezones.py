"""White zones and coverage tables, from the nearest-service minutes of each commune.

:func:`nearest_services` asks an engine for the ``acces_communes`` table (minutes from each
commune to its nearest service of each type); :func:`white_zones` and
:func:`coverage_tables` derive the other outputs from it.

Definitions (the output contract documents them too):

- A commune is **covered** for a service type and a threshold ``t`` (minutes) when its
  nearest service of that type is reachable within ``t`` (``minutes <= t``). It is in a
  **white zone** otherwise: ``minutes > t`` *or* unreachable (``minutes`` NaN, including a
  type with no service at all). :func:`is_white_zone` is the one implementation of this
  rule.
- The **combined view** ``aucun_service`` takes, per commune, the smallest minutes over the
  service types: a commune is white for ``aucun_service`` when *no* type is within ``t``.
- **Population-weighted percentiles** (``minutes_mediane``, ``minutes_p90``): communes are
  sorted by minutes, unreachable ones counted as ``+inf``; the q-percentile is the minutes of
  the first commune at which the cumulative population reaches ``q`` × the group's
  population (lower weighted quantile, no interpolation). It is ``inf`` when more than
  ``1 - q`` of the population has no reachable service, and NaN only when the group has no
  population.
- Levels: ``departements`` (``code_dep``), ``regions`` (``code_reg``), ``epci``
  (``code_epci``, ``nom_epci``; communes outside any EPCI get INSEE's ``ZZZZZZZZZ``),
  ``cours_appel`` (``cour_appel``, see :mod:`coverage.cog`), ``densite`` and ``france``
  (one total row per type × threshold, ``territoire`` = ``FR`` when the run holds every
  département of metropolitan France and the DROM, ``FR-PARTIEL`` otherwise, ``FICTIF``
  for the fictional demo territory; the total covers the communes of the run only, and
  ``perimetre`` names its départements, e.g. « 3 départements : 12, 15, 48 »).
- **Partial units.** A région, EPCI or cour d'appel (and the national total) whose
  départements, by the national commune table (:func:`coverage.cog.national_communes`,
  COG 2026) or the cours d'appel table, are not all in the run gets
  ``couverture_partielle`` = true and the missing codes in ``departements_manquants``
  (``","``-separated). Its figures cover its communes of the run only. A unit unknown to
  those tables (fictional, another vintage's EPCI code) is not flagged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

import geopandas as gpd
import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype

from coverage.cog import courts_for, courts_table, national_communes
from coverage.errors import CoverageError
from coverage.labels import (
    FICTIONAL_TERRITORY,
    REASON_TOO_FAR,
    REASON_UNREACHABLE,
    WHOLE_FRANCE_LABEL,
    departements_label,
)
from coverage.routing.base import Engine, empty_nearest
from coverage.routing.proxy import ProxyEngine
from coverage.schemas import (
    ACCES_COMMUNES,
    COUVERTURE_COURS_APPEL,
    COUVERTURE_DENSITE,
    COUVERTURE_DEPARTEMENTS,
    COUVERTURE_EPCI,
    COUVERTURE_FRANCE,
    COUVERTURE_REGIONS,
    ZONES_BLANCHES,
    Contract,
)
from coverage.settings import NO_SERVICE, SERVICE_TYPES, is_fictional_code

__all__ = [
    "ENGINE_SPECIFIC_COLUMNS",
    "ESTIMATED_DISTANCE_ENGINE",
    "FICTIONAL_TERRITORY",
    "FRANCE_CODE",
    "FRANCE_PARTIAL_CODE",
    "LEVELS",
    "NO_EPCI_CODE",
    "NO_EPCI_NAME",
    "RANGE_COLUMNS",
    "UNKNOWN",
    "access_table",
    "combined_access",
    "coverage_table",
    "coverage_tables",
    "distance_column",
    "is_white_zone",
    "nearest_services",
    "sorted_departements",
    "white_zones",
    "without_empty_engine_columns",
]

log = logging.getLogger(__name__)

#: INSEE's code for communes outside any EPCI à fiscalité propre (a few islands).
NO_EPCI_CODE = "ZZZZZZZZZ"
NO_EPCI_NAME = "Sans EPCI à fiscalité propre"
UNKNOWN = "inconnu"
#: Territory label of the national total row when the run holds all of France.
FRANCE_CODE = "FR"
#: Territory label of the national total row when the run holds only some départements.
FRANCE_PARTIAL_CODE = "FR-PARTIEL"

#: Engine whose km are estimates (``distance_estimee_km``) rather than road distances.
ESTIMATED_DISTANCE_ENGINE = "proxy"
#: Low–high range columns of the coverage tables (proxy; empty with the other engines).
RANGE_COLUMNS = ("communes_zone_blanche_min", "communes_zone_blanche_max",
                 "population_zone_blanche_min", "population_zone_blanche_max")

#: Coverage levels → (output contract, key columns).
LEVELS: dict[str, tuple[Contract, tuple[str, ...]]] = {
    "departements": (COUVERTURE_DEPARTEMENTS, ("code_dep",)),
    "regions": (COUVERTURE_REGIONS, ("code_reg",)),
    "epci": (COUVERTURE_EPCI, ("code_epci", "nom_epci")),
    "cours_appel": (COUVERTURE_COURS_APPEL, ("cour_appel",)),
    "densite": (COUVERTURE_DENSITE, ("densite",)),
    "france": (COUVERTURE_FRANCE, ("territoire",)),
}

_COMMUNE_COLS = ["code_insee", "nom", "code_dep", "population", "densite", "rural"]
_NEAREST_COLS = ["code_insee", "type_service", "minutes", "service_id", "distance_km", "moteur"]
#: Columns an engine may add to its nearest table (the proxy's ``nearest_with_ranges``).
_ENGINE_EXTRA_COLS = ("minutes_min", "minutes_max", "raison")
#: Columns of the access rows that the coverage tables read.
_AGGREGATED_COLS = ["code_insee", "code_dep", "population", "densite", "rural", "type_service",
                    "minutes", "minutes_min", "minutes_max"]


@overload
def is_white_zone(minutes: float, threshold_min: float) -> bool: ...
@overload
def is_white_zone(minutes: pd.Series, threshold_min: float) -> pd.Series: ...
@overload
def is_white_zone(minutes: np.ndarray, threshold_min: float) -> np.ndarray: ...
def is_white_zone(minutes: float | pd.Series | np.ndarray, threshold_min: float
                  ) -> bool | pd.Series | np.ndarray:
    """Apply THE white-zone rule: beyond the threshold, or unreachable.

    A commune is in a white zone for a threshold when its nearest service is farther than
    ``threshold_min`` minutes (``minutes > threshold_min``) **or** unreachable (``minutes``
    NaN: off the network, no path, no service of the type). It is covered when
    ``minutes <= threshold_min``. Every stage, export and page applies the rule through
    this function.

    Parameters
    ----------
    minutes
        Minutes to the nearest service (NaN or None when unreachable): a number, a numpy
        array or a pandas Series (non-numeric values count as unreachable).
    threshold_min
        Threshold, minutes.

    Returns
    -------
    bool, numpy.ndarray or pandas.Series
        True where white, of the kind of ``minutes`` (a Series keeps its index).
    """
    if isinstance(minutes, pd.Series):
        values = pd.to_numeric(minutes, errors="coerce").astype("float64")
        return ~(values <= threshold_min)
    arr = np.asarray(minutes, dtype=np.float64)
    white = ~(arr <= threshold_min)  # NaN compares False → white
    if white.ndim == 0:
        return bool(white)
    return white


def _type_order(types: Sequence[str]) -> list[str]:
    known = [t for t in SERVICE_TYPES if t in types]
    others = sorted(t for t in types if t not in SERVICE_TYPES and t != NO_SERVICE)
    tail = [NO_SERVICE] if NO_SERVICE in types else []
    return known + others + tail


def access_table(
    communes: pd.DataFrame, nearest: pd.DataFrame, *,
    service_types: Sequence[str] | None = None, moteur: str | None = None,
) -> pd.DataFrame:
    """Return the ``acces_communes`` table: nearest service of each type for every commune.

    Parameters
    ----------
    communes
        Communes (contract of :func:`coverage.io.communes.load_communes`): at least
        ``code_insee, nom, code_dep, population, densite, rural``. Geometry is ignored.
    nearest
        Output of an engine's ``nearest()``: ``code_insee, type_service, minutes`` (NaN
        unreachable), ``service_id``, ``distance_km``, ``moteur``.
    service_types
        Types that must appear for every commune; a commune × type missing from
        ``nearest`` (e.g. a type with no service at all) gets NaN minutes. Default: the
        types present in ``nearest``.
    moteur
        Engine name (``road``/``proxy``) written on rows absent from ``nearest``; default
        the single engine named in ``nearest``.

    Returns
    -------
    pandas.DataFrame
        Exactly the ``acces_communes`` contract columns, one row per commune × type, sorted
        by ``code_insee`` then type (settings order).

    Raises
    ------
    CoverageError
        A column is missing, a commune appears twice in ``communes`` or a commune × type
        twice in ``nearest``, or ``nearest`` names a commune absent from ``communes``.
    """
    miss = [c for c in _COMMUNE_COLS if c not in communes.columns]
    miss += [c for c in _NEAREST_COLS if c not in nearest.columns]
    if miss:
        msg = f"access_table: missing column(s) {miss} in the communes or nearest frames"
        raise CoverageError(msg)
    code = communes["code_insee"].astype(str)
    codes = code.to_numpy(dtype=object)
    near_codes = nearest["code_insee"].astype(str).to_numpy(dtype=object)
    index = pd.Index(codes, dtype=object)
    if not index.is_unique:
        dup = sorted(set(index[index.duplicated()]))
        msg = (f"access_table: {len(dup)} commune code(s) appear twice in the communes "
               f"table, e.g. {dup[:3]}")
        raise CoverageError(msg)
    at = index.get_indexer(pd.Index(near_codes, dtype=object))
    if (at < 0).any():
        unknown = sorted(set(near_codes[at < 0]))
        msg = (f"access_table: {len(unknown)} commune(s) of the travel times are not in the "
               f"communes table, e.g. {unknown[:3]}")
        raise CoverageError(msg)
    types = _type_order(list(service_types) if service_types is not None
                        else list(pd.unique(nearest["type_service"])))
    grid = _Grid.of(codes, nearest["type_service"], types, at)
    cols: dict[str, pd.Series] = {"code_insee": grid.communes(code)}
    cols.update({c: grid.communes(communes[c]) for c in _COMMUNE_COLS[1:]})
    cols["type_service"] = grid.type_column(types, nearest["type_service"])
    extra = [c for c in _ENGINE_EXTRA_COLS if c in nearest.columns]
    cols.update({c: grid.nearest(nearest[c]) for c in [*_NEAREST_COLS[2:], *extra]})
    if cols["moteur"].isna().any():
        moteurs = ([moteur] if moteur is not None
                   else list(pd.unique(nearest["moteur"].dropna())))
        if len(moteurs) != 1:
            msg = "access_table: cannot tell the engine of communes without travel times"
            raise CoverageError(msg)
        cols["moteur"] = cols["moteur"].fillna(moteurs[0])
    cols["minutes"] = _as_float(cols["minutes"])
    _ranges_and_reasons(cols)
    _labelled_distances(cols)
    return pd.DataFrame({c: cols[c] for c in ACCES_COMMUNES.columns})


@dataclass(frozen=True)
class _Grid:
    """Positions of the communes × types grid of :func:`access_table`.

    One row per commune × type, sorted by commune code then type (the types' order):
    ``com_rows`` gives the commune (row of the communes table) of each grid row and
    ``near_rows`` the row of the nearest table (-1 where absent).
    """

    com_rows: np.ndarray
    near_rows: np.ndarray

    @classmethod
    def of(cls, codes: np.ndarray, near_types: pd.Series, types: list[str],
           at: np.ndarray) -> _Grid:
        """Return the grid of the communes ``codes`` and ``types``.

        ``at`` holds the commune (row of ``codes``) of each nearest row. Nearest rows of
        another type are left out.

        Raises
        ------
        CoverageError
            A commune × type appears twice in the nearest table.
        """
        n, k = len(codes), len(types)
        order = np.argsort(codes, kind="stable")
        rank = np.empty(n, dtype=np.intp)
        rank[order] = np.arange(n)
        near_index = pd.Index(near_types.to_numpy(dtype=object), dtype=object)
        if len(near_index):  # one row per commune × type (among all the types of nearest)
            t_all = pd.factorize(near_index, use_na_sentinel=False)[0]
            pair = at.astype(np.int64) * (int(t_all.max()) + 1) + t_all
            if len(np.unique(pair)) != len(pair):
                first = codes[at[pd.Series(pair).duplicated().to_numpy()][0]]
                msg = f"access_table: the travel times give commune {first} × type twice"
                raise CoverageError(msg)
        t_of = pd.Index(types, dtype=object).get_indexer(near_index)
        keep = np.flatnonzero(t_of >= 0)
        near_rows = np.full(n * k, -1, dtype=np.intp)
        near_rows[rank[at[keep]] * k + t_of[keep]] = keep
        return cls(np.repeat(order, k), near_rows)

    def communes(self, column: pd.Series) -> pd.Series:
        """Return a communes column on the grid rows (same dtype)."""
        return _series(_values(column).take(self.com_rows))

    def nearest(self, column: pd.Series) -> pd.Series:
        """Return a nearest column on the grid rows, missing where absent (as a join)."""
        values = _values(column)
        if isinstance(values, np.ndarray):
            return _series(pd.api.extensions.take(values, self.near_rows, allow_fill=True))
        return _series(values.take(self.near_rows, allow_fill=True))

    def type_column(self, types: list[str], near_types: pd.Series) -> pd.Series:
        """Return the type of each grid row, of the dtype a join would give it."""
        k = len(types)
        n_rows = len(self.com_rows)
        values = np.asarray(types, dtype=object)[np.tile(np.arange(k), n_rows // k)
                                                 if k else np.arange(0)]
        return pd.Series(values, dtype=_joined_key_dtype(n_rows, near_types))


def _values(column: pd.Series) -> np.ndarray | ExtensionArray:
    """Return the numpy array or extension array of ``column``."""
    if isinstance(column.dtype, ExtensionDtype):
        return column.array
    return column.to_numpy()


def _series(values: np.ndarray | ExtensionArray) -> pd.Series:
    """Wrap ``values`` in a Series of their own dtype (no inference of ``str``)."""
    return pd.Series(values, dtype=values.dtype, copy=False)


def _as_float(column: pd.Series) -> pd.Series:
    """Return ``column`` as float64 (``pd.to_numeric``; as is when already float64)."""
    if column.dtype == np.float64:
        return column
    return pd.to_numeric(column).astype("float64")


def _joined_key_dtype(n_grid: int, key: pd.Series) -> np.dtype | ExtensionDtype:
    """Return the dtype pandas' join gives to the ``str`` type column of the grid.

    The grid's ``str`` when exactly one side is empty or both share it; otherwise
    ``object``, as ``DataFrame.merge`` does.
    """
    grid = pd.Series(["x"]).dtype
    if bool(n_grid) != bool(len(key)) or key.dtype == grid:
        return grid
    return np.dtype(object)


def _labelled_distances(cols: dict[str, pd.Series]) -> None:
    """Move the proxy's km into ``distance_estimee_km`` (an estimate, not a road distance)."""
    km = _as_float(cols["distance_km"]).to_numpy()
    estimated = (cols["moteur"] == ESTIMATED_DISTANCE_ENGINE).to_numpy()
    cols["distance_estimee_km"] = pd.Series(np.where(estimated, km, np.nan))
    cols["distance_km"] = pd.Series(np.where(estimated, np.nan, km))


def _ranges_and_reasons(cols: dict[str, pd.Series]) -> None:
    """Complete ``minutes_min``/``minutes_max`` (NaN unless the engine gave them) and ``raison``.

    ``raison`` is empty where the minutes are known; else the engine's reason (the proxy's
    « pas de service sur l'île »), else « non accessible ».
    """
    n = len(cols["minutes"])
    for col in ("minutes_min", "minutes_max"):
        cols[col] = _as_float(cols[col]) if col in cols else pd.Series(np.full(n, np.nan))
    reason = (cols["raison"].to_numpy(dtype=object) if "raison" in cols
              else np.full(n, None, dtype=object))
    reason = np.where(pd.isna(reason), REASON_UNREACHABLE, reason)
    # text with missing values, as the table reads back from its files
    reason[~np.isnan(cols["minutes"].to_numpy())] = None
    cols["raison"] = _series(reason).astype("str")


#: Columns that only one kind of engine fills (left out of exports and pages when empty).
ENGINE_SPECIFIC_COLUMNS = ("distance_km", "distance_estimee_km", "minutes_min", "minutes_max",
                           *RANGE_COLUMNS)


def without_empty_engine_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Return ``table`` without the engine-specific columns its engine left empty.

    A proxy run has no road ``distance_km``; a road run has no estimate and no ranges: the
    XLSX, PNG and app show only the columns that mean something for the run's engine.

    Parameters
    ----------
    table
        An ``acces_communes`` or coverage table.
    """
    empty = [c for c in ENGINE_SPECIFIC_COLUMNS
             if c in table.columns and len(table) and table[c].isna().all()]
    return table.drop(columns=empty)


def distance_column(access: pd.DataFrame) -> str | None:
    """Return the km column that holds values: ``distance_km`` (road) or the proxy's estimate.

    Parameters
    ----------
    access
        ``acces_communes`` rows (or a subset of its columns).

    Returns
    -------
    str or None
        ``distance_estimee_km`` when it has values, else ``distance_km`` when present, else
        None. Titles: :data:`coverage.labels.DISTANCE_COLUMN_TITLES`.
    """
    est = "distance_estimee_km"
    if est in access.columns and pd.to_numeric(access[est], errors="coerce").notna().any():
        return est
    return "distance_km" if "distance_km" in access.columns else None


def nearest_services(communes: gpd.GeoDataFrame, services: gpd.GeoDataFrame, *,
                     engine: Engine, service_types: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """Return the ``acces_communes`` table: the nearest service of each type, by ``engine``.

    One call of ``engine.nearest`` (road graph or proxy, see :mod:`coverage.routing`; the
    proxy's ``nearest_with_ranges``, which adds the low–high minutes and the island reason),
    then :func:`access_table`: every commune × type, in minutes (NaN when unreachable, off
    the network or when no service of the type exists), with ``moteur`` on every row.

    Parameters
    ----------
    communes
        Communes, EPSG:4326: ``code_insee, nom, code_dep, population, densite, rural`` and
        the representative point ``lon, lat`` (degrees).
    services
        Services, EPSG:4326: ``service_id, type_service, lon, lat``.
    engine
        The travel-time engine (:func:`coverage.routing.make_engine`).
    service_types
        Types to compute; a type without any service gets NaN minutes for every commune.
        Default: the types present in ``services``.

    Returns
    -------
    pandas.DataFrame
        The ``acces_communes`` contract columns, one row per commune × type, sorted by
        ``code_insee`` then type.
    """
    present = [str(t) for t in pd.unique(services["type_service"])] if len(services) else []
    types = tuple(_type_order(list(service_types) if service_types is not None else present))
    if len(services) and types and isinstance(engine, ProxyEngine):
        nearest = engine.nearest_with_ranges(communes, services, service_types=types)
    elif len(services) and types:
        nearest = engine.nearest(communes, services, service_types=types)
    else:
        nearest = empty_nearest()
    return access_table(communes, nearest, service_types=types, moteur=engine.name)


def combined_access(access: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of the combined view ``aucun_service``: smallest minutes over types.

    Parameters
    ----------
    access
        ``acces_communes`` table.

    Returns
    -------
    pandas.DataFrame
        Same columns as ``access``, one row per commune, ``type_service = aucun_service``,
        ``minutes`` the minimum over the types (NaN when no type is reachable), and the
        ``service_id`` / ``distance_km`` of that nearest service.
    """
    base = access[access["type_service"] != NO_SERVICE]
    blocks = _commune_blocks(base)
    if blocks is not None:  # rows already by commune: the best of each block, vectorised
        best = _best_of_blocks(base, blocks)
    else:
        key = base["minutes"].fillna(np.inf)
        order = base.assign(_k=key).sort_values(["code_insee", "_k"], kind="mergesort")
        best = order.drop_duplicates("code_insee", keep="first").drop(columns="_k").copy()
    best["type_service"] = NO_SERVICE
    unreachable = best["minutes"].isna()
    best.loc[unreachable, ["service_id"]] = np.nan
    for col in ("distance_km", "distance_estimee_km"):
        if col in best.columns:
            best.loc[unreachable, [col]] = np.nan
    for col in ("minutes_min", "minutes_max"):  # the bounds of the best over the types
        if col in base.columns and blocks is not None:
            values = base[col].to_numpy(dtype=np.float64)
            best[col] = (np.fmin.reduceat(values, blocks) if len(values)
                         else values)
        elif col in base.columns:
            bound = base.groupby("code_insee", sort=False)[col].min()
            best[col] = best["code_insee"].map(bound).to_numpy(dtype=np.float64)
    return best.reset_index(drop=True)


def _commune_blocks(base: pd.DataFrame) -> np.ndarray | None:
    """Return where each commune's rows begin when ``base`` is sorted by ``code_insee``.

    None when the codes are not sorted (or some is missing): the general path sorts them.
    """
    codes = base["code_insee"]
    if not len(codes) or codes.isna().any():
        return None
    values = codes.astype(str).to_numpy(dtype=object)
    if not bool(np.all(values[1:] >= values[:-1])):
        return None
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]])


def _best_of_blocks(base: pd.DataFrame, blocks: np.ndarray) -> pd.DataFrame:
    """Return the first row of smallest minutes (unreachable last) of each commune block.

    The rows a stable sort by code and minutes then ``drop_duplicates`` would keep.
    """
    key = base["minutes"].to_numpy(dtype=np.float64)
    key = np.where(np.isnan(key), np.inf, key)
    group = np.repeat(np.arange(len(blocks)), np.diff(np.r_[blocks, len(key)]))
    low = np.minimum.reduceat(key, blocks)
    hits = np.flatnonzero(key == low[group])
    first = hits[np.unique(group[hits], return_index=True)[1]]
    return base.iloc[first].copy()


def _with_combined(access: pd.DataFrame) -> pd.DataFrame:
    if (access["type_service"] == NO_SERVICE).any():
        return access
    return pd.concat([access, combined_access(access)], ignore_index=True)


def white_zones(access: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """Return the ``zones_blanches`` table: white communes per type and threshold.

    The combined view ``aucun_service`` is added (no type within the threshold).

    Parameters
    ----------
    access
        ``acces_communes`` table (:func:`access_table`).
    thresholds
        Thresholds, minutes.

    Returns
    -------
    pandas.DataFrame
        ``zones_blanches`` contract columns; one row per commune × type × threshold where
        the commune's minutes are above the threshold or NaN (unreachable); type
        ``aucun_service`` for communes with no type within the threshold. Sorted by type,
        threshold, ``code_insee``.
    """
    full = _with_combined(access)
    types = _type_order(list(pd.unique(full["type_service"])))
    minutes = full["minutes"].to_numpy(dtype=float)
    reason = (full["raison"].where(full["raison"].notna(), REASON_UNREACHABLE)
              if "raison" in full.columns else pd.Series(REASON_UNREACHABLE, index=full.index))
    reasons = reason.where(full["minutes"].isna(), REASON_TOO_FAR).to_numpy(dtype=object)
    steps = sorted(float(x) for x in thresholds)
    cols = ZONES_BLANCHES.columns
    if not steps:
        return pd.DataFrame({c: [] for c in cols})
    # the white rows of each threshold, then sorted by type, threshold and code (stable)
    whites = [np.flatnonzero(is_white_zone(minutes, t)) for t in steps]
    rows = np.concatenate(whites)
    step = np.repeat(np.arange(len(steps)), [len(w) for w in whites])
    t_rank = full["type_service"].map({t: i for i, t in enumerate(types)}).to_numpy(
        dtype=np.float64)
    code_rank = pd.factorize(full["code_insee"].astype(str).to_numpy(dtype=object),
                             sort=True, use_na_sentinel=False)[0]
    order = np.lexsort((code_rank[rows], step, t_rank[rows]))
    picked = rows[order]
    out = full[["code_insee", "nom", "code_dep", "population", "type_service"]].iloc[picked]
    out = out.assign(seuil_minutes=np.asarray(steps, dtype=np.float64)[step[order]],
                     raison=reasons[picked])
    return out[cols].reset_index(drop=True)


def _level_keys(frame: pd.DataFrame, communes: pd.DataFrame | None, level: str) -> pd.DataFrame:
    """Add the key columns of ``level`` to ``frame`` (rows of acces_communes)."""
    frame = frame.copy()
    if level in {"departements", "densite"}:
        return frame
    deps = frame["code_dep"].astype(str)
    if level == "france":
        uniq = list(pd.unique(deps))
        real = {d for d in uniq if not is_fictional_code(d)}
        code = FRANCE_CODE if _france_departements() <= real else FRANCE_PARTIAL_CODE
        frame["territoire"] = deps.map({d: FICTIONAL_TERRITORY if is_fictional_code(d)
                                        else code for d in uniq})
        return frame
    if level == "cours_appel":
        uniq = list(pd.unique(deps))
        frame["cour_appel"] = deps.map(dict(zip(uniq, courts_for(uniq), strict=True)))
        return frame
    cols = ["code_reg"] if level == "regions" else ["code_epci", "nom_epci"]
    if communes is None:
        msg = f"coverage_table: level {level!r} needs the communes table ({cols})"
        raise CoverageError(msg)
    com = pd.DataFrame(communes).drop(columns="geometry", errors="ignore")
    com = com.reindex(columns=["code_insee", *cols]).copy()
    com["code_insee"] = com["code_insee"].astype(str)
    frame = frame.merge(com.drop_duplicates("code_insee"), on="code_insee", how="left")
    if level == "regions":
        frame["code_reg"] = frame["code_reg"].astype(object).where(frame["code_reg"].notna(),
                                                                    UNKNOWN)
    else:
        no_epci = frame["code_epci"].isna() | (frame["code_epci"].astype(str).str.strip() == "")
        frame.loc[no_epci, "code_epci"] = NO_EPCI_CODE
        frame.loc[no_epci & frame["nom_epci"].isna(), "nom_epci"] = NO_EPCI_NAME
    return frame


def sorted_departements(codes: Iterable[str]) -> list[str]:
    """Return département codes in the COG order: ``01`` … ``19``, ``2A``, ``2B``, ``21`` … ``976``.

    Parameters
    ----------
    codes
        Département codes (duplicates removed).

    Returns
    -------
    list of str
        The codes sorted.
    """
    def key(code: str) -> tuple[int, str]:
        if code in ("2A", "2B"):
            return 2, "20" + code[1]
        return len(code), code

    return sorted({str(c) for c in codes}, key=key)


@functools.cache
def _unit_departements(level: str) -> dict[str, frozenset[str]]:
    """Return the départements of every région, EPCI or cour d'appel of France."""
    if level == "cours_appel":
        table = courts_table()
        groups = table.groupby("cour_appel")["code_dep"]
    else:
        column = "code_reg" if level == "regions" else "code_epci"
        nat = national_communes()
        pairs = nat.loc[nat[column].notna(), [column, "code_dep"]].drop_duplicates()
        groups = pairs.groupby(column)["code_dep"]
    return {str(unit): frozenset(str(d) for d in deps.unique()) for unit, deps in groups}


@functools.cache
def _france_departements() -> frozenset[str]:
    """Return the départements of metropolitan France and the DROM (COG 2026)."""
    nat = national_communes()
    return frozenset(nat.loc[nat["zone"].isin(["metro", "drom"]), "code_dep"].astype(str)
                     .unique())


def _add_partial_columns(out: pd.DataFrame, level: str, run_deps: frozenset[str]) -> None:
    """Add ``couverture_partielle``, ``departements_manquants`` (and ``perimetre``) in place.

    Parameters
    ----------
    out
        A coverage table of ``level``.
    level
        ``regions``, ``epci``, ``cours_appel`` or ``france`` (other levels: nothing added).
    run_deps
        The départements of the communes aggregated.
    """
    if level == "france":
        missing_of: dict[str, list[str]] = {}
        labels: dict[str, str] = {}
        real = sorted_departements(d for d in run_deps if not is_fictional_code(d))
        fictional = sorted_departements(d for d in run_deps if is_fictional_code(d))
        missing = sorted_departements(_france_departements() - set(real))
        for code in (FRANCE_CODE, FRANCE_PARTIAL_CODE):
            missing_of[code] = missing
            labels[code] = (WHOLE_FRANCE_LABEL.format(n=len(real)) if not missing
                            else departements_label(real))
        missing_of[FICTIONAL_TERRITORY] = []
        labels[FICTIONAL_TERRITORY] = departements_label(fictional, fictional=True)
        units = out["territoire"].astype(str)
        out["perimetre"] = units.map(labels)
    elif level in ("regions", "epci", "cours_appel"):
        whole = _unit_departements(level)
        units = out[LEVELS[level][1][0]].astype(str)
        missing_of = {u: sorted_departements(whole.get(u, frozenset()) - run_deps)
                      for u in pd.unique(units)}
    else:
        return
    out["couverture_partielle"] = units.map(lambda u: bool(missing_of[u])).astype(bool)
    out["departements_manquants"] = units.map(lambda u: ",".join(missing_of[u]))


#: Population-weighted lower quantiles of the coverage tables: column → (numerator, denominator).
_QUANTILES = {"minutes_mediane": (1, 2), "minutes_p90": (9, 10)}


@dataclass(frozen=True)
class _Groups:
    """Rows grouped by key, as ``groupby(sort=False, dropna=False)`` numbers them.

    Attributes
    ----------
    ids
        Group of each row (0 … n-1, in order of first appearance; missing keys form groups).
    first
        First row of each group.
    order
        Rows sorted by group, then by ``minutes`` (unreachable last), stable.
    starts
        Position in ``order`` where each group begins.
    """

    ids: np.ndarray
    first: np.ndarray
    order: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, columns: Sequence[pd.Series], minutes: np.ndarray) -> _Groups:
        """Group the rows by ``columns`` (equal length) and sort them by ``minutes``."""
        combined = np.zeros(len(minutes), dtype=np.int64)
        for col in columns:
            codes, uniques = pd.factorize(col, use_na_sentinel=False)
            combined = combined * max(len(uniques), 1) + codes
        ids = pd.factorize(combined)[0].astype(np.intp)
        first = np.unique(ids, return_index=True)[1]
        order = np.lexsort((np.where(np.isnan(minutes), np.inf, minutes), ids))
        starts = np.searchsorted(ids[order], np.arange(len(first)))
        return cls(ids, first, order, starts)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Return the sum of ``values`` (int64) in each group."""
        if not len(self.first):
            return np.zeros(0, dtype=np.int64)
        return np.add.reduceat(values.astype(np.int64)[self.order], self.starts)

    def weighted_quantile(self, minutes: np.ndarray, weights: np.ndarray, num: int,
                          den: int) -> np.ndarray:
        """Return the population-weighted lower ``num/den`` quantile of minutes per group.

        Rows sorted by minutes (NaN counted as ``+inf``); the quantile is the minutes of
        the first row at which the group's cumulative weight reaches ``num/den`` of its
        total (no interpolation); NaN when the group's total weight is not positive.
        """
        out = np.full(len(self.first), np.nan)
        if not len(out):
            return out
        w = weights.astype(np.int64)[self.order]
        group = self.ids[self.order]
        cum = np.cumsum(w)
        before = np.concatenate([[0], cum])[self.starts]  # weight of the earlier groups
        local = cum - before[group]
        total = np.add.reduceat(w, self.starts)
        reached = np.flatnonzero((local * den >= total[group] * num) & (total[group] > 0))
        hit_groups, at = np.unique(group[reached], return_index=True)
        m = minutes[self.order][reached[at]]
        out[hit_groups] = np.where(np.isnan(m), np.inf, m)
        return out


def _has_ranges(full: pd.DataFrame) -> bool:
    """Return True when the access rows carry low–high minutes (proxy engine)."""
    return all(c in full.columns for c in ("minutes_min", "minutes_max")) and bool(
        full["minutes_min"].notna().any() or full["minutes"].isna().all())


def _threshold_sums(full: pd.DataFrame, groups: _Groups, t: float, *, ranged: bool
                    ) -> dict[str, np.ndarray]:
    """Return the white-zone counts and populations of each group at threshold ``t``."""
    minutes = full["minutes"].to_numpy(dtype=float)
    pop = full["population"].to_numpy(dtype=np.int64)
    rural = full["rural"].to_numpy(dtype=bool)
    white = is_white_zone(minutes, t)
    sums: dict[str, np.ndarray] = {}
    if ranged:  # the counts under the optimistic and pessimistic minutes
        for bound, col in (("min", "minutes_min"), ("max", "minutes_max")):
            w = is_white_zone(full[col].to_numpy(dtype=float), t)
            sums[f"communes_zone_blanche_{bound}"] = groups.sums(w)
            sums[f"population_zone_blanche_{bound}"] = groups.sums(np.where(w, pop, 0))
    sums["population"] = groups.sums(pop)
    sums["population_couverte"] = groups.sums(np.where(white, 0, pop))
    sums["communes_zone_blanche"] = groups.sums(white)
    sums["population_zone_blanche"] = groups.sums(np.where(white, pop, 0))
    sums["population_rurale"] = groups.sums(np.where(rural, pop, 0))
    sums["population_rurale_zone_blanche"] = groups.sums(np.where(rural & white, pop, 0))
    return sums


def coverage_table(
    access: pd.DataFrame, communes: pd.DataFrame | None, thresholds: Sequence[float],
    level: str,
) -> pd.DataFrame:
    """Return the coverage aggregate at one level, per type (plus combined) and threshold.

    Parameters
    ----------
    access
        ``acces_communes`` table (:func:`access_table`).
    communes
        Communes with ``code_insee`` and the level's keys not in ``access``: ``code_reg``
        (regions), ``code_epci`` and ``nom_epci`` (epci). May be None for the other levels.
    thresholds
        Thresholds, minutes.
    level
        ``departements``, ``regions``, ``epci``, ``cours_appel``, ``densite`` or
        ``france``.

    Returns
    -------
    pandas.DataFrame
        The level's contract columns (``couverture_<level>``): ``population`` (inhabitants),
        ``population_couverte`` (minutes <= threshold), ``taux_couverture`` (ratio 0-1, NaN
        when no population), ``communes_zone_blanche``, ``population_zone_blanche``,
        ``minutes_mediane`` / ``minutes_p90`` (population-weighted, minutes, ``inf`` when
        unreachable, NaN when no population), ``population_rurale`` and
        ``population_rurale_zone_blanche``. Sorted by key, type, threshold.

    Raises
    ------
    CoverageError
        Unknown level, or a needed column is missing.
    """
    if level not in LEVELS:
        msg = f"unknown coverage level {level!r}; expected one of {sorted(LEVELS)}"
        raise CoverageError(msg)
    contract, key_cols = LEVELS[level]
    keys = list(key_cols)
    steps = sorted(float(x) for x in thresholds)
    if not steps:
        return pd.DataFrame({c: [] for c in contract.columns})
    combined = _with_combined(access)
    used = [c for c in _AGGREGATED_COLS if c in combined.columns]
    full = _level_keys(combined[used], communes, level)
    full["population"] = full["population"].astype("int64")
    full["rural"] = full["rural"].astype(bool)
    types = _type_order(list(pd.unique(full["type_service"])))
    gkeys = [*keys, "type_service"]
    minutes = full["minutes"].to_numpy(dtype=float)
    groups = _Groups.of([full[k] for k in gkeys], minutes)
    n_groups = len(groups.first)
    ranged = _has_ranges(full)
    per_step = [_threshold_sums(full, groups, t, ranged=ranged) for t in steps]
    rows = np.tile(np.arange(n_groups), len(steps))
    out = full[gkeys].iloc[groups.first[rows]].reset_index(drop=True)
    for col in per_step[0]:
        out[col] = np.concatenate([s[col] for s in per_step])
    out["seuil_minutes"] = np.repeat(np.asarray(steps, dtype=np.float64), n_groups)
    pop = full["population"].to_numpy(dtype=np.int64)
    for name, (num, den) in _QUANTILES.items():
        out[name] = groups.weighted_quantile(minutes, pop, num, den)[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = out["population_couverte"] / out["population"].where(out["population"] > 0)
    out["taux_couverture"] = rate.astype("float64")
    for col in RANGE_COLUMNS:  # engines without ranges: empty columns (Int64)
        out[col] = out[col].astype("Int64") if col in out.columns else pd.array(
            [pd.NA] * len(out), dtype="Int64")
    _add_partial_columns(out, level, frozenset(pd.unique(full["code_dep"].astype(str))))
    out["_t"] = out["type_service"].map({t: i for i, t in enumerate(types)})
    out = out.sort_values([*keys, "_t", "seuil_minutes"], kind="mergesort")
    return out[contract.columns].reset_index(drop=True)


def coverage_tables(
    access: pd.DataFrame, communes: pd.DataFrame | None, thresholds: Sequence[float],
    *, levels: Sequence[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Return every coverage table, keyed by contract name (``couverture_departements`` …).

    Levels ``regions`` and ``epci`` are skipped (with a log line) when ``communes`` lacks
    their key columns entirely.
    """
    out: dict[str, pd.DataFrame] = {}
    for level in levels or list(LEVELS):
        contract, keys = LEVELS[level]
        if level in ("regions", "epci") and (
            communes is None or keys[0] not in communes.columns
        ):
            log.warning("couverture par %s omise : la table des communes n'a pas de colonne "
                        "%s", level, keys[0])
            continue
        out[contract.name] = coverage_table(access, communes, thresholds, level)
    return out
