"""Issue 12 outputs: ranges in the coverage tables, labelled distances, empty offers, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_whitezones import ER, MF, _points, _services

from coverage.batch.proxy_inputs import empty_offer_warnings
from coverage.labels import REASON_TOO_FAR, REASON_UNREACHABLE
from coverage.routing.proxy import ProxyEngine
from coverage.whitezones import (
    RANGE_COLUMNS,
    access_table,
    coverage_tables,
    distance_column,
    nearest_services,
    white_zones,
    without_empty_engine_columns,
)


def test_proxy_ranges_bracket_every_coverage_figure() -> None:
    com, svc = _points(), _services()
    access = nearest_services(com, svc, engine=ProxyEngine())
    # thresholds at the communes' own minutes: the bounds fall on both sides of them
    thresholds = sorted(float(m) for m in access["minutes"].dropna().unique())
    tables = coverage_tables(access, com, thresholds,
                             levels=["departements", "densite", "france"])
    for t in tables.values():
        assert t[list(RANGE_COLUMNS)].notna().all().all()
        for what in ("communes_zone_blanche", "population_zone_blanche"):
            assert (t[f"{what}_min"] <= t[what]).all() and (t[what] <= t[f"{what}_max"]).all()
    france = tables["couverture_france"]
    assert (france["population_zone_blanche_min"] < france["population_zone_blanche_max"]).any()


def test_road_rows_have_empty_ranges_and_a_road_distance() -> None:
    com = _points()
    nearest = pd.DataFrame({"code_insee": com["code_insee"], "type_service": MF,
                            "minutes": [5.0, 50.0, np.nan, 12.0, np.nan],
                            "service_id": ["m1", "m1", None, "m1", None],
                            "distance_km": [4.0, 60.0, np.nan, 10.0, np.nan], "moteur": "road",
                            "acces_hors_reseau": False})
    access = access_table(com, nearest, service_types=(MF,))
    assert access["distance_km"].notna().sum() == 3 and access["distance_estimee_km"].isna().all()
    assert access[["minutes_min", "minutes_max"]].isna().all().all()
    assert distance_column(access) == "distance_km"
    shown = without_empty_engine_columns(access)
    assert "distance_estimee_km" not in shown and "minutes_min" not in shown
    assert set(access.loc[access["minutes"].isna(), "raison"]) == {REASON_UNREACHABLE}
    france = coverage_tables(access, com, [30.0], levels=["france"])["couverture_france"]
    assert france[list(RANGE_COLUMNS)].isna().all().all()
    assert not set(RANGE_COLUMNS) & set(without_empty_engine_columns(france).columns)
    zones = white_zones(access, [30.0])
    mf = zones[zones["type_service"] == MF].set_index("code_insee")["raison"]
    assert mf[com["code_insee"][1]] == REASON_TOO_FAR
    assert mf[com["code_insee"][2]] == REASON_UNREACHABLE


def test_proxy_distance_is_an_estimate() -> None:
    access = nearest_services(_points(), _services(), engine=ProxyEngine())
    reached = access["minutes"].notna()
    assert access.loc[reached, "distance_estimee_km"].notna().all()
    assert access["distance_km"].isna().all()
    assert distance_column(access) == "distance_estimee_km"
    assert "distance_km" not in without_empty_engine_columns(access)


def test_empty_offer_warnings() -> None:
    services = pd.DataFrame({"type_service": [MF, MF], "code_dep": ["15", "12"]})
    notes = empty_offer_warnings(services, ["12", "15", "48"], [MF, ER])
    assert notes == [
        "Aucun service « Médiation familiale » dans le département 48 : ses communes "
        "dépendent des services des départements voisins.",
        "Aucun service « Espace de rencontre » dans la liste des services : tout le "
        "territoire est en zone blanche pour ce type."]
    assert empty_offer_warnings(services.iloc[:0], ["12"], [MF]) == [
        "Aucun service « Médiation familiale » dans la liste des services : tout le "
        "territoire est en zone blanche pour ce type."]


def test_cli_bad_links_file_is_one_clear_line_and_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from coverage.cli import main

    links = tmp_path / "liaisons.csv"
    links.write_text("port_1,port_2,minutes\nZA001,ZA002,-5\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["run", "--engine", "proxy", "--no-isochrones", "--workers", "1",
                 "--liaisons", str(links), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert "liaisons.csv, ligne 1, colonne « minutes »" in err and "Traceback" not in err
    assert not (out / "manifest.json").exists()


def test_cli_links_with_the_road_engine_are_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from coverage.cli import main

    links = tmp_path / "liaisons.csv"
    links.write_text("port_1,port_2,minutes\n", encoding="utf-8")
    code = main(["run", "--engine", "road", "--no-isochrones", "--workers", "1",
                 "--liaisons", str(links), "--out", str(tmp_path / "out")])
    assert code != 0 and "--liaisons" in capsys.readouterr().err
