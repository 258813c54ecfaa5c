"""Several waiting-list returns (CAF, MSA, service): provenance, periods, reconciliation,
conflicts, the shared follow-up table (secrecy, XLSX, CSV) and the CLI (issue 16)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from coverage.cli import main
from coverage.errors import DuplicateIdError, InputError
from coverage.files import sha256_file
from coverage.io.waiting import (
    WaitingFile,
    load_waiting,
    load_waiting_files,
    normalise_source,
    parse_period,
    parse_waiting_arg,
    shift_period,
    source_from_name,
    waiting_files,
)
from coverage.schemas import CONFLITS_LISTES_ATTENTE, SUIVI_LISTES_ATTENTE
from coverage.settings import Settings
from coverage.waiting import (
    mixed_periods_note,
    reconcile_returns,
    series_data,
    waiting_indicators,
)
from coverage.waiting.followup import (
    FOLLOWUP_SHEETS,
    FollowupInputs,
    followup_table,
    mask_followup,
    write_followup,
)

SERVICE = """\
code_dep,type_service,periode,service_id,nom_service,familles_en_attente,delai_moyen_jours
15,ER,2024,ER15A,Espace A,6,30
15,ER,2025,ER15A,Espace A,8,40
15,ER,2025,ER15B,=HYPERLINK("http://x"),3,20
"""
CAF = """\
source;code_dep;type_service;periode;service_id;familles_en_attente;delai_moyen_jours;\
date_retour
CAF;15;ER;2025;ER15A;9;40;2026-01-15
CAF;15;ER;2025;ER15B;3;25;2026-01-15
CAF du Cantal;15;MF;2025-T1;;12;50;2025-04-10
"""
MSA = """source,code_dep,type_service,periode,familles_en_attente,delai_moyen_jours,date_retour
MSA,15,MF,2025-T1,14,55,2025-04-20
MSA,15,MF,2024,10,45,2025-01-20
MSA,15,MF,2024-T1,2,30,2024-04-20
"""
POP = pd.Series({"15": 200_000})


@pytest.fixture
def returns(tmp_path: Path) -> list[Path]:
    """Three demo-like returns: a service's own file, the CAF's and the MSA's."""
    folder = tmp_path / "retours"
    folder.mkdir()
    paths = []
    for name, text in (("service_er15.csv", SERVICE), ("retours_caf.csv", CAF),
                       ("retours_msa.csv", MSA)):
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    return paths


def _services() -> pd.DataFrame:
    return pd.DataFrame({
        "service_id": ["ER15A", "ER15B", "ER15C", "MF15"],
        "type_service": ["espace_rencontre"] * 3 + ["mediation_familiale"],
        "nom": ["Espace A", "Espace B", "Espace C", "Médiation"],
        "code_insee": ["15014"] * 4})


def _couverture() -> pd.DataFrame:
    return pd.DataFrame({
        "code_dep": ["15", "15", "15"],
        "type_service": ["espace_rencontre", "mediation_familiale", "espace_rencontre"],
        "seuil_minutes": [30.0, 30.0, 45.0], "population": [200_000] * 3,
        "population_zone_blanche": [20_000, 30_000, 5_000]})


def _row(df: pd.DataFrame, typ: str, periode: str, sid: str | None = None) -> pd.Series:
    sel = df[(df["type_service"] == typ) & (df["periode"] == periode)]
    if "service_id" in df.columns:
        sel = sel[sel["service_id"] == sid] if sid else sel[sel["service_id"].isna()]
    assert len(sel) == 1, sel
    return sel.iloc[0]


# --- periods and sources -------------------------------------------------------------------
@pytest.mark.parametrize(("cell", "label", "kind", "end"), [
    ("2025", "2025", "annee", dt.date(2025, 12, 31)),
    ("2025.0", "2025", "annee", dt.date(2025, 12, 31)),
    ("2025-S1", "2025-S1", "semestre", dt.date(2025, 6, 30)),
    ("S2 2024", "2024-S2", "semestre", dt.date(2024, 12, 31)),
    ("2025-T3", "2025-T3", "trimestre", dt.date(2025, 9, 30)),
    ("2025-q1", "2025-T1", "trimestre", dt.date(2025, 3, 31)),
    ("2025-03", "2025-03", "mois", dt.date(2025, 3, 31)),
    ("02/2024", "2024-02", "mois", dt.date(2024, 2, 29)),
    ("2025-03-15", "2025-03-15", "date", dt.date(2025, 3, 15)),
    ("15/03/2025", "2025-03-15", "date", dt.date(2025, 3, 15)),
    ("2023-12-31 00:00:00", "2023-12-31", "date", dt.date(2023, 12, 31)),
])
def test_parse_period(cell: str, label: str, kind: str, end: dt.date) -> None:
    p = parse_period(cell)
    assert p is not None
    assert (p.label, p.kind, p.end) == (label, kind, end)


@pytest.mark.parametrize("cell", ["2025-S3", "2025-T5", "2025-13", "2025-02-30", "hiver",
                                  "", None])
def test_parse_period_rejects(cell: object) -> None:
    assert parse_period(cell) is None


def test_shift_period() -> None:
    assert shift_period("2025", "annee", steps=-1) == "2024"
    assert shift_period("2025-S1", "semestre", steps=-1) == "2024-S2"
    assert shift_period("2025-T1", "trimestre", steps=-1) == "2024-T4"
    assert shift_period("2025-01", "mois", steps=-1) == "2024-12"
    assert shift_period("2025-T3", "trimestre", years=-1) == "2024-T3"
    assert shift_period("2025-03-31", "date", years=-1) == "2024-03-31"
    assert shift_period("2024-02-29", "date", years=-1) is None


@pytest.mark.parametrize(("cell", "source"), [
    ("CAF", "CAF"), ("caf du Cantal", "CAF"), ("CNAF", "CAF"), ("msa", "MSA"),
    ("CCMSA", "MSA"), ("Cour d'appel de Riom", "cour d'appel"), ("CA", "cour d'appel"),
    ("service", "service"), ("Le service", "service"), ("autre", "autre"),
    ("Mairie", None), ("", None),
])
def test_normalise_source(cell: str, source: str | None) -> None:
    assert normalise_source(cell) == source


def test_source_from_file_name_and_argument(tmp_path: Path) -> None:
    assert source_from_name("caf_2025.xlsx") == "CAF"
    assert source_from_name("/x/msa-retours.csv") == "MSA"
    assert source_from_name("cour_appel_riom.csv") == "cour d'appel"
    assert source_from_name("retours.csv") is None
    assert parse_waiting_arg("CAF=r.csv") == WaitingFile(Path("r.csv"), "CAF")
    assert parse_waiting_arg("a=b.csv") == WaitingFile(Path("a=b.csv"))
    (tmp_path / "b.xlsx").write_bytes(b"x")
    (tmp_path / "a.csv").write_text("x", encoding="utf-8")
    (tmp_path / ".cache.csv").write_text("x", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    found = waiting_files([f"MSA={tmp_path}"])
    assert [(f.path.name, f.source) for f in found] == [("a.csv", "MSA"), ("b.xlsx", "MSA")]
    empty = tmp_path / "vide"
    empty.mkdir()
    with pytest.raises(InputError, match="dossier contenant"):
        waiting_files([empty])


def test_loader_keeps_provenance(returns: list[Path]) -> None:
    service = load_waiting(returns[0]).data
    assert set(service["source"]) == {"service"}  # from the file name
    assert set(service["fichier"]) == {"service_er15.csv"}
    assert service["ligne"].tolist() == [1, 2, 3]
    caf = load_waiting(returns[1]).data
    assert set(caf["source"]) == {"CAF"}  # « CAF du Cantal » read as CAF
    assert caf["date_retour"].iloc[0] == pd.Timestamp("2026-01-15")
    assert caf["type_periode"].tolist() == ["annee", "annee", "trimestre"]
    assert caf["annee"].tolist() == [2025, 2025, 2025]
    given = load_waiting(returns[2], source="autre").data  # cells win over the file's source
    assert set(given["source"]) == {"MSA"}


def test_annee_and_periode_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("code_dep,type_service,annee,periode,familles_en_attente\n"
                    "15,ER,2024,2025-T1,4\n15,ER,2025,2025-T2,4\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_waiting(path)
    assert [(p.row, p.column) for p in exc.value.problems] == [(1, "annee")]


# --- reconciliation -------------------------------------------------------------------------
def test_reconciled_values_and_conflicts(returns: list[Path]) -> None:
    loaded = load_waiting_files(returns)
    assert loaded.files["fichier"].tolist() == ["service_er15.csv", "retours_caf.csv",
                                                "retours_msa.csv"]
    assert loaded.files["source"].tolist() == ["service", "CAF", "MSA"]
    assert loaded.files["sha256"].tolist() == [sha256_file(p) for p in returns]
    rows, conflicts = reconcile_returns(loaded.rows)
    assert len(rows) == 6  # 9 rows, 3 keys given twice
    a = _row(rows, "espace_rencontre", "2025", "ER15A")
    assert a["familles_en_attente"] == 8  # the service's own return first (CAF said 9)
    assert a["source"] == "service" and a["sources"] == "service ; CAF"
    b = _row(rows, "espace_rencontre", "2025", "ER15B")
    assert b["delai_moyen_jours"] == 20.0
    mf = _row(rows, "mediation_familiale", "2025-T1")
    assert mf["familles_en_attente"] == 14  # the most recent date_retour (MSA, 20 April)
    assert mf["source"] == "MSA"

    assert list(conflicts.columns) == CONFLITS_LISTES_ATTENTE.columns
    got = {(r.service_id if isinstance(r.service_id, str) else "", r.colonne,
            r.valeur_retenue, r.source_retenue, r.valeur_ecartee, r.source_ecartee, r.regle)
           for r in conflicts.itertuples()}
    assert got == {
        ("ER15A", "familles_en_attente", 8.0, "service", 9.0, "CAF", "retour du service"),
        ("ER15B", "delai_moyen_jours", 20.0, "service", 25.0, "CAF", "retour du service"),
        ("", "familles_en_attente", 14.0, "MSA", 12.0, "CAF",
         "date de retour la plus récente"),
        ("", "delai_moyen_jours", 55.0, "MSA", 50.0, "CAF",
         "date de retour la plus récente"),
    }
    er = conflicts[conflicts["service_id"] == "ER15A"].iloc[0]
    assert (er["fichier_retenu"], er["ligne_retenue"]) == ("service_er15.csv", 2)
    assert (er["fichier_ecarte"], er["ligne_ecartee"]) == ("retours_caf.csv", 1)

    ind = waiting_indicators(rows, POP)
    assert _row(ind, "espace_rencontre", "2025")["familles_en_attente"] == 11
    # the same figures when the unreconciled rows are given (they are reconciled first)
    assert waiting_indicators(loaded.rows, POP)["familles_en_attente"].tolist() == \
        ind["familles_en_attente"].tolist()


def test_file_order_and_missing_values(tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    second = tmp_path / "b.csv"
    first.write_text("code_dep,type_service,annee,familles_en_attente,delai_moyen_jours\n"
                     "15,ER,2024,7,30\n", encoding="utf-8")
    second.write_text("code_dep,type_service,annee,familles_en_attente,delai_moyen_jours\n"
                      "15,ER,2024,9,\n", encoding="utf-8")
    rows, conflicts = reconcile_returns(load_waiting_files([first, second]).rows)
    assert rows["familles_en_attente"].tolist() == [9]  # the file given last
    assert rows["delai_moyen_jours"].tolist() == [30.0]  # reported by one file only: kept
    assert conflicts["regle"].tolist() == ["fichier donné en dernier"]
    rows, _ = reconcile_returns(load_waiting_files([second, first]).rows)
    assert rows["familles_en_attente"].tolist() == [7]


def test_departement_row_against_service_rows(tmp_path: Path) -> None:
    services = tmp_path / "service.csv"
    caf = tmp_path / "caf.csv"
    services.write_text("code_dep,type_service,annee,service_id,familles_en_attente\n"
                        "15,ER,2024,A,6\n15,ER,2024,B,7\n", encoding="utf-8")
    caf.write_text("code_dep,type_service,annee,familles_en_attente\n15,ER,2024,20\n",
                   encoding="utf-8")
    rows, conflicts = reconcile_returns(load_waiting_files([services, caf]).rows)
    assert sorted(rows["service_id"]) == ["A", "B"]
    c = conflicts.iloc[0]
    assert (c["valeur_retenue"], c["valeur_ecartee"], c["source_ecartee"]) == (13.0, 20.0,
                                                                              "CAF")
    assert c["regle"] == "lignes par service plutôt que ligne départementale"


def test_duplicates_within_one_file_name_the_rows(returns: list[Path]) -> None:
    returns[1].write_text(CAF + "CAF;15;ER;2025;ER15A;10;41;2026-01-16\n", encoding="utf-8")
    with pytest.raises(DuplicateIdError) as exc:
        load_waiting_files(returns)
    (problem,) = exc.value.problems
    assert problem.file.endswith("retours_caf.csv") and problem.row == 4
    assert "comme la ligne 1" in problem.expected


def test_problems_of_every_file_together(returns: list[Path]) -> None:
    returns[0].write_text(SERVICE.replace(",6,30", ",-6,30"), encoding="utf-8")
    returns[2].write_text(MSA.replace("MSA,15,MF,2024,", "Mairie,15,MF,2024,"),
                          encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_waiting_files(returns)
    assert [(Path(p.file).name, p.row, p.column) for p in exc.value.problems] == [
        ("service_er15.csv", 1, "familles_en_attente"), ("retours_msa.csv", 2, "source")]


# --- mixed periods --------------------------------------------------------------------------
def test_mixed_periods(returns: list[Path]) -> None:
    rows, _ = reconcile_returns(load_waiting_files(returns).rows)
    ind = waiting_indicators(rows, POP)
    mf = ind[ind["type_service"] == "mediation_familiale"]
    assert mf["periode"].tolist() == ["2024-T1", "2024", "2025-T1"]  # time order
    assert mf["periodes_mixtes"].all()
    assert not ind.loc[ind["type_service"] == "espace_rencontre", "periodes_mixtes"].any()
    q = _row(ind, "mediation_familiale", "2025-T1")
    assert math.isnan(q["familles_en_attente_variation"])  # no 2024-T4: a year is not used
    assert q["variation_annuelle_familles"] == 12  # against 2024-T1
    assert q["date_periode"] == "2025-03-31"
    note = mixed_periods_note(ind, "15", "mediation_familiale")
    assert note is not None and "annuelle, trimestrielle" in note
    assert mixed_periods_note(ind, "15", "espace_rencontre") is None
    s = series_data(ind, "15", "mediation_familiale")
    assert s["date_periode"].dt.month.tolist() == [3, 12, 3]


def test_mixed_series_png_says_so(returns: list[Path], tmp_path: Path) -> None:
    from coverage.export.figures import figure_series

    rows, _ = reconcile_returns(load_waiting_files(returns).rows)
    ind = waiting_indicators(rows, POP)
    fig = figure_series(ind, "15", "mediation_familiale")
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "natures différentes" in texts
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["2024-T1", "2024", "2025-T1"]
    positions = ax.get_xticks()
    # real spacing: 2024-T1 → 2024 is 9 months, 2024 → 2025-T1 is 3 months
    assert positions[1] - positions[0] == pytest.approx(275, abs=1)
    assert positions[2] - positions[1] == pytest.approx(90, abs=1)


# --- the shared follow-up table --------------------------------------------------------------
def _followup(returns: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    loaded = load_waiting_files(returns)
    rows, conflicts = reconcile_returns(loaded.rows)
    ind = waiting_indicators(rows, POP)
    table = followup_table(ind, FollowupInputs(rows, _services(), _couverture()))
    return table, conflicts, loaded.files


def test_followup_table(returns: list[Path]) -> None:
    table, _, _ = _followup(returns)
    assert list(table.columns) == SUIVI_LISTES_ATTENTE.columns
    er = _row(table, "espace_rencontre", "2025")
    assert er["familles_en_attente"] == 11
    assert er["familles_en_attente_variation"] == 5  # 2024: 6
    assert (er["services_attendus"], er["services_declarants"]) == (3, 2)
    assert er["part_services_declarants"] == pytest.approx(2 / 3)
    assert er["services_manquants"] == "ER15C (Espace C)"
    assert er["seuil_minutes"] == 30.0
    assert er["population_zone_blanche"] == 20_000
    assert er["part_population_zone_blanche"] == pytest.approx(0.1)
    assert er["sources"] == "service ; CAF"
    er24 = _row(table, "espace_rencontre", "2024")
    assert er24["services_manquants"] == "ER15B (Espace B), ER15C (Espace C)"
    mf = _row(table, "mediation_familiale", "2025-T1")
    assert pd.isna(mf["services_declarants"])  # a département return: no per-service detail
    assert "natures différentes" in mf["note"]
    assert mf["sources"] == "MSA ; CAF"


def test_secrecy_on_the_shared_table(returns: list[Path]) -> None:
    table, _, _ = _followup(returns)
    masked = mask_followup(table, Settings(secrecy_threshold=5))
    small = _row(masked, "mediation_familiale", "2024-T1")  # 2 families
    assert small["familles_en_attente"] == "< 5"
    assert small["delai_moyen_jours"] == "secret"
    q = _row(masked, "mediation_familiale", "2025-T1")  # 14, but a year before was masked
    assert q["familles_en_attente"] == 14
    assert q["variation_annuelle_familles"] == "secret"
    assert q["variation_delai_annuelle_jours"] == "secret"
    er = _row(masked, "espace_rencontre", "2025")
    assert er["familles_en_attente"] == 11 and er["familles_en_attente_variation"] == 5
    assert _row(table, "mediation_familiale", "2024-T1")["familles_en_attente"] == 2


def test_followup_xlsx_and_csv(returns: list[Path], tmp_path: Path) -> None:
    table, conflicts, files = _followup(returns)
    xlsx, csv = write_followup(tmp_path / "out", table, conflicts=conflicts, sources=files)
    wb = load_workbook(xlsx)
    assert wb.sheetnames == list(FOLLOWUP_SHEETS)
    suivi = wb["Suivi"]
    headers = [c.value for c in suivi[1]]
    assert headers[:3] == ["Code département", "Type de service", "Période"]
    assert "Familles en attente (familles)" in headers
    col = {h: i for i, h in enumerate(headers)}
    values = [[c.value for c in row] for row in suivi.iter_rows(min_row=2)]
    by_period = {(r[col["Type de service"]], r[col["Période"]]): r for r in values}
    er = by_period[("espace_rencontre", "2025")]
    assert er[col["Familles en attente (familles)"]] == 11  # a number, not text
    assert isinstance(er[col["Délai moyen d'attente (jours)"]], float)
    assert by_period[("mediation_familiale", "2024-T1")][
        col["Familles en attente (familles)"]] == "< 5"
    fam_cell = suivi.cell(row=2, column=col["Familles en attente (familles)"] + 1)
    assert fam_cell.number_format == "#,##0"
    sources = [[c.value for c in row] for row in wb["Sources"].iter_rows(min_row=2)]
    assert [r[0] for r in sources] == [p.name for p in returns]
    assert [r[1] for r in sources] == [sha256_file(p) for p in returns]
    assert [r[2] for r in sources] == ["service", "CAF", "MSA"]
    assert wb["Conflits"].max_row == 1 + len(conflicts)
    text = csv.read_text(encoding="utf-8-sig")
    head = text.splitlines()[0]
    assert head.startswith("Code département;Type de service;Période;")
    assert "34,54" in text  # decimal comma (ER 2025 mean delay)


def test_text_cells_never_formulas(tmp_path: Path) -> None:
    table = pd.DataFrame({c: [None] for c in SUIVI_LISTES_ATTENTE.columns})
    table = table.assign(code_dep="15", type_service="espace_rencontre", periode="2025",
                         type_periode="annee", date_periode=dt.date(2025, 12, 31),
                         familles_en_attente=pd.array([12], dtype="Int64"),
                         services_manquants='=HYPERLINK("http://x")', sources="+CAF",
                         note="-1", fictif=False)
    xlsx, csv = write_followup(tmp_path, table, conflicts=pd.DataFrame(),
                               sources=pd.DataFrame({"fichier": ["@x.csv"]}), masked=False)
    wb = load_workbook(xlsx)
    cells = {c.value: c for row in wb["Suivi"].iter_rows(min_row=2) for c in row}
    for text in ("'=HYPERLINK(\"http://x\")", "'+CAF", "'-1"):
        assert text in cells and cells[text].data_type == "s"
    assert wb["Sources"]["A2"].value == "'@x.csv"
    assert "'=HYPERLINK" in csv.read_text(encoding="utf-8-sig")


# --- command line: one clear line per bad cell, nothing written --------------------------------
def _hand_run(root: Path) -> Path:
    """A finished run folder of département 15 written by hand."""
    import json

    import geopandas as gpd
    from shapely.geometry import Point, box

    run_dir = root / "run"
    (run_dir / "tables").mkdir(parents=True)
    _couverture().to_parquet(run_dir / "tables" / "couverture_departements.parquet")
    gpd.GeoDataFrame({"code_insee": ["15014"], "code_dep": ["15"], "population": [200_000]},
                     geometry=[box(2.4, 44.9, 2.5, 45.0)], crs="EPSG:4326").to_parquet(
        run_dir / "communes.parquet")
    gpd.GeoDataFrame(_services(), geometry=[Point(2.45, 44.95)] * 4,
                     crs="EPSG:4326").to_parquet(run_dir / "services.parquet")
    manifest = {"fictif": False, "engine": {"name": "proxy"}, "thresholds_min": [30.0, 45.0],
                "depts": ["15"], "tables": ["couverture_departements"]}
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run_dir


def test_cli_suivi_writes_the_shared_table(returns: list[Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _hand_run(tmp_path)
    code = main(["suivi", "--run", str(run_dir), "--waiting", str(returns[0].parent),
                 "--seuil", "45"])
    assert code == 0, capsys.readouterr().err
    assert (run_dir / "suivi_listes_attente.xlsx").exists()
    table = pd.read_csv(run_dir / "suivi_listes_attente.csv", sep=";", encoding="utf-8-sig",
                        dtype=str)
    assert set(table["Seuil de la zone blanche (min)"]) == {"45,0"}
    assert "suivi_listes_attente.xlsx" in capsys.readouterr().out


BAD_CELLS = [
    ("periode", "2025-X9", "une période : 2025, 2025-S1"),
    ("periode", "2099", "pas une période future"),
    ("familles_en_attente", "-3", "un effectif ≥ 0"),
    ("source", "Mairie", "une source parmi CAF, MSA, cour d'appel, service, autre"),
]


@pytest.mark.parametrize(("column", "value", "expected"), BAD_CELLS)
def test_bad_cell_one_line_nothing_written(returns: list[Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str], column: str,
                                           value: str, expected: str) -> None:
    run_dir = _hand_run(tmp_path)
    bad = returns[2]
    cells = {"source": "MSA", "code_dep": "15", "type_service": "MF", "periode": "2025-T2",
             "familles_en_attente": "7", "delai_moyen_jours": "30",
             "date_retour": "2025-07-01"}
    cells[column] = value
    bad.write_text(MSA + ",".join(cells.values()) + "\n", encoding="utf-8")
    for argv in (["suivi", "--run", str(run_dir), "--waiting", *map(str, returns)],
                 ["validate", "--waiting", *map(str, returns)]):
        before = sorted(p.name for p in run_dir.rglob("*"))
        assert main(argv) != 0
        captured = capsys.readouterr()
        lines = [line for line in (captured.err + captured.out).splitlines()
                 if "retours_msa.csv, ligne" in line]
        assert len(lines) == 1, lines
        assert f"ligne 4, colonne « {column} »" in lines[0] and expected in lines[0]
        assert value in lines[0]
        assert sorted(p.name for p in run_dir.rglob("*")) == before


def test_cli_run_with_bad_returns_writes_nothing(returns: list[Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    returns[1].write_text(CAF.replace("2025-T1", "2025-T7"), encoding="utf-8")
    out = tmp_path / "sortie"
    assert main(["run", "--waiting", *map(str, returns), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "retours_caf.csv, ligne 3, colonne « periode »" in err
    assert not out.exists()


@pytest.mark.slow
def test_cli_run_writes_conflicts_and_followup(tmp_path: Path) -> None:
    """The demo territory with two returns for ZA: the run writes both new outputs."""
    caf = tmp_path / "caf.csv"
    svc = tmp_path / "retours.csv"
    caf.write_text("code_dep,type_service,periode,service_id,familles_en_attente\n"
                   "ZA,MF,2025-T1,MF-01,9\nZA,MF,2025-T2,MF-01,3\n", encoding="utf-8")
    svc.write_text("code_dep,type_service,periode,service_id,familles_en_attente\n"
                   "ZA,MF,2025-T1,MF-01,8\n", encoding="utf-8")
    out = tmp_path / "run"
    code = main(["run", "--waiting", str(caf), f"service={svc}", "--out", str(out),
                 "--engine", "proxy", "--no-isochrones", "--workers", "1"])
    assert code == 0
    conflicts = pd.read_parquet(out / "tables" / "conflits_listes_attente.parquet")
    assert conflicts[["valeur_retenue", "source_retenue", "valeur_ecartee",
                      "source_ecartee"]].values.tolist() == [[8.0, "service", 9.0, "CAF"]]
    wb = load_workbook(out / "suivi_listes_attente.xlsx")
    assert wb.sheetnames == list(FOLLOWUP_SHEETS)
    assert wb["Suivi"]["A1"].value.startswith("DONNÉES FICTIVES")
    ind = pd.read_parquet(out / "tables" / "listes_attente_departements.parquet")
    assert ind["periode"].tolist() == ["2025-T1", "2025-T2"]


def test_same_data_same_bytes(returns: list[Path], tmp_path: Path) -> None:
    """The workbook does not record when it was written: a resumed run is identical."""
    table, conflicts, files = _followup(returns)
    first = write_followup(tmp_path / "a", table, conflicts=conflicts, sources=files)
    again = write_followup(tmp_path / "b", table, conflicts=conflicts, sources=files)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
