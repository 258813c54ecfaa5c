"""``zones-blanches comparer``: two demo runs (FICTIONAL) that differ by one service.

The second run is made here from a copy of the demo services file with one service added;
the communes expected to change are worked out from the two runs' own ``zones_blanches``
tables, never from the comparison code.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import copy_run
from openpyxl import load_workbook

from coverage import maps
from coverage.batch import RunOptions, run_batch
from coverage.cli import main
from coverage.demo import demo_paths
from coverage.errors import CoverageError
from coverage.export.compare import (
    CHANGE_COLUMNS,
    COMPARISON_FILES,
    compare_runs,
    comparison_map,
    standalone_html,
    write_comparison,
)
from coverage.export.provenance import read_record, run_digest
from coverage.io.inputs import load_inputs
from coverage.labels import CHANGE_ENTERING, CHANGE_LEAVING, SERVICE_ADDED
from coverage.results import RunOutputs

NEW_ID = "MF-NOUVEAU"


def _new_service_place(run: RunOutputs) -> pd.Series:
    """The most populous commune of ZA beyond 30 min of family mediation in the run."""
    wz = run.tables["zones_blanches"]
    wz = wz[(wz["type_service"] == "mediation_familiale") & (wz["seuil_minutes"] == 30)
            & (wz["code_dep"] == "ZA")]
    code = wz.sort_values(["population", "code_insee"], ascending=[False, True])[
        "code_insee"].iloc[0]
    return run.communes.set_index("code_insee").loc[code]


@pytest.fixture(scope="module")
def runs(demo_proxy_run: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[RunOutputs, RunOutputs]:
    """(A, B): the demo proxy run, and the same with one family-mediation service added."""
    a = RunOutputs.load(demo_proxy_run)
    place = _new_service_place(a)
    folder = tmp_path_factory.mktemp("compare")
    services = folder / "services_fictifs.csv"
    with demo_paths().services.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    new = dict(rows[0], service_id=NEW_ID, nom="Nouveau service (fictif)",
               code_insee=place.name, lon=f"{place['lon']:.6f}", lat=f"{place['lat']:.6f}",
               capacite="1.0")
    with services.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, new])
    # run B starts from a copy of run A: the changed partition is updated from A's cache
    # (equal to a full computation, tests/test_incremental.py)
    out = copy_run(demo_proxy_run, folder / "run_b")
    run_batch(load_inputs(services=services), out_dir=out,
              options=RunOptions(engine="proxy", isochrones=False, workers=1))
    return a, RunOutputs.load(out)


def _expected_changes(a: RunOutputs, b: RunOutputs) -> set[tuple[str, str, float, str]]:
    """Changes from the two runs' zones_blanches tables (rows present in one run only)."""
    key = ["code_insee", "type_service", "seuil_minutes"]
    wa = {tuple(r) for r in a.tables["zones_blanches"][key].itertuples(index=False)}
    wb = {tuple(r) for r in b.tables["zones_blanches"][key].itertuples(index=False)}
    return ({(c, t, float(s), CHANGE_ENTERING) for c, t, s in wb - wa}
            | {(c, t, float(s), CHANGE_LEAVING) for c, t, s in wa - wb})


def _found(changes: pd.DataFrame) -> set[tuple[str, str, float, str]]:
    return {(str(r.code_insee), str(r.type_service), float(r.seuil_minutes), str(r.changement))
            for r in changes.itertuples(index=False)}


def test_lists_exactly_the_communes_that_changed(runs: tuple[RunOutputs, RunOutputs]) -> None:
    a, b = runs
    cmp = compare_runs(a, b)
    expected = _expected_changes(a, b)
    assert expected, "the added service should cover at least one white-zone commune"
    assert all(ch == CHANGE_LEAVING for *_, ch in expected)
    assert _found(cmp.changes) == expected
    assert list(cmp.changes.columns) == list(CHANGE_COLUMNS)
    pop = b.communes.set_index("code_insee")["population"]
    assert (cmp.changes["population"].to_numpy()
            == pop.loc[cmp.changes["code_insee"]].to_numpy()).all()
    assert not cmp.warnings
    assert cmp.services[["service_id", "changement"]].values.tolist() == [[NEW_ID,
                                                                           SERVICE_ADDED]]
    dep = cmp.coverage["departements"]
    for run, suffix in ((a, "_a"), (b, "_b")):  # same communes: the runs' own tables
        own = run.tables["couverture_departements"].set_index(
            ["code_dep", "type_service", "seuil_minutes"])["population_zone_blanche"]
        mine = dep.set_index(["code_dep", "type_service", "seuil_minutes"])[
            f"population_zone_blanche{suffix}"]
        assert (mine == own.reindex(mine.index)).all()
    assert set(cmp.coverage) == {"departements", "epci", "cours_appel"}
    summary = "\n".join(cmp.summary())
    assert "sortent de la zone blanche" in summary and f"{NEW_ID} (ajouté)" in summary


def test_cli_writes_tables_workbook_map(runs: tuple[RunOutputs, RunOutputs], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = runs
    out = tmp_path / "cmp"
    assert main(["comparer", str(a.run_dir), str(b.run_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "TERRITOIRE FICTIF" in printed and "Base commune : 230 communes" in printed
    table = pd.read_csv(out / "comparaison_communes.csv", dtype={"code_insee": str})
    assert _found(table) == _expected_changes(a, b)
    for name in ("departements", "epci", "cours_appel", "services"):
        assert (out / f"comparaison_{name}.csv").is_file()
    record = read_record(out)  # recorded as made from run B
    assert record is not None and record["empreinte_calcul"] == run_digest(b)
    assert set(COMPARISON_FILES.values()) <= set(record["fichiers"])
    wb = load_workbook(out / COMPARISON_FILES["xlsx"])
    assert wb.sheetnames == ["Résumé", "Communes", "Départements", "EPCI", "Cours d'appel",
                             "Services"]
    assert wb["Communes"].max_row == len(table) + 1
    page = (out / COMPARISON_FILES["carte"]).read_text(encoding="utf-8")
    assert not maps.external_references(page) and "<script src" not in page
    assert "L.map" in page and "FICTIF" in page
    assert page.count("commune-changee") >= 1 and "service-change" in page
    assert "sortent de la zone blanche" in (out / COMPARISON_FILES["resume"]).read_text(
        encoding="utf-8")


def test_same_run_no_change_and_spreadsheet_safe(demo_proxy_run: Path, tmp_path: Path
                                                 ) -> None:
    run = RunOutputs.load(demo_proxy_run)
    hostile = copy.copy(run)
    hostile.tables = dict(run.tables)
    acc = run.tables["acces_communes"].copy()
    acc.loc[acc["code_insee"] == acc["code_insee"].iloc[0], "nom"] = "=cmd|' /C calc'!A0"
    acc.loc[acc["code_insee"] == acc["code_insee"].iloc[0], "minutes"] = np.nan
    hostile.tables["acces_communes"] = acc
    cmp = compare_runs(run, run)
    assert cmp.changes.empty and cmp.services.empty and not cmp.warnings
    cmp = compare_runs(run, hostile)
    assert len(cmp.changes) and set(cmp.changes["changement"]) == {CHANGE_ENTERING}
    files = write_comparison(cmp, run, hostile, tmp_path / "c")
    text = (tmp_path / "c" / "comparaison_communes.csv").read_text(encoding="utf-8")
    assert "'=cmd" in text and "\n=cmd" not in text and ",=cmd" not in text
    cell = load_workbook(tmp_path / "c" / "comparaison.xlsx")["Communes"]["B2"]
    assert cell.data_type == "s" and str(cell.value).startswith("'=")
    assert {f.name for f in files} >= set(COMPARISON_FILES.values())


def test_shared_scope_and_warnings(demo_road_run: Path, demo_proxy_run: Path) -> None:
    """Different engines, communes and thresholds: compared on what they share, and said."""
    a, b = RunOutputs.load(demo_road_run), RunOutputs.load(demo_proxy_run)
    fewer = copy.copy(b)
    fewer.tables = dict(b.tables)
    acc = b.tables["acces_communes"]
    fewer.tables["acces_communes"] = acc[acc["code_dep"] == "ZA"]
    fewer.manifest = dict(b.manifest, thresholds_min=[30.0, 60.0])
    cmp = compare_runs(a, fewer)
    text = " ".join(cmp.warnings)
    assert "deux moteurs différents" in text
    assert "pas les mêmes communes" in text and "seulement dans A" in text
    assert "Seuils d'un seul calcul" in text and "60 min" in text
    assert cmp.thresholds == [30.0]
    assert set(cmp.changes["code_insee"].str[:2]) <= {"ZA"}
    assert set(cmp.changes["seuil_minutes"]) <= {30.0}
    ra = a.tables["acces_communes"].set_index(["code_insee", "type_service"])["minutes"]
    rb = acc.set_index(["code_insee", "type_service"])["minutes"]
    for row in cmp.changes[cmp.changes["type_service"] != "aucun_service"].itertuples():
        white_a = not ra.loc[(row.code_insee, row.type_service)] <= 30
        white_b = not rb.loc[(row.code_insee, row.type_service)] <= 30
        assert white_a != white_b and (row.changement == CHANGE_ENTERING) == white_b
    page = standalone_html(comparison_map(cmp, a, fewer, static_url=""))
    assert not maps.external_references(page)


def test_no_commune_in_common_one_french_line(demo_proxy_run: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import coverage.cli.comparer as cli_module

    a = RunOutputs.load(demo_proxy_run)
    other = copy.copy(a)
    other.tables = dict(a.tables)
    other.tables["acces_communes"] = a.tables["acces_communes"].assign(
        code_insee=lambda t: "Y" + t["code_insee"].str[1:])
    with pytest.raises(CoverageError, match="aucune commune en commun"):
        compare_runs(a, other)
    monkeypatch.setattr(cli_module, "load_finished_run",
                        lambda path: other if str(path).endswith("autre") else a)
    out = tmp_path / "cmp"
    assert main(["comparer", str(a.run_dir), str(tmp_path / "autre"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aucune commune en commun" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".cmp*"))


def test_cli_unfinished_run_is_refused(demo_proxy_run: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comparer", str(demo_proxy_run), str(tmp_path / "vide"), "--out",
                 str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aucun calcul terminé" in err[0]
    assert not (tmp_path / "cmp").exists()


def test_app_page_compares_with_the_open_run(runs: tuple[RunOutputs, RunOutputs],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """« Comparer deux calculs »: the open run is B, the page asks for A's folder."""
    from streamlit.testing.v1 import AppTest

    from coverage.app import state

    a, b = runs
    monkeypatch.setenv(state.ENV_RUN_DIR, str(b.run_dir))
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"),
                           default_timeout=240)
    at.run()
    at.switch_page("coverage/app/comparer.py").run()
    assert not at.exception and not at.error
    assert any("Indiquez le dossier" in i.value for i in at.info)
    missing = b.run_dir / "absent"
    at.text_input(key="compare_run_a").set_value(str(missing)).run()
    assert any(str(missing) in e.value for e in at.error)
    at.text_input(key="compare_run_a").set_value(str(a.run_dir)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    shown_type = at.selectbox(key="compare_type").value
    shown_threshold = at.selectbox(key="compare_threshold").value
    assert (shown_type, shown_threshold) == ("mediation_familiale", 30.0)
    expected = {c for c, t, s, _ in _expected_changes(a, b)
                if t == shown_type and s == shown_threshold}
    assert expected and set(at.dataframe[0].value["code_insee"].astype(str)) == expected
    srcdoc = at.get("iframe")[0].proto.srcdoc
    assert "commune-changee" in srcdoc and not maps.external_references(srcdoc)
    assert any("sortent de la zone blanche" in m.value for m in at.markdown)


def test_services_changed_removed_and_types_apart(demo_proxy_run: Path) -> None:
    """Same ids with another capacity or place are « modifié »; a type of one run only is
    left out and said."""
    a = RunOutputs.load(demo_proxy_run)
    b = copy.copy(a)
    svc = a.services.copy()
    svc.loc[svc["service_id"] == "MF-01", "capacite"] = 9.0
    svc.loc[svc["service_id"] == "MF-02", "lon"] += 0.01
    b.services = svc[svc["service_id"] != "ER-04"]
    cmp = compare_runs(a, b)
    got = {r.service_id: (r.changement, r.detail) for r in cmp.services.itertuples()}
    assert got == {"MF-01": ("modifié", "capacité"), "MF-02": ("modifié", "emplacement"),
                   "ER-04": ("retiré", "")}
    only_mf = copy.copy(b)
    only_mf.tables = dict(b.tables)
    acc = b.tables["acces_communes"]
    only_mf.tables["acces_communes"] = acc[acc["type_service"] == "mediation_familiale"]
    cmp = compare_runs(a, only_mf)
    assert cmp.types == ["mediation_familiale", "aucun_service"]
    assert "Types de service d'un seul calcul" in " ".join(cmp.warnings)
    assert set(cmp.services["type_service"]) == {"mediation_familiale"}


def test_french_csv_schemas_and_both_runs_recorded(runs: tuple[RunOutputs, RunOutputs],
                                                   tmp_path: Path) -> None:
    import json
    import shutil

    from coverage.export.provenance import export_status
    from coverage.results import MANIFEST
    from coverage.schemas import COMPARAISON_CONTRACTS

    a, b = runs
    copy_a = tmp_path / "run_a"  # a copy of A, rerun below (its manifest rewritten)
    shutil.copytree(a.run_dir, copy_a, ignore=shutil.ignore_patterns("exports"))
    out = tmp_path / "cmp"
    assert main(["comparer", str(copy_a), str(b.run_dir), "--out", str(out)]) == 0
    for stem, contract in COMPARAISON_CONTRACTS.items():
        plain = pd.read_csv(out / f"{stem}.csv", dtype=str, keep_default_na=False)
        fr = pd.read_csv(out / f"{stem}_fr.csv", sep=";", dtype=str, keep_default_na=False,
                         encoding="utf-8-sig")
        assert list(plain.columns) == list(fr.columns) == contract.columns
        for col in plain.columns:  # the same cells, with a decimal comma
            assert list(fr[col]) == [v.replace(".", ",") if contract.field(col).type ==
                                     "number" else v for v in plain[col]], (stem, col)
        schema = json.loads((out / f"{stem}.schema.json").read_text(encoding="utf-8"))
        assert [f["name"] for f in schema["fields"]] == contract.columns
    schema = json.loads((out / "comparaison_departements.schema.json").read_text("utf-8"))
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["taux_couverture_b"]["title"] == "Taux de couverture (B)"
    assert fields["variation_taux_points"]["unit"] == "points de pourcentage"
    assert len(pd.read_csv(out / "comparaison_communes.csv")) == len(_expected_changes(a, b))
    # recorded against both runs: a rerun of A makes the comparison stale
    record = read_record(out)
    assert record is not None
    assert record["autres_calculs"] == [{"calcul": str(copy_a.resolve()),
                                         "empreinte_calcul": run_digest(a)}]
    assert {f"{s}_fr.csv" for s in COMPARAISON_CONTRACTS} <= set(record["fichiers"])
    assert export_status(out, run_digest(b)).state == "a_jour"
    manifest = json.loads((copy_a / MANIFEST).read_text(encoding="utf-8"))
    manifest["created_utc"] = "2099-01-01T00:00:00Z"  # as a rerun of A would rewrite it
    (copy_a / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert export_status(out, run_digest(b)).state == "perime"
    assert main(["comparer", str(copy_a), str(b.run_dir), "--out", str(out)]) == 0
    assert export_status(out, run_digest(b)).state == "a_jour"
    record = read_record(out)
    assert record is not None
    assert record["autres_calculs"][0]["empreinte_calcul"] != run_digest(a)
