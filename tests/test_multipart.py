"""core.net.multipart: Content-Range, Range headers, Coverage and the streaming multipart parser."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import RangeError
from core.net.multipart import (
    ByteRangesParser,
    Coverage,
    format_range_header,
    multipart_boundary,
    parse_content_range,
)

BOUNDARY = "THIS_STRING_SEPARATES"


def body_for(
    data: bytes,
    parts: list[tuple[int, int]],
    boundary: str = BOUNDARY,
    *,
    preamble: bytes = b"",
    epilogue: bytes = b"",
    leading_crlf: bool = False,
    padding: bytes = b"",
) -> bytes:
    """A multipart/byteranges body holding ``parts`` (half-open) of ``data``."""
    out = bytearray(preamble)
    for i, (start, end) in enumerate(parts):
        if i or leading_crlf:
            out += b"\r\n"
        out += f"--{boundary}".encode() + padding + b"\r\n"
        out += b"Content-Type: application/octet-stream\r\n"
        out += f"Content-Range: bytes {start}-{end - 1}/{len(data)}\r\n\r\n".encode()
        out += data[start:end]
    out += f"\r\n--{boundary}--\r\n".encode() + epilogue
    return bytes(out)


class Collector:
    """A sink that records pieces and fails the test on any byte delivered twice."""

    def __init__(self) -> None:
        self.bytes: dict[int, int] = {}
        self.calls = 0

    def __call__(self, offset: int, data: bytes) -> None:
        self.calls += 1
        for i, b in enumerate(data):
            assert offset + i not in self.bytes, f"byte {offset + i} delivered twice"
            self.bytes[offset + i] = b

    def expected(self, data: bytes, ranges: list[tuple[int, int]]) -> dict[int, int]:
        return {i: data[i] for s, e in ranges for i in range(s, e)}


def feed_split(parser: ByteRangesParser, body: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(body) + 1) for c in cuts})
    prev = 0
    for p in [*points, len(body)]:
        parser.feed(body[prev:p])
        prev = p
    parser.finish()


# -- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-99/1000", (0, 100, 1000)),
        ("bytes 0-0/1", (0, 1, 1)),
        ("BYTES  5-9/*", (5, 10, None)),
        (" bytes 10-19/20 ", (10, 20, 20)),
        (f"bytes 0-{2**63 - 1}/{2**63}", (0, 2**63, 2**63)),
    ],
)
def test_parse_content_range_valid(value: str, expected: tuple[int, int, int | None]) -> None:
    assert parse_content_range(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes */1000",
        "items 0-9/10",
        "bytes 9-0/10",
        "bytes 0-10/10",
        "bytes 0-9/9",
        "bytes -1-9/10",
        "bytes 0-9",
        "bytes 0-9/10 junk",
        "bytes 0x0-9/10",
        "bytes 0-9/10,20-29/30",
        f"bytes 0-{2**63}/*",
        f"bytes 0-9/{2**63 + 1}",
        "bytes 0-99999999999999999999999/*",
        "bytes ０-9/10",  # non-ASCII digits
    ],
)
def test_parse_content_range_rejects(value: str) -> None:
    with pytest.raises(RangeError):
        parse_content_range(value)


def test_format_range_header() -> None:
    assert format_range_header([(0, 100), (200, 300)]) == "bytes=0-99,200-299"
    assert format_range_header([(5, 6)]) == "bytes=5-5"
    for bad in ([], [(5, 5)], [(-1, 3)], [(0, 2**63 + 1)]):
        with pytest.raises(ValueError):
            format_range_header(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("multipart/byteranges; boundary=abc123", "abc123"),
        ('Multipart/ByteRanges; charset=x; BOUNDARY="a b:c"', "a b:c"),
        ('multipart/byteranges;boundary="q\\"x"', None),  # a quote is not a boundary char
        ("application/octet-stream", None),
        ("text/plain; boundary=abc", None),
    ],
)
def test_multipart_boundary(value: str, expected: str | None) -> None:
    if value.startswith('multipart/byteranges;boundary="q'):
        with pytest.raises(RangeError):
            multipart_boundary(value)
    else:
        assert multipart_boundary(value) == expected


@pytest.mark.parametrize(
    "value",
    ["multipart/byteranges", "multipart/byteranges; boundary=", "multipart/byteranges; b=x"],
)
def test_multipart_boundary_missing(value: str) -> None:
    with pytest.raises(RangeError):
        multipart_boundary(value)


def test_multipart_boundary_too_long() -> None:
    with pytest.raises(RangeError):
        multipart_boundary("multipart/byteranges; boundary=" + "x" * 71)


# -- Coverage ----------------------------------------------------------------------------------


@st.composite
def sorted_ranges(draw: st.DrawFn, size: int, max_count: int = 12) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-empty half-open ranges inside ``[0, size)`` (may touch)."""
    points = sorted(draw(st.sets(st.integers(0, size), min_size=2, max_size=2 * max_count)))
    pairs = list(zip(points[::2], points[1::2], strict=False))
    return [(a, b) for a, b in pairs if a < b]


@given(st.data())
def test_coverage_missing_is_set_difference(data: st.DataObject) -> None:
    ranges = data.draw(sorted_ranges(300))
    if not ranges:
        return
    cov = Coverage(ranges)
    asked = {i for s, e in ranges for i in range(s, e)}
    delivered: set[int] = set()
    for _ in range(data.draw(st.integers(0, 8))):
        a = data.draw(st.integers(0, 299))
        b = data.draw(st.integers(a + 1, 300))
        for s, e in cov.targets(a, b):
            if any(i in delivered for i in range(s, e)):
                with pytest.raises(RangeError):
                    cov.check_part(s, e)
                continue
            cov.check_part(s, e)
            cov.mark(s, e)
            delivered.update(range(s, e))
    missing = {i for s, e in cov.missing() for i in range(s, e)}
    assert missing == asked - delivered
    assert cov.delivered_bytes == len(delivered)
    assert cov.complete == (missing == set())


def test_coverage_rejects_bad_ranges() -> None:
    for bad in ([], [(0, 0)], [(5, 10), (0, 3)], [(0, 10), (5, 20)], [(-1, 2)]):
        with pytest.raises(ValueError):
            Coverage(bad)


# -- the parser: round trips -------------------------------------------------------------------


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(min_size=1, max_size=3000),
    st.data(),
    st.lists(st.integers(0, 10**6), max_size=30),
    st.binary(max_size=40).filter(lambda b: b"--" not in b),
    st.binary(max_size=40),
    st.booleans(),
    st.sampled_from([b"", b" ", b" \t "]),
)
def test_round_trip(
    blob: bytes,
    data: st.DataObject,
    cuts: list[int],
    preamble: bytes,
    epilogue: bytes,
    leading_crlf: bool,
    padding: bytes,
) -> None:
    ranges = data.draw(sorted_ranges(len(blob)))
    if not ranges:
        return
    order = data.draw(st.permutations(ranges))  # parts may come in any order
    body = body_for(
        blob,
        list(order),
        preamble=preamble,
        epilogue=epilogue,
        leading_crlf=leading_crlf,
        padding=padding,
    )
    sink = Collector()
    cov = Coverage(ranges)
    parser = ByteRangesParser(BOUNDARY, cov, sink)
    feed_split(parser, body, cuts)
    assert parser.done
    assert sink.bytes == sink.expected(blob, ranges)
    assert cov.complete and cov.missing() == []
    assert parser.total == len(blob)


def test_coalesced_part_delivers_only_asked_bytes() -> None:
    blob = bytes(range(100))
    asked = [(0, 10), (20, 30), (50, 60)]
    sink = Collector()
    cov = Coverage(asked)
    parser = ByteRangesParser(BOUNDARY, cov, sink)
    feed_split(parser, body_for(blob, [(0, 30), (50, 60)]), [7, 33, 70])
    assert sink.bytes == sink.expected(blob, asked)


def test_sub_range_parts_leave_the_rest_missing() -> None:
    blob = bytes(range(200))
    cov = Coverage([(0, 100), (150, 200)])
    sink = Collector()
    parser = ByteRangesParser(BOUNDARY, cov, sink)
    feed_split(parser, body_for(blob, [(10, 40), (150, 160)]), [])
    assert cov.missing() == [(0, 10), (40, 100), (160, 200)]


def test_large_part_keeps_memory_bounded() -> None:
    size = 4 * 1024 * 1024
    head = f"--{BOUNDARY}\r\nContent-Range: bytes 0-{size - 1}/{size}\r\n\r\n".encode()
    received = 0

    def sink(offset: int, data: bytes) -> None:
        nonlocal received
        assert offset == received
        received += len(data)

    parser = ByteRangesParser(BOUNDARY, Coverage([(0, size)]), sink)
    parser.feed(head)
    piece = b"\0" * 65536
    for _ in range(size // len(piece)):
        parser.feed(piece)
        assert len(parser._buf) == 0  # body bytes go straight through, never buffered
    parser.feed(f"\r\n--{BOUNDARY}--".encode())
    parser.finish()
    assert received == size


# -- the parser: bad bodies --------------------------------------------------------------------


def run_parser(body: bytes, asked: list[tuple[int, int]], cuts: list[int] | None = None) -> None:
    parser = ByteRangesParser(BOUNDARY, Coverage(asked), Collector())
    feed_split(parser, body, cuts or [])


@given(st.binary(min_size=1, max_size=500), st.integers(0, 10**6))
def test_truncated_body_raises(blob: bytes, cut: int) -> None:
    body = body_for(blob, [(0, len(blob))])
    end = len(body) - len(b"--\r\n")  # everything before the closing "--" is incomplete
    cut = cut % end
    parser = ByteRangesParser(BOUNDARY, Coverage([(0, len(blob))]), Collector())
    parser.feed(body[:cut])
    with pytest.raises(RangeError):
        parser.finish()


@settings(max_examples=300)
@given(
    st.binary(min_size=1, max_size=300),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=8)), min_size=1, max_size=5),
    st.lists(st.integers(0, 10**6), max_size=6),
)
def test_mutated_bodies_raise_only_range_error(
    blob: bytes, edits: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    half = len(blob) // 2
    ranges = [(0, half), (half, len(blob))] if half else [(0, len(blob))]
    body = bytearray(body_for(blob, ranges))
    for pos, insert in edits:
        pos %= len(body)
        body[pos : pos + len(insert) // 2] = insert  # overwrite, insert or delete bytes
    with contextlib.suppress(RangeError):
        run_parser(bytes(body), ranges, cuts)


@given(st.binary(max_size=2000), st.lists(st.integers(0, 10**6), max_size=6))
def test_garbage_raises_only_range_error(garbage: bytes, cuts: list[int]) -> None:
    with pytest.raises(RangeError):
        run_parser(garbage, [(0, 10)], cuts)


def part(start: int, last: int, total: str, payload: bytes, extra: str = "") -> bytes:
    head = f"--{BOUNDARY}\r\n{extra}Content-Range: bytes {start}-{last}/{total}\r\n\r\n"
    return head.encode() + payload


CLOSE = f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize(
    ("body", "asked"),
    [
        # body longer than its Content-Range says
        (part(0, 9, "100", b"x" * 15) + CLOSE, [(0, 10)]),
        # a range that was not asked
        (part(50, 59, "100", b"x" * 10) + CLOSE, [(0, 10)]),
        # partly outside what was asked
        (part(5, 14, "100", b"x" * 10) + CLOSE, [(0, 10)]),
        # only gap bytes between asked ranges
        (part(10, 19, "100", b"x" * 10) + CLOSE, [(0, 10), (20, 30)]),
        # the same bytes twice
        (part(0, 9, "100", b"x" * 10) + b"\r\n" + part(5, 9, "100", b"x" * 5) + CLOSE, [(0, 10)]),
        # parts disagree on the total size
        (part(0, 4, "100", b"x" * 5) + b"\r\n" + part(5, 9, "101", b"x" * 5) + CLOSE, [(0, 10)]),
        # lying total: last byte past the end
        (part(0, 9, "5", b"x" * 10) + CLOSE, [(0, 10)]),
        # no Content-Range
        (f"--{BOUNDARY}\r\nContent-Type: x\r\n\r\n".encode() + b"x" * 10 + CLOSE, [(0, 10)]),
        # two Content-Range headers
        (part(0, 9, "100", b"x" * 10, extra="Content-Range: bytes 0-9/100\r\n") + CLOSE, [(0, 10)]),
        # a header line without a colon
        (part(0, 9, "100", b"x" * 10, extra="garbage\r\n") + CLOSE, [(0, 10)]),
        # header block too long
        (part(0, 9, "100", b"x" * 10, extra="X: " + "y" * 9000 + "\r\n") + CLOSE, [(0, 10)]),
        # garbage after a boundary
        (f"--{BOUNDARY}junk\r\n".encode() + part(0, 9, "100", b"x" * 10) + CLOSE, [(0, 10)]),
        # no closing delimiter
        (part(0, 9, "100", b"x" * 10) + f"\r\n--{BOUNDARY}\r\n".encode(), [(0, 10)]),
        # a preamble that never ends
        (b"a" * 70000 + part(0, 9, "100", b"x" * 10) + CLOSE, [(0, 10)]),
    ],
)
def test_lying_or_malformed_parts(body: bytes, asked: list[tuple[int, int]]) -> None:
    with pytest.raises(RangeError):
        run_parser(body, asked)
    with pytest.raises(RangeError):
        run_parser(body, asked, cuts=list(range(0, len(body), 3)))


def test_sink_exception_propagates_unchanged() -> None:
    class Boom(Exception):
        pass

    def sink(offset: int, data: bytes) -> None:
        raise Boom

    parser = ByteRangesParser(BOUNDARY, Coverage([(0, 10)]), sink)
    with pytest.raises(Boom):
        parser.feed(body_for(bytes(10), [(0, 10)]))
