"""Waiting-list indicators by département, type of service and year, and the tension view.

Input: the rows of :func:`coverage.io.waiting.load_waiting` (per service or per
département). Output: the ``listes_attente_departements`` table (contract
:data:`coverage.schemas.LISTES_ATTENTE_DEPARTEMENTS`), the tension table that sets
waiting-list pressure against the white-zone population of ``couverture_departements``, and
chart data for the app. Pure pandas: the matplotlib figures and PNG files of the exports
are drawn from these tables by :mod:`coverage.export.figures`.

Definitions (see also ``docs/listes_attente.md``)
-------------------------------------------------
- **Aggregation to the département.** Counts are summed over the services of a
  département, type and year; a service that left a count empty (not reported) adds
  nothing, and a département whose services reported nothing gets an empty value, never 0.
  The mean delay of the département is the mean of the services' delays **weighted by
  their families waiting** (services that reported both); when no family waits (all
  weights 0 or missing), it is the plain mean of the reported delays.
- **Families per 100,000 inhabitants** = families waiting / population × 100,000, with the
  population of the département from the communes of the run (or the national table).
- **Change against the previous year**: against year − 1 of the same département and type
  only (a gap of a year gives NaN). ``familles_en_attente_variation_pct`` is NaN when the previous
  value is 0 or missing.
- **Share of services with a waiting list** = services with ≥ 1 family waiting / services
  that reported their waiting list; only with per-service rows. For espaces de rencontre it
  is compared with the national reference :data:`REFERENCE_ER_PART_AVEC_LISTE_2018`.
- **Tension**: for one type and one threshold, families waiting per 100,000 inhabitants
  against the share of the population living in a white zone (``population_zone_blanche /
  population`` of ``couverture_departements``); each département is placed in a quadrant
  relative to the medians of the départements shown.
- **Statistical secrecy**: :func:`mask_public` empties counts below
  ``settings.secrecy_threshold`` (zero included, the exports' rule) and every figure
  derived from them.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.cog import national_communes
from coverage.io.waiting import EXTRA_COUNTS
from coverage.schemas import LISTES_ATTENTE_DEPARTEMENTS
from coverage.secrecy import mask_small_counts, secret_columns
from coverage.settings import Settings, is_fictional_code

__all__ = [
    "LISTES_ATTENTE_DEPARTEMENTS",
    "RATE_BASE",
    "REFERENCE_ER_FAMILLES_ATTENTE_2018",
    "REFERENCE_ER_PART_AVEC_LISTE_2018",
    "REFERENCE_SOURCE_URL",
    "aggregate_departements",
    "indicators_for_run",
    "latest_year",
    "mask_public",
    "population_by_departement",
    "ranking",
    "series_data",
    "tension_table",
    "waiting_indicators",
]

log = logging.getLogger(__name__)

#: Share of espaces de rencontre with a waiting list at 31/12/2018 (national survey), ratio.
#: Source: report of the general assembly of the espace de rencontre Le Creuset citing the
#: national survey, https://espace-rencontrelecreuset.fr/assemblee-generale-24-09-2020/
REFERENCE_ER_PART_AVEC_LISTE_2018 = 0.59
#: Families on the waiting lists of the espaces de rencontre that answered the same survey,
#: France, 31/12/2018 (same source).
REFERENCE_ER_FAMILLES_ATTENTE_2018 = 475
REFERENCE_SOURCE_URL = "https://espace-rencontrelecreuset.fr/assemblee-generale-24-09-2020/"

#: Inhabitants per rate unit of ``familles_en_attente_pour_100k``.
RATE_BASE = 100_000

_KEY = ["code_dep", "type_service", "annee"]


#: Columns derived from ``familles_en_attente``: masked with it.
_DERIVED_FROM_FAMILIES: tuple[str, ...] = (
    "familles_en_attente_pour_100k", "familles_en_attente_variation",
    "familles_en_attente_variation_pct", "delai_moyen_jours", "variation_delai_jours")


# --- Aggregation and indicators ---------------------------------------------------------


def aggregate_departements(waiting: pd.DataFrame) -> pd.DataFrame:
    """Aggregate per-service rows to one row per département, type and year.

    Parameters
    ----------
    waiting
        ``load_waiting(...).data``: rows per service (``service_id`` set) or per
        département (``service_id`` missing).

    Returns
    -------
    pandas.DataFrame
        ``code_dep, type_service, annee, services, services_declarants,
        services_avec_liste, familles_en_attente`` (families), ``delai_moyen_jours`` (days,
        weighted by families waiting, see the module docstring) and the extra counts.
        ``services*`` are missing for département-level rows.
    """
    w = waiting.copy()
    fam = pd.to_numeric(w["familles_en_attente"], errors="coerce").astype("float64")
    delay = pd.to_numeric(w["delai_moyen_jours"], errors="coerce").astype("float64")
    per_service = w["service_id"].notna()
    both = fam.notna() & delay.notna()
    w["_svc"] = per_service.astype("int64")
    w["_svc_decl"] = (per_service & fam.notna()).astype("int64")
    w["_svc_liste"] = (per_service & (fam > 0)).astype("int64")
    w["_w"] = fam.where(both, 0.0)
    w["_wd"] = (fam * delay).where(both, 0.0)
    w["_d"] = delay
    counts = ["familles_en_attente", *[c for c in EXTRA_COUNTS if c in w.columns]]
    for c in counts:
        w[c] = pd.to_numeric(w[c], errors="coerce").astype("float64")
    g = w.groupby(_KEY, sort=True, dropna=False)
    out = g[counts].sum(min_count=1)
    sums = g[["_svc", "_svc_decl", "_svc_liste", "_w", "_wd"]].sum()
    plain = g["_d"].mean()
    out["delai_moyen_jours"] = np.where(sums["_w"] > 0, sums["_wd"] / sums["_w"].where(
        sums["_w"] > 0), plain)
    has_services = sums["_svc"] > 0
    out["services"] = sums["_svc"].where(has_services)
    out["services_declarants"] = sums["_svc_decl"].where(has_services)
    out["services_avec_liste"] = sums["_svc_liste"].where(has_services & (sums["_svc_decl"]
                                                                          > 0))
    out = out.reset_index()
    for c in [*counts, "services", "services_declarants", "services_avec_liste"]:
        out[c] = out[c].round().astype("Int64")
    for c in EXTRA_COUNTS:
        if c not in out.columns:
            out[c] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out


def population_by_departement(communes: pd.DataFrame | None = None) -> pd.Series:
    """Return the population of each département, inhabitants.

    Parameters
    ----------
    communes
        Communes with ``code_dep`` and ``population`` (the communes of the run). None →
        the embedded national COG 2026 table (``coverage.cog``).

    Returns
    -------
    pandas.Series
        Inhabitants (int64) indexed by ``code_dep`` (str).
    """
    if communes is None:
        communes = national_communes()
    pop = pd.to_numeric(communes["population"], errors="coerce").fillna(0)
    out = pop.groupby(communes["code_dep"].astype(str)).sum().astype("int64")
    out.index.name = "code_dep"
    out.name = "population"
    return out


def waiting_indicators(
    waiting: pd.DataFrame, population_by_dep: pd.Series | pd.DataFrame | None = None
) -> pd.DataFrame:
    """Build the ``listes_attente_departements`` table: indicators by département, type, year.

    Parameters
    ----------
    waiting
        ``load_waiting(...).data`` (per-service or per-département rows).
    population_by_dep
        Inhabitants by ``code_dep`` (Series indexed by code, e.g.
        :func:`population_by_departement`), or a communes frame with ``code_dep`` and
        ``population``. None → the national table. A département without population gets
        NaN rates.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`LISTES_ATTENTE_DEPARTEMENTS`, sorted by département, type and
        year. Definitions in the module docstring.
    """
    if population_by_dep is None or isinstance(population_by_dep, pd.DataFrame):
        population_by_dep = population_by_departement(population_by_dep)
    agg = aggregate_departements(waiting)
    pop = population_by_dep.astype("float64")
    pop.index = pop.index.astype(str)
    population = agg["code_dep"].map(pop)
    agg["population"] = population.round().astype("Int64")
    fam = agg["familles_en_attente"].astype("float64")
    agg["familles_en_attente_pour_100k"] = fam / population.where(population > 0) * RATE_BASE
    agg["part_services_avec_liste"] = (
        agg["services_avec_liste"].astype("float64")
        / agg["services_declarants"].astype("float64").where(lambda s: s > 0)
    )
    agg["part_reference_nationale"] = np.where(
        agg["type_service"] == "espace_rencontre", REFERENCE_ER_PART_AVEC_LISTE_2018, np.nan)
    prev = agg[[*_KEY, "familles_en_attente", "delai_moyen_jours"]].copy()
    prev["annee"] = prev["annee"] + 1
    prev = prev.rename(columns={"familles_en_attente": "_fam_prev",
                                "delai_moyen_jours": "_delai_prev"})
    agg = agg.merge(prev, on=_KEY, how="left", validate="one_to_one")
    fam_prev = agg["_fam_prev"].astype("float64")
    diff = agg["familles_en_attente"].astype("float64") - fam_prev
    agg["familles_en_attente_variation"] = diff
    agg["familles_en_attente_variation_pct"] = 100.0 * diff / fam_prev.where(fam_prev > 0)
    agg["variation_delai_jours"] = agg["delai_moyen_jours"] - agg["_delai_prev"]
    agg["fictif"] = agg["code_dep"].map(is_fictional_code).astype(bool)
    agg = agg.sort_values(_KEY, kind="stable").reset_index(drop=True)
    float_cols = ["part_services_avec_liste", "part_reference_nationale",
                  "familles_en_attente_pour_100k", "delai_moyen_jours",
                  "familles_en_attente_variation", "familles_en_attente_variation_pct",
                  "variation_delai_jours"]
    for c in float_cols:
        agg[c] = pd.to_numeric(agg[c]).astype("float64")
    agg["code_dep"] = agg["code_dep"].astype("str")
    agg["type_service"] = agg["type_service"].astype("str")
    agg["annee"] = agg["annee"].astype("int64")
    return agg[LISTES_ATTENTE_DEPARTEMENTS.columns]


def latest_year(indicators: pd.DataFrame) -> pd.DataFrame:
    """Keep the most recent year of each département and type.

    Parameters
    ----------
    indicators
        :func:`waiting_indicators` output.

    Returns
    -------
    pandas.DataFrame
        One row per département and type: its latest ``annee``.
    """
    idx = indicators.groupby(["code_dep", "type_service"])["annee"].idxmax()
    return indicators.loc[idx.to_numpy()].reset_index(drop=True)


def tension_table(
    indicators: pd.DataFrame,
    couverture: pd.DataFrame,
    *,
    type_service: str,
    seuil: float,
    annee: int | None = None,
) -> pd.DataFrame:
    """Waiting-list pressure against the white-zone population, one row per département.

    Parameters
    ----------
    indicators
        :func:`waiting_indicators` output.
    couverture
        The ``couverture_departements`` table of a run (``code_dep, type_service,
        seuil_minutes, population, population_zone_blanche, …``).
    type_service
        Service type of both sides.
    seuil
        White-zone threshold, minutes (one of the run's ``seuil_minutes``).
    annee
        Year of the waiting lists; None → the latest year of each département.

    Returns
    -------
    pandas.DataFrame
        ``code_dep, type_service, annee, seuil_minutes, familles_en_attente,
        familles_en_attente_pour_100k`` (families per 100,000 inhabitants), ``delai_moyen_jours``
        (days), ``population_zone_blanche`` (inhabitants), ``part_population_zone_blanche``
        (ratio 0-1 of the département's population), ``quadrant`` (position against the
        medians of the départements with both values; empty for fewer than 2 such
        départements) and ``fictif``. Départements of the waiting lists without coverage
        keep NaN coverage columns.

    Raises
    ------
    ValueError
        ``seuil`` is not a threshold of ``couverture`` for ``type_service``.
    """
    ind = indicators[indicators["type_service"] == type_service]
    ind = ind[ind["annee"] == annee] if annee is not None else latest_year(ind)
    cov = couverture[couverture["type_service"] == type_service]
    seuils = sorted(pd.to_numeric(cov["seuil_minutes"]).unique().tolist())
    cov = cov[np.isclose(pd.to_numeric(cov["seuil_minutes"]).astype(float), float(seuil))]
    if cov.empty:
        msg = (f"no coverage for type {type_service!r} at {seuil} min; thresholds of the "
               f"run: {', '.join(f'{s:g}' for s in seuils) or 'none'}")
        raise ValueError(msg)
    cov = cov.assign(code_dep=cov["code_dep"].astype(str))[
        ["code_dep", "population", "population_zone_blanche"]]
    out = ind[["code_dep", "type_service", "annee", "familles_en_attente",
               "familles_en_attente_pour_100k", "delai_moyen_jours", "fictif"]].merge(
        cov, on="code_dep", how="left", validate="one_to_one")
    pop = pd.to_numeric(out["population"], errors="coerce").astype("float64")
    out["part_population_zone_blanche"] = (
        pd.to_numeric(out["population_zone_blanche"], errors="coerce").astype("float64")
        / pop.where(pop > 0))
    out["seuil_minutes"] = float(seuil)
    out["quadrant"] = _quadrants(out["familles_en_attente_pour_100k"],
                                 out["part_population_zone_blanche"])
    cols = ["code_dep", "type_service", "annee", "seuil_minutes", "familles_en_attente",
            "familles_en_attente_pour_100k", "delai_moyen_jours", "population_zone_blanche",
            "part_population_zone_blanche", "quadrant", "fictif"]
    return out[cols].sort_values("code_dep").reset_index(drop=True)


def _quadrants(pressure: pd.Series, white: pd.Series) -> pd.Series:
    ok = pressure.notna() & white.notna()
    out = pd.Series([None] * len(pressure), index=pressure.index, dtype="object")
    if ok.sum() < 2:
        return out.astype("str")
    mp, mw = pressure[ok].median(), white[ok].median()
    hi_p = pressure[ok] > mp
    hi_w = white[ok] > mw
    labels = np.select(
        [hi_p & hi_w, hi_p & ~hi_w, ~hi_p & hi_w],
        ["attente forte, zone blanche étendue", "attente forte, zone blanche réduite",
         "attente faible, zone blanche étendue"],
        "attente faible, zone blanche réduite")
    out[ok] = labels
    return out.astype("str")


# --- Chart data for the app -------------------------------------------------------------


def series_data(indicators: pd.DataFrame, code_dep: str, type_service: str) -> pd.DataFrame:
    """Return the time series of one département and type, sorted by year.

    Parameters
    ----------
    indicators
        :func:`waiting_indicators` output (masked or not).
    code_dep
        Département code.
    type_service
        Service type.

    Returns
    -------
    pandas.DataFrame
        ``annee, familles_en_attente`` (families), ``familles_en_attente_pour_100k``
        (families per 100,000 inhabitants), ``delai_moyen_jours`` (days).
    """
    sel = indicators[(indicators["code_dep"] == code_dep)
                     & (indicators["type_service"] == type_service)]
    return sel[["annee", "familles_en_attente", "familles_en_attente_pour_100k",
                "delai_moyen_jours"]].sort_values("annee").reset_index(drop=True)


def ranking(indicators: pd.DataFrame, *, type_service: str, annee: int,
            measure: str = "familles_en_attente_pour_100k") -> pd.DataFrame:
    """Départements ranked by ``measure`` (1 = highest) for one type and year.

    Returns
    -------
    pandas.DataFrame
        ``rang`` (ties share the lowest rank, missing values unranked), ``code_dep``,
        ``measure`` value, ``sur`` (number of départements ranked), ``fictif``.
    """
    sel = indicators[(indicators["type_service"] == type_service)
                     & (indicators["annee"] == annee)]
    values = pd.to_numeric(sel[measure], errors="coerce").astype("float64")
    rank = values.rank(method="min", ascending=False)
    out = pd.DataFrame({"rang": rank.astype("Int64"), "code_dep": sel["code_dep"],
                        measure: values, "sur": int(values.notna().sum()),
                        "fictif": sel["fictif"]})
    return out.sort_values(["rang", "code_dep"], na_position="last").reset_index(drop=True)


# --- Statistical secrecy ----------------------------------------------------------------


def mask_public(indicators: pd.DataFrame, settings: Settings = Settings()) -> pd.DataFrame:
    """Copy of an indicators or tension table for public outputs (statistical secrecy).

    The rule is the exports' (:func:`coverage.secrecy.mask_small_counts`, applied to the
    count columns found by :func:`coverage.secrecy.secret_columns`): every count strictly
    below ``settings.secrecy_threshold``, zero included, is emptied together with the
    figures of the same row derived from it (for ``familles_en_attente``: its rate per
    100,000, its change and the mean delay). In addition, the changes on the previous year
    (families and delay) are emptied when the previous year's count was itself masked
    (they would reveal it), and
    ``services_avec_liste`` and ``part_services_avec_liste`` are emptied with the families
    (a share of 0 or 1 would reveal a masked count).

    Parameters
    ----------
    indicators
        :func:`waiting_indicators` or :func:`tension_table` output.
    settings
        ``secrecy_threshold``.

    Returns
    -------
    pandas.DataFrame
        A masked copy with the same columns (masked cells are NA/NaN); the input is not
        modified.
    """
    k = settings.secrecy_threshold
    counts, derived = secret_columns(indicators, LISTES_ATTENTE_DEPARTEMENTS)
    derived = dict(derived)
    fam_derived = set(derived.get("familles_en_attente", ()))
    fam_derived |= {c for c in _DERIVED_FROM_FAMILIES if c in indicators.columns}
    if "familles_en_attente" in indicators.columns:
        derived["familles_en_attente"] = tuple(sorted(fam_derived))
    out = mask_small_counts(indicators, counts, k, None, derived=derived)
    out = out.drop(columns=[c for c in out.columns
                            if c.endswith("_masque") and c not in indicators.columns])
    if {"familles_en_attente", "familles_en_attente_variation"} <= set(indicators.columns):
        fam = pd.to_numeric(indicators["familles_en_attente"], errors="coerce")
        prev = fam - pd.to_numeric(indicators["familles_en_attente_variation"],
                                   errors="coerce")
        hide = (prev < k).fillna(False).astype(bool).to_numpy()
        for c in ("familles_en_attente_variation", "familles_en_attente_variation_pct",
                  "variation_delai_jours"):
            if c in out.columns:
                out[c] = out[c].mask(hide)
    if {"familles_en_attente", "services_avec_liste",
            "part_services_avec_liste"} <= set(indicators.columns):
        hide = (out["familles_en_attente"].isna()
                & indicators["familles_en_attente"].notna()).to_numpy()
        out["services_avec_liste"] = out["services_avec_liste"].astype("Int64").mask(hide)
        out["part_services_avec_liste"] = out["part_services_avec_liste"].mask(hide)
    return out


def indicators_for_run(waiting: pd.DataFrame, communes: gpd.GeoDataFrame | pd.DataFrame
                       ) -> pd.DataFrame:
    """Build the ``listes_attente_departements`` table of a run.

    Populations come from the run's communes, and from the national table for the
    départements of the returns outside the run.

    Parameters
    ----------
    waiting
        ``load_waiting(...).data``.
    communes
        The run's communes (``code_dep``, ``population``).

    Returns
    -------
    pandas.DataFrame
        :func:`waiting_indicators` output.
    """
    pop = population_by_departement(communes)
    missing = set(waiting["code_dep"].astype(str)) - set(pop.index)
    if missing:
        national = population_by_departement(None)
        pop = pd.concat([pop, national[national.index.isin(missing)]])
    return waiting_indicators(waiting, pop)
