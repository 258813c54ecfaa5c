"""Where would new sites cover the most families? Maximal covering, solved greedily.

The question of the MSA rural-development planners — *where would one new site cover the
most families?* — is a **maximal covering location problem** (Church & ReVelle, 1974; the
``MCLP`` of spopt): choose ``k`` sites among candidates so that the population living within
``threshold_min`` minutes of a service (existing or new) is largest.

Method
------
1. **Candidates.** By default one per commune of the chosen départements: its
   representative point (``lon``, ``lat``: the chef-lieu when the communes file gives it,
   else a point inside the polygon). Any list of points can be given instead.
2. **Demand.** Every commune passed in, weighted by its ``population``. Communes of
   neighbouring départements count: families cross the border, so a candidate near the
   edge gets credit for the communes it covers on the other side.
3. **Existing coverage.** A commune is already covered when its nearest existing service of
   the type is within the threshold (``minutes <= threshold_min`` in the ``acces_communes``
   table of the run). NaN (unreachable, off the network, no service of the type) is **not**
   covered.
4. **Cost matrix.** Candidate × commune minutes within the threshold, from the **same
   engine** as the run: ``engine.matrix`` with the candidates as pseudo-services. With the
   ``road`` engine this is one bounded Dijkstra per candidate on the road graph, in the
   family's direction (commune → site), connector legs included; with the ``proxy`` engine
   it is the proxy formula (straight line × detour factor ÷ speed by the commune's density
   level). A pair absent from the matrix (beyond the threshold, unreachable, off the
   network) never covers.
5. **Greedy solution.** ``k`` steps; each step picks the candidate that covers the most
   population not yet covered (by existing services or earlier picks); ties go to the one
   covering more communes, then to the first candidate in ``code_insee`` / ``site_id``
   order. Each commune is credited to the first pick that covers it, so nothing is counted
   twice. The steps stop early when no candidate covers a single new commune.

Greedy is a **heuristic** for ``k >= 2``: it guarantees at least ``1 - 1/e`` (≈ 63 %) of
the optimal newly covered population (Nemhauser, Wolsey & Fisher, 1978) and is often
optimal in practice, but not always. For ``k = 1`` it is exact: the first step evaluates
every candidate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage._validate import require_columns
from coverage.errors import CoverageError, InputError, MissingColumnError, Problem
from coverage.results import RunOutputs, run_settings
from coverage.routing import engine_of_run
from coverage.routing.base import Engine
from coverage.settings import NO_SERVICE, Settings, is_fictional_code
from coverage.whitezones import is_white_zone

__all__ = [
    "COMMUNE_COLUMNS",
    "COVERED_COLUMNS",
    "SITES_COLUMNS",
    "MaximalCovering",
    "SitingResult",
    "best_new_sites",
    "candidate_matrix",
    "candidate_sites",
    "existing_minutes",
    "plan_new_sites",
    "sites_for_run",
]

logger = logging.getLogger(__name__)

#: Columns of the table returned by :func:`best_new_sites`, in order.
SITES_COLUMNS: tuple[str, ...] = (
    "rang", "site_id", "code_insee", "nom", "code_dep", "lon", "lat",
    "population_nouvellement_couverte", "communes_nouvellement_couvertes",
    "population_nouvellement_couverte_hors_departement", "population_couverte_cumulee",
    "population_zone_blanche_restante", "moteur", "type_service", "seuil_minutes", "fictif",
)
#: Columns of :attr:`SitingResult.covered` (communes newly covered, one row each).
COVERED_COLUMNS: tuple[str, ...] = ("code_insee", "nom", "code_dep", "population", "rang",
                                    "site_id", "minutes")
#: Columns the communes frame needs.
COMMUNE_COLUMNS: tuple[str, ...] = ("code_insee", "nom", "code_dep", "population", "lon",
                                    "lat")


# --- the covering model ----------------------------------------------------------------


@dataclass
class MaximalCovering:
    """Maximal covering location problem on a coverage matrix, solved greedily.

    Build it with :meth:`from_cost_matrix`, then call :meth:`solve` (which returns
    ``self``, as spopt's models do).

    Attributes
    ----------
    covers
        Boolean sparse matrix, candidates × demand points: True where the candidate is
        within the threshold of the demand point.
    weights
        Population of each demand point (int64, ≥ 0).
    covered
        True for demand points already covered by the existing services.
    candidate_ids, demand_ids
        Identifiers of the rows and columns of ``covers`` (object arrays of str).
    picks
        After :meth:`solve`: row indices of the chosen candidates, in order.
    gains
        After :meth:`solve`: population newly covered by each pick.
    new_counts
        After :meth:`solve`: demand points newly covered by each pick.
    assignment
        After :meth:`solve`: for each demand point, the index in ``picks`` of the first pick
        that covers it when it was not covered before, else −1.
    """

    covers: sp.csr_array
    weights: np.ndarray
    covered: np.ndarray
    candidate_ids: np.ndarray
    demand_ids: np.ndarray
    picks: list[int] = field(default_factory=list)
    gains: list[int] = field(default_factory=list)
    new_counts: list[int] = field(default_factory=list)
    assignment: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def from_cost_matrix(
        cls, cost: pd.DataFrame, *, candidate_ids: Sequence[str], demand_ids: Sequence[str],
        weights: Sequence[int] | np.ndarray, threshold_min: float,
        covered: Sequence[bool] | np.ndarray | None = None,
    ) -> MaximalCovering:
        """Model from a long cost table.

        Parameters
        ----------
        cost
            ``site_id``, ``code_insee``, ``minutes`` (float; NaN or absent = not reachable).
            Pairs naming an unknown candidate or demand point are ignored.
        candidate_ids
            Candidate identifiers (``site_id`` values), in tie-break order.
        demand_ids
            Demand point identifiers (``code_insee`` values).
        weights
            Population of each demand point.
        threshold_min
            A pair covers when ``minutes <= threshold_min``.
        covered
            Demand points already covered (default: none).
        """
        require_columns(cost, ("site_id", "code_insee", "minutes"), file="cost matrix")
        cand = np.asarray([str(c) for c in candidate_ids], dtype=object)
        dem = np.asarray([str(d) for d in demand_ids], dtype=object)
        if len(set(cand)) != cand.shape[0]:
            msg = "candidate identifiers must be unique"
            raise CoverageError(msg)
        if len(set(dem)) != dem.shape[0]:
            msg = "demand identifiers (code_insee) must be unique"
            raise CoverageError(msg)
        w = np.asarray(weights, dtype=np.int64)
        if w.shape[0] != dem.shape[0]:
            msg = f"{w.shape[0]} weights for {dem.shape[0]} demand points"
            raise CoverageError(msg)
        cov = (np.zeros(dem.shape[0], dtype=bool) if covered is None
               else np.asarray(covered, dtype=bool))
        if cov.shape[0] != dem.shape[0]:
            msg = f"{cov.shape[0]} coverage flags for {dem.shape[0]} demand points"
            raise CoverageError(msg)
        minutes = pd.to_numeric(cost["minutes"], errors="coerce").to_numpy(dtype=np.float64)
        row = pd.Index(cand).get_indexer(cost["site_id"].astype(str).to_numpy(dtype=object))
        col = pd.Index(dem).get_indexer(cost["code_insee"].astype(str).to_numpy(dtype=object))
        keep = (row >= 0) & (col >= 0) & ~is_white_zone(minutes, threshold_min)
        unknown = int(((row < 0) | (col < 0)).sum())
        if unknown:
            logger.debug("%d cost pairs name an unknown candidate or commune: ignored", unknown)
        covers = sp.csr_array(
            (np.ones(int(keep.sum()), dtype=bool), (row[keep], col[keep])),
            shape=(cand.shape[0], dem.shape[0]),
        )
        covers.sum_duplicates()
        return cls(covers=covers, weights=w, covered=cov, candidate_ids=cand, demand_ids=dem)

    def solve(self, k: int) -> MaximalCovering:
        """Pick up to ``k`` candidates greedily (see the module docstring); returns self.

        Each step picks the candidate with the largest population not yet covered, then the
        most communes not yet covered, then the lowest row index. Stops early when no
        candidate covers any new demand point.
        """
        if k < 1:
            msg = f"k must be at least 1, not {k}"
            raise ValueError(msg)
        uncovered = ~self.covered.copy()
        self.picks, self.gains, self.new_counts = [], [], []
        self.assignment = np.full(self.demand_ids.shape[0], -1, dtype=np.int64)
        csr = self.covers.astype(np.int64)
        for step in range(k):
            if self.candidate_ids.shape[0] == 0:
                break
            pop = csr @ np.where(uncovered, self.weights, 0)
            cnt = csr @ uncovered.astype(np.int64)
            if int(cnt.max()) == 0:
                logger.info("no candidate covers a new commune after %d site(s)", step)
                break
            best_pop = pop.max()
            tied = np.flatnonzero(pop == best_pop)
            best = int(tied[np.argmax(cnt[tied])])  # argmax: first of the tied maxima
            start, end = self.covers.indptr[best], self.covers.indptr[best + 1]
            cols = self.covers.indices[start:end]
            new = cols[uncovered[cols]]
            self.assignment[new] = step
            uncovered[new] = False
            self.picks.append(best)
            self.gains.append(int(self.weights[new].sum()))
            self.new_counts.append(int(new.shape[0]))
        return self


# --- front-end on GeoDataFrames ---------------------------------------------------------


@dataclass
class SitingResult:
    """Result of :func:`plan_new_sites`.

    Attributes
    ----------
    table
        One row per suggested site (columns :data:`SITES_COLUMNS`).
    covered
        One row per commune newly covered (columns :data:`COVERED_COLUMNS`): the rank and
        ``site_id`` of the pick that covers it first and its minutes to that site.
    model
        The solved :class:`MaximalCovering`.
    parameters
        Engine parameters, threshold, type, ``k``, départements, counts (JSON-ready).
    """

    table: pd.DataFrame
    covered: pd.DataFrame
    model: MaximalCovering
    parameters: dict[str, Any]


def candidate_sites(communes: pd.DataFrame, *, depts: Sequence[str] | None = None
                    ) -> pd.DataFrame:
    """Default candidates: the representative point (chef-lieu) of each commune.

    Parameters
    ----------
    communes
        ``code_insee``, ``nom``, ``code_dep``, ``lon``, ``lat`` (EPSG:4326).
    depts
        Keep the communes of these départements only (default: all).

    Returns
    -------
    pandas.DataFrame
        ``site_id`` (= ``code_insee``), ``code_insee``, ``nom``, ``code_dep``, ``lon``,
        ``lat``, sorted by ``code_insee``.
    """
    require_columns(communes, ("code_insee", "nom", "code_dep", "lon", "lat"), file="communes")
    out = pd.DataFrame({
        "site_id": communes["code_insee"].astype(str).to_numpy(dtype=object),
        "code_insee": communes["code_insee"].astype(str).to_numpy(dtype=object),
        "nom": communes["nom"].astype(str).to_numpy(dtype=object),
        "code_dep": communes["code_dep"].astype(str).to_numpy(dtype=object),
        "lon": pd.to_numeric(communes["lon"], errors="coerce").to_numpy(dtype=np.float64),
        "lat": pd.to_numeric(communes["lat"], errors="coerce").to_numpy(dtype=np.float64),
    })
    if depts is not None:
        out = out[out["code_dep"].isin([str(d) for d in depts])]
    return out.sort_values("site_id", kind="mergesort").reset_index(drop=True)


def _given_candidates(candidates: pd.DataFrame, depts: Sequence[str] | None) -> pd.DataFrame:
    """Normalise user-given candidate points (``lon``, ``lat``, optional ids and names)."""
    require_columns(candidates, ("lon", "lat"), file="candidates")
    n = len(candidates)
    lon = pd.to_numeric(candidates["lon"], errors="coerce").to_numpy(dtype=np.float64)
    lat = pd.to_numeric(candidates["lat"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(lon) & np.isfinite(lat)))
    if bad.shape[0]:
        raise InputError([Problem("candidates", int(r) + 1, "lon/lat",
                                  "numeric WGS 84 coordinates",
                                  f"{candidates['lon'].iloc[r]}, {candidates['lat'].iloc[r]}")
                          for r in bad[:20]])

    def col(name: str, default: list[Any]) -> np.ndarray:
        if name in candidates.columns:
            return np.asarray([None if pd.isna(v) else str(v) for v in candidates[name]],
                              dtype=object)
        return np.asarray(default, dtype=object)

    site_id = col("site_id", [f"S{i + 1}" for i in range(n)])
    dup = pd.Series(site_id).duplicated(keep="first").to_numpy()
    if dup.any():
        raise InputError([Problem("candidates", int(r) + 1, "site_id", "a unique identifier",
                                  str(site_id[r])) for r in np.flatnonzero(dup)[:20]])
    out = pd.DataFrame({
        "site_id": site_id,
        "code_insee": col("code_insee", [None] * n),
        "nom": col("nom", [None] * n),
        "code_dep": col("code_dep", [None] * n),
        "lon": lon, "lat": lat,
    })
    if depts is not None:
        if "code_dep" not in candidates.columns:
            raise MissingColumnError([Problem(
                "candidates", None, "code_dep",
                "a column 'code_dep' to keep the candidates of the chosen départements")])
        out = out[out["code_dep"].isin([str(d) for d in depts])]
    return out.reset_index(drop=True)


def _population(communes: pd.DataFrame) -> np.ndarray:
    pop = pd.to_numeric(communes["population"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(pop) | (pop < 0))
    if bad.shape[0]:
        raise InputError([Problem("communes", int(r) + 1, "population", "an integer ≥ 0",
                                  str(communes["population"].iloc[r])) for r in bad[:20]])
    return np.round(pop).astype(np.int64)


def existing_minutes(
    communes: pd.DataFrame, access: pd.DataFrame | None, services: pd.DataFrame | None,
    engine: Engine, *, type_service: str,
) -> np.ndarray:
    """Minutes from each commune to its nearest existing service of a type.

    Parameters
    ----------
    communes
        The communes (``code_insee`` …), in the order of the result.
    access
        ``acces_communes`` rows (``code_insee``, ``type_service``, ``minutes``, optionally
        ``moteur``), or None to compute them with ``engine.nearest`` on ``services``.
    services
        Existing services (``service_id``, ``type_service``, ``lon``, ``lat``); used only
        when ``access`` is None.
    engine
        The run's engine; ``access`` must have been made by an engine of the same name.
    type_service
        Service type.

    Returns
    -------
    numpy.ndarray
        float64 minutes per commune, NaN when unreachable or absent from ``access``.

    Raises
    ------
    CoverageError
        ``access`` was computed by another engine, or neither access nor services given.
    """
    codes = communes["code_insee"].astype(str)
    if access is None:
        if services is None:
            msg = "give the access table of the run or the existing services"
            raise CoverageError(msg)
        require_columns(services, ("service_id", "type_service", "lon", "lat"), file="services")
        sel = services[services["type_service"].astype(str) == type_service]
        access = engine.nearest(communes, sel, service_types=(type_service,))  # type: ignore[arg-type]
    require_columns(access, ("code_insee", "type_service", "minutes"), file="access")
    rows = access[access["type_service"].astype(str) == type_service]
    if "moteur" in rows.columns and len(rows):
        engines = sorted({str(m) for m in rows["moteur"].dropna().unique()})
        if engines and engines != [engine.name]:
            msg = (f"the access times were computed by the {'/'.join(engines)} engine but the "
                   f"new sites would be timed by the {engine.name} engine: use the run's "
                   "engine, or pass access=None to recompute them from the services")
            raise CoverageError(msg)
    per_code = (pd.to_numeric(rows["minutes"], errors="coerce")
                .groupby(rows["code_insee"].astype(str)).min())
    out = codes.map(per_code).to_numpy(dtype=np.float64)
    absent = int((~codes.isin(per_code.index)).sum())
    if absent:
        logger.warning("%d commune(s) have no %s access row: counted as not covered",
                       absent, type_service)
    return out


def candidate_matrix(engine: Engine, communes: pd.DataFrame, candidates: pd.DataFrame, *,
                     threshold_min: float, type_service: str) -> pd.DataFrame:
    """Candidate × commune minutes within the threshold, by the given engine.

    The candidates are passed to ``engine.matrix`` as pseudo-services (``service_id`` =
    ``site_id``): by road, one bounded Dijkstra per candidate (commune → site); by proxy,
    the proxy formula with the commune's density level.

    Returns
    -------
    pandas.DataFrame
        ``site_id``, ``code_insee``, ``minutes`` (float), pairs within the threshold only.
    """
    pseudo = pd.DataFrame({
        "service_id": candidates["site_id"].astype(str).to_numpy(dtype=object),
        "type_service": type_service,
        "lon": candidates["lon"].to_numpy(dtype=np.float64),
        "lat": candidates["lat"].to_numpy(dtype=np.float64),
    })
    if candidates["code_dep"].notna().all():
        pseudo["code_dep"] = candidates["code_dep"].astype(str).to_numpy(dtype=object)
    if len(pseudo) == 0 or len(communes) == 0:
        return pd.DataFrame({"site_id": pd.Series([], dtype=object),
                             "code_insee": pd.Series([], dtype=object),
                             "minutes": pd.Series([], dtype=np.float64)})
    mat = engine.matrix(communes, pseudo, cutoff_min=float(threshold_min))  # type: ignore[arg-type]
    return pd.DataFrame({"site_id": mat["service_id"].astype(str).to_numpy(dtype=object),
                         "code_insee": mat["code_insee"].astype(str).to_numpy(dtype=object),
                         "minutes": mat["minutes"].to_numpy(dtype=np.float64)})


def _check_question(type_service: str, threshold_min: float, k: int,
                    settings: Settings) -> None:
    """Raise :class:`CoverageError` for a combined type, a bad threshold or a bad ``k``."""
    if type_service == NO_SERVICE:
        msg = (f"a new site offers one service type: choose one of "
               f"{', '.join(settings.service_types)}, not the combined view {NO_SERVICE}")
        raise CoverageError(msg)
    if not (isinstance(threshold_min, (int, float)) and math.isfinite(threshold_min)
            and threshold_min > 0):
        msg = f"threshold_min must be a positive number of minutes, not {threshold_min!r}"
        raise CoverageError(msg)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        msg = f"k (number of new sites) must be an integer ≥ 1, not {k!r}"
        raise CoverageError(msg)


def _unique_codes(communes: pd.DataFrame) -> pd.Series:
    """Return the communes' ``code_insee`` as str; raise :class:`InputError` on repeats."""
    codes = communes["code_insee"].astype(str)
    dup = codes.duplicated().to_numpy()
    if dup.any():
        raise InputError([Problem("communes", int(r) + 1, "code_insee", "a unique code",
                                  str(codes.iloc[r])) for r in np.flatnonzero(dup)[:20]])
    return codes


def _is_fictional(communes: pd.DataFrame, comm_dep: np.ndarray) -> bool:
    """Return whether the communes are fictional (``fictif`` column or « Z… » codes)."""
    return bool(
        ("fictif" in communes.columns and communes["fictif"].fillna(False).astype(bool).any())
        or any(is_fictional_code(str(d)) for d in comm_dep)
    )


@dataclass(frozen=True)
class _Demand:
    """The demand side of a solved model: population, already covered, in the area."""

    pop: np.ndarray
    already: np.ndarray
    in_area: np.ndarray
    comm_dep: np.ndarray


def _sites_table(model: MaximalCovering, cands: pd.DataFrame, demand: _Demand,
                 head: dict[str, Any]) -> tuple[pd.DataFrame, int]:
    """Return the sites table (:data:`SITES_COLUMNS`) and the initial white population.

    ``head`` holds the columns shared by every row (``moteur``, ``type_service``,
    ``seuil_minutes``, ``fictif``).
    """
    pop, in_area = demand.pop, demand.in_area
    remaining = initial_white = int(pop[~demand.already & in_area].sum())
    covered_total = int(pop[demand.already & in_area].sum())
    rows = []
    for rank, (pick, gain, count) in enumerate(zip(model.picks, model.gains,
                                                   model.new_counts, strict=True)):
        new = model.assignment == rank
        remaining -= int(pop[new & in_area].sum())
        covered_total += int(pop[new & in_area].sum())
        c = cands.iloc[pick]
        rows.append({
            "rang": rank + 1, "site_id": c["site_id"], "code_insee": c["code_insee"],
            "nom": c["nom"], "code_dep": c["code_dep"], "lon": float(c["lon"]),
            "lat": float(c["lat"]), "population_nouvellement_couverte": gain,
            "communes_nouvellement_couvertes": count,
            "population_nouvellement_couverte_hors_departement": int(pop[new & ~in_area].sum()),
            "population_couverte_cumulee": covered_total,
            "population_zone_blanche_restante": remaining, **head,
        })
    table = pd.DataFrame(rows, columns=list(SITES_COLUMNS))
    table = table.astype({"rang": np.int64, "population_nouvellement_couverte": np.int64,
                          "communes_nouvellement_couvertes": np.int64,
                          "population_nouvellement_couverte_hors_departement": np.int64,
                          "population_couverte_cumulee": np.int64,
                          "population_zone_blanche_restante": np.int64,
                          "seuil_minutes": np.float64, "fictif": bool})
    return table, initial_white


def _covered_table(model: MaximalCovering, communes: pd.DataFrame, codes: pd.Series,
                   demand: _Demand, cost: pd.DataFrame) -> pd.DataFrame:
    """Return the communes newly covered (:data:`COVERED_COLUMNS`), with their minutes."""
    new_idx = np.flatnonzero(model.assignment >= 0)
    covered = pd.DataFrame({
        "code_insee": codes.to_numpy(dtype=object)[new_idx],
        "nom": communes["nom"].astype(str).to_numpy(dtype=object)[new_idx],
        "code_dep": demand.comm_dep[new_idx],
        "population": demand.pop[new_idx],
        "rang": model.assignment[new_idx] + 1,
        "site_id": [str(model.candidate_ids[model.picks[a]])
                    for a in model.assignment[new_idx]],
    })
    if len(covered):
        cost_idx = cost.assign(site_id=cost["site_id"].astype(str),
                               code_insee=cost["code_insee"].astype(str))
        pair = cost_idx.groupby(["site_id", "code_insee"], sort=False)["minutes"].min()
        keys = pd.MultiIndex.from_arrays([covered["site_id"], covered["code_insee"]])
        covered["minutes"] = pair.reindex(keys).to_numpy(dtype=np.float64)
    else:
        covered["minutes"] = pd.Series([], dtype=np.float64)
    return covered.sort_values(["rang", "code_insee"], kind="mergesort").reset_index(
        drop=True)[list(COVERED_COLUMNS)]


def plan_new_sites(  # noqa: PLR0913 - the keyword-only options of one planning question
    communes: pd.DataFrame, access: pd.DataFrame | None, services: pd.DataFrame | None,
    engine: Engine, *, type_service: str, threshold_min: float,
    candidates: pd.DataFrame | None = None, k: int = 1, depts: Sequence[str] | None = None,
    cost: pd.DataFrame | None = None, settings: Settings = Settings(),
) -> SitingResult:
    """Suggest ``k`` new sites covering the most uncovered population (greedy MCLP).

    Same parameters as :func:`best_new_sites`, plus ``cost``: a precomputed
    :func:`candidate_matrix` of these candidates at this threshold (the app caches it so
    that changing ``k`` does not route again).

    Returns
    -------
    SitingResult
        The sites table, the newly covered communes, the solved model and the parameters.
    """
    _check_question(type_service, threshold_min, k, settings)
    require_columns(communes, COMMUNE_COLUMNS, file="communes")
    codes = _unique_codes(communes)
    pop = _population(communes)
    dep_list = None if depts is None else [str(d) for d in depts]

    cands = (candidate_sites(communes, depts=dep_list) if candidates is None
             else _given_candidates(candidates, dep_list))
    minutes = existing_minutes(communes, access, services, engine, type_service=type_service)
    already = ~is_white_zone(minutes, threshold_min)  # NaN: never covered
    if cost is None:
        cost = candidate_matrix(engine, communes, cands, threshold_min=threshold_min,
                                type_service=type_service)
    model = MaximalCovering.from_cost_matrix(
        cost, candidate_ids=cands["site_id"].tolist(), demand_ids=codes.tolist(),
        weights=pop, threshold_min=threshold_min, covered=already,
    ).solve(int(k))

    comm_dep = communes["code_dep"].astype(str).to_numpy(dtype=object)
    demand = _Demand(pop=pop, already=already, comm_dep=comm_dep,
                     in_area=(np.ones(len(communes), dtype=bool) if dep_list is None
                              else np.isin(comm_dep, dep_list)))
    fictif = _is_fictional(communes, comm_dep)
    table, initial_white = _sites_table(
        model, cands, demand, {"moteur": engine.name, "type_service": type_service,
                               "seuil_minutes": float(threshold_min), "fictif": fictif})
    covered = _covered_table(model, communes, codes, demand, cost)
    parameters = {
        "methode": "maximal covering (MCLP), greedy: each step picks the candidate covering "
                   "the most population not yet covered within the threshold; exact for "
                   "k = 1, heuristic (≥ 1 − 1/e of the optimum) for k ≥ 2",
        "moteur": engine.name, "engine": engine.parameters(), "type_service": type_service,
        "seuil_minutes": float(threshold_min), "k": int(k), "depts": dep_list,
        "candidats": len(cands),
        "candidats_origine": "chef-lieux des communes" if candidates is None else "points donnés",
        "communes": len(communes),
        "population_deja_couverte": int(pop[already].sum()),
        "population_zone_blanche_initiale": initial_white,
        "fictif": fictif,
    }
    if len(table) < k:
        logger.info("only %d site(s) of %d cover new communes", len(table), k)
    return SitingResult(table=table, covered=covered, model=model, parameters=parameters)


def best_new_sites(  # noqa: PLR0913 - the keyword-only options of one planning question
    communes: pd.DataFrame, access: pd.DataFrame | None, services: pd.DataFrame | None,
    engine: Engine, *, type_service: str, threshold_min: float,
    candidates: pd.DataFrame | None = None, k: int = 1, depts: Sequence[str] | None = None,
    settings: Settings = Settings(),
) -> pd.DataFrame:
    """Return where ``k`` new sites would cover the most families (greedy maximal covering).

    Candidates are the communes' representative points (chef-lieux) of ``depts`` by
    default; the population they would newly cover is counted over **all** ``communes``
    given, across the département border. Each step of the greedy picks the candidate that
    covers the most population not already within ``threshold_min`` of an existing service
    or of an earlier pick. Greedy is a stated **heuristic** for ``k >= 2`` (at least
    1 − 1/e of the optimum, often optimal); for ``k = 1`` it is **exact**. See the module
    docstring for the method.

    Parameters
    ----------
    communes
        Communes (EPSG:4326) with ``code_insee, nom, code_dep, population, lon, lat``
        (representative point) and ``densite`` for the proxy engine; ``fictif`` when known.
        Include the neighbouring départements' communes to count cross-border families.
    access
        ``acces_communes`` table of the run (``code_insee, type_service, minutes``,
        ``moteur``): existing coverage. None: computed with ``engine.nearest`` on
        ``services``.
    services
        Existing services (``service_id, type_service, lon, lat``); used when ``access`` is
        None.
    engine
        The run's engine (:func:`coverage.routing.make_engine`): ``road`` or ``proxy``.
        The new sites are timed by it; ``access`` must come from an engine of that name.
    type_service
        Service type of the new sites (``mediation_familiale`` or ``espace_rencontre``).
    threshold_min
        Coverage threshold, minutes (a commune is covered at ``minutes <= threshold_min``).
    candidates
        Candidate points instead of the chef-lieux: ``lon, lat`` (EPSG:4326), optional
        ``site_id`` (default ``S1``, ``S2`` …), ``nom``, ``code_insee``, ``code_dep``
        (required with ``depts``).
    k
        Number of new sites (≥ 1). Fewer rows come back when no candidate covers any new
        commune.
    depts
        Keep the candidates of these départements (default: all); the remaining white-zone
        population is counted over their communes.
    settings
        Run settings (service types).

    Returns
    -------
    pandas.DataFrame
        One row per site in the order picked (:data:`SITES_COLUMNS`): ``rang``,
        ``site_id``, ``code_insee``, ``nom``, ``code_dep``, ``lon``, ``lat``,
        ``population_nouvellement_couverte`` (inhabitants, all départements),
        ``communes_nouvellement_couvertes``,
        ``population_nouvellement_couverte_hors_departement`` (part outside ``depts``),
        ``population_couverte_cumulee`` and ``population_zone_blanche_restante``
        (inhabitants of ``depts`` covered / still beyond the threshold after this site),
        ``moteur`` (``road``/``proxy``), ``type_service``, ``seuil_minutes``, ``fictif``.

    Raises
    ------
    CoverageError
        Combined type ``aucun_service``, bad threshold or ``k``, access from another engine.
    InputError
        Missing columns, bad population or candidate coordinates (file ``communes`` or
        ``candidates``, row, column).
    """
    return plan_new_sites(communes, access, services, engine, type_service=type_service,
                          threshold_min=threshold_min, candidates=candidates, k=k,
                          depts=depts, settings=settings).table


# --- from a run folder (CLI, app) -------------------------------------------------------


def sites_for_run(run: RunOutputs, dept: str, *, type_service: str, threshold_min: float,
                  k: int = 1, engine: Engine | None = None, neighbours: bool = True
                  ) -> SitingResult:
    """:func:`plan_new_sites` for one département of a run folder.

    Candidates are the chef-lieux of ``dept``; demand is every commune of the run (only
    those of ``dept`` when ``neighbours`` is False); existing coverage is the run's
    ``acces_communes`` table; the engine is the run's
    (:func:`coverage.routing.engine_of_run`) unless given.
    """
    communes = run.communes
    if not neighbours:
        communes = communes[communes["code_dep"].astype(str) == dept]
    if engine is None:
        engine = engine_of_run(run, dept=dept).engine
    access = run.tables.get("acces_communes")
    if access is not None and "moteur" in access and set(
            access["moteur"].dropna().astype(str)) - {engine.name}:
        access = None  # recomputed by the engine that times the new sites
    types = sorted({str(t) for t in access["type_service"].unique()}) if access is not None \
        else sorted({str(t) for t in run.services["type_service"].unique()})
    if type_service not in types:
        msg = f"service type {type_service!r} is not in the run: {', '.join(types)}"
        raise CoverageError(msg)
    return plan_new_sites(communes, access, run.services, engine,
                          type_service=type_service, threshold_min=threshold_min, k=k,
                          depts=[dept], settings=run_settings(run))
