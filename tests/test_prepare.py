"""``zones-blanches prepare``: official formats → the communes contract and a clipped PBF.

Inputs are small files in the official formats built by the tests (see test_fetch.py),
served by a local 127.0.0.1 server for the end-to-end path fetch → prepare.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import pytest
from shapely.geometry import Point, Polygon, box
from test_fetch import (
    COMMUNES,
    REPO,
    Server,
    _cli,
    density_xlsx,
    etalab_geojson_gz,
    official_files,
    osm_pbf,
    passage_zip,
    population_zip,
    server,  # noqa: F401  (fixture)
)

from coverage.cli import main
from coverage.errors import FetchError, InputError
from coverage.io.official.cache import cache_path
from coverage.io.official.fetch import FetchOptions, fetch
from coverage.io.official.prepare import prepare, prepared_paths
from coverage.io.official.readers import (
    DENSITE7_TO_4,
    read_contours,
    read_density_grid,
    read_passage,
    read_population,
)
from coverage.io.official.territory import (
    COMMUNES_COLUMNS,
    buffer_m,
    clip_area,
    clip_osm,
    harmonise_grid,
    prepare_communes,
)
from coverage.schemas import COMMUNES as COMMUNES_CONTRACT
from coverage.settings import Settings


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_density_xlsx_with_title_rows_7_levels(tmp_path: Path) -> None:
    levels = {"15014": 2, "15187": 4, "15120": 5, "12202": 1, "48095": 7}
    grid = read_density_grid(_write(tmp_path / "grille_densite_7_niveaux_2024.xlsx",
                                    density_xlsx(levels)))
    assert grid.attrs["niveaux"] == 7
    got = grid.set_index("code_insee")
    for code, level in levels.items():
        assert got.loc[code, "densite7"] == level
        assert got.loc[code, "densite"] == DENSITE7_TO_4[level]


def test_density_4_levels_zip_of_xlsx(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("grille_densite_2021_agrege.xlsx",
                    density_xlsx({"15014": 2, "15187": 3, "1001": 4}, seven=False))
    grid = read_density_grid(_write(tmp_path / "grille_densite_2021.zip", out.getvalue()))
    assert grid.attrs["niveaux"] == 4
    assert dict(zip(grid["code_insee"], grid["densite"], strict=True)) == {
        "15014": 2, "15187": 3, "01001": 4}  # Excel-stripped leading zero restored


def test_density_grid_without_levels_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.csv", b"CODGEO;LIBGEO\n15014;Aurillac\n")
    with pytest.raises(InputError, match="colonne de niveau"):
        read_density_grid(path)


def test_etalab_geojson_gz(tmp_path: Path) -> None:
    gdf = read_contours(_write(tmp_path / "communes-100m.geojson.gz", etalab_geojson_gz()))
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf["code_insee"]) == [c[0] for c in COMMUNES]
    assert list(gdf["code_dep"]) == [c[2] for c in COMMUNES]
    assert gdf["population"].isna().all()  # Etalab contours carry no population


@pytest.mark.parametrize("suffix", [".shp", ".gpkg"])
def test_admin_express_commune_layer(tmp_path: Path, suffix: str) -> None:
    frame = gpd.GeoDataFrame(
        {"ID": ["COMMUNE_1", "COMMUNE_2"], "NOM": ["Aurillac", "Mende"],
         "INSEE_COM": ["15014", "48095"], "INSEE_DEP": ["15", "48"],
         "INSEE_REG": ["84", "76"], "POPULATION": [25_593, 12_286],
         "SIREN_EPCI": ["241500230", "244800405"]},
        geometry=[box(650_000, 6_420_000, 655_000, 6_425_000),
                  box(730_000, 6_380_000, 735_000, 6_385_000)], crs="EPSG:2154")
    path = tmp_path / f"COMMUNE{suffix}"
    if suffix == ".gpkg":
        frame.to_file(path, layer="commune", driver="GPKG")
    else:
        frame.to_file(path)
    gdf = read_contours(path)
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf["code_insee"]) == ["15014", "48095"]
    assert list(gdf["population"]) == [25_593, 12_286]
    assert list(gdf["code_epci"]) == ["241500230", "244800405"]
    assert 2.0 < gdf.geometry.iloc[0].centroid.x < 3.0  # reprojected from Lambert-93


def test_population_zip_dep_plus_codcom(tmp_path: Path) -> None:
    pop = read_population(_write(tmp_path / "ensemble.zip",
                                 population_zip({"15014": 25_593, "2A004": 70_000})))
    assert dict(zip(pop["code_insee"], pop["population"], strict=True)) == {
        "15014": 25_593, "2A004": 70_000}


def test_passage_maps_older_codes_to_the_newest(tmp_path: Path) -> None:
    table = read_passage(_write(tmp_path / "t.zip", passage_zip([("15999", "15014"),
                                                                 ("15014", "15014")])))
    assert table.to_dict("records") == [{"code_ancien": "15999", "code_actuel": "15014"}]


def test_harmonise_grid_carries_levels_through_the_passage() -> None:
    grid = pd.DataFrame({"code_insee": ["15999", "15998", "15187"], "densite": [4, 3, 2],
                         "densite7": pd.array([7, 5, 3], dtype="Int64")})
    passage = pd.DataFrame({"code_ancien": ["15999", "15998"],
                            "code_actuel": ["15014", "15014"]})
    out = harmonise_grid(grid, ["15014", "15187"], passage).set_index("code_insee")
    assert out.loc["15014", "densite"] == 3  # the densest of the merged communes
    assert bool(out.loc["15014", "densite_report"])
    assert out.loc["15187", "densite"] == 2 and not bool(out.loc["15187", "densite_report"])


def test_prepare_communes_contract_and_missing_density(tmp_path: Path) -> None:
    contours = read_contours(_write(tmp_path / "c.geojson.gz", etalab_geojson_gz()))
    grid = read_density_grid(_write(tmp_path / "g.xlsx", density_xlsx(
        {"15014": 2, "15187": 4, "15120": 6})))
    out = prepare_communes(contours, ["15"], grid)
    assert list(out.columns) == COMMUNES_COLUMNS
    assert set(COMMUNES_CONTRACT.required) <= set(out.columns)
    assert list(out["code_insee"]) == ["15014", "15120", "15187"]
    assert list(out["densite"]) == [2, 4, 2]
    assert list(out["rural"]) == [False, True, False]
    assert (out["population"] > 0).all()  # from the embedded COG 2026 table
    points = gpd.GeoSeries(gpd.points_from_xy(out["lon"], out["lat"]), crs=out.crs)
    assert out.geometry.contains(points, align=False).all()
    incomplete = read_density_grid(_write(tmp_path / "g2.xlsx",
                                          density_xlsx({"15014": 2, "15187": 4})))
    with pytest.raises(InputError) as info:
        prepare_communes(contours, ["15"], incomplete, passage=pd.DataFrame(
            columns=["code_ancien", "code_actuel"]))
    assert info.value.problems[0].found == "15120"
    assert info.value.problems[0].column == "densite"


def test_clip_osm_keeps_whole_ways_in_the_area(tmp_path: Path) -> None:
    src = tmp_path / "in.osm.pbf"
    osm_pbf(src, [(2.44, 44.93), (5.40, 43.30)])
    overlap = tmp_path / "overlap.osm.pbf"
    osm_pbf(overlap, [(2.44, 44.93)])  # the same way 1 (nodes 1, 2) in a second extract
    other = tmp_path / "neighbour.osm.pbf"
    osm_pbf(other, [(2.60, 44.40)], first_id=101)
    area = Polygon([(2.0, 44.0), (3.5, 44.0), (3.5, 45.5), (2.0, 45.5)])
    out = tmp_path / "routes.osm.pbf"
    stats = clip_osm([src, overlap, other], area, out)
    ways = [w.id for w in osmium.FileProcessor(str(out), osmium.osm.WAY)]
    nodes = [n.id for n in osmium.FileProcessor(str(out), osmium.osm.NODE)]
    assert ways == [1, 101] and nodes == [1, 2, 101, 102]  # merged, sorted, de-duplicated
    assert stats["ways"] == 2 and stats["nodes"] == 4
    single = clip_osm([src], area, tmp_path / "one.osm.pbf")
    assert single["ways"] == 1 and single["ways_outside"] == 1


def test_buffer_follows_the_largest_threshold() -> None:
    assert buffer_m(Settings(thresholds_min=(20.0, 45.0))) == pytest.approx(67_500.0)
    assert buffer_m(Settings(thresholds_min=(30.0,))) == pytest.approx(45_000.0)


def test_fetch_then_prepare_end_to_end(server: Server, tmp_path: Path) -> None:  # noqa: F811
    server.files.update(official_files(tmp_path, year=2024))
    data_dir = tmp_path / "donnees"
    fetch(["15"], data_dir, year=2024, options=FetchOptions(mirror=server.base, retries=0,
                                                            progress=False))
    result = prepare(["15"], data_dir)
    paths = prepared_paths(data_dir, "15")
    assert result["15"] == paths
    everything = gpd.read_file(paths["communes"], layer="communes")
    communes = everything[everything["code_dep"] == "15"]
    assert sorted(communes["code_insee"]) == ["15014", "15120", "15187"]
    # neighbours: exactly the communes of the départements the 67.5 km buffer touches
    area = clip_area(communes.set_crs("EPSG:4326", allow_override=True), "15", buffer_m())
    contours = read_contours(_write(tmp_path / "c.geojson.gz", etalab_geojson_gz()))
    touched = set(contours.loc[contours.intersects(area), "code_dep"]) - {"15"}
    assert touched  # Rodez and Mende are within reach of the Cantal in this fixture
    assert set(everything["code_dep"]) - {"15"} == touched
    # population from the populations légales file served (1000 + position in COMMUNES)
    assert dict(zip(communes["code_insee"], communes["population"], strict=True)) == {
        "15014": 1000, "15187": 1001, "15120": 1002}
    assert dict(zip(communes["code_insee"], communes["densite"], strict=True)) == {
        "15014": 2, "15187": 2, "15120": 3}
    ways = {w.id for w in osmium.FileProcessor(str(paths["roads"]), osmium.osm.WAY)}
    assert ways == {1, 3, 5}  # the road near Marseille is outside Cantal + 67.5 km
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["communes"]["rows"] == 3
    assert manifest["communes"]["departements_voisins"] == sorted(touched)
    assert manifest["communes"]["population_source"].endswith("ensemble.zip")
    assert manifest["sources"]["densite"]["sha256"]
    from coverage.io.communes import load_communes

    loaded = load_communes(paths["communes"]).data
    assert len(loaded) == len(everything)
    assert not loaded["fictif"].any()
    own = loaded[loaded["code_dep"] == "15"].sort_values("code_insee")
    assert np.array_equal(own["population"].to_numpy(), np.array([1000, 1002, 1001]))


def test_populations_older_than_the_cog_give_way_to_the_embedded_table(
        server: Server, tmp_path: Path) -> None:  # noqa: F811
    server.files.update(official_files(tmp_path, year=2026))
    data_dir = tmp_path / "donnees"
    fetch(["15"], data_dir, year=2026, osm=False,
          options=FetchOptions(mirror=server.base, retries=0, progress=False))
    prepare(["15"], data_dir, osm=False)
    paths = prepared_paths(data_dir, "15")
    manifest = json.loads(paths["manifest"].read_text())
    assert "plus ancien que les populations en vigueur avec le COG 2026" in \
        manifest["communes"]["population_source"]
    communes = gpd.read_file(paths["communes"], layer="communes")
    from coverage.cog import national_communes

    ref = national_communes().set_index("code_insee")["population"]
    assert (communes["population"].to_numpy()
            == ref.loc[communes["code_insee"]].to_numpy()).all()


def test_prepare_without_fetched_files_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="zones-blanches fetch"):
        prepare(["15"], tmp_path)


def test_prepare_accepts_files_put_by_hand(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "par-main"
    cache.mkdir(parents=True)
    (cache / "communes-50m.geojson.gz").write_bytes(etalab_geojson_gz())
    (cache / "grille_densite_7_niveaux_2024.xlsx").write_bytes(
        density_xlsx({"48095": 6}))
    prepare(["48"], tmp_path, osm=False)
    out = gpd.read_file(prepared_paths(tmp_path, "48")["communes"], layer="communes")
    assert list(out["code_insee"]) == ["48095"] and list(out["densite"]) == [4]


def test_cli_prepare_exit_codes(server: Server, tmp_path: Path,  # noqa: F811
                                capsys: pytest.CaptureFixture[str]) -> None:
    res = _cli("prepare", "--dept", "15", "--data-dir", str(tmp_path / "vide"), cwd=REPO)
    assert res.returncode == 2 and "zones-blanches fetch" in res.stderr
    assert "Traceback" not in res.stderr
    server.files.update(official_files(tmp_path))
    data_dir = tmp_path / "d"
    fetch(["15"], data_dir, options=FetchOptions(mirror=server.base, retries=0,
                                                 progress=False), neighbours=False)
    bad = cache_path(data_dir, next(iter(
        r for r in json.loads((data_dir / "cache" / "index.json").read_text())["files"]
        if "grille_densite" in r or "fichier_diffusion" in r)))
    res = _cli("prepare", "--dept", "15", "--data-dir", str(data_dir), cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert "communes.gpkg" in res.stdout and "zones-blanches run --dept 15" in res.stdout
    bad.write_bytes(b"CODGEO;LIBGEO\n15014;x\n")  # a CSV saved under the .xlsx name
    code = main(["prepare", "--dept", "15", "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert "un XLSX, un CSV ou un zip" in err and str(bad) in err and "Traceback" not in err


def test_fetch_prepare_run_one_path(server: Server, tmp_path: Path) -> None:  # noqa: F811
    """Official files (served locally) → fetch → prepare → run --dept --data-dir, nothing else."""
    server.files.update(official_files(tmp_path))
    data_dir = tmp_path / "donnees"
    assert main(["fetch", "--dept", "15", "--data-dir", str(data_dir), "--mirror",
                 server.base, "--retries", "0"]) == 0
    assert main(["prepare", "--dept", "15", "--data-dir", str(data_dir)]) == 0
    # services: made up for this test (there is no official list); the user's own file
    services = prepared_paths(data_dir, "15")["services"]
    services.write_text(
        "service_id,type_service,nom,organisme,code_insee,source,date_source\n"
        "T1,mediation_familiale,Service inventé pour le test,TEST,15014,test,2026-11-26\n",
        encoding="utf-8")
    out = tmp_path / "sortie"
    # the test's OSM extract reaches one commune of three: since issue 17 such a run is
    # refused unless forced (--force-reseau), and the share is reported
    res = _cli("run", "--dept", "15", "--data-dir", str(data_dir), "--out", str(out),
               "--workers", "1", "--no-isochrones", "--force-reseau", cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert "1 communes sur 3 (33,3 %)" in res.stderr
    access = pd.read_csv(out / "tables" / "acces_communes.csv", dtype=str)
    assert sorted(access["code_insee"].unique()) == ["15014", "15120", "15187"]
    assert set(access["moteur"]) == {"road"}  # the clipped OSM extract was used


# --- real data, read in place from ../shared/data -----------------------------------------
@pytest.mark.shared
def test_prepare_communes_on_real_france_matches_the_massif_central_reference(
        shared_data: Path) -> None:
    contours = read_contours(shared_data / "communes" / "communes_cog2026.parquet")
    grid = read_density_grid(shared_data / "communes" / "grille_densite_4niv_cog2026.csv")
    assert grid.attrs["niveaux"] == 4 and "dens4" in grid.attrs["source"]
    out = prepare_communes(contours, ["15", "12", "48"], grid)
    ref = gpd.read_file(shared_data / "territoires" / "massif_central_15_12_48.gpkg",
                        layer="communes").set_index("code_insee")
    assert len(out) == len(ref) == 683
    got = out.set_index("code_insee").loc[ref.index]
    known = ref["dens4"].notna()
    assert (got.loc[known, "densite"] == ref.loc[known, "dens4"].astype(int)).all()
    assert (got["population"] == ref["population"]).all()
    assert int(out["population"].sum()) == int(ref["population"].sum())
    inside = gpd.GeoSeries(gpd.points_from_xy(out["lon"], out["lat"]), crs=out.crs)
    assert out.geometry.contains(inside, align=False).all()


@pytest.mark.shared
def test_clip_real_extract_keeps_the_road_graph(shared_data: Path, tmp_path: Path) -> None:
    from coverage.routing.network import load_network

    src = shared_data / "osm" / "andorra-2013.osm.pbf"
    whole = tmp_path / "whole.osm.pbf"
    clip_osm([src], box(1.0, 42.0, 2.5, 43.0), whole)  # an area holding the whole extract
    a, b = load_network(src), load_network(whole)
    assert np.array_equal(a.node_ids, b.node_ids)
    assert (a.minutes != b.minutes).nnz == 0
    part = tmp_path / "part.osm.pbf"
    area = box(1.50, 42.49, 1.56, 42.53)  # around Andorra la Vella
    stats = clip_osm([src], area, part)
    assert stats["ways"] > 0 and stats["ways_outside"] > 0
    for way in osmium.FileProcessor(str(part), osmium.osm.NODE | osmium.osm.WAY) \
            .with_locations().with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)):
        assert any(area.contains(Point(n.lon, n.lat)) for n in way.nodes)
    assert load_network(part).node_ids.size < a.node_ids.size


def test_density_grid_2025_layout_uses_dens7_not_dens_aav(tmp_path: Path) -> None:
    """INSEE's 2025 file: a documentation sheet, then 'Maille communale' with DENS (3
    levels), DENS7, DENS_AAV (4 classes of another typology) under title rows."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Documentation"
    wb.active.append(["Grille communale de densité 2025 : documentation"])
    ws = wb.create_sheet("Maille communale")
    for title in ("Grille communale de densité 2025", "Géographie au 01/01/2025", "", ""):
        ws.append([title])
    ws.append(["CODGEO", "LIBGEO", "DENS", "DENS7", "DENS_AAV", "PMUN22"])
    rows = [("15014", 2, 2, 2), ("15187", 2, 4, 2), ("15120", 3, 5, 3), ("48095", 3, 7, 4)]
    for code, dens3, dens7, aav in rows:
        ws.append([code, f"commune {code}", dens3, dens7, aav, 1234])
    buf = io.BytesIO()
    wb.save(buf)
    grid = read_density_grid(_write(tmp_path / "fichier_diffusion_2025.xlsx", buf.getvalue()))
    assert grid.attrs["niveaux"] == 7 and "« DENS7 »" in grid.attrs["source"]
    assert dict(zip(grid["code_insee"], grid["densite"], strict=True)) == {
        "15014": 2, "15187": 2, "15120": 3, "48095": 4}


@pytest.mark.shared
def test_neighbour_departements_of_cantal_on_real_contours(shared_data: Path) -> None:
    from coverage.io.official.territory import neighbour_departements

    found = neighbour_departements(shared_data / "communes" / "communes_cog2026.parquet",
                                   ["15"])
    # the six départements sharing a border with the Cantal are all within the buffer
    assert {"15", "12", "19", "43", "46", "48", "63"} <= set(found)
    assert not {"75", "13", "2A", "974"} & set(found)
    thirty = neighbour_departements(shared_data / "communes" / "communes_cog2026.parquet",
                                    ["15"], settings=Settings(thresholds_min=(20.0, 30.0)))
    assert set(thirty) <= set(found)  # a shorter threshold, a smaller buffer


def test_prepare_uses_the_geofabrik_region_when_it_is_the_extract_at_hand(
        tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "par-main").mkdir(parents=True)
    (cache / "par-main" / "communes-100m.geojson.gz").write_bytes(etalab_geojson_gz())
    (cache / "par-main" / "grille_densite_7_niveaux_2024.xlsx").write_bytes(
        density_xlsx({"15014": 2, "15187": 4, "15120": 5}))
    region = cache / "download.geofabrik.de" / "europe" / "france"
    region.mkdir(parents=True)
    osm_pbf(region / "auvergne-latest.osm.pbf", [(2.44, 44.93), (5.40, 43.30)])
    osm_pbf(region / "provence-alpes-cote-d-azur-latest.osm.pbf", [(5.40, 43.30)],
            first_id=500)
    prepare(["15"], tmp_path)
    manifest = json.loads(prepared_paths(tmp_path, "15")["manifest"].read_text())
    assert [Path(p).name for p in manifest["routes"]["extracts"]] == ["auvergne-latest.osm.pbf"]
    assert manifest["routes"]["ways"] == 1 and manifest["routes"]["ways_outside"] == 1
