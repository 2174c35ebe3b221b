"""FastCDC 2020 cut points against the reference vectors, and chunk_file == chunk_bytes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core.chunker as chunker
from core.chunker import DEFAULT_PARAMS, ChunkerParams, chunk_bytes, chunk_file
from core.errors import CancelledError
from core.progress import CancelToken
from tests.conftest import VECTORS


def _cases() -> list[dict[str, object]]:
    return json.loads((VECTORS / "fastcdc2020.json").read_text())["cases"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "case", _cases(), ids=lambda c: f"{c['min']}-{c['avg']}-{c['max']}-s{c['seed']}"
)
def test_reference_vectors(case: dict[str, int | list[int]]) -> None:
    data = (VECTORS / "SekienAkashita.jpg").read_bytes()
    params = ChunkerParams(case["min"], case["avg"], case["max"], 1, case["seed"])  # type: ignore[arg-type]
    chunks = chunk_bytes(data, params)
    assert chunks.lengths.tolist() == case["lengths"]


def test_chunk_ids_are_xxh3_128_of_the_chunk() -> None:
    import xxhash

    data = (VECTORS / "SekienAkashita.jpg").read_bytes()
    chunks = chunk_bytes(data, ChunkerParams(4096, 16384, 65535))
    pos = 0
    for length, cid in zip(chunks.lengths.tolist(), chunks.ids, strict=True):
        assert bytes(cid) == xxhash.xxh3_128_digest(data[pos : pos + length])
        pos += length
    assert pos == len(data)


@pytest.mark.parametrize("slice_size", [300_000, 1 << 20])
def test_chunk_file_matches_one_pass_across_slices(
    tmp_path: Path, slice_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small slices force many window edges; the cut points must not change.
    monkeypatch.setattr(chunker, "_SLICE", slice_size)
    data = os.urandom(2_500_000) + bytes(300_000) + os.urandom(700_001)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    a = chunk_bytes(data, DEFAULT_PARAMS)
    b, sha = chunk_file(path, DEFAULT_PARAMS)
    assert a.lengths.tolist() == b.lengths.tolist()
    assert a.ids.tobytes() == b.ids.tobytes()
    assert sha == hashlib.sha256(data).digest()
    assert int(b.lengths.sum()) == len(data)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    chunks, sha = chunk_file(path, DEFAULT_PARAMS)
    assert len(chunks) == 0
    assert sha == hashlib.sha256(b"").digest()


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=20_000))
def test_chunks_cover_input_and_respect_bounds(data: bytes) -> None:
    p = ChunkerParams(64, 256, 1024)
    lengths = chunk_bytes(data, p).lengths.tolist()
    assert sum(lengths) == len(data)
    assert all(0 < n <= p.max_size for n in lengths)
    assert all(n >= p.min_size for n in lengths[:-1])


def test_content_defined_cuts_resynchronise_after_an_insert() -> None:
    data = os.urandom(1_000_000)
    edited = data[:400_000] + b"inserted bytes" + data[400_000:]
    a = {bytes(i) for i in chunk_bytes(data, DEFAULT_PARAMS).ids}
    b = [bytes(i) for i in chunk_bytes(edited, DEFAULT_PARAMS).ids]
    new = [i for i in b if i not in a]
    assert 1 <= len(new) <= 3  # only the chunks around the insert are new


@pytest.mark.parametrize(
    "bad",
    [
        ChunkerParams(32, 256, 1024),
        ChunkerParams(64, 300, 1024),
        ChunkerParams(64, 256, 100),
        ChunkerParams(512, 256, 1024),
        ChunkerParams(64, 256, 1024, normalization=4),
    ],
)
def test_invalid_params_are_refused(bad: ChunkerParams) -> None:
    with pytest.raises(ValueError):
        bad.validate()


# Parallel segments: the cut points and ids must be exactly those of one sequential pass.

def _segmented(monkeypatch: pytest.MonkeyPatch, min_segment: int) -> None:
    monkeypatch.setattr(chunker, "MIN_SEGMENT", min_segment)
    monkeypatch.setattr(chunker, "_SMALL", 0)  # always the mapped, threaded path
    monkeypatch.setattr(chunker, "_SLICE", 4096)  # many window edges (raised to 2 x max)


def _game_like(rng: random.Random, size: int) -> bytes:
    """Random runs, zero runs (cut only by max_size, so seams may not meet soon), and a
    repeated block (identical chunks)."""
    out = bytearray()
    block = rng.randbytes(rng.randrange(1, 5000))
    while len(out) < size:
        kind = rng.randrange(3)
        n = rng.randrange(1, 40_000)
        out += rng.randbytes(n) if kind == 0 else bytes(n) if kind == 1 else block
    return bytes(out[:size])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 400_000),
    segments=st.integers(2, 6),
    min_size=st.sampled_from([64, 256, 1024]),
    avg_exp=st.integers(8, 12),
    max_mul=st.sampled_from([2, 4, 8]),
    norm=st.integers(0, 3),
    gear_seed=st.sampled_from([0, 1, 666]),
)
def test_segmented_chunk_file_equals_one_pass(
    seed: int, size: int, segments: int, min_size: int, avg_exp: int, max_mul: int,
    norm: int, gear_seed: int,
) -> None:
    avg = max(1 << avg_exp, min_size)
    params = ChunkerParams(min_size, avg, max(1024, avg * max_mul), norm, gear_seed)
    params.validate()
    data = _game_like(random.Random(seed), size)
    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as d:
        _segmented(mp, 1)
        path = Path(d) / "f.bin"
        path.write_bytes(data)
        got, sha = chunk_file(path, params, segments=segments)
    want = chunk_bytes(data, params)
    assert got.lengths.tolist() == want.lengths.tolist()
    assert got.ids.tobytes() == want.ids.tobytes()
    assert sha == hashlib.sha256(data).digest()


@pytest.mark.parametrize("segments", [2, 3, 7])
@pytest.mark.parametrize(
    "case", _cases(), ids=lambda c: f"{c['min']}-{c['avg']}-{c['max']}-s{c['seed']}"
)
def test_reference_vectors_in_segments(
    case: dict[str, int | list[int]], segments: int, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _segmented(monkeypatch, 1)
    path = tmp_path / "img.jpg"
    path.write_bytes((VECTORS / "SekienAkashita.jpg").read_bytes())
    params = ChunkerParams(case["min"], case["avg"], case["max"], 1, case["seed"])  # type: ignore[arg-type]
    chunks, _ = chunk_file(path, params, segments=segments)
    assert chunks.lengths.tolist() == case["lengths"]


def test_segment_seams_that_meet_only_after_a_long_zero_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every segment edge falls inside zeros, where cuts come every max_size from wherever
    # a pass started: the seam is re-cut across the zeros until content brings them together.
    _segmented(monkeypatch, 1)
    rng = random.Random(7)
    data = rng.randbytes(50_000) + bytes(1_000_003) + rng.randbytes(30_000) + bytes(77_777)
    path = tmp_path / "z.bin"
    path.write_bytes(data)
    want = chunk_bytes(data, DEFAULT_PARAMS)
    for segments in (2, 5, 16):
        got, sha = chunk_file(path, DEFAULT_PARAMS, segments=segments)
        assert got.lengths.tolist() == want.lengths.tolist()
        assert got.ids.tobytes() == want.ids.tobytes()
        assert sha == hashlib.sha256(data).digest()


def test_segmented_progress_and_cancel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _segmented(monkeypatch, 1 << 16)
    data = os.urandom(1_000_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[int] = []
    chunk_file(path, DEFAULT_PARAMS, on_bytes=seen.append, segments=4)
    assert seen[-1] == len(data)
    assert all(0 < n <= len(data) for n in seen)

    token = CancelToken()
    calls = 0

    def cancel_soon(_: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            token.cancel()

    with pytest.raises(CancelledError):
        chunk_file(path, DEFAULT_PARAMS, token, cancel_soon, segments=4)


def test_window_never_shorter_than_two_max_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The biggest max_size a .fidx may carry is larger than the window: still one pass.
    _segmented(monkeypatch, 1 << 30)
    params = ChunkerParams(1 << 20, 4 << 20, 16 << 20)
    data = bytes(40 << 20)  # zeros: every chunk is max_size
    path = tmp_path / "big0"
    path.write_bytes(data)
    got, _ = chunk_file(path, params)
    assert got.lengths.tolist() == [16 << 20, 16 << 20, 8 << 20]
