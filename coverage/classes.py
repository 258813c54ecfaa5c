"""Classes of minutes and their colours: one home for the app's map, the PNG and the report.

The classes are built from a run's white-zone thresholds (``≤ 20``, ``20–30``, ``30–45``,
``> 45 min`` for the default 20/30/45), so that a commune has the same colour wherever it is
drawn, and the class edges are the thresholds a planner chooses between. The palette is
viridis, reversed (near = yellow, far = dark violet): sequential, readable by red/green
colour-blind readers and in grey. Communes with no reachable service are grey. White zones
are hatched in white on their class colour (:data:`HATCH_COLOUR`); they are always in a
class darker than the first, so the white hatch stays visible.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from coverage.labels import REASON_UNREACHABLE

__all__ = [
    "HATCH_COLOUR",
    "UNREACHABLE_COLOUR",
    "VIRIDIS",
    "MinuteClasses",
    "minute_classes",
]

#: Viridis sampled at nine even steps, from dark violet (0) to yellow (1).
VIRIDIS: tuple[str, ...] = (
    "#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c",
    "#28ae80", "#5ec962", "#addc30", "#fde725",
)
#: Fill of communes with no reachable service (NaN minutes).
UNREACHABLE_COLOUR = "#9a9a9a"
#: Colour of the hatching of white zones, drawn over their class colour.
HATCH_COLOUR = "#ffffff"
#: Fewest class edges: with fewer thresholds, edges are added (half the lowest, 1.5 × the
#: highest) so that the map still shows a gradient.
MIN_EDGES = 3


def _fr_minutes(value: float) -> str:
    """Return minutes as written in French labels: ``30``, ``22,5``."""
    return f"{value:g}".replace(".", ",")


@dataclass(frozen=True)
class MinuteClasses:
    """Classes of minutes to the nearest service, with their colours and French labels.

    Attributes
    ----------
    edges
        Upper bounds of the classes but the last, minutes, increasing; a value equal to an
        edge is in the class below it (``≤``).
    colours
        ``#rrggbb`` fill of each class, ``len(edges) + 1`` of them, nearest first.
    """

    edges: tuple[float, ...]
    colours: tuple[str, ...]

    def index(self, minutes: float | None) -> int:
        """Return the class of ``minutes`` (0 nearest), -1 when unreachable (NaN/None)."""
        if minutes is None or not math.isfinite(minutes):
            return -1
        return int(np.searchsorted(np.asarray(self.edges), minutes, side="left"))

    def indices(self, minutes: Iterable[float]) -> np.ndarray:
        """Return the class of each value (-1 unreachable), as an integer array."""
        values = np.asarray(list(minutes), dtype=float)
        cls = np.searchsorted(np.asarray(self.edges), values, side="left")
        return np.where(np.isfinite(values), cls, -1)

    def colour(self, minutes: float | None) -> str:
        """Return the fill colour of ``minutes`` (:data:`UNREACHABLE_COLOUR` when NaN)."""
        i = self.index(minutes)
        return UNREACHABLE_COLOUR if i < 0 else self.colours[i]

    @property
    def labels(self) -> list[str]:
        """French label of each class: ``≤ 20 min``, ``20 à 30 min``, ``> 45 min``."""
        e = [_fr_minutes(x) for x in self.edges]
        return ([f"≤ {e[0]} min"] + [f"{a} à {b} min" for a, b in itertools.pairwise(e)]
                + [f"> {e[-1]} min"])

    @property
    def unreachable_label(self) -> str:
        """French label of communes with no reachable service."""
        return REASON_UNREACHABLE

    def rows(self) -> list[tuple[str, str]]:
        """Return ``(colour, label)`` of every class, then of the unreachable communes."""
        return [*zip(self.colours, self.labels, strict=True),
                (UNREACHABLE_COLOUR, self.unreachable_label)]


def minute_classes(thresholds: Sequence[float]) -> MinuteClasses:
    """Build the classes of a run from its white-zone thresholds.

    Parameters
    ----------
    thresholds
        The run's thresholds, minutes (any order, duplicates ignored; at least one).

    Returns
    -------
    MinuteClasses
        Edges: the thresholds (with half the lowest and 1.5 × the highest added when there
        are fewer than three); colours: viridis reversed, evenly spread.

    Raises
    ------
    ValueError
        No finite positive threshold.
    """
    edges = sorted({float(t) for t in thresholds if math.isfinite(t) and t > 0})
    if not edges:
        msg = f"minute classes need at least one positive threshold, got {list(thresholds)}"
        raise ValueError(msg)
    if len(edges) < MIN_EDGES:
        edges = sorted({edges[0] / 2, *edges})
    if len(edges) < MIN_EDGES:
        edges.append(edges[-1] * 1.5)
    edges = edges[: len(VIRIDIS) - 1]
    n = len(edges) + 1
    picks = np.rint(np.linspace(len(VIRIDIS) - 1, 0, n)).astype(int)
    return MinuteClasses(tuple(edges), tuple(VIRIDIS[i] for i in picks))
