"""``zones-blanches validate``: exit codes, messages, nothing written.

The checks call the CLI's ``main`` in this process (the same parser, handler and exit
codes); :func:`test_console_script_exit_codes_without_traceback` runs the installed console
script in its own process, as a user does (marked slow in tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest

from coverage.cli import main

REPO = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "zones-blanches"


class _Result:
    """Exit code and printed text of one ``zones-blanches validate`` (as a process gives)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


class Validate(Protocol):
    """``zones-blanches validate ARGS`` run from the folder ``cwd``."""

    def __call__(self, *args: str | Path, cwd: Path) -> _Result: ...


@pytest.fixture
def validate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Validate:
    """``validate`` through the CLI's ``main`` in this process, from the folder ``cwd``."""
    def run(*args: str | Path, cwd: Path) -> _Result:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(["validate", *map(str, args)])
        captured = capsys.readouterr()
        return _Result(code, captured.out, captured.err)
    return run


def _process(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), "validate", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_console_script_exit_codes_without_traceback(tests_data: Path, tmp_path: Path) -> None:
    """The installed script, own process: exit 0 on valid files, 2 on a bad one, no trace."""
    if not EXE.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    res = _process("--communes", tests_data / "io_communes.geojson", "--services",
                   tests_data / "io_services.csv", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Résultat : valide, aucune erreur" in res.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("service_id,type_service,nom,organisme,code_insee,source,date_source\n"
                   "A,garderie,N,O,15014,s,d\n", encoding="utf-8")
    res = _process("--services", bad, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "ligne 1, colonne « type_service »" in out and "Traceback" not in out
    assert {p.name for p in tmp_path.iterdir()} == {"bad.csv"}


def test_validate_demo_exits_0(validate: Validate, tmp_path: Path) -> None:
    res = validate(cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "FICTIF" in res.stdout
    assert "Résultat : valide, aucune erreur" in res.stdout
    assert not list(tmp_path.iterdir())  # nothing written in the working folder


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("service_id,type_service,nom,organisme,code_insee,source,date_source\n"
         "A,mediation_familiale,N,O,15014,s,d\nA,espace_rencontre,N,O,15187,s,d\n",
         "ligne 2, colonne « service_id »"),
        ("service_id,type_service,nom,organisme,code_insee,source,date_source\n"
         "A,mediation_familiale,N,O,99999,s,d\n",
         "ligne 1, colonne « code_insee »"),
        ("service_id;type_service;nom;organisme;code_insee;lon;lat;source;date_source\n"
         "A;mediation_familiale;N;O;15014;-73,98;40,75;s;d\n",
         "ligne 1, colonne « lon »"),
        ("service_id,type_service,nom,organisme,code_insee,source,date_source\n"
         "A,garderie,N,O,15014,s,d\n",
         "ligne 1, colonne « type_service »"),
    ],
    ids=["duplicate id", "unknown code", "outside France", "unknown type"],
)
def test_validate_bad_services_exits_non_zero(validate: Validate, tmp_path: Path, content: str,
                                              expected: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    before = _tree(tmp_path)
    res = validate("--services", bad, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert expected in out
    assert str(bad) in out
    assert "Traceback" not in out
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [("empty.csv", b"", "0 octet"), ("t.docx", b"x", "extensions"),
     ("communes.csv", b"code_insee,nom\n15014,Aurillac\n", "polygones")],
)
def test_validate_bad_communes_exits_non_zero(validate: Validate, tmp_path: Path, name: str,
                                              content: bytes, expected: str) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    res = validate("--communes", bad, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert expected in out and "Traceback" not in out


def test_validate_fixture_files(validate: Validate, tests_data: Path, tmp_path: Path) -> None:
    res = validate("--communes", tests_data / "io_communes.geojson", "--services",
               tests_data / "io_services.csv", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 communes" in res.stdout and "3 services" in res.stdout


@pytest.mark.shared
def test_validate_real_shared_data(validate: Validate, shared_data: Path, tmp_path: Path) -> None:
    res = validate("--communes", shared_data / "territoires" / "massif_central_15_12_48.gpkg",
               cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "683 communes dans 3 département(s)" in res.stdout
    communes = shared_data / "communes"
    res = validate("--communes", communes / "communes_cog2026.parquet",
               "--densite", communes / "grille_densite_4niv_cog2026.csv",
               "--services", shared_data / "services" / "services_sites_publics_partiels.csv",
               cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "34 868 communes" in res.stdout
    assert "38 services" in res.stdout
    assert "69387 → 69123" in res.stdout
    assert not list(tmp_path.iterdir())
