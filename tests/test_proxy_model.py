"""The proxy finds the nearest service in time exactly: brute force on random instances.

The brute force builds the whole graph of one instance (communes, ports, services; every
same-land-mass pair timed by :func:`trip_minutes` / :func:`drive_minutes`, ferry crossings)
and runs Dijkstra from each commune; the engine must give the same minutes.
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from coverage.routing.landmass import FerryLink, ferry_network
from coverage.routing.proxy import ProxyEngine, access_minutes, drive_minutes, trip_minutes
from coverage.settings import Settings

_TO_LONLAT = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)


def _instance(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, list[FerryLink]]:
    rng = np.random.default_rng(seed)
    n_c, n_s, n_mass = int(rng.integers(5, 40)), int(rng.integers(1, 25)), int(rng.integers(1, 4))
    spread = float(rng.choice([3_000.0, 20_000.0, 120_000.0]))

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = 700_000 + rng.uniform(0, spread, n)
        y = 6_600_000 + rng.uniform(0, spread, n)
        return _TO_LONLAT.transform(x, y)

    c_lon, c_lat = points(n_c)
    s_lon, s_lat = points(n_s)
    communes = pd.DataFrame({
        "code_insee": [f"01{i:03d}" for i in range(n_c)], "code_dep": "01",
        "densite": rng.integers(1, 5, n_c), "lon": c_lon, "lat": c_lat,
        "masse_terrestre": [f"M{m}" for m in rng.integers(0, n_mass, n_c)]})
    services = pd.DataFrame({
        "service_id": [f"s{i}" for i in range(n_s)], "type_service": "t", "code_dep": "01",
        "densite": rng.integers(1, 5, n_s), "lon": s_lon, "lat": s_lat,
        "masse_terrestre": [f"M{m}" for m in rng.integers(0, n_mass, n_s)]})
    links = []
    for _ in range(int(rng.integers(0, 4))):
        a, b = rng.choice(n_c, 2, replace=False)
        pair = sorted([communes.code_insee[a], communes.code_insee[b]])
        if all((x.port_1, x.port_2) != tuple(pair) for x in links):
            links.append(FerryLink(pair[0], pair[1], float(rng.uniform(0, 90))))
    return communes, services, links


def _xy(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack(_TO_LONLAT.transform(frame["lon"].to_numpy(), frame["lat"].to_numpy(),
                                                direction="INVERSE"))


def _brute_force(communes: pd.DataFrame, services: pd.DataFrame, links: list[FerryLink],
                 s: Settings) -> np.ndarray:
    cxy, sxy = _xy(communes) / 1000, _xy(services) / 1000
    ports = sorted({c for link in links for c in (link.port_1, link.port_2)})
    pos = {code: i for i, code in enumerate(communes["code_insee"])}
    mass_c = communes["masse_terrestre"].to_numpy()
    mass_s = services["masse_terrestre"].to_numpy()
    graph = nx.DiGraph()
    for k in range(len(services)):
        graph.add_edge(("s", k), "sink", weight=0.0)
    for p in ports:
        i = pos[p]
        for k in np.flatnonzero(mass_s == mass_c[i]):
            km = float(np.hypot(*(cxy[i] - sxy[k])))
            w = float(drive_minutes(km * s.proxy_detour_factor, s)
                      + access_minutes(int(services.densite[k]), s))
            graph.add_edge(("p", p), ("s", int(k)), weight=w)
        for q in ports:
            j = pos[q]
            if q != p and mass_c[i] == mass_c[j]:
                km = float(np.hypot(*(cxy[i] - cxy[j])))
                graph.add_edge(("p", p), ("p", q),
                               weight=float(drive_minutes(km * s.proxy_detour_factor, s)))
    for link in links:
        for a, b in ((link.port_1, link.port_2), (link.port_2, link.port_1)):
            old = graph.get_edge_data(("p", a), ("p", b), {"weight": np.inf})["weight"]
            graph.add_edge(("p", a), ("p", b), weight=min(old, link.minutes))
    out = np.full(len(communes), np.nan)
    for i in range(len(communes)):
        g = graph.copy()
        dens = int(communes.densite[i])
        for k in np.flatnonzero(mass_s == mass_c[i]):
            km = float(np.hypot(*(cxy[i] - sxy[k])))
            g.add_edge("origin", ("s", int(k)),
                       weight=float(trip_minutes(km, dens, int(services.densite[k]), s)))
        for p in ports:
            j = pos[p]
            if mass_c[j] == mass_c[i]:
                km = float(np.hypot(*(cxy[i] - cxy[j])))
                g.add_edge("origin", ("p", p), weight=float(
                    access_minutes(dens, s) + drive_minutes(km * s.proxy_detour_factor, s)))
        if "origin" in g and nx.has_path(g, "origin", "sink"):
            out[i] = nx.dijkstra_path_length(g, "origin", "sink")
    return out


@pytest.mark.parametrize("seed", range(40))
def test_nearest_equals_brute_force(seed: int) -> None:
    communes, services, links = _instance(seed)
    rng = np.random.default_rng(seed + 1000)
    s = dataclasses.replace(
        Settings(), proxy_detour_factor=float(rng.uniform(1.1, 1.5)),
        proxy_access_min_by_density={k: float(v) for k, v in
                                     zip(range(1, 5), rng.uniform(0, 15, 4), strict=True)},
        proxy_speed_near_kmh=(near := float(rng.uniform(20, 60))),
        proxy_speed_far_kmh=near + float(rng.uniform(0, 60)),
        proxy_speed_break_km=float(rng.uniform(0, 30)))
    land = communes.set_index("code_insee")["masse_terrestre"]
    ferries = ferry_network(links, communes, land)
    out = ProxyEngine(s, ferries).nearest(communes, services, service_types=("t",))
    expect = _brute_force(communes, services, links, s)
    got = out["minutes"].to_numpy()
    assert np.array_equal(np.isnan(got), np.isnan(expect))
    assert got[~np.isnan(got)] == pytest.approx(expect[~np.isnan(expect)], abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_matrix_agrees_with_nearest(seed: int) -> None:
    communes, services, links = _instance(seed)
    land = communes.set_index("code_insee")["masse_terrestre"]
    engine = ProxyEngine(Settings(), ferry_network(links, communes, land))
    nearest = engine.nearest(communes, services, service_types=("t",)).set_index("code_insee")
    table = engine.matrix(communes, services, cutoff_min=1e6)
    best = table.groupby("code_insee")["minutes"].min()
    reach = nearest["minutes"].dropna()
    assert best.reindex(reach.index).to_numpy() == pytest.approx(reach.to_numpy(), rel=1e-5)
    assert set(best.index) == set(reach.index)
