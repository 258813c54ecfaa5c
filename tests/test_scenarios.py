"""Instant scenarios (issue 14): add, move or remove a site in a département, updated
incrementally with the run's engine, equal to a full computation; the « Nouveau site » page
keeps two scenarios side by side.

The demo territory is FICTIONAL.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from coverage import results
from coverage.app import state
from coverage.errors import CoverageError
from coverage.results import RunOutputs
from coverage.routing import engine_of_run
from coverage.scenario import Scenario, access_rows, complete_services

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "app.py"
PAGE = "coverage/app/nouveau_site.py"
TYPE = "mediation_familiale"
TYPES = ("mediation_familiale", "espace_rencontre")


def _scenario(run_dir: Path, dept: str = "ZA") -> tuple[Scenario, RunOutputs]:
    run = RunOutputs.load(run_dir)
    engine = engine_of_run(run, dept=dept).engine
    com = pd.DataFrame(run.communes).drop(columns="geometry")
    access = run.tables["acces_communes"]
    scn = Scenario.of_run(engine, com[com["code_dep"] == dept], run.services, access, TYPES,
                          all_communes=com)
    return scn, run


def _assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal values column by column (the run's table reads back with other dtypes)."""
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    for col in want.columns:
        a, b = got[col].reset_index(drop=True), want[col].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_array_equal(a.to_numpy(dtype=float), b.to_numpy(dtype=float),
                                          err_msg=col)
        else:
            assert (a.astype(object).where(a.notna(), "").astype(str).tolist()
                    == b.astype(object).where(b.notna(), "").astype(str).tolist()), col


def _full(scn: Scenario) -> pd.DataFrame:
    """The rows of the scenario's communes computed from scratch on its services."""
    return access_rows(scn.engine, scn.communes, scn.services, scn.types)


@pytest.mark.parametrize("fixture", ["demo_proxy_run", "demo_road_run"])
@pytest.mark.parametrize("seed", range(3))
def test_random_changes_equal_a_full_computation(fixture: str, seed: int,
                                                  request: pytest.FixtureRequest) -> None:
    """Property-style: a seeded chain of additions, moves and removals; after each change
    the incremental rows equal a full computation of the département."""
    scn, _ = _scenario(request.getfixturevalue(fixture))
    base = scn.access
    _assert_same_rows(base, _full(scn))
    rng = np.random.default_rng(seed)
    codes = scn.communes["code_insee"].astype(str).to_numpy()
    for _ in range(4):
        kind = rng.integers(3)
        mine = scn.services[scn.services["code_dep"].astype(str) == "ZA"]
        if kind == 0 or mine.empty:
            scn = scn.add(str(rng.choice(codes)), TYPES[int(rng.integers(2))])
        elif kind == 1:
            scn = scn.move(str(rng.choice(mine["service_id"])), str(rng.choice(codes)))
        else:
            scn = scn.remove(str(rng.choice(mine["service_id"])))
        _assert_same_rows(scn.access, _full(scn))
    assert len(scn.changes) == len(scn.recomputed) == 4
    assert all(0 <= n <= len(scn.communes) for n in scn.recomputed)


def test_a_new_site_in_a_white_commune_covers_it(demo_proxy_run: Path) -> None:
    scn, _ = _scenario(demo_proxy_run)
    before = scn.figures(TYPE, 45.0)
    rows = scn.access[scn.access["type_service"] == TYPE]
    white = rows.loc[rows["minutes"].fillna(np.inf).idxmax()]
    after = scn.add(str(white["code_insee"]), TYPE)
    fig = after.figures(TYPE, 45.0)
    assert str(white["code_insee"]) in set(fig.gained["code_insee"])
    assert fig.lost.empty
    assert fig.population_white == before.population_white - int(fig.gained.population.sum())
    assert after.services["service_id"].iloc[-1] == "SCENARIO-1"
    assert after.recomputed[0] < len(scn.communes)
    # removing the new site gives the run back
    back = after.remove("SCENARIO-1")
    _assert_same_rows(back.access, scn.access)
    assert back.figures(TYPE, 45.0).population_white == before.population_white


def test_removing_a_service_loses_population(demo_proxy_run: Path) -> None:
    scn, _ = _scenario(demo_proxy_run)
    sid = str(scn.services.loc[(scn.services["code_dep"] == "ZA")
                               & (scn.services["type_service"] == TYPE), "service_id"].iloc[0])
    fig = scn.remove(sid).figures(TYPE, 20.0)
    assert fig.gained.empty
    assert len(fig.lost) > 0
    assert fig.population_white == (scn.figures(TYPE, 20.0).population_white
                                    + int(fig.lost.population.sum()))


def test_bad_scenario_changes_say_what_is_wrong(demo_proxy_run: Path) -> None:
    scn, _ = _scenario(demo_proxy_run)
    with pytest.raises(CoverageError, match="commune 'XX999' inconnue"):
        scn.add("XX999", TYPE)
    with pytest.raises(CoverageError, match="service 'NOPE' absent"):
        scn.remove("NOPE")


def test_complete_services_fills_density_from_the_communes(demo_proxy_run: Path) -> None:
    run = RunOutputs.load(demo_proxy_run)
    com = pd.DataFrame(run.communes).drop(columns="geometry")
    out = complete_services(pd.DataFrame(run.services).drop(columns="geometry"), com)
    dens = com.set_index("code_insee")["densite"]
    assert (out["densite"].to_numpy() == out["code_insee"].map(dens).to_numpy()).all()


# --- The page ------------------------------------------------------------------------------

@pytest.fixture
def page(demo_road_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app on a copy of the demo road run, switched to « Nouveau site »."""
    run_dir = tmp_path / "demo"
    shutil.copytree(demo_road_run, run_dir)
    monkeypatch.setattr(results, "DEMO_RUN_DIR", run_dir)
    monkeypatch.delenv(state.ENV_RUN_DIR, raising=False)
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    app = AppTest.from_file(str(APP), default_timeout=240)
    app.run()
    app.switch_page(PAGE).run()
    _ok(app)
    return app


def _ok(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def _white_population(app: AppTest) -> list[str]:
    return [m.value for m in app.metric if m.label == "Population en zone blanche"]


def _captions(app: AppTest) -> str:
    return " ".join(c.value for c in app.caption)


def test_page_scenarios_add_remove_move_side_by_side(page: AppTest) -> None:
    at = page
    start = _white_population(at)
    assert len(start) == 2 and start[0] == start[1]  # A and B start from the run
    assert "Aucun changement" in _captions(at)
    # A: add a site in the commune farthest from the service of the page's type
    run = RunOutputs.load(results.DEMO_RUN_DIR)
    sel = at.session_state[state.SELECTION_KEY]
    type_service = at.selectbox(key="site_type").value
    acc = run.tables["acces_communes"]
    rows = acc[(acc["code_dep"] == sel.dept) & (acc["type_service"] == type_service)]
    far = str(rows.loc[rows["minutes"].fillna(np.inf).idxmax(), "code_insee"])
    at.selectbox(key="scenario_A_action").set_value("ajout").run()
    at.selectbox(key="scenario_A_commune").set_value(far).run()
    at.button(key="scenario_A_apply").click().run()
    _ok(at)
    after_a = _white_population(at)
    assert after_a[1] == start[1]  # B untouched
    index = [m for m in at.metric if m.label.startswith("Indice d'accessibilité")]
    assert len(index) == 2 and index[0].value != index[1].value  # A has one more site
    assert "ajout d'un site" in _captions(at) and "recalculée(s)" in _captions(at)
    assert at.session_state["scenario_A_changes"]["changes"][-1][0] == "ajout"
    # B: remove a service of the département
    at.selectbox(key="scenario_B_action").set_value("retrait").run()
    at.button(key="scenario_B_apply").click().run()
    _ok(at)
    after_b = _white_population(at)
    assert after_b[0] == after_a[0]  # A kept
    assert "retrait de" in _captions(at)
    assert len(at.get("iframe")) >= 3  # suggested sites, scenario A and scenario B maps
    # A: move the new site elsewhere, then back to the run
    at.selectbox(key="scenario_A_action").set_value("deplacement").run()
    at.selectbox(key="scenario_A_service").set_value("SCENARIO-1").run()
    other = next(c for c in rows["code_insee"].astype(str) if c != far)
    at.selectbox(key="scenario_A_commune").set_value(other).run()
    at.button(key="scenario_A_apply").click().run()
    _ok(at)
    assert "déplacement de SCENARIO-1" in _captions(at)
    assert len(at.session_state["scenario_A_changes"]["changes"]) == 2
    at.button(key="scenario_A_reset").click().run()
    _ok(at)
    assert _white_population(at)[0] == start[0]
    assert at.session_state["scenario_B_changes"]["changes"]
    # another département: the scenarios start again from its run
    other = next(d for d in results.available_departements(run) if d != sel.dept)
    at.selectbox(key="dept").set_value(other).run()
    _ok(at)
    assert "Aucun changement" in _captions(at)
