"""Download scheduling: remote ranges cut into pieces, pieces fetched side by side.

A server or CDN often caps each connection (nginx ``limit_rate``): one request at a time per
file would leave the line's other ``connections`` idle. So the assembler cuts what it fetches
into pieces of about ``piece_size`` bytes (``cut``), every file's in turn, and runs them in
that order on ``connections`` threads (``run_jobs``): a big file's pieces run side by side,
and so do small files (a file smaller than a piece is one piece). The fetcher bounds the
requests in flight to ``connections`` whatever the number of calls
(``core.net.http.session``).

Where a piece may end is the caller's: a file built from chunks is cut between whole
chunks (each chunk, or compressed ``.stz`` entry, is checked whole, so no chunk is split
between two requests); a whole file checked by its SHA-256 anywhere (the sealer hashes the
contiguous prefix of what is written, in whatever order pieces land).

Memory stays what one request holds: pieces stream into the file as before; nothing is
buffered per piece beyond a chunk under way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from core.errors import CancelledError
from core.parallel import join
from core.progress import CancelToken

# Measured (docs/benchmarks.md, "Capped connections"): 150 MB over 4 connections each
# capped smoothly at 4 MB/s reached 0.81-0.83 of 4 x 4 MB/s with pieces of 2 and 4 MiB,
# 0.63-0.79 with 8 MiB, 0.77 with 16 MiB (the last round leaves connections idle longer).
# At 4 MiB a round trip of 50 ms costs 5 % of a piece at 4 MB/s. Pieces are cut so their
# count is a multiple of the connections and at most MAX_PIECE each.
MAX_PIECE = 4 << 20
# Below this a request costs about what its bytes do on a real line (a round trip of
# 20-100 ms at a few MB/s): smaller downloads are not cut.
MIN_PIECE = 1 << 20

if TYPE_CHECKING:
    import numpy as np

Job = Callable[[CancelToken], None]


def piece_size(total: int, workers: int, max_piece: int | None = None,
               min_piece: int = MIN_PIECE) -> int:
    """The piece size for ``total`` bytes over ``workers`` connections: a multiple of
    ``workers`` pieces of at most ``max_piece`` (default ``MAX_PIECE``) bytes, and at least
    ``min_piece``."""
    max_piece = MAX_PIECE if max_piece is None else max_piece
    if workers <= 1 or total <= 0:
        return max(max_piece, 1)
    rounds = -(-total // (workers * max_piece))
    return max(min_piece, -(-total // (workers * rounds)))


def cut(ranges: Sequence[tuple[int, int]], piece: int,
        bounds: np.ndarray | None = None) -> list[list[tuple[int, int]]]:
    """Group sorted ranges into consecutive pieces of about ``piece`` bytes each, in order.

    A range is cut only at an offset in ``bounds`` (sorted; None: anywhere), the cut closest
    below the piece's end, or past it when no bound falls inside the piece (a chunk longer
    than a piece is never split). Ranges are never merged: the pieces tile ``ranges``
    exactly."""
    if bounds is not None:
        import numpy as np  # a plan of deltas or whole files alone never loads numpy
    pieces: list[list[tuple[int, int]]] = []
    cur: list[tuple[int, int]] = []
    size = 0
    for a, b in ranges:
        while a < b:
            room = piece - size
            if b - a <= room:
                cur.append((a, b))
                size += b - a
                break
            at = a + room
            if bounds is not None:
                i = int(np.searchsorted(bounds, np.uint64(at), side="right")) - 1
                at = int(bounds[i]) if i >= 0 else a
                if at <= a:
                    if cur:  # close this piece; the range starts the next
                        at = a
                    else:  # one chunk longer than a piece: up to its end
                        j = int(np.searchsorted(bounds, np.uint64(a), side="right"))
                        at = int(bounds[j]) if j < len(bounds) else b
                if at >= b:
                    cur.append((a, b))
                    size += b - a
                    break
            if at > a:
                cur.append((a, at))
            pieces.append(cur)
            cur, size = [], 0
            a = at
        if size >= piece:
            pieces.append(cur)
            cur, size = [], 0
    if cur:
        pieces.append(cur)
    return pieces


def run_jobs(jobs: Sequence[Job], workers: int, cancel: CancelToken) -> None:
    """Run ``jobs`` in order, up to ``workers`` at a time on threads, each given a token that
    is a child of ``cancel``. The first failure cancels that token (the others stop at their
    next check) and is raised once every thread has ended; a ``CancelledError`` only when
    nothing else failed. One job or one worker: on the calling thread."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            job(cancel)
        return
    token = CancelToken(cancel)
    lock = threading.Lock()
    todo = iter(jobs)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if errors:
                    return
                job = next(todo, None)
            if job is None:
                return
            try:
                job(token)
            except BaseException as e:  # raised by run_jobs once every thread ended
                with lock:
                    errors.append(e)
                token.cancel()
                return

    threads = [threading.Thread(target=worker, name=f"stitch-piece-{n}", daemon=True)
               for n in range(min(workers, len(jobs)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            join(t)  # (waking up: a signal is handled on this thread, core.parallel.WAKE)
    finally:
        token.cancel()  # (an interrupt of the caller: the workers stop too)
        for t in threads:
            join(t)
    if errors:
        raise next((e for e in errors if not isinstance(e, CancelledError)), errors[0])
