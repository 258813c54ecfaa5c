"""What a proxy run adds to its inputs, once per run: land masses, ferry links, densities.

The proxy engine (:mod:`coverage.routing.proxy`) keeps every trip on its land mass
(:mod:`coverage.routing.landmass`) and times each end by its density level. A partition only
holds one département's communes, so the run computes, once, from **all** the communes
loaded (polygons, :func:`coverage.routing.landmass.land_masses`):

- ``masse_terrestre`` for the run's communes and for the services (the land mass of the
  service's commune, ``code_insee``);
- ``densite`` for the services (that of their commune), so that a service across a
  partition's border is timed with its own density level;
- the ferry network of the run's links file (``--liaisons``), ports placed on their land
  masses.

It also finds the empty offers: a service type with no service at all in the list, or none
in a département of the run (:func:`empty_offer_warnings`, French messages for the
manifest's ``avertissements``, the CLI summary and the app).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.files import write_text_atomic
from coverage.labels import empty_offer_warning
from coverage.routing.landmass import (
    LAND_MASS_COLUMN,
    FerryNetwork,
    RunLandMasses,
    ferry_network,
    land_masses,
    read_ferry_links,
)
from coverage.settings import Settings, metric_crs_for

__all__ = ["MEMO_PREFIX", "ProxyInputs", "empty_offer_warnings", "proxy_inputs",
           "save_land_masses"]

log = logging.getLogger(__name__)

#: Name prefix of the land-mass memo files (``<out>/.cache/land_masses-<digest>.json``).
MEMO_PREFIX = "land_masses-"


@dataclass(frozen=True)
class ProxyInputs:
    """The run's communes and services with ``masse_terrestre`` (and services' ``densite``).

    Attributes
    ----------
    communes
        The run's communes, with ``masse_terrestre``.
    services
        The run's services, with ``masse_terrestre`` and ``densite`` (when their commune is
        known).
    ferries
        The ferry network (empty without a links file).
    warnings
        French warnings (polygons that do not tile a territory: islands not found).
    recorded
        What the manifest records to rebuild the engine exactly
        (:class:`coverage.routing.landmass.RunLandMasses`: land masses, densities of the
        services' communes outside the run, ferry ports).
    masses, memo_file
        The land masses of every commune loaded and the file that memoises them
        (:func:`save_land_masses`), or None.
    """

    communes: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    ferries: FerryNetwork
    warnings: tuple[str, ...] = ()
    recorded: RunLandMasses = field(default_factory=RunLandMasses)
    masses: pd.Series | None = None
    memo_file: Path | None = None


def _memo_land_masses(all_communes: gpd.GeoDataFrame, settings: Settings,
                      memo_file: Path | None) -> pd.Series:
    """Return :func:`coverage.routing.landmass.land_masses`, read from ``memo_file`` if there.

    Nothing is written here (a run checks its options before writing anything):
    :func:`save_land_masses` writes the memo once the run holds its folder.
    """
    if memo_file is not None and memo_file.exists():
        try:
            data = json.loads(memo_file.read_text(encoding="utf-8"))
            mass = pd.Series(data["masses"], index=pd.Index(data["codes"], dtype=object),
                             dtype=object)
            mass.attrs["avertissements"] = list(data.get("avertissements", []))
            if isinstance(data.get("main"), dict) and isinstance(data.get("islands"), dict):
                mass.attrs["record"] = (dict(data["main"]), dict(data["islands"]))
            return mass
        except (OSError, ValueError, KeyError) as exc:
            log.warning("mémo des masses terrestres %s illisible (%s) : recalculé", memo_file.name,
                        exc)
    return land_masses(all_communes, settings)


def save_land_masses(inputs: ProxyInputs) -> None:
    """Write the land masses of ``inputs`` into its memo file (when absent).

    Memo files of other digests in the same folder are removed.

    Parameters
    ----------
    inputs
        :func:`proxy_inputs` given a ``memo_file``.
    """
    memo_file, mass = inputs.memo_file, inputs.masses
    if memo_file is None or mass is None or memo_file.exists():
        return
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    for old in memo_file.parent.glob(f"{MEMO_PREFIX}*.json"):
        old.unlink(missing_ok=True)
    write_text_atomic(memo_file, json.dumps({
        "codes": [str(c) for c in mass.index], "masses": [str(m) for m in mass],
        "avertissements": list(inputs.warnings),
        # the compact record of the manifest (RunLandMasses.of_run), found once
        "main": dict(inputs.recorded.main), "islands": dict(inputs.recorded.islands)},
        ensure_ascii=False))


def proxy_inputs(all_communes: gpd.GeoDataFrame, communes: gpd.GeoDataFrame,
                 services: gpd.GeoDataFrame, settings: Settings,
                 links_file: str | Path | None = None, *,
                 memo_file: Path | None = None) -> ProxyInputs:
    """Return the run's communes and services with land masses, and its ferry network.

    Parameters
    ----------
    all_communes
        Every commune loaded (polygons, ``code_insee``, ``code_dep``, ``densite``, ``lon``,
        ``lat`` in EPSG:4326): the land masses are found on them.
    communes, services
        The run's communes and services.
    settings
        ``land_mass_gap_m``.
    links_file
        Ferry links table (:func:`coverage.routing.landmass.read_ferry_links`), or None.
    memo_file
        JSON file memoising the land masses (named by a digest of the communes and
        settings: an incremental rerun does not find them again), or None.

    Returns
    -------
    ProxyInputs

    Raises
    ------
    coverage.errors.InputError
        A bad links file (file, row and column named), or a port absent from the communes.
    """
    if not _has_polygons(all_communes):  # points only: each territory is one land mass
        ferries = _links(links_file, all_communes, None)
        return ProxyInputs(communes, services, ferries,
                           recorded=RunLandMasses.of_run(None, ferries))
    mass = _memo_land_masses(all_communes, settings, memo_file)
    notes = tuple(mass.attrs.get("avertissements", ()))
    memo_record = mass.attrs.get("record")
    mass = mass[~mass.index.duplicated()]
    communes = communes.assign(**{LAND_MASS_COLUMN: communes["code_insee"].astype(str)
                                  .map(mass).to_numpy()})
    codes = services["code_insee"].astype(str) if "code_insee" in services.columns else None
    if codes is not None:
        services = services.assign(**{LAND_MASS_COLUMN: codes.map(mass).to_numpy()})
        if "densite" not in services.columns and "densite" in all_communes.columns:
            dens = pd.Series(all_communes["densite"].to_numpy(),
                             index=all_communes["code_insee"].astype(str))
            dens = dens[~dens.index.duplicated()]
            services = services.assign(densite=codes.map(dens).to_numpy())
    ferries = _links(links_file, all_communes, mass)
    log.info("land masses: %d (largest %d communes); ferry links: %d", mass.nunique(),
             int(mass.value_counts().iloc[0]) if len(mass) else 0, len(ferries.links))
    densities = _outside_densities(communes, services)
    if memo_record is not None:  # RunLandMasses.of_run's main land masses and islands, memoised
        recorded = RunLandMasses(memo_record[0], memo_record[1], densities,
                                 tuple(ferries.ports))
    else:
        recorded = RunLandMasses.of_run(mass, ferries, densities)
    return ProxyInputs(communes, services, ferries, notes, recorded, mass, memo_file)


def _outside_densities(communes: pd.DataFrame, services: pd.DataFrame) -> dict[str, int]:
    """Return the density level of the services' communes outside the run's communes."""
    if "densite" not in services.columns or "code_insee" not in services.columns:
        return {}
    codes = services["code_insee"].astype(str).to_numpy(dtype=object)
    dens = pd.to_numeric(services["densite"], errors="coerce").to_numpy(dtype=float)
    # a hash lookup on object arrays (Series.isin on Arrow strings converts every value)
    inside = pd.Index(codes, dtype=object).isin(
        communes["code_insee"].astype(str).to_numpy(dtype=object))
    keep = ~inside & ~np.isnan(dens) & services["code_insee"].notna().to_numpy()
    return {str(c): int(d) for c, d in zip(codes[keep], dens[keep], strict=True)}


def _has_polygons(frame: gpd.GeoDataFrame) -> bool:
    """Return True when ``frame`` has (multi)polygon geometries."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        return False
    kinds = shapely.get_type_id(frame.geometry.to_numpy())  # -1: missing
    kinds = kinds[kinds >= 0]
    return bool(kinds.size) and bool(np.isin(kinds, (3, 6)).all())  # Polygon, MultiPolygon


def _links(links_file: str | Path | None, all_communes: gpd.GeoDataFrame,
           mass: pd.Series | None) -> FerryNetwork:
    """Return the run's ferry network (empty without a links file)."""
    if links_file is None:
        return FerryNetwork()
    links = read_ferry_links(links_file)
    if mass is None:  # no land masses: the engine's fallback, one per territory (its CRS)
        mass = pd.Series(all_communes["code_dep"].astype(str).map(metric_crs_for).to_numpy(),
                         index=all_communes["code_insee"].astype(str))
        mass = mass[~mass.index.duplicated()]
    return ferry_network(links, all_communes, mass, file=Path(links_file).name)


def empty_offer_warnings(services: pd.DataFrame, depts: Sequence[str],
                         types: Sequence[str]) -> list[str]:
    """Return the French warnings of empty offers, for any engine.

    A type with no service at all in the list gets one warning; otherwise each département
    of the run with no service of the type (services' ``code_dep``) gets one.

    Parameters
    ----------
    services
        The run's services (``type_service``, ``code_dep``).
    depts
        Départements of the run.
    types
        Service types of the run.
    """
    out: list[str] = []
    stypes = services["type_service"].astype(str) if len(services) else pd.Series([], dtype=str)
    deps = (services["code_dep"].astype(str) if "code_dep" in services.columns and len(services)
            else pd.Series([""] * len(services), dtype=str))
    for stype in types:
        sel = stypes == stype
        if not sel.any():
            out.append(empty_offer_warning(stype))
            continue
        have = set(deps[sel])
        out.extend(empty_offer_warning(stype, d) for d in depts if d not in have)
    return out
