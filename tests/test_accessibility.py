"""The accessibility index (2SFCA, E2SFCA): hand-computed cases, PySAL ``access`` on the same
matrices, the run's engine and the ``accessibilite`` command on the demo runs (FICTIONAL)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from access import Access, weights

from coverage import maps
from coverage.accessibility import (
    PER_INHABITANTS,
    DecayBands,
    accessibility_for_run,
    floating_catchment,
    service_capacities,
)
from coverage.cli import main
from coverage.errors import CoverageError, InputError
from coverage.export.provenance import EXPORT_RECORD, read_record
from coverage.results import RunOutputs
from coverage.routing import engine_of_run

DEMAND = pd.Series([100.0, 200.0, 300.0], index=["C1", "C2", "C3"])
SUPPLY = pd.Series([1.0, 2.0], index=["S1", "S2"])
#: C1–S1 5 min, C2–S1 15, C2–S2 25, C3–S2 8; C3–S1 40 min (beyond 30); C1–S2 unreachable.
PAIRS = pd.DataFrame({"code_insee": ["C1", "C2", "C2", "C3", "C3", "C1"],
                      "service_id": ["S1", "S1", "S2", "S2", "S1", "S2"],
                      "minutes": [5.0, 15.0, 25.0, 8.0, 40.0, np.nan]})


def test_2sfca_by_hand() -> None:
    res = floating_catchment(PAIRS, DEMAND, SUPPLY, threshold_min=30)
    # R1 = 1 / (100 + 200), R2 = 2 / (200 + 300)
    assert res.services["ratio"].tolist() == pytest.approx([1 / 300, 2 / 500], rel=1e-15)
    assert res.communes["indice"].tolist() == pytest.approx(
        [1 / 300, 1 / 300 + 2 / 500, 2 / 500], rel=1e-15)
    assert res.communes["services_accessibles"].tolist() == [1, 2, 1]
    assert res.communes["capacite_accessible"].tolist() == [1.0, 3.0, 2.0]
    # Every unit of capacity is shared out exactly.
    assert float((DEMAND * res.communes["indice"]).sum()) == pytest.approx(3.0, rel=1e-15)


def test_e2sfca_by_hand() -> None:
    bands = DecayBands.thirds(30)
    assert bands.uppers == (10.0, 20.0, 30.0) and bands.weights == (1.0, 0.68, 0.22)
    res = floating_catchment(PAIRS, DEMAND, SUPPLY, threshold_min=30, bands=bands)
    d1, d2 = 100 * 1 + 200 * 0.68, 200 * 0.22 + 300 * 1  # 236, 344
    assert res.services["demande_ponderee"].tolist() == pytest.approx([d1, d2], rel=1e-15)
    assert res.communes["indice"].tolist() == pytest.approx(
        [1 / d1, 0.68 / d1 + 0.22 * 2 / d2, 2 / d2], rel=1e-15)
    assert float((DEMAND * res.communes["indice"]).sum()) == pytest.approx(3.0, rel=1e-15)


def test_band_bounds_are_included_and_the_catchment_too() -> None:
    bands = DecayBands.thirds(30)
    w = bands.weight(np.array([0.0, 10.0, 10.0001, 20.0, 20.5, 30.0, 30.0001, np.nan]))
    assert w.tolist() == [1.0, 1.0, 0.68, 0.68, 0.22, 0.22, 0.0, 0.0]
    assert bands.describe() == "0–10 min : 1 ; 10–20 min : 0,68 ; 20–30 min : 0,22"
    pairs = pd.DataFrame({"code_insee": ["C1", "C2"], "service_id": ["S1", "S1"],
                          "minutes": [30.0, 30.0001]})
    res = floating_catchment(pairs, DEMAND, SUPPLY, threshold_min=30)
    assert res.communes["services_accessibles"].tolist() == [1, 0, 0]
    assert res.communes["indice"].tolist() == [1 / 100, 0.0, 0.0]
    with pytest.raises(CoverageError, match="sous l'aire de chalandise"):
        floating_catchment(pairs, DEMAND, SUPPLY, threshold_min=45, bands=bands)
    with pytest.raises(CoverageError):
        DecayBands((10.0, 5.0), (1.0, 0.5))


def test_empty_catchment_and_bad_values() -> None:
    """A service whose catchment holds nobody shares nothing; NaN or negatives are refused."""
    demand = pd.Series([0.0, 50.0], index=["C1", "C2"])
    pairs = pd.DataFrame({"code_insee": ["C1", "C2"], "service_id": ["S1", "S2"],
                          "minutes": [3.0, 3.0]})
    res = floating_catchment(pairs, demand, SUPPLY, threshold_min=20)
    assert res.services["ratio"].tolist() == [0.0, 2 / 50]
    assert res.communes["indice"].tolist() == [0.0, 2 / 50]
    with pytest.raises(InputError, match="nombre ≥ 0"):
        floating_catchment(pairs, pd.Series([np.nan, 1.0], index=["C1", "C2"]), SUPPLY,
                           threshold_min=20)
    with pytest.raises(InputError):
        floating_catchment(pairs, demand, pd.Series([-1.0, 1.0], index=["S1", "S2"]),
                           threshold_min=20)


def _random_case(seed: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    n_c, n_s = int(rng.integers(5, 40)), int(rng.integers(1, 8))
    codes = [f"C{i:03d}" for i in range(n_c)]
    ids = [f"S{j}" for j in range(n_s)]
    demand = pd.Series(rng.integers(1, 5000, n_c).astype(float), index=codes)
    supply = pd.Series(np.round(rng.uniform(0.1, 4.0, n_s), 2), index=ids)
    full = pd.DataFrame([(c, s) for c in codes for s in ids], columns=["code_insee",
                                                                        "service_id"])
    full["minutes"] = rng.uniform(0, 50, len(full)).round(1)  # bounds 10, 20, 30 hit too
    keep = rng.random(len(full)) < 0.6
    return full[keep].reset_index(drop=True), demand, supply


def _pysal(pairs: pd.DataFrame, demand: pd.Series, supply: pd.Series, *, enhanced: bool
           ) -> pd.Series:
    """Return PySAL access's 2SFCA or E2SFCA on the same matrix (NaN → 0, see the docs)."""
    acc = Access(demand_df=demand.rename("population").rename_axis("code_insee")
                 .reset_index(), demand_index="code_insee", demand_value="population",
                 supply_df=supply.rename("capacite").rename_axis("service_id").reset_index(),
                 supply_index="service_id", supply_value="capacite", cost_df=pairs,
                 cost_origin="code_insee", cost_dest="service_id", cost_name="minutes")
    if enhanced:
        out = acc.enhanced_two_stage_fca(
            name="x", max_cost=30, weight_fn=weights.step_fn({10: 1.0, 20: 0.68, 30: 0.22}))
    else:
        out = acc.two_stage_fca(name="x", max_cost=30)
    return out["x_capacite"].reindex(demand.index).fillna(0.0)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("enhanced", [False, True])
def test_equal_to_pysal_access(seed: int, enhanced: bool) -> None:
    pairs, demand, supply = _random_case(seed)
    res = floating_catchment(pairs, demand, supply, threshold_min=30,
                             bands=DecayBands.thirds(30) if enhanced else None)
    expected = _pysal(pairs, demand, supply, enhanced=enhanced)
    np.testing.assert_allclose(res.communes["indice"].to_numpy(), expected.to_numpy(),
                               rtol=1e-9, atol=1e-15)
    reached = res.services["demande_ponderee"] > 0
    assert float((demand * res.communes["indice"]).sum()) == pytest.approx(
        float(supply[reached.to_numpy()].sum()), rel=1e-12)


def test_service_capacities_default_and_warnings(caplog: pytest.LogCaptureFixture) -> None:
    svc = pd.DataFrame({"service_id": ["A", "B", "C"], "capacite": [1.5, None, 0.0]})
    with caplog.at_level(logging.WARNING, logger="coverage.accessibility"):
        cap, warn = service_capacities(svc)
    assert cap.tolist() == [1.5, 1.0, 0.0]
    assert warn == ["1 service(s) sans capacité renseignée, comptés pour 1 : B."]
    assert "sans capacité renseignée, comptés pour 1 : B" in caplog.text
    cap, warn = service_capacities(svc.drop(columns="capacite"))
    assert cap.tolist() == [1.0, 1.0, 1.0] and "chaque service compte pour 1" in warn[0]
    with pytest.raises(InputError, match="capacite"):
        service_capacities(svc.assign(capacite=["1", "x", "-2"]))


@pytest.mark.parametrize("fixture", ["demo_road_run", "demo_proxy_run"])
def test_run_index_equals_pysal_on_the_engines_matrix(fixture: str,
                                                       request: pytest.FixtureRequest) -> None:
    """On the run's own engine and matrix: the index equals PySAL's, the communes with no
    service within the threshold are the run's white zones, the means are weighted."""
    run = RunOutputs.load(request.getfixturevalue(fixture))
    engine = engine_of_run(run, dept="ZA").engine
    t = "mediation_familiale"
    res = accessibility_for_run(run, "ZA", type_service=t, threshold_min=30,
                                method="e2sfca", engine=engine)
    assert res.parameters["moteur"] == run.engine and not res.warnings
    svc = run.services[run.services["type_service"] == t]
    mat = engine.matrix(run.communes, svc, cutoff_min=30)
    pairs = pd.DataFrame({"code_insee": mat["code_insee"].astype(str),
                          "service_id": mat["service_id"].astype(str),
                          "minutes": mat["minutes"].astype(np.float64)})
    demand = pd.Series(run.communes["population"].astype(float).to_numpy(),
                       index=run.communes["code_insee"].astype(str))
    supply = pd.Series(svc["capacite"].astype(float).to_numpy(),
                       index=svc["service_id"].astype(str))
    expected = _pysal(pairs, demand, supply, enhanced=True) * PER_INHABITANTS
    got = res.communes.set_index("code_insee")["indice_pour_100k"]
    np.testing.assert_allclose(got.to_numpy(), expected.reindex(got.index).to_numpy(),
                               rtol=1e-9, atol=1e-12)
    acc = run.tables["acces_communes"]
    acc = acc[(acc["type_service"] == t) & (acc["code_dep"] == "ZA")]
    white = set(acc.loc[~(acc["minutes"] <= 30), "code_insee"])
    assert set(res.communes.loc[res.communes["services_accessibles"] == 0, "code_insee"]) \
        == white
    c = res.communes
    row = res.departements.iloc[0]
    assert row["indice_moyen_pour_100k"] == pytest.approx(
        float((c["population"] * c["indice_pour_100k"]).sum() / c["population"].sum()))
    assert row["communes_sans_service"] == len(white)
    assert res.epci["population"].sum() == c["population"].sum()
    plain = accessibility_for_run(run, "ZA", type_service=t, threshold_min=30,
                                  method="2sfca", engine=engine)
    np.testing.assert_allclose(
        plain.communes.set_index("code_insee")["indice_pour_100k"].to_numpy(),
        (_pysal(pairs, demand, supply, enhanced=False) * PER_INHABITANTS)
        .reindex(got.index).to_numpy(), rtol=1e-9, atol=1e-12)


def test_run_bad_questions(demo_proxy_run: Path) -> None:
    run = RunOutputs.load(demo_proxy_run)
    with pytest.raises(CoverageError, match="méthode"):
        accessibility_for_run(run, "ZA", type_service="mediation_familiale", method="3sfca")
    with pytest.raises(CoverageError, match="vue combinée"):
        accessibility_for_run(run, "ZA", type_service="aucun_service")
    with pytest.raises(CoverageError, match=r"familles.*colonnes numériques"):
        accessibility_for_run(run, "ZA", type_service="mediation_familiale",
                              population_column="familles")
    with pytest.raises(CoverageError, match="absent du calcul"):
        accessibility_for_run(run, "ZA", type_service="creche")


def test_cli_on_the_demo_run(demo_road_run: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "acc"
    assert main(["accessibilite", "--dept", "ZA", "--run", str(demo_road_run), "--out",
                 str(out), "--methode", "2sfca", "--seuil", "20"]) == 0
    printed = capsys.readouterr().out
    assert "TERRITOIRE FICTIF" in printed and "2SFCA" in printed
    assert "pour 100 000 habitants" in printed and "Médiation familiale" in printed
    tables = sorted(f"ZA_accessibilite_{n}{s}.csv" for n in
                    ("communes", "departement", "epci", "services") for s in ("", "_fr"))
    schemas = [f"ZA_accessibilite_{n}.schema.json" for n in
               ("communes", "departement", "epci", "services")]
    assert sorted(p.name for p in out.iterdir()) == sorted([*tables, *schemas, EXPORT_RECORD])
    record = read_record(out)  # a rerun of the run makes these files stale, then removed
    assert record is not None and sorted(record["fichiers"]) == sorted([*tables, *schemas])
    schema = json.loads((out / schemas[0]).read_text(encoding="utf-8"))
    fields = {f["name"]: f for f in schema["fields"]}
    assert [f["name"] for f in schema["fields"]] == list(
        pd.read_csv(out / tables[0], nrows=0).columns)
    assert fields["indice_pour_100k"]["unit"] == "ETP ou places pour 100 000 habitants"
    table = pd.read_csv(out / "ZA_accessibilite_communes.csv", dtype={"code_insee": str})
    run = RunOutputs.load(demo_road_run)
    assert set(table["type_service"]) == {"mediation_familiale", "espace_rencontre"}
    assert set(table["methode"]) == {"2sfca"} and set(table["seuil_minutes"]) == {20.0}
    expected = accessibility_for_run(run, "ZA", type_service="espace_rencontre",
                                     threshold_min=20, method="2sfca").communes
    got = table[table["type_service"] == "espace_rencontre"].reset_index(drop=True)
    np.testing.assert_allclose(got["indice_pour_100k"], expected["indice_pour_100k"],
                               rtol=1e-12)
    fr = (out / "ZA_accessibilite_departement_fr.csv").read_text(encoding="utf-8-sig")
    assert fr.splitlines()[0].startswith("code_dep;") and "," in fr.splitlines()[1]


def test_cli_bad_input_one_french_line(demo_proxy_run: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "acc"
    assert main(["accessibilite", "--dept", "ZZ", "--run", str(demo_proxy_run), "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "absent du calcul" in err[0] and "Traceback" not in err[0]
    assert main(["accessibilite", "--dept", "ZA", "--run", str(demo_proxy_run), "--out",
                 str(out), "--population", "familles"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "colonne de population" in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_cli_says_when_capacity_is_missing(demo_proxy_run: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import coverage.cli.accessibilite as cli_module

    run = RunOutputs.load(demo_proxy_run)
    run.services = run.services.drop(columns="capacite")
    monkeypatch.setattr(cli_module, "load_finished_run", lambda _path: run)
    assert main(["accessibilite", "--dept", "ZB", "--type", "espace_rencontre", "--out",
                 str(tmp_path / "acc")]) == 0
    printed = capsys.readouterr().out
    assert "Attention : Les services n'ont pas de colonne « capacite »" in printed
    table = pd.read_csv(tmp_path / "acc" / "ZB_accessibilite_services.csv")
    assert set(table["capacite"]) == {1.0}


def test_app_page_map_and_tables(demo_proxy_run: Path, monkeypatch: pytest.MonkeyPatch
                                 ) -> None:
    """The « Accessibilité » page from the router: figures of the library, map, tables."""
    from streamlit.testing.v1 import AppTest

    from coverage.app import state
    from coverage.labels import fr_decimal

    monkeypatch.setenv(state.ENV_RUN_DIR, str(demo_proxy_run))
    monkeypatch.delenv(state.ENV_TILES_URL, raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"),
                           default_timeout=240)
    at.run()
    at.switch_page("coverage/app/accessibilite.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    sel = at.session_state[state.SELECTION_KEY]
    assert sel.dept in at.title[0].value
    t = str(at.selectbox(key="acc_type").value)
    res = accessibility_for_run(RunOutputs.load(demo_proxy_run), sel.dept, type_service=t,
                                threshold_min=sel.threshold_min, method="e2sfca")
    metrics = {m.label: m.value for m in at.metric}
    mean = float(res.departements["indice_moyen_pour_100k"].iloc[0])
    assert metrics["Indice moyen (pour 100 000 hab.)"] == fr_decimal(mean, 2)
    srcdoc = at.get("iframe")[0].proto.srcdoc
    assert srcdoc.count('"txt"') >= len(res.communes) and "commune-indice" in srcdoc
    assert "FICTIF" in srcdoc and not maps.external_references(srcdoc)
    at.radio(key="acc_method").set_value("2sfca").run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == len(res.communes)


def test_matrice_run_is_timed_by_its_table(demo_road_run: Path, tmp_path: Path) -> None:
    """A ``matrice`` run made from the road engine's own times gives the road run's index."""
    from coverage.batch import RunOptions, run_batch
    from coverage.io.inputs import load_inputs

    road = RunOutputs.load(demo_road_run)
    engine = engine_of_run(road, dept="ZB").engine
    mat = engine.matrix(road.communes, road.services, cutoff_min=60)
    table = tmp_path / "temps.csv"
    mat.rename(columns={"code_insee": "origine", "service_id": "destination"})[
        ["origine", "destination", "minutes"]].to_csv(table, index=False)
    res = run_batch(load_inputs(), out_dir=tmp_path / "m",
                    options=RunOptions(times=table, workers=1, isochrones=False))
    run = RunOutputs.load(res.out_dir)
    assert run.engine == "matrice"
    for method in ("2sfca", "e2sfca"):
        got = accessibility_for_run(run, "ZB", type_service="espace_rencontre",
                                    threshold_min=30, method=method)
        assert got.parameters["moteur"] == "matrice"
        ref = accessibility_for_run(road, "ZB", type_service="espace_rencontre",
                                    threshold_min=30, method=method, engine=engine)
        np.testing.assert_allclose(got.communes["indice_pour_100k"],
                                   ref.communes["indice_pour_100k"], rtol=1e-12)
        assert got.communes["indice_pour_100k"].gt(0).any()


def test_map_classes_follow_the_index(demo_proxy_run: Path) -> None:
    """One polygon per commune; index 0 is grey, positive values in quintile classes."""
    from coverage.export.accessibility_map import (
        INDEX_COLOURS,
        NO_SERVICE_COLOUR,
        accessibility_map,
        index_breaks,
    )

    run = RunOutputs.load(demo_proxy_run)
    res = accessibility_for_run(run, "ZA", type_service="mediation_familiale")
    c = res.communes
    assert (c["indice_pour_100k"] == 0).any() and (c["indice_pour_100k"] > 0).any()
    breaks = index_breaks(c["indice_pour_100k"])
    assert breaks == sorted(breaks) and breaks[-1] == c["indice_pour_100k"].max()
    geoms = run.communes[run.communes["code_dep"] == "ZA"]
    m = accessibility_map(geoms, c, fictif=True)
    page = maps.map_html(m)
    assert not maps.external_references(page) and "FICTIF" in page
    data = next(json.loads(ch.data) if isinstance(ch.data, str) else ch.data
                for layer in m._children.values() for ch in layer._children.values()
                if hasattr(ch, "data") and isinstance(ch.data, (dict, str)))
    colours = [f["properties"]["_colour"] for f in data["features"]]
    assert len(colours) == len(c)
    by_code = dict(zip(c["code_insee"], c["indice_pour_100k"], strict=True))
    order = {col: k for k, col in enumerate(INDEX_COLOURS)}
    pairs = sorted((by_code[code], col) for code, col in
                   zip(geoms["code_insee"], colours, strict=True))
    assert all((v == 0) == (col == NO_SERVICE_COLOUR) for v, col in pairs)
    ranks = [order[col] for v, col in pairs if v > 0]
    assert ranks == sorted(ranks) and len(set(ranks)) > 1


def test_services_given_instead_of_the_runs(demo_proxy_run: Path) -> None:
    """Another list (the app's uploaded file): a service added in a white zone counts."""
    run = RunOutputs.load(demo_proxy_run)
    base = accessibility_for_run(run, "ZA", type_service="mediation_familiale")
    zero = base.communes[base.communes["services_accessibles"] == 0].sort_values(
        "population").iloc[-1]
    place = run.communes.set_index("code_insee").loc[zero["code_insee"]]
    extra = run.services.iloc[[0]].assign(service_id="NOUVEAU", capacite=3.0,
                                          lon=place["lon"], lat=place["lat"],
                                          code_insee=zero["code_insee"], code_dep="ZA")
    more = pd.concat([run.services, extra], ignore_index=True)
    res = accessibility_for_run(run, "ZA", type_service="mediation_familiale", services=more)
    assert res.parameters["services"] == base.parameters["services"] + 1
    row = res.communes.set_index("code_insee").loc[zero["code_insee"]]
    assert row["services_accessibles"] >= 1 and row["indice_pour_100k"] > 0
    assert "NOUVEAU" in set(res.services["service_id"])
    assert (res.departements["indice_moyen_pour_100k"].iloc[0]
            > base.departements["indice_moyen_pour_100k"].iloc[0])
