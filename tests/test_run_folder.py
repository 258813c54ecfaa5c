"""Run folders are whole or absent: staging and switch, digests, lock, kills, full disk."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from coverage.batch import RunOptions, run_batch
from coverage.batch.cache import clean_stale_temps
from coverage.cli import main
from coverage.errors import FolderBusyError
from coverage.files import exclusive_lock
from coverage.io.inputs import load_inputs
from coverage.results import CACHE_DIR, MANIFEST, RunFolderError, RunOutputs

#: Run A (the finished run a rerun goes over) and run B (the rerun), on the FICTIONAL demo.
OLD = RunOptions(workers=1, isochrones=False, thresholds=(20, 30))
NEW = RunOptions(workers=1, isochrones=False, thresholds=(20, 30, 45))
NEW_ARGS = ["--workers", "1", "--no-isochrones", "--thresholds", "20,30,45"]

#: A rerun that stops at a stage: it touches the marker file, then waits (the test kills it,
#: or lets it go on by creating the release file).
_PAUSED_RUN = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import coverage.batch.folder as folder
    import coverage.files as files
    stage, marker, release = os.environ["ZB_STAGE"], Path(sys.argv[2]), Path(sys.argv[3])
    files.LOCK_WAIT_S = float(os.environ.get("ZB_LOCK_WAIT", "5"))
    def hook(name):
        if name == stage:
            marker.touch()
            deadline = time.monotonic() + 120
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    folder.stage_hook = hook
    from coverage.cli import main
    sys.exit(main(["run", "--out", sys.argv[1], *sys.argv[4:]]))
""")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "ZB_PROGRESS": "0", **extra}


def _start(tmp: Path, out: Path, stage: str, *args: str, **env: str) -> subprocess.Popen:
    script = tmp / "paused_run.py"
    script.write_text(_PAUSED_RUN, encoding="utf-8")
    marker, release = tmp / f"at-{os.getpid()}-{time.monotonic_ns()}", tmp / "release"
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(marker),
                             str(release), *args], cwd=tmp, env=_env(ZB_STAGE=stage, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _, err = proc.communicate()
            pytest.fail(f"the run did not reach {stage}: {proc.returncode} {err}")
        time.sleep(0.05)
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def _state(out: Path, old: dict) -> str:
    """Return "old", "new" or "refused" (a clear refusal naming the fix); fail on a mix.

    ``old`` is the manifest of run A in ``out`` before the rerun. The folder is read back
    as the app and ``export`` read it (:meth:`RunOutputs.load` checks every digest).
    """
    try:
        run = RunOutputs.load(out)
    except RunFolderError as exc:
        assert "relancez" in str(exc), exc
        return "refused"
    m = run.manifest
    if m["run_key"] == old["run_key"]:
        assert m["outputs"] == old["outputs"]
        return "old"
    assert m["thresholds_min"] == [20.0, 30.0, 45.0], "a manifest of neither run"
    assert set(m["outputs"]) >= {f"tables/{t}.parquet" for t in m["tables"]}
    assert set(run.tables) == set(m["tables"])
    return "new"


# --- the manifest records every output; readers check it ---------------------------------

def test_manifest_records_every_output_and_load_checks_it(tmp_path: Path) -> None:
    res = run_batch(load_inputs(), out_dir=tmp_path, options=OLD)
    outputs = res.manifest["outputs"]
    assert "tables/acces_communes.parquet" in outputs and "communes.parquet" in outputs
    assert all(len(v["sha256"]) == 64 and v["bytes"] > 0 for v in outputs.values())
    assert RunOutputs.load(tmp_path).manifest["run_key"] == res.manifest["run_key"]
    # a table from another run: refused, naming the file and the fix
    table = tmp_path / "tables" / "zones_blanches.csv"
    table.write_text(table.read_text(encoding="utf-8") + "x\n", encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"zones_blanches\.csv.*relancez"):
        RunOutputs.load(tmp_path)
    table.unlink()
    with pytest.raises(RunFolderError, match=r"zones_blanches\.csv est absent"):
        RunOutputs.load(tmp_path)
    # the next run rewrites the folder whole (the damaged outputs are not reused)
    again = run_batch(load_inputs(), out_dir=tmp_path, options=OLD)
    assert not again.reused
    RunOutputs.load(tmp_path)


def test_export_refuses_a_mixed_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    run_batch(load_inputs(), out_dir=a, options=OLD)
    run_batch(load_inputs(), out_dir=b, options=NEW)
    for name in ("zones_blanches.parquet", "zones_blanches.csv"):  # new tables, old manifest
        (a / "tables" / name).write_bytes((b / "tables" / name).read_bytes())
    code = main(["export", "--run", str(a), "--dept", "ZA", "--formats", "csv",
                 "--out", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert code != 0 and "zones_blanches" in err and "relancez" in err
    assert "Traceback" not in err and not (tmp_path / "exp").exists()


def test_rerun_removes_only_recorded_files(tmp_path: Path) -> None:
    with_iso = RunOptions(workers=1, isochrones=True, isochrones_geojson=True,
                          thresholds=(20, 30))
    run_batch(load_inputs(), out_dir=tmp_path, options=with_iso)
    assert (tmp_path / "isochrones.gpkg").exists()
    mine = [tmp_path / ".brouillon.tmp.txt", tmp_path / "notes.geojson",
            tmp_path / "isochrones_geojson" / "ma_couche.geojson"]
    for p in mine:
        p.write_text("à moi", encoding="utf-8")
    res = run_batch(load_inputs(), out_dir=tmp_path, options=NEW)
    assert not (tmp_path / "isochrones.gpkg").exists()
    assert not list((tmp_path / "isochrones_geojson").glob("isochrones_*.geojson"))
    assert all(p.read_text(encoding="utf-8") == "à moi" for p in mine)
    assert RunOutputs.load(tmp_path).manifest["run_key"] == res.manifest["run_key"]
    assert not list((tmp_path / CACHE_DIR).glob("staging-*"))


def test_clean_stale_temps_keeps_a_users_lookalike(tmp_path: Path) -> None:
    (tmp_path / "tables").mkdir()
    ours = tmp_path / "tables" / ".acces_communes.x1y2.tmp.csv"
    users = [tmp_path / ".brouillon.tmp.txt", tmp_path / ".notes.ab.tmp.txt"]
    for p in (ours, *users):
        p.write_text("x", encoding="utf-8")
    clean_stale_temps(tmp_path)
    assert not ours.exists() and all(p.exists() for p in users)


# --- kill -9 during a rerun over a finished run --------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("stage", "expected"), [
    ("locked", "old"),
    ("computed", "old"),
    ("staged", "old"),
    ("switch:marked", "refused"),
    ("switch:file:tables/acces_communes.csv", "refused"),
    ("switch:file:tables/zones_blanches.schema.json", "refused"),
    ("switch:manifest", "new"),
])
def test_kill_during_a_rerun(tmp_path: Path, stage: str, expected: str) -> None:
    out = tmp_path / "run"
    old = run_batch(load_inputs(), out_dir=out, options=OLD).manifest
    _kill(_start(tmp_path, out, stage, *NEW_ARGS))
    assert _state(out, old) == expected
    if expected == "refused":  # export refuses it too, with the fix
        proc = subprocess.run([sys.executable, "-m", "coverage.cli", "export", "--run",
                               str(out), "--dept", "ZA", "--formats", "csv", "--out",
                               str(tmp_path / "exp")], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0 and "relancez" in proc.stderr
        assert "Traceback" not in proc.stderr
    # the same command again gives the new run, whole, and clears what the kill left
    res = run_batch(load_inputs(), out_dir=out, options=NEW)
    assert _state(out, old) == "new"
    assert res.reused == (expected == "new")  # a finished switch is kept as it is
    assert not list((out / CACHE_DIR).glob("staging-*"))


# --- two runs into one folder ----------------------------------------------------------------

@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = run_batch(load_inputs(), out_dir=out, options=OLD).manifest
    first = _start(tmp_path, out, "staged", *NEW_ARGS)  # holds the lock, paused
    try:
        second = subprocess.run(
            [sys.executable, "-c", "import sys, coverage.files as f; f.LOCK_WAIT_S = 0.5; "
             "from coverage.cli import main; sys.exit(main(sys.argv[1:]))",
             "run", "--out", str(out), "--workers", "1", "--no-isochrones",
             "--thresholds", "20"], cwd=tmp_path, env=_env(), capture_output=True,
            text=True, timeout=300)
        assert second.returncode != 0
        assert "déjà utilisé par un autre calcul" in second.stderr
        assert str(out) in second.stderr and "Traceback" not in second.stderr
        assert _state(out, old) == "old"  # the first is still staging
    finally:
        (tmp_path / "release").touch()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert _state(out, old) == "new"


def test_lock_waits_then_refuses(tmp_path: Path) -> None:
    lock = tmp_path / "x" / "run.lock"
    with exclusive_lock(lock):
        errors: list[Exception] = []

        def other() -> None:
            try:
                with exclusive_lock(lock, wait_s=0.3, busy="dossier occupé"):
                    pass
            except FolderBusyError as exc:
                errors.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(errors) == 1 and "dossier occupé" in str(errors[0])
        assert f"processus {os.getpid()}" in str(errors[0])
    # released: the next one takes it at once; a holder released in time is waited for
    with exclusive_lock(lock, wait_s=0):
        pass
    got: list[bool] = []
    with exclusive_lock(lock):
        t = threading.Thread(target=lambda: got.append(_take(lock, 5.0)))
        t.start()
        time.sleep(0.3)
    t.join()
    assert got == [True]


def _take(lock: Path, wait_s: float) -> bool:
    with exclusive_lock(lock, wait_s=wait_s):
        return True


# --- a full disk --------------------------------------------------------------------------------

@pytest.mark.slow
def test_disk_full_during_a_rerun_keeps_the_old_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = run_batch(load_inputs(), out_dir=out, options=OLD).manifest
    before = json.loads((out / MANIFEST).read_text(encoding="utf-8"))

    def small_files() -> None:  # every file written by the rerun stops at 8 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    proc = subprocess.run([sys.executable, "-m", "coverage.cli", "run", "--out", str(out),
                           *NEW_ARGS], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=300, preexec_fn=small_files)
    assert proc.returncode != 0
    assert "impossible d'écrire le calcul" in proc.stderr and str(out) in proc.stderr
    assert "fichier trop grand" in proc.stderr and "Traceback" not in proc.stderr
    assert _state(out, old) == "old"
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8")) == before
    assert not list((out / CACHE_DIR).glob("staging-*"))
    # with room again, the same command gives the new run
    run_batch(load_inputs(), out_dir=out, options=NEW)
    assert _state(out, old) == "new"
    got = pd.read_parquet(out / "tables" / "zones_blanches.parquet")
    assert set(got["seuil_minutes"]) == {20.0, 30.0, 45.0}
