"""The compressed chunk copy (``NAME.stz``): every chunk of a file, zstd-compressed on its
own, addressable by byte ranges through the file's ``.fidx``.

A publisher may upload it beside the original file; a client that finds it in the manifest
fetches compressed chunks instead of raw ranges, and still checks every decompressed chunk
against its xxh3-128 id (a bad or lying copy only costs a fall-back to raw ranges). Old
clients never look at it. The byte layout is docs/format.md §9; this module is its only
reader and writer. zstd comes from the optional ``zstandard`` package: without it,
publishing skips the copy and clients use raw ranges.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.chunks.fidx import FileIndex
from core.errors import FormatError
from core.formats.delta import available as available  # zstd is here (one definition)

MAGIC = b"STZC"
VERSION = 1
_HEADER = struct.Struct(">4sI32sQ")  # magic, version, SHA-256 of the .fidx, chunk count
HEADER_SIZE = _HEADER.size  # 48
STORED = 1 << 31  # flag in a size entry: the chunk is stored raw (zstd did not shrink it)
SUFFIX = ".stz"
DEFAULT_LEVEL = 3  # measured: level 9 saved 1-4 % more for 3-6 times the time (benchmarks.md)
# Files whose sampled chunks shrink less than this are not worth a compressed copy.
WORTHWHILE = 0.90
# A batch of chunks none of whose sampled chunks shrinks below this is stored raw without
# compressing the rest (an incompressible region of a file that compresses elsewhere: a
# WAD's noise lumps).
RAW_ABOVE = 0.95
_BATCH = 8 << 20  # bytes of chunks compressed at once (bounded memory)
_BATCH_SAMPLES = 8  # chunks of a batch tried first


@dataclass(frozen=True, eq=False)
class StzTable:
    """The size table of a ``.stz``: where each chunk's stored bytes are, and how."""

    fidx_sha256: bytes
    sizes: np.ndarray  # uint32: stored size of each chunk (flag bit cleared)
    raw: np.ndarray  # bool: chunk stored raw
    offsets: np.ndarray  # uint64, n + 1: where chunk k's stored bytes start in the .stz

    @property
    def total_size(self) -> int:
        return int(self.offsets[-1])


def table_size(chunks: int) -> int:
    """Bytes of header and size table for a file of ``chunks`` chunks."""
    return HEADER_SIZE + 4 * chunks


def _compressor(level: int) -> object:
    import zstandard

    return zstandard.ZstdCompressor(level=level, write_content_size=True,
                                    write_checksum=False)


def worthwhile(path: Path, index: FileIndex, level: int = DEFAULT_LEVEL,
               samples: int = 64) -> bool:
    """Whether compressing ``path`` chunk by chunk saves enough, judged on a sample of
    chunks spread over the file (so incompressible game assets cost no publish time)."""
    n = len(index)
    if n == 0 or not available():
        return False
    cz = _compressor(level)
    offsets = index.offsets()
    picks = sorted({int(i) for i in np.linspace(0, n - 1, min(samples, n))})
    raw = packed = 0
    with open(path, "rb") as f:
        for k in picks:
            f.seek(int(offsets[k]))
            data = f.read(int(index.lengths[k]))
            raw += len(data)
            packed += min(len(data), len(cz.compress(data)))  # type: ignore[attr-defined]
    return packed < WORTHWHILE * raw


def write(path: Path, index: FileIndex, fidx_bytes: bytes, dest: Path,
          level: int = DEFAULT_LEVEL, threads: int = 2) -> int:
    """Write the ``.stz`` of ``path`` (cut as ``index`` says) to ``dest``; return its size.

    The chunks are compressed a batch of about 8 MiB at a time, on ``threads`` of zstd's
    own (python-zstandard's ``multi_compress_to_buffer``, outside the interpreter lock,
    where its C backend has it). A batch whose sampled chunks do not shrink to
    ``RAW_ABOVE`` of their size is stored raw without compressing the rest of it."""
    import zstandard

    cz = _compressor(level)
    n = len(index)
    sizes = np.zeros(n, dtype=np.uint32)
    offsets = index.offsets()
    lengths = index.lengths
    many = getattr(cz, "multi_compress_to_buffer", None)
    with open(path, "rb") as f, open(dest, "wb") as out:
        out.write(_HEADER.pack(MAGIC, VERSION, hashlib.sha256(fidx_bytes).digest(), n))
        out.seek(table_size(n))
        k = 0
        while k < n:  # each round stores at least one chunk
            start = int(offsets[k])
            j = max(k + 1, int(np.searchsorted(offsets, np.uint64(start + _BATCH),
                                               side="right")) - 1)
            j = min(j, n)
            f.seek(start)
            data = f.read(int(offsets[j]) - start)
            rel = (offsets[k:j] - np.uint64(start)).astype(np.uint64)
            lens = lengths[k:j].astype(np.uint64)
            if _incompressible(cz, data, rel, lens):
                out.write(data)
                sizes[k:j] = lengths[k:j] | np.uint32(STORED)
                k = j
                continue
            view = memoryview(data)
            if many is not None and j - k > 1:
                segments = np.stack([rel, lens], axis=1).astype(np.uint64).tobytes()
                packed_all: object = many(zstandard.BufferWithSegments(data, segments),
                                          threads=max(1, threads))
            else:
                packed_all = None
            for i in range(j - k):
                a, length = int(rel[i]), int(lens[i])
                if packed_all is not None:
                    packed = packed_all[i]  # type: ignore[index]
                else:
                    packed = cz.compress(view[a:a + length])  # type: ignore[attr-defined]
                if len(packed) < length:
                    out.write(packed)
                    sizes[k + i] = len(packed)
                else:
                    out.write(view[a:a + length])
                    sizes[k + i] = length | STORED
            k = j
        end = out.tell()
        out.seek(HEADER_SIZE)
        out.write(sizes.astype(">u4").tobytes())
    return end


def _incompressible(cz: object, data: bytes, rel: np.ndarray, lens: np.ndarray) -> bool:
    """Whether none of a few chunks spread over a batch shrinks below ``RAW_ABOVE``."""
    n = len(rel)
    if n < 2 * _BATCH_SAMPLES:
        return False
    view = memoryview(data)
    for i in np.linspace(0, n - 1, _BATCH_SAMPLES).astype(np.int64).tolist():
        a, length = int(rel[i]), int(lens[i])
        if len(cz.compress(view[a:a + length])) <= RAW_ABOVE * length:  # type: ignore[attr-defined]
            return False
    return True


def parse_table(data: bytes, index: FileIndex, fidx_sha256: bytes, stz_size: int) -> StzTable:
    """Check a ``.stz`` header and size table (``data``: its first ``table_size(n)`` bytes)
    against the index it must belong to. Raises ``FormatError``."""
    n = len(index)
    if len(data) != table_size(n):
        raise FormatError(f"compressed copy table is {len(data)} bytes, expected "
                          f"{table_size(n)}", what="stz")
    magic, version, sha, count = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise FormatError("not a stitch compressed copy (magic or version)", what="stz")
    if sha != fidx_sha256 or count != n:
        raise FormatError("compressed copy belongs to another index", what="stz")
    entries = np.frombuffer(data, dtype=">u4", count=n, offset=HEADER_SIZE).astype(np.uint32)
    raw = (entries & np.uint32(STORED)) != 0
    sizes = entries & np.uint32(STORED - 1)
    lengths = index.lengths
    # A raw chunk is stored at its length; a compressed one is shorter (else it is raw).
    if n and (np.any(raw & (sizes != lengths)) or np.any(~raw & (sizes >= lengths))
              or np.any(sizes == 0)):
        raise FormatError("compressed copy sizes do not fit the index", what="stz")
    offsets = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(sizes, dtype=np.uint64, out=offsets[1:])
    offsets += np.uint64(table_size(n))
    if int(offsets[-1]) != stz_size:
        raise FormatError("compressed copy size does not match the manifest", what="stz")
    return StzTable(sha, sizes, raw, offsets)


def compressed_ranges(table: StzTable, raw_offsets: np.ndarray,
                      ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The byte ranges of the ``.stz`` that hold the chunks of raw ``ranges`` (which start
    and end on chunk boundaries), in order; touching ranges are joined."""
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        i = int(np.searchsorted(raw_offsets, np.uint64(a)))
        j = int(np.searchsorted(raw_offsets, np.uint64(b)))
        ca, cb = int(table.offsets[i]), int(table.offsets[j])
        if out and out[-1][1] == ca:
            out[-1] = (out[-1][0], cb)
        elif cb > ca:
            out.append((ca, cb))
    return out


def decode_chunk(stored: bytes | bytearray | memoryview, raw: bool, length: int) -> bytes:
    """The chunk's bytes from its stored form. Decompression never produces more than
    ``length`` bytes (a zstd bomb is a ``FormatError``, not an allocation)."""
    if raw:
        return bytes(stored)
    import zstandard

    try:
        out = zstandard.ZstdDecompressor().decompress(bytes(stored), max_output_size=length)
    except zstandard.ZstdError as e:
        raise FormatError(f"compressed chunk does not decompress: {e}", what="stz") from None
    if len(out) != length:
        raise FormatError("compressed chunk has the wrong length", what="stz")
    return out


def decode_whole(data: bytes | bytearray, fidx_sha256: bytes, size: int) -> bytes:
    """The whole file of ``size`` bytes from its whole ``.stz`` (``data``), without its
    index: a file of which nothing is on this disk (a first install) needs no chunk matched.
    The chunks in table order: a raw one as stored, a compressed one as long as its frame's
    header says (format.md §9: the content size is written), never past ``size``. Checks
    the layout, the index it names (``fidx_sha256``, the manifest's) and the length; the
    caller checks the file's SHA-256. Raises ``FormatError``."""
    if len(data) < HEADER_SIZE:
        raise FormatError("compressed copy shorter than its header", what="stz")
    magic, version, sha, n = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise FormatError("not a stitch compressed copy (magic or version)", what="stz")
    if sha != fidx_sha256:
        raise FormatError("compressed copy belongs to another index", what="stz")
    if table_size(n) > len(data):
        raise FormatError("compressed copy shorter than its size table", what="stz")
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    view = memoryview(data)
    out = bytearray()
    pos = table_size(n)
    for entry in struct.unpack_from(f">{n}I", data, HEADER_SIZE):
        stored = entry & (STORED - 1)
        if not stored or pos + stored > len(data):
            raise FormatError("compressed copy sizes do not fit its length", what="stz")
        piece = view[pos:pos + stored]
        pos += stored
        if entry & STORED:
            out += piece
        else:
            try:
                length = zstandard.frame_content_size(piece)
                if not stored < length <= size - len(out):  # (-1: not written)
                    raise FormatError("compressed chunk of a wrong or unknown length",
                                      what="stz")
                chunk = dctx.decompress(piece, max_output_size=length)
            except zstandard.ZstdError as e:
                raise FormatError(f"compressed chunk does not decompress: {e}",
                                  what="stz") from None
            if len(chunk) != length:
                raise FormatError("compressed chunk has the wrong length", what="stz")
            out += chunk
        if len(out) > size:
            raise FormatError("compressed copy holds more than the file", what="stz")
    if pos != len(data) or len(out) != size:
        raise FormatError("compressed copy does not hold the file exactly", what="stz")
    return bytes(out)
