"""``zones-blanches suivi``: the shared follow-up of waiting lists for a finished run.

Reads the return files given (``--waiting``: files, folders, ``SOURCE=FILE``), reconciles
them (:func:`coverage.waiting.reconcile_returns`) and writes ``suivi_listes_attente.xlsx``
and ``.csv`` (:mod:`coverage.waiting.followup`, statistical secrecy applied) into the run
folder, or ``--out``. Bad returns: one line per bad cell, nothing written.
"""

from __future__ import annotations

import argparse
import sys

from coverage.io.waiting import load_waiting_files
from coverage.results import load_finished_run, run_settings
from coverage.schemas import COUVERTURE_DEPARTEMENTS
from coverage.settings import settings_with_overrides
from coverage.waiting.followup import RunFollowup, followup_for_run

__all__ = ["suivi_from_cli"]


def suivi_from_cli(args: argparse.Namespace) -> int:
    """Run ``zones-blanches suivi``; print the files written.

    Returns
    -------
    int
        0. Bad returns raise :class:`~coverage.errors.InputError` before anything is
        written (printed one line per problem by the CLI).
    """
    run = load_finished_run(args.run)
    settings = settings_with_overrides(run_settings(run),
                                       dict(getattr(args, "overrides", []) or []))
    communes = run.communes.drop(columns="geometry")
    returns = load_waiting_files(args.waiting, communes=communes, settings=settings)
    out = args.out or run.run_dir
    paths = followup_for_run(returns.rows, RunFollowup(
        communes, run.services.drop(columns="geometry"),
        run.tables.get(COUVERTURE_DEPARTEMENTS.name), returns.files, args.seuil),
        out, settings=settings)
    for w in returns.warnings:
        sys.stderr.write(f"avertissement : {w}\n")
    print(f"Suivi partagé de {len(returns.files)} fichier(s) de retour écrit (petits "
          "effectifs masqués) :")
    for path in paths:
        print(f"  {path}")
    return 0
