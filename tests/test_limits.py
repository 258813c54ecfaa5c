"""Resource limits on the decoded size: hostile files, small on disk, refused before parsing."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from coverage.errors import FileTooLargeError, InputError
from coverage.io.limits import MAX_COLUMNS, MAX_ROWS, TableLimits
from coverage.io.tables import read_table
from coverage.io.waiting import load_waiting
from coverage.settings import Settings

APP_BYTES = 5_000_000  # what the app allows an upload
HEADER = b"Departement,Type de service,Annee,Familles en attente\n"
ROW = b"15,ER,2023,4\n"


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data, compresslevel=9))
    return path


# --- CSV and .csv.gz ---------------------------------------------------------------------------

def test_gzip_bomb_stops_at_the_decoded_limit(tmp_path: Path) -> None:
    bomb = _gz(tmp_path / "retours.csv.gz", HEADER + ROW * 5_000_000)  # 65 MB decoded
    assert bomb.stat().st_size < 300_000
    with pytest.raises(FileTooLargeError) as err:
        read_table(bomb, max_bytes=APP_BYTES)
    text = str(err.value)
    assert str(bomb) in text and "5\u202f000\u202f000 octets" in text
    assert "une fois décompressé" in text and "max_input_bytes" in text


def test_gzip_bomb_through_the_loader(tmp_path: Path) -> None:
    bomb = _gz(tmp_path / "retours.csv.gz", HEADER + ROW * 1_000_000)
    settings = Settings(max_input_bytes=APP_BYTES)
    with pytest.raises(InputError, match="au-delà de la limite"):
        load_waiting(bomb, settings=settings)


def test_rows_limit_with_the_default_settings(tmp_path: Path) -> None:
    many = _gz(tmp_path / "t.csv.gz", b"a,b\n" + b"1,2\n" * (MAX_ROWS + 10))
    with pytest.raises(FileTooLargeError, match="lignes"):
        read_table(many, max_bytes=Settings().max_input_bytes)
    small = TableLimits(max_rows=100)
    with pytest.raises(FileTooLargeError, match="100 lignes"):
        read_table(_gz(tmp_path / "u.csv.gz", b"a,b\n" + b"1,2\n" * 101), limits=small)
    ok = read_table(_gz(tmp_path / "v.csv.gz", b"a,b\n" + b"1,2\n" * 100), limits=small)
    assert len(ok) == 100


@pytest.mark.parametrize("columns", [MAX_COLUMNS + 1, 100_000, 600_000])
def test_wide_header_is_refused_before_parsing(tmp_path: Path, columns: int) -> None:
    path = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(columns))
    path.write_text(header + "\n" + ",".join("1" * 1 for _ in range(3)) + "\n",
                    encoding="utf-8")
    with pytest.raises(FileTooLargeError) as err:
        read_table(path)
    text = str(err.value)
    assert str(path) in text and "au-delà de la limite" in text
    assert "colonnes" in text or "en-tête" in text


def test_header_without_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "endless.csv"
    path.write_bytes(b"a" * (3 << 20))  # 3 MB, no line break
    with pytest.raises(FileTooLargeError, match="en-tête"):
        read_table(path)


def test_cells_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b,c,d\n" + b"1,2,3,4\n" * 30)
    with pytest.raises(FileTooLargeError, match="cellules"):
        read_table(path, limits=TableLimits(max_cells=100))


def test_normal_csv_within_limits(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_bytes(HEADER + ROW * 3)
    assert len(read_table(path, max_bytes=APP_BYTES)) == 3
    gz = _gz(tmp_path / "ok.csv.gz", HEADER + ROW * 3)
    assert len(read_table(gz, max_bytes=APP_BYTES)) == 3
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(HEADER + ROW * 1000)[:60])
    with pytest.raises(InputError, match="gzip"):
        read_table(broken)


# --- XLSX ------------------------------------------------------------------------------------

_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
       'package/2006/content-types"><Default Extension="rels" ContentType="application/'
       'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
       '"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
       'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
       '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
       'officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
         'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
         'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
         'Target="xl/workbook.xml"/></Relationships>')
_BOOK = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.'
         'openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.'
         'org/officeDocument/2006/relationships"><sheets><sheet name="Feuil1" sheetId="1" '
         'r:id="rId1"/></sheets></workbook>')
_BOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
              'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
              '"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"'
              ' Target="worksheets/sheet1.xml"/></Relationships>')


def _col(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _row(r: int, values: list[object]) -> str:
    cells = []
    for j, v in enumerate(values):
        ref = f"{_col(j)}{r}"
        if isinstance(v, str):
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{v}</t></is></c>')
        else:
            cells.append(f'<c r="{ref}"><v>{v}</v></c>')
    return f'<row r="{r}">{"".join(cells)}</row>'


def _xlsx(path: Path, header: list[object], rows: int, row: list[object]) -> Path:
    """A workbook written by hand (openpyxl would take minutes for the large ones)."""
    body = [_row(1, header)] + [_row(r, row) for r in range(2, rows + 2)]
    sheet = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
             'openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + "".join(body)
             + "</sheetData></worksheet>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", _CT)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _BOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _BOOK_RELS)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
    return path


def test_handmade_workbook_reads(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "ok.xlsx", ["a", "b"], 3, [1, "x"])
    df = read_table(path, max_bytes=APP_BYTES)
    assert list(df.columns) == ["a", "b"] and len(df) == 3


def test_xlsx_xml_bomb_refused_on_its_uncompressed_size(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "bomb.xlsx", ["a", "b", "c"], 200_000, [1, 2, 3])
    assert path.stat().st_size < 3_000_000
    with zipfile.ZipFile(path) as zf:
        assert sum(i.file_size for i in zf.infolist()) > 3 * APP_BYTES
    with pytest.raises(FileTooLargeError) as err:
        read_table(path, max_bytes=APP_BYTES)
    assert "XML" in str(err.value) and str(path) in str(err.value)


def test_xlsx_rows_and_columns_counted_on_the_xml(tmp_path: Path) -> None:
    long = _xlsx(tmp_path / "long.xlsx", ["a"], 150, [1])
    with pytest.raises(FileTooLargeError, match="100 lignes"):
        read_table(long, limits=TableLimits(max_rows=100))
    wide = _xlsx(tmp_path / "wide.xlsx", [f"c{i}" for i in range(MAX_COLUMNS + 1)], 2,
                 [1] * (MAX_COLUMNS + 1))
    with pytest.raises(FileTooLargeError, match=f"{MAX_COLUMNS + 1} colonnes"):
        read_table(wide)
    assert len(read_table(_xlsx(tmp_path / "fine.xlsx", ["a"], 100, [1]),
                          limits=TableLimits(max_rows=100))) == 100


def test_not_a_zip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "faux.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip" * 10)
    with pytest.raises(InputError, match="XLSX"):
        read_table(path)


def test_the_time_table_reader_can_raise_the_column_limit(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    pd.DataFrame([[1] * 600], columns=[f"d{i}" for i in range(600)]).to_csv(path, index=False)
    assert read_table(path, limits=TableLimits(max_columns=1000)).shape == (1, 600)
