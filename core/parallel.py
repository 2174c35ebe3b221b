"""Running independent per-file steps side by side: ``each``.

An update fetches several small things per changed file (a group table, index records, a
compressed copy's size table, a delta). On a real network each costs a round trip, not its
bytes, so files are taken side by side, up to the fetcher's connection count, rather than
one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# A signal (Ctrl+C, SIGTERM) is handled by Python on the main thread only, when it runs
# Python code; the OS may deliver it to any thread, and then a main thread blocked in an
# unbounded wait never sees it (the run's cancel token is set by that handler, so the
# threads waited for would not stop either). Every wait of the main thread for others
# wakes up this often.
WAKE = 0.1  # seconds


def join(thread: threading.Thread) -> None:
    """``thread.join()``, waking every ``WAKE`` seconds (signals are handled meanwhile)."""
    while thread.is_alive():
        thread.join(WAKE)


def each(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]``, up to ``workers`` at a time on threads. Every call has
    finished when it returns or raises; the first exception (in ``items`` order) is
    raised. One item, or one worker, runs on the calling thread."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="stitch-each")
    try:
        futures = [pool.submit(fn, x) for x in items]
        while wait(futures, timeout=WAKE).not_done:  # (see WAKE)
            pass
    finally:
        pool.shutdown(wait=True)
    return [f.result() for f in futures]
