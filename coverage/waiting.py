"""Waiting-list indicators by département, type of service and year, and the tension view.

Input: the rows of :func:`coverage.io.waiting.load_waiting` (per service or per
département). Output: the ``listes_attente_departements`` table (contract
:data:`LISTES_ATTENTE_DEPARTEMENTS`, registered as an output contract at import), the
tension table that sets waiting-list pressure against the white-zone population of
``couverture_departements``, chart data for the app and matplotlib figures / PNG files for
the exports.

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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from coverage.files import atomic_path
from coverage.io.waiting import EXTRA_COUNTS
from coverage.schemas import (
    CODE_DEP,
    POPULATION,
    TYPE_SERVICE,
    Contract,
    Field,
    FieldType,
    register_output_contract,
)
from coverage.settings import Settings, is_fictional_code

if TYPE_CHECKING:
    from coverage.results import RunOutputs

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


def _f(name: str, type_: FieldType, title: str, description: str = "", *, unit: str = "",
       required: bool = False) -> Field:
    return Field(name, type_, required, unit, title, description)


LISTES_ATTENTE_DEPARTEMENTS = Contract(
    "listes_attente_departements",
    "Listes d'attente par département, type de service et année",
    (
        CODE_DEP, TYPE_SERVICE,
        _f("annee", "year", "Année", "Année de l'activité (liste d'attente au 31 décembre).",
           required=True),
        _f("services", "integer", "Services déclarants",
           "Services ayant une ligne dans les retours (vide : données départementales).",
           unit="services"),
        _f("services_avec_liste", "integer", "Services avec liste d'attente",
           "Services ayant au moins une famille en attente au 31 décembre.",
           unit="services"),
        _f("part_services_avec_liste", "number", "Part des services avec liste d'attente",
           "services_avec_liste / services ayant déclaré leur liste d'attente.",
           unit="ratio 0-1"),
        _f("part_reference_nationale", "number", "Référence nationale",
           "Part des espaces de rencontre avec liste d'attente en France au 31/12/2018 "
           f"(0,59 ; source : {REFERENCE_SOURCE_URL}). Vide pour les autres types.",
           unit="ratio 0-1"),
        _f("familles_en_attente", "integer", "Familles en attente",
           "Familles en liste d'attente au 31 décembre (somme des services).",
           unit="familles"),
        POPULATION,
        _f("familles_en_attente_pour_100k", "number", "Familles en attente pour 100 000 habitants",
           "familles_en_attente / population × 100 000.",
           unit="familles pour 100 000 habitants"),
        _f("delai_moyen_jours", "number", "Délai moyen d'attente",
           "Moyenne des délais des services pondérée par leurs familles en attente "
           "(moyenne simple si aucune famille n'attend).", unit="jours"),
        _f("familles_en_attente_variation", "number", "Variation des familles en attente",
           "Différence avec l'année précédente, en familles (vide sans année précédente). "
           "Type number : un écart peut être négatif, ce n'est pas un effectif.",
           unit="familles"),
        _f("familles_en_attente_variation_pct", "number", "Variation des familles en attente (%)",
           "100 × variation / valeur de l'année précédente (vide si celle-ci est 0 ou "
           "absente).", unit="%"),
        _f("variation_delai_jours", "number", "Variation du délai moyen",
           "Différence avec l'année précédente.", unit="jours"),
        _f("familles_recues", "integer", "Familles reçues",
           "Familles reçues / accueillies (espaces de rencontre).", unit="familles"),
        _f("mesures_judiciaires", "integer", "Mesures ordonnées par le juge",
           unit="mesures"),
        _f("demandes_spontanees", "integer", "Demandes spontanées", unit="demandes"),
        _f("entretiens_information", "integer", "Entretiens d'information",
           "Entretiens d'information préalable (médiation familiale).", unit="entretiens"),
        _f("mediations", "integer", "Médiations",
           "Médiations familiales, quand le retour ne distingue pas engagées et terminées.",
           unit="médiations"),
        _f("mediations_engagees", "integer", "Médiations engagées", unit="médiations"),
        _f("mediations_terminees", "integer", "Médiations terminées", unit="médiations"),
        _f("fictif", "boolean", "Fictif",
           "Vrai pour le territoire de démonstration FICTIF.", required=True),
    ),
    ("code_dep", "type_service", "annee"),
)
register_output_contract(LISTES_ATTENTE_DEPARTEMENTS)

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
    """Population of each département, inhabitants.

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
        from coverage.cog import national_communes

        communes = national_communes()
    pop = pd.to_numeric(communes["population"], errors="coerce").fillna(0)
    out = pop.groupby(communes["code_dep"].astype(str)).sum().astype("int64")
    out.index.name = "code_dep"
    out.name = "population"
    return out


def waiting_indicators(
    waiting: pd.DataFrame, population_by_dep: pd.Series | pd.DataFrame | None = None
) -> pd.DataFrame:
    """The ``listes_attente_departements`` table: indicators by département, type and year.

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
    """The most recent year of each département and type."""
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
    """Time series of one département and type: ``annee, familles_en_attente,
    familles_en_attente_pour_100k, delai_moyen_jours`` sorted by year.
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

    The rule is the exports' (:func:`coverage.export.mask_small_counts`, applied to the
    count columns found by :func:`coverage.export.secret_columns`): every count strictly
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
    from coverage.export import mask_small_counts, secret_columns

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


# --- Figures (matplotlib, for PNG exports) -------------------------------------------------

_TYPE_TITLES = {"espace_rencontre": "Espaces de rencontre",
                "mediation_familiale": "Médiation familiale"}


def _type_title(t: str) -> str:
    return _TYPE_TITLES.get(t, t)


def _fictional_note(fig: Figure, fictif: bool) -> None:
    if fictif:
        fig.text(0.5, 0.005, "DONNÉES FICTIVES — territoire de démonstration, pas un lieu "
                 "réel", ha="center", va="bottom", fontsize=8, color="#b00020")


def figure_series(indicators: pd.DataFrame, code_dep: str, type_service: str) -> Figure:
    """Line chart of families waiting (left axis) and mean delay (right axis) by year."""
    data = series_data(indicators, code_dep, type_service)
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    ax.plot(data["annee"], data["familles_en_attente"].astype("float64"), marker="o",
            color="#1f77b4", label="Familles en attente au 31/12")
    ax.set_xlabel("Année")
    ax.set_ylabel("Familles en attente", color="#1f77b4")
    ax.set_xticks(data["annee"].tolist())
    ax2 = ax.twinx()
    ax2.plot(data["annee"], data["delai_moyen_jours"], marker="s", linestyle="--",
             color="#d62728", label="Délai moyen (jours)")
    ax2.set_ylabel("Délai moyen (jours)", color="#d62728")
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    ax.set_title(f"{_type_title(type_service)} — département {code_dep}")
    fictif = bool(indicators.loc[indicators["code_dep"] == code_dep, "fictif"].any())
    _fictional_note(fig, fictif)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def figure_ranking(indicators: pd.DataFrame, *, type_service: str, annee: int,
                   measure: str = "familles_en_attente_pour_100k",
                   highlight: str | None = None) -> Figure:
    """Horizontal bar chart of the départements ranked by ``measure``."""
    r = ranking(indicators, type_service=type_service, annee=annee, measure=measure)
    r = r[r[measure].notna()]
    fig = Figure(figsize=(7, max(2.5, 0.3 * len(r) + 1.2)), dpi=100)
    ax = fig.add_subplot()
    colors = ["#d62728" if c == highlight else "#1f77b4" for c in r["code_dep"]]
    ax.barh(r["code_dep"].astype(str), r[measure], color=colors)
    ax.invert_yaxis()
    label = LISTES_ATTENTE_DEPARTEMENTS.field(measure)
    ax.set_xlabel(f"{label.title} ({label.unit})" if label.unit else label.title)
    ax.set_title(f"{_type_title(type_service)} — {annee}")
    _fictional_note(fig, bool(r["fictif"].any()))
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def figure_tension(tension: pd.DataFrame) -> Figure:
    """Scatter of families waiting per 100,000 inhabitants against the white-zone share."""
    t = tension.dropna(subset=["familles_en_attente_pour_100k", "part_population_zone_blanche"])
    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    x = 100 * t["part_population_zone_blanche"]
    ax.scatter(x, t["familles_en_attente_pour_100k"], color="#1f77b4")
    for xi, yi, code in zip(x, t["familles_en_attente_pour_100k"], t["code_dep"], strict=True):
        ax.annotate(str(code), (xi, yi), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    if len(t) >= 2:
        ax.axvline(x.median(), color="grey", linewidth=0.8, linestyle=":")
        ax.axhline(t["familles_en_attente_pour_100k"].median(), color="grey", linewidth=0.8,
                   linestyle=":")
    seuil = tension["seuil_minutes"].iloc[0] if len(tension) else float("nan")
    typ = str(tension["type_service"].iloc[0]) if len(tension) else ""
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"Population en zone blanche à {seuil:g} min (%)")
    ax.set_ylabel("Familles en attente pour 100 000 hab.")
    ax.set_title(f"Tension — {_type_title(typ)}")
    _fictional_note(fig, bool(tension["fictif"].any()) if len(tension) else False)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _save_png(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def waiting_charts_png(
    indicators: pd.DataFrame,
    out_dir: str | Path,
    *,
    code_dep: str | None = None,
    couverture: pd.DataFrame | None = None,
    seuil: float | None = None,
    types: Sequence[str] | None = None,
    public: bool = True,
    settings: Settings = Settings(),
) -> list[Path]:
    """Write the waiting-list charts as PNG files (atomic writes).

    Parameters
    ----------
    indicators
        :func:`waiting_indicators` output (unmasked; masked here when ``public``).
    out_dir
        Folder of the PNG files (created if needed).
    code_dep
        Département of the time series (and highlighted in the ranking); None → no series.
    couverture
        ``couverture_departements`` of the run, for the tension chart (skipped when None).
    seuil
        Threshold of the tension chart, minutes; None → the smallest of the run.
    types
        Service types to draw; None → those present in ``indicators``.
    public
        Apply :func:`mask_public` first (statistical secrecy).
    settings
        ``secrecy_threshold``.

    Returns
    -------
    list of pathlib.Path
        The files written: ``listes_attente_<dep>_<type>.png`` (series),
        ``listes_attente_classement_<type>_<year>.png``,
        ``listes_attente_tension_<type>_<seuil>min.png``. A chart with nothing to show
        (every value missing or masked) is not written.
    """
    out_dir = Path(out_dir)
    data = mask_public(indicators, settings) if public else indicators
    written: list[Path] = []
    all_types: Iterable[str] = types if types is not None else sorted(
        indicators["type_service"].unique())
    for typ in all_types:
        sel = data[data["type_service"] == typ]
        if sel.empty:
            continue
        mine = sel[sel["code_dep"] == code_dep]
        if code_dep is not None and mine[["familles_en_attente",
                                          "delai_moyen_jours"]].notna().any(axis=None):
            fig = figure_series(data, code_dep, typ)
            written.append(_save_png(fig, out_dir / f"listes_attente_{code_dep}_{typ}.png"))
        year = int(sel["annee"].max())
        if sel.loc[sel["annee"] == year, "familles_en_attente_pour_100k"].notna().any():
            fig = figure_ranking(data, type_service=typ, annee=year, highlight=code_dep)
            written.append(_save_png(
                fig, out_dir / f"listes_attente_classement_{typ}_{year}.png"))
        if couverture is not None:
            cov = couverture[couverture["type_service"] == typ]
            if cov.empty:
                continue
            s = float(seuil) if seuil is not None else float(cov["seuil_minutes"].min())
            t = tension_table(indicators, couverture, type_service=typ, seuil=s)
            if public:
                t = mask_public(t, settings)
            fig = figure_tension(t)
            written.append(_save_png(
                fig, out_dir / f"listes_attente_tension_{typ}_{s:g}min.png"))
    log.info("%d waiting-list charts written to %s", len(written), out_dir)
    return written


def indicators_for_run(waiting: pd.DataFrame, communes: gpd.GeoDataFrame | pd.DataFrame
                       ) -> pd.DataFrame:
    """``listes_attente_departements`` of a run: populations from the run's communes, and
    from the national table for départements of the returns outside the run.
    """
    pop = population_by_departement(communes)
    missing = set(waiting["code_dep"].astype(str)) - set(pop.index)
    if missing:
        national = population_by_departement(None)
        pop = pd.concat([pop, national[national.index.isin(missing)]])
    return waiting_indicators(waiting, pop)


def waiting_charts_for_run(
    run: RunOutputs,
    dept: str,
    out_dir: str | Path,
    *,
    public: bool = True,
    settings: Settings = Settings(),
) -> list[Path]:
    """PNG charts of one département from a finished run (for :mod:`coverage.export`).

    Parameters
    ----------
    run
        The run (:class:`coverage.results.RunOutputs`); its ``listes_attente_departements``
        table (all départements, for the ranking) and ``couverture_departements`` (tension).
    dept
        Département code of the series and of the highlighted bar.
    out_dir
        Folder of the PNG files.
    public
        Mask small counts first (statistical secrecy).
    settings
        ``secrecy_threshold``.

    Returns
    -------
    list of pathlib.Path
        The PNG files written (see :func:`waiting_charts_png`); empty when the run has no
        waiting lists. The tension chart uses the 30-minute threshold when the run has it,
        else its smallest threshold.
    """
    table = run.tables.get(LISTES_ATTENTE_DEPARTEMENTS.name)
    if table is None or table.empty:
        return []
    couverture = run.tables.get("couverture_departements")
    seuil: float | None = None
    if couverture is not None and len(couverture):
        seuils = sorted(pd.to_numeric(couverture["seuil_minutes"]).unique().tolist())
        seuil = 30.0 if any(np.isclose(s, 30.0) for s in seuils) else float(seuils[0])
    return waiting_charts_png(table, out_dir, code_dep=str(dept), couverture=couverture,
                              seuil=seuil, public=public, settings=settings)
