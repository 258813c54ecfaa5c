"""Exports that never mislead (issue 13, part 3).

- A stale export (made from an earlier run of the folder) is detected, removed and redone
  by ``run``, ``export`` and ``rapport``; every export records the run digest it was made
  from (``provenance_export.json``, XLSX properties and method sheet, DOCX properties,
  HTML ``<meta>``).
- ``export`` without ``--formats`` writes what the README says, French-Excel CSV included.
- Partial régions, EPCI, cours d'appel and national totals say so: on a small synthetic run
  of real commune codes (no ``../shared`` needed) and on the Massif Central run.
- An EPCI line means the same in the app, the XLSX, the CSV and the report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from coverage.cli import main
from coverage.cog import national_communes
from coverage.export import (
    DEFAULT_EXPORT_FORMATS,
    EXPORT_RECORD,
    epci_departement_table,
    export_departement,
    export_status,
    remove_stale,
    run_digest,
)
from coverage.export.provenance import STALE_NOTE
from coverage.results import RunOutputs
from coverage.settings import NO_SERVICE
from coverage.whitezones import (
    FRANCE_PARTIAL_CODE,
    access_table,
    coverage_tables,
)

REPO = Path(__file__).resolve().parents[1]
MF, ER = "mediation_familiale", "espace_rencontre"
MILLAU = "241200567"  # CC de Millau Grands Causses: 14 communes in 12, one in 48


# --- helpers -----------------------------------------------------------------------------
def _copy_run(src: Path, dst: Path) -> Path:
    """Copy a finished run folder without its exports (the session run stays untouched)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("exports", ".cache"))
    return dst


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _xlsx_sheet(path: Path, sheet: str) -> pd.DataFrame:
    """Return a table sheet of an export's workbook, keyed by its row of column codes."""
    ws = load_workbook(path, read_only=True)[sheet]
    rows = list(ws.iter_rows(values_only=True))
    codes_at = next(i for i, r in enumerate(rows) if r and "type_service" in r)
    return pd.DataFrame(rows[codes_at + 1:], columns=list(rows[codes_at]))


def _method(path: Path) -> dict[str, str]:
    ws = load_workbook(path, read_only=True)["Sources et méthode"]
    return {str(r[0]): str(r[1]) for r in ws.iter_rows(min_row=2, values_only=True)}


# --- 1. stale exports --------------------------------------------------------------------
def test_stale_export_is_detected_removed_and_redone(
        demo_proxy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _copy_run(demo_proxy_run, tmp_path / "run")
    outside = tmp_path / "livrables"
    _cli(capsys, "export", "--dept", "ZA", "--run", str(run_dir))
    _cli(capsys, "export", "--dept", "ZA", "--run", str(run_dir), "--out", str(outside))
    _cli(capsys, "rapport", "--dept", "ZA", "--run", str(run_dir), "--out", str(outside))
    old = run_digest(RunOutputs.load(run_dir))
    inside = run_dir / "exports" / "ZA"
    for folder in (inside, outside):
        assert export_status(folder, old).state == "a_jour"
        record = json.loads((folder / EXPORT_RECORD).read_text(encoding="utf-8"))
        assert record["empreinte_calcul"] == old
        assert all((folder / rel).is_file() for rel in record["fichiers"])
    record = json.loads((outside / EXPORT_RECORD).read_text(encoding="utf-8"))
    assert {"ZA_zones_blanches.xlsx", "ZA_rapport.docx", "ZA_rapport.html"} <= set(
        record["fichiers"])
    wb = load_workbook(outside / "ZA_zones_blanches.xlsx")
    assert wb.properties.identifier == old
    assert _method(outside / "ZA_zones_blanches.xlsx")["Empreinte du calcul"].startswith(old)
    assert f'content="{old}"' in (outside / "ZA_rapport.html").read_text(encoding="utf-8")

    # the folder is rewritten by a run with one more threshold
    out = _cli(capsys, "run", "--out", str(run_dir), "--engine", "proxy", "--no-isochrones",
               "--thresholds", "20,30,45,60", "--workers", "1")
    new = run_digest(RunOutputs.load(run_dir))
    assert new != old
    # `run` removed the stale exports of its own exports/ folder …
    assert "périmés" in out
    assert not (inside / "ZA_zones_blanches.xlsx").exists()
    assert not (inside / EXPORT_RECORD).exists()
    # … and the exports elsewhere are detected stale, then redone by rapport and export
    assert export_status(outside, new).stale
    out = _cli(capsys, "rapport", "--dept", "ZA", "--run", str(run_dir), "--out",
               str(outside))
    assert "périmés" in out and old[:12] in out
    assert not (outside / "ZA_zones_blanches.xlsx").exists()  # the old export's workbook
    out = _cli(capsys, "export", "--dept", "ZA", "--run", str(run_dir), "--out",
               str(outside))
    assert "périmé" not in out  # the report already made the folder current
    assert export_status(outside, new).state == "a_jour"
    record = json.loads((outside / EXPORT_RECORD).read_text(encoding="utf-8"))
    assert record["empreinte_calcul"] == new
    assert {"ZA_zones_blanches.xlsx", "ZA_rapport.docx"} <= set(record["fichiers"])
    assert load_workbook(outside / "ZA_zones_blanches.xlsx").properties.identifier == new
    assert "60" in _method(outside / "ZA_zones_blanches.xlsx")["Seuils (minutes)"]


def test_a_stale_file_edited_since_is_kept_and_named(tmp_path: Path) -> None:
    from test_export import make_run

    run = make_run(tmp_path)
    out = tmp_path / "exp"
    files = export_departement(run, "ZA", formats=["csv"], out_dir=out)
    assert export_status(out, run_digest(run)).state == "a_jour"
    edited = out / "tables" / "acces_communes.csv"
    edited.write_text(edited.read_text(encoding="utf-8") + "# note\n", encoding="utf-8")
    removed = remove_stale(out, "0" * 64)  # as if the run had been rewritten
    assert edited.exists() and edited not in removed
    assert (out / "tables" / "zones_blanches.csv") in removed
    assert all(not p.exists() for p in files if p != edited)
    assert "tables/acces_communes.csv" in (out / STALE_NOTE).read_text(encoding="utf-8")
    assert export_status(out, run_digest(run)).state == "absent"
    # a fresh export of the current run makes the folder current again
    export_departement(run, "ZA", formats=["csv"], out_dir=out)
    assert export_status(out, run_digest(run)).state == "a_jour"
    assert not (out / STALE_NOTE).exists()


# --- 2. default formats ------------------------------------------------------------------
def test_default_formats_are_those_of_the_readme(demo_proxy_run: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert DEFAULT_EXPORT_FORMATS == ("csv", "csv_fr", "xlsx", "gpkg", "png")
    assert f"--formats {','.join(DEFAULT_EXPORT_FORMATS)}" in readme
    assert "# XLSX, CSV (2 variants), GeoPackage, PNG map" in readme
    out = tmp_path / "exp"
    printed = _cli(capsys, "export", "--dept", "ZA", "--run", str(demo_proxy_run), "--out",
                   str(out))
    listed = {Path(line.strip()).relative_to(out).as_posix()
              for line in printed.splitlines() if line.startswith("  ")}
    tops = {p.split("/")[0] for p in listed}
    assert {"tables", "csv_fr", "ZA_zones_blanches.xlsx", "ZA_zones_blanches.gpkg",
            "LISEZMOI.txt"} <= tops
    assert any(p.endswith(".png") for p in tops)
    assert not any(p.endswith(".parquet") for p in listed)  # parquet: with --formats all
    assert "listes_attente" not in tops  # png_attente: with --formats all
    # the CSV for French Excel: BOM, « ; », decimal comma, CRLF
    raw = (out / "csv_fr" / "acces_communes.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    header, first = text.split("\r\n")[:2]
    assert ";" in header and "," not in header
    frame = pd.read_csv(out / "csv_fr" / "acces_communes.csv", sep=";", decimal=",",
                        encoding="utf-8-sig", dtype={"code_insee": str})
    plain = pd.read_csv(out / "tables" / "acces_communes.csv", dtype={"code_insee": str})
    assert np.allclose(frame["minutes"], plain["minutes"], equal_nan=True)
    assert any("," in cell for cell in first.split(";"))  # a decimal comma


# --- 3. partial aggregates: synthetic run of real codes ----------------------------------
def _real_communes(codes: list[str]) -> pd.DataFrame:
    nat = national_communes().set_index("code_insee").loc[codes].reset_index()
    nat["population"] = nat["population"].astype("int64")
    nat["densite"] = 4
    nat["rural"] = True
    return nat


def _tables_of(codes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame,
                                          dict[str, pd.DataFrame]]:
    communes = _real_communes(codes)
    # minutes made up: every other commune beyond 30 minutes
    nearest = pd.DataFrame([
        {"code_insee": c, "type_service": t, "minutes": 10.0 + 25.0 * (i % 2),
         "service_id": "S1", "distance_km": 9.0, "moteur": "road"}
        for i, c in enumerate(codes) for t in (MF, ER)])
    access = access_table(communes, nearest)
    return communes, access, coverage_tables(access, communes, [30.0])


def _massif_codes() -> list[str]:
    nat = national_communes()
    millau = nat[nat["code_epci"] == MILLAU]["code_insee"].tolist()
    cantal = nat[nat["code_dep"] == "15"]["code_insee"].head(3).tolist()
    return millau + cantal


def _one(table: pd.DataFrame, column: str, value: str) -> pd.Series:
    rows = table[(table[column].astype(str) == value) & (table["type_service"] == NO_SERVICE)
                 & np.isclose(table["seuil_minutes"], 30.0)]
    assert len(rows) == 1, (column, value)
    return rows.iloc[0]


def test_partial_units_on_a_synthetic_three_departement_run() -> None:
    _communes, _access, tables = _tables_of(_massif_codes())
    courts = tables["couverture_cours_appel"]
    for court, missing in (("Riom", "03,43,63"), ("Nîmes", "07,30,84"),
                           ("Montpellier", "11,34,66")):
        row = _one(courts, "cour_appel", court)
        assert bool(row["couverture_partielle"]) and row["departements_manquants"] == missing
    regions = tables["couverture_regions"]
    occitanie = _one(regions, "code_reg", "76")
    assert bool(occitanie["couverture_partielle"])
    assert occitanie["departements_manquants"].split(",") == [
        "09", "11", "30", "31", "32", "34", "46", "65", "66", "81", "82"]
    epci = tables["couverture_epci"]
    millau = _one(epci, "code_epci", MILLAU)  # its départements 12 and 48 are both here
    assert not bool(millau["couverture_partielle"]) and millau["departements_manquants"] == ""
    france = tables["couverture_france"]
    assert set(france["territoire"]) == {FRANCE_PARTIAL_CODE}
    assert set(france["perimetre"]) == {"3 départements : 12, 15, 48"}
    assert france["couverture_partielle"].all()
    missing = france["departements_manquants"].iloc[0].split(",")
    assert len(missing) == 101 - 3 and {"2A", "971", "976"} <= set(missing)
    assert not {"12", "15", "48"} & set(missing)


def test_an_epci_cut_by_the_run_is_partial() -> None:
    nat = national_communes()
    lozere_only = nat[(nat["code_epci"] == MILLAU) & (nat["code_dep"] == "48")]
    _c, _a, tables = _tables_of(lozere_only["code_insee"].tolist())
    millau = _one(tables["couverture_epci"], "code_epci", MILLAU)
    assert bool(millau["couverture_partielle"]) and millau["departements_manquants"] == "12"
    france = _one(tables["couverture_france"], "territoire", FRANCE_PARTIAL_CODE)
    assert france["perimetre"] == "1 département : 48"


def test_epci_line_of_a_departement_and_the_whole_epci_beside() -> None:
    communes, access, tables = _tables_of(_massif_codes())
    lozere = communes["code_dep"] == "48"
    line = epci_departement_table(access[access["code_dep"] == "48"], communes[lozere],
                                  [30.0], "48", tables["couverture_epci"])
    row = _one(line, "code_epci", MILLAU)
    nat = national_communes()
    in_48 = nat[(nat["code_epci"] == MILLAU) & (nat["code_dep"] == "48")]["population"]
    whole = nat[nat["code_epci"] == MILLAU]["population"]
    assert row["population"] == int(in_48.sum())
    assert row["population_epci"] == int(whole.sum())
    assert row["population_epci"] > row["population"]
    assert bool(row["couverture_partielle"]) and row["departements_manquants"] == "12"
    assert row["code_dep"] == "48"


# --- 3 and 4 on the Massif Central run (../shared/data) ----------------------------------
@pytest.fixture(scope="module")
def massif_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_whitezones import _massif_central_inputs

    from coverage.batch import RunOptions, run_batch

    run_dir = tmp_path_factory.mktemp("honest_mc") / "mc_proxy"
    inputs = _massif_central_inputs(shared_data)
    inputs.services["nom"] = inputs.services["organisme"]  # the contract's name column
    run_batch(inputs, out_dir=run_dir,
              options=RunOptions(workers=1, isochrones=False, engine="proxy"))
    return run_dir


@pytest.mark.shared
def test_massif_central_partial_flags_and_millau_everywhere(massif_run: Path,
                                                            tmp_path: Path) -> None:
    run = RunOutputs.load(massif_run)
    france = run.tables["couverture_france"]
    assert set(france["perimetre"]) == {"3 départements : 12, 15, 48"}
    assert set(france["territoire"]) == {FRANCE_PARTIAL_CODE}
    courts = run.tables["couverture_cours_appel"]
    assert _one(courts, "cour_appel", "Riom")["departements_manquants"] == "03,43,63"
    regions = run.tables["couverture_regions"]
    assert bool(_one(regions, "code_reg", "84")["couverture_partielle"])  # AURA: only 15

    files = export_departement(run, "48", formats=["csv", "csv_fr", "xlsx"],
                               out_dir=tmp_path / "e48")
    xlsx = next(p for p in files if p.suffix == ".xlsx")
    sheet = _xlsx_sheet(xlsx, "EPCI")
    at30 = sheet[(sheet["code_epci"] == MILLAU) & (sheet["type_service"] == NO_SERVICE)
                 & (sheet["seuil_minutes"] == 30)].iloc[0]
    csv = pd.read_csv(tmp_path / "e48" / "tables" / "couverture_epci_departement.csv",
                      dtype={"code_epci": str, "code_dep": str})
    from_csv = csv[(csv["code_epci"] == MILLAU) & (csv["type_service"] == NO_SERVICE)
                   & (csv["seuil_minutes"] == 30)].iloc[0]
    # the run's communes of Millau's EPCI in Lozère, and the whole EPCI in the run
    communes = run.communes
    mine = communes[(communes["code_epci"] == MILLAU)]
    assert at30["population"] == from_csv["population"] == int(
        mine.loc[mine["code_dep"] == "48", "population"].sum())
    assert at30["population_epci"] == from_csv["population_epci"] == int(
        mine["population"].sum())
    assert at30["population"] < at30["population_epci"]
    assert bool(at30["couverture_partielle"]) and at30["departements_manquants"] == "12"
    _app_epci_equals_exports(massif_run, "48", tmp_path / "app48",
                             monkeypatch=pytest.MonkeyPatch.context)


# --- 4 and 5: the app ---------------------------------------------------------------------
def _open_app(run_dir: Path, dept: str, mp: pytest.MonkeyPatch):  # -> AppTest
    from streamlit.testing.v1 import AppTest

    from coverage.app import state

    mp.setenv(state.ENV_RUN_DIR, str(run_dir))
    mp.delenv(state.ENV_TILES_URL, raising=False)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    at.run()
    at.selectbox(key="dept").set_value(dept).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def _app_epci_equals_exports(run_dir: Path, dept: str, out: Path, *, monkeypatch) -> None:
    """The EPCI table of the app's « Zones blanches » page = the XLSX, CSV and report rows."""
    from coverage.app import state
    from coverage.export.rapport import build_report
    from coverage.labels import fr_int, type_label

    with monkeypatch() as mp:
        at = _open_app(run_dir, dept, mp)
        at.switch_page("coverage/app/zones_blanches.py").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        sel = at.session_state[state.SELECTION_KEY]
        # the EPCI tab: its main table, then the « Autres colonnes » tables (same rows,
        # same order, each starting with the EPCI's name and code)
        parts = [d.value.reset_index(drop=True) for d in at.dataframe
                 if "nom_epci" in d.value.columns and "code_insee" not in d.value.columns]
        assert len(parts) >= 2 and all(len(t) == len(parts[0]) for t in parts)
        app = pd.concat(parts, axis=1)
        app = app.loc[:, ~app.columns.duplicated()].set_index("code_epci")
    run = RunOutputs.load(run_dir)
    files = export_departement(run, dept, formats=["csv", "xlsx"], out_dir=out,
                               map_type=sel.type_service, map_threshold=sel.threshold_min)
    sheet = _xlsx_sheet(next(p for p in files if p.suffix == ".xlsx"), "EPCI")
    sheet = sheet[(sheet["type_service"] == sel.type_service)
                  & np.isclose(sheet["seuil_minutes"].astype(float), sel.threshold_min)]
    sheet = sheet.set_index(sheet["code_epci"].astype(str))
    csv = pd.read_csv(out / "tables" / "couverture_epci_departement.csv",
                      dtype={"code_epci": str, "code_dep": str})
    csv = csv[(csv["type_service"] == sel.type_service)
              & np.isclose(csv["seuil_minutes"], sel.threshold_min)].set_index("code_epci")
    assert sorted(app.index.astype(str)) == sorted(sheet.index) == sorted(csv.index)
    assert len(app) > 0
    for col in ("population", "population_couverte", "communes_zone_blanche",
                "population_zone_blanche", "population_epci", "population_zone_blanche_epci"):
        for code in sheet.index:
            a, x, c = app.loc[code, col], sheet.loc[code, col], csv.loc[code, col]
            if pd.isna(a):
                assert x is None and pd.isna(c), (code, col)
            else:
                assert int(a) == int(x) == int(c), (code, col, a, x, c)
    for code in sheet.index:
        assert bool(app.loc[code, "couverture_partielle"]) == bool(
            sheet.loc[code, "couverture_partielle"])
    # the report's EPCI table: the same populations (communes of the département)
    report = build_report(run, dept, seuil=sel.threshold_min)
    table = next(b for b in report.blocks if b.kind == "table" and b.text.startswith("EPCI"))
    col = table.columns.index("Population (communes du département)")
    names = dict(zip(sheet["nom_epci"], sheet["population"], strict=True))
    rows = [r for r in table.rows if r[1] == type_label(sel.type_service)]
    assert sorted(r[0] for r in rows) == sorted(names)
    for r in rows:
        assert r[col] == fr_int(int(names[r[0]])), r


def test_app_epci_table_equals_the_exports_demo(demo_proxy_run: Path,
                                               tmp_path: Path) -> None:
    run_dir = _copy_run(demo_proxy_run, tmp_path / "run")
    _app_epci_equals_exports(run_dir, "ZA", tmp_path / "exp",
                             monkeypatch=pytest.MonkeyPatch.context)


def test_app_exports_page_builds_each_file_on_demand(demo_proxy_run: Path,
                                                     tmp_path: Path) -> None:
    from coverage.app import views

    run_dir = _copy_run(demo_proxy_run, tmp_path / "run")
    stale = run_dir / "exports" / "ZA"
    stale.mkdir(parents=True)
    (stale / EXPORT_RECORD).write_text(json.dumps({
        "format": "zones-blanches-export", "empreinte_calcul": "0" * 64, "fichiers": {}}),
        encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        at = _open_app(run_dir, "ZA", mp)
        at.switch_page("coverage/app/exports.py").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert any("calcul antérieur" in w.value for w in at.warning)  # the stale folder
        assert not at.get("download_button")  # nothing built before it is asked for
        keys = [b.key for b in at.button]
        assert [k for k in keys if k.startswith("build_")] == [
            f"build_{k}" for k in views.EXPORT_ITEMS]
        at.button(key="build_xlsx").click().run()
        labels = [b.proto.label for b in at.get("download_button")]
        assert len(labels) == 1 and labels[0].startswith(views.EXPORT_ITEMS["xlsx"][0])
        assert "ZA_zones_blanches.xlsx" in labels[0]
        at.button(key="build_csv_fr").click().run()  # the first file stays offered
        labels = [b.proto.label for b in at.get("download_button")]
        assert len(labels) == 2 and any("ZA_csv_fr.zip" in lab for lab in labels)
        assert not at.exception and not at.error
