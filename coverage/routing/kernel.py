"""Compiled road searches: exact Δ-stepping on a CSR graph renumbered along a Hilbert curve.

:class:`SearchGraph` is the routing core of :class:`~coverage.routing.road.RoadEngine`'s
nearest-service pass and of the bounded service × commune matrix. Times are minutes,
lengths metres.

* **Renumbering**: the nodes are renumbered once, in the order of a Hilbert curve over
  their metric coordinates (:func:`hilbert_order`), so that nodes close on the ground sit
  close in memory; inputs and outputs stay in the network's own node numbers.
* **Layout**: the CSR offsets are int32 when the arcs fit, the heads int32, and each arc's
  minutes and metres sit side by side in one float64 array (one cache line per arc run
  instead of three arrays); the buckets are a power of two, indexed by a mask.
* **Search**: sequential Δ-stepping (Meyer & Sanders), compiled with numba: nodes wait in
  buckets of width Δ minutes; the current bucket is emptied in any order, a node improved
  again in the same bucket is scanned again (label-correcting), so the result is exact.
  Every distance is the minimum over the in-arcs of (final distance of the tail + arc
  minutes), the same float64 sums, in the same order, as a heap Dijkstra's: the minutes
  equal those of ``scipy.sparse.csgraph.dijkstra`` bit for bit (tested). With equal
  minutes by two paths (exact ties) the nearest place or the path whose metres are summed
  may differ from another exact search; both are shortest.
* **Prefetching**: the search is bound by memory latency (the wave front is scattered over
  the graph); while a bucket is emptied, the node state and arcs of the entries a few
  places down are requested ahead (``llvm.prefetch``, a hint with no effect on results).
* **Multi-source**: each place starts at its node with its connector minutes (one
  search for all places, no virtual node); the search also carries, along the tree it
  builds, the place reached and the metres of the path, so no predecessor walk is needed.
* **Bounded**: a search stops past a limit (minutes); only the nodes touched are reset,
  so a bounded search costs what it reaches, not the size of the graph.

Arc minutes must be finite and ≥ 0 (checked by :class:`~coverage.routing.network.RoadNetwork`).
numba compiles the search on first use and caches it on disk (``__pycache__``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

# numba probes coverage.py with ``import coverage``, which would find this package (same
# import name): hide it while numba is imported so that numba sees no coverage.py.
_OURS = sys.modules.get("coverage")
sys.modules["coverage"] = None  # type: ignore[assignment]
try:
    import numba
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic
finally:
    sys.modules["coverage"] = _OURS  # type: ignore[assignment]

__all__ = ["BUCKETS_MAX", "HILBERT_BITS", "NUMBA_VERSION", "SearchGraph", "compiled",
           "hilbert_order"]

#: Version of numba that compiles the search.
NUMBA_VERSION: str = numba.__version__


def compiled(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compile a loop over numpy arrays with numba (cached on disk, releasing the GIL).

    The one place where the package's other modules get numba, which this module imports
    with the package hidden from numba's probe of coverage.py.

    Parameters
    ----------
    func
        A function numba can compile in nopython mode (positional numpy arrays and scalars).

    Returns
    -------
    Callable
        The compiled function, same arguments and results.
    """
    return numba.njit(cache=True, nogil=True)(func)  # type: ignore[no-any-return]

#: Resolution of the Hilbert curve used to renumber the nodes (cells per side = 2**bits).
HILBERT_BITS = 16
#: Largest number of Δ buckets kept at once (a power of two); arcs longer than
#: ``BUCKETS_MAX × Δ`` minutes (ferries) are filed in the farthest bucket and re-filed when
#: it comes.
BUCKETS_MAX = 1024
#: Prefetch distances of the search, in bucket entries ahead of the one scanned: the node
#: state and first-arc offset of the entry ``PREFETCH_NODE`` ahead, the arcs of the entry
#: ``PREFETCH_ARCS`` ahead (measured on the France-sized benchmark graph: 3/6 to 6/12 cost
#: the same within the noise, none at all ≈ 15 % more).
PREFETCH_NODE = 10
PREFETCH_ARCS = 5


def hilbert_order(x: np.ndarray, y: np.ndarray, bits: int = HILBERT_BITS) -> np.ndarray:
    """Return the node order along a Hilbert curve over their coordinates.

    Parameters
    ----------
    x, y
        Node coordinates, metres (any metric CRS).
    bits
        Curve resolution: the bounding box is cut into ``2**bits`` cells per side.

    Returns
    -------
    numpy.ndarray
        int64 permutation: ``order[k]`` is the node placed ``k``-th (stable for nodes in
        one cell).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    side = (1 << bits) - 1
    span = max(float(np.ptp(x)), float(np.ptp(y)), 1e-9)
    xi = ((x - x.min()) / span * side).astype(np.int64)
    yi = ((y - y.min()) / span * side).astype(np.int64)
    d = _hilbert_keys_jit(xi, yi, bits)
    return np.argsort(d, kind="stable").astype(np.int64)


def _hilbert_keys(xi: np.ndarray, yi: np.ndarray, bits: int) -> np.ndarray:
    """Return the Hilbert-curve index of integer cells ``(xi, yi)`` in ``[0, 2**bits)``."""
    side = (1 << bits) - 1
    out = np.empty(xi.shape[0], dtype=np.int64)
    for i in range(xi.shape[0]):
        x, y, d = xi[i], yi[i], 0
        s = 1 << (bits - 1)
        while s > 0:
            rx = 1 if (x & s) > 0 else 0
            ry = 1 if (y & s) > 0 else 0
            d += s * s * ((3 * rx) ^ ry)
            if ry == 0:  # rotate the quadrant so that the curve stays continuous
                if rx == 1:
                    x, y = side - x, side - y
                x, y = y, x
            s >>= 1
        out[i] = d
    return out


_hilbert_keys_jit: Callable[[np.ndarray, np.ndarray, int], np.ndarray] = numba.njit(
    cache=True, nogil=True)(_hilbert_keys)


def _prefetch_intrinsic(typingctx: object, array: types.Array, index: types.Integer
                        ) -> tuple[object, Callable[..., object]]:
    """Hint the CPU to load ``array[index]`` into its caches (``llvm.prefetch``; no fault)."""
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> object:
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        i = context.cast(builder, args[1], idxty, types.intp)
        ptr = _CGUTILS.get_item_pointer(context, builder, aryty, ary, [i], wraparound=False,
                                       boundscheck=False)
        i8p = ir.PointerType(ir.IntType(8))
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = _CGUTILS.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read access, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


_CGUTILS: Any = cgutils  # numba's code-generation helpers (untyped)
_INTRINSIC: Any = intrinsic
_prefetch: Callable[[np.ndarray, int], None] = _INTRINSIC(_prefetch_intrinsic)


def _file(bk: np.ndarray, bn: np.ndarray, bc: np.ndarray, b: int, key: float,
          node: int) -> tuple[np.ndarray, np.ndarray]:
    """Append ``(key, node)`` to bucket ``b``, doubling every bucket's room when full."""
    if bc[b] == bk.shape[1]:
        room = bk.shape[1]
        k2 = np.empty((bk.shape[0], 2 * room))
        k2[:, :room] = bk
        n2 = np.empty((bk.shape[0], 2 * room), np.int32)
        n2[:, :room] = bn
        bk, bn = k2, n2
    bk[b, bc[b]] = key
    bn[b, bc[b]] = node
    bc[b] += 1
    return bk, bn


def _delta_search(indptr: np.ndarray, indices: np.ndarray, arcs: np.ndarray,  # noqa: C901, PLR0912, PLR0913, PLR0915, PLR0917
                  seeds: np.ndarray, seed_minutes: np.ndarray, limit: float,
                  dist: np.ndarray, length: np.ndarray, label: np.ndarray,
                  touched: np.ndarray, delta: float, bk: np.ndarray, bn: np.ndarray,
                  bc: np.ndarray, ahead_node: int, ahead_arcs: int
                  ) -> tuple[int, np.ndarray, np.ndarray]:
    """Exact Δ-stepping from ``seeds`` (compiled; see the module docstring).

    One loop with positional arrays, as numba compiles it best (hence the noqa). Arc ``a``
    goes to ``indices[a]`` in ``arcs[2a]`` minutes over ``arcs[2a + 1]`` metres; the number
    of buckets (rows of ``bk``) is a power of two. While the current bucket is emptied
    (a stack), the state of the entry ``ahead_node`` places down and the arcs of the entry
    ``ahead_arcs`` places down are prefetched (0: not prefetched).

    ``dist`` (inf), ``length`` and ``label`` (−1) are filled for the nodes touched, listed
    in ``touched``; nodes with ``dist <= limit`` are final. Returns the number touched
    and the (possibly grown) bucket arrays.
    """
    nb = bk.shape[0]
    mask = nb - 1
    bc[:] = 0
    inv = 1.0 / delta
    ntouched = 0
    pending = 0
    for j in range(seeds.shape[0]):
        v = seeds[j]
        d = seed_minutes[j]
        if d < dist[v]:
            if dist[v] == np.inf:
                touched[ntouched] = v
                ntouched += 1
            dist[v] = d
            length[v] = 0.0
            label[v] = j
    if ntouched == 0:
        return 0, bk, bn
    cur = np.int64(dist[touched[0]] * inv)
    for t in range(ntouched):
        cur = min(cur, np.int64(dist[touched[t]] * inv))
    for t in range(ntouched):
        v = touched[t]
        ab = min(np.int64(dist[v] * inv), cur + nb - 1)
        bk, bn = _file_jit(bk, bn, bc, ab & mask, dist[v], v)
        pending += 1
    while pending > 0:
        b = cur & mask
        top = bc[b]
        if top == 0:
            cur += 1
            if cur * delta > limit:
                break
            continue
        if 0 < ahead_node < top:
            w = bn[b, top - 1 - ahead_node]
            _prefetch(dist, w)
            _prefetch(indptr, w)
        if 0 < ahead_arcs < top:
            a0 = indptr[bn[b, top - 1 - ahead_arcs]]
            _prefetch(indices, a0)
            _prefetch(arcs, 2 * a0)
        top -= 1
        bc[b] = top
        u = bn[b, top]
        du = bk[b, top]
        pending -= 1
        if du != dist[u] or du > limit:  # stale entry, or beyond the limit
            continue
        au = np.int64(du * inv)
        if au > cur:  # filed in the farthest bucket (long arc): file it where it belongs
            bk, bn = _file_jit(bk, bn, bc, min(au, cur + nb - 1) & mask, du, u)
            pending += 1
            continue
        lu = label[u]
        mu = length[u]
        for a in range(indptr[u], indptr[u + 1]):
            v = indices[a]
            nd = du + arcs[2 * a]
            if nd < dist[v]:
                if dist[v] == np.inf:
                    touched[ntouched] = v
                    ntouched += 1
                dist[v] = nd
                length[v] = mu + arcs[2 * a + 1]
                label[v] = lu
                bk, bn = _file_jit(bk, bn, bc, min(np.int64(nd * inv), cur + nb - 1) & mask,
                                   nd, v)
                pending += 1
    return ntouched, bk, bn


_file_jit: Callable[..., tuple[np.ndarray, np.ndarray]] = numba.njit(
    cache=True, nogil=True, inline="always")(_file)
_delta_search_jit: Callable[..., tuple[int, np.ndarray, np.ndarray]] = numba.njit(
    cache=True, nogil=True)(_delta_search)


def _permuted(graph: sp.csr_array, data: list[np.ndarray], order: np.ndarray,
              rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(indptr, indices int32, arcs float64)`` of ``graph`` renumbered.

    Row ``k`` of the result is row ``order[k]`` of ``graph``; columns become ``rank[col]``.
    Arcs keep their order within a row; every stored entry (explicit zeros included) stays
    an arc. ``indptr`` is int32 when the arcs fit (int64 otherwise); ``arcs`` interleaves the
    ``data`` arrays arc by arc (``arcs[len(data) * a + i] = data[i][arc a]``), so that an
    arc's values share a cache line.
    """
    indptr = np.asarray(graph.indptr, dtype=np.int64)
    counts = (indptr[1:] - indptr[:-1])[order]
    new_ptr = np.zeros(order.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=new_ptr[1:])
    arc = np.arange(int(new_ptr[-1]), dtype=np.int64) + np.repeat(indptr[order] - new_ptr[:-1],
                                                                   counts)
    indices = rank[np.asarray(graph.indices)[arc]].astype(np.int32)
    arcs = np.empty((arc.shape[0], len(data)))
    for i, d in enumerate(data):
        arcs[:, i] = np.asarray(d, dtype=np.float64)[arc]
    if new_ptr[-1] < np.iinfo(np.int32).max:
        new_ptr = new_ptr.astype(np.int32)
    return new_ptr, indices, arcs.ravel()


class SearchGraph:
    """A road graph ready for the compiled searches (renumbered CSR, minutes and metres).

    Parameters
    ----------
    minutes
        CSR matrix (n × n) of arc minutes (finite, ≥ 0), the graph searched.
    metres
        CSR matrix with the same sparsity (same ``indptr``/``indices``): arc lengths,
        metres.
    x, y
        Node coordinates, metres (network CRS), for the renumbering.
    renumber
        Renumber the nodes along a Hilbert curve (``False``: keep the network's order).
    prefetch
        Prefetch the node state and arcs of the next entries of a bucket (``False``: no
        prefetching; the same results, for the benchmark's comparison).
    """

    def __init__(self, minutes: sp.csr_array, metres: sp.csr_array, x: np.ndarray,
                 y: np.ndarray, *, renumber: bool = True, prefetch: bool = True) -> None:
        n = int(minutes.shape[0])
        if metres.shape != minutes.shape or metres.nnz != minutes.nnz:
            msg = "metres must have the sparsity of minutes"
            raise ValueError(msg)
        self.n = n
        self.ahead = (PREFETCH_NODE, PREFETCH_ARCS) if prefetch else (0, 0)
        self.order = (hilbert_order(x, y) if renumber
                      else np.arange(n, dtype=np.int64))
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[self.order] = np.arange(n, dtype=np.int64)
        self.indptr, self.indices, self.arcs = _permuted(
            minutes, [np.asarray(minutes.data), np.asarray(metres.data)], self.order,
            self.rank)
        positive = self.minutes[self.minutes > 0]
        # Δ: a quarter of the median arc (a few re-scans, few buckets); measured on the
        # France-sized benchmark graph, 0.05–0.4 min cost the same within 10 %
        self.delta = float(np.median(positive)) / 4.0 if positive.size else 1.0
        top = float(self.minutes.max()) if self.minutes.size else 0.0
        wanted = int(min(max(np.ceil(top / self.delta) + 2, 2), BUCKETS_MAX))
        self.buckets = 1 << (wanted - 1).bit_length()  # a power of two (index by mask)

    @property
    def minutes(self) -> np.ndarray:
        """Arc minutes in the renumbered CSR order (a strided view)."""
        return self.arcs[0::2]

    @property
    def metres(self) -> np.ndarray:
        """Arc metres in the renumbered CSR order (a strided view)."""
        return self.arcs[1::2]

    def _workspace(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.empty((self.buckets, 256)), np.empty((self.buckets, 256), np.int32),
                np.zeros(self.buckets, np.int64))

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the search, on a two-node graph."""
        bk, bn, bc = self._workspace()
        _delta_search_jit(np.array([0, 1, 1], self.indptr.dtype), np.array([1], np.int32),
                          np.array([1.0, 1.0]), np.array([0], np.int64),
                          np.array([0.0]), np.inf, np.full(2, np.inf), np.zeros(2),
                          np.full(2, -1, np.int32), np.zeros(2, np.int32), 1.0, bk, bn, bc,
                          *self.ahead)

    def _search(self, nodes: np.ndarray, start_min: np.ndarray, length: np.ndarray,
                label: np.ndarray) -> np.ndarray:
        """Run the unbounded multi-source search; return the minutes per renumbered node.

        ``length`` (metres) and ``label`` (place index) are filled in the renumbered order
        wherever the minutes become finite; elsewhere they keep what the caller put there.
        """
        dist = np.full(self.n, np.inf)
        touched = np.empty(self.n, dtype=np.int32)
        bk, bn, bc = self._workspace()
        seeds = self.rank[np.asarray(nodes, dtype=np.int64)]
        _delta_search_jit(self.indptr, self.indices, self.arcs, seeds,
                          np.asarray(start_min, dtype=np.float64), np.inf, dist, length,
                          label, touched, self.delta, bk, bn, bc, *self.ahead)
        return dist

    def multi_source(self, nodes: np.ndarray, start_min: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Minutes from the nearest of several places to every node, which place, metres.

        Parameters
        ----------
        nodes
            Node of each place (network numbering).
        start_min
            Minutes already spent at that node (the connector leg), ≥ 0.

        Returns
        -------
        tuple of numpy.ndarray
            Per node (network numbering): minutes (float64, inf unreachable), index of the
            place in ``nodes`` (int64, −1 unreachable) and metres along the path found from
            that place's node (float64, NaN unreachable).
        """
        length = np.full(self.n, np.nan)
        label = np.full(self.n, -1, dtype=np.int32)
        dist = self._search(nodes, start_min, length, label)
        return dist[self.rank], label[self.rank].astype(np.int64), length[self.rank]

    def multi_source_at(self, nodes: np.ndarray, start_min: np.ndarray, at: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`multi_source` read at some nodes only (the same search, the same values).

        For a caller that needs the result at a few nodes (the communes' nodes), not at
        every node: nothing of the size of the graph is renumbered back, and the place and
        metres of the nodes never read are not initialised. Releases the GIL during the
        search, so two calls may run in two threads.

        Parameters
        ----------
        nodes, start_min
            As in :meth:`multi_source`.
        at
            Nodes to read (network numbering).

        Returns
        -------
        tuple of numpy.ndarray
            At each node of ``at``: minutes (float64, inf unreachable), index of the place
            in ``nodes`` (int64, −1 unreachable) and metres along the path found from that
            place's node (float64, NaN unreachable); equal to ``multi_source(...)[i][at]``.
        """
        length = np.empty(self.n)  # written with the label wherever dist becomes finite
        label = np.empty(self.n, dtype=np.int32)
        dist = self._search(nodes, start_min, length, label)
        read = self.rank[np.asarray(at, dtype=np.int64)]
        minutes = dist[read]
        reached = minutes < np.inf
        return (minutes, np.where(reached, label[read], -1).astype(np.int64),
                np.where(reached, length[read], np.nan))

    def bounded(self, nodes: np.ndarray, limits: np.ndarray, at: np.ndarray | None = None
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield, for each node, the nodes reached within its limit and their minutes.

        Parameters
        ----------
        nodes
            Start nodes (network numbering), one search each.
        limits
            Limit of each search, minutes.
        at
            Nodes to read (network numbering): when given, each search yields the minutes
            at these nodes (inf beyond the limit or unreachable) instead of every node
            reached; cheaper when they are fewer than the nodes a search reaches.

        Yields
        ------
        tuple
            ``(position in nodes, reached nodes (network numbering, int64, in no
            particular order; ``at`` when given), minutes (float64))``; the start node is
            reached at 0.
        """
        n = self.n
        dist = np.full(n, np.inf)
        length = np.zeros(n)
        label = np.full(n, -1, dtype=np.int32)
        touched = np.empty(n, dtype=np.int32)
        bk, bn, bc = self._workspace()
        zero = np.zeros(1)
        read = None if at is None else self.rank[np.asarray(at, dtype=np.int64)]
        for i, (node, limit) in enumerate(zip(np.asarray(nodes, dtype=np.int64),
                                              np.asarray(limits, dtype=np.float64),
                                              strict=True)):
            count, bk, bn = _delta_search_jit(
                self.indptr, self.indices, self.arcs, np.array([self.rank[node]]), zero,
                float(limit), dist, length, label, touched, self.delta, bk, bn, bc,
                *self.ahead)
            hit = touched[:count]
            if read is None:
                minutes = dist[hit]
                within = minutes <= limit
                yield i, self.order[hit[within]], minutes[within]
            else:
                minutes = dist[read]
                minutes[minutes > limit] = np.inf
                yield i, np.asarray(at), minutes
            dist[hit] = np.inf
            label[hit] = -1
