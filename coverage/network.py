"""Road network: OSM file → car graph → :class:`RoadNetwork` (CSR matrix of minutes).

TO BE COMPLETED by the engine work (issue 3): OSM/GraphML readers, speeds, one-ways,
ferries, components, cache. The data class below is the contract the other stages use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class NetworkReport:
    """What the build kept and dropped (counts), for logs and manifests."""

    source: str
    nodes: int
    arcs: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoadNetwork:
    """A drivable road graph ready for routing.

    Attributes
    ----------
    node_ids
        OSM node id of each graph node (int64), index ``i`` ↔ row/column ``i``.
    x, y
        Node coordinates in ``crs``, metres.
    lon, lat
        Node coordinates in EPSG:4326, degrees.
    crs
        Metric CRS of ``x``/``y`` (EPSG:2154 in metropolitan France, local UTM in a DROM).
    minutes
        CSR matrix (n × n) of arc travel times, minutes; the minimum over parallel arcs.
    metres
        CSR matrix with the same sparsity as ``minutes``: length in metres of the arc kept.
    report
        Counts of what was kept and dropped.
    """

    node_ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    crs: str
    minutes: sp.csr_array
    metres: sp.csr_array
    report: NetworkReport

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_ids.shape[0])
