"""core.chunks.fidx_v1: bupdate's .fidx v1 against the vectors, round trips, and a fuzzed parser.

Vectors come from ``tests/vectors/bupsplit.json`` (see ``tests/vectors/README.md``).
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import tracemalloc
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chunks.fidx_v1 import (
    IndexV1,
    build_v1,
    encode_v1,
    git_blob_id,
    index_file_v1,
    parse_v1,
)
from core.chunks.rollsum import split_lengths
from core.errors import FormatError

VECTORS = Path(__file__).resolve().parent / "vectors"
WORKED_INPUT = b"".join(b"%d\n" % x for x in range(10000))
BIG = 1 << 30  # a max_size that never binds


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "bupsplit.json").read_text())
    return data


def seal(body: bytes) -> bytes:
    """Append the SHA-1 trailer, so a test reaches the checks behind it."""
    return body + hashlib.sha1(body).digest()


def header(version: int = 1) -> bytes:
    return b"FIDX" + struct.pack(">I", version)


# --- vectors ----------------------------------------------------------------------------


def test_empty_file_vector(vectors: dict[str, Any], tmp_path: Path) -> None:
    expected = bytes.fromhex(vectors["empty_file_fidx_v1_hex"])
    assert build_v1(b"") == expected
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert index_file_v1(path) == expected
    assert build_v1(str(path)) == expected
    index = parse_v1(expected, max_size=len(expected))
    assert len(index) == 0 and index.ids == b"" and index.total_size == 0
    assert list(index.offsets()) == []


def test_worked_example(vectors: dict[str, Any], tmp_path: Path) -> None:
    example = vectors["worked_example"]
    fidx = build_v1(WORKED_INPUT)
    assert len(fidx) == example["fidx_v1_size"]
    assert fidx[-20:].hex() == example["fidx_v1_trailer_sha1"]
    assert hashlib.sha1(fidx[:-20]).hexdigest() == example["fidx_v1_trailer_sha1"]
    # The records byte for byte: id, u16 size, u16 level 0.
    records = b"".join(
        bytes.fromhex(blob_id) + struct.pack(">HH", length, 0)
        for length, blob_id in example["chunks"]
    )
    assert fidx == seal(header() + records)

    path = tmp_path / "numbers.txt"
    path.write_bytes(WORKED_INPUT)
    assert index_file_v1(path) == fidx
    assert build_v1(path) == fidx

    index = parse_v1(fidx, max_size=len(fidx))
    assert list(index.lengths) == [length for length, _ in example["chunks"]]
    assert [index.chunk_id(i).hex() for i in range(len(index))] == [
        blob_id for _, blob_id in example["chunks"]
    ]
    assert list(index.levels) == [0] * len(index)
    assert index.total_size == len(WORKED_INPUT)
    assert list(index.offsets()) == [0, 5087, 9137, 13990, 46758]
    assert encode_v1(index) == fidx


def test_git_blob_id() -> None:
    # `git hash-object /dev/null` and `printf abc | git hash-object --stdin`
    assert git_blob_id(b"").hex() == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_id(b"abc").hex() == "f2ba8f84ab5c1bce84a7b441cb1959cfc7093b7f"


# --- round trips ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=100_000) | st.builds(bytes, st.integers(0, 100_000)))
def test_round_trip(data: bytes) -> None:
    fidx = build_v1(data)
    index = parse_v1(fidx, max_size=len(fidx))
    assert index.lengths == split_lengths(data)
    assert index.total_size == len(data)
    offsets = index.offsets()
    for i in range(len(index)):
        piece = data[offsets[i] : offsets[i] + index.lengths[i]]
        assert index.chunk_id(i) == git_blob_id(piece)
    assert encode_v1(index) == fidx


def test_levels_round_trip() -> None:
    # Levels are carried through encode and parse unchanged.
    lengths = array("I", [8, 8, 3])
    levels = array("H", [2, 3, 0])
    ids = b"".join(hashlib.sha1(bytes([i])).digest() for i in range(3))
    fidx = encode_v1(IndexV1(lengths=lengths, ids=ids, levels=levels))
    assert parse_v1(fidx, max_size=BIG) == IndexV1(lengths=lengths, ids=ids, levels=levels)


def test_real_levels_are_written(vectors: dict[str, Any]) -> None:
    data = bytes.fromhex(vectors["split_vectors_hex"]["26"]) + bytes.fromhex(
        vectors["split_vectors_hex"]["22"]
    )
    index = parse_v1(build_v1(data), max_size=BIG)
    assert list(index.lengths) == [8, 8]
    assert list(index.levels) == [3, 2]


def test_encode_rejects_bad_index() -> None:
    one_id = bytes(20)
    with pytest.raises(ValueError):
        encode_v1(IndexV1(array("I", [0]), one_id, array("H", [0])))
    with pytest.raises(ValueError):
        encode_v1(IndexV1(array("I", [65536]), one_id, array("H", [0])))
    with pytest.raises(ValueError):
        encode_v1(IndexV1(array("I", [1, 2]), one_id, array("H", [0, 0])))
    assert len(encode_v1(IndexV1(array("I", [65535]), one_id, array("H", [0])))) == 52


# --- rejections -------------------------------------------------------------------------

GOOD = build_v1(WORKED_INPUT)


def test_rejects_oversized_before_decoding() -> None:
    with pytest.raises(FormatError, match="more than"):
        parse_v1(GOOD, max_size=len(GOOD) - 1)
    with pytest.raises(FormatError, match="more than"):
        parse_v1(b"garbage" * 1000, max_size=100)


def test_rejects_every_truncation() -> None:
    for cut in range(len(GOOD)):
        with pytest.raises(FormatError):
            parse_v1(GOOD[:cut], max_size=BIG)


def test_rejects_padding() -> None:
    with pytest.raises(FormatError):
        parse_v1(GOOD + b"\0", max_size=BIG)
    with pytest.raises(FormatError, match="whole number"):
        parse_v1(seal(GOOD[:-20] + b"\0"), max_size=BIG)


def test_rejects_wrong_magic_and_version() -> None:
    with pytest.raises(FormatError, match="magic"):
        parse_v1(seal(b"FIDY" + GOOD[4:-20]), max_size=BIG)
    for version in (0, 2, 0x01000000):
        with pytest.raises(FormatError, match="version"):
            parse_v1(seal(header(version) + GOOD[8:-20]), max_size=BIG)


def test_rejects_bad_trailer() -> None:
    for pos in (0, 8, 30, len(GOOD) - 21, len(GOOD) - 1):
        bad = bytearray(GOOD)
        bad[pos] ^= 0x01
        with pytest.raises(FormatError):
            parse_v1(bytes(bad), max_size=BIG)


def test_rejects_zero_length_chunk() -> None:
    body = header() + bytes(20) + struct.pack(">HH", 10, 0) + bytes(20) + struct.pack(">HH", 0, 0)
    with pytest.raises(FormatError, match="chunk 1 has length 0"):
        parse_v1(seal(body), max_size=BIG)


def test_accepts_sizes_up_to_u16_max() -> None:
    body = header() + bytes(20) + struct.pack(">HH", 65535, 7)
    index = parse_v1(seal(body), max_size=BIG)
    assert list(index.lengths) == [65535] and list(index.levels) == [7]


def test_accepts_buffer_types() -> None:
    expected = parse_v1(GOOD, max_size=BIG)
    assert parse_v1(bytearray(GOOD), max_size=BIG) == expected
    assert parse_v1(memoryview(GOOD), max_size=BIG) == expected


# --- fuzz -------------------------------------------------------------------------------


def check_parse(data: bytes) -> None:
    """Only FormatError escapes, and what comes out is no bigger than the input implies."""
    try:
        index = parse_v1(data, max_size=BIG)
    except FormatError:
        return
    n = (len(data) - 28) // 24
    assert len(index) == n and len(index.ids) == 20 * n and len(index.levels) == n
    assert all(1 <= length <= 65535 for length in index.lengths)
    assert encode_v1(index) == data


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    check_parse(data)


@settings(max_examples=500)
@given(
    st.binary(max_size=200),
    st.sampled_from([b"FIDX", b"FIDY", b""]),
    st.integers(0, 3),
    st.booleans(),
)
def test_fuzz_sealed(records: bytes, magic: bytes, version: int, sealed: bool) -> None:
    # A valid trailer gets the fuzz past the SHA-1 check into the record checks.
    body = magic + struct.pack(">I", version) + records
    check_parse(seal(body) if sealed else body)


@settings(max_examples=300)
@given(st.data())
def test_fuzz_mutated(data: st.DataObject) -> None:
    raw = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    body = bytes(raw[:cut])
    check_parse(body)
    if len(body) >= 20:
        check_parse(seal(body[:-20]))


def test_parse_memory_is_bounded_by_input() -> None:
    rnd = random.Random(1)
    n = 40_000
    body = header() + b"".join(
        rnd.randbytes(20) + struct.pack(">HH", rnd.randrange(1, 65536), 0) for _ in range(n)
    )
    fidx = seal(body)
    tracemalloc.start()
    try:
        index = parse_v1(fidx, max_size=len(fidx))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == n
    assert peak < 2 * len(fidx)  # ids copied out once, plus small per-chunk arrays
