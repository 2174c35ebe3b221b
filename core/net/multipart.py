"""Byte-range wire formats: ``Range`` / ``Content-Range`` headers and ``multipart/byteranges``.

Owns: turning ranges into a ``Range`` header, checking what a server says about the ranges it
sends (``parse_content_range``), tracking which asked bytes have reached the sink
(``Coverage``), and a streaming ``multipart/byteranges`` parser that hands body bytes to the
sink as they arrive (``ByteRangesParser``), in memory bounded by the header limits whatever
the body size.

Leaves out: all I/O. No sockets, no httpx; ``core.net.http`` feeds bytes in and decides what a
``RangeError`` means (retry, fewer ranges per request, or give up). Choosing ranges is the
planner's job.

Ranges are half-open ``(start, end)`` tuples everywhere in stitch; only the wire format
(``bytes=0-99``, ``Content-Range: bytes 0-99/1000``) uses inclusive ends, and only this module
converts.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence

from core.errors import RangeError

RangeSink = Callable[[int, bytes], None]  # same shape as core.net.fetcher.RangeSink

MAX_OFFSET = 2**63  # offsets and sizes are 64-bit everywhere; anything bigger is a lie
MAX_HEADER_BLOCK = 8 * 1024  # one part's header block; real servers send ~100 bytes
MAX_PREAMBLE = 64 * 1024  # bytes tolerated before the first boundary

_CONTENT_RANGE = re.compile(
    r"bytes[ \t]+([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)", re.ASCII | re.IGNORECASE
)
_BOUNDARY_PARAM = re.compile(
    r';\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;",]+))', re.ASCII | re.IGNORECASE
)
# RFC 2046 bcharsnospace, plus space (not last); 1 to 70 characters.
_BOUNDARY_CHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]", re.ASCII)


def parse_content_range(value: str) -> tuple[int, int, int | None]:
    """Parse ``bytes FIRST-LAST/TOTAL`` into ``(start, end_exclusive, total)``.

    ``total`` is ``None`` when the server wrote ``*``. Raises ``RangeError`` for anything
    else: another unit, ``bytes */TOTAL`` (that belongs to a 416, not to a body), garbage,
    ``FIRST > LAST``, ``LAST >= TOTAL``, or numbers beyond 64-bit offsets.
    """
    match = _CONTENT_RANGE.fullmatch(value.strip(" \t"))
    if match is None:
        raise RangeError(f"malformed Content-Range: {value[:100]!r}")
    first, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if first > last:
        raise RangeError(f"Content-Range starts after it ends: {value[:100]!r}")
    if last >= MAX_OFFSET or (total is not None and total > MAX_OFFSET):
        raise RangeError(f"Content-Range beyond 64-bit offsets: {value[:100]!r}")
    if total is not None and last >= total:
        raise RangeError(f"Content-Range ends past the total size: {value[:100]!r}")
    return first, last + 1, total


def format_range_header(ranges: Iterable[tuple[int, int]]) -> str:
    """``[(0, 100), (200, 300)]`` -> ``"bytes=0-99,200-299"``.

    Raises ``ValueError`` (a caller bug, not a server problem) for an empty list or a range
    that is empty, negative or beyond 64-bit offsets.
    """
    specs = []
    for start, end in ranges:
        if not 0 <= start < end <= MAX_OFFSET:
            raise ValueError(f"bad byte range {start}-{end}")
        specs.append(f"{start}-{end - 1}")
    if not specs:
        raise ValueError("no byte ranges")
    return "bytes=" + ",".join(specs)


def multipart_boundary(content_type: str) -> str | None:
    """The boundary of a ``multipart/byteranges`` Content-Type, quoted or not.

    Returns ``None`` when the media type is something else (a single-part response). Raises
    ``RangeError`` when it is ``multipart/byteranges`` without a valid boundary.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "multipart/byteranges":
        return None
    match = _BOUNDARY_PARAM.search(content_type)
    if match is None:
        raise RangeError(f"multipart/byteranges without a boundary: {content_type[:200]!r}")
    boundary = match[2] if match[1] is None else re.sub(r"\\(.)", r"\1", match[1])
    if _BOUNDARY_CHARS.fullmatch(boundary) is None:
        raise RangeError(f"invalid multipart boundary: {boundary[:100]!r}")
    return boundary


class Coverage:
    """The ranges one request asked for, and which of their bytes reached the sink.

    ``ranges`` must be sorted, non-overlapping, non-empty half-open ranges (adjacent is fine).
    Delivered bytes are kept as merged intervals, so a failed request can be resumed with
    ``missing()`` and no byte is ever handed to the sink twice.
    """

    def __init__(self, ranges: Sequence[tuple[int, int]]) -> None:
        previous_end = 0
        for start, end in ranges:
            if not previous_end <= start < end <= MAX_OFFSET:
                raise ValueError(
                    f"ranges must be sorted, non-overlapping, non-empty: {start}-{end}"
                )
            previous_end = end
        if not ranges:
            raise ValueError("no byte ranges")
        self.ranges: tuple[tuple[int, int], ...] = tuple(ranges)
        self._ends = [end for _, end in self.ranges]
        self._done_starts: list[int] = []
        self._done_ends: list[int] = []
        self.asked_bytes = sum(end - start for start, end in self.ranges)
        self.delivered_bytes = 0

    @property
    def complete(self) -> bool:
        return self.delivered_bytes == self.asked_bytes

    def check_part(self, start: int, end: int) -> None:
        """Raise ``RangeError`` unless a part ``[start, end)`` is one this request can accept.

        Accepted: any part inside the span of the asked ranges that holds at least one asked
        byte, none of them delivered before. That covers a sub-range of one asked range and a
        part a server coalesced from several asked ranges (the gap bytes are dropped).
        """
        if start < self.ranges[0][0] or end > self.ranges[-1][1]:
            raise RangeError(f"server sent bytes {start}-{end - 1}, outside the ranges asked")
        targets = self.targets(start, end)
        if not targets:
            raise RangeError(f"server sent bytes {start}-{end - 1}, none of which were asked")
        for a, b in targets:
            i = bisect.bisect_right(self._done_starts, a) - 1
            if (i >= 0 and self._done_ends[i] > a) or (
                i + 1 < len(self._done_starts) and self._done_starts[i + 1] < b
            ):
                raise RangeError(f"server sent bytes {a}-{b - 1} twice")

    def targets(self, start: int, end: int) -> list[tuple[int, int]]:
        """The asked bytes within ``[start, end)``, as sorted ranges."""
        out = []
        i = bisect.bisect_right(self._ends, start)
        while i < len(self.ranges) and self.ranges[i][0] < end:
            a, b = self.ranges[i]
            out.append((max(a, start), min(b, end)))
            i += 1
        return out

    def mark(self, start: int, end: int) -> None:
        """Record ``[start, end)`` as delivered (the caller checked it was undelivered)."""
        self.delivered_bytes += end - start
        # Pieces of a part arrive in order, so the common case extends the last interval.
        if self._done_ends and self._done_ends[-1] == start:
            self._done_ends[-1] = end
            return
        i = bisect.bisect_left(self._done_starts, start)
        self._done_starts.insert(i, start)
        self._done_ends.insert(i, end)
        if i + 1 < len(self._done_starts) and self._done_starts[i + 1] == end:
            self._done_ends[i] = self._done_ends.pop(i + 1)
            del self._done_starts[i + 1]
        if i > 0 and self._done_ends[i - 1] == start:
            self._done_ends[i - 1] = self._done_ends.pop(i)
            del self._done_starts[i]

    def missing(self) -> list[tuple[int, int]]:
        """The asked ranges minus what was delivered, sorted: what a retry must ask for."""
        out = []
        j = 0
        for start, end in self.ranges:
            pos = start
            while j < len(self._done_starts) and self._done_starts[j] < end:
                if self._done_starts[j] > pos:
                    out.append((pos, self._done_starts[j]))
                pos = max(pos, self._done_ends[j])
                j += 1
            if pos < end:
                out.append((pos, end))
            # A delivered interval can run on into the next (adjacent) asked range.
            if j > 0 and self._done_ends[j - 1] > end:
                j -= 1
        return out


class PartBody:
    """The body of one part ``[start, end)``: hands its asked bytes to ``sink`` as they come.

    ``feed`` raises ``RangeError`` if fed more than ``end - start`` bytes (a body longer than
    its Content-Range); ``finish`` raises it if fed fewer. With ``check=False`` the part is
    not checked against the asked ranges (a whole-file body that holds them all).
    """

    def __init__(
        self, coverage: Coverage, start: int, end: int, sink: RangeSink, *, check: bool = True
    ) -> None:
        if check:
            coverage.check_part(start, end)
        self._coverage = coverage
        self._sink = sink
        self._targets = coverage.targets(start, end)
        self._next = 0  # index of the first target not yet fully delivered
        self.pos = start
        self.end = end

    @property
    def left(self) -> int:
        return self.end - self.pos

    def feed(self, data: bytes) -> None:
        if len(data) > self.end - self.pos:
            raise RangeError(f"part body longer than its range {self.pos}-{self.end - 1}")
        piece_end = self.pos + len(data)
        while self._next < len(self._targets):
            a, b = self._targets[self._next]
            a, b = max(a, self.pos), min(b, piece_end)
            if a >= piece_end:
                break
            if a < b:
                self._sink(a, data[a - self.pos : b - self.pos])
                self._coverage.mark(a, b)
            if self._targets[self._next][1] > piece_end:
                break
            self._next += 1
        self.pos = piece_end

    def finish(self) -> None:
        if self.pos < self.end:
            raise RangeError(f"part body ended at {self.pos}, before {self.end}")


_PREAMBLE, _DELIMITER_LINE, _HEADERS, _BODY, _AFTER_BODY, _DONE = range(6)


class ByteRangesParser:
    """Streaming parser of a ``multipart/byteranges`` body.

    Feed it the body in pieces of any size; it calls ``sink(offset, data)`` with the asked
    bytes of each part as they arrive, using each part's Content-Range (never a boundary
    search) to know where the part ends. It checks every part against ``coverage``, bounds
    every header block and the preamble, ignores the epilogue, and ``finish`` raises
    ``RangeError`` unless the closing delimiter was seen. Only ``RangeError`` escapes from a
    malformed body; a sink exception propagates unchanged.
    """

    def __init__(
        self,
        boundary: str,
        coverage: Coverage,
        sink: RangeSink,
        *,
        total: int | None = None,
        max_header: int = MAX_HEADER_BLOCK,
        max_preamble: int = MAX_PREAMBLE,
    ) -> None:
        self._dash_boundary = b"--" + boundary.encode("ascii")
        self._delimiter = b"\r\n" + self._dash_boundary
        self._coverage = coverage
        self._sink = sink
        self._max_header = max_header
        self._max_preamble = max_preamble
        self._state = _PREAMBLE
        self._buf = bytearray()
        self._preamble_seen = 0
        self._part: PartBody | None = None
        self.total = total  # file size from the parts' Content-Range, once one says it
        self.parts = 0

    @property
    def done(self) -> bool:
        """True once the closing delimiter was read; the rest of the body is epilogue."""
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        pending = data
        while pending and self._state != _DONE:
            if self._state == _BODY:
                assert self._part is not None
                take = min(self._part.left, len(pending))
                self._part.feed(pending[:take])
                pending = pending[take:]
                if self._part.left == 0:
                    self._part = None
                    self._state = _AFTER_BODY
                continue
            self._buf += pending
            pending = self._advance()

    def finish(self) -> None:
        """Raise ``RangeError`` if the body ended before the closing delimiter."""
        if self._state != _DONE:
            raise RangeError("multipart/byteranges body ended early")

    def _advance(self) -> bytes:
        """Run the buffered states; return the bytes left over once a part body starts."""
        while True:
            buf = self._buf
            if self._state == _PREAMBLE:
                i = buf.find(self._dash_boundary)
                if i < 0:
                    keep = len(self._dash_boundary) - 1
                    if len(buf) > keep:
                        self._preamble_seen += len(buf) - keep
                        del buf[:-keep]
                    if self._preamble_seen > self._max_preamble:
                        raise RangeError("no multipart boundary in the first bytes of the body")
                    return b""
                if self._preamble_seen + i > self._max_preamble:
                    raise RangeError("no multipart boundary in the first bytes of the body")
                del buf[: i + len(self._dash_boundary)]
                self._state = _DELIMITER_LINE
            elif self._state == _AFTER_BODY:
                if len(buf) < len(self._delimiter):
                    if not self._delimiter.startswith(bytes(buf)):
                        raise RangeError("part body longer than its Content-Range")
                    return b""
                if not buf.startswith(self._delimiter):
                    raise RangeError("part body longer than its Content-Range")
                del buf[: len(self._delimiter)]
                self._state = _DELIMITER_LINE
            elif self._state == _DELIMITER_LINE:
                if buf.startswith(b"--"):
                    self._state = _DONE  # the epilogue, if any, is ignored
                    buf.clear()
                    return b""
                i = buf.find(b"\r\n")
                if i < 0:
                    if len(buf) > 256:
                        raise RangeError("malformed multipart delimiter line")
                    return b""
                if buf[:i].strip(b" \t"):  # only transport padding may follow a boundary
                    raise RangeError("malformed multipart delimiter line")
                del buf[:i]  # keep the CRLF: it makes an empty header block easy to see
                self._state = _HEADERS
            elif self._state == _HEADERS:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    if len(buf) > self._max_header:
                        raise RangeError("multipart part headers too long")
                    return b""
                if i > self._max_header:
                    raise RangeError("multipart part headers too long")
                self._start_part(bytes(buf[2:i]))
                rest = bytes(buf[i + 4 :])
                buf.clear()
                self._state = _BODY
                return rest
            else:  # _DONE or _BODY: nothing buffered to do
                return b""

    def _start_part(self, block: bytes) -> None:
        content_range = None
        for line in block.decode("latin-1").split("\r\n") if block else ():
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or name[0] in " \t":
                raise RangeError(f"malformed multipart header line: {line[:100]!r}")
            if name.lower() == "content-range":
                if content_range is not None:
                    raise RangeError("multipart part with two Content-Range headers")
                content_range = value
        if content_range is None:
            raise RangeError("multipart part without Content-Range")
        start, end, total = parse_content_range(content_range)
        if total is not None:
            if self.total is not None and total != self.total:
                raise RangeError(f"parts disagree on the file size: {self.total} and {total}")
            self.total = total
        self._part = PartBody(self._coverage, start, end, self._sink)
        self.parts += 1
