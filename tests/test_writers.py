"""Contract table writer and GeoParquet writer (coverage.io.writers), RunOutputs.load."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from coverage.errors import CRSError, OutputError
from coverage.io.writers import conform_to_contract, csv_text, write_geoparquet, write_table
from coverage.schemas import ACCES_COMMUNES, ZONES_BLANCHES, table_schema


def _acces() -> pd.DataFrame:
    return pd.DataFrame({
        "extra": [1, 2],
        "code_insee": ["ZA001", "ZA002"],
        "nom": ["Alpha", "Béta"],
        "code_dep": ["ZA", "ZA"],
        "population": [120.0, 30.0],
        "densite": [4, 3],
        "rural": [True, True],
        "type_service": ["mediation_familiale"] * 2,
        "minutes": [12.5, np.nan],
        "service_id": ["S1", None],
        "distance_km": [9.0, np.nan],
        "moteur": ["road", "road"],
    })


def test_write_table_files_columns_and_types(tmp_path: Path) -> None:
    paths = write_table(_acces(), ACCES_COMMUNES, tmp_path / "tables")
    assert [p.name for p in paths] == [
        "acces_communes.csv", "acces_communes.parquet", "acces_communes.schema.json"]
    csv = (tmp_path / "tables" / "acces_communes.csv").read_text(encoding="utf-8")
    header, first, second = csv.splitlines()
    assert header.split(",") == ACCES_COMMUNES.columns
    assert first.startswith("ZA001,Alpha,ZA,120,4,True,mediation_familiale,12.5,S1,9.0,road")
    # unreachable: empty cells, never a magic number
    assert second == "ZA002,Béta,ZA,30,3,True,mediation_familiale,,,,road,,,,"
    back = pd.read_parquet(tmp_path / "tables" / "acces_communes.parquet")
    assert list(back.columns) == ACCES_COMMUNES.columns
    assert back["population"].dtype == np.int64
    assert back["rural"].dtype == bool
    assert np.isnan(back.loc[1, "minutes"])
    assert pd.isna(back.loc[1, "service_id"])
    schema = json.loads(paths[2].read_text(encoding="utf-8"))
    assert schema == table_schema(ACCES_COMMUNES)
    assert [f["name"] for f in schema["fields"]] == ACCES_COMMUNES.columns


def test_write_table_is_atomic_no_temp_left(tmp_path: Path) -> None:
    write_table(_acces(), ACCES_COMMUNES, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "acces_communes.csv", "acces_communes.parquet", "acces_communes.schema.json"]


def test_write_table_missing_column(tmp_path: Path) -> None:
    df = _acces().drop(columns=["moteur"])
    with pytest.raises(OutputError, match="moteur"):
        write_table(df, ACCES_COMMUNES, tmp_path)
    assert not any(tmp_path.iterdir())


def test_conform_rejects_fractional_population() -> None:
    df = _acces()
    df.loc[0, "population"] = 1.5
    with pytest.raises(OutputError, match="population"):
        conform_to_contract(df, ACCES_COMMUNES)


def test_write_empty_table(tmp_path: Path) -> None:
    empty = pd.DataFrame({c: [] for c in ZONES_BLANCHES.columns})
    write_table(empty, ZONES_BLANCHES, tmp_path)
    back = pd.read_parquet(tmp_path / "zones_blanches.parquet")
    assert list(back.columns) == ZONES_BLANCHES.columns and len(back) == 0


def test_write_geoparquet_reprojects_and_needs_crs(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(700000, 6600000)], crs="EPSG:2154")
    path = write_geoparquet(gdf, tmp_path / "x.parquet")
    back = gpd.read_parquet(path)
    assert back.crs == "EPSG:4326"
    assert 2 < back.geometry.x[0] < 4 and 46 < back.geometry.y[0] < 47
    with pytest.raises(CRSError, match="aucun SCR"):
        write_geoparquet(gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)]),
                         tmp_path / "y.parquet")


def test_float_fields_are_those_of_to_csv(tmp_path: Path) -> None:
    # the fast CSV path formats floats by Python's repr: the strings of pandas' to_csv on
    # a wide sample (random, rounded, tiny, huge, the exponent thresholds, -0.0, ±inf)
    rng = np.random.default_rng(18)
    values = np.concatenate([
        rng.uniform(0, 300, 3000), np.round(rng.uniform(0, 300, 2000), 1),
        rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000),
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5,
         5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 100.0, 1e22, 1e-7]])
    frame = pd.DataFrame({"x": values, "n": np.arange(values.size)})
    expected = frame.to_csv(index=False, lineterminator="\n")
    assert csv_text(frame) == expected
