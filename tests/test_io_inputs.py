"""load_inputs and validate_inputs: the demo, real files, and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage.errors import InputError
from coverage.io.inputs import load_inputs, validate_inputs
from coverage.routing.network import load_network
from coverage.settings import Settings


def test_load_inputs_demo() -> None:
    inputs = load_inputs()
    assert inputs.fictif
    assert len(inputs.communes) >= 150
    assert inputs.communes["fictif"].all()
    assert set(inputs.services["code_insee"]) <= set(inputs.communes["code_insee"])
    assert inputs.roads is not None and inputs.roads.suffix == ".osm"
    assert inputs.waiting is not None and len(inputs.waiting) > 0
    assert inputs.paths["communes"].endswith("communes_fictives.geojson")


def test_load_inputs_real_files(tests_data: Path) -> None:
    inputs = load_inputs(communes=tests_data / "io_communes.geojson",
                         services=tests_data / "io_services.csv")
    assert not inputs.fictif
    assert inputs.roads is None and inputs.waiting is None
    assert len(inputs.services) == 3
    assert inputs.paths["roads"] == ""


def test_load_inputs_real_communes_need_services(tests_data: Path) -> None:
    with pytest.raises(InputError, match="services"):
        load_inputs(communes=tests_data / "io_communes.geojson")


def test_load_inputs_real_services_need_real_communes(tests_data: Path) -> None:
    with pytest.raises(InputError, match=r"fichier des communes \(--communes\)"):
        load_inputs(services=tests_data / "io_services.csv")


def test_load_inputs_fictional_services_use_the_demo_communes(tmp_path: Path) -> None:
    from coverage.demo import demo_paths

    f = tmp_path / "s.csv"
    lines = demo_paths().services.read_text(encoding="utf-8").splitlines()
    f.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    inputs = load_inputs(services=f)
    assert inputs.fictif
    assert len(inputs.services) == 2


def test_load_inputs_bad_road_extension(tests_data: Path, tmp_path: Path) -> None:
    roads = tmp_path / "roads.shp"
    roads.write_bytes(b"x")
    with pytest.raises(InputError, match=r"\.osm\.pbf"):
        load_inputs(communes=tests_data / "io_communes.geojson",
                    services=tests_data / "io_services.csv", roads=roads)


def test_validate_demo() -> None:
    report = validate_inputs()
    assert report.ok, report.text()
    text = report.text()
    assert report.fictif and "FICTIF" in text
    assert [s.name for s in report.sections] == ["communes", "services", "waiting", "roads"]
    assert f"{len(load_inputs().communes)} communes dans" in text
    assert "Résultat : valide, aucune erreur" in text


def test_validate_collects_errors_without_raising(tests_data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text((tests_data / "io_services.csv").read_text(encoding="utf-8")
                   .replace("T3,", "T1,").replace(",15187,", ",99999,"), encoding="utf-8")
    report = validate_inputs(communes=tests_data / "io_communes.geojson", services=bad)
    assert not report.ok
    text = report.text()
    assert "ligne 2, colonne « code_insee »" in text
    assert "Résultat : INVALIDE" in text
    assert report.sections[0].ok  # the communes are fine


def test_validate_real_services_alone_uses_the_national_table(tests_data: Path) -> None:
    report = validate_inputs(services=tests_data / "io_services.csv")
    assert report.ok, report.text()
    assert "table nationale du COG 2026" in report.text()
    assert "sans position" in report.text()


def test_validate_remapped_codes_are_listed(tests_data: Path, tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text((tests_data / "io_services.csv").read_text(encoding="utf-8")
                 .replace(",15120,", ",01340,"), encoding="utf-8")
    report = validate_inputs(services=f)
    assert report.ok
    assert "ligne 3, colonne « code_insee » : 01340 → 01015" in report.text()


def test_validate_bad_roads(tmp_path: Path, tests_data: Path) -> None:
    roads = tmp_path / "r.osm"
    roads.write_text("<osm version='0.6'></osm>", encoding="utf-8")
    report = validate_inputs(communes=tests_data / "io_communes.geojson", roads=roads,
                             road_check=_road_check)
    assert not report.ok
    assert report.sections[-1].name == "roads"


def _road_check(path: Path, settings: Settings) -> str:
    """Build the network as ``zones-blanches validate`` does (routing is a higher layer)."""
    return f"{load_network(path, settings=settings, use_cache=False).n_nodes} nodes"


def test_validate_roads_without_a_road_check_checks_the_file_only(tmp_path: Path,
                                                                 tests_data: Path) -> None:
    roads = tmp_path / "r.osm"
    roads.write_text("<osm version='0.6'></osm>", encoding="utf-8")
    report = validate_inputs(communes=tests_data / "io_communes.geojson", roads=roads)
    assert report.ok
    assert "réseau routier non construit" in report.text()
    bad = tmp_path / "r.shp"
    bad.write_bytes(b"x")
    report = validate_inputs(communes=tests_data / "io_communes.geojson", roads=bad)
    assert not report.ok and ".osm.pbf" in report.text()
