"""Planning a file too big to hold its index, window by window (``core.chunks.diskindex``).

``plan_windows`` walks the target index in windows of ``WINDOW`` chunks. Each window is
planned by ``core.chunks.planner.plan_file`` against the chunks of the local file (the
installed version of the same file, its index on disk too) that lie in the matching byte
range widened by the window's own length on each side: chunks that moved less than a
window (an asset that grew or shrank, in a pak file) are still found; chunks that moved
farther are downloaded. The window's ranges and copies are shifted to file offsets and
joined with the neighbours' where they touch. So memory is bounded by the window (a few
arrays of ``WINDOW`` to ``3 * WINDOW`` entries), not by the file; the plan itself holds one
row per copied run and per remote range, which grows with the changes, not with the file.

The cost model applies per window (gaps bridged and requests capped within a window), a
little looser than over a whole file. Pure: reads the two indexes, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.chunks.diskindex import WINDOW, DiskIndex
from core.chunks.fidx import FileIndex
from core.chunks.planner import ZERO_SEED, FilePlan, PlanOptions, SeedSet, plan_file


def plan_windows(target: DiskIndex, local: DiskIndex | None, local_name: str,
                 options: PlanOptions | None = None, window: int = WINDOW,
                 check: Callable[[], None] | None = None) -> FilePlan:
    """Plan the rebuild of ``target`` from the local file ``local_name`` (whose index is
    ``local``, or None when there is none) plus remote ranges. Copies name seed 0 (the
    local file) or 1 (``ZERO_SEED``). ``check``: called between windows (a cancel check)."""
    remote: list[np.ndarray] = []
    copies: list[np.ndarray] = []
    empty = (local_name, np.zeros(0, np.uint64), np.zeros(0, np.uint32),
             np.zeros((0, 16), np.uint8))
    for i in range(0, target.count, window):
        if check is not None:
            check()
        j = min(target.count, i + window)
        lengths, ids = target.records(i, j)
        a, b = int(target.offsets(i, i)[0]), int(target.offsets(j, j)[0])
        seeds = [empty]
        if local is not None and local.count:
            span = b - a
            li = local.chunk_at(max(0, a - span))
            lj = min(local.count, local.chunk_at(min(local.file_size, b + span)) + 1,
                     li + 3 * window)
            if li < lj:
                l_lengths, l_ids = local.records(li, lj)
                l_offs = local.offsets(li, lj)[:-1]
                seeds = [(local_name, l_offs, l_lengths, l_ids)]
        part = FileIndex(target.params, b - a, b"", lengths, ids)
        fplan = plan_file(part, SeedSet.build(seeds), options)
        shift = np.uint64(a)
        if len(fplan.remote):
            remote.append(fplan.remote + shift)
        if len(fplan.copies):
            c = fplan.copies.copy()
            c[:, 0] += shift
            c[c[:, 1] == 1, 2] += shift  # the zero seed's "offset" is the target's
            copies.append(c)
    return FilePlan(target.file_size, _join_ranges(remote), _join_copies(copies),
                    (local_name, ZERO_SEED))


def _join_ranges(parts: list[np.ndarray]) -> np.ndarray:
    """Sorted ranges, the ones that touch joined."""
    if not parts:
        return np.zeros((0, 2), dtype=np.uint64)
    r = np.concatenate(parts)
    new = np.ones(len(r), dtype=bool)
    new[1:] = r[1:, 0] != r[:-1, 1]
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(r)) - 1
    return np.stack([r[first, 0], r[last, 1]], axis=1).astype(np.uint64)


def _join_copies(parts: list[np.ndarray]) -> np.ndarray:
    """Copy rows, the ones that continue each other (target and source) joined."""
    if not parts:
        return np.zeros((0, 4), dtype=np.uint64)
    c = np.concatenate(parts)
    new = np.ones(len(c), dtype=bool)
    new[1:] = ((c[1:, 0] != c[:-1, 0] + c[:-1, 3]) | (c[1:, 1] != c[:-1, 1])
               | (c[1:, 2] != c[:-1, 2] + c[:-1, 3]))
    first = np.flatnonzero(new)
    out = c[first].copy()
    out[:, 3] = np.add.reduceat(c[:, 3], first)
    return out.astype(np.uint64)
