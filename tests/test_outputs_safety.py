"""Outputs never overwrite inputs or unrelated files; faults are told in plain French.

* ``run --out`` refuses ``/``, the home folder, a folder holding the run's inputs, a file,
  and a non-empty folder that is not a run folder (unless ``--force``), before any input
  is read; a run never removes a file it did not write and record.
* ``export --out`` refuses the run folder and its parts (except ``exports/``).
* ``sites --out`` never writes over a run's file, and replaces a user's file only with
  ``--force``.
* A read-only folder, a full disk (a small tmpfs in a private mount namespace), an existing
  file as ``--out`` and a bad GraphML each give one French sentence naming the path, no
  traceback.
* A ``$`` in a file name does not break the PNG map (no mathtext).
* ``zones-blanches app`` stopped by ``SIGTERM`` leaves no Streamlit server behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from PIL import Image
from shapely.geometry import box

from coverage.batch import RunOptions, run_batch
from coverage.batch.outdir import (
    check_export_out,
    check_file_out,
    check_run_out,
    is_run_folder,
)
from coverage.cli import main
from coverage.errors import OutputError
from coverage.export import export_departement, figures
from coverage.io.inputs import Inputs, load_inputs
from coverage.results import RunOutputs, source_line

REPO_ROOT = Path(__file__).resolve().parents[1]
MF, ER = "mediation_familiale", "espace_rencontre"
QUICK = ["--workers", "1", "--no-isochrones", "--engine", "proxy"]


def _cli_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("zones-blanches")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "coverage.cli"]


def _tiny_inputs() -> Inputs:
    """Three real communes of the Cantal (15) and two services (proxy engine)."""
    pts = [("15014", 2.44, 44.93, 25000, 2), ("15120", 2.33, 45.22, 3800, 3),
           ("15187", 3.08, 45.03, 5300, 3)]
    com = gpd.GeoDataFrame({
        "code_insee": [p[0] for p in pts], "nom": [f"Commune {p[0]}" for p in pts],
        "code_dep": "15", "code_reg": "84", "population": [p[3] for p in pts],
        "densite": [p[4] for p in pts], "rural": [p[4] >= 3 for p in pts],
        "lon": [p[1] for p in pts], "lat": [p[2] for p in pts],
        "code_epci": "241500230", "nom_epci": "CA Aurillac", "fictif": False},
        geometry=[box(p[1] - 0.05, p[2] - 0.05, p[1] + 0.05, p[2] + 0.05) for p in pts],
        crs="EPSG:4326")
    svc = pd.DataFrame({"service_id": ["MF15", "ER15"], "type_service": [MF, ER],
                        "nom": ["a", "b"], "code_insee": ["15014", "15187"],
                        "code_dep": "15", "lon": [2.44, 3.08], "lat": [44.93, 45.03]})
    services = gpd.GeoDataFrame(svc, geometry=gpd.points_from_xy(svc.lon, svc.lat),
                                crs="EPSG:4326")
    return Inputs(communes=com, services=services, waiting=None, roads=None, fictif=False)


TINY = RunOptions(workers=1, isochrones=False, thresholds=[30.0])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("safety") / "run"
    run_batch(load_inputs(), out_dir=out, options=RunOptions(
        workers=1, isochrones=False, engine="proxy", thresholds=[30.0]))
    return out


def _no_inputs_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any input loading of ``run`` fail the test: refusals come first."""
    import coverage.cli.run

    def forbidden(**_kw: object) -> None:
        raise AssertionError("inputs were loaded before --out was checked")

    monkeypatch.setattr(coverage.cli.run, "load_inputs", forbidden)


def _one_french_line(err: str, *words: str) -> None:
    """One error line; input warnings (« avertissement … », e.g. the demo's two services
    placed at their commune) may come before it."""
    lines = [line for line in err.splitlines()
             if line.strip() and not line.startswith("avertissement ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for word in words:
        assert word in lines[0], (word, err)


# --- run --out ---------------------------------------------------------------------------
def test_run_out_refuses_root_home_inputs_and_files(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(OutputError, match="racine du système de fichiers"):
        check_run_out("/")
    with pytest.raises(OutputError, match="dossier personnel"):
        check_run_out(home)
    with pytest.raises(OutputError, match="dossier personnel"):
        check_run_out(home.parent, force=True)  # a parent of home, even forced
    communes = home / "data" / "sub" / "communes.csv"
    communes.parent.mkdir()
    communes.write_text("x", encoding="utf-8")
    for out in (home / "data" / "sub", home / "data"):  # directly or deeper inside
        with pytest.raises(OutputError, match="fichier d'entrée"):
            check_run_out(out, inputs=[None, communes], force=True)
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="n'est pas un dossier"):
        check_run_out(afile)
    with pytest.raises(OutputError, match="est un fichier, pas un dossier"):
        check_run_out(afile / "sub")
    assert check_run_out(tmp_path / "new" / "run") == (tmp_path / "new" / "run").resolve()


def test_run_out_non_empty_folder_needs_force(tmp_path: Path) -> None:
    mine = tmp_path / "mes_documents"
    mine.mkdir()
    (mine / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match=r"n'est pas vide.*notes\.txt.*--force"):
        check_run_out(mine)
    assert check_run_out(mine, force=True) == mine.resolve()
    foreign = tmp_path / "autre_outil"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"format": "autre"}', encoding="utf-8")
    assert not is_run_folder(foreign)
    with pytest.raises(OutputError, match=r"manifest\.json"):
        check_run_out(foreign)
    interrupted = tmp_path / "interrompu"
    (interrupted / ".cache").mkdir(parents=True)
    (interrupted / "tables").mkdir()
    (interrupted / ".communes.ab12cd34.tmp.parquet").write_bytes(b"")
    (interrupted / ".DS_Store").write_bytes(b"")
    assert is_run_folder(interrupted)
    check_run_out(interrupted)
    empty = tmp_path / "vide"
    empty.mkdir()
    assert not is_run_folder(empty)
    check_run_out(empty)


def test_cli_run_refuses_bad_out_before_reading_inputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _no_inputs_read(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "rapport.docx").write_bytes(b"x")
    afile = tmp_path / "afile.txt"
    afile.write_text("x", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    communes = data / "communes.csv"
    communes.write_text("x", encoding="utf-8")
    cases = [(["--out", "/"], "racine"), (["--out", str(tmp_path)], "dossier personnel"),
             (["--out", str(mine)], "--force"), (["--out", str(afile)], str(afile)),
             (["--out", str(data), "--communes", str(communes), "--force"], str(communes))]
    for extra, word in cases:
        assert main(["run", *extra]) == 2
        _one_french_line(capsys.readouterr().err, "zones-blanches run", word)
    assert sorted(p.name for p in mine.iterdir()) == ["rapport.docx"]
    assert afile.read_text(encoding="utf-8") == "x"


@pytest.mark.slow
def test_run_never_removes_files_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_batch(_tiny_inputs(), out_dir=out, options=TINY)
    user_files = {
        ".brouillon.tmp.txt": b"brouillon",
        "notes.txt": b"notes",
        "isochrones_geojson/isochrones_types_copie.geojson": b"{}",
        "isochrones_geojson/mon_trace.geojson": b"{}",
        "tables/mes_notes.csv": b"a,b\n",
        "tables/.acces.tmp.csv": b"x",
    }
    for rel, data in user_files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    for thresholds in ([20.0], [45.0]):  # new outputs each time: a real rewrite
        run_batch(_tiny_inputs(), out_dir=out, options=replace(TINY, thresholds=thresholds))
        for rel, data in user_files.items():
            assert (out / rel).read_bytes() == data, rel
    assert RunOutputs.load(out).manifest["thresholds_min"] == [45.0]


@pytest.mark.slow
def test_cli_run_with_force_writes_beside_user_files(tmp_path: Path) -> None:
    out = tmp_path / "partage"
    out.mkdir()
    (out / "lisez-moi.txt").write_text("à garder", encoding="utf-8")
    assert main(["run", "--out", str(out), *QUICK, "--thresholds", "30"]) == 2
    assert not (out / "manifest.json").exists()
    assert main(["run", "--out", str(out), *QUICK, "--thresholds", "30", "--force"]) == 0
    assert (out / "manifest.json").exists()
    assert (out / "lisez-moi.txt").read_text(encoding="utf-8") == "à garder"
    # now a run folder: a rerun needs no --force
    assert main(["run", "--out", str(out), *QUICK, "--thresholds", "20"]) == 0


# --- export --out ------------------------------------------------------------------------
def test_export_never_into_a_run_folder(demo_run: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in (demo_run / "tables").iterdir()}
    for out in (demo_run, demo_run / "tables", demo_run / ".cache" / "x"):
        with pytest.raises(OutputError, match="dossier du calcul"):
            check_export_out(out)
        assert main(["export", "--dept", "ZA", "--run", str(demo_run), "--formats", "csv",
                     "--out", str(out)]) == 2
        _one_french_line(capsys.readouterr().err, "zones-blanches export", str(demo_run))
    run = RunOutputs.load(demo_run)
    with pytest.raises(OutputError, match="dossier du calcul"):
        export_departement(run, "ZA", formats=["csv"], out_dir=demo_run)
    assert {p: p.read_bytes() for p in (demo_run / "tables").iterdir()} == before
    # the default place, <run>/exports/<dept>, and a folder elsewhere are fine
    assert main(["export", "--dept", "ZA", "--run", str(demo_run), "--formats", "csv"]) == 0
    assert (demo_run / "exports" / "ZA" / "tables" / "acces_communes.csv").exists()
    assert main(["export", "--dept", "ZA", "--run", str(demo_run), "--formats", "csv",
                 "--out", str(tmp_path / "exp")]) == 0
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    assert main(["export", "--dept", "ZA", "--run", str(demo_run), "--formats", "csv",
                 "--out", str(afile)]) == 2
    _one_french_line(capsys.readouterr().err, str(afile), "n'est pas un dossier")
    assert afile.read_text(encoding="utf-8") == "x"
    RunOutputs.load(demo_run)  # still whole


# --- sites --out -------------------------------------------------------------------------
def test_sites_out_never_over_a_run_file_or_a_user_file(
        demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = demo_run / "tables" / "acces_communes.csv"
    before = table.read_bytes()
    args = ["sites", "--dept", "ZA", "--type", MF, "--run", str(demo_run)]
    for target in (table, demo_run / "manifest.json", demo_run / "tables" / "neuf.csv"):
        assert main([*args, "--out", str(target), "--force"]) == 2
        _one_french_line(capsys.readouterr().err, "appartient au calcul")
    assert table.read_bytes() == before
    user = tmp_path / "budget.csv"
    user.write_text("poste,montant\nloyer,100\n", encoding="utf-8")
    assert main([*args, "--out", str(user)]) == 2
    _one_french_line(capsys.readouterr().err, "refus d'écraser", str(user), "--force")
    assert user.read_text(encoding="utf-8").startswith("poste,montant")
    ours = tmp_path / "sites.csv"
    assert main([*args, "--out", str(ours)]) == 0
    assert main([*args, "-k", "2", "--out", str(ours)]) == 0  # its own file: replaced
    assert main([*args, "--out", str(user), "--force"]) == 0
    assert user.read_text(encoding="utf-8").startswith("rang,site_id")
    with pytest.raises(OutputError, match="c'est un dossier"):
        check_file_out(tmp_path, is_ours=lambda p: True)


# --- faults, in a private mount namespace --------------------------------------------------
def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=8k tmpfs /mnt"],
                           capture_output=True, check=False)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _unshare_works(),
                                  reason="needs `unshare -m` and mount (root in a container)")


def _in_namespace(setup: str, *cli: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI after ``setup`` (shell mounts) in a private mount namespace."""
    script = f'{setup} && exec "$@"'
    env = dict(os.environ, ZB_PROGRESS="0")
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *_cli_cmd(), *cli],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def _french_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    err = "\n".join(line for line in proc.stderr.splitlines()
                    if not line.startswith("WARNING"))
    _one_french_line(err, *words)


@needs_mounts
@pytest.mark.slow
def test_read_only_out_is_refused_in_french(demo_run: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    setup = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro}"
    proc = _in_namespace(setup, "run", "--out", str(ro / "out"), *QUICK, cwd=tmp_path)
    _french_error(proc, str(ro), "lecture seule")
    proc = _in_namespace(setup, "export", "--dept", "ZA", "--run", str(demo_run), "--out",
                         str(ro / "exp"), cwd=tmp_path)
    _french_error(proc, str(ro), "lecture seule")
    proc = _in_namespace(setup, "sites", "--dept", "ZA", "--type", MF, "--run",
                         str(demo_run), "--out", str(ro / "s.csv"), cwd=tmp_path)
    _french_error(proc, str(ro), "lecture seule")


@needs_mounts
@pytest.mark.slow
@pytest.mark.parametrize("size", ["16k", "200k"])
def test_full_disk_is_one_french_sentence(tmp_path: Path, size: str) -> None:
    small = tmp_path / "petit"
    small.mkdir()
    proc = _in_namespace(f"mount -t tmpfs -o size={size} tmpfs {small}", "run", "--out",
                         str(small / "out"), *QUICK, cwd=tmp_path)
    _french_error(proc, str(small / "out"), "disque plein")


@pytest.mark.slow
def test_bad_graphml_is_one_french_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "routes.graphml"
    bad.write_text('<graphml><graph edgedefault="directed"><node id="a">', encoding="utf-8")
    proc = subprocess.run([*_cli_cmd(), "run", "--roads", str(bad), "--out",
                           str(tmp_path / "out"), "--workers", "1", "--no-isochrones"],
                          cwd=tmp_path, env=dict(os.environ, ZB_PROGRESS="0"),
                          capture_output=True, text=True, timeout=300, check=False)
    _french_error(proc, str(bad), "GraphML")
    assert not (tmp_path / "out" / "manifest.json").exists()


# --- a $ in a file name ------------------------------------------------------------------
def test_dollar_in_names_does_not_break_the_png(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _tiny_inputs()
    named: dict[str, str] = {}
    for key, name in (("communes", "communes_$\\x$.gpkg"), ("services", "services_$y.csv")):
        path = tmp_path / name
        path.write_text("x", encoding="utf-8")
        named[key] = str(path)
    out = tmp_path / "run"
    run_batch(replace(inputs, paths=named), out_dir=out, options=TINY)
    run = RunOutputs.load(out)
    assert "communes_$\\x$.gpkg" in source_line(run)  # the file names reach the PNG
    files = export_departement(run, "15", formats=["png"], out_dir=tmp_path / "exp")
    png = next(f for f in files if f.suffix == ".png")
    with Image.open(png) as image:
        assert image.size[0] > 100
    # the check can fail: with mathtext on, the same export breaks
    monkeypatch.setattr(figures, "plain_text", lambda fig: fig)
    with pytest.raises(ValueError, match=r"\\x"):
        export_departement(run, "15", formats=["png"], out_dir=tmp_path / "exp2")


# --- zones-blanches app and SIGTERM --------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text(encoding="ascii").split()
        found += [int(t) for t in text]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return False
    return state[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_sigterm_stops_the_streamlit_child(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps({}), encoding="utf-8")
    port = _free_port()
    log_path = tmp_path / "app.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*_cli_cmd(), "app", "--port", str(port), "--run",
                                 str(run_dir)], cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT)
        children: list[int] = []
        try:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, log_path.read_text(errors="replace")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                                timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the app did not start within 90 s"
                time.sleep(0.5)
            children = _children(proc.pid)
            assert children, "no Streamlit child process found"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 128 + signal.SIGTERM
            deadline = time.monotonic() + 15
            while any(_alive(c) for c in children) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not any(_alive(c) for c in children), "Streamlit survived SIGTERM"
            with pytest.raises(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for child in children:  # never leave a server behind, even on failure
                if _alive(child):
                    os.kill(child, signal.SIGKILL)
    assert "http://127.0.0.1:" in log_path.read_text(errors="replace")
