"""The compiled routing core (coverage.routing.kernel) against scipy and networkx."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from coverage.routing.kernel import BUCKETS_MAX, SearchGraph, hilbert_order


def _graph(seed: int, n: int, m: int, long_arcs: bool
           ) -> tuple[sp.csr_array, sp.csr_array, np.ndarray, np.ndarray]:
    """Random directed graph: minimum over parallel arcs, explicit zero-minute arcs kept."""
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, n, m)
    head = rng.integers(0, n, m)
    minutes = rng.uniform(0.0, 5.0, m)
    minutes[rng.random(m) < 0.1] = 0.0
    if long_arcs:  # ferry-like arcs far beyond the buckets' window
        minutes[rng.random(m) < 0.1] = 5.0 * BUCKETS_MAX
    key = tail * n + head
    order = np.lexsort((minutes, key))
    first = np.ones(m, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    kept = order[first]  # the minimum of each (tail, head)
    kept = kept[np.argsort(key[kept], kind="stable")]
    indptr = np.searchsorted(tail[kept] * n + head[kept], np.arange(n + 1) * n)
    graph = sp.csr_array((minutes[kept], head[kept].astype(np.int32),
                          indptr.astype(np.int32)), shape=(n, n))
    metres = sp.csr_array((rng.uniform(1.0, 900.0, kept.shape[0]), graph.indices.copy(),
                           graph.indptr.copy()), shape=(n, n))
    return graph, metres, rng.uniform(0, 5e4, n), rng.uniform(0, 5e4, n)


def _scipy_multi(graph: sp.csr_array, nodes: np.ndarray, start: np.ndarray) -> np.ndarray:
    """scipy from one virtual node per place (an arc of its start minutes to its node)."""
    n, k = graph.shape[0], nodes.shape[0]
    aug = sp.csr_array((np.concatenate([graph.data, start]),
                        np.concatenate([graph.indices, nodes]).astype(np.int32),
                        np.concatenate([graph.indptr, graph.nnz + np.arange(1, k + 1)]
                                       ).astype(np.int32)), shape=(n + k, n + k))
    return np.asarray(dijkstra(aug, indices=n + np.arange(k), min_only=True))[:n]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 50), density=st.floats(0.3, 5.0),
       k=st.integers(1, 5), long_arcs=st.booleans(), renumber=st.booleans())
def test_multi_source_equals_scipy_bit_for_bit(seed: int, n: int, density: float, k: int,
                                               long_arcs: bool, renumber: bool) -> None:
    graph, metres, x, y = _graph(seed, n, int(n * density) + 1, long_arcs)
    rng = np.random.default_rng(seed + 1)
    nodes = rng.integers(0, n, k)
    start = rng.uniform(0.0, 3.0, k)
    core = SearchGraph(graph, metres, x, y, renumber=renumber)
    dist, which, length = core.multi_source(nodes, start)
    expected = _scipy_multi(graph, nodes, start)
    np.testing.assert_array_equal(dist, expected)  # the same float64 sums
    reached = np.isfinite(expected)
    assert ((which >= 0) == reached).all() and (np.isfinite(length) == reached).all()
    # the place found is one of the nearest: its own search gives the same minutes
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    tails = np.repeat(np.arange(n), np.diff(graph.indptr))
    g.add_weighted_edges_from(zip(tails.tolist(), graph.indices.tolist(),
                                  graph.data.tolist(), strict=True))
    own = {j: nx.single_source_dijkstra_path_length(g, int(nodes[j]))
           for j in set(which[reached].tolist())}
    for v in np.flatnonzero(reached):
        j = int(which[v])
        assert start[j] + own[j][int(v)] == pytest.approx(dist[v], abs=1e-9)
    assert (length[reached] >= 0).all()
    # read at some nodes only: the same values as the full result at these nodes
    at = rng.integers(0, n, 7)
    for got, full in zip(core.multi_source_at(nodes, start, at), (dist, which, length),
                         strict=True):
        assert got.dtype == full.dtype
        np.testing.assert_array_equal(got, full[at])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 40), k=st.integers(1, 4),
       limit=st.floats(0.0, 15.0), long_arcs=st.booleans())
def test_bounded_equals_scipy_limit(seed: int, n: int, k: int, limit: float,
                                    long_arcs: bool) -> None:
    graph, metres, x, y = _graph(seed, n, 3 * n, long_arcs)
    rng = np.random.default_rng(seed + 2)
    nodes = rng.integers(0, n, k)
    core = SearchGraph(graph, metres, x, y)
    at = rng.choice(n, size=min(n, 5), replace=False)
    got = list(core.bounded(nodes, np.full(k, limit)))
    read = list(core.bounded(nodes, np.full(k, limit), at=at))
    assert [i for i, _, _ in got] == list(range(k))
    for (i, reached, minutes), (_, at_nodes, at_min) in zip(got, read, strict=True):
        row = np.asarray(dijkstra(graph, indices=int(nodes[i]), limit=limit))
        expected = np.flatnonzero(row <= limit)
        order = np.argsort(reached)
        np.testing.assert_array_equal(reached[order], expected)
        np.testing.assert_array_equal(minutes[order], row[expected])
        np.testing.assert_array_equal(at_nodes, at)
        np.testing.assert_array_equal(at_min, np.where(row[at] <= limit, row[at], np.inf))


def test_metres_follow_the_path_on_a_line() -> None:
    # 0 ← 1 ← 2 ← 3 (one way) and a shortcut 3 → 0 slower than the line
    graph = sp.csr_array((np.array([1.0, 1.0, 1.0, 5.0]), np.array([0, 1, 2, 0]),
                          np.array([0, 0, 1, 2, 4])), shape=(4, 4))
    metres = sp.csr_array((np.array([100.0, 200.0, 300.0, 50.0]), graph.indices.copy(),
                           graph.indptr.copy()), shape=(4, 4))
    core = SearchGraph(metres=metres, minutes=graph, x=np.arange(4.0), y=np.zeros(4))
    dist, which, length = core.multi_source(np.array([3]), np.array([0.5]))
    assert dist.tolist() == [3.5, 2.5, 1.5, 0.5]
    assert which.tolist() == [0, 0, 0, 0]
    assert length.tolist() == [600.0, 500.0, 300.0, 0.0]
    # unreachable from node 0: inf, −1, NaN
    dist, which, length = core.multi_source(np.array([0]), np.array([0.0]))
    assert dist.tolist()[1:] == [np.inf] * 3 and which.tolist()[1:] == [-1] * 3
    assert np.isnan(length[1:]).all()


def test_hilbert_order_is_a_permutation_and_keeps_neighbours_close() -> None:
    side = 64
    gx, gy = np.meshgrid(np.arange(side, dtype=float), np.arange(side, dtype=float))
    rng = np.random.default_rng(0)
    shuffle = rng.permutation(side * side)
    x, y = gx.ravel()[shuffle], gy.ravel()[shuffle]
    order = hilbert_order(x, y)
    assert np.array_equal(np.sort(order), np.arange(side * side))
    # consecutive nodes along the curve are grid neighbours (a Hilbert curve property)
    step = np.hypot(np.diff(x[order]), np.diff(y[order]))
    assert step.max() == pytest.approx(1.0)
    assert hilbert_order(np.zeros(0), np.zeros(0)).shape == (0,)


def test_metres_must_share_the_sparsity() -> None:
    graph = sp.csr_array(np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="sparsity"):
        SearchGraph(graph, sp.csr_array(np.ones((2, 2))), np.zeros(2), np.zeros(2))


def test_layout_and_prefetch_change_no_result() -> None:
    """int32 offsets, interleaved arcs, power-of-two buckets; prefetching off = on."""
    graph, metres, x, y = _graph(7, 1500, 6000, long_arcs=False)
    core = SearchGraph(graph, metres, x, y)
    plain = SearchGraph(graph, metres, x, y, prefetch=False)
    assert core.indptr.dtype == np.int32 and core.indices.dtype == np.int32
    assert core.buckets & (core.buckets - 1) == 0
    assert core.ahead != (0, 0) and plain.ahead == (0, 0)
    # the arcs of renumbered row k are those of row order[k], minutes and metres side by side
    for k in (0, 1, 700, 1499):
        row = slice(int(core.indptr[k]), int(core.indptr[k + 1]))
        u = int(core.order[k])
        got = sorted(zip(core.order[core.indices[row]].tolist(), core.minutes[row].tolist(),
                         core.metres[row].tolist(), strict=True))
        lo, hi = int(graph.indptr[u]), int(graph.indptr[u + 1])
        assert got == sorted(zip(graph.indices[lo:hi].tolist(), graph.data[lo:hi].tolist(),
                                 metres.data[lo:hi].tolist(), strict=True))
    # 100 places: buckets hold far more entries than the prefetch distances
    rng = np.random.default_rng(8)
    nodes = rng.integers(0, 1500, 100)
    start = rng.uniform(0.0, 3.0, 100)
    expected = _scipy_multi(graph, nodes, start)
    for a, b in zip(core.multi_source(nodes, start), plain.multi_source(nodes, start),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(core.multi_source(nodes, start)[0], expected)
    limits = np.full(5, 4.0)
    for (i, reached, minutes), (j, reached2, minutes2) in zip(
            core.bounded(nodes[:5], limits), plain.bounded(nodes[:5], limits), strict=True):
        assert i == j
        np.testing.assert_array_equal(np.sort(reached), np.sort(reached2))
        np.testing.assert_array_equal(np.sort(minutes), np.sort(minutes2))
