"""Content-defined chunking: FastCDC 2020 (through pyfastcdc) plus xxh3-128 chunk ids.

Owns the chunker parameters, the one pass over a file that yields its chunk index and
whole-file SHA-256 together, and ``chunk_files``, the bounded pool that chunks several files
at once. It knows nothing of
index file formats (``core.chunks.fidx``) or of which files to scan (``core.engine.scan``).
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
import os
import queue
import threading
from array import array
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash
from pyfastcdc import FastCDC

from core.progress import CancelToken

CHUNKER_FASTCDC2020 = 1  # the chunker id written into .fidx v2 headers

# Bounds a reader enforces on parameters from the network (pyfastcdc's own limits).
MIN_SIZE_RANGE = (64, 1 << 20)
AVG_SIZE_RANGE = (256, 4 << 20)
MAX_SIZE_RANGE = (1024, 16 << 20)

ID_SIZE = 16  # bytes in an xxh3-128 chunk id

# Chunk files in windows of this many bytes (at least two max-size chunks): cancel and
# progress stay responsive, and a window's pages are unmapped once it is chunked.
_SLICE = 4 << 20
_SHA_BLOCK = 1 << 20  # the SHA-256 thread reads blocks of this many bytes
_SMALL = 1 << 20  # files up to this size are read whole and hashed on the calling thread
MAX_WORKERS = 4  # files chunked at once by chunk_files, at most
_REPORT_EVERY = 0.05  # seconds between two progress reports of chunk_files


@dataclass(frozen=True, slots=True)
class ChunkerParams:
    """FastCDC 2020 parameters (sizes in bytes)."""

    min_size: int
    avg_size: int
    max_size: int
    normalization: int = 1
    seed: int = 0  # gear table seed; 0 = the reference table

    def validate(self) -> None:
        """Raise ``ValueError`` if pyfastcdc would refuse these parameters."""
        lo, hi = MIN_SIZE_RANGE
        if not lo <= self.min_size <= hi:
            raise ValueError(f"min_size {self.min_size} out of range")
        lo, hi = AVG_SIZE_RANGE
        if not lo <= self.avg_size <= hi or self.avg_size & (self.avg_size - 1):
            raise ValueError(f"avg_size {self.avg_size} out of range or not a power of two")
        lo, hi = MAX_SIZE_RANGE
        if not lo <= self.max_size <= hi:
            raise ValueError(f"max_size {self.max_size} out of range")
        if not self.min_size <= self.avg_size <= self.max_size:
            raise ValueError("sizes must satisfy min <= avg <= max")
        if not 0 <= self.normalization <= 3:
            raise ValueError(f"normalization {self.normalization} out of range")
        if not 0 <= self.seed < 1 << 64:
            raise ValueError("seed out of range")

    def make(self) -> FastCDC:
        return FastCDC(
            self.avg_size,
            min_size=self.min_size,
            max_size=self.max_size,
            normalized_chunking=self.normalization,  # type: ignore[arg-type]
            seed=self.seed,
        )


# Chosen by tests/bench/chunksize.py on game-like pairs; see docs/benchmarks.md.
DEFAULT_PARAMS = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)


@dataclass(frozen=True, eq=False)
class Chunks:
    """The chunk list of one byte string: lengths (uint32) and ids (n x 16 bytes, uint8)."""

    lengths: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


def chunk_id(data: bytes | memoryview) -> bytes:
    """The chunk id of ``data``: its xxh3-128 digest, big-endian (canonical form)."""
    return xxhash.xxh3_128_digest(data)


def _chunk_into(
    cdc: FastCDC, buf: memoryview, lengths: list[int], ids: bytearray
) -> None:
    digest = xxhash.xxh3_128_digest
    for c in cdc.cut_buf(buf):
        lengths.append(c.length)
        ids += digest(c.data)


def _chunk_window(
    cdc: FastCDC,
    view: memoryview,
    pos: int,
    end: int,
    final: bool,
    lengths: array[int],
    ids: bytearray,
) -> int:
    """Chunk ``view[pos:end]``, append the chunks, and return where the next window starts.

    Unless ``final`` (``end`` is the end of the data), the window's last chunk was cut short
    by the window edge, not by the content: it is left out and cut again with the next
    window, so the cut points are exactly those of one pass over the whole data (any cut the
    gear hash finds inside a window is one the whole pass finds too). Kept in its own frame
    so no chunk (which holds a view of the mapping) outlives it.
    """
    digest = xxhash.xxh3_128_digest
    window = view[pos:end]
    last = -1
    for c in cdc.cut_buf(window):
        lengths.append(c.length)
        ids += digest(c.data)
        last = c.offset
    window.release()
    if final or last < 0:
        return end
    lengths.pop()
    del ids[-ID_SIZE:]
    return pos + last


def _chunk_run(
    params: ChunkerParams,
    view: memoryview,
    size: int,
    check: Callable[[], None],
    chunked: Callable[[int, int], None],
) -> tuple[array[int], bytearray]:
    """One sequential pass over ``view[:size]``: the chunk lengths (uint32) and ids.

    ``chunked(a, b)`` is called once ``view[a:b]`` is chunked (it hands those pages to the
    SHA-256 thread, which unmaps them, so RSS stays at a few windows whatever the length).
    """
    lengths: array[int] = array("I")
    ids = bytearray()
    cdc = params.make()
    pos = 0
    while pos < size:  # every round advances pos
        check()
        end = min(size, pos + max(_SLICE, 2 * params.max_size))
        nxt = _chunk_window(cdc, view, pos, end, end == size, lengths, ids)
        if nxt == pos:
            raise AssertionError("window shorter than two chunks")
        chunked(pos, nxt)
        pos = nxt
    return lengths, ids


def _drop_pages(mm: mmap.mmap, start: int, end: int) -> None:
    """Unmap pages already chunked, so a multi-GB scan keeps a small RSS (the data stays in
    the page cache; only this process's mapping of it goes)."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    page = mmap.PAGESIZE
    a = start - start % page
    b = end - end % page
    if b > a:
        mm.madvise(mmap.MADV_DONTNEED, a, b - a)


def chunk_bytes(data: bytes | memoryview, params: ChunkerParams) -> Chunks:
    """Chunk a byte string held in memory."""
    lengths: list[int] = []
    ids = bytearray()
    if len(data):
        _chunk_into(params.make(), memoryview(data), lengths, ids)
    return _pack(lengths, ids)


def _pack(lengths: array[int] | list[int], ids: bytearray) -> Chunks:
    # Over the buffers themselves, not copies: a 50 GB file has 3-12 M chunks (60-250 MB).
    if isinstance(lengths, array) and lengths.itemsize == 4:
        lens = np.frombuffer(lengths, dtype=np.uint32) if len(lengths) else np.zeros(
            0, np.uint32)
    else:
        lens = np.array(lengths, dtype=np.uint32)
    return Chunks(
        lengths=lens,
        ids=(np.frombuffer(ids, dtype=np.uint8) if len(ids) else np.zeros(0, np.uint8)
             ).reshape(-1, ID_SIZE),
    )


class _Linked(CancelToken):
    """A token that is cancelled when it or ``outer`` is: lets a pool stop its own workers
    (after an error) without touching the caller's token."""

    def __init__(self, outer: CancelToken | None) -> None:
        super().__init__()
        self._outer = outer

    def check(self) -> None:
        if self._outer is not None:
            self._outer.check()
        super().check()


def chunk_file(
    path: str | os.PathLike[str],
    params: ChunkerParams,
    cancel: CancelToken | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[Chunks, bytes]:
    """Chunk a file and compute its SHA-256. Returns ``(chunks, sha256 digest)``.

    The chunker runs over a read-only mapping, window by window; the SHA-256 runs on a
    second thread a window behind, over the same pages (hashlib releases the GIL),
    so a file costs about the slower of the two instead of their sum. Files up to
    ``_SMALL`` are read whole and done on the calling thread.

    ``on_bytes``, when given, is called with the number of bytes done so far. Memory stays
    bounded: a few windows mapped, and the index costs 20 bytes per chunk, in compact
    arrays. Raises
    ``OSError``, ``CancelledError``.
    """
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return _pack(array("I"), bytearray()), hashlib.sha256().digest()
        if size <= _SMALL:
            data = f.read(size)
            if len(data) != size:
                raise OSError(f"{path}: file shrank while it was read")
            if cancel is not None:
                cancel.check()
            chunks = chunk_bytes(data, params)
            if on_bytes is not None:
                on_bytes(size)
            return chunks, hashlib.sha256(data).digest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _chunk_mapped(mm, size, params, cancel, on_bytes)


def _chunk_mapped(
    mm: mmap.mmap,
    size: int,
    params: ChunkerParams,
    cancel: CancelToken | None,
    on_bytes: Callable[[int], None] | None,
) -> tuple[Chunks, bytes]:
    check = cancel.check if cancel is not None else lambda: None
    done = 0
    view = memoryview(mm)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="stitch-chunk") as pool:
            # The SHA-256 follows a window behind, over the pages just chunked (at most
            # three windows mapped: chunking, queued, hashing).
            todo: queue.Queue[tuple[int, int] | None] = queue.Queue(maxsize=1)

            def hand_over(a: int, b: int) -> None:
                nonlocal done
                todo.put((a, b))
                if on_bytes is not None:
                    done += b - a
                    on_bytes(min(done, size))

            sha = pool.submit(_sha256_windows, view, mm, todo)
            try:
                lengths, ids = _chunk_run(params, view, size, check, hand_over)
            finally:
                todo.put(None)
            digest = sha.result()
            chunks = _pack(lengths, ids)
    finally:
        view.release()
    if on_bytes is not None:
        on_bytes(size)
    return chunks, digest


def _sha256_windows(
    view: memoryview, mm: mmap.mmap, todo: queue.Queue[tuple[int, int] | None]
) -> bytes:
    """SHA-256 of the windows ``todo`` hands over, in order, until ``None``; their pages are
    unmapped once hashed. On an error it still takes every window, so the chunker never
    blocks on a full queue."""
    sha = hashlib.sha256()
    try:
        while (job := todo.get()) is not None:
            a, b = job
            sha.update(view[a:b])
            _drop_pages(mm, a, b)
    except BaseException:
        while todo.get() is not None:
            pass
        raise
    return sha.digest()


def scan_workers() -> int:
    """How many files to chunk at once: the CPUs this process may run on, at most
    ``MAX_WORKERS``. Each file uses two threads (chunking and SHA-256), and the chunking of
    all files shares one interpreter lock, so more would only add memory."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Windows or macOS
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def chunk_files(
    jobs: Sequence[tuple[Path, ChunkerParams]],
    cancel: CancelToken | None = None,
    on_bytes: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Generator[tuple[Chunks, bytes], None, None]:
    """Chunk many files, up to ``workers`` (default ``scan_workers()``) at a time, and yield
    ``chunk_file``'s result for each job in the order of ``jobs``.

    ``on_bytes(n)`` is called on the calling thread with the bytes done since its last call.
    One job or one worker runs on the calling thread with no pool at all. At most
    ``2 * workers`` results wait to be taken, so memory stays bounded. The first error in
    job order is raised (``OSError``, ``CancelledError``) after the other workers stopped.
    """
    n = scan_workers() if workers is None else max(1, workers)
    if n == 1 or len(jobs) <= 1:
        for path, params in jobs:
            last = 0

            def delta(done: int) -> None:
                nonlocal last
                if on_bytes is not None and done > last:
                    on_bytes(done - last)
                last = done

            yield chunk_file(path, params, cancel, delta)
        return

    token = _Linked(cancel)
    lock = threading.Lock()
    pending = 0  # bytes done by workers and not yet reported

    def run(path: Path, params: ChunkerParams) -> tuple[Chunks, bytes]:
        last = 0

        def count(done: int) -> None:
            nonlocal last, pending
            with lock:
                pending += done - last
            last = done

        return chunk_file(path, params, token, count)

    def report() -> None:
        nonlocal pending
        with lock:
            k, pending = pending, 0
        if k and on_bytes is not None:
            on_bytes(k)

    todo = iter(jobs)
    queued: deque[Future[tuple[Chunks, bytes]]] = deque()
    pool = ThreadPoolExecutor(n, thread_name_prefix="stitch-scan")
    try:
        for path, params in itertools.islice(todo, 2 * n):
            queued.append(pool.submit(run, path, params))
        while queued:  # each round takes one result and submits at most one job
            head = queued[0]
            while not wait([head], timeout=_REPORT_EVERY).done:
                report()
            report()
            if cancel is not None:
                cancel.check()  # a cancel heard in the report stops here, done or not
            result = head.result()
            queued.popleft()
            for path, params in itertools.islice(todo, 1):
                queued.append(pool.submit(run, path, params))
            yield result
    finally:
        token.cancel()  # no-op once all jobs are done; stops the others after an error
        pool.shutdown(wait=True, cancel_futures=True)
