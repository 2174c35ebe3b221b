"""bup's rollsum (bupsplit) and the content-defined cut points it gives, for ``.fidx`` v1.

Owns: the rolling checksum (window 64, char offset 31), the split rule (low 13 bits of s2 all
ones, restart from the initial state at every chunk start, forced cut at 32768 bytes, no
minimum), the level rule, a pure-Python reference and a numpy fast path that yields exactly
the same cuts. Facts and vectors: ``tests/vectors/bupsplit.json``.

Leaves out: chunk ids and the index file layout (``core.chunks.fidx_v1``), and the 1 MiB forced cut
of the last C indexer (an artifact of its read loop that v1 writers do not reproduce).

The math behind the fast path. With a window ``w`` of the last 64 bytes (zeros right after a
restart), per byte ``s1 += add - drop`` and ``s2 += s1 - 64*(drop + 31)``. By induction
``s1 = 64*31 + sum(w)`` and ``s2 = 64*63*31 + sum((t+1) * x[i-t] for t in 0..63)``: the
newest byte weighs 1, the oldest 64, bytes before the chunk start weigh nothing. The
``- 64*drop`` term is what removes the dropped byte's accumulated weight, so s2 carries no
history beyond the window. Both sums stay far below 2**32 (s2 <= 124992 + 255*2080), so the
32-bit wrap of the C code never happens, and s2 at byte ``i`` depends only on ``x[i-63..i]``
and, while ``i < a + 63``, on the chunk start ``a``. With prefix sums ``P[k] = x[0]+..+x[k]``
and ``Q[k] = P[0]+..+P[k]`` (uint32, wrapping; differences of them are exact):

* Steady state (``i >= a + 63``): s2 does not depend on ``a`` at all; the weighted window
  sum is ``Q[i] - Q[i-64] - 64*P[i-64]``. Candidates are found for a whole block at once.
* Head (``a <= i < a + 63``): the window still holds restart zeros, so the sum covers
  ``x[a..i]`` only: ``Q[i] - Q[a-1] - (i-a+1)*P[a-1]``. Heads are evaluated for every
  "chunk starts after this candidate" at once, and on demand after forced or head cuts.

A chunk ends at its first head hit, else at its first steady candidate, else at the
32768-byte cap; the next chunk restarts there, which only changes its own head. Python does
one short loop step per chunk; everything per byte is numpy.
"""

from __future__ import annotations

import mmap
import os
from array import array
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

WINDOW_SIZE = 64  # bytes in the rolling window
CHAR_OFFSET = 31  # added to every byte so runs of zeros still move the sums
SPLIT_BITS = 13  # a split needs the low 13 bits of s2 set: 8 KiB average chunks
MAX_CHUNK = 32768  # bytes; a chunk is cut here if no split point came first
LEVEL_BITS = 4  # one level per 4 more one-bits (bup's fanout)

_S1_INIT = WINDOW_SIZE * CHAR_OFFSET
_S2_INIT = WINDOW_SIZE * (WINDOW_SIZE - 1) * CHAR_OFFSET
_MASK = (1 << SPLIT_BITS) - 1
_HEAD = WINDOW_SIZE - 1  # positions after a restart whose window still holds zeros
_BLOCK = 1 << 21  # bytes per vectorised block: peak ~35 MiB of numpy temporaries

_U8 = npt.NDArray[np.uint8]
_U32 = npt.NDArray[np.uint32]
_Idx = npt.NDArray[np.intp]

Buffer = bytes | bytearray | memoryview


def rollsum_digest(data: Buffer) -> int:
    """Return bup's 32-bit rollsum digest ``(s1 << 16) | (s2 & 0xffff)`` after ``data``."""
    s1, s2 = _S1_INIT, _S2_INIT
    window = bytearray(WINDOW_SIZE)
    for pos, add in enumerate(bytes(data)):
        drop = window[pos % WINDOW_SIZE]
        window[pos % WINDOW_SIZE] = add
        s1 = (s1 + add - drop) & 0xFFFFFFFF
        s2 = (s2 + s1 - WINDOW_SIZE * (drop + CHAR_OFFSET)) & 0xFFFFFFFF
    return ((s1 << 16) | (s2 & 0xFFFF)) & 0xFFFFFFFF


def level_of(digest: int) -> int:
    """bup's level rule: count the one-bits above bit 13 (bit 13 itself skipped), over 4."""
    bits = SPLIT_BITS
    rest = digest >> SPLIT_BITS
    while (rest := rest >> 1) & 1:
        bits += 1
    return (bits - SPLIT_BITS) // LEVEL_BITS


def split_points_reference(data: Buffer) -> list[tuple[int, int]]:
    """Return ``(end offset, level)`` of every chunk, byte by byte in pure Python (slow).

    This is the definition the fast path is tested against; it runs at a few MB/s.
    """
    raw = bytes(data)
    cuts: list[tuple[int, int]] = []
    start = 0
    while start < len(raw):
        s1, s2 = _S1_INIT, _S2_INIT
        window = bytearray(WINDOW_SIZE)
        stop = min(start + MAX_CHUNK, len(raw))
        end, level = stop, 0
        for pos in range(start, stop):
            add = raw[pos]
            drop = window[pos % WINDOW_SIZE]
            window[pos % WINDOW_SIZE] = add
            s1 = (s1 + add - drop) & 0xFFFFFFFF
            s2 = (s2 + s1 - WINDOW_SIZE * (drop + CHAR_OFFSET)) & 0xFFFFFFFF
            if s2 & _MASK == _MASK:
                end, level = pos + 1, level_of(((s1 << 16) | (s2 & 0xFFFF)) & 0xFFFFFFFF)
                break
        cuts.append((end, level))
        start = end
    return cuts


def _heads(p: _U32, q: _U32, starts: _Idx) -> _Idx:
    """First head split (relative index) for each chunk start (relative index), or -1.

    ``p`` and ``q`` are the single and double prefix sums of the block (index 0 holds
    context, so ``start - 1`` is always valid). Just after a restart the window holds zeros,
    so s2 - init over ``x[a..i]`` is ``q[i] - q[a-1] - (i-a+1) * p[a-1]``: no loop needed.
    """
    steps = np.arange(_HEAD, dtype=np.intp)
    idx = starts[:, None] + steps[None, :]
    inside = idx < len(q)  # a head may run past the end of the data
    idx = np.minimum(idx, len(q) - 1)
    before = starts - 1
    s2 = q[idx] - q[before][:, None] - (steps + 1).astype(np.uint32) * p[before][:, None]
    hit = (((s2 + np.uint32(_S2_INIT)) & np.uint32(_MASK)) == np.uint32(_MASK)) & inside
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), starts + first, -1)


def _levels(p: _U32, q: _U32, starts: _Idx, ends: _Idx) -> list[int]:
    """Levels of the splits ending at ``ends`` (relative, exclusive) of chunks at ``starts``."""
    pos = ends - 1
    w0 = np.maximum(starts, pos - _HEAD)  # window start: the chunk start or 63 bytes back
    before = w0 - 1
    s1 = p[pos] - p[before] + np.uint32(_S1_INIT)
    s2 = q[pos] - q[before] - (pos - before).astype(np.uint32) * p[before] + np.uint32(_S2_INIT)
    digests = (s1 << np.uint32(16)) | (s2 & np.uint32(0xFFFF))
    return [level_of(d) for d in digests.tolist()]


def _cut_block(buf: _U8, first: int, limit: int) -> tuple[list[int], list[int]]:
    """Cut every chunk that starts in ``[first, limit)``, the first one at ``first``.

    Returns the chunk ends (absolute) and their levels. The block's arrays reach
    ``MAX_CHUNK`` bytes past ``limit``, so every chunk started here also ends inside them.
    """
    size = len(buf)
    hi = min(size, limit + MAX_CHUNK)
    base = first - WINDOW_SIZE  # array index 0 is absolute position ``base``
    x = buf[max(base, 0) : hi]
    if base < 0:  # zeros before the file start weigh nothing in either sum
        x = np.concatenate((np.zeros(-base, dtype=np.uint8), x))
    # uint32 wraps mod 2**32; every true sum below is < 2**32, so the differences are exact.
    p = np.cumsum(x, dtype=np.uint32)
    q = np.cumsum(p, dtype=np.uint32)
    w = WINDOW_SIZE
    steady = q[w:] - q[:-w]
    steady -= p[:-w] << np.uint32(6)  # 64 * p: in place, these arrays are a block long
    steady += np.uint32(_S2_INIT)
    steady &= np.uint32(_MASK)
    cands = np.flatnonzero(steady == np.uint32(_MASK)) + w
    # Most chunks start right after a candidate: find all their heads at once.
    cand_heads: list[int] = _heads(p, q, cands + 1).tolist()
    cand_list: list[int] = cands.tolist()
    n = len(cand_list)

    starts: list[int] = []
    ends: list[int] = []
    forced: list[int] = []
    a, rel_limit, rel_size = first - base, limit - base, size - base
    head = int(_heads(p, q, np.array([a]))[0])
    k = 0
    while a < rel_limit:
        stop = min(a + MAX_CHUNK, rel_size)
        next_head = -2  # -2: unknown, compute it for the new start
        if 0 <= head < stop:
            end = head + 1
        else:
            while k < n and cand_list[k] < a + _HEAD:  # steady values only count from a + 63
                k += 1
            if k < n and cand_list[k] < stop:
                end, next_head = cand_list[k] + 1, cand_heads[k]
            else:
                end = stop
                forced.append(len(ends))
        starts.append(a)
        ends.append(end)
        a = end
        if next_head == -2 and a < rel_limit:
            next_head = int(_heads(p, q, np.array([a]))[0])
        head = next_head
    levels = _levels(p, q, np.array(starts), np.array(ends))
    for i in forced:
        levels[i] = 0
    return [e + base for e in ends], levels


def _iter_cuts(buf: _U8) -> Iterator[tuple[int, int, int]]:
    """Yield ``(offset, length, level)`` for every chunk of ``buf``, fast path."""
    start = 0
    while start < len(buf):
        ends, levels = _cut_block(buf, start, min(start + _BLOCK, len(buf)))
        for end, level in zip(ends, levels, strict=True):
            yield start, end - start, level
            start = end


def _as_array(data: Buffer) -> _U8:
    return np.frombuffer(data, dtype=np.uint8)


def iter_chunks(data: Buffer) -> Generator[tuple[int, int, int], None, None]:
    """Yield ``(offset, length, level)`` for every chunk of ``data``; same cuts as the reference.

    The generator holds a view of ``data`` until it is exhausted or closed.
    """
    yield from _iter_cuts(_as_array(data))


def split_lengths(data: Buffer) -> array[int]:
    """Return the chunk lengths of ``data`` as a compact ``array('I')``."""
    return array("I", (length for _, length, _ in iter_chunks(data)))


@contextmanager
def mapped(path: str | os.PathLike[str]) -> Iterator[memoryview]:
    """Map a file read-only and yield its bytes (an empty view for an empty file).

    Pages are backed by the file and read on demand, so multi-GB files do not fill memory.
    The file must not shrink while mapped (touching a page past its new end faults), which
    holds for the publisher's release files and the installer's own staged copies.
    Raises ``OSError`` if the file cannot be opened or mapped.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:  # mmap refuses empty files
            yield memoryview(b"")
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if hasattr(mmap, "MADV_SEQUENTIAL"):  # POSIX: read ahead, drop pages behind
                mm.madvise(mmap.MADV_SEQUENTIAL)
            view = memoryview(mm)
            try:
                yield view
            finally:
                view.release()


def split_file(path: str | os.PathLike[str]) -> Generator[tuple[int, int, int], None, None]:
    """Yield ``(offset, length, level)`` for every chunk of the file at ``path``.

    Memory stays bounded (one block of numpy temporaries) whatever the file size.
    Raises ``OSError`` if the file cannot be read.
    """
    with mapped(path) as view:
        buf = _as_array(view)
        try:
            yield from _iter_cuts(buf)
        finally:
            del buf  # drop the numpy export before the map is closed
