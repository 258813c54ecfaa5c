"""``zones-blanches sites``: read the arguments, call the library, print the result.

The best new sites of a département of a finished run, by greedy maximal covering
(:func:`coverage.siting.sites_for_run`, timed by the run's own engine,
:func:`coverage.routing.engine_of_run`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from coverage.batch.outdir import check_file_out
from coverage.errors import OutputError, os_error_cause
from coverage.files import atomic_path
from coverage.results import check_departement, load_finished_run
from coverage.safe_text import spreadsheet_safe_frame
from coverage.siting import SITES_COLUMNS, SitingResult, sites_for_run

__all__ = ["format_sites", "is_sites_csv", "sites_from_cli", "write_sites_csv"]


def format_sites(result: SitingResult) -> str:
    """Return the plain-text report of a :class:`~coverage.siting.SitingResult`.

    The report names the FICTIONAL territory when it is one, the engine, the threshold
    (minutes) and the method, then lists the sites in the order picked.
    """
    p, t = result.parameters, result.table
    lines = []
    if p.get("fictif"):
        lines.append("FICTIONAL territory (demo): not a real place.")
    lines.append(f"New sites, type {p['type_service']}, threshold {p['seuil_minutes']:g} min, "
                 f"engine {p['moteur']}, département(s) {', '.join(p['depts'] or ['all'])}: "
                 f"{p['candidats']} candidates ({p['candidats_origine']}), families of "
                 f"{p['communes']} communes counted, "
                 f"white-zone population before: {p['population_zone_blanche_initiale']}")
    if t.empty:
        lines.append("No candidate would cover a new commune.")
    else:
        cols = ["rang", "code_insee", "nom", "population_nouvellement_couverte",
                "communes_nouvellement_couvertes",
                "population_nouvellement_couverte_hors_departement",
                "population_zone_blanche_restante"]
        lines.append(t[cols].to_string(index=False))
        if len(t) < int(p["k"]):
            lines.append(f"Only {len(t)} site(s): no other candidate covers a new commune.")
    lines.append("Method: greedy maximal covering (exact for k = 1; for k >= 2 a heuristic, "
                 "at least 1 - 1/e of the optimum).")
    return "\n".join(lines)


def is_sites_csv(path: Path) -> bool:
    """Return whether ``path`` is a sites table written by :func:`write_sites_csv`.

    Recognised by its header: the columns of :data:`coverage.siting.SITES_COLUMNS`.
    """
    try:
        with path.open(encoding="utf-8-sig") as fh:
            header = fh.readline().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return header.split(",") == list(SITES_COLUMNS)


def write_sites_csv(table: pd.DataFrame, out: Path) -> None:
    """Write the sites table to ``out`` as UTF-8 CSV, atomically.

    Text cells that a spreadsheet would read as a formula get a leading quote
    (:func:`coverage.safe_text.spreadsheet_safe_frame`); numbers are unchanged.

    Raises
    ------
    OutputError
        The file cannot be written (the message names it and the cause, in French).
    """
    try:
        with atomic_path(out) as tmp:
            spreadsheet_safe_frame(table).to_csv(tmp, index=False, encoding="utf-8")
    except OSError as exc:
        msg = f"impossible d'écrire {out} : {os_error_cause(exc)}"
        raise OutputError(msg) from exc


def sites_from_cli(args: argparse.Namespace) -> int:
    """Print the best new sites of a département of a run (``zones-blanches sites``).

    Parameters
    ----------
    args
        ``dept``, ``type``, ``seuil`` (minutes), ``k``, ``run`` (default ``sorties/demo``),
        ``out`` (optional CSV, written atomically; never a file of a run folder, and an
        existing file not written by ``sites`` only with ``force``:
        :func:`coverage.batch.outdir.check_file_out`), ``dept_only`` (count only the
        families of the département, not those of the run's other départements).

    Returns
    -------
    int
        0 (errors are raised as :class:`~coverage.errors.CoverageError` for the CLI to
        print).
    """
    out = getattr(args, "out", None)
    if out:  # checked before the run is read: never a run's file, nor a user's file
        check_file_out(out, is_ours=is_sites_csv, force=bool(getattr(args, "force", False)))
    run = load_finished_run(getattr(args, "run", None))
    dept = check_departement(run, args.dept)
    result = sites_for_run(run, dept, type_service=args.type, threshold_min=float(args.seuil),
                           k=int(args.k), neighbours=not getattr(args, "dept_only", False))
    if out:
        write_sites_csv(result.table, Path(out))
    print(format_sites(result))
    if out:
        print(f"Written: {out}")
    return 0
