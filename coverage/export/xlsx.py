"""The XLSX workbook of an export: one sheet per level, then « Sources et méthode ».

Each table sheet has an optional banner row (the FICTIONAL label of the demo), a title row
with the units, a row with the column codes, frozen panes, widths, number formats and an
auto-filter. Cells arrive already masked when the export is public (``< 5``, ``secret``).

Every cell is written by :func:`_put`: text is stored with the string type, never as a
formula (openpyxl would otherwise store ``=…`` text as a live formula, e.g. a DDE
``=cmd|' /C calc'!A0``), and text that a spreadsheet would read as a formula once edited
(first character in :data:`coverage.safe_text.FORMULA_PREFIXES`) also gets Excel's « quote
prefix » style, which keeps it text without changing it. Control characters that XLSX
cannot hold become U+FFFD. Numbers are written as numbers, unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from coverage.export.tables import EPCI_TABLE, WAITING_TABLE
from coverage.files import atomic_path
from coverage.safe_text import FORMULA_PREFIXES
from coverage.schemas import Contract, Field

__all__ = ["FICTIONAL_RUBRIQUE", "METHOD_SHEET", "SHEETS", "write_xlsx"]

#: Sheets of the XLSX, in order: (table, sheet name).
SHEETS: tuple[tuple[str, str], ...] = (
    ("couverture_departements", "Département"),
    ("acces_communes", "Communes"),
    ("zones_blanches", "Zones blanches"),
    (EPCI_TABLE, "EPCI"),
    ("couverture_densite", "Densité"),
    ("accessibilite_departement", "Accessibilité département"),
    ("accessibilite_epci", "Accessibilité EPCI"),
    ("accessibilite_communes", "Accessibilité communes"),
    (WAITING_TABLE, "Listes d'attente"),
)
METHOD_SHEET = "Sources et méthode"
#: Rubrique of the method sheet drawn in red: the FICTIONAL warning of the demo.
FICTIONAL_RUBRIQUE = "TERRITOIRE FICTIF"

_HEADER_FILL = "1F4E79"
_CODE_FILL = "DDEBF7"


def _number_format(field: Field | None) -> str | None:
    """Return the Excel number format of a field (None: the default)."""
    if field is None or field.type not in ("integer", "number"):
        return None
    unit = field.unit.lower()
    if field.type == "integer":
        fmt = "#,##0"
    elif unit.startswith("ratio"):
        fmt = "0.0%"
    elif unit == "jours":
        fmt = "0"
    else:
        fmt = "0.0"
    return fmt


def _float_cell(value: float) -> float | str | None:
    """Return a float as written: None for NaN, « inaccessible » for +inf."""
    if math.isnan(value):
        return None
    if math.isinf(value):  # e.g. a percentile of a mostly unreachable population
        return "inaccessible" if value > 0 else None
    return float(value)


def _cell(value: Any) -> Any:
    """Return a value as openpyxl writes it (None for missing, Python scalars)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return _float_cell(float(value))
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _put(ws: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write one cell: text as a string (never a formula), numbers unchanged.

    Parameters
    ----------
    ws
        The sheet.
    row, column
        1-based cell position.
    value
        Any table value (:func:`_cell` converts it).

    Returns
    -------
    openpyxl.cell.cell.Cell
        The cell written.
    """
    value = _cell(value)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    cell: Cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_PREFIXES):
            cell.quotePrefix = True
    return cell


def _write_headers(ws: Worksheet, columns: Sequence[str], fields: Mapping[str, Field],
                   head: int) -> None:
    """Write the title row (titles with units) on ``head`` and the code row below it."""
    bold = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor=_HEADER_FILL)
    code_font = Font(italic=True, color="404040", size=9)
    code_fill = PatternFill("solid", fgColor=_CODE_FILL)
    for j, col in enumerate(columns, start=1):
        f = fields.get(col)
        title = (f.title or col) if f else col
        if f and f.unit and f"({f.unit})" not in title:
            title = f"{title} ({f.unit})"
        c = _put(ws, head, j, title)
        c.font, c.fill = bold, fill
        c.alignment = Alignment(wrap_text=True, vertical="center")
        c2 = _put(ws, head + 1, j, col)
        c2.font, c2.fill = code_font, code_fill


def _format_columns(ws: Worksheet, df: pd.DataFrame, fields: Mapping[str, Field], *,
                    head: int, first: int) -> None:
    """Set the number formats of the data rows and the width of every column."""
    last = first + len(df) - 1
    for j, col in enumerate(df.columns, start=1):
        fmt = _number_format(fields.get(col))
        if fmt and len(df):
            for (cell,) in ws.iter_rows(min_row=first, max_row=last, min_col=j, max_col=j):
                if isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                    cell.number_format = fmt
        sample = [str(v) for v in df[col].head(200) if v is not None]
        longest = max([len(col), min(len(str(ws.cell(row=head, column=j).value)), 28),
                       *(len(v) for v in sample)])
        ws.column_dimensions[get_column_letter(j)].width = max(8, min(50, longest + 2))


def _write_sheet(ws: Worksheet, df: pd.DataFrame, contract: Contract, *,
                 freeze_cols: int = 0, banner: str | None = None) -> None:
    """Write one table on a sheet: [banner row], title row with units, code row, data rows."""
    fields = {f.name: f for f in contract.fields}
    columns = list(df.columns)
    head = 1
    if banner:
        _put(ws, 1, 1, banner).font = Font(bold=True, color="C00000")
        head = 2
    codes, first = head + 1, head + 2
    _write_headers(ws, columns, fields, head)
    for i, row in enumerate(df.itertuples(index=False, name=None), start=first):
        for j, value in enumerate(row, start=1):
            _put(ws, i, j, value)
    _format_columns(ws, df, fields, head=head, first=first)
    ws.row_dimensions[head].height = 32
    ws.freeze_panes = ws.cell(row=first, column=freeze_cols + 1).coordinate
    if len(df):
        ws.auto_filter.ref = f"A{codes}:{get_column_letter(len(columns))}{first + len(df) - 1}"


def _write_method_sheet(ws: Worksheet, method: Sequence[tuple[str, str]]) -> None:
    """Write the (rubrique, valeur) rows of the method sheet under a header row."""
    head = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor=_HEADER_FILL)
    for j, text in enumerate(("Rubrique", "Valeur"), start=1):
        c = _put(ws, 1, j, text)
        c.font, c.fill = head, fill
    for i, (k, v) in enumerate(method, start=2):
        _put(ws, i, 1, k).font = Font(bold=True)
        _put(ws, i, 2, v).alignment = Alignment(wrap_text=True,
                                                                 vertical="top")
        if k == FICTIONAL_RUBRIQUE:
            ws.cell(row=i, column=1).font = Font(bold=True, color="C00000")
            ws.cell(row=i, column=2).font = Font(bold=True, color="C00000")
    ws.column_dimensions["A"].width = 42
    ws.column_dimensions["B"].width = 110
    ws.freeze_panes = "A2"


def write_xlsx(path: Path, tables: Mapping[str, pd.DataFrame],
               contracts: Mapping[str, Contract], method: Sequence[tuple[str, str]], *,
               banner: str | None = None, run_digest: str = "", title: str = "") -> Path:
    """Write the XLSX workbook (atomic write).

    One sheet per table of :data:`SHEETS` present, then the « Sources et méthode » sheet.

    Parameters
    ----------
    path
        Target ``.xlsx``.
    tables
        Tables by contract name, already masked when the export is public.
    contracts
        Their contracts (titles and units of the headers, number formats).
    method
        Rows of the method sheet (:func:`coverage.export.departement.method_rows`).
    banner
        A line put above the headers of every table sheet (the FICTIONAL label of the
        demo); the headers then start on row 2.
    run_digest
        Digest of the run the workbook is made from
        (:func:`coverage.export.provenance.run_digest`), stored in the document
        properties (``identifier``, and in the description and keywords).
    title
        Document title (properties).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    wb = Workbook()
    default = wb.active
    if default is not None:
        wb.remove(default)
    for name, sheet in SHEETS:
        if name not in tables:
            continue
        ws = wb.create_sheet(sheet)
        freeze = 2 if name in ("acces_communes", "zones_blanches",
                               "accessibilite_communes") else 0
        _write_sheet(ws, tables[name], contracts[name], freeze_cols=freeze, banner=banner)
    _write_method_sheet(wb.create_sheet(METHOD_SHEET), method)
    wb.properties.creator = "zones-blanches"
    wb.properties.language = "fr-FR"
    if title:
        wb.properties.title = title
    if run_digest:
        wb.properties.identifier = run_digest
        wb.properties.keywords = f"empreinte_calcul={run_digest}"
        wb.properties.description = (f"Fait à partir du calcul d'empreinte {run_digest} "
                                     "(SHA-256 du manifeste du calcul).")
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return path
