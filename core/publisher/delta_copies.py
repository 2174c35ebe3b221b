"""The copies of a delta (``core.formats.delta.make``'s ``copies``): long runs of a new
file found unchanged in its earlier version, which the delta's copy table
(``core.formats.copytable``) gives instead of its zstd frame.

Found from the two files' chunk indexes (equal chunk ids: equal content), chunks next to
each other in both files merged into one run, each run then grown byte by byte into the
changed bytes around it, and checked byte for byte. Runs shorter than ``MIN_COPY`` are
left to zstd: a copy costs a few bytes of the table and breaks zstd's repeated offsets,
and pays only where it spares the frame whole blocks (128 KiB each; measured on
esbuild-wasm's 11 MB ``esbuild.wasm``: 4 copies of at least 64 KiB made the delta 2 %
smaller than 80 copies of any length, docs/benchmarks.md). And none at all unless they
cover ``MIN_COVER`` of the new file: in a rebuilt binary the few unchanged runs spare
little and the breaks cost more (LibreOffice's 69 MB ``libmergedlo.so``, 6 % copied:
14 kB larger with its 15 copies; esbuild.wasm, 6 %: 0.7 kB larger).
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

from core.chunks.fidx import FileIndex
from core.chunks.planner import SeedSet
from core.formats.copytable import Copy

MIN_COPY = 64 << 10  # bytes
MIN_COVER = 0.5  # of the new file's bytes
_CHECK_BLOCK = 4 << 20  # bytes compared at a time


def find(old: Path, old_index: FileIndex, new: Path, new_index: FileIndex,
         min_copy: int = MIN_COPY) -> list[Copy]:
    """The runs of ``new`` (its index ``new_index``) equal to runs of ``old`` (its index
    ``old_index``) of at least ``min_copy`` bytes, in the order of ``new``, not
    overlapping: ``(new offset, old offset, length)``; none unless they cover
    ``MIN_COVER`` of ``new``. ``OSError`` if a file cannot be read; a run whose bytes
    differ (an index that is not the file's) is left out."""
    runs = _chunk_runs(old_index, new_index)
    if not runs:
        return []
    with open(old, "rb") as fo, open(new, "rb") as fn:
        if not os.fstat(fo.fileno()).st_size or not os.fstat(fn.fileno()).st_size:
            return []
        with mmap.mmap(fo.fileno(), 0, access=mmap.ACCESS_READ) as om, \
                mmap.mmap(fn.fileno(), 0, access=mmap.ACCESS_READ) as nm:
            o = np.frombuffer(om, dtype=np.uint8)
            n = np.frombuffer(nm, dtype=np.uint8)
            try:
                copies = _grow(runs, o, n, min_copy)
            finally:
                del o, n  # (the maps close only when no array points into them)
    if sum(c[2] for c in copies) < MIN_COVER * new_index.file_size:
        return []
    return copies


def _chunk_runs(old_index: FileIndex, new_index: FileIndex) -> list[Copy]:
    """Runs of whole chunks of the new file found in the old one, consecutive chunks of
    both merged."""
    if not len(old_index) or not len(new_index):
        return []
    seeds = SeedSet.of_index("", old_index)
    pos = seeds.lookup(new_index.ids, new_index.lengths)
    found = pos >= 0
    new_off = new_index.offsets()[:-1].astype(np.int64)
    lengths = new_index.lengths.astype(np.int64)
    old_off = np.where(found, seeds.offset[np.maximum(pos, 0)].astype(np.int64), -1)
    follows = np.zeros(len(found), dtype=bool)  # chunk i continues chunk i - 1 in both files
    follows[1:] = found[1:] & found[:-1] & (old_off[1:] == old_off[:-1] + lengths[:-1])
    starts = np.flatnonzero(found & ~follows)
    ends = np.flatnonzero(found & ~np.append(follows[1:], False))
    return [(int(new_off[a]), int(old_off[a]), int(new_off[b] + lengths[b] - new_off[a]))
            for a, b in zip(starts, ends, strict=True)]


def _same(a: np.ndarray, b: np.ndarray) -> int:
    """How many bytes ``a`` and ``b`` (of equal length) have equal from their start."""
    for at in range(0, len(a), _CHECK_BLOCK):  # each round compares one block
        differ = np.flatnonzero(a[at:at + _CHECK_BLOCK] != b[at:at + _CHECK_BLOCK])
        if len(differ):
            return at + int(differ[0])
    return len(a)


def _grow(runs: list[Copy], o: np.ndarray, n: np.ndarray, min_copy: int) -> list[Copy]:
    """Each run checked, then grown backwards and forwards over equal bytes up to its
    neighbours; those of at least ``min_copy`` bytes."""
    out: list[Copy] = []
    end = 0  # of the previous run in the new file
    for i, (n0, o0, length) in enumerate(runs):
        if n0 < end:  # the previous run grew into this one
            cut = end - n0
            if cut >= length:
                continue
            n0, o0, length = n0 + cut, o0 + cut, length - cut
        if _same(n[n0:n0 + length], o[o0:o0 + length]) != length:
            continue  # not the bytes the indexes say
        back = min(n0 - end, o0)
        if back:
            k = _same(n[n0 - back:n0][::-1], o[o0 - back:o0][::-1])
            n0, o0, length = n0 - k, o0 - k, length + k
        limit = runs[i + 1][0] if i + 1 < len(runs) else len(n)
        ahead = min(limit - (n0 + length), len(o) - (o0 + length))
        if ahead > 0:
            length += _same(n[n0 + length:n0 + length + ahead],
                            o[o0 + length:o0 + length + ahead])
        end = n0 + length
        if length >= min_copy:
            out.append((n0, o0, length))
    return out
