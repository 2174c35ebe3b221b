"""Recognising files whose compression defeats chunking, for ``stitch publish``'s report.

Content-defined chunking finds the unchanged parts of a new file. A compressed stream
changes from the first changed byte to the end (its state carries on), so an edit early in a
``.tar.gz`` makes every later chunk new. Exceptions: ``gzip --rsyncable`` resets its output
at content-defined points (each marked by an empty stored block, the bytes
``00 00 ff ff``), and zip compresses each entry apart, so only changed entries cost.
Measured costs are in ``docs/sync.md``.

Owns: sniffing the format from a file's first bytes (gzip, zip, xz, zstd, bzip2, 7z, lz4),
telling rsyncable gzip from plain gzip by its sync markers, and the wording of the warning.
Leaves out: deciding what to publish (the publisher does).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

WARN_SIZE = 1 << 20  # files smaller than this are not worth a warning
SAMPLE = 16 << 20  # bytes of a gzip file scanned for sync markers
SYNC_MARKER = b"\x00\x00\xff\xff"  # an empty stored deflate block, byte-aligned
# gzip --rsyncable leaves a marker every few KB of output (about one per 3.4 KB on
# compressible data, one per ~110 KB on incompressible data); plain gzip leaves none (a
# random match is one in 4 GB). Four per MiB separates the two with a wide margin.
MARKERS_PER_MIB = 4

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b\x08", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"PK\x03\x04", "zip"),
)


@dataclass(frozen=True)
class Compression:
    """What a file's compression means for chunking."""

    kind: str  # gzip, xz, zstd, bzip2, 7z, lz4, zip
    chunk_friendly: bool  # True: delta-friendly (rsyncable gzip, zip of stored entries)
    detail: str  # one phrase for the report


def sniff_bytes(head: bytes) -> str | None:
    """The compression format ``head`` (a file's first bytes) starts with, or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 10 and head[:3] == b"BZh" and head[3:4].isdigit() and \
            head[4:10] == b"\x31\x41\x59\x26\x53\x59":
        return "bzip2"
    return None


def gzip_sync_markers(data: bytes) -> int:
    """How many ``gzip --rsyncable`` sync markers ``data`` (a sample of a .gz) holds."""
    return data.count(SYNC_MARKER)


def inspect(path: Path) -> Compression | None:
    """What compression the file at ``path`` uses, or None for none recognised.

    Reads at most ``SAMPLE`` bytes (a zip's central directory is read through ``zipfile``).
    Raises ``OSError`` if the file cannot be read.
    """
    with open(path, "rb") as f:
        kind = sniff_bytes(f.read(16))
        if kind is None:
            return None
        if kind == "gzip":
            f.seek(0)
            sample = f.read(SAMPLE)
            markers = gzip_sync_markers(sample)
            mib = max(len(sample) / (1 << 20), 1.0)
            if markers >= MARKERS_PER_MIB * mib:
                return Compression("gzip", True, f"gzip with sync points ({markers} in the "
                                   f"first {len(sample) >> 20} MiB: --rsyncable)")
            return Compression("gzip", False, "gzip without --rsyncable")
    if kind == "zip":
        return _inspect_zip(path)
    return Compression(kind, False, {
        "xz": "xz", "zstd": "zstd (--rsyncable cannot be seen in the file and helps only "
        "at multi-MB granularity)", "bzip2": "bzip2", "7z": "7z", "lz4": "lz4"}[kind])


def _inspect_zip(path: Path) -> Compression:
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return Compression("zip", False, "zip (unreadable directory)")
    packed = sum(i.compress_size for i in infos if i.compress_type != zipfile.ZIP_STORED)
    if packed < WARN_SIZE:
        return Compression("zip", True, "zip with stored entries")
    n = sum(i.compress_type != zipfile.ZIP_STORED for i in infos)
    return Compression("zip", False, f"zip with {n} compressed entries ({packed} bytes)")


def warning(rel: str, size: int, c: Compression) -> str | None:
    """The report line for a file of ``size`` bytes with compression ``c``, or None."""
    if c.chunk_friendly or size < WARN_SIZE:
        return None
    if c.kind == "zip":
        cost = "every changed entry is downloaded whole"
        fix = "store entries uncompressed (zip -0)"
    else:
        cost = "an update downloads nearly everything after the first changed byte " \
            "(measured on a game tarball: 66% of the file instead of 9% uncompressed)"
        fix = "publish it uncompressed, or with gzip --rsyncable" if c.kind == "gzip" \
            else "publish it uncompressed, or as gzip --rsyncable"
    return f"{rel}: {c.detail}: chunking cannot find unchanged parts; {cost}; {fix} " \
        "(see docs/sync.md)"
