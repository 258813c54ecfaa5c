"""The Carte page with AppTest: legend beside the map, text version, upload problems, context.

Runs the app on a finished run of the FICTIONAL demo (the session fixture
``demo_road_run``). Expected figures are read from the run's own tables.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from coverage import results
from coverage.app import state, upload, views
from coverage.classes import minute_classes
from coverage.results import RunOutputs, run_thresholds

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240


@pytest.fixture
def at(demo_road_run: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setattr(results, "DEMO_RUN_DIR", demo_road_run)
    monkeypatch.delenv(state.ENV_RUN_DIR, raising=False)
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _services_csv(run: RunOutputs, rows: pd.DataFrame) -> bytes:
    return rows.to_csv(index=False).encode("utf-8")


def test_legend_beside_the_map_with_the_runs_classes(at: AppTest, demo_road_run: Path
                                                     ) -> None:
    run = RunOutputs.load(demo_road_run)
    blocks = [h.proto.body for h in at.get("html")]
    legend = next(b for b in blocks if 'id="zb-app-legend"' in b)
    for label in minute_classes(run_thresholds(run)).labels:
        assert html.escape(label) in legend
    sel = at.session_state[state.SELECTION_KEY]
    white = int(run.tables["couverture_departements"].query(
        "code_dep == @sel.dept and type_service == @sel.type_service "
        "and seuil_minutes == @sel.threshold_min")["communes_zone_blanche"].iloc[0])
    n = int((run.communes["code_dep"] == sel.dept).sum())
    assert f"{white} / {n} communes" in legend
    srcdoc = at.get("iframe")[0].proto.srcdoc
    assert 'id="zb-hatch-0"' in srcdoc and "zb-label" in srcdoc
    assert '"className": "departement-contour"' in srcdoc
    assert "imperial: false" in srcdoc


def _table_cells(block: str) -> tuple[list[str], list[list[str]]]:
    """Return the header cells and the body rows of the first HTML table of ``block``."""
    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag: str) -> None:
            if tag in ("td", "th") and self.cell is not None:
                self.rows[-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    parser.feed(block)
    return parser.rows[0], parser.rows[1:]


def test_text_version_of_the_map(at: AppTest, demo_road_run: Path) -> None:
    text = next(e for e in at.expander if e.label == "Version texte de la carte")
    assert not text.markdown and not text.get("html")  # written only once opened
    at.session_state[views.TEXT_VERSION_KEY] = True  # the reader opens it
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = next(e for e in at.expander if e.label == "Version texte de la carte")
    heads = [m.value for m in text.markdown]
    assert any(h.startswith("### Version texte de la carte") for h in heads)
    sel = at.session_state[state.SELECTION_KEY]
    run = RunOutputs.load(demo_road_run)
    acc = run.tables["acces_communes"]
    rows = acc[(acc["code_dep"] == sel.dept) & (acc["type_service"] == sel.type_service)]
    white = rows[~(rows["minutes"] <= sel.threshold_min)]
    if len(white):
        block = next(h.proto.body for h in text.get("html") if "<table" in h.proto.body)
        head, rows = _table_cells(block)
        assert head == ["Commune", "Code INSEE", "Population", "Temps d'accès",
                        "Service le plus proche"]
        assert {r[1] for r in rows} == set(white["code_insee"])
        assert len(rows) == len(white)
    else:
        assert any("Aucune commune en zone blanche" in h for h in heads)


def test_bad_upload_table_in_the_main_area_and_map_falls_back(at: AppTest) -> None:
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    bad = pd.DataFrame(run.services.drop(columns="geometry")).head(3).astype(object)
    bad.loc[bad.index[1], "lat"] = "pas un nombre"
    bad.loc[bad.index[2], "type_service"] = "crèche"
    at.file_uploader(key="services_upload").set_value(
        ("services_faux.csv", _services_csv(run, bad), "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    # a short line in the sidebar, the readable table in the main area
    assert any("services_faux.csv" in e.value for e in at.sidebar.error)
    assert not at.sidebar.table and not at.sidebar.dataframe
    main_errors = [e.value for e in at.main.error]
    assert any("services_faux.csv" in e and "services du run" in e for e in main_errors)
    table = next(t.value for t in at.main.table if "Problème" in t.value.columns)
    assert list(table.columns) == ["Ligne", "Colonne", "Problème"]
    assert {"lat", "type_service"} <= set(table["Colonne"])
    assert all(re.fullmatch(r"\d+|—", str(r)) for r in table["Ligne"])
    assert table["Problème"].str.startswith("attendu").all()
    # the map says it shows the run's services
    assert any("la carte montre les services du run" in w.value for w in at.warning)
    assert state.UPLOAD_KEY not in at.session_state
    # removing the file clears the table
    at.file_uploader(key="services_upload").set_value(None).run()
    assert upload.PROBLEMS_KEY not in at.session_state
    assert not any("Problème" in t.value.columns for t in at.main.table)
    assert not any("services_faux.csv" in e.value for e in at.main.error)


def test_problems_table_in_french() -> None:
    from coverage.errors import InputError, Problem

    exc = InputError([Problem("f.csv", 3, "lat", "un nombre", "abc"),
                      Problem("f.csv", None, None, "une ligne d'en-tête")])
    table = upload.problems_table(exc)
    assert table.to_dict("records") == [
        {"Ligne": "3", "Colonne": "lat", "Problème": "attendu un nombre, trouvé « abc »"},
        {"Ligne": "—", "Colonne": "—", "Problème": "attendu une ligne d'en-tête"},
    ]


def test_the_url_names_the_departement_shown(demo_road_run: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "DEMO_RUN_DIR", demo_road_run)
    monkeypatch.delenv(state.ENV_RUN_DIR, raising=False)
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    depts = sorted(RunOutputs.load(demo_road_run).depts)
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S)
    app.query_params["dep"] = depts[-1]  # a link to the second département
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state[state.SELECTION_KEY].dept == depts[-1]
    app.selectbox(key="dept").set_value(depts[0]).run()
    assert app.query_params["dep"] in (depts[0], [depts[0]])  # the URL follows the sidebar
