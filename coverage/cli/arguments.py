"""Argument types and groups shared by the subcommands, and the settings they give.

Only the command line knows argparse: the library receives :class:`~coverage.settings.Settings`
and plain values built here.
"""

from __future__ import annotations

import argparse
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
        msg = f"thresholds must be minutes separated by commas (e.g. 20,30,45), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not values or any(v <= 0 for v in values):
        msg = f"thresholds must be positive minutes, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return tuple(sorted(set(values)))


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
        msg = f"expected KEY=VALUE (e.g. snap_max_m=3000), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return key.strip(), value


def add_settings_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--set KEY=VALUE`` (repeatable) to a subcommand."""
    p.add_argument("--set", dest="overrides", type=key_value, action="append", default=[],
                   metavar="KEY=VALUE",
                   help="override a setting of coverage/settings.py (repeatable), e.g. "
                   "--set proxy_detour_factor=1.4 --set snap_max_m=3000 "
                   "--set max_input_bytes=50000000")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Return the settings of a command: the defaults with the ``--set`` overrides."""
    return settings_with_overrides(Settings(), dict(getattr(args, "overrides", []) or []))


def add_input_args(p: argparse.ArgumentParser) -> None:
    """Add the input files (communes, density grid, services, waiting lists, roads)."""
    p.add_argument("--communes", type=Path, help="communes file (default: the embedded demo)")
    p.add_argument("--densite", type=Path,
                   help="INSEE density grid to join to the communes (CSV/XLSX)")
    p.add_argument("--services", type=Path, help="services file (CSV, XLSX, GeoJSON, …)")
    p.add_argument("--waiting", nargs="+", metavar="FILE|FOLDER|SOURCE=FILE",
                   help="waiting-list / activity-return files (CSV/XLSX), or folders of them; "
                   "SOURCE=FILE gives the source of a file without a 'source' column (CAF, "
                   "MSA, \"cour d'appel\", service, autre)")
    p.add_argument("--roads", type=Path, help="road network (.osm, .osm.gz/.bz2, .osm.pbf, "
                   ".graphml)")


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
               f"services=sites), reçu {text!r}")
        raise argparse.ArgumentTypeError(msg)
    return name, layer


def add_read_choice_args(p: argparse.ArgumentParser) -> None:
    """Add ``--layer`` (repeatable) and ``--densite-niveaux`` to a subcommand."""
    p.add_argument("--layer", dest="layers", type=layer_choice, action="append", default=[],
                   metavar="[ENTREE=]COUCHE",
                   help="GeoPackage layer to read: COUCHE for the communes file, or "
                        "communes=…, services=…, densite=… (repeatable); required when a "
                        "GeoPackage has several layers and none named like the input")
    p.add_argument("--densite-niveaux", dest="density_levels", type=int, choices=(4, 7),
                   help="levels of the INSEE density grid (4 or 7); default: 7 when the "
                        "density column's name has a 7 (dens7), else 4")


def read_choices_from_args(args: argparse.Namespace) -> ReadChoices:
    """Return the reading choices (layers, density levels) of a command's arguments."""
    from coverage.io.inputs import ReadChoices

    return ReadChoices(layers=dict(getattr(args, "layers", None) or []),
                       density_levels=getattr(args, "density_levels", None))
