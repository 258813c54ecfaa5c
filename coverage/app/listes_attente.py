"""Page « Listes d'attente »: the département's series, its rank, the tension view, an upload.

Data, in order of preference: a returns file uploaded in this session (validated by
:func:`coverage.io.waiting.load_waiting` against the run's communes), the run's
``listes_attente_departements`` table, or, for the demo run, the demo's FICTIONAL waiting
lists. Indicators come from :mod:`coverage.waiting`; small counts are masked by default
(statistical secrecy, as in public exports).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from coverage import waiting as wl
from coverage.app import state
from coverage.app.upload import UploadedFile, load_uploaded, problems_frame
from coverage.errors import CoverageError, InputError
from coverage.io.waiting import load_waiting
from coverage.labels import FICTIONAL_WAITING, type_label
from coverage.results import RunOutputs
from coverage.schemas import LISTES_ATTENTE_DEPARTEMENTS
from coverage.settings import NO_SERVICE, SERVICE_TYPES, Settings

__all__ = ["MAX_UPLOAD_BYTES", "WAITING_UPLOAD_KEY", "render", "validate_upload",
           "waiting_source"]

log = logging.getLogger(__name__)

#: Session-state key of the uploaded returns file (dict: name, data | problems, warnings).
WAITING_UPLOAD_KEY = "zb_waiting_upload"
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


def waiting_source(run: RunOutputs) -> tuple[pd.DataFrame | None, str]:
    """Return the indicators to show and a sentence saying where they come from.

    In order of preference: the returns file uploaded in this session, the run's
    ``listes_attente_departements`` table, the demo's FICTIONAL waiting lists.
    """
    up = st.session_state.get(WAITING_UPLOAD_KEY)
    communes = pd.DataFrame(run.communes.drop(columns="geometry"))
    if up and "data" in up:
        return (wl.indicators_for_run(up["data"], communes),
                f"fichier importé « {up['name']} »")
    table = run.tables.get(LISTES_ATTENTE_DEPARTEMENTS.name)
    if table is not None and len(table):
        return table, "table listes_attente_departements du run"
    if run.fictif:
        demo = load_waiting(communes=communes).data
        return wl.indicators_for_run(demo, communes), "listes d'attente FICTIVES de la démo"
    return None, ""


def _line(df: pd.DataFrame, column: str, title: str) -> alt.Chart:
    """Return the line chart of one measure by year."""
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("annee:O", title="Année"),
        y=alt.Y(f"{column}:Q", title=title),
        tooltip=[alt.Tooltip("annee:O", title="Année"),
                 alt.Tooltip(f"{column}:Q", title=title, format=",.1f")],
    ).properties(height=260)


def render_upload(run: RunOutputs) -> None:
    """Draw the upload box: validate a returns file and keep it in this session."""
    with st.expander("Importer un fichier de retours d'activité (CSV ou XLSX)"):
        st.caption("Colonnes : département, type de service, année, familles en attente au "
                   "31/12, délai moyen (jours), et facultativement service, familles reçues, "
                   "mesures judiciaires, demandes spontanées, entretiens, médiations. Les "
                   "intitulés français usuels sont reconnus (voir docs/listes_attente.md).")
        file = st.file_uploader("Fichier de retours", type=["csv", "xlsx"],
                                key="waiting_file", max_upload_size=5)
        if file is not None:
            up = st.session_state.get(WAITING_UPLOAD_KEY)
            if not up or up.get("name") != file.name or up.get("size") != file.size:
                communes = pd.DataFrame(run.communes.drop(columns="geometry"))
                result = validate_upload(file.name, file.getvalue(), communes)
                result["size"] = file.size
                st.session_state[WAITING_UPLOAD_KEY] = result
        up = st.session_state.get(WAITING_UPLOAD_KEY)
        if up and "problems" in up:
            st.error(f"Fichier « {up['name']} » refusé : {len(up['problems'])} problème(s). "
                     "Corrigez-les et importez-le à nouveau.")
            st.dataframe(up["problems"], hide_index=True)
        elif up:
            st.success(f"Fichier « {up['name']} » chargé : {len(up['data'])} lignes.")
            for w in up.get("warnings", []):
                st.warning(w)
        if up and st.button("Revenir aux données du run", key="waiting_forget"):
            st.session_state.pop(WAITING_UPLOAD_KEY, None)
            st.rerun()


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
                       index=types.index(sel.type_service)
                       if sel.type_service in types and sel.type_service != NO_SERVICE else 0,
                       format_func=lambda t: type_label(t, plural=True))
    dept = c2.selectbox("Département", depts, key="waiting_dept",
                        index=depts.index(sel.dept) if sel.dept in depts else 0)
    public = c3.toggle("Secret statistique", value=True, key="waiting_public",
                       help=f"Masque les effectifs inférieurs à {Settings().secrecy_threshold} "
                            "et ce qui en dérive, comme dans les exports publics.")
    return str(typ), str(dept), bool(public)


def _series_metrics(row: pd.Series, year: int) -> None:
    """Draw the last year's figures of a département and type."""
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(f"Familles en attente au 31/12/{year}",
              _fmt(row["familles_en_attente"], "{:.0f}"),
              delta=_fmt(row["familles_en_attente_variation"], "{:+.0f}", None),
              delta_color="inverse")
    m2.metric("Pour 100 000 habitants", _fmt(row["familles_en_attente_pour_100k"], "{:.1f}"))
    m3.metric("Délai moyen (jours)", _fmt(row["delai_moyen_jours"], "{:.0f}"))
    part = row["part_services_avec_liste"]
    ref = row["part_reference_nationale"]
    m4.metric("Services avec liste d'attente", _fmt(part, "{:.0%}"),
              help=None if pd.isna(ref) else
              f"Référence nationale : {ref:.0%} des espaces de rencontre au 31/12/2018 "
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
                & (shown["annee"] == last["annee"])].iloc[0]
    _series_metrics(row, int(last["annee"]))
    g1, g2 = st.columns(2)
    for col, column, title in ((g1, "familles_en_attente", "Familles en attente au 31/12"),
                               (g2, "delai_moyen_jours", "Délai moyen (jours)")):
        values = series.dropna(subset=[column])
        if values.empty:
            col.info(f"{title} : valeurs masquées (secret statistique) ou non déclarées.")
        else:
            col.altair_chart(_line(values, column, title), width="stretch")


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
    st.altair_chart(bars, width="stretch")


def _tension_chart(pts: pd.DataFrame, dept: str, threshold_min: float) -> alt.LayerChart:
    """Return the scatter of waiting lists against the white-zone population share."""
    scatter = alt.Chart(pts).mark_circle(size=90).encode(
        x=alt.X("part_population_zone_blanche:Q", axis=alt.Axis(format="%"),
                title=f"Population en zone blanche à {threshold_min:g} min"),
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
    "familles_en_attente": st.column_config.NumberColumn("Familles en attente"),
    "familles_en_attente_pour_100k": st.column_config.NumberColumn(
        "Familles / 100 000 hab.", format="%.1f"),
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
    st.caption(f"Seuil {threshold_min:g} min ; dernière année de chaque département. "
               "Quadrants par rapport aux médianes des départements affichés.")
    if pts.empty:
        st.info("Aucun département avec à la fois des listes d'attente (non masquées) et une "
                "couverture calculée.")
    else:
        st.altair_chart(_tension_chart(pts, dept, threshold_min), width="stretch")
    order = ["code_dep", "annee", "familles_en_attente", "familles_en_attente_pour_100k",
             "delai_moyen_jours", "population_zone_blanche", "part_population_zone_blanche",
             "quadrant"]
    st.dataframe(tension, hide_index=True, column_order=order, column_config=TENSION_COLUMNS)
    st.caption("Cellules vides : valeur masquée (secret statistique) ou non déclarée.")


def render() -> None:
    """Draw the page (reads the sidebar's selection)."""
    sel = state.selection()
    run = state.run_of(sel)
    st.title("Listes d'attente")
    try:
        indicators, origin = waiting_source(run)
    except CoverageError as exc:
        st.error(str(exc))
        indicators, origin = None, ""
    render_upload(run)
    if indicators is None or indicators.empty:
        st.info("Ce run n'a pas de listes d'attente : importez un fichier de retours "
                "d'activité ci-dessus.")
        return
    if bool(indicators["fictif"].astype(bool).any()) or run.fictif:
        st.warning(FICTIONAL_WAITING)
    typ, dept, public = _controls(sel, indicators)
    shown = wl.mask_public(indicators) if public else indicators
    st.caption(f"Source : {origin}. Données par département, type et année ; délai moyen "
               "pondéré par les familles en attente.")
    _series_section(shown, dept, typ)
    _ranking_section(shown, dept, typ)
    _tension_section(run, indicators, dept=dept, typ=typ, public=public,
                     threshold_min=sel.threshold_min)
    with st.expander("Tableau complet (listes_attente_departements)"):
        st.dataframe(shown[shown["type_service"] == typ], hide_index=True)


def _fmt(value: Any, pattern: str, missing: str | None = "—") -> str | None:
    """Return ``value`` formatted by ``pattern``, ``missing`` when absent."""
    if value is None or pd.isna(value):
        return missing
    return pattern.format(float(value))


if __name__ == "__main__":
    render()
