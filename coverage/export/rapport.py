"""The département report of the family-services scheme (SDSF): one DOCX and one HTML file.

:func:`build_report` turns a finished run into a :class:`Report`, a plain list of blocks
(headings, paragraphs, tables of French text, PNG maps) cut for one département at one
threshold (minutes); :func:`report_docx` and :func:`report_html` render the same blocks as
a Word document (python-docx) and as one self-contained HTML file (CSS inline, maps as
``data:`` URIs, no outside link); :func:`write_report` writes both atomically.

Every figure is written the French way (:func:`coverage.labels.fr_int`, ``fr_decimal``,
``fr_percent``): minutes rounded to the unit in prose and to one decimal in tables, an
unreachable commune is « non accessible ». The white-zone list is the run's
``zones_blanches`` table for the département and threshold, completed with the minutes and
the nearest service of ``acces_communes``. Waiting lists are masked for publication
(:func:`coverage.waiting.mask_public`). The demo carries the FICTIONAL label on every page
(DOCX header, HTML banner repeated on each printed page).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coverage.batch.outdir import check_export_out
from coverage.cog import court_of
from coverage.errors import CoverageError
from coverage.export.figures import MapOptions, render_png_map
from coverage.export.provenance import record_export, remove_stale, run_digest
from coverage.export.tables import (
    EPCI_TABLE,
    WAITING_TABLE,
    accessibility_tables,
    commune_layer,
    departement_tables,
    run_types,
    service_layer,
)
from coverage.files import write_bytes_atomic, write_text_atomic
from coverage.labels import (
    FICTIONAL_TITLE,
    RANGE_NOTE,
    REASON_UNREACHABLE,
    density_label,
    engine_label,
    fr_decimal,
    fr_int,
    fr_percent,
    type_label,
)
from coverage.results import (
    RunOutputs,
    check_departement,
    departement_names,
    run_settings,
    run_thresholds,
    source_line,
    sources,
)
from coverage.safe_text import html_js_safe
from coverage.secrecy import SECRET_MARKER, secrecy_marker, secret_columns
from coverage.settings import NO_SERVICE, Settings
from coverage.waiting import mask_public

__all__ = [
    "SECTION_TITLES",
    "Report",
    "ReportBlock",
    "build_report",
    "report_docx",
    "report_html",
    "report_threshold",
    "white_zone_list",
    "write_report",
]

log = logging.getLogger(__name__)

#: Headings of the report's sections, in order (tests check them in both formats).
SECTION_TITLES: tuple[str, ...] = (
    "Synthèse",
    "Cartes",
    "Communes en zone blanche",
    "Couverture par EPCI",
    "Couverture par niveau de densité",
    "Couverture par cour d'appel",
    "Indice d'accessibilité",
    "Listes d'attente",
    "Méthode",
    "Date, sources et licences",
)

#: Text of an unreachable commune or of an empty figure.
_NA = REASON_UNREACHABLE


_SCHEME = re.compile(r"https?://", re.IGNORECASE)


def _no_scheme(text: str) -> str:
    """Return ``text`` with ``http://``/``https://`` removed: the report links nowhere."""
    return _SCHEME.sub("", text)


@dataclass(frozen=True)
class ReportBlock:
    """One block of the report.

    Attributes
    ----------
    kind
        ``heading``, ``paragraph``, ``table`` or ``image``.
    text
        Heading or paragraph text, table title or image caption.
    columns
        Column titles of a table.
    rows
        Cells of a table, already written as French text.
    image
        PNG bytes of an image.
    """

    kind: str
    text: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    image: bytes = b""


@dataclass
class Report:
    """A département report: title, FICTIONAL label (demo), blocks and the run's digest."""

    title: str
    fictional: str | None
    blocks: list[ReportBlock] = field(default_factory=list)
    run_digest: str = ""

    def heading(self, text: str) -> None:
        """Append a section heading."""
        self.blocks.append(ReportBlock("heading", text))

    def paragraph(self, text: str) -> None:
        """Append a paragraph (web addresses written without their scheme)."""
        self.blocks.append(ReportBlock("paragraph", _no_scheme(text)))

    def table(self, title: str, df: pd.DataFrame) -> None:
        """Append a table of text cells (``df`` already formatted), or a note when empty."""
        if df.empty:
            self.paragraph(f"{title} : aucune ligne.")
            return
        rows = tuple(tuple(_no_scheme(str(v)) for v in r) for r in df.itertuples(index=False))
        self.blocks.append(ReportBlock("table", title, tuple(map(str, df.columns)), rows))

    def image(self, caption: str, png: bytes) -> None:
        """Append a PNG image with its caption."""
        self.blocks.append(ReportBlock("image", caption, image=png))


# --- French formats ----------------------------------------------------------------------
def _minutes_cell(value: object) -> str:
    """Return minutes with one decimal, or « non accessible »."""
    x = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return _NA if pd.isna(x) or not math.isfinite(float(x)) else fr_decimal(float(x), 1)


def _number(value: object, digits: int = 0, *, missing: str = "—") -> str:
    """Return a number in French (whole or ``digits`` decimals), ``missing`` when absent."""
    x = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(x) or not math.isfinite(float(x)):
        return missing
    return fr_int(float(x)) if digits == 0 else fr_decimal(float(x), digits)


def _seuil_text(minutes: float) -> str:
    """Return a threshold for prose: ``30`` → ``"30"``, ``22.5`` → ``"22,5"``."""
    return fr_int(minutes) if float(minutes).is_integer() else fr_decimal(minutes, 1)


def _rate(value: object) -> str:
    """Return a coverage rate (0–1) as ``12,5 %``, a dash when absent."""
    x = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return "—" if pd.isna(x) else fr_percent(float(x))


_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")


def _french_date(stamp: object) -> str:
    """Return an ISO time stamp (UTC) in French: ``2 décembre 2026 à 04:11 UTC``."""
    when = pd.to_datetime(str(stamp), errors="coerce", utc=True) if stamp else pd.NaT
    if pd.isna(when):
        return str(stamp) if stamp else "inconnue"
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year} à {when:%H:%M} UTC"


# --- Choices -----------------------------------------------------------------------------
def report_threshold(run: RunOutputs, seuil: float | None = None,
                     settings: Settings = Settings()) -> float:
    """Return the report's threshold, minutes: ``seuil``, else 30 when the run has it.

    Raises
    ------
    CoverageError
        ``seuil`` is not a threshold of the run (the message lists them, in French).
    """
    thresholds = run_thresholds(run, settings)
    if seuil is None:
        return 30.0 if any(np.isclose(thresholds, 30.0)) else thresholds[len(thresholds) // 2]
    if not any(np.isclose(thresholds, float(seuil))):
        msg = (f"seuil {_seuil_text(float(seuil))} min absent du calcul ; seuils "
               f"disponibles : {', '.join(_seuil_text(t) for t in thresholds)} min")
        raise CoverageError(msg)
    return float(seuil)


def _at(df: pd.DataFrame, seuil: float) -> pd.DataFrame:
    """Return the rows of a table at one threshold (minutes)."""
    return df[np.isclose(df["seuil_minutes"].astype(float), seuil)]


# --- White-zone list ---------------------------------------------------------------------
def _service_names(services: pd.DataFrame) -> pd.Series:
    """Return the name of each service: ``nom``, else ``organisme``, else its identifier."""
    name = pd.Series(pd.NA, index=services.index, dtype=object)
    for col in ("nom", "organisme"):
        if col in services.columns:
            name = name.fillna(services[col].where(services[col].astype(str).str.strip() != ""))
    return name.fillna(pd.Series(services.index.astype(str), index=services.index))


def white_zone_list(run: RunOutputs, dept: str, seuil: float) -> pd.DataFrame:
    """Return the white-zone communes of a département at a threshold, with their details.

    The rows are those of the run's ``zones_blanches`` for ``dept`` and ``seuil`` (one per
    commune × type, the combined view ``aucun_service`` included), completed with the
    minutes and nearest service of ``acces_communes`` (for the combined view: the nearest
    of any type, and the smallest bounds of the range), the EPCI of the commune and the
    name and commune of the service.

    Parameters
    ----------
    run
        A finished run.
    dept
        Département code, in the run.
    seuil
        Threshold, minutes.

    Returns
    -------
    pandas.DataFrame
        Columns ``type_service``, ``nom``, ``code_insee``, ``population``, ``minutes``
        (NaN: unreachable), ``nom_epci``, ``service``, ``commune_service``, ``raison`` and,
        for the proxy, ``minutes_min`` and ``minutes_max`` (the range of the minutes).
    """
    zb = run.tables["zones_blanches"]
    zb = _at(zb[zb["code_dep"].astype(str) == dept], seuil)
    acc = run.tables["acces_communes"]
    acc = acc[acc["code_dep"].astype(str) == dept][
        [c for c in ("code_insee", "type_service", "minutes", "service_id", "minutes_min",
                     "minutes_max") if c in acc.columns]]
    nearest = acc.assign(_m=acc["minutes"].fillna(np.inf)).sort_values("_m") \
        .drop_duplicates("code_insee").drop(columns="_m").assign(type_service=NO_SERVICE)
    for bound in ("minutes_min", "minutes_max"):  # the range of the nearest of any type
        if bound in acc.columns:
            nearest[bound] = nearest["code_insee"].map(acc.groupby("code_insee")[bound].min())
    acc = pd.concat([acc, nearest], ignore_index=True)
    out = zb.merge(acc, on=["code_insee", "type_service"], how="left")
    names = run.communes.drop_duplicates("code_insee").set_index("code_insee")
    epci = names["nom_epci"] if "nom_epci" in names else pd.Series(dtype=object)
    svc = run.services.drop_duplicates("service_id").set_index("service_id")
    out["nom_epci"] = out["code_insee"].map(epci)
    out["service"] = out["service_id"].map(_service_names(svc))
    town = svc["code_insee"].map(names["nom"])
    if "commune" in svc.columns:  # a service outside the run's communes names its own
        town = town.fillna(svc["commune"])
    out["commune_service"] = out["service_id"].map(town)
    cols = ["type_service", "nom", "code_insee", "population", "minutes", "nom_epci",
            "service", "commune_service", "raison"]
    cols += [c for c in ("minutes_min", "minutes_max") if c in out.columns]
    return out[cols].sort_values(["type_service", "minutes", "nom"], na_position="last") \
        .reset_index(drop=True)


def _white_zone_table(wz: pd.DataFrame) -> pd.DataFrame:
    """Return the white-zone list as French text cells."""
    def text(s: pd.Series) -> pd.Series:
        return s.map(lambda v: "—" if pd.isna(v) else str(v))
    out = pd.DataFrame({
        "Commune": text(wz["nom"]),
        "Code": text(wz["code_insee"]),
        "Population": wz["population"].map(_number),
        "Minutes": wz["minutes"].map(_minutes_cell),
        "EPCI": text(wz["nom_epci"]),
        "Service le plus proche": wz["service"].map(lambda v: "aucun" if pd.isna(v) else v),
        "Commune du service": text(wz["commune_service"]),
        "Raison": text(wz["raison"]),
    })
    if {"minutes_min", "minutes_max"} <= set(wz.columns) and wz["minutes_min"].notna().any():
        out.insert(4, "Fourchette (min)", [
            _NA if pd.isna(lo) else f"{_minutes_cell(lo)} à {_minutes_cell(hi)}"
            for lo, hi in zip(wz["minutes_min"], wz["minutes_max"], strict=True)])
    return out


# --- Coverage tables ---------------------------------------------------------------------
def _coverage_text(df: pd.DataFrame, label_col: str, label_title: str,
                   label: object = None) -> pd.DataFrame:
    """Return a coverage table (one threshold) as French text, ranges when present."""
    labels = df[label_col].map(label) if callable(label) else df[label_col].astype(str)
    out = pd.DataFrame({
        label_title: labels,
        "Type de service": df["type_service"].map(type_label),
        "Population": df["population"].map(_number),
        "Taux de couverture": df["taux_couverture"].map(_rate),
        "Communes en zone blanche": df["communes_zone_blanche"].map(_number),
        "Population en zone blanche": df["population_zone_blanche"].map(_number),
        "Médiane (min)": df["minutes_mediane"].map(_minutes_cell),
        "90e centile (min)": df["minutes_p90"].map(_minutes_cell),
    })
    bounds = ["population_zone_blanche_min", "population_zone_blanche_max"]
    if set(bounds) <= set(df.columns) and df[bounds].notna().any().any():
        out["Fourchette population en zone blanche"] = [
            f"{_number(lo)} à {_number(hi)}" for lo, hi in
            zip(df["population_zone_blanche_min"], df["population_zone_blanche_max"],
                strict=True)]
    return out.reset_index(drop=True)


def _waiting_table(tables: dict[str, pd.DataFrame], settings: Settings) -> pd.DataFrame:
    """Return the département's waiting lists masked for publication, as French text."""
    raw = tables.get(WAITING_TABLE)
    if raw is None or raw.empty:
        return pd.DataFrame()
    masked = mask_public(raw, settings)
    counts = secret_columns(raw)[0]

    def cells(col: str, digits: int = 0) -> list[str]:
        if col not in raw.columns:
            return ["—"] * len(raw)
        marker = secrecy_marker(settings.secrecy_threshold) if col in counts else SECRET_MARKER
        return [marker if pd.isna(m) and pd.notna(r) else _number(m, digits)
                for r, m in zip(raw[col], masked[col], strict=True)]

    return pd.DataFrame({
        "Type de service": raw["type_service"].map(type_label).tolist(),
        "Période": raw["periode"].astype(str).tolist(),
        "Services": cells("services"),
        "Services avec liste": cells("services_avec_liste"),
        "Familles en attente": cells("familles_en_attente"),
        "Pour 100 000 habitants": cells("familles_en_attente_pour_100k", 1),
        "Délai moyen (jours)": cells("delai_moyen_jours"),
    })


# --- Sections ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    """What every section reads: the run, the département, its tables and the threshold."""

    run: RunOutputs
    dept: str
    name: str
    seuil: float
    types: list[str]
    tables: dict[str, pd.DataFrame]
    settings: Settings


def _rate_of(df: pd.DataFrame | None, stype: str, seuil: float,
             where: tuple[str, str] | None = None) -> str:
    """Return the coverage rate of a type at a threshold (minutes) in a table, French text.

    ``where`` = (column, value) keeps the rows of one unit (a région).
    """
    if df is None:
        return "—"
    rows = _at(df[df["type_service"] == stype], seuil)
    if where is not None:
        rows = rows[rows[where[0]].astype(str) == where[1]]
    return _rate(rows["taux_couverture"].iloc[0]) if len(rows) else "—"


def _region_of(run: RunOutputs, dept: str) -> tuple[str, str]:
    """Return the (code, name) of a département's région from the run's communes."""
    com = run.communes[run.communes["code_dep"].astype(str) == dept]
    if "code_reg" not in com or com.empty:
        return "", ""
    name = str(com["nom_reg"].iloc[0]) if "nom_reg" in com else ""
    return str(com["code_reg"].iloc[0]), name


def _rates_paragraphs(report: Report, ctx: _Context) -> None:
    """Write one paragraph per type: rates at each threshold, région and run beside them."""
    run = ctx.run
    dep = ctx.tables["couverture_departements"]
    france = run.tables.get("couverture_france")
    regions = run.tables.get("couverture_regions")
    reg_code, reg_name = _region_of(run, ctx.dept)
    territory = ""
    if france is not None and len(france):  # the départements the run really covers
        column = "perimetre" if "perimetre" in france.columns else "territoire"
        territory = str(france[column].iloc[0])
    for stype in [*ctx.types, NO_SERVICE]:
        parts = [
            f"à {_seuil_text(t)} minutes, {_rate_of(dep, stype, t)} de la population "
            f"({reg_name or 'région ' + reg_code} : "
            f"{_rate_of(regions, stype, t, ('code_reg', reg_code))} ; ensemble du calcul "
            f"({territory}) : {_rate_of(france, stype, t)})"
            for t in run_thresholds(run, ctx.settings)]
        report.paragraph(f"{type_label(stype)} — taux de couverture : " + " ; ".join(parts)
                         + ".")


def _summary(report: Report, ctx: _Context) -> None:
    """Write the summary paragraphs: rates by type and threshold, white zones, worst EPCI."""
    report.heading(SECTION_TITLES[0])
    # empty offers of the whole list, or of this département (manifest « avertissements »)
    for note in ctx.run.manifest.get("avertissements") or []:
        if "département" not in str(note) or f"département {ctx.dept} :" in str(note):
            report.paragraph(f"Avertissement : {note}")
    _rates_paragraphs(report, ctx)
    dep = ctx.tables["couverture_departements"]
    row = _at(dep[dep["type_service"] == NO_SERVICE], ctx.seuil)
    if len(row):
        r = row.iloc[0]
        text = (f"Au seuil de {_seuil_text(ctx.seuil)} minutes, "
                f"{_number(r['population_zone_blanche'])} habitants de {ctx.name} vivent "
                f"dans {_number(r['communes_zone_blanche'])} communes en zone blanche "
                "(aucun service à moins du seuil)")
        if pd.notna(r.get("population_zone_blanche_min")):
            text += (f", entre {_number(r['population_zone_blanche_min'])} et "
                     f"{_number(r['population_zone_blanche_max'])} selon les bornes du proxy")
        report.paragraph(text + ".")
    epci = ctx.tables.get(EPCI_TABLE)
    if epci is not None and len(epci):
        worst = _at(epci[epci["type_service"] == NO_SERVICE], ctx.seuil)
        if len(worst):
            w = worst.sort_values("taux_couverture").iloc[0]
            report.paragraph(
                f"L'EPCI le moins bien couvert à {_seuil_text(ctx.seuil)} minutes est "
                f"{w['nom_epci']} : {_rate(w['taux_couverture'])} de la population de ses "
                f"communes du département couverte, "
                f"{_number(w['population_zone_blanche'])} habitants en zone blanche.")


def _maps(report: Report, ctx: _Context) -> None:
    """Draw one PNG map per type (and the combined view) at the threshold; embed them."""
    report.heading(SECTION_TITLES[1])
    communes = commune_layer(ctx.run, ctx.dept, ctx.tables, settings=ctx.settings)
    services = service_layer(ctx.run, ctx.dept, ctx.tables)
    with tempfile.TemporaryDirectory(prefix="zb-rapport-") as tmp:
        for stype in [*ctx.types, NO_SERVICE]:
            path = Path(tmp) / f"{stype}.png"
            render_png_map(communes, services, path, MapOptions(
                dept=ctx.dept, thresholds=run_thresholds(ctx.run, ctx.settings),
                seuil=ctx.seuil, type_service=stype, engine=ctx.run.engine,
                fictif=ctx.run.fictif, source=source_line(ctx.run), dpi=90))
            report.image(f"{type_label(stype)} — seuil {_seuil_text(ctx.seuil)} minutes",
                         path.read_bytes())


def _level_tables(report: Report, ctx: _Context) -> None:
    """Write the white-zone list and the tables by EPCI, density level and cour d'appel."""
    report.heading(SECTION_TITLES[2])
    wz = white_zone_list(ctx.run, ctx.dept, ctx.seuil)
    for stype in [*ctx.types, NO_SERVICE]:
        sub = wz[wz["type_service"] == stype]
        report.table(f"{type_label(stype)} — {len(sub)} communes au-delà de "
                     f"{_seuil_text(ctx.seuil)} minutes", _white_zone_table(sub))
    report.heading(SECTION_TITLES[3])
    epci = ctx.tables.get(EPCI_TABLE)
    if epci is None:
        report.paragraph("Le calcul ne connaît pas les EPCI des communes.")
    else:
        report.paragraph("Chaque ligne porte sur les communes du département de l'EPCI ; la "
                         "dernière colonne donne la population de l'EPCI entier (toutes ses "
                         "communes du calcul), « partiel » signalant un EPCI qui s'étend sur "
                         "d'autres départements.")
        rows = _at(epci, ctx.seuil)
        table = _coverage_text(rows, "nom_epci", "EPCI")
        table = table.rename(columns={c: f"{c} (communes du département)" for c in
                                      ("Population", "Population en zone blanche")})
        table["Population de l'EPCI entier (communes du calcul)"] = [
            _number(p) + (" (s'étend aussi sur : " + str(m).replace(",", ", ") + ")"
                          if bool(part) else "")
            for p, part, m in zip(rows["population_epci"], rows["couverture_partielle"],
                                  rows["departements_manquants"], strict=True)]
        report.table(f"EPCI — seuil {_seuil_text(ctx.seuil)} minutes", table)
    report.heading(SECTION_TITLES[4])
    report.table(f"Niveaux de densité (communes du département) — seuil "
                 f"{_seuil_text(ctx.seuil)} minutes",
                 _coverage_text(_at(ctx.tables["couverture_densite"], ctx.seuil), "densite",
                                "Niveau de densité", density_label))
    report.heading(SECTION_TITLES[5])
    courts = ctx.run.tables.get("couverture_cours_appel")
    court = court_of(ctx.dept)
    if courts is None:
        report.paragraph("Le calcul n'a pas de table par cour d'appel.")
    else:
        mine = courts[courts["cour_appel"] == court]
        missing = (str(mine["departements_manquants"].iloc[0])
                   if "couverture_partielle" in mine and len(mine)
                   and bool(mine["couverture_partielle"].iloc[0]) else "")
        report.paragraph(f"Cour d'appel du département : {court} (chiffres sur les "
                         "départements de la cour présents dans le calcul"
                         + (f" ; couverture partielle : départements {missing.replace(',', ', ')}"
                            " absents du calcul" if missing else "") + ").")
        report.table(f"Cour d'appel — seuil {_seuil_text(ctx.seuil)} minutes",
                     _coverage_text(_at(courts[courts["cour_appel"] == court], ctx.seuil),
                                    "cour_appel", "Cour d'appel"))


def _epci_name(row: pd.Series) -> str:
    """Return an EPCI's name, else its code, else « sans EPCI »."""
    for col in ("nom_epci", "code_epci"):
        value = row.get(col)
        if value is not None and not pd.isna(value) and str(value).strip():
            return str(value)
    return "sans EPCI"


def _accessibility_table(departement: pd.DataFrame, epci: pd.DataFrame) -> pd.DataFrame:
    """Return the report's accessibility table: one row per type, French cells."""
    rows = []
    for _, r in departement.iterrows():
        mine = epci[(epci["type_service"] == r["type_service"])
                    & epci["indice_moyen_pour_100k"].notna()]
        low = mine.sort_values("indice_moyen_pour_100k", kind="mergesort").head(1)
        rows.append({
            "Type de service": type_label(str(r["type_service"])),
            "Indice moyen du département (ETP ou places pour 100 000 habitants)":
                _number(r["indice_moyen_pour_100k"], 1),
            "EPCI à l'indice le plus bas": "—" if low.empty else
                f"{_epci_name(low.iloc[0])} "
                f"({_number(low['indice_moyen_pour_100k'].iloc[0], 1)})",
            "Communes sans service à portée": _number(r["communes_sans_service"]),
            "Population sans service à portée": _number(r["population_sans_service"]),
        })
    return pd.DataFrame(rows)


def _accessibility(report: Report, ctx: _Context) -> None:
    """Write the accessibility index (E2SFCA) of the département at the report's threshold."""
    report.heading(SECTION_TITLES[6])
    acc = accessibility_tables(ctx.run, ctx.dept, settings=ctx.settings,
                               threshold_min=ctx.seuil)
    if not acc.tables:
        for note in acc.notes:
            report.paragraph(note)
        return
    report.paragraph(
        "L'indice d'accessibilité dit quelle capacité de service (ETP ou places) chaque "
        "habitant peut atteindre, une fois cette capacité partagée entre toutes les communes "
        f"qui l'atteignent à {_seuil_text(ctx.seuil)} minutes ou moins, y compris hors du "
        "département (méthode E2SFCA, poids décroissants avec le temps). Il est donné pour "
        "100 000 habitants ; la moyenne du département et des EPCI est pondérée par la "
        "population. Les tables par commune sont dans l'export du département.")
    for note in acc.notes:
        report.paragraph(note)
    report.table(f"Indice d'accessibilité — {_seuil_text(ctx.seuil)} minutes",
                 _accessibility_table(acc.tables["accessibilite_departement"],
                                      acc.tables["accessibilite_epci"]))


def _waiting(report: Report, ctx: _Context) -> None:
    """Write the waiting lists, statistical secrecy applied."""
    report.heading(SECTION_TITLES[7])
    table = _waiting_table(ctx.tables, ctx.settings)
    if table.empty:
        report.paragraph("Le calcul ne comporte pas de listes d'attente pour ce département.")
        return
    report.paragraph(
        f"Secret statistique appliqué : les effectifs inférieurs à "
        f"{ctx.settings.secrecy_threshold}, zéro compris, sont remplacés par "
        f"« {secrecy_marker(ctx.settings.secrecy_threshold)} », et les valeurs qui en "
        f"dérivent (taux, délai, services avec liste) par « {SECRET_MARKER} ».")
    report.table("Listes d'attente du département", table)


def _engine_caveats(run: RunOutputs) -> list[str]:
    """Return the plain-French caveats of the run's engine (range of the proxy)."""
    if run.engine == "road":
        return ["Les temps sont calculés sur le réseau routier OpenStreetMap, sans trafic ni "
                "horaires : ils décrivent un trajet en voiture dans de bonnes conditions."]
    if run.engine == "proxy":
        low, high = run_settings(run).proxy_detour_bounds
        return ["Le proxy estime les temps sans réseau routier : distance à vol d'oiseau "
                "multipliée par un facteur de détour, à une vitesse moyenne, plus un temps "
                "d'accès selon la densité. C'est une estimation, pas un itinéraire : une "
                "commune proche du seuil peut basculer d'un côté ou de l'autre.",
                "Fourchette : " + RANGE_NOTE.format(low=fr_decimal(low, 2),
                                                    high=fr_decimal(high, 2))
                + " ; les colonnes « Fourchette » des tableaux en donnent les bornes."]
    if run.engine == "matrice":
        return ["Les temps sont importés d'un tableau fourni ; une paire absente du tableau "
                "est considérée comme non accessible."]
    return []


def _method(report: Report, ctx: _Context) -> None:
    """Write the method in plain French, then the date, the sources and the licences."""
    report.heading(SECTION_TITLES[8])
    thresholds = ", ".join(_seuil_text(t) for t in run_thresholds(ctx.run, ctx.settings))
    report.paragraph(
        "Pour chaque commune, on mesure le temps d'accès en voiture depuis son point "
        "représentatif jusqu'au service le plus proche de chaque type, y compris dans un "
        "département voisin. Une commune est en zone blanche quand ce service est au-delà "
        "du seuil (trop loin), quand aucun service n'est accessible (non accessible), ou "
        "quand son île n'a aucun service ni liaison (pas de service sur l'île). Le taux de "
        "couverture est la part de la population à moins du seuil. "
        f"Seuils du calcul : {thresholds} minutes.")
    report.paragraph(f"Moteur de temps d'accès : {engine_label(ctx.run.engine)}.")
    for caveat in _engine_caveats(ctx.run):
        report.paragraph(caveat)
    report.heading(SECTION_TITLES[9])
    created = ctx.run.manifest.get("created_utc") or ctx.run.manifest.get("created")
    report.paragraph(f"Date du calcul : {_french_date(created)}.")
    report.paragraph(f"Empreinte du calcul : {run_digest(ctx.run)} (SHA-256 de son "
                     "manifeste ; un rapport d'une autre empreinte est périmé).")
    for name, licence in sources(ctx.run):
        report.paragraph(f"Source : {name} — licence : {licence}.")


def build_report(run: RunOutputs, dept: str, *, seuil: float | None = None,
                 settings: Settings = Settings()) -> Report:
    """Build the report of one département of a run.

    Parameters
    ----------
    run
        A finished run (:func:`coverage.results.load_finished_run`).
    dept
        Département code (``"48"``, ``"ZA"`` for the demo).
    seuil
        Threshold of the maps, the white-zone list and the tables, minutes; default 30
        when the run has it (:func:`report_threshold`).
    settings
        ``secrecy_threshold`` (families) and fallback thresholds and types.

    Returns
    -------
    Report
        The blocks, in the order of :data:`SECTION_TITLES`.

    Raises
    ------
    CoverageError
        The département or the threshold is not in the run.
    """
    dept = check_departement(run, dept)
    threshold = report_threshold(run, seuil, settings)
    name = departement_names(run).get(dept, "")
    label = f"{name} ({dept})" if name else f"département {dept}"
    ctx = _Context(run, dept, label, threshold, run_types(run, settings),
                   departement_tables(run, dept, settings=settings), settings)
    report = Report(
        title=f"Zones blanches des services aux familles — {label}",
        fictional=FICTIONAL_TITLE if run.fictif else None, run_digest=run_digest(run))
    if run.fictif:
        report.paragraph(f"{FICTIONAL_TITLE} : "
                         f"{run.fictional_label or 'territoire inventé, aucune donnée réelle'}")
    for section in (_summary, _maps, _level_tables, _accessibility, _waiting, _method):
        section(report, ctx)
    return report


# --- Rendering ---------------------------------------------------------------------------
def report_docx(report: Report) -> bytes:
    """Return the report as a DOCX document (FICTIONAL label in the header of every page).

    Raises
    ------
    CoverageError
        python-docx is not installed (the message names the package).
    """
    try:
        import docx  # optional dependency, loaded on demand
        from docx.shared import Cm
    except ImportError as exc:
        msg = "le rapport DOCX demande le paquet python-docx : pip install 'python-docx>=1.1'"
        raise CoverageError(msg) from exc
    doc = docx.Document()
    if report.fictional:
        for section in doc.sections:
            section.header.paragraphs[0].text = report.fictional
    doc.core_properties.title = report.title
    doc.core_properties.language = "fr-FR"
    if report.run_digest:
        doc.core_properties.identifier = report.run_digest
        doc.core_properties.keywords = f"empreinte_calcul={report.run_digest}"
    doc.add_heading(report.title, level=0)
    for block in report.blocks:
        if block.kind == "heading":
            doc.add_heading(block.text, level=1)
        elif block.kind == "paragraph":
            doc.add_paragraph(block.text)
        elif block.kind == "image":
            doc.add_picture(io.BytesIO(block.image), width=Cm(15))
            doc.add_paragraph(block.text, style="Caption")
        else:
            doc.add_paragraph(block.text, style="Caption")
            table = doc.add_table(rows=1, cols=len(block.columns), style="Table Grid")
            for cell, title in zip(table.rows[0].cells, block.columns, strict=True):
                cell.text = title
            for row in block.rows:
                for cell, value in zip(table.add_row().cells, row, strict=True):
                    cell.text = value
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:auto;padding:1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}"
    "th,td{border:1px solid #999;padding:.2em .4em;text-align:left}"
    "th{background:#eee}img{max-width:100%}figcaption,caption{font-style:italic}"
    ".fictif{position:fixed;top:0;left:0;right:0;background:#b00;color:#fff;"
    "text-align:center;font-weight:bold;padding:.3em}"
    ".fictif+main{margin-top:2.5em}"
)


def _html_block(block: ReportBlock) -> str:
    """Return one block as HTML, every text escaped."""
    esc = html_js_safe
    if block.kind == "heading":
        return f"<h2>{esc(block.text)}</h2>"
    if block.kind == "paragraph":
        return f"<p>{esc(block.text)}</p>"
    if block.kind == "image":
        data = base64.b64encode(block.image).decode("ascii")
        return (f'<figure><img alt="{esc(block.text)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{esc(block.text)}</figcaption></figure>")
    head = "".join(f"<th>{esc(c)}</th>" for c in block.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                   for row in block.rows)
    return (f"<table><caption>{esc(block.text)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def report_html(report: Report) -> str:
    """Return the report as one self-contained HTML page (CSS inline, maps as data: URIs).

    The page refers to nothing outside itself; the FICTIONAL banner of the demo is fixed at
    the top of the screen and of every printed page.
    """
    banner = (f'<div class="fictif">{html_js_safe(report.fictional)}</div>'
              if report.fictional else "")
    body = "\n".join(_html_block(b) for b in report.blocks)
    meta = (f'<meta name="zones-blanches-empreinte-calcul" content="{report.run_digest}">'
            if report.run_digest else "")
    return (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">{meta}'
            f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head>"
            f"<body>{banner}<main><h1>{html_js_safe(report.title)}</h1>\n{body}\n"
            "</main></body></html>\n")


def write_report(run: RunOutputs, dept: str, out_dir: str | Path, *,
                 seuil: float | None = None, settings: Settings = Settings()) -> list[Path]:
    """Write ``<dept>_rapport.docx`` and ``<dept>_rapport.html`` into ``out_dir`` (atomic).

    Parameters
    ----------
    run
        A finished run.
    dept
        Département code.
    out_dir
        Folder of the two files (created); never a run folder nor inside one elsewhere
        than in its ``exports/`` (:func:`coverage.batch.outdir.check_export_out`).
    seuil
        Threshold, minutes (default: :func:`report_threshold`).
    settings
        ``secrecy_threshold`` and fallbacks.

    Returns
    -------
    list of pathlib.Path
        The DOCX and the HTML file.

    Raises
    ------
    CoverageError
        Unknown département or threshold, refused folder, or python-docx missing:
        nothing is written.
    """
    code = check_departement(run, dept)
    out = check_export_out(out_dir, dept=code)
    report = build_report(run, code, seuil=seuil, settings=settings)
    docx_bytes = report_docx(report)
    page = report_html(report)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out, report.run_digest)  # the files of an export of an earlier run
    paths = [out / f"{code}_rapport.docx", out / f"{code}_rapport.html"]
    write_bytes_atomic(paths[0], docx_bytes)
    write_text_atomic(paths[1], page)
    record_export(out, run, paths, dept=code, kind="rapport")
    log.info("wrote the report of département %s in %s", code, out)
    return paths

