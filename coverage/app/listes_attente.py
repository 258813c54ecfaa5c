"""Page « Listes d'attente »: the département's series, its rank, the tension view, uploads.

Data, in order of preference: the return files uploaded in this session (one or several,
each validated by :func:`coverage.io.waiting.load_waiting` against the run's communes, then
reconciled by :func:`coverage.waiting.reconcile_returns`, optionally restricted to some
partners), the run's ``listes_attente_departements`` table, or, for the demo run, the
demo's FICTIONAL waiting lists. The page shows the provenance of the rows (source, file) and
the conflicts between sources. Indicators come from :mod:`coverage.waiting`; small counts
are masked by default (statistical secrecy, as in public exports). Series are drawn on a
time axis (end of each period), so periods keep their real spacing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from coverage import waiting as wl
from coverage.app import state, views
from coverage.app.upload import UploadedFile, load_uploaded, problems_frame
from coverage.errors import CoverageError, InputError
from coverage.io.waiting import SOURCES, load_waiting
from coverage.labels import (
    CHART_NUMBER_LOCALE,
    CHART_TIME_LOCALE,
    FICTIONAL_WAITING,
    PLACEHOLDER_CHOICE,
    PLACEHOLDER_CHOICES,
    fr_decimal,
    fr_int,
    fr_minutes,
    fr_percent,
    type_label,
)
from coverage.results import RunOutputs
from coverage.schemas import CONFLITS_LISTES_ATTENTE, LISTES_ATTENTE_DEPARTEMENTS
from coverage.secrecy import mask_small_counts
from coverage.settings import NO_SERVICE, SERVICE_TYPES, Settings
from coverage.waiting.followup import mask_conflicts

__all__ = ["MAX_UPLOAD_BYTES", "PARTNER_KEY", "WAITING_UPLOAD_KEY", "WaitingView", "render",
           "uploaded_returns", "validate_upload", "waiting_source"]

log = logging.getLogger(__name__)

#: Session-state key of the uploaded return files: a list of dicts (name, data | problems,
#: warnings); a single dict (one file) is read too.
WAITING_UPLOAD_KEY = "zb_waiting_upload"
#: Widget key of the partner filter (sources kept).
PARTNER_KEY = "waiting_partners"
#: Largest returns file accepted by the page, bytes.
MAX_UPLOAD_BYTES = 5_000_000
#: Colours of the charts: the selected département, the others.
HIGHLIGHT_COLOUR = "#d62728"
OTHER_COLOUR = "#1f77b4"


def validate_upload(name: str, content: bytes, communes: pd.DataFrame | None,
                    settings: Settings = Settings()) -> dict[str, Any]:
    """Validate an uploaded returns file with the loader.

    Parameters
    ----------
    name
        The uploaded file's name (its extension chooses the reader; it names the file in
        the messages).
    content
        The file's bytes.
    communes
        Communes of the run (their départements are accepted, fictional ones included).
    settings
        Service types; ``max_input_bytes`` is lowered to :data:`MAX_UPLOAD_BYTES`.

    Returns
    -------
    dict
        ``{"name", "data", "warnings"}`` when valid, ``{"name", "problems"}`` (a frame:
        fichier, ligne, colonne, attendu, trouvé) when not.
    """
    upload = UploadedFile(name if Path(name).name else "retours.csv", content)
    try:
        loaded = load_uploaded(upload, load_waiting, communes=communes, settings=replace(
            settings, max_input_bytes=MAX_UPLOAD_BYTES))
    except InputError as exc:
        frame = problems_frame(exc)
        frame["fichier"] = upload.safe_name
        return {"name": upload.safe_name, "problems": frame}
    return {"name": upload.safe_name, "data": loaded.data, "warnings": loaded.warnings}


def uploaded_returns() -> list[dict[str, Any]]:
    """Return the uploaded files of this session (valid or not), in upload order."""
    up = st.session_state.get(WAITING_UPLOAD_KEY)
    if not up:
        return []
    return [up] if isinstance(up, dict) else list(up)


@dataclass(frozen=True)
class WaitingView:
    """What the page shows.

    Attributes
    ----------
    indicators
        Indicators by département, type and period (None: nothing to show).
    origin
        French sentence saying where they come from.
    rows
        The uploaded rows with their provenance, reconciled (None for the run's table).
    conflicts
        Conflicts between sources (uploads, or the run's ``conflits_listes_attente``).
    """

    indicators: pd.DataFrame | None
    origin: str
    rows: pd.DataFrame | None = None
    conflicts: pd.DataFrame | None = None


def _uploaded_view(valid: list[dict[str, Any]], communes: pd.DataFrame,
                   partners: list[str] | None) -> WaitingView:
    rows = pd.concat([u["data"].assign(ordre_fichier=i) for i, u in enumerate(valid)],
                     ignore_index=True)
    if partners is not None:
        rows = rows[rows["source"].isin(partners)]
    names = ", ".join(f"« {u['name']} »" for u in valid)
    origin = (f"fichier importé {names}" if len(valid) == 1
              else f"fichiers importés {names}")
    if rows.empty:
        return WaitingView(None, origin)
    reconciled, conflicts = wl.reconcile_returns(rows)
    return WaitingView(wl.indicators_for_run(reconciled, communes), origin, reconciled,
                       conflicts)


def waiting_source(run: RunOutputs, partners: list[str] | None = None) -> WaitingView:
    """Return the indicators to show, where they come from, the rows and the conflicts.

    In order of preference: the return files uploaded in this session (restricted to
    ``partners`` when given), the run's ``listes_attente_departements`` table, the demo's
    FICTIONAL waiting lists.
    """
    valid = [u for u in uploaded_returns() if "data" in u]
    communes = pd.DataFrame(run.communes.drop(columns="geometry"))
    if valid:
        return _uploaded_view(valid, communes, partners)
    table = run.tables.get(LISTES_ATTENTE_DEPARTEMENTS.name)
    if table is not None and len(table):
        return WaitingView(wl.with_periods(table), "table listes_attente_departements du run",
                           conflicts=run.tables.get(CONFLITS_LISTES_ATTENTE.name))
    if run.fictif:
        demo = load_waiting(communes=communes).data
        return WaitingView(wl.indicators_for_run(demo, communes),
                           "listes d'attente FICTIVES de la démo")
    return WaitingView(None, "")


def _line(df: pd.DataFrame, column: str, title: str) -> alt.Chart:
    """Return the line chart of one measure over time (real spacing of the periods)."""
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("date_periode:T", title="Fin de période"),
        y=alt.Y(f"{column}:Q", title=title),
        tooltip=[alt.Tooltip("periode:N", title="Période"),
                 alt.Tooltip(f"{column}:Q", title=title, format=",.1f")],
    ).properties(height=260)


def _validate_files(run: RunOutputs, files: list[Any]) -> None:
    """Validate the uploaded files when they changed; keep the results in the session."""
    token = [(f.name, f.size) for f in files]
    current = uploaded_returns()
    if [(u.get("name"), u.get("size")) for u in current] == token:
        return
    communes = pd.DataFrame(run.communes.drop(columns="geometry"))
    results = []
    for f in files:
        result = validate_upload(f.name, f.getvalue(), communes)
        result["size"] = f.size
        results.append(result)
    st.session_state[WAITING_UPLOAD_KEY] = results


def render_upload(run: RunOutputs) -> None:
    """Draw the upload box: validate one or several return files, keep them in the session."""
    with st.expander("Importer des fichiers de retours d'activité (CSV ou XLSX, un ou "
                     "plusieurs)"):
        st.caption("Colonnes : département, type de service, période (2025, 2025-S1, "
                   "2025-T3, 2025-03 ou une date d'observation) ou année, familles en "
                   "attente, délai moyen (jours), et facultativement source (CAF, MSA, cour "
                   "d'appel, service, autre), date du retour, service, familles reçues, "
                   "mesures judiciaires, demandes spontanées, entretiens, médiations. Sans "
                   "colonne source, le début du nom du fichier la donne (caf_…, msa_…, "
                   "service_…), sinon « autre ». Les intitulés français usuels sont "
                   "reconnus (voir docs/listes_attente.md).")
        files = st.file_uploader("Fichiers de retours", type=["csv", "xlsx"],
                                 key="waiting_file", max_upload_size=5,
                                 accept_multiple_files=True)
        if files:
            _validate_files(run, list(files))
        ups = uploaded_returns()
        for up in ups:
            if "problems" in up:
                st.error(f"Fichier « {up['name']} » refusé : {len(up['problems'])} "
                         "problème(s). Corrigez-les et importez-le à nouveau.")
                views.show_table(up["problems"])
            else:
                st.success(f"Fichier « {up['name']} » chargé : {len(up['data'])} lignes.")
                for w in up.get("warnings", []):
                    st.warning(w)
        if ups and st.button("Revenir aux données du run", key="waiting_forget"):
            st.session_state.pop(WAITING_UPLOAD_KEY, None)
            st.rerun()


def _partners() -> list[str] | None:
    """Draw the partner filter when uploaded rows have sources; return those kept."""
    present = sorted({str(s) for u in uploaded_returns() if "data" in u
                      for s in u["data"]["source"].dropna()},
                     key=lambda s: SOURCES.index(s) if s in SOURCES else len(SOURCES))
    if not present:
        return None
    chosen = st.multiselect("Partenaires (sources des retours)", present, default=present,
                            key=PARTNER_KEY, placeholder=PLACEHOLDER_CHOICES)
    return [str(c) for c in chosen]


#: Columns of the provenance table, with their headings.
PROVENANCE_COLUMNS: dict[str, Any] = {
    "code_dep": st.column_config.TextColumn("Département"),
    "type_service": st.column_config.TextColumn("Type"),
    "periode": st.column_config.TextColumn("Période"),
    "service_id": st.column_config.TextColumn("Service"),
    "familles_en_attente": st.column_config.NumberColumn("Familles en attente"),
    "delai_moyen_jours": st.column_config.NumberColumn("Délai moyen (j)", format="%.0f"),
    "source": st.column_config.TextColumn("Source retenue"),
    "sources": st.column_config.TextColumn("Sources"),
    "fichier": st.column_config.TextColumn("Fichier"),
    "ligne": st.column_config.NumberColumn("Ligne", format="%d"),
}


def _provenance_section(view: WaitingView, public: bool) -> None:
    """Draw the provenance of the rows and the conflicts between sources."""
    conflicts = view.conflicts
    n = 0 if conflicts is None else len(conflicts)
    st.subheader("Provenance et conflits entre sources")
    if view.rows is not None:
        rows = view.rows
        if public:
            rows = mask_small_counts(rows, ["familles_en_attente"],
                                     Settings().secrecy_threshold, None,
                                     derived={"familles_en_attente": ("delai_moyen_jours",)})
        # counts, days (« %.0f ») and row numbers (« %d »): whole, row numbers ungrouped
        views.show_table(rows, PROVENANCE_COLUMNS, column_order=list(PROVENANCE_COLUMNS))
    if n and conflicts is not None:
        st.warning(f"{n} conflit(s) entre sources : pour un même service (ou département), "
                   "type et période, le retour du service l'emporte, puis la date de retour "
                   "la plus récente, puis le fichier importé en dernier.")
        shown = mask_conflicts(conflicts, Settings()) if public else conflicts
        views.show_table(shown)
    else:
        st.caption("Aucun conflit entre sources.")


def _highlight(dept: str) -> Any:
    """Return the colour encoding that marks the selected département."""
    return alt.condition(alt.datum.code_dep == dept, alt.value(HIGHLIGHT_COLOUR),
                         alt.value(OTHER_COLOUR))


def _controls(sel: state.Selection, indicators: pd.DataFrame) -> tuple[str, str, bool]:
    """Draw the type, département and secrecy controls; return their values."""
    present = set(indicators["type_service"])
    types = [t for t in SERVICE_TYPES if t in present]
    types += sorted(present - set(types))
    depts = sorted(indicators["code_dep"].astype(str).unique())
    c1, c2, c3 = st.columns(3)
    typ = c1.selectbox("Type de service", types, key="waiting_type",
                       placeholder=PLACEHOLDER_CHOICE,
                       index=types.index(sel.type_service)
                       if sel.type_service in types and sel.type_service != NO_SERVICE else 0,
                       format_func=lambda t: type_label(t, plural=True))
    dept = c2.selectbox("Département", depts, key="waiting_dept",
                        placeholder=PLACEHOLDER_CHOICE,
                        index=depts.index(sel.dept) if sel.dept in depts else 0)
    public = c3.toggle("Secret statistique", value=True, key="waiting_public",
                       help=f"Masque les effectifs inférieurs à {Settings().secrecy_threshold} "
                            "et ce qui en dérive, comme dans les exports publics.")
    return str(typ), str(dept), bool(public)


def _series_metrics(row: pd.Series) -> None:
    """Draw the last period's figures of a département and type."""
    m1, m2, m3, m4 = st.columns(4)
    label = f"au 31/12/{row['annee']}" if row["type_periode"] == "annee" else \
        f"en fin de période ({row['periode']})"
    m1.metric(f"Familles en attente {label}",
              _fmt(row["familles_en_attente"], fr_int),
              delta=_fmt(row["familles_en_attente_variation"], _fr_signed, None),
              delta_color="inverse")
    m2.metric("Pour 100 000 habitants", _fmt(row["familles_en_attente_pour_100k"],
                                              fr_decimal))
    m3.metric("Délai moyen (jours)", _fmt(row["delai_moyen_jours"], fr_int))
    part = row["part_services_avec_liste"]
    ref = row["part_reference_nationale"]
    m4.metric("Services avec liste d'attente", _fmt(part, _fr_percent0),
              help=None if pd.isna(ref) else
              f"Référence nationale : {fr_percent(ref, 0)} des espaces de rencontre au "
              "31/12/2018 "
              f"({wl.REFERENCE_SOURCE_URL})")


def _series_section(shown: pd.DataFrame, dept: str, typ: str) -> None:
    """Draw the département's series: last year's figures and two charts."""
    st.subheader(f"{type_label(typ, plural=True)} — département {dept}")
    series = wl.series_data(shown, dept, typ)
    if series.empty:
        st.info("Pas de données pour ce département et ce type.")
        return
    last = series.iloc[-1]
    row = shown[(shown["code_dep"] == dept) & (shown["type_service"] == typ)
                & (shown["periode"] == last["periode"])].iloc[0]
    _series_metrics(row)
    note = wl.mixed_periods_note(shown, dept, typ)
    if note:
        st.info(note)
    g1, g2 = st.columns(2)
    for col, column, title in ((g1, "familles_en_attente", "Familles en attente au 31/12"),
                               (g2, "delai_moyen_jours", "Délai moyen (jours)")):
        values = series.dropna(subset=[column])
        if values.empty:
            col.info(f"{title} : valeurs masquées (secret statistique) ou non déclarées.")
        else:
            col.altair_chart(_french(_line(values, column, title)), width="stretch")


def _ranking_section(shown: pd.DataFrame, dept: str, typ: str) -> None:
    """Draw the rank of the département among those present, and the bar chart."""
    years = sorted(shown.loc[shown["type_service"] == typ, "annee"].unique())
    year = int(years[-1])
    rank = wl.ranking(shown, type_service=typ, annee=year)
    st.subheader(f"Classement des départements présents ({year})")
    mine = rank[rank["code_dep"] == dept]
    if len(mine) and pd.notna(mine["rang"].iloc[0]):
        st.markdown(f"Département **{dept}** : rang **{int(mine['rang'].iloc[0])}** sur "
                    f"{int(mine['sur'].iloc[0])} (familles en attente pour 100 000 "
                    "habitants, 1 = la plus forte).")
    else:
        st.markdown(f"Département **{dept}** : pas de rang en {year} (valeur absente ou "
                    "masquée).")
    bars = alt.Chart(rank.dropna(subset=["familles_en_attente_pour_100k"])).mark_bar().encode(
        x=alt.X("familles_en_attente_pour_100k:Q", title="Familles en attente / 100 000 hab."),
        y=alt.Y("code_dep:N", sort="-x", title="Département"),
        color=_highlight(dept),
        tooltip=["rang", "code_dep",
                 alt.Tooltip("familles_en_attente_pour_100k:Q", format=".1f")],
    ).properties(height=max(120, 22 * len(rank)))
    st.altair_chart(_french(bars), width="stretch")


def _tension_chart(pts: pd.DataFrame, dept: str, threshold_min: float) -> alt.LayerChart:
    """Return the scatter of waiting lists against the white-zone population share."""
    scatter = alt.Chart(pts).mark_circle(size=90).encode(
        x=alt.X("part_population_zone_blanche:Q", axis=alt.Axis(format="%"),
                title=f"Population en zone blanche à {fr_minutes(threshold_min)}"),
        y=alt.Y("familles_en_attente_pour_100k:Q",
                title="Familles en attente / 100 000 hab."),
        color=_highlight(dept),
        tooltip=["code_dep", "annee", "quadrant",
                 alt.Tooltip("part_population_zone_blanche:Q", format=".1%"),
                 alt.Tooltip("familles_en_attente_pour_100k:Q", format=".1f")],
    )
    labels = scatter.mark_text(dx=8, dy=-8).encode(text="code_dep:N")
    return (scatter + labels).properties(height=320)


#: Columns of the tension table, with their headings.
TENSION_COLUMNS: dict[str, Any] = {
    "code_dep": st.column_config.TextColumn("Département"),
    "annee": st.column_config.NumberColumn("Année", format="%d"),
    "periode": st.column_config.TextColumn("Période"),
    "familles_en_attente": st.column_config.NumberColumn("Familles en attente"),
    "familles_en_attente_pour_100k": st.column_config.NumberColumn(
        "Familles / 100 000 hab.", format="localized"),
    "delai_moyen_jours": st.column_config.NumberColumn("Délai moyen (j)", format="%.0f"),
    "population_zone_blanche": st.column_config.NumberColumn(
        "Pop. en zone blanche", format="localized"),
    "part_population_zone_blanche": st.column_config.NumberColumn(
        "Part pop. en zone blanche", format="percent"),
    "quadrant": st.column_config.TextColumn("Position"),
}


def _tension_section(run: RunOutputs, indicators: pd.DataFrame, *, dept: str, typ: str,
                     public: bool, threshold_min: float) -> None:
    """Draw the tension view: waiting lists against white zones, by département."""
    st.subheader("Tension : listes d'attente et zones blanches")
    couverture = run.tables.get("couverture_departements")
    if couverture is None:
        st.info("Le run n'a pas de table couverture_departements.")
        return
    try:
        tension = wl.tension_table(indicators, couverture, type_service=typ,
                                   seuil=threshold_min)
    except ValueError as exc:
        st.info(str(exc))
        return
    if public:
        tension = wl.mask_public(tension)
    pts = tension.dropna(subset=["familles_en_attente_pour_100k",
                                 "part_population_zone_blanche"])
    st.caption(f"Seuil {fr_minutes(threshold_min)} ; dernière année de chaque département. "
               "Quadrants par rapport aux médianes des départements affichés.")
    if pts.empty:
        st.info("Aucun département avec à la fois des listes d'attente (non masquées) et une "
                "couverture calculée.")
    else:
        st.altair_chart(_french(_tension_chart(pts, dept, threshold_min)), width="stretch")
    order = ["code_dep", "annee", "periode", "familles_en_attente", "familles_en_attente_pour_100k",
             "delai_moyen_jours", "population_zone_blanche", "part_population_zone_blanche",
             "quadrant"]
    views.show_table(tension, TENSION_COLUMNS, column_order=order)
    st.caption("Cellules vides : valeur masquée (secret statistique) ou non déclarée.")


def render() -> None:
    """Draw the page (reads the sidebar's selection)."""
    sel = state.selection()
    run = state.run_of(sel)
    st.title("Listes d'attente")
    render_upload(run)
    partners = _partners()
    try:
        view = waiting_source(run, partners)
    except CoverageError as exc:
        st.error(str(exc))
        view = WaitingView(None, "")
    indicators, origin = view.indicators, view.origin
    if indicators is None or indicators.empty:
        st.info("Ce run n'a pas de listes d'attente : importez un fichier de retours "
                "d'activité ci-dessus.")
        return
    if bool(indicators["fictif"].astype(bool).any()) or run.fictif:
        st.warning(FICTIONAL_WAITING)
    typ, dept, public = _controls(sel, indicators)
    shown = wl.mask_public(indicators) if public else indicators
    st.caption(f"Source : {origin}. Données par département, type et période ; délai moyen "
               "pondéré par les familles en attente.")
    _series_section(shown, dept, typ)
    _ranking_section(shown, dept, typ)
    _tension_section(run, indicators, dept=dept, typ=typ, public=public,
                     threshold_min=sel.threshold_min)
    if view.rows is not None or view.conflicts is not None:
        _provenance_section(view, public)
    with st.expander("Tableau complet (listes_attente_departements)"):
        views.show_table(shown[shown["type_service"] == typ],
                         {f.name: f.title for f in LISTES_ATTENTE_DEPARTEMENTS.fields})


def _french(chart: Any) -> Any:
    """Return the chart in French: numbers (« 12,5 », « 45 % ») and month names (« avril »)."""
    return chart.configure(locale={"number": dict(CHART_NUMBER_LOCALE),
                                   "time": dict(CHART_TIME_LOCALE)})


def _fmt(value: Any, fmt: Callable[[float], str], missing: str | None = "—") -> str | None:
    """Return ``value`` formatted in French by ``fmt``, ``missing`` when absent."""
    if value is None or pd.isna(value):
        return missing
    return fmt(float(value))


def _fr_signed(value: float) -> str:
    """Return a change in French with its sign: ``+8``, ``-3``, ``0``."""
    return ("+" if round(value) > 0 else "") + fr_int(value)


def _fr_percent0(share: float) -> str:
    """Return a share as a whole French percentage: ``100 %``."""
    return fr_percent(share, 0)


if __name__ == "__main__":
    render()
