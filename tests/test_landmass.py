"""Land masses (islands) and ferry links: tiny synthetic polygons, then Corsica for real."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from coverage.errors import InputError, MissingColumnError
from coverage.labels import REASON_ISLAND, REASON_TOO_FAR
from coverage.routing.landmass import (
    FerryLink,
    ferry_network,
    land_masses,
    read_ferry_links,
)
from coverage.routing.proxy import ProxyEngine
from coverage.settings import Settings
from coverage.whitezones import nearest_services, white_zones

_TO_LONLAT = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)


def _squares(cells: dict[str, tuple[float, float]], dep: str = "29",
             size_m: float = 1000.0) -> gpd.GeoDataFrame:
    """Square communes of ``size_m`` metres at Lambert-93 km offsets, written as GeoJSON."""
    x0, y0 = 150_000.0, 6_830_000.0
    geoms, lon, lat = [], [], []
    for dx, dy in cells.values():
        x, y = x0 + dx * 1000, y0 + dy * 1000
        geoms.append(shapely.box(x, y, x + size_m, y + size_m))
        lo, la = _TO_LONLAT.transform(x + size_m / 2, y + size_m / 2)
        lon.append(lo)
        lat.append(la)
    frame = gpd.GeoDataFrame({"code_insee": list(cells), "code_dep": dep, "densite": 4,
                              "population": 100, "nom": list(cells), "rural": True,
                              "lon": lon, "lat": lat}, geometry=geoms, crs="EPSG:2154")
    return frame.to_crs("EPSG:4326")


def test_touching_and_small_gaps_join_big_gaps_split(tmp_path: Path) -> None:
    # A-B touch; C is 200 m from B (an estuary: joined); D is 2 km off (an island)
    cells = {"29001": (0, 0), "29002": (1, 0), "29003": (2.2, 0), "29004": (5.2, 0)}
    path = tmp_path / "communes.geojson"
    _squares(cells).to_file(path, driver="GeoJSON")
    communes = gpd.read_file(path)
    mass = land_masses(communes)
    assert mass.to_dict() == {"29001": "29001", "29002": "29001", "29003": "29001",
                              "29004": "29004"}
    # a narrower gap setting splits the estuary too
    tight = land_masses(communes, Settings(land_mass_gap_m=100.0))
    assert tight["29003"] == "29003"


def test_drom_apart_and_each_split_by_its_own_polygons() -> None:
    metro = _squares({"29001": (0, 0)})
    drom = gpd.GeoDataFrame(
        {"code_insee": ["97101", "97102", "97103"], "code_dep": "971"},
        geometry=[shapely.box(-61.60, 16.00, -61.55, 16.05),
                  shapely.box(-61.55, 16.00, -61.50, 16.05),  # touches 97101
                  shapely.box(-61.30, 15.85, -61.25, 15.90)],  # Marie-Galante-like
        crs="EPSG:4326")
    mass = land_masses(pd.concat([metro, drom], ignore_index=True))
    assert mass["97101"] == mass["97102"] == "97101"
    assert mass["97103"] == "97103" and mass["29001"] == "29001"


def test_bridges_join_islands_to_the_mainland() -> None:
    # La Rochelle and Rivedoux-Plage 3 km apart: joined by the pont de l'île de Ré
    frame = _squares({"17300": (0, 0), "17297": (4, 0), "17299": (10, 0)}, dep="17")
    mass = land_masses(frame)
    assert mass["17297"] == mass["17300"] == "17297"
    assert mass["17299"] == "17299"


def _island_case() -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    communes = _squares({"29001": (0, 0), "29002": (1, 0), "29155": (30, 0)})
    services = pd.DataFrame({"service_id": ["s1"], "type_service": ["t"], "code_dep": ["29"],
                             "code_insee": ["29001"],
                             "lon": [communes.lon[0]], "lat": [communes.lat[0]]})
    return communes, services


def test_island_without_service_is_nan_with_the_reason() -> None:
    communes, services = _island_case()
    access = nearest_services(communes, services, engine=ProxyEngine(), service_types=("t",))
    by = access.set_index("code_insee")
    assert np.isnan(by.loc["29155", "minutes"]) and by.loc["29155", "raison"] == REASON_ISLAND
    assert np.isfinite(by.loc["29002", "minutes"]) and pd.isna(by.loc["29002", "raison"])
    zones = white_zones(access, [30.0])
    island = zones[zones["code_insee"] == "29155"]
    assert set(island["type_service"]) == {"t", "aucun_service"}
    assert (island["raison"] == REASON_ISLAND).all()


def test_ferry_link_joins_land_masses() -> None:
    communes, services = _island_case()
    mass = land_masses(communes)
    ferries = ferry_network([FerryLink("29002", "29155", 45.0)], communes, mass)
    s = Settings(proxy_access_min_by_density={4: 1.0}, proxy_speed_near_kmh=60.0,
                 proxy_speed_far_kmh=60.0)
    out = ProxyEngine(s, ferries).nearest(communes, services, service_types=("t",))
    by = out.set_index("code_insee")
    # island: own access 1 + drive 0 to its port (itself) + 45 crossing + 1 km × 1.3 at
    # 60 km/h from port 29002 to the service (1.3 min) + the service's access 1
    assert by.loc["29155", "minutes"] == pytest.approx(1 + 45 + 1.3 + 1)
    assert by.loc["29155", "service_id"] == "s1"
    assert by.loc["29155", "distance_km"] == pytest.approx(1.3)
    # the mainland is not slowed by the link
    assert by.loc["29002", "minutes"] == pytest.approx(1 + 1.3 + 1)


def test_read_ferry_links(tmp_path: Path) -> None:
    good = tmp_path / "liaisons.csv"
    good.write_text("port_1;port_2;minutes\n56121;56069;45\n", encoding="utf-8")
    assert read_ferry_links(good) == (FerryLink("56121", "56069", 45.0),)
    empty = tmp_path / "vide.csv"
    empty.write_text("port_1,port_2,minutes\n", encoding="utf-8")
    assert read_ferry_links(empty) == ()
    bad = tmp_path / "bad.csv"
    bad.write_text("port_1,port_2,minutes\n56121,56069,-3\n5612,56069,10\n56069,56069,5\n"
                   "56069,56121,9\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_ferry_links(bad)
    text = str(err.value)
    assert "bad.csv, ligne 1, colonne « minutes »" in text
    assert "bad.csv, ligne 2, colonne « port_1 »" in text
    assert "bad.csv, ligne 3, colonne « port_2 »" in text
    assert "bad.csv, ligne 4, colonne « port_1/port_2 »" in text  # the pair given twice
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="port_1"):
        read_ferry_links(nocol)


def test_unknown_port_names_the_file_and_row() -> None:
    communes, _ = _island_case()
    with pytest.raises(InputError, match=r"liaisons.csv, ligne 1, colonne « port_2 »"):
        ferry_network([FerryLink("29001", "99999", 10.0)], communes, land_masses(communes),
                      file="liaisons.csv")


# --- real data: Corsica ------------------------------------------------------------------

def _corsica_and_provence(shared: Path) -> gpd.GeoDataFrame:
    com = gpd.read_parquet(shared / "communes" / "communes_cog2026.parquet")
    com = com[com["code_dep"].isin(["2A", "2B", "06", "13", "83"])].reset_index(drop=True)
    dens = pd.read_csv(shared / "communes" / "grille_densite_4niv_cog2026.csv",
                       dtype={"code_insee": str})
    pts = pd.read_csv(shared / "communes" / "points_interieurs_cog2026.csv",
                      dtype={"code_insee": str})
    com = com.merge(dens[["code_insee", "dens4"]].rename(columns={"dens4": "densite"}),
                    on="code_insee").merge(pts[["code_insee", "lon", "lat"]], on="code_insee")
    com["rural"] = com["densite"] >= 3
    return com


def _services_at(communes: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    at = communes.set_index("code_insee").loc[codes]
    return pd.DataFrame({"service_id": [f"S{c}" for c in codes], "type_service": "t",
                         "code_insee": codes, "code_dep": at["code_dep"].to_numpy(),
                         "lon": at["lon"].to_numpy(), "lat": at["lat"].to_numpy()})


@pytest.mark.shared
@pytest.mark.slow
def test_corsica_is_an_island(shared_data: Path) -> None:
    communes = _corsica_and_provence(shared_data)
    corsica = communes["code_dep"].isin(["2A", "2B"]).to_numpy()
    mainland_only = _services_at(communes, ["13055", "06088"])  # Marseille, Nice
    access = nearest_services(communes, mainland_only, engine=ProxyEngine(),
                              service_types=("t",))
    on_island = access["code_insee"].isin(communes.loc[corsica, "code_insee"])
    assert access.loc[on_island, "minutes"].isna().all()
    assert (access.loc[on_island, "raison"] == REASON_ISLAND).all()
    assert access.loc[~on_island, "minutes"].notna().all()
    zones = white_zones(access, [45.0])
    island_rows = zones[zones["code_insee"].isin(communes.loc[corsica, "code_insee"])]
    assert len(island_rows) == 2 * int(corsica.sum())  # type t and the combined view
    assert (island_rows["raison"] == REASON_ISLAND).all()
    assert set(zones.loc[~zones.index.isin(island_rows.index), "raison"]) <= {REASON_TOO_FAR}
    # one service in Ajaccio: Corsica gets finite minutes, the mainland ignores it
    with_ajaccio = _services_at(communes, ["13055", "06088", "2A004"])
    again = nearest_services(communes, with_ajaccio, engine=ProxyEngine(),
                             service_types=("t",)).set_index("code_insee")
    isl = communes.loc[corsica, "code_insee"]
    assert again.loc[isl, "minutes"].notna().all()
    assert (again.loc[isl, "service_id"] == "S2A004").all()
    main = communes.loc[~corsica, "code_insee"]
    assert not (again.loc[main, "service_id"] == "S2A004").any()
    before = access.set_index("code_insee").loc[main, "minutes"]
    assert again.loc[main, "minutes"].to_numpy() == pytest.approx(before.to_numpy())


@pytest.mark.shared
@pytest.mark.slow
def test_national_land_masses(shared_data: Path) -> None:
    com = gpd.read_parquet(shared_data / "communes" / "communes_cog2026.parquet")
    mass = land_masses(com)
    sizes = mass.value_counts()
    assert sizes.index[0] == "01001" and sizes.iloc[0] > 34_000  # the continent
    assert sizes["2A001"] == 360  # Corsica, 2A and 2B
    # islands by boat: Yeu, Ouessant, Belle-Île (4 communes), Groix, Bréhat …
    for code in ("85113", "29155", "56069", "22016"):
        assert mass[code] == code
    assert set(mass[["56009", "56152", "56114", "56241"]]) == {"56009"}
    # bridged islands belong to the continent: Ré, Oléron, Noirmoutier
    assert set(mass[["17297", "17093", "85011", "85106"]]) == {"01001"}
    # each DROM stands apart
    assert mass["97411"] != mass["97209"] and mass["97101"] != mass["01001"]
    print(json.dumps({k: int(v) for k, v in sizes.items()}))


def test_scattered_polygons_are_one_land_mass_with_a_warning() -> None:
    # five communes far apart: a selection, not a territory (more than half off the
    # largest piece): islands cannot be told from gaps, so one land mass and a warning
    cells = {f"290{i:02d}": (i * 10.0, 0.0) for i in range(1, 6)}
    mass = land_masses(_squares(cells))
    assert set(mass) == {"29001"}
    assert mass.attrs["avertissements"] and "îles non détectées" in \
        mass.attrs["avertissements"][0]
    # a real territory with two islands is not scattered
    real = land_masses(_squares({"29001": (0, 0), "29002": (1, 0), "29003": (2, 0),
                                 "29155": (30, 0), "29083": (60, 0)}))
    assert set(real) == {"29001", "29155", "29083"} and real.attrs["avertissements"] == []
