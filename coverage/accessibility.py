"""How much of a service can each family reach? The two-step floating catchment area.

White zones say *whether* a service is within reach; they do not say how many families
share it. The **two-step floating catchment area** (2SFCA, Luo & Wang 2003) answers the
second question with the services' capacity:

1. **Step 1, per service** ``j``: its capacity ``S_j`` (the services' ``capacite``: full-time
   equivalents or places) divided by the population within its catchment,
   ``R_j = S_j / Σ_k P_k W(t_kj)`` over the communes ``k`` with ``t_kj <= threshold``.
2. **Step 2, per commune** ``i``: the sum of the ratios of the services within its reach,
   ``A_i = Σ_j R_j W(t_ij)`` over the services with ``t_ij <= threshold``.

``A_i`` is a capacity per inhabitant; it is reported **per 100 000 inhabitants**
(:data:`PER_INHABITANTS`): « 2,5 » means 2.5 ETP (or places) for 100 000 inhabitants.
Every unit of capacity is shared out exactly: ``Σ_i P_i A_i = Σ_j S_j`` over the services
whose catchment holds people (tested).

* **2SFCA**: ``W = 1`` inside the catchment, 0 beyond.
* **E2SFCA** (enhanced, Luo & Qi 2009): ``W`` decays by time bands inside the catchment.
  Default bands (:meth:`DecayBands.thirds`): the threshold cut in three equal bands with the
  weights 1.00, 0.68 and 0.22 of Luo & Qi (a Gaussian decay); for 30 min: 0–10 min → 1,
  10–20 min → 0.68, 20–30 min → 0.22 (upper bounds included). See ``docs/accessibilite.md``.

Times ``t`` come from the **run's engine** (:func:`coverage.routing.engine_of_run`): the
bounded road matrix (commune → service), the proxy formula, or the imported ``matrice``
table; a pair without a time (unreachable, off the network, absent from the table) is
outside every catchment. A commune with no service within the threshold has the index 0
(no capacity within reach: a true zero, not a missing value); a service whose catchment
holds nobody shares nothing.

Supply: the services' ``capacite`` (≥ 0); a service without it counts 1, with a warning.
Demand: ``population``, or any numeric column of the communes (e.g. families with
children). Aggregates by département and EPCI are population-weighted means of the index.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from coverage._validate import require_columns
from coverage.errors import CoverageError, InputError, Problem
from coverage.results import RunOutputs
from coverage.routing import engine_of_run
from coverage.routing.base import Engine
from coverage.routing.imported import ENGINE_NAME as MATRIX_ENGINE
from coverage.schemas import ACCESSIBILITE_COMMUNES, ACCESSIBILITE_DEPARTEMENT
from coverage.settings import NO_SERVICE

__all__ = [
    "COMMUNE_COLUMNS",
    "DEFAULT_WEIGHTS",
    "LEVEL_COLUMNS",
    "METHODS",
    "PER_INHABITANTS",
    "PREFILTER_SPEED_KMH",
    "AccessibilityResult",
    "DecayBands",
    "FcaResult",
    "accessibility_for_run",
    "floating_catchment",
    "service_capacities",
    "weighted_mean_by",
]

log = logging.getLogger(__name__)

#: Methods: plain two-step floating catchment, and its enhanced form with decay bands.
METHODS: tuple[str, ...] = ("2sfca", "e2sfca")
#: Weights of the three decay bands of E2SFCA (Luo & Qi 2009, Gaussian decay).
DEFAULT_WEIGHTS: tuple[float, ...] = (1.0, 0.68, 0.22)
#: The index is a capacity per this many inhabitants.
PER_INHABITANTS = 100_000
#: Highest straight-line speed any car trip can average, km/h: services and communes
#: farther apart than ``threshold × speed`` are not timed (a speed-up, never a change of
#: result for the road and proxy engines: French roads stop at 130 km/h).
PREFILTER_SPEED_KMH = 200.0
#: Earth radius used by the straight-line pre-filter, km.
_EARTH_KM = 6371.0

#: Columns of :attr:`AccessibilityResult.communes`, in order (contract
#: :data:`coverage.schemas.ACCESSIBILITE_COMMUNES`: titles and units).
COMMUNE_COLUMNS: tuple[str, ...] = tuple(ACCESSIBILITE_COMMUNES.columns)
#: Columns of the département and EPCI tables after their key columns, in order
#: (:data:`coverage.schemas.ACCESSIBILITE_DEPARTEMENT`).
LEVEL_COLUMNS: tuple[str, ...] = tuple(ACCESSIBILITE_DEPARTEMENT.columns[1:])


@dataclass(frozen=True)
class DecayBands:
    """Distance-decay weights of E2SFCA by time band.

    Attributes
    ----------
    uppers
        Upper bound of each band, minutes, increasing; a time equal to a bound is in that
        band. The last bound is the catchment (the threshold).
    weights
        Weight of each band (> 0, non-increasing in practice).
    """

    uppers: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        """Check the bands: as many weights as bounds, bounds increasing, weights > 0."""
        if not self.uppers or len(self.uppers) != len(self.weights):
            msg = (f"bandes de décroissance : un poids par borne attendu, reçu "
                   f"{len(self.uppers)} bornes et {len(self.weights)} poids")
            raise CoverageError(msg)
        if any(not b > a for a, b in zip(self.uppers, self.uppers[1:], strict=False)) or \
                not self.uppers[0] > 0:
            msg = (f"bandes de décroissance : bornes positives et croissantes attendues, "
                   f"reçu {self.uppers}")
            raise CoverageError(msg)
        if any(not (math.isfinite(w) and w > 0) for w in self.weights):
            msg = f"bandes de décroissance : poids positifs attendus, reçu {self.weights}"
            raise CoverageError(msg)

    @classmethod
    def thirds(cls, threshold_min: float,
               weights: Sequence[float] = DEFAULT_WEIGHTS) -> DecayBands:
        """Return ``len(weights)`` equal bands up to ``threshold_min`` (minutes).

        With the default weights and 30 min: 0–10 → 1, 10–20 → 0.68, 20–30 → 0.22.
        """
        n = len(weights)
        uppers = tuple(float(threshold_min) * (k + 1) / n for k in range(n))
        return cls(uppers=uppers, weights=tuple(float(w) for w in weights))

    def weight(self, minutes: np.ndarray) -> np.ndarray:
        """Return the weight of each time (minutes); 0 beyond the last band or NaN."""
        m = np.asarray(minutes, dtype=np.float64)
        band = np.searchsorted(np.asarray(self.uppers, dtype=np.float64), m, side="left")
        w = np.append(np.asarray(self.weights, dtype=np.float64), 0.0)
        out = w[np.minimum(band, len(self.weights))]
        return np.where(np.isfinite(m), out, 0.0)

    def describe(self) -> str:
        """Return the bands in French words (« 0–10 min : 1 ; 10–20 min : 0,68 … »)."""
        parts, lower = [], 0.0
        for upper, w in zip(self.uppers, self.weights, strict=True):
            parts.append(f"{lower:g}–{upper:g} min : {w:g}".replace(".", ","))
            lower = upper
        return " ; ".join(parts)


@dataclass
class FcaResult:
    """Result of :func:`floating_catchment`.

    Attributes
    ----------
    communes
        Indexed by ``code_insee`` in the order of the demand: ``indice`` (capacity per
        inhabitant, 0 with no service within reach), ``services_accessibles`` (services
        within the threshold), ``capacite_accessible`` (their capacity, unweighted).
    services
        Indexed by ``service_id``: ``capacite``, ``demande_ponderee`` (population within the
        catchment, weighted), ``ratio`` (capacity per inhabitant of the catchment, 0 when it
        holds nobody).
    """

    communes: pd.DataFrame
    services: pd.DataFrame


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Return the position of each value (as text) in ``index`` (as text), −1 when absent."""
    categories = pd.Index(index.astype(str))
    codes = pd.Categorical(values.astype(str), categories=categories).codes
    return np.asarray(codes, dtype=np.int64)


def _pairs_arrays(pairs: pd.DataFrame, demand: pd.Series, supply: pd.Series,
                  threshold_min: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (commune index, service index, minutes) of the pairs within the threshold."""
    require_columns(pairs, ("code_insee", "service_id", "minutes"), file="matrix")
    minutes = pd.to_numeric(pairs["minutes"], errors="coerce").to_numpy(dtype=np.float64)
    i = _positions(pairs["code_insee"], demand.index)
    j = _positions(pairs["service_id"], supply.index)
    keep = (i >= 0) & (j >= 0) & np.isfinite(minutes) & (minutes <= threshold_min)
    i, j, minutes = i[keep].astype(np.int64), j[keep].astype(np.int64), minutes[keep]
    key = i * max(len(supply), 1) + j
    order = np.lexsort((minutes, key))  # by pair, smallest time first
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = order[first]  # one time per pair: the smallest
    return i[pick], j[pick], minutes[pick]


def _checked_values(values: pd.Series, what: str) -> np.ndarray:
    """Return ``values`` as float64, raising :class:`InputError` on NaN or negatives."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(v) | (v < 0))
    if bad.shape[0]:
        raise InputError([Problem(what, None, None,
                                  f"un nombre ≥ 0 pour {values.index[r]}",
                                  str(values.iloc[r]))
                          for r in bad[:20]])
    return v


def floating_catchment(pairs: pd.DataFrame, demand: pd.Series, supply: pd.Series, *,
                       threshold_min: float, bands: DecayBands | None = None) -> FcaResult:
    """Compute the 2SFCA (``bands`` None) or E2SFCA index on a commune × service matrix.

    Parameters
    ----------
    pairs
        Long matrix: ``code_insee``, ``service_id``, ``minutes`` (commune → service,
        minutes; NaN or absent = unreachable). Pairs beyond ``threshold_min`` or naming an
        unknown commune or service are ignored; a repeated pair keeps its smallest time.
    demand
        Population (or any count of people ≥ 0) indexed by ``code_insee``.
    supply
        Capacity (≥ 0: ETP or places) indexed by ``service_id``.
    threshold_min
        Catchment, minutes (``minutes <= threshold_min`` is inside).
    bands
        Decay bands of E2SFCA; None: 2SFCA (weight 1 inside the catchment).

    Returns
    -------
    FcaResult
        The index per commune (capacity per inhabitant) and the ratio per service.

    Raises
    ------
    InputError
        A demand or capacity is missing or negative.
    CoverageError
        The threshold is not a positive number, or the bands end below it.
    """
    if not (isinstance(threshold_min, (int, float)) and math.isfinite(threshold_min)
            and threshold_min > 0):
        msg = f"le seuil doit être un nombre de minutes positif, pas {threshold_min!r}"
        raise CoverageError(msg)
    if bands is not None and bands.uppers[-1] < threshold_min:
        msg = (f"les bandes de décroissance s'arrêtent à {bands.uppers[-1]:g} min, sous "
               f"l'aire de chalandise de {threshold_min:g} min")
        raise CoverageError(msg)
    for what, values in (("communes de la demande", demand), ("services de l'offre", supply)):
        if values.index.astype(str).duplicated().any():
            msg = f"identifiants en double parmi les {what} : chacun doit être unique"
            raise CoverageError(msg)
    pop = _checked_values(demand, "demande (population)")
    cap = _checked_values(supply, "offre (capacités)")
    i, j, minutes = _pairs_arrays(pairs, demand, supply, float(threshold_min))
    w = np.ones_like(minutes) if bands is None else bands.weight(minutes)
    n_c, n_s = pop.shape[0], cap.shape[0]
    weighted_demand = np.bincount(j, weights=w * pop[i], minlength=n_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(weighted_demand > 0, cap / weighted_demand, 0.0)
    index = np.bincount(i, weights=w * ratio[j], minlength=n_c)
    communes = pd.DataFrame({
        "indice": index,
        "services_accessibles": np.bincount(i, minlength=n_c).astype(np.int64),
        "capacite_accessible": np.bincount(i, weights=cap[j], minlength=n_c),
    }, index=pd.Index(demand.index.astype(str), name="code_insee"))
    services = pd.DataFrame({"capacite": cap, "demande_ponderee": weighted_demand,
                             "ratio": ratio},
                            index=pd.Index(supply.index.astype(str), name="service_id"))
    idle = (weighted_demand == 0) & (cap > 0)
    if idle.any():
        log.info("%d service(s) sans personne à moins de %g min : leur capacité n'est "
                 "partagée par aucune commune", int(idle.sum()), threshold_min)
    return FcaResult(communes=communes, services=services)


def service_capacities(services: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """Return the capacity of each service (``capacite``, else 1) and French warnings.

    Parameters
    ----------
    services
        ``service_id`` and, when known, ``capacite`` (ETP or places).

    Returns
    -------
    tuple
        Capacity indexed by ``service_id`` (float64), and the warnings (French): the column
        is absent, or some services have no capacity (each counted 1).

    Raises
    ------
    InputError
        A capacity is not a number or is negative (file ``services``, row, column
        ``capacite``).
    """
    require_columns(services, ("service_id",), file="services")
    ids = services["service_id"].astype(str).to_numpy(dtype=object)
    if "capacite" not in services.columns:
        log.warning("les services n'ont pas de colonne « capacite » : chaque service compte "
                    "pour 1")
        return (pd.Series(np.ones(len(ids)), index=pd.Index(ids, name="service_id")),
                ["Les services n'ont pas de colonne « capacite » : chaque service compte "
                 "pour 1 (l'indice compte alors des services, pas des ETP ni des places)."])
    raw = services["capacite"]
    cap = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero((raw.notna().to_numpy() & ~np.isfinite(cap)) | (cap < 0))
    if bad.shape[0]:
        raise InputError([Problem("services", int(r) + 1, "capacite",
                                  "un nombre ≥ 0 (ETP ou places)", str(raw.iloc[r]))
                          for r in bad[:20]])
    missing = ~np.isfinite(cap)
    warnings = []
    if missing.any():
        names = ", ".join(str(s) for s in ids[missing][:10])
        more = f" (+{int(missing.sum()) - 10})" if missing.sum() > 10 else ""
        log.warning("%d service(s) sans capacité renseignée, comptés pour 1 : %s",
                    int(missing.sum()), names)
        warnings.append(f"{int(missing.sum())} service(s) sans capacité renseignée, comptés "
                        f"pour 1 : {names}{more}.")
        cap = np.where(missing, 1.0, cap)
    return pd.Series(cap, index=pd.Index(ids, name="service_id")), warnings


def weighted_mean_by(communes: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Aggregate a communes table of :data:`COMMUNE_COLUMNS` by ``keys``.

    The index is averaged with the population as weights; ``communes_sans_service`` and
    ``population_sans_service`` count the communes with no service within the threshold.

    Returns
    -------
    pandas.DataFrame
        ``keys`` then :data:`LEVEL_COLUMNS`; ``indice_moyen_pour_100k`` is NaN for a group
        with no population (not applicable).
    """
    c = communes.copy()
    c["_pop"] = c["population"].astype(np.float64)
    c["_num"] = c["_pop"] * c["indice_pour_100k"].astype(np.float64)
    none = c["services_accessibles"] == 0
    c["_none"] = none.astype(np.int64)
    c["_none_pop"] = np.where(none, c["_pop"], 0.0)
    head = ["type_service", "methode", "seuil_minutes", "moteur", "fictif"]
    g = c.groupby([*keys, *head], sort=True, dropna=False)
    out = g.agg(communes=("code_insee", "size"), population=("_pop", "sum"),
                communes_sans_service=("_none", "sum"),
                population_sans_service=("_none_pop", "sum"), _num=("_num", "sum"),
                ).reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["indice_moyen_pour_100k"] = out["_num"] / out["population"].where(
            out["population"] > 0)
    return out[[*keys, *LEVEL_COLUMNS]].reset_index(drop=True)


@dataclass
class AccessibilityResult:
    """Result of :func:`accessibility_for_run`.

    Attributes
    ----------
    communes
        One row per commune of the département (:data:`COMMUNE_COLUMNS`); the index is
        ``indice_pour_100k``: capacity (ETP or places) per 100 000 inhabitants.
    departements
        The département's population-weighted mean (``code_dep`` + :data:`LEVEL_COLUMNS`).
    epci
        The same by EPCI, over their communes in the département (``code_epci``,
        ``nom_epci`` + :data:`LEVEL_COLUMNS`).
    services
        The services used (those within reach of the département): ``service_id``,
        ``nom``, ``code_insee``, ``capacite``, ``demande_ponderee``, ``ratio_pour_100k``.
    parameters
        Method, threshold, bands, engine, population column, counts (JSON-ready).
    warnings
        French warnings for the user (capacity missing, no service of the type …).
    """

    communes: pd.DataFrame
    departements: pd.DataFrame
    epci: pd.DataFrame
    services: pd.DataFrame
    parameters: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return points on the sphere, km (the chord never exceeds the great-circle distance)."""
    lo, la = np.radians(lon), np.radians(lat)
    return _EARTH_KM * np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo),
                                        np.sin(la)])


def _near(points: pd.DataFrame, around: pd.DataFrame, km: float) -> np.ndarray:
    """Return a mask of ``points`` within ``km`` (straight line) of one of ``around``."""
    if len(points) == 0 or len(around) == 0:
        return np.zeros(len(points), dtype=bool)
    tree = cKDTree(_xyz(around["lon"].to_numpy(np.float64), around["lat"].to_numpy(np.float64)))
    d, _ = tree.query(_xyz(points["lon"].to_numpy(np.float64),
                           points["lat"].to_numpy(np.float64)), distance_upper_bound=km)
    return np.isfinite(d)


def _demand(communes: pd.DataFrame, column: str) -> pd.Series:
    """Return the demand column of the communes indexed by ``code_insee`` (checked)."""
    if column not in communes.columns:
        numeric = [c for c in communes.columns
                   if c != "geometry" and pd.api.types.is_numeric_dtype(communes[c])]
        msg = (f"colonne de population « {column} » absente des communes du calcul ; "
               f"colonnes numériques disponibles : {', '.join(numeric)}")
        raise CoverageError(msg)
    values = pd.to_numeric(communes[column], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(values.to_numpy(np.float64)) | (values < 0).to_numpy())
    if bad.shape[0]:
        raise InputError([Problem("communes", int(r) + 1, column, "un nombre ≥ 0",
                                  str(communes[column].iloc[r])) for r in bad[:20]])
    return pd.Series(values.to_numpy(np.float64),
                     index=pd.Index(communes["code_insee"].astype(str), name="code_insee"))


@dataclass(frozen=True)
class _Question:
    """What is asked: type, threshold, method, bands, population column."""

    type_service: str
    threshold_min: float
    method: str
    bands: DecayBands | None
    population_column: str


def _question(type_service: str, threshold_min: float, method: str,
              bands: DecayBands | None, population_column: str) -> _Question:
    """Check the question and return it (E2SFCA gets its default bands)."""
    if method not in METHODS:
        msg = f"méthode « {method} » inconnue : choisissez {' ou '.join(METHODS)}"
        raise CoverageError(msg)
    if type_service == NO_SERVICE:
        msg = ("l'indice d'accessibilité se calcule pour un type de service, pas pour la vue "
               "combinée")
        raise CoverageError(msg)
    if not (isinstance(threshold_min, (int, float)) and math.isfinite(threshold_min)
            and threshold_min > 0):
        msg = f"le seuil doit être un nombre de minutes positif, pas {threshold_min!r}"
        raise CoverageError(msg)
    if method == "e2sfca" and bands is None:
        bands = DecayBands.thirds(threshold_min)
    return _Question(type_service, float(threshold_min), method,
                     bands if method == "e2sfca" else None, population_column)


def _communes_table(run: RunOutputs, dept: str, fca: FcaResult, q: _Question,
                    engine: Engine) -> pd.DataFrame:
    """Return the département's communes with their index (:data:`COMMUNE_COLUMNS`)."""
    com = pd.DataFrame(run.communes.drop(columns="geometry", errors="ignore"))
    com = com[com["code_dep"].astype(str) == dept].copy()
    com["code_insee"] = com["code_insee"].astype(str)
    for col in ("code_epci", "nom_epci"):
        if col not in com.columns:
            com[col] = None
    res = fca.communes.reindex(com["code_insee"])
    out = pd.DataFrame({
        "code_insee": com["code_insee"].to_numpy(dtype=object),
        "nom": com["nom"].astype(str).to_numpy(dtype=object),
        "code_dep": dept,
        "code_epci": com["code_epci"].to_numpy(dtype=object),
        "nom_epci": com["nom_epci"].to_numpy(dtype=object),
        "population": _demand(com, q.population_column).to_numpy(np.float64),
        "type_service": q.type_service, "methode": q.method,
        "seuil_minutes": q.threshold_min,
        "services_accessibles": res["services_accessibles"].fillna(0).to_numpy(np.int64),
        "capacite_accessible": res["capacite_accessible"].fillna(0.0).to_numpy(np.float64),
        "indice_pour_100k": res["indice"].fillna(0.0).to_numpy(np.float64) * PER_INHABITANTS,
        "moteur": engine.name, "fictif": run.fictif,
    })
    return out.sort_values("code_insee", kind="mergesort").reset_index(drop=True)


def _matrix(engine: Engine, communes: pd.DataFrame, services: pd.DataFrame, dept: str,
            threshold_min: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return (communes, services, pairs) of the département's catchments.

    The services are those that may reach a commune of ``dept`` and the communes those
    that may reach one of these services (straight line within ``threshold ×``
    :data:`PREFILTER_SPEED_KMH`; every one for the ``matrice`` engine), so that each
    service's catchment is whole, across the border.
    """
    km = threshold_min / 60.0 * PREFILTER_SPEED_KMH
    in_dept = communes["code_dep"].astype(str) == dept
    if engine.name == MATRIX_ENGINE:
        near_s = np.ones(len(services), dtype=bool)
    else:
        near_s = _near(services, communes[in_dept], km)
    svc = services[near_s]
    near_c = in_dept.to_numpy() | (np.ones(len(communes), dtype=bool)
                                   if engine.name == MATRIX_ENGINE else _near(communes, svc, km))
    com = communes[near_c]
    if len(svc) == 0 or len(com) == 0:
        pairs = pd.DataFrame({"service_id": [], "code_insee": [], "minutes": []})
    else:
        pairs = engine.matrix(com, svc, cutoff_min=float(threshold_min))  # type: ignore[arg-type]
    log.info("accessibility of %s: %d services, %d communes, %d pairs within %g min", dept,
             len(svc), len(com), len(pairs), threshold_min)
    return com, svc, pairs


def accessibility_for_run(  # noqa: PLR0913 - the keyword-only options of one question
    run: RunOutputs, dept: str, *, type_service: str, threshold_min: float = 30.0,
    method: str = "e2sfca", population_column: str = "population",
    bands: DecayBands | None = None, engine: Engine | None = None,
    services: pd.DataFrame | None = None,
) -> AccessibilityResult:
    """Compute the accessibility index of a département's communes from a finished run.

    Parameters
    ----------
    run
        The run (communes with ``lon``, ``lat``; services with ``capacite`` when known).
    dept
        Département code (checked by the caller: :func:`coverage.results.check_departement`).
    type_service
        Service type (not the combined view).
    threshold_min
        Catchment, minutes (default 30).
    method
        ``2sfca`` or ``e2sfca`` (default: decay bands :meth:`DecayBands.thirds`).
    population_column
        Column of the communes giving the demand (default ``population``).
    bands
        E2SFCA decay bands instead of the default ones.
    engine
        Engine timing the pairs; default the run's (:func:`coverage.routing.engine_of_run`,
        which raises when a road run's road file is gone).
    services
        Services instead of the run's (``service_id``, ``type_service``, ``lon``, ``lat``,
        ``capacite`` when known; e.g. the app's uploaded list), EPSG:4326.

    Returns
    -------
    AccessibilityResult
        Per commune (capacity per 100 000 inhabitants), per département and EPCI
        (population-weighted means), per service, parameters and French warnings.

    Raises
    ------
    CoverageError
        Unknown method or type, bad threshold, unknown population column.
    InputError
        A negative or non-numeric capacity or population.
    """
    q = _question(type_service, threshold_min, method, bands, population_column)
    if engine is None:
        engine = engine_of_run(run, dept=dept).engine
    every_service = run.services if services is None else services
    known = set(every_service["type_service"].astype(str))
    acc = run.tables.get("acces_communes")
    if acc is not None:
        known |= set(acc["type_service"].astype(str)) - {NO_SERVICE}
    if q.type_service not in known:
        msg = (f"type de service « {q.type_service} » absent du calcul ; types disponibles : "
               f"{', '.join(sorted(known))}")
        raise CoverageError(msg)
    services = every_service[every_service["type_service"].astype(str) == q.type_service]
    supply, warnings = service_capacities(services)
    if len(services) == 0:
        warnings.append(f"Aucun service de ce type dans le calcul : l'indice est nul partout "
                        f"({q.type_service}).")
    com, svc, pairs = _matrix(engine, run.communes, services, dept, q.threshold_min)
    fca = floating_catchment(pairs, _demand(com, q.population_column),
                             supply.reindex(svc["service_id"].astype(str).tolist()),
                             threshold_min=q.threshold_min, bands=q.bands)
    communes = _communes_table(run, dept, fca, q, engine)
    used = fca.services.reset_index()
    names = pd.DataFrame(services.drop(columns="geometry", errors="ignore")).assign(
        service_id=services["service_id"].astype(str)).drop_duplicates(
        "service_id").set_index("service_id").reindex(columns=["nom", "code_insee"])
    used.insert(1, "nom", used["service_id"].map(names["nom"]))
    used.insert(2, "code_insee", used["service_id"].map(names["code_insee"]))
    used["ratio_pour_100k"] = used.pop("ratio") * PER_INHABITANTS
    parameters = {
        "methode": q.method, "seuil_minutes": q.threshold_min,
        "bandes": None if q.bands is None else {"bornes_minutes": list(q.bands.uppers),
                                                "poids": list(q.bands.weights)},
        "type_service": q.type_service, "colonne_population": q.population_column,
        "unite": f"capacité (ETP ou places) pour {PER_INHABITANTS:,} habitants".replace(
            ",", " "),
        "moteur": engine.name, "services": len(svc), "communes_demande": len(com),
        "paires": len(pairs), "fictif": run.fictif,
    }
    return AccessibilityResult(
        communes=communes, departements=weighted_mean_by(communes, ["code_dep"]),
        epci=weighted_mean_by(communes, ["code_epci", "nom_epci"]), services=used,
        parameters=parameters, warnings=warnings)
