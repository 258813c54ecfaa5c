"""``zones-blanches export``: read the arguments, call the library, print the result."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from coverage.batch.outdir import check_export_out
from coverage.cli.departements import departement_of_run, departement_text
from coverage.errors import CoverageError
from coverage.export import (
    DEFAULT_EXPORT_FORMATS,
    EXPORT_FORMATS,
    export_departement,
    export_status,
    parse_formats,
    run_digest,
)
from coverage.labels import FICTIONAL_TITLE, engine_label
from coverage.results import load_finished_run

__all__ = ["export_from_cli"]


def _formats(asked: str | Sequence[str]) -> tuple[str, ...]:
    """Return the export formats asked for; an unknown one is refused in one French line.

    Raises
    ------
    CoverageError
        An unknown format, or none: the message lists the known ones.
    """
    try:
        return parse_formats(asked)
    except CoverageError as exc:
        items = asked.split(",") if isinstance(asked, str) else list(asked)
        unknown = [i.strip() for i in items
                   if i.strip().lower().replace("-", "_") not in (*EXPORT_FORMATS, "all")]
        what = (f"format d'export inconnu « {', '.join(unknown)} »" if unknown
                else "aucun format d'export")
        msg = f"{what} : formats possibles {', '.join(EXPORT_FORMATS)} (ou all)"
        raise CoverageError(msg) from exc


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
    formats = _formats(getattr(args, "formats", None) or DEFAULT_EXPORT_FORMATS)
    if getattr(args, "out", None):  # never into a run folder: checked before reading it
        check_export_out(args.out, dept=args.dept)
    run = load_finished_run(getattr(args, "run", None))
    dept = departement_of_run(run, args.dept)
    out = Path(args.out) if getattr(args, "out", None) else run.run_dir / "exports" / dept
    internal = bool(getattr(args, "internal", False))
    status = export_status(out, run_digest(run))
    files = export_departement(run, dept, formats=formats, out_dir=out, public=not internal)
    if status.stale:
        print(f"Export précédent périmé dans {out} (fait à partir d'un autre calcul, "
              f"empreinte {status.run_digest[:12]}) : ses fichiers sont retirés, l'export est "
              "refait.")
    if run.fictif:
        print(f"{FICTIONAL_TITLE} : le territoire de démonstration n'est pas un lieu réel.")
    kind = ("export INTERNE (sans secret statistique : à ne pas publier)" if internal
            else "export public (petits effectifs des listes d'attente masqués)")
    print(f"Département {departement_text(run, dept)}, {kind}, moteur {run.engine} "
          f"({engine_label(run.engine, short=True)}) : {len(files)} fichiers dans {out}")
    for f in files:
        print(f"  {f}")
    return 0
