"""The run folder while a run writes it: one run at a time, whole or absent.

A run never writes its outputs where readers look for them. In order:

1. **Lock.** The run holds an exclusive lock on ``<out>/.cache/run.lock`` for its whole
   lifetime (:func:`coverage.files.exclusive_lock`; the system releases it when the process
   ends, even on ``kill -9``). A second run into the same folder waits
   :data:`coverage.files.LOCK_WAIT_S` seconds, then is refused with a French message
   (:class:`~coverage.errors.FolderBusyError`).
2. **Stage.** Every output is written into a staging folder
   ``<out>/.cache/staging-<pid>-<random>/`` (same layout, same filesystem), the manifest
   last, with the SHA-256 of every output. A failure while staging (a full disk, a size
   limit) leaves the previous run as it was.
3. **Switch.** The previous manifest is replaced (atomically) by a *switch marker*: a
   manifest whose ``state`` is :data:`coverage.results.SWITCHING` and which lists the files
   of the previous run and of the new one. From then on readers refuse the folder and name
   the fix. Each staged file is renamed onto its place (``os.replace``, atomic per file);
   files of the previous run that this run does not write are removed (only files a
   manifest recorded: never a user's file); the new manifest is renamed in last.

A run killed before the switch leaves the previous run untouched; killed during the switch,
a folder whose marker :class:`coverage.results.RunOutputs` refuses (« relancez
zones-blanches run … ») and whose files the next run knows; after it, the new run. The
per-partition cache ``<out>/.cache/`` is outside the switched content: it stays usable
across runs. Staging folders of killed runs are removed by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coverage.errors import OutputError, os_error_cause
from coverage.files import exclusive_lock, fsync_dir, write_text_atomic
from coverage.results import (
    CACHE_DIR,
    COMMUNES_FILE,
    ISOCHRONES_FILE,
    MANIFEST,
    OUTPUTS_KEY,
    RUN_FORMAT,
    SERVICES_FILE,
    SWITCHING,
    TABLES_DIR,
)

__all__ = [
    "LOCK_FILE",
    "STAGING_PREFIX",
    "RunFolder",
    "locked_run_folder",
    "reached",
    "recorded_files",
    "stage_hook",
    "writing_into",
]

log = logging.getLogger(__name__)

#: Lock file of a run folder, inside its ``.cache``.
LOCK_FILE = "run.lock"
#: Name prefix of the staging folders inside ``.cache``.
STAGING_PREFIX = "staging-"
#: Sub-folder of the GeoJSON isochrone layers (``--isochrones-geojson``).
_GEOJSON_DIR = "isochrones_geojson"

#: Called with the name of each stage a run reaches (fault-injection tests pause or kill a
#: run there); None in normal use.
stage_hook: Callable[[str], None] | None = None


def reached(stage: str) -> None:
    """Mark that the run reached ``stage`` (calls :data:`stage_hook` when set)."""
    if stage_hook is not None:
        stage_hook(stage)


_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


@contextlib.contextmanager
def writing_into(out_dir: Path) -> Iterator[None]:
    """Turn an ``OSError`` of the ``with`` block into an :class:`OutputError` in French.

    The message names the run folder and the cause, and says the previous run is kept. Only
    errors of writing are turned: a full disk, a quota, a file size limit, a read-only
    file system, or any error on a path inside the run folder; others (an unreadable input)
    go on as they are.
    """
    try:
        yield
    except OSError as exc:
        inside = bool(exc.filename) and Path(str(exc.filename)).resolve().is_relative_to(
            out_dir.resolve())
        if exc.errno not in _WRITE_ERRNOS and not inside:
            raise
        cause = os_error_cause(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        msg = (f"impossible d'écrire le calcul dans {out_dir} : {cause}{where} ; le calcul "
               "précédent de ce dossier, s'il y en a un, est conservé tel quel")
        raise OutputError(msg) from exc


def recorded_files(manifest: Mapping[str, Any] | None) -> set[str]:
    """Return the files a manifest records, as paths relative to the run folder.

    The ``outputs`` entry when present; for manifests of older versions, the files their
    ``tables``, ``isochrones_file`` and ``isochrones_geojson`` entries name.
    """
    if not manifest:
        return set()
    if manifest.get("state") == SWITCHING:  # an interrupted switch: both runs' files
        return {str(f) for f in [*manifest.get("previous", []), *manifest.get("next", [])]}
    recorded = manifest.get(OUTPUTS_KEY)
    if isinstance(recorded, Mapping):
        return {str(k) for k in recorded}
    files = {COMMUNES_FILE, SERVICES_FILE}
    for name in manifest.get("tables") or []:
        files |= {f"{TABLES_DIR}/{name}{ext}" for ext in (".csv", ".parquet", ".schema.json")}
    if manifest.get("isochrones_file"):
        files.add(ISOCHRONES_FILE)
    files |= {str(g) for g in manifest.get("isochrones_geojson") or []}
    return files


def _read_json(path: Path) -> dict[str, Any] | None:
    """Return a JSON object read from ``path``, or None when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_safe(rel: str) -> bool:
    """Return True for a relative path that stays inside the run folder, outside ``.cache``."""
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts \
        and parts[0] != CACHE_DIR


@dataclass
class RunFolder:
    """A locked run folder and the staging folder of the run writing into it.

    Attributes
    ----------
    out_dir
        The run folder (layout in :mod:`coverage.results`).
    staging
        The staging folder (``<out>/.cache/staging-…``) once :meth:`stage` made it.
    """

    out_dir: Path
    staging: Path | None = None

    @property
    def cache_dir(self) -> Path:
        """Return the folder's ``.cache``."""
        return self.out_dir / CACHE_DIR

    def stage(self) -> Path:
        """Create and return the staging folder of this run."""
        if self.staging is None:
            name = f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            self.staging = self.cache_dir / name
            self.staging.mkdir(parents=True)
        return self.staging

    def discard(self) -> None:
        """Remove the staging folder (after a failure, or once switched)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None

    def switch(self) -> None:
        """Put the staged run in place of the previous one (see the module docstring).

        Raises
        ------
        OutputError
            Nothing staged, or the staged manifest is missing.
        """
        staging = self.staging
        if staging is None or not (staging / MANIFEST).is_file():
            msg = f"{self.out_dir} : aucun calcul complet à mettre en place"
            raise OutputError(msg)
        staged = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                        if p.is_file() and p.name != MANIFEST)
        previous = recorded_files(_read_json(self.out_dir / MANIFEST))
        marker = {"format": RUN_FORMAT, "state": SWITCHING,
                  "previous": sorted(previous), "next": staged}
        write_text_atomic(self.out_dir / MANIFEST,
                          json.dumps(marker, ensure_ascii=False, indent=1) + "\n")
        fsync_dir(self.out_dir)
        reached("switch:marked")
        try:
            self._move(staging, staged, previous)
        except OSError as exc:  # after the marker: the folder is refused until a rerun
            cause = os_error_cause(exc)
            msg = (f"{self.out_dir} : le remplacement des fichiers a échoué ({cause}) ; "
                   f"relancez `zones-blanches run --out {self.out_dir}`")
            raise OutputError(msg) from exc
        reached("switch:manifest")
        self.discard()

    def _move(self, staging: Path, staged: list[str], previous: set[str]) -> None:
        """Rename the staged files onto their places, remove stale ones, manifest last."""
        for rel in staged:
            target = self.out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
            reached(f"switch:file:{rel}")
        self._remove_stale(previous - set(staged))
        for folder in {self.out_dir, self.out_dir / TABLES_DIR}:
            fsync_dir(folder)
        os.replace(staging / MANIFEST, self.out_dir / MANIFEST)
        fsync_dir(self.out_dir)

    def _remove_stale(self, stale: Iterable[str]) -> None:
        """Remove files of the previous run that this run does not write (recorded ones)."""
        for rel in sorted(stale):
            if _is_safe(rel):
                (self.out_dir / rel).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # other files there: not ours to remove
            (self.out_dir / _GEOJSON_DIR).rmdir()

    def clean(self) -> None:
        """Remove the staging folders that killed runs left in ``.cache``."""
        if not self.cache_dir.is_dir():
            return
        for p in self.cache_dir.glob(f"{STAGING_PREFIX}*"):
            if p.is_dir() and p != self.staging:
                log.info("removing %s left by an interrupted run", p)
                shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def locked_run_folder(out_dir: str | Path, *, wait_s: float | None = None
                      ) -> Iterator[RunFolder]:
    """Lock a run folder for the ``with`` block; yield it (staging removed on exit).

    Parameters
    ----------
    out_dir
        The run folder, created if needed.
    wait_s
        Seconds to wait for a run already writing there (default
        :data:`coverage.files.LOCK_WAIT_S`).

    Raises
    ------
    coverage.errors.FolderBusyError
        Another run still holds the folder after ``wait_s`` seconds.
    coverage.errors.OutputError
        The folder cannot be created.
    """
    out = Path(out_dir)
    with writing_into(out):
        (out / CACHE_DIR).mkdir(parents=True, exist_ok=True)
    busy = (f"le dossier {out} est déjà utilisé par un autre calcul en cours : attendez sa "
            "fin puis relancez, ou choisissez un autre dossier (--out)")
    with exclusive_lock(out / CACHE_DIR / LOCK_FILE, wait_s=wait_s, busy=busy):
        folder = RunFolder(out)
        folder.clean()
        reached("locked")
        try:
            yield folder
        finally:
            folder.discard()
