"""``zones-blanches rapport``: write a département's report (DOCX and HTML), print the files."""

from __future__ import annotations

import argparse
from pathlib import Path

from coverage.batch.outdir import check_export_out
from coverage.cli.departements import departement_of_run, departement_text
from coverage.export.provenance import export_status, run_digest
from coverage.export.rapport import write_report
from coverage.labels import FICTIONAL_TITLE
from coverage.results import load_finished_run

__all__ = ["rapport_from_cli"]


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
    dept = departement_of_run(run, args.dept)
    out = Path(args.out) if getattr(args, "out", None) else run.run_dir / "exports" / dept
    status = export_status(out, run_digest(run))
    files = write_report(run, dept, out, seuil=getattr(args, "seuil", None))
    if status.stale:
        print(f"Fichiers périmés retirés de {out} (faits à partir d'un autre calcul, "
              f"empreinte {status.run_digest[:12]}) : le rapport est refait.")
    if run.fictif:
        print(f"{FICTIONAL_TITLE} : le territoire de démonstration n'est pas un lieu réel.")
    print(f"Rapport du département {departement_text(run, dept)} (moteur {run.engine}) : "
          f"{len(files)} fichiers")
    for f in files:
        print(f"  {f}")
    return 0
