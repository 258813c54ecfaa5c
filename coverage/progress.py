"""Progress bars for work longer than about two seconds (tqdm on stderr)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

__all__ = ["progress"]

T = TypeVar("T")


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar (with ETA) on stderr.

    The bar is hidden when stderr is not a terminal unless ``ZB_PROGRESS=1``, and always
    hidden when ``ZB_PROGRESS=0``.
    """
    flag = os.environ.get("ZB_PROGRESS")
    disable = flag == "0" or (flag != "1" and not sys.stderr.isatty())
    yield from tqdm(items, total=total, desc=desc, unit=unit, disable=disable, leave=False)
