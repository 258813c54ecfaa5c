"""The accessibility index in a département's export (issue 14): tables, schemas, XLSX, notes.

On the FICTIONAL demo runs: the exported values are those of
:func:`coverage.accessibility.accessibility_for_run` (E2SFCA at the run's principal
threshold, every type), and the EPCI and département lines are population-weighted means.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coverage.accessibility import accessibility_for_run
from coverage.errors import CoverageError
from coverage.export import export_departement
from coverage.export import tables as export_tables
from coverage.export.tables import ACCESSIBILITY_TABLES, principal_threshold, run_types
from coverage.results import RunOutputs

UNIT = "ETP ou places pour 100 000 habitants"


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / "tables" / f"{name}.csv",
                       dtype={"code_insee": str, "code_dep": str, "code_epci": str})


@pytest.mark.parametrize("fixture", ["demo_proxy_run", "demo_road_run"])
def test_export_holds_the_runs_index(fixture: str, request: pytest.FixtureRequest,
                                     tmp_path: Path) -> None:
    run = RunOutputs.load(request.getfixturevalue(fixture))
    out = tmp_path / "ZA"
    export_departement(run, "ZA", formats=["csv", "csv_fr"], out_dir=out)
    threshold = principal_threshold(run)
    assert threshold == 30.0
    communes = _read(out, "accessibilite_communes")
    epci = _read(out, "accessibilite_epci")
    dept = _read(out, "accessibilite_departement")
    types = run_types(run)
    assert sorted(set(communes["type_service"])) == sorted(types)
    for t in types:
        want = accessibility_for_run(run, "ZA", type_service=t, threshold_min=threshold,
                                     method="e2sfca")
        got = communes[communes["type_service"] == t].reset_index(drop=True)
        assert list(got["code_insee"]) == list(want.communes["code_insee"])
        np.testing.assert_allclose(got["indice_pour_100k"],
                                   want.communes["indice_pour_100k"], rtol=1e-12)
        np.testing.assert_array_equal(got["services_accessibles"],
                                      want.communes["services_accessibles"])
        assert set(got["methode"]) == {"e2sfca"}
        assert set(got["moteur"]) == {run.engine}
        assert set(got["seuil_minutes"]) == {30.0}
        # département and EPCI: population-weighted means of the communes' index
        line = dept[dept["type_service"] == t].iloc[0]
        pop = got["population"].to_numpy(float)
        mean = float((pop * got["indice_pour_100k"]).sum() / pop.sum())
        assert line["indice_moyen_pour_100k"] == pytest.approx(mean, rel=1e-12)
        assert line["indice_moyen_pour_100k"] == pytest.approx(
            float(want.departements["indice_moyen_pour_100k"].iloc[0]), rel=1e-12)
        assert line["population_sans_service"] == pytest.approx(
            float(pop[got["services_accessibles"].to_numpy() == 0].sum()))
        mine = epci[epci["type_service"] == t].set_index("code_epci")
        for code, group in got.groupby("code_epci"):
            p = group["population"].to_numpy(float)
            assert mine.loc[code, "indice_moyen_pour_100k"] == pytest.approx(
                float((p * group["indice_pour_100k"]).sum() / p.sum()), rel=1e-12)
    assert communes["indice_pour_100k"].gt(0).any()
    # Table Schemas: French titles with the unit; French CSV beside
    for name in ACCESSIBILITY_TABLES:
        assert (out / "csv_fr" / f"{name}.csv").is_file()
        schema = json.loads((out / "tables" / f"{name}.schema.json").read_text("utf-8"))
        fields = {f["name"]: f for f in schema["fields"]}
        key = "indice_pour_100k" if name == "accessibilite_communes" \
            else "indice_moyen_pour_100k"
        assert fields[key]["unit"] == UNIT
        assert fields[key]["title"].startswith("Indice")
    fr = pd.read_csv(out / "csv_fr" / "accessibilite_departement.csv", sep=";",
                     decimal=",", encoding="utf-8-sig")
    np.testing.assert_allclose(fr["indice_moyen_pour_100k"], dept["indice_moyen_pour_100k"])
    readme = (out / "LISEZMOI.txt").read_text("utf-8")
    assert "Indice d'accessibilité : E2SFCA" in readme
    assert "0–10 min : 1 ; 10–20 min : 0,68 ; 20–30 min : 0,22" in readme


def test_xlsx_sheets_with_units(demo_proxy_run: Path, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    run = RunOutputs.load(demo_proxy_run)
    (path,) = [p for p in export_departement(run, "ZA", formats=["xlsx"], out_dir=tmp_path)
               if p.suffix == ".xlsx"]
    wb = load_workbook(path)
    for sheet in ("Accessibilité département", "Accessibilité EPCI", "Accessibilité communes"):
        assert sheet in wb.sheetnames
    ws = wb["Accessibilité communes"]
    head = 2 if run.fictif else 1  # the FICTIONAL banner first
    titles = [c.value for c in ws[head]]
    assert f"Indice d'accessibilité ({UNIT})" in titles
    codes = [c.value for c in ws[head + 1]]
    col = codes.index("indice_pour_100k")
    want = accessibility_for_run(run, "ZA", type_service=run_types(run)[0])
    first = [r[col] for r in ws.iter_rows(min_row=head + 2, values_only=True)][
        :len(want.communes)]
    np.testing.assert_allclose(first, want.communes["indice_pour_100k"], rtol=1e-12)
    method = {r[0]: r[1] for r in wb["Sources et méthode"].iter_rows(values_only=True)}
    assert "aire de chalandise de 30 min" in method["Indice d'accessibilité"]


def test_engine_gone_leaves_the_index_out_and_says_so(
        demo_proxy_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunOutputs.load(demo_proxy_run)

    def gone(*_args: object, **_kw: object) -> None:
        msg = "the road file is gone"
        raise CoverageError(msg)

    monkeypatch.setattr(export_tables, "engine_of_run", gone)
    files = export_departement(run, "ZA", formats=["csv"], out_dir=tmp_path / "ZA")
    assert not [f for f in files if "accessibilite" in f.name]
    assert (tmp_path / "ZA" / "tables" / "acces_communes.csv").is_file()
    readme = (tmp_path / "ZA" / "LISEZMOI.txt").read_text("utf-8")
    assert "Indice d'accessibilité non calculé" in readme


def test_report_section_gives_the_departements_index(demo_proxy_run: Path) -> None:
    from coverage.export.rapport import SECTION_TITLES, build_report
    from coverage.labels import fr_decimal, type_label

    run = RunOutputs.load(demo_proxy_run)
    report = build_report(run, "ZA")
    headings = [b.text for b in report.blocks if b.kind == "heading"]
    assert "Indice d'accessibilité" in SECTION_TITLES
    assert headings.index("Indice d'accessibilité") == headings.index(
        "Couverture par cour d'appel") + 1
    (table,) = [b for b in report.blocks
                if b.kind == "table" and b.text == "Indice d'accessibilité — 30 minutes"]
    assert table.columns[1] == \
        "Indice moyen du département (ETP ou places pour 100 000 habitants)"
    for row, t in zip(table.rows, run_types(run), strict=True):
        want = accessibility_for_run(run, "ZA", type_service=t, threshold_min=30.0)
        assert row[0] == type_label(t)
        assert row[1] == fr_decimal(
            float(want.departements["indice_moyen_pour_100k"].iloc[0]), 1)


def test_bad_capacity_leaves_the_index_out_in_french(demo_proxy_run: Path,
                                                     tmp_path: Path) -> None:
    run = RunOutputs.load(demo_proxy_run)
    services = run.services.copy()
    services["capacite"] = services["capacite"].astype(object)
    services.loc[services.index[0], "capacite"] = "beaucoup"
    run.services = services
    acc = export_tables.accessibility_tables(run, "ZA")
    assert acc.tables == {}
    (note,) = acc.notes
    assert note.startswith("Indice d'accessibilité non calculé : ")
    assert "capacite" in note and "beaucoup" in note
