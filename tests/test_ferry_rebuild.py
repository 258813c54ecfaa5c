"""A finished proxy run's engine is rebuilt with its land masses and ferry links.

``coverage.routing.engine_of_run`` (``zones-blanches sites``, the app's « Nouveau site » and
upload pages) must time new sites across the sea as the run timed its services: the run
records its land masses, the densities of the services' communes outside its départements
and its ferry ports in the manifest (``engine.parameters.masses_terrestres``).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from test_landmass import _corsica_and_provence, _services_at

from coverage.batch import RunOptions, run_batch
from coverage.io.inputs import Inputs
from coverage.results import RunOutputs
from coverage.routing import engine_of_run
from coverage.routing.landmass import (
    RECORD_KEY,
    FerryLink,
    FerryNetwork,
    Port,
    RunLandMasses,
    land_masses,
    links_of_record,
)
from coverage.routing.proxy import ProxyEngine, access_minutes, drive_minutes
from coverage.settings import Settings
from coverage.siting import sites_for_run

MF = "mediation_familiale"
_TO_LONLAT = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
#: code → (x km, y km, density level): a mainland strip across 29 and 56, an island of 29
#: (29155-29156, port 29155) and an island of 56 without link (56069).
_CELLS = {
    "29001": (0, 0, 2), "29002": (1, 0, 3), "29003": (2, 0, 4), "29004": (3, 0, 3),
    "56001": (4, 0, 4), "56002": (5, 0, 3),
    "29155": (20, 0, 3), "29156": (21, 0, 4),
    "56069": (20, 10, 4),
}
_LINK_MIN = 40.0


def _inputs() -> Inputs:
    """Square communes of 1 km (Lambert-93), one service in 56002 (outside a run of 29)."""
    x0, y0 = 150_000.0, 6_830_000.0
    geoms, lon, lat = [], [], []
    for dx, dy, _ in _CELLS.values():
        x, y = x0 + dx * 1000, y0 + dy * 1000
        geoms.append(shapely.box(x, y, x + 1000, y + 1000))
        lo, la = _TO_LONLAT.transform(x + 500, y + 500)
        lon.append(lo)
        lat.append(la)
    codes = list(_CELLS)
    com = gpd.GeoDataFrame({
        "code_insee": codes, "nom": [f"Commune {c}" for c in codes],
        "code_dep": [c[:2] for c in codes], "code_reg": "53", "population": 1000,
        "densite": [d for _, _, d in _CELLS.values()],
        "rural": [d >= 3 for _, _, d in _CELLS.values()], "lon": lon, "lat": lat,
        "code_epci": None, "nom_epci": None, "fictif": False},
        geometry=geoms, crs="EPSG:2154").to_crs("EPSG:4326")
    at = com.set_index("code_insee")
    svc = pd.DataFrame({"service_id": ["MF56"], "type_service": [MF], "nom": ["a"],
                        "code_insee": ["56002"], "code_dep": ["56"],
                        "lon": [at.loc["56002", "lon"]], "lat": [at.loc["56002", "lat"]]})
    services = gpd.GeoDataFrame(svc, geometry=gpd.points_from_xy(svc.lon, svc.lat),
                                crs="EPSG:4326")
    return Inputs(communes=com, services=services, waiting=None, roads=None, fictif=False)


@pytest.fixture(scope="module")
def ferry_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutputs:
    """A proxy run of département 29 with one ferry link 29004 ↔ 29155."""
    root = tmp_path_factory.mktemp("ferry")
    links = root / "liaisons.csv"
    links.write_text(f"port_1,port_2,minutes\n29004,29155,{_LINK_MIN}\n", encoding="utf-8")
    run_batch(_inputs(), out_dir=root / "out",
              options=RunOptions(depts=["29"], types=[MF], workers=1, isochrones=False,
                                 liaisons=links))
    return RunOutputs.load(root / "out")


def _minutes(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index("code_insee")["minutes"].sort_index()


def test_rebuilt_engine_gives_the_run_minutes(ferry_run: RunOutputs) -> None:
    record = ferry_run.manifest["engine"]["parameters"][RECORD_KEY]
    assert record["ports"][0]["code_insee"] == "29004"
    assert record["densites_services"] == {"56002": 3}  # outside the run's communes
    engine = engine_of_run(ferry_run, dept="29").engine
    assert isinstance(engine, ProxyEngine) and engine.ferries is not None
    assert engine.ferries.links == (FerryLink("29004", "29155", _LINK_MIN),)
    again = engine.nearest(ferry_run.communes, ferry_run.services, service_types=(MF,))
    run_access = ferry_run.tables["acces_communes"]
    assert len(run_access) == 6 and np.isfinite(run_access["minutes"]).all()
    np.testing.assert_allclose(_minutes(again).to_numpy(), _minutes(run_access).to_numpy(),
                               rtol=0, atol=1e-9)
    assert list(again.set_index("code_insee").sort_index()["service_id"]) == ["MF56"] * 6
    # the island is reached through the ferry: own access + 1 km to the port + crossing +
    # 2 km from 29004 to 56002 + the service's access (density 3, recorded)
    s = Settings()
    detour = s.proxy_detour_factor
    expected = (access_minutes(4, s) + drive_minutes(1 * detour, s) + _LINK_MIN
                + drive_minutes(2 * detour, s) + access_minutes(3, s))
    assert _minutes(again)["29156"] == pytest.approx(float(expected))


def test_candidate_site_on_the_island_is_timed_through_the_ferry(ferry_run: RunOutputs
                                                                 ) -> None:
    at = ferry_run.communes.set_index("code_insee")
    site = pd.DataFrame({"service_id": ["new"], "type_service": [MF], "code_dep": ["29"],
                         "code_insee": [None], "lon": [at.loc["29156", "lon"]],
                         "lat": [at.loc["29156", "lat"]]})
    engine = engine_of_run(ferry_run, dept="29").engine
    assert isinstance(engine, ProxyEngine)
    pairs = engine.matrix(ferry_run.communes, site, cutoff_min=120.0)
    by = pairs.set_index("code_insee")["minutes"]
    s = Settings()
    detour = s.proxy_detour_factor
    # 29001 (density 2) → 3 km to the port 29004 → crossing → 1 km to the site (density 4)
    expected = (access_minutes(2, s) + drive_minutes(3 * detour, s) + _LINK_MIN
                + drive_minutes(1 * detour, s) + access_minutes(4, s))
    assert float(by["29001"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(by["29156"]) == pytest.approx(2 * float(access_minutes(4, s)), rel=1e-6)
    # the engine without the run's links (as before) does not cross the sea
    bare = ProxyEngine(engine.settings).matrix(ferry_run.communes, site, cutoff_min=120.0)
    assert set(bare["code_insee"]) == {"29155", "29156"}
    # zones-blanches sites: the island is the white zone, the best site is on it
    result = sites_for_run(ferry_run, "29", type_service=MF, threshold_min=30.0, k=1)
    assert result.table["code_insee"].iloc[0] in {"29155", "29156"}


def test_run_without_the_record_still_loads(ferry_run: RunOutputs, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    for p in ferry_run.run_dir.rglob("*"):
        rel = p.relative_to(ferry_run.run_dir)
        if ".cache" in rel.parts:
            continue
        if p.is_dir():
            (old / rel).mkdir(parents=True, exist_ok=True)
        else:
            (old / rel).parent.mkdir(parents=True, exist_ok=True)
            (old / rel).write_bytes(p.read_bytes())
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    del manifest["engine"]["parameters"][RECORD_KEY]
    (old / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    run = RunOutputs.load(old)
    engine = engine_of_run(run, dept="29").engine
    assert isinstance(engine, ProxyEngine)
    assert engine.ferries is None and engine.known is None
    out = _minutes(engine.nearest(run.communes, run.services, service_types=(MF,)))
    assert out[["29155", "29156"]].isna().all()  # no link: the island has no service
    assert out[["29001", "29004"]].notna().all()


def test_record_round_trip() -> None:
    com = _inputs().communes
    mass = land_masses(com)
    ferries = FerryNetwork((Port("29004", -4.0, 48.0, str(mass["29004"])),
                            Port("29155", -4.2, 48.0, str(mass["29155"]))),
                           (FerryLink("29004", "29155", 40.0),))
    record = RunLandMasses.of_run(mass, ferries, {"56002": 3})
    raw = json.loads(json.dumps(record.as_record()))
    assert raw["principales"] == {"29": "29001", "56": "29001"}
    assert raw["iles"] == {"29155": ["29155", "29156"], "56069": ["56069"]}
    back = RunLandMasses.from_record(raw)
    assert back is not None and back == record
    codes = pd.Series([*mass.index, None, "35001"])
    got = back.land_mass_of(codes)
    assert list(got[:len(mass)]) == list(mass) and got[-2] is None and got[-1] is None
    links = links_of_record([{"port_1": "29004", "port_2": "29155", "minutes": 40},
                             {"port_1": "29004"}, "bad"])
    assert links == (FerryLink("29004", "29155", 40.0),)
    assert back.ferries(links) == ferries
    # a link whose ports were not recorded is dropped; older manifests: no record
    assert back.ferries((FerryLink("29001", "29002", 5.0),)) is None
    assert RunLandMasses.from_record(None) is None
    assert RunLandMasses.from_record({"ports": [{"code_insee": "1"}], "iles": "x"}) == \
        RunLandMasses()


# --- real data: Corsica, ports and services on the mainland, outside the run ----------------

@pytest.mark.shared
def test_corsica_run_rebuilt_with_its_ferries(shared_data: Path, tmp_path: Path) -> None:
    com = _corsica_and_provence(shared_data)
    com = com.assign(code_epci=None, nom_epci=None, fictif=False)
    svc = _services_at(com, ["13055", "06088"]).assign(type_service=MF, nom="s")
    services = gpd.GeoDataFrame(svc, geometry=gpd.points_from_xy(svc.lon, svc.lat),
                                crs="EPSG:4326")
    links = tmp_path / "liaisons.csv"
    links.write_text("port_1,port_2,minutes\n13055,2A004,690\n06088,2B033,330\n",
                     encoding="utf-8")
    run_batch(Inputs(communes=com, services=services, waiting=None, roads=None,
                     fictif=False), out_dir=tmp_path / "out",
              options=RunOptions(depts=["2A", "2B"], types=[MF], workers=1,
                                 isochrones=False, liaisons=links))
    run = RunOutputs.load(tmp_path / "out")
    assert not run.communes["code_insee"].isin(["13055", "06088"]).any()  # ports outside
    access = run.tables["acces_communes"]
    assert len(access) == 360 and access["minutes"].notna().all()  # through the ferries
    engine = engine_of_run(run, dept="2A").engine
    again = engine.nearest(run.communes, run.services, service_types=(MF,))
    np.testing.assert_allclose(_minutes(again).to_numpy(), _minutes(access).to_numpy(),
                               rtol=0, atol=1e-6)
    assert (again.set_index("code_insee").sort_index()["service_id"].to_numpy()
            == access.set_index("code_insee").sort_index()["service_id"].to_numpy()).all()
