"""Files: atomic writes (temp file, then rename) and the one SHA-256 file digest."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "sha256_file",
    "write_bytes_atomic",
    "write_text_atomic",
]



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
