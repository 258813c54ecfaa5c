"""``zones-blanches app``: start the Streamlit app on 127.0.0.1, headless, no telemetry."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from coverage.errors import CoverageError
from coverage.settings import REPO_ROOT

__all__ = ["APP_FILE", "ENV_RUN_DIR", "HOST", "launch_app", "streamlit_command"]

log = logging.getLogger(__name__)

#: Environment variable naming the run folder the app opens first (set by :func:`launch_app`,
#: read by :mod:`coverage.app.state`). It lives here so that the launcher needs no Streamlit.
ENV_RUN_DIR = "ZONES_BLANCHES_RUN_DIR"

APP_FILE = REPO_ROOT / "app.py"
HOST = "127.0.0.1"


def streamlit_command(port: int, *, app_file: Path = APP_FILE) -> list[str]:
    """Return the ``streamlit run`` command line of the app (loopback, headless, no telemetry).

    Parameters
    ----------
    port
        TCP port on 127.0.0.1.
    app_file
        The Streamlit router (``app.py`` of the checkout).

    Returns
    -------
    list of str
        The command, starting with the current Python interpreter.
    """
    return [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", HOST,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.enableStaticServing", "true",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", HOST,
    ]


def launch_app(port: int = 8501, run_dir: Path | str | None = None) -> int:
    """Start the app and wait until it stops.

    Parameters
    ----------
    port
        TCP port on 127.0.0.1.
    run_dir
        Run output folder to open first (``zones-blanches run --out``); default: the demo
        run, computed on first use.

    Returns
    -------
    int
        Exit code of Streamlit (0 after Ctrl-C).

    Raises
    ------
    CoverageError
        ``app.py`` is missing, the port is invalid or ``run_dir`` is not a finished run.
    """
    if not APP_FILE.exists():
        msg = f"{APP_FILE} not found: the app needs the source checkout of zones-blanches"
        raise CoverageError(msg)
    if not 0 < port < 65536:
        msg = f"port must be between 1 and 65535, got {port}"
        raise CoverageError(msg)
    env = dict(os.environ)
    if run_dir is not None:
        run_dir = Path(run_dir).resolve()
        if not (run_dir / "manifest.json").exists():
            msg = (f"{run_dir} is not a finished run output folder (no manifest.json); "
                   "run `zones-blanches run --out` first")
            raise CoverageError(msg)
        env[ENV_RUN_DIR] = str(run_dir)
    cmd = streamlit_command(port)
    print(f"zones-blanches app: http://{HOST}:{port}  (Ctrl-C to stop)", file=sys.stderr)
    try:
        return subprocess.call(cmd, cwd=REPO_ROOT, env=env)
    except KeyboardInterrupt:
        return 0
