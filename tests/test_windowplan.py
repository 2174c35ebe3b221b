"""Big files planned from indexes on disk, window by window: the plans rebuild the target
exactly, the assembled two-level index is the published one, and the planner's memory is
bounded by the window, not by the file (measured with tracemalloc, which sees numpy's
allocations)."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from core.chunks import fidx, fidx_groups
from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.diskindex import assemble, disk_groups, missing_bytes, open_index
from core.chunks.fidx import FileIndex
from core.chunks.planner import PlanOptions, SeedSet, plan_file
from core.chunks.windowplan import plan_windows
from core.errors import FormatError, HashMismatchError
from tests.test_planner import _execute, _mutate

P = ChunkerParams(64, 256, 1024)


def _index(data: bytes) -> FileIndex:
    return FileIndex.from_chunks(P, chunk_bytes(data, P), hashlib.sha256(data).digest())


def _on_disk(tmp: Path, name: str, idx: FileIndex) -> Path:
    path = tmp / name
    path.write_bytes(fidx.encode(idx))
    return path


@pytest.mark.parametrize("seed", range(6))
def test_windowed_plans_rebuild_the_target(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    old = rng.randbytes(600_000) + bytes(200_000) + rng.randbytes(400_000)
    new = _mutate(rng, old, rng.randrange(1, 40))
    t = open_index(_on_disk(tmp_path, "t.fidx", _index(new)))
    local = open_index(_on_disk(tmp_path, "l.fidx", _index(old)))
    window = rng.choice([300, 1024, 2048, 5000])
    plan = plan_windows(t, local, "old", window=window)
    assert _execute(plan, new, {"old": old}) == new
    # Without a local file: only zeros are not fetched.
    bare = plan_windows(t, None, "old", window=window)
    assert _execute(bare, new, {}) == new
    assert bare.bytes_remote + 200_000 >= len(new) > bare.bytes_remote
    # About what the in-memory planner downloads (its cost model applies per window).
    whole = plan_file(_index(new), SeedSet.build([("old", _index(old).offsets()[:-1],
                                                   _index(old).lengths, _index(old).ids)]))
    assert plan.bytes_remote <= whole.bytes_remote + 2 * 16_000 * (len(new) // window // 256
                                                                    + 1)


def test_a_disk_index_is_checked_like_a_decoded_one(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(1_000_000)
    raw = bytearray(fidx.encode(_index(data)))
    good = tmp_path / "good.fidx"
    good.write_bytes(raw)
    d = open_index(good)
    idx = _index(data)
    assert d.count == len(idx) and d.file_size == len(data)
    assert d.fidx_sha256 == hashlib.sha256(raw).hexdigest()
    assert np.array_equal(d.offsets(0, d.count), idx.offsets())
    assert np.array_equal(d.offsets(700, 1100), idx.offsets()[700:1101])
    assert d.chunk_at(int(idx.offsets()[900]) + 1) == 900
    raw[100] ^= 1  # a record: the trailer no longer matches
    bad = tmp_path / "bad.fidx"
    bad.write_bytes(raw)
    with pytest.raises(FormatError):
        open_index(bad)
    bad.write_bytes(bytes(raw[:-1]))
    with pytest.raises(FormatError):
        open_index(bad)


def test_the_index_assembled_on_disk_is_the_published_one(tmp_path: Path) -> None:
    rng = random.Random(7)
    old = rng.randbytes(3_000_000)
    new = _mutate(rng, old, 5)
    t_idx = _index(new)
    published = fidx.encode(t_idx)
    table = fidx_groups.decode(fidx_groups.encode(fidx_groups.build(t_idx, 8)))
    local = open_index(_on_disk(tmp_path, "l.fidx", _index(old)))
    groups = disk_groups(local, table.target, table.maximum)
    # The groups of a disk index, window by window, are those of the whole index.
    whole = fidx_groups.build(_index(old), 8)
    assert sorted(groups.keys.tobytes()[i:i + 16] for i in range(0, 16 * len(groups.keys), 16)
                  ) == sorted(whole.digests[i].tobytes() for i in range(len(whole)))
    hit = groups.find(table.digests)
    need, ranges = missing_bytes(table, hit)
    assert 0 < need < len(published) // 4 and ranges >= 1
    asked: list[list[tuple[int, int]]] = []

    def fetch(rs: list[tuple[int, int]]) -> dict[int, bytes]:
        asked.append(rs)
        return {a: published[a:b] for a, b in rs}

    out = tmp_path / "t.fidx"
    assemble(table, local, groups, hit, out, fetch, "u")
    assert out.read_bytes() == published
    assert sum(b - a for rs in asked for a, b in rs) == need
    assert len(asked) == 1  # a few scattered changes: one request, however big the file

    def liar(rs: list[tuple[int, int]]) -> dict[int, bytes]:
        return {a: bytes(b - a) for a, b in rs}

    with pytest.raises(HashMismatchError):
        assemble(table, local, groups, hit, out, liar, "u")


def test_planner_memory_is_bounded_by_the_window_not_the_file(tmp_path: Path) -> None:
    """A 2.4 M-chunk index (48 MB on disk): planning it against its previous version in
    windows of 64 K chunks allocates a few MB at most; the in-memory planner, many times
    the index."""
    rng = np.random.default_rng(3)
    n = 2_400_000
    params = ChunkerParams(1024, 4096, 16384)
    lengths = rng.integers(1024, 16384, n, dtype=np.uint32)
    ids = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    size = int(lengths.sum(dtype=np.uint64))
    old = FileIndex(params, size, b"\0" * 32, lengths, ids)
    new_ids = ids.copy()
    new_ids[rng.integers(0, n, 300)] ^= 0x5A  # 300 scattered chunks changed
    new = FileIndex(params, size, b"\1" * 32, lengths, new_ids)
    t = open_index(_on_disk(tmp_path, "t.fidx", new))
    local = open_index(_on_disk(tmp_path, "l.fidx", old))
    del old, new, new_ids, ids, lengths
    peaks = {}
    for window in (8 * 1024, 32 * 1024):
        tracemalloc.start()
        try:
            plan = plan_windows(t, local, "old", PlanOptions(), window=window)
            _, peaks[window] = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert 250 <= len(plan.remote) <= 300
        assert plan.bytes_remote + plan.bytes_local == size
    index_bytes = 20 * n
    # The window's arrays and its 3-window seed set: about 350 bytes per window chunk,
    # whatever the file; a small fraction of the index.
    assert peaks[8 * 1024] < index_bytes // 10, peaks
    assert peaks[32 * 1024] < index_bytes // 3, peaks
    assert peaks[32 * 1024] > 2.5 * peaks[8 * 1024], peaks
    tracemalloc.start()
    try:
        plan_file(FileIndex(params, size, b"", *t.records(0, n)),
                  SeedSet.build([("old", local.offsets(0, n)[:-1], *local.records(0, n))]))
        _, whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert whole > 2 * index_bytes  # what the in-memory planner takes for the same file


def test_an_index_written_by_windows_is_the_encoded_one(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from core.chunks import diskindex
    from core.engine import state

    monkeypatch.setattr(diskindex, "WINDOW", 100)
    monkeypatch.setattr(state, "STREAM_INDEX", 50)
    idx = _index(random.Random(5).randbytes(200_000))
    store = state.StateStore(tmp_path / "install")
    store.cache_index(idx)
    path = store.index_path(idx.sha256.hex(), idx.params)
    assert path.read_bytes() == fidx.encode(idx) and len(idx) > 500
