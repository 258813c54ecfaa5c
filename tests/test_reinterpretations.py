"""Silent reinterpretations become errors or explicit choices (issue 17, item 8).

Each case was once read "somehow": a 4-level density file switched to 7 levels by one cell,
the first layer of a GeoPackage, communes off Somalia (lat/lon swapped), a service 574 km from
its commune, formula cells read as empty, a repeated or alias-clashing header dropped, an
``inf`` capacity. Tiny inputs written here or in ``tests/data`` (``io_communes*.geojson``).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from coverage.cli import main
from coverage.errors import CoverageError, InputError, OutOfTerritoryError
from coverage.io.communes import FRANCE_BBOXES, POINT_TOLERANCE_M, in_france, load_communes
from coverage.io.inputs import ReadChoices, load_inputs, validate_inputs
from coverage.io.services import SERVICE_MAX_KM_FROM_COMMUNE, load_services
from coverage.io.tables import check_headers, read_table, to_number, xlsx_formula_cells

SERVICES_HEADER = ("service_id,type_service,nom,organisme,adresse,code_insee,lon,lat,capacite,"
                   "source,date_source")


def _communes(**extra: object) -> gpd.GeoDataFrame:
    data: dict[str, object] = {"code_insee": ["15014", "15120", "15187"],
                               "nom": ["Aurillac", "Mauriac", "Saint-Flour"],
                               "population": [26214, 3449, 6391], "densite": [2, 3, 3]}
    data.update(extra)
    geoms = [box(2.42, 44.91, 2.46, 44.95), box(2.31, 45.20, 2.35, 45.24),
             box(3.07, 45.01, 3.11, 45.05)]
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")


def _write(tmp_path: Path, gdf: gpd.GeoDataFrame, name: str = "c.geojson") -> Path:
    f = tmp_path / name
    gdf.to_file(f)
    return f


def _services_csv(tmp_path: Path, *rows: str, header: str = SERVICES_HEADER) -> Path:
    f = tmp_path / "s.csv"
    f.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return f


def _problems(exc: pytest.ExceptionInfo[InputError]) -> list[tuple[int | None, str | None]]:
    return [(p.row, p.column) for p in exc.value.problems]


# --- density grid: declared, never guessed from the values ---------------------------------

def test_one_level_5_in_a_4_level_file_is_an_error_of_its_row(tmp_path: Path) -> None:
    f = _write(tmp_path, _communes(densite=[2, 5, 3]))
    with pytest.raises(InputError) as exc:
        load_communes(f)
    assert _problems(exc) == [(2, "densite")]
    assert "de 1 à 4" in str(exc.value) and "--densite-niveaux 7" in str(exc.value)


def test_a_7_level_grid_is_declared_by_name_or_option(tmp_path: Path) -> None:
    f = _write(tmp_path, _communes(densite=[2, 5, 7]))
    d = load_communes(f, density_levels=7).data
    assert d["densite7"].tolist() == [2, 5, 7] and d["densite"].tolist() == [2, 3, 4]
    named = _write(tmp_path, _communes(densite=[2, 5, 7]).rename(columns={"densite": "dens7"}),
                   "c7.geojson")
    assert load_communes(named).data["densite7"].tolist() == [2, 5, 7]
    # declared 4 levels: a 7-level column name does not override the option
    with pytest.raises(InputError, match="ligne 2, colonne « densite »"):
        load_communes(named, density_levels=4)
    with pytest.raises(CoverageError, match="4 ou 7"):
        load_communes(f, density_levels=5)


def test_density_grid_file_with_a_5_in_4_levels(tmp_path: Path) -> None:
    f = _write(tmp_path, _communes().drop(columns="densite"))
    grid = tmp_path / "grille.csv"
    grid.write_text("code_insee,dens\n15014,2\n15120,5\n15187,3\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_communes(f, densite=grid)
    assert _problems(exc) == [(2, "densite")] and str(grid) in str(exc.value)
    assert load_communes(f, densite=grid, density_levels=7).data["densite7"].tolist() == \
        [2, 5, 3]


def test_cli_densite_niveaux_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, _communes(densite=[2, 5, 7]))
    assert main(["validate", "--communes", str(f)]) != 0
    assert "de 1 à 4" in capsys.readouterr().out
    assert main(["validate", "--communes", str(f), "--densite-niveaux", "7"]) == 0


# --- GeoPackage layers ---------------------------------------------------------------------

@pytest.fixture()
def two_layers(tmp_path: Path) -> Path:
    f = tmp_path / "deux.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(
        f, layer="brouillon")
    _communes().to_file(f, layer="contours")
    return f


def test_several_layers_need_a_layer_name(two_layers: Path) -> None:
    with pytest.raises(InputError) as exc:
        read_table(two_layers)
    msg = str(exc.value)
    assert "brouillon, contours" in msg and "--layer" in msg
    with pytest.raises(InputError, match="brouillon, contours"):
        load_communes(two_layers)
    assert len(load_communes(two_layers, layer="contours").data) == 3


def test_a_single_layer_is_read_without_a_name(tmp_path: Path) -> None:
    f = tmp_path / "une.gpkg"
    _communes().to_file(f, layer="contours")
    assert len(load_communes(f).data) == 3


def test_layer_choices_reach_the_loaders(two_layers: Path, tmp_path: Path) -> None:
    services = _services_csv(tmp_path, "T1,mediation_familiale,M,A,,15014,2.44,44.93,,s,d")
    inputs = load_inputs(communes=two_layers, services=services,
                         choices=ReadChoices(layers={"communes": "contours"}))
    assert len(inputs.communes) == 3
    report = validate_inputs(communes=two_layers)
    assert not report.ok and "brouillon, contours" in report.text()
    with pytest.raises(CoverageError, match="--layer"):
        ReadChoices(layers={"routes": "x"})


def test_cli_layer_option(two_layers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--communes", str(two_layers)]) != 0
    assert "brouillon, contours" in capsys.readouterr().out
    assert main(["validate", "--communes", str(two_layers), "--layer", "contours"]) == 0
    assert main(["validate", "--communes", str(two_layers),
                 "--layer", "communes=contours"]) == 0


# --- where the communes are ----------------------------------------------------------------

def test_swapped_lat_lon_geojson_is_refused(tests_data: Path) -> None:
    """A GeoJSON written as lat/lon without CRS lands off Somalia: refused with a hint."""
    f = tests_data / "io_communes_swapped.geojson"
    with pytest.raises(OutOfTerritoryError) as exc:
        load_communes(f)
    msg = str(exc.value)
    assert "ligne 1, colonne « geometry »" in msg and "lon 44,93000 ; lat 2,44000" in msg
    assert "inversées" in msg and "RFC 7946" in msg
    assert len(load_communes(tests_data / "io_communes.geojson").data) == 4


def test_france_boxes() -> None:
    assert in_france([2.35, 55.45, -61.0, -56.2], [48.85, -20.9, 14.6, 46.8]).all()
    assert not in_france([44.9, -70.0, 7.0], [2.4, 40.0, 60.0]).any()
    assert {"metropole", "971", "972", "973", "974", "976"} <= set(FRANCE_BBOXES)


def test_commune_point_outside_its_polygon(tmp_path: Path) -> None:
    # Mauriac's point 0.005° (≈ 400 m) east of its square: kept with a warning
    near = _write(tmp_path, _communes(lon=[2.44, 2.355, None], lat=[44.93, 45.22, None]))
    loaded = load_communes(near)
    assert any("hors de leur polygone" in w and "lignes 2" in w for w in loaded.warnings)
    # 0.1° (≈ 8 km) away: an error naming the row and the distance
    far = _write(tmp_path, _communes(lon=[2.44, 2.45, None], lat=[44.93, 45.22, None]),
                 "far.geojson")
    with pytest.raises(OutOfTerritoryError) as exc:
        load_communes(far)
    assert _problems(exc) == [(2, "lon")]
    assert "km du polygone" in str(exc.value) and f"{POINT_TOLERANCE_M:g} m" in str(exc.value)


def test_service_far_from_its_commune(tmp_path: Path, tests_data: Path) -> None:
    communes = load_communes(tests_data / "io_communes.geojson")
    # declared in Saint-Flour (15187), placed in Aurillac: 50 km away
    f = _services_csv(tmp_path, "T1,mediation_familiale,M,A,,15014,2.44,44.93,,s,d",
                      "T2,mediation_familiale,M,A,,15187,2.44,44.93,,s,d")
    with pytest.raises(OutOfTerritoryError) as exc:
        load_services(f, communes=communes)
    assert _problems(exc) == [(2, "lon")]
    assert "à 50 km du polygone de la commune 15187" in str(exc.value)
    assert f"{SERVICE_MAX_KM_FROM_COMMUNE:g} km" in str(exc.value)
    ok = _services_csv(tmp_path, "T1,mediation_familiale,M,A,,15187,3.20,45.03,,s,d")
    assert len(load_services(ok, communes=communes).data) == 1  # 8 km away: accepted


# --- XLSX formulas -----------------------------------------------------------------------------

def _xlsx_with_formula(path: Path) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(SERVICES_HEADER.split(","))
    ws.append(["T1", "mediation_familiale", "M", "A", None, "15014", 2.44, 44.93, None, "s",
               "d"])
    ws.append(["T2", "mediation_familiale", "M", "A", None, "15014", "=G2", "=H2", None, "s",
               "d"])
    wb.save(path)
    return path


def test_formula_cells_without_a_value_are_refused(tmp_path: Path, tests_data: Path) -> None:
    """openpyxl writes no computed value: the coordinates would read as empty."""
    f = _xlsx_with_formula(tmp_path / "s.xlsx")
    assert xlsx_formula_cells(f) == [("G3", "=G2", False), ("H3", "=H2", False)]
    with pytest.raises(InputError) as exc:
        load_services(f, communes=load_communes(tests_data / "io_communes.geojson"))
    msg = str(exc.value)
    assert "cellule G3 : =G2" in msg and "cellule H3 : =H2" in msg


def _with_cached_values(src: Path, dst: Path, values: dict[str, str]) -> Path:
    """Copy a workbook adding the computed value of formula cells (as Excel saves it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode("utf-8")
                for ref, value in values.items():  # openpyxl writes an empty value element
                    start = text.index(f'<c r="{ref}"')
                    end = text.index("</c>", start)
                    empty = re.sub(r"<v\s*/>|<v></v>", "", text[start:end])
                    cell = empty + f"<v>{value}</v>"
                    text = text[:start] + cell + text[end:]
                data = text.encode("utf-8")
            zout.writestr(item, data)
    return dst


def test_formula_cells_with_a_computed_value_are_read_and_said(
        tmp_path: Path, tests_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _xlsx_with_formula(tmp_path / "raw.xlsx")
    f = _with_cached_values(src, tmp_path / "s.xlsx", {"G3": "2.44", "H3": "44.93"})
    assert [cached for _, _, cached in xlsx_formula_cells(f)] == [True, True]
    with caplog.at_level("WARNING", logger="coverage.io.tables"):
        d = load_services(f, communes=load_communes(tests_data / "io_communes.geojson")).data
    assert d["lon"].tolist() == pytest.approx([2.44, 2.44])
    assert any("2 cellule(s) à formule" in r.getMessage() and "G3, H3" in r.getMessage()
               for r in caplog.records)


# --- headers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "named"), [
    ("lon,lon", ["'lon' et 'lon.1'"]),
    ("lon ,lon", ["'lon' répété"]),
])
def test_repeated_headers_are_refused(tmp_path: Path, tests_data: Path, header: str,
                                      named: list[str]) -> None:
    f = tmp_path / "s.csv"
    f.write_text(SERVICES_HEADER.replace("lon", header, 1) + "\n"
                 "T1,mediation_familiale,M,A,,15014,2.44,2.45,44.93,,s,d\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_services(f, communes=load_communes(tests_data / "io_communes.geojson"))
    for words in named:
        assert words in str(exc.value)


@pytest.mark.parametrize("other", ["longitude", "Lon", "LON"])
def test_alias_clashing_headers_are_refused(tmp_path: Path, tests_data: Path,
                                            other: str) -> None:
    f = tmp_path / "s.csv"
    f.write_text(SERVICES_HEADER + f",{other}\n"
                 "T1,mediation_familiale,M,A,,15014,2.44,44.93,,s,d,9.9\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_services(f, communes=load_communes(tests_data / "io_communes.geojson"))
    msg = str(exc.value)
    assert "une seule colonne pour « lon »" in msg and f"colonnes lon, {other}" in msg


def test_repeated_xlsx_headers_are_refused(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["code_insee", "densite", "densite "])
    wb.active.append(["15014", 2, 3])
    f = tmp_path / "g.xlsx"
    wb.save(f)
    with pytest.raises(InputError, match="'densite' répété"):
        read_table(f)


def test_check_headers_accepts_distinct_names() -> None:
    check_headers(["lon", "lat", "lon_2", "version.2"], file="f")


# --- non-finite numbers --------------------------------------------------------------------

def test_to_number_refuses_non_finite_values() -> None:
    got = to_number(pd.Series(["inf", "-inf", "1e999", "nan", "2,5", None]))
    assert got.isna().tolist() == [True, True, True, True, False, True]
    assert to_number(pd.Series([1.0, float("inf")])).isna().tolist() == [False, True]


@pytest.mark.parametrize("cap", ["inf", "-inf", "1e400", "nan"])
def test_infinite_capacity_is_refused(tmp_path: Path, tests_data: Path, cap: str) -> None:
    f = _services_csv(tmp_path, f"T1,mediation_familiale,M,A,,15014,2.44,44.93,{cap},s,d")
    with pytest.raises(InputError) as exc:
        load_services(f, communes=load_communes(tests_data / "io_communes.geojson"))
    assert _problems(exc) == [(1, "capacite")] and "fini" in str(exc.value)


def test_infinite_population_and_coordinates_are_refused(tmp_path: Path) -> None:
    f = _write(tmp_path, _communes(population=["26214", "inf", "6391"]))
    with pytest.raises(InputError) as exc:
        load_communes(f)
    assert (2, "population") in _problems(exc)
    g = _write(tmp_path, _communes(lon=["2.44", "inf", None], lat=[44.93, 45.22, None]),
               "g.geojson")
    with pytest.raises(InputError) as exc:
        load_communes(g)
    assert (2, "lon") in _problems(exc)


def test_fixtures_are_where_the_readme_says(tests_data: Path) -> None:
    readme = (tests_data / "README.md").read_text(encoding="utf-8")
    for name in ("io_communes_swapped.geojson", "osm_untrusted_tags.osm",
                 "osm_footways_only.osm", "graphml_small.graphml"):
        assert (tests_data / name).is_file() and f"`{name}`" in readme
