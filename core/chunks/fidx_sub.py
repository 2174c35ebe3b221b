"""The sub-index (``NAME.fidx.sub``): smaller chunks inside the chunks that changed.

A 4-byte edit costs a whole ~4 KiB chunk (two when a cut point moves). The publisher knows
which chunks of a file are new since the previous release and which chunks of that release
are gone ("orphans"): it cuts both again, each chunk from its own first byte, with a small
FastCDC (min 128, avg 512, max 2048), and for the new chunks whose sub-chunks are mostly
found among the orphans' (enough to save a player one version behind bytes, once the
planner has bridged its gaps) it writes their sub-records (20 bytes each, like ``.fidx``
records). A client whose plan still downloads such a chunk cuts its own orphan chunks the
same way, fetches the sub-records of the chunks it misses (byte ranges, each chunk's
records checked against its digest in the table, the table against the manifest), and
replaces each chunk by its sub-records where that saves bytes: the planner and the rebuild
then work on the mixed records as on any others (each record checked against its id, the
whole file against its SHA-256).

Owns the file's layout (docs/format.md §2.4), the publisher's choice of chunks, cutting
orphans, the records' checks, the mixed index and which chunks a plan takes as sub-chunks
(``choose``, used by both sides). Leaves out fetching (the updater) and
planning (``core.chunks.planner``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from core.chunks.chunker import ID_SIZE, ChunkerParams, chunk_bytes
from core.chunks.fidx import RECORD_SIZE, FileIndex, encode_records
from core.chunks.planner import FilePlan, PlanOptions, SeedSet, plan_file
from core.errors import FormatError, HashMismatchError
from core.fsutil import READ_BLOCK, pread

MAGIC = b"FIDS"
VERSION = 1
SUFFIX = ".sub"  # NAME.fidx.sub beside NAME.fidx
# magic, version, SHA-256 of the .fidx, sub min, avg, max, normalization, covered count
_HEAD = struct.Struct(">4sI32sIIIIQ")
HEADER_SIZE = _HEAD.size  # 64
DIGEST_SIZE = 16  # SHA-256 of one chunk's sub-records, truncated
_ENTRY_DTYPE = np.dtype([("chunk", ">u8"), ("count", ">u4"), ("digest", "u1", (DIGEST_SIZE,))])
ENTRY_SIZE = _ENTRY_DTYPE.itemsize  # 28
_RECORD_DTYPE = np.dtype([("length", ">u4"), ("id", "u1", (ID_SIZE,))])

SUB_PARAMS = ChunkerParams(min_size=128, avg_size=512, max_size=2048)
# A chunk is covered when its sub-chunks found among the orphans save more than its
# records cost plus this (bytes).
MIN_SAVING = 64
# Orphan bytes a client cuts at most (bounded work whatever is on disk).
MAX_ORPHAN_BYTES = 512 << 20


@dataclass(frozen=True, eq=False)
class SubTable:
    """The header and table of a ``.fidx.sub``: which chunks are covered, by how many
    sub-records, and their digests."""

    params: ChunkerParams  # how the covered chunks were cut again
    fidx_sha256: bytes  # SHA-256 of the .fidx whose chunks these refine
    chunks: np.ndarray  # uint64, covered chunk numbers, strictly increasing
    counts: np.ndarray  # uint32, sub-records per covered chunk
    digests: np.ndarray  # uint8 (k, 16)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def table_size(self) -> int:
        return HEADER_SIZE + ENTRY_SIZE * len(self.chunks)

    @property
    def size(self) -> int:
        """Size of the whole ``.fidx.sub``."""
        return self.table_size + RECORD_SIZE * int(self.counts.sum(dtype=np.uint64))

    def starts(self) -> np.ndarray:
        """First sub-record of every entry, plus the total at the end (int64, k + 1)."""
        out = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, dtype=np.int64, out=out[1:])
        return out


def cut_chunks(read: Callable[[int, int], bytes], offsets: np.ndarray, lengths: np.ndarray,
               params: ChunkerParams = SUB_PARAMS,
               check: Callable[[], None] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut each chunk (at ``offsets``, ``lengths`` bytes, read with ``read(offset, n)``)
    again with ``params``, from its own first byte. Returns the sub-chunks' offsets
    (uint64), lengths (uint32), ids (n x 16) and how many each chunk gave (int64)."""
    offs: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    counts = np.zeros(len(lengths), dtype=np.int64)
    # Read runs of adjacent chunks at once, up to READ_BLOCK bytes.
    k = 0
    n = len(lengths)
    starts = offsets.astype(np.uint64)
    ends = starts + lengths.astype(np.uint64)
    while k < n:
        if check is not None:
            check()
        j = k + 1
        while j < n and ends[j - 1] == starts[j] and ends[j] - starts[k] <= READ_BLOCK:
            j += 1
        base = int(starts[k])
        buf = memoryview(read(base, int(ends[j - 1]) - base))
        for c in range(k, j):
            a = int(starts[c]) - base
            got = chunk_bytes(buf[a:a + int(lengths[c])], params)
            sub_off = np.zeros(len(got), dtype=np.uint64)
            np.cumsum(got.lengths[:-1], dtype=np.uint64, out=sub_off[1:])
            offs.append(sub_off + starts[c])
            lens.append(got.lengths)
            ids.append(got.ids)
            counts[c] = len(got)
        k = j
    if not offs:
        return (np.zeros(0, np.uint64), np.zeros(0, np.uint32),
                np.zeros((0, ID_SIZE), np.uint8), counts)
    return (np.concatenate(offs), np.concatenate(lens).astype(np.uint32),
            np.concatenate(ids).reshape(-1, ID_SIZE), counts)


def file_reader(path: str) -> tuple[Callable[[int, int], bytes], Callable[[], None]]:
    """``read(offset, n)`` over the file at ``path``, and its ``close``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def read(offset: int, n: int) -> bytes:
        data = pread(fd, n, offset)
        if len(data) != n:
            raise OSError(f"{path}: short read at {offset}")
        return data

    return read, lambda: os.close(fd)


def orphan_seeds(seeds: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                 used: SeedSet, params: ChunkerParams = SUB_PARAMS,
                 limit: int = MAX_ORPHAN_BYTES, check: Callable[[], None] | None = None
                 ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """The sub-chunks of the chunks of ``seeds`` (``(file, offsets, lengths, ids)``) that
    ``used`` does not hold, each chunk cut from its own first byte, as seeds of the same
    shape. Stops (keeping what it has) past ``limit`` orphan bytes; a file that cannot be
    read is skipped."""
    out = []
    total = 0
    for name, offsets, lengths, ids in seeds:
        orphan = used.lookup(ids, lengths) < 0
        if not orphan.any():
            continue
        o_off = np.asarray(offsets, dtype=np.uint64)[orphan]
        o_len = np.asarray(lengths, dtype=np.uint32)[orphan]
        size = int(o_len.sum(dtype=np.uint64))
        if total + size > limit:
            break
        total += size
        try:
            read, close = file_reader(name)
        except OSError:
            continue
        try:
            s_off, s_len, s_ids, _ = cut_chunks(read, o_off, o_len, params, check)
        except OSError:
            continue
        finally:
            close()
        out.append((name, s_off, s_len, s_ids))
    return out


def build(read: Callable[[int, int], bytes], index: FileIndex, fidx_sha256: bytes,
          new: np.ndarray, orphans: SeedSet, params: ChunkerParams = SUB_PARAMS,
          whole_cost: np.ndarray | None = None) -> tuple[SubTable, bytes] | None:
    """The sub-index of ``index`` (the file read with ``read``): its chunks marked ``new``
    cut again with ``params``, kept where the sub-chunks not found in ``orphans``, plus
    their records, cost less than the whole chunk (``whole_cost``, per chunk of the
    index: its compressed size when a ``.stz`` has it; default its length). Returns the
    table and the records, or None when no chunk qualifies."""
    chunks = np.flatnonzero(new)
    if len(chunks) == 0 or len(orphans) == 0:
        return None
    offsets = index.offsets()
    _, s_len, s_ids, counts = cut_chunks(read, offsets[chunks], index.lengths[chunks], params)
    found = orphans.lookup(s_ids, s_len) >= 0
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    saved = np.add.reduceat(np.where(found, s_len, 0).astype(np.int64), starts[:-1]) \
        if len(s_len) else np.zeros(len(chunks), np.int64)
    whole = (index.lengths if whole_cost is None else whole_cost)[chunks].astype(np.int64)
    need = index.lengths[chunks].astype(np.int64) - saved
    keep = (need + RECORD_SIZE * counts + MIN_SAVING < whole) & (counts > 1)
    if not keep.any():
        return None
    rec_mask = np.repeat(keep, counts)
    k_counts = counts[keep].astype(np.uint32)
    records = encode_records(s_len[rec_mask], s_ids[rec_mask])
    table = SubTable(params, fidx_sha256, chunks[keep].astype(np.uint64), k_counts,
                     _digests(records, k_counts))
    return table, records


def _digests(records: bytes | memoryview, counts: np.ndarray) -> np.ndarray:
    out = np.empty((len(counts), DIGEST_SIZE), dtype=np.uint8)
    view = memoryview(records)
    pos = 0
    for e, c in enumerate(counts.tolist()):  # one hash per covered chunk
        end = pos + RECORD_SIZE * c
        out[e] = np.frombuffer(hashlib.sha256(view[pos:end]).digest()[:DIGEST_SIZE],
                               dtype=np.uint8)
        pos = end
    return out


def encode(table: SubTable, records: bytes) -> bytes:
    """Serialize ``table`` and its ``records`` as a ``.fidx.sub`` file."""
    p = table.params
    entries = np.empty(len(table), dtype=_ENTRY_DTYPE)
    entries["chunk"] = table.chunks
    entries["count"] = table.counts
    entries["digest"] = table.digests
    return (_HEAD.pack(MAGIC, VERSION, table.fidx_sha256, p.min_size, p.avg_size, p.max_size,
                       p.normalization, len(table)) + entries.tobytes() + records)


def decode_table(data: bytes, index: FileIndex, fidx_sha256: bytes, size: int) -> SubTable:
    """Parse the header and table of a ``.fidx.sub`` (``data``: exactly its first
    ``HEADER_SIZE + 28·k`` bytes) refining ``index``, whose ``.fidx`` has digest
    ``fidx_sha256``; ``size`` is the whole file's size from the manifest.

    Raises ``FormatError`` for a wrong magic or version, another index's digest, bad
    sub-chunker parameters (a maximum over the index's), a length other than the count
    says, chunk numbers not strictly increasing or past the index, a count of 0 or 1 or
    more than the chunk's length allows, and a size other than the table adds up to.
    """
    if len(data) < HEADER_SIZE:
        raise FormatError(f"sub-index truncated: {len(data)} bytes", what="fidx")
    magic, version, sha, mn, avg, mx, norm, k = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a .fidx sub-index (bad magic)", what="fidx")
    if version != VERSION:
        raise FormatError(f"unsupported sub-index version {version}", what="fidx")
    if sha != fidx_sha256:
        raise FormatError("sub-index belongs to another index", what="fidx")
    params = ChunkerParams(mn, avg, mx, norm, 0)
    try:
        params.validate()
    except ValueError as e:
        raise FormatError(f"bad sub-chunker parameters: {e}", what="fidx") from None
    if mx > index.params.max_size:
        raise FormatError("sub-chunks larger than the index's chunks", what="fidx")
    if k > len(index) or len(data) != HEADER_SIZE + ENTRY_SIZE * k:
        raise FormatError(f"sub-index table length {len(data)} does not fit {k} entries",
                          what="fidx")
    entries = np.frombuffer(data, dtype=_ENTRY_DTYPE, count=k, offset=HEADER_SIZE)
    chunks = entries["chunk"].astype(np.uint64)
    counts = entries["count"].astype(np.uint32)
    if k:
        if int(chunks[-1]) >= len(index) or np.any(chunks[1:] <= chunks[:-1]):
            raise FormatError("sub-index chunk numbers out of order or range", what="fidx")
        most = index.lengths[chunks.astype(np.int64)] // np.uint32(mn) + 1
        if int(counts.min()) < 2 or np.any(counts > most):
            raise FormatError("sub-index record count out of range", what="fidx")
    table = SubTable(params, sha, chunks, counts, np.ascontiguousarray(entries["digest"]))
    if table.size != size:
        raise FormatError(f"sub-index size {size} does not match its table", what="fidx")
    return table


def record_ranges(table: SubTable, entries: np.ndarray) -> list[tuple[int, int]]:
    """Byte ranges of the ``.fidx.sub`` holding the records of ``entries`` (sorted entry
    numbers), adjacent ones joined."""
    starts = table.starts()
    out: list[tuple[int, int]] = []
    base = table.table_size
    for e in entries.tolist():
        a = base + RECORD_SIZE * int(starts[e])
        b = base + RECORD_SIZE * int(starts[e + 1])
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True, eq=False)
class SubRecords:
    """Checked sub-records of some covered chunks."""

    chunks: np.ndarray  # int64, chunk numbers of the index, increasing
    counts: np.ndarray  # int64, sub-records of each
    lengths: np.ndarray  # uint32, all their sub-records in order
    ids: np.ndarray  # uint8 (r, 16)


def take_records(table: SubTable, index: FileIndex, entries: np.ndarray,
                 fetched: dict[int, bytes], url: str) -> SubRecords:
    """The records of ``entries`` from ``fetched`` (the bytes of each range of
    ``record_ranges(table, entries)``, by its start), each chunk's checked against its
    digest, its lengths against the sub-chunker and the chunk's length. Raises
    ``HashMismatchError`` or ``FormatError``."""
    parts: list[bytes] = []
    for a, b in record_ranges(table, entries):
        data = fetched.get(a)
        if data is None or len(data) != b - a:
            raise FormatError(f"{url}: sub-records at {a} incomplete", what="fidx")
        parts.append(data)
    blob = b"".join(parts)
    counts = table.counts[entries].astype(np.int64)
    got = _digests(blob, counts)
    bad = np.flatnonzero(np.any(got != table.digests[entries], axis=1))
    if len(bad):
        e = int(entries[int(bad[0])])
        raise HashMismatchError(f"{url}: sub-records of chunk {int(table.chunks[e])} do not "
                                "match the sub-index table", url=url,
                                expected=table.digests[e].tobytes().hex(),
                                actual=got[int(bad[0])].tobytes().hex())
    records = np.frombuffer(blob, dtype=_RECORD_DTYPE)
    lengths = records["length"].astype(np.uint32)
    ids = np.ascontiguousarray(records["id"])
    chunks = table.chunks[entries].astype(np.int64)
    p = table.params
    if len(lengths):
        first = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=first[1:])
        last = first + counts - 1
        short = np.ones(len(lengths), dtype=bool)
        short[last] = False  # the last sub-chunk of a chunk may be short
        sums = np.add.reduceat(lengths.astype(np.int64), first)
        if (int(lengths.min()) == 0 or int(lengths.max()) > p.max_size
                or np.any(lengths[short] < p.min_size)
                or np.any(sums != index.lengths[chunks].astype(np.int64))):
            raise FormatError(f"{url}: sub-record lengths do not fit their chunks",
                              what="fidx")
    return SubRecords(chunks, counts, lengths, ids)


@dataclass(frozen=True, eq=False)
class Mixed:
    """An index with some chunks replaced by their sub-records."""

    index: FileIndex  # the mixed records (lengths may be under the chunker's minimum)
    sub: np.ndarray  # bool per chunk of the original index: replaced by sub-records


def mix(index: FileIndex, recs: SubRecords, use: np.ndarray) -> Mixed:
    """``index`` with the chunks of ``recs`` marked in ``use`` replaced by their
    sub-records."""
    n = len(index)
    sub = np.zeros(n, dtype=bool)
    sub[recs.chunks[use]] = True
    per = np.ones(n, dtype=np.int64)
    per[recs.chunks[use]] = recs.counts[use]
    total = int(per.sum())
    lengths = np.empty(total, dtype=np.uint32)
    ids = np.empty((total, ID_SIZE), dtype=np.uint8)
    pos = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per, out=pos[1:])
    whole = ~sub
    lengths[pos[:-1][whole]] = index.lengths[whole]
    ids[pos[:-1][whole]] = index.ids[whole]
    rec_use = np.repeat(use, recs.counts)
    # Where each used sub-record goes: its chunk's first record, plus its rank in the chunk.
    counts = recs.counts[use]
    first = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    rank = np.arange(int(counts.sum())) - np.repeat(first, counts)
    dest = np.repeat(pos[recs.chunks[use]], counts) + rank
    lengths[dest] = recs.lengths[rec_use]
    ids[dest] = recs.ids[rec_use]
    return Mixed(FileIndex(index.params, index.file_size, index.sha256, lengths, ids), sub)


def records_of(table: SubTable, records: bytes, index: FileIndex) -> SubRecords:
    """All the records of a table the caller built itself (no checks)."""
    return take_records(table, index, np.arange(len(table)),
                        {table.table_size: records} if len(records) else {}, "")


def subset(table: SubTable, records: bytes, keep: np.ndarray) -> tuple[SubTable, bytes]:
    """The table and records of the entries marked in ``keep``."""
    recs = np.frombuffer(records, dtype=_RECORD_DTYPE)
    mask = np.repeat(keep, table.counts.astype(np.int64))
    out = SubTable(table.params, table.fidx_sha256, table.chunks[keep], table.counts[keep],
                   table.digests[keep])
    return out, recs[mask].tobytes()


def choose(index: FileIndex, recs: SubRecords, use: np.ndarray, seeds: SeedSet,
           options: PlanOptions | None = None) -> tuple[np.ndarray, Mixed, FilePlan] | None:
    """Plan ``index`` with the chunks of ``recs`` marked in ``use`` replaced by their
    sub-records, against ``seeds`` (local chunks and orphan sub-chunks). A chunk the plan
    fetches entirely anyway (its local sub-chunks lie in gaps the planner bridged for
    fewer ranges) is put back whole, and the plan made again (at most twice). Returns the
    chunks kept, the mixed index and its plan; None when none is kept."""
    use = use.copy()
    offsets = index.offsets()
    starts, ends = offsets[recs.chunks], offsets[recs.chunks + 1]
    for attempt in range(3):  # bounded: each round only takes chunks out of ``use``
        if not use.any():
            return None
        mixed = mix(index, recs, use)
        plan = plan_file(mixed.index, seeds, options)
        r = plan.remote
        if len(r) == 0 or attempt == 2:
            break
        pos = np.minimum(np.searchsorted(r[:, 1], starts, side="right"), len(r) - 1)
        covered = use & (r[pos, 0] <= starts) & (r[pos, 1] >= ends)
        if not covered.any():
            break
        use &= ~covered
    return use, mixed, plan


Seed = tuple[str, np.ndarray, np.ndarray, np.ndarray]  # file, offsets, lengths, ids


class OrphanSubChunks:
    """For an update: the sub-chunks of local orphan chunks (local chunks no target of the
    update uses), cut once and only if some file asks, and the seed sets that join them to
    the local chunks. ``seeds``: the local chunks by chunker parameters (``ScanResult``),
    ``targets``: the update's target indexes; ``keep``: local files that stay as they are
    (files the release does not change), whose chunks are no orphans."""

    def __init__(self, seeds: dict[ChunkerParams, list[Seed]], targets: dict[str, FileIndex],
                 check: Callable[[], None] | None = None,
                 keep: frozenset[str] = frozenset()) -> None:
        self._seeds = seeds
        self._targets = targets
        self._keep = keep
        self._check = check
        self._orphans: dict[tuple[ChunkerParams, ChunkerParams], list[Seed]] = {}
        self._sets: dict[tuple[ChunkerParams, ChunkerParams], SeedSet] = {}
        self._combined: dict[ChunkerParams, SeedSet] = {}
        self._used_sets: dict[ChunkerParams, SeedSet] = {}

    def _used(self, params: ChunkerParams) -> SeedSet:
        if params not in self._used_sets:
            self._used_sets[params] = SeedSet.build(
                [(p, i.offsets()[:-1], i.lengths, i.ids)
                 for p, i in self._targets.items() if i.params == params])
        return self._used_sets[params]

    def _changing(self, params: ChunkerParams) -> list[Seed]:
        return [s for s in self._seeds.get(params, []) if s[0] not in self._keep]

    def orphan_bytes(self, params: ChunkerParams) -> int:
        """Bytes of the orphans among the local chunks cut with ``params``: what ``get``
        would read and cut again (nothing is read to tell)."""
        used = self._used(params)
        return min(MAX_ORPHAN_BYTES, sum(
            int(np.asarray(lengths, dtype=np.uint64)[used.lookup(ids, lengths) < 0].sum())
            for _, _, lengths, ids in self._changing(params)))

    def get(self, params: ChunkerParams, sub: ChunkerParams) -> SeedSet | None:
        """The sub-chunks, cut with ``sub``, of the orphans among the local chunks cut with
        ``params`` (None: there are none)."""
        key = (params, sub)
        if key not in self._sets:
            self._orphans[key] = orphan_seeds(self._changing(params), self._used(params), sub,
                                              check=self._check)
            self._sets[key] = SeedSet.build(self._orphans[key])
            self._combined.pop(params, None)
        return self._sets[key] if len(self._sets[key]) else None

    def combined(self, params: ChunkerParams) -> SeedSet:
        """The local chunks cut with ``params`` and every orphan sub-chunk cut so far."""
        if params not in self._combined:
            more = [s for (p, _), v in self._orphans.items() if p == params for s in v]
            self._combined[params] = SeedSet.build(list(self._seeds.get(params, [])) + more)
        return self._combined[params]
