"""``zones-blanches sites``: read the arguments, call the library, print the result."""

from __future__ import annotations

from coverage.siting import sites_from_cli

__all__ = ["sites_from_cli"]
