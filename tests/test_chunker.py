"""FastCDC 2020 cut points against the reference vectors, and chunk_file == chunk_bytes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core.chunks.chunker as chunker
from core.chunks.chunker import DEFAULT_PARAMS, ChunkerParams, chunk_bytes, chunk_file
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


def test_mapped_progress_and_cancel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunker, "_SMALL", 0)  # always the mapped path with its SHA-256 thread
    monkeypatch.setattr(chunker, "_SLICE", 4096)  # many windows (raised to 2 x max_size)
    data = os.urandom(1_000_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[int] = []
    chunk_file(path, DEFAULT_PARAMS, on_bytes=seen.append)
    assert seen[-1] == len(data)
    assert len(seen) > 2
    assert seen == sorted(seen) and all(0 < n <= len(data) for n in seen)

    token = CancelToken()
    calls = 0

    def cancel_soon(_: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            token.cancel()

    with pytest.raises(CancelledError):
        chunk_file(path, DEFAULT_PARAMS, token, cancel_soon)
    assert calls == 2


def test_window_never_shorter_than_two_max_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The biggest max_size a .fidx may carry is larger than the window: still one pass.
    monkeypatch.setattr(chunker, "_SLICE", 4096)  # raised to 2 x max_size
    params = ChunkerParams(1 << 20, 4 << 20, 16 << 20)
    data = bytes(40 << 20)  # zeros: every chunk is max_size
    path = tmp_path / "big0"
    path.write_bytes(data)
    got, _ = chunk_file(path, params)
    assert got.lengths.tolist() == [16 << 20, 16 << 20, 8 << 20]
