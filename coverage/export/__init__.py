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
    (:func:`coverage.export.figures.waiting_charts_png`: the département's series, its
    rank, the tension view at the map's threshold; masked like the tables in a public
    export).

Tables exported (``tables/`` and ``csv_fr/``): ``couverture_departements`` (the
département's rows), ``acces_communes`` and ``zones_blanches`` (its communes),
``couverture_epci_departement`` (one line per EPCI with a commune in the département, over
**the département's communes** of that EPCI, with the whole EPCI — all its communes of the
run — in the ``*_epci`` columns and ``couverture_partielle`` when the EPCI reaches other
départements: the same lines as the app's EPCI table and the report's),
``couverture_densite`` (recomputed over the département's communes only, with
:func:`coverage.whitezones.coverage_table`) and
``listes_attente_departements`` when the run holds waiting lists.

Statistical secrecy
-------------------
Waiting-list figures concern few families in a département. In a **public** export (the
default) every waiting-list count (families, measures, requests, interviews, mediations)
strictly below ``settings.secrecy_threshold`` (default 5), zero included, is masked,
together with the cells derived from it in the same row (rate per 100,000 inhabitants,
mean waiting time, changes on the previous year, services with a waiting list); a change
is also masked when the previous year's count is (the rule of
:func:`coverage.waiting.mask_public`, built on :func:`coverage.secrecy.mask_small_counts`).
Markers:

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

Provenance (:mod:`~coverage.export.provenance`): the export folder's record
``provenance_export.json`` lists every file with its SHA-256 and the **run digest** it was
made from (SHA-256 of the run's manifest); the XLSX carries it in its document properties
and its « Sources et méthode » sheet, ``LISEZMOI.txt`` and the report too. Before moving the
new files in, the files of a stale export (another digest: the run was rewritten since) are
deleted, so a folder never mixes two runs.

Modules: :mod:`~coverage.export.tables` (the département's tables, commune and service
layers, secret cells), :mod:`~coverage.export.csv_files` (CSV and Table Schema),
:mod:`~coverage.export.xlsx` (the workbook), :mod:`~coverage.export.figures` (PNG map and
waiting-list charts), :mod:`~coverage.export.departement` (the export itself, the method
text and ``LISEZMOI.txt``). Generic secrecy is :mod:`coverage.secrecy`.
"""

from __future__ import annotations

from coverage.export.csv_files import masked_schema, write_csv
from coverage.export.departement import (
    DEFAULT_EXPORT_FORMATS,
    EXPORT_FORMATS,
    README_NAME,
    export_departement,
    method_rows,
    parse_formats,
    readme_text,
)
from coverage.export.figures import (
    MapOptions,
    figure_ranking,
    figure_series,
    figure_tension,
    render_png_map,
    waiting_charts_for_run,
    waiting_charts_png,
)
from coverage.export.provenance import (
    EXPORT_RECORD,
    ExportStatus,
    clean_stale_exports,
    export_status,
    folder_digest,
    record_export,
    remove_stale,
    run_digest,
)
from coverage.export.tables import (
    ALSO_SECRET,
    EPCI_TABLE,
    WAITING_TABLE,
    commune_layer,
    contract_for,
    departement_tables,
    epci_departement_table,
    flag_column,
    run_types,
    secret_cells,
    service_layer,
    seuil_label,
    table_contract,
)
from coverage.export.xlsx import FICTIONAL_RUBRIQUE, METHOD_SHEET, SHEETS, write_xlsx

__all__ = [
    "ALSO_SECRET",
    "DEFAULT_EXPORT_FORMATS",
    "EPCI_TABLE",
    "EXPORT_FORMATS",
    "EXPORT_RECORD",
    "FICTIONAL_RUBRIQUE",
    "METHOD_SHEET",
    "README_NAME",
    "SHEETS",
    "WAITING_TABLE",
    "ExportStatus",
    "MapOptions",
    "clean_stale_exports",
    "commune_layer",
    "contract_for",
    "departement_tables",
    "epci_departement_table",
    "export_departement",
    "export_status",
    "figure_ranking",
    "figure_series",
    "figure_tension",
    "flag_column",
    "folder_digest",
    "masked_schema",
    "method_rows",
    "parse_formats",
    "readme_text",
    "record_export",
    "remove_stale",
    "render_png_map",
    "run_digest",
    "run_types",
    "secret_cells",
    "service_layer",
    "seuil_label",
    "table_contract",
    "waiting_charts_for_run",
    "waiting_charts_png",
    "write_csv",
    "write_xlsx",
]
