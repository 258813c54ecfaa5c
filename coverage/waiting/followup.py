"""The shared follow-up of waiting lists: one table for the partners, secrecy applied.

The framework agreement asks for regular information on waiting lists shared between the
signatories (ministries, CNAF, CCMSA, courts of appeal). :func:`followup_table` builds it
from the reconciled returns (:func:`coverage.waiting.reconcile_returns`) and the run, one
row per département × type of service × period:

- families waiting (families) and mean delay (days, weighted by families waiting);
- the change on the previous period of the same kind and on the same period a year before
  (families and days, :func:`coverage.waiting.waiting_indicators`);
- the services expected (the run's services of that type in the département), those that
  reported for the period, their share (ratio 0-1) and the list of those missing (ids and
  names); empty for département-level returns (no per-service detail);
- the white-zone population beside it (inhabitants, and share of the département's
  population) at one threshold (minutes) of the run's ``couverture_departements``;
- the sources retained, and a note when the série mixes kinds of period.

:func:`mask_followup` applies statistical secrecy for the partners
(:func:`coverage.waiting.mask_public`, the exports' rule): a count below
``settings.secrecy_threshold`` is written ``< 5`` and what derives from it ``secret``.
:func:`write_followup` writes ``suivi_listes_attente.xlsx`` (sheets « Suivi », « Conflits »,
« Sources », « Définitions ») and ``suivi_listes_attente.csv`` (French CSV: ``;``, decimal
comma, UTF-8 with BOM), French headings, text cells neutralised against formulas
(:mod:`coverage.safe_text`), numbers kept as numbers with French-looking number formats.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from coverage.cog import dep_of_code
from coverage.files import atomic_path, write_bytes_atomic
from coverage.io.waiting import COUNT_COLUMNS
from coverage.safe_text import spreadsheet_safe
from coverage.schemas import (
    CONFLITS_LISTES_ATTENTE,
    SOURCES_LISTES_ATTENTE,
    SUIVI_LISTES_ATTENTE,
    Contract,
    Field,
)
from coverage.secrecy import SECRET_MARKER, mask_cells, secrecy_marker
from coverage.settings import Settings
from coverage.waiting import (
    indicators_for_run,
    mask_public,
    mixed_periods_note,
    reconcile_returns,
    with_periods,
)

__all__ = [
    "FOLLOWUP_NAME",
    "FOLLOWUP_SHEETS",
    "FollowupInputs",
    "RunFollowup",
    "followup_for_run",
    "followup_table",
    "mask_conflicts",
    "mask_followup",
    "sources_of_rows",
    "write_followup",
]

log = logging.getLogger(__name__)

#: Stem of the follow-up files (``.xlsx`` and ``.csv``).
FOLLOWUP_NAME = "suivi_listes_attente"
#: Sheets of the follow-up workbook, in order.
FOLLOWUP_SHEETS: tuple[str, ...] = ("Suivi", "Conflits", "Sources", "Définitions")

_KEY = ["code_dep", "type_service", "periode"]


@dataclass(frozen=True)
class FollowupInputs:
    """What the follow-up table is built from, besides the indicators.

    Attributes
    ----------
    rows
        Reconciled returns (:func:`coverage.waiting.reconcile_returns`), with
        ``service_id``/``nom_service`` and ``sources``.
    services
        The run's services (``service_id``, ``type_service``, ``nom``, ``code_insee``), or
        None: the expected services are then unknown.
    couverture
        The run's ``couverture_departements`` table, or None.
    seuil
        Threshold of the white-zone population, minutes; None → 30 when the run has it,
        else its smallest.
    """

    rows: pd.DataFrame
    services: pd.DataFrame | None = None
    couverture: pd.DataFrame | None = None
    seuil: float | None = None


def _expected(services: pd.DataFrame | None) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Return the (id, name) of the services of each (département, type)."""
    if services is None or services.empty:
        return {}
    deps = dep_of_code(services["code_insee"].astype(str))
    names = services["nom"].astype(str) if "nom" in services.columns else \
        services["service_id"].astype(str)
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for dep, typ, sid, name in zip(deps, services["type_service"].astype(str),
                                   services["service_id"].astype(str), names, strict=True):
        out.setdefault((str(dep), typ), []).append((sid, name))
    return out


def _reporting(rows: pd.DataFrame) -> dict[tuple[str, str, str], set[str]]:
    """Return the ids and names of the services with a return, by key."""
    out: dict[tuple[str, str, str], set[str]] = {}
    per_service = rows[rows["service_id"].notna()]
    names = per_service["nom_service"] if "nom_service" in per_service.columns else \
        per_service["service_id"]
    for key, sid, name in zip(per_service[_KEY].itertuples(index=False, name=None),
                              per_service["service_id"], names, strict=True):
        out.setdefault(tuple(map(str, key)), set()).update(  # type: ignore[arg-type]
            {str(sid), str(name)})
    return out


def _service_columns(table: pd.DataFrame, inputs: FollowupInputs) -> None:
    """Add services expected, reporting, their share and those missing (in place)."""
    expected = _expected(inputs.services)
    reporting = _reporting(inputs.rows)
    dep_level = {tuple(map(str, k)) for k in inputs.rows.loc[
        inputs.rows["service_id"].isna(), _KEY].itertuples(index=False, name=None)}
    n_exp: list[float] = []
    n_rep: list[float] = []
    missing: list[str | None] = []
    for key in table[_KEY].itertuples(index=False, name=None):
        key = tuple(map(str, key))
        exp = expected.get((key[0], key[1]))
        if exp is None or key in dep_level:
            n_exp.append(len(exp) if exp else np.nan)
            n_rep.append(np.nan)
            missing.append(None)
            continue
        seen = reporting.get(key, set())
        absent = [f"{sid} ({name})" if name != sid else sid
                  for sid, name in exp if sid not in seen and name not in seen]
        n_exp.append(len(exp))
        n_rep.append(len(exp) - len(absent))
        missing.append(", ".join(absent) or None)
    table["services_attendus"] = pd.Series(n_exp, dtype="float64").round().astype("Int64")
    table["services_declarants"] = pd.Series(n_rep, dtype="float64").round().astype("Int64")
    table["part_services_declarants"] = (
        table["services_declarants"].astype("float64")
        / table["services_attendus"].astype("float64").where(lambda s: s > 0))
    table["services_manquants"] = missing


def _pick_threshold(couverture: pd.DataFrame, seuil: float | None) -> float | None:
    seuils = sorted(pd.to_numeric(couverture["seuil_minutes"]).dropna().unique().tolist())
    if seuil is not None:
        return float(seuil)
    if not seuils:
        return None
    return 30.0 if any(np.isclose(s, 30.0) for s in seuils) else float(seuils[0])


def _white_zone_columns(table: pd.DataFrame, inputs: FollowupInputs) -> None:
    """Add the white-zone population at the threshold (in place)."""
    table["seuil_minutes"] = np.nan
    table["population_zone_blanche"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table["part_population_zone_blanche"] = np.nan
    cov = inputs.couverture
    if cov is None or cov.empty:
        return
    seuil = _pick_threshold(cov, inputs.seuil)
    if seuil is None:
        return
    at = cov[np.isclose(pd.to_numeric(cov["seuil_minutes"]).astype(float), seuil)]
    at = at.assign(code_dep=at["code_dep"].astype(str))[
        ["code_dep", "type_service", "population", "population_zone_blanche"]].rename(
        columns={"population": "_pop"})
    merged = table[["code_dep", "type_service"]].merge(at, how="left",
                                                       on=["code_dep", "type_service"])
    pop = pd.to_numeric(merged["_pop"], errors="coerce").astype("float64")
    white = pd.to_numeric(merged["population_zone_blanche"], errors="coerce").astype("float64")
    table["seuil_minutes"] = seuil
    table["population_zone_blanche"] = white.round().astype("Int64").to_numpy()
    table["part_population_zone_blanche"] = (white / pop.where(pop > 0)).to_numpy()


def _notes(table: pd.DataFrame, indicators: pd.DataFrame) -> list[str | None]:
    notes: dict[tuple[str, str], str | None] = {}
    out: list[str | None] = []
    for dep, typ in zip(table["code_dep"], table["type_service"], strict=True):
        if (dep, typ) not in notes:
            notes[(dep, typ)] = mixed_periods_note(indicators, dep, typ)
        out.append(notes[(dep, typ)])
    return out


def followup_table(indicators: pd.DataFrame, inputs: FollowupInputs) -> pd.DataFrame:
    """Build the shared follow-up table (unmasked): one row per département, type, period.

    Parameters
    ----------
    indicators
        :func:`coverage.waiting.waiting_indicators` of the reconciled returns (its
        population and changes are used).
    inputs
        The reconciled rows, the run's services and coverage, the threshold (minutes).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`coverage.schemas.SUIVI_LISTES_ATTENTE` (definitions in the
        module docstring), sorted by département, type and date of the period.
    """
    ind = with_periods(indicators)
    ind = ind[ind["type_service"].isin(set(inputs.rows["type_service"]))].reset_index(
        drop=True)
    table = ind[[c for c in SUIVI_LISTES_ATTENTE.columns if c in ind.columns]].copy()
    _service_columns(table, inputs)
    _white_zone_columns(table, inputs)
    sources = inputs.rows.assign(sources=inputs.rows.get("sources", inputs.rows["source"]))
    by_key = sources.groupby(_KEY)["sources"].agg(
        lambda s: " ; ".join(dict.fromkeys(x for v in s for x in str(v).split(" ; "))))
    table["sources"] = [by_key.get(tuple(k), "") for k in
                        table[_KEY].itertuples(index=False, name=None)]
    table["note"] = _notes(table, ind)
    table["date_periode"] = pd.to_datetime(table["date_periode"]).dt.date
    return table[SUIVI_LISTES_ATTENTE.columns].reset_index(drop=True)


def mask_followup(table: pd.DataFrame, settings: Settings = Settings()) -> pd.DataFrame:
    """Apply statistical secrecy to the follow-up table for the partners.

    The rule of :func:`coverage.waiting.mask_public` (counts below
    ``settings.secrecy_threshold``, zero included, and everything derived from them,
    including a change that would reveal a masked earlier count): a masked count becomes
    ``< 5`` and a masked derived figure ``secret`` (text); every other number stays a
    number.

    Parameters
    ----------
    table
        :func:`followup_table` output.
    settings
        ``secrecy_threshold``.

    Returns
    -------
    pandas.DataFrame
        The masked copy.
    """
    nulls = mask_public(table, settings)
    cells = {c: table[c].notna() & nulls[c].isna() for c in table.columns
             if c in nulls.columns and (table[c].notna() & nulls[c].isna()).any()}
    return mask_cells(table, cells, secrecy_marker(settings.secrecy_threshold),
                      counts=["familles_en_attente"], derived_marker=SECRET_MARKER)


def mask_conflicts(conflicts: pd.DataFrame, settings: Settings = Settings()) -> pd.DataFrame:
    """Mask the conflicts table for the partners.

    A conflicting count below ``settings.secrecy_threshold`` becomes ``< 5``; a
    conflicting delay (or any other measure) becomes ``secret``, since the families it
    concerns may be few.

    Parameters
    ----------
    conflicts
        :data:`coverage.schemas.CONFLITS_LISTES_ATTENTE` rows.
    settings
        ``secrecy_threshold``.

    Returns
    -------
    pandas.DataFrame
        The masked copy (values as text where masked).
    """
    k = settings.secrecy_threshold
    conflicts = conflicts.reindex(columns=CONFLITS_LISTES_ATTENTE.columns)
    is_count = conflicts["colonne"].isin(list(COUNT_COLUMNS))
    cells = {}
    for col in ("valeur_retenue", "valeur_ecartee"):
        values = pd.to_numeric(conflicts[col], errors="coerce")
        cells[col] = (is_count & (values < k)) | ~is_count
    marked = mask_cells(conflicts, {c: m & is_count for c, m in cells.items()},
                        secrecy_marker(k), counts=["valeur_retenue", "valeur_ecartee"])
    return mask_cells(marked, {c: m & ~is_count for c, m in cells.items()}, SECRET_MARKER)


# --- Writing -----------------------------------------------------------------------------

_HEADER_FILL = "1F4E79"


def _title(field: Field | None, column: str) -> str:
    if field is None:
        return column
    return f"{field.title} ({field.unit})" if field.unit else field.title


def _number_format(field: Field | None) -> str | None:
    """Return the Excel format of a numeric field (French Excel shows 1 234,5 and 12,5 %)."""
    if field is None or field.type not in ("integer", "number"):
        return None
    if field.type == "integer":
        return "#,##0"
    if field.unit.startswith("ratio"):
        return "0.0%"
    return "0" if field.unit == "jours" and "variation" not in field.name else "0.0"


def _cell_value(value: Any) -> Any:
    """Return a value as written in the XLSX: None for missing, Python scalars, safe text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


def _write_sheet(ws: Worksheet, df: pd.DataFrame, contract: Contract,
                 banner: str | None) -> None:
    """Write one table: [banner], French headings, data; numbers keep their type."""
    fields = {f.name: f for f in contract.fields}
    row0 = 1
    if banner:
        ws.cell(row=1, column=1, value=banner).font = Font(bold=True, color="C00000")
        row0 = 2
    for j, col in enumerate(df.columns, start=1):
        c = ws.cell(row=row0, column=j, value=_title(fields.get(col), col))
        c.font = Font(bold=True, color="FFFFFF")
        c.fill = PatternFill("solid", fgColor=_HEADER_FILL)
        ws.column_dimensions[get_column_letter(j)].width = max(10, min(45, len(str(c.value))
                                                                       + 2))
    for i, row in enumerate(df.itertuples(index=False, name=None), start=row0 + 1):
        for j, (col, value) in enumerate(zip(df.columns, row, strict=True), start=1):
            cell = ws.cell(row=i, column=j)
            v = _cell_value(value)
            cell.value = v
            if isinstance(v, str):
                cell.data_type = "s"  # never a formula, whatever the text
            fmt = _number_format(fields.get(col))
            if fmt and isinstance(v, int | float) and not isinstance(v, bool):
                cell.number_format = fmt
            elif isinstance(v, dt.date):
                cell.number_format = "DD/MM/YYYY"
    ws.freeze_panes = ws.cell(row=row0 + 1, column=1).coordinate


def _definitions(settings: Settings) -> pd.DataFrame:
    k = settings.secrecy_threshold
    rows = [(_title(f, f.name), f.description) for f in SUIVI_LISTES_ATTENTE.fields]
    rows += [
        ("Secret statistique", f"Effectif inférieur à {k} (zéro compris) : « "
         f"{secrecy_marker(k)} » ; valeur qui en dérive (délai, variations, part des "
         f"services) : « {SECRET_MARKER} »."),
        ("Réconciliation", "Pour un même service (ou département), type et période : le "
         "retour du service d'abord, puis la date de retour la plus récente, puis le "
         "fichier donné en dernier ; chaque valeur écartée différente est listée dans "
         "l'onglet Conflits."),
    ]
    return pd.DataFrame(rows, columns=["rubrique", "definition"])


_DEFINITIONS = Contract("definitions", "Définitions", (
    Field("rubrique", "string", True, "", "Rubrique", ""),
    Field("definition", "string", True, "", "Définition", "")))


#: Date written in the workbook's properties and zip entries: the same data give the same
#: bytes (a resumed run is identical to an uninterrupted one).
_FIXED_STAMP = "2000-01-01T00:00:00Z"
_CORE_DATES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def _workbook_bytes(wb: Workbook) -> bytes:
    """Return the XLSX bytes of ``wb`` without the time of writing (reproducible)."""
    raw = io.BytesIO()
    wb.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _CORE_DATES.sub(rb"\g<1>" + _FIXED_STAMP.encode() + rb"\g<2>", data)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, data)
    return out.getvalue()


def _french_csv(df: pd.DataFrame, contract: Contract, path: Path) -> Path:
    """Write ``df`` as a French CSV: titles, ``;``, decimal comma, UTF-8 BOM, safe text."""
    fields = {f.name: f for f in contract.fields}
    out = pd.DataFrame({_title(fields.get(c), c): [
        str(v).replace(".", ",") if isinstance(v, float) and not math.isnan(v)
        else _cell_value(v) for v in df[c].tolist()] for c in df.columns})
    with atomic_path(path) as tmp:
        out.to_csv(tmp, sep=";", index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


def write_followup(folder: str | Path, table: pd.DataFrame, *, conflicts: pd.DataFrame,
                   sources: pd.DataFrame, settings: Settings = Settings(),
                   masked: bool = True) -> list[Path]:
    """Write ``suivi_listes_attente.xlsx`` and ``.csv`` (atomic writes).

    Parameters
    ----------
    folder
        Destination folder (created if needed).
    table
        :func:`followup_table` output (unmasked; masked here when ``masked``).
    conflicts
        The conflicts of the reconciliation (:data:`coverage.schemas.
        CONFLITS_LISTES_ATTENTE`).
    sources
        One row per return file (``coverage.io.waiting.WaitingReturns.files``: fichier,
        sha256, source, lignes, ordre_fichier).
    settings
        ``secrecy_threshold``.
    masked
        Apply :func:`mask_followup` (default: the table is meant for the partners).

    Returns
    -------
    list of pathlib.Path
        The XLSX (sheets :data:`FOLLOWUP_SHEETS`) and the CSV (the « Suivi » sheet).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shown = mask_followup(table, settings) if masked else table
    fictif = bool(table["fictif"].astype(bool).any()) if len(table) else False
    banner = "DONNÉES FICTIVES — territoire de démonstration" if fictif else None
    wb = Workbook()
    sheets: Sequence[tuple[str, pd.DataFrame, Contract]] = (
        ("Suivi", shown, SUIVI_LISTES_ATTENTE),
        ("Conflits", (mask_conflicts(conflicts, settings) if masked else conflicts).reindex(
            columns=CONFLITS_LISTES_ATTENTE.columns), CONFLITS_LISTES_ATTENTE),
        ("Sources", sources.reindex(columns=SOURCES_LISTES_ATTENTE.columns),
         SOURCES_LISTES_ATTENTE),
        ("Définitions", _definitions(settings), _DEFINITIONS),
    )
    for n, (name, df, contract) in enumerate(sheets):
        ws = wb.active if n == 0 else wb.create_sheet(name)
        assert ws is not None
        ws.title = name
        _write_sheet(ws, df, contract, banner if name == "Suivi" else None)
    xlsx = folder / f"{FOLLOWUP_NAME}.xlsx"
    write_bytes_atomic(xlsx, _workbook_bytes(wb))
    csv = _french_csv(shown, SUIVI_LISTES_ATTENTE, folder / f"{FOLLOWUP_NAME}.csv")
    log.info("follow-up of the waiting lists written: %s, %s", xlsx, csv)
    return [xlsx, csv]



def sources_of_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Return a « Sources » table from the rows alone (no digest known).

    Parameters
    ----------
    rows
        Returns with ``fichier``, ``source`` and optionally ``ordre_fichier``.

    Returns
    -------
    pandas.DataFrame
        ``fichier, sha256`` (empty), ``source, lignes, ordre_fichier``.
    """
    w = rows.assign(ordre_fichier=rows.get("ordre_fichier", 0),
                    fichier=rows.get("fichier", ""), source=rows.get("source", ""))
    g = w.groupby(["ordre_fichier", "fichier"], sort=True)
    out = g["source"].agg(lambda s: " ; ".join(dict.fromkeys(s.astype(str)))).to_frame()
    out["lignes"] = g.size()
    out["sha256"] = ""
    return out.reset_index()[SOURCES_LISTES_ATTENTE.columns]


@dataclass(frozen=True)
class RunFollowup:
    """What a run gives the follow-up table.

    Attributes
    ----------
    communes
        The run's communes (``code_dep``, ``population``).
    services
        The run's services (``service_id``, ``type_service``, ``nom``, ``code_insee``).
    couverture
        The run's ``couverture_departements``, or None.
    sources
        One row per return file (``WaitingReturns.files``), or None: built from the rows
        without digests.
    seuil
        Threshold of the white-zone population, minutes (None: 30 min when present).
    """

    communes: pd.DataFrame
    services: pd.DataFrame | None
    couverture: pd.DataFrame | None
    sources: pd.DataFrame | None = None
    seuil: float | None = None


def followup_for_run(rows: pd.DataFrame, run: RunFollowup, folder: str | Path, *,
                     settings: Settings = Settings()) -> list[Path]:
    """Reconcile the returns and write the shared follow-up of a run (XLSX and CSV).

    Parameters
    ----------
    rows
        Every row of the return files (``load_waiting_files(...).rows``).
    run
        The run's communes, services, coverage and the files' « Sources » table.
    folder
        Destination folder (the run folder).
    settings
        ``secrecy_threshold``.

    Returns
    -------
    list of pathlib.Path
        ``suivi_listes_attente.xlsx`` and ``.csv``.
    """
    reconciled, conflicts = reconcile_returns(rows)
    indicators = indicators_for_run(reconciled, run.communes)
    table = followup_table(indicators, FollowupInputs(reconciled, run.services,
                                                      run.couverture, run.seuil))
    sources = run.sources if run.sources is not None else sources_of_rows(rows)
    return write_followup(folder, table, conflicts=conflicts, sources=sources,
                          settings=settings)
