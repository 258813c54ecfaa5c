"""Issue 13, deliverable 1: ``zones-blanches rapport`` writes a DOCX and a self-contained HTML.

On the demo (ZA, FICTIONAL) and on a real Massif Central proxy run (Lozère, 48): both files
hold the required sections, the white-zone list equals the run's ``zones_blanches`` for the
département and threshold, the national comparison is there, the HTML has no outside
reference, and an unknown département is one French line, exit 2, nothing written.
"""

from __future__ import annotations

import re
from pathlib import Path

import docx
import numpy as np
import pandas as pd
import pytest

from coverage import results
from coverage.cli import main
from coverage.errors import CoverageError
from coverage.export.rapport import (
    SECTION_TITLES,
    build_report,
    report_html,
    white_zone_list,
    write_report,
)
from coverage.labels import FICTIONAL_TITLE
from coverage.results import RunOutputs
from coverage.safe_text import html_js_safe


def _docx_text(path: Path) -> tuple[list[str], str, list[list[str]]]:
    """Return the headings, the whole text and the first column of every table of a DOCX."""
    doc = docx.Document(str(path))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    text = "\n".join(p.text for p in doc.paragraphs)
    tables = [[row.cells[1].text for row in t.rows[1:]] for t in doc.tables]
    headers = "\n".join(p.text for s in doc.sections for p in s.header.paragraphs)
    return headings, text + "\n" + headers, tables


def _expected_codes(run: RunOutputs, dept: str, seuil: float) -> pd.DataFrame:
    zb = run.tables["zones_blanches"]
    zb = zb[(zb["code_dep"].astype(str) == dept) & np.isclose(zb["seuil_minutes"], seuil)]
    return zb[["type_service", "code_insee"]].sort_values(
        ["type_service", "code_insee"]).reset_index(drop=True)


def _check_report(run_dir: Path, dept: str, out: Path, *, fictional: bool) -> None:
    assert main(["rapport", "--dept", dept, "--run", str(run_dir), "--out", str(out)]) == 0
    docx_path, html_path = out / f"{dept}_rapport.docx", out / f"{dept}_rapport.html"
    headings, text, _tables = _docx_text(docx_path)
    assert list(SECTION_TITLES) == [h for h in headings if h in SECTION_TITLES]
    page = html_path.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert re.search(r"<(link|script)\b", page) is None
    assert page.count('src="data:image/png;base64,') >= 2
    for title in SECTION_TITLES:
        assert f"<h2>{html_js_safe(title)}</h2>" in page, title
    # the national comparison, in prose (both formats)
    assert "ensemble du calcul" in text and "ensemble du calcul" in page
    assert " %" in text and not re.search(r"\b(nan|inf)\b", text)
    # the white-zone list equals the run's zones_blanches for the département (30 min)
    run = RunOutputs.load(run_dir)
    wz = white_zone_list(run, dept, 30.0)
    got = wz[["type_service", "code_insee"]].sort_values(
        ["type_service", "code_insee"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, _expected_codes(run, dept, 30.0))
    assert (wz["raison"].notna()).all()
    cells = text + "\n".join(c.text for t in docx.Document(str(docx_path)).tables
                             for r in t.rows for c in r.cells)
    for code in wz["code_insee"]:
        assert f"<td>{code}</td>" in page and code in cells
    assert (FICTIONAL_TITLE in text and FICTIONAL_TITLE in page) == fictional
    if fictional:  # on every page: the DOCX header and the fixed HTML banner
        doc = docx.Document(str(docx_path))
        assert all(FICTIONAL_TITLE in s.header.paragraphs[0].text for s in doc.sections)
        assert f'<div class="fictif">{FICTIONAL_TITLE}</div>' in page


def test_rapport_demo(demo_proxy_run: Path, tmp_path: Path) -> None:
    _check_report(demo_proxy_run, "ZA", tmp_path / "za", fictional=True)


def test_rapport_demo_road_names_the_engine(demo_road_run: Path, tmp_path: Path) -> None:
    run = RunOutputs.load(demo_road_run)
    report = build_report(run, "ZA", seuil=20)
    page = report_html(report)
    assert "OpenStreetMap" in page and "Fourchette" not in page
    wz = white_zone_list(run, "ZA", 20.0)
    pd.testing.assert_frame_equal(
        wz[["type_service", "code_insee"]].sort_values(["type_service", "code_insee"])
        .reset_index(drop=True), _expected_codes(run, "ZA", 20.0))
    # the nearest service is named, not given by its identifier
    named = wz.dropna(subset=["service"])
    assert len(named) and set(named["service"]).isdisjoint(set(run.services["service_id"]))


def test_rapport_proxy_gives_the_range(demo_proxy_run: Path) -> None:
    page = report_html(build_report(RunOutputs.load(demo_proxy_run), "ZA"))
    assert "Fourchette" in page and "facteur de détour 1,20 à 1,45" in page


def test_html_escapes_user_text(demo_proxy_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunOutputs.load(demo_proxy_run)
    services = run.services.copy()
    services["nom"] = "<script>alert(1)</script>"
    run = RunOutputs(run.run_dir, run.manifest, run.tables, run.communes, services)
    page = report_html(build_report(run, "ZA"))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_waiting_lists_are_masked(demo_proxy_run: Path) -> None:
    run = RunOutputs.load(demo_proxy_run)
    tables = dict(run.tables)
    waiting = tables["listes_attente_departements"].copy()
    za = waiting["code_dep"] == "ZA"
    waiting.loc[za, "familles_en_attente"] = 3
    tables["listes_attente_departements"] = waiting
    run = RunOutputs(run.run_dir, run.manifest, tables, run.communes, run.services)
    report = build_report(run, "ZA")
    block = next(b for b in report.blocks if b.kind == "table"
                 and b.text.startswith("Listes d'attente"))
    col = block.columns.index("Familles en attente")
    assert len(block.rows) == int(za.sum())
    assert {row[col] for row in block.rows} == {"< 5"}
    rate = block.columns.index("Pour 100 000 habitants")
    assert {row[rate] for row in block.rows} == {"secret"}


def test_unknown_departement_one_line_exit_2(demo_proxy_run: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nope"
    code = main(["rapport", "--dept", "99", "--run", str(demo_proxy_run), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "absent du calcul" in err and "ZA" in err
    assert not out.exists()
    code = main(["rapport", "--dept", "ZA", "--run", str(demo_proxy_run), "--seuil", "25",
                 "--out", str(out)])
    assert code == 2 and "seuils disponibles" in capsys.readouterr().err
    assert not out.exists()


def test_report_refuses_the_run_folder(demo_proxy_run: Path) -> None:
    run = RunOutputs.load(demo_proxy_run)
    with pytest.raises(CoverageError):
        write_report(run, "ZA", demo_proxy_run)
    assert not (demo_proxy_run / "ZA_rapport.docx").exists()


def test_app_exports_page_builds_the_report(demo_proxy_run: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from coverage.app import state

    monkeypatch.setattr(results, "DEMO_RUN_DIR", demo_proxy_run)
    monkeypatch.delenv(state.ENV_RUN_DIR, raising=False)
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    repo = Path(__file__).resolve().parents[1]
    app = AppTest.from_file(str(repo / "app.py"), default_timeout=240)
    app.run()
    app.switch_page("coverage/app/exports.py").run()
    before = len(app.get("download_button"))
    app.button(key="rapport_build").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    labels = [b.proto.label for b in app.get("download_button")]
    assert len(labels) == before + 2
    assert any(label.startswith("Rapport DOCX") for label in labels)
    assert any(label.startswith("Rapport HTML") for label in labels)


@pytest.mark.shared
@pytest.mark.slow
def test_rapport_lozere_massif_central(shared_data: Path, tmp_path: Path) -> None:
    from test_whitezones import _massif_central_inputs

    from coverage.batch import RunOptions, run_batch

    run_dir = tmp_path / "mc_proxy"
    run_batch(_massif_central_inputs(shared_data), out_dir=run_dir,
              options=RunOptions(workers=1, isochrones=False, engine="proxy"))
    _check_report(run_dir, "48", tmp_path / "r48", fictional=False)
    run = RunOutputs.load(run_dir)
    page = (tmp_path / "r48" / "48_rapport.html").read_text(encoding="utf-8")
    assert "Lozère" in page and "Nîmes" in page  # the département and its cour d'appel
    assert run.engine == "proxy" and "Fourchette" in page
    # the empty offers of Lozère are said, those of the other départements are not
    assert "Avertissement : Aucun service « Médiation familiale » dans le département 48" \
        in page
    assert "département 15 :" not in page
