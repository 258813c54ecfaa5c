"""The département of a command (``export``, ``sites``, ``rapport``), checked in French."""

from __future__ import annotations

from coverage.errors import CoverageError
from coverage.results import (
    RunOutputs,
    available_departements,
    check_departement,
    departement_names,
)

__all__ = ["departement_of_run", "departement_text"]


def departement_of_run(run: RunOutputs, code: str) -> str:
    """Return the département code when the run has it, else raise a one-line French error.

    Parameters
    ----------
    run
        A finished run.
    code
        The code given on the command line (``48``, ``2a``, ``ZA``…).

    Raises
    ------
    CoverageError
        The run has no commune of that département; the message lists those it has, with
        their names.
    """
    try:
        return check_departement(run, code)
    except CoverageError as exc:
        names = departement_names(run)
        available = [f"{d} {names[d]}" if d in names else d
                     for d in available_departements(run)]
        msg = (f"département « {code} » absent du calcul {run.run_dir} ; départements "
               f"disponibles : {', '.join(available) or 'aucun'}")
        raise CoverageError(msg) from exc


def departement_text(run: RunOutputs, code: str) -> str:
    """Return « 48 Lozère » (the code and its name when the run knows it), else the code."""
    name = departement_names(run).get(code)
    return f"{code} {name}" if name else code
