"""Settings overrides (``--set KEY=VALUE``) and metric CRS choice."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coverage.errors import CoverageError
from coverage.settings import Settings, metric_crs_for, settings_with_overrides

BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "zones-blanches"


def test_overrides_parse_each_kind_of_field() -> None:
    s = settings_with_overrides(Settings(), {
        "snap_max_m": "3000", "ferries": "false", "thresholds_min": "15,30",
        "secrecy_threshold": "11", "proxy_access_min_by_density": "4:55",
        "default_speeds_kmh": "unclassified:40"})
    assert s.snap_max_m == 3000.0
    assert s.ferries is False
    assert s.thresholds_min == (15.0, 30.0)
    assert s.secrecy_threshold == 11
    assert s.proxy_access_min_by_density[4] == 55.0
    assert s.proxy_access_min_by_density[1] == Settings().proxy_access_min_by_density[1]
    assert s.default_speeds_kmh["unclassified"] == 40.0
    assert s.default_speeds_kmh["motorway"] == 130.0


@pytest.mark.parametrize(("key", "value", "message"), [
    ("snap_max", "3000", "réglage inconnu « snap_max »"),
    ("snap_max_m", "far", "attendu un nombre"),
    ("secrecy_threshold", "2.5", "attendu un nombre entier"),
    ("proxy_access_min_by_density", "x:5", "paires clé:valeur"),
    ("ferries", "maybe", "attendu true ou false"),
    ("snap_max_m", "-5", "≥ 0"),
    ("default_speeds_kmh", "fast", "paires clé:valeur"),
])
def test_bad_overrides_say_what_is_expected(key: str, value: str, message: str) -> None:
    with pytest.raises(CoverageError, match=message):
        settings_with_overrides(Settings(), {key: value})


def test_metric_crs_per_territory() -> None:
    assert metric_crs_for("15") == "EPSG:2154"
    assert metric_crs_for("2A") == "EPSG:2154"
    assert metric_crs_for("974") == "EPSG:2975"
    assert metric_crs_for("973") == "EPSG:2972"


def test_cli_set_is_applied_and_checked(tmp_path: Path) -> None:
    ok = subprocess.run([str(BIN), "validate", "--set", "max_input_bytes=100"],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 2
    assert "100" in ok.stdout + ok.stderr  # the demo files are larger than 100 bytes
    bad = subprocess.run([str(BIN), "run", "--set", "nope=1", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "réglage inconnu « nope »" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "o").exists()
