"""``zones-blanches fetch`` against a local HTTP server on 127.0.0.1 (never the internet).

The server serves small files in the official formats, built here: an Etalab-style
GeoJSON.gz, an INSEE-style XLSX density grid with title rows, a zipped populations table, a
table de passage and a tiny OSM PBF. It can cut a body in the middle, ignore Range, answer
503, 404 or stall, so that resume, retries, checksums, timeouts and the no-network message
are exercised for real.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from coverage.cli import main
from coverage.errors import ChecksumError, FetchError, NotFoundError, OfflineError
from coverage.io.official import sources
from coverage.io.official.cache import cache_path, read_index
from coverage.io.official.fetch import FetchOptions, download, fetch, fetch_file

REPO = Path(__file__).resolve().parents[1]
FAST = FetchOptions(timeout_s=2.0, retries=3, backoff_s=0.01, progress=False)


# --- the local server --------------------------------------------------------------------
@dataclass
class Behaviour:
    """What the server does for one path."""

    cut_first: int = 0  # number of first GETs cut after half of the body
    ignore_range: bool = False
    fail_503: int = 0  # number of first GETs answered 503
    stall_s: float = 0.0  # sleep before answering


@dataclass
class Server:
    base: str
    files: dict[str, bytes]
    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            rng = self.headers.get("Range")
            state.log.append((path, rng))
            body = state.files.get(path)
            how = state.behaviour.setdefault(path, Behaviour())
            if how.stall_s:
                time.sleep(how.stall_s)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if how.fail_503:
                how.fail_503 -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            if rng and not how.ignore_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if how.cut_first:
                how.cut_first -= 1
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(chunk)

    return Handler


class _MirrorServer(http.server.ThreadingHTTPServer):
    """The test mirror: its request threads are joined on close (none outlives its test) and a
    client hanging up mid-transfer (what the download tests do on purpose) is not an error."""

    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server("", {})
    httpd = _MirrorServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- tiny files in the official formats --------------------------------------------------
#: (code, nom, departement, region, epci, lon, lat): real codes, tiny square polygons.
COMMUNES = [
    ("15014", "Aurillac", "15", "84", "241500230", 2.44, 44.93),
    ("15187", "Saint-Flour", "15", "84", "200066660", 3.09, 45.03),
    ("15120", "Mauriac", "15", "84", "200066637", 2.33, 45.22),
    ("12202", "Rodez", "12", "76", "241200187", 2.57, 44.35),
    ("48095", "Mende", "48", "76", "244800405", 3.50, 44.52),
]


def etalab_geojson_gz() -> bytes:
    feats = []
    for code, nom, dep, reg, epci, lon, lat in COMMUNES:
        d = 0.02
        ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d],
                [lon - d, lat - d]]
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"code": code, "nom": nom, "departement": dep,
                                     "region": reg, "epci": epci, "plm": False}})
    return gzip.compress(json.dumps({"type": "FeatureCollection", "features": feats}).encode())


def density_xlsx(levels: dict[str, int], *, seven: bool = True) -> bytes:
    """An INSEE-style grid: title rows, a blank row, then the header (CODGEO, …)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Grille communale de densité à 7 niveaux" if seven
               else "Grille communale de densité"])
    ws.append(["Géographie au 01/01/2025"])
    ws.append(["Source : Insee"])
    ws.append([])
    ws.append(["CODGEO", "LIBGEO", "DENS", "LIBDENS", "PMUN21"])
    for code, level in levels.items():
        ws.append([code, f"commune {code}", level, f"niveau {level}", 1000])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def passage_zip(pairs: list[tuple[str, str]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "COM"
    for title in ("Table de passage annuelle", "Source : Insee", "", "", ""):
        ws.append([title])
    ws.append(["CODGEO_2025", "CODGEO_2026", "LIBGEO_2026"])
    for old, new in pairs:
        ws.append([old, new, "x"])
    xl = io.BytesIO()
    wb.save(xl)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("table_passage_annuelle_2026.xlsx", xl.getvalue())
    return out.getvalue()


def population_zip(pops: dict[str, int]) -> bytes:
    lines = ["REG;Region;DEP;CODARR;CODCAN;CODCOM;COM;PMUN;PCAP;PTOT"]
    for code, pop in pops.items():
        lines.append(f"84;Région;{code[:2]};1;1;{code[2:]};commune {code};{pop};0;{pop}")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("donnees_communes.csv", "\n".join(lines).encode("utf-8"))
    return out.getvalue()


def cog_csv() -> bytes:
    rows = ["TYPECOM,COM,REG,DEP,CTCD,ARR,TNCC,NCC,NCCENR,LIBELLE,CAN,COMPARENT"]
    rows += [f"COM,{c},{r},{d},,,0,{n.upper()},{n},{n},," for c, n, d, r, *_ in COMMUNES]
    return "\n".join(rows).encode()


def osm_pbf(path: Path, points: list[tuple[float, float]], first_id: int = 1) -> None:
    """A PBF with one 2-node ``highway=tertiary`` way at each (lon, lat)."""
    import osmium
    from osmium.osm.mutable import Node, Way

    writer = osmium.SimpleWriter(str(path))
    nid = first_id
    ways = []
    for lon, lat in points:
        writer.add_node(Node(id=nid, location=(lon, lat), tags={}))
        writer.add_node(Node(id=nid + 1, location=(lon + 0.001, lat + 0.001), tags={}))
        ways.append(Way(id=nid, nodes=[nid, nid + 1], tags={"highway": "tertiary"}))
        nid += 2
    for w in ways:
        writer.add_way(w)
    writer.close()


def official_files(tmp: Path, *, year: int = 2026) -> dict[str, bytes]:
    """Every file ``fetch --dept 15`` asks for, keyed by its official URL path."""
    files: dict[str, bytes] = {}

    def put(url: str, data: bytes) -> None:
        files[urlsplit(url).path] = data

    levels = {"15014": 2, "15187": 4, "15120": 5, "12202": 1, "48095": 3}
    put(sources.contours_file(year).url, etalab_geojson_gz())
    put(sources.cog_communes_file(year).url, cog_csv())
    put(sources.passage_file(year).url, passage_zip([("15999", "15014")]))
    put(sources.densite7_file(year).url, density_xlsx(levels))
    put(sources.population_file(year).url,
        population_zip({c: 1000 + i for i, (c, *_) in enumerate(COMMUNES)}))
    osm = tmp / "cantal.osm.pbf"
    # roads at Aurillac, Saint-Flour, Mauriac (inside), and one far away near Marseille
    osm_pbf(osm, [(2.44, 44.93), (3.09, 45.03), (2.33, 45.22), (5.40, 43.30)])
    put(sources.osm_file("15").url, osm.read_bytes())
    return files


# --- download ----------------------------------------------------------------------------
def test_resume_after_a_cut_connection_uses_range(server: Server, tmp_path: Path) -> None:
    body = os.urandom(300_000)
    server.files["/big.bin"] = body
    server.behaviour["/big.bin"] = Behaviour(cut_first=1)
    size, digest = download(f"{server.base}/big.bin", tmp_path / "big.bin", options=FAST)
    assert (tmp_path / "big.bin").read_bytes() == body
    assert (size, digest) == (len(body), hashlib.sha256(body).hexdigest())
    assert not (tmp_path / "big.bin.part").exists()
    ranges = [r for p, r in server.log if p == "/big.bin"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(body) // 2}-"


def test_resume_from_a_part_file_left_by_an_earlier_run(server: Server, tmp_path: Path) -> None:
    body = os.urandom(100_000)
    server.files["/f.bin"] = body
    (tmp_path / "f.bin.part").write_bytes(body[:40_000])
    download(f"{server.base}/f.bin", tmp_path / "f.bin", options=FAST)
    assert (tmp_path / "f.bin").read_bytes() == body
    assert server.log == [("/f.bin", "bytes=40000-")]


def test_a_server_ignoring_range_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    body = os.urandom(50_000)
    server.files["/f.bin"] = body
    server.behaviour["/f.bin"] = Behaviour(ignore_range=True)
    (tmp_path / "f.bin.part").write_bytes(b"garbage that must not stay")
    download(f"{server.base}/f.bin", tmp_path / "f.bin", options=FAST)
    assert (tmp_path / "f.bin").read_bytes() == body


def test_retries_with_backoff_on_503(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = b"payload"
    server.behaviour["/f.bin"] = Behaviour(fail_503=2)
    waits: list[float] = []
    download(f"{server.base}/f.bin", tmp_path / "f.bin",
             options=FetchOptions(retries=3, backoff_s=0.5, progress=False),
             sleep=waits.append)
    assert (tmp_path / "f.bin").read_bytes() == b"payload"
    assert waits == [0.5, 1.0]  # exponential


def test_checksum_mismatch_deletes_the_download(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = b"the bytes the mirror has"
    with pytest.raises(ChecksumError, match="empreinte incorrecte"):
        download(f"{server.base}/f.bin", tmp_path / "f.bin", expected_sha256="0" * 64,
                 options=FAST)
    assert not (tmp_path / "f.bin").exists()
    assert not (tmp_path / "f.bin.part").exists()


def test_404_is_final_and_not_retried(server: Server, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="HTTP 404"):
        download(f"{server.base}/missing.csv", tmp_path / "x.csv", options=FAST)
    assert len(server.log) == 1


def test_timeout_is_retried_then_reported(server: Server, tmp_path: Path) -> None:
    server.files["/slow.bin"] = b"late"
    server.behaviour["/slow.bin"] = Behaviour(stall_s=1.0)
    with pytest.raises(FetchError, match="délai dépassé"):
        download(f"{server.base}/slow.bin", tmp_path / "slow.bin",
                 options=FetchOptions(timeout_s=0.2, retries=1, backoff_s=0.01,
                                      progress=False))
    assert len([p for p, _ in server.log if p == "/slow.bin"]) == 2


def test_connection_refused_is_offline(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x.csv"
    with pytest.raises(OfflineError, match="hôte injoignable"):
        download(url, tmp_path / "x.csv", options=FetchOptions(retries=1, backoff_s=0.01))


# --- fetch_file / fetch ------------------------------------------------------------------
def test_mirror_keeps_the_official_path_and_the_index_records_the_file(
        server: Server, tmp_path: Path) -> None:
    src = sources.densite7_file(2024)
    data = density_xlsx({"15014": 2})
    server.files[urlsplit(src.url).path] = data
    rec = fetch_file(src, tmp_path, options=FetchOptions(mirror=server.base + "/",
                                                         progress=False))
    assert server.log == [(urlsplit(src.url).path, None)]
    assert Path(rec.path) == cache_path(tmp_path, src.url)
    assert Path(rec.path).read_bytes() == data
    entry = read_index(tmp_path)[src.url]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["size"] == len(data)
    assert entry["fetched_from"] == server.base + urlsplit(src.url).path
    assert str(entry["date"]).startswith("20")


def test_cached_file_is_reused_and_a_corrupted_one_fetched_again(
        server: Server, tmp_path: Path) -> None:
    src = sources.population_file(2021)
    data = population_zip({"15014": 25000})
    server.files[urlsplit(src.url).path] = data
    opts = FetchOptions(mirror=server.base, progress=False)
    first = fetch_file(src, tmp_path, options=opts)
    fetch_file(src, tmp_path, options=opts)
    assert len(server.log) == 1  # second call served from the cache
    Path(first.path).write_bytes(b"corrupted")
    again = fetch_file(src, tmp_path, options=opts)
    assert len(server.log) == 2
    assert Path(again.path).read_bytes() == data


def test_osm_falls_back_to_the_geofabrik_region(server: Server, tmp_path: Path) -> None:
    src = sources.osm_file("15")
    fallback = src.fallbacks[0]
    assert "geofabrik" in fallback and "auvergne" in fallback
    server.files[urlsplit(fallback).path] = b"pbf bytes"
    rec = fetch_file(src, tmp_path, options=FetchOptions(mirror=server.base, progress=False,
                                                         retries=0))
    assert rec.url == fallback
    assert [p for p, _ in server.log] == [urlsplit(src.url).path, urlsplit(fallback).path,
                                          urlsplit(fallback).path + ".md5"]


def test_fetch_all_sources_through_a_mirror(server: Server, tmp_path: Path) -> None:
    server.files.update(official_files(tmp_path))
    data_dir = tmp_path / "donnees"
    records = fetch(["15"], data_dir, options=FetchOptions(mirror=server.base, progress=False,
                                                           retries=0))
    keys = {r.key for r in records}
    assert {"contours", "cog_communes", "passage", "densite7", "population", "osm"} <= keys
    index = read_index(data_dir)
    assert len(index) == len(records)
    for r in records:
        assert hashlib.sha256(Path(r.path).read_bytes()).hexdigest() == r.sha256
    # neighbours within the buffer (12, 48) were asked for, and their absence tolerated
    asked = {p for p, _ in server.log}
    assert urlsplit(sources.osm_file("12").url).path in asked
    assert urlsplit(sources.osm_file("48").url).path in asked


def test_offline_fetch_says_where_to_put_the_files(tmp_path: Path) -> None:
    mirror = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(OfflineError) as info:
        fetch(["15"], tmp_path, options=FetchOptions(mirror=mirror, retries=0))
    text = str(info.value)
    assert "placez les fichiers dans" in text and "--mirror" in text
    assert str(cache_path(tmp_path, sources.osm_file("15").url)) in text


def test_files_put_by_hand_are_accepted_without_network(tmp_path: Path) -> None:
    src = sources.cog_communes_file(2026)
    dest = cache_path(tmp_path, src.url)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(cog_csv())
    rec = fetch_file(src, tmp_path, options=FetchOptions(
        mirror=f"http://127.0.0.1:{closed_port()}", retries=0))
    assert rec.fetched_from == "local file"
    assert read_index(tmp_path)[src.url]["sha256"] == hashlib.sha256(cog_csv()).hexdigest()


def test_sources_table_is_consistent() -> None:
    assert sources.normalise_dept("2a") == "2A" and sources.normalise_dept("1") == "01"
    with pytest.raises(FetchError, match="code de département inconnu"):
        sources.normalise_dept("ZA")
    assert len(sources.DEPARTEMENTS) == 101
    for code in sources.DEPARTEMENTS:
        src = sources.osm_file(code)
        assert src.url.endswith("-latest.osm.pbf") and src.fallbacks
    assert sources.mirror_url("https://www.insee.fr/fr/a.csv?x=1", "http://m/") \
        == "http://m/fr/a.csv?x=1"
    old = sources.densite7_file(2030)
    assert old.year == max(sources.DENSITE7) and "pas d'édition connue" in old.note


# --- CLI ---------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZB_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "coverage.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_fetch_offline_exits_nonzero_with_a_clear_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the CLI's main in this process (test_cli_fetch_unknown_departement runs its own)
    code = main(["fetch", "--dept", "15", "--data-dir", str(tmp_path / "d"), "--mirror",
                 f"http://127.0.0.1:{closed_port()}", "--retries", "0"])
    out, err = capsys.readouterr()
    assert code != 0
    assert "placez les fichiers dans" in err and "--mirror" in err
    assert "Traceback" not in err + out


def test_cli_fetch_unknown_departement(tmp_path: Path) -> None:
    """Own process, as a user runs it: exit 2, one line, no traceback."""
    res = _cli("fetch", "--dept", "99", "--data-dir", str(tmp_path), cwd=REPO)
    assert res.returncode == 2
    assert "code de département inconnu « 99 »" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_fetch_through_a_mirror(server: Server, tmp_path: Path) -> None:
    server.files.update(official_files(tmp_path))
    res = _cli("fetch", "--dept", "15", "--data-dir", str(tmp_path / "d"), "--mirror",
               server.base, "--retries", "0", "--no-osm", cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert "densite7" in res.stdout and "sha256" in res.stdout
    assert not any("osm.pbf" in p for p, _ in server.log)
    server.log.clear()
    res = _cli("fetch", "--dept", "15", "--data-dir", str(tmp_path / "d"), "--mirror",
               server.base, "--retries", "0", "--no-neighbours", cwd=REPO)
    assert res.returncode == 0, res.stderr
    osm_asked = [p for p, _ in server.log if ".osm.pbf" in p]
    assert osm_asked == [urlsplit(sources.osm_file("15").url).path,
                         urlsplit(sources.osm_file("15").url).path + ".md5"]


def test_an_html_page_instead_of_a_zip_is_refused(server: Server, tmp_path: Path) -> None:
    server.files["/fr/ensemble.zip"] = b"<!DOCTYPE html><html><body>Portail captif</body></html>"
    with pytest.raises(FetchError, match="page HTML au lieu du fichier"):
        download(f"{server.base}/fr/ensemble.zip", tmp_path / "ensemble.zip", options=FAST)
    assert not (tmp_path / "ensemble.zip").exists()
    assert not (tmp_path / "ensemble.zip.part").exists()


def test_osm_extract_is_checked_against_the_published_md5(server: Server,
                                                          tmp_path: Path) -> None:
    src = sources.osm_file("48")
    path = urlsplit(src.url).path
    body = b"pbf bytes of the extract"
    server.files[path] = body
    server.files[path + ".md5"] = f"{hashlib.md5(body).hexdigest()}  x.osm.pbf\n".encode()
    opts = FetchOptions(mirror=server.base, progress=False, retries=0)
    rec = fetch_file(src, tmp_path, options=opts)
    assert rec.checksum.startswith("md5 verified")
    # the publisher's md5 no longer matches (extract updated mid-download): refused
    server.files[path + ".md5"] = b"0123456789abcdef0123456789abcdef  x.osm.pbf\n"
    Path(rec.path).unlink()
    with pytest.raises(ChecksumError, match="publiée"):
        fetch_file(src, tmp_path / "other", options=opts)
    assert not cache_path(tmp_path / "other", src.url).exists()
    # no sidecar at all: accepted, and said so
    del server.files[path + ".md5"]
    rec = fetch_file(src, tmp_path / "third", options=opts)
    assert rec.checksum.startswith("pas de md5 publié")
