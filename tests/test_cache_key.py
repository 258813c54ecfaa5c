"""The batch cache key is made from the imported module objects, never from file names."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coverage import batch, whitezones
from coverage.batch.cache import cache_read, cache_table, cache_write
from coverage.batch.partitions import PartitionOutput
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


def _roundtrip(tmp_path: Path, frame: pd.DataFrame, dept: str = "01") -> pd.DataFrame:
    out = PartitionOutput(dept, "k" * 64, frame, 0.5, {"moteur": "proxy"})
    cache_write(tmp_path, out, context="c" * 64, service_hashes=np.array([1, 2], np.uint64))
    hit = cache_read(tmp_path, dept, "k" * 64)
    assert hit is not None
    pd.testing.assert_frame_equal(cache_table(tmp_path, dept, "k" * 64), hit.access)
    return hit.access


def test_partition_cache_gives_back_the_table_bit_for_bit(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "code_insee": pd.array(["01001", "2A004", None], dtype="str"),
        "population": np.array([10, 0, 7], dtype=np.int64),
        "rural": np.array([True, False, True]),
        "minutes": np.array([12.5, -0.0, np.nan]),
        "raison": pd.array([None, "île sans service", None], dtype="str"),
    })
    back = _roundtrip(tmp_path, frame)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back["minutes"].to_numpy().view(np.int64).tolist() == \
        frame["minutes"].to_numpy().view(np.int64).tolist()  # -0.0 and NaN kept as they were
    # other dtypes go through pandas' metadata and come back the same
    odd = pd.DataFrame({"n": pd.array([1, None], dtype="Int64"),
                        "c": pd.Categorical(["a", "b"]), "o": np.array(["x", None], object)})
    pd.testing.assert_frame_equal(_roundtrip(tmp_path, odd, "02"), odd)
    # an empty table too
    pd.testing.assert_frame_equal(_roundtrip(tmp_path, frame.iloc[:0], "03"), frame.iloc[:0])


def test_partition_cache_entry_is_whole_or_absent(tmp_path: Path) -> None:
    frame = pd.DataFrame({"code_insee": pd.array(["01001"], dtype="str"),
                          "minutes": np.array([3.0])})
    _roundtrip(tmp_path, frame)
    table = next(tmp_path.glob("01-*.arrow"))
    table.write_bytes(table.read_bytes()[:20])  # a torn table file
    assert cache_read(tmp_path, "01", "k" * 64) is None
    # a newer key of the same département replaces the older entry
    out = PartitionOutput("01", "n" * 64, frame, 0.1, {})
    cache_write(tmp_path, out)
    assert sorted(p.name[:5] for p in tmp_path.glob("01-*")) == ["01-nn", "01-nn"]
    assert cache_read(tmp_path, "01", "k" * 64) is None
    assert cache_read(tmp_path, "01", "n" * 64) is not None
