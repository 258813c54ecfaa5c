"""Bounds on everything numeric: each refusal names the cell (or the setting) and the range."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from coverage.batch import RunOptions, run_batch
from coverage.cli import EXIT_ERROR, main
from coverage.errors import CoverageError, InputError
from coverage.io.communes import MAX_POPULATION, load_communes
from coverage.io.inputs import load_inputs
from coverage.io.services import MAX_CAPACITY, load_services
from coverage.io.waiting import MAX_COUNT, MAX_DELAY_DAYS, load_waiting
from coverage.settings import (
    SETTING_BOUNDS,
    Settings,
    check_settings,
    settings_with_overrides,
)

# --- communes: population checked before the integer cast ----------------------------------


def _communes(tmp_path: Path, population: list[object]) -> Path:
    gdf = gpd.GeoDataFrame(
        {"code_insee": ["15014", "15120", "15187"], "nom": ["Aurillac", "Mauriac", "Flour"],
         "population": population, "densite": [2, 3, 3]},
        geometry=[box(2.42, 44.91, 2.46, 44.95), box(2.31, 45.20, 2.35, 45.24),
                  box(3.07, 45.01, 3.11, 45.05)], crs="EPSG:4326")
    path = tmp_path / "communes.geojson"
    gdf.to_file(path)
    return path


@pytest.mark.parametrize("bad", [1e20, 10_000_001, -1, "1e30", "inf", 2.5])
def test_population_out_of_range_names_the_cell(tmp_path: Path, bad: object) -> None:
    path = _communes(tmp_path, [26214, bad, 6391])
    with pytest.raises(InputError) as err:
        load_communes(path)
    problems = [p for p in err.value.problems if p.column == "population"]
    assert [p.row for p in problems] == [2]
    assert "10 000 000" in problems[0].expected


def test_population_at_the_bound_is_kept(tmp_path: Path) -> None:
    data = load_communes(_communes(tmp_path, [MAX_POPULATION, 0, 6391])).data
    assert data["population"].tolist() == [MAX_POPULATION, 0, 6391]
    assert data["population"].min() >= 0


# --- services: capacities finite, ≥ 0, reasonable; coordinates in degrees --------------------

HEADER = ("service_id,type_service,nom,organisme,adresse,code_insee,lon,lat,capacite,source,"
          "date_source")


def _services(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "s.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("cell", ["inf", "1e30", "-2", str(MAX_CAPACITY + 1), "NaN"])
def test_capacity_out_of_range_names_the_cell(tmp_path: Path, tests_data: Path,
                                              cell: str) -> None:
    communes = load_communes(tests_data / "io_communes.geojson")
    path = _services(tmp_path, "T1,mediation_familiale,M,Asso,,15014,2.44,44.93,3,src,2026",
                     f"T2,mediation_familiale,M,Asso,,15014,2.44,44.93,{cell},src,2026")
    with pytest.raises(InputError) as err:
        load_services(path, communes=communes)
    assert [(p.row, p.column) for p in err.value.problems] == [(2, "capacite")]


@pytest.mark.parametrize(("lon", "lat", "column"), [("2.44", "95", "lat"),
                                                     ("200", "44.9", "lon"),
                                                     ("2.44", "-1e300", "lat")])
def test_coordinates_out_of_degrees_name_the_cell(tmp_path: Path, tests_data: Path, lon: str,
                                                  lat: str, column: str) -> None:
    communes = load_communes(tests_data / "io_communes.geojson")
    path = _services(tmp_path, f"T1,mediation_familiale,M,Asso,,15014,{lon},{lat},,src,2026")
    with pytest.raises(InputError) as err:
        load_services(path, communes=communes)
    assert (1, column) in {(p.row, p.column) for p in err.value.problems}


# --- waiting lists: counts and delays, no OverflowError ------------------------------------

WAITING_HEADER = "Département,Type de service,Année,Familles en attente,Délai moyen (jours)"


@pytest.mark.parametrize(("cell", "column"), [
    ("1e30,10", "Familles en attente"), ("1e20,10", "Familles en attente"),
    (f"{MAX_COUNT + 1},10", "Familles en attente"), ("5,1e30", "Délai moyen (jours)"),
    (f"5,{MAX_DELAY_DAYS + 1}", "Délai moyen (jours)"), ("5,-3", "Délai moyen (jours)"),
])
def test_waiting_count_and_delay_bounds(tmp_path: Path, cell: str, column: str) -> None:
    path = tmp_path / "w.csv"
    path.write_text(f"{WAITING_HEADER}\n15,ER,2023,4,30\n15,MF,2023,{cell}\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as err:  # never an OverflowError
        load_waiting(path)
    assert [(p.row, p.column) for p in err.value.problems] == [(2, column)]
    assert "entre 0 et" in err.value.problems[0].expected


def test_waiting_bounds_are_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text(f"{WAITING_HEADER}\n15,ER,2023,{MAX_COUNT},{MAX_DELAY_DAYS}\n",
                    encoding="utf-8")
    data = load_waiting(path).data
    assert data["familles_en_attente"].tolist() == [MAX_COUNT]
    assert data["delai_moyen_jours"].tolist() == [MAX_DELAY_DAYS]


# --- settings --------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "text", "shown"), [
    ("proxy_detour_factor", "0", "entre 1 et 3"),
    ("proxy_detour_factor", "3.5", "entre 1 et 3"),
    ("access_speed_kmh", "0", "entre 1 et 150 km/h"),
    ("default_speeds_kmh", "motorway:5000", "entre 1 et 150 km/h"),
    ("thresholds_min", "0,30", "> 0 et ≤ 600 min"),
    ("thresholds_min", "30,601", "> 0 et ≤ 600 min"),
    ("snap_max_m", "0", "> 0"),
    ("snap_max_m", "inf", "> 0"),
    ("max_input_bytes", "0", "> 0"),
])
def test_bad_setting_is_refused_with_its_range(name: str, text: str, shown: str) -> None:
    with pytest.raises(CoverageError, match=rf"{name}={text}.*{shown}"):
        settings_with_overrides(Settings(), {name: text})


def test_default_settings_are_in_range_and_library_settings_checked(tmp_path: Path) -> None:
    assert check_settings(Settings()) == Settings()
    assert {"proxy_detour_factor", "thresholds_min", "snap_max_m"} <= set(SETTING_BOUNDS)
    bad = replace(Settings(), proxy_detour_factor=0.0)
    with pytest.raises(CoverageError, match="proxy_detour_factor"):
        check_settings(bad)
    out = tmp_path / "out"
    with pytest.raises(CoverageError, match="proxy_detour_factor"):  # nothing written
        run_batch(load_inputs(), out_dir=out, options=RunOptions(workers=1), settings=bad)
    with pytest.raises(CoverageError, match="600"):
        run_batch(load_inputs(), out_dir=out, options=RunOptions(workers=1,
                                                                 thresholds=(30, 900)))
    assert not out.exists()


@pytest.mark.parametrize("workers", ["0", "-1", "deux"])
def test_cli_workers_below_one_is_refused(tmp_path: Path, workers: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--workers", workers, "--out", str(tmp_path / "o")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--workers" in err and "≥ 1" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and " : erreur : " in err
    assert not (tmp_path / "o").exists()


def test_library_workers_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CoverageError, match="≥ 1"):
        run_batch(load_inputs(), out_dir=tmp_path / "o", options=RunOptions(workers=0))
    assert not (tmp_path / "o").exists()
