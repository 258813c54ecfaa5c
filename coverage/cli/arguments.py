"""Argument types and groups shared by the subcommands, and the settings they give.

Only the command line knows argparse: the library receives :class:`~coverage.settings.Settings`
and plain values built here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from coverage.settings import Settings, settings_with_overrides

__all__ = [
    "add_input_args",
    "add_settings_arg",
    "csv_list",
    "key_value",
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
    p.add_argument("--waiting", type=Path, help="waiting-list / activity-returns file")
    p.add_argument("--roads", type=Path, help="road network (.osm, .osm.gz/.bz2, .osm.pbf, "
                   ".graphml)")
