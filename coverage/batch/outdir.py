"""Where the tool may write: refuse an output path that would overwrite inputs or other files.

Checked before any input is read, each refusal one French sentence naming the path and the
cause (:class:`~coverage.errors.OutputError`):

* **A run folder** (:func:`check_run_out`, ``run --out``) must not be ``/`` (or another
  file-system root), the home folder or one of its parents, must not hold one of the run's
  own input files (at any depth), must be a folder (or not exist yet) that can be written,
  and, unless ``force``, must be empty or new or already a run folder
  (:func:`is_run_folder`). With ``force`` the run writes beside the files there: it never
  modifies or removes a file it did not write and record (:mod:`coverage.batch.folder`).
* **An export folder** (:func:`check_export_out`, ``export --out``) must not be a run
  folder nor inside one, except under its ``exports/`` sub-folder (the default
  ``<run>/exports/<dept>``): an export would replace the run's tables with a département's
  masked ones.
* **A single output file** (:func:`check_file_out`, ``sites --out``) must not be a file of a
  run folder; an existing file that the tool did not write (recognised by its header) is
  replaced only with ``force``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from coverage.errors import OutputError
from coverage.io.inputs import Inputs
from coverage.results import (
    CACHE_DIR,
    COMMUNES_FILE,
    ISOCHRONES_FILE,
    MANIFEST,
    SERVICES_FILE,
    TABLES_DIR,
)

__all__ = [
    "EXPORTS_DIR",
    "RUN_FOLDER_ENTRIES",
    "RUN_FORMAT",
    "check_export_out",
    "check_file_out",
    "check_run_out",
    "is_run_folder",
    "run_folder_above",
    "run_input_files",
]

#: ``format`` of a run's ``manifest.json`` (:mod:`coverage.batch.manifest`).
RUN_FORMAT = "zones-blanches-run"
#: Sub-folder of a run folder where exports may go (``<run>/exports/<dept>``).
EXPORTS_DIR = "exports"
#: Names a run writes at the top of its folder (plus :data:`EXPORTS_DIR`).
RUN_FOLDER_ENTRIES: frozenset[str] = frozenset({
    MANIFEST, COMMUNES_FILE, SERVICES_FILE, ISOCHRONES_FILE, TABLES_DIR, CACHE_DIR,
    "isochrones_geojson", EXPORTS_DIR,
})
#: Files a system leaves in any folder: they do not make a folder « not empty ».
_SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
#: Temporary file of an interrupted atomic write of a run file
#: (:func:`coverage.files.atomic_path`: ``.<stem>.<random>.tmp<suffixes>``).
_RUN_TEMP = re.compile(r"^\.(manifest|communes|services|isochrones)\.[a-z0-9_]{8}\.tmp(\.\w+)*$")
_SHOWN = 3


def _resolved(path: str | Path) -> Path:
    """Return ``path`` absolute, ``~`` expanded, symbolic links resolved."""
    return Path(path).expanduser().resolve()


def _manifest_format(folder: Path) -> str | None:
    """Return the ``format`` of ``folder/manifest.json``, None when absent or unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(data.get("format")) if isinstance(data, dict) else None


def _foreign_entries(folder: Path) -> list[str]:
    """Return the names in ``folder`` that a run does not write, sorted."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in RUN_FOLDER_ENTRIES and p.name not in _SYSTEM_FILES
                  and not _RUN_TEMP.match(p.name))


def is_run_folder(folder: str | Path) -> bool:
    """Return whether ``folder`` holds a run of zones-blanches, finished or interrupted.

    Parameters
    ----------
    folder
        Any path.

    Returns
    -------
    bool
        True for a folder whose ``manifest.json`` is a run's, or that holds only what a run
        writes (an interrupted run: ``.cache``, ``tables``…). False for a missing or empty
        folder, a file, or a folder with other files and no run manifest.
    """
    path = Path(folder)
    if not path.is_dir():
        return False
    if (path / MANIFEST).exists():
        return _manifest_format(path) == RUN_FORMAT
    return any(path.iterdir()) and not _foreign_entries(path)


def run_folder_above(path: str | Path) -> Path | None:
    """Return the run folder that is ``path`` or holds it (with a run manifest), or None.

    Parameters
    ----------
    path
        Any path (it need not exist).
    """
    p = _resolved(path)
    for folder in (p, *p.parents):
        if folder.is_dir() and _manifest_format(folder) == RUN_FORMAT:
            return folder
    return None


def run_input_files(inputs: Inputs, times: str | Path | None = None) -> list[Path]:
    """Return the input files of a run: those loaded (``inputs.paths``), roads and times.

    Parameters
    ----------
    inputs
        The loaded inputs (their ``paths`` may be None for inputs built in memory).
    times
        The imported travel-time file of the ``matrice`` engine, if any.
    """
    files = [*(inputs.paths or {}).values(), inputs.roads, times]
    return [Path(f) for f in files if f is not None and str(f)]


def _protected(out: Path, what: str) -> None:
    """Refuse a file-system root, the home folder or one of its parents."""
    home = _resolved(Path.home())
    if out == Path(out.anchor):
        msg = (f"refus d'écrire {what} dans {out} : c'est la racine du système de fichiers ; "
               "choisissez un sous-dossier dédié (--out DOSSIER)")
        raise OutputError(msg)
    if out == home or out in home.parents:
        msg = (f"refus d'écrire {what} dans {out} : c'est votre dossier personnel ou l'un de "
               "ses parents ; choisissez un sous-dossier dédié (--out DOSSIER)")
        raise OutputError(msg)


def _writable_folder(out: Path, what: str) -> None:
    """Check that ``out`` is a folder (or can become one) that can be written."""
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        cause = ("ce chemin existe et n'est pas un dossier" if existing == out
                 else f"{existing} est un fichier, pas un dossier")
        msg = f"impossible d'écrire {what} dans {out} : {cause}"
        raise OutputError(msg)
    if not os.access(existing, os.W_OK | os.X_OK):
        msg = (f"impossible d'écrire {what} dans {out} : le dossier {existing} n'est pas "
               "accessible en écriture (permission refusée ou système de fichiers en lecture "
               "seule)")
        raise OutputError(msg)


def check_run_out(out_dir: str | Path, *, inputs: Iterable[str | Path | None] = (),
                  force: bool = False) -> Path:
    """Check the output folder of a run before anything is read or written.

    Parameters
    ----------
    out_dir
        The run folder asked for (``run --out``).
    inputs
        The run's input files (communes, services, roads…; None entries are skipped).
    force
        Accept a non-empty folder that is not a run folder (``run --force``).

    Returns
    -------
    pathlib.Path
        ``out_dir`` resolved.

    Raises
    ------
    coverage.errors.OutputError
        One French sentence naming the folder and the cause (see the module docstring).
    """
    what = "le calcul"
    out = _resolved(out_dir)
    _protected(out, what)
    for item in inputs:
        if item is None or not str(item):
            continue
        source = _resolved(item)
        if source == out or out in source.parents:
            msg = (f"refus d'écrire {what} dans {out} : ce dossier contient le fichier "
                   f"d'entrée {source} ; choisissez un dossier de sortie à part (--out)")
            raise OutputError(msg)
    _writable_folder(out, what)
    if out.is_dir() and not force and not is_run_folder(out):
        foreign = _foreign_entries(out)
        if (out / MANIFEST).exists():  # another tool's manifest.json
            foreign.insert(0, MANIFEST)
        if foreign:
            shown = ", ".join(foreign[:_SHOWN]) + (" …" if len(foreign) > _SHOWN else "")
            msg = (f"refus d'écrire {what} dans {out} : ce dossier n'est pas vide et ne "
                   f"contient pas un calcul de zones-blanches ({shown}) ; choisissez un "
                   "dossier nouveau ou vide, ou ajoutez --force pour écrire à côté de ces "
                   "fichiers (le calcul ne modifie ni ne supprime un fichier qu'il n'a pas "
                   "écrit)")
            raise OutputError(msg)
    return out


def check_export_out(out_dir: str | Path, *, dept: str | None = None) -> Path:
    """Check the folder of an export: never a run folder, nor inside one but in ``exports/``.

    Parameters
    ----------
    out_dir
        The export folder asked for (``export --out``).
    dept
        The département exported, named in the message.

    Returns
    -------
    pathlib.Path
        ``out_dir`` resolved.

    Raises
    ------
    coverage.errors.OutputError
        The folder is a root or the home folder, is (or is inside) a run folder outside its
        ``exports/``, is not a folder or cannot be written.
    """
    what = f"l'export du département {dept}" if dept else "l'export"
    out = _resolved(out_dir)
    _protected(out, what)
    run = run_folder_above(out)
    if run is not None and (out == run or out.relative_to(run).parts[0] != EXPORTS_DIR):
        msg = (f"refus d'écrire {what} dans {out} : c'est le dossier du calcul {run} ou une "
               "de ses parties, dont les tables seraient remplacées ; choisissez un autre "
               f"dossier, par exemple {run / EXPORTS_DIR}/<département> (le défaut)")
        raise OutputError(msg)
    _writable_folder(out, what)
    return out


def check_file_out(path: str | Path, *, is_ours: Callable[[Path], bool],
                   force: bool = False) -> Path:
    """Check a single output file (``sites --out``) before anything is computed.

    Parameters
    ----------
    path
        The file asked for.
    is_ours
        Tells whether an existing file was written by this command (e.g. by its header).
    force
        Replace an existing file that is not recognised as ours.

    Returns
    -------
    pathlib.Path
        ``path`` resolved.

    Raises
    ------
    coverage.errors.OutputError
        The path is a folder, a file of a run folder (always refused: the run would no
        longer match its manifest), an existing file not written by the tool (unless
        ``force``), or its folder cannot be written.
    """
    target = _resolved(path)
    if target.is_dir():
        msg = f"impossible d'écrire {target} : c'est un dossier ; donnez un nom de fichier"
        raise OutputError(msg)
    run = run_folder_above(target.parent)
    if run is not None and (target.parent != run or target.name in RUN_FOLDER_ENTRIES) \
            and target.relative_to(run).parts[0] != EXPORTS_DIR:
        msg = (f"refus d'écrire {target} : ce chemin appartient au calcul {run} (tables, "
               "cache ou manifeste), qui ne correspondrait plus à son manifeste ; choisissez "
               "un fichier hors de ce dossier")
        raise OutputError(msg)
    if target.exists() and not force and not is_ours(target):
        msg = (f"refus d'écraser {target} : ce fichier existe et n'a pas été écrit par "
               "zones-blanches ; choisissez un autre nom ou ajoutez --force pour le remplacer")
        raise OutputError(msg)
    _writable_folder(target.parent, f"le fichier {target.name}")
    return target
