"""Content-defined chunking: FastCDC 2020 (through pyfastcdc) plus xxh3-128 chunk ids.

Owns the chunker parameters and the one pass over a file that yields its chunk index and
whole-file SHA-256 together. It knows nothing of index file formats (``core.fidx``) or of
which files to scan (``core.scan``).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import threading
from array import array
from collections.abc import Callable
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

# Scan files in slices of this many bytes so cancel and progress stay responsive and the
# SHA-256 pass can run in step with chunking over the same mapped pages.
_SLICE = 16 << 20


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
    size: int,
    lengths: array[int],
    ids: bytearray,
) -> int:
    """Chunk ``view[pos:end]`` and return where the next window starts.

    The last chunk of a window that does not reach EOF is cut again with the next window, so
    the cut points are exactly those of one pass over the whole file. Kept in its own frame
    so no chunk (which holds a view of the mapping) outlives it.
    """
    digest = xxhash.xxh3_128_digest
    window = view[pos:end]
    nxt = pos
    for c in cdc.cut_buf(window):
        if end < size and c.offset + c.length == len(window):
            break
        lengths.append(c.length)
        ids += digest(c.data)
        nxt = pos + c.offset + c.length
    window.release()
    if nxt == pos and end < size:
        raise AssertionError("window shorter than one chunk")  # _SLICE > max_size
    return nxt


def _drop_pages(mm: mmap.mmap, start: int, end: int) -> None:
    """Unmap pages already chunked and hashed, so a multi-GB scan keeps a small RSS (the
    data stays in the page cache; only this process's mapping of it goes)."""
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
    return Chunks(
        lengths=np.array(lengths, dtype=np.uint32),
        ids=np.frombuffer(bytes(ids), dtype=np.uint8).reshape(-1, ID_SIZE),
    )


def chunk_file(
    path: str | os.PathLike[str],
    params: ChunkerParams,
    cancel: CancelToken | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[Chunks, bytes]:
    """Chunk a file and compute its SHA-256 in one pass over a read-only mapping.

    The SHA-256 runs on a second thread, a slice behind the chunker (hashlib releases the
    GIL), so a scan costs about the slower of the two instead of their sum. ``on_bytes``,
    when given, is called with the number of bytes done after each slice. Returns
    ``(chunks, sha256 digest)``. Memory stays bounded: pages are unmapped once hashed and the
    index costs 20 bytes per chunk, in compact arrays.
    """
    sha = hashlib.sha256()
    lengths: array[int] = array("I")
    ids = bytearray()
    with open(Path(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return _pack(lengths, ids), sha.digest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            # One slice queued and one being hashed: at most three slices mapped at once.
            todo: queue.Queue[tuple[int, int] | None] = queue.Queue(maxsize=1)
            failed: list[BaseException] = []

            def hash_slices() -> None:
                try:
                    while (job := todo.get()) is not None:
                        a, b = job
                        sha.update(view[a:b])
                        _drop_pages(mm, a, b)
                except BaseException as e:  # handed to the caller below
                    failed.append(e)
                    while todo.get() is not None:
                        pass

            hasher = threading.Thread(target=hash_slices, name="sha256", daemon=True)
            hasher.start()
            try:
                cdc = params.make()
                pos = 0  # start of the chunk the next slice begins with
                while pos < size:
                    if cancel is not None:
                        cancel.check()
                    end = min(size, pos + _SLICE)
                    nxt = _chunk_window(cdc, view, pos, end, size, lengths, ids)
                    todo.put((pos, nxt))
                    pos = nxt
                    if on_bytes is not None:
                        on_bytes(pos)
            finally:
                todo.put(None)
                hasher.join()
                view.release()
            if failed:
                raise failed[0]
    return _pack(lengths, ids), sha.digest()
