"""The release's pack of small files (``<version>/small.pack``, docs/format.md §12): the
compressed contents of the release's small files and their deltas from earlier versions, back
to back in one file, so a client fetches what many small changed files need with a few
multi-range requests on one URL instead of a request (or three) per file.

Owns the pack's header, its manifest fields (the release's ``pack``: size and SHA-256; each
packed file's ``pack``: where its content and its deltas lie) with their checks, and
decoding one content entry. Every entry is checked by digests the signed manifest already
holds: a content entry by the file's SHA-256, a delta by the delta's. Numpy-free: a client
updating by deltas alone imports it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from core.errors import FormatError

MAGIC = b"STPK"
VERSION = 1
HEADER = MAGIC + VERSION.to_bytes(4, "big")  # 8 bytes; entries follow
# The largest file `stitch publish` packs (its default; measured: docs/benchmarks.md,
# "Many small changed files"). Readers take any size the manifest gives.
DEFAULT_MAX_FILE = 64 << 10
# A bigger file gets only its deltas packed (``pack_deltas``), each of at most the largest
# packed file's size, when the file is at most this big: a client rebuilds it in memory
# (``core.engine.packstep``), and takes no pack delta of a bigger file.
MAX_DELTA_FILE = 4 << 20
_LIMIT = 1 << 62


@dataclass(frozen=True, slots=True)
class PackedDelta:
    """One of a file's deltas (§10) stored in the pack: the delta from the version whose
    SHA-256 is ``from_sha256`` (its size and digest are the file's ``deltas`` entry's)."""

    from_sha256: str
    offset: int


@dataclass(frozen=True, slots=True)
class PackRef:
    """Where one file lies in the release's pack: its content (one zstd frame of the whole
    file) at ``offset``, ``size`` bytes, and the deltas of ``deltas``."""

    offset: int
    size: int
    deltas: tuple[PackedDelta, ...] = ()

    def delta_offset(self, from_sha256: str) -> int | None:
        return next((d.offset for d in self.deltas if d.from_sha256 == from_sha256), None)


@dataclass(frozen=True, slots=True)
class PackInfo:
    """The release's pack: its size and SHA-256 (``<version>/small.pack``)."""

    size: int
    sha256: str


def _int(obj: dict[str, Any], key: str, w: str) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _LIMIT:
        raise FormatError(f"{w}: pack '{key}' missing or out of range", what=w)
    return v


def _hex(obj: dict[str, Any], key: str, w: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or len(v) != 64 or v.strip("0123456789abcdef"):
        raise FormatError(f"{w}: pack '{key}' is not a hex SHA-256", what=w)
    return v


def parse_info(obj: dict[str, Any], w: str = "manifest") -> PackInfo | None:
    """The manifest's top-level ``pack`` (None when absent)."""
    raw = obj.get("pack")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FormatError(f"{w}: 'pack' is not an object", what=w)
    info = PackInfo(_int(raw, "size", w), _hex(raw, "sha256", w))
    if info.size < len(HEADER):
        raise FormatError(f"{w}: pack shorter than its header", what=w)
    return info


def parse_ref(raw_entry: dict[str, Any], deltas: list[tuple[str, int]],
              w: str = "manifest") -> PackRef | None:
    """A file entry's ``pack`` (None when absent): ``[offset, size, d0, d1, ...]``, ``dk``
    the offset of the file's k-th delta (``deltas``: its ``(from, size)`` in order) or
    null when that one is not packed."""
    raw = raw_entry.get("pack")
    if raw is None:
        return None
    if (not isinstance(raw, list) or not 2 <= len(raw) <= 2 + len(deltas)
            or not all(_is_offset(v) or (k >= 2 and v is None) for k, v in enumerate(raw))):
        raise FormatError(f"{w}: a file's 'pack' is not [offset, size, delta offsets]",
                          what=w)
    packed = tuple(PackedDelta(deltas[k][0], at) for k, at in enumerate(raw[2:])
                   if at is not None)
    ref = PackRef(raw[0], raw[1], packed)
    if ref.size == 0:
        raise FormatError(f"{w}: a packed file of 0 bytes", what=w)
    return ref


def parse_delta_refs(raw_entry: dict[str, Any], deltas: list[tuple[str, int]],
                     w: str = "manifest") -> tuple[PackedDelta, ...]:
    """A file entry's ``pack_deltas`` (a file not packed whole whose deltas are: ``()`` when
    absent): ``[d0, d1, ...]``, ``dk`` the offset of the file's k-th delta or null, at
    least one of them an offset."""
    raw = raw_entry.get("pack_deltas")
    if raw is None:
        return ()
    if (not isinstance(raw, list) or not 1 <= len(raw) <= len(deltas)
            or not all(_is_offset(v) or v is None for v in raw)
            or all(v is None for v in raw)):
        raise FormatError(f"{w}: a file's 'pack_deltas' is not [delta offsets]", what=w)
    if "pack" in raw_entry:
        raise FormatError(f"{w}: a file has both 'pack' and 'pack_deltas'", what=w)
    return tuple(PackedDelta(deltas[k][0], at) for k, at in enumerate(raw) if at is not None)


def encode_delta_refs(packed: tuple[PackedDelta, ...], deltas: list[str]) -> list[int | None]:
    """``[d0, ...]`` (see ``parse_delta_refs``); ``deltas``: the file's deltas' ``from``."""
    at = {d.from_sha256: d.offset for d in packed}
    out = [at.get(f) for f in deltas]
    while out and out[-1] is None:
        out.pop()
    return out


def _is_offset(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _LIMIT


def check_refs(info: PackInfo | None, refs: list[tuple[PackRef, dict[str, int]]],
               w: str = "manifest",
               delta_refs: list[tuple[tuple[PackedDelta, ...], dict[str, int]]] | None = None
               ) -> None:
    """Every entry lies inside the pack, past its header; two entries either are the same
    bytes (same offset and size) or do not overlap. ``delta_refs``: the files whose deltas
    alone are packed (``pack_deltas``)."""
    if not refs and not delta_refs:
        return
    if info is None:
        raise FormatError(f"{w}: files are packed but the release has no 'pack'", what=w)
    spans = set()
    for ref, sizes in refs:
        spans.add((ref.offset, ref.size))
        for d in ref.deltas:
            spans.add((d.offset, sizes[d.from_sha256]))
    for packed, sizes in delta_refs or ():
        for d in packed:
            spans.add((d.offset, sizes[d.from_sha256]))
    end = len(HEADER)
    for offset, size in sorted(spans):
        if offset < end or offset + size > info.size or size == 0:
            raise FormatError(f"{w}: pack entries overlap or lie outside the pack", what=w)
        end = offset + size


def encode_info(info: PackInfo) -> dict[str, Any]:
    return {"size": info.size, "sha256": info.sha256}


def encode_ref(ref: PackRef, deltas: list[str]) -> list[int | None]:
    """``[offset, size, d0, ...]`` (see ``parse_ref``); ``deltas``: the file's deltas'
    ``from``, in order."""
    at = {d.from_sha256: d.offset for d in ref.deltas}
    extra = [at.get(f) for f in deltas]
    while extra and extra[-1] is None:
        extra.pop()
    return [ref.offset, ref.size, *extra]


def available() -> bool:
    """Whether zstd is here (python-zstandard): without it a client leaves the pack alone."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def compress(data: bytes, level: int) -> bytes:
    """One content entry: ``data`` as one zstd frame, its size in the frame header."""
    import zstandard

    return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(data)


def decoder() -> Any:
    """A zstd decompressor for ``decode_content`` to reuse (None without zstd here)."""
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdDecompressor()


def decode_content(stored: bytes | bytearray, size: int, sha256: str | None,
                   decoder: Any = None) -> bytes:
    """The file's bytes from its content entry, checked: exactly ``size`` bytes (decoding
    never produces more) whose SHA-256 is ``sha256`` (None: the caller hashes what it writes
    and compares). ``decoder``: a ``zstandard.ZstdDecompressor`` to reuse (thousands of
    small files in a row). ``FormatError`` otherwise."""
    import zstandard

    try:
        if zstandard.frame_content_size(bytes(stored[:18])) != size:  # before allocating
            raise FormatError("packed file has the wrong size", what="pack")
        out = (decoder or zstandard.ZstdDecompressor()).decompress(stored,
                                                                  max_output_size=size)
    except zstandard.ZstdError as e:
        raise FormatError(f"packed file does not decompress: {e}", what="pack") from None
    if len(out) != size or (sha256 is not None and hashlib.sha256(out).hexdigest() != sha256):
        raise FormatError("packed file does not match the manifest", what="pack")
    return out
