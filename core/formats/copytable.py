"""A delta's copy table (docs/format.md §10): long runs of the new file found unchanged in
the old one, which the decoder copies from the old file, so the delta's zstd frame holds
only the bytes between them.

Owns the table's bytes (a zstd skippable frame: ``encode_copies``, ``parse_copies``), the
split of the new file into copies and the frame's content (``gaps``), and the decoding
wrapper (``CopyingDecoder``) that reads the table off the front of a delta, hands the rest
to a frame decoder and inserts the copies into its output. It leaves out zstd itself and
the old file's opening and mapping (``core.formats.delta``: an ``OldFile``), and which runs
to copy (the publisher's ``core.publisher.delta_copies``).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence
from typing import Protocol

from core.errors import FormatError

COPIES_MAGIC = 0x184D2A5C  # a zstd skippable frame's magic (RFC 8878 §3.1.2): the copy table
COPIES_VERSION = 1
MAX_COPIES_TABLE = 4 << 20  # bytes: a copy table's largest payload a decoder accepts
_SKIP_HEADER = 8  # magic (u32 LE) + payload length (u32 LE)
_COPY_BLOCK = 1 << 20  # bytes of a copy written at a time

Copy = tuple[int, int, int]  # (offset in the new file, offset in the old file, length)
Write = Callable[[bytes | memoryview, int], None]  # (data, offset in the output)


class OldFile(Protocol):
    """The old file of one decode (``core.formats.delta``'s), opened once: ``size`` is what
    it had when opened; ``map()`` its one read-only map, made on first use and shared by
    every reader (``FormatError`` if the file no longer has ``size`` bytes); ``close()``
    closes both."""

    size: int

    def map(self) -> mmap.mmap: ...

    def close(self) -> None: ...


class FrameDecoder(Protocol):
    """A decoder of the delta's zstd frame (``core.formats.delta``'s)."""

    def feed(self, data: bytes | memoryview) -> None: ...

    def finish(self) -> None: ...

    def close(self) -> None: ...


def gaps(copies: Sequence[Copy], new_size: int) -> list[tuple[int, int]]:
    """The runs of the new file that are not copied: (start, end), in order."""
    out, at = [], 0
    for n0, _, length in copies:
        if n0 > at:
            out.append((at, n0))
        at = n0 + length
    if at < new_size:
        out.append((at, new_size))
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_copies(copies: Sequence[Copy], old_size: int, new_size: int) -> bytes:
    """The copy table of a delta (docs/format.md §10): a zstd skippable frame whose payload
    is the version, the number of copies and, for each, the bytes of the frame's output
    before it, its length and its old offset less the previous copy's old end (zigzag)."""
    body = bytearray([COPIES_VERSION])
    body += _varint(len(copies))
    at = old_end = 0
    for n0, o0, length in copies:
        if n0 < at or length <= 0 or o0 < 0 or o0 + length > old_size \
                or n0 + length > new_size:
            raise ValueError(f"copy {(n0, o0, length)} does not fit")
        step = o0 - old_end
        body += _varint(n0 - at) + _varint(length) + _varint(step * 2 if step >= 0
                                                              else -step * 2 - 1)
        at, old_end = n0 + length, o0 + length
    return (COPIES_MAGIC.to_bytes(4, "little") + len(body).to_bytes(4, "little")
            + bytes(body))


def parse_copies(payload: bytes | memoryview, old_size: int,
                 size: int) -> tuple[list[tuple[int, int, int]], int]:
    """A copy table's payload as ``(gap before, old offset, length)`` per copy, and the
    bytes the frame must decode to (``size`` less the copies); ``FormatError`` unless every
    copy lies in the old file and they and their gaps fit in ``size`` bytes."""
    data = bytes(payload)
    pos = 0

    def varint() -> int:
        nonlocal pos
        n = shift = 0
        while True:  # at most 10 bytes (a value < 2^70)
            if pos >= len(data) or shift > 63:
                raise FormatError("delta's copy table is cut short", what="delta")
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    if not data or data[0] != COPIES_VERSION:
        raise FormatError("delta's copy table has an unknown version", what="delta")
    pos = 1
    count = varint()
    if count > len(data):  # each copy takes 3 bytes at least
        raise FormatError("delta's copy table is cut short", what="delta")
    out: list[tuple[int, int, int]] = []
    at = old_end = copied = 0
    for _ in range(count):
        gap, length, step = varint(), varint(), varint()
        o0 = old_end + (step >> 1 if not step & 1 else -((step + 1) >> 1))
        if length == 0 or o0 < 0 or o0 + length > old_size or at + gap + length > size:
            raise FormatError("delta's copy table does not fit the files", what="delta")
        out.append((gap, o0, length))
        at += gap + length
        old_end = o0 + length
        copied += length
    if pos != len(data):
        raise FormatError("delta's copy table has bytes after its end", what="delta")
    return out, size - copied


class CopyingDecoder:
    """A delta with or without a copy table (``core.formats.delta.make``'s ``copies``): the
    first bytes fed say which. With one, the table is read whole (at most
    ``MAX_COPIES_TABLE`` bytes), the frame after it is decoded to the bytes between the
    copies, and each copy is written from the old file (mapped read-only) when the output
    reaches it, a block at a time. Without, the frame is decoded as it is."""

    def __init__(self, old: OldFile, size: int, write: Write,
                 inner: Callable[[int, Write], FrameDecoder]) -> None:
        """``inner(size, write)``: a decoder of the frame to ``size`` bytes (reading the
        same ``old``); ``old`` is closed with this."""
        self._old, self._size, self._write, self._inner_of = old, size, write, inner
        self._head = bytearray()  # the first bytes, until it is known what they are
        self._inner: FrameDecoder | None = None
        self._ops: list[tuple[int, int, int]] = []
        self._op = 0  # the next copy
        self._left = 0  # bytes of the frame's output before it
        self._pos = 0  # of the output
        self._tail = 0  # bytes of the frame's output after the last copy
        self._framed = 0  # bytes of the frame fed

    def feed(self, data: bytes | memoryview) -> None:
        if self._inner is not None:
            self._framed += len(data)
            self._inner.feed(data)
            return
        self._head += data
        if len(self._head) < 4:
            return
        if int.from_bytes(self._head[:4], "little") != COPIES_MAGIC:
            self._start(self._inner_of(self._size, self._write))
            return
        if len(self._head) < _SKIP_HEADER:
            return
        length = int.from_bytes(self._head[4:_SKIP_HEADER], "little")
        if length > MAX_COPIES_TABLE:
            raise FormatError("delta's copy table is too large", what="delta")
        if len(self._head) < _SKIP_HEADER + length:
            return
        self._ops, frame = parse_copies(
            memoryview(self._head)[_SKIP_HEADER:_SKIP_HEADER + length], self._old.size,
            self._size)
        self._left = self._ops[0][0] if self._ops else frame
        self._tail = frame - sum(gap for gap, _, _ in self._ops)
        del self._head[:_SKIP_HEADER + length]
        if self._ops:
            self._old.map()  # (the file still has its size; the frame's decoder shares it)
        self._start(self._inner_of(frame, self._gap))

    def _start(self, inner: FrameDecoder) -> None:
        self._inner = inner
        head, self._head = bytes(self._head), bytearray()
        self._framed = len(head)
        inner.feed(head)

    def _gap(self, data: bytes | memoryview, _offset: int) -> None:
        """The frame's output: the bytes between the copies, in order."""
        view = memoryview(data)
        while len(view):  # each round writes some bytes of the frame, after due copies
            self._copy_due()
            n = min(self._left, len(view))
            if n == 0:
                raise FormatError("delta decodes to more than the file", what="delta")
            self._write(view[:n], self._pos)
            self._pos += n
            self._left -= n
            view = view[n:]

    def _copy_due(self) -> None:
        """Write the copies the output has reached (none once they are all written)."""
        while self._left == 0 and self._op < len(self._ops):
            _, at, length = self._ops[self._op]
            with memoryview(self._old.map()) as whole:  # (parse_copies: in the old file)
                for a in range(at, at + length, _COPY_BLOCK):
                    with whole[a:min(a + _COPY_BLOCK, at + length)] as piece:
                        self._write(piece, self._pos)
                        self._pos += len(piece)
            self._op += 1
            self._left = (self._ops[self._op][0] if self._op < len(self._ops)
                          else self._tail)

    def finish(self) -> None:
        if self._inner is None or not self._framed:  # (the frame is never empty)
            raise FormatError("delta does not decode: it ends early", what="delta")
        self._inner.finish()
        if self._ops:
            self._copy_due()
            if self._pos != self._size:
                raise FormatError(f"delta decodes to {self._pos} bytes, not {self._size}",
                                  what="delta")

    def close(self) -> None:
        """Free the frame's decoder, then the old file (its map is no longer referenced)."""
        try:
            if self._inner is not None:
                self._inner.close()
        finally:
            self._old.close()
