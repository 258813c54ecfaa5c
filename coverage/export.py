"""Exports of one département from a run, for the staff who write its family-services scheme.

:func:`export_departement` reads a finished run (:class:`coverage.results.RunOutputs`), keeps
what concerns one département and writes it in stable, documented formats:

``csv``
    ``tables/<contrat>.csv`` (UTF-8 without BOM, ``,`` separator, ``.`` decimal, empty cell
    = missing) with its Frictionless Table Schema ``tables/<contrat>.schema.json`` beside it
    (column types, units, French titles).
``csv_fr``
    ``csv_fr/<contrat>.csv``: the same tables for French Excel: ``;`` separator, decimal
    comma, UTF-8 with BOM.
``xlsx``
    ``<dept>_zones_blanches.xlsx``: one sheet per level (Département, Communes, Zones
    blanches, EPCI, Densité, and Listes d'attente when the run has waiting lists), a title
    row with units and a row with the column codes, frozen panes, widths and number formats,
    and a « Sources et méthode » sheet (sources and licences, engine and its parameters,
    thresholds, dates, the FICTIONAL label of the demo, the secrecy rule).
``gpkg``
    ``<dept>_zones_blanches.gpkg``: layer ``communes`` (polygons, EPSG:4326) with the
    minutes to the nearest service of each type (``minutes_<type>``, and
    ``minutes_aucun_service`` for the nearest of any type), the nearest service
    (``service_<type>``) and one boolean white-zone flag per type × threshold
    (``zb_<type>_<seuil>``, e.g. ``zb_aucun_service_30``), and layer ``services`` (points).
``parquet``
    ``tables/<contrat>.parquet`` and GeoParquet ``<dept>_communes.parquet`` /
    ``<dept>_services.parquet`` (the same two layers as the GeoPackage).
``png``
    ``<dept>_carte_<type>_<seuil>min.png``: a static map for a report (white zones, classes
    of minutes, services, legend, scale bar, north arrow, source line, engine named).
``png_attente``
    When the run has waiting lists, their charts in ``listes_attente/``
    (:func:`coverage.waiting.waiting_charts_png`: the département's series, its rank, the
    tension view at the map's threshold; masked like the tables in a public export).

Tables exported (``tables/`` and ``csv_fr/``): ``couverture_departements`` (the
département's rows), ``acces_communes`` and ``zones_blanches`` (its communes),
``couverture_epci`` (the EPCIs with at least one commune in the département, each described
over all its communes of the run), ``couverture_densite`` (recomputed over the
département's communes only, with :func:`coverage.whitezones.coverage_table`) and
``listes_attente_departements`` when the run holds waiting lists.

Statistical secrecy
-------------------
Waiting-list figures concern few families in a département. In a **public** export (the
default) every waiting-list count (families, measures, requests, interviews, mediations)
strictly below ``settings.secrecy_threshold`` (default 5), zero included, is masked,
together with the cells derived from it in the same row (rate per 100,000 inhabitants,
mean waiting time, changes on the previous year, services with a waiting list); a change
is also masked when the previous year's count is (the rule of
:func:`coverage.waiting.mask_public`, built on :func:`mask_small_counts`). Markers:

* CSV, French CSV and XLSX: the text ``< 5`` (``< {threshold}``) in a masked count and
  ``secret`` in a masked derived cell (a masked delay must not read as "< 5 days"); the
  Table Schema lists both in ``missingValues`` so that the CSV stays valid;
* Parquet: a null value, and a boolean column ``<colonne>_masque`` set to true on the
  masked rows.

Coverage tables (populations of communes, counts of communes) are published figures and are
never masked. ``public=False`` (CLI ``--internal``) writes every value unmasked; such files
are for internal use only. No secondary suppression is done: when a total of the masked
cells is published elsewhere, a masked cell may be recovered by subtraction.

Every export also writes ``LISEZMOI.txt``: what each file is, then the method and the
sources (the « Sources et méthode » sheet as text).

Every export is first written to a temporary folder beside ``out_dir``; the files are moved
into place only when all of them are written, so a failure leaves no partial output.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import math
import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.errors import CoverageError, OutputError
from coverage.files import atomic_path, write_text_atomic
from coverage.results import check_departement, run_thresholds, source_line, sources
from coverage.schemas import (
    OUTPUT_CONTRACT_VERSION,
    OUTPUT_CONTRACTS,
    Contract,
    Field,
    table_schema,
)
from coverage.settings import (
    CRS_INPUT_OUTPUT,
    NO_SERVICE,
    SERVICE_TYPES,
    Settings,
    metric_crs_for,
)

if TYPE_CHECKING:
    from coverage.results import RunOutputs

log = logging.getLogger(__name__)

#: Every format :func:`export_departement` writes.
EXPORT_FORMATS: tuple[str, ...] = ("csv", "csv_fr", "xlsx", "gpkg", "parquet", "png",
                                   "png_attente")
#: Name of the waiting-list output table (written by the waiting-list stage when present).
WAITING_TABLE = "listes_attente_departements"
#: Label shown on every export of the fictional demo territory.
FICTIONAL_TITLE = "TERRITOIRE FICTIF (démonstration)"

#: Sheets of the XLSX, in order: (table, sheet name).
SHEETS: tuple[tuple[str, str], ...] = (
    ("couverture_departements", "Département"),
    ("acces_communes", "Communes"),
    ("zones_blanches", "Zones blanches"),
    ("couverture_epci", "EPCI"),
    ("couverture_densite", "Densité"),
    (WAITING_TABLE, "Listes d'attente"),
)
METHOD_SHEET = "Sources et méthode"

#: French labels of the service types (maps, method sheet).
TYPE_LABELS: Mapping[str, str] = {
    "mediation_familiale": "médiation familiale",
    "espace_rencontre": "espace de rencontre",
    NO_SERVICE: "aucun des deux services (vue combinée)",
}

ENGINE_LABELS: Mapping[str, str] = {
    "road": "road : temps de trajet sur le graphe routier OpenStreetMap",
    "proxy": "proxy : distance à vol d'oiseau × facteur de détour ÷ vitesse par classe "
             "de densité (estimation, pas un itinéraire)",
}

#: Waiting-list count columns subject to secrecy, and the columns derived from each.
#: Other integer columns whose unit is a number of families are treated as counts too.
SECRET_COUNTS: Mapping[str, tuple[str, ...]] = {
    "familles_en_attente": ("delai_moyen_jours",),
    "familles_accueillies": (),
    "familles_recues": (),
    "mediations": (),
    "mesures_judiciaires": (),
    "demandes_spontanees": (),
    "entretiens_information": (),
    "mediations_engagees": (),
    "mediations_terminees": (),
}
_COUNT_UNITS = ("familles", "mesures", "demandes", "entretiens", "médiations", "mediations")


# --- Statistical secrecy -----------------------------------------------------------------
#: Text of a masked cell derived from a small count (rate, delay, change) in CSV and XLSX.
SECRET_MARKER = "secret"


def secrecy_marker(threshold: int) -> str:
    """Text that replaces a masked cell in CSV and XLSX exports (``"< 5"`` by default)."""
    return f"< {threshold}"


def mask_small_counts(
    df: pd.DataFrame,
    columns: Sequence[str],
    threshold: int,
    marker: str | None,
    *,
    derived: Mapping[str, Sequence[str]] | None = None,
    derived_marker: str | None = None,
) -> pd.DataFrame:
    """Mask the cells of small counts (statistical secrecy).

    Parameters
    ----------
    df
        Table to mask (not modified).
    columns
        Count columns to check (families, measures…). Absent columns are ignored.
    threshold
        Counts strictly below it (zero included) are masked; missing values stay missing.
    marker
        Text put in the masked cells (CSV/XLSX, e.g. ``"< 5"``); the column becomes text.
        ``None``: the cells become null and a boolean column ``<colonne>_masque`` is added
        after each checked column (Parquet).
    derived
        For a count column, the columns of the same row computed from it (rate, change,
        mean delay): they are masked on the same rows. Absent columns are ignored.
    derived_marker
        Text put in the masked derived cells (default: ``marker``); the exports use
        :data:`SECRET_MARKER` so that a masked delay does not read as "< 5 days".

    Returns
    -------
    pandas.DataFrame
        A copy with the masked cells replaced.
    """
    derived = derived or {}
    to_mask: dict[str, pd.Series] = {}
    for col in columns:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        small = (values < threshold).fillna(False).astype(bool)
        to_mask[col] = to_mask.get(col, pd.Series(False, index=df.index)) | small
        for dep in derived.get(col, ()):
            if dep in df.columns:
                to_mask[dep] = to_mask.get(dep, pd.Series(False, index=df.index)) | small
    return mask_cells(df, to_mask, marker, counts=columns, derived_marker=derived_marker)


def mask_cells(
    df: pd.DataFrame,
    cells: Mapping[str, pd.Series],
    marker: str | None,
    *,
    counts: Sequence[str] = (),
    derived_marker: str | None = None,
) -> pd.DataFrame:
    """Replace chosen cells by the secrecy marker (the rows are given per column).

    Parameters
    ----------
    df
        Table (not modified).
    cells
        Column → boolean Series aligned on ``df``: True where the cell is masked. Every
        column given is treated as subject to secrecy, even with no True.
    marker
        Text marker (the column becomes text), or ``None`` for null plus a boolean
        ``<colonne>_masque`` column inserted after it.
    counts
        Count columns: once text, their whole values are written without decimals.
    derived_marker
        Text marker of the columns that are not in ``counts`` (default: ``marker``).

    Returns
    -------
    pandas.DataFrame
        The masked copy.
    """
    out = df.copy()
    for col, rows in cells.items():
        if col not in out.columns:
            continue
        mask = rows.reindex(out.index, fill_value=False).fillna(False).to_numpy(dtype=bool)
        if marker is None:
            s = out[col]
            if pd.api.types.is_integer_dtype(s.dtype):
                s = s.astype("Int64")
            elif pd.api.types.is_bool_dtype(s.dtype):
                s = s.astype("boolean")
            out[col] = s.mask(mask)
            flag = f"{col}_masque"
            if flag in out.columns:
                out[flag] = out[flag].astype(bool) | mask
            else:
                pos = out.columns.get_loc(col)
                assert isinstance(pos, int)
                out.insert(pos + 1, flag, mask)
        else:
            is_count = col in counts
            text = marker if is_count or derived_marker is None else derived_marker
            values: list[Any] = []
            for v, small in zip(out[col].tolist(), mask.tolist(), strict=True):
                if small:
                    values.append(text)
                elif v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                    values.append(None)
                elif is_count and isinstance(v, float) and v.is_integer():
                    values.append(int(v))  # counts: 12.0 → 12 once the column is text
                else:
                    values.append(v)
            out[col] = pd.Series(values, index=out.index, dtype=object)
    return out


def secret_columns(
    df: pd.DataFrame, contract: Contract | None = None
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Count columns of a waiting-list table and the columns derived from each.

    A count column is one of :data:`SECRET_COUNTS`, or an integer field of the contract
    whose unit is a number of families, measures or interviews. Its derived columns are
    those listed in :data:`SECRET_COUNTS` and every column whose name starts with
    ``<count>_`` (``familles_en_attente_pour_100000``, ``familles_en_attente_evolution``…).
    """
    counts = [c for c in SECRET_COUNTS if c in df.columns]
    if contract is not None:
        for f in contract.fields:
            if (f.type == "integer" and f.name in df.columns and f.name not in counts
                    and any(u in f.unit.lower() for u in _COUNT_UNITS)):
                counts.append(f.name)
    derived: dict[str, tuple[str, ...]] = {}
    for c in counts:
        deps = [d for d in SECRET_COUNTS.get(c, ()) if d in df.columns]
        deps += [d for d in df.columns
                 if d.startswith(f"{c}_") and d not in deps and not d.endswith("_masque")]
        derived[c] = tuple(deps)
    return counts, derived


#: Columns of ``listes_attente_departements`` that may reveal a masked count besides the
#: counts and their ``<count>_…`` columns (changes on the previous year, services with a
#: list): :func:`coverage.waiting.mask_public` decides their cells.
ALSO_SECRET: tuple[str, ...] = ("variation_delai_jours", "services_avec_liste",
                                "part_services_avec_liste")


def secret_cells(
    name: str, df: pd.DataFrame, *, settings: Settings = Settings()
) -> dict[str, pd.Series]:
    """Cells to mask in a public export of a table, per column subject to secrecy.

    For ``listes_attente_departements`` the cells are those
    :func:`coverage.waiting.mask_public` empties (counts below the threshold, what derives
    from them, and the changes that would reveal a masked previous year); for another
    table with count columns (:func:`secret_columns`), the counts below
    ``settings.secrecy_threshold`` and their derived columns.

    Returns
    -------
    dict
        Column → boolean Series (True = masked), for every column subject to secrecy
        present in ``df`` (empty when the table has none).
    """
    counts, derived = secret_columns(df, _contract_for(name, df))
    subject = [*counts, *(d for ds in derived.values() for d in ds)]
    subject += [c for c in ALSO_SECRET if c in df.columns]
    subject = list(dict.fromkeys(subject))
    if not subject:
        return {}
    none = pd.Series(False, index=df.index)
    if name == WAITING_TABLE:
        from coverage.waiting import mask_public

        masked = mask_public(df, settings)
        cells = {c: (masked[c].isna() & df[c].notna()) for c in df.columns}
    else:
        flagged = mask_small_counts(df, counts, settings.secrecy_threshold, None,
                                    derived=derived)
        cells = {c: flagged[f"{c}_masque"] for c in subject if f"{c}_masque" in flagged}
    subject += [c for c, rows in cells.items() if bool(rows.any()) and c not in subject]
    return {c: cells.get(c, none).astype(bool) for c in subject}


# --- Département tables ------------------------------------------------------------------


def run_types(run: RunOutputs, settings: Settings = Settings()) -> list[str]:
    """Service types of a run (without the combined view), in the settings' order."""
    acces = run.tables.get("acces_communes")
    found = set() if acces is None else set(acces["type_service"].dropna().astype(str))
    found.discard(NO_SERVICE)
    order = list(settings.service_types) + [t for t in SERVICE_TYPES
                                            if t not in settings.service_types]
    return [t for t in order if t in found] + sorted(found - set(order))


def departement_tables(
    run: RunOutputs, dept: str, *, settings: Settings = Settings()
) -> dict[str, pd.DataFrame]:
    """Tables of one département, by contract name, unmasked.

    Parameters
    ----------
    run
        A finished run.
    dept
        Département code; must be in the run.
    settings
        Used for the thresholds and types when the run does not record them.

    Returns
    -------
    dict
        ``couverture_departements``, ``acces_communes``, ``zones_blanches``,
        ``couverture_epci`` (EPCIs touching the département, whole-EPCI figures),
        ``couverture_densite`` (recomputed over the département's communes) and, when
        the run has it, ``listes_attente_departements``.
    """
    from coverage.whitezones import coverage_table

    dept = check_departement(run, dept)
    out: dict[str, pd.DataFrame] = {}
    for name in ("couverture_departements", "acces_communes", "zones_blanches"):
        table = run.tables.get(name)
        if table is None:
            msg = f"the run has no table {name!r}: rerun `zones-blanches run`"
            raise CoverageError(msg)
        out[name] = table[table["code_dep"].astype(str) == dept].reset_index(drop=True)

    communes = run.communes[run.communes["code_dep"].astype(str) == dept]
    acces = out["acces_communes"]
    thresholds = run_thresholds(run, settings)
    epci = run.tables.get("couverture_epci")
    if "code_epci" in communes.columns:
        no_epci = communes["code_epci"].isna() \
            | (communes["code_epci"].astype(str).str.strip() == "")
        codes = set(communes.loc[~no_epci, "code_epci"].astype(str))
        if epci is not None:
            keep = epci[epci["code_epci"].astype(str).isin(codes)]
            if no_epci.any():
                # communes outside any EPCI: their row of the run is national, so it is
                # recomputed over the département's such communes
                from coverage.whitezones import NO_EPCI_CODE

                own = coverage_table(acces, communes, thresholds, "epci")
                keep = pd.concat([keep, own[own["code_epci"] == NO_EPCI_CODE]],
                                 ignore_index=True)
            out["couverture_epci"] = keep.reset_index(drop=True)
        else:
            out["couverture_epci"] = coverage_table(acces, communes, thresholds, "epci")
    out["couverture_densite"] = coverage_table(acces, communes, thresholds, "densite")
    waiting = run.tables.get(WAITING_TABLE)
    if waiting is not None and "code_dep" in waiting.columns:
        out[WAITING_TABLE] = waiting[waiting["code_dep"].astype(str) == dept] \
            .reset_index(drop=True)
    return out


def _contract_for(name: str, df: pd.DataFrame) -> Contract:
    """The output contract of a table, or one inferred when it is not registered.

    Columns of the waiting-list contract keep their field (type, unit, title); the others
    get a type from their dtype.
    """
    if name == WAITING_TABLE:
        import coverage.waiting  # noqa: F401  (registers the contract)
    contract = OUTPUT_CONTRACTS.get(name)
    if contract is not None:
        return contract
    from coverage.io.waiting import WAITING_RETURNS

    known = {f.name: dataclasses.replace(f, required=False) for f in WAITING_RETURNS.fields}
    fields: list[Field] = []
    for col in df.columns:
        s = df[col]
        if col in known:
            fields.append(known[col])
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            t = "boolean"
        elif pd.api.types.is_integer_dtype(s.dtype):
            t = "integer"
        elif pd.api.types.is_numeric_dtype(s.dtype):
            t = "number"
        else:
            t = "string"
        fields.append(Field(str(col), t, False, "", str(col)))  # type: ignore[arg-type]
    return Contract(name, name.replace("_", " ").capitalize(), tuple(fields))


def _conform(df: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    from coverage.io.writers import conform_to_contract

    return conform_to_contract(df, contract)


# --- Commune and service layers ----------------------------------------------------------
def seuil_label(minutes: float) -> str:
    """Threshold as it appears in column and file names: ``30`` → ``"30"``, 22.5 → ``"22_5"``."""
    if float(minutes).is_integer():
        return str(int(minutes))
    return f"{minutes:g}".replace(".", "_")


def flag_column(type_service: str, minutes: float) -> str:
    """Name of the white-zone flag column: ``zb_<type>_<seuil>``."""
    return f"zb_{type_service}_{seuil_label(minutes)}"


def commune_layer(
    run: RunOutputs, dept: str, tables: Mapping[str, pd.DataFrame], *,
    settings: Settings = Settings(),
) -> gpd.GeoDataFrame:
    """Communes of a département with minutes per type and white-zone flags, EPSG:4326.

    Columns: ``code_insee, nom, code_dep, population, densite, rural`` (+ ``code_epci,
    nom_epci`` when known), ``minutes_<type>`` (minutes, NaN unreachable),
    ``service_<type>`` (nearest service id), ``minutes_aucun_service`` (minutes to the
    nearest service of any type, NaN when none is reachable), ``moteur``, one boolean
    ``zb_<type>_<seuil>`` per type (combined view ``aucun_service`` included) × threshold,
    taken from the run's ``zones_blanches`` table, ``fictif``, ``geometry``.
    """
    communes = run.communes[run.communes["code_dep"].astype(str) == dept]
    keep = [c for c in ("code_insee", "nom", "code_dep", "population", "densite", "rural",
                        "code_epci", "nom_epci") if c in communes.columns]
    layer = communes[[*keep, "geometry"]].copy()
    layer["code_insee"] = layer["code_insee"].astype(str)
    acces = tables["acces_communes"].assign(
        code_insee=lambda d: d["code_insee"].astype(str))
    types = run_types(run, settings)
    for t in types:
        sub = acces[acces["type_service"] == t].set_index("code_insee")
        layer[f"minutes_{t}"] = layer["code_insee"].map(sub["minutes"]).astype(float)
        layer[f"service_{t}"] = layer["code_insee"].map(sub["service_id"])
    if types:  # combined view: the nearest service of any type
        layer[f"minutes_{NO_SERVICE}"] = layer[[f"minutes_{t}" for t in types]].min(
            axis=1, skipna=True)
    moteurs = acces.groupby("code_insee")["moteur"].first()
    layer["moteur"] = layer["code_insee"].map(moteurs).fillna(run.engine)
    zb = tables["zones_blanches"]
    for t in [*types, NO_SERVICE]:
        for s in run_thresholds(run, settings):
            sel = zb[(zb["type_service"] == t) & np.isclose(zb["seuil_minutes"], s)]
            layer[flag_column(t, s)] = layer["code_insee"].isin(set(sel["code_insee"]
                                                                    .astype(str)))
    layer["fictif"] = bool(run.fictif)
    gdf = gpd.GeoDataFrame(layer, geometry="geometry", crs=run.communes.crs)
    if gdf.crs is None:
        gdf = gdf.set_crs(CRS_INPUT_OUTPUT)
    return gdf.to_crs(CRS_INPUT_OUTPUT).reset_index(drop=True)


def service_layer(
    run: RunOutputs, dept: str, tables: Mapping[str, pd.DataFrame]
) -> gpd.GeoDataFrame:
    """Services in the département plus, outside it, those nearest to one of its communes.

    A boolean column ``dans_departement`` tells them apart (families may use a service of
    the next département). EPSG:4326.
    """
    services = run.services
    used = set(tables["acces_communes"]["service_id"].dropna().astype(str))
    ids = services["service_id"].astype(str)
    in_dept = (services["code_dep"].astype(str) == dept) if "code_dep" in services.columns \
        else pd.Series(False, index=services.index)
    sel = services[in_dept | ids.isin(used)].copy()
    sel["dans_departement"] = in_dept[sel.index].to_numpy(dtype=bool)
    gdf = gpd.GeoDataFrame(sel, geometry="geometry", crs=services.crs)
    if gdf.crs is None:
        gdf = gdf.set_crs(CRS_INPUT_OUTPUT)
    return gdf.to_crs(CRS_INPUT_OUTPUT).reset_index(drop=True)


# --- Sources -----------------------------------------------------------------------------
def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)


# --- CSV ---------------------------------------------------------------------------------
def _masked_schema(contract: Contract, masked: Sequence[str], marker: str,
                   threshold: int) -> dict[str, Any]:
    schema = table_schema(contract)
    if masked:
        schema["missingValues"] = ["", marker, SECRET_MARKER]
        for f in schema["fields"]:
            if f["name"] in masked:
                f["description"] = (
                    f"{f.get('description', '')} Secret statistique : « {marker} » pour un "
                    f"effectif inférieur à {threshold}, « {SECRET_MARKER} » pour une valeur "
                    "qui en dérive (dans le Parquet : valeur nulle et colonne "
                    f"{f['name']}_masque = vrai)."
                ).strip()
    return schema


def _decimal_comma(value: Any) -> Any:
    if isinstance(value, float | np.floating) and not isinstance(value, bool):
        return repr(float(value)).replace(".", ",")
    return value


def _write_csv(df: pd.DataFrame, path: Path, *, french: bool) -> Path:
    if french:
        # text columns holding numbers (a masked column mixes "< 5" and floats) get the
        # decimal comma too; float columns get it from to_csv(decimal=",")
        df = df.copy()
        for col in df.columns:
            if df[col].dtype == object:
                df[col] = pd.Series([_decimal_comma(v) for v in df[col].tolist()],
                                    index=df.index, dtype=object)
    with atomic_path(path) as tmp:
        if french:
            df.to_csv(tmp, index=False, sep=";", decimal=",", encoding="utf-8-sig",
                      lineterminator="\r\n")
        else:
            df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    return path


# --- XLSX --------------------------------------------------------------------------------
_HEADER_FILL = "1F4E79"
_CODE_FILL = "DDEBF7"


def _number_format(field: Field | None) -> str | None:
    if field is None:
        return None
    unit = field.unit.lower()
    if field.type == "integer":
        return "#,##0"
    if field.type == "number":
        if unit.startswith("ratio"):
            return "0.0%"
        if unit == "jours":
            return "0"
        return "0.0"
    return None


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if math.isinf(value):  # e.g. a percentile of a mostly unreachable population
            return "inaccessible" if value > 0 else None
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _write_sheet(ws: Any, df: pd.DataFrame, contract: Contract, *,
                 freeze_cols: int = 0, banner: str | None = None) -> None:
    """One table on a sheet: [banner row], title row with units, code row, data rows."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor=_HEADER_FILL)
    code_font = Font(italic=True, color="404040", size=9)
    code_fill = PatternFill("solid", fgColor=_CODE_FILL)
    fields = {f.name: f for f in contract.fields}
    columns = list(df.columns)
    head = 1
    if banner:
        ws.cell(row=1, column=1, value=banner).font = Font(bold=True, color="C00000")
        head = 2
    codes, first = head + 1, head + 2
    for j, col in enumerate(columns, start=1):
        f = fields.get(col)
        title = (f.title or col) if f else col
        if f and f.unit and f"({f.unit})" not in title:
            title = f"{title} ({f.unit})"
        c = ws.cell(row=head, column=j, value=title)
        c.font, c.fill = bold, fill
        c.alignment = Alignment(wrap_text=True, vertical="center")
        c2 = ws.cell(row=codes, column=j, value=col)
        c2.font, c2.fill = code_font, code_fill
    for i, row in enumerate(df.itertuples(index=False, name=None), start=first):
        for j, value in enumerate(row, start=1):
            ws.cell(row=i, column=j, value=_cell(value))
    last = first + len(df) - 1
    for j, col in enumerate(columns, start=1):
        letter = get_column_letter(j)
        fmt = _number_format(fields.get(col))
        if fmt and len(df):
            for (cell,) in ws.iter_rows(min_row=first, max_row=last, min_col=j, max_col=j):
                if isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                    cell.number_format = fmt
        sample = [str(v) for v in df[col].head(200) if v is not None]
        longest = max([len(col), min(len(str(ws.cell(row=head, column=j).value)), 28),
                       *(len(v) for v in sample)])
        ws.column_dimensions[letter].width = max(8, min(50, longest + 2))
    ws.row_dimensions[head].height = 32
    ws.freeze_panes = ws.cell(row=first, column=freeze_cols + 1).coordinate
    if len(df):
        ws.auto_filter.ref = f"A{codes}:{get_column_letter(len(columns))}{last}"


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, Mapping):
        rows: list[tuple[str, str]] = []
        for k, v in obj.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return rows
    if isinstance(obj, list | tuple) and any(isinstance(v, Mapping) for v in obj):
        rows = []
        for i, v in enumerate(obj):
            rows += _flatten(v, f"{prefix}[{i}]")
        return rows
    text = json.dumps(obj, ensure_ascii=False) if not isinstance(obj, str) else obj
    return [(prefix, text[:500])]


def method_rows(run: RunOutputs, dept: str, *, public: bool,
                settings: Settings = Settings()) -> list[tuple[str, str]]:
    """Rows (rubrique, valeur) of the « Sources et méthode » sheet."""
    thresholds = run_thresholds(run, settings)
    engine = run.engine or "?"
    threshold = settings.secrecy_threshold
    rows: list[tuple[str, str]] = [
        ("Titre", f"Zones blanches des services de médiation familiale et des espaces de "
                  f"rencontre — département {dept}"),
    ]
    if run.fictif:
        label = run.manifest.get("fictional_label") or ""
        rows.append(("TERRITOIRE FICTIF", f"{FICTIONAL_TITLE} : ce territoire, ses communes, "
                     f"ses routes et ses services n'existent pas. {label}".strip()))
    rows += [
        ("Date de l'export", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("Date du calcul", str(run.manifest.get("created_utc")
                               or run.manifest.get("created") or "inconnue")),
        ("Moteur de temps d'accès", ENGINE_LABELS.get(engine, engine)),
    ]
    params = run.manifest.get("engine", {})
    if isinstance(params, Mapping):
        params = params.get("parameters", params)
        for k, v in _flatten({k: v for k, v in params.items() if k not in ("name", "moteur")}):
            rows.append((f"Paramètre du moteur : {k}", v))
    rows += [
        ("Seuils (minutes)", ", ".join(seuil_label(t) for t in thresholds)),
        ("Types de service", ", ".join(f"{t} ({TYPE_LABELS.get(t, t)})"
                                       for t in run_types(run, settings))),
        ("Zone blanche", "Commune dont le service le plus proche du type est au-delà du seuil "
                         "ou inaccessible (temps vide). Vue combinée « aucun_service » : "
                         "aucun des types de service à moins du seuil."),
        ("Temps d'accès", "Minutes en voiture depuis le point représentatif de la commune "
                          "jusqu'au service le plus proche, y compris hors du département ; "
                          "cellule vide : aucun service accessible. Médiane ou 90e centile "
                          "« inaccessible » : plus de la moitié (resp. 10 %) de la "
                          "population n'a aucun service accessible."),
        ("Feuille Département", "Couverture du département par type et seuil "
                                "(population couverte, taux, zones blanches, médiane et 90e "
                                "centile des minutes pondérés par la population)."),
        ("Feuille Communes", "Temps d'accès par commune et type de service."),
        ("Feuille Zones blanches", "Une ligne par commune en zone blanche × type × seuil."),
        ("Feuille EPCI", "EPCI ayant au moins une commune dans le département ; chiffres sur "
                         "l'ensemble des communes de l'EPCI présentes dans le calcul."),
        ("Feuille Densité", "Couverture par niveau de la grille communale de densité INSEE, "
                            "recalculée sur les seules communes du département."),
    ]
    if public:
        rows.append(("Secret statistique",
                     f"Export public : dans les listes d'attente, les effectifs (familles, "
                     f"mesures, demandes, entretiens, médiations) inférieurs à {threshold}, "
                     f"zéro compris, sont remplacés par « {secrecy_marker(threshold)} » et "
                     f"les valeurs qui en dérivent sur la même ligne (taux pour 100 000 "
                     f"habitants, délai moyen, variations, services avec liste d'attente) "
                     f"par « {SECRET_MARKER} » ; une variation est aussi masquée quand "
                     f"l'effectif de l'année précédente l'est. Dans le Parquet : valeur "
                     f"nulle et colonne <colonne>_masque = vrai. Pas de secret secondaire : "
                     f"un total publié ailleurs peut permettre de retrouver une valeur "
                     f"masquée. Les populations et nombres de communes, publics, ne sont "
                     f"pas masqués."))
    else:
        rows.append(("Secret statistique",
                     "EXPORT INTERNE : aucune valeur masquée ; ne pas diffuser (effectifs "
                     f"inférieurs à {threshold} familles visibles)."))
    for name, licence in sources(run):
        rows.append(("Source", f"{name} — licence : {licence}"))
    rows.append(("Contrat de sortie", f"version {OUTPUT_CONTRACT_VERSION} (schémas Table "
                                      "Schema JSON à côté des CSV)"))
    for k, v in _flatten({k: v for k, v in run.manifest.items()
                          if k not in ("engine", "tables")}):
        rows.append((f"Manifeste : {k}", v))
    return rows


def write_xlsx(path: Path, tables: Mapping[str, pd.DataFrame],
               contracts: Mapping[str, Contract], method: Sequence[tuple[str, str]], *,
               banner: str | None = None) -> Path:
    """Write the XLSX workbook: one sheet per table of :data:`SHEETS` present, then the
    « Sources et méthode » sheet.

    Parameters
    ----------
    path
        Target ``.xlsx``.
    tables
        Tables by contract name, already masked when the export is public.
    contracts
        Their contracts (titles and units of the headers, number formats).
    method
        Rows of the method sheet (:func:`method_rows`).
    banner
        A line put above the headers of every table sheet (the FICTIONAL label of the
        demo); the headers then start on row 2.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = Workbook()
    default = wb.active
    if default is not None:
        wb.remove(default)
    for name, sheet in SHEETS:
        if name not in tables:
            continue
        ws = wb.create_sheet(sheet)
        freeze = 2 if name in ("acces_communes", "zones_blanches") else 0
        _write_sheet(ws, tables[name], contracts[name], freeze_cols=freeze, banner=banner)
    ws = wb.create_sheet(METHOD_SHEET)
    head = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor=_HEADER_FILL)
    for j, text in enumerate(("Rubrique", "Valeur"), start=1):
        c = ws.cell(row=1, column=j, value=text)
        c.font, c.fill = head, fill
    for i, (k, v) in enumerate(method, start=2):
        ws.cell(row=i, column=1, value=k).font = Font(bold=True)
        ws.cell(row=i, column=2, value=v).alignment = Alignment(wrap_text=True,
                                                                 vertical="top")
        if k == "TERRITOIRE FICTIF":
            ws.cell(row=i, column=1).font = Font(bold=True, color="C00000")
            ws.cell(row=i, column=2).font = Font(bold=True, color="C00000")
    ws.column_dimensions["A"].width = 42
    ws.column_dimensions["B"].width = 110
    ws.freeze_panes = "A2"
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return path


# --- PNG map -----------------------------------------------------------------------------
def _geometry_paths(geoms: Iterable[Any]) -> list[Any]:
    """One matplotlib Path per (multi)polygon, holes included (even-odd rings)."""
    from matplotlib.path import Path as MplPath

    paths = []
    for geom in geoms:
        verts: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        parts = [] if geom is None or geom.is_empty else getattr(geom, "geoms", [geom])
        for poly in parts:
            if poly.geom_type != "Polygon":
                continue
            for ring in (poly.exterior, *poly.interiors):
                xy = np.asarray(ring.coords)[:, :2]
                if len(xy) < 3:
                    continue
                c = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
                c[0], c[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
                verts.append(xy)
                codes.append(c)
        if verts:
            paths.append(MplPath(np.concatenate(verts), np.concatenate(codes)))
        else:
            paths.append(MplPath(np.zeros((1, 2)), [MplPath.MOVETO]))
    return paths


def _nice_length_m(span_m: float) -> float:
    target = span_m / 5
    if target <= 0 or not math.isfinite(target):
        return 1000.0
    exp = 10 ** math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * exp <= target:
            return float(m * exp)
    return float(exp)


def render_png_map(
    communes: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    path: Path,
    *,
    dept: str,
    thresholds: Sequence[float],
    seuil: float,
    type_service: str = NO_SERVICE,
    engine: str,
    fictif: bool,
    source: str,
    dpi: int = 150,
) -> Path:
    """Draw a static map of a département's white zones and services to a PNG.

    Communes are coloured by class of minutes to the nearest service of ``type_service``
    (for the combined view ``aucun_service``: to the nearest service of any type), white
    zones at ``seuil`` are hatched in red, services are markers by type. The map is drawn
    in the département's metric CRS (:func:`coverage.settings.metric_crs_for`) with a
    scale bar in km, a north arrow, a title (« TERRITOIRE FICTIF (démonstration) » for the
    demo) and a source line naming the engine.

    Parameters
    ----------
    communes
        :func:`commune_layer` output (``minutes_<type>`` and ``zb_<type>_<seuil>`` columns).
    services
        :func:`service_layer` output.
    path
        Target ``.png``.
    dept
        Département code (title, metric CRS).
    thresholds
        Thresholds of the run, minutes (classes of the legend).
    seuil
        Threshold of the white zones drawn, minutes.
    type_service
        A service type or ``aucun_service``.
    engine
        ``road`` or ``proxy``, named under the map.
    fictif
        Whether the territory is the fictional demo.
    source
        Source line (:func:`source_line`).
    dpi
        Resolution, dots per inch.
    """
    from matplotlib import colormaps
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    flag = flag_column(type_service, seuil)
    if flag not in communes.columns:
        msg = (f"no white-zone flag {flag} in the communes layer: the run has no type "
               f"{type_service!r} or no threshold {seuil_label(seuil)} min")
        raise CoverageError(msg)
    crs = metric_crs_for(dept)
    com = communes.to_crs(crs)
    xmin, ymin, xmax, ymax = com.total_bounds
    # drawing detail: ~1/3000 of the map's extent (≈ 30 m for a 100 km département)
    tolerance = max(xmax - xmin, ymax - ymin) / 3000
    shapes = com.geometry.simplify(tolerance, preserve_topology=True)
    column = f"minutes_{type_service}"
    if column in com.columns:
        minutes = com[column].astype(float)
    else:  # combined view of a layer without its column: the nearest of any type
        cols = [c for c in com.columns if c.startswith("minutes_")]
        minutes = com[cols].min(axis=1, skipna=True) if cols else pd.Series(np.nan,
                                                                              index=com.index)
    bounds = sorted(float(t) for t in thresholds)
    labels = [f"≤ {seuil_label(bounds[0])} min"]
    labels += [f"{seuil_label(a)}–{seuil_label(b)} min" for a, b in itertools.pairwise(bounds)]
    labels.append(f"> {seuil_label(bounds[-1])} min")
    cmap = colormaps["RdYlGn_r"]
    colours = [cmap(0.08 + 0.84 * i / max(len(labels) - 1, 1)) for i in range(len(labels))]
    cls = np.searchsorted(np.asarray(bounds), minutes.to_numpy(dtype=float), side="left")
    facecolor = [colours[min(int(c), len(colours) - 1)] for c in cls]
    unreachable = minutes.isna().to_numpy()
    grey = (0.55, 0.55, 0.55, 1.0)
    facecolor = [grey if u else fc for fc, u in zip(facecolor, unreachable, strict=True)]

    # pyplot-free Figure: thread-safe (the app renders maps from several sessions)
    fig = Figure(figsize=(8.27, 10.0), dpi=dpi)
    ax = fig.subplots()
    paths = _geometry_paths(shapes)
    ax.add_collection(PathCollection(paths, facecolors=facecolor, edgecolors="white",
                                     linewidths=0.3))
    is_white = com[flag].astype(bool).to_numpy()
    if is_white.any():
        ax.add_collection(PathCollection([p for p, w in zip(paths, is_white, strict=True) if w],
                                         facecolors="none", edgecolors="#3B0000",
                                         linewidths=0.9, hatch="////"))
    # outline of the département: close the slivers between neighbouring polygons
    outline = com.geometry.buffer(tolerance).union_all().buffer(-tolerance) \
        .simplify(tolerance)
    ax.add_collection(PathCollection(_geometry_paths([outline]), facecolors="none",
                                     edgecolors="black", linewidths=1.0))

    markers = {"mediation_familiale": ("o", "#E66101"), "espace_rencontre": ("s", "#5E3C99")}
    handles: list[Any] = [Patch(facecolor=c, edgecolor="white", label=lab)
                          for c, lab in zip(colours, labels, strict=True)]
    if unreachable.any():
        handles.append(Patch(facecolor=grey, label="inaccessible"))
    handles.append(Patch(facecolor="none", edgecolor="#3B0000", hatch="////",
                         label=f"zone blanche (> {seuil_label(seuil)} min ou inaccessible)"))
    if len(services):
        svc = services.to_crs(crs)
        types = list(dict.fromkeys(svc["type_service"].astype(str)))
        fallback = iter(["^", "D", "v", "P"])
        for t in types:
            m, c = markers.get(t, (next(fallback, "x"), "black"))
            sel = svc[svc["type_service"].astype(str) == t]
            ax.scatter(sel.geometry.x, sel.geometry.y, marker=m, s=46, c=c,
                       edgecolors="white", linewidths=0.8, zorder=5)
            handles.append(Line2D([], [], marker=m, linestyle="", color=c,
                                  markeredgecolor="white", markersize=8,
                                  label=f"service : {TYPE_LABELS.get(t, t)}"))
    pad = 0.04 * max(xmax - xmin, ymax - ymin)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()

    # scale bar (metres of the metric CRS) and north arrow
    length = _nice_length_m(xmax - xmin)
    x0, y0 = xmin, ymin - pad * 0.6
    h = pad * 0.18
    ax.add_patch(Rectangle((x0, y0), length / 2, h, facecolor="black", edgecolor="black"))
    ax.add_patch(Rectangle((x0 + length / 2, y0), length / 2, h, facecolor="white",
                           edgecolor="black"))
    ax.text(x0 + length / 2, y0 - h * 0.8, f"{length / 1000:g} km", ha="center",
            va="top", fontsize=8)
    ax.annotate("N", xy=(0.97, 0.12), xytext=(0.97, 0.03), xycoords="axes fraction",
                ha="center", va="center", fontsize=11, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})

    what = TYPE_LABELS.get(type_service, type_service)
    title = (f"Zones blanches à {seuil_label(seuil)} min — {what}\n"
             f"Département {dept} · temps d'accès moteur {engine}")
    if fictif:
        title = f"{FICTIONAL_TITLE}\n{title}"
    ax.set_title(title, fontsize=11, color="#C00000" if fictif else "black")
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.035), ncol=2,
               fontsize=8, frameon=False,
               title="Minutes jusqu'au service le plus proche "
                     f"({'tous types' if type_service == NO_SERVICE else what})",
               title_fontsize=8)
    fig.text(0.01, 0.008, textwrap.fill(f"{source} Projection {crs}.", 170), fontsize=6.5,
             ha="left", va="bottom")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


# --- The export --------------------------------------------------------------------------
README_NAME = "LISEZMOI.txt"

_FILE_KINDS: tuple[tuple[str, str], ...] = (
    ("tables/*.csv", "table CSV (UTF-8, séparateur « , », point décimal, cellule vide = "
                     "valeur absente)"),
    ("tables/*.schema.json", "schéma Table Schema (Frictionless) de la table CSV : types, "
                             "unités, titres"),
    ("tables/*.parquet", "table Parquet (secret statistique : valeur nulle + colonne "
                         "<colonne>_masque)"),
    ("csv_fr/*.csv", "table CSV pour Excel français (« ; », virgule décimale, UTF-8 avec "
                     "BOM)"),
    ("*_zones_blanches.xlsx", "classeur : une feuille par niveau et la feuille « Sources "
                              "et méthode »"),
    ("*_zones_blanches.gpkg", "GeoPackage EPSG:4326, couches communes (minutes par type, "
                              "drapeaux zb_<type>_<seuil>) et services"),
    ("*_communes.parquet", "GeoParquet EPSG:4326 des communes (mêmes colonnes que la couche "
                           "communes du GeoPackage)"),
    ("*_services.parquet", "GeoParquet EPSG:4326 des services (dans_departement : faux pour "
                           "un service voisin le plus proche d'une commune)"),
    ("*_carte_*.png", "carte des zones blanches pour un rapport"),
    ("listes_attente/*.png", "graphiques des listes d'attente"),
)


def readme_text(run: RunOutputs, dept: str, files: Sequence[Path],
                titles: Mapping[str, str], *, public: bool,
                settings: Settings = Settings()) -> str:
    """Text of ``LISEZMOI.txt``: what each exported file is, then the method and sources.

    Parameters
    ----------
    run, dept
        The run and the département exported.
    files
        Exported files, relative to the export folder.
    titles
        French title of each table, by contract name.
    public
        Whether small counts are masked.
    settings
        ``secrecy_threshold``.
    """
    lines = [f"Zones blanches — export du département {dept}", ""]
    if run.fictif:
        lines += [f"*** {FICTIONAL_TITLE} : territoire, communes, routes, services et listes "
                  "d'attente inventés ; aucune donnée réelle. ***", ""]
    lines += ["Export public (secret statistique appliqué)." if public else
              "EXPORT INTERNE : aucune valeur masquée, ne pas diffuser.", "", "Fichiers :"]
    for rel in files:
        kind = next((text for pattern, text in _FILE_KINDS if rel.match(pattern)), "")
        title = titles.get(rel.name.split(".")[0], "")
        desc = " — ".join(t for t in (title, kind) if t)
        lines.append(f"  {rel.as_posix()}" + (f" : {desc}" if desc else ""))
    lines += ["", "Méthode et sources :"]
    for key, value in method_rows(run, dept, public=public, settings=settings):
        if not key.startswith("Manifeste"):
            lines.append(f"  {key} : {value}")
    return "\n".join(lines) + "\n"


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise export formats (``"csv,xlsx"`` or a list; ``all`` = every format).

    Raises
    ------
    CoverageError
        An unknown format; the message lists the known ones.
    """
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        f = str(item).strip().lower().replace("-", "_")
        if not f:
            continue
        if f == "all":
            out.extend(EXPORT_FORMATS)
            continue
        if f not in EXPORT_FORMATS:
            msg = (f"unknown export format {item!r}; expected a comma-separated list of "
                   f"{', '.join(EXPORT_FORMATS)} (or all)")
            raise CoverageError(msg)
        out.append(f)
    if not out:
        msg = f"no export format given; expected some of {', '.join(EXPORT_FORMATS)}"
        raise CoverageError(msg)
    return tuple(dict.fromkeys(out))


def _table_contract(name: str, df: pd.DataFrame, dept: str) -> Contract:
    contract = _contract_for(name, df)
    if name == "couverture_densite":
        contract = dataclasses.replace(
            contract, title=f"{contract.title} — communes du département {dept}")
    elif name == "couverture_epci":
        contract = dataclasses.replace(
            contract, title=f"{contract.title} — EPCI ayant une commune dans le "
                            f"département {dept}")
    return contract


def export_departement(
    run: RunOutputs,
    dept: str,
    *,
    formats: Iterable[str] = EXPORT_FORMATS,
    out_dir: Path,
    public: bool = True,
    settings: Settings = Settings(),
    map_type: str = NO_SERVICE,
    map_threshold: float | None = None,
) -> list[Path]:
    """Export one département of a run (tables, workbook, layers, map).

    Parameters
    ----------
    run
        A finished run (:meth:`coverage.results.RunOutputs.load`).
    dept
        Département code, e.g. ``"15"`` or ``"ZA"`` (fictional demo).
    formats
        Some of :data:`EXPORT_FORMATS`: ``csv``, ``csv_fr``, ``xlsx``, ``gpkg``,
        ``parquet``, ``png``, ``png_attente`` (see the module docstring for the files of
        each).
    out_dir
        Export folder (created). Files already there with other names are left alone.
    public
        Mask small waiting-list counts (statistical secrecy, see the module docstring).
        ``False`` for an internal export.
    settings
        ``secrecy_threshold`` (families) and fallbacks for thresholds and types.
    map_type
        Service type of the PNG map, default the combined view ``aucun_service``.
    map_threshold
        Threshold of the PNG map, minutes; default 30 when the run has it, else the
        middle threshold.

    Returns
    -------
    list of pathlib.Path
        The files written, in ``out_dir``.

    Raises
    ------
    CoverageError
        Unknown département (the message lists those of the run) or format, or a map
        type/threshold the run does not have. Nothing is written then.
    """
    fmts = parse_formats(formats)
    dept = check_departement(run, dept)
    thresholds = run_thresholds(run, settings)
    if map_threshold is None:
        map_threshold = 30.0 if any(np.isclose(thresholds, 30.0)) \
            else thresholds[len(thresholds) // 2]
    if {"png", "png_attente"} & set(fmts) and (not any(np.isclose(thresholds, map_threshold))
                          or map_type not in [*run_types(run, settings), NO_SERVICE]):
        msg = (f"no map for type {map_type!r} at {seuil_label(map_threshold)} min: the run "
               f"has types {', '.join([*run_types(run, settings), NO_SERVICE])} and "
               f"thresholds {', '.join(seuil_label(t) for t in thresholds)}")
        raise CoverageError(msg)

    tables = departement_tables(run, dept, settings=settings)
    contracts = {name: _table_contract(name, df, dept) for name, df in tables.items()}
    typed = {name: _conform(df, contracts[name]) for name, df in tables.items()}
    threshold = settings.secrecy_threshold
    marker = secrecy_marker(threshold)
    secret: dict[str, dict[str, pd.Series]] = {}
    if public:
        for name, df in typed.items():
            cells = secret_cells(name, df, settings=settings)
            if cells:
                secret[name] = cells

    def masked(name: str, text: bool) -> pd.DataFrame:
        if name not in secret:
            return typed[name]
        counts = secret_columns(typed[name], contracts[name])[0]
        return mask_cells(typed[name], secret[name], marker if text else None,
                          counts=counts, derived_marker=SECRET_MARKER)

    def text_masked(name: str) -> pd.DataFrame:
        return masked(name, True)

    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".export-{dept}-", dir=out_dir.parent))
    except OSError as exc:
        msg = f"cannot write the export of département {dept} to {out_dir}: {exc}"
        raise OutputError(msg) from exc
    written: list[Path] = []  # relative to staging
    try:
        if "csv" in fmts:
            for name in typed:
                rel = Path("tables") / f"{name}.csv"
                _write_csv(text_masked(name), staging / rel, french=False)
                schema = _masked_schema(contracts[name], list(secret.get(name, {})), marker,
                                        threshold)
                srel = Path("tables") / f"{name}.schema.json"
                write_text_atomic(staging / srel,
                                  json.dumps(schema, ensure_ascii=False, indent=2) + "\n")
                written += [rel, srel]
        if "csv_fr" in fmts:
            for name in typed:
                rel = Path("csv_fr") / f"{name}.csv"
                _write_csv(text_masked(name), staging / rel, french=True)
                written.append(rel)
        if "parquet" in fmts:
            for name in typed:
                rel = Path("tables") / f"{name}.parquet"
                with atomic_path(staging / rel) as tmp:
                    masked(name, False).to_parquet(tmp, index=False)
                written.append(rel)
        if "xlsx" in fmts:
            rel = Path(f"{dept}_zones_blanches.xlsx")
            banner = (f"{FICTIONAL_TITLE} — données inventées, aucune commune réelle"
                      if run.fictif else None)
            write_xlsx(staging / rel, {n: text_masked(n) for n in typed}, contracts,
                       method_rows(run, dept, public=public, settings=settings),
                       banner=banner)
            written.append(rel)
        if {"gpkg", "parquet", "png"} & set(fmts):
            communes = commune_layer(run, dept, tables, settings=settings)
            services = service_layer(run, dept, tables)
            if "gpkg" in fmts:
                rel = Path(f"{dept}_zones_blanches.gpkg")
                with atomic_path(staging / rel) as tmp:
                    communes.to_file(tmp, layer="communes", driver="GPKG")
                    services.to_file(tmp, layer="services", driver="GPKG", mode="a")
                written.append(rel)
            if "parquet" in fmts:
                from coverage.io.writers import write_geoparquet

                for rel, layer in ((Path(f"{dept}_communes.parquet"), communes),
                                   (Path(f"{dept}_services.parquet"), services)):
                    write_geoparquet(layer, staging / rel)
                    written.append(rel)
            if "png" in fmts:
                rel = Path(f"{dept}_carte_{map_type}_{seuil_label(map_threshold)}min.png")
                render_png_map(communes, services, staging / rel, dept=dept,
                               thresholds=thresholds, seuil=map_threshold,
                               type_service=map_type, engine=run.engine,
                               fictif=run.fictif, source=source_line(run))
                written.append(rel)
        if "png_attente" in fmts and WAITING_TABLE in run.tables:
            from coverage.waiting import waiting_charts_png

            charts = waiting_charts_png(
                run.tables[WAITING_TABLE], staging / "listes_attente", code_dep=dept,
                couverture=run.tables.get("couverture_departements"), seuil=map_threshold,
                public=public, settings=settings)
            written += [p.relative_to(staging) for p in charts]
        readme = Path(README_NAME)
        write_text_atomic(staging / readme, readme_text(
            run, dept, written, {n: contracts[n].title for n in typed}, public=public,
            settings=settings))
        written.append(readme)
        final: list[Path] = []
        for rel in written:
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
            final.append(target)
    except OSError as exc:
        msg = f"cannot write the export of département {dept} to {out_dir}: {exc}"
        raise OutputError(msg) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported département %s: %d files in %s", dept, len(final), out_dir)
    return final


def export_from_cli(args: argparse.Namespace) -> int:
    """``zones-blanches export``: export a département of a run; prints the files written.

    Parameters
    ----------
    args
        ``dept``, ``run`` (default ``sorties/demo``), ``formats``, ``out`` (default
        ``<run>/exports/<dept>``), ``internal``.

    Returns
    -------
    int
        0 on success (errors are raised as :class:`CoverageError` for the CLI to print).
    """
    from coverage.results import load_finished_run

    formats = parse_formats(getattr(args, "formats", None) or EXPORT_FORMATS)
    run = load_finished_run(getattr(args, "run", None))
    run_dir = run.run_dir
    dept = check_departement(run, args.dept)
    out = Path(args.out) if getattr(args, "out", None) else run_dir / "exports" / dept
    internal = bool(getattr(args, "internal", False))
    files = export_departement(run, dept, formats=formats, out_dir=out, public=not internal)
    if run.fictif:
        print(f"{FICTIONAL_TITLE}: the demo territory is not a real place.")
    kind = "INTERNAL export (no statistical secrecy: do not publish)" if internal \
        else "public export (small waiting-list counts masked)"
    print(f"Département {dept}, {kind}, engine {run.engine}: {len(files)} files in {out}")
    for f in files:
        print(f"  {f}")
    return 0
