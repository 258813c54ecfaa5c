"""zones-blanches: white zones in France's offer of family mediation and espaces de rencontre.

The import name ``coverage`` is shared with coverage.py; ``__project__`` lets the CLI check
that the package found on ``sys.path`` is this one.
"""

from __future__ import annotations

from coverage._version import __project__, __version__

__all__ = ["__project__", "__version__"]
