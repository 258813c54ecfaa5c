"""load_services: contract, aliases, generated ids, placement, territory, errors."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

from coverage.errors import (
    DuplicateIdError,
    InputError,
    MissingColumnError,
    OutOfTerritoryError,
    UnknownCodeError,
)
from coverage.io.communes import load_communes
from coverage.io.services import SERVICE_COLUMNS, load_services, type_key
from coverage.io.tables import Loaded

HEADER = ("service_id,type_service,nom,organisme,adresse,code_insee,lon,lat,capacite,source,"
          "date_source")
GOOD = "T9,mediation_familiale,M,Asso,,15014,2.44,44.93,,src,2026"


@pytest.fixture(scope="module")
def communes(tests_data: Path) -> Loaded:
    return load_communes(tests_data / "io_communes.geojson")


def _csv(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "s.csv") -> Path:
    f = tmp_path / name
    f.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return f


def test_demo_services() -> None:
    loaded = load_services(communes=load_communes())
    d = loaded.data
    assert list(d.columns) == SERVICE_COLUMNS
    assert set(d["type_service"]) == {"mediation_familiale", "espace_rencontre"}
    assert d["code_insee"].str.startswith("Z").all()
    assert d["lon"].notna().all()


def test_fixture_placement_and_precision(tests_data: Path, communes: Loaded) -> None:
    loaded = load_services(tests_data / "io_services.csv", communes=communes)
    d = loaded.data.set_index("service_id")
    assert d.crs.to_epsg() == 4326
    assert d.loc["T1", "precision"] == "adresse"
    assert d.loc["T1", "lon"] == pytest.approx(2.445)
    assert d.loc["T1", "capacite"] == pytest.approx(1.5)
    com = communes.data.set_index("code_insee")
    assert d.loc["T2", "precision"] == "commune"
    assert d.loc["T2", "lon"] == pytest.approx(com.loc["15187", "lon"])
    assert d.loc["T2", "lat"] == pytest.approx(com.loc["15187", "lat"])
    assert d.loc["T2", "code_dep"] == "15"
    assert d.loc["T3", "geometry"].equals(Point(com.loc["15120", "lon"],
                                                 com.loc["15120", "lat"]))
    assert any("placé(s) au point représentatif de leur commune" in w for w in loaded.warnings)


def test_shared_style_file_french_export(tmp_path: Path, communes: Loaded) -> None:
    """The shared list's columns, `;`, CP1252, no service_id, no nom, label variants."""
    text = ("type_service;organisme;commune;code_insee;code_dep;adresse;precision;source_url;"
            "date_source;remarque\n"
            "Médiation familiale;UDAF 15;Aurillac;15014;15;;commune;https://a;n.d.;\n"
            "espace de rencontre;UDAF 15;Aurillac;15014;15;;commune;https://a;2024;x\n"
            "Mediation  Familiale;UDAF 15;Aurillac;15014;15;;commune;https://a;2024;\n"
            "ESPACES DE RENCONTRE;Autre;Saint-Flour;15187;15;2 rue;commune;https://b;2024;\n")
    f = tmp_path / "partiel.csv"
    f.write_bytes(text.encode("cp1252"))
    loaded = load_services(f, communes=communes)
    d = loaded.data
    assert d["type_service"].tolist() == ["mediation_familiale", "espace_rencontre",
                                          "mediation_familiale", "espace_rencontre"]
    assert d["nom"].tolist() == d["organisme"].tolist()
    assert d["source"].iloc[0] == "https://a"
    assert d["service_id"].is_unique
    assert d["service_id"].str.match(r"^S[0-9a-f]{10}(-\d+)?$").all()
    assert d["service_id"].iloc[2] == d["service_id"].iloc[0] + "-2"  # same identity
    assert any("pas de colonne « service_id »" in w for w in loaded.warnings)
    assert any("pas de colonne « nom »" in w for w in loaded.warnings)
    # ids are stable from one load to the next
    assert load_services(f, communes=communes).data["service_id"].equals(d["service_id"])


def test_type_key() -> None:
    assert type_key("Médiation familiale") == type_key("mediation_familiale")
    assert type_key("Espaces de rencontre") == type_key("espace_rencontre")
    assert type_key("espace-rencontre") == "espace_rencontre"


def test_old_code_remapped(tmp_path: Path, communes: Loaded) -> None:
    com = communes.data.copy()
    com.loc[len(com)] = com.iloc[0]
    com.loc[len(com) - 1, "code_insee"] = "15001"
    f = _csv(tmp_path, GOOD, "T10,espace_rencontre,E,Asso,,15039,,,,src,2026")
    loaded = load_services(f, communes=com)
    assert loaded.data["code_insee"].tolist() == ["15014", "15001"]
    assert loaded.remapped["code_ancien"].tolist() == ["15039"]
    assert loaded.remapped["row"].tolist() == [2]


def test_xlsx_services(tmp_path: Path, communes: Loaded) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER.split(","))
    ws.append(["X1", "Médiation familiale", "M", "Asso", None, 15014, 2.44, 44.93, 1, "s",
               "2025-01-01"])
    f = tmp_path / "s.xlsx"
    wb.save(f)
    d = load_services(f, communes=communes).data
    assert d["code_insee"].tolist() == ["15014"]
    assert d["type_service"].tolist() == ["mediation_familiale"]
    assert d["precision"].tolist() == ["adresse"]


def test_geojson_points(tmp_path: Path, communes: Loaded) -> None:
    gdf = gpd.GeoDataFrame(
        {"service_id": ["G1"], "type_service": ["espace_rencontre"], "nom": ["E"],
         "organisme": ["A"], "code_insee": ["15187"], "source": ["s"], "date_source": ["d"]},
        geometry=[Point(3.09, 45.03)], crs="EPSG:4326").to_crs("EPSG:2154")
    f = tmp_path / "s.gpkg"
    gdf.to_file(f, layer="services")
    d = load_services(f, communes=communes).data
    assert d["lon"].item() == pytest.approx(3.09)
    assert d["precision"].item() == "adresse"


def test_services_across_the_border(tmp_path: Path, communes: Loaded) -> None:
    # 12202 (Rodez) is a real commune outside the fixture's communes: kept at its given
    # coordinates (families may cross the border), ignored with a warning without them.
    f = _csv(tmp_path, GOOD, "T2,mediation_familiale,M,A,,12202,2.575,44.35,,s,d",
             "T3,espace_rencontre,E,A,,12202,,,,s,d")
    loaded = load_services(f, communes=communes)
    d = loaded.data.set_index("service_id")
    assert list(d.index) == [GOOD.split(",")[0], "T2"]
    assert d.loc["T2", "code_dep"] == "12"
    assert d.loc["T2", "precision"] == "adresse"
    assert any("ignoré(s) (lignes 3)" in w for w in loaded.warnings)
    assert any("l'autre côté de la limite" in w and "gardé" in w for w in loaded.warnings)


def test_without_communes_checks_national_codes(tests_data: Path) -> None:
    loaded = load_services(tests_data / "io_services.csv")
    d = loaded.data.set_index("service_id")
    assert d.loc["T1", "lon"] == pytest.approx(2.445)
    assert pd.isna(d.loc["T2", "lon"])
    assert any("laissé(s) sans position" in w for w in loaded.warnings)


def _invalid() -> list[tuple[str, list[str], type[Exception], int, str, str]]:
    return [
        ("unknown type", ["T1,mediation,M,A,,15014,,,,s,d"], InputError, 1, "type_service",
         "mediation_familiale"),
        ("unknown code", ["T1,mediation_familiale,M,A,,99999,,,,s,d"], UnknownCodeError, 1,
         "code_insee", "table de passage"),
        ("fictional code", ["T1,mediation_familiale,M,A,,ZA001,,,,s,d"], UnknownCodeError, 1,
         "code_insee", "fictifs"),
        # the second row in Saint-Flour (15187) with Saint-Flour's coordinates: a service
        # placed 50 km from its declared commune is an error of its own since issue 17
        ("duplicate ids", [GOOD, GOOD.replace("15014,2.44,44.93", "15187,3.09,45.03")],
         DuplicateIdError, 2,
         "service_id", "unique"),
        ("outside France", ["T1,mediation_familiale,M,A,,15014,-70.5,40.1,,s,d"],
         OutOfTerritoryError, 1, "lon", "France métropolitaine"),
        ("lon lat swapped", ["T1,mediation_familiale,M,A,,15014,44.93,2.44,,s,d"],
         OutOfTerritoryError, 1, "lon", "France métropolitaine"),
        ("lat not a number", ["T1,mediation_familiale,M,A,,15014,2.4,nord,,s,d"], InputError,
         1, "lat", "degrés"),
        ("lon without lat", ["T1,mediation_familiale,M,A,,15014,2.4,,,s,d"], InputError, 1,
         "lon", "lon et lat ensemble"),
        ("negative capacity", ["T1,mediation_familiale,M,A,,15014,,,-1,s,d"], InputError, 1,
         "capacite", "≥ 0"),
        ("empty source", [GOOD, "T2,mediation_familiale,M,A,,15014,,,,,d"], InputError, 2,
         "source", "non vide"),
        ("empty id", [GOOD, ",mediation_familiale,M,A,,15014,,,,s,d"], InputError, 2,
         "service_id", "identifiant"),
    ]


@pytest.mark.parametrize(("label", "rows", "error", "row", "column", "expected"), _invalid(),
                         ids=[c[0] for c in _invalid()])
def test_invalid_services(tmp_path: Path, communes: Loaded, label: str, rows: list[str],
                          error: type[Exception], row: int, column: str,
                          expected: str) -> None:
    f = _csv(tmp_path, *rows)
    with pytest.raises(error) as exc:
        load_services(f, communes=communes)
    problems = exc.value.problems  # type: ignore[attr-defined]
    hits = [p for p in problems if p.row == row and p.column == column]
    assert hits, problems
    assert expected in hits[0].expected
    assert str(f) in str(exc.value)


def test_swapped_coordinates_hint(tmp_path: Path, communes: Loaded) -> None:
    f = _csv(tmp_path, "T1,mediation_familiale,M,A,,15014,44.93,2.44,,s,d")
    with pytest.raises(OutOfTerritoryError, match="inversées"):
        load_services(f, communes=communes)


def test_territory_of_the_data_set(tmp_path: Path) -> None:
    """A point outside metropolitan France is accepted inside the data set's territory."""
    com = gpd.GeoDataFrame({"code_insee": ["97411"], "nom": ["Saint-Denis"],
                            "population": [150000], "densite": [1]},
                           geometry=[box(55.40, -20.95, 55.50, -20.88)], crs="EPSG:4326")
    cf = tmp_path / "reunion.geojson"
    com.to_file(cf)
    communes = load_communes(cf)
    ok = _csv(tmp_path, "R1,mediation_familiale,M,A,,97411,55.45,-20.9,,s,d")
    assert load_services(ok, communes=communes).data["lon"].item() == pytest.approx(55.45)
    bad = _csv(tmp_path, "R1,mediation_familiale,M,A,,97411,45.2,-12.8,,s,d", name="b.csv")
    with pytest.raises(OutOfTerritoryError, match="ligne 1, colonne « lon »"):
        load_services(bad, communes=communes)


def test_missing_required_columns(tmp_path: Path, communes: Loaded) -> None:
    f = _csv(tmp_path, "T1,M,15014", header="service_id,nom,code_insee")
    with pytest.raises(MissingColumnError) as exc:
        load_services(f, communes=communes)
    assert {p.column for p in exc.value.problems} == {"type_service", "organisme", "source",
                                                      "date_source"}


def test_empty_services_file(tmp_path: Path, communes: Loaded) -> None:
    from coverage.errors import EmptyInputError

    with pytest.raises(EmptyInputError):
        load_services(_csv(tmp_path), communes=communes)


@pytest.mark.shared
def test_real_partial_services_list(shared_data: Path) -> None:
    path = shared_data / "services" / "services_sites_publics_partiels.csv"
    loaded = load_services(path)
    d = loaded.data
    assert len(d) == 38
    assert d["type_service"].value_counts().to_dict() == {"mediation_familiale": 32,
                                                          "espace_rencontre": 6}
    assert d["service_id"].is_unique
    assert (d["precision"] == "commune").all()
    assert "69387" in loaded.remapped["code_ancien"].tolist()  # a Lyon arrondissement
