"""The fictional demo territory: deterministic, labelled fictional, realistic enough."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from coverage.demo import demo_paths, generate_demo, write_demo
from coverage.labels import FICTIONAL_LABEL
from coverage.settings import METRO_BBOX, is_fictional_code


@pytest.fixture(scope="module")
def fresh() -> dict[str, str]:
    return generate_demo()


def test_same_seed_same_bytes(fresh: dict[str, str]) -> None:
    again = generate_demo()
    assert again == fresh
    other = generate_demo(seed=7)
    assert other["communes_fictives.geojson"] != fresh["communes_fictives.geojson"]


def test_committed_files_match_the_generator(fresh: dict[str, str]) -> None:
    paths = demo_paths()
    committed = json.loads(paths.communes.read_text(encoding="utf-8"))
    regenerated = json.loads(fresh["communes_fictives.geojson"])
    assert [f["properties"] for f in committed["features"]] == [
        f["properties"] for f in regenerated["features"]
    ], "data/demo is stale: run `make demo`"
    for name in ("services_fictifs.csv", "listes_attente_fictives.csv",
                 "routes_fictives.osm"):
        assert (paths.communes.parent / name).read_text(encoding="utf-8") == fresh[name], (
            f"data/demo/{name} is stale: run `make demo`"
        )


def test_demo_is_small_and_labelled_fictional() -> None:
    paths = demo_paths()
    total = sum(p.stat().st_size for p in paths.all())
    assert total <= 2_000_000
    readme = (paths.communes.parent / "README.md").read_text(encoding="utf-8")
    assert "FICTIF" in readme
    assert json.loads(paths.communes.read_text(encoding="utf-8"))["description"] == (
        FICTIONAL_LABEL
    )
    assert "FICTIONAL" in paths.roads.read_text(encoding="utf-8")[:300]
    services = pd.read_csv(paths.services, dtype=str)
    assert services["nom"].str.contains("fictif").all()


def test_communes_look_like_a_rural_territory() -> None:
    g = gpd.read_file(demo_paths().communes)
    assert 150 <= len(g) <= 300
    assert g["code_insee"].is_unique
    assert all(is_fictional_code(c) and len(c) == 5 for c in g["code_insee"])
    assert set(g["code_dep"]) == {"ZA", "ZB"}
    assert g.geometry.is_valid.all()
    assert (g.geom_type == "Polygon").all()
    # a rural skew: most communes are small, a few towns hold a large share
    pop = g["population"].to_numpy()
    assert np.median(pop) < 1_000
    assert pop.max() > 10 * np.median(pop)
    assert set(g["densite"]) >= {1, 3, 4}
    assert (g["rural"] == (g["densite"] >= 3)).all()
    # the chef-lieu lies inside its commune, and the island is at sea, off the coast
    points = gpd.GeoSeries(gpd.points_from_xy(g["lon"], g["lat"]), index=g.index, crs=g.crs)
    inside = g.geometry.contains(points)
    assert inside.all()
    minx, miny, maxx, maxy = g.total_bounds
    assert METRO_BBOX[0] < minx and maxx < -1.5 and METRO_BBOX[1] < miny < maxy < 47.0


def test_roads_carry_real_osm_tagging() -> None:
    text = demo_paths().roads.read_text(encoding="utf-8")
    for needle in ('v="motorway"', 'v="motorway_link"', 'v="primary"', 'v="secondary"',
                   'v="tertiary"', 'v="unclassified"', 'v="residential"',
                   'v="living_street"', 'k="oneway" v="yes"', 'k="oneway" v="-1"',
                   'k="junction" v="roundabout"', 'k="maxspeed" v="FR:zone30"',
                   'k="route" v="ferry"', 'k="duration"', 'v="footway"',
                   'k="access" v="private"'):
        assert needle in text, needle


def test_waiting_lists_cover_both_departements_over_three_years() -> None:
    w = pd.read_csv(demo_paths().waiting, dtype={"code_dep": str})
    assert set(w["code_dep"]) == {"ZA", "ZB"}
    assert sorted(w["annee"].unique()) == [2023, 2024, 2025]
    assert set(w["type_service"]) == {"mediation_familiale", "espace_rencontre"}
    services = pd.read_csv(demo_paths().services, dtype=str)
    assert set(w["service_id"]) == set(services["service_id"])
    assert (w["familles_en_attente"] >= 0).all()


def test_write_demo_to_another_folder(tmp_path: Path) -> None:
    written = write_demo(tmp_path)
    assert {p.name for p in written} >= {p.name for p in demo_paths().all()}
    assert not list(tmp_path.glob(".*tmp*"))


def test_demo_ferry_joins_the_road_graph(tmp_path: Path) -> None:
    from coverage.routing.network import load_network

    net = load_network(demo_paths().roads, cache_dir=tmp_path)
    assert net.report.details["ferry_arcs"] >= 2  # both directions of the crossing
    assert int(net.ferry.sum()) == net.report.details["ferry_arcs"]
