"""The batch cache key is made from the imported module objects, never from file names."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from coverage import batch, whitezones
from coverage.errors import CoverageError
from coverage.routing import road as traveltime


def test_key_covers_the_engines_stages_and_contracts() -> None:
    names = {m.__name__ for m in batch.keyed_modules()}
    assert {"coverage.whitezones", "coverage.routing.road", "coverage.routing.proxy",
            "coverage.routing.network", "coverage.schemas", "coverage.geo"} <= names


def test_renaming_a_keyed_module_changes_the_key(tmp_path: Path) -> None:
    base = batch.code_version()
    clone = types.ModuleType("coverage.whitezones_renamed")
    clone.__file__ = whitezones.__file__
    modules = [clone if m is whitezones else m for m in batch.keyed_modules()]
    assert batch.code_version(modules) != base


def test_moving_a_keyed_module_to_other_source_changes_the_key(tmp_path: Path) -> None:
    base = batch.code_version()
    moved = tmp_path / "traveltime.py"
    moved.write_bytes(Path(traveltime.__file__).read_bytes() + b"\n# moved\n")
    clone = types.ModuleType(traveltime.__name__)
    clone.__file__ = str(moved)
    modules = [clone if m is traveltime else m for m in batch.keyed_modules()]
    assert batch.code_version(modules) != base
    assert batch.code_version() == base  # deterministic


def test_a_keyed_module_without_source_fails_loudly(tmp_path: Path) -> None:
    gone = types.ModuleType("coverage.gone")
    gone.__file__ = str(tmp_path / "gone.py")
    with pytest.raises(CoverageError, match=r"coverage\.gone"):
        batch.code_version([*batch.keyed_modules(), gone])
    nofile = types.ModuleType("coverage.nofile")
    with pytest.raises(CoverageError, match=r"coverage\.nofile"):
        batch.code_version([nofile])
