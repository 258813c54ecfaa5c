"""Console entry point of ``zones-blanches``.

It lives outside the ``coverage`` package on purpose: coverage.py (the test-coverage tool)
installs a package with the same import name. If that one shadows ours, importing
``coverage.cli`` would fail with a traceback; this module checks first and explains the fix.
"""

from __future__ import annotations

import sys

__all__ = ["COLLISION_MESSAGE", "PROJECT", "check_coverage_is_ours", "main"]

PROJECT = "zones-blanches"

COLLISION_MESSAGE = (
    "zones-blanches : le paquet Python importé sous le nom « coverage » n'est pas ce projet "
    "({found}).\n"
    "  coverage.py (l'outil de mesure de couverture des tests, importé lui aussi sous le nom "
    "« coverage ») est installé dans cet environnement et masque zones-blanches.\n"
    "  Solution : lancez zones-blanches dans son propre environnement virtuel, ou retirez "
    "l'autre paquet :\n"
    "      python -m pip uninstall coverage pytest-cov\n"
    "      python -m pip install -e .   # depuis le dossier de zones-blanches\n"
)


def check_coverage_is_ours() -> str | None:
    """Return an error message when ``import coverage`` is not this project, else ``None``."""
    try:
        import coverage
    except ImportError as exc:  # pragma: no cover - only in a broken install
        return COLLISION_MESSAGE.format(found=f"échec de l'import : {exc}")
    if getattr(coverage, "__project__", None) != PROJECT:
        where = getattr(coverage, "__file__", "?")
        version = getattr(coverage, "__version__", "?")
        return COLLISION_MESSAGE.format(found=f"version {version} trouvée dans {where}")
    return None


def main(argv: list[str] | None = None) -> int:
    """Check the import name, then run the CLI.

    Parameters
    ----------
    argv
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 3 when ``coverage`` is not this project, else the CLI's.
    """
    problem = check_coverage_is_ours()
    if problem is not None:
        sys.stderr.write(problem)
        return 3
    from coverage.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
