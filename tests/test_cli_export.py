"""``zones-blanches export`` on a real run folder of the FICTIONAL demo (proxy engine).

The run is made once per module by :func:`coverage.batch.run_batch` on the embedded demo with
the proxy engine (about 2 s), then read back by the CLI through ``RunOutputs.load``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from coverage.cli import EXIT_ERROR, main
from coverage.export import WAITING_TABLE, flag_column
from coverage.settings import NO_SERVICE


@pytest.fixture(scope="module")
def demo_run(demo_proxy_run: Path) -> Path:
    return demo_proxy_run


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["export", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_all_formats_default_folder(demo_run: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from openpyxl import load_workbook

    code, out, err = _export(capsys, "--dept", "ZA", "--run", str(demo_run), "--formats",
                             "all")
    assert code == 0, err
    folder = demo_run / "exports" / "ZA"
    listed = [Path(line.strip()) for line in out.splitlines() if line.startswith("  ")]
    assert listed and all(p.exists() and p.is_relative_to(folder) for p in listed)
    assert "TERRITOIRE FICTIF" in out and "moteur proxy" in out
    assert {p.suffix for p in listed} == {".csv", ".json", ".parquet", ".xlsx", ".gpkg",
                                         ".png", ".txt"}

    wb = load_workbook(folder / "ZA_zones_blanches.xlsx")
    assert wb.sheetnames[-1] == "Sources et méthode"
    assert "Listes d'attente" in wb.sheetnames
    method = {str(r[0].value): str(r[1].value)
              for r in wb["Sources et méthode"].iter_rows(min_row=2)}
    assert method["Moteur de temps d'accès"].startswith("proxy")
    assert "TERRITOIRE FICTIF" in method

    # layers agree with the run's own white-zone table
    zb = pd.read_parquet(demo_run / "tables" / "zones_blanches.parquet")
    com = gpd.read_file(folder / "ZA_zones_blanches.gpkg", layer="communes")
    run_communes = gpd.read_parquet(demo_run / "communes.parquet")
    assert sorted(com["code_insee"]) == sorted(
        run_communes.loc[run_communes["code_dep"] == "ZA", "code_insee"])
    for t in ("mediation_familiale", "espace_rencontre", NO_SERVICE):
        for s in (20.0, 30.0, 45.0):
            sel = zb[(zb["type_service"] == t) & np.isclose(zb["seuil_minutes"], s)
                     & (zb["code_dep"] == "ZA")]
            flagged = set(com.loc[com[flag_column(t, s)].astype(bool), "code_insee"])
            assert flagged == set(sel["code_insee"])
    assert set(com["moteur"]) == {"proxy"}
    png = folder / "ZA_carte_aucun_service_30min.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_public_and_internal_waiting_lists(demo_run: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _export(capsys, "--dept", "ZB", "--run", str(demo_run), "--formats", "csv",
                           "--out", str(tmp_path / "pub"))
    assert code == 0 and "export public" in out
    code, out, _ = _export(capsys, "--dept", "ZB", "--run", str(demo_run), "--formats", "csv",
                           "--out", str(tmp_path / "int"), "--internal")
    assert code == 0 and "export INTERNE" in out
    pub = pd.read_csv(tmp_path / "pub/tables" / f"{WAITING_TABLE}.csv", dtype=str,
                      keep_default_na=False)
    internal = pd.read_csv(tmp_path / "int/tables" / f"{WAITING_TABLE}.csv", dtype=str,
                           keep_default_na=False)
    assert len(pub) == len(internal) > 0
    counts = pd.to_numeric(internal["familles_en_attente"], errors="coerce")
    small = (counts < 5).to_numpy()
    assert (pub.loc[small, "familles_en_attente"] == "< 5").all()
    assert (pub.loc[~small, "familles_en_attente"]
            == internal.loc[~small, "familles_en_attente"]).all()
    assert not internal.isin(["< 5", "secret"]).any().any()


def test_bad_departement_exits_non_zero_and_writes_nothing(
        demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "exp"
    code, out, err = _export(capsys, "--dept", "99", "--run", str(demo_run), "--out",
                             str(out_dir))
    assert code == EXIT_ERROR
    assert len(err.strip().splitlines()) == 1 and "« 99 » absent du calcul" in err
    assert "ZA Hautes-Brumes (fictif), ZB Val-d'Ombrelle (fictif)" in err
    assert "Traceback" not in err + out
    assert not out_dir.exists()
    assert not list(tmp_path.glob(".export-*"))


def test_bad_format_and_missing_run(demo_run: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _export(capsys, "--dept", "ZA", "--run", str(demo_run), "--formats",
                           "csv,pdf", "--out", str(tmp_path / "x"))
    assert code == EXIT_ERROR and "format d'export inconnu « pdf »" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    code, _, err = _export(capsys, "--dept", "ZA", "--run", str(tmp_path / "nowhere"))
    assert code == EXIT_ERROR and "lancez d'abord `zones-blanches run`" in err
    # the default run folder (the checkout's sorties/demo, whatever the working directory)
    # is absent: pointed to a folder of this test, so that a `make run` done before the
    # tests does not change what they check
    from coverage import results

    absent = tmp_path / "depot" / "sorties" / "demo"
    monkeypatch.setattr(results, "DEMO_RUN_DIR", absent)
    monkeypatch.chdir(tmp_path)
    code, _, err = _export(capsys, "--dept", "ZA")
    assert code == EXIT_ERROR and str(absent) in err and "zones-blanches run" in err
    assert not (tmp_path / "sorties").exists() and not (tmp_path / "depot").exists()


def test_console_script_prints_no_traceback(demo_run: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("zones-blanches")
    if not exe.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    proc = subprocess.run([str(exe), "export", "--dept", "ZZ", "--run", str(demo_run),
                           "--out", str(tmp_path / "exp")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == EXIT_ERROR
    assert "ZA Hautes-Brumes (fictif), ZB" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "exp").exists()


@pytest.mark.shared
@pytest.mark.slow
def test_export_of_a_real_territory(shared_data: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Cantal from a proxy run on the real Massif Central territory (4 real seed sites)."""
    from openpyxl import load_workbook

    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    gpkg = shared_data / "territoires" / "massif_central_15_12_48.gpkg"
    seed = gpd.read_file(gpkg, layer="services_seed")
    services = pd.DataFrame({
        "service_id": [f"seed{i}" for i in range(len(seed))],
        "type_service": seed["type_service"], "nom": seed["organisme"],
        "organisme": seed["organisme"], "adresse": "", "code_insee": seed["code_insee"],
        "lon": seed["lon"], "lat": seed["lat"], "source": seed["source_url"],
        "date_source": seed["date_source"]})
    services.to_csv(tmp_path / "services_seed.csv", index=False)  # in tmp only
    run_dir = tmp_path / "run"
    run_batch(load_inputs(communes=gpkg, services=tmp_path / "services_seed.csv"),
              out_dir=run_dir, options=RunOptions(engine="proxy", depts=["15"],
                                                  isochrones=False, workers=1))
    code, _out, err = _export(capsys, "--dept", "15", "--run", str(run_dir), "--formats",
                              "xlsx,gpkg,png", "--out", str(tmp_path / "exp"))
    assert code == 0, err
    wb = load_workbook(tmp_path / "exp" / "15_zones_blanches.xlsx")
    assert "TERRITOIRE FICTIF" not in wb["Communes"]["A1"].value
    rows = [(str(r[0].value), str(r[1].value))
            for r in wb["Sources et méthode"].iter_rows(min_row=2)]
    sources = [v for k, v in rows if k == "Source"]
    assert any("IGN – Admin Express" in v for v in sources)
    assert not any("OpenStreetMap" in v for v in sources)  # proxy run: no road data used
    com = gpd.read_file(tmp_path / "exp" / "15_zones_blanches.gpkg", layer="communes")
    run_communes = gpd.read_parquet(run_dir / "communes.parquet")
    assert len(com) == int((run_communes["code_dep"] == "15").sum()) > 200
    assert not com["fictif"].any()
    png = tmp_path / "exp" / "15_carte_aucun_service_30min.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
