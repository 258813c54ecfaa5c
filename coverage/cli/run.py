"""``zones-blanches run``: read the arguments, call the library, print the result."""

from __future__ import annotations

from coverage.batch import run_from_cli

__all__ = ["run_from_cli"]
