"""``zones-blanches app``: start the Streamlit app on 127.0.0.1, headless, no telemetry.

:func:`prepare_app` checks the arguments and builds the command; :func:`serve_app` runs
Streamlit in its own process group and waits. When the launcher is stopped (Ctrl-C,
``SIGTERM`` from a service manager or ``kill``, ``SIGHUP`` when its terminal closes) it stops
the whole group (``SIGTERM``, then ``SIGKILL`` after :data:`STOP_GRACE_S` seconds): no
Streamlit server outlives the command. Nothing here prints: the CLI prints the URL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from coverage.errors import CoverageError
from coverage.settings import REPO_ROOT

__all__ = [
    "APP_FILE",
    "APP_MODULES",
    "ENV_RUN_DIR",
    "HOST",
    "STOP_GRACE_S",
    "AppLaunch",
    "launch_app",
    "prepare_app",
    "serve_app",
    "streamlit_command",
]

log = logging.getLogger(__name__)

#: Environment variable naming the run folder the app opens first (set by :func:`prepare_app`,
#: read by :mod:`coverage.app.state`). It lives here so that the launcher needs no Streamlit.
ENV_RUN_DIR = "ZONES_BLANCHES_RUN_DIR"

APP_FILE = REPO_ROOT / "app.py"
#: Third-party modules of the ``app`` extra (pyproject), checked before Streamlit starts.
APP_MODULES = ("streamlit", "folium", "altair")
HOST = "127.0.0.1"
#: Seconds Streamlit is given to stop after ``SIGTERM`` before it is killed.
STOP_GRACE_S = 10.0
#: Signals that stop the app (those that exist on this system).
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                      if hasattr(signal, name))


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
        # no source-file watcher: it kept a core busy while a browser was connected
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", HOST,
    ]


@dataclass(frozen=True)
class AppLaunch:
    """A checked launch of the app.

    Attributes
    ----------
    url
        Where the app answers (``http://127.0.0.1:<port>``).
    command
        The ``streamlit run`` command line (:func:`streamlit_command`).
    env
        Its environment (with :data:`ENV_RUN_DIR` when a run folder is given).
    """

    url: str
    command: list[str]
    env: dict[str, str]


def prepare_app(port: int = 8501, run_dir: Path | str | None = None) -> AppLaunch:
    """Check the arguments of ``zones-blanches app`` and build its command.

    Parameters
    ----------
    port
        TCP port on 127.0.0.1.
    run_dir
        Run output folder to open first (``zones-blanches run --out``); default: the demo
        run, computed on first use.

    Returns
    -------
    AppLaunch

    Raises
    ------
    CoverageError
        ``app.py`` is missing, the port is invalid, the ``app`` extra is not installed or
        ``run_dir`` is not a finished run.
    """
    if not APP_FILE.exists():
        msg = (f"{APP_FILE} introuvable : l'application a besoin du dépôt source de "
               "zones-blanches")
        raise CoverageError(msg)
    if not 0 < port < 65536:
        msg = f"le port doit être compris entre 1 et 65535 (reçu : {port})"
        raise CoverageError(msg)
    missing = [name for name in APP_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        msg = (f"l'application a besoin de {', '.join(missing)} : installez l'extra « app » "
               "(pip install -e \".[app]\" ou pip install \"zones-blanches[app]\")")
        raise CoverageError(msg)
    env = dict(os.environ)
    if run_dir is not None:
        run_dir = Path(run_dir).resolve()
        if not (run_dir / "manifest.json").exists():
            msg = (f"{run_dir} n'est pas le dossier d'un calcul terminé (pas de "
                   "manifest.json) ; lancez d'abord « zones-blanches run --out »")
            raise CoverageError(msg)
        env[ENV_RUN_DIR] = str(run_dir)
    return AppLaunch(f"http://{HOST}:{port}", streamlit_command(port), env)


class _Stopped(Exception):  # noqa: N818 - a signal, not an error
    """Raised in the launcher by a stop signal (its number in ``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    raise _Stopped(signum)


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """Turn the stop signals into :class:`_Stopped` for the ``with`` block (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _on_stop_signal) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """Stop the app's process group: ``SIGTERM``, then ``SIGKILL`` after ``grace_s``."""
    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sys.platform == "win32":  # pragma: no cover - no process groups
                proc.terminate()
            else:
                os.killpg(proc.pid, sig)

    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    send(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except (subprocess.TimeoutExpired, KeyboardInterrupt, _Stopped):  # slow, or asked again
        log.warning("Streamlit ne s'est pas arrêté : processus tué")
        send(kill)
        proc.wait()
    send(kill)  # anything it left in its group


def serve_app(launch: AppLaunch) -> int:
    """Run Streamlit and wait until it stops; stop it when the launcher is stopped.

    Streamlit runs in its own process group (session). Ctrl-C (``SIGINT``), ``SIGTERM`` and
    ``SIGHUP`` received by this process stop the whole group before returning, so the
    server never outlives the launcher.

    Parameters
    ----------
    launch
        From :func:`prepare_app`.

    Returns
    -------
    int
        Exit code: Streamlit's when it stops by itself, 0 after Ctrl-C, 128 + the signal
        number after ``SIGTERM``/``SIGHUP``.
    """
    log.info("démarrage de l'application sur %s", launch.url)
    with _stop_signals_raise():
        proc = subprocess.Popen(launch.command, cwd=REPO_ROOT, env=launch.env,
                                start_new_session=sys.platform != "win32")
        try:
            return proc.wait()
        except KeyboardInterrupt:
            _stop_group(proc)
            return 0
        except _Stopped as stop:
            log.info("signal %d reçu : arrêt de l'application", stop.signum)
            _stop_group(proc)
            return 128 + stop.signum


def launch_app(port: int = 8501, run_dir: Path | str | None = None) -> int:
    """Start the app and wait until it stops (:func:`prepare_app` then :func:`serve_app`).

    Parameters
    ----------
    port
        TCP port on 127.0.0.1.
    run_dir
        Run output folder to open first; default: the demo run.

    Returns
    -------
    int
        Exit code (see :func:`serve_app`).

    Raises
    ------
    CoverageError
        ``app.py`` is missing, the port is invalid, the ``app`` extra is not installed or
        ``run_dir`` is not a finished run.
    """
    return serve_app(prepare_app(port, run_dir))
