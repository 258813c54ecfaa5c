"""Cached computations behind the pages: key figures, tables, map HTML, export files.

Each function takes hashable keys (run folder, manifest stamp, codes) or frames that
Streamlit can hash; arguments starting with ``_`` are not hashed and come with a key.
"""

from __future__ import annotations

import io
import logging
import math
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from coverage.app import state
from coverage.export import epci_departement_table, export_departement, run_digest
from coverage.labels import FICTIONAL_DEFAULT_LABEL, FICTIONAL_SHORT, fr_minutes, type_label
from coverage.maps import fmt_int
from coverage.results import RunOutputs
from coverage.settings import NO_SERVICE
from coverage.whitezones import combined_access, coverage_table, is_white_zone

__all__ = [
    "EXPORT_ITEMS",
    "ISOCHRONES_LAYER",
    "STYLED_CELLS",
    "TEXT_VERSION_KEY",
    "AccessPage",
    "SitingData",
    "commune_table",
    "coverage_level",
    "empty_offer_notes",
    "export_file",
    "fictional_banner",
    "fmt_decimal",
    "fmt_int",
    "fmt_rate",
    "french_table",
    "has_isochrones",
    "key_figures",
    "level_table",
    "open_access_page",
    "run_digest_of",
    "service_names",
    "show_key_figures",
    "show_table",
    "siting_data",
    "siting_geometries",
    "type_rows",
]

log = logging.getLogger(__name__)

#: Layer of ``isochrones.gpkg`` drawn on the map (bands per service type).
ISOCHRONES_LAYER = "isochrones_types_affichage"
#: Session key of the Carte page's « Version texte de la carte » (True while open).
TEXT_VERSION_KEY = "carte_text_version"


def fictional_banner(run: RunOutputs, extra: str = "") -> None:
    """Draw the FICTIF warning at the top of a page when the run is made-up data.

    Parameters
    ----------
    run
        The open run; nothing is drawn when it is not fictional.
    extra
        A sentence added after the label.
    """
    if run.fictif:
        label = run.fictional_label or FICTIONAL_DEFAULT_LABEL
        st.warning(f"{FICTIONAL_SHORT} — {label}" + (f" {extra}" if extra else ""))


@dataclass(frozen=True)
class AccessPage:
    """What a page about the selection's access times draws from.

    Attributes
    ----------
    sel
        The sidebar's selection.
    run
        The open run.
    access
        ``acces_communes`` rows of the département (an uploaded file's when there is one).
    engine
        Engine of those rows, ``road`` or ``proxy``.
    upload_name
        Name of the uploaded services file, None without one.
    """

    sel: state.Selection
    run: RunOutputs
    access: pd.DataFrame
    engine: str
    upload_name: str | None


def open_access_page(title: str) -> AccessPage:
    """Draw a page's title (type and département of the selection) and FICTIF banner.

    Parameters
    ----------
    title
        The page's name (« Carte », « Zones blanches »).

    Returns
    -------
    AccessPage
        The selection, its run and its access rows.
    """
    sel = state.selection()
    run = state.run_of(sel)
    st.title(f"{title} — {type_label(sel.type_service)}, département {sel.dept}")
    fictional_banner(run)
    access, engine, upload_name = state.access_for(sel)
    return AccessPage(sel, run, access, engine, upload_name)


def type_rows(access: pd.DataFrame, type_service: str) -> pd.DataFrame:
    """Return the access rows of one service type (the combined view computed when asked)."""
    if type_service == NO_SERVICE and not (access["type_service"] == NO_SERVICE).any():
        return combined_access(access)
    return access[access["type_service"] == type_service].reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=64)
def coverage_level(access: pd.DataFrame, communes: pd.DataFrame, threshold_min: float,
                   level: str) -> pd.DataFrame:
    """Return :func:`coverage.whitezones.coverage_table` of one level at one threshold."""
    return coverage_table(access, communes, [threshold_min], level)


def key_figures(sel: state.Selection) -> dict[str, Any]:
    """Return the key figures of the selected département, type and threshold.

    Returns
    -------
    dict
        ``population``, ``population_couverte``, ``taux_couverture`` (ratio 0-1),
        ``communes``, ``communes_zone_blanche``, ``population_zone_blanche``,
        ``minutes_mediane`` (population-weighted, minutes; inf when unreachable).
    """
    return dict(_key_figures(sel, state.data_key(sel)))


@st.cache_data(show_spinner=False, max_entries=state.DEPT_ENTRIES)
def _key_figures(sel: state.Selection, data_key: str) -> dict[str, Any]:
    """Return :func:`key_figures`, cached per selection and data.

    ``data_key`` (``run`` or an uploaded file's token) stands for the access rows: a new
    session or a rerun reads the figures without hashing those rows again.
    """
    del data_key  # cache key only
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
        **_ranges(r),
    }


def _ranges(row: pd.Series) -> dict[str, int]:
    """Return the low–high white-zone figures of a coverage row (proxy), else nothing."""
    cols = ("communes_zone_blanche_min", "communes_zone_blanche_max",
            "population_zone_blanche_min", "population_zone_blanche_max")
    if any(c not in row.index or pd.isna(row[c]) for c in cols):
        return {}
    return {c: int(row[c]) for c in cols}


def empty_offer_notes(run: RunOutputs, dept: str) -> list[str]:
    """Return the run's empty-offer warnings about the whole list or about ``dept``."""
    return [str(w) for w in run.manifest.get("avertissements") or []
            if "département" not in str(w) or f"département {dept} :" in str(w)]


def fmt_rate(value: float) -> str:
    """Return a ratio 0-1 as a French percentage (« — » when not finite)."""
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
                   help=f"À {fr_minutes(sel.threshold_min)} ou moins du service le plus proche")
    cols[2].metric("Taux de couverture", fmt_rate(fig["taux_couverture"]))
    cols[3].metric("Communes en zone blanche",
                   f"{fig['communes_zone_blanche']} / {fig['communes']}")
    cols[4].metric("Population en zone blanche", fmt_int(fig["population_zone_blanche"]))
    if "population_zone_blanche_min" in fig:
        low, high = state.run_of(sel).manifest.get("parameters", {}).get(
            "proxy_detour_bounds", ["?", "?"])
        st.caption(
            f"Fourchette (moteur proxy, facteur de détour {fmt_decimal(low)} à "
            f"{fmt_decimal(high)}) : communes en zone blanche "
            f"{fmt_int(fig['communes_zone_blanche_min'])} à "
            f"{fmt_int(fig['communes_zone_blanche_max'])} ; population en zone blanche "
            f"{fmt_int(fig['population_zone_blanche_min'])} à "
            f"{fmt_int(fig['population_zone_blanche_max'])}.")
    return fig


def _column_digits(values: pd.Series) -> int:
    """Return the decimals shown for a numeric column, the same for all its cells.

    0 for whole numbers, 1 from 10 up, else the fewest decimals (1 to 3) that show every
    cell as it is to 3 decimals (« 2,0 » beside « 2,5 », not « 2 »).
    """
    finite = values[np.isfinite(values)].to_numpy(dtype=float)
    if not len(finite) or bool((finite == np.round(finite)).all()):
        return 0
    if float(np.abs(finite).max()) >= 10:
        return 1
    exact = np.round(finite, 3)
    return next((d for d in (1, 2) if bool((np.round(finite, d) == exact).all())), 3)


def _fr_number(value: float, digits: int, *, grouping: bool = True) -> str:
    """Return a number in French (narrow space for thousands, decimal comma); "" if none."""
    if not math.isfinite(value):
        return ""
    text = f"{value:{',' if grouping else ''}.{digits}f}"
    return text.replace(",", "\u202f").replace(".", ",").replace("-", "\u2212")


#: ``NumberColumn`` printf formats of whole numbers written without thousands separators
#: (years, row numbers, days).
_PLAIN_FORMATS = re.compile(r"^%(?:d|i|u|\.0f)$")
#: Most cells given French display texts (pandas' Styler limit, ``styler.render.max_elements``,
#: is 262,144): a larger table (a national comparison) shows its numbers as French text.
STYLED_CELLS = 250_000


def _formatter(values: pd.Series, fmt: str | None) -> Callable[[object], str]:
    """Return the French display text of a numeric column's cells, by its format.

    ``percent``: a share 0–1 as « 12,5 % »; a printf format of a whole number (``%d``,
    ``%.0f``): the number without thousands separator (a year, a row number); any other
    (``localized``, none): thousands by a narrow no-break space, decimal comma, the
    column's decimals (0 for whole numbers, 1 from 10 up, else up to 3).
    """
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    if fmt == "percent":
        return lambda v: _fr_percent(_as_float(v))
    if fmt is not None and _PLAIN_FORMATS.match(fmt):
        return lambda v: _fr_number(_as_float(v), 0, grouping=False)
    digits = _column_digits(numbers)
    return lambda v: _fr_number(_as_float(v), digits)


def _as_float(value: object) -> float:
    """Return a cell as a float, NaN when missing (``None``, ``pd.NA``) or not a number."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _fr_percent(share: float) -> str:
    """Return a share 0–1 as a French percentage with one decimal (« 12,5 % »); "" if none."""
    return _fr_number(100.0 * share, 1) + "\u202f%" if math.isfinite(share) else ""


def _number_format(entry: Any) -> tuple[bool, str | None]:
    """Return whether a ``column_config`` entry is a number column, and its format."""
    if not isinstance(entry, dict):
        return False, None
    type_config = entry.get("type_config") or {}
    if type_config.get("type") != "number":
        return False, None
    fmt = type_config.get("format")
    return True, None if fmt is None else str(fmt)


def french_table(frame: pd.DataFrame, config: Mapping[str, Any] | None = None
                 ) -> tuple[pd.DataFrame | Styler, dict[str, Any]]:
    """Return a table whose numbers are shown in French, and its column configuration.

    ``st.dataframe`` formats numbers in the browser's language (« 1,234.5 » in an English
    browser). The app shows French formats whatever the browser: a pandas ``Styler`` gives
    each numeric cell its French text (narrow no-break space for thousands, decimal comma,
    « 12,5 % »), which the browser shows, while the cells keep their numbers, by which a
    click on a column heading sorts. The ``NumberColumn`` configurations lose their
    ``format`` (a format of the column would replace the French text); ``percent`` and
    printf formats of whole numbers (``%d``, ``%.0f``: years, row numbers) choose the
    French text instead (:func:`_formatter`).

    Parameters
    ----------
    frame
        The table shown (not modified).
    config
        ``column_config`` of ``st.dataframe`` (titles or column configurations).

    Returns
    -------
    tuple
        The styled table (the table itself when it has no number or more than
        :data:`STYLED_CELLS` cells: its numbers are then French text) and the configuration
        to pass with it.
    """
    conf = dict(config or {})
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    if not numeric:
        return frame, conf
    formats: dict[Any, str | Callable[[object], str] | None] = {}
    for col in numeric:
        is_number, fmt = _number_format(conf.get(str(col)))
        formats[col] = _formatter(frame[col], fmt)
        if is_number:
            entry = dict(conf[str(col)])
            entry["type_config"] = {k: v for k, v in entry["type_config"].items()
                                    if k != "format"}
            conf[str(col)] = entry
    if frame.size > STYLED_CELLS:  # beyond pandas' Styler: French text, sorted as text
        out = frame.copy()
        for col in numeric:
            fmt_fn = _formatter(frame[col], _number_format(config.get(str(col)) if config
                                                           else None)[1])
            out[col] = [fmt_fn(v) for v in out[col]]
            if _number_format(conf.get(str(col)))[0]:
                conf[str(col)] = st.column_config.TextColumn(
                    conf[str(col)].get("label"), help=conf[str(col)].get("help"))
        return out, conf
    return frame.style.format(formats), conf


def show_table(frame: pd.DataFrame | Mapping[str, Any], config: Mapping[str, Any] | None = None,
               **kwargs: Any) -> Any:
    """Draw a table with ``st.dataframe``, its numbers in French and sortable as numbers.

    The one way the app's pages draw a table (:func:`french_table`): index hidden, missing
    values as empty cells, width of the page unless ``width`` is given.

    Parameters
    ----------
    frame
        The table (a mapping of columns is turned into a table).
    config
        ``column_config`` (titles or column configurations).
    **kwargs
        Other arguments of ``st.dataframe`` (``key``, ``column_order``, ``width``…).

    Returns
    -------
    Any
        What ``st.dataframe`` returns.
    """
    table = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(dict(frame))
    shown, conf = french_table(table, config)
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("width", "stretch")
    kwargs.setdefault("placeholder", "")
    return st.dataframe(shown, column_config=conf, **kwargs)


def fmt_decimal(value: object) -> str:
    """Return a number with a decimal comma (the text itself when not a number)."""
    return str(value).replace(".", ",")


def service_names(services: pd.DataFrame) -> dict[str, str]:
    """Return each service's name by ``service_id``: its ``nom``, else its identifier.

    Parameters
    ----------
    services
        Services with ``service_id`` and, when the file has one, ``nom`` (a blank or
        missing name falls back to the identifier).

    Returns
    -------
    dict
        ``service_id`` → name.
    """
    ids = services["service_id"].astype(str)
    if "nom" not in services:
        return dict(zip(ids, ids, strict=True))
    nom = services["nom"]
    blank = nom.isna() | (nom.astype(str).str.strip() == "")
    return dict(zip(ids, nom.astype(str).where(~blank, ids), strict=True))


def commune_table(sel: state.Selection) -> pd.DataFrame:
    """Return one row per commune of the département: minutes, nearest service, white zone."""
    access, _engine, _up = state.access_for(sel)
    rows = type_rows(access, sel.type_service)
    communes = state.dept_communes(sel.run_dir, sel.stamp, sel.dept)
    names = service_names(state.services_for(sel))
    keep = [c for c in ("code_insee", "nom", "population", "densite", "rural", "nom_epci")
            if c in communes]
    out = communes[keep].merge(
        rows[[c for c in ("code_insee", "minutes", "service_id", "distance_km",
                          "distance_estimee_km", "moteur") if c in rows]],
        on="code_insee", how="left",
    )
    out["service"] = [names.get(str(s), s) if isinstance(s, str) else None
                      for s in out.get("service_id", pd.Series(None, index=out.index))]
    out["zone_blanche"] = is_white_zone(out["minutes"], sel.threshold_min)
    out = out.drop(columns=[c for c in ("service_id",) if c in out])
    return out.sort_values("minutes", ascending=False, na_position="first").reset_index(
        drop=True)


@st.cache_data(show_spinner=False, max_entries=64)
def _epci_level(access: pd.DataFrame, communes: pd.DataFrame, threshold_min: float,
                dept: str, whole: pd.DataFrame | None) -> pd.DataFrame:
    """Return :func:`coverage.export.epci_departement_table` at one threshold."""
    return epci_departement_table(access, communes, [threshold_min], dept, whole)


def _whole_epci(sel: state.Selection) -> pd.DataFrame | None:
    """Return the run's whole-EPCI rows at the selection's threshold (None: no table)."""
    whole = state.run_of(sel).tables.get("couverture_epci")
    if whole is None:
        return None
    return whole[np.isclose(whole["seuil_minutes"], sel.threshold_min)].reset_index(drop=True)


def level_table(sel: state.Selection, level: str) -> pd.DataFrame:
    """Return the coverage by EPCI or density class over the département's communes.

    An EPCI line is the département's communes of the EPCI, the whole EPCI beside it
    (``population_epci`` …, :func:`coverage.export.epci_departement_table`): the same lines
    as the export's XLSX and CSV and the report. With an uploaded services file, the
    whole-EPCI white-zone figures (computed with the run's services) are left empty.
    """
    access, _engine, up = state.access_for(sel)
    communes = state.dept_communes(sel.run_dir, sel.stamp, sel.dept)
    if level == "epci":
        table = _epci_level(access, communes, sel.threshold_min, sel.dept, _whole_epci(sel))
        table = table.drop(columns=["code_dep"])
        if up is not None:
            table["population_zone_blanche_epci"] = pd.array([pd.NA] * len(table),
                                                             dtype="Int64")
            table["taux_couverture_epci"] = np.nan
    else:
        table = coverage_level(access, communes, sel.threshold_min, level)
    table = table[(table["type_service"] == sel.type_service)
                  & np.isclose(table["seuil_minutes"], sel.threshold_min)]
    table = table.drop(columns=["type_service", "seuil_minutes"])
    for col in ("minutes_mediane", "minutes_p90"):
        if col in table:
            table[col] = table[col].replace([np.inf], np.nan)
    return table.reset_index(drop=True)


def has_isochrones(sel: state.Selection) -> bool:
    """Return whether the run has the isochrone bands layer drawn by the map."""
    return ISOCHRONES_LAYER in state.run_of(sel).isochrone_layers()


@dataclass(frozen=True)
class SitingData:
    """What the « Nouveau site » page plans from: services, existing access, cache key.

    Attributes
    ----------
    services
        Every service of the run (EPSG:4326), the département's replaced by an uploaded
        file's when there is one.
    access
        The run's ``acces_communes`` when timed by the engine that times the new sites,
        else None (:func:`coverage.siting.plan_new_sites` then times the services itself).
    data_key
        ``run``, or the upload's token: the cache key of the data.
    upload_name
        Name of the uploaded services file, None without one.
    """

    services: gpd.GeoDataFrame
    access: pd.DataFrame | None
    data_key: str
    upload_name: str | None


def siting_data(sel: state.Selection, engine_name: str) -> SitingData:
    """Return the services and existing access the new sites of the selection start from.

    Parameters
    ----------
    sel
        The sidebar's selection (an uploaded services file replaces the run's services in
        its département, as on the other pages).
    engine_name
        Name of the engine that times the new sites (``road``/``proxy``): the run's access
        is kept only when timed by the same engine.
    """
    run = state.run_of(sel)
    up = state.upload_override(sel)
    if up is not None:
        others = run.services[run.services["code_dep"].astype(str) != sel.dept]
        services = gpd.GeoDataFrame(
            pd.concat([others, up["services"].to_crs(others.crs)], ignore_index=True),
            crs=others.crs)
        return SitingData(services, None, repr(up["token"]), str(up["name"]))
    access = run.tables.get("acces_communes")
    if access is not None and set(access["moteur"].dropna().astype(str)) != {engine_name}:
        access = None  # existing coverage recomputed with the engine that times the new sites
    return SitingData(run.services, access, "run", None)


def siting_geometries(sel: state.Selection, covered: pd.DataFrame
                      ) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Return the polygons of the « Nouveau site » map and the other départements drawn.

    Parameters
    ----------
    sel
        The sidebar's selection.
    covered
        Communes newly covered by the suggested sites (``code_insee, code_dep``).

    Returns
    -------
    tuple
        The département's display polygons (EPSG:4326) plus the newly covered communes of
        other départements, and the codes of those départements.
    """
    geoms = state.dept_display_geometries(sel.run_dir, sel.stamp, sel.dept)
    outside = sorted({str(d) for d in covered["code_dep"]} - {sel.dept})
    if not outside:
        return geoms, outside
    extra = [state.dept_display_geometries(sel.run_dir, sel.stamp, d) for d in outside]
    extra = [g[g["code_insee"].isin(covered["code_insee"])] for g in extra]
    return (gpd.GeoDataFrame(pd.concat([geoms, *extra], ignore_index=True), crs=geoms.crs),
            outside)


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
    """Return a zip of ``folder`` (paths relative to its parent)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder.parent).as_posix())
    return buf.getvalue()


def run_digest_of(sel: state.Selection) -> str:
    """Return the digest of the selection's run (:func:`coverage.export.run_digest`)."""
    return run_digest(state.run_of(sel))


@st.cache_data(show_spinner=False, max_entries=64)
def export_file(run_dir: str, digest: str, dept: str, key: str, map_type: str,
                map_threshold: float) -> tuple[str, bytes]:
    """Return one export file of a département as (file name, bytes), built on demand.

    Calls :func:`coverage.export.export_departement` with the one format of ``key`` (public
    export: small waiting-list counts masked) in a temporary folder. Cached per run digest:
    a rewritten run folder gives new files, never the former run's.

    Parameters
    ----------
    run_dir
        Run folder.
    digest
        The run's digest (the cache key; :func:`run_digest_of`).
    dept
        Département code.
    key
        A key of :data:`EXPORT_ITEMS`.
    map_type, map_threshold
        Service type and threshold (minutes) of the PNG map.

    Returns
    -------
    tuple
        File name and content (the CSV flavours as one zip).
    """
    del digest  # cache key only: the run is read as it is now
    run = state.load_run(run_dir, state.manifest_stamp(run_dir))
    fmt = EXPORT_ITEMS[key][1]
    with tempfile.TemporaryDirectory(prefix="zb-export-") as tmp:
        folder = Path(tmp) / f"export_{dept}"
        paths = export_departement(run, dept, formats=(fmt,), out_dir=folder, public=True,
                                   map_type=map_type, map_threshold=map_threshold)
        if key in ("csv", "csv_fr"):
            sub = "tables" if key == "csv" else "csv_fr"
            return f"{dept}_{sub}.zip", _zip_folder(folder / sub)
        suffix = {"xlsx": ".xlsx", "gpkg": ".gpkg", "png": ".png"}[key]
        path = next(p for p in paths if p.suffix == suffix)
        return path.name, path.read_bytes()
