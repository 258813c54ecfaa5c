"""``zones-blanches rapport``: write a département's report (DOCX and HTML), print the files."""

from __future__ import annotations

import argparse
from pathlib import Path

from coverage.batch.outdir import check_export_out
from coverage.errors import CoverageError
from coverage.export.rapport import write_report
from coverage.labels import FICTIONAL_TITLE
from coverage.results import (
    RunOutputs,
    available_departements,
    check_departement,
    load_finished_run,
)

__all__ = ["rapport_from_cli"]


def _departement(run: RunOutputs, code: str) -> str:
    """Return the département code when the run has it, else raise a one-line French error."""
    try:
        return check_departement(run, code)
    except CoverageError as exc:
        available = available_departements(run)
        msg = (f"département {code!r} absent du calcul {run.run_dir} ; "
               f"départements disponibles : {', '.join(available) or 'aucun'}")
        raise CoverageError(msg) from exc


def rapport_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches rapport``: write ``<dept>_rapport.docx`` and ``.html``.

    Parameters
    ----------
    args
        ``dept``, ``run`` (default: the demo's run folder), ``seuil`` (minutes, default
        30 when the run has it), ``out`` (default ``<run>/exports/<dept>``; never a run
        folder nor inside one elsewhere than in its ``exports/``).

    Returns
    -------
    int
        0 on success (errors are raised as :class:`coverage.errors.CoverageError` for the
        CLI to print as one line, exit 2, nothing written).
    """
    if getattr(args, "out", None):  # never into a run folder: checked before reading it
        check_export_out(args.out, dept=args.dept)
    run = load_finished_run(getattr(args, "run", None))
    dept = _departement(run, args.dept)
    out = Path(args.out) if getattr(args, "out", None) else run.run_dir / "exports" / dept
    files = write_report(run, dept, out, seuil=getattr(args, "seuil", None))
    if run.fictif:
        print(f"{FICTIONAL_TITLE} : le territoire de démonstration n'est pas un lieu réel.")
    print(f"Rapport du département {dept} (moteur {run.engine}) : {len(files)} fichiers")
    for f in files:
        print(f"  {f}")
    return 0
