"""``zones-blanches app``: the command line that starts Streamlit on 127.0.0.1."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest

from coverage.app import launch
from coverage.errors import CoverageError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_command_is_loopback_headless_without_telemetry() -> None:
    cmd = launch.streamlit_command(8765)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(cmd[4]) == REPO_ROOT / "app.py"
    opts = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert opts["--server.address"] == "127.0.0.1"
    assert opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"
    assert opts["--server.enableStaticServing"] == "true"


def test_config_serves_static_files_offline() -> None:
    import tomllib

    cfg = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text("utf-8"))
    assert cfg["server"]["enableStaticServing"] is True
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["browser"]["gatherUsageStats"] is False


def test_bad_arguments_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CoverageError, match=r"manifest\.json"):
        launch.launch_app(8765, tmp_path)
    with pytest.raises(CoverageError, match="port"):
        launch.launch_app(0, None)


def test_cli_app_serves_the_app_on_loopback(tmp_path: Path) -> None:
    """`zones-blanches app --run DIR` answers on 127.0.0.1 and serves the vendored Leaflet."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # A folder with a manifest is enough for the launcher; the app itself is tested elsewhere.
    (run_dir / "manifest.json").write_text("{}", encoding="utf-8")
    port = _free_port()
    exe = Path(sys.executable).with_name("zones-blanches")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "coverage.cli"]
    log_path = tmp_path / "app.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([*cmd, "app", "--port", str(port), "--run", str(run_dir)],
                            cwd=tmp_path, env=dict(os.environ), stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start within 60 s"
                time.sleep(0.5)
        url = f"{base}/app/static/vendor/leaflet/leaflet.js"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.status == 200
            assert "javascript" in r.headers["Content-Type"]
            assert b"Leaflet 1.9.4" in r.read(200)
        with urllib.request.urlopen(f"{base}/app/static/vendor/leaflet/leaflet.css",
                                    timeout=5) as r:
            assert "text/css" in r.headers["Content-Type"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_router_stops_with_the_fix_when_coverage_py_shadows_us(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """app.py checks ``import coverage`` first, as the console script does (no traceback)."""
    from streamlit.testing.v1 import AppTest

    fake = types.ModuleType("coverage")
    fake.__version__ = "7.6.1"  # type: ignore[attr-defined]
    fake.__file__ = "/elsewhere/site-packages/coverage/__init__.py"
    monkeypatch.setitem(sys.modules, "coverage", fake)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
    message = at.error[0].value
    assert "coverage.py" in message and "pip uninstall coverage" in message
    assert "7.6.1" in message
    assert not at.title and not at.metric  # no page ran
    assert "zb_selection" not in at.session_state  # nor the sidebar


def test_router_runs_with_this_project() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("zb_app_router", REPO_ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    router = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(router)  # imports only; main() runs under Streamlit
    assert router.check_coverage_is_ours() is None
    assert len(router.pages()) == 8  # outside a server, a Page keeps only its options
    scripts = re.findall(r'st\.Page\("([^"]+)"', Path(router.__file__).read_text("utf-8"))
    assert [Path(s).stem for s in scripts] == [
        "carte", "zones_blanches", "nouveau_site", "accessibilite", "listes_attente",
        "comparer", "exports", "a_propos"]
    assert all((Path(router.__file__).parent / s).is_file() for s in scripts)


def test_missing_app_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Streamlit (the ``app`` extra), the launcher says what to install."""
    import importlib.util

    from coverage.app import launch
    from coverage.errors import CoverageError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "streamlit" else real(name, *a))
    with pytest.raises(CoverageError, match=r"streamlit.*extra « app »"):
        launch.prepare_app(port=8599)
