"""Running independent per-file steps side by side: ``each``.

An update fetches several small things per changed file (a group table, index records, a
compressed copy's size table, a delta). On a real network each costs a round trip, not its
bytes, so files are taken side by side, up to the fetcher's connection count, rather than
one after the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]``, up to ``workers`` at a time on threads. Every call has
    finished when it returns or raises; the first exception (in ``items`` order) is
    raised. One item, or one worker, runs on the calling thread."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="stitch-each") as pool:
        futures = [pool.submit(fn, x) for x in items]
    return [f.result() for f in futures]
