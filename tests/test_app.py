"""The Streamlit app with AppTest: every page runs, shows the key figures of the run, and
follows the sidebar (data set, département, service type, threshold).

The first test opens the app on an empty demo folder: the app runs the demo batch itself
(FICTIONAL territory), as on a fresh machine. Expected figures are read from the run's own
tables, never written here.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from coverage import maps, results
from coverage.app import state, upload, views
from coverage.results import (
    RunOutputs,
    available_departements,
    departement_names,
    run_service_types,
    run_thresholds,
)
from coverage.settings import NO_SERVICE

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "app.py"
TIMEOUT_S = 240
PAGES = {
    "carte": "coverage/app/carte.py",
    "zones_blanches": "coverage/app/zones_blanches.py",
    "nouveau_site": "coverage/app/nouveau_site.py",
    "listes_attente": "coverage/app/listes_attente.py",
    "exports": "coverage/app/exports.py",
    "a_propos": "coverage/app/a_propos.py",
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder used as the demo run: empty at first (or ``$ZB_TEST_RUN_DIR`` to reuse one)."""
    reuse = os.environ.get("ZB_TEST_RUN_DIR")
    if reuse:
        return Path(reuse)
    return tmp_path_factory.mktemp("app") / "demo"


@pytest.fixture
def at(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setattr(results, "DEMO_RUN_DIR", demo_dir)
    monkeypatch.delenv(state.ENV_RUN_DIR, raising=False)
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    app.run()
    return app


def _ok(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def _metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _expected(run: RunOutputs, dept: str, type_service: str, threshold: float) -> pd.Series:
    t = run.tables["couverture_departements"]
    row = t[(t["code_dep"] == dept) & (t["type_service"] == type_service)
            & np.isclose(t["seuil_minutes"], threshold)]
    assert len(row) == 1
    return row.iloc[0]


def _int_text(value: float) -> str:
    return views.fmt_int(value)


def test_first_launch_runs_the_demo_and_shows_the_map(at: AppTest, demo_dir: Path) -> None:
    _ok(at)
    assert (demo_dir / "manifest.json").exists(), "the app should have run the demo batch"
    run = RunOutputs.load(demo_dir)
    assert run.fictif
    assert any("FICTIF" in w.value for w in at.warning)
    assert at.title[0].value.startswith("Carte")
    dept = str(at.selectbox(key="dept").value)
    exp = _expected(run, dept, str(at.selectbox(key="type_service").value),
                    float(at.selectbox(key="threshold").value or "nan"))
    m = _metrics(at)
    assert m["Population"] == _int_text(exp["population"])
    assert m["Population couverte"] == _int_text(exp["population_couverte"])
    n = int((run.communes["code_dep"] == dept).sum())
    assert m["Communes en zone blanche"] == f"{int(exp['communes_zone_blanche'])} / {n}"
    assert m["Population en zone blanche"] == _int_text(exp["population_zone_blanche"])
    # The map is an iframe of the folium page, with one styled path per commune.
    frames = at.get("iframe")
    assert len(frames) == 1
    srcdoc = frames[0].proto.srcdoc
    codes = set(re.findall(r'"code_insee": "([^"]+)"', srcdoc))
    assert codes == set(run.communes.loc[run.communes["code_dep"] == dept, "code_insee"])
    assert "/app/static/vendor/leaflet/leaflet.js" in srcdoc
    assert "FICTIF" in srcdoc


@pytest.mark.parametrize("widget", ["dept", "type_service", "threshold"])
def test_sidebar_widgets_change_the_map_page(at: AppTest, widget: str) -> None:
    before_metrics = _metrics(at)
    before_map = at.get("iframe")[0].proto.srcdoc
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    choices: dict[str, list[str] | list[float]] = {
        "dept": available_departements(run), "type_service": run_service_types(run),
        "threshold": run_thresholds(run),
    }
    values = choices[widget]
    box = at.selectbox(key=widget)
    other = next(v for v in values if v != box.value)
    box.set_value(other).run()
    _ok(at)
    assert at.selectbox(key=widget).value == other
    assert at.get("iframe")[0].proto.srcdoc != before_map
    if widget != "type_service":
        assert _metrics(at) != before_metrics
    sel = at.session_state[state.SELECTION_KEY]
    exp = _expected(run, sel.dept, sel.type_service, sel.threshold_min)
    assert _metrics(at)["Population en zone blanche"] == _int_text(
        exp["population_zone_blanche"])


def test_isochrone_toggle(at: AppTest) -> None:
    toggle = at.toggle(key="show_isochrones")
    if toggle.disabled:
        pytest.skip("the demo run has no isochrone layer")
    before = at.get("iframe")[0].proto.srcdoc
    assert "isochrone" not in before
    toggle.set_value(True).run()
    _ok(at)
    assert '"className": "isochrone"' in at.get("iframe")[0].proto.srcdoc


def test_zones_blanches_page_tables(at: AppTest) -> None:
    at.switch_page(PAGES["zones_blanches"]).run()
    _ok(at)
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    sel = at.session_state[state.SELECTION_KEY]
    exp = _expected(run, sel.dept, sel.type_service, sel.threshold_min)
    assert _metrics(at)["Population"] == _int_text(exp["population"])
    tables = [d.value for d in at.dataframe]
    communes, epci, dens = (next(t for t in tables if set(cols) <= set(t.columns))
                            for cols in (("nom", "zone_blanche"),
                                         ("nom_epci", "population_couverte"),
                                         ("densite", "population_zone_blanche")))
    # the main tables fit a 1440 px screen: the other columns are under « Autres colonnes »
    assert len(communes.columns) <= 7 and "nom_epci" not in communes
    assert any("nom_epci" in t and "zone_blanche" not in t for t in tables)
    n = int((run.communes["code_dep"] == sel.dept).sum())
    assert len(communes) == n
    assert int(communes["zone_blanche"].sum()) == int(exp["communes_zone_blanche"])
    assert communes["minutes"].dropna().is_monotonic_decreasing
    assert int(epci["population"].sum()) == int(exp["population"])
    assert int(dens["population_zone_blanche"].sum()) == int(exp["population_zone_blanche"])
    # A larger threshold never adds white-zone communes; the smallest one changes the table.
    thresholds = run_thresholds(run)
    at.selectbox(key="threshold").set_value(thresholds[0]).run()
    low = int(at.dataframe[0].value["zone_blanche"].sum())
    at.selectbox(key="threshold").set_value(thresholds[-1]).run()
    high = int(at.dataframe[0].value["zone_blanche"].sum())
    _ok(at)
    assert low >= high
    assert low != int(exp["communes_zone_blanche"]) or high != int(
        exp["communes_zone_blanche"])


def test_exports_page_offers_every_file(at: AppTest) -> None:
    at.switch_page(PAGES["exports"]).run()
    _ok(at)
    # one « Préparer » button per file, nothing built before it is asked for
    assert not at.get("download_button")
    build = [b for b in at.button if b.key.startswith("build_")]
    assert [b.key for b in build] == [f"build_{k}" for k in views.EXPORT_ITEMS]
    for key in views.EXPORT_ITEMS:
        at.button(key=f"build_{key}").click().run()
        _ok(at)
    buttons = at.get("download_button")
    labels = [b.proto.label for b in buttons]
    assert len(buttons) == len(views.EXPORT_ITEMS), labels
    sel = at.session_state[state.SELECTION_KEY]
    for key, suffix in (("csv", ".zip"), ("csv_fr", ".zip"), ("xlsx", ".xlsx"),
                        ("gpkg", ".gpkg"), ("png", ".png")):
        assert any(suffix in label and label.startswith(views.EXPORT_ITEMS[key][0])
                   for label in labels), (key, labels)
    digest = views.run_digest_of(sel)
    files = {key: views.export_file(sel.run_dir, digest, sel.dept, key, sel.type_service,
                                    sel.threshold_min) for key in views.EXPORT_ITEMS}
    assert files["png"][1][:8] == b"\x89PNG\r\n\x1a\n"
    assert files["xlsx"][1][:2] == b"PK" and files["csv"][1][:2] == b"PK"
    assert files["gpkg"][1][:16] == b"SQLite format 3\x00"
    assert sel.dept in files["xlsx"][0]
    # Another département: the files of the first are no longer offered, new ones are built
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    other = next(d for d in available_departements(run) if d != sel.dept)
    at.selectbox(key="dept").set_value(other).run()
    _ok(at)
    assert not at.get("download_button")
    at.button(key="build_xlsx").click().run()
    _ok(at)
    assert all(other in b.proto.label for b in at.get("download_button"))


def test_a_propos_page(at: AppTest) -> None:
    at.switch_page(PAGES["a_propos"]).run()
    _ok(at)
    text = " ".join(m.value for m in at.markdown) + " ".join(w.value for w in at.warning)
    for needle in ("Source : IGN – Admin Express COG", "INSEE",
                   "Etalab – découpage administratif",
                   "© les contributeurs d'OpenStreetMap (ODbL)", "FICTIF", "proxy", "road",
                   "Limites"):
        assert needle in text or any(needle in h.value for h in at.header), needle


def test_listes_attente_page_runs(at: AppTest) -> None:
    at.switch_page(PAGES["listes_attente"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title and "attente" in at.title[0].value.lower()


def test_run_folder_choice_and_bad_folder(at: AppTest, tmp_path: Path) -> None:
    at.radio(key="dataset").set_value("Dossier de sortie d'un run").run()
    at.text_input(key="run_dir").set_value(str(tmp_path)).run()
    assert not at.exception
    assert any("manifest.json" in e.value for e in at.sidebar.error)
    at.text_input(key="run_dir").set_value(str(results.DEMO_RUN_DIR)).run()
    _ok(at)
    assert _metrics(at)["Population"] != ""
    # Département names come from the run's communes.
    names = departement_names(RunOutputs.load(results.DEMO_RUN_DIR))
    assert names
    assert all(f"{code} — {name}" in at.selectbox(key="dept").options
               for code, name in names.items())


def _services_csv(run: RunOutputs, rows: pd.DataFrame | None = None) -> bytes:
    frame = pd.DataFrame(run.services.drop(columns="geometry")) if rows is None else rows
    return frame.to_csv(index=False).encode("utf-8")


def test_uploaded_services_recompute_the_departement(at: AppTest) -> None:
    """A services CSV uploaded in the sidebar recomputes the département; pages use it."""
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    sel = at.session_state[state.SELECTION_KEY]
    before = int(_metrics(at)["Communes en zone blanche"].split(" / ")[0])
    # Keep one service of the selected type: coverage can only get worse.
    one = pd.DataFrame(run.services[run.services["type_service"] == sel.type_service]
                       .drop(columns="geometry")).head(1)
    at.file_uploader(key="services_upload").set_value(
        ("un_service.csv", _services_csv(run, one), "text/csv")).run()
    _ok(at)
    assert any("un_service.csv" in i.value for i in at.info)
    up = at.session_state[state.UPLOAD_KEY]
    assert up["engine"] in ("road", "proxy") and up["engine"] in up["note"]
    access = up["access"]
    dept_codes = set(run.communes.loc[run.communes["code_dep"] == sel.dept, "code_insee"])
    assert set(access["code_insee"]) == dept_codes
    rows = access[access["type_service"] == sel.type_service]
    white = int((~(rows["minutes"] <= sel.threshold_min)).sum())
    assert _metrics(at)["Communes en zone blanche"] == f"{white} / {len(dept_codes)}"
    assert white >= before
    assert set(rows["service_id"].dropna()) <= set(one["service_id"])
    # The tables follow; removing the file restores the run's services.
    at.switch_page(PAGES["zones_blanches"]).run()
    _ok(at)
    assert int(at.dataframe[0].value["zone_blanche"].sum()) == white
    at.file_uploader(key="services_upload").set_value(None).run()
    _ok(at)
    assert int(_metrics(at)["Communes en zone blanche"].split(" / ")[0]) == before


def test_bad_services_file_shows_rows_and_columns(at: AppTest) -> None:
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    bad = pd.DataFrame(run.services.drop(columns="geometry")).head(3).astype(object)
    bad.loc[bad.index[1], "lat"] = "pas un nombre"
    bad.loc[bad.index[2], "type_service"] = "crèche"
    at.file_uploader(key="services_upload").set_value(
        ("services_faux.csv", _services_csv(run, bad), "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("services_faux.csv" in e.value for e in at.sidebar.error)
    # the problems are a readable French table in the main area (row, column, message)
    problems = next(t.value for t in at.main.table if "Problème" in t.value.columns)
    assert list(problems.columns) == ["Ligne", "Colonne", "Problème"]
    assert {"lat", "type_service"} <= set(problems["Colonne"])
    assert problems["Ligne"].notna().all()
    assert problems["Problème"].str.len().gt(10).all()
    assert state.UPLOAD_KEY not in at.session_state


def test_oversized_services_file_is_refused(at: AppTest, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setattr(upload, "MAX_UPLOAD_BYTES", 100)
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    at.file_uploader(key="services_upload").set_value(
        ("gros.csv", _services_csv(run), "text/csv")).run()
    assert not at.exception
    assert any("limite" in e.value for e in at.sidebar.error)


def test_display_geometries_are_lighter(demo_dir: Path) -> None:
    run = RunOutputs.load(demo_dir)
    dept = run.depts[0]
    stamp = state.manifest_stamp(demo_dir)
    light = state.dept_display_geometries(str(demo_dir), stamp, dept)
    full = run.communes[run.communes["code_dep"] == dept]
    assert len(light) == len(full) and not light.geometry.is_empty.any()
    n_full = int(full.geometry.count_coordinates().sum())
    n_light = int(gpd.GeoSeries(light.geometry).count_coordinates().sum())
    assert n_light <= n_full


def test_combined_view_shows_every_service_type(at: AppTest) -> None:
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    at.selectbox(key="type_service").set_value(NO_SERVICE).run()
    _ok(at)
    sel = at.session_state[state.SELECTION_KEY]
    exp = _expected(run, sel.dept, NO_SERVICE, sel.threshold_min)
    assert _metrics(at)["Population en zone blanche"] == _int_text(
        exp["population_zone_blanche"])
    srcdoc = at.get("iframe")[0].proto.srcdoc
    # Services of the département and the nearest ones of its communes, of every type.
    acc = run.tables["acces_communes"]
    nearest = set(acc.loc[acc["code_dep"] == sel.dept, "service_id"].dropna())
    shown = run.services[(run.services["code_dep"] == sel.dept)
                         | run.services["service_id"].isin(nearest)]
    assert shown["type_service"].nunique() == 2
    assert srcdoc.count('"className": "service"') == len(shown)


def test_optional_basemap_from_the_sidebar(at: AppTest) -> None:
    assert "tileLayer" not in at.get("iframe")[0].proto.srcdoc
    at.text_input(key="tiles_url").set_value("http://127.0.0.1:9/{z}/{x}/{y}.png").run()
    _ok(at)
    srcdoc = at.get("iframe")[0].proto.srcdoc
    assert "tileLayer" in srcdoc and "http://127.0.0.1:9/{z}/{x}/{y}.png" in srcdoc


def test_nouveau_site_page_from_the_router(at: AppTest) -> None:
    """The siting page (coverage.siting) follows the shared sidebar; its own tests check
    the figures."""
    at.switch_page(PAGES["nouveau_site"]).run()
    _ok(at)
    sel = at.session_state[state.SELECTION_KEY]
    assert sel.dept in at.title[0].value
    srcdoc = at.get("iframe")[0].proto.srcdoc
    assert "nouveau-site" in srcdoc and not maps.external_references(srcdoc)
    captions = " ".join(c.value for c in at.caption)
    # the page describes the method it runs: exact, on the département's families only
    assert "couverture maximale exacte" in captions and "gloutonne" in captions
    assert "Écart de la méthode gloutonne à l'optimum" in captions
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    other = next(d for d in available_departements(run) if d != sel.dept)
    at.selectbox(key="dept").set_value(other).run()
    _ok(at)
    assert other in at.title[0].value


def test_commune_table_names_services_without_a_nom_column(
        demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = state.ensure_demo_run(str(demo_dir))
    run = RunOutputs.load(demo_dir)
    sel = state.Selection(str(demo_dir), stamp, run.depts[0], run_service_types(run)[0],
                          run_thresholds(run)[0])
    no_name = run.services.drop(columns="nom")
    monkeypatch.setattr(state, "services_for", lambda _sel: no_name)
    table = views.commune_table(sel)
    shown = set(table["service"].dropna().astype(str))
    assert shown, "no commune has a nearest service in the demo"
    assert shown <= set(run.services["service_id"].astype(str))  # the identifier, no KeyError
    names = views.service_names(pd.DataFrame({"service_id": ["a", "b", "c"],
                                              "nom": ["Maison A", " ", None]}))
    assert names == {"a": "Maison A", "b": "b", "c": "c"}


def test_warming_builds_the_nearest_departements_map(
        demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = state.ensure_demo_run(str(demo_dir))
    run = RunOutputs.load(demo_dir)
    assert len(run.depts) >= 2  # the demo has ZA and ZB: one to show, one to warm
    monkeypatch.setenv(state.ENV_NO_WARM, "1")  # no thread: the steps are run here
    monkeypatch.setattr(state, "WARM_IDLE_S", 0.0)
    stype, thresholds = run_service_types(run)[0], run_thresholds(run)
    sel = state.Selection(str(demo_dir), stamp, run.depts[0], stype, thresholds[-1])
    warmer = state._Warmer(str(demo_dir), stamp)
    warmer.focus = (sel, run.engine)
    step = warmer._next()
    assert step is not None
    kind, other, engine = step
    assert kind == "map" and other.dept != sel.dept and other.type_service == stype
    state._carte_map.clear()
    warmer._step(kind, other, engine)
    assert ("map", other.dept, stype, str(thresholds[-1]), "None", engine) in warmer.done
    built: list[str] = []
    real = maps.access_map_and_legend

    def counted(*args: object, **kwargs: object) -> object:
        if threading.current_thread() is threading.main_thread():  # not a warming thread
            built.append(str(kwargs.get("threshold_min")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(maps, "access_map_and_legend", counted)
    access = state.dept_access(str(demo_dir), stamp, other.dept)
    page, legend = state.carte_map(other, None, "run", views.type_rows(access, stype), access,
                                   run.services, engine)
    assert built == []  # the page found the warmed map in the cache
    assert f"{maps.HATCH_ID}-" in page
    assert "zb-app-legend" in legend
    cold = state.Selection(str(demo_dir), stamp, other.dept, stype, thresholds[0])
    state.carte_map(cold, None, "run", views.type_rows(access, stype), access, run.services,
                    engine)
    assert built == [str(thresholds[0])]  # a map not warmed is built on the page's call


def test_tables_show_french_numbers_whatever_the_browser() -> None:
    frame = pd.DataFrame({"nom": ["A", "B"], "population": [12345, 678],
                          "indice": [1234.56, float("nan")], "taux": [0.8125, 0.5],
                          "part": [0.125, None], "annee": [2025, 2024],
                          "ecart": [-1500.25, 3.0], "zone_blanche": [True, False]})
    number = st.column_config.NumberColumn
    config = {"population": number("Population", format="localized", width=90),
              "part": number("Part", format="percent"), "annee": number("Année", format="%d"),
              "nom": "Commune"}
    styled, conf = views.french_table(frame, config)
    shown = styled.data if hasattr(styled, "data") else styled
    assert shown is frame  # the cells keep their numbers: a click on a heading sorts them
    text = styled.to_string(delimiter="|").splitlines()
    rows = [line.split("|")[1:] for line in text[1:]]
    header = text[0].split("|")[1:]
    cell = {(r, header[i]): v for r, row in enumerate(rows) for i, v in enumerate(row)}
    assert [cell[(0, "population")], cell[(1, "population")]] == ["12\u202f345", "678"]
    assert [cell[(0, "indice")], cell[(1, "indice")]] == ["1\u202f234,6", ""]  # missing: empty
    assert [cell[(0, "taux")], cell[(1, "taux")]] == ["0,812", "0,500"]  # same decimals
    assert [cell[(0, "part")], cell[(1, "part")]] == ["12,5\u202f%", ""]
    assert [cell[(0, "annee")], cell[(1, "annee")]] == ["2025", "2024"]  # a year: no space
    assert [cell[(0, "ecart")], cell[(1, "ecart")]] == ["\u22121\u202f500,2", "3,0"]
    assert cell[(0, "zone_blanche")] == "True" and cell[(0, "nom")] == "A"
    # the number columns keep their type and title, without a format of the browser's own
    for col in ("population", "part", "annee"):
        assert conf[col]["type_config"]["type"] == "number"
        assert "format" not in conf[col]["type_config"]
    assert conf["population"]["label"] == "Population" and conf["population"]["width"] == 90
    assert conf["nom"] == "Commune"
    assert config["population"]["type_config"]["format"] == "localized"  # caller's untouched


def test_very_large_tables_show_french_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "STYLED_CELLS", 100)
    rows = 51
    frame = pd.DataFrame({"code": ["x"] * rows, "population": [1234] * rows})
    shown, conf = views.french_table(frame, {"population": st.column_config.NumberColumn(
        "Population", format="localized")})
    assert isinstance(shown, pd.DataFrame)  # beyond pandas' Styler: text, sorted as text
    assert shown["population"].iloc[0] == "1\u202f234"
    assert conf["population"]["type_config"]["type"] == "text"


def test_a_table_column_shows_the_same_decimals_in_every_cell() -> None:
    """« 2,0 » beside « 2,5 », never « 2 »: one number of decimals per column."""
    import pandas as pd

    from coverage.app import views

    def texts(values: list[float]) -> list[str]:
        fmt = views._formatter(pd.Series(values), None)
        return [fmt(v) for v in values]

    assert texts([2.0, 2.5]) == ["2,0", "2,5"]
    assert texts([0.25, 0.5]) == ["0,25", "0,50"]
    assert texts([0.125, 1.0]) == ["0,125", "1,000"]
    assert texts([12.34, 1.0, 1234.5]) == ["12,3", "1,0", "1\u202f234,5"]
    assert texts([3.0, 1200.0, float("nan")]) == ["3", "1\u202f200", ""]
    assert texts([-0.5, 1.0]) == ["\u22120,5", "1,0"]
