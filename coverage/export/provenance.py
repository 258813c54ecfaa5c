"""Which run an export was made from: the run digest, the export record, stale exports.

Every file an export writes (CSV, French CSV, Parquet, XLSX, GeoPackage, GeoParquet, PNG,
``LISEZMOI.txt``, the report's DOCX and HTML) is listed in the export folder's record
``provenance_export.json`` with its SHA-256 and the **run digest** it was made from
(:func:`run_digest`: the SHA-256 of the run's manifest, canonical JSON). The XLSX also
carries the digest in its document properties and its « Sources et méthode » sheet, the
report in its DOCX properties and an HTML ``<meta>``.

An export is **stale** when its record names another digest than the run's current one: the
run folder was rewritten since (any rerun rewrites the manifest, so even a rerun without
change makes earlier exports stale). :func:`remove_stale` deletes the files a stale record
lists (only those, and only when unchanged since they were written; a file edited since is
kept and named in ``PERIME.txt``), then the record. ``export``, ``rapport`` and ``run``
call it, so a folder never mixes files of two runs.

A file made from **two runs** (``comparer``: run A and run B) is recorded under B's digest
and lists A in ``autres_calculs`` (its folder and digest): the folder is stale too when A's
folder now holds another run (a rerun of A rewrote its manifest). A's folder gone or
unreadable does not make it stale (nothing says A changed).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coverage.batch.outdir import EXPORTS_DIR
from coverage.files import sha256_file, write_text_atomic
from coverage.results import MANIFEST, RunOutputs

__all__ = [
    "EXPORT_RECORD",
    "RECORD_FORMAT",
    "STALE_NOTE",
    "ExportStatus",
    "clean_stale_exports",
    "export_status",
    "folder_digest",
    "manifest_digest",
    "read_record",
    "record_export",
    "remove_stale",
    "run_digest",
]

log = logging.getLogger(__name__)

#: The record of an export folder: run digest and the files made from that run.
EXPORT_RECORD = "provenance_export.json"
#: ``format`` of the record.
RECORD_FORMAT = "zones-blanches-export"
#: Note left beside stale files that were edited since written (they are not deleted).
STALE_NOTE = "PERIME.txt"


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """Return the run digest of a manifest: SHA-256 of its canonical JSON (hex).

    Parameters
    ----------
    manifest
        A run manifest as read from ``manifest.json``.

    Returns
    -------
    str
        64 hex characters.
    """
    text = json.dumps(manifest, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_digest(run: RunOutputs) -> str:
    """Return the digest of a finished run (:func:`manifest_digest` of its manifest)."""
    return manifest_digest(run.manifest)


def folder_digest(run_dir: str | Path) -> str | None:
    """Return the digest of the run in ``run_dir`` from its manifest, None without one."""
    path = Path(run_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return manifest_digest(manifest) if isinstance(manifest, dict) else None


def read_record(folder: str | Path) -> dict[str, Any] | None:
    """Return the export record of ``folder``, None when absent or unreadable."""
    path = Path(folder) / EXPORT_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    return record


@dataclass(frozen=True)
class ExportStatus:
    """State of an export folder against a run.

    Attributes
    ----------
    state
        ``absent`` (no record), ``a_jour`` (made from this run) or ``perime`` (made from
        another run: stale).
    files
        Files the record lists, relative to the folder.
    run_digest
        Digest recorded (empty when absent).
    """

    state: str
    files: tuple[str, ...] = ()
    run_digest: str = ""

    @property
    def stale(self) -> bool:
        """True when the folder holds files of another run."""
        return self.state == "perime"


def _others_changed(record: Mapping[str, Any]) -> bool:
    """Return whether a run the record also names (``autres_calculs``) has changed since."""
    for other in record.get("autres_calculs") or []:
        if not isinstance(other, Mapping):
            continue
        where = str(other.get("calcul") or "")
        now = folder_digest(where) if where else None
        if now is not None and now != other.get("empreinte_calcul"):
            return True
    return False


def export_status(folder: str | Path, digest: str) -> ExportStatus:
    """Return whether the export in ``folder`` was made from the run of ``digest``.

    Also stale when another run the files were made from (``autres_calculs``, e.g. run A
    of a comparison) has changed since.

    Parameters
    ----------
    folder
        An export folder.
    digest
        The current run's digest (:func:`run_digest`).

    Returns
    -------
    ExportStatus
        ``absent``, ``a_jour`` or ``perime``.
    """
    record = read_record(folder)
    if record is None:
        return ExportStatus("absent")
    files = tuple(str(f) for f in (record.get("fichiers") or {}))
    recorded = str(record.get("empreinte_calcul", ""))
    fresh = recorded == digest and not _others_changed(record)
    return ExportStatus("a_jour" if fresh else "perime", files, recorded)


def _inside(folder: Path, rel: str) -> Path | None:
    """Return ``folder / rel`` when it stays inside ``folder``, else None."""
    path = (folder / rel).resolve()
    root = folder.resolve()
    return path if path != root and root in path.parents else None


def remove_stale(folder: str | Path, digest: str) -> list[Path]:
    """Delete the files of a stale export in ``folder`` (made from another run).

    Stale: the record names another digest than ``digest``, or another run it names
    (``autres_calculs``) has changed since.

    Only the files the record lists are touched, and only when their SHA-256 still matches
    the record; a file edited since is kept and named in ``PERIME.txt``. Nothing happens
    when the export is up to date or has no record.

    Parameters
    ----------
    folder
        An export folder.
    digest
        The current run's digest.

    Returns
    -------
    list of pathlib.Path
        The files deleted.
    """
    folder = Path(folder)
    record = read_record(folder)
    if record is None or (str(record.get("empreinte_calcul", "")) == digest
                          and not _others_changed(record)):
        return []
    removed: list[Path] = []
    kept: list[str] = []
    for rel, info in (record.get("fichiers") or {}).items():
        path = _inside(folder, str(rel))
        if path is None or not path.is_file():
            continue
        expected = info.get("sha256") if isinstance(info, Mapping) else None
        if expected and sha256_file(path) == expected:
            path.unlink()
            removed.append(path)
        else:
            kept.append(str(rel))
    for sub in sorted({p.parent for p in removed}, key=lambda p: len(p.parts), reverse=True):
        if sub != folder and sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    (folder / EXPORT_RECORD).unlink(missing_ok=True)
    if kept:
        write_text_atomic(folder / STALE_NOTE, (
            "PÉRIMÉ : ces fichiers ont été faits à partir d'un calcul antérieur (empreinte "
            f"{str(record.get('empreinte_calcul', ''))[:12]}…) et modifiés depuis ; ils ne "
            "correspondent pas au calcul actuel. Relancez `zones-blanches export`.\n"
            + "".join(f"  {rel}\n" for rel in kept)))
    log.info("removed %d stale export files from %s (%d edited files kept)", len(removed),
             folder, len(kept))
    return removed


def record_export(folder: str | Path, run: RunOutputs, files: Iterable[Path], *,
                  dept: str, kind: str, also: Sequence[RunOutputs] = ()) -> Path:
    """Add files to the record of ``folder`` (a new record when it names another run).

    Parameters
    ----------
    folder
        The export folder.
    run
        The run the files were made from.
    files
        The files written (inside ``folder``).
    dept
        Département code.
    kind
        What wrote them: ``export``, ``rapport``, ``accessibilite`` or ``comparer``.
    also
        Other runs the files were made from (run A of a comparison): recorded in
        ``autres_calculs`` with their digest, so that a rerun of one makes the folder
        stale (:func:`export_status`, :func:`remove_stale`). Given, they replace those
        recorded before.

    Returns
    -------
    pathlib.Path
        The record's path.
    """
    folder = Path(folder)
    digest = run_digest(run)
    record = read_record(folder)
    if record is None or record.get("empreinte_calcul") != digest \
            or (also and _others_changed(record)):
        record = {"format": RECORD_FORMAT, "empreinte_calcul": digest,
                  "calcul": str(run.run_dir),
                  "date_calcul": str(run.manifest.get("created_utc")
                                     or run.manifest.get("created") or ""),
                  "departement": dept, "fichiers": {}}
    entries = dict(record.get("fichiers") or {})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for path in files:
        rel = Path(path).resolve().relative_to(folder.resolve()).as_posix()
        entries[rel] = {"sha256": sha256_file(Path(path)), "par": kind, "date": now}
    record["fichiers"] = dict(sorted(entries.items()))
    if also:
        record["autres_calculs"] = [{"calcul": str(Path(r.run_dir).resolve()),
                                     "empreinte_calcul": run_digest(r)} for r in also]
    target = folder / EXPORT_RECORD
    write_text_atomic(target, json.dumps(record, ensure_ascii=False, indent=2) + "\n")
    (folder / STALE_NOTE).unlink(missing_ok=True)
    return target


def clean_stale_exports(run_dir: str | Path) -> list[Path]:
    """Delete the stale exports under ``<run_dir>/exports/`` after a run rewrote the folder.

    Parameters
    ----------
    run_dir
        A finished run folder.

    Returns
    -------
    list of pathlib.Path
        The files deleted (see :func:`remove_stale`).
    """
    digest = folder_digest(run_dir)
    root = Path(run_dir) / EXPORTS_DIR
    if digest is None or not root.is_dir():
        return []
    removed: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        removed += remove_stale(folder, digest)
    return removed
