"""zones-blanches: white zones in France's offer of family mediation and espaces de rencontre.

The import name ``coverage`` is shared with coverage.py; ``__project__`` lets the CLI check
that the package found on ``sys.path`` is this one.
"""

from __future__ import annotations

__project__ = "zones-blanches"
__version__ = "0.1.0"

__all__ = ["__project__", "__version__"]
