"""Files: atomic writes (temp file, then rename), the one SHA-256 file digest, folder locks.

A lock (:func:`exclusive_lock`) is an advisory ``flock`` on a lock file, released by the
operating system when its process ends, even on ``kill -9``: a crashed run never leaves a
folder locked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from coverage.errors import FolderBusyError

if sys.platform != "win32":
    import fcntl

__all__ = [
    "LOCK_WAIT_S",
    "atomic_path",
    "exclusive_lock",
    "fsync_dir",
    "sha256_file",
    "write_bytes_atomic",
    "write_text_atomic",
]

#: Seconds a second run waits for a locked run folder before it is refused.
LOCK_WAIT_S = 5.0
_LOCK_POLL_S = 0.1



@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    Parameters
    ----------
    target
        Final path. Its folder is created if needed.

    Yields
    ------
    pathlib.Path
        Temporary path to write to. It keeps the target's suffix so that writers which
        choose a format from the extension (GeoPackage, Parquet, XLSX) still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{''.join(target.suffixes)}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # some writers (GeoPackage) refuse to open an existing empty file
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``target`` atomically."""
    write_bytes_atomic(target, text.encode(encoding))



_BLOCK_BYTES = 1 << 20


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (renames, unlinks) to disk; a no-op where unsupported."""
    if sys.platform == "win32":  # pragma: no cover - no directory handles
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock of an open file without waiting; return whether it was taken."""
    if sys.platform == "win32":  # pragma: no cover - msvcrt locks a byte range instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def exclusive_lock(lock_file: str | Path, *, wait_s: float | None = None,
                   busy: str = "") -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` for the ``with`` block.

    Parameters
    ----------
    lock_file
        The lock file (created if needed, never removed: removing a lock file races with
        the next holder). It records the holder's process id.
    wait_s
        Seconds to wait for a lock held by another process (default :data:`LOCK_WAIT_S`).
    busy
        Text of the error when the lock is still held after ``wait_s`` (French); the
        holder's process id is appended.

    Raises
    ------
    coverage.errors.FolderBusyError
        Another process holds the lock after ``wait_s`` seconds.
    """
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = LOCK_WAIT_S if wait_s is None else wait_s
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(wait, 0.0)
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                who = f" (processus {holder})" if holder.isdigit() else ""
                msg = (busy or f"{path} est verrouillé par un autre processus") + who
                raise FolderBusyError(msg)
            time.sleep(_LOCK_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
