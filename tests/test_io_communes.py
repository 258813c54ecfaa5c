"""load_communes: contract, aliases, density grid, repairs, representative points, errors."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box

from coverage.errors import (
    DuplicateIdError,
    InputError,
    MissingColumnError,
    UnknownCodeError,
)
from coverage.io.communes import COMMUNE_COLUMNS, interior_points, load_communes
from coverage.settings import Settings, metric_crs_for


def _write(tmp_path: Path, gdf: gpd.GeoDataFrame, name: str = "c.geojson") -> Path:
    f = tmp_path / name
    if name.endswith(".parquet"):
        gdf.to_parquet(f)
    else:
        gdf.to_file(f)
    return f


def _base(**extra: object) -> gpd.GeoDataFrame:
    data: dict[str, object] = {
        "code_insee": ["15014", "15120", "15187"],
        "nom": ["Aurillac", "Mauriac", "Saint-Flour"],
        "population": [26214, 3449, 6391],
        "densite": [2, 3, 3],
    }
    data.update(extra)
    geoms = [box(2.42, 44.91, 2.46, 44.95), box(2.31, 45.20, 2.35, 45.24),
             box(3.07, 45.01, 3.11, 45.05)]
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")


def test_demo_is_fictional() -> None:
    loaded = load_communes()
    d = loaded.data
    assert list(d.columns) == COMMUNE_COLUMNS
    assert d["fictif"].all()
    assert d["code_insee"].str.startswith("Z").all()
    assert d.crs.to_epsg() == 4326
    assert d["population"].dtype == "int64"
    assert set(d["densite"]) <= {1, 2, 3, 4}


def test_aliases_and_national_join(tests_data: Path) -> None:
    loaded = load_communes(tests_data / "io_communes.geojson")
    d = loaded.data.set_index("code_insee")
    assert list(d.index) == ["15014", "15120", "15162", "15187"]
    assert d.loc["15162", "nom"] == "Riom-ès-Montagnes"
    assert d.loc["15014", "population"] == 26214
    # joined from the embedded COG table
    assert d.loc["15014", "code_dep"] == "15"
    assert d.loc["15014", "code_reg"] == "84"
    assert d.loc["15014", "code_epci"] == "241500230"
    assert d.loc["15014", "nom_epci"] == "CA du Bassin d'Aurillac"
    # rural derived from the 4-level grid (3, 4 → rural) with a warning
    assert d["rural"].tolist() == [False, True, True, True]
    assert any("« rural » déduite" in w for w in loaded.warnings)
    assert not d["fictif"].any()


def test_representative_point_inside_polygon(tmp_path: Path) -> None:
    # a U-shaped commune: its centroid is outside, the representative point is not
    u = Polygon([(2.0, 45.0), (2.3, 45.0), (2.3, 45.3), (2.2, 45.3), (2.2, 45.1),
                 (2.1, 45.1), (2.1, 45.3), (2.0, 45.3)])
    gdf = _base()
    gdf.loc[0, "geometry"] = u
    d = load_communes(_write(tmp_path, gdf)).data
    pt = shapely.points(d["lon"].iloc[0], d["lat"].iloc[0])
    assert u.contains(pt)
    assert not u.contains(u.centroid)


def test_given_lon_lat_are_kept(tmp_path: Path) -> None:
    gdf = _base(lon=[2.44, 2.33, None], lat=[44.93, 45.22, None])
    loaded = load_communes(_write(tmp_path, gdf))
    d = loaded.data
    assert d["lon"].iloc[0] == pytest.approx(2.44)
    assert d["lat"].iloc[1] == pytest.approx(45.22)
    assert box(3.07, 45.01, 3.11, 45.05).contains(shapely.points(d["lon"].iloc[2],
                                                                 d["lat"].iloc[2]))
    assert any("1 commune(s) sans lon/lat" in w for w in loaded.warnings)


def test_drom_point_uses_its_utm_crs(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"code_insee": ["97411"], "nom": ["Saint-Denis"],
                            "population": [150000], "densite": [1]},
                           geometry=[box(55.40, -20.95, 55.50, -20.88)], crs="EPSG:4326")
    d = load_communes(_write(tmp_path, gdf)).data
    assert d["code_dep"].item() == "974"
    assert box(55.40, -20.95, 55.50, -20.88).contains(shapely.points(d["lon"].item(),
                                                                     d["lat"].item()))


def test_invalid_geometry_is_repaired_with_a_warning(tmp_path: Path) -> None:
    bowtie = Polygon([(2.0, 45.0), (2.1, 45.1), (2.1, 45.0), (2.0, 45.1)])
    assert not bowtie.is_valid
    gdf = _base()
    gdf.loc[1, "geometry"] = bowtie
    loaded = load_communes(_write(tmp_path, gdf))
    assert loaded.data.is_valid.all()
    assert loaded.data.geom_type.iloc[1] in ("Polygon", "MultiPolygon")
    (w,) = [w for w in loaded.warnings if "réparée(s)" in w]
    assert "lignes 2 (15120" in w


def test_density_grid_4_levels(tmp_path: Path) -> None:
    gdf = _base().drop(columns="densite")
    grid = tmp_path / "grille.csv"
    grid.write_text("CODGEO;DENS;LIBDENS\n15014;2;Intermédiaire\n15120;4;Très peu dense\n"
                    "15187;3;Peu dense\n", encoding="cp1252")
    d = load_communes(_write(tmp_path, gdf), densite=grid).data
    assert d["densite"].tolist() == [2, 4, 3]
    assert d["rural"].tolist() == [False, True, True]


def test_density_grid_7_levels(tmp_path: Path) -> None:
    gdf = _base().drop(columns="densite")
    grid = tmp_path / "grille7.csv"
    grid.write_text("code_insee,dens7\n15014,2\n15120,6\n15187,4\n", encoding="utf-8")
    d = load_communes(_write(tmp_path, gdf), densite=grid).data
    assert d["densite7"].tolist() == [2, 6, 4]
    assert d["densite"].tolist() == [2, 4, 2]  # INSEE grouping: petites villes → 2
    assert d["rural"].tolist() == [False, True, False]  # rural = levels 5-7


def test_density_7_levels_in_the_file_even_when_all_below_5(tmp_path: Path) -> None:
    gdf = _base().rename(columns={"densite": "dens7"})
    gdf["dens7"] = [1, 3, 4]
    d = load_communes(_write(tmp_path, gdf)).data
    assert d["densite"].tolist() == [1, 2, 2]
    assert d["densite7"].tolist() == [1, 3, 4]
    assert not d["rural"].any()


def test_density_grid_xlsx_with_rural_column(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["code_insee", "dens4", "rural_insee2020"])
    for row in (["15014", 2, "False"], ["15120", 3, "True"], ["15187", 3, "True"]):
        ws.append(row)
    f = tmp_path / "grille.xlsx"
    wb.save(f)
    d = load_communes(_write(tmp_path, _base().drop(columns="densite")), densite=f).data
    assert d["densite"].tolist() == [2, 3, 3]
    assert d["rural"].tolist() == [False, True, True]


def test_commune_absent_from_grid_takes_its_neighbours_level(tmp_path: Path) -> None:
    gdf = _base().drop(columns="densite")
    gdf.loc[1, "geometry"] = box(2.46, 44.91, 2.50, 44.95)  # touches Aurillac only
    grid = tmp_path / "g.csv"
    grid.write_text("code_insee,dens4\n15014,2\n15187,3\n", encoding="utf-8")
    loaded = load_communes(_write(tmp_path, gdf), densite=grid)
    assert loaded.data["densite"].tolist() == [2, 2, 3]
    assert any("ligne 2 (15120) → 2" in w for w in loaded.warnings)


def test_old_codes_remapped(tmp_path: Path) -> None:
    gdf = _base()
    gdf.loc[1, "code_insee"] = "15039"  # an older code of 15001 (Saint-Flour is 15187)
    loaded = load_communes(_write(tmp_path, gdf))
    assert "15001" in loaded.data["code_insee"].tolist()
    assert loaded.remapped[["row", "code_ancien", "code_actuel"]].values.tolist() == \
        [[2, "15039", "15001"]]
    assert loaded.data.set_index("code_insee").loc["15001", "code_dep"] == "15"


def test_merged_old_communes_are_dissolved(tmp_path: Path) -> None:
    gdf = _base()
    gdf.loc[0, "code_insee"] = "01340"  # merged into 01015 (Arboys en Bugey)
    gdf.loc[1, "code_insee"] = "01015"
    gdf.loc[1, "geometry"] = box(2.46, 44.91, 2.50, 44.95)
    loaded = load_communes(_write(tmp_path, gdf))
    d = loaded.data.set_index("code_insee")
    assert len(d) == 2
    assert d.loc["01015", "population"] == 26214 + 3449
    assert d.loc["01015", "geometry"].area == pytest.approx(2 * 0.04 * 0.04)
    assert any("fusionnée(s)" in w for w in loaded.warnings)


def test_gpkg_layer_communes_chosen(tmp_path: Path) -> None:
    f = tmp_path / "t.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(
        f, layer="autre")
    _base().to_crs("EPSG:2154").to_file(f, layer="communes")
    d = load_communes(f).data
    assert d["code_insee"].tolist() == ["15014", "15120", "15187"]
    assert d.crs.to_epsg() == 4326


def test_size_limit_applies(tests_data: Path) -> None:
    from coverage.errors import FileTooLargeError

    with pytest.raises(FileTooLargeError):
        load_communes(tests_data / "io_communes.geojson", settings=Settings(max_input_bytes=10))


def _invalid_cases() -> list[tuple[str, dict[str, object], type[Exception], int | None, str]]:
    return [
        ("population negative", {"population": [26214, -5, 6391]}, InputError, 2,
         "population"),
        ("population not a number", {"population": [26214, "beaucoup", 6391]}, InputError, 2,
         "population"),
        ("densite out of range", {"densite": [2, 9, 3]}, InputError, 2, "densite"),
        ("densite empty", {"densite": [2, None, 3]}, InputError, 2, "densite"),
        ("unknown code", {"code_insee": ["15014", "99999", "15187"]}, UnknownCodeError, 2,
         "code_insee"),
        ("fictional code among real ones", {"code_insee": ["15014", "15120", "ZA001"]},
         UnknownCodeError, 3, "code_insee"),
        ("duplicate code", {"code_insee": ["15014", "15014", "15187"]}, DuplicateIdError, 2,
         "code_insee"),
        ("wrong département", {"code_dep": ["15", "12", "15"]}, InputError, 2, "code_dep"),
        ("bad rural", {"rural": ["oui", "peut-être", "non"]}, InputError, 2, "rural"),
        ("empty name", {"nom": ["Aurillac", "", "Saint-Flour"]}, InputError, 2, "nom"),
        ("lat out of range", {"lon": [2.4, 2.3, 3.1], "lat": [44.9, 95.0, 45.0]}, InputError,
         2, "lat"),
    ]


@pytest.mark.parametrize(("label", "change", "error", "row", "column"), _invalid_cases(),
                         ids=[c[0] for c in _invalid_cases()])
def test_invalid_communes(tmp_path: Path, label: str, change: dict[str, object],
                          error: type[Exception], row: int, column: str) -> None:
    f = _write(tmp_path, _base(**change))
    with pytest.raises(error) as exc:
        load_communes(f)
    problems = exc.value.problems  # type: ignore[attr-defined]
    assert any(p.row == row and p.column == column for p in problems), problems
    assert all(p.file == str(f) for p in problems)
    assert f"ligne {row}, colonne « {column} »" in str(exc.value)


def test_non_polygon_geometry_is_an_error(tmp_path: Path) -> None:
    gdf = _base()
    gdf.loc[2, "geometry"] = LineString([(3.0, 45.0), (3.1, 45.1)])
    f = _write(tmp_path, gdf)
    with pytest.raises(InputError, match=r"ligne 3, colonne « geometry » : attendu un polygone"):
        load_communes(f)


def test_missing_columns(tmp_path: Path) -> None:
    f = _write(tmp_path, _base().drop(columns="densite"))
    with pytest.raises(MissingColumnError, match="densite"):
        load_communes(f)
    csv = tmp_path / "c.csv"
    csv.write_text("code_insee,nom\n15014,Aurillac\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="polygones"):
        load_communes(csv)


def test_problems_are_collected_together(tmp_path: Path) -> None:
    f = _write(tmp_path, _base(population=[1, -1, 2], densite=[2, 3, 8]))
    with pytest.raises(InputError) as exc:
        load_communes(f)
    cols = {(p.row, p.column) for p in exc.value.problems}
    assert {(2, "population"), (3, "densite")} <= cols


def test_code_problems_are_collected_with_the_others(tmp_path: Path) -> None:
    f = _write(tmp_path, _base(code_insee=["15014", "99999", "15014"],
                               population=[1, 2, -3]))
    with pytest.raises(InputError) as exc:
        load_communes(f)
    assert type(exc.value) is InputError  # several kinds of problems
    cols = {(p.row, p.column) for p in exc.value.problems}
    assert {(2, "code_insee"), (3, "code_insee"), (3, "population")} <= cols


def test_fictif_flag_contradiction(tmp_path: Path) -> None:
    f = _write(tmp_path, _base(fictif=[False, True, False]))
    with pytest.raises(InputError, match="ligne 2, colonne « fictif »"):
        load_communes(f)


def test_geojson_file_written_by_hand_roundtrip(tmp_path: Path) -> None:
    # projected coordinates declared with a named CRS are reprojected
    gdf = _base().to_crs("EPSG:2154")
    f = tmp_path / "l93.geojson"
    f.write_text(gdf.to_json(), encoding="utf-8")
    raw = json.loads(f.read_text(encoding="utf-8"))
    raw["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}}
    f.write_text(json.dumps(raw), encoding="utf-8")
    d = load_communes(f).data
    assert d.total_bounds == pytest.approx([2.31, 44.91, 3.11, 45.24], abs=1e-5)


@pytest.mark.shared
def test_real_massif_central(shared_data: Path) -> None:
    loaded = load_communes(shared_data / "territoires" / "massif_central_15_12_48.gpkg")
    d = loaded.data
    assert len(d) == 683
    assert set(d["code_dep"]) == {"12", "15", "48"}
    assert d["population"].sum() == 499_560
    assert d["code_epci"].notna().all()
    assert d.is_valid.all()
    assert np.isfinite(d[["lon", "lat"]].to_numpy()).all()
    assert 0.95 < d["rural"].mean() <= 1.0


@pytest.mark.shared
def test_real_national_with_density_grid(shared_data: Path) -> None:
    communes = shared_data / "communes"
    loaded = load_communes(communes / "communes_cog2026.parquet",
                           densite=communes / "grille_densite_4niv_cog2026.csv")
    d = loaded.data
    assert len(d) == 34_868
    assert d["code_insee"].is_unique
    assert set(d["densite"]) == {1, 2, 3, 4}
    grid = pd.read_csv(communes / "grille_densite_4niv_cog2026.csv", dtype=str)
    joined = d.merge(grid, on="code_insee")
    assert (joined["densite"].astype(str) == joined["dens4"]).all()
    drom = d[d["code_dep"] == "974"]
    assert drom["lat"].between(-21.5, -20.8).all()


def _geos_interior_points(geoms: np.ndarray, crs: str) -> np.ndarray:
    """The reference: GeoSeries.to_crs, representative_point, back to EPSG:4326."""
    pts = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(crs).representative_point()
    return shapely.get_coordinates(pts.to_crs("EPSG:4326").to_numpy())


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(np.ascontiguousarray(a).view(np.int64),
                                                      np.ascontiguousarray(b).view(np.int64)))


def test_interior_points_are_geos_bit_for_bit_on_real_communes(shared_data: Path) -> None:
    # two départements, Corse-du-Sud, the DROM, and every commune with holes or several parts
    g = gpd.read_parquet(shared_data / "communes" / "communes_cog2026.parquet")
    geoms = g.geometry.to_numpy()
    odd = (shapely.get_type_id(geoms) == 6) | (shapely.get_num_interior_rings(geoms) > 0)
    deps = g["code_dep"].astype(str).to_numpy(dtype=object)
    pick = np.isin(deps, ["05", "29", "2A", "971", "972", "973", "974", "976"])
    sel = pick | odd
    assert odd.sum() > 100 and sel.sum() > 800
    crs_of = np.array([metric_crs_for(d) for d in deps], dtype=object)
    for crs in sorted(set(crs_of[sel])):
        rows = np.flatnonzero(sel & (crs_of == crs))
        lon, lat = interior_points(geoms[rows], crs)
        assert _same_bits(np.column_stack([lon, lat]), _geos_interior_points(geoms[rows], crs))


def _random_polygons(rng: np.random.Generator, n: int) -> list[shapely.Geometry]:
    """Valid polygons and multipolygons, some on a grid (horizontal edges, vertices on the
    scan line), some with holes, a few degenerate (zero width)."""
    out: list[shapely.Geometry] = []
    for _ in range(n):
        kind = rng.integers(0, 6)
        x0, y0 = rng.uniform(-2, 7), rng.uniform(42, 50)
        s = rng.uniform(0.001, 0.3)
        if kind == 0:  # star-shaped, random vertices
            k = int(rng.integers(3, 40))
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            r = s * rng.uniform(0.2, 1.0, k)
            out.append(Polygon(np.column_stack([x0 + r * np.cos(ang), y0 + r * np.sin(ang)])))
        elif kind == 1:  # union of grid cells: horizontal edges, shared ordinates
            cells = [box(x0 + i * s, y0 + j * s, x0 + (i + 1) * s, y0 + (j + 1) * s)
                     for i in range(4) for j in range(4) if rng.random() < 0.6]
            u = shapely.union_all(cells) if cells else box(x0, y0, x0 + s, y0 + s)
            out.append(u)
        elif kind == 2:  # a square with a hole
            out.append(box(x0, y0, x0 + s, y0 + s).difference(
                box(x0 + s / 4, y0 + s / 4, x0 + s * rng.uniform(0.3, 0.9), y0 + s / 2)))
        elif kind == 3:  # several parts, one of equal width to test ties
            out.append(shapely.MultiPolygon([box(x0, y0, x0 + s, y0 + s),
                                             box(x0 + 2 * s, y0, x0 + 3 * s, y0 + s)]))
        elif kind == 4:  # a buffer (many vertices)
            out.append(shapely.Point(x0, y0).buffer(s, quad_segs=int(rng.integers(2, 16))))
        else:  # a zero-area sliver: left to GEOS
            out.append(Polygon([(x0, y0), (x0 + s, y0), (x0 + 2 * s, y0), (x0, y0)]))
    return out


@pytest.mark.parametrize("crs", ["EPSG:2154", "EPSG:4326"])
def test_interior_points_are_geos_bit_for_bit_on_random_polygons(crs: str) -> None:
    rng = np.random.default_rng(18)
    geoms = np.array(_random_polygons(rng, 400), dtype=object)
    geoms = geoms[~shapely.is_empty(geoms)]
    lon, lat = interior_points(geoms, crs)
    assert _same_bits(np.column_stack([lon, lat]), _geos_interior_points(geoms, crs))
    assert np.isfinite(lon).all()
