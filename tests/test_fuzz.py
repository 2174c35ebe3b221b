"""Fuzzing every parser of network input with *structured* inputs: valid files and headers
with one part changed, lies that are well-formed, and numbers at their bounds.

The per-parser test files already throw random bytes and single-byte flips at each parser
(test_multipart, test_fidx, test_fidx_v1, test_manifest, test_signing); random bytes rarely
get past the first check, so this file builds inputs that do. Properties, for every parser:

* only the project's own errors escape (``StitchError`` subclasses; a narrower class where
  the module documents one);
* nothing hangs: every example runs under a hypothesis deadline;
* nothing allocates beyond what the input justifies: ``tracemalloc`` peaks stay within a
  small multiple of the input size (or a constant, for the streaming multipart parser);
* whatever parses is self-consistent (the invariants the rest of the engine relies on).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import struct
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.fidx import HEADER_SIZE, FileIndex, decode, encode
from core.chunks.fidx_v1 import build_v1, parse_v1
from core.errors import FormatError, RangeError, SignatureError, StitchError
from core.formats import signing
from core.formats.manifest import (
    MAX_PATH_LENGTH,
    check_path,
    parse_manifest,
    parse_pointer,
    version_key,
)
from core.net.http import parse_retry_after
from core.net.multipart import (
    MAX_HEADER_BLOCK,
    MAX_OFFSET,
    MAX_PREAMBLE,
    ByteRangesParser,
    Coverage,
    multipart_boundary,
    parse_content_range,
)

T = TypeVar("T")

# A generous per-example deadline: a parser that loops or backtracks badly blows it.
FUZZ = settings(max_examples=200, deadline=timedelta(milliseconds=1000),
                suppress_health_check=[HealthCheck.too_slow])


def peak_of(fn: Callable[[], T]) -> tuple[T | BaseException, int]:
    """Run ``fn`` twice; return its second result (or the exception it raised) and the peak
    of memory allocated while it ran (bytes, as tracemalloc sees it). The first, untraced
    run pays for one-time costs (lazy imports, compiled regexes, strptime's tables)."""
    with contextlib.suppress(BaseException):  # the traced run below reports it
        fn()
    tracemalloc.start()
    try:
        try:
            result: T | BaseException = fn()
        except BaseException as e:  # returned, so the caller asserts on it outside the trace
            result = e
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def only(errors: type[BaseException] | tuple[type[BaseException], ...],
         result: object) -> None:
    """``result`` from ``peak_of`` is a value, or an exception of the allowed kinds."""
    if isinstance(result, BaseException) and not isinstance(result, errors):
        raise AssertionError(f"{type(result).__name__} escaped: {result}") from result


# -- Content-Range, boundaries, Retry-After -----------------------------------------------------

BOUNDS = [0, 1, 2, 9, 10, 2**31, 2**32, 2**63 - 2, 2**63 - 1, 2**63, 2**63 + 1, 2**64]
numbers = st.one_of(st.sampled_from(BOUNDS), st.integers(0, 10**6), st.integers(0, 2**70))


@st.composite
def content_range_values(draw: st.DrawFn) -> tuple[str, int, int, int | None]:
    first, last = draw(numbers), draw(numbers)
    total = draw(st.none() | numbers)
    unit = draw(st.sampled_from(["bytes", "BYTES", "Bytes", "byte", "items", ""]))
    space = draw(st.sampled_from([" ", "\t", "  ", "", " \t"]))
    zeros = draw(st.sampled_from(["", "0", "00"]))  # leading zeros are legal digits
    tail = draw(st.sampled_from(["", " ", "\t", ",", " junk", "/5", "\r\n"]))
    text = f"{unit}{space}{zeros}{first}-{last}/{'*' if total is None else total}{tail}"
    return text, first, last, total


@FUZZ
@given(content_range_values())
def test_content_range_accepts_only_what_it_can_promise(
        value: tuple[str, int, int, int | None]) -> None:
    text, first, last, total = value
    try:
        start, end, got_total = parse_content_range(text)
    except RangeError:
        return
    # What parses is exactly the numbers written, inside 64-bit offsets, and consistent.
    assert (start, end - 1, got_total) == (first, last, total)
    assert 0 <= start < end <= MAX_OFFSET
    assert got_total is None or end <= got_total <= MAX_OFFSET
    assert parse_content_range(f"bytes {start}-{end - 1}/{got_total or '*'}")[:2] == (start, end)


@st.composite
def content_types(draw: st.DrawFn) -> str:
    media = draw(st.sampled_from(["multipart/byteranges", "Multipart/ByteRanges",
                                  "multipart/mixed", "application/octet-stream"]))
    boundary = draw(st.text(max_size=90) | st.text(
        alphabet="0123456789abcXYZ'()+_,-./:=? ", min_size=1, max_size=80))
    quoted = draw(st.booleans())
    value = '"' + boundary.replace('"', '\\"') + '"' if quoted else boundary
    params = draw(st.lists(st.sampled_from(["charset=x", "a=b", "boundary=", "q"]), max_size=2))
    return "; ".join([media, *params, f"boundary={value}"])


@FUZZ
@given(content_types(), st.binary(min_size=1, max_size=300))
def test_any_boundary_accepted_really_frames_a_body(content_type: str, blob: bytes) -> None:
    try:
        boundary = multipart_boundary(content_type)
    except RangeError:
        return
    if boundary is None:
        assert not content_type.lower().startswith("multipart/byteranges")
        return
    assert 1 <= len(boundary) <= 70 and boundary.isascii() and not boundary.endswith(" ")
    # A boundary we accept must work: a body framed with it parses back to the bytes.
    got: dict[int, bytes] = {}
    parser = ByteRangesParser(boundary, Coverage([(0, len(blob))]),
                              lambda off, data: got.__setitem__(off, data))
    parser.feed(f"--{boundary}\r\nContent-Range: bytes 0-{len(blob) - 1}/{len(blob)}\r\n\r\n"
                .encode() + blob + f"\r\n--{boundary}--\r\n".encode())
    parser.finish()
    assert b"".join(got[k] for k in sorted(got)) == blob


@st.composite
def http_dates(draw: st.DrawFn) -> str:
    day = draw(st.sampled_from(["Mon", "Sun", "Xyz", ""]))
    month = draw(st.sampled_from(["Jan", "Feb", "Dec", "Foo", "jan"]))
    year = draw(st.sampled_from([0, 1, 69, 70, 99, 1994, 9999, 10000, 99999]))
    tz = draw(st.sampled_from(["GMT", "UTC", "+0000", "-2359", "+2359", "+9999", "", "EST"]))
    hms = ":".join(str(draw(st.integers(0, 99))) for _ in range(3))
    return f"{day}, {draw(st.integers(0, 99))} {month} {year} {hms} {tz}".strip()


@FUZZ
@given(st.one_of(
    st.text(max_size=40),
    http_dates(),
    # Characters str.isdigit() accepts but int() does not, and digits of other scripts.
    st.text(alphabet="0123456789²³¹٣०", min_size=1, max_size=25),
))
def test_retry_after_never_raises(value: str) -> None:
    delay = parse_retry_after(value)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


# -- multipart bodies that lie well ------------------------------------------------------------


@st.composite
def lying_bodies(draw: st.DrawFn) -> tuple[list[tuple[int, int]], bytes, int, bool]:
    """Asked ranges of a file, and a well-formed multipart body whose parts may lie: labels
    outside or across the asked ranges, overlapping or repeated parts, payloads longer or
    shorter than their label, totals that disagree. The flag: every payload has the length
    its label says."""
    size = draw(st.integers(1, 3000))
    cuts = sorted(draw(st.sets(st.integers(0, size), min_size=2, max_size=8)))
    asked = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
    assume(asked)
    blob = bytes(i % 251 for i in range(size))
    out = bytearray()
    exact = True
    for i in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):  # an honest part for one asked range, or a piece of one
            a, b = draw(st.sampled_from(asked))
            a2 = draw(st.integers(a, b - 1))
            label = (a2, draw(st.integers(a2 + 1, b)))
        else:  # anything at all
            a2 = draw(st.integers(0, size + 10))
            label = (a2, a2 + draw(st.integers(1, 200)))
        total = draw(st.sampled_from([size, size, size + 1, max(1, size - 1)]))
        length = label[1] - label[0] + draw(st.sampled_from([0, 0, 0, -1, 1, 7]))
        payload = (blob[label[0]:] + b"\0" * length)[:max(0, length)]
        exact = exact and len(payload) == label[1] - label[0]
        if i:
            out += b"\r\n"
        out += (f"--B\r\nContent-Range: bytes {label[0]}-{label[1] - 1}/{total}\r\n\r\n"
                .encode() + payload)
    out += b"\r\n--B--\r\n"
    return asked, bytes(out), size, exact


@FUZZ
@given(lying_bodies(), st.lists(st.integers(0, 10**5), max_size=5))
def test_lying_parts_never_deliver_unasked_or_repeated_bytes(
        case: tuple[list[tuple[int, int]], bytes, int, bool], cuts: list[int]) -> None:
    asked, body, size, exact = case
    blob = bytes(i % 251 for i in range(size))
    seen: dict[int, int] = {}

    def sink(offset: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            assert offset + i not in seen, "a byte delivered twice"
            seen[offset + i] = byte

    cov = Coverage(asked)
    parser = ByteRangesParser("B", cov, sink)
    points = sorted({c % (len(body) + 1) for c in cuts})
    try:
        prev = 0
        for p in [*points, len(body)]:
            parser.feed(body[prev:p])
            prev = p
        parser.finish()
    except RangeError:
        pass
    asked_set = {i for a, b in asked for i in range(a, b)}
    assert set(seen) <= asked_set  # never a byte that was not asked for
    assert cov.delivered_bytes == len(seen)  # coverage knows exactly what the sink got
    # Parts whose payload is as long as their label deliver exactly the labelled bytes. (A
    # part shorter than its label swallows framing as data: wrong bytes at asked offsets,
    # which is why the rebuild checks every chunk's id before writing it.)
    if exact:
        assert all(seen[i] == blob[i] for i in seen)


@settings(max_examples=30, deadline=timedelta(seconds=5))
@given(st.sampled_from(["preamble", "headers", "delimiter", "body"]),
       st.integers(256, 65536))
def test_multipart_memory_is_constant_whatever_the_body(where: str, piece: int) -> None:
    """Feed 1 MiB that never completes a state: the parser's memory stays bounded by its
    header limits, not by the body."""
    size = 1 << 30
    heads = {
        "preamble": b"",
        "headers": b"--B\r\nX-Long: ",
        "delimiter": b"--B",
        "body": f"--B\r\nContent-Range: bytes 0-{size - 1}/{size}\r\n\r\n".encode(),
    }
    filler = b"x" * piece

    def feed() -> None:
        parser = ByteRangesParser("B", Coverage([(0, size)]), lambda off, data: None)
        parser.feed(heads[where])
        for _ in range((1 << 20) // piece):
            parser.feed(filler)

    result, peak = peak_of(feed)
    only(RangeError, result)
    assert peak <= 4 * max(MAX_PREAMBLE, MAX_HEADER_BLOCK) + 4 * piece


# -- .fidx v2: valid headers with one field at a bound -----------------------------------------

SIZES = [0, 1, 63, 64, 255, 256, 1024, 4096, 1 << 20, (1 << 20) + 1, 4 << 20, 16 << 20,
         (16 << 20) + 1, 2**32 - 1]
HEADER = struct.Struct(">4sIBBHIIIQQ32sQ")


def _seal(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


@FUZZ
@given(
    st.sampled_from([b"FIDX", b"FIDY", b"\0\0\0\0"]), st.sampled_from([2, 2, 2, 1, 3]),
    st.sampled_from([1, 1, 0, 2]), st.integers(0, 4), st.sampled_from([0, 0, 1, 0x8000]),
    st.sampled_from(SIZES), st.sampled_from(SIZES), st.sampled_from(SIZES),
    st.sampled_from([0, 1, 2**64 - 1]),
    st.sampled_from([0, 1, 1000, 4096, 2**40, 2**40 + 1, 2**63, 2**64 - 1]),
    st.sampled_from([0, 1, 2, 3, 1000, 2**32, 2**61, 2**64 - 1]),
    st.lists(st.tuples(st.sampled_from(SIZES), st.binary(min_size=16, max_size=16)),
             max_size=4),
    st.booleans(),
)
def test_fidx_v2_header_fields_at_their_bounds(
        magic: bytes, version: int, chunker: int, norm: int, flags: int, min_size: int,
        avg_size: int, max_size: int, seed: int, file_size: int, count: int,
        records: list[tuple[int, bytes]], sealed: bool) -> None:
    header = HEADER.pack(magic, version, chunker, norm, flags, min_size, avg_size, max_size,
                         seed, file_size, bytes(32), count)
    body = header + b"".join(struct.pack(">I", n) + i for n, i in records)
    data = _seal(body) if sealed else body + bytes(32)
    result, peak = peak_of(lambda: decode(data))
    only(FormatError, result)
    # A header claiming 2**64 chunks allocates nothing for them: the input length rules.
    assert peak <= 2 * len(data) + 16384
    if isinstance(result, FileIndex):
        assert len(data) == HEADER_SIZE + 20 * len(result) + 32
        assert int(result.lengths.sum(dtype="uint64")) == result.file_size
        if len(result):
            assert int(result.lengths.max()) <= result.params.max_size


def _valid_v2() -> bytes:
    data = bytes((i * 7919) % 256 for i in range(20_000))
    params = ChunkerParams(256, 1024, 4096)
    return encode(FileIndex.from_chunks(params, chunk_bytes(data, params),
                                        hashlib.sha256(data).digest()))


VALID_V2 = _valid_v2()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6),
                          st.sampled_from([0, 1, 255, 256, 4096, 4097, 2**32 - 1])),
                min_size=1, max_size=4),
       st.integers(0, 2**64 - 1) | st.none(), st.integers(0, 1 << 41))
def test_fidx_v2_lying_records_are_refused(edits: list[tuple[int, int]],
                                           new_file_size: int | None,
                                           max_file_size: int) -> None:
    """Change chunk lengths (and maybe the file length) of a real index and re-seal it: the
    decoder refuses every lie; what it accepts still adds up."""
    body = bytearray(VALID_V2[:-32])
    n = struct.unpack_from(">Q", body, 72)[0]
    for pos, length in edits:
        struct.pack_into(">I", body, HEADER_SIZE + 20 * (pos % n), length)
    if new_file_size is not None:
        struct.pack_into(">Q", body, 32, new_file_size)
    data = _seal(bytes(body))
    result, peak = peak_of(lambda: decode(data, max_file_size))
    only(FormatError, result)
    assert peak <= 2 * len(data) + 16384
    if isinstance(result, FileIndex):
        lengths = result.lengths
        assert int(lengths.sum(dtype="uint64")) == result.file_size <= max_file_size
        assert int(lengths.min()) >= 1 and int(lengths.max()) <= 4096
        assert len(lengths) == 1 or int(lengths[:-1].min()) >= 256


# -- .fidx v1 ---------------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.integers(0, 65535),
                          st.integers(0, 65535)), max_size=50),
       st.sampled_from([bytes, bytearray, memoryview]),
       st.integers(-30, 30))
def test_fidx_v1_records_and_size_limit(records: list[tuple[bytes, int, int]],
                                        kind: type, slack: int) -> None:
    body = b"FIDX" + struct.pack(">I", 1) + b"".join(
        i + struct.pack(">HH", n, lv) for i, n, lv in records)
    raw = body + hashlib.sha1(body).digest()
    data = kind(raw)
    result, peak = peak_of(lambda: parse_v1(data, max_size=len(raw) + slack))
    only(FormatError, result)
    assert peak <= 3 * len(raw) + 16384
    if not isinstance(result, BaseException):
        assert slack >= 0 and all(n > 0 for _, n, _ in records)
        assert list(result.lengths) == [n for _, n, _ in records]
        assert result.ids == b"".join(i for i, _, _ in records)


def test_fidx_v1_real_index_survives_any_truncation_and_reseal() -> None:
    raw = build_v1(bytes((i * 31) % 256 for i in range(200_000)))
    for cut in range(28, len(raw), 7):
        body = raw[:cut]
        for candidate in (body, body[:-20] + hashlib.sha1(body[:-20]).digest()):
            result, _ = peak_of(lambda c=candidate: parse_v1(c, max_size=len(raw)))  # type: ignore[misc]
            only(FormatError, result)


# -- manifest and pointer: one field replaced by something hostile -------------------------------

H = "ab" * 32
hostile_values = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([-1, 0, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", ".", "..", "a/../b", "/etc/passwd", "C:\\x", "\\\\srv\\x", "a\0b",
                     "CON", "con.txt", "a/", "a//b", "a ", "a.", ".stitch/x", "x" * 5000,
                     "1.0.0", "2026-11-28T07:00:00Z", "9999-12-31T23:59:59Z",
                     "0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", H, H.upper(), "ab" * 31,
                     "stitch.release/1", "stitch.pointer/1", "ü" * 70, "é.pak"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=3),
)


def _manifest_obj() -> dict[str, Any]:
    files = [{"path": p, "size": s, "sha256": H, "fidx_sha256": H, "fidx_size": 112,
              "executable": x} for p, s, x in (("data/a.pak", 10, False),
                                               ("bin/game", 2**40, True), ("readme.txt", 0,
                                                                           False))]
    return {"format": "stitch.release/1", "product": "game", "channel": "stable",
            "version": "1.0.0", "created": "2026-11-28T07:00:00Z", "expires": None,
            "notes": "", "files": files}


MANIFEST_KEYS = ["format", "product", "channel", "version", "created", "expires", "notes",
                 "files_url", "files", "extra"]
FILE_KEYS = ["path", "size", "sha256", "fidx_sha256", "fidx_size", "executable"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["top", "file"]), st.integers(0, 20),
                          st.booleans(), hostile_values), min_size=1, max_size=3),
       st.integers(0, 2**41))
def test_manifest_with_hostile_fields(edits: list[tuple[str, int, bool, Any]],
                                      max_file_size: int) -> None:
    obj = _manifest_obj()
    for where, i, delete, value in edits:
        target = obj if where == "top" else obj["files"][i % 3] \
            if isinstance(obj.get("files"), list) and len(obj["files"]) == 3 else obj
        keys = MANIFEST_KEYS if target is obj else FILE_KEYS
        key = keys[i % len(keys)]
        if delete:
            target.pop(key, None)
        else:
            target[key] = value
    data = json.dumps(obj).encode()
    result, peak = peak_of(lambda: parse_manifest(data, max_file_size))
    only(StitchError, result)
    assert peak <= 64 * len(data) + (256 << 10)  # Python objects, bounded by the input
    if isinstance(result, BaseException):
        return
    m = result
    _key_or_format_error(m.version)
    m.expired()
    folded = [f.path.casefold() for f in m.files]
    assert len(set(folded)) == len(folded)
    for f in m.files:
        assert check_path(f.path) == f.path and len(f.path) <= MAX_PATH_LENGTH
        assert 0 <= f.size <= max_file_size and 0 <= f.fidx_size < 2**63
        assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
        assert isinstance(f.executable, bool)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=6)), min_size=1,
                max_size=4))
def test_manifest_text_edits(edits: list[tuple[int, bytes]]) -> None:
    """Byte edits of a real manifest's text (random bytes alone are rarely JSON)."""
    text = bytearray(json.dumps(_manifest_obj(), indent=2).encode())
    for pos, insert in edits:
        pos %= len(text) + 1
        text[pos:pos + len(insert) // 2] = insert
    result, _ = peak_of(lambda: parse_manifest(bytes(text)))
    only(StitchError, result)


@FUZZ
@given(st.sampled_from(["format", "version", "manifest", "sha256", "extra"]), st.booleans(),
       hostile_values)
def test_pointer_with_hostile_fields(key: str, delete: bool, value: Any) -> None:
    obj: dict[str, Any] = {"format": "stitch.pointer/1", "version": "1.0.0",
                           "manifest": "1.0.0/release.json", "sha256": H}
    if delete:
        obj.pop(key, None)
    else:
        obj[key] = value
    data = json.dumps(obj).encode()
    result, peak = peak_of(lambda: parse_pointer(data))
    only(StitchError, result)
    assert peak <= 64 * len(data) + (256 << 10)
    if not isinstance(result, BaseException):
        _key_or_format_error(result.version)
        assert check_path(result.manifest) == result.manifest
        assert len(result.sha256) == 64


@FUZZ
@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"),
       st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"))
def test_version_order_is_total_on_every_accepted_version(a: str, b: str) -> None:
    ka, kb = _key_or_format_error(a), _key_or_format_error(b)  # a name may be no version
    if ka is not None and kb is not None:
        assert (ka < kb) + (ka == kb) + (ka > kb) == 1


def _key_or_format_error(version: str) -> object:
    """The sort key of ``version``, or None when it is not a version: any name a manifest
    may hold is either, never another error."""
    try:
        return version_key(version)
    except FormatError:
        return None


@pytest.mark.parametrize("parse", [parse_manifest, parse_pointer])
def test_huge_json_integer_is_a_format_error(parse: Callable[[bytes], object]) -> None:
    with pytest.raises(FormatError):
        parse(b'{"format": ' + b"9" * 5000 + b"}")


# -- minisign signatures and keys: well-formed lines with hostile contents -----------------------

SECRET, PUBLIC = signing.generate_keypair()
KEY = signing.load_secret_key(SECRET, None)
PUB = signing.parse_public_key(PUBLIC)
MESSAGE = json.dumps(_manifest_obj(), indent=2).encode()
GOOD_SIG = signing.sign(MESSAGE, KEY, "stitch release game stable 1.0.0")


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


@st.composite
def signature_files(draw: st.DrawFn) -> bytes:
    comment, sig_line, trusted, global_line = GOOD_SIG.split(b"\n")[:4]
    sig_raw = base64.b64decode(sig_line)
    line = draw(st.integers(0, 3))
    how = draw(st.sampled_from(["alg", "keyid", "sig", "b64len", "text", "crlf", "extra",
                                "missing", "nul", "long"]))
    lines = [comment, sig_line, trusted, global_line]
    if how == "alg":
        lines[1] = _b64(draw(st.sampled_from([b"Ed", b"ED", b"EE", b"\0\0"])) + sig_raw[2:])
    elif how == "keyid":
        lines[1] = _b64(sig_raw[:2] + draw(st.binary(min_size=8, max_size=8)) + sig_raw[10:])
    elif how == "sig":
        lines[1 if line < 2 else 3] = _b64(
            (sig_raw[:10] if line < 2 else b"") + draw(st.binary(min_size=64, max_size=64)))
    elif how == "b64len":
        lines[line] = _b64(draw(st.binary(max_size=120)))
    elif how == "text":
        lines[line] = draw(st.binary(max_size=80))
    elif how == "crlf":
        lines = [x + draw(st.sampled_from([b"\r", b"", b" "])) for x in lines]
    elif how == "extra":
        lines.insert(draw(st.integers(0, 4)), draw(st.binary(max_size=20)))
    elif how == "missing":
        del lines[line]
    elif how == "nul":
        lines[line] = lines[line][:5] + b"\0" + lines[line][5:]
    else:
        lines[line] = lines[line][:20] + b"A" * draw(st.sampled_from([1000, 9000, 20000]))
    return b"\n".join(lines) + b"\n"


@FUZZ
@given(signature_files(), st.booleans())
def test_hostile_signature_files_raise_signature_error(sig: bytes, two_keys: bool) -> None:
    other = signing.parse_public_key(signing.generate_keypair()[1])
    keys = [other, PUB] if two_keys else [PUB]
    result, peak = peak_of(lambda: signing.verify(MESSAGE, sig, keys))
    only(SignatureError, result)
    assert peak <= 4 * len(sig) + 65536
    if not isinstance(result, BaseException):
        # Only the untrusted comment, line endings and trailing blank lines may differ from
        # what was signed; the signature, key id and trusted comment must be the original.
        want = [x.rstrip(b"\r") for x in GOOD_SIG.split(b"\n")[1:4]]
        got = [x.rstrip(b"\r") for x in sig.split(b"\n")[1:4]]
        assert got == want and result.key_id == PUB.key_id


@FUZZ
@given(st.integers(0, len(MESSAGE)), st.binary(min_size=1, max_size=8), st.booleans())
def test_any_change_to_the_signed_bytes_is_refused(pos: int, insert: bytes,
                                                   replace: bool) -> None:
    message = bytearray(MESSAGE)
    message[pos:pos + (len(insert) if replace else 0)] = insert
    assume(bytes(message) != MESSAGE)
    with pytest.raises(SignatureError):
        signing.verify(bytes(message), GOOD_SIG, [PUB])


@FUZZ
@given(st.sampled_from(["", "\r", " ", "\t"]), st.sampled_from(["", "\n", "\n\n", "\r\n"]),
       st.booleans(), st.binary(max_size=20), st.integers(0, 2))
def test_public_key_layouts(eol: str, tail: str, comment: bool, junk: bytes, where: int) -> None:
    line = PUB.b64()
    text = (f"untrusted comment: k{eol}\n" if comment else "") + line + eol + tail
    raw = text.encode()
    if where == 1:
        raw = raw + junk
    elif where == 2:
        raw = junk + raw
    result, peak = peak_of(lambda: signing.parse_public_key(raw))
    only(FormatError, result)
    assert peak <= 8 * len(raw) + 65536
    if not isinstance(result, BaseException):
        assert result == PUB  # a key that parses is the key that was written


@settings(max_examples=20, deadline=timedelta(seconds=2))
@given(st.integers(16 * 1024 + 1, 4 << 20))
def test_oversized_signature_and_key_are_refused_without_copying(size: int) -> None:
    blob = b"A" * size
    for fn, err in ((lambda: signing.verify(MESSAGE, blob, [PUB]), SignatureError),
                    (lambda: signing.parse_public_key(blob), FormatError)):
        result, peak = peak_of(fn)
        assert isinstance(result, err)
        assert peak <= 65536  # refused on its length, before splitting or decoding
