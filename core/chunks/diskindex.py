"""A ``.fidx`` v2 kept on disk and read by windows: the index of a file too big to hold.

A 50 GB file has an index of about 250 MB at 4 KiB chunks (20 bytes a chunk), and planning
it the in-memory way (``core.chunks.fidx.FileIndex``, ``core.chunks.planner.SeedSet``) costs
several times that. A ``DiskIndex`` holds only the header fields and ``marks``: the byte
offset of every ``STEP``-th chunk (8 bytes per 1024 chunks); records and offsets are read
back by ranges of chunks, a window at a time. ``open_index`` checks a file as
``core.chunks.fidx.decode`` does (docs/format.md §2), streaming, before anything trusts it.

Also here, for the two-level index (§2.2) of a big file: the groups of an index on disk
(``disk_groups``) and the target index assembled on disk from local groups and fetched
leaves (``assemble``). Leaves out fetching (``core.engine.bigplan``) and planning
(``core.chunks.windowplan``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.chunks.chunker import ID_SIZE, ChunkerParams
from core.chunks.fidx import (
    HEADER_SIZE,
    MAX_FILE_SIZE,
    RECORD_SIZE,
    TRAILER_SIZE,
    FileIndex,
    encode_records,
    pack_header,
    parse_header,
)
from core.chunks.fidx_groups import DIGEST_SIZE, GroupTable, group_counts, group_digests
from core.errors import FormatError
from core.fsutil import pread

STEP = 1024  # chunks between two marks
WINDOW = 64 * STEP  # chunks read at once (1.3 MB of records; planning one: ~25 MB)
_RECORD_DTYPE = np.dtype([("length", ">u4"), ("id", "u1", (ID_SIZE,))])


@dataclass(frozen=True, eq=False)
class DiskIndex:
    """A checked ``.fidx`` v2 at ``path``: its header fields and the offset of every
    ``STEP``-th chunk (``marks``, uint64, the file length last). ``fidx_sha256``: the
    SHA-256 of the whole ``.fidx``."""

    path: str
    params: ChunkerParams
    file_size: int
    sha256: bytes
    count: int
    fidx_sha256: str
    marks: np.ndarray

    def __post_init__(self) -> None:
        self.marks.setflags(write=False)

    def __len__(self) -> int:
        return self.count

    def records(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Lengths (uint32) and ids ((j - i, 16) uint8) of chunks [i, j)."""
        if not 0 <= i <= j <= self.count:
            raise IndexError(f"chunks {i}-{j} of {self.count}")
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            data = pread(fd, RECORD_SIZE * (j - i), HEADER_SIZE + RECORD_SIZE * i)
        finally:
            os.close(fd)
        if len(data) != RECORD_SIZE * (j - i):
            raise FormatError(f"{self.path}: index shrank while read", what="fidx")
        rec = np.frombuffer(data, dtype=_RECORD_DTYPE)
        return rec["length"].astype(np.uint32), np.ascontiguousarray(rec["id"])

    def offsets(self, i: int, j: int) -> np.ndarray:
        """Start offsets of chunks [i, j] (uint64, j - i + 1: the last is chunk j's start,
        or the file length)."""
        base = i - i % STEP
        lengths, _ = self.records(base, j)
        out = np.empty(j - base + 1, dtype=np.uint64)
        out[0] = self.marks[base // STEP]
        np.cumsum(lengths, dtype=np.uint64, out=out[1:])
        out[1:] += out[0]
        return out[i - base:]

    def chunk_at(self, offset: int) -> int:
        """The chunk holding byte ``offset`` (``count`` at or past the end)."""
        if offset >= self.file_size:
            return self.count
        k = int(np.searchsorted(self.marks, np.uint64(offset), side="right")) - 1
        i = k * STEP
        offs = self.offsets(i, min(self.count, i + STEP))
        return i + int(np.searchsorted(offs, np.uint64(offset), side="right")) - 1

    def mark(self, i: int) -> int:
        """Start offset of chunk ``i``, a multiple of ``STEP`` (or ``count``)."""
        if i >= self.count:
            return self.file_size
        return int(self.marks[i // STEP])


def open_index(path: Path, max_file_size: int = MAX_FILE_SIZE) -> DiskIndex:
    """Check the ``.fidx`` v2 at ``path`` a window at a time (every check of
    ``core.chunks.fidx.decode``) and return it as a ``DiskIndex``. Raises ``FormatError``
    and ``OSError``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        head = pread(fd, HEADER_SIZE, 0)
        if size < HEADER_SIZE + TRAILER_SIZE:
            raise FormatError(f"index truncated: {size} bytes", what="fidx")
        params, file_size, sha256, count = parse_header(head, max_file_size)
        if size != HEADER_SIZE + count * RECORD_SIZE + TRAILER_SIZE:
            raise FormatError(f"index length {size} does not fit {count} chunks", what="fidx")
        body = hashlib.sha256(head)
        marks = np.empty(-(-count // STEP) + 1, dtype=np.uint64)
        total = 0
        step = max(STEP, WINDOW // STEP * STEP)  # windows start at marks
        for i in range(0, count, step):
            j = min(count, i + step)
            data = pread(fd, RECORD_SIZE * (j - i), HEADER_SIZE + RECORD_SIZE * i)
            if len(data) != RECORD_SIZE * (j - i):
                raise FormatError(f"{path}: index shrank while read", what="fidx")
            body.update(data)
            lengths = np.frombuffer(data, dtype=_RECORD_DTYPE)["length"].astype(np.uint64)
            if int(lengths.max()) > params.max_size or int(lengths.min()) == 0:
                raise FormatError("chunk length out of range", what="fidx")
            short = lengths[:-1] if j == count else lengths
            if len(short) and int(short.min()) < params.min_size:
                raise FormatError("chunk shorter than the chunker's minimum", what="fidx")
            starts = np.cumsum(lengths, dtype=np.uint64) - lengths + np.uint64(total)
            marks[i // STEP:-(-j // STEP)] = starts[::STEP]
            total += int(lengths.sum(dtype=np.uint64))
        marks[-1] = total
        if total != file_size:
            raise FormatError("chunk lengths do not add up to the file length", what="fidx")
        trailer = pread(fd, TRAILER_SIZE, size - TRAILER_SIZE)
        if body.digest() != trailer:
            raise FormatError("index trailer digest does not match", what="fidx")
        whole = body.copy()
        whole.update(trailer)
    finally:
        os.close(fd)
    return DiskIndex(str(path), params, file_size, sha256, count, whole.hexdigest(), marks)


@dataclass(frozen=True, eq=False)
class DiskGroups:
    """The groups (§2.2) of an index on disk, by digest: sorted keys, and for each its first
    chunk and chunk count in that index."""

    keys: np.ndarray  # void16, sorted
    first: np.ndarray  # int64
    count: np.ndarray  # int64

    def find(self, digests: np.ndarray) -> np.ndarray:
        """For each digest, the position of a group with it, or -1."""
        want = np.ascontiguousarray(digests, dtype=np.uint8).view("V16").ravel()
        if len(self.keys) == 0:
            return np.full(len(want), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, want), len(self.keys) - 1)
        return np.where(self.keys[pos] == want, pos, -1).astype(np.int64)


def disk_groups(index: DiskIndex, target: int, maximum: int) -> DiskGroups:
    """Group ``index`` with the table's rule, a window at a time: the unfinished group at a
    window's end is carried into the next (a group starts where the whole pass starts one,
    so the cuts are the same)."""
    keys: list[np.ndarray] = []
    firsts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    carry = 0  # chunks of the unfinished group, from ``start``
    start = 0
    while start + carry < index.count:
        j = min(index.count, start + carry + WINDOW)
        lengths, ids = index.records(start, j)
        c = group_counts(ids, target, maximum).astype(np.int64)
        final = j == index.count
        if not final:
            lo = int.from_bytes(ids[-1, 8:].tobytes(), "big")
            final = lo % target == target - 1 or int(c[-1]) == maximum
        done = c if final else c[:-1]
        if len(done):
            n = int(done.sum())
            raw = np.empty(n, dtype=_RECORD_DTYPE)
            raw["length"] = lengths[:n]
            raw["id"] = ids[:n]
            keys.append(group_digests(raw.tobytes(), done).view("V16").ravel())
            firsts.append(start + np.cumsum(done) - done)
            counts.append(done)
            start += n
        carry = j - start
    if not keys:
        return DiskGroups(np.zeros(0, dtype="V16"), np.zeros(0, np.int64),
                          np.zeros(0, np.int64))
    k = np.concatenate(keys)
    order = np.argsort(k, kind="stable")
    return DiskGroups(k[order], np.concatenate(firsts)[order], np.concatenate(counts)[order])


def missing_bytes(table: GroupTable, hit: np.ndarray) -> tuple[int, int]:
    """Record bytes of the groups not found (``hit`` < 0), and how many ranges they make."""
    miss = hit < 0
    ranges = int(miss[0]) + int(np.count_nonzero(miss[1:] & ~miss[:-1])) if len(miss) else 0
    return RECORD_SIZE * int(table.counts[miss].sum(dtype=np.int64)), ranges


Fetch = Callable[[list[tuple[int, int]]], dict[int, bytes]]


def assemble(table: GroupTable, local: DiskIndex, groups: DiskGroups, hit: np.ndarray,
             out: Path, fetch: Fetch, url: str) -> None:
    """Write the target ``.fidx`` of ``table`` at ``out``: the records of found groups
    (``hit``: their positions in ``groups``) copied from ``local``, the others fetched
    (``fetch(ranges)``: byte ranges of the ``.fidx`` -> bytes by range start) in batches of
    at most ``WINDOW`` records (one request for a few scattered changes, however big the
    file), each group checked against its digest. The caller checks
    the result (``open_index`` and the manifest's digest). Raises ``HashMismatchError``,
    ``FormatError``, and what ``fetch`` raises."""
    from core.errors import HashMismatchError

    starts = table.starts()
    m = len(table)
    body = hashlib.sha256()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                 0o666)
    src = os.open(local.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    run = [0, 0]  # local chunks [a, b) still to copy

    def put(data: bytes | memoryview) -> None:
        body.update(data)
        view = memoryview(data)
        while len(view):
            view = view[os.write(fd, view):]

    def flush() -> None:
        a, b = run
        while a < b:  # at most WINDOW records at once
            e = min(b, a + WINDOW)
            data = pread(src, RECORD_SIZE * (e - a), HEADER_SIZE + RECORD_SIZE * a)
            if len(data) != RECORD_SIZE * (e - a):
                raise FormatError(f"{local.path}: index shrank while read", what="fidx")
            put(data)
            a = e
        run[0] = run[1] = 0

    try:
        put(pack_header(table.params, table.file_size, table.sha256, table.chunks))
        missing = np.flatnonzero(hit < 0)  # int64, one per missing group
        sizes = np.cumsum(table.counts[missing], dtype=np.int64)

        def fetch_from(x: int) -> dict[int, bytes]:
            """The records of the missing groups from group ``x`` on, at most ``WINDOW``
            records (one group at least), checked; by first chunk of each range."""
            k = int(np.searchsorted(missing, x))
            done = int(sizes[k - 1]) if k else 0
            e = max(k + 1, int(np.searchsorted(sizes, done + WINDOW, side="right")))
            ranges: list[tuple[int, int]] = []
            for y in missing[k:e].tolist():
                a = HEADER_SIZE + RECORD_SIZE * int(starts[y])
                b = HEADER_SIZE + RECORD_SIZE * int(starts[y + 1])
                if ranges and ranges[-1][1] == a:
                    ranges[-1] = (ranges[-1][0], b)
                else:
                    ranges.append((a, b))
            out: dict[int, bytes] = {}
            for a, data in sorted(fetch(ranges).items()):
                first = (a - HEADER_SIZE) // RECORD_SIZE
                last = first + len(data) // RECORD_SIZE
                g0 = int(np.searchsorted(starts, first))
                g1 = int(np.searchsorted(starts, last))
                if ((a - HEADER_SIZE) % RECORD_SIZE or len(data) % RECORD_SIZE
                        or g0 >= m or int(starts[g0]) != first or g1 > m
                        or int(starts[g1]) != last):
                    raise FormatError(f"{url}: leaf bytes at {a} are not whole groups",
                                      what="fidx")
                bad = np.flatnonzero(np.any(group_digests(data, table.counts[g0:g1])
                                            != table.digests[g0:g1], axis=1))
                if len(bad):
                    raise HashMismatchError(f"{url}: records of group {g0 + int(bad[0])} do "
                                            "not match the group table", url=url)
                out[first] = data
            return out

        held: dict[int, bytes] = {}  # fetched records not yet written
        x = 0
        while x < m:  # every round moves x on by one group at least
            s = int(starts[x])
            if hit[x] < 0:
                if s not in held:
                    held = fetch_from(x)
                data = held.pop(s, b"")
                if not data:
                    raise FormatError(f"{url}: records of group {x} missing", what="fidx")
                flush()
                put(data)
                x = int(np.searchsorted(starts, s + len(data) // RECORD_SIZE))
                continue
            p = int(hit[x])
            a = int(groups.first[p])
            if run[1] != a or run[0] == run[1]:
                flush()
                run[0] = a
            run[1] = a + int(table.counts[x])
            x += 1
        flush()
        os.write(fd, body.digest())
    finally:
        os.close(src)
        os.close(fd)


def write_index(path: Path, index: FileIndex) -> None:
    """Write ``index`` as a ``.fidx`` v2 at ``path`` a window of records at a time (the
    bytes of ``core.chunks.fidx.encode``, without a second copy of the whole index)."""
    body = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        def put(data: bytes) -> None:
            body.update(data)
            view = memoryview(data)
            while len(view):
                view = view[os.write(fd, view):]

        put(pack_header(index.params, index.file_size, index.sha256, len(index)))
        for i in range(0, len(index), WINDOW):
            j = min(len(index), i + WINDOW)
            put(encode_records(index.lengths[i:j], index.ids[i:j]))
        put(body.digest())
    finally:
        os.close(fd)


def pread_records(index: DiskIndex, i: int, j: int) -> bytes:
    """The raw record bytes of chunks [i, j) of ``index``."""
    fd = os.open(index.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        data = pread(fd, RECORD_SIZE * (j - i), HEADER_SIZE + RECORD_SIZE * i)
    finally:
        os.close(fd)
    if len(data) != RECORD_SIZE * (j - i):
        raise FormatError(f"{index.path}: index shrank while read", what="fidx")
    return data


__all__ = ["DIGEST_SIZE", "STEP", "WINDOW", "DiskGroups", "DiskIndex", "assemble",
           "disk_groups", "missing_bytes", "open_index", "pread_records", "write_index"]
