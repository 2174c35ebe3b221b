"""Choosing how a file is rebuilt from deltas: the cheapest chain of published deltas.

The delta source's cost model and path choice, free of I/O (``core.engine.deltasource``
fetches and runs what is chosen here). Each release publishes, for each changed file,
deltas from its versions in the channel's last K releases (docs/format.md §10). The file's
versions are the nodes of a graph, identified by their SHA-256; each published delta is an
edge from its ``from`` version to the version its release holds, costing what the planner's
cost model charges for it: its bytes and one request (``core.chunks.wire.REQUEST_COST``).
The cheapest path from the installed version to the offered one (Dijkstra; fewer hops win a
tie) is a ``DeltaStep``: one hop when the offered release has a delta from the installed
version, a chain otherwise. The chain is compared with the chunk plan by the same cost
(``cheaper``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from core.chunks.wire import REQUEST_COST
from core.engine.plan import Hop

MAX_HOPS = 17  # a chain through every release a manifest names (16) and the offered one


def hop_cost(h: Hop) -> int:
    return h.delta.size + REQUEST_COST


def chain_cost(hops: Iterable[Hop]) -> int:
    """Network bytes of a chain and one request per hop, in the planner's units."""
    return sum(hop_cost(h) for h in hops)


def cheapest(start: str, goal: str, edges: Iterable[Hop],
             max_hops: int = MAX_HOPS) -> tuple[Hop, ...] | None:
    """The cheapest chain of ``edges`` from the version with SHA-256 ``start`` to ``goal``
    (at most ``max_hops`` of them), or None when there is none (or ``start`` is ``goal``).
    Deterministic: ties go to fewer hops, then to the order of ``edges``."""
    if start == goal:
        return None
    out: dict[str, list[tuple[int, Hop]]] = {}
    for n, h in enumerate(edges):
        if h.delta.from_sha256 != h.sha256:  # (a delta to itself is no step)
            out.setdefault(h.delta.from_sha256, []).append((n, h))
    # (cost, hops, tie-break, node, chain): a version is settled the first time it is popped.
    heap: list[tuple[int, int, int, str, tuple[Hop, ...]]] = [(0, 0, -1, start, ())]
    settled: set[str] = set()
    while heap:  # each round settles a node or drops a stale entry: bounded by the edges
        cost, nhops, _, node, chain = heapq.heappop(heap)
        if node in settled:
            continue
        settled.add(node)
        if node == goal:
            return chain
        if nhops >= max_hops:
            continue
        for n, h in out.get(node, ()):
            if h.sha256 not in settled:
                heapq.heappush(heap, (cost + hop_cost(h), nhops + 1, n, h.sha256,
                                      (*chain, h)))
    return None


def cheaper(chain: tuple[Hop, ...], chunk_bytes: int, chunk_requests: int) -> bool:
    """Whether ``chain`` costs less than a chunk plan of ``chunk_bytes`` network bytes in
    ``chunk_requests`` requests (a tie goes to chunks: fewer steps to fail)."""
    return chain_cost(chain) < chunk_bytes + REQUEST_COST * chunk_requests
