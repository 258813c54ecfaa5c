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
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.cog import national_communes
from coverage.io.waiting import (
    COUNT_COLUMNS,
    DEFAULT_SOURCE,
    EXTRA_COUNTS,
    PERIOD_KIND_LABELS,
    parse_period,
    shift_period,
)
from coverage.schemas import CONFLITS_LISTES_ATTENTE, LISTES_ATTENTE_DEPARTEMENTS
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
    "mixed_periods_note",
    "population_by_departement",
    "previous_periods",
    "ranking",
    "reconcile_returns",
    "series_data",
    "tension_table",
    "waiting_indicators",
    "with_periods",
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

_KEY = ["code_dep", "type_service", "periode"]
#: Columns that follow from ``periode``: carried through the aggregation.
_PERIOD_COLUMNS = ["annee", "type_periode", "date_periode"]


#: Columns derived from ``familles_en_attente``: masked with it.
_DERIVED_FROM_FAMILIES: tuple[str, ...] = (
    "familles_en_attente_pour_100k", "familles_en_attente_variation",
    "familles_en_attente_variation_pct", "delai_moyen_jours", "variation_delai_jours",
    "variation_annuelle_familles", "variation_annuelle_familles_pct",
    "variation_delai_annuelle_jours")


# --- Periods and reconciliation of several returns ---------------------------------------

#: Provenance and period columns a frame of returns may lack (older frames, tests).
_PROVENANCE_DEFAULTS: dict[str, Any] = {
    "source": DEFAULT_SOURCE, "fichier": "", "ligne": pd.NA, "date_retour": pd.NaT,
    "ordre_fichier": 0}
#: Measures compared between returns (families, delay and activity counts).
_MEASURES: tuple[str, ...] = (*COUNT_COLUMNS, "delai_moyen_jours")
_RETURN_KEY = ["code_dep", "type_service", "periode"]


def with_periods(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of rows or indicators with the period columns filled.

    Rows without ``periode`` (frames of earlier versions, hand-made frames) are annual:
    ``periode`` = the year, ``type_periode`` = ``annee``, ``date_periode`` = 31 December.
    ``date_periode`` is returned as datetime64.

    Parameters
    ----------
    df
        Returns (``load_waiting(...).data``) or indicators; needs ``annee`` when
        ``periode`` is missing.

    Returns
    -------
    pandas.DataFrame
        The copy, with ``periode`` (str), ``type_periode`` and ``date_periode``.
    """
    out = df.copy()
    annual = out["annee"].map(lambda y: None if pd.isna(y) else str(int(y))) \
        if "annee" in out.columns else pd.Series(None, index=out.index, dtype=object)
    if "periode" not in out.columns:
        out["periode"] = annual
    missing = out["periode"].isna() | out["periode"].astype(str).isin(["", "None", "nan"])
    out["periode"] = out["periode"].where(~missing, annual).astype(str)
    parsed = out["periode"].map(parse_period)
    if "type_periode" not in out.columns or out["type_periode"].isna().any():
        out["type_periode"] = parsed.map(lambda p: None if p is None else p.kind)
    if "date_periode" not in out.columns or out["date_periode"].isna().any():
        out["date_periode"] = parsed.map(lambda p: None if p is None else p.end)
    out["date_periode"] = pd.to_datetime(out["date_periode"])
    return out


def _with_provenance(rows: pd.DataFrame) -> pd.DataFrame:
    out = with_periods(rows)
    for col, default in _PROVENANCE_DEFAULTS.items():
        if col not in out.columns:
            out[col] = default
    out["date_retour"] = pd.to_datetime(out["date_retour"])
    if "service_id" not in out.columns:
        out["service_id"] = None
    return out


def _priority(rows: pd.DataFrame) -> pd.DataFrame:
    """Sort rows of one key by the reconciliation rule, the retained row first."""
    key = pd.DataFrame({
        "svc": (rows["source"] == "service").astype(int),
        "dated": rows["date_retour"].notna().astype(int),
        "date": rows["date_retour"].to_numpy(dtype="datetime64[ns]").astype("int64"),
        "order": rows["ordre_fichier"].astype(int),
    }, index=rows.index)
    order = key.sort_values(["svc", "dated", "date", "order"], ascending=False,
                            kind="stable").index
    return rows.loc[order]


def _rule(kept: pd.Series, other: pd.Series) -> str:
    """Return the French name of the rule that put ``kept`` before ``other``."""
    if kept["source"] == "service" and other["source"] != "service":
        return "retour du service"
    if pd.notna(kept["date_retour"]) and pd.notna(other["date_retour"]) \
            and kept["date_retour"] != other["date_retour"]:
        return "date de retour la plus récente"
    if pd.notna(kept["date_retour"]) and pd.isna(other["date_retour"]):
        return "seul retour daté"
    return "fichier donné en dernier"


def _differs(a: Any, b: Any) -> bool:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return False
    return not np.isclose(float(a), float(b))


def _conflict(kept: pd.Series, other: pd.Series, column: str, values: tuple[Any, Any],
              rule: str) -> dict[str, object]:
    return {
        "code_dep": kept["code_dep"], "type_service": kept["type_service"],
        "periode": kept["periode"],
        "service_id": None if pd.isna(kept["service_id"]) else kept["service_id"],
        "colonne": column, "valeur_retenue": float(values[0]),
        "source_retenue": kept["source"], "fichier_retenu": kept["fichier"],
        "ligne_retenue": kept["ligne"], "valeur_ecartee": float(values[1]),
        "source_ecartee": other["source"], "fichier_ecarte": other["fichier"],
        "ligne_ecartee": other["ligne"], "regle": rule,
        "fictif": is_fictional_code(str(kept["code_dep"])),
    }


def _merge_group(group: pd.DataFrame, conflicts: list[dict[str, object]]) -> pd.Series:
    """Return the reconciled row of one key; add the conflicts of its values."""
    ranked = _priority(group)
    kept = ranked.iloc[0].copy()
    columns = [c for c in _MEASURES if c in group.columns]
    for _, other in ranked.iloc[1:].iterrows():
        rule = _rule(ranked.iloc[0], other)
        for col in columns:
            if _differs(kept[col], other[col]):
                conflicts.append(_conflict(ranked.iloc[0], other, col,
                                           (kept[col], other[col]), rule))
            elif pd.isna(kept[col]) and pd.notna(other[col]):
                kept[col] = other[col]  # a value reported by one source only is kept
    kept["sources"] = " ; ".join(dict.fromkeys(ranked["source"].astype(str)))
    return kept


def _drop_departement_rows(rows: pd.DataFrame, conflicts: list[dict[str, object]]
                           ) -> pd.DataFrame:
    """Keep the per-service rows where a département row covers the same type and period."""
    per_service = rows["service_id"].notna()
    svc_keys = set(map(tuple, rows.loc[per_service, _RETURN_KEY].to_numpy().tolist()))
    dep_rows = rows[~per_service]
    covered = dep_rows[[tuple(k) in svc_keys
                        for k in dep_rows[_RETURN_KEY].to_numpy().tolist()]]
    counts = [c for c in COUNT_COLUMNS if c in rows.columns]
    for _, dep in covered.iterrows():
        services = rows[per_service & (rows[_RETURN_KEY] == dep[_RETURN_KEY]).all(axis=1)]
        total = services.iloc[0].copy()
        total["service_id"], total["ligne"] = None, pd.NA
        total["source"] = " ; ".join(dict.fromkeys(services["source"].astype(str)))
        total["fichier"] = " ; ".join(dict.fromkeys(services["fichier"].astype(str)))
        for col in counts:
            value = pd.to_numeric(services[col], errors="coerce").sum(min_count=1)
            if _differs(value, dep[col]):
                conflicts.append(_conflict(total, dep, col, (value, dep[col]),
                                           "lignes par service plutôt que ligne "
                                           "départementale"))
    return rows.drop(index=covered.index)


def reconcile_returns(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reconcile the returns of several sources: one row per service (or département).

    Rule, for rows of the same département, type, period and service (or département
    rows without service):

    1. the service's own return (``source`` = ``service``) comes first;
    2. then the most recent return: the latest ``date_retour``; a dated return comes before
       an undated one;
    3. then the file given last (``ordre_fichier``: the order of the files on the command
       line, a folder's files by name).

    The retained row gives every value it reports; a value it leaves empty is taken from
    the next row that reports it. Every value set aside that differs from the retained one
    is a conflict. Where per-service rows and a département row (from another file) cover
    the same département, type and period, the per-service rows are kept and the
    département row's counts that differ from the services' sum are conflicts.

    Parameters
    ----------
    rows
        ``coverage.io.waiting.load_waiting_files(...).rows`` (or ``load_waiting(...)
        .data``); missing provenance columns get defaults (source ``autre``, file order 0).

    Returns
    -------
    tuple of pandas.DataFrame
        The reconciled rows (input columns plus ``sources``: every source of the key, the
        retained one first) and the conflicts (:data:`coverage.schemas.
        CONFLITS_LISTES_ATTENTE` columns).
    """
    w = _with_provenance(rows)
    conflicts: list[dict[str, object]] = []
    sid = w["service_id"].astype(object).where(w["service_id"].notna(), "")
    keys = [w[c] for c in _RETURN_KEY] + [sid]
    sizes = w.groupby(keys, sort=False, dropna=False)["code_dep"].transform("size")
    single = w[sizes == 1]
    single = single.assign(sources=single["source"].astype(str))
    merged = [_merge_group(g, conflicts)
              for _, g in w[sizes > 1].groupby(keys, sort=False, dropna=False)]
    parts = [single] + ([pd.DataFrame(merged)] if merged else [])
    out = pd.concat(parts, ignore_index=True) if merged else single.reset_index(drop=True)
    out = _drop_departement_rows(out, conflicts)
    out = out.sort_values(["code_dep", "type_service", "date_periode", "periode"],
                          kind="stable").reset_index(drop=True)
    table = pd.DataFrame(conflicts, columns=CONFLITS_LISTES_ATTENTE.columns)
    return out[[*[c for c in w.columns if c in out.columns], "sources"]], table


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
    w = with_periods(waiting)
    if w.duplicated([*_KEY, "service_id"]).any():
        w = reconcile_returns(w)[0]
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
    g = w.groupby([*_KEY, *_PERIOD_COLUMNS], sort=True, dropna=False)
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
    _add_changes(agg)
    kinds = agg.groupby(["code_dep", "type_service"])["type_periode"].transform("nunique")
    agg["periodes_mixtes"] = (kinds > 1).astype(bool)
    agg["fictif"] = agg["code_dep"].map(is_fictional_code).astype(bool)
    agg = agg.sort_values(["code_dep", "type_service", "date_periode", "periode"],
                          kind="stable").reset_index(drop=True)
    float_cols = ["part_services_avec_liste", "part_reference_nationale",
                  "familles_en_attente_pour_100k", "delai_moyen_jours",
                  "familles_en_attente_variation", "familles_en_attente_variation_pct",
                  "variation_delai_jours", "variation_annuelle_familles",
                  "variation_annuelle_familles_pct",
                  "variation_delai_annuelle_jours"]
    for c in float_cols:
        agg[c] = pd.to_numeric(agg[c]).astype("float64")
    agg["code_dep"] = agg["code_dep"].astype("str")
    agg["type_service"] = agg["type_service"].astype("str")
    agg["annee"] = agg["annee"].astype("int64")
    agg["date_periode"] = pd.to_datetime(agg["date_periode"]).dt.strftime("%Y-%m-%d")
    return agg[LISTES_ATTENTE_DEPARTEMENTS.columns]


def previous_periods(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Return, for each row, the label of its previous period and of a year before.

    The previous period is the one just before of the same kind (2025-T1 → 2024-T4,
    2025 → 2024); for dates of observation, the previous date of the same département
    and type. A year before: the same period one year earlier (the same day for a date).

    Parameters
    ----------
    table
        Rows with ``code_dep, type_service, periode, type_periode, date_periode``.

    Returns
    -------
    tuple of pandas.Series
        Labels (None when there is none), aligned on ``table``.
    """
    prev = pd.Series([shift_period(p, k, steps=-1) for p, k in
                      zip(table["periode"], table["type_periode"], strict=True)],
                     index=table.index, dtype=object)
    dates = table[table["type_periode"] == "date"].sort_values("date_periode")
    if len(dates):
        before = dates.groupby(["code_dep", "type_service"])["periode"].shift(1)
        prev.loc[before.index] = before.where(before.notna(), None)
    year = pd.Series([shift_period(p, k, years=-1) for p, k in
                      zip(table["periode"], table["type_periode"], strict=True)],
                     index=table.index, dtype=object)
    return prev, year


def _add_changes(agg: pd.DataFrame) -> None:
    """Add the changes on the previous period and on a year before (in place)."""
    prev, year = previous_periods(agg)
    lookup = agg.set_index(_KEY)[["familles_en_attente", "delai_moyen_jours"]]
    for labels, fam_col, pct_col, delay_col in (
            (prev, "familles_en_attente_variation", "familles_en_attente_variation_pct",
             "variation_delai_jours"),
            (year, "variation_annuelle_familles",
             "variation_annuelle_familles_pct", "variation_delai_annuelle_jours")):
        index = pd.MultiIndex.from_arrays([agg["code_dep"], agg["type_service"], labels])
        before = lookup.reindex(index)
        fam_before = before["familles_en_attente"].astype("float64").to_numpy()
        diff = agg["familles_en_attente"].astype("float64").to_numpy() - fam_before
        agg[fam_col] = diff
        agg[pct_col] = 100.0 * diff / np.where(fam_before > 0, fam_before, np.nan)
        agg[delay_col] = agg["delai_moyen_jours"].to_numpy() - \
            before["delai_moyen_jours"].astype("float64").to_numpy()


def mixed_periods_note(indicators: pd.DataFrame, code_dep: str | None = None,
                       type_service: str | None = None) -> str | None:
    """Return the French note of a series mixing kinds of period, or None.

    Parameters
    ----------
    indicators
        :func:`waiting_indicators` output (or rows with ``type_periode``).
    code_dep, type_service
        The series; None → any.

    Returns
    -------
    str or None
        E.g. « Série mêlant des périodes de natures différentes (annuelle, trimestrielle) :
        les variations ne comparent que des périodes de même nature. »
    """
    sel = with_periods(indicators)
    if code_dep is not None:
        sel = sel[sel["code_dep"] == code_dep]
    if type_service is not None:
        sel = sel[sel["type_service"] == type_service]
    kinds = [k for k in PERIOD_KIND_LABELS if k in set(sel["type_periode"])]
    if len(kinds) < 2:
        return None
    return ("Série mêlant des périodes de natures différentes ("
            + ", ".join(PERIOD_KIND_LABELS[k] for k in kinds)
            + ") : les variations ne comparent que des périodes de même nature.")


def latest_year(indicators: pd.DataFrame) -> pd.DataFrame:
    """Keep the most recent year of each département and type.

    Parameters
    ----------
    indicators
        :func:`waiting_indicators` output.

    Returns
    -------
    pandas.DataFrame
        One row per département and type: its latest period (latest ``date_periode``,
        i.e. the latest ``annee`` for annual data).
    """
    dated = with_periods(indicators).reset_index(drop=True)
    idx = dated.groupby(["code_dep", "type_service"])["date_periode"].idxmax()
    return dated.loc[idx.to_numpy()].reset_index(drop=True)


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
        Year of the waiting lists (its latest period for sub-annual returns); None → the
        latest period of each département.

    Returns
    -------
    pandas.DataFrame
        ``code_dep, type_service, annee, periode, seuil_minutes, familles_en_attente,
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
    ind = latest_year(ind[ind["annee"] == annee] if annee is not None else ind)
    cov = couverture[couverture["type_service"] == type_service]
    seuils = sorted(pd.to_numeric(cov["seuil_minutes"]).unique().tolist())
    cov = cov[np.isclose(pd.to_numeric(cov["seuil_minutes"]).astype(float), float(seuil))]
    if cov.empty:
        msg = (f"no coverage for type {type_service!r} at {seuil} min; thresholds of the "
               f"run: {', '.join(f'{s:g}' for s in seuils) or 'none'}")
        raise ValueError(msg)
    cov = cov.assign(code_dep=cov["code_dep"].astype(str))[
        ["code_dep", "population", "population_zone_blanche"]]
    out = ind[["code_dep", "type_service", "annee", "periode", "familles_en_attente",
               "familles_en_attente_pour_100k", "delai_moyen_jours", "fictif"]].merge(
        cov, on="code_dep", how="left", validate="one_to_one")
    pop = pd.to_numeric(out["population"], errors="coerce").astype("float64")
    out["part_population_zone_blanche"] = (
        pd.to_numeric(out["population_zone_blanche"], errors="coerce").astype("float64")
        / pop.where(pop > 0))
    out["seuil_minutes"] = float(seuil)
    out["quadrant"] = _quadrants(out["familles_en_attente_pour_100k"],
                                 out["part_population_zone_blanche"])
    cols = ["code_dep", "type_service", "annee", "periode", "seuil_minutes",
            "familles_en_attente",
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
    """Return the time series of one département and type, in time order.

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
        (families per 100,000 inhabitants), ``delai_moyen_jours`` (days), ``periode``,
        ``type_periode`` and ``date_periode`` (datetime64, end of the period: the time
        axis, with the real spacing of the periods).
    """
    sel = with_periods(indicators[(indicators["code_dep"] == code_dep)
                                  & (indicators["type_service"] == type_service)])
    return sel[["annee", "familles_en_attente", "familles_en_attente_pour_100k",
                "delai_moyen_jours", "periode", "type_periode", "date_periode"]].sort_values(
        ["date_periode", "periode"]).reset_index(drop=True)


def ranking(indicators: pd.DataFrame, *, type_service: str, annee: int | None = None,
            measure: str = "familles_en_attente_pour_100k",
            periode: str | None = None) -> pd.DataFrame:
    """Départements ranked by ``measure`` (1 = highest) for one type and year or period.

    With ``annee``, each département's latest period of that year is ranked (the year
    itself for annual returns); with ``periode``, that period only.

    Returns
    -------
    pandas.DataFrame
        ``rang`` (ties share the lowest rank, missing values unranked), ``code_dep``,
        ``measure`` value, ``sur`` (number of départements ranked), ``fictif``.
    """
    sel = with_periods(indicators[indicators["type_service"] == type_service])
    if periode is not None:
        sel = sel[sel["periode"] == str(periode)]
    if annee is not None:
        sel = latest_year(sel[sel["annee"] == annee])
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
        _hide_revealing_changes(out, fam, indicators["familles_en_attente_variation"], k,
                                ("familles_en_attente_variation",
                                 "familles_en_attente_variation_pct", "variation_delai_jours"))
    if {"familles_en_attente", "variation_annuelle_familles"} <= set(
            indicators.columns):
        fam = pd.to_numeric(indicators["familles_en_attente"], errors="coerce")
        _hide_revealing_changes(out, fam, indicators["variation_annuelle_familles"],
                                k, ("variation_annuelle_familles",
                                    "variation_annuelle_familles_pct",
                                    "variation_delai_annuelle_jours"))
    if {"familles_en_attente", "services_avec_liste",
            "part_services_avec_liste"} <= set(indicators.columns):
        hide = (out["familles_en_attente"].isna()
                & indicators["familles_en_attente"].notna()).to_numpy()
        out["services_avec_liste"] = out["services_avec_liste"].astype("Int64").mask(hide)
        out["part_services_avec_liste"] = out["part_services_avec_liste"].mask(hide)
    return out


def _hide_revealing_changes(out: pd.DataFrame, fam: pd.Series, change: pd.Series, k: int,
                            columns: tuple[str, ...]) -> None:
    """Empty (in place) the changes whose earlier count (``fam - change``) is below ``k``."""
    before = fam - pd.to_numeric(change, errors="coerce")
    hide = (before < k).fillna(False).astype(bool).to_numpy()
    for c in columns:
        if c in out.columns:
            out[c] = out[c].mask(hide)


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
