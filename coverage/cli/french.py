"""argparse in French: usage, section titles, the help option and argparse's own errors.

argparse writes its built-in strings in English (« usage: », « options », « the following
arguments are required »…). :class:`FrenchArgumentParser` (and its subparsers, which inherit
the class) gives French headings through :class:`FrenchHelpFormatter`, a French ``-h``, and
prints an argument error as one French line then exits with code 2, with no usage block.
:func:`translate_argparse` turns argparse's English error sentences into French.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

__all__ = [
    "EXIT_USAGE",
    "FrenchArgumentParser",
    "FrenchHelpFormatter",
    "french_level",
    "translate_argparse",
]

#: Exit code of a bad command line (argparse's own, kept).
EXIT_USAGE = 2

#: French names of the types argparse names in « invalid <type> value ».
_TYPE_NAMES: dict[str, str] = {
    "int": "un nombre entier",
    "float": "un nombre",
    "Path": "un chemin de fichier",
    "str": "un texte",
}

#: French names of the logging levels (the CLI's log lines).
_LEVELS: dict[str, str] = {
    "DEBUG": "débogage",
    "INFO": "info",
    "WARNING": "avertissement",
    "ERROR": "erreur",
    "CRITICAL": "erreur critique",
}


def french_level(levelname: str) -> str:
    """Return the French name of a logging level (``WARNING`` → ``avertissement``)."""
    return _LEVELS.get(levelname, levelname.lower())


def _type_name(match: re.Match[str]) -> str:
    name = match.group("type")
    return (f"valeur invalide : {_TYPE_NAMES.get(name, name)} attendu, "
            f"reçu {_quote(match.group('value'))}")


def _quote(text: str) -> str:
    """Return ``'x'`` (a Python repr) or ``x`` as « x »."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return f"« {text} »"


def _quoted_list(text: str) -> str:
    """Return ``'a', 'b'`` as ``a, b``."""
    return ", ".join(t.strip().strip("'\"") for t in text.split(","))


#: argparse's English error sentences (Python 3.11–3.13) and their French forms.
_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^argument (?P<arg>.+?): (?P<msg>.*)$", re.S),
     lambda m: f"argument {m.group('arg')} : {translate_argparse(m.group('msg'))}"),
    (re.compile(r"^the following arguments are required: (?P<args>.*)$"),
     lambda m: f"argument(s) obligatoire(s) manquant(s) : {m.group('args')}"),
    (re.compile(r"^one of the arguments (?P<args>.*) is required$"),
     lambda m: f"un des arguments {m.group('args')} est obligatoire"),
    (re.compile(r"^invalid choice: (?P<value>.*?) \(choose from (?P<choices>.*)\)$"),
     lambda m: (f"choix invalide {_quote(m.group('value'))} : valeurs possibles "
                f"{_quoted_list(m.group('choices'))}")),
    (re.compile(r"^invalid (?P<type>\w+) value: (?P<value>.*)$"), _type_name),
    (re.compile(r"^unrecognized arguments: (?P<args>.*)$"),
     lambda m: f"argument(s) non reconnu(s) : {m.group('args')}"),
    (re.compile(r"^not allowed with argument (?P<arg>.*)$"),
     lambda m: f"incompatible avec l'argument {m.group('arg')}"),
    (re.compile(r"^ignored explicit argument (?P<value>.*)$"),
     lambda m: f"valeur {_quote(m.group('value'))} en trop ignorée"),
    (re.compile(r"^ambiguous option: (?P<opt>\S+) could match (?P<matches>.*)$"),
     lambda m: f"option ambiguë : {m.group('opt')} peut désigner {m.group('matches')}"),
    (re.compile(r"^expected one argument$"), lambda m: "une valeur attendue"),
    (re.compile(r"^expected at most one argument$"), lambda m: "au plus une valeur attendue"),
    (re.compile(r"^expected at least one argument$"),
     lambda m: "au moins une valeur attendue"),
    (re.compile(r"^expected (?P<n>\d+) arguments?$"),
     lambda m: f"{m.group('n')} valeur(s) attendue(s)"),
    (re.compile(r"^unexpected option string: (?P<opt>.*)$"),
     lambda m: f"option inattendue : {m.group('opt')}"),
)


def translate_argparse(message: str) -> str:
    """Return an argparse error sentence in French (unchanged when not one of argparse's).

    Parameters
    ----------
    message
        What argparse passes to :meth:`argparse.ArgumentParser.error`, e.g. ``argument
        --engine: invalid choice: 'x' (choose from 'road', 'proxy')``.
    """
    for pattern, french in _RULES:
        match = pattern.match(message)
        if match is not None:
            return french(match)
    return message


class FrenchHelpFormatter(argparse.HelpFormatter):
    """Help formatter with French headings: « utilisation : », « options : »."""

    def add_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                  groups: Iterable[argparse._MutuallyExclusiveGroup],
                  prefix: str | None = None) -> None:
        """Add the usage line, prefixed « utilisation : »."""
        super().add_usage(usage, actions, groups,
                          "utilisation : " if prefix is None else prefix)

    def start_section(self, heading: str | None) -> None:
        """Start a section whose heading ends with a French « : » (a space before it)."""
        super().start_section(f"{heading} " if heading else heading)


class FrenchArgumentParser(argparse.ArgumentParser):
    """ArgumentParser whose help and errors are French; subparsers are of the same class.

    An error prints one line, ``<prog> : erreur : <French message> (aide : <prog> --help)``,
    on standard error and exits with :data:`EXIT_USAGE`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", FrenchHelpFormatter)
        add_help = bool(kwargs.get("add_help", True))
        kwargs["add_help"] = False  # a French -h instead of argparse's
        super().__init__(*args, **kwargs)
        self._positionals.title = "arguments"
        self._optionals.title = "options"
        if add_help:
            self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                              help="afficher cette aide et quitter")

    def error(self, message: str) -> NoReturn:
        """Print the error as one French line and exit with code 2."""
        self.exit(EXIT_USAGE, f"{self.prog} : erreur : {translate_argparse(message)} "
                              f"(aide : {self.prog} --help)\n")
