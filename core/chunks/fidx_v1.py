"""bupdate's legacy ``.fidx`` v1 chunk index: build it and parse it, byte for byte.

Layout (big-endian): ``b'FIDX'``, u32 version 1, then one 24-byte record per chunk
(20-byte git blob SHA-1, u16 size, u16 level), then a 20-byte SHA-1 of everything before it.
Facts and vectors: ``tests/vectors/bupsplit.json``.

Owns: the layout, chunk ids (git blob SHA-1), validation of untrusted index bytes and the
compact in-memory form ``IndexV1``. Leaves out: where the cut points come from
(``core.chunks.rollsum``), the v2 index, and fetching or planning with an index.
"""

from __future__ import annotations

import hashlib
import os
import struct
from array import array
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from core.chunks.rollsum import Buffer, iter_chunks, mapped
from core.errors import FormatError

MAGIC = b"FIDX"
VERSION = 1
ID_SIZE = 20  # SHA-1
RECORD_SIZE = ID_SIZE + 4  # id, u16 size, u16 level
MAX_CHUNK_SIZE = 0xFFFF  # the u16 size field; bupsplit itself never exceeds 32768
_HEADER = struct.Struct(">4sI")
_RECORD = struct.Struct(">HH")  # after the id
_OVERHEAD = _HEADER.size + ID_SIZE  # header and trailer
# One record as numpy sees it, so parsing a million chunks is not a million Python calls.
_RECORD_DTYPE = np.dtype([("id", f"S{ID_SIZE}"), ("size", ">u2"), ("level", ">u2")])


@dataclass(frozen=True)
class IndexV1:
    """A parsed ``.fidx`` v1: chunk ``i`` is ``lengths[i]`` bytes with id ``ids[20*i:20*i+20]``.

    Kept as three flat buffers, not a list of objects: a 10 GB file has over a million chunks.
    """

    lengths: array[int]  # 'I', bytes per chunk, 1..65535
    ids: bytes  # 20 bytes per chunk, git blob SHA-1
    levels: array[int]  # 'H', bup's fanout level; readers may ignore it

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def total_size(self) -> int:
        """Size in bytes of the file the index describes."""
        return sum(self.lengths)

    def chunk_id(self, i: int) -> bytes:
        """The 20-byte id of chunk ``i``. Raises ``IndexError`` if there is no such chunk."""
        if not 0 <= i < len(self.lengths):
            raise IndexError(i)
        return self.ids[ID_SIZE * i : ID_SIZE * (i + 1)]

    def offsets(self) -> array[int]:
        """Start offset of every chunk, as ``array('Q')``."""
        sizes = np.frombuffer(self.lengths, dtype=np.uintc)
        starts = np.zeros(len(sizes), dtype=np.ulonglong)
        np.cumsum(sizes[:-1], out=starts[1:])
        return array("Q", starts.tobytes())


def git_blob_id(data: Buffer) -> bytes:
    """The git blob SHA-1 of ``data``: ``sha1(b'blob <len>\\0' + data)``, as 20 bytes."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.digest()


def encode_v1(index: IndexV1) -> bytes:
    """Serialise ``index`` as ``.fidx`` v1 bytes.

    Raises ``ValueError`` if a length is 0 or above 65535, a level above 65535, or the
    buffers disagree on the chunk count.
    """
    n = len(index.lengths)
    if len(index.ids) != ID_SIZE * n or len(index.levels) != n:
        raise ValueError("lengths, ids and levels disagree on the number of chunks")
    if n and (min(index.lengths) < 1 or max(index.lengths) > MAX_CHUNK_SIZE):
        raise ValueError(f"chunk lengths must be 1..{MAX_CHUNK_SIZE}")
    if n and max(index.levels) > 0xFFFF:
        raise ValueError("level does not fit in 16 bits")
    records = np.empty(n, dtype=_RECORD_DTYPE)
    records["id"] = np.frombuffer(index.ids, dtype=f"S{ID_SIZE}")
    records["size"] = np.frombuffer(index.lengths, dtype=np.uintc)
    records["level"] = np.frombuffer(index.levels, dtype=np.ushort)
    body = _HEADER.pack(MAGIC, VERSION) + records.tobytes()
    return body + hashlib.sha1(body).digest()


def _build(data: Buffer) -> bytes:
    view = memoryview(data).cast("B")
    h = hashlib.sha1(_HEADER.pack(MAGIC, VERSION))
    out = bytearray(_HEADER.pack(MAGIC, VERSION))
    with closing(iter_chunks(view)) as chunks:
        for offset, length, level in chunks:
            record = git_blob_id(view[offset : offset + length]) + _RECORD.pack(length, level)
            out += record
            h.update(record)
    out += h.digest()
    return bytes(out)


def index_file_v1(path: str | os.PathLike[str]) -> bytes:
    """Return the ``.fidx`` v1 of the file at ``path``, reading it through a memory map.

    Memory use is the index itself (24 bytes per ~8 KiB chunk) plus one chunking block.
    Raises ``OSError`` if the file cannot be read.
    """
    with mapped(path) as view:
        return _build(view)


def build_v1(source: Buffer | str | os.PathLike[str]) -> bytes:
    """Return the ``.fidx`` v1 of ``source``: bytes in memory, or a path to a file."""
    if isinstance(source, bytes | bytearray | memoryview):
        return _build(source)
    return index_file_v1(source)


def parse_v1(data: Buffer, max_size: int) -> IndexV1:
    """Parse and check untrusted ``.fidx`` v1 bytes.

    ``max_size`` bounds the input length before anything is decoded; nothing is allocated
    beyond what the (bounded) input holds. Raises ``FormatError`` if the input is longer than
    ``max_size``, truncated or padded, has a wrong magic, version or trailer SHA-1, or
    records a zero-length chunk (a u16 size cannot exceed 65535).
    """
    size = len(data)
    if size > max_size:
        raise FormatError(f".fidx is {size} bytes, more than the {max_size} allowed", what="fidx")
    if size < _OVERHEAD:
        raise FormatError(f".fidx is truncated: {size} bytes", what="fidx")
    magic, version = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(f"not a .fidx: magic {bytes(magic)!r}", what="fidx")
    if version != VERSION:
        raise FormatError(f"unsupported .fidx version {version}", what="fidx")
    if (size - _OVERHEAD) % RECORD_SIZE:
        raise FormatError(f".fidx length {size} is not a whole number of records", what="fidx")
    view = memoryview(data).cast("B")
    if hashlib.sha1(view[: size - ID_SIZE]).digest() != view[size - ID_SIZE :]:
        raise FormatError(".fidx trailer SHA-1 does not match its contents", what="fidx")
    n = (size - _OVERHEAD) // RECORD_SIZE
    records = np.frombuffer(view, dtype=_RECORD_DTYPE, count=n, offset=_HEADER.size)
    zero = np.flatnonzero(records["size"] == 0)
    if len(zero):
        raise FormatError(f".fidx chunk {int(zero[0])} has length 0", what="fidx")
    lengths = array("I", records["size"].astype(np.uintc).tobytes())
    levels = array("H", records["level"].astype(np.ushort).tobytes())
    return IndexV1(lengths=lengths, ids=records["id"].tobytes(), levels=levels)
