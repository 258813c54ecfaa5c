"""The download cache of official files and its index (``<data-dir>/cache/index.json``).

Files fetched by ``zones-blanches fetch`` land in ``<data-dir>/cache/<official host>/<official
path>``, whatever mirror served them. The index records, for each official URL, the URL
actually used, the size (bytes), the SHA-256 and the download date (UTC). ``prepare`` finds
its inputs here (:func:`find_inputs`): from the index first, else by the official file
names, so that files put in the cache by hand (no network) are found too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote, urlsplit

from coverage._version import __version__
from coverage.errors import FetchError
from coverage.files import write_text_atomic

__all__ = [
    "INDEX_NAME",
    "PATTERNS",
    "FetchRecord",
    "cache_dir",
    "cache_path",
    "find_inputs",
    "now_utc",
    "read_index",
    "record",
]

#: File name of the cache index, in ``<data-dir>/cache``.
INDEX_NAME = "index.json"


@dataclass(frozen=True)
class FetchRecord:
    """One entry of the cache index.

    Attributes
    ----------
    key
        Source key (:mod:`coverage.io.official.sources`).
    url
        Official URL.
    fetched_from
        URL actually used (a mirror), or ``"local file"`` for a file put by hand.
    path
        Path of the file in the cache.
    size
        Size, bytes.
    sha256
        SHA-256 of the file as downloaded.
    date
        Download date, ISO 8601 UTC.
    year
        Edition year, when the source has one.
    dept
        Département of a per-département file (OSM).
    note
        Why another edition or source was used.
    checksum
        What the publisher's checksum said (MD5 sidecar), when there is one.
    """

    key: str
    url: str
    fetched_from: str
    path: str
    size: int
    sha256: str
    date: str
    year: int | None = None
    dept: str | None = None
    note: str = ""
    checksum: str = ""


def cache_dir(data_dir: str | Path) -> Path:
    """Return ``<data-dir>/cache``."""
    return Path(data_dir) / "cache"


def cache_path(data_dir: str | Path, url: str) -> Path:
    """Return where the file of an official ``url`` is kept: ``cache/<host>/<path>``.

    Raises
    ------
    FetchError
        The URL names no file (no path, a folder, or ``..``).
    """
    parts = urlsplit(url)
    rel = unquote(parts.path).lstrip("/")
    if not rel or rel.endswith("/") or ".." in Path(rel).parts:
        msg = f"impossible de tirer un nom de fichier de l'URL {url}"
        raise FetchError(msg)
    return cache_dir(data_dir) / parts.netloc / rel


def read_index(data_dir: str | Path) -> dict[str, dict[str, object]]:
    """Return the cache index: official URL → record (dict). Empty when there is none.

    Raises
    ------
    FetchError
        The index exists but cannot be read (the message says to delete it).
    """
    path = cache_dir(data_dir) / INDEX_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = (f"{path} : l'index du cache est illisible ({exc}) ; supprimez-le pour le "
               "reconstruire")
        raise FetchError(msg) from None
    files = data.get("files", {}) if isinstance(data, dict) else {}
    return dict(files)


def _write_index(data_dir: str | Path, files: dict[str, dict[str, object]]) -> None:
    payload = {"generator": f"zones-blanches {__version__}",
               "note": "sha256 of each file as downloaded; url = official URL, fetched_from "
                       "= URL actually used (mirror)",
               "files": dict(sorted(files.items()))}
    write_text_atomic(cache_dir(data_dir) / INDEX_NAME,
                      json.dumps(payload, ensure_ascii=False, indent=2) + "\n")


def record(data_dir: str | Path, entry: FetchRecord) -> None:
    """Add or replace the index entry of ``entry.url`` (atomic rewrite of the index)."""
    index = read_index(data_dir)
    index[entry.url] = asdict(entry)
    _write_index(data_dir, index)


def now_utc() -> str:
    """Return the current UTC time, ISO 8601 to the second (the index's dates)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


#: Official file names of each source key, to find files put in the cache by hand.
PATTERNS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "contours": ("communes-*.geojson.gz", "communes-*.geojson", "COMMUNE.shp", "COMMUNE.gpkg",
                 "*ADMIN-EXPRESS*.gpkg", "ADE*.gpkg"),
    "densite7": ("grille_densite_7_niveaux*.xlsx", "fichier_diffusion_*.xlsx"),
    "densite4": ("grille_densite*.zip", "grille_densite*.xlsx", "grille_densite*.csv"),
    "population": ("ensemble.zip", "donnees_communes.csv"),
    "passage": ("table_passage_annuelle_*.zip",),
    "osm": ("*.osm.pbf",),
})


def find_inputs(data_dir: str | Path) -> dict[str, list[Path]]:
    """Return the files of each source key in ``<data-dir>/cache``: from the index, else by name."""
    cache = cache_dir(data_dir)
    found: dict[str, list[Path]] = {k: [] for k in PATTERNS}
    for entry in read_index(data_dir).values():
        path = Path(str(entry.get("path", "")))
        key = str(entry.get("key", ""))
        if key in found and path.exists() and path not in found[key]:
            found[key].append(path)
    if cache.exists():
        for key, patterns in PATTERNS.items():
            for pattern in patterns:
                found[key] += [path for path in sorted(cache.rglob(pattern))
                               if path.is_file() and path not in found[key]
                               and not path.name.endswith(".part")]
    return found
