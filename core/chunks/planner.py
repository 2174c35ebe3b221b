"""The planner: which bytes of each new file come from disk and which from the network.

Pure: it takes the target file's ``FileIndex`` and a ``SeedSet`` (chunks known to exist in
local files) and returns a frozen ``FilePlan``. No disk, no network. Everything is numpy over
the compact index arrays, so a file of millions of chunks costs no Python object per chunk.

Remote bytes are fetched from the original target file on the server, so a remote range's
offsets are target offsets. Coalescing follows a cost model: one more range in a request costs
``range_cost`` bytes (multipart headers plus its share of a round trip), so a gap of local
chunks between two remote ranges is downloaded instead when it is cheaper than that; if the
ranges still need more than ``max_requests`` requests, more of the smallest gaps are merged.
Gaps are merged smallest first and never past ``max_overfetch`` of the bytes the changed
chunks need (or one range's cost, if more).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import xxhash

from core.chunks.fidx import FileIndex


@dataclass(frozen=True)
class PlanOptions:
    """Coalescing cost model. Sizes in bytes."""

    # Cost of one more range: ~100 bytes of multipart part headers, plus a round trip
    # (50 ms at ~10 MB/s = 500 KB) shared by the ranges of one request.
    range_cost: int = 100 + 500_000 // 32
    ranges_per_request: int = 32
    max_requests: int = 48  # per file: beyond this, merge gaps (within max_overfetch)
    max_overfetch: float = 0.5  # extra bytes allowed for fewer requests, as a fraction


@dataclass(frozen=True, eq=False)
class SeedSet:
    """Chunks available on local disk, sorted by id for lookup.

    ``key_hi``/``key_lo`` are the two big-endian halves of each chunk id (uint64), ``seed``
    the number of the local file (an index into ``names``), ``offset`` where the chunk starts
    in it and ``length`` its length.
    """

    names: tuple[str, ...]
    key_hi: np.ndarray
    key_lo: np.ndarray
    seed: np.ndarray
    offset: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.key_hi)

    @classmethod
    def build(cls, seeds: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> SeedSet:
        """From ``(name, offsets, lengths, ids)`` per local file: the chunks known to be at
        those offsets of that file (all of a file, or the verified part of a ``.part``)."""
        names: list[str] = []
        his, los, nums, offs, lens = [], [], [], [], []
        for i, (name, offsets, lengths, ids) in enumerate(seeds):
            names.append(name)
            hi, lo = split_ids(ids)
            his.append(hi)
            los.append(lo)
            nums.append(np.full(len(lengths), i, dtype=np.uint32))
            offs.append(np.asarray(offsets, dtype=np.uint64))
            lens.append(np.asarray(lengths, dtype=np.uint32))
        return cls.from_arrays(tuple(names), his, los, nums, offs, lens)

    @classmethod
    def of_index(cls, name: str, index: FileIndex) -> SeedSet:
        return cls.build([(name, index.offsets()[:-1], index.lengths, index.ids)])

    @classmethod
    def from_arrays(cls, names: tuple[str, ...], his: list[np.ndarray], los: list[np.ndarray],
                    nums: list[np.ndarray], offs: list[np.ndarray],
                    lens: list[np.ndarray]) -> SeedSet:
        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
        hi = cat(his, np.uint64)
        lo = cat(los, np.uint64)
        order = np.lexsort((lo, hi))
        return cls(names, hi[order], lo[order], cat(nums, np.uint32)[order],
                   cat(offs, np.uint64)[order], cat(lens, np.uint32)[order])

    def lookup(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Position in this set of a local copy of each chunk, or -1 (int64 array)."""
        hi, lo = split_ids(ids)
        n = len(self.key_hi)
        if n == 0 or len(hi) == 0:
            return np.full(len(hi), -1, dtype=np.int64)
        pos = np.searchsorted(self.key_hi, hi, side="left")
        pos_c = np.minimum(pos, n - 1)
        # Equal ids come out of lexsort sorted by lo too; search lo among those with equal hi.
        # A 64-bit hi collision with a different lo is vanishingly rare; it is found below by
        # a second search, and if it still mismatches the chunk is simply downloaded.
        found = (self.key_hi[pos_c] == hi) & (pos < n)
        ok = found & (self.key_lo[pos_c] == lo) & (self.length[pos_c] == lengths)
        retry = np.nonzero(found & ~ok)[0]
        for j in retry:  # rare: same hi, find the exact lo
            lo_start = int(pos[j])
            hi_end = int(np.searchsorted(self.key_hi, hi[j], side="right"))
            k = lo_start + int(np.searchsorted(self.key_lo[lo_start:hi_end], lo[j]))
            if k < hi_end and self.key_lo[k] == lo[j] and self.length[k] == lengths[j]:
                pos_c[j] = k
                ok[j] = True
        return np.where(ok, pos_c, -1).astype(np.int64)


ZERO_SEED = "<zeros>"  # the virtual local file every all-zero chunk is copied from


@functools.lru_cache(maxsize=1024)
def _zero_key(length: int) -> tuple[int, int]:
    d = xxhash.xxh3_128_digest(bytes(length))
    return int.from_bytes(d[:8], "big"), int.from_bytes(d[8:], "big")


def zero_chunks(ids: np.ndarray, lengths: np.ndarray, max_lengths: int = 64) -> np.ndarray:
    """Which chunks are all zeros (bool array), by id. Zero runs (sparse images, padding)
    cut into max-size chunks plus a few others, so the ids of zeros are computed only for
    the ``max_lengths`` most frequent lengths."""
    out = np.zeros(len(lengths), dtype=bool)
    if len(lengths) == 0:
        return out
    hi, lo = split_ids(ids)
    values, counts = np.unique(lengths, return_counts=True)
    for length in values[np.argsort(counts)[::-1][:max_lengths]].tolist():
        zhi, zlo = _zero_key(int(length))
        out |= (hi == np.uint64(zhi)) & (lo == np.uint64(zlo)) & (lengths == length)
    return out


def split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two uint64 halves of 16-byte ids (n x 16 uint8), big-endian."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    v = np.ascontiguousarray(ids).view(">u8").reshape(-1, 2)
    return v[:, 0].astype(np.uint64), v[:, 1].astype(np.uint64)


@dataclass(frozen=True, eq=False)
class FilePlan:
    """How to build one file.

    ``remote``: (r, 2) uint64 half-open target ranges to download, sorted.
    ``copies``: (c, 4) uint64 rows ``(target_offset, seed, seed_offset, length)``: runs of
    chunks to copy from local file ``seed_names[seed]``.
    ``remote_chunks``/``copy_chunks``: how many chunks each side covers.
    """

    size: int
    remote: np.ndarray
    copies: np.ndarray
    seed_names: tuple[str, ...]

    @property
    def bytes_remote(self) -> int:
        return int((self.remote[:, 1] - self.remote[:, 0]).sum()) if len(self.remote) else 0

    @property
    def bytes_local(self) -> int:
        return int(self.copies[:, 3].sum()) if len(self.copies) else 0

    def requests(self, ranges_per_request: int) -> int:
        return -(-len(self.remote) // ranges_per_request)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) chunk numbers of each run of True in ``mask``."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]


def plan_file(target: FileIndex, seeds: SeedSet, options: PlanOptions | None = None) -> FilePlan:
    """Plan the rebuild of ``target`` from ``seeds`` plus remote ranges (see module doc)."""
    opt = options or PlanOptions()
    n = len(target)
    offsets = target.offsets()
    where = seeds.lookup(target.ids, target.lengths)
    # All-zero chunks need no source: the staged file starts as a hole. They "come from"
    # a virtual seed at the same offset, so runs of them merge into one copy.
    zero_seed = len(seeds.names)
    where[zero_chunks(target.ids, target.lengths)] = -2
    remote = where == -1
    starts, ends = _runs(remote)
    if len(starts) > 1:
        gaps = offsets[starts[1:]] - offsets[ends[:-1]]  # bytes of local chunks between runs
        needed = int((offsets[ends] - offsets[starts]).sum())
        limit = opt.max_requests * opt.ranges_per_request
        # Gaps are bridged smallest first: every gap cheaper than a range, and more if the
        # ranges would not fit in max_requests; never past the overfetch budget.
        order = np.argsort(gaps, kind="stable")
        extra = np.cumsum(gaps[order])
        wanted = max(int((gaps <= opt.range_cost).sum()), len(gaps) + 1 - limit)
        # (At least one range's cost, so tiny updates may still merge two ranges.)
        budget = max(int(needed * opt.max_overfetch), opt.range_cost)
        fits = int(np.searchsorted(extra, budget, side="right"))
        bridge = np.zeros(len(gaps), dtype=bool)
        bridge[order[:min(wanted, fits)]] = True
        for gap_i in np.nonzero(bridge)[0]:
            remote[ends[gap_i]:starts[gap_i + 1]] = True
        starts, ends = _runs(remote)
    remote_ranges = np.stack([offsets[starts], offsets[ends]], axis=1).astype(np.uint64) \
        if len(starts) else np.zeros((0, 2), dtype=np.uint64)

    local = np.nonzero(~remote)[0]
    if len(local):
        pos = where[local]
        is_zero = pos == -2
        safe = np.where(is_zero, 0, pos)
        length = target.lengths[local].astype(np.uint64)
        toff = offsets[local]
        if len(seeds):
            seed = np.where(is_zero, zero_seed, seeds.seed[safe]).astype(np.uint64)
            soff = np.where(is_zero, toff, seeds.offset[safe]).astype(np.uint64)
        else:
            seed = np.full(len(local), zero_seed, dtype=np.uint64)
            soff = toff.copy()
        # A new copy run starts where the target chunks are not adjacent, or the source
        # changes file, or the source is not contiguous.
        brk = np.ones(len(local), dtype=bool)
        brk[1:] = (
            (local[1:] != local[:-1] + 1)
            | (seed[1:] != seed[:-1])
            | (soff[1:] != soff[:-1] + length[:-1])
        )
        first = np.nonzero(brk)[0]
        run_len = np.add.reduceat(length, first)
        copies = np.stack([toff[first], seed[first], soff[first], run_len], axis=1)
    else:
        copies = np.zeros((0, 4), dtype=np.uint64)
    del n
    return FilePlan(target.file_size, remote_ranges, copies.astype(np.uint64),
                    (*seeds.names, ZERO_SEED))
