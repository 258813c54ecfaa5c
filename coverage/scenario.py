"""Incremental access after a change of services: batch reruns and the app's scenarios.

When k services are added, removed or moved, only the communes whose nearest service *can*
change are timed again; every other row of ``acces_communes`` is kept as stored. The rows
recomputed are those of:

- **the communes a changed service may serve.** Proxy engine: the changed service's own
  trip minutes from the commune (:func:`coverage.routing.proxy.trip_minutes`, under the
  model's detour and under each detour of the ranges) are at most the commune's stored
  ``minutes``, ``minutes_min`` or ``minutes_max``; when a density level is unknown, a lower
  bound of those minutes (both ends at the smallest access time, the smallest detour,
  :func:`bound_minutes`) is compared with the largest of them. Other engines: a bounded
  search from the changed services (``engine.matrix`` with the cut-off at the largest
  stored minutes), compared with the stored minutes. A commune whose stored nearest is a
  removed service is always recomputed.
- **the communes with no stored minutes** (NaN: nothing reachable) of a changed type;
- **the communes whose stored nearest sits at the same point as another service of its
  type** (a tie the engine breaks by the set of services it is given), for the changed
  types only.

A changed type that appears in or vanishes from the services, and a proxy run with ferry
links or services without ``densite``/``masse_terrestre``, recompute every commune: the
result then depends on more than the changed services. The rows recomputed are exactly
those a full computation gives (:func:`access_rows`, the partition's own computation), so
the table equals a full rerun's (tested, ``tests/test_incremental.py``).

:class:`Scenario` applies the same update to the app's « Nouveau site » scenarios: add a
site in a commune, move or remove a service, and read the new white zones of a
département at once.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from coverage.errors import CoverageError
from coverage.geo import lonlat_to_xy, metric_crs_for_lonlat
from coverage.routing.base import Engine, empty_nearest
from coverage.routing.landmass import LAND_MASS_COLUMN
from coverage.routing.proxy import ProxyEngine, drive_minutes, trip_minutes
from coverage.settings import Settings, metric_crs_for
from coverage.whitezones import access_table, is_white_zone

__all__ = [
    "SCENARIO_ID_PREFIX",
    "Scenario",
    "ScenarioFigures",
    "ServiceChange",
    "access_rows",
    "affected_communes",
    "bound_minutes",
    "complete_services",
    "service_changes",
    "update_access",
]

log = logging.getLogger(__name__)

#: ``service_id`` prefix of the sites a scenario adds.
SCENARIO_ID_PREFIX = "SCENARIO-"
#: Columns that identify a service's place for the engines (a change of any is a change).
_PLACE_COLUMNS = ("service_id", "type_service", "lon", "lat", "code_insee", "code_dep",
                  "densite", LAND_MASS_COLUMN)
#: Slack on the stored minutes (minutes): float32 matrices and rounding never hide a change.
_SLACK_MIN = 1e-3


@dataclass(frozen=True)
class ServiceChange:
    """Services removed and added between two service lists (a move is one of each).

    Attributes
    ----------
    removed
        Rows of the old list absent from the new one (same place columns).
    added
        Rows of the new list absent from the old one.
    """

    removed: pd.DataFrame
    added: pd.DataFrame

    @property
    def empty(self) -> bool:
        """Return True when nothing changed."""
        return self.removed.empty and self.added.empty

    def types(self) -> set[str]:
        """Return the service types touched by the change."""
        return {str(t) for t in pd.concat([self.removed["type_service"],
                                           self.added["type_service"]])}

    def __len__(self) -> int:
        """Return the number of rows changed (a move counts two)."""
        return len(self.removed) + len(self.added)


def _place_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Return one uint64 hash per row of the place columns."""
    cols = [c for c in columns if c in frame.columns]
    if frame.empty:
        return np.zeros(0, dtype=np.uint64)
    part = pd.DataFrame(frame[cols]).reset_index(drop=True)
    for c in part.columns:  # a geometry-less, dtype-stable view
        if part[c].dtype == object:
            part[c] = part[c].astype(str).where(part[c].notna(), None)
    return pd.util.hash_pandas_object(part, index=False).to_numpy()


def service_changes(old: pd.DataFrame, new: pd.DataFrame) -> ServiceChange:
    """Return the services removed from ``old`` and added in ``new``.

    A row is identified by its place columns (``service_id``, ``type_service``, ``lon``,
    ``lat`` (EPSG:4326 degrees), ``code_insee``, ``code_dep``, ``densite``,
    ``masse_terrestre``, when present in both): a moved service is removed and added.

    Parameters
    ----------
    old, new
        The two service lists.

    Returns
    -------
    ServiceChange
    """
    cols = [c for c in _PLACE_COLUMNS if c in old.columns and c in new.columns]
    h_old, h_new = _place_hashes(old, cols), _place_hashes(new, cols)
    return ServiceChange(removed=old[~np.isin(h_old, h_new)].reset_index(drop=True),
                         added=new[~np.isin(h_new, h_old)].reset_index(drop=True))


def access_rows(engine: Engine, communes: pd.DataFrame, services: pd.DataFrame,
                types: Sequence[str]) -> pd.DataFrame:
    """Return the ``acces_communes`` rows of ``communes`` (the batch partition's computation).

    The proxy engine gives the low–high ranges and the reasons
    (:meth:`coverage.routing.proxy.ProxyEngine.nearest_with_ranges`); other engines their
    ``nearest``.

    Parameters
    ----------
    engine
        The run's engine.
    communes
        Communes (``code_insee``, ``nom``, ``code_dep``, ``population``, ``densite``,
        ``rural``, ``lon``/``lat`` EPSG:4326).
    services
        Services (``service_id``, ``type_service``, ``lon``/``lat`` EPSG:4326).
    types
        Service types.

    Returns
    -------
    pandas.DataFrame
        :func:`coverage.whitezones.access_table` of the communes (minutes, NaN unreachable).
    """
    types = tuple(types)
    if len(services) and len(communes) and isinstance(engine, ProxyEngine):
        nearest = engine.nearest_with_ranges(communes, services, service_types=types)
    elif len(services) and len(communes):
        nearest = engine.nearest(communes, services, service_types=types)
    else:
        nearest = empty_nearest()
    return access_table(communes, nearest, service_types=types, moteur=engine.name)


def bound_minutes(straight_km: np.ndarray, settings: Settings) -> np.ndarray:
    """Return a lower bound of the proxy minutes of a trip of ``straight_km`` (km).

    Both ends at the smallest access time, the road km at the smallest detour of the
    ranges (``proxy_detour_bounds``) and of the model: no proxy trip of that straight
    line, under any of the run's parameter sets, takes fewer minutes.

    Parameters
    ----------
    straight_km
        Straight-line distances, km (metric CRS of the territory).
    settings
        Proxy settings.
    """
    detour = min(settings.proxy_detour_factor, *settings.proxy_detour_bounds)
    tau = float(min(settings.proxy_access_min_by_density.values()))
    return np.asarray(2 * tau + drive_minutes(np.asarray(straight_km) * detour, settings),
                      dtype=np.float64)


def _stored_minutes(access: pd.DataFrame, codes: np.ndarray, stype: str
                    ) -> dict[str, np.ndarray]:
    """Return each commune's stored minutes of ``stype`` (inf when unknown).

    Keys ``minutes``, ``minutes_min``, ``minutes_max``; a range column absent or empty
    repeats ``minutes``.
    """
    rows, at = _rows_of_type(access, codes, stype)
    out: dict[str, np.ndarray] = {}
    for col in ("minutes", "minutes_min", "minutes_max"):
        source = col if col in rows.columns and rows[col].notna().any() else "minutes"
        values = pd.to_numeric(rows[source], errors="coerce").to_numpy(dtype=np.float64)
        found = values[np.maximum(at, 0)] if len(values) else np.full(len(at), np.nan)
        out[col] = np.where((at >= 0) & ~np.isnan(found), found, np.inf)
    return out


def _rows_of_type(access: pd.DataFrame, codes: np.ndarray, stype: str
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the access rows of ``stype`` and the row of each of ``codes`` (-1: none).

    A commune's first row is taken when it has several.
    """
    rows = access[access["type_service"].astype(str) == stype]
    index = pd.Index(rows["code_insee"].astype(str).to_numpy(dtype=object), dtype=object)
    first = np.flatnonzero(~index.duplicated())
    at = index[first].get_indexer(pd.Index(codes, dtype=object))
    return rows, np.where(at >= 0, first[np.maximum(at, 0)], -1)


def _stored_ids(access: pd.DataFrame, codes: np.ndarray, stype: str) -> np.ndarray:
    """Return each commune's stored nearest ``service_id`` for ``stype`` ('' when none)."""
    rows, at = _rows_of_type(access, codes, stype)
    ids = pd.Series(rows["service_id"].to_numpy(dtype=object)[np.maximum(at, 0)]
                    if len(rows) else np.full(len(at), None, dtype=object))
    ids = ids.where(pd.Series(at >= 0), None)
    return ids.astype(str).where(ids.notna(), "").to_numpy(dtype=object)


def _crs_of(frame: pd.DataFrame) -> np.ndarray:
    """Return the metric CRS of each row (``code_dep``, else from its location)."""
    lon = frame["lon"].to_numpy(dtype=float)
    lat = frame["lat"].to_numpy(dtype=float)
    if "code_dep" in frame.columns:
        deps = frame["code_dep"].astype(str).to_numpy()
        known = {d: metric_crs_for(d) for d in set(deps) if d and d not in ("nan", "None")}
    else:
        deps, known = np.full(len(frame), ""), {}
    return np.array([known[d] if d in known else metric_crs_for_lonlat(float(x), float(y))
                     for d, x, y in zip(deps, lon, lat, strict=True)], dtype=object)


def _known_levels(values: pd.Series | None, settings: Settings) -> np.ndarray | None:
    """Return density levels as integers, or None when one is missing or unknown."""
    if values is None:
        return None
    dens = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isin(dens, list(settings.proxy_access_min_by_density)).all():
        return None
    return dens.astype(np.int64)


def _proxy_reach(engine: ProxyEngine, communes: pd.DataFrame, changed: pd.DataFrame,
                 stored: dict[str, np.ndarray]) -> np.ndarray:
    """Return the communes whose minutes a changed service may beat or equal (proxy).

    With both ends' density levels known, the changed service's own trip minutes under
    each parameter set (the model, and the optimistic and pessimistic detours of the
    ranges) are compared with the stored ``minutes``, ``minutes_min`` and ``minutes_max``;
    otherwise :func:`bound_minutes` is compared with the largest of them. ``stored`` maps
    those columns to the communes' values (inf when unknown).
    """
    out = np.zeros(len(communes), dtype=bool)
    if changed.empty:
        return out
    settings = engine.settings
    low, high = engine.bound_settings()
    sets = (("minutes", settings), ("minutes_min", low), ("minutes_max", high))
    largest = np.max(np.stack([stored[c] for c, _ in sets]), axis=0)
    c_dens = _known_levels(communes.get("densite"), settings)
    s_dens = _known_levels(changed.get("densite"), settings)
    c_crs = _crs_of(communes)
    c_lon, c_lat = communes["lon"].to_numpy(float), communes["lat"].to_numpy(float)
    s_lon, s_lat = changed["lon"].to_numpy(float), changed["lat"].to_numpy(float)
    for crs in set(c_crs):
        sel = np.flatnonzero(c_crs == crs)
        c_xy = lonlat_to_xy(c_lon[sel], c_lat[sel], str(crs))
        s_xy = lonlat_to_xy(s_lon, s_lat, str(crs))
        for j, (x, y) in enumerate(s_xy):
            km = np.hypot(c_xy[:, 0] - x, c_xy[:, 1] - y) / 1000.0
            if c_dens is None or s_dens is None:
                out[sel] |= bound_minutes(km, settings) <= largest[sel] + _SLACK_MIN
                continue
            for col, st in sets:
                trip = trip_minutes(km, c_dens[sel], int(s_dens[j]), st)
                out[sel] |= trip <= stored[col][sel] + _SLACK_MIN
    return out


def _routed_reach(engine: Engine, communes: pd.DataFrame, changed: pd.DataFrame,
                  bound: np.ndarray) -> np.ndarray:
    """Return the communes a changed service reaches within their stored minutes.

    One bounded search (``engine.matrix``) from the changed services, cut at the largest
    finite stored minutes; communes without stored minutes are always returned.
    """
    out = ~np.isfinite(bound)
    finite = bound[np.isfinite(bound)]
    if changed.empty or finite.size == 0:
        return out
    cutoff = float(finite.max()) + _SLACK_MIN
    pairs = engine.matrix(communes, changed, cutoff_min=cutoff)
    if len(pairs):
        best = pairs.groupby("code_insee")["minutes"].min()
        reach = pd.Series(communes["code_insee"].astype(str).to_numpy()).map(
            best).to_numpy(dtype=np.float64)
        out |= reach <= bound * (1 + 1e-6) + _SLACK_MIN
    return out


def _tied_ids(services: pd.DataFrame) -> set[str]:
    """Return the services placed at the same point as another service of their type."""
    if services.empty:
        return set()
    dup = services.duplicated(subset=["type_service", "lon", "lat"], keep=False).to_numpy()
    return set(services.loc[dup, "service_id"].astype(str)) if dup.any() else set()


def _needs_everything(engine: Engine, change: ServiceChange, old: pd.DataFrame,
                      new: pd.DataFrame) -> str | None:
    """Return why every commune must be recomputed, or None (the change is local)."""
    for t in change.types():
        if (old["type_service"].astype(str) == t).any() != (
                new["type_service"].astype(str) == t).any():
            return f"service type {t!r} appears or vanishes"
    if isinstance(engine, ProxyEngine):
        if engine.ferries is not None and engine.ferries.links:
            return "ferry links"
        for frame in (old, new):
            if "densite" not in frame.columns:  # then taken from the communes given
                return "services without densite (complete_services)"
            for col in ("densite", LAND_MASS_COLUMN):
                if col in frame.columns and frame[col].isna().any():
                    return f"services without {col}"
    return None


def complete_services(services: pd.DataFrame, communes: pd.DataFrame) -> pd.DataFrame:
    """Return ``services`` with ``densite`` (and ``masse_terrestre``) of their commune.

    The proxy times a service with its commune's density level; without the column it
    looks the commune up among the communes it is given, so the minutes of a few communes
    would depend on which others are computed with them. Filled here from every commune
    (``code_insee``), as the batch does (:mod:`coverage.batch.proxy_inputs`); values
    already there are kept.

    Parameters
    ----------
    services
        Services (``code_insee``).
    communes
        Every commune of the run (``code_insee``, ``densite``; ``masse_terrestre`` when
        known).
    """
    out = services.copy()
    if "code_insee" not in out.columns:
        return out
    codes = out["code_insee"].astype(str)
    for col in ("densite", LAND_MASS_COLUMN):
        if col not in communes.columns:
            continue
        by_code = pd.Series(communes[col].to_numpy(),
                            index=communes["code_insee"].astype(str).to_numpy())
        by_code = by_code[~by_code.index.duplicated()]
        found = codes.map(by_code)
        out[col] = out[col].where(out[col].notna(), found) if col in out.columns else found
    return out


def affected_communes(engine: Engine, communes: pd.DataFrame, access: pd.DataFrame,
                      old_services: pd.DataFrame, new_services: pd.DataFrame, *,
                      types: Sequence[str], change: ServiceChange | None = None
                      ) -> np.ndarray:
    """Return the communes whose access rows can change with the services (module rule).

    Parameters
    ----------
    engine
        The engine that computed ``access``.
    communes
        The communes of ``access`` (``code_insee``, ``code_dep``, ``lon``/``lat``
        EPSG:4326).
    access
        Their stored ``acces_communes`` rows (minutes, NaN unreachable).
    old_services, new_services
        The services ``access`` was computed from, and the new ones.
    types
        Service types of ``access``.
    change
        :func:`service_changes` of the two lists (computed when None).

    Returns
    -------
    numpy.ndarray
        A boolean mask over ``communes``: True where the rows must be recomputed.
    """
    change = change if change is not None else service_changes(old_services, new_services)
    n = len(communes)
    if change.empty or n == 0:
        return np.zeros(n, dtype=bool)
    why = _needs_everything(engine, change, old_services, new_services)
    if why is not None:
        log.info("incremental update: every commune recomputed (%s)", why)
        return np.ones(n, dtype=bool)
    codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
    out = np.zeros(n, dtype=bool)
    tied = _tied_ids(old_services) | _tied_ids(new_services)
    for t in sorted(change.types() & {str(x) for x in types}):
        changed = pd.concat([change.removed[change.removed["type_service"].astype(str) == t],
                             change.added[change.added["type_service"].astype(str) == t]],
                            ignore_index=True)
        stored = _stored_minutes(access, codes, t)
        bound = np.max(np.stack(list(stored.values())), axis=0)
        ids = _stored_ids(access, codes, t)
        removed = set(change.removed.loc[change.removed["type_service"].astype(str) == t,
                                         "service_id"].astype(str))
        out |= np.isin(ids, list(removed | tied)) | ~np.isfinite(bound)
        if isinstance(engine, ProxyEngine):
            out |= _proxy_reach(engine, communes, changed, stored)
        else:
            out |= _routed_reach(engine, communes, changed, bound)
    return out


def update_access(engine: Engine, communes: pd.DataFrame, access: pd.DataFrame,
                  services: pd.DataFrame, affected: np.ndarray, types: Sequence[str]
                  ) -> pd.DataFrame:
    """Return ``access`` with the rows of the ``affected`` communes recomputed.

    Parameters
    ----------
    engine
        The run's engine.
    communes
        The communes of ``access``, in any order.
    access
        Their stored ``acces_communes`` rows, sorted by ``code_insee`` then type.
    services
        The new services.
    affected
        Mask over ``communes`` (:func:`affected_communes`).
    types
        Service types of ``access``.

    Returns
    -------
    pandas.DataFrame
        The rows, sorted as ``access`` (``code_insee`` then type), the same columns.
    """
    if not affected.any():
        return access
    sub = communes[affected]
    fresh = access_rows(engine, sub, services, types)
    if bool(affected.all()):
        return fresh
    keep = ~access["code_insee"].astype(str).isin(set(sub["code_insee"].astype(str)))
    order = {t: i for i, t in enumerate(pd.unique(access["type_service"].astype(str)))}
    out = pd.concat([access[keep.to_numpy()], fresh], ignore_index=True)
    for col in access.columns:  # keep the stored dtypes (the fresh rows may be fewer kinds)
        if out[col].dtype != access[col].dtype:
            out[col] = out[col].astype(access[col].dtype)
    rank = out["type_service"].astype(str).map(order).fillna(len(order))
    out = out.assign(_t=rank.to_numpy()).sort_values(["code_insee", "_t"], kind="mergesort")
    return out.drop(columns="_t").reset_index(drop=True)


# --- Scenarios of the app --------------------------------------------------------------------

@dataclass(frozen=True)
class ScenarioFigures:
    """White-zone figures of a scenario for one type and threshold (one département).

    Attributes
    ----------
    population_white
        Population of the département's white zones, inhabitants.
    communes_white
        Number of its white communes.
    gained, lost
        Communes leaving / entering the white zones against the run (``code_insee``,
        ``nom``, ``population``, ``minutes_avant``, ``minutes_apres``).
    """

    population_white: int
    communes_white: int
    gained: pd.DataFrame
    lost: pd.DataFrame


@dataclass(frozen=True)
class Scenario:
    """A département's access after some changes of sites, updated incrementally.

    Build it with :meth:`of_run`; :meth:`add`, :meth:`move` and :meth:`remove` return a new
    scenario whose ``access`` is updated by :func:`update_access` (only the communes whose
    nearest service can change are timed again).

    Attributes
    ----------
    engine
        The run's engine (:func:`coverage.routing.engine_of_run`).
    communes
        The département's communes (``lon``/``lat`` EPSG:4326), no geometry.
    services
        Every service of the scenario (the run's, changed).
    access
        The communes' ``acces_communes`` rows under the scenario.
    base_access
        The run's rows (the reference of the gained and lost communes).
    types
        The service types of the rows.
    changes
        French lines describing the changes, in order.
    recomputed
        Communes recomputed by each change.
    """

    engine: Engine
    communes: pd.DataFrame
    services: pd.DataFrame
    access: pd.DataFrame
    base_access: pd.DataFrame
    types: tuple[str, ...]
    changes: tuple[str, ...] = ()
    recomputed: tuple[int, ...] = field(default=())

    @classmethod
    def of_run(cls, engine: Engine, communes: pd.DataFrame, services: pd.DataFrame,
               access: pd.DataFrame | None, types: Sequence[str], *,
               all_communes: pd.DataFrame | None = None) -> Scenario:
        """Return the scenario of a run before any change.

        Parameters
        ----------
        engine
            The run's engine.
        communes
            The département's communes (geometry dropped when present).
        services
            Every service of the run (EPSG:4326 ``lon``/``lat``).
        access
            The run's ``acces_communes`` rows of these communes when timed by ``engine``,
            else None (computed here).
        types
            Service types.
        all_communes
            Every commune of the run (the services' density levels,
            :func:`complete_services`); None: ``communes``.
        """
        com = pd.DataFrame(communes).drop(columns="geometry", errors="ignore")
        com = com.reset_index(drop=True)
        svc = pd.DataFrame(services).drop(columns="geometry", errors="ignore")
        svc = complete_services(svc.reset_index(drop=True),
                                all_communes if all_communes is not None else com)
        types = tuple(types)
        if access is None:
            access = access_rows(engine, com, svc, types)
        else:
            codes = set(com["code_insee"].astype(str))
            access = access[access["code_insee"].astype(str).isin(codes)
                            & access["type_service"].astype(str).isin(types)]
            access = access.reset_index(drop=True)
        return cls(engine, com, svc, access, access, types)

    def _commune(self, code_insee: str) -> pd.Series:
        rows = self.communes[self.communes["code_insee"].astype(str) == str(code_insee)]
        if rows.empty:
            msg = f"commune {code_insee!r} inconnue dans le département du scénario"
            raise CoverageError(msg)
        return rows.iloc[0]

    def _service(self, service_id: str) -> pd.Series:
        rows = self.services[self.services["service_id"].astype(str) == str(service_id)]
        if rows.empty:
            msg = f"service {service_id!r} absent du scénario"
            raise CoverageError(msg)
        return rows.iloc[0]

    def _placed(self, row: dict[str, Any], code_insee: str) -> dict[str, Any]:
        c = self._commune(code_insee)
        row.update(code_insee=str(c["code_insee"]), code_dep=str(c["code_dep"]),
                   lon=float(c["lon"]), lat=float(c["lat"]))
        for col in ("densite", LAND_MASS_COLUMN):
            if col in self.services.columns:
                row[col] = c[col] if col in c.index else np.nan
        return row

    def _with(self, services: pd.DataFrame, line: str, change: ServiceChange) -> Scenario:
        mask = affected_communes(self.engine, self.communes, self.access, self.services,
                                 services, types=self.types, change=change)
        access = update_access(self.engine, self.communes, self.access, services, mask,
                               self.types)
        return replace(self, services=services.reset_index(drop=True), access=access,
                       changes=(*self.changes, line),
                       recomputed=(*self.recomputed, int(mask.sum())))

    def next_id(self) -> str:
        """Return a ``service_id`` not used yet (``SCENARIO-1``, ``SCENARIO-2`` …)."""
        used = set(self.services["service_id"].astype(str))
        return next(f"{SCENARIO_ID_PREFIX}{i}" for i in itertools.count(1)
                    if f"{SCENARIO_ID_PREFIX}{i}" not in used)

    def add(self, code_insee: str, type_service: str, *, nom: str | None = None) -> Scenario:
        """Return the scenario with a new site of ``type_service`` in a commune.

        The site is placed at the commune's point (``lon``/``lat``), like the candidates
        of :mod:`coverage.siting`.
        """
        c = self._commune(code_insee)
        row: dict[str, Any] = {col: None for col in self.services.columns}
        row.update(service_id=self.next_id(), type_service=type_service,
                   nom=nom or f"Nouveau site — {c['nom']}")
        row = self._placed(row, code_insee)
        added = pd.DataFrame([row])
        services = pd.concat([self.services, added], ignore_index=True)
        return self._with(services, f"ajout d'un site à {c['nom']} ({code_insee})",
                          ServiceChange(added.iloc[:0], added))

    def move(self, service_id: str, code_insee: str) -> Scenario:
        """Return the scenario with a service moved to a commune's point."""
        old = self._service(service_id)
        row = self._placed({str(k): v for k, v in old.items()}, code_insee)
        services = self.services.copy()
        at = (services["service_id"].astype(str) == str(service_id)).to_numpy()
        for col in ("code_insee", "code_dep", "lon", "lat", "densite", LAND_MASS_COLUMN):
            if col in row and col in services.columns:
                services.loc[at, col] = row[col]
        c = self._commune(code_insee)
        return self._with(services, f"déplacement de {service_id} vers {c['nom']} "
                                    f"({code_insee})",
                          ServiceChange(self.services[at], services[at]))

    def remove(self, service_id: str) -> Scenario:
        """Return the scenario without a service."""
        self._service(service_id)
        gone = (self.services["service_id"].astype(str) == str(service_id)).to_numpy()
        return self._with(self.services[~gone], f"retrait de {service_id}",
                          ServiceChange(self.services[gone], self.services.iloc[:0]))

    def figures(self, type_service: str, threshold_min: float) -> ScenarioFigures:
        """Return the white zones of ``type_service`` at ``threshold_min`` (minutes).

        ``gained``: communes white in the run and covered in the scenario; ``lost``: the
        reverse.
        """
        def minutes(frame: pd.DataFrame) -> pd.Series:
            rows = frame[frame["type_service"].astype(str) == type_service]
            return pd.Series(pd.to_numeric(rows["minutes"]).to_numpy(dtype=float),
                             index=rows["code_insee"].astype(str).to_numpy())

        com = self.communes.assign(code_insee=self.communes["code_insee"].astype(str))
        after = minutes(self.access).reindex(com["code_insee"]).to_numpy(dtype=float)
        before = minutes(self.base_access).reindex(com["code_insee"]).to_numpy(dtype=float)
        w_after, w_before = is_white_zone(after, threshold_min), is_white_zone(before,
                                                                               threshold_min)
        pop = pd.to_numeric(com["population"]).fillna(0).to_numpy(dtype=np.int64)
        table = com[["code_insee", "nom", "population"]].assign(minutes_avant=before,
                                                                 minutes_apres=after)
        return ScenarioFigures(int(pop[w_after].sum()), int(w_after.sum()),
                               table[w_before & ~w_after].reset_index(drop=True),
                               table[~w_before & w_after].reset_index(drop=True))
