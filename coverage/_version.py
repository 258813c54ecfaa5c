"""The project's name and version, read from the installed package metadata."""

from __future__ import annotations

import importlib.metadata

__all__ = ["__project__", "__version__"]

#: Distribution name; the entry points compare it with ``coverage.__project__`` to be sure
#: that ``import coverage`` found this project and not coverage.py.
__project__ = "zones-blanches"

try:
    __version__ = importlib.metadata.version(__project__)
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+inconnue"
