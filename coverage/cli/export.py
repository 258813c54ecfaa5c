"""``zones-blanches export``: read the arguments, call the library, print the result."""

from __future__ import annotations

from coverage.export import export_from_cli

__all__ = ["export_from_cli"]
