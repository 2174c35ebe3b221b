"""What planned byte ranges cost on the network, for the player's planner and the publisher's
choices alike: a request's overhead, and ranges of a file counted as the bytes they take
on the wire (compressed from the ``.stz`` where the file has one, raw over chunks replaced
by sub-records).

numpy-free to import: the planner takes ``REQUEST_COST`` from here, and an update made of
deltas only never loads the chunk machinery (``tests/test_delta.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from core.chunks.stz import StzTable

# Bytes one more request costs (response headers).
REQUEST_COST = 400


def split_raw(ranges: list[tuple[int, int]], offsets: np.ndarray, sub: np.ndarray | None
              ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split target byte ``ranges`` into the parts over whole chunks (``offsets``: chunk
    starts plus the end) and the parts over chunks marked in ``sub`` (fetched raw)."""
    if sub is None or not sub.any():
        return ranges, []
    import numpy as np

    packed: list[tuple[int, int]] = []
    raw: list[tuple[int, int]] = []
    for a, b in ranges:
        i = int(np.searchsorted(offsets, np.uint64(a), side="right")) - 1
        j = int(np.searchsorted(offsets, np.uint64(b), side="left"))
        m = sub[i:j]
        cuts = np.concatenate(([0], np.flatnonzero(m[1:] != m[:-1]) + 1, [len(m)]))
        for r in range(len(cuts) - 1):  # per run of like chunks
            lo = max(a, int(offsets[i + int(cuts[r])]))
            hi = min(b, int(offsets[i + int(cuts[r + 1])]))
            if hi > lo:
                (raw if m[int(cuts[r])] else packed).append((lo, hi))
    return packed, raw


def wire_bytes(ranges: list[tuple[int, int]], stz_table: StzTable | None,
               offsets: np.ndarray, sub: np.ndarray | None = None) -> int:
    """Bytes the raw target ``ranges`` take on the network: compressed from the ``.stz``
    where there is one (``offsets``: its chunks' starts plus the end), raw over the chunks
    marked in ``sub``."""
    if stz_table is None:
        return sum(b - a for a, b in ranges)
    from core.chunks.stz import compressed_ranges

    packed, raw = split_raw(ranges, offsets, sub)
    return (sum(b - a for a, b in compressed_ranges(stz_table, offsets, packed))
            + sum(b - a for a, b in raw))
