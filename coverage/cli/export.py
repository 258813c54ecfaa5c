"""``zones-blanches export``: read the arguments, call the library, print the result."""

from __future__ import annotations

import argparse
from pathlib import Path

from coverage.batch.outdir import check_export_out
from coverage.export import EXPORT_FORMATS, export_departement, parse_formats
from coverage.labels import FICTIONAL_TITLE
from coverage.results import check_departement, load_finished_run

__all__ = ["export_from_cli"]


def export_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches export``: export a département of a run, print the files written.

    Parameters
    ----------
    args
        ``dept``, ``run`` (default: the demo's run folder), ``formats``, ``out`` (default
        ``<run>/exports/<dept>``; never a run folder nor inside one elsewhere than in its
        ``exports/``, :func:`coverage.batch.outdir.check_export_out`), ``internal``.

    Returns
    -------
    int
        0 on success (errors are raised as :class:`coverage.errors.CoverageError` for the
        CLI to print).
    """
    formats = parse_formats(getattr(args, "formats", None) or EXPORT_FORMATS)
    if getattr(args, "out", None):  # never into a run folder: checked before reading it
        check_export_out(args.out, dept=args.dept)
    run = load_finished_run(getattr(args, "run", None))
    dept = check_departement(run, args.dept)
    out = Path(args.out) if getattr(args, "out", None) else run.run_dir / "exports" / dept
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
