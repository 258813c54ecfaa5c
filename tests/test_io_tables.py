"""read_table: formats, encodings, separators, CRS handling and whole-file errors."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

from coverage.errors import (
    EmptyInputError,
    FileTooLargeError,
    InputError,
    MissingCRSError,
    UnsupportedFormatError,
)
from coverage.io.tables import read_table, rename_aliases
from coverage.labels import fr_int

TEXT = "code_insee,nom,population\n01001,L'Abergement-Clémenciat,860\n2A004,Ajaccio,74000\n"


@pytest.mark.parametrize(
    ("encoding", "sep", "bom"),
    [("utf-8", ",", False), ("utf-8", ";", True), ("cp1252", ";", False),
     ("latin-1", ",", False), ("utf-8", "\t", False)],
)
def test_csv_encodings_and_separators(tmp_path: Path, encoding: str, sep: str,
                                      bom: bool) -> None:
    raw = TEXT.replace(",", sep).encode(encoding)
    if bom:
        raw = b"\xef\xbb\xbf" + raw
    f = tmp_path / "t.csv"
    f.write_bytes(raw)
    df = read_table(f)
    assert list(df.columns) == ["code_insee", "nom", "population"]
    assert df["code_insee"].tolist() == ["01001", "2A004"]  # leading zero kept: read as str
    assert df["nom"].iloc[0] == "L'Abergement-Clémenciat"
    assert df.attrs["separator"] == sep


def test_csv_semicolon_with_commas_in_values(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a;b\n1,5;x, y\n2,0;z\n", encoding="utf-8")
    df = read_table(f)
    assert df["a"].tolist() == ["1,5", "2,0"]


def test_csv_empty_cells_are_missing(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,\n,NA\n", encoding="utf-8")
    df = read_table(f)
    assert df["b"].isna().tolist() == [True, False]  # "NA" is text, not a missing value
    assert df["a"].isna().tolist() == [False, True]


def test_csv_bad_row_names_the_row(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,2\n3,4\n5,6,7\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_table(f)
    (p,) = exc.value.problems
    assert (p.file, p.row) == (str(f), 3)
    assert "3 champs" in str(exc.value)


def test_xlsx(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["code_insee", "population", "lon"])
    ws.append([1001, 860, 4.92])  # a number cell: the leading zero is lost by Excel
    ws.append(["2A004", 74000, None])
    f = tmp_path / "t.xlsx"
    wb.save(f)
    df = read_table(f)
    assert df["code_insee"].tolist() == ["1001", "2A004"]
    assert df["population"].tolist() == ["860", "74000"]
    assert df["lon"].iloc[0] == "4.92"
    assert pd.isna(df["lon"].iloc[1])


def test_xlsx_corrupt(tmp_path: Path) -> None:
    f = tmp_path / "t.xlsx"
    f.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(InputError, match="XLSX"):
        read_table(f)


def _gdf(crs: str | None = "EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code_insee": ["15014", "15187"]},
                            geometry=[box(2.4, 44.9, 2.5, 45.0), box(3.0, 45.0, 3.1, 45.1)],
                            crs=crs)


def test_geojson_without_crs_member_is_4326(tests_data: Path) -> None:
    gdf = read_table(tests_data / "io_communes.geojson")
    assert isinstance(gdf, gpd.GeoDataFrame)
    assert gdf.crs.to_epsg() == 4326
    assert len(gdf) == 4


def test_geojson_projected_numbers_without_crs(tmp_path: Path) -> None:
    f = tmp_path / "lambert.geojson"
    f.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
                 '{"a":1},"geometry":{"type":"Point","coordinates":[700000,6600000]}}]}')
    with pytest.raises(MissingCRSError) as exc:
        read_table(f)
    assert exc.value.problems[0].column == "geometry"
    assert str(f) in str(exc.value)


def test_gpkg_layers_and_reprojection(tmp_path: Path) -> None:
    f = tmp_path / "t.gpkg"
    _gdf().to_crs("EPSG:2154").to_file(f, layer="communes")
    gpd.GeoDataFrame({"n": [1]}, geometry=[Point(2.4, 44.9)], crs="EPSG:4326").to_file(
        f, layer="points")
    gdf = read_table(f, layer="communes")
    assert gdf.crs.to_epsg() == 4326
    assert gdf.total_bounds == pytest.approx([2.4, 44.9, 3.1, 45.1], abs=1e-6)
    assert read_table(f, layer="points")["n"].tolist() == [1]
    with pytest.raises(InputError, match="layer"):
        read_table(f, layer="absent")


def test_geoparquet_and_missing_crs(tmp_path: Path) -> None:
    f = tmp_path / "t.parquet"
    _gdf().to_crs("EPSG:2154").to_parquet(f)
    gdf = read_table(f)
    assert gdf.crs.to_epsg() == 4326
    assert gdf.total_bounds == pytest.approx([2.4, 44.9, 3.1, 45.1], abs=1e-6)
    g = tmp_path / "nocrs.parquet"
    _gdf(crs=None).to_parquet(g)
    with pytest.raises(MissingCRSError, match="aucun SCR"):
        read_table(g)


def test_plain_parquet_keeps_types(tmp_path: Path) -> None:
    f = tmp_path / "plain.parquet"
    pd.DataFrame({"code_insee": ["01001"], "dens4": [3]}).to_parquet(f)
    df = read_table(f)
    assert not isinstance(df, gpd.GeoDataFrame)
    assert df["dens4"].iloc[0] == 3


@pytest.mark.parametrize(
    ("name", "content", "error", "expected"),
    [
        ("empty.csv", b"", EmptyInputError, "0 octet"),
        ("blank.csv", b"\n \n", EmptyInputError, "blancs"),
        ("header.csv", b"code_insee,nom\n", EmptyInputError, "en-tête sans lignes"),
        ("t.docx", b"x", UnsupportedFormatError, ".docx"),
        ("t.shp", b"x", UnsupportedFormatError, ".shp"),
    ],
)
def test_whole_file_errors(tmp_path: Path, name: str, content: bytes,
                           error: type[InputError], expected: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(error) as exc:
        read_table(f)
    assert str(f) in str(exc.value)
    assert expected in str(exc.value)


def test_size_limit(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(TEXT, encoding="utf-8")
    size = f.stat().st_size
    assert len(read_table(f, max_bytes=size)) == 2
    with pytest.raises(FileTooLargeError, match=f"{fr_int(size)} octets"):
        read_table(f, max_bytes=size - 1)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fichier introuvable"):
        read_table(tmp_path / "absent.csv")


def test_rename_aliases_case_and_accents() -> None:
    df = pd.DataFrame(columns=["INSEE_COM", "Nom", "Densité"])
    out, notes = rename_aliases(df, {"code_insee": ("insee_com",), "nom": (),
                                     "densite": ("dens4",)}, file="f")
    assert list(out.columns) == ["code_insee", "nom", "densite"]
    assert len(notes) == 3


def test_rename_aliases_two_candidates_is_an_error() -> None:
    df = pd.DataFrame(columns=["dens4", "dens7"])
    with pytest.raises(InputError, match="une seule colonne pour « densite »"):
        rename_aliases(df, {"densite": ("dens4", "dens7")}, file="f")


def test_gpkg_without_crs(tmp_path: Path) -> None:
    f = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="crs"):  # geopandas warns when writing it
        _gdf(crs=None).to_file(f, layer="communes")
    with pytest.raises(MissingCRSError) as exc:
        read_table(f)
    assert exc.value.problems[0].file == str(f)
    assert exc.value.problems[0].column == "geometry"
