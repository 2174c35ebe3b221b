"""The ``.fidx`` v2 chunk index: the value, its encoder, and its strict decoder.

A ``FileIndex`` says how one file splits into chunks: chunker parameters, file length, the
file's SHA-256, and per chunk its length and xxh3-128 id, held in numpy arrays (20 bytes a
chunk, never a Python object per chunk). The byte layout is specified in docs/format.md;
this module and that section change together. Legacy v1 (bupdate) lives in ``fidx_v1``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from core.chunks.chunker import CHUNKER_FASTCDC2020, ID_SIZE, ChunkerParams, Chunks
from core.errors import FormatError

MAGIC = b"FIDX"
VERSION = 2
_HEADER = struct.Struct(">4sIBBHIIIQQ32sQ")  # magic .. chunk count
HEADER_SIZE = _HEADER.size  # 80
RECORD_SIZE = 4 + ID_SIZE  # u32 length + xxh3-128 id
TRAILER_SIZE = 32  # SHA-256 of everything before it
_RECORD_DTYPE = np.dtype([("length", ">u4"), ("id", "u1", (ID_SIZE,))])

# Default ceiling for one file's length (1 TiB); callers pass their own.
MAX_FILE_SIZE = 1 << 40


@dataclass(frozen=True, eq=False)
class FileIndex:
    """The chunk index of one file."""

    params: ChunkerParams
    file_size: int
    sha256: bytes
    lengths: np.ndarray  # uint32, one per chunk
    ids: np.ndarray  # uint8, shape (n, 16)

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def from_chunks(cls, params: ChunkerParams, chunks: Chunks, sha256: bytes) -> FileIndex:
        return cls(params, int(chunks.lengths.sum(dtype=np.uint64)), sha256,
                   chunks.lengths, chunks.ids)

    def offsets(self) -> np.ndarray:
        """Start offset of every chunk plus the file length at the end (uint64, n + 1)."""
        out = np.zeros(len(self.lengths) + 1, dtype=np.uint64)
        np.cumsum(self.lengths, dtype=np.uint64, out=out[1:])
        return out

    def chunk_id(self, i: int) -> bytes:
        return bytes(self.ids[i])


def pack_header(params: ChunkerParams, file_size: int, sha256: bytes, count: int) -> bytes:
    """The 80-byte v2 header (everything before the records)."""
    p = params
    return _HEADER.pack(MAGIC, VERSION, CHUNKER_FASTCDC2020, p.normalization, 0,
                        p.min_size, p.avg_size, p.max_size, p.seed, file_size, sha256, count)


def encode_records(lengths: np.ndarray, ids: np.ndarray) -> bytes:
    """The records of a v2 index, as laid out in the file (20 bytes a chunk)."""
    records = np.empty(len(lengths), dtype=_RECORD_DTYPE)
    records["length"] = lengths
    records["id"] = ids
    return records.tobytes()


def encode(index: FileIndex) -> bytes:
    """Serialize ``index`` as a ``.fidx`` v2 file."""
    body = (pack_header(index.params, index.file_size, index.sha256, len(index))
            + encode_records(index.lengths, index.ids))
    return body + hashlib.sha256(body).digest()


def parse_header(data: bytes, max_file_size: int = MAX_FILE_SIZE
                 ) -> tuple[ChunkerParams, int, bytes, int]:
    """Check the first 80 bytes of ``data`` as a v2 header; return the chunker parameters,
    file length, file SHA-256 and chunk count. Raises ``FormatError`` for a wrong magic,
    version, chunker or flags, parameters out of range, a file length over
    ``max_file_size`` and a chunk count the file length cannot hold."""
    if len(data) < HEADER_SIZE:
        raise FormatError(f"index truncated: {len(data)} bytes", what="fidx")
    (magic, version, chunker, norm, flags, min_size, avg_size, max_size, seed,
     file_size, sha256, count) = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a .fidx file (bad magic)", what="fidx")
    if version != VERSION:
        raise FormatError(f"unsupported .fidx version {version}", what="fidx")
    if chunker != CHUNKER_FASTCDC2020 or flags != 0:
        raise FormatError(f"unknown chunker {chunker} or flags {flags:#x}", what="fidx")
    params = ChunkerParams(min_size, avg_size, max_size, norm, seed)
    try:
        params.validate()
    except ValueError as e:
        raise FormatError(f"bad chunker parameters: {e}", what="fidx") from None
    if file_size > max_file_size:
        raise FormatError(f"file length {file_size} over the limit {max_file_size}", what="fidx")
    # A chunker never cuts below min_size (but for the last chunk), so more chunks than this
    # is a lie, whatever the records say.
    if count > file_size // min_size + 1 or (count == 0) != (file_size == 0):
        raise FormatError(f"{count} chunks cannot make {file_size} bytes", what="fidx")
    return params, file_size, sha256, count


def decode(data: bytes, max_file_size: int = MAX_FILE_SIZE) -> FileIndex:
    """Parse a ``.fidx`` v2 file, checking everything before trusting any of it.

    Raises ``FormatError`` for a wrong magic or version, a truncated or overlong file, a
    trailer that does not match, chunker parameters out of range, chunk lengths that are zero,
    over the maximum, under the minimum (except the last) or that do not add up to the file
    length, and a file length over ``max_file_size``. The size check on the whole input comes
    first, so nothing is allocated beyond what the caller already holds.
    """
    if len(data) < HEADER_SIZE + TRAILER_SIZE:
        raise FormatError(f"index truncated: {len(data)} bytes", what="fidx")
    params, file_size, sha256, count = parse_header(data, max_file_size)
    if len(data) != HEADER_SIZE + count * RECORD_SIZE + TRAILER_SIZE:
        raise FormatError(f"index length {len(data)} does not fit {count} chunks", what="fidx")
    if hashlib.sha256(data[:-TRAILER_SIZE]).digest() != data[-TRAILER_SIZE:]:
        raise FormatError("index trailer digest does not match", what="fidx")
    records = np.frombuffer(data, dtype=_RECORD_DTYPE, count=count, offset=HEADER_SIZE)
    lengths = records["length"].astype(np.uint32)
    ids = np.ascontiguousarray(records["id"])
    if count:
        if int(lengths.max()) > params.max_size or int(lengths.min()) == 0:
            raise FormatError("chunk length out of range", what="fidx")
        if count > 1 and int(lengths[:-1].min()) < params.min_size:
            raise FormatError("chunk shorter than the chunker's minimum", what="fidx")
        if int(lengths.sum(dtype=np.uint64)) != file_size:
            raise FormatError("chunk lengths do not add up to the file length", what="fidx")
    return FileIndex(params, file_size, sha256, lengths, ids)
