"""Resource limits of the table readers, on the decoded size, not the bytes on disk.

A small file can hold a huge table: a ``.csv.gz`` of 0.6 MB inflating to gigabytes, an XLSX
of 2.4 MB holding 108 MB of XML, a CSV whose header has 600,000 columns. The readers of
:mod:`coverage.io.tables` check, before pandas or openpyxl parse anything:

- **CSV** (and ``.csv.gz``): the bytes are streamed (decompressed on the fly) and counted;
  reading stops past ``max_bytes`` decoded bytes, past :data:`MAX_ROWS` lines or
  :data:`MAX_CELLS` cells; the header line (at most :data:`MAX_HEADER_BYTES`) may have at
  most :data:`MAX_COLUMNS` columns.
- **XLSX**: the uncompressed sizes the zip declares for its XML parts (zipfile refuses to
  inflate past them) must total at most ``max_bytes``; the first sheet's XML is then
  streamed and its rows, cells and first-row columns counted against the same limits.

Each refusal is a :class:`~coverage.errors.FileTooLargeError` whose French message names
the file, what was found and the limit (and how to raise ``max_input_bytes``).
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from coverage.errors import FileTooLargeError, InputError, Problem

__all__ = [
    "MAX_CELLS",
    "MAX_COLUMNS",
    "MAX_HEADER_BYTES",
    "MAX_ROWS",
    "TableLimits",
    "check_xlsx",
    "read_capped_bytes",
]

#: Most columns of a CSV or XLSX input table.
MAX_COLUMNS = 500
#: Most data rows of a CSV or XLSX input table.
MAX_ROWS = 2_000_000
#: Most cells (rows × columns) of a CSV or XLSX input table.
MAX_CELLS = 20_000_000
#: Longest CSV header line, bytes.
MAX_HEADER_BYTES = 1 << 20
_CHUNK = 1 << 20
_OVERLAP = 16
_ROW_RE = re.compile(rb"<(?:\w+:)?row[\s>/]")
_CELL_RE = re.compile(rb"<(?:\w+:)?c[\s>/]")
_ROW_END_RE = re.compile(rb"</(?:\w+:)?row>")


@dataclass(frozen=True)
class TableLimits:
    """Limits of one table read (see the module docstring).

    Attributes
    ----------
    max_bytes
        Most decoded bytes (CSV text after decompression, XLSX XML); None: no limit.
    max_columns, max_rows, max_cells
        Most columns, data rows and cells.
    """

    max_bytes: int | None = None
    max_columns: int = MAX_COLUMNS
    max_rows: int = MAX_ROWS
    max_cells: int = MAX_CELLS


def _n(value: int) -> str:
    """Return a whole number in French style (narrow no-break space as thousands separator)."""
    return f"{value:,}".replace(",", "\u202f")


def _too_large(path: Path, found: str, limit: str, hint: str = "") -> FileTooLargeError:
    """Return the error of a table beyond a limit, with its French message."""
    msg = f"{path} : {found}, au-delà de la limite de {limit} ; fichier refusé avant lecture"
    return FileTooLargeError(Problem(str(path), None, None, limit, found),
                             message=msg + (f" ({hint})" if hint else ""))


def _bytes_hint() -> str:
    return "limite réglable avec --set max_input_bytes=N"


def _check_bytes(path: Path, size: int, limits: TableLimits, what: str) -> None:
    """Refuse more than ``limits.max_bytes`` decoded bytes."""
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise _too_large(path, f"plus de {_n(limits.max_bytes)} octets {what}",
                         f"{_n(limits.max_bytes)} octets décodés", _bytes_hint())


def _check_shape(path: Path, rows: int, columns: int, limits: TableLimits) -> None:
    """Refuse more rows, columns or cells than the limits."""
    if columns > limits.max_columns:
        raise _too_large(path, f"{_n(columns)} colonnes", f"{_n(limits.max_columns)} colonnes")
    if rows > limits.max_rows:
        raise _too_large(path, f"plus de {_n(limits.max_rows)} lignes",
                         f"{_n(limits.max_rows)} lignes")
    if rows * max(columns, 1) > limits.max_cells:
        raise _too_large(path, f"plus de {_n(limits.max_cells)} cellules",
                         f"{_n(limits.max_cells)} cellules (lignes × colonnes)")


def _header_columns(path: Path, buf: bytes | bytearray, final: bool) -> int | None:
    """Return the number of columns of the header line; None while it is incomplete."""
    end = buf.find(b"\n")
    if end < 0 and not final:
        if len(buf) > MAX_HEADER_BYTES:
            raise _too_large(path, f"une ligne d'en-tête de plus de {_n(MAX_HEADER_BYTES)} "
                             "octets", f"{_n(MAX_HEADER_BYTES)} octets par en-tête")
        return None
    header = bytes(buf[: end if end >= 0 else len(buf)])
    if len(header) > MAX_HEADER_BYTES:
        raise _too_large(path, f"une ligne d'en-tête de {_n(len(header))} octets",
                         f"{_n(MAX_HEADER_BYTES)} octets par en-tête")
    return max(header.count(sep) for sep in (b",", b";", b"\t")) + 1


def _open(path: Path, gzipped: bool) -> io.BufferedIOBase:
    """Open a file for reading bytes, decompressing a gzip file on the fly."""
    if gzipped:
        return gzip.GzipFile(path, "rb")
    return open(path, "rb")


def read_capped_bytes(path: str | Path, limits: TableLimits, *, gzipped: bool = False
                      ) -> bytes:
    """Return the bytes of a CSV file (decompressed when ``gzipped``) within the limits.

    Parameters
    ----------
    path
        The CSV (or ``.csv.gz``) file.
    limits
        Decoded bytes, columns (counted on the header line), rows (lines) and cells.
    gzipped
        Decompress the file as gzip while reading.

    Raises
    ------
    FileTooLargeError
        A limit is passed (reading stops there: the rest is never decompressed).
    InputError
        A ``.csv.gz`` that is not valid gzip data.
    """
    p = Path(path)
    buf = bytearray()
    lines = 0
    columns: int | None = None
    try:
        with _open(p, gzipped) as fh:
            while chunk := fh.read(_CHUNK):
                buf += chunk
                _check_bytes(p, len(buf), limits, "une fois décompressé" if gzipped
                             else "de texte")
                lines += chunk.count(b"\n")
                if columns is None:
                    columns = _header_columns(p, buf, final=False)
                if columns is not None:
                    _check_shape(p, max(lines - 1, 0), columns, limits)
    except (OSError, EOFError, zlib.error) as exc:
        if not gzipped:
            raise
        raise InputError(Problem(str(p), None, None, "un fichier CSV compressé par gzip",
                                 str(exc))) from None
    columns = _header_columns(p, buf, final=True) if columns is None else columns
    rows = lines - 1 + (1 if buf and not buf.endswith(b"\n") else 0)
    _check_shape(p, max(rows, 0), columns or 1, limits)
    return bytes(buf)


def _first_sheet(zf: zipfile.ZipFile, names: set[str]) -> list[str]:
    """Return the XML part of the workbook's first sheet (all sheets when unresolved)."""
    sheets = sorted(n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml"))
    try:
        book = zf.read("xl/workbook.xml")[: 1 << 20]
        rels = zf.read("xl/_rels/workbook.xml.rels")[: 1 << 20]
    except (KeyError, zipfile.BadZipFile, OSError):
        return sheets
    sheet = re.search(rb"<(?:\w+:)?sheet\b[^>]*?\br:id=\"([^\"]+)\"", book)
    if sheet is None:
        return sheets
    rel = re.search(rb"<Relationship\b[^>]*?\bId=\"" + re.escape(sheet.group(1))
                    + rb"\"[^>]*?\bTarget=\"([^\"]+)\"", rels) or re.search(
        rb"<Relationship\b[^>]*?\bTarget=\"([^\"]+)\"[^>]*?\bId=\""
        + re.escape(sheet.group(1)) + rb"\"", rels)
    if rel is None:
        return sheets
    target = rel.group(1).decode("utf-8", "replace").lstrip("/")
    part = target if target.startswith("xl/") else str(PurePosixPath("xl") / target)
    return [part] if part in names else sheets


def _scan_sheet(path: Path, zf: zipfile.ZipFile, part: str, limits: TableLimits) -> None:
    """Count the rows, cells and first-row cells of a sheet's XML, streamed."""
    rows = cells = 0
    first_row: int | None = None
    tail = b""
    with zf.open(part) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            buf = tail + chunk
            cut = len(buf) if not chunk else max(len(buf) - _OVERLAP, 0)
            rows += sum(1 for m in _ROW_RE.finditer(buf) if m.start() < cut)
            cell_starts = [m.start() for m in _CELL_RE.finditer(buf) if m.start() < cut]
            cells += len(cell_starts)
            if first_row is None:
                end = _ROW_END_RE.search(buf)
                if end is not None or not chunk:
                    first_row = cells - sum(1 for s in cell_starts
                                            if end is not None and s > end.start())
            columns = first_row if first_row is not None else cells
            _check_shape(path, max(rows - 1, 0), columns, limits)
            if cells > limits.max_cells:
                raise _too_large(path, f"plus de {_n(limits.max_cells)} cellules",
                                 f"{_n(limits.max_cells)} cellules")
            if not chunk:
                return
            tail = buf[cut:]


def check_xlsx(path: str | Path, limits: TableLimits) -> None:
    """Check an XLSX workbook's decoded size and shape before it is parsed.

    Parameters
    ----------
    path
        The workbook.
    limits
        ``max_bytes`` bounds the uncompressed XML of the whole workbook; rows, cells and
        columns (cells of the first row) of the first sheet are counted on its XML.

    Raises
    ------
    FileTooLargeError
        A limit is passed.
    InputError
        Not a readable zip archive.
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            xml = sum(i.file_size for i in infos if i.filename.endswith((".xml", ".rels")))
            _check_bytes(p, xml, limits, "de XML une fois décompressé")
            names = {i.filename for i in infos}
            for part in _first_sheet(zf, names):
                _scan_sheet(p, zf, part, limits)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(Problem(str(p), None, None, "un classeur XLSX lisible",
                                 f"{type(exc).__name__}: {exc}")) from None
