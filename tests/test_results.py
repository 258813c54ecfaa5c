"""Reading a run folder back: coverage.results.RunOutputs."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

from coverage.io.writers import write_geoparquet, write_table
from coverage.results import RunFolderError, RunOutputs
from coverage.schemas import ZONES_BLANCHES


def _fake_run(folder: Path, *, fictif: bool = True) -> Path:
    """A minimal run folder written with the run writers (no computation)."""
    zb = pd.DataFrame({"code_insee": ["ZA001"], "nom": ["Alpha"], "code_dep": ["ZA"],
                       "population": [10], "type_service": ["espace_rencontre"],
                       "seuil_minutes": [30.0]})
    write_table(zb, ZONES_BLANCHES, folder / "tables")
    write_geoparquet(gpd.GeoDataFrame({"code_insee": ["ZA001"]}, geometry=[box(0, 0, 1, 1)],
                                      crs="EPSG:4326"), folder / "communes.parquet")
    write_geoparquet(gpd.GeoDataFrame({"service_id": ["S1"]}, geometry=[Point(0.5, 0.5)],
                                      crs="EPSG:4326"), folder / "services.parquet")
    manifest = {"format": "zones-blanches-run", "engine": {"name": "proxy", "parameters": {}},
                "fictif": fictif, "fictional_label": "FICTIF" if fictif else None,
                "tables": ["zones_blanches"], "thresholds_min": [30.0], "depts": ["ZA"]}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_load_fields(tmp_path: Path) -> None:
    run = RunOutputs.load(_fake_run(tmp_path))
    assert run.engine == "proxy" and run.fictif and run.fictional_label == "FICTIF"
    assert run.thresholds == [30.0] and run.depts == ["ZA"]
    assert list(run.tables) == ["zones_blanches"]
    assert run.tables["zones_blanches"]["population"].tolist() == [10]
    assert run.communes.crs == "EPSG:4326" and len(run.services) == 1
    assert run.isochrones("isochrones_types") is None and run.isochrone_layers() == []


def test_real_run_is_not_fictional(tmp_path: Path) -> None:
    run = RunOutputs.load(_fake_run(tmp_path, fictif=False))
    assert not run.fictif and run.fictional_label is None


@pytest.mark.parametrize("missing", ["manifest.json", "communes.parquet", "services.parquet",
                                     "tables/zones_blanches.parquet"])
def test_missing_file_is_named(tmp_path: Path, missing: str) -> None:
    folder = _fake_run(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(RunFolderError) as err:
        RunOutputs.load(folder)
    assert Path(missing).name in str(err.value)
    assert "n'est pas le dossier d'un calcul terminé" in str(err.value)


def test_absent_folder_and_bad_manifest(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="n'existe pas"):
        RunOutputs.load(tmp_path / "nowhere")
    folder = _fake_run(tmp_path)
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunFolderError, match="manifeste de calcul JSON"):
        RunOutputs.load(folder)


def test_isochrone_layer_read(tmp_path: Path) -> None:
    folder = _fake_run(tmp_path)
    layer = gpd.GeoDataFrame({"type_service": ["espace_rencontre"], "bande_min": [0.0],
                              "bande_max": [30.0], "moteur": ["proxy"]},
                             geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    layer.to_file(folder / "isochrones.gpkg", layer="isochrones_types", engine="pyogrio")
    run = RunOutputs.load(folder)
    assert run.isochrone_layers() == ["isochrones_types"]
    got = run.isochrones("isochrones_types")
    assert got is not None and got["bande_max"].tolist() == [30.0]
    assert run.isochrones("isochrones_services") is None


def test_departement_names_and_service_types(tmp_path: Path) -> None:
    from coverage.results import departement_names, run_service_types

    run = RunOutputs.load(_fake_run(tmp_path))
    assert departement_names(run) == {}  # no nom_dep column
    assert run_service_types(run) == []  # no acces_communes table
    run.communes["code_dep"] = ["ZA"]
    run.communes["nom_dep"] = ["Brumeval-Nord"]
    run.tables["acces_communes"] = pd.DataFrame(
        {"type_service": ["zz_autre", "espace_rencontre", "mediation_familiale"]})
    assert departement_names(run) == {"ZA": "Brumeval-Nord"}
    # the order of the settings first, unknown types after
    assert run_service_types(run) == ["mediation_familiale", "espace_rencontre", "zz_autre"]
