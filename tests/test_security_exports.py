"""No formula through the exports: hostile communes and services files, the real CLI.

A communes file and a services file whose names start with ``=``, ``+``, ``-``, ``@`` or a
tab (DDE ``=cmd|' /C calc'!A0``, ``=HYPERLINK(…)``) go through ``zones-blanches run`` then
``zones-blanches export``. The workbook holds no formula cell, every risky text cell is a
string with Excel's quote prefix, the CSV and French CSV cells are quoted with ``'``
(OWASP), and numbers are the run's, unchanged.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from coverage.cli import main
from coverage.demo import demo_paths
from coverage.export.csv_files import write_csv
from coverage.export.xlsx import write_xlsx
from coverage.safe_text import FORMULA_PREFIXES, spreadsheet_safe, spreadsheet_safe_frame
from coverage.schemas import Contract, Field

DDE = "=cmd|' /C calc'!A0"
HYPERLINK = '=HYPERLINK("http://x.invalid","y")'
HOSTILE_COMMUNES = [DDE, "+1+1", "-2+3", "@SUM(A1)", "=1+1 \x01 ctrl"]
HOSTILE_SERVICES = {"nom": DDE, "organisme": "@evil", "adresse": "+33 rue"}


# --- unit: the neutralising functions ----------------------------------------------------
def test_spreadsheet_safe_quotes_risky_text_only() -> None:
    for text in (DDE, "+1", "-x", "@a", "\tx", "\rx", "\uff1d1+1"):
        assert spreadsheet_safe(text) == "'" + text
    for value in ("Saint-Flour", "< 5", "secret", "", -3.5, 0, None, True, np.float64(-1.0)):
        assert spreadsheet_safe(value) is value
    df = pd.DataFrame({"nom": [DDE, "Aval", None], "minutes": [-1.5, 2.0, np.nan],
                       "n": [-3, 4, 5], "cat": pd.Categorical(["-a", "b", "-a"]),
                       "mixed": ["< 5", -2.5, "@x"]})
    safe = spreadsheet_safe_frame(df)
    assert list(safe["nom"][:2]) == ["'" + DDE, "Aval"] and safe["nom"].isna().iloc[2]
    assert safe["minutes"].equals(df["minutes"]) and safe["n"].equals(df["n"])
    assert list(safe["cat"]) == ["'-a", "b", "'-a"]
    assert list(safe["mixed"]) == ["< 5", -2.5, "'@x"]  # a float in a text column stays
    assert list(df["nom"][:1]) == [DDE]  # the input is not modified


def test_write_csv_and_xlsx_neutralise_text_keep_numbers(tmp_path: Path) -> None:
    df = pd.DataFrame({"nom": [DDE, "-2+3", "Aval"], "minutes": [-1.25, 12.5, np.nan],
                       "code": ["=A1", "ZA002", "ZA003"], "masque": ["< 5", -4.5, "secret"]})
    for french in (False, True):
        path = write_csv(df, tmp_path / f"t{french}.csv", french=french)
        sep = ";" if french else ","
        rows = list(csv.reader(path.read_text("utf-8-sig").splitlines(), delimiter=sep))
        assert rows[1][0] == "'" + DDE and rows[2][0] == "'-2+3" and rows[1][2] == "'=A1"
        assert rows[1][1] == ("-1,25" if french else "-1.25")  # numbers as they were
        assert rows[2][3] == ("-4,5" if french else "-4.5")
    contract = Contract("t", "T", (Field("nom", "string", title="Nom"),
                                   Field("minutes", "number", unit="minutes", title="Minutes")))
    path = write_xlsx(tmp_path / "t.xlsx", {"acces_communes": df}, {"acces_communes": contract},
                      [("Source", "=evil()"), ("Note", "ok")])
    wb = load_workbook(path)
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    by_value = {c.value: c for c in cells if c.value is not None}
    assert by_value[DDE].data_type == "s" and by_value[DDE].quotePrefix
    assert by_value["=evil()"].data_type == "s"
    assert by_value[-1.25].data_type == "n"
    assert "=1+1" not in by_value  # nothing made up
    ws = wb["Communes"]
    assert [ws.cell(row=r, column=2).value for r in (3, 4)] == [-1.25, 12.5]


def test_xlsx_control_characters_do_not_break_the_workbook(tmp_path: Path) -> None:
    df = pd.DataFrame({"nom": ["a\x01b", "=\x02"]})
    contract = Contract("t", "T", (Field("nom", "string", title="Nom"),))
    wb = load_workbook(write_xlsx(tmp_path / "c.xlsx", {"acces_communes": df},
                                  {"acces_communes": contract}, []))
    assert [wb["Communes"].cell(row=r, column=1).value for r in (3, 4)] == ["a\ufffdb",
                                                                           "=\ufffd"]


# --- end to end: run then export ----------------------------------------------------------
def _hostile_files(folder: Path) -> tuple[Path, Path]:
    demo = demo_paths()
    communes = gpd.read_file(demo.communes)
    for i, name in enumerate(HOSTILE_COMMUNES):
        communes.loc[i, "nom"] = name
    first_epci = communes.loc[0, "code_epci"]
    communes.loc[communes["code_epci"] == first_epci, "nom_epci"] = HYPERLINK
    communes_path = folder / "communes_hostiles.geojson"
    communes.to_file(communes_path, driver="GeoJSON")
    services = pd.read_csv(demo.services, dtype=str, keep_default_na=False)
    for col, value in HOSTILE_SERVICES.items():
        services.loc[0, col] = value
    services.loc[1, "nom"] = "-1-1"
    services.loc[2, "source"] = HYPERLINK
    # a relative file name starting with "=": the loaders' warnings quote it first
    services_path = folder / "=1+1.csv"
    services.to_csv(services_path, index=False)
    return communes_path, services_path


def _risky(cell: str) -> bool:
    """Return True for a CSV cell a spreadsheet would read as a formula (not a number)."""
    if not cell.startswith(FORMULA_PREFIXES):
        return False
    try:
        return not math.isfinite(float(cell.replace(",", ".")))
    except ValueError:
        return True


@pytest.fixture(scope="module")
def hostile_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    communes, services = _hostile_files(base)
    cwd = Path.cwd()
    os.chdir(base)  # relative paths, as a user types them
    try:
        assert main(["run", "--communes", communes.name, "--services", services.name,
                     "--engine", "proxy", "--out", "run", "--workers", "1",
                     "--no-isochrones", "--thresholds", "30"]) == 0
        assert main(["export", "--dept", "ZA", "--run", "run", "--formats",
                     "csv,csv_fr,xlsx", "--out", "exp"]) == 0
    finally:
        os.chdir(cwd)
    return {"run": base / "run", "exp": base / "exp"}


@pytest.mark.slow
def test_hostile_workbook_has_no_formula(hostile_export: dict[str, Path]) -> None:
    wb = load_workbook(hostile_export["exp"] / "ZA_zones_blanches.xlsx")
    cells = [(ws.title, c) for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert [f"{t}!{c.coordinate}" for t, c in cells if c.data_type == "f"] == []
    texts = {c.value for _, c in cells if isinstance(c.value, str)}
    assert DDE in texts and HYPERLINK in texts  # the names are kept, as text
    risky = [(t, c) for t, c in cells
             if isinstance(c.value, str) and c.value.startswith(FORMULA_PREFIXES)]
    assert risky and all(c.data_type == "s" and c.quotePrefix for _, c in risky)
    method = [c.value for t, c in cells if t == "Sources et méthode"]
    assert any(isinstance(v, str) and "=1+1.csv" in v for v in method)  # the file named


@pytest.mark.slow
def test_hostile_csv_cells_are_quoted(hostile_export: dict[str, Path]) -> None:
    seen_dde = 0
    for folder, sep in (("tables", ","), ("csv_fr", ";")):
        for path in sorted((hostile_export["exp"] / folder).glob("*.csv")):
            rows = list(csv.reader(path.read_text("utf-8-sig").splitlines(), delimiter=sep))
            bad = [cell for row in rows for cell in row if _risky(cell)]
            assert bad == [], f"{path.name}: {bad[:5]}"
            seen_dde += sum(cell == "'" + DDE for row in rows for cell in row)
    assert seen_dde >= 4  # the commune's rows, in both flavours


@pytest.mark.slow
def test_hostile_export_numbers_unchanged(hostile_export: dict[str, Path]) -> None:
    run_access = pd.read_parquet(hostile_export["run"] / "tables" / "acces_communes.parquet")
    run_access = run_access[run_access["code_insee"].str.startswith("ZA")]
    exported = pd.read_csv(hostile_export["exp"] / "tables" / "acces_communes.csv",
                           float_precision="round_trip")
    merged = run_access.merge(exported, on=["code_insee", "type_service"],
                              suffixes=("_run", "_csv"))
    assert len(merged) == len(run_access) > 0
    np.testing.assert_array_equal(merged["minutes_run"].to_numpy(),
                                  merged["minutes_csv"].to_numpy())
    assert (merged["population_run"] == merged["population_csv"]).all()
    french = pd.read_csv(hostile_export["exp"] / "csv_fr" / "acces_communes.csv", sep=";",
                         decimal=",", encoding="utf-8-sig", float_precision="round_trip")
    np.testing.assert_array_equal(np.sort(french["minutes"].to_numpy()),
                                  np.sort(exported["minutes"].to_numpy()))
    wb = load_workbook(hostile_export["exp"] / "ZA_zones_blanches.xlsx")
    ws = wb["Communes"]
    header = [c.value for c in ws[3]]
    col = header.index("minutes") + 1
    xlsx_minutes = [ws.cell(row=r, column=col).value for r in range(4, ws.max_row + 1)]
    # openpyxl stores a float with 16 significant digits ("%.16g"), as it always did
    assert sorted(v for v in xlsx_minutes if v is not None) == sorted(
        float(f"{v:.16g}") for v in run_access["minutes"].dropna())
