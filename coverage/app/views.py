"""Cached computations behind the pages: key figures, tables, map HTML, export files.

Each function takes hashable keys (run folder, manifest stamp, codes) or frames that
Streamlit can hash; arguments starting with ``_`` are not hashed and come with a key.
"""

from __future__ import annotations

import html
import io
import logging
import math
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st

from coverage import maps
from coverage.app import state
from coverage.settings import NO_SERVICE

log = logging.getLogger(__name__)

#: Layer of ``isochrones.gpkg`` drawn on the map (bands per service type).
ISOCHRONES_LAYER = "isochrones_types_affichage"
#: Longest source line written in the map legend, characters.
SOURCE_MAX_CHARS = 160


def fictional_banner(run: Any, extra: str = "") -> None:
    """The FICTIF warning at the top of a page when the run is made-up data (else nothing)."""
    if run.fictif:
        label = run.fictional_label or "territoire de démonstration inventé"
        st.warning(f"FICTIF — {label}" + (f" {extra}" if extra else ""))


def type_rows(access: pd.DataFrame, type_service: str) -> pd.DataFrame:
    """Access rows of one service type (the combined view computed when asked)."""
    if type_service == NO_SERVICE and not (access["type_service"] == NO_SERVICE).any():
        from coverage.whitezones import combined_access

        return combined_access(access)
    return access[access["type_service"] == type_service].reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=64)
def coverage_level(access: pd.DataFrame, communes: pd.DataFrame, threshold_min: float,
                   level: str) -> pd.DataFrame:
    """:func:`coverage.whitezones.coverage_table` of one level at one threshold."""
    from coverage.whitezones import coverage_table

    return coverage_table(access, communes, [threshold_min], level)


def key_figures(sel: state.Selection) -> dict[str, Any]:
    """Key figures of the selected département, type and threshold.

    Returns
    -------
    dict
        ``population``, ``population_couverte``, ``taux_couverture`` (ratio 0-1),
        ``communes``, ``communes_zone_blanche``, ``population_zone_blanche``,
        ``minutes_mediane`` (population-weighted, minutes; inf when unreachable).
    """
    access, _engine, _up = state.access_for(sel)
    communes = state.dept_communes(sel.run_dir, sel.stamp, sel.dept)
    table = coverage_level(access, communes, sel.threshold_min, "departements")
    row = table[(table["type_service"] == sel.type_service)
                & np.isclose(table["seuil_minutes"], sel.threshold_min)]
    if row.empty:
        return {}
    r = row.iloc[0]
    return {
        "population": int(r["population"]),
        "population_couverte": int(r["population_couverte"]),
        "taux_couverture": float(r["taux_couverture"]),
        "communes": int(communes.shape[0]),
        "communes_zone_blanche": int(r["communes_zone_blanche"]),
        "population_zone_blanche": int(r["population_zone_blanche"]),
        "minutes_mediane": float(r["minutes_mediane"]),
    }


def fmt_int(value: float) -> str:
    """Whole number with a narrow no-break space between thousands."""
    return f"{int(value):,}".replace(",", "\u202f")


def fmt_rate(value: float) -> str:
    """Ratio 0-1 as a French percentage."""
    if not math.isfinite(value):
        return "—"
    return f"{100 * value:.1f} %".replace(".", ",")


def show_key_figures(sel: state.Selection) -> dict[str, Any]:
    """Draw the key figures as metrics and return them."""
    fig = key_figures(sel)
    if not fig:
        st.info("Pas de chiffre pour cette sélection.")
        return fig
    cols = st.columns(5)
    cols[0].metric("Population", fmt_int(fig["population"]),
                   help=f"{fig['communes']} communes du département")
    cols[1].metric("Population couverte", fmt_int(fig["population_couverte"]),
                   help=f"À {sel.threshold_min:g} min ou moins du service le plus proche")
    cols[2].metric("Taux de couverture", fmt_rate(fig["taux_couverture"]))
    cols[3].metric("Communes en zone blanche",
                   f"{fig['communes_zone_blanche']} / {fig['communes']}")
    cols[4].metric("Population en zone blanche", fmt_int(fig["population_zone_blanche"]))
    return fig


def commune_table(sel: state.Selection) -> pd.DataFrame:
    """One row per commune of the département: minutes, nearest service, white-zone flag."""
    access, _engine, _up = state.access_for(sel)
    rows = type_rows(access, sel.type_service)
    communes = state.dept_communes(sel.run_dir, sel.stamp, sel.dept)
    services = state.services_for(sel)
    names = dict(zip(services["service_id"].astype(str), services["nom"].astype(str),
                     strict=False))
    keep = [c for c in ("code_insee", "nom", "population", "densite", "rural", "nom_epci")
            if c in communes]
    out = communes[keep].merge(
        rows[[c for c in ("code_insee", "minutes", "service_id", "distance_km", "moteur")
              if c in rows]],
        on="code_insee", how="left",
    )
    out["service"] = [names.get(str(s), s) if isinstance(s, str) else None
                      for s in out.get("service_id", pd.Series(None, index=out.index))]
    out["zone_blanche"] = maps.is_white_zone(out["minutes"], sel.threshold_min)
    out = out.drop(columns=[c for c in ("service_id",) if c in out])
    return out.sort_values("minutes", ascending=False, na_position="first").reset_index(
        drop=True)


def level_table(sel: state.Selection, level: str) -> pd.DataFrame:
    """Coverage by EPCI or density class over the département's communes."""
    access, _engine, _up = state.access_for(sel)
    communes = state.dept_communes(sel.run_dir, sel.stamp, sel.dept)
    table = coverage_level(access, communes, sel.threshold_min, level)
    table = table[(table["type_service"] == sel.type_service)
                  & np.isclose(table["seuil_minutes"], sel.threshold_min)]
    table = table.drop(columns=["type_service", "seuil_minutes"])
    for col in ("minutes_mediane", "minutes_p90"):
        if col in table:
            table[col] = table[col].replace([np.inf], np.nan)
    return table.reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=32)
def _map_page(
    run_dir: str, stamp: float, dept: str, type_service: str, threshold_min: float,
    show_isochrones: bool, tiles: maps.Tiles | None, data_key: str,
    _access: pd.DataFrame, _services: gpd.GeoDataFrame, engine: str,
) -> str:
    run = state.load_run(run_dir, stamp)
    geoms = state.dept_display_geometries(run_dir, stamp, dept)
    iso = None
    if show_isochrones:
        iso = run.isochrones(ISOCHRONES_LAYER)
        if iso is not None and "code_dep" in iso:
            iso = iso[iso["code_dep"].astype(str) == dept]
        if iso is not None and len(iso) and len(geoms):
            # Bands of a run cover every département: keep those over this one's communes.
            iso = gpd.clip(iso.to_crs(geoms.crs), geoms.geometry.union_all())
    from coverage.results import source_line

    source = source_line(run)
    if len(source) > SOURCE_MAX_CHARS:
        source = source[: SOURCE_MAX_CHARS - 1] + "… (voir « À propos »)"
    m = maps.access_map(
        geoms, type_rows(_access, type_service), shown_services(_services, _access, dept),
        type_service=type_service,
        threshold_min=threshold_min, engine=engine, fictif=run.fictif, isochrones=iso,
        tiles=tiles, sources=html.escape(source),
    )
    return maps.map_html(m)


def shown_services(services: gpd.GeoDataFrame, access: pd.DataFrame, dept: str
                   ) -> gpd.GeoDataFrame:
    """Services drawn on a département's map: those located in it, plus those that are the
    nearest service of one of its communes (across the border).
    """
    nearest = set(access["service_id"].dropna().astype(str)) if "service_id" in access \
        else set()
    keep = services["service_id"].astype(str).isin(nearest)
    if "code_dep" in services:
        keep |= services["code_dep"].astype(str) == dept
    return services[keep]


def map_page_html(sel: state.Selection, *, show_isochrones: bool) -> str:
    """HTML page of the Carte map for the selection (cached per selection and data)."""
    access, engine, _up_name = state.access_for(sel)
    up = state.upload_override(sel)
    data_key = "run" if up is None else repr(up["token"])
    return _map_page(sel.run_dir, sel.stamp, sel.dept, sel.type_service, sel.threshold_min,
                     show_isochrones, sel.tiles, data_key, access, state.services_for(sel),
                     engine)


def has_isochrones(sel: state.Selection) -> bool:
    """Whether the run has the isochrone bands layer drawn by the map."""
    return ISOCHRONES_LAYER in state.run_of(sel).isochrone_layers()


#: Files offered by the Exports page: key → (label, export format, MIME type).
EXPORT_ITEMS: dict[str, tuple[str, str, str]] = {
    "csv": ("Tables CSV (UTF-8, « , », avec schémas JSON) — zip", "csv", "application/zip"),
    "csv_fr": ("Tables CSV pour Excel français (« ; », virgule décimale) — zip", "csv_fr",
               "application/zip"),
    "xlsx": ("Classeur XLSX", "xlsx",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "gpkg": ("GeoPackage (communes et services)", "gpkg", "application/geopackage+sqlite3"),
    "png": ("Carte PNG", "png", "image/png"),
}


def _zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder.parent).as_posix())
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=16)
def export_files(run_dir: str, stamp: float, dept: str, map_type: str,
                 map_threshold: float) -> dict[str, tuple[str, bytes]]:
    """Export files of a département as bytes, by :data:`EXPORT_ITEMS` key.

    Calls :func:`coverage.export.export_departement` (public export: small waiting-list
    counts masked) in a temporary folder.

    Returns
    -------
    dict
        key → (file name, content).
    """
    from coverage.export import export_departement

    run = state.load_run(run_dir, stamp)
    out: dict[str, tuple[str, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="zb-export-") as tmp:
        folder = Path(tmp) / f"export_{dept}"
        paths = export_departement(
            run, dept, formats=("csv", "csv_fr", "xlsx", "gpkg", "png"), out_dir=folder,
            public=True, map_type=map_type, map_threshold=map_threshold,
        )
        for p in paths:
            if p.suffix == ".xlsx":
                out["xlsx"] = (p.name, p.read_bytes())
            elif p.suffix == ".gpkg":
                out["gpkg"] = (p.name, p.read_bytes())
            elif p.suffix == ".png":
                out["png"] = (p.name, p.read_bytes())
        for key, sub in (("csv", "tables"), ("csv_fr", "csv_fr")):
            if (folder / sub).is_dir():
                out[key] = (f"{dept}_{sub}.zip", _zip_folder(folder / sub))
    return out
