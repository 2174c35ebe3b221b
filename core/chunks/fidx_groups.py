"""The group table of a two-level index (``NAME.fidx.groups``): fetch records only where
the file changed.

A ``.fidx`` v2 costs 20 bytes a chunk, and a client updating a file fetched all of it,
though most records describe chunks it already has. The group table cuts the records into
content-defined runs of consecutive chunks (a run ends after a chunk whose id's low bits hit
a pattern, or at a maximum length), and lists each run's chunk count and a digest of its
records. Boundaries depend only on chunk ids, so an unchanged region of a file yields the
same groups in the old and the new version: a client computes the digests of its local
indexes, takes every group it knows from them, and fetches by byte range, from the ``.fidx``
itself, only the records of the others. The ``.fidx`` stays a plain v2 file, so old clients
and full readers do not change.

Owns the table's layout (docs/format.md §2.2), the grouping rule, group digests, the table
of local groups, and the byte ranges of missing leaves. Leaves out fetching (the updater)
and the records' own checks (``core.chunks.fidx.decode`` runs on the assembled index).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from core.chunks.chunker import ID_SIZE, ChunkerParams
from core.chunks.fidx import (
    HEADER_SIZE as FIDX_HEADER_SIZE,
)
from core.chunks.fidx import (
    MAX_FILE_SIZE,
    RECORD_SIZE,
    FileIndex,
    encode_records,
    pack_header,
    parse_header,
)
from core.errors import FormatError, HashMismatchError

MAGIC = b"FIDG"
VERSION = 1
SUFFIX = ".groups"  # NAME.fidx.groups beside NAME.fidx
_HEAD = struct.Struct(">4sI")  # magic, version; then the .fidx header, then _SHAPE
_SHAPE = struct.Struct(">IIQ")  # group target, group maximum, group count
HEADER_SIZE = _HEAD.size + FIDX_HEADER_SIZE + _SHAPE.size  # 104
DIGEST_SIZE = 16  # SHA-256 of a group's records, truncated
ENTRY_SIZE = 4 + DIGEST_SIZE  # u32 chunk count + digest
TRAILER_SIZE = 32
_ENTRY_DTYPE = np.dtype([("count", ">u4"), ("digest", "u1", (DIGEST_SIZE,))])

DEFAULT_TARGET = 32  # chunks per group on average (chosen by measurement, docs/benchmarks)
MAX_TARGET = 1 << 16
MAX_GROUP = 1 << 20  # largest group maximum a reader accepts
# Files with fewer chunks than this get no table: their whole .fidx is cheaper than two
# requests.
MIN_CHUNKS = 4 * DEFAULT_TARGET


@dataclass(frozen=True, eq=False)
class GroupTable:
    """A parsed group table: the index's header fields and one entry per group."""

    params: ChunkerParams
    file_size: int
    sha256: bytes
    chunks: int  # chunk count of the index
    target: int  # G: a group ends after a chunk whose id's low 64 bits are G-1 mod G
    maximum: int  # ... or when it holds this many chunks
    counts: np.ndarray  # uint32, chunks per group
    digests: np.ndarray  # uint8, shape (m, 16)

    def __len__(self) -> int:
        return len(self.counts)

    def starts(self) -> np.ndarray:
        """First chunk of every group, plus the chunk count at the end (int64, m + 1)."""
        out = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, dtype=np.int64, out=out[1:])
        return out

    @property
    def fidx_size(self) -> int:
        """Size of the ``.fidx`` this table belongs to."""
        return FIDX_HEADER_SIZE + RECORD_SIZE * self.chunks + 32


def group_counts(ids: np.ndarray, target: int = DEFAULT_TARGET,
                 maximum: int = 0) -> np.ndarray:
    """Chunks per group for chunks with ``ids`` (the grouping rule of format.md §2.2).

    Per run between natural boundaries, not per chunk: a run longer than ``maximum`` is
    cut into ``maximum``-sized groups and a shorter rest.
    """
    maximum = maximum or 4 * target
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    lo = np.ascontiguousarray(ids[:, 8:]).view(">u8").ravel()
    ends = np.flatnonzero((lo & np.uint64(target - 1)) == np.uint64(target - 1)) + 1
    if len(ends) == 0 or ends[-1] != n:
        ends = np.append(ends, n)
    runs = np.diff(ends, prepend=0)
    full, rest = np.divmod(runs, maximum)
    pieces = full + (rest > 0)
    counts = np.full(int(pieces.sum()), maximum, dtype=np.uint32)
    # The last piece of each run is its rest (or a full group when the run divides evenly).
    last = np.cumsum(pieces) - 1
    counts[last] = np.where(rest > 0, rest, maximum)
    return counts


def group_digests(records: bytes, counts: np.ndarray) -> np.ndarray:
    """The 16-byte digest of each group's records (``records``: 20 bytes a chunk)."""
    out = np.empty((len(counts), DIGEST_SIZE), dtype=np.uint8)
    view = memoryview(records)
    pos = 0
    for g, c in enumerate(counts.tolist()):  # one hash per group, not per chunk
        end = pos + RECORD_SIZE * c
        out[g] = np.frombuffer(hashlib.sha256(view[pos:end]).digest()[:DIGEST_SIZE],
                               dtype=np.uint8)
        pos = end
    return out


def build(index: FileIndex, target: int = DEFAULT_TARGET, maximum: int = 0) -> GroupTable:
    """The group table of ``index``."""
    maximum = maximum or 4 * target
    counts = group_counts(index.ids, target, maximum)
    digests = group_digests(encode_records(index.lengths, index.ids), counts)
    return GroupTable(index.params, index.file_size, index.sha256, len(index), target,
                      maximum, counts, digests)


def encode(table: GroupTable) -> bytes:
    """Serialize ``table`` as a ``.fidx.groups`` file."""
    entries = np.empty(len(table), dtype=_ENTRY_DTYPE)
    entries["count"] = table.counts
    entries["digest"] = table.digests
    body = (_HEAD.pack(MAGIC, VERSION)
            + pack_header(table.params, table.file_size, table.sha256, table.chunks)
            + _SHAPE.pack(table.target, table.maximum, len(table)) + entries.tobytes())
    return body + hashlib.sha256(body).digest()


def decode(data: bytes, max_file_size: int = MAX_FILE_SIZE) -> GroupTable:
    """Parse a ``.fidx.groups`` file, checking it all before trusting any of it.

    Raises ``FormatError`` for a wrong magic or version, a bad embedded ``.fidx`` header
    (as ``core.chunks.fidx.parse_header``), a group target that is not a power of two in
    2..65536, a maximum under the target or over 2^20, an input length other than the
    group count says, a trailer that does not match, a group of zero chunks or more than
    the maximum, and counts that do not add up to the index's chunk count. The length
    check comes first, so nothing is allocated beyond what the caller holds.
    """
    if len(data) < HEADER_SIZE + TRAILER_SIZE:
        raise FormatError(f"group table truncated: {len(data)} bytes", what="fidx")
    magic, version = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a .fidx group table (bad magic)", what="fidx")
    if version != VERSION:
        raise FormatError(f"unsupported group table version {version}", what="fidx")
    params, file_size, sha256, chunks = parse_header(data[_HEAD.size:], max_file_size)
    target, maximum, m = _SHAPE.unpack_from(data, _HEAD.size + FIDX_HEADER_SIZE)
    if not 2 <= target <= MAX_TARGET or target & (target - 1):
        raise FormatError(f"group target {target} is not a power of two", what="fidx")
    if not target <= maximum <= MAX_GROUP:
        raise FormatError(f"group maximum {maximum} out of range", what="fidx")
    if m > chunks or (m == 0) != (chunks == 0):
        raise FormatError(f"{m} groups cannot hold {chunks} chunks", what="fidx")
    if len(data) != HEADER_SIZE + ENTRY_SIZE * m + TRAILER_SIZE:
        raise FormatError(f"group table length {len(data)} does not fit {m} groups",
                          what="fidx")
    if hashlib.sha256(data[:-TRAILER_SIZE]).digest() != data[-TRAILER_SIZE:]:
        raise FormatError("group table trailer digest does not match", what="fidx")
    entries = np.frombuffer(data, dtype=_ENTRY_DTYPE, count=m, offset=HEADER_SIZE)
    counts = entries["count"].astype(np.uint32)
    if m and (int(counts.min()) == 0 or int(counts.max()) > maximum):
        raise FormatError("group chunk count out of range", what="fidx")
    if int(counts.sum(dtype=np.uint64)) != chunks:
        raise FormatError("group chunk counts do not add up to the index's", what="fidx")
    return GroupTable(params, file_size, sha256, chunks, target, maximum, counts,
                      np.ascontiguousarray(entries["digest"]))


@dataclass(frozen=True, eq=False)
class LocalGroups:
    """Groups whose records a client already holds in local indexes, by digest."""

    keys: np.ndarray  # sorted group digests (void16)
    source: np.ndarray  # int64: which local index holds each
    first: np.ndarray  # int64: its first chunk in that index
    indexes: tuple[tuple[np.ndarray, np.ndarray], ...]  # (lengths, ids) per local index

    @classmethod
    def of(cls, indexes: list[tuple[np.ndarray, np.ndarray]], target: int,
           maximum: int) -> LocalGroups:
        """Group every local index (``(lengths, ids)``, cut with the table's chunker
        parameters) with the table's rule."""
        keys, source, first = [], [], []
        for k, (lengths, ids) in enumerate(indexes):
            counts = group_counts(ids, target, maximum)
            keys.append(_as_keys(group_digests(encode_records(lengths, ids), counts)))
            source.append(np.full(len(counts), k, dtype=np.int64))
            first.append(np.cumsum(counts, dtype=np.int64) - counts)
        if not keys:
            return cls(np.zeros(0, dtype="V16"), np.zeros(0, np.int64), np.zeros(0, np.int64),
                       ())
        all_keys = np.concatenate(keys)
        order = np.argsort(all_keys, kind="stable")
        return cls(all_keys[order], np.concatenate(source)[order],
                   np.concatenate(first)[order], tuple(indexes))

    def find(self, digests: np.ndarray) -> np.ndarray:
        """For each digest, the position of a local group with it in ``keys``, or -1."""
        want = _as_keys(digests)
        if len(self.keys) == 0:
            return np.full(len(want), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, want), len(self.keys) - 1)
        return np.where(self.keys[pos] == want, pos, -1).astype(np.int64)


def _as_keys(digests: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(digests, dtype=np.uint8).view("V16").ravel()


@dataclass
class Assembly:
    """A target index being put together from local groups and fetched leaves."""

    table: GroupTable
    lengths: np.ndarray  # uint32, filled where known
    ids: np.ndarray  # uint8 (n, 16)
    missing: np.ndarray  # bool per group: records still to fetch

    @classmethod
    def start(cls, table: GroupTable, local: LocalGroups) -> Assembly:
        n = table.chunks
        lengths = np.zeros(n, dtype=np.uint32)
        ids = np.zeros((n, ID_SIZE), dtype=np.uint8)
        hit = local.find(table.digests)
        starts = table.starts()
        for g in np.flatnonzero(hit >= 0).tolist():  # per group
            p = int(hit[g])
            src_lengths, src_ids = local.indexes[int(local.source[p])]
            a, c = int(local.first[p]), int(table.counts[g])
            lengths[starts[g]:starts[g] + c] = src_lengths[a:a + c]
            ids[starts[g]:starts[g] + c] = src_ids[a:a + c]
        return cls(table, lengths, ids, hit < 0)

    def missing_bytes(self) -> int:
        """Record bytes still to fetch."""
        return RECORD_SIZE * int(self.table.counts[self.missing].sum(dtype=np.int64))

    def leaf_ranges(self) -> list[tuple[int, int]]:
        """Byte ranges of the ``.fidx`` holding the missing groups' records (adjacent
        groups joined), sorted."""
        starts = self.table.starts()
        out: list[tuple[int, int]] = []
        for g in np.flatnonzero(self.missing).tolist():  # per group
            a = FIDX_HEADER_SIZE + RECORD_SIZE * int(starts[g])
            b = FIDX_HEADER_SIZE + RECORD_SIZE * int(starts[g + 1])
            if out and out[-1][1] == a:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
        return out

    def add_leaves(self, offset: int, data: bytes, url: str) -> None:
        """Take the fetched ``.fidx`` bytes ``data`` at ``offset`` (one whole range of
        ``leaf_ranges``), checking each group against its digest first. Raises
        ``HashMismatchError`` for a group whose records do not match the table and
        ``FormatError`` for bytes that are not whole groups."""
        starts = self.table.starts()
        rel = offset - FIDX_HEADER_SIZE
        if rel < 0 or rel % RECORD_SIZE or len(data) % RECORD_SIZE:
            raise FormatError(f"{url}: leaf bytes at {offset} are not whole records",
                              what="fidx")
        first = rel // RECORD_SIZE
        last = first + len(data) // RECORD_SIZE
        g0 = int(np.searchsorted(starts, first))
        g1 = int(np.searchsorted(starts, last))
        if (g0 >= len(starts) or starts[g0] != first or g1 >= len(starts)
                or starts[g1] != last or last > self.table.chunks):
            raise FormatError(f"{url}: leaf bytes at {offset} are not whole groups",
                              what="fidx")
        counts = self.table.counts[g0:g1]
        got = group_digests(data, counts)
        bad = np.flatnonzero(np.any(got != self.table.digests[g0:g1], axis=1))
        if len(bad):
            g = g0 + int(bad[0])
            raise HashMismatchError(f"{url}: records of group {g} do not match the group table",
                                    expected=self.table.digests[g].tobytes().hex(),
                                    actual=got[int(bad[0])].tobytes().hex(), url=url)
        records = np.frombuffer(data, dtype=np.dtype([("length", ">u4"),
                                                      ("id", "u1", (ID_SIZE,))]))
        self.lengths[first:last] = records["length"]
        self.ids[first:last] = records["id"]
        self.missing[g0:g1] = False

    def fidx_bytes(self) -> bytes:
        """The whole ``.fidx`` v2 the assembled records make (for the caller to check
        against the manifest's digest and decode)."""
        if self.missing.any():
            raise FormatError("index records still missing", what="fidx")
        t = self.table
        body = (pack_header(t.params, t.file_size, t.sha256, t.chunks)
                + encode_records(self.lengths, self.ids))
        return body + hashlib.sha256(body).digest()
