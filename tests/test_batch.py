"""The batch: cache, kill and resume, schemas of every table, argument errors, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import copy_run
from shapely.geometry import box

from coverage.batch import RunOptions, RunResult, frame_digest, partition_services, run_batch
from coverage.errors import CoverageError
from coverage.io.inputs import Inputs, load_inputs
from coverage.results import RunFolderError, RunOutputs
from coverage.schemas import OUTPUT_CONTRACTS
from coverage.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MF, ER = "mediation_familiale", "espace_rencontre"
#: In this process, without isochrones (the options of most tests).
LOCAL = RunOptions(workers=1, isochrones=False)


# --- a tiny real-coded territory: two départements far apart (proxy engine) ----------------

def _tiny_inputs(er_lon: float = 9.0) -> Inputs:
    """Cantal (15) around Aurillac and Corse-du-Sud (2A) around Ajaccio, 3 + 2 communes."""
    pts = [("15014", "15", 2.44, 44.93, 25000, 2), ("15120", "15", 2.33, 45.22, 3800, 3),
           ("15187", "15", 3.08, 45.03, 5300, 3), ("2A004", "2A", 8.74, 41.93, 70000, 1),
           ("2A247", "2A", 9.28, 41.60, 3700, 3)]
    com = gpd.GeoDataFrame({
        "code_insee": [p[0] for p in pts], "nom": [f"Commune {p[0]}" for p in pts],
        "code_dep": [p[1] for p in pts], "code_reg": ["84", "84", "84", "94", "94"],
        "population": [p[4] for p in pts], "densite": [p[5] for p in pts],
        "rural": [p[5] >= 3 for p in pts], "lon": [p[2] for p in pts],
        "lat": [p[3] for p in pts],
        "code_epci": ["241500230", "241500271", None, "200066793", "242010056"],
        "nom_epci": ["CA Aurillac", "CC Pays de Mauriac", None, "CA Pays Ajaccien",
                     "CC Sud Corse"], "fictif": False},
        geometry=[box(p[2] - 0.05, p[3] - 0.05, p[2] + 0.05, p[3] + 0.05) for p in pts],
        crs="EPSG:4326")
    svc = pd.DataFrame({
        "service_id": ["MF15", "ER15", "MF2A", "ER2A"],
        "type_service": [MF, ER, MF, ER],
        "nom": ["a", "b", "c", "d"], "code_insee": ["15014", "15187", "2A004", "2A247"],
        "code_dep": ["15", "15", "2A", "2A"],
        "lon": [2.44, 3.08, 8.74, er_lon], "lat": [44.93, 45.03, 41.93, 41.65]})
    services = gpd.GeoDataFrame(svc, geometry=gpd.points_from_xy(svc.lon, svc.lat),
                                crs="EPSG:4326")
    return Inputs(communes=com, services=services, waiting=None, roads=None, fictif=False)


def _outputs(out: Path) -> dict[str, bytes]:
    """Every output file except the manifest and the cache, by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".cache" not in p.parts and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    """A first run of :func:`_tiny_inputs` (LOCAL options) and its folder: never altered,
    the tests that run again in it take a copy (:func:`tiny_copy`)."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    return run_batch(_tiny_inputs(), out_dir=out, options=LOCAL), out


@pytest.fixture
def tiny_copy(tiny_run: tuple[RunResult, Path], tmp_path: Path) -> Path:
    """A copy, in this test's folder, of the finished run of :func:`tiny_run`."""
    return copy_run(tiny_run[1], tmp_path / "run")


def test_rerun_is_cached_and_identical(tiny_run: tuple[RunResult, Path], tiny_copy: Path
                                       ) -> None:
    inputs = _tiny_inputs()
    first, tmp_path = tiny_run[0], tiny_copy
    assert sorted(first.computed) == ["15", "2A"] and first.cached == []
    before = _outputs(tmp_path)
    manifest = (tmp_path / "manifest.json").read_bytes()
    again = run_batch(inputs, out_dir=tmp_path, options=LOCAL)
    assert again.computed == [] and sorted(again.cached) == ["15", "2A"] and again.reused
    assert _outputs(tmp_path) == before
    assert (tmp_path / "manifest.json").read_bytes() == manifest  # nothing rewritten
    for name, df in first.tables.items():
        pd.testing.assert_frame_equal(df.reset_index(drop=True),
                                      again.tables[name].reset_index(drop=True),
                                      check_dtype=False)


def test_changed_service_reruns_only_its_partition(tiny_copy: Path, tmp_path: Path) -> None:
    moved = run_batch(_tiny_inputs(er_lon=9.2), out_dir=tiny_copy, options=LOCAL)
    assert moved.computed == ["2A"] and moved.cached == ["15"] and not moved.reused
    acc = moved.tables["acces_communes"].set_index(["code_insee", "type_service"])
    fresh = run_batch(_tiny_inputs(er_lon=9.2), out_dir=tmp_path / "fresh", options=LOCAL)
    pd.testing.assert_frame_equal(
        acc, fresh.tables["acces_communes"].set_index(["code_insee", "type_service"]))


def test_threshold_change_recomputes_no_partition(tiny_copy: Path) -> None:
    tmp_path = tiny_copy  # a finished run of the tiny inputs
    res = run_batch(_tiny_inputs(), out_dir=tmp_path,
                    options=RunOptions(workers=1, isochrones=False, thresholds=[15, 60]))
    assert res.computed == [] and not res.reused
    assert sorted(set(res.tables["zones_blanches"]["seuil_minutes"])) <= [15.0, 60.0]
    assert json.loads((tmp_path / "manifest.json").read_text())["thresholds_min"] == [15, 60]


def test_no_cache_recomputes(tiny_copy: Path, tmp_path: Path) -> None:
    res = run_batch(_tiny_inputs(), out_dir=tiny_copy,
                    options=RunOptions(workers=1, isochrones=False, use_cache=False))
    assert sorted(res.computed) == ["15", "2A"] and not res.reused
    # a run without the cache writes no partition cache
    fresh = tmp_path / "sans_cache"
    run_batch(_tiny_inputs(), out_dir=fresh,
              options=RunOptions(workers=1, isochrones=False, use_cache=False))
    assert (fresh / "manifest.json").is_file()
    assert not list((fresh / ".cache").rglob("*.parquet"))
    assert not list((fresh / ".cache").rglob("*.arrow"))
    again = run_batch(_tiny_inputs(), out_dir=fresh, options=LOCAL)
    assert again.reused  # same run: the outputs are kept as they are


def test_partition_services_keep_cross_border_and_drop_far() -> None:
    inputs = _tiny_inputs()
    com15 = inputs.communes[inputs.communes.code_dep == "15"]
    sel = partition_services(com15, inputs.services, "15", "proxy", Settings())
    assert set(sel.service_id) == {"MF15", "ER15"}  # Corsica is far beyond the buffer
    # a département with no service of a type keeps the nearest ones, wherever they are
    only_corsica = inputs.services[inputs.services.code_dep == "2A"]
    sel = partition_services(com15, only_corsica, "15", "proxy", Settings())
    assert set(sel.service_id) == {"MF2A", "ER2A"}


def test_frame_digest_changes_with_content() -> None:
    a = _tiny_inputs().communes
    b = a.copy()
    b.loc[0, "population"] = 25001
    assert frame_digest(a) == frame_digest(a.copy())
    assert frame_digest(a) != frame_digest(b)


# --- schemas --------------------------------------------------------------------------------

_PY_CHECK = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: float(v) == int(float(v)),
    "year": lambda v: float(v) == int(float(v)),
    "number": lambda v: isinstance(float(v), float),
    "boolean": lambda v: v in ("True", "False", "true", "false"),
}


def _validate(folder: Path, name: str) -> int:
    schema = json.loads((folder / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert schema["name"] == name and schema["version"]
    names = [f["name"] for f in schema["fields"]]
    assert names == OUTPUT_CONTRACTS[name].columns
    csv = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
    assert list(csv.columns) == names
    pq = pd.read_parquet(folder / f"{name}.parquet")
    assert list(pq.columns) == names and len(pq) == len(csv)
    cells = 0
    for f in schema["fields"]:
        col = csv[f["name"]]
        if f.get("constraints", {}).get("required"):
            assert (col != "").all(), f"{name}.{f['name']} has empty required cells"
        for v in col[col != ""]:
            assert _PY_CHECK[f["type"]](v), (name, f["name"], v)
            cells += 1
        dtype = str(pq[f["name"]].dtype)
        expect = {"string": ("str", "string", "object"), "integer": ("int64", "Int64"),
                  "year": ("int64", "Int64"), "number": ("float64",),
                  "boolean": ("bool", "boolean")}[f["type"]]
        assert dtype in expect, (name, f["name"], dtype)
    if schema.get("primaryKey"):
        assert not pq.duplicated(schema["primaryKey"]).any()
    return cells


def test_every_table_validates_against_its_schema(demo_road_run: Path) -> None:
    # the session's run of the FICTIONAL demo (road engine, LOCAL options), read only
    names = json.loads((demo_road_run / "manifest.json").read_text(encoding="utf-8"))["tables"]
    assert {"acces_communes", "zones_blanches", "couverture_departements",
            "couverture_regions", "couverture_epci", "couverture_cours_appel",
            "couverture_densite", "couverture_france"} <= set(names)
    assert sum(_validate(demo_road_run / "tables", n) for n in names) > 1000


def test_manifest_and_run_outputs(demo_road_copy: Path) -> None:
    tmp_path = demo_road_copy  # a copy of the session's demo run (LOCAL options): altered below
    m = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert m["fictif"] is True and "FICTIF" in m["fictional_label"]
    assert m["engine"]["name"] == "road" and m["engine"]["parameters"]["reseau_sha256"]
    assert {"communes", "services", "roads"} <= set(m["inputs"])
    assert all(len(v["sha256"]) == 64 for v in m["inputs"].values())
    assert m["parameters"] == Settings().as_dict()
    assert m["versions"]["pandas"] == pd.__version__
    assert m["output_contract_version"] and m["timings_s"]["total_s"] > 0
    loaded = RunOutputs.load(tmp_path)
    assert loaded.engine == "road" and loaded.fictif and loaded.depts == ["ZA", "ZB"]
    assert loaded.isochrones("isochrones_types") is None  # not asked
    assert len(loaded.communes) == len(loaded.tables["acces_communes"]) // 2
    assert loaded.communes.crs == "EPSG:4326" and loaded.services.crs == "EPSG:4326"
    assert "listes_attente_departements" in loaded.tables  # the demo has waiting lists
    (tmp_path / "services.parquet").unlink()
    with pytest.raises(RunFolderError, match=r"services\.parquet"):
        RunOutputs.load(tmp_path)
    with pytest.raises(RunFolderError, match=r"manifest\.json"):
        RunOutputs.load(tmp_path / "tables")


# --- argument errors: clear message, nothing written -----------------------------------------

@pytest.mark.parametrize(("kwargs", "match"), [
    ({"depts": ["99"]}, "code\\(s\\) de département inconnu"),
    ({"types": ["creche"]}, "type\\(s\\) de service inconnu\\(s\\)"),
    ({"engine": "road"}, "a besoin d.un réseau routier"),
    ({"thresholds": [0]}, "minutes positives"),
])
def test_bad_arguments_write_nothing(tmp_path: Path, kwargs: dict, match: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(CoverageError, match=match):
        run_batch(_tiny_inputs(), out_dir=out, options=RunOptions(workers=1, **kwargs))
    assert not out.exists()


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coverage.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ZB_PROGRESS": "0", **(env or {})})


def test_cli_bad_dept_exits_nonzero_without_output(tmp_path: Path) -> None:
    proc = _cli("run", "--dept", "99", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode != 0
    assert "de département inconnu(s) : 99" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_cli_demo_run_prints_fictional_label_and_summary(demo_road_copy: Path) -> None:
    from coverage.cli import main

    out = demo_road_copy  # a finished demo run: other thresholds reuse its partitions
    code = main(["run", "--out", str(out), "--workers", "1", "--no-isochrones",
                 "--thresholds", "20,30"])
    assert code == 0
    assert (out / "manifest.json").exists()
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["thresholds_min"] == [20.0, 30.0] and m["fictif"]


def test_cli_summary_text(demo_road_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from coverage.cli import main

    tmp_path = demo_road_copy  # a finished demo run with the same options: reused as it is
    assert main(["run", "--out", str(tmp_path), "--workers", "1", "--no-isochrones"]) == 0
    text = capsys.readouterr().out
    assert "DONNÉES FICTIVES" in text and "Moteur : road" in text
    # every threshold of the run, French numbers, labels beside codes
    assert all(f"Zones blanches au-delà de {t} min" in text for t in (20, 30, 45))
    assert "Médiation familiale : " in text and "ZA Hautes-Brumes (fictif)" in text
    assert "par niveau de densité INSEE" in text and "4 — très peu dense" in text
    assert str(tmp_path) in text


# --- kill and resume ----------------------------------------------------------------------

_SLOW_RUN = textwrap.dedent("""
    import sys, time
    import coverage.batch.executors as b
    _orig = b.run_partition
    _calls = []
    def _slow(task):
        _calls.append(task.dept)
        if len(_calls) > 1:
            time.sleep(60)  # the test kills the process during this pause
        return _orig(task)
    b.run_partition = _slow
    from coverage.cli import main
    sys.exit(main(["run", "--out", sys.argv[1], "--workers", "1", "--no-isochrones"]))
""")


def test_kill_and_resume_gives_identical_outputs(tmp_path: Path) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    script = tmp_path / "slow_run.py"
    script.write_text(_SLOW_RUN, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(killed)], cwd=tmp_path,
                            env={**os.environ, "ZB_PROGRESS": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        part = killed / ".cache" / "partitions"
        while time.monotonic() < deadline:
            # the first partition is cached once its metadata (written after its table)
            # exists; the second one is then paused in _slow
            if proc.poll() is not None:
                break
            if part.exists() and any(part.glob("*.json")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the slowed run ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (killed / "manifest.json").exists()  # killed mid-run
    # a temporary file of an interrupted write, as a kill during a write leaves it
    (killed / "tables").mkdir(exist_ok=True)
    (killed / "tables" / ".acces_communes.abc123.tmp.csv").write_text("half", "utf-8")
    resumed = run_batch(load_inputs(), out_dir=killed, options=LOCAL)
    assert len(resumed.cached) >= 1, "the resumed run should reuse the finished partition"
    run_batch(load_inputs(), out_dir=clean,
              options=RunOptions(workers=1, isochrones=False, use_cache=False))
    got, ref = _outputs(killed), _outputs(clean)
    assert got.keys() == ref.keys()
    assert not any(Path(k).name.startswith(".") for k in got)  # no temp file left
    for name in got:
        if name.endswith(".parquet"):
            a, b = pd.read_parquet(killed / name), pd.read_parquet(clean / name)
            pd.testing.assert_frame_equal(a, b)
        else:
            assert got[name] == ref[name], name


def test_result_type(tmp_path: Path) -> None:
    res = run_batch(_tiny_inputs(), out_dir=tmp_path,
                    options=RunOptions(workers=1, isochrones=False, types=[MF], depts=["15"]))
    assert isinstance(res, RunResult)
    assert set(res.tables["acces_communes"]["type_service"]) == {MF}
    assert set(res.tables["acces_communes"]["code_dep"]) == {"15"}
    assert np.isfinite(res.tables["acces_communes"]["minutes"]).all()


def test_cli_data_dir_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--data-dir`` reads the fetch + prepare layout (here filled with the FICTIONAL demo)."""
    from coverage.cli import main
    from coverage.demo import demo_paths

    demo = demo_paths()
    folder = tmp_path / "donnees" / "ZA"
    folder.mkdir(parents=True)
    gpd.read_file(demo.communes).to_file(folder / "communes.gpkg", layer="communes")
    (folder / "services.csv").write_bytes(demo.services.read_bytes())
    out = tmp_path / "out"
    code = main(["run", "--data-dir", str(tmp_path / "donnees"), "--dept", "ZA", "--out",
                 str(out), "--workers", "1", "--no-isochrones"])
    assert code == 0
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["depts"] == ["ZA"] and m["engine"]["name"] == "proxy"  # no routes.osm.pbf
    assert "Moteur : proxy" in capsys.readouterr().out
    assert main(["run", "--data-dir", str(tmp_path / "donnees"), "--dept", "ZB", "--out",
                 str(tmp_path / "none")]) != 0
    assert "prepare --dept ZB" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_run_writes_isochrones(tmp_path: Path) -> None:
    pytest.importorskip("coverage.isochrones")
    inputs = load_inputs()
    # one 20-minute band keeps the layers (and their GeoJSON copies) small
    run_batch(inputs, out_dir=tmp_path, options=RunOptions(
        workers=1, thresholds=[20.0], isochrones=True, isochrones_geojson=True))
    loaded = RunOutputs.load(tmp_path)
    layers = loaded.isochrone_layers()
    assert "isochrones_types" in layers and "isochrones_services" in layers
    bands = loaded.isochrones("isochrones_types")
    assert bands is not None and set(bands["moteur"]) == {"road"}
    assert set(bands["type_service"]) <= {MF, ER} and len(bands) > 0
    assert loaded.manifest["isochrones_file"] == "isochrones.gpkg"
    # GeoJSON on request: one file per layer of the GeoPackage, EPSG:4326, same bands
    folder = tmp_path / "isochrones_geojson"
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(f"{layer}.geojson" for layer in layers) and len(files) == 4
    assert sorted(loaded.manifest["isochrones_geojson"]) == [
        f"isochrones_geojson/{name}" for name in files]
    for layer in layers:
        from_gpkg = loaded.isochrones(layer)
        from_json = gpd.read_file(folder / f"{layer}.geojson")
        assert from_gpkg is not None and from_json.crs is not None
        assert from_json.crs.to_epsg() == 4326
        assert len(from_json) == len(from_gpkg) > 0
        assert list(from_json["bande_max"]) == list(from_gpkg["bande_max"])
        if layer == "isochrones_types":  # the same polygons, to rounding (m², local UTM)
            utm = from_gpkg.estimate_utm_crs()
            a, b = from_gpkg.geometry.to_crs(utm), from_json.geometry.to_crs(utm)
            diff = a.symmetric_difference(b, align=False).area.to_numpy()
            assert (diff <= 1.0 + 1e-6 * a.area.to_numpy()).all()
    # a later run without the GeoJSON removes the stale files
    run_batch(inputs, out_dir=tmp_path,
              options=RunOptions(workers=1, thresholds=[20.0], isochrones=False))
    assert not folder.exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["isochrones_geojson"] is None


def test_fictional_label_names_the_demo_only_for_the_demo(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from coverage.batch.manifest import fictional_label as _fictional_label
    from coverage.demo import demo_paths
    from coverage.labels import FICTIONAL_LABEL, OTHER_FICTIONAL_LABEL

    demo = SimpleNamespace(paths={"communes": str(demo_paths().communes)})
    other = SimpleNamespace(paths={"communes": str(tmp_path / "andorre_fictif.gpkg")})
    assert _fictional_label(demo) == FICTIONAL_LABEL
    assert _fictional_label(other) == OTHER_FICTIONAL_LABEL
    assert "Brumeval" not in OTHER_FICTIONAL_LABEL



def test_cli_passes_the_geojson_flag_and_refuses_it_without_isochrones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import coverage.cli.run
    from coverage.cli import main

    out = tmp_path / "demo"
    # contradictory flags: refused before anything is written
    assert main(["run", "--out", str(out), "--workers", "1", "--no-isochrones",
                 "--isochrones-geojson"]) != 0
    assert not out.exists() or not any(out.iterdir())
    seen: list[dict] = []

    def fake_run(inputs, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs)
        raise CoverageError("stop here")

    monkeypatch.setattr(coverage.cli.run, "run_batch", fake_run)
    assert main(["run", "--out", str(out), "--isochrones-geojson"]) != 0
    assert main(["run", "--out", str(out)]) != 0
    assert [k["options"].isochrones_geojson for k in seen] == [True, False]


def test_isochrone_workers_follow_the_option_then_the_service_count() -> None:
    """Per-service bands use the run's ``workers`` when given, else forks for many services."""
    from coverage.batch import run as batch_run

    many = batch_run.MIN_SERVICES_FOR_PROCESSES
    assert batch_run._isochrone_workers(3, 1) == 3
    assert batch_run._isochrone_workers(1, 10 * many) == 1
    assert batch_run._isochrone_workers(None, many - 1) == 1
    assert batch_run._isochrone_workers(None, many) == (os.cpu_count() or 1)
