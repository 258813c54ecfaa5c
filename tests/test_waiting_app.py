"""Page « Listes d'attente » with Streamlit's AppTest: demo run through app.py, hand-made run,
upload validation."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box
from streamlit.testing.v1 import AppTest

from coverage.app.listes_attente import WAITING_UPLOAD_KEY, validate_upload
from coverage.io.waiting import load_waiting
from coverage.waiting import waiting_indicators

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGE = "coverage/app/listes_attente.py"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def demo_run(demo_road_run: Path) -> Path:
    """A run of the FICTIONAL demo (road engine, no isochrones), with its waiting lists."""
    return demo_road_run


def _texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def test_page_in_the_app_on_the_demo(demo_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZONES_BLANCHES_RUN_DIR", str(demo_run))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    assert "Listes d'attente" in _texts(at.title)
    assert "FICTIF" in _texts(at.warning)
    assert "table listes_attente_departements du run" in _texts(at.caption)
    markdown = _texts(at.markdown)
    assert "Département **ZA**" in markdown
    assert "Tension" in _texts(at.subheader)
    # every département of the demo can be chosen, and the page redraws without error
    at.selectbox(key="waiting_dept").set_value("ZB").run()
    assert not at.exception
    assert "Département **ZB** : rang" in _texts(at.markdown)
    at.toggle(key="waiting_public").set_value(False).run()
    assert not at.exception


def _hand_run(root: Path, tests_data: Path) -> Path:
    """A two-département real-code run folder written by hand (no batch)."""
    run_dir = root / "run"
    (run_dir / "tables").mkdir(parents=True)
    ind = waiting_indicators(load_waiting(tests_data / "waiting_services.csv").data,
                             pd.Series({"15": 200_000, "12": 500_000, "48": 80_000}))
    cov = pd.DataFrame({
        "code_dep": ["15", "12"], "type_service": ["espace_rencontre"] * 2,
        "seuil_minutes": [30.0, 30.0], "population": [200_000, 500_000],
        "population_zone_blanche": [20_000, 150_000],
    })
    ind.to_parquet(run_dir / "tables" / "listes_attente_departements.parquet")
    cov.to_parquet(run_dir / "tables" / "couverture_departements.parquet")
    communes = gpd.GeoDataFrame(
        {"code_insee": ["15014", "12202"], "code_dep": ["15", "12"],
         "population": [200_000, 500_000]},
        geometry=[box(2.4, 44.9, 2.5, 45.0), box(2.5, 44.3, 2.6, 44.4)], crs="EPSG:4326")
    communes.to_parquet(run_dir / "communes.parquet")
    gpd.GeoDataFrame({"service_id": pd.Series(dtype="str")}, geometry=[],
                     crs="EPSG:4326").to_parquet(run_dir / "services.parquet")
    manifest = {"fictif": False, "engine": {"name": "proxy"}, "thresholds_min": [30.0],
                "depts": ["12", "15"],
                "tables": ["listes_attente_departements", "couverture_departements"]}
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run_dir


def _page(run_dir: str) -> None:
    import streamlit as st

    from coverage.app import state
    from coverage.app.listes_attente import render

    st.session_state[state.SELECTION_KEY] = state.Selection(
        run_dir=run_dir, stamp=1.0, dept="15", type_service="espace_rencontre",
        threshold_min=30.0)
    render()


def test_page_rank_and_tension_on_a_hand_made_run(tmp_path: Path, tests_data: Path) -> None:
    run_dir = _hand_run(tmp_path, tests_data)
    at = AppTest.from_function(_page, args=(str(run_dir),), default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception, at.exception
    assert not [w for w in at.warning if "FICTIF" in str(w.value)]
    # 2023, per 100,000: 15 → 8 / 200,000 = 4.0, 12 → 10 / 500,000 = 2.0
    assert "Département **15** : rang **1** sur 2" in _texts(at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Familles en attente au 31/12/2023"] == "8"
    assert metrics["Pour 100 000 habitants"] == "4,0"
    tension = at.dataframe[0].value
    assert tension["code_dep"].tolist() == ["12", "15"]
    assert tension["quadrant"].tolist() == ["attente faible, zone blanche étendue",
                                            "attente forte, zone blanche réduite"]


def test_upload_errors_are_listed_without_traceback(tmp_path: Path, tests_data: Path) -> None:
    run_dir = _hand_run(tmp_path, tests_data)
    bad = validate_upload("retours.csv", (tests_data / "waiting_bad.csv").read_bytes(), None)
    problems = bad["problems"]
    assert {(r.ligne, r.colonne) for r in problems.itertuples()} >= {
        (3, "familles_en_attente"), (5, "dep"), (6, "annee")}
    assert set(problems["fichier"]) == {"retours.csv"}

    at = AppTest.from_function(_page, args=(str(run_dir),), default_timeout=TIMEOUT_S)
    at.session_state[WAITING_UPLOAD_KEY] = bad
    at.run()
    assert not at.exception, at.exception
    assert "« retours.csv » refusé" in _texts(at.error)
    shown = at.dataframe[0].value
    assert "ligne" in shown.columns and 5 in shown["ligne"].tolist()


def test_valid_upload_replaces_the_run_data(tmp_path: Path, tests_data: Path) -> None:
    run_dir = _hand_run(tmp_path, tests_data)
    content = (tests_data / "waiting_departements_cp1252.csv").read_bytes()
    good = validate_upload("mediation.csv", content, None)
    assert len(good["data"]) == 3
    at = AppTest.from_function(_page, args=(str(run_dir),), default_timeout=TIMEOUT_S)
    at.session_state[WAITING_UPLOAD_KEY] = good
    at.run()
    assert not at.exception, at.exception
    assert "fichier importé « mediation.csv »" in _texts(at.caption)
    assert at.selectbox(key="waiting_type").value == "mediation_familiale"


def test_charts_of_a_run_for_exports(tmp_path: Path, tests_data: Path) -> None:
    from coverage.export.figures import waiting_charts_for_run
    from coverage.results import RunOutputs

    run = RunOutputs.load(_hand_run(tmp_path, tests_data))
    paths = waiting_charts_for_run(run, "15", tmp_path / "png")
    assert sorted(p.name for p in paths) == [
        "listes_attente_15_espace_rencontre.png",
        "listes_attente_classement_espace_rencontre_2023.png",
        "listes_attente_tension_espace_rencontre_30min.png",
    ]
    assert all(p.stat().st_size > 1000 for p in paths)
    # 48's médiation (0 families, masked in public) has nothing to draw; internal has
    internal = waiting_charts_for_run(run, "48", tmp_path / "internes", public=False)
    assert "listes_attente_48_mediation_familiale.png" in {p.name for p in internal}


_SERVICE_RETURN = (b"code_dep,type_service,annee,service_id,familles_en_attente,"
                   b"delai_moyen_jours\n15,ER,2022,ER15A,6,30\n15,ER,2023,ER15A,9,40\n")
_CAF_RETURN = (b"source;code_dep;type_service;periode;service_id;familles_en_attente;"
               b"date_retour\nCAF;15;ER;2023;ER15A;11;2024-01-10\n"
               b"CAF;15;ER;2024-T1;ER15A;7;2024-04-10\n")


def test_two_uploaded_files_provenance_conflicts_and_partners(tmp_path: Path,
                                                              tests_data: Path) -> None:
    run_dir = _hand_run(tmp_path, tests_data)
    at = AppTest.from_function(_page, args=(str(run_dir),), default_timeout=TIMEOUT_S)
    at.run()
    at.file_uploader(key="waiting_file").set_value([
        ("service_er15.csv", _SERVICE_RETURN, "text/csv"),
        ("caf.csv", _CAF_RETURN, "text/csv")]).run()
    assert not at.exception, at.exception
    assert "fichiers importés « service_er15.csv », « caf.csv »" in _texts(at.caption)
    assert "« caf.csv » chargé : 2 lignes" in _texts(at.success)
    # provenance: the service's own 2023 return is kept (9, not the CAF's 11)
    provenance = next(d.value for d in at.dataframe if "sources" in d.value.columns)
    row = provenance[provenance["periode"] == "2023"].iloc[0]
    assert (row["familles_en_attente"], row["source"], row["sources"]) == (9, "service",
                                                                           "service ; CAF")
    assert "1 conflit(s) entre sources" in _texts(at.warning)
    conflicts = next(d.value for d in at.dataframe if "regle" in d.value.columns)
    assert conflicts["regle"].tolist() == ["retour du service"]
    assert "natures différentes" in _texts(at.info)  # years then a quarter
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Familles en attente en fin de période (2024-T1)"] == "7"
    # partner filter: the CAF only
    assert at.multiselect(key="waiting_partners").value == ["CAF", "service"]
    at.multiselect(key="waiting_partners").set_value(["CAF"]).run()
    assert not at.exception, at.exception
    provenance = next(d.value for d in at.dataframe if "sources" in d.value.columns)
    assert set(provenance["source"]) == {"CAF"}
    assert provenance.loc[provenance["periode"] == "2023", "familles_en_attente"].tolist() \
        == [11]
    assert "Aucun conflit entre sources." in _texts(at.caption)
