"""Local copies into a staged file (``core.engine.rebuild.StagedFile.copy_local``): every chunk is
checked as it is copied, good ones are written in long stretches, all-zero ones are left as
holes, and a chunk that changed in the seed becomes a range to download."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

import numpy as np
import pytest

import core.engine.rebuild as rebuild
from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.fidx import FileIndex
from core.chunks.planner import SeedSet, plan_file
from core.progress import CancelToken

P = ChunkerParams(1024, 4096, 16384)


def _index(data: bytes) -> FileIndex:
    return FileIndex.from_chunks(P, chunk_bytes(data, P), hashlib.sha256(data).digest())


def test_copy_local_writes_stretches_skips_zeros_and_refetches_changed_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    # 12 MB: three pieces of READ_BLOCK bytes at least, one run of zeros in the middle.
    target = rng.randbytes(5 << 20) + bytes(1 << 20) + rng.randbytes(6 << 20)
    seed_path = tmp_path / "seed"
    seed_path.write_bytes(target)  # the seed holds every chunk, where the plan says
    index = _index(target)
    plan = plan_file(index, SeedSet.of_index(str(seed_path), index))
    assert plan.bytes_local == len(target) and not len(plan.remote)
    # The seed changes behind the plan's back: two chunks go stale.
    offsets = index.offsets().tolist()
    stale = [offsets[100], offsets[2000]]
    with open(seed_path, "r+b") as f:
        for at in stale:
            f.seek(at)
            f.write(b"\xff" * 8)

    writes: list[tuple[int, int]] = []
    real_pwrite = rebuild.pwrite

    def pwrite(fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
        writes.append((offset, len(data)))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(rebuild, "pwrite", pwrite)
    staged = rebuild.StagedFile(tmp_path / "out.part", index, plan)
    marks: list[tuple[int, int]] = []
    staged.written = lambda a, b: marks.append((a, b))
    counted: list[int] = []
    seeds = rebuild.SeedFiles()
    try:
        staged.copy_local(seeds.opener(plan), CancelToken(), counted.append)
    finally:
        seeds.close()
        staged.close()

    bad = [(at, offsets[offsets.index(at) + 1]) for at in stale]
    assert staged.remote_ranges() == bad
    assert sum(counted) == len(target)
    got = (tmp_path / "out.part").read_bytes()
    want = bytearray(target)
    for a, b in bad:
        want[a:b] = bytes(b - a)  # not written: left for the download
    assert got == bytes(want)
    # Written in stretches: a handful of writes, none over a stale chunk, and the zeros
    # (all but the chunks straddling the zero run's edges) left as a hole.
    assert len(writes) < 20
    assert all(not (a < x < a + n) for a, n in writes for x, _ in bad)
    assert sum(n for _, n in writes) <= len(target) - (1 << 20) + 2 * 16384
    # Marked final: everything but the stale chunks, each byte once.
    covered = sorted(marks)
    assert sum(b - a for a, b in covered) == len(target) - sum(b - a for a, b in bad)
    for (_, b1), (a2, _) in itertools.pairwise(covered):
        assert b1 <= a2
    assert all(not (a < x < b) for a, b in covered for x, _ in bad)


class _Pieces:
    """A fetcher handing each range to the sink in pieces of ``piece`` bytes, as a network
    read does; ``flip`` damages the byte at that file offset, the first time it is sent."""

    def __init__(self, body: bytes, piece: int, flip: int = -1) -> None:
        self.body, self.piece, self.flip = body, piece, flip

    def fetch_ranges(self, url, ranges, sink, cancel=None):  # type: ignore[no-untyped-def]
        for a, b in ranges:
            for at in range(a, b, self.piece):
                data = bytearray(self.body[at:min(b, at + self.piece)])
                if at <= self.flip < at + len(data):
                    data[self.flip - at] ^= 0xFF
                    self.flip = -1  # once: the second fetch is right
                sink(at, bytes(data))


@pytest.mark.parametrize("flip", [False, True])
def test_downloaded_chunks_are_written_in_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               flip: bool) -> None:
    """Good chunks that arrive one after the other are written with one pwritev per piece
    of network data (not one write per chunk); a bad chunk ends a run and is fetched again.
    Each byte is marked final once, after it is written."""
    rng = random.Random(5)
    target = rng.randbytes(2 << 20)
    index = _index(target)
    plan = plan_file(index, SeedSet.build([]))
    assert plan.bytes_local == 0
    calls: list[tuple[int, int, int]] = []  # (offset, buffers, bytes)
    real = rebuild.pwritev

    def pwritev(fd: int, bufs: list[bytes | bytearray | memoryview], offset: int) -> None:
        calls.append((offset, len(bufs), sum(len(b) for b in bufs)))
        real(fd, bufs, offset)

    monkeypatch.setattr(rebuild, "pwritev", pwritev)
    staged = rebuild.StagedFile(tmp_path / "out.part", index, plan)
    marks: list[tuple[int, int]] = []
    staged.written = lambda a, b: marks.append((a, b))
    bad_at = 1_300_000 if flip else -1
    fetcher = _Pieces(target, 64 << 10, bad_at)
    got: list[int] = []
    try:
        staged.download(fetcher, "u", CancelToken(), got.append)  # type: ignore[arg-type]
    finally:
        staged.close()
    assert (tmp_path / "out.part").read_bytes() == target
    assert sum(got) == len(target) + (  # the bad chunk's bytes twice
        int(index.lengths[int(np.searchsorted(index.offsets(), bad_at, "right")) - 1])
        if flip else 0)
    pieces = -(-len(target) // (64 << 10))
    # Runs end with each piece of data (a chunk split across two pieces is written with
    # the second), at the bad chunk, and the bad chunk's second fetch is one more write.
    assert len(calls) <= pieces + 3 * flip
    assert max(n for _, n, _ in calls) > 4  # several chunks per write
    assert sum(n for _, _, n in calls) == len(target)  # every byte written once
    covered = sorted(marks)
    assert sum(b - a for a, b in covered) == len(target)
    for (_, b1), (a2, _) in itertools.pairwise(covered):
        assert b1 <= a2
