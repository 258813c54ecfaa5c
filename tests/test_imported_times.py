"""Imported travel times: the ``matrice`` engine and ``run --temps`` (issue 12, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coverage.batch import RunOptions, run_batch
from coverage.batch.cache import partition_key
from coverage.batch.partitions import EngineSpec
from coverage.cli import main
from coverage.errors import CoverageError, DuplicateIdError, InputError, UnknownCodeError
from coverage.files import sha256_file
from coverage.io.inputs import load_inputs
from coverage.results import RunOutputs, source_line
from coverage.routing import engine_of_run, make_engine
from coverage.routing.imported import ImportedEngine, read_times
from coverage.settings import Settings

NO_ISO = {"workers": 1, "isochrones": False}


@pytest.fixture(scope="module")
def road_run(tmp_path_factory: pytest.TempPathFactory):
    """The demo's road run (FICTIONAL territory), without isochrones."""
    out = tmp_path_factory.mktemp("road")
    return run_batch(load_inputs(), out_dir=out, options=RunOptions(**NO_ISO))


def _table_from_access(access: pd.DataFrame, path: Path) -> Path:
    """Write the reached commune → service pairs of a run as a long time table."""
    reached = access[access["minutes"].notna()]
    reached.rename(columns={"code_insee": "origine", "service_id": "destination",
                            "distance_km": "km"})[
        ["origine", "destination", "minutes", "km"]].to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_temps_reproduces_the_road_run_exactly(road_run, tmp_path: Path) -> None:
    road_access = road_run.tables["acces_communes"]
    table = _table_from_access(road_access, tmp_path / "temps.csv")
    res = run_batch(load_inputs(), out_dir=tmp_path / "matrice",
                    options=RunOptions(times=table, **NO_ISO))
    access = res.tables["acces_communes"]
    assert res.engine == "matrice"
    assert list(access["code_insee"]) == list(road_access["code_insee"])
    np.testing.assert_array_equal(access["minutes"].to_numpy(),
                                  road_access["minutes"].to_numpy())
    assert (access["service_id"].fillna("") == road_access["service_id"].fillna("")).all()
    np.testing.assert_array_equal(access["distance_km"].to_numpy(),
                                  road_access["distance_km"].to_numpy())
    assert set(access["moteur"]) == {"matrice"}
    params = res.manifest["engine"]["parameters"]
    assert params["fichier"] == "temps.csv"
    assert params["sha256"] == sha256_file(table)
    # every pair the table does not hold is unreachable, counted and reported
    n_pairs = len(load_inputs().communes) * len(load_inputs().services)
    assert params["paires_du_run"] == n_pairs
    assert params["paires_absentes"] == n_pairs - len(pd.read_csv(table))
    assert any("absentes du tableau" in w for w in res.manifest["warnings"])
    assert res.manifest["inputs"]["temps"]["sha256"] == sha256_file(table)
    line = source_line(RunOutputs.load(res.out_dir))
    assert "moteur matrice (tableau temps.csv, SHA-256 " + sha256_file(table)[:12] in line


def test_full_road_matrix_gives_the_road_minutes(road_run, tmp_path: Path) -> None:
    inputs = load_inputs()
    road = make_engine("road", inputs.roads, Settings())
    mat = road.matrix(inputs.communes, inputs.services, cutoff_min=1e6)
    path = tmp_path / "matrice.parquet"
    mat.rename(columns={"code_insee": "idSrc", "service_id": "idDst",
                        "minutes": "duree"}).to_parquet(path)
    engine = make_engine(times=path)
    near = engine.nearest(inputs.communes, inputs.services,
                          service_types=("mediation_familiale", "espace_rencontre"))
    road_access = road_run.tables["acces_communes"]
    merged = road_access.merge(near, on=["code_insee", "type_service"], suffixes=("", "_m"))
    np.testing.assert_allclose(merged["minutes_m"], merged["minutes"], rtol=1e-5,
                               atol=1e-4, equal_nan=True)


def _tiny() -> tuple[pd.DataFrame, pd.DataFrame]:
    communes = pd.DataFrame({"code_insee": ["01001", "01002", "01003"],
                             "lon": [5.0, 5.1, 5.2], "lat": [46.0, 46.0, 46.0]})
    services = pd.DataFrame({"service_id": ["S1", "S2", "S3"],
                             "type_service": ["mediation_familiale", "mediation_familiale",
                                              "espace_rencontre"],
                             "code_insee": ["01001", "01003", "01003"],
                             "lon": [5.0, 5.2, 5.2], "lat": [46.0, 46.0, 46.0]})
    return communes, services


def test_commune_table_maps_services_to_their_commune(tmp_path: Path) -> None:
    communes, services = _tiny()
    path = tmp_path / "communes.csv"
    pd.DataFrame({"from": ["01002", "01002", "01001", "1003"],
                  "to": ["01001", "01003", "01003", "01001"],
                  "seconds": [600, 900, 1200, 1500]}).to_csv(path, index=False)
    engine = ImportedEngine.from_file(path)
    check = engine.check(communes, services)
    assert check.destinations == "communes"
    assert check.diagonal_filled == 2  # 01001 and 01003 host a service, no own pair given
    near = engine.nearest(communes, services,
                          service_types=("mediation_familiale", "espace_rencontre"))
    got = near.set_index(["code_insee", "type_service"])["minutes"]
    assert got[("01002", "mediation_familiale")] == pytest.approx(10.0)  # S1 in 01001
    assert got[("01002", "espace_rencontre")] == pytest.approx(15.0)
    assert got[("01001", "mediation_familiale")] == 0.0  # its own commune
    assert got[("01001", "espace_rencontre")] == pytest.approx(20.0)
    assert got[("01003", "mediation_familiale")] == 0.0
    mat = engine.matrix(communes, services, cutoff_min=12.0)
    assert set(zip(mat["service_id"], mat["code_insee"], strict=True)) == {
        ("S1", "01002"), ("S1", "01001"), ("S2", "01003"), ("S3", "01003")}


def test_missing_pairs_are_nan(tmp_path: Path) -> None:
    communes, services = _tiny()
    path = tmp_path / "t.csv"
    pd.DataFrame({"origine": ["01001"], "destination": ["S1"],
                  "minutes": ["7,5"]}).to_csv(path, index=False, sep=";")
    engine = ImportedEngine.from_file(path)
    check = engine.check(communes, services)
    assert (check.pairs_run, check.pairs_missing) == (9, 8)
    near = engine.nearest(communes, services, service_types=("mediation_familiale",))
    assert near.set_index("code_insee")["minutes"].to_dict() == pytest.approx(
        {"01001": 7.5, "01002": np.nan, "01003": np.nan}, nan_ok=True)
    assert near["service_id"].iloc[1] is None


def test_wide_matrix_with_unit_option(tmp_path: Path) -> None:
    path = tmp_path / "osrm.csv"
    path.write_text('"id","01001","01002"\n"01001",0,120\n"01002",180,\n', encoding="utf-8")
    table = read_times(path, unit="s")
    assert table.layout == "wide"
    assert len(table) == 3  # the empty cell is a missing pair
    got = dict(zip(zip(table.origin, table.destination, strict=True), table.minutes,
                   strict=True))
    assert got[("01001", "01002")] == pytest.approx(2.0)
    assert got[("01002", "01001")] == pytest.approx(3.0)


def test_unit_column(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    pd.DataFrame({"origin": ["01001", "01002"], "destination": ["S1", "S1"],
                  "duree": [1, 90], "unite": ["h", "s"]}).to_csv(path, index=False)
    np.testing.assert_allclose(read_times(path).minutes, [60.0, 1.5])


@pytest.mark.parametrize(("rows", "kind", "words"), [
    ({"origine": ["01001", "01002"], "destination": ["S1", "S1"], "minutes": ["5", "-3"]},
     InputError, ["ligne 2", "colonne « minutes »", "attendu un temps ≥ 0", "trouvé « -3 »"]),
    ({"origine": ["01001", "01002"], "destination": ["S1", "S1"], "minutes": ["5", "abc"]},
     InputError, ["ligne 2", "« minutes »", "« abc »"]),
    ({"origine": ["01001", "01001"], "destination": ["S1", "S1"], "minutes": ["5", "6"]},
     DuplicateIdError, ["ligne 2", "01001 → S1 (déjà ligne 1)", "une paire origine"]),
])
def test_bad_table_lines(tmp_path: Path, rows: dict, kind: type, words: list[str]) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(kind) as err:
        read_times(path)
    text = str(err.value)
    assert text.startswith("bad.csv, ligne")
    for w in words:
        assert w in text


def test_unknown_codes_are_reported(tmp_path: Path) -> None:
    communes, services = _tiny()
    path = tmp_path / "t.csv"
    pd.DataFrame({"origine": ["01001", "99999"], "destination": ["S1", "S1"],
                  "minutes": [5, 6]}).to_csv(path, index=False)
    with pytest.raises(UnknownCodeError, match=r"t.csv, ligne 2, colonne « origine ».*99999"):
        ImportedEngine.from_file(path).check(communes, services)
    pd.DataFrame({"origine": ["01001", "01002"], "destination": ["S1", "NOPE"],
                  "minutes": [5, 6]}).to_csv(path, index=False)
    with pytest.raises(UnknownCodeError, match=r"ligne 2, colonne « destination ».*NOPE"):
        ImportedEngine.from_file(path).check(communes, services)
    pd.DataFrame({"origine": ["01001", "01002", "01002"], "destination": ["01002", "S1", "01003"],
                  "minutes": [5, 6, 7]}).to_csv(path, index=False)
    with pytest.raises(UnknownCodeError, match=r"ligne 2, colonne « destination ».*« S1 »"):
        ImportedEngine.from_file(path).check(communes, services)  # commune × commune table


def _demo_table(tmp_path: Path, road_run, **changes: object) -> Path:
    """The table of the road run with some cells changed (row number → (column, value))."""
    frame = pd.read_csv(_table_from_access(road_run.tables["acces_communes"],
                                           tmp_path / "temps.csv"), dtype=str)
    for key, value in changes.items():
        row, col = key.split("__")
        if str(value).startswith("@"):  # the value of that row
            value = frame.loc[int(str(value)[1:]), col]
        frame.loc[int(row), col] = value
    frame.to_csv(tmp_path / "temps.csv", index=False)
    return tmp_path / "temps.csv"


@pytest.mark.parametrize(("changes", "words"), [
    ({"1__origine": "ZA999"}, ["temps.csv, ligne 2, colonne « origine »", "ZA999"]),
    ({"0__minutes": "-1"}, ["temps.csv, ligne 1, colonne « minutes »", "un temps ≥ 0"]),
    ({"1__origine": "@0", "1__destination": "@0"},
     ["temps.csv, ligne 2, colonne « origine/destination »",
      "une paire origine → destination unique"]),
])
def test_cli_bad_table_exits_2_and_writes_nothing(road_run, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  changes: dict, words: list[str]) -> None:
    table = _demo_table(tmp_path, road_run, **changes)
    out = tmp_path / "out"
    assert main(["run", "--temps", str(table), "--out", str(out), "--no-isochrones"]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err
    assert not out.exists()


def test_cli_run_with_temps_and_settings_file(road_run, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    table = _demo_table(tmp_path, road_run)
    settings = tmp_path / "reglages.json"
    settings.write_text(json.dumps({"settings": {"thresholds_min": [15, 30]}}),
                        encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", "--temps", str(table), "--out", str(out), "--no-isochrones",
                 "--settings", str(settings), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "Moteur : matrice (temps importés temps.csv, SHA-256" in text
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"]["name"] == "matrice"
    assert manifest["thresholds_min"] == [15.0, 30.0]


def test_engine_of_a_matrice_run(road_run, tmp_path: Path) -> None:
    table = _table_from_access(road_run.tables["acces_communes"], tmp_path / "temps.csv")
    res = run_batch(load_inputs(), out_dir=tmp_path / "m",
                    options=RunOptions(times=table, **NO_ISO))
    run = RunOutputs.load(res.out_dir)
    rebuilt = engine_of_run(run, dept="ZA")
    assert rebuilt.engine.name == "matrice"
    assert run.manifest["engine"]["parameters"]["destinations"] == "services"
    assert rebuilt.engine.destinations == "services"  # type: ignore[attr-defined]
    table.write_text("origine,destination,minutes\n", encoding="utf-8")  # changed file
    with pytest.raises(CoverageError, match=r"temps\.csv"):
        engine_of_run(run, dept="ZA")
    assert engine_of_run(run, dept="ZA", fallback_to_proxy=True).engine.name == "proxy"


def test_partition_key_follows_the_table() -> None:
    spec = EngineSpec("matrice", None, None, Settings(), times="t.csv", times_sha256="a" * 64)
    other = EngineSpec("matrice", None, None, Settings(), times="t.csv", times_sha256="b" * 64)
    args = ("c", "s", "ZA")
    assert partition_key(*args, spec, None, ("x",), "v") != partition_key(
        *args, other, None, ("x",), "v")
    road = EngineSpec("road", "r.osm", None, Settings())
    assert "times_sha256" not in json.dumps(road.memo_key())


def test_matrice_without_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CoverageError, match="--temps"):
        run_batch(load_inputs(), out_dir=tmp_path / "x",
                  options=RunOptions(engine="matrice", **NO_ISO))
    assert not (tmp_path / "x").exists()


def test_problem_line_in_french() -> None:
    from coverage.errors import Problem

    line = Problem("t.csv", 3, "minutes", "un nombre ≥ 0", "-2").french()
    assert line == "t.csv, ligne 3, colonne « minutes » : attendu un nombre ≥ 0, trouvé « -2 »"
    assert Problem("t.csv", None, None, "un fichier").french() == "t.csv : attendu un fichier"


def test_a_subset_of_services_finds_the_same_pairs(tmp_path: Path) -> None:
    """The table's destinations are read from the table, not from the services passed."""
    communes, services = _tiny()
    by_service = tmp_path / "services.csv"
    pd.DataFrame({"origine": ["01001", "01002", "01003", "01002"],
                  "destination": ["S1", "S2", "S3", "S3"],
                  "minutes": [5, 8, 0, 11]}).to_csv(by_service, index=False)
    by_commune = tmp_path / "communes.csv"
    pd.DataFrame({"origine": ["01002", "01002", "01001"],
                  "destination": ["01001", "01003", "01003"],
                  "minutes": [10, 15, 20]}).to_csv(by_commune, index=False)
    one = services[services["service_id"] == "S3"]  # one of three: a third of the ids
    for path, kind, want in ((by_service, "services", {("S3", "01003"), ("S3", "01002")}),
                             (by_commune, "communes",
                              {("S3", "01003"), ("S3", "01002"), ("S3", "01001")})):
        engine = ImportedEngine.from_file(path)
        assert engine.destinations == kind
        mat = engine.matrix(communes, one, cutoff_min=60.0)
        assert set(zip(mat["service_id"], mat["code_insee"], strict=True)) == want
        full = engine.matrix(communes, services, cutoff_min=60.0)
        assert set(zip(full["service_id"], full["code_insee"], strict=True)) >= want
        near = engine.nearest(communes, one, service_types=("espace_rencontre",))
        assert near.set_index("code_insee")["minutes"]["01002"] == pytest.approx(
            11.0 if kind == "services" else 15.0)
        assert engine.check(communes, services).destinations == kind
    # what a run recorded wins over the table's own reading; a bad kind is refused
    assert ImportedEngine.from_file(by_service, destinations="communes").destinations == \
        "communes"
    with pytest.raises(CoverageError, match="destinations"):
        ImportedEngine.from_file(by_service, destinations="lieux")
