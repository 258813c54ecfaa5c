"""``zones-blanches comparer RUN_A RUN_B``: what changed between two runs, written and told.

Reads both runs, calls :func:`coverage.export.compare.compare_runs` (compared only on what
they share, with a French warning for what is left out), writes the tables, the workbook,
the summary and the map (:func:`coverage.export.compare.write_comparison`) and prints the
French summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from coverage.batch.outdir import check_export_out
from coverage.export.compare import compare_runs, write_comparison
from coverage.export.provenance import record_export, remove_stale, run_digest
from coverage.labels import FICTIONAL_TITLE
from coverage.results import load_finished_run

__all__ = ["comparer_from_cli", "default_out"]


def default_out(run_a: Path, run_b: Path) -> Path:
    """Return the default folder: ``<run B>/exports/comparaison_<name of run A>``."""
    return run_b / "exports" / f"comparaison_{run_a.resolve().name}"


def comparer_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches comparer``: compare two runs, write the files, print a summary.

    Parameters
    ----------
    args
        ``run_a`` (the older run folder), ``run_b`` (the newer), ``out`` (default
        :func:`default_out`; checked with :func:`coverage.batch.outdir.check_export_out`
        before anything is read: never a run folder, nor inside one but in ``exports/``).
        The files are recorded as made from run B and run A
        (:func:`coverage.export.provenance.record_export`): a rerun of either marks them
        stale.

    Returns
    -------
    int
        0 (errors are raised as :class:`~coverage.errors.CoverageError`: one French line,
        exit 2, nothing written — e.g. two runs with no commune in common).
    """
    if getattr(args, "out", None):
        check_export_out(args.out)
    run_a = load_finished_run(args.run_a)
    run_b = load_finished_run(args.run_b)
    comparison = compare_runs(run_a, run_b)
    out = Path(args.out) if getattr(args, "out", None) else default_out(run_a.run_dir,
                                                                         run_b.run_dir)
    remove_stale(out, run_digest(run_b))
    files = write_comparison(comparison, run_a, run_b, out)
    record_export(out, run_b, files, dept="", kind="comparer", also=[run_a])
    if comparison.fictif:
        print(f"{FICTIONAL_TITLE} : le territoire de démonstration n'est pas un lieu réel.")
    print("\n".join(comparison.summary()))
    print(f"Fichiers écrits ({len(files)}) dans {out} :")
    for f in files:
        print(f"  {f.name}")
    return 0
