"""Download the official open data of a département into a cache (``zones-blanches fetch``).

What is downloaded is listed in :mod:`coverage.io.official.sources` (the one table of
official URLs).
Files land in ``<data-dir>/cache/<official host>/<official path>``, whatever mirror served
them, and ``<data-dir>/cache/index.json`` records for each one its URL, the URL actually
used, size (bytes), SHA-256 and download date (UTC).

Behaviour
---------
- A file already in the cache whose SHA-256 matches the index is not downloaded again. A
  file put there by hand (no network) is accepted and indexed.
- A download writes ``<file>.part``; after a cut connection the next attempt resumes it
  with an HTTP ``Range`` request (a server that ignores Range restarts from zero).
- Retries with exponential backoff on timeouts, resets and 5xx/429 answers; 404 is final
  (and tries the source's fallback URL, e.g. the Geofabrik région for OSM).
- The finished file is checked (length announced by the server, expected SHA-256 when one
  is known) and renamed atomically onto its final name.
- A progress bar shows bytes (tqdm on stderr).
- With no network, a :class:`~coverage.errors.FetchError` says which files to put where,
  or to pass ``--mirror``.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from coverage._version import __version__
from coverage.errors import ChecksumError, FetchError, NotFoundError, OfflineError
from coverage.files import sha256_file
from coverage.io.official import sources
from coverage.io.official.cache import (
    FetchRecord,
    cache_dir,
    cache_path,
    now_utc,
    read_index,
    record,
)
from coverage.io.official.sources import SourceFile
from coverage.io.official.territory import neighbour_departements

__all__ = [
    "CHUNK_BYTES",
    "RETRY_STATUSES",
    "USER_AGENT",
    "FetchOptions",
    "download",
    "fetch",
    "fetch_file",
    "plan",
]

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
USER_AGENT = f"zones-blanches/{__version__} (+open data fetch; urllib)"
#: HTTP statuses worth retrying (temporary server trouble).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchOptions:
    """How to download.

    Attributes
    ----------
    timeout_s
        Socket timeout of each connect/read, seconds.
    retries
        Extra attempts after the first one.
    backoff_s
        First wait between attempts, seconds; doubled at each retry.
    mirror
        Base URL replacing the official scheme and host (paths kept), or ``None``.
    progress
        Show a progress bar (only when stderr is a terminal, unless ``ZB_PROGRESS=1``).
    """

    timeout_s: float = 60.0
    retries: int = 4
    backoff_s: float = 1.0
    mirror: str | None = None
    progress: bool = True


def _progress_disabled(enabled: bool) -> bool:
    flag = os.environ.get("ZB_PROGRESS")
    if not enabled or flag == "0":
        return True
    return flag != "1" and not sys.stderr.isatty()


def _is_offline(reason: object) -> bool:
    """Return True when a URLError reason means the host cannot be reached at all."""
    if isinstance(reason, socket.gaierror | ConnectionRefusedError):
        return True
    unreachable = (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)
    return isinstance(reason, OSError) and reason.errno in unreachable


def download(url: str, dest: str | Path, *, expected_sha256: str | None = None,
             options: FetchOptions = FetchOptions(),
             sleep: Callable[[float], None] = time.sleep) -> tuple[int, str]:
    """Download ``url`` to ``dest`` with resume, retries, checks and an atomic rename.

    Parameters
    ----------
    url
        URL to read (already swapped for the mirror if any).
    dest
        Final path. ``dest + ".part"`` holds the bytes received so far.
    expected_sha256
        SHA-256 the file must have, or ``None``.
    options
        Timeouts, retries, backoff, progress bar.
    sleep
        Wait function (tests pass a fast one).

    Returns
    -------
    tuple of (int, str)
        Size in bytes and SHA-256 of the file written.

    Raises
    ------
    NotFoundError
        404 or 410.
    OfflineError
        The host could not be reached after every retry.
    ChecksumError
        The bytes do not have ``expected_sha256`` (the ``.part`` file is deleted).
    FetchError
        Any other failure after every retry.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _download_with_retries(url, part, options, sleep)
    _check_not_html(part, url)
    digest = sha256_file(part)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        part.unlink(missing_ok=True)
        msg = (f"{url} : empreinte incorrecte : attendu sha256 {expected_sha256}, obtenu "
               f"{digest} ; le téléchargement a été supprimé (miroir pas à jour, ou transfert "
               "corrompu)")
        raise ChecksumError(msg)
    size = part.stat().st_size
    os.replace(part, dest)
    return size, digest


def _download_with_retries(url: str, part: Path, options: FetchOptions,
                           sleep: Callable[[float], None]) -> None:
    """Fill ``part`` with the bytes of ``url``, retrying with exponential backoff.

    Raises
    ------
    NotFoundError
        404 or 410.
    OfflineError
        The host could not be reached after every retry.
    FetchError
        A refusal that retrying cannot cure, or any other failure after every retry.
    """
    last: str = ""
    offline = False
    for attempt in range(options.retries + 1):
        if attempt:
            wait = options.backoff_s * 2 ** (attempt - 1)
            log.info("retrying %s in %.1f s (attempt %d/%d): %s", url, wait, attempt + 1,
                     options.retries + 1, last)
            sleep(wait)
        try:
            _download_once(url, part, options)
        except urllib.error.HTTPError as exc:
            last = _http_failure(url, part, exc)
        except urllib.error.URLError as exc:
            offline = _is_offline(exc.reason)
            last = f"hôte injoignable ({exc.reason})"
        except TimeoutError as exc:
            offline = False
            last = f"délai dépassé après {options.timeout_s:g} s ({exc or 'pas de réponse'})"
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            offline = _is_offline(exc)
            last = f"connexion perdue ({type(exc).__name__} : {exc})"
        else:
            return
    tries = options.retries + 1
    if offline:
        msg = f"{url} : {last} après {tries} tentative(s)"
        raise OfflineError(msg)
    kept = f" ; {part.stat().st_size} octets gardés dans {part} pour reprendre" \
        if part.exists() else ""
    msg = f"{url} : téléchargement échoué après {tries} tentative(s) : {last}{kept}"
    raise FetchError(msg)


def _http_failure(url: str, part: Path, exc: urllib.error.HTTPError) -> str:
    """Return why an HTTP error answer is worth retrying; raise when it is not."""
    exc.close()  # release the socket of the error response
    if exc.code in (404, 410):
        msg = f"{url} : introuvable (HTTP {exc.code})"
        raise NotFoundError(msg) from None
    if exc.code == 416:  # the .part is stale or already complete: restart clean
        part.unlink(missing_ok=True)
        return "HTTP 416 (plage non satisfaisable), reprise depuis zéro"
    last = f"HTTP {exc.code} {exc.reason}"
    if exc.code not in RETRY_STATUSES:
        msg = f"{url} : le serveur a refusé le téléchargement ({last})"
        raise FetchError(msg) from None
    return last


#: Suffixes of binary files: an HTML page received instead is an error page.
_BINARY_SUFFIXES = (".gz", ".zip", ".xlsx", ".pbf", ".parquet", ".gpkg", ".7z")


def _check_not_html(part: Path, url: str) -> None:
    """Refuse an HTML page received for a binary file (login portal, proxy error page)."""
    if not urlsplit(url).path.lower().endswith(_BINARY_SUFFIXES):
        return
    with open(part, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml version")) and b"<osm" not in head:
        part.unlink(missing_ok=True)
        msg = (f"{url} : le serveur a envoyé une page HTML au lieu du fichier (proxy ou "
               "portail de connexion ?) ; vérifiez l'URL ou le --mirror")
        raise FetchError(msg)


def _download_once(url: str, part: Path, options: FetchOptions) -> None:
    """One HTTP attempt: resume ``part`` if it exists; raise on any incomplete body."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=options.timeout_s) as resp:
        status = resp.status
        if offset and status == 206:
            content_range = resp.headers.get("Content-Range", "")
            start = content_range.split()[1].split("-")[0] if " " in content_range else ""
            if start and int(start) != offset:
                part.unlink(missing_ok=True)
                msg = f"le serveur a repris à l'octet {start}, attendu {offset}"
                raise ConnectionError(msg)
            mode = "ab"
            log.info("resuming %s at byte %d", url, offset)
        else:
            offset, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        received = offset
        name = Path(urlsplit(url).path).name
        with open(part, mode) as fh, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=name[:40], leave=False, disable=_progress_disabled(options.progress),
        ) as bar:
            while True:
                chunk = resp.read(CHUNK_BYTES)
                if not chunk:
                    break
                fh.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        msg = f"connection closed after {received} of {total} bytes"
        raise ConnectionError(msg)


def fetch_file(source: SourceFile, data_dir: str | Path, *,
               options: FetchOptions = FetchOptions(),
               expected_sha256: str | None = None,
               sleep: Callable[[float], None] = time.sleep) -> FetchRecord:
    """Fetch one source file into the cache (or reuse it) and record it in the index.

    The official URL is tried first, then each of ``source.fallbacks`` when it answers 404.
    ``options.mirror`` swaps the host of every URL tried.

    Returns
    -------
    FetchRecord
        What is in the cache for this source.
    """
    index = read_index(data_dir)
    last_error: FetchError | None = None
    for url in (source.url, *source.fallbacks):
        dest = cache_path(data_dir, url)
        known = index.get(url)
        if dest.exists():
            digest = sha256_file(dest)
            trusted = known is None or known.get("sha256") == digest
            if trusted and (expected_sha256 is None or digest == expected_sha256.lower()):
                how = "cached" if known else "placed by hand"
                log.info("%s: %s (%s)", url, how, dest)
                entry = FetchRecord(
                    source.key, url, str(known.get("fetched_from", "local file"))
                    if known else "local file", str(dest), dest.stat().st_size, digest,
                    str(known.get("date")) if known else now_utc(), source.year, source.dept,
                    source.note)
                record(data_dir, entry)
                return entry
            log.warning("%s : le fichier en cache ne correspond pas à son empreinte enregistrée ; "
                        "nouveau téléchargement", dest)
        fetched_from = sources.mirror_url(url, options.mirror)
        try:
            size, digest = download(fetched_from, dest, expected_sha256=expected_sha256,
                                    options=options, sleep=sleep)
        except NotFoundError as exc:
            last_error = exc
            log.info("%s; trying the next official source if any", exc)
            continue
        checksum = ""
        if source.md5_sidecar:
            checksum = _check_md5_sidecar(url, dest, options)
        entry = FetchRecord(source.key, url, fetched_from, str(dest), size, digest, now_utc(),
                             source.year, source.dept, source.note, checksum)
        record(data_dir, entry)
        return entry
    assert last_error is not None
    tried = ", ".join((source.url, *source.fallbacks))
    msg = f"{source.title} : introuvable à toutes les adresses officielles ({tried})"
    raise NotFoundError(msg) from last_error


def _check_md5_sidecar(url: str, dest: Path, options: FetchOptions) -> str:
    """Check ``dest`` against the publisher's ``<url>.md5``; say what was checked.

    Raises
    ------
    ChecksumError
        The published MD5 differs (the file is deleted: an extract updated during the
        download, or a corrupted transfer; fetch again).
    """
    md5_url = sources.mirror_url(url + ".md5", options.mirror)
    request = urllib.request.Request(md5_url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=options.timeout_s) as resp:
            text = resp.read(4096).decode("ascii", "replace")
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"pas de md5 publié ({md5_url} : HTTP {exc.code})"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"md5 publié non lu ({type(exc).__name__})"
    token = text.split()[0].lower() if text.split() else ""
    if len(token) != 32 or any(c not in "0123456789abcdef" for c in token):
        return f"pas de md5 utilisable dans {md5_url}"
    h = hashlib.md5(usedforsecurity=False)
    with open(dest, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != token:
        dest.unlink(missing_ok=True)
        msg = (f"{url} : empreinte différente de celle publiée dans {md5_url} (md5 {token}, "
               f"obtenu {h.hexdigest()}) ; le fichier a été supprimé : l'extrait a pu être mis "
               "à jour pendant le téléchargement, relancez fetch")
        raise ChecksumError(msg)
    return f"md5 verified against {md5_url}"


def plan(depts: Iterable[str], *, year: int = sources.DEFAULT_YEAR,
         generalisation: str = sources.DEFAULT_GENERALISATION,
         osm: bool = True) -> list[SourceFile]:
    """Files to fetch for ``depts``: the national files once, then one OSM extract each."""
    codes = [sources.normalise_dept(d) for d in depts]
    files = sources.national_files(year, generalisation=generalisation)
    if osm:
        files += [sources.osm_file(c) for c in dict.fromkeys(codes)]
    return files


def fetch(depts: Iterable[str], data_dir: str | Path, *, year: int = sources.DEFAULT_YEAR,
          generalisation: str = sources.DEFAULT_GENERALISATION, osm: bool = True,
          neighbours: bool = True, options: FetchOptions = FetchOptions(),
          sleep: Callable[[float], None] = time.sleep) -> list[FetchRecord]:
    """Fetch everything ``prepare`` needs for ``depts`` into ``<data_dir>/cache``.

    Parameters
    ----------
    depts
        Département codes (``"15"``, ``"2A"``, ``"974"``…).
    data_dir
        Data folder; files go to ``<data_dir>/cache``.
    year
        COG year of the contours and the commune list; INSEE files of the latest edition
        not after it.
    generalisation
        Generalisation of the Etalab contours (``5m``, ``50m``, ``100m``, ``1000m``).
    osm
        Also fetch the OSM extract of each département.
    neighbours
        Also fetch the OSM extracts of the neighbouring départements (those within the road
        buffer of :func:`coverage.io.official.territory.buffer_m`, metres), so that
        ``prepare`` can clip the département plus its buffer.
    options
        Download options (timeouts, retries, mirror…).

    Returns
    -------
    list of FetchRecord
        One per file now in the cache.

    Raises
    ------
    OfflineError
        No network: the message lists the files to put in the cache by hand.
    """
    files = plan(depts, year=year, generalisation=generalisation, osm=osm)
    records: list[FetchRecord] = []
    done: set[str] = set()
    try:
        for source in files:
            records.append(fetch_file(source, data_dir, options=options, sleep=sleep))
            done.add(source.url)
        if osm and neighbours:
            contours = next(r for r in records if r.key == "contours")
            wanted = [sources.normalise_dept(d) for d in depts]
            extra = [d for d in neighbour_departements(Path(contours.path), wanted)
                     if d not in wanted]
            if extra:
                log.info("neighbouring départements within the buffer: %s", ", ".join(extra))
            for code in extra:
                source = sources.osm_file(code)
                files.append(source)
                try:
                    records.append(fetch_file(source, data_dir, options=options, sleep=sleep))
                except NotFoundError as exc:  # the roads will stop at the border
                    log.warning("extrait voisin non téléchargé : %s", exc)
                done.add(source.url)
    except OfflineError as exc:
        missing = [f for f in files if f.url not in done]
        lines = [f"pas d'accès au réseau : {exc}",
                 f"placez les fichiers dans {cache_dir(data_dir)} (un chemin par fichier "
                 "ci-dessous), ou donnez --mirror URL_DE_BASE (un miroir interne qui garde les "
                 "chemins officiels) :"]
        lines += [f"  {f.url}\n    -> {cache_path(data_dir, f.url)}" for f in missing]
        raise OfflineError("\n".join(lines)) from None
    return records
