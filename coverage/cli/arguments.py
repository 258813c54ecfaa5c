"""Argument types and groups shared by the subcommands, and the settings they give.

Only the command line knows argparse: the library receives :class:`~coverage.settings.Settings`
and plain values built here.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from coverage.settings import Settings, settings_with_overrides

if TYPE_CHECKING:
    from coverage.io.inputs import ReadChoices

__all__ = [
    "add_input_args",
    "add_read_choice_args",
    "add_settings_arg",
    "csv_list",
    "key_value",
    "layer_choice",
    "non_negative_int",
    "positive_int",
    "positive_minutes",
    "read_choices_from_args",
    "settings_from_args",
    "thresholds",
]


def thresholds(text: str) -> tuple[float, ...]:
    """Parse ``20,30,45`` into sorted distinct positive minutes.

    Raises
    ------
    argparse.ArgumentTypeError
        Not numbers, none, or a threshold that is not positive.
    """
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        msg = (f"seuils attendus en minutes séparées par des virgules (ex. 20,30,45), "
               f"reçu « {text} »")
        raise argparse.ArgumentTypeError(msg) from None
    if not values or any(v <= 0 for v in values):
        msg = f"seuils attendus en minutes positives, reçu « {text} »"
        raise argparse.ArgumentTypeError(msg)
    return tuple(sorted(set(values)))


def positive_minutes(text: str) -> float:
    """Parse a threshold: minutes, a finite number > 0 (``30``, ``22.5``, ``22,5``).

    Raises
    ------
    argparse.ArgumentTypeError
        Not a number, or not positive.
    """
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        msg = f"seuil attendu en minutes, un nombre > 0 (ex. 30), reçu « {text} »"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_int(text: str) -> int:
    """Parse a whole number ≥ 1 (``-k``).

    Raises
    ------
    argparse.ArgumentTypeError
        Not a whole number, or below 1.
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"nombre entier ≥ 1 attendu, reçu « {text} »"
        raise argparse.ArgumentTypeError(msg)
    return value


def non_negative_int(text: str) -> int:
    """Parse a whole number ≥ 0 (``--pop-min``).

    Raises
    ------
    argparse.ArgumentTypeError
        Not a whole number, or negative.
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"nombre entier ≥ 0 attendu, reçu « {text} »"
        raise argparse.ArgumentTypeError(msg)
    return value


def csv_list(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list (blank items dropped)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def key_value(text: str) -> tuple[str, str]:
    """Parse ``KEY=VALUE``.

    Raises
    ------
    argparse.ArgumentTypeError
        No ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        msg = f"attendu CLE=VALEUR (ex. snap_max_m=3000), reçu « {text} »"
        raise argparse.ArgumentTypeError(msg)
    return key.strip(), value


def add_settings_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--set KEY=VALUE`` (repeatable) to a subcommand."""
    p.add_argument("--set", dest="overrides", type=key_value, action="append", default=[],
                   metavar="CLE=VALEUR",
                   help="modifier un paramètre de coverage/settings.py (répétable), ex. "
                   "--set proxy_detour_factor=1.4 --set snap_max_m=3000 "
                   "--set max_input_bytes=50000000")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Return the settings of a command: the defaults with the ``--set`` overrides."""
    return settings_with_overrides(Settings(), dict(getattr(args, "overrides", []) or []))


def add_input_args(p: argparse.ArgumentParser) -> None:
    """Add the input files (communes, density grid, services, waiting lists, roads)."""
    p.add_argument("--communes", type=Path, metavar="FICHIER",
                   help="fichier des communes (défaut : la démo intégrée)")
    p.add_argument("--densite", type=Path, metavar="FICHIER",
                   help="grille de densité INSEE à joindre aux communes (CSV/XLSX)")
    p.add_argument("--services", type=Path, metavar="FICHIER",
                   help="fichier des services (CSV, XLSX, GeoJSON…)")
    p.add_argument("--waiting", nargs="+", metavar="FICHIER|DOSSIER|SOURCE=FICHIER",
                   help="fichiers de listes d'attente ou de retours d'activité (CSV/XLSX), ou "
                   "dossiers qui les contiennent ; SOURCE=FICHIER donne la source d'un fichier "
                   "sans colonne « source » (CAF, MSA, « cour d'appel », service, autre)")
    p.add_argument("--roads", type=Path, metavar="FICHIER",
                   help="réseau routier (.osm, .osm.gz/.bz2, .osm.pbf, .graphml)")


def layer_choice(text: str) -> tuple[str, str]:
    """Parse ``--layer``: ``NAME`` (the communes file's layer) or ``INPUT=NAME``.

    Raises
    ------
    argparse.ArgumentTypeError
        An empty layer name.
    """
    key, sep, value = text.partition("=")
    name, layer = (key.strip(), value.strip()) if sep else ("communes", text.strip())
    if not layer or not name:
        msg = (f"attendu COUCHE ou ENTREE=COUCHE (ex. --layer communes ou --layer "
               f"services=sites), reçu « {text} »")
        raise argparse.ArgumentTypeError(msg)
    return name, layer


def add_read_choice_args(p: argparse.ArgumentParser) -> None:
    """Add ``--layer`` (repeatable) and ``--densite-niveaux`` to a subcommand."""
    p.add_argument("--layer", dest="layers", type=layer_choice, action="append", default=[],
                   metavar="[ENTREE=]COUCHE",
                   help="couche GeoPackage à lire : COUCHE pour le fichier des communes, ou "
                        "communes=…, services=…, densite=… (répétable) ; obligatoire quand un "
                        "GeoPackage a plusieurs couches dont aucune ne porte le nom de "
                        "l'entrée")
    p.add_argument("--densite-niveaux", dest="density_levels", type=int, choices=(4, 7),
                   help="niveaux de la grille de densité INSEE (4 ou 7) ; défaut : 7 quand "
                        "le nom de la colonne de densité contient un 7 (dens7), sinon 4")


def read_choices_from_args(args: argparse.Namespace) -> ReadChoices:
    """Return the reading choices (layers, density levels) of a command's arguments."""
    from coverage.io.inputs import ReadChoices

    return ReadChoices(layers=dict(getattr(args, "layers", None) or []),
                       density_levels=getattr(args, "density_levels", None))
