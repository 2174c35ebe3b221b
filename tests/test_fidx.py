"""``.fidx`` v2: the worked example in docs/format.md byte for byte, round trips, and a
decoder that rejects every kind of bad input with FormatError only."""

from __future__ import annotations

import contextlib
import hashlib
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.fidx import HEADER_SIZE, FileIndex, decode, encode
from core.errors import FormatError
from tests.conftest import spec_example

EXAMPLE_INPUT = b"".join(b"%d\n" % x for x in range(600))
EXAMPLE_PARAMS = ChunkerParams(256, 1024, 2048)


def _index(data: bytes, params: ChunkerParams = EXAMPLE_PARAMS) -> FileIndex:
    return FileIndex.from_chunks(params, chunk_bytes(data, params), hashlib.sha256(data).digest())


def _example_from_spec() -> bytes:
    return spec_example("worked-example")


def test_worked_example_matches_the_spec_byte_for_byte() -> None:
    spec = _example_from_spec()
    assert encode(_index(EXAMPLE_INPUT)) == spec
    idx = decode(spec)
    assert idx.lengths.tolist() == [2048, 242]
    assert idx.file_size == len(EXAMPLE_INPUT)
    assert idx.sha256 == hashlib.sha256(EXAMPLE_INPUT).digest()
    assert idx.params == EXAMPLE_PARAMS


def test_round_trip_and_offsets() -> None:
    data = bytes(range(256)) * 400 + b"tail"
    idx = decode(encode(_index(data, ChunkerParams(64, 256, 1024))))
    offsets = idx.offsets()
    assert offsets[0] == 0 and offsets[-1] == len(data)
    assert np.all(np.diff(offsets.astype(np.int64)) == idx.lengths)


def test_empty_file_index() -> None:
    idx = decode(encode(_index(b"")))
    assert len(idx) == 0 and idx.file_size == 0


def _resign(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    body = bytearray(data[:-32])
    struct.pack_into(fmt, body, offset, value)
    return _resign(bytes(body))


GOOD = encode(_index(EXAMPLE_INPUT))


@pytest.mark.parametrize(
    "bad,why",
    [
        (GOOD[:-1], "truncated"),
        (GOOD + b"\0", "trailing byte"),
        (b"FIDY" + GOOD[4:], "magic"),
        (_patch(GOOD, 4, ">I", 3), "version"),
        (_patch(GOOD, 4, ">I", 1), "v1 is a different format"),
        (_patch(GOOD, 8, ">B", 2), "unknown chunker"),
        (_patch(GOOD, 10, ">H", 1), "flags"),
        (_patch(GOOD, 16, ">I", 1000), "avg not a power of two"),
        (_patch(GOOD, 20, ">I", 1 << 30), "max too large"),
        (_patch(GOOD, 32, ">Q", 2291), "length does not add up"),
        (_patch(GOOD, 32, ">Q", 1 << 62), "length over the ceiling"),
        (_patch(GOOD, 72, ">Q", 3), "count does not fit the input"),
        (_patch(GOOD, 72, ">Q", 1 << 60), "huge count"),
        (_patch(GOOD, 80, ">I", 4096), "chunk over max"),
        (_patch(GOOD, 80, ">I", 0), "zero-length chunk"),
        (GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "trailer"),
        (GOOD[:90] + bytes([GOOD[90] ^ 1]) + GOOD[91:], "flipped id byte, trailer catches it"),
    ],
)
def test_decoder_rejects(bad: bytes, why: str) -> None:
    with pytest.raises(FormatError):
        decode(bad)


def test_short_chunk_before_the_last_is_a_lie() -> None:
    body = bytearray(GOOD[:-32])
    struct.pack_into(">I", body, HEADER_SIZE, 100)  # first chunk 100 < min 256
    struct.pack_into(">I", body, HEADER_SIZE + 20, 2190)  # keeps the sum, breaks max
    with pytest.raises(FormatError):
        decode(_resign(bytes(body)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_only_format_error(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        decode(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOOD) - 33), st.integers(1, 255))
def test_fuzz_mutations_with_valid_trailer(pos: int, xor: int) -> None:
    body = bytearray(GOOD[:-32])
    body[pos] ^= xor
    try:
        idx = decode(_resign(bytes(body)))
    except FormatError:
        return
    # Whatever still parses must be self-consistent.
    assert int(idx.lengths.sum()) == idx.file_size
