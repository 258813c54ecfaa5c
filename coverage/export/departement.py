"""The export of one département: formats, staging folder, method text and ``LISEZMOI.txt``.

:func:`export_departement` cuts the département's tables from a run
(:mod:`coverage.export.tables`), masks them in a public export (:mod:`coverage.secrecy`),
writes every format asked for into a temporary folder beside ``out_dir`` (CSV and Table
Schema, French CSV, Parquet, XLSX, GeoPackage, GeoParquet, PNG map, waiting-list charts)
and moves the files into place only when all of them are written: a failure leaves no
partial output. :func:`method_rows` is the « Sources et méthode » text of the workbook and
of ``LISEZMOI.txt``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coverage.batch.outdir import check_export_out
from coverage.errors import CoverageError, OutputError, os_error_cause
from coverage.export.csv_files import masked_schema, write_csv
from coverage.export.figures import MapOptions, render_png_map, waiting_charts_png
from coverage.export.provenance import record_export, remove_stale, run_digest
from coverage.export.tables import (
    WAITING_TABLE,
    AccessibilityExport,
    accessibility_tables,
    commune_layer,
    departement_tables,
    principal_threshold,
    run_types,
    secret_cells,
    service_layer,
    seuil_label,
    table_contract,
)
from coverage.export.xlsx import FICTIONAL_RUBRIQUE, write_xlsx
from coverage.files import atomic_path, write_text_atomic
from coverage.io.writers import conform_to_contract, write_geoparquet
from coverage.labels import FICTIONAL_TITLE, engine_label, type_label
from coverage.results import (
    RunOutputs,
    check_departement,
    run_thresholds,
    source_line,
    sources,
)
from coverage.schemas import OUTPUT_CONTRACT_VERSION, Contract
from coverage.secrecy import SECRET_MARKER, mask_cells, secrecy_marker, secret_columns
from coverage.settings import NO_SERVICE, Settings

__all__ = [
    "DEFAULT_EXPORT_FORMATS",
    "EXPORT_FORMATS",
    "README_NAME",
    "export_departement",
    "method_rows",
    "parse_formats",
    "readme_text",
]

log = logging.getLogger(__name__)

#: Every format :func:`export_departement` writes.
EXPORT_FORMATS: tuple[str, ...] = ("csv", "csv_fr", "xlsx", "gpkg", "parquet", "png",
                                   "png_attente")
#: Formats of ``zones-blanches export`` without ``--formats`` (the README says the same):
#: CSV, CSV for French Excel, XLSX, GeoPackage and the PNG map.
DEFAULT_EXPORT_FORMATS: tuple[str, ...] = ("csv", "csv_fr", "xlsx", "gpkg", "png")
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

_SHEET_ROWS: tuple[tuple[str, str], ...] = (
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
    ("Feuille EPCI", "EPCI ayant au moins une commune dans le département : chaque ligne "
                     "porte sur les communes du département de l'EPCI ; les colonnes « EPCI "
                     "entier » donnent l'EPCI sur toutes ses communes du calcul, et « Ligne "
                     "partielle » signale un EPCI qui s'étend sur d'autres départements "
                     "(listés)."),
    ("Couverture partielle", "Dans les tables du calcul par région, EPCI et cour d'appel, "
                             "couverture_partielle = vrai quand des départements de l'unité "
                             "manquent au calcul (departements_manquants) : ses chiffres ne "
                             "portent que sur ses communes du calcul."),
    ("Feuille Densité", "Couverture par niveau de la grille communale de densité INSEE, "
                        "recalculée sur les seules communes du département."),
    ("Feuilles Accessibilité", "Indice d'accessibilité (E2SFCA) par commune, par EPCI "
                               "(communes du département) et pour le département : capacité "
                               "des services à portée (ETP ou places) pour 100 000 "
                               "habitants, une fois partagée entre toutes les communes qui "
                               "l'atteignent, y compris hors du département."),
)
#: Formats that hold the tables (and so the accessibility index).
_TABLE_FORMATS: tuple[str, ...] = ("csv", "csv_fr", "parquet", "xlsx")


# --- Method and LISEZMOI -----------------------------------------------------------------
def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Return (dotted key, text) pairs of a nested manifest, values cut at 500 characters."""
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


def _secrecy_row(public: bool, threshold: int) -> tuple[str, str]:
    """Return the « Secret statistique » row: the rule applied, or the internal warning."""
    if not public:
        return ("Secret statistique",
                "EXPORT INTERNE : aucune valeur masquée ; ne pas diffuser (effectifs "
                f"inférieurs à {threshold} familles visibles).")
    return ("Secret statistique",
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
            f"pas masqués.")


def method_rows(run: RunOutputs, dept: str, *, public: bool,
                settings: Settings = Settings(),
                accessibility: AccessibilityExport | None = None) -> list[tuple[str, str]]:
    """Return the rows (rubrique, valeur) of the « Sources et méthode » sheet.

    Parameters
    ----------
    run
        The run exported (engine and its parameters, thresholds, dates, sources, manifest).
    dept
        Département code.
    public
        Whether small counts are masked (the secrecy row says which rule applies).
    settings
        ``secrecy_threshold`` (families) and fallback thresholds and types.
    accessibility
        The export's accessibility index (:func:`coverage.export.tables.accessibility_tables`):
        its method row and notes; None when the export has none.

    Returns
    -------
    list of tuple
        French rubriques and their text, the FICTIONAL warning second for the demo.
    """
    thresholds = run_thresholds(run, settings)
    engine = run.engine or "?"
    rows: list[tuple[str, str]] = [
        ("Titre", f"Zones blanches des services de médiation familiale et des espaces de "
                  f"rencontre — département {dept}"),
    ]
    if run.fictif:
        label = run.manifest.get("fictional_label") or ""
        rows.append((FICTIONAL_RUBRIQUE, f"{FICTIONAL_TITLE} : ce territoire, ses communes, "
                     f"ses routes et ses services n'existent pas. {label}".strip()))
    rows += [
        ("Date de l'export", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("Date du calcul", str(run.manifest.get("created_utc")
                               or run.manifest.get("created") or "inconnue")),
        ("Moteur de temps d'accès", engine_label(engine)),
        ("Empreinte du calcul", f"{run_digest(run)} (SHA-256 du manifeste du calcul ; un "
                                "export d'une autre empreinte est périmé)"),
    ]
    # empty offers of the whole list, or of this département (manifest « avertissements »)
    rows += [("Avertissement", str(w)) for w in run.manifest.get("avertissements") or []
             if "département" not in str(w) or f"département {dept} :" in str(w)]
    params = run.manifest.get("engine", {})
    if isinstance(params, Mapping):
        params = params.get("parameters", params)
        for k, v in _flatten({k: v for k, v in params.items() if k not in ("name", "moteur")}):
            rows.append((f"Paramètre du moteur : {k}", v))
    rows += [
        ("Seuils (minutes)", ", ".join(seuil_label(t) for t in thresholds)),
        ("Types de service", ", ".join(f"{t} ({type_label(t)})"
                                       for t in run_types(run, settings))),
        *_SHEET_ROWS,
        _secrecy_row(public, settings.secrecy_threshold),
    ]
    if accessibility is not None:
        if accessibility.tables:
            rows.append(("Indice d'accessibilité", accessibility.describe()
                         + " Seuil : le seuil principal du calcul (30 min quand il l'a, "
                         "sinon son seuil du milieu) ; la commande « accessibilite » donne "
                         "les autres seuils et méthodes."))
        rows += [("Indice d'accessibilité : avertissement", n) for n in accessibility.notes]
    rows += [("Source", f"{name} — licence : {licence}") for name, licence in sources(run)]
    rows.append(("Contrat de sortie", f"version {OUTPUT_CONTRACT_VERSION} (schémas Table "
                                      "Schema JSON à côté des CSV)"))
    rows += [(f"Manifeste : {k}", v) for k, v in _flatten(
        {k: v for k, v in run.manifest.items() if k not in ("engine", "tables")})]
    return rows


def readme_text(run: RunOutputs, dept: str, files: Sequence[Path],
                titles: Mapping[str, str], *, public: bool,
                settings: Settings = Settings(),
                accessibility: AccessibilityExport | None = None) -> str:
    """Return the text of ``LISEZMOI.txt``: what each exported file is, then the method.

    Parameters
    ----------
    run
        The run exported.
    dept
        The département exported.
    files
        Exported files, relative to the export folder.
    titles
        French title of each table, by contract name.
    public
        Whether small counts are masked.
    settings
        ``secrecy_threshold``.
    accessibility
        The export's accessibility index (method row and notes), or None.

    Returns
    -------
    str
        The French text (the method and sources as in the workbook, manifest left out).
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
    for key, value in method_rows(run, dept, public=public, settings=settings,
                                  accessibility=accessibility):
        if not key.startswith("Manifeste"):
            lines.append(f"  {key} : {value}")
    return "\n".join(lines) + "\n"


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise export formats (``"csv,xlsx"`` or a list; ``all`` = every format).

    Parameters
    ----------
    formats
        Comma-separated text or a list; case, spaces and ``-``/``_`` do not matter.

    Returns
    -------
    tuple of str
        Known formats of :data:`EXPORT_FORMATS`, without repeats, in the order given.

    Raises
    ------
    CoverageError
        An unknown format, or none; the message lists the known ones.
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
            msg = (f"format d'export inconnu « {item} » ; attendu une liste séparée par des "
                   f"virgules parmi {', '.join(EXPORT_FORMATS)} (ou all)")
            raise CoverageError(msg)
        out.append(f)
    if not out:
        msg = f"aucun format d'export donné ; attendu parmi {', '.join(EXPORT_FORMATS)}"
        raise CoverageError(msg)
    return tuple(dict.fromkeys(out))


# --- The export --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    """One export: what is asked for, and the staging folder the files are written to."""

    run: RunOutputs
    dept: str
    formats: tuple[str, ...]
    public: bool
    settings: Settings
    map_type: str
    map_threshold: float
    staging: Path
    accessibility: AccessibilityExport | None = None

    def wants(self, *formats: str) -> bool:
        """Return whether any of ``formats`` is asked for."""
        return bool(set(formats) & set(self.formats))


@dataclass(frozen=True)
class _Tables:
    """The département's tables typed by their contracts, and their secret cells."""

    typed: dict[str, pd.DataFrame]
    contracts: dict[str, Contract]
    secret: dict[str, dict[str, pd.Series]]
    threshold: int

    @property
    def marker(self) -> str:
        """Text of a masked count (``"< 5"``)."""
        return secrecy_marker(self.threshold)

    def masked(self, name: str, *, text: bool) -> pd.DataFrame:
        """Return a table with its secret cells masked: text markers, or null + flags."""
        if name not in self.secret:
            return self.typed[name]
        counts = secret_columns(self.typed[name], self.contracts[name])[0]
        return mask_cells(self.typed[name], self.secret[name],
                          self.marker if text else None, counts=counts,
                          derived_marker=SECRET_MARKER)


def _map_threshold(run: RunOutputs, formats: Sequence[str], *, map_type: str,
                   map_threshold: float | None, settings: Settings) -> float:
    """Return the threshold of the PNG map; raise when the run has no such map."""
    thresholds = run_thresholds(run, settings)
    if map_threshold is None:
        map_threshold = principal_threshold(run, settings)
    types = [*run_types(run, settings), NO_SERVICE]
    if {"png", "png_attente"} & set(formats) and (
            not any(np.isclose(thresholds, map_threshold)) or map_type not in types):
        msg = (f"pas de carte pour le type « {map_type} » à {seuil_label(map_threshold)} min : "
               f"le calcul a les types {', '.join(types)} et les "
               f"seuils {', '.join(seuil_label(t) for t in thresholds)}")
        raise CoverageError(msg)
    return map_threshold


def _prepare(tables: Mapping[str, pd.DataFrame], dept: str, *, public: bool,
             settings: Settings) -> _Tables:
    """Type the tables by their contracts and find their secret cells (public export)."""
    contracts = {name: table_contract(name, df, dept) for name, df in tables.items()}
    typed = {name: conform_to_contract(df, contracts[name]) for name, df in tables.items()}
    secret: dict[str, dict[str, pd.Series]] = {}
    if public:
        for name, df in typed.items():
            cells = secret_cells(name, df, settings=settings)
            if cells:
                secret[name] = cells
    return _Tables(typed, contracts, secret, settings.secrecy_threshold)


def _write_tables(job: _Job, tables: _Tables) -> list[Path]:
    """Write the CSV (+ Table Schema), French CSV and Parquet tables; return their paths."""
    written: list[Path] = []
    if job.wants("csv"):
        for name in tables.typed:
            rel = Path("tables") / f"{name}.csv"
            write_csv(tables.masked(name, text=True), job.staging / rel, french=False)
            schema = masked_schema(tables.contracts[name], list(tables.secret.get(name, {})),
                                   tables.marker, tables.threshold)
            srel = Path("tables") / f"{name}.schema.json"
            write_text_atomic(job.staging / srel,
                              json.dumps(schema, ensure_ascii=False, indent=2) + "\n")
            written += [rel, srel]
    if job.wants("csv_fr"):
        for name in tables.typed:
            rel = Path("csv_fr") / f"{name}.csv"
            write_csv(tables.masked(name, text=True), job.staging / rel, french=True)
            written.append(rel)
    if job.wants("parquet"):
        for name in tables.typed:
            rel = Path("tables") / f"{name}.parquet"
            with atomic_path(job.staging / rel) as tmp:
                tables.masked(name, text=False).to_parquet(tmp, index=False)
            written.append(rel)
    return written


def _write_workbook(job: _Job, tables: _Tables) -> list[Path]:
    """Write the XLSX workbook (FICTIONAL banner for the demo); return its path."""
    rel = Path(f"{job.dept}_zones_blanches.xlsx")
    banner = (f"{FICTIONAL_TITLE} — données inventées, aucune commune réelle"
              if job.run.fictif else None)
    write_xlsx(job.staging / rel, {n: tables.masked(n, text=True) for n in tables.typed},
               tables.contracts,
               method_rows(job.run, job.dept, public=job.public, settings=job.settings,
                           accessibility=job.accessibility),
               banner=banner, run_digest=run_digest(job.run),
               title=f"Zones blanches — département {job.dept}")
    return [rel]


def _write_layers(job: _Job, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """Write the GeoPackage, the GeoParquet layers and the PNG map; return their paths."""
    run, dept = job.run, job.dept
    communes = commune_layer(run, dept, tables, settings=job.settings)
    services = service_layer(run, dept, tables)
    written: list[Path] = []
    if job.wants("gpkg"):
        rel = Path(f"{dept}_zones_blanches.gpkg")
        with atomic_path(job.staging / rel) as tmp:
            communes.to_file(tmp, layer="communes", driver="GPKG")
            services.to_file(tmp, layer="services", driver="GPKG", mode="a")
        written.append(rel)
    if job.wants("parquet"):
        for rel, layer in ((Path(f"{dept}_communes.parquet"), communes),
                           (Path(f"{dept}_services.parquet"), services)):
            write_geoparquet(layer, job.staging / rel)
            written.append(rel)
    if job.wants("png"):
        rel = Path(f"{dept}_carte_{job.map_type}_{seuil_label(job.map_threshold)}min.png")
        render_png_map(communes, services, job.staging / rel, MapOptions(
            dept=dept, thresholds=run_thresholds(run, job.settings), seuil=job.map_threshold,
            type_service=job.map_type, engine=run.engine, fictif=run.fictif,
            source=source_line(run)))
        written.append(rel)
    return written


def _write_waiting_charts(job: _Job) -> list[Path]:
    """Write the waiting-list charts of the département when the run has waiting lists."""
    if not job.wants("png_attente") or WAITING_TABLE not in job.run.tables:
        return []
    charts = waiting_charts_png(
        job.run.tables[WAITING_TABLE], job.staging / "listes_attente", code_dep=job.dept,
        couverture=job.run.tables.get("couverture_departements"), seuil=job.map_threshold,
        public=job.public, settings=job.settings)
    return [p.relative_to(job.staging) for p in charts]


def _write_all(job: _Job, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """Write every file of the export into the staging folder; return their relative paths."""
    prepared = _prepare(tables, job.dept, public=job.public, settings=job.settings)
    written = _write_tables(job, prepared)
    if job.wants("xlsx"):
        written += _write_workbook(job, prepared)
    if job.wants("gpkg", "parquet", "png"):
        written += _write_layers(job, tables)
    written += _write_waiting_charts(job)
    readme = Path(README_NAME)
    write_text_atomic(job.staging / readme, readme_text(
        job.run, job.dept, written, {n: c.title for n, c in prepared.contracts.items()},
        public=job.public, settings=job.settings, accessibility=job.accessibility))
    return [*written, readme]


def _move_into_place(staging: Path, written: Sequence[Path], out_dir: Path) -> list[Path]:
    """Move the staged files to ``out_dir`` (same file system: each move is atomic)."""
    final: list[Path] = []
    for rel in written:
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, target)
        final.append(target)
    return final


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
        ``parquet``, ``png``, ``png_attente`` (see :mod:`coverage.export` for the files of
        each).
    out_dir
        Export folder (created). Files already there with other names are left alone. A run
        folder, or a folder inside one elsewhere than in its ``exports/``, is refused
        (:func:`coverage.batch.outdir.check_export_out`): the export would replace the
        run's tables.
    public
        Mask small waiting-list counts (statistical secrecy, see :mod:`coverage.export`).
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
        type/threshold the run does not have, or a refused ``out_dir``. Nothing is written
        then.
    OutputError
        The export folder cannot be written; nothing is left half-written.
    """
    fmts = parse_formats(formats)
    dept = check_departement(run, dept)
    out_dir = check_export_out(out_dir, dept=dept)
    threshold = _map_threshold(run, fmts, map_type=map_type, map_threshold=map_threshold,
                               settings=settings)
    tables = departement_tables(run, dept, settings=settings)
    accessibility = None
    if set(_TABLE_FORMATS) & set(fmts):
        accessibility = accessibility_tables(run, dept, settings=settings)
        tables.update(accessibility.tables)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".export-{dept}-", dir=out_dir.parent))
    except OSError as exc:
        msg = (f"impossible d'écrire l'export du département {dept} dans {out_dir} : "
               f"{os_error_cause(exc)}" + (f" ({exc.filename})" if exc.filename else ""))
        raise OutputError(msg) from exc
    job = _Job(run, dept, fmts, public, settings, map_type, threshold, staging,
               accessibility)
    try:
        written = _write_all(job, tables)
        stale = remove_stale(out_dir, run_digest(run))  # files of an earlier run: gone
        if stale:
            log.info("département %s: %d files of an earlier run removed from %s", dept,
                     len(stale), out_dir)
        final = _move_into_place(staging, written, out_dir)
        record_export(out_dir, run, final, dept=dept, kind="export")
    except OSError as exc:
        msg = (f"impossible d'écrire l'export du département {dept} dans {out_dir} : "
               f"{os_error_cause(exc)}" + (f" ({exc.filename})" if exc.filename else ""))
        raise OutputError(msg) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported département %s: %d files in %s", dept, len(final), out_dir)
    return final
