"""``zones-blanches accessibilite``: the 2SFCA / E2SFCA index of a département, as CSV.

Reads the arguments, calls :func:`coverage.accessibility.accessibility_for_run` for each
service type asked (timed by the run's engine), writes the tables (open CSV and French-Excel
CSV) and prints a French summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from coverage.accessibility import (
    PER_INHABITANTS,
    AccessibilityResult,
    accessibility_for_run,
)
from coverage.batch.outdir import check_export_out
from coverage.errors import CoverageError
from coverage.export.csv_files import write_csv
from coverage.export.provenance import record_export, remove_stale, run_digest
from coverage.export.tables import run_types
from coverage.files import write_text_atomic
from coverage.labels import (
    FICTIONAL_TITLE,
    engine_label,
    fr_decimal,
    fr_int,
    type_label,
)
from coverage.results import available_departements, check_departement, load_finished_run
from coverage.schemas import (
    ACCESSIBILITE_COMMUNES,
    ACCESSIBILITE_DEPARTEMENT,
    ACCESSIBILITE_EPCI,
    ACCESSIBILITE_SERVICES,
    table_schema,
)

__all__ = ["ACCESS_FILES", "accessibilite_from_cli", "format_summary"]

#: Tables written, by suffix of ``<dept>_accessibilite_<suffix>.csv``.
ACCESS_FILES: tuple[str, ...] = ("communes", "departement", "epci", "services")
#: Their contracts (Table Schema beside each open CSV: titles, units).
CONTRACTS = {"communes": ACCESSIBILITE_COMMUNES, "departement": ACCESSIBILITE_DEPARTEMENT,
             "epci": ACCESSIBILITE_EPCI, "services": ACCESSIBILITE_SERVICES}
#: Method names shown to users.
METHOD_NAMES = {"2sfca": "2SFCA (aire de chalandise flottante à deux étapes)",
                "e2sfca": "E2SFCA (deux étapes, poids décroissants par bande de temps)"}


def _per_100k() -> str:
    return f"pour {fr_int(PER_INHABITANTS)} habitants"


def format_summary(results: list[AccessibilityResult], dept: str) -> str:
    """Return the French summary of the index of one département (one block per type)."""
    if not results:
        return f"Aucun type de service à calculer pour le département {dept}."
    p = results[0].parameters
    lines = [f"Indice d'accessibilité {METHOD_NAMES[p['methode']]} — département {dept}, "
             f"seuil {fr_decimal(p['seuil_minutes'], 0)} min, moteur "
             f"{engine_label(p['moteur'], short=True)} ({p['moteur']}).",
             f"Unité : capacité des services (ETP ou places) {_per_100k()} ; demande : "
             f"colonne « {p['colonne_population']} »."]
    if p["bandes"]:
        lower, bands = 0.0, []
        for upper, w in zip(p["bandes"]["bornes_minutes"], p["bandes"]["poids"], strict=True):
            bands.append(f"{fr_decimal(lower, 0)}–{fr_decimal(upper, 0)} min : "
                         f"{fr_decimal(w, 2)}")
            lower = upper
        lines.append("Bandes de décroissance : " + " ; ".join(bands) + ".")
    for res in results:
        row = res.departements.iloc[0]
        idx = res.communes["indice_pour_100k"]
        mean = row["indice_moyen_pour_100k"]
        mean_txt = "sans objet (population nulle)" if pd.isna(mean) else fr_decimal(mean, 2)
        lines.append(
            f"- {type_label(res.parameters['type_service'])} : moyenne pondérée par la "
            f"population {mean_txt} {_per_100k()} ; communes de {fr_decimal(idx.min(), 2)} "
            f"à {fr_decimal(idx.max(), 2)} ; {fr_int(row['communes_sans_service'])} "
            f"commune(s) ({fr_int(row['population_sans_service'])} hab.) sans service à "
            f"{fr_decimal(res.parameters['seuil_minutes'], 0)} min ou moins (indice 0) ; "
            f"{res.parameters['services']} service(s) pris en compte.")
        lines.extend(f"  Attention : {w}" for w in res.warnings)
    return "\n".join(lines)


def _tables(results: list[AccessibilityResult]) -> dict[str, pd.DataFrame]:
    """Return the four tables of every type, concatenated."""
    out: dict[str, pd.DataFrame] = {}
    for name, attr in zip(ACCESS_FILES, ("communes", "departements", "epci", "services"),
                          strict=True):
        parts = []
        for r in results:
            part = getattr(r, attr)
            if name == "services":
                part = part.assign(type_service=r.parameters["type_service"])
            parts.append(part)
        out[name] = pd.concat(parts, ignore_index=True)
    return out


def accessibilite_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches accessibilite``: compute, write the CSV files, print a summary.

    Parameters
    ----------
    args
        ``dept``, ``run`` (default: the demo run), ``type`` (default: every type of the
        run), ``methode`` (``2sfca``/``e2sfca``), ``seuil`` (minutes), ``population``
        (demand column), ``out`` (default ``<run>/exports/<dept>``; checked with
        :func:`coverage.batch.outdir.check_export_out` before anything is computed). The
        files are added to the folder's export record
        (:func:`coverage.export.provenance.record_export`), after the files of an earlier
        run are removed, so a rerun of the run marks them stale.

    Returns
    -------
    int
        0 (errors are raised as :class:`~coverage.errors.CoverageError`: one French line,
        exit 2, nothing written).
    """
    if getattr(args, "out", None):
        check_export_out(args.out, dept=args.dept)
    run = load_finished_run(getattr(args, "run", None))
    try:
        dept = check_departement(run, args.dept)
    except CoverageError as exc:
        msg = (f"département « {args.dept} » absent du calcul {run.run_dir} ; départements "
               f"disponibles : {', '.join(available_departements(run)) or 'aucun'}")
        raise CoverageError(msg) from exc
    types = [args.type] if getattr(args, "type", None) else run_types(run)
    results = [accessibility_for_run(run, dept, type_service=t,
                                     threshold_min=float(args.seuil), method=args.methode,
                                     population_column=args.population) for t in types]
    out = Path(args.out) if getattr(args, "out", None) else run.run_dir / "exports" / dept
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out, run_digest(run))  # files of an earlier run in this folder: gone
    written = []
    for name, table in _tables(results).items():
        for french in (False, True):
            path = out / f"{dept}_accessibilite_{name}{'_fr' if french else ''}.csv"
            written.append(write_csv(table[CONTRACTS[name].columns], path, french=french))
        schema = out / f"{dept}_accessibilite_{name}.schema.json"
        write_text_atomic(schema, json.dumps(table_schema(CONTRACTS[name]),
                                             ensure_ascii=False, indent=2) + "\n")
        written.append(schema)
    record_export(out, run, written, dept=dept, kind="accessibilite")
    if run.fictif:
        print(f"{FICTIONAL_TITLE} : le territoire de démonstration n'est pas un lieu réel.")
    print(format_summary(results, dept))
    print(f"Fichiers écrits ({len(written)}) dans {out} :")
    for f in written:
        print(f"  {f.name}")
    return 0

