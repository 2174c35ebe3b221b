"""core.chunks.rollsum: bupsplit vectors, and the numpy fast path against the pure-Python reference.

Vectors come from ``tests/vectors/bupsplit.json`` (see ``tests/vectors/README.md``).
Throughput is measured apart, by ``tests/bench/rollsum_speed.py``.
"""

from __future__ import annotations

import hashlib
import json
import random
import tracemalloc
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chunks import rollsum
from core.chunks.rollsum import (
    MAX_CHUNK,
    iter_chunks,
    level_of,
    rollsum_digest,
    split_file,
    split_lengths,
    split_points_reference,
)

VECTORS = Path(__file__).resolve().parent / "vectors"
WORKED_INPUT = b"".join(b"%d\n" % x for x in range(10000))


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "bupsplit.json").read_text())
    return data


def _split_vector_inputs() -> list[bytes]:
    data = json.loads((VECTORS / "bupsplit.json").read_text())
    return [bytes.fromhex(h) for h in data["split_vectors_hex"].values()]


def fast_points(data: rollsum.Buffer) -> list[tuple[int, int]]:
    return [(offset + length, level) for offset, length, level in iter_chunks(data)]


def trailing_ones(n: int) -> int:
    count = 0
    while n & 1:
        n >>= 1
        count += 1
    return count


# --- vectors ----------------------------------------------------------------------------


def test_digest_vectors(vectors: dict[str, Any]) -> None:
    inputs = {"": b"", "abc": b"abc", "64 zero bytes": bytes(64)}
    assert set(vectors["rollsum_digest"]) == set(inputs)
    for name, expected in vectors["rollsum_digest"].items():
        assert rollsum_digest(inputs[name]) == int(expected, 16), name


def test_split_vectors(vectors: dict[str, Any]) -> None:
    # Each key is the number of low one-bits of the input's digest; the only cut is at the end.
    expected_levels = {"13": 0, "14": 0, "15": 0, "16": 0, "17": 0, "22": 2, "26": 3}
    assert set(vectors["split_vectors_hex"]) == set(expected_levels)
    for key, hexdata in vectors["split_vectors_hex"].items():
        data = bytes.fromhex(hexdata)
        digest = rollsum_digest(data)
        assert trailing_ones(digest) == int(key)
        assert level_of(digest) == expected_levels[key]
        expected = [(len(data), expected_levels[key])]
        assert split_points_reference(data) == expected, key
        assert fast_points(data) == expected, key
        assert list(split_lengths(data)) == [len(data)]


def test_level_rule_skips_bit_13() -> None:
    assert level_of(0x1FFF) == 0
    assert level_of(0x3FFF) == 0  # bit 13 set: skipped, not counted
    assert level_of(0x1FFF | 0xF << 14) == 1  # four ones above bit 13
    assert level_of(0x1FFF | 0xF << 14 | 1 << 13) == 1
    assert level_of(0x1FFF | 0xFF << 14) == 2
    assert level_of(0xFFFFFFFF) == 4  # 18 bits above 13, over 4


def test_worked_example(vectors: dict[str, Any]) -> None:
    assert len(WORKED_INPUT) == 48890
    chunks = list(iter_chunks(WORKED_INPUT))
    expected = vectors["worked_example"]["chunks"]
    assert [length for _, length, _ in chunks] == [length for length, _ in expected]
    for (offset, length, level), (_, blob_id) in zip(chunks, expected, strict=True):
        piece = WORKED_INPUT[offset : offset + length]
        assert hashlib.sha1(b"blob %d\0" % length + piece).hexdigest() == blob_id
        assert level == 0
    assert fast_points(WORKED_INPUT) == split_points_reference(WORKED_INPUT)
    lengths = split_lengths(WORKED_INPUT)
    assert isinstance(lengths, array) and lengths.typecode == "I"
    assert list(lengths) == [length for length, _ in expected]


def test_worked_example_from_file(tmp_path: Path) -> None:
    path = tmp_path / "numbers.txt"
    path.write_bytes(WORKED_INPUT)
    assert list(split_file(path)) == list(iter_chunks(WORKED_INPUT))


def test_empty() -> None:
    assert split_points_reference(b"") == []
    assert list(iter_chunks(b"")) == []
    assert list(split_lengths(b"")) == []


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert list(split_file(path)) == []


def test_forced_cuts_on_zeros() -> None:
    # All-zero windows never give the split bits: only 32 KiB forced cuts, level 0.
    data = bytes(3 * MAX_CHUNK + 1696)
    expected = [(MAX_CHUNK * (i + 1), 0) for i in range(3)] + [(len(data), 0)]
    assert split_points_reference(data) == expected
    assert fast_points(data) == expected


def test_inputs_types() -> None:
    data = random.Random(7).randbytes(50_000)
    expected = fast_points(data)
    assert fast_points(bytearray(data)) == expected
    assert fast_points(memoryview(data)) == expected


# --- fast path == reference -------------------------------------------------------------

# Pieces that make cut points dense: inputs ending on a split, zero runs, short repeats.
_PIECES = [*_split_vector_inputs(), bytes(64), bytes(100), b"\xff" * 70, b"ab" * 40, b"\x01"]

crafted = st.lists(
    st.one_of(
        st.sampled_from(_PIECES),
        st.binary(max_size=200),
        st.tuples(st.binary(min_size=1, max_size=8), st.integers(1, 300)).map(
            lambda t: t[0] * t[1]
        ),
    ),
    max_size=60,
).map(b"".join)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=40_000))
def test_fast_matches_reference_random(data: bytes) -> None:
    assert fast_points(data) == split_points_reference(data)


@settings(max_examples=300, deadline=None)
@given(crafted)
def test_fast_matches_reference_crafted(data: bytes) -> None:
    assert fast_points(data) == split_points_reference(data)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1), st.binary(max_size=100))
def test_fast_matches_reference_long_runs(runs: int, seed: int, tail: bytes) -> None:
    # Long chunk-less stretches (forced cuts) mixed with random data that has real splits.
    rnd = random.Random(seed)
    data = b"".join(bytes(rnd.randrange(MAX_CHUNK * 2)) + rnd.randbytes(9000) for _ in range(runs))
    data += tail
    assert fast_points(data) == split_points_reference(data)


@pytest.mark.parametrize("block", [1, 97, 4096, 40_000])
def test_block_boundaries(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    # Real blocks are 2 MiB; tiny ones make every chunk cross a block edge.
    rnd = random.Random(block)
    data = rnd.randbytes(60_000) + bytes(70_000) + b"".join(_PIECES) * 30 + rnd.randbytes(5000)
    expected = split_points_reference(data)
    monkeypatch.setattr(rollsum, "_BLOCK", block)
    assert fast_points(data) == expected


def test_real_block_size_crossing(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(rollsum._BLOCK * 2 + 12_345)
    expected = split_points_reference(data)
    assert fast_points(data) == expected
    path = tmp_path / "big"
    path.write_bytes(data)
    got = list(split_file(path))
    assert [(o + n, lv) for o, n, lv in got] == expected
    assert all(1 <= n <= MAX_CHUNK for _, n, _ in got)


def test_split_file_memory_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "sparse"
    with path.open("wb") as f:
        f.truncate(256 << 20)  # sparse: 256 MiB of zeros without writing them
    tracemalloc.start()
    try:
        count = total = 0
        for _, length, level in split_file(path):
            count += 1
            total += length
            assert level == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 256 << 20 and count == (256 << 20) // MAX_CHUNK
    assert peak < 64 << 20


def test_split_file_closed_early(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(random.Random(5).randbytes(100_000))
    chunks = split_file(path)
    first = next(chunks)
    chunks.close()  # must release the map without BufferError
    assert first == next(iter_chunks(path.read_bytes()))
