"""``python -m coverage.cli``: the same as the ``zones-blanches`` command."""

from __future__ import annotations

import sys

from coverage.cli import main

__all__: list[str] = []

sys.exit(main())
