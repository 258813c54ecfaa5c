"""``zones-blanches fetch`` and ``prepare``: read the arguments, call the library, print."""

from __future__ import annotations

from coverage.io.official.fetch import fetch_from_cli
from coverage.io.official.prepare import prepare_from_cli

__all__ = ["fetch_from_cli", "prepare_from_cli"]
