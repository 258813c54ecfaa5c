"""Where would new sites serve the most families? Maximal covering and p-median.

The question of the MSA rural-development planners — *where would one new site cover the
most families?* — is a **maximal covering location problem** (Church & ReVelle, 1974; the
``MCLP`` of spopt): choose ``k`` sites among candidates so that the population living within
``threshold_min`` minutes of a service (existing or new) is largest. Its companion, the
**p-median** (Hakimi, 1964), chooses ``k`` sites so that the population-weighted minutes to
the nearest service are smallest.

Method
------
1. **Candidates.** By default one per commune of the chosen départements: its
   representative point (``lon``, ``lat``: the chef-lieu when the communes file gives it,
   else a point inside the polygon). Any list of points can be given instead. They can be
   limited (:class:`SitingOptions`): a minimum commune population (``pop_min``), a list
   of communes where a site can really open (bourgs-centres, France Services, MSA or CAF
   premises: ``candidate_codes``), and exclusions (``exclude_codes``). A listed code of the
   chosen départements that is not a commune of the run is an error naming the file, row
   and column; codes of other départements are ignored (a national list can be given).
2. **Base of the counts.** By default only the families of the chosen départements count
   (the *base*): the objective and every population column of the table are on it. With
   ``neighbours`` the families of the other communes given (across the border) count in
   the objective too, and their part is a **separate** column
   (``population_nouvellement_couverte_hors_departement``, NA without ``neighbours``);
   the other columns stay on the département base.
3. **Existing sites are fixed.** A commune is already covered when its nearest existing
   service of the type is within the threshold (``minutes <= threshold_min`` in the
   ``acces_communes`` table of the run). NaN (unreachable, off the network, no service of
   the type) is **not** covered. Already covered communes never count as a gain.
4. **Cost matrix.** Candidate × commune minutes from the **same engine** as the run:
   ``engine.matrix`` with the candidates as pseudo-services. With the ``road`` engine this
   is one bounded Dijkstra per candidate on the road graph, in the family's direction
   (commune → site), connector legs included; with the ``proxy`` engine it is the proxy
   formula. A pair absent from the matrix (beyond the cutoff, unreachable, off the
   network) never covers and is never assigned.
5. **Greedy (fast path).** ``k`` steps; each step picks the candidate that covers the most
   population not yet covered (by existing services or earlier picks); ties go to the one
   covering more communes, then to the first candidate in ``code_insee`` / ``site_id``
   order. Each commune is credited to the first pick that covers it. The steps stop early
   when no candidate covers a single new commune. Greedy guarantees at least
   ``1 - 1/e`` (≈ 63 %) of the optimum (Nemhauser, Wolsey & Fisher, 1978); it is exact for
   ``k = 1``.
6. **Exact optimum.** An integer program solved by HiGHS (:func:`scipy.optimize.milp`,
   relative gap 0): binary ``x_j`` per candidate, ``y_i ∈ [0, 1]`` per commune of the
   base not yet covered, maximise ``Σ w_i y_i`` subject to ``y_i ≤ Σ_{j covers i} x_j``
   and ``Σ x_j ≤ k``. The chosen sites are then ranked greedily among themselves so that
   the per-site columns add up; the greedy's gap to the optimum is reported. When the
   greedy reaches the optimum its picks are kept, so that ties among optimal sets follow
   the greedy's documented order rather than the solver's. When the
   solver stops on its time limit the better of its incumbent and the greedy is kept and
   the status says so.
7. **p-median** (``objective="p-median"``, exactly ``k`` sites). Each commune of the base
   goes to its nearest service, existing or new; the objective is
   ``Σ w_i × minutes_i`` (inhabitants × minutes). Integer program: binary ``x_j``,
   ``z_ij ∈ [0, 1]`` for the pairs where candidate ``j`` is strictly nearer than the
   existing service, maximise the saving ``Σ w_i (d0_i - d_ij) z_ij`` subject to
   ``Σ_j z_ij ≤ 1``, ``z_ij ≤ x_j`` and ``Σ x_j = k``. The candidate matrix is bounded
   by the largest existing time of the base, so no useful pair is missed. **Unreachable
   communes** (no finite time to an existing service: NaN) have no cost to weigh: they are
   left out of the objective, never given a made-up number of minutes; the result counts
   them (``population_sans_temps``) and the part the chosen sites would reach within that
   bound (``population_sans_temps_atteinte``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from coverage._validate import require_columns
from coverage.cog import normalise_codes
from coverage.errors import (
    CoverageError,
    InputError,
    MissingColumnError,
    Problem,
    UnknownCodeError,
)
from coverage.io.tables import normalise_name, read_table
from coverage.results import RunOutputs, run_settings
from coverage.routing import engine_of_run
from coverage.routing.base import Engine
from coverage.settings import NO_SERVICE, Settings, is_fictional_code
from coverage.whitezones import is_white_zone

__all__ = [
    "COMMUNE_COLUMNS",
    "COVERED_COLUMNS",
    "DEFAULT_TIME_LIMIT_S",
    "P_MEDIAN_COLUMNS",
    "SITES_COLUMNS",
    "STATUS_GREEDY",
    "STATUS_OPTIMAL",
    "STATUS_TIME_LIMIT",
    "CodeList",
    "MaximalCovering",
    "PMedian",
    "SitingOptions",
    "SitingResult",
    "best_new_sites",
    "candidate_matrix",
    "candidate_sites",
    "code_list",
    "existing_minutes",
    "plan_new_sites",
    "read_code_list",
    "sites_for_run",
]

logger = logging.getLogger(__name__)

#: Columns of the maximal covering table (:func:`best_new_sites`), in order. Every
#: population column is on the département base, except
#: ``population_nouvellement_couverte_hors_departement`` (neighbours; NA when not counted).
SITES_COLUMNS: tuple[str, ...] = (
    "rang", "site_id", "code_insee", "nom", "code_dep", "lon", "lat",
    "population_nouvellement_couverte", "communes_nouvellement_couvertes",
    "population_nouvellement_couverte_hors_departement", "population_couverte_cumulee",
    "population_zone_blanche_restante", "methode", "base_comptage", "moteur", "type_service",
    "seuil_minutes", "fictif",
)
#: Columns of the p-median table, in order (population and minutes on the département
#: base, except ``population_rattachee_hors_departement``: neighbours, NA when not counted).
P_MEDIAN_COLUMNS: tuple[str, ...] = (
    "rang", "site_id", "code_insee", "nom", "code_dep", "lon", "lat",
    "population_rattachee", "communes_rattachees", "minutes_moyennes_avant",
    "minutes_moyennes_apres", "population_rattachee_hors_departement", "methode",
    "base_comptage", "moteur", "type_service", "fictif",
)
#: Columns of :attr:`SitingResult.covered` (communes newly covered — or, for the p-median,
#: whose nearest service becomes a new site — one row each).
COVERED_COLUMNS: tuple[str, ...] = ("code_insee", "nom", "code_dep", "population", "rang",
                                    "site_id", "minutes")
#: Columns the communes frame needs.
COMMUNE_COLUMNS: tuple[str, ...] = ("code_insee", "nom", "code_dep", "population", "lon",
                                    "lat")
#: Time limit of one integer program, seconds.
DEFAULT_TIME_LIMIT_S = 60.0

#: Solver status of a result.
STATUS_GREEDY = "gloutonne"
STATUS_OPTIMAL = "optimale"
STATUS_TIME_LIMIT = "limite de temps atteinte (meilleure solution trouvée, non prouvée optimale)"

Objective = Literal["couverture", "p-median"]
Method = Literal["exacte", "gloutonne"]

_CODE_FORMS = re.compile(r"^(?:\d{5}|2[AB]\d{3}|Z[A-Z0-9]{4})$")
#: Accepted names of the commune code column of a candidates / exclusions file.
_CODE_ALIASES = ("code_insee", "code_commune", "insee", "codgeo", "code_com", "com",
                 "depcom", "code")


def _check_k(k: object) -> int:
    """Return ``k`` as int; raise :class:`CoverageError` (French) unless a whole number ≥ 1."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        msg = f"nombre de nouveaux sites k = {k!r} refusé : un nombre entier ≥ 1 est attendu"
        raise CoverageError(msg)
    return int(k)


def _milp_options(time_limit_s: float) -> dict[str, Any]:
    """HiGHS options: proven optimum (relative gap 0) within ``time_limit_s`` seconds."""
    return {"mip_rel_gap": 0.0, "time_limit": float(time_limit_s), "disp": False}


# --- the covering model ----------------------------------------------------------------


@dataclass
class MaximalCovering:
    """Maximal covering location problem on a coverage matrix, greedy or exact.

    Build it with :meth:`from_cost_matrix`, then call :meth:`solve` (greedy) or
    :meth:`solve_exact` (integer program); both return ``self``, as spopt's models do.

    Attributes
    ----------
    covers
        Boolean sparse matrix, candidates × demand points: True where the candidate is
        within the threshold of the demand point.
    weights
        Population of each demand point (int64, ≥ 0).
    covered
        True for demand points already covered by the existing services (fixed).
    candidate_ids, demand_ids
        Identifiers of the rows and columns of ``covers`` (object arrays of str).
    picks
        After solving: row indices of the chosen candidates, in rank order.
    gains
        After solving: population newly covered by each pick (first pick covering it).
    new_counts
        After solving: demand points newly covered by each pick.
    assignment
        After solving: for each demand point, the index in ``picks`` of the first pick
        that covers it when it was not covered before, else −1.
    status
        After solving: :data:`STATUS_GREEDY`, :data:`STATUS_OPTIMAL` or
        :data:`STATUS_TIME_LIMIT`.
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
    status: str = STATUS_GREEDY

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
        cand, dem, w = _ids_and_weights(candidate_ids, demand_ids, weights)
        cov = (np.zeros(dem.shape[0], dtype=bool) if covered is None
               else np.asarray(covered, dtype=bool))
        if cov.shape[0] != dem.shape[0]:
            msg = f"{cov.shape[0]} coverage flags for {dem.shape[0]} demand points"
            raise CoverageError(msg)
        row, col, minutes = _pairs(cost, cand, dem)
        keep = ~is_white_zone(minutes, threshold_min)
        covers = sp.csr_array(
            (np.ones(int(keep.sum()), dtype=bool), (row[keep], col[keep])),
            shape=(cand.shape[0], dem.shape[0]),
        )
        covers.sum_duplicates()
        return cls(covers=covers, weights=w, covered=cov, candidate_ids=cand, demand_ids=dem)

    def value(self, rows: Sequence[int]) -> int:
        """Return the population newly covered by a set of candidate rows (no double count)."""
        if len(rows) == 0:
            return 0
        hit = (np.asarray(self.covers[np.asarray(list(rows), dtype=np.int64)]
                          .astype(np.int64).sum(axis=0)).ravel() > 0) & ~self.covered
        return int(self.weights[hit].sum())

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
        self.status = STATUS_GREEDY
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

    def solve_exact(self, k: int, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S
                    ) -> MaximalCovering:
        """Pick at most ``k`` candidates maximising the newly covered population; returns self.

        Solved as an integer program by HiGHS (:func:`scipy.optimize.milp`, relative gap
        0; see the module docstring). The chosen candidates are ranked greedily among
        themselves (the per-pick ``gains`` add up to the optimum); a chosen candidate that
        covers no new commune is dropped, so fewer than ``k`` picks can come back. If the
        solver stops on ``time_limit_s`` (seconds), the better of its incumbent and the
        greedy is kept and :attr:`status` is :data:`STATUS_TIME_LIMIT`.
        """
        k = _check_k(k)
        greedy = MaximalCovering(self.covers, self.weights, self.covered, self.candidate_ids,
                                 self.demand_ids).solve(k)
        chosen, proven = _mclp_milp(self.covers, self.weights, self.covered, k, time_limit_s)
        if chosen is None or self.value(chosen) < sum(greedy.gains):
            logger.warning("le programme en nombres entiers n'a pas trouvé mieux que la "
                           "méthode gloutonne (limite de temps %.0f s) : la solution gloutonne "
                           "est gardée", time_limit_s)
            chosen, proven = greedy.picks, False
        elif self.value(chosen) == sum(greedy.gains):
            chosen = greedy.picks  # the greedy is optimal: its documented tie-break holds
        self._rank(chosen)
        self.status = STATUS_OPTIMAL if proven else STATUS_TIME_LIMIT
        return self

    def _rank(self, chosen: Sequence[int]) -> None:
        """Set picks, gains, counts and assignment from a set of rows, ranked greedily."""
        rows = np.sort(np.asarray(list(chosen), dtype=np.int64))
        sub = MaximalCovering(sp.csr_array(self.covers[rows]), self.weights, self.covered,
                              self.candidate_ids[rows], self.demand_ids)
        if rows.shape[0]:
            sub.solve(int(rows.shape[0]))
        self.picks = [int(rows[p]) for p in sub.picks]
        self.gains, self.new_counts = list(sub.gains), list(sub.new_counts)
        self.assignment = (sub.assignment if rows.shape[0]
                           else np.full(self.demand_ids.shape[0], -1, dtype=np.int64))


def _ids_and_weights(candidate_ids: Sequence[str], demand_ids: Sequence[str],
                     weights: Sequence[int] | np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return candidate ids, demand ids (object arrays) and int64 weights, checked."""
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
    return cand, dem, w


def _pairs(cost: pd.DataFrame, cand: np.ndarray, dem: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (candidate row, demand column, minutes) of the known pairs of a cost table."""
    require_columns(cost, ("site_id", "code_insee", "minutes"), file="cost matrix")
    minutes = pd.to_numeric(cost["minutes"], errors="coerce").to_numpy(dtype=np.float64)
    row = pd.Index(cand).get_indexer(cost["site_id"].astype(str).to_numpy(dtype=object))
    col = pd.Index(dem).get_indexer(cost["code_insee"].astype(str).to_numpy(dtype=object))
    known = (row >= 0) & (col >= 0)
    unknown = int((~known).sum())
    if unknown:
        logger.debug("%d cost pairs name an unknown candidate or commune: ignored", unknown)
    return row[known], col[known], minutes[known]


def _mclp_milp(covers: sp.csr_array, weights: np.ndarray, covered: np.ndarray, k: int,
               time_limit_s: float) -> tuple[list[int] | None, bool]:
    """Solve the maximal covering integer program; return (chosen rows, proven optimal).

    Variables: binary ``x`` (candidates), continuous ``y ∈ [0, 1]`` (demand points not yet
    covered, of positive weight, reachable by a candidate): with integral ``x`` the best
    ``y_i`` is 1 exactly when a chosen candidate covers ``i``.
    """
    n = covers.shape[0]
    reach = np.asarray(covers.astype(np.int64).sum(axis=0)).ravel() > 0
    cols = np.flatnonzero(~covered & (weights > 0) & reach)
    if n == 0 or cols.shape[0] == 0:
        return [], True
    m = int(cols.shape[0])
    a = sp.csr_array(covers[:, cols]).astype(np.float64)  # n × m
    c = np.concatenate([np.zeros(n), -weights[cols].astype(np.float64)])
    link = sp.hstack([-a.T, sp.eye_array(m)], format="csr")  # y_i - Σ_j a_ji x_j ≤ 0
    budget = sp.hstack([sp.csr_array(np.ones((1, n))), sp.csr_array((1, m))], format="csr")
    res = milp(c, integrality=np.concatenate([np.ones(n), np.zeros(m)]),
               bounds=Bounds(0.0, 1.0),
               constraints=[LinearConstraint(link, -np.inf, 0.0),
                            LinearConstraint(budget, 0.0, float(k))],
               options=_milp_options(time_limit_s))
    if res.x is None:
        logger.warning("programme en nombres entiers de couverture maximale : %s", res.message)
        return None, False
    return [int(j) for j in np.flatnonzero(res.x[:n] > 0.5)], bool(res.status == 0)


# --- the p-median model -----------------------------------------------------------------


@dataclass
class PMedian:
    """p-median with fixed existing services: choose ``k`` sites minimising inhabitants × minutes.

    Build it with :meth:`from_cost_matrix`, then call :meth:`solve` (greedy) or
    :meth:`solve_exact`. Each demand point goes to its nearest service, existing or new.

    Attributes
    ----------
    weights
        Population of each demand point (int64, ≥ 0).
    existing
        Minutes to the nearest existing service (float64; NaN: none reachable). Demand points
        with NaN are **left out of the objective** (no cost to weigh; see the module
        docstring).
    rows, cols, minutes
        The candidate × demand pairs with a finite time (candidate row, demand column,
        minutes).
    candidate_ids, demand_ids
        Identifiers (object arrays of str).
    picks
        After solving: row indices of the ``k`` chosen candidates, in rank order.
    after
        After solving: minutes to the nearest service, existing or chosen (NaN stays NaN
        unless a chosen site reaches the point).
    assignment
        After solving: index in ``picks`` of the site a demand point goes to, −1 when it
        stays with an existing service (or is unreachable).
    status
        :data:`STATUS_GREEDY`, :data:`STATUS_OPTIMAL` or :data:`STATUS_TIME_LIMIT`.
    """

    weights: np.ndarray
    existing: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    minutes: np.ndarray
    candidate_ids: np.ndarray
    demand_ids: np.ndarray
    picks: list[int] = field(default_factory=list)
    after: np.ndarray = field(default_factory=lambda: np.zeros(0))
    assignment: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    status: str = STATUS_GREEDY

    @classmethod
    def from_cost_matrix(
        cls, cost: pd.DataFrame, *, candidate_ids: Sequence[str], demand_ids: Sequence[str],
        weights: Sequence[int] | np.ndarray, existing: Sequence[float] | np.ndarray,
    ) -> PMedian:
        """Model from a long cost table.

        Parameters
        ----------
        cost
            ``site_id``, ``code_insee``, ``minutes`` (float; NaN or absent = not reachable).
            It must hold every pair nearer than the existing service (a matrix bounded by
            the largest finite ``existing`` minutes is enough).
        candidate_ids, demand_ids
            Identifiers, in tie-break order.
        weights
            Population of each demand point.
        existing
            Minutes to the nearest existing service (NaN: none).
        """
        cand, dem, w = _ids_and_weights(candidate_ids, demand_ids, weights)
        d0 = np.asarray(existing, dtype=np.float64)
        if d0.shape[0] != dem.shape[0]:
            msg = f"{d0.shape[0]} existing times for {dem.shape[0]} demand points"
            raise CoverageError(msg)
        row, col, minutes = _pairs(cost, cand, dem)
        ok = np.isfinite(minutes)
        return cls(weights=w, existing=d0, rows=row[ok], cols=col[ok], minutes=minutes[ok],
                   candidate_ids=cand, demand_ids=dem)

    @property
    def in_objective(self) -> np.ndarray:
        """True for the demand points with a finite existing time (those weighed)."""
        return np.isfinite(self.existing)

    def objective(self, rows: Sequence[int]) -> float:
        """Return Σ inhabitants × minutes over :attr:`in_objective` with ``rows`` added."""
        after = self._after(np.asarray(list(rows), dtype=np.int64))
        ok = self.in_objective
        return float((self.weights[ok] * after[ok]).sum())

    def _after(self, rows: np.ndarray) -> np.ndarray:
        """Minutes to the nearest service when the candidate ``rows`` are added."""
        after = self.existing.copy()
        sel = np.isin(self.rows, rows)
        if sel.any():
            best = np.full(after.shape[0], np.inf)
            np.minimum.at(best, self.cols[sel], self.minutes[sel])
            reached = np.isfinite(best)
            after[reached] = np.fmin(after[reached], best[reached])
        return after

    def _savings(self, current: np.ndarray) -> np.ndarray:
        """Inhabitants × minutes each candidate would save from ``current`` (0 for NaN)."""
        ok = self.in_objective[self.cols]
        cur = current[self.cols]
        gain = np.where(ok, np.maximum(cur - self.minutes, 0.0) * self.weights[self.cols], 0.0)
        return np.bincount(self.rows, weights=gain, minlength=self.candidate_ids.shape[0])

    def solve(self, k: int) -> PMedian:
        """Pick exactly ``k`` candidates greedily (largest saving first, ties: lowest row)."""
        k = _check_k(k)
        n = self.candidate_ids.shape[0]
        if k > n:
            msg = f"k = {k} nouveaux sites pour {n} candidat(s) : k ≤ {n} attendu"
            raise CoverageError(msg)
        chosen: list[int] = []
        current = self.existing.copy()
        for _ in range(k):
            saving = self._savings(current)
            saving[chosen] = -1.0
            best = int(np.argmax(saving))
            chosen.append(best)
            current = self._after(np.asarray(chosen, dtype=np.int64))
        self._rank(chosen)
        self.status = STATUS_GREEDY
        return self

    def solve_exact(self, k: int, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> PMedian:
        """Pick exactly ``k`` candidates minimising Σ inhabitants × minutes; returns self.

        Integer program solved by HiGHS (see the module docstring); the picks are ranked
        greedily among themselves. On the time limit the better of the solver's incumbent
        and the greedy is kept and :attr:`status` says so.
        """
        greedy = PMedian(self.weights, self.existing, self.rows, self.cols, self.minutes,
                         self.candidate_ids, self.demand_ids).solve(k)
        chosen, proven = _pmedian_milp(self, int(k), time_limit_s)
        greedy_value = greedy.objective(greedy.picks)
        if chosen is None or self.objective(chosen) > greedy_value + 1e-6:
            logger.warning("le programme p-médian en nombres entiers n'a pas trouvé mieux que "
                           "la méthode gloutonne (limite de temps %.0f s) : la solution "
                           "gloutonne est gardée", time_limit_s)
            chosen, proven = greedy.picks, False
        elif self.objective(chosen) >= greedy_value - 1e-9 * max(1.0, abs(greedy_value)):
            chosen = greedy.picks  # the greedy is optimal: its documented tie-break holds
        self._rank(chosen)
        self.status = STATUS_OPTIMAL if proven else STATUS_TIME_LIMIT
        return self

    def _rank(self, chosen: Sequence[int]) -> None:
        """Order the chosen rows greedily by saving; set picks, after and assignment."""
        left = [int(c) for c in sorted(chosen)]
        order: list[int] = []
        current = self.existing.copy()
        while left:
            saving = self._savings(current)[left]
            order.append(left.pop(int(np.argmax(saving))))
            current = self._after(np.asarray(order, dtype=np.int64))
        self.picks, self.after = order, current
        assignment = np.full(self.demand_ids.shape[0], -1, dtype=np.int64)
        best = self.existing.copy()
        for rank, pick in enumerate(order):  # strictly nearer than what came before
            sel = self.rows == pick
            cols, mins = self.cols[sel], self.minutes[sel]
            better = ~(mins >= best[cols])  # NaN existing: any finite time is better
            assignment[cols[better]] = rank
            best[cols[better]] = mins[better]
        # a later pick may be nearer than an earlier one: keep the nearest
        self.assignment = assignment


def _pmedian_milp(model: PMedian, k: int, time_limit_s: float
                  ) -> tuple[list[int] | None, bool]:
    """Solve the p-median integer program (savings form); return (chosen, proven optimal)."""
    n = model.candidate_ids.shape[0]
    if k > n:
        msg = f"k = {k} nouveaux sites pour {n} candidat(s) : k ≤ {n} attendu"
        raise CoverageError(msg)
    d0 = model.existing[model.cols]
    useful = model.in_objective[model.cols] & (model.minutes < d0)
    rows, cols = model.rows[useful], model.cols[useful]
    saving = (d0[useful] - model.minutes[useful]) * model.weights[cols]
    p = int(rows.shape[0])
    dem, dem_idx = np.unique(cols, return_inverse=True)
    c = np.concatenate([np.zeros(n), -saving])
    eye_p = sp.eye_array(p, format="csr")
    pick = sp.csr_array((np.ones(p), (np.arange(p), rows)), shape=(p, n))
    link = sp.hstack([-pick, eye_p], format="csr")  # z_ij - x_j ≤ 0
    one = sp.hstack([sp.csr_array((dem.shape[0], n)),
                     sp.csr_array((np.ones(p), (dem_idx, np.arange(p))),
                                  shape=(dem.shape[0], p))], format="csr")  # Σ_j z_ij ≤ 1
    budget = sp.hstack([sp.csr_array(np.ones((1, n))), sp.csr_array((1, p))], format="csr")
    cons = [LinearConstraint(budget, float(k), float(k))]
    if p:
        cons += [LinearConstraint(link, -np.inf, 0.0), LinearConstraint(one, -np.inf, 1.0)]
    res = milp(c, integrality=np.concatenate([np.ones(n), np.zeros(p)]),
               bounds=Bounds(0.0, 1.0), constraints=cons, options=_milp_options(time_limit_s))
    if res.x is None:
        logger.warning("programme p-médian en nombres entiers : %s", res.message)
        return None, False
    chosen = [int(j) for j in np.argsort(-res.x[:n], kind="stable")[:k]]
    return chosen, bool(res.status == 0)


# --- candidate lists (files of commune codes) --------------------------------------------


@dataclass(frozen=True)
class CodeList:
    """Commune codes given by a user, with where each came from (for the messages).

    Attributes
    ----------
    codes
        The codes as given (str; blank cells are skipped).
    rows
        1-based data row (file) or position (command line) of each code.
    source
        File name, or the option that gave the codes (``--exclure``).
    column
        Column of the file, None for codes given on the command line.
    """

    codes: tuple[str, ...]
    rows: tuple[int, ...]
    source: str
    column: str | None = None


def read_code_list(path: str | Path) -> CodeList:
    """Read a list of commune codes from a CSV/XLSX file (one code per row).

    The code column is ``code_insee`` or one of its usual names (``code_commune``,
    ``insee``, ``codgeo``, ``depcom``, ``com``, ``code``; case and accents ignored), or the
    only column of the file. Other columns (``nom``, a premises type…) are ignored.

    Parameters
    ----------
    path
        The file (CSV, XLSX, GeoJSON, GeoPackage or Parquet: :func:`coverage.io.tables.read_table`).

    Returns
    -------
    CodeList
        The codes with their 1-based data rows.

    Raises
    ------
    InputError
        The file cannot be read, or has no code column (the message, in French, names the
        file and its columns).
    """
    df = read_table(path)
    by_key = {normalise_name(str(c)): c for c in df.columns}
    col = next((by_key[a] for a in _CODE_ALIASES if a in by_key), None)
    if col is None and len(df.columns) == 1:
        col = df.columns[0]
    if col is None:
        problem = Problem(str(path), None, "code_insee",
                          "une colonne « code_insee » (code commune INSEE)",
                          "colonnes " + ", ".join(map(str, df.columns))[:200])
        raise MissingColumnError(problem, problem.french())
    values = df[col]
    keep = [i for i, v in enumerate(values) if not pd.isna(v) and str(v).strip()]
    return CodeList(codes=tuple(str(values.iloc[i]).strip() for i in keep),
                    rows=tuple(i + 1 for i in keep), source=str(path), column=str(col))


def code_list(codes: Sequence[str], source: str) -> CodeList:
    """Return a :class:`CodeList` of codes given directly (e.g. ``--exclure 48095,48146``)."""
    kept = [(i + 1, str(c).strip()) for i, c in enumerate(codes) if str(c).strip()]
    return CodeList(codes=tuple(c for _, c in kept), rows=tuple(i for i, _ in kept),
                    source=source, column=None)


def _dep_of(code: str) -> str:
    """Département of a well-formed commune code (3 characters for 97x, else 2)."""
    return code[:3] if code.startswith("97") else code[:2]


def _resolve_codes(lst: CodeList, code_dep: pd.Series, depts: Sequence[str] | None
                   ) -> tuple[set[str], int]:
    """Return the codes of ``lst`` that are communes of ``depts``, and the count ignored.

    ``code_dep``: département of every commune given, indexed by ``code_insee``. Codes of
    other départements are ignored (counted); a code of ``depts`` (or, without ``depts``,
    any code) that is not a commune given, or a malformed code, is an error.

    Raises
    ------
    UnknownCodeError
        One problem per bad code (file, row, column, code), with a French message.
    """
    norm = normalise_codes(pd.Series(lst.codes, dtype=object))
    wanted = None if depts is None else {str(d) for d in depts}
    keep: set[str] = set()
    ignored = 0
    problems: list[Problem] = []
    where = ("du " + _base_label(sorted(wanted))) if wanted else "du calcul"
    for code, raw, row in zip(norm, lst.codes, lst.rows, strict=True):
        known = isinstance(code, str) and code in code_dep.index
        if known:
            if wanted is None or str(code_dep[code]) in wanted:
                keep.add(code)
            else:
                ignored += 1
        elif (isinstance(code, str) and _CODE_FORMS.match(code) and wanted is not None
              and _dep_of(code) not in wanted):
            ignored += 1
        else:
            problems.append(Problem(
                lst.source if lst.column is not None else f"{lst.source}, position {row}",
                row if lst.column is not None else None, lst.column,
                f"un code commune {where} présent dans le calcul", raw))
    if problems:
        text = " ; ".join(p.french() for p in problems[:5])
        if len(problems) > 5:
            text += f" ; et {len(problems) - 5} autre(s) code(s) inconnu(s)"
        raise UnknownCodeError(problems[:50], f"code commune inconnu : {text}")
    return keep, ignored


# --- front-end on GeoDataFrames ---------------------------------------------------------


@dataclass(frozen=True)
class SitingOptions:
    """How the new sites are chosen and counted.

    Attributes
    ----------
    objective
        ``couverture`` (maximal covering at the threshold) or ``p-median`` (minimise the
        inhabitants × minutes to the nearest service; exactly ``k`` sites).
    method
        ``exacte`` (integer program, with the greedy's gap reported) or ``gloutonne`` (the
        fast path only).
    neighbours
        Also count the families of the communes given outside the départements (in the
        objective, and in a separate column). Default: the départements' families only.
    pop_min
        Keep the candidates whose commune has at least this population (inhabitants).
    candidate_codes
        Keep only the candidates of these communes (e.g. bourgs-centres, France Services).
    exclude_codes
        Drop the candidates of these communes.
    time_limit_s
        Time limit of the integer program, seconds.
    """

    objective: Objective = "couverture"
    method: Method = "exacte"
    neighbours: bool = False
    pop_min: int | None = None
    candidate_codes: CodeList | None = None
    exclude_codes: CodeList | None = None
    time_limit_s: float = DEFAULT_TIME_LIMIT_S


@dataclass
class SitingResult:
    """Result of :func:`plan_new_sites`.

    Attributes
    ----------
    table
        One row per suggested site (:data:`SITES_COLUMNS`, or :data:`P_MEDIAN_COLUMNS`
        for the p-median).
    covered
        One row per commune newly covered — for the p-median, whose nearest service becomes
        a new site — (:data:`COVERED_COLUMNS`): the rank and ``site_id`` of its site and
        its minutes to that site.
    model
        The solved :class:`MaximalCovering` or :class:`PMedian`.
    parameters
        Engine parameters, threshold, type, ``k``, départements, base, counts, the
        greedy's and the optimum's values and the gap (JSON-ready).
    greedy
        The greedy solution of the same model when the exact one was asked (for the gap),
        else None.
    """

    table: pd.DataFrame
    covered: pd.DataFrame
    model: MaximalCovering | PMedian
    parameters: dict[str, Any]
    greedy: MaximalCovering | PMedian | None = None


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
                                  "des coordonnées WGS 84 numériques",
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
        raise InputError([Problem("candidates", int(r) + 1, "site_id", "un identifiant unique",
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
                "une colonne « code_dep » pour garder les candidats des départements "
                "choisis")])
        out = out[out["code_dep"].isin([str(d) for d in depts])]
    return out.reset_index(drop=True)


def _population(communes: pd.DataFrame) -> np.ndarray:
    pop = pd.to_numeric(communes["population"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(pop) | (pop < 0))
    if bad.shape[0]:
        raise InputError([Problem("communes", int(r) + 1, "population", "un entier ≥ 0",
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
            msg = "donnez la table d'accès du calcul ou les services existants"
            raise CoverageError(msg)
        require_columns(services, ("service_id", "type_service", "lon", "lat"), file="services")
        sel = services[services["type_service"].astype(str) == type_service]
        access = engine.nearest(communes, sel, service_types=(type_service,))  # type: ignore[arg-type]
    require_columns(access, ("code_insee", "type_service", "minutes"), file="access")
    rows = access[access["type_service"].astype(str) == type_service]
    if "moteur" in rows.columns and len(rows):
        engines = sorted({str(m) for m in rows["moteur"].dropna().unique()})
        if engines and engines != [engine.name]:
            msg = (f"les temps d'accès viennent du moteur {'/'.join(engines)} mais ceux des "
                   f"nouveaux sites viendraient du moteur {engine.name} : utilisez le moteur "
                   "du calcul, ou passez access=None pour les recalculer depuis les services")
            raise CoverageError(msg)
    per_code = (pd.to_numeric(rows["minutes"], errors="coerce")
                .groupby(rows["code_insee"].astype(str)).min())
    out = codes.map(per_code).to_numpy(dtype=np.float64)
    absent = int((~codes.isin(per_code.index)).sum())
    if absent:
        logger.warning("%d commune(s) sans ligne d'accès %s : comptée(s) non couverte(s)",
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
    """Raise :class:`CoverageError` (French) for a combined type, a bad threshold or ``k``."""
    if type_service == NO_SERVICE:
        msg = (f"un nouveau site offre un seul type de service : choisissez "
               f"{' ou '.join(settings.service_types)}, pas la vue combinée {NO_SERVICE}")
        raise CoverageError(msg)
    if not (isinstance(threshold_min, (int, float)) and math.isfinite(threshold_min)
            and threshold_min > 0):
        msg = f"seuil {threshold_min!r} refusé : un nombre de minutes positif est attendu"
        raise CoverageError(msg)
    _check_k(k)


def _unique_codes(communes: pd.DataFrame) -> pd.Series:
    """Return the communes' ``code_insee`` as str; raise :class:`InputError` on repeats."""
    codes = communes["code_insee"].astype(str)
    dup = codes.duplicated().to_numpy()
    if dup.any():
        raise InputError([Problem("communes", int(r) + 1, "code_insee", "un code unique",
                                  str(codes.iloc[r])) for r in np.flatnonzero(dup)[:20]])
    return codes


def _is_fictional(communes: pd.DataFrame, comm_dep: np.ndarray) -> bool:
    """Return whether the communes are fictional (``fictif`` column or « Z… » codes)."""
    return bool(
        ("fictif" in communes.columns and communes["fictif"].fillna(False).astype(bool).any())
        or any(is_fictional_code(str(d)) for d in comm_dep)
    )


def _base_label(dep_list: list[str] | None) -> str:
    """French statement of the base of the counts (« département 48 »…)."""
    if dep_list is None:
        return "toutes les communes données"
    return ("département " if len(dep_list) == 1 else "départements ") + ", ".join(dep_list)


@dataclass(frozen=True)
class _Question:
    """The prepared question: demand communes, existing minutes, filtered candidates."""

    communes: pd.DataFrame
    codes: pd.Series
    pop: np.ndarray
    minutes: np.ndarray
    in_area: np.ndarray
    comm_dep: np.ndarray
    cands: pd.DataFrame
    info: dict[str, Any]
    dep_list: list[str] | None
    neighbours: bool
    fictif: bool

    @property
    def base(self) -> str:
        """French statement of the base of the columns (the départements' families)."""
        return _base_label(self.dep_list)

    @property
    def objective_base(self) -> str:
        """French statement of the families the objective counts."""
        return self.base + (" et communes des autres départements du calcul (voisins)"
                            if self.neighbours else "")


def _filter_candidates(cands: pd.DataFrame, communes: pd.DataFrame, pop: np.ndarray,
                       dep_list: list[str] | None, options: SitingOptions
                       ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Apply the candidate list, the exclusions and the minimum population."""
    codes = communes["code_insee"].astype(str).to_numpy(dtype=object)
    code_dep = pd.Series(communes["code_dep"].astype(str).to_numpy(dtype=object), index=codes)
    info: dict[str, Any] = {"candidats_avant_filtres": len(cands)}
    if options.candidate_codes is not None:
        keep, ignored = _resolve_codes(options.candidate_codes, code_dep, dep_list)
        cands = cands[cands["code_insee"].isin(keep)]
        info["liste_candidats"] = options.candidate_codes.source
        info["codes_autres_departements_ignores"] = ignored
    if options.exclude_codes is not None:
        drop, _ = _resolve_codes(options.exclude_codes, code_dep, dep_list)
        out = cands["code_insee"].isin(drop)
        info["candidats_exclus"] = int(out.sum())
        cands = cands[~out]
    if options.pop_min is not None:
        if options.pop_min < 0:
            msg = f"population minimale {options.pop_min} refusée : un entier ≥ 0 est attendu"
            raise CoverageError(msg)
        cpop = cands["code_insee"].map(pd.Series(pop, index=codes))
        if cpop.isna().any():
            msg = ("population minimale des candidats : chaque candidat doit être une commune "
                   "du calcul (colonne code_insee)")
            raise CoverageError(msg)
        below = (cpop < options.pop_min).to_numpy()
        info["pop_min"] = int(options.pop_min)
        info["candidats_sous_pop_min"] = int(below.sum())
        cands = cands[~below]
    return cands.reset_index(drop=True), info


def _prepare(  # noqa: PLR0913 - the parts of one planning question
    communes: pd.DataFrame, access: pd.DataFrame | None, services: pd.DataFrame | None,
    engine: Engine, *, type_service: str, candidates: pd.DataFrame | None,
    depts: Sequence[str] | None, k: int, options: SitingOptions,
) -> _Question:
    """Check the inputs; return the demand, the existing minutes and the candidates."""
    require_columns(communes, COMMUNE_COLUMNS, file="communes")
    _unique_codes(communes)
    dep_list = None if depts is None else [str(d) for d in depts]
    all_pop = _population(communes)
    cands = (candidate_sites(communes, depts=dep_list) if candidates is None
             else _given_candidates(candidates, dep_list))
    cands, info = _filter_candidates(cands, communes, all_pop, dep_list, options)
    info["candidats_origine"] = ("chefs-lieux des communes" if candidates is None
                                 else "points donnés")
    n = len(cands)
    if n == 0:
        msg = ("aucun candidat ne reste après les filtres (liste de candidats, exclusions, "
               "population minimale) : assouplissez-les")
        raise CoverageError(msg)
    if k > n:
        msg = (f"k = {k} nouveaux sites demandés pour {n} candidat(s) après les filtres : "
               f"k ≤ {n} attendu")
        raise CoverageError(msg)
    comm_dep_all = communes["code_dep"].astype(str).to_numpy(dtype=object)
    in_area_all = (np.ones(len(communes), dtype=bool) if dep_list is None
                   else np.isin(comm_dep_all, dep_list))
    neighbours = bool(options.neighbours) and dep_list is not None
    keep = np.ones(len(communes), dtype=bool) if neighbours else in_area_all
    demand = communes[keep] if not keep.all() else communes
    minutes = existing_minutes(demand, access, services, engine, type_service=type_service)
    return _Question(
        communes=demand, codes=demand["code_insee"].astype(str), pop=all_pop[keep],
        minutes=minutes, in_area=in_area_all[keep], comm_dep=comm_dep_all[keep], cands=cands,
        info=info, dep_list=dep_list, neighbours=neighbours,
        fictif=_is_fictional(communes, comm_dep_all),
    )


def _int_or_na(values: list[int | None]) -> pd.Series:
    """Integer column, NA where None (a count that was not made)."""
    return pd.Series(values, dtype="Int64")


def _sites_table(model: MaximalCovering, q: _Question, head: dict[str, Any]
                 ) -> tuple[pd.DataFrame, int]:
    """Return the covering table (:data:`SITES_COLUMNS`) and the initial white population.

    Every population column is on the département base (``q.in_area``); the neighbours'
    part is a separate column, NA when they are not counted. ``head`` holds the columns
    shared by every row.
    """
    pop, in_area, already = q.pop, q.in_area, ~is_white_zone(q.minutes, float(
        head["seuil_minutes"]))
    remaining = initial_white = int(pop[~already & in_area].sum())
    covered_total = int(pop[already & in_area].sum())
    rows = []
    for rank, pick in enumerate(model.picks):
        new = model.assignment == rank
        gain = int(pop[new & in_area].sum())
        remaining -= gain
        covered_total += gain
        c = q.cands.iloc[pick]
        rows.append({
            "rang": rank + 1, "site_id": c["site_id"], "code_insee": c["code_insee"],
            "nom": c["nom"], "code_dep": c["code_dep"], "lon": float(c["lon"]),
            "lat": float(c["lat"]), "population_nouvellement_couverte": gain,
            "communes_nouvellement_couvertes": int((new & in_area).sum()),
            "population_nouvellement_couverte_hors_departement": (
                int(pop[new & ~in_area].sum()) if q.neighbours else None),
            "population_couverte_cumulee": covered_total,
            "population_zone_blanche_restante": remaining, **head,
        })
    table = pd.DataFrame(rows, columns=list(SITES_COLUMNS))
    table["population_nouvellement_couverte_hors_departement"] = _int_or_na(
        [r["population_nouvellement_couverte_hors_departement"] for r in rows])
    table = table.astype({"rang": np.int64, "population_nouvellement_couverte": np.int64,
                          "communes_nouvellement_couvertes": np.int64,
                          "population_couverte_cumulee": np.int64,
                          "population_zone_blanche_restante": np.int64,
                          "seuil_minutes": np.float64, "fictif": bool})
    return table, initial_white


def _covered_table(assignment: np.ndarray, site_ids: list[str], q: _Question,
                   minutes: np.ndarray) -> pd.DataFrame:
    """Return the communes given to a new site (:data:`COVERED_COLUMNS`), with their minutes."""
    new_idx = np.flatnonzero(assignment >= 0)
    covered = pd.DataFrame({
        "code_insee": q.codes.to_numpy(dtype=object)[new_idx],
        "nom": q.communes["nom"].astype(str).to_numpy(dtype=object)[new_idx],
        "code_dep": q.comm_dep[new_idx],
        "population": q.pop[new_idx],
        "rang": assignment[new_idx] + 1,
        "site_id": [site_ids[a] for a in assignment[new_idx]],
        "minutes": minutes[new_idx].astype(np.float64),
    })
    return covered.sort_values(["rang", "code_insee"], kind="mergesort").reset_index(
        drop=True)[list(COVERED_COLUMNS)]


def _pair_minutes(cost: pd.DataFrame, site_of: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Minutes of each (site, commune) pair in the cost table (NaN when absent)."""
    if len(codes) == 0:
        return np.zeros(0)
    pair = (cost.assign(site_id=cost["site_id"].astype(str),
                        code_insee=cost["code_insee"].astype(str))
            .groupby(["site_id", "code_insee"], sort=False)["minutes"].min())
    keys = pd.MultiIndex.from_arrays([site_of, codes])
    return pair.reindex(keys).to_numpy(dtype=np.float64)


def _covering_plan(q: _Question, cost: pd.DataFrame, k: int, threshold_min: float,
                   options: SitingOptions) -> tuple[MaximalCovering, MaximalCovering | None]:
    """Solve the maximal covering (greedy, or exact with its greedy); return both."""
    already = ~is_white_zone(q.minutes, threshold_min)  # NaN: never covered

    def model() -> MaximalCovering:
        return MaximalCovering.from_cost_matrix(
            cost, candidate_ids=q.cands["site_id"].tolist(), demand_ids=q.codes.tolist(),
            weights=q.pop, threshold_min=threshold_min, covered=already)

    greedy = model().solve(k)
    if options.method == "gloutonne":
        return greedy, None
    return model().solve_exact(k, time_limit_s=options.time_limit_s), greedy


def _gap_parameters(value: float, greedy_value: float | None, *, higher_is_better: bool,
                    unit: str) -> dict[str, Any]:
    """Return the optimum's and the greedy's values and the gap (objective's base)."""
    out: dict[str, Any] = {f"optimum_{unit}": value}
    if greedy_value is None:
        return out
    gap = (value - greedy_value) if higher_is_better else (greedy_value - value)
    out[f"glouton_{unit}"] = greedy_value
    out[f"ecart_glouton_{unit}"] = gap
    out["ecart_glouton_part"] = (gap / value) if value else 0.0
    return out


def _plan_covering(q: _Question, engine: Engine, cost: pd.DataFrame | None, k: int,
                   threshold_min: float, type_service: str, options: SitingOptions
                   ) -> SitingResult:
    """Maximal covering: the sites table, the newly covered communes, the gap."""
    if cost is None:
        cost = candidate_matrix(engine, q.communes, q.cands, threshold_min=threshold_min,
                                type_service=type_service)
    model, greedy = _covering_plan(q, cost, k, threshold_min, options)
    method = "exacte" if greedy is not None else "gloutonne"
    head = {"methode": method, "base_comptage": q.base, "moteur": engine.name,
            "type_service": type_service, "seuil_minutes": float(threshold_min),
            "fictif": q.fictif}
    table, initial_white = _sites_table(model, q, head)
    site_ids = [str(model.candidate_ids[p]) for p in model.picks]
    new_idx = np.flatnonzero(model.assignment >= 0)
    minutes = np.full(len(q.codes), np.nan)
    minutes[new_idx] = _pair_minutes(
        cost, np.asarray([site_ids[a] for a in model.assignment[new_idx]], dtype=object),
        q.codes.to_numpy(dtype=object)[new_idx])
    covered = _covered_table(model.assignment, site_ids, q, minutes)
    already = ~is_white_zone(q.minutes, threshold_min)
    parameters = {
        "objectif": "couverture", "methode": method, "statut": model.status,
        "base": q.base, "base_objectif": q.objective_base, "voisins_comptes": q.neighbours,
        **_gap_parameters(sum(model.gains), None if greedy is None else sum(greedy.gains),
                          higher_is_better=True, unit="population"),
        "population_deja_couverte": int(q.pop[already & q.in_area].sum()),
        "population_zone_blanche_initiale": initial_white,
    }
    if len(table) < k:
        logger.info("only %d site(s) of %d cover new communes", len(table), k)
    return SitingResult(table=table, covered=covered, model=model, parameters=parameters,
                        greedy=greedy)


def _mean(weights: np.ndarray, minutes: np.ndarray) -> float:
    """Population-weighted mean minutes over finite times (NaN when no population)."""
    ok = np.isfinite(minutes)
    total = float(weights[ok].sum())
    return float((weights[ok] * minutes[ok]).sum() / total) if total > 0 else float("nan")


def _p_median_table(model: PMedian, q: _Question, head: dict[str, Any]) -> pd.DataFrame:
    """Return the p-median table (:data:`P_MEDIAN_COLUMNS`), département base."""
    rows = []
    for rank, pick in enumerate(model.picks):
        att = model.assignment == rank
        base = att & q.in_area
        c = q.cands.iloc[pick]
        rows.append({
            "rang": rank + 1, "site_id": c["site_id"], "code_insee": c["code_insee"],
            "nom": c["nom"], "code_dep": c["code_dep"], "lon": float(c["lon"]),
            "lat": float(c["lat"]), "population_rattachee": int(q.pop[base].sum()),
            "communes_rattachees": int(base.sum()),
            "minutes_moyennes_avant": _mean(q.pop[base], model.existing[base]),
            "minutes_moyennes_apres": _mean(q.pop[base], model.after[base]),
            "population_rattachee_hors_departement": (
                int(q.pop[att & ~q.in_area].sum()) if q.neighbours else None),
            **head,
        })
    table = pd.DataFrame(rows, columns=list(P_MEDIAN_COLUMNS))
    table["population_rattachee_hors_departement"] = _int_or_na(
        [r["population_rattachee_hors_departement"] for r in rows])
    return table.astype({"rang": np.int64, "population_rattachee": np.int64,
                         "communes_rattachees": np.int64, "minutes_moyennes_avant": np.float64,
                         "minutes_moyennes_apres": np.float64, "fictif": bool})


def _plan_p_median(q: _Question, engine: Engine, k: int, type_service: str,
                   options: SitingOptions) -> SitingResult:
    """p-median: the sites table, the communes that change site, the gap."""
    finite = q.minutes[np.isfinite(q.minutes)]
    bound = float(finite.max()) if finite.shape[0] else 0.0
    cost = candidate_matrix(engine, q.communes, q.cands, threshold_min=max(bound, 1.0),
                            type_service=type_service)

    def model() -> PMedian:
        return PMedian.from_cost_matrix(cost, candidate_ids=q.cands["site_id"].tolist(),
                                        demand_ids=q.codes.tolist(), weights=q.pop,
                                        existing=q.minutes)

    greedy = model().solve(k)
    solved = greedy if options.method == "gloutonne" else model().solve_exact(
        k, time_limit_s=options.time_limit_s)
    exact = options.method != "gloutonne"
    head = {"methode": "exacte" if exact else "gloutonne", "base_comptage": q.base,
            "moteur": engine.name, "type_service": type_service, "fictif": q.fictif}
    table = _p_median_table(solved, q, head)
    covered = _covered_table(solved.assignment,
                             [str(solved.candidate_ids[p]) for p in solved.picks], q,
                             solved.after)
    no_time = ~np.isfinite(q.minutes)
    parameters = {
        "objectif": "p-median", "methode": head["methode"], "statut": solved.status,
        "base": q.base, "base_objectif": q.objective_base, "voisins_comptes": q.neighbours,
        **_gap_parameters(solved.objective(solved.picks),
                          greedy.objective(greedy.picks) if exact else None,
                          higher_is_better=False, unit="minutes_habitants"),
        "minutes_moyennes_avant": _mean(q.pop[q.in_area & ~no_time], q.minutes[
            q.in_area & ~no_time]),
        "minutes_moyennes_apres": _mean(q.pop[q.in_area & ~no_time], solved.after[
            q.in_area & ~no_time]),
        "borne_minutes": bound,
        "population_sans_temps": int(q.pop[no_time & q.in_area].sum()),
        "population_sans_temps_atteinte": int(
            q.pop[no_time & q.in_area & np.isfinite(solved.after)].sum()),
    }
    return SitingResult(table=table, covered=covered, model=solved, parameters=parameters,
                        greedy=greedy if exact else None)


def plan_new_sites(  # noqa: PLR0913 - the keyword-only options of one planning question
    communes: pd.DataFrame, access: pd.DataFrame | None, services: pd.DataFrame | None,
    engine: Engine, *, type_service: str, threshold_min: float,
    candidates: pd.DataFrame | None = None, k: int = 1, depts: Sequence[str] | None = None,
    cost: pd.DataFrame | None = None, settings: Settings = Settings(),
    options: SitingOptions | None = None,
) -> SitingResult:
    """Suggest ``k`` new sites: maximal covering (default) or p-median, exact or greedy.

    Same parameters as :func:`best_new_sites`, plus ``cost``: a precomputed
    :func:`candidate_matrix` of these candidates at this threshold over at least the
    counted communes (the app caches it so that changing ``k`` does not route again; not
    used by the p-median, which needs a wider bound), and ``options``
    (:class:`SitingOptions`: objective, exact or greedy, neighbours, candidate filters;
    default: exact maximal covering, département base).

    Returns
    -------
    SitingResult
        The sites table, the communes given to a new site, the solved model, its greedy
        counterpart and the parameters (base, gap, counts).
    """
    options = options or SitingOptions()
    _check_question(type_service, threshold_min, k, settings)
    q = _prepare(communes, access, services, engine, type_service=type_service,
                 candidates=candidates, depts=depts, k=int(k), options=options)
    if options.objective == "p-median":
        result = _plan_p_median(q, engine, int(k), type_service, options)
    elif options.objective == "couverture":
        result = _plan_covering(q, engine, cost, int(k), threshold_min, type_service, options)
    else:
        msg = f"objectif {options.objective!r} inconnu : couverture ou p-median attendu"
        raise CoverageError(msg)
    result.parameters = {
        "moteur": engine.name, "engine": engine.parameters(), "type_service": type_service,
        "seuil_minutes": float(threshold_min), "k": int(k), "depts": q.dep_list,
        "candidats": len(q.cands), **q.info, "communes": len(q.communes),
        "population_base": int(q.pop[q.in_area].sum()), "fictif": q.fictif,
        **result.parameters,
    }
    return result


def best_new_sites(  # noqa: PLR0913 - the keyword-only options of one planning question
    communes: pd.DataFrame, access: pd.DataFrame | None, services: pd.DataFrame | None,
    engine: Engine, *, type_service: str, threshold_min: float,
    candidates: pd.DataFrame | None = None, k: int = 1, depts: Sequence[str] | None = None,
    settings: Settings = Settings(), options: SitingOptions | None = None,
) -> pd.DataFrame:
    """Return where ``k`` new sites would cover the most families (maximal covering).

    Candidates are the communes' representative points (chef-lieux) of ``depts`` by
    default. By default only the families of ``depts`` count (the base); with
    ``options.neighbours`` those of the other ``communes`` given count too, in a separate
    column. The optimum is exact (integer program) unless ``options.method`` is
    ``gloutonne``; see the module docstring for the method.

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
        Number of new sites (1 ≤ k ≤ number of candidates). Fewer rows come back when no
        candidate covers any new commune.
    depts
        Keep the candidates of these départements (default: all); the base of the counts.
    settings
        Run settings (service types).
    options
        :class:`SitingOptions` (default: exact, département base, no candidate filter).

    Returns
    -------
    pandas.DataFrame
        One row per site in rank order (:data:`SITES_COLUMNS`): ``rang``, ``site_id``,
        ``code_insee``, ``nom``, ``code_dep``, ``lon``, ``lat``,
        ``population_nouvellement_couverte`` and ``communes_nouvellement_couvertes``
        (inhabitants / communes of ``depts``), ``population_nouvellement_couverte_hors_departement``
        (neighbours, Int64, NA unless counted), ``population_couverte_cumulee`` and
        ``population_zone_blanche_restante`` (inhabitants of ``depts`` covered / still
        beyond the threshold after this site), ``methode``, ``base_comptage``, ``moteur``
        (``road``/``proxy``), ``type_service``, ``seuil_minutes``, ``fictif``.

    Raises
    ------
    CoverageError
        Combined type ``aucun_service``, bad threshold, ``k`` ≤ 0 or above the number of
        candidates, no candidate left, access from another engine.
    InputError
        Missing columns, bad population or candidate coordinates (file ``communes`` or
        ``candidates``, row, column); an unknown code in a candidate or exclusion list
        (:class:`~coverage.errors.UnknownCodeError`, French message).
    """
    return plan_new_sites(communes, access, services, engine, type_service=type_service,
                          threshold_min=threshold_min, candidates=candidates, k=k,
                          depts=depts, settings=settings, options=options).table


# --- from a run folder (CLI, app) -------------------------------------------------------


def sites_for_run(run: RunOutputs, dept: str, *, type_service: str, threshold_min: float,
                  k: int = 1, engine: Engine | None = None, neighbours: bool = False,
                  options: SitingOptions | None = None) -> SitingResult:
    """:func:`plan_new_sites` for one département of a run folder.

    Candidates are the chef-lieux of ``dept`` (filtered by ``options``); the base is the
    families of ``dept`` (with ``neighbours``, or ``options.neighbours``, also those of
    the run's other communes, in a separate column); existing coverage is the run's
    ``acces_communes`` table; the engine is the run's
    (:func:`coverage.routing.engine_of_run`) unless given.
    """
    if options is None:
        options = SitingOptions(neighbours=neighbours)
    if engine is None:
        engine = engine_of_run(run, dept=dept).engine
    access = run.tables.get("acces_communes")
    if access is not None and "moteur" in access and set(
            access["moteur"].dropna().astype(str)) - {engine.name}:
        access = None  # recomputed by the engine that times the new sites
    types = sorted({str(t) for t in access["type_service"].unique()}) if access is not None \
        else sorted({str(t) for t in run.services["type_service"].unique()})
    if type_service not in types:
        msg = f"type de service {type_service!r} absent du calcul : {', '.join(types)}"
        raise CoverageError(msg)
    return plan_new_sites(run.communes, access, run.services, engine,
                          type_service=type_service, threshold_min=threshold_min, k=k,
                          depts=[dept], settings=run_settings(run), options=options)
