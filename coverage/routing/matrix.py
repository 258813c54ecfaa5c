"""Bounded per-source searches on a road graph: the matrix and the isochrones' minutes.

Places come snapped to the graph's nodes (:class:`Snap`, made by
:meth:`coverage.routing.road.RoadEngine.snap`); every time includes the place's straight
connector leg (minutes at ``settings.access_speed_kmh``). All times are minutes, distances
metres in the network's metric CRS.

* **Bounded matrix** (:meth:`BoundedSearch.pairs`): one compiled bounded search per
  service node (:class:`~coverage.routing.kernel.SearchGraph`), costing the nodes it
  reaches; the engine's ``matrix`` returns the pairs within the cut-off as a long table.
* **Dense per-source rows** (:meth:`BoundedSearch.dense_blocks`): one Dijkstra per service
  node with ``limit`` = cut-off, in chunks of sources so that a chunk holds at most
  ``CHUNK_BYTES`` of float64 rows, kept as float32.
* **Per-source minutes for the isochrones** (:meth:`BoundedSearch.sparse_rows`): one
  bounded Dijkstra per service node on the disc it can reach — the nodes within
  cut-off × the largest straight-line speed of any arc (no path of ``t`` minutes ends
  farther), gathered from square buckets of nodes — so that the time follows the reach,
  not the graph; the same minutes as on the whole graph (tested exactly), returned as a
  CSR of the reached nodes. The whole graph is searched when the disc would hold more than
  ``DISC_MAX_SHARE`` of it.

Several services on one node share one search (from the smallest connector leg); the values
and the cut-off test are the same in both forms: float64 Dijkstra minutes plus the connector
leg, rounded to float32, kept when ``<= float32(cutoff_min)``. Unreachable, beyond the
cut-off or off the network is NaN (dense) or absent (sparse), never a magic number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from coverage.routing.kernel import SearchGraph
from coverage.routing.network import RoadNetwork

__all__ = [
    "CHUNK_BYTES",
    "DISC_BUCKET_M",
    "DISC_MAX_SHARE",
    "BoundedSearch",
    "Snap",
]

#: Memory budget of one chunk of the bounded per-source Dijkstra (float64 rows), bytes.
CHUNK_BYTES = 256 * 2**20
#: A bounded per-source search runs on the disc it can reach when the nodes gathered for it
#: are at most this share of the graph (else on the whole graph). Measured on the synthetic
#: benchmark graphs (45 min, 120 km/h): at 3 % of 4.2 M nodes the disc costs 14 ms per site
#: against 20 ms on the whole graph; at 13 % of 1 M nodes 12 ms against 6 ms.
DISC_MAX_SHARE = 0.06
#: Side of the buckets of nodes used to gather a disc, metres (at least).
DISC_BUCKET_M = 5_000.0


@dataclass
class Snap:
    """Places snapped to a network's nodes.

    Attributes
    ----------
    node
        Index of the nearest node (int64).
    distance_m
        Straight-line distance to it, metres, in the network's metric CRS.
    minutes
        Connector-leg minutes at the access speed.
    off_network
        True where ``distance_m`` exceeds the snap limit (minutes are then NaN).
    """

    node: np.ndarray
    distance_m: np.ndarray
    minutes: np.ndarray
    off_network: np.ndarray


@dataclass(frozen=True)
class _Sources:
    """Sources on the network within the cut-off of their node, grouped by node.

    Attributes
    ----------
    ok
        Indices (into the snap) of those sources.
    nodes
        Their distinct nodes.
    inverse
        Each source's position in ``nodes``.
    min_conn
        Smallest connector minutes per node.
    """

    ok: np.ndarray
    nodes: np.ndarray
    inverse: np.ndarray
    min_conn: np.ndarray

    @classmethod
    def of(cls, snap: Snap, cutoff_min: float) -> _Sources:
        """Group the on-network places of ``snap`` within ``cutoff_min`` by node."""
        ok = np.flatnonzero(~snap.off_network & (snap.minutes <= cutoff_min))
        nodes, inverse = np.unique(snap.node[ok], return_inverse=True)
        min_conn = np.full(nodes.shape[0], np.inf)
        np.minimum.at(min_conn, inverse, snap.minutes[ok])
        return cls(ok, nodes, inverse, min_conn)

    def members(self) -> dict[int, list[int]]:
        """Return, for each node position, the positions in ``ok`` of its sources."""
        out: dict[int, list[int]] = {}
        for j in range(self.ok.shape[0]):
            out.setdefault(int(self.inverse[j]), []).append(j)
        return out


@dataclass(frozen=True)
class _Buckets:
    """Nodes sorted by square bucket (row-major) to gather a disc quickly.

    Attributes
    ----------
    x0, y0
        Origin of the buckets, metres (network CRS).
    side
        Side of a bucket, metres.
    ncx, ncy
        Buckets per row and per column.
    order
        Node indices sorted by bucket.
    starts
        Position in ``order`` of the first node of each bucket (and the end).
    """

    x0: float
    y0: float
    side: float
    ncx: int
    ncy: int
    order: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, network: RoadNetwork) -> _Buckets:
        """Sort the nodes of ``network`` into buckets of at least ``DISC_BUCKET_M``."""
        x, y = network.x, network.y
        x0, y0 = float(x.min()), float(y.min())
        area = max(float(x.max()) - x0, 1.0) * max(float(y.max()) - y0, 1.0)
        side = max(DISC_BUCKET_M, float(np.sqrt(area / 4e6)))  # at most ~4 M buckets
        cx = ((x - x0) // side).astype(np.int64)
        cy = ((y - y0) // side).astype(np.int64)
        ncx, ncy = int(cx.max()) + 1, int(cy.max()) + 1
        key = cy * ncx + cx
        order = np.argsort(key, kind="stable")
        starts = np.searchsorted(key[order], np.arange(ncx * ncy + 1))
        return cls(x0, y0, side, ncx, ncy, order, starts)

    def square(self, px: float, py: float, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``order`` ranges (starts, ends) of the buckets meeting a square.

        The square is centred on ``(px, py)`` with half-side ``radius_m`` (metres).
        """
        c0, c1 = (int(np.clip((v - self.x0) // self.side, 0, self.ncx - 1))
                  for v in (px - radius_m, px + radius_m))
        r0, r1 = (int(np.clip((v - self.y0) // self.side, 0, self.ncy - 1))
                  for v in (py - radius_m, py + radius_m))
        rows = np.arange(r0, r1 + 1) * self.ncx
        return self.starts[rows + c0], self.starts[rows + c1 + 1]


def _subgraph(graph: sp.csr_array, indptr: np.ndarray, inside: np.ndarray,
              local: np.ndarray) -> sp.csr_array:
    """Return the arcs of ``graph`` between the nodes ``inside`` (sorted), renumbered.

    ``local`` maps every node to its position in ``inside`` (−1 outside).
    """
    starts = indptr[inside]
    counts = indptr[inside + 1] - starts
    first = np.cumsum(counts) - counts
    arc = np.arange(int(counts.sum())) + np.repeat(starts - first, counts)
    cols = local[np.asarray(graph.indices)[arc]]
    row = np.repeat(np.arange(inside.shape[0]), counts)
    keep = cols >= 0
    sub_ptr = np.zeros(inside.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[keep], minlength=inside.shape[0]), out=sub_ptr[1:])
    itype = np.int32 if int(keep.sum()) < 2**31 - 1 else np.int64
    # built from CSR arrays: explicit zero-minute arcs stay arcs
    return sp.csr_array((np.asarray(graph.data)[arc[keep]], cols[keep].astype(itype),
                         sub_ptr.astype(itype)), shape=(inside.shape[0],) * 2)


class BoundedSearch:
    """Bounded Dijkstra searches from snapped places on one road network.

    The graph searched is passed to each call (the reversed graph for the family's trip
    commune → service, the graph itself for service → commune); its nodes are those of
    ``network``. The disc buckets and the largest arc speed are computed once, on first use.

    Parameters
    ----------
    network
        The road network (node coordinates in its metric CRS, metres).
    """

    def __init__(self, network: RoadNetwork) -> None:
        self.network = network
        self._speed: float | None = None
        self._cells: _Buckets | None = None

    def max_speed_m_per_min(self) -> float:
        """Return the largest straight-line speed of an arc, metres (network CRS) per minute.

        No path of ``t`` minutes ends farther than ``t`` × this speed from its start
        (triangle inequality over its arcs), so a search bounded at ``t`` never leaves that
        disc. ``inf`` when an arc of non-zero length takes 0 minutes.
        """
        if self._speed is None:
            net = self.network
            tails, heads = net.arcs()
            length = np.hypot(net.x[heads] - net.x[tails], net.y[heads] - net.y[tails])
            minutes = np.asarray(net.minutes.data, dtype=np.float64)
            speed = np.divide(length, minutes, out=np.zeros_like(length), where=minutes > 0)
            speed[(minutes <= 0) & (length > 0)] = np.inf
            self._speed = float(speed.max()) if speed.size else 0.0
        return self._speed

    def _buckets(self) -> _Buckets:
        if self._cells is None:
            self._cells = _Buckets.of(self.network)
        return self._cells

    def disc_graph(self, graph: sp.csr_array, indptr: np.ndarray, centre: int,
                   radius_m: float, local: np.ndarray
                   ) -> tuple[sp.csr_array, np.ndarray] | None:
        """Return the subgraph around node ``centre`` that holds every node within a radius.

        The nodes are those of the buckets meeting the square of half-side ``radius_m``
        (metres) around ``centre`` — a superset of the disc.

        Parameters
        ----------
        graph, indptr
            The graph searched and its ``indptr`` as int64.
        centre
            Node index of the source.
        radius_m
            Radius, metres (network CRS).
        local
            Scratch array of −1 per node (the caller's own: no state shared between
            threads), restored before returning.

        Returns
        -------
        tuple or None
            ``(subgraph, sorted global indices of its nodes)``; None when it would hold more
            than ``DISC_MAX_SHARE`` of the graph.
        """
        cells = self._buckets()
        lo, hi = cells.square(float(self.network.x[centre]), float(self.network.y[centre]),
                              radius_m)
        if int((hi - lo).sum()) > DISC_MAX_SHARE * self.network.n_nodes:
            return None
        inside = np.sort(np.concatenate([cells.order[a:b] for a, b in zip(lo, hi,
                                                                            strict=True)]))
        local[inside] = np.arange(inside.shape[0])
        try:
            sub = _subgraph(graph, indptr, inside, local)
        finally:
            local[inside] = -1
        return sub, inside

    def _search(self, graph: sp.csr_array, indptr: np.ndarray, node: int, limit: float,
                scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the nodes reached from ``node`` within ``limit`` minutes and their minutes.

        On the disc the search can reach when it is small enough, else on the whole graph.
        """
        radius = limit * self.max_speed_m_per_min() * (1.0 + 1e-9) + 1.0
        disc = (self.disc_graph(graph, indptr, node, radius, scratch)
                if np.isfinite(radius) else None)
        if disc is None:
            row = dijkstra(graph, directed=True, indices=node, limit=limit)
            reached = np.flatnonzero(row <= limit)  # dijkstra leaves inf beyond it
            return reached, row[reached]
        sub, inside = disc
        source = int(np.searchsorted(inside, node))
        row = dijkstra(sub, directed=True, indices=source, limit=limit)
        local = np.flatnonzero(row <= limit)
        return inside[local], row[local]

    def sparse_rows(self, graph: sp.csr_array, snap: Snap, cutoff_min: float
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(place row, node indices, float32 minutes)`` of bounded per-source runs.

        The values and the cut-off test are those of :meth:`dense_blocks`. Each search runs
        on the disc it can reach (:meth:`max_speed_m_per_min`), which holds every path
        within the bound: the same minutes as on the whole graph, in time and memory
        following the disc, not the graph (the whole graph when the disc would hold most
        of it).
        """
        src = _Sources.of(snap, cutoff_min)
        if src.ok.shape[0] == 0:
            return
        members = src.members()
        cut = np.float32(cutoff_min)
        indptr = np.asarray(graph.indptr, dtype=np.int64)
        scratch = np.full(self.network.n_nodes, -1, dtype=np.int64)
        for c in range(src.nodes.shape[0]):
            limit = float(cutoff_min - src.min_conn[c])
            reached, base = self._search(graph, indptr, int(src.nodes[c]), limit, scratch)
            for j in members[c]:
                minutes = (base + snap.minutes[src.ok[j]]).astype(np.float32)
                within = minutes <= cut
                yield int(src.ok[j]), reached[within], minutes[within]

    def dense_blocks(self, graph: sp.csr_array, snap: Snap, cutoff_min: float,
                     columns: np.ndarray | None = None
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(place rows, float32 minutes block)`` of bounded per-source runs.

        Minutes include the place's connector leg; values beyond ``cutoff_min`` or
        unreachable are NaN. ``columns`` restricts the block to those nodes.
        """
        n = self.network.n_nodes
        src = _Sources.of(snap, cutoff_min)
        if src.ok.shape[0] == 0:
            return
        per_chunk = max(1, int(CHUNK_BYTES // (8 * n)))
        order = np.argsort(src.min_conn, kind="stable")
        for start in range(0, src.nodes.shape[0], per_chunk):
            chunk = order[start:start + per_chunk]
            limit = float(cutoff_min - src.min_conn[chunk].min())
            dist = dijkstra(graph, directed=True, indices=src.nodes[chunk], limit=limit)
            if columns is not None:
                dist = dist[:, columns]
            pos_in_chunk = {int(c): i for i, c in enumerate(chunk)}
            for j in range(src.ok.shape[0]):
                if int(src.inverse[j]) not in pos_in_chunk:
                    continue
                row = dist[pos_in_chunk[int(src.inverse[j])]] + snap.minutes[src.ok[j]]
                row = row.astype(np.float32)
                row[~(row <= np.float32(cutoff_min))] = np.nan
                yield np.array([src.ok[j]]), row[None, :]

    def per_source_dense(self, graph: sp.csr_array, snap: Snap, cutoff_min: float
                         ) -> np.ndarray:
        """Return the minutes of every place to every node, dense.

        Returns
        -------
        numpy.ndarray
            float32, places × nodes, NaN beyond the cut-off, unreachable or for a place off
            the network.
        """
        out = np.full((snap.node.shape[0], self.network.n_nodes), np.nan, dtype=np.float32)
        for rows, block in self.dense_blocks(graph, snap, cutoff_min):
            out[rows] = block
        return out

    def per_source_sparse(self, graph: sp.csr_array, snap: Snap, cutoff_min: float
                          ) -> sp.csr_array:
        """Return the minutes of every place to the nodes it reaches, as a float32 CSR.

        Row ``i`` holds the nodes reached by place ``i`` within ``cutoff_min`` (column
        indices sorted) and their minutes; a stored value may be 0.0.
        """
        rows = snap.node.shape[0]
        cols: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * rows
        vals: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * rows
        for row, nodes, minutes in self.sparse_rows(graph, snap, cutoff_min):
            cols[row], vals[row] = nodes, minutes
        counts = np.array([c.shape[0] for c in cols], dtype=np.int64)
        indptr = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        out = sp.csr_array((np.concatenate([np.zeros(0, np.float32), *vals]),
                            np.concatenate([np.zeros(0, np.int64), *cols]), indptr),
                           shape=(rows, self.network.n_nodes))
        out.has_sorted_indices = True
        return out

    def pairs(self, search: SearchGraph, sources: Snap, targets: Snap, cutoff_min: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the (source, target) pairs within ``cutoff_min``, both connector legs in.

        One compiled bounded search per distinct source node (:meth:`SearchGraph.bounded`,
        limit = cut-off − the node's smallest connector leg, plus a float32 margin); a
        search costs the nodes it reaches. Values: float64 minutes plus the source's
        connector leg, rounded to float32, plus the target's connector leg in float32,
        kept when ``<= float32(cutoff_min)`` (the values of :meth:`dense_blocks`).

        Parameters
        ----------
        search
            The compiled graph searched from the sources (its nodes are the network's).
        sources, targets
            Snapped places; off-network ones are left out.
        cutoff_min
            Cut-off, minutes.

        Returns
        -------
        tuple of numpy.ndarray
            Source rows, target rows (on-network targets only) and float32 minutes, sorted
            by source row then target row.
        """
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
        src = _Sources.of(sources, cutoff_min)
        t_ok = np.flatnonzero(~targets.off_network)
        if src.ok.shape[0] == 0 or t_ok.shape[0] == 0:
            return empty
        # the searches read the minutes at the targets' distinct nodes only
        t_nodes, t_inv = np.unique(targets.node[t_ok], return_inverse=True)
        t_conn = targets.minutes[t_ok].astype(np.float32)
        cut = np.float32(cutoff_min)
        limits = (cutoff_min - src.min_conn) + (abs(cutoff_min) * 1e-6 + 1e-9)
        members = src.members()
        parts_s, parts_t, parts_m = [], [], []
        for c, _, at_nodes in search.bounded(src.nodes, limits, at=t_nodes):
            near = np.isfinite(at_nodes)
            if not near.any():
                continue
            sel = np.flatnonzero(near[t_inv])  # positions in t_ok on a reached node
            base = at_nodes[t_inv[sel]]
            for j in members[c]:
                total = (base + sources.minutes[src.ok[j]]).astype(np.float32) + t_conn[sel]
                keep = total <= cut
                parts_s.append(np.full(int(keep.sum()), src.ok[j], dtype=np.int64))
                parts_t.append(t_ok[sel[keep]])
                parts_m.append(total[keep])
        if not parts_s:
            return empty
        rows, cols = np.concatenate(parts_s), np.concatenate(parts_t).astype(np.int64)
        values = np.concatenate(parts_m).astype(np.float32)
        order = np.lexsort((cols, rows))
        return rows[order], cols[order], values[order]
