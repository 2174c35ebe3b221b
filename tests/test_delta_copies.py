"""Deltas with a copy table (docs/format.md §10): long unchanged runs are copied from the
old file by the decoder, the zstd frame holds only the bytes between them; the publisher
finds the runs from the chunk indexes and checks them byte for byte; a table that does not
fit the files is refused."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from core.chunks.chunker import DEFAULT_PARAMS, chunk_file
from core.chunks.fidx import FileIndex
from core.engine.updater import Updater, UpdaterConfig
from core.errors import FormatError
from core.formats import copytable, delta
from core.publisher import delta_copies
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

KB = 1024


@pytest.fixture(params=["prefix", "dictionary"])
def decoder_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With zstd's own API (the old file as a prefix) and with the dictionary copy."""
    if request.param == "dictionary":
        monkeypatch.setattr(delta, "_binding", lambda: None)
        monkeypatch.setattr(delta, "_compress_binding", lambda: None)
    return str(request.param)


def _index(path: Path) -> FileIndex:
    chunks, sha = chunk_file(path, DEFAULT_PARAMS)
    return FileIndex.from_chunks(DEFAULT_PARAMS, chunks, sha)


def _edited(tmp_path: Path) -> tuple[Path, Path]:
    """A 2 MB file and its next version: code inserted at two places (what follows
    shifts), a few bytes changed at a third."""
    rng = random.Random(16)
    base = rng.randbytes(2 << 20)
    new = bytearray(base[:300 * KB] + rng.randbytes(2000) + base[300 * KB:1200 * KB]
                    + rng.randbytes(700) + base[1200 * KB:])
    new[1700 * KB:1700 * KB + 8] = rng.randbytes(8)
    old_p, new_p = tmp_path / "old", tmp_path / "new"
    old_p.write_bytes(base)
    new_p.write_bytes(bytes(new))
    return old_p, new_p


def _decode(old: Path, data: bytes, size: int, piece: int) -> bytes:
    """What ``data`` rebuilds from ``old``, fed ``piece`` bytes at a time; the writes must
    come in order."""
    got = bytearray()

    def write(block: bytes | memoryview, at: int) -> None:
        assert at == len(got) and at + len(block) <= size
        got.extend(block)

    dec = delta.open_decoder(old, size, write)
    try:
        for at in range(0, len(data), piece):
            dec.feed(data[at:at + piece])
        dec.finish()
    finally:
        dec.close()
    return bytes(got)


def test_copies_found_from_the_indexes_cover_the_unchanged_runs_and_are_exact(
        tmp_path: Path) -> None:
    old, new = _edited(tmp_path)
    copies = delta_copies.find(old, _index(old), new, _index(new))
    o, n = old.read_bytes(), new.read_bytes()
    assert len(copies) == 4  # around the two insertions and the changed bytes
    for n0, o0, length in copies:
        assert length >= delta_copies.MIN_COPY and n[n0:n0 + length] == o[o0:o0 + length]
    assert [c[0] for c in copies] == sorted(c[0] for c in copies)
    assert all(a[0] + a[2] <= b[0] for a, b in itertools.pairwise(copies))
    # grown byte by byte: only the changed bytes are left between the runs
    assert len(n) - sum(c[2] for c in copies) <= 2000 + 700 + 8 + 64


def test_no_copies_when_the_unchanged_runs_are_less_than_half_the_file(
        tmp_path: Path) -> None:
    """A rebuilt file with a few unchanged runs: copies would break zstd's matches for
    little, so there are none (``MIN_COVER``)."""
    rng = random.Random(9)
    kept = rng.randbytes(900 * KB)
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(rng.randbytes(1000 * KB) + kept)
    new.write_bytes(rng.randbytes(1000 * KB) + kept)  # 47 % unchanged
    assert delta_copies.find(old, _index(old), new, _index(new)) == []
    new.write_bytes(rng.randbytes(800 * KB) + kept)  # 53 %
    assert [c[2] for c in delta_copies.find(old, _index(old), new, _index(new))] == [900 * KB]


def test_a_run_whose_bytes_differ_from_the_index_is_not_copied(tmp_path: Path) -> None:
    old, new = _edited(tmp_path)
    stale = _index(old)  # the index of the old file as it was
    damaged = bytearray(old.read_bytes())
    damaged[100 * KB] ^= 0xFF  # inside the first run
    old.write_bytes(bytes(damaged))
    copies = delta_copies.find(old, stale, new, _index(new))
    o, n = old.read_bytes(), new.read_bytes()
    assert all(n[a:a + k] == o[b:b + k] for a, b, k in copies)
    assert all(not a <= 100 * KB < a + k for a, _, k in copies)


def test_a_delta_with_copies_rebuilds_the_file_and_is_smaller(
        tmp_path: Path, decoder_kind: str) -> None:
    old, new = _edited(tmp_path)
    copies = delta_copies.find(old, _index(old), new, _index(new))
    plain = delta.make(old, new, tmp_path / "plain")
    size = delta.make(old, new, tmp_path / "d", copies=copies)
    data = (tmp_path / "d").read_bytes()
    assert len(data) == size < plain
    assert int.from_bytes(data[:4], "little") == copytable.COPIES_MAGIC
    for piece in (1, 7, 777, len(data)):
        assert _decode(old, data, new.stat().st_size, piece) == new.read_bytes()
    # (a plain delta still decodes as it did)
    plain_data = (tmp_path / "plain").read_bytes()
    assert _decode(old, plain_data, new.stat().st_size, 999) == new.read_bytes()


@pytest.mark.parametrize("copies", [
    [(0, 0, 100_000)],  # the whole file copied: the frame is empty
    [(0, 50_000, 30_000), (30_000, 0, 50_000), (80_000, 99_000, 1000)],  # back and forth
    [(10, 5, 1), (11, 0, 99_989)],  # gaps of zero between copies, no tail
])
def test_copy_tables_of_any_shape_decode(tmp_path: Path, decoder_kind: str,
                                         copies: list[copytable.Copy]) -> None:
    rng = random.Random(4)
    o = rng.randbytes(100_000)
    n = bytearray(rng.randbytes(100_000))
    for n0, o0, length in copies:
        n[n0:n0 + length] = o[o0:o0 + length]
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(o)
    new.write_bytes(bytes(n))
    delta.make(old, new, tmp_path / "d", copies=copies)
    data = (tmp_path / "d").read_bytes()
    assert _decode(old, data, len(n), 5) == bytes(n)


def _table(payload: bytes) -> bytes:
    return (copytable.COPIES_MAGIC.to_bytes(4, "little") + len(payload).to_bytes(4, "little")
            + payload)


@pytest.mark.parametrize("case", ["outside-old", "past-size", "version", "cut", "after",
                                  "too-large", "frame-too-long", "no-frame"])
def test_a_copy_table_that_does_not_fit_is_refused(tmp_path: Path, decoder_kind: str,
                                                   case: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(bytes(range(256)) * 400)  # 102,400 bytes
    new.write_bytes(bytes(range(256)) * 300)  # 76,800 bytes: one copy of all of it
    delta.make(old, new, tmp_path / "d", copies=[(0, 0, 76_800)])
    good = (tmp_path / "d").read_bytes()
    frame = good[8 + int.from_bytes(good[4:8], "little"):]
    size = 76_800
    assert _decode(old, good, size, 3) == new.read_bytes()
    bad: dict[str, bytes] = {
        # version 1, one copy: gap 0, length, old offset step (zigzag)
        "outside-old": _table(bytes([1, 1, 0]) + _varints(76_800, 2 * 30_000)) + frame,
        "past-size": _table(bytes([1, 1, 0]) + _varints(76_801, 0)) + frame,
        "version": _table(bytes([2, 1, 0]) + _varints(76_800, 0)) + frame,
        "cut": _table(bytes([1, 2, 0]) + _varints(76_800, 0)) + frame,
        "after": _table(bytes([1, 1, 0]) + _varints(76_800, 0) + b"\0") + frame,
        "too-large": (copytable.COPIES_MAGIC.to_bytes(4, "little")
                      + (copytable.MAX_COPIES_TABLE + 1).to_bytes(4, "little")),
        "frame-too-long": _table(bytes([1, 1, 0]) + _varints(76_000, 0))
        + _frame(old, b"x" * 801),  # 800 bytes left for the frame, not 801
        "no-frame": _table(bytes([1, 1, 0]) + _varints(76_800, 0)),
    }
    with pytest.raises(FormatError):
        _decode(old, bad[case], size, 5)


def _varints(*values: int) -> bytes:
    out = bytearray()
    for v in values:
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def _frame(old: Path, content: bytes) -> bytes:
    src = old.with_name("content")
    src.write_bytes(content)
    out = old.with_name("frame")
    delta.make(old, src, out)
    return out.read_bytes()


def test_make_refuses_copies_that_do_not_fit(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"a" * 1000)
    new.write_bytes(b"a" * 1000)
    for bad in ([(0, 1, 1000)], [(1, 0, 1000)], [(0, 0, 500), (400, 0, 100)],
                [(0, 0, 0)]):
        with pytest.raises(ValueError):
            delta.make(old, new, tmp_path / "d", copies=bad)


def _update(install: Path, repo: Path) -> list[str]:
    fetcher = memory_fetcher(repo)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher).apply()
    return [u for u, _ in fetcher.requests]


def test_published_deltas_carry_copies_and_players_behind_rebuild_exactly(
        tmp_path: Path) -> None:
    """Three releases of a file edited in a few places: each delta begins with a copy
    table; a player one behind and one two behind (a direct delta from the last 3
    releases) rebuild the latest exactly from deltas alone."""
    rng = random.Random(7)
    data = bytearray(rng.randbytes(3 << 20))
    versions = []
    for v in range(3):
        at = rng.randrange(len(data) - 5000)
        data[at:at] = rng.randbytes(1500)  # inserted: the rest shifts
        d = tmp_path / f"v{v}"
        d.mkdir()
        (d / "game.bin").write_bytes(bytes(data))
        versions.append(d)
    repo = tmp_path / "repo"
    installs = []
    for v, src in enumerate(versions):
        publish(src, repo, f"1.{v}.0", deltas=True, compress=True)
        if v < 2:
            installs.append(tmp_path / f"install{v}")
            _update(installs[-1], repo)
    manifest = json.loads((repo / "stable/1.2.0/release.json").read_text())
    entry = next(f for f in manifest["files"] if f["path"] == "game.bin")
    assert len(entry["deltas"]) == 2
    sizes = []
    for d in (repo / "stable/1.2.0/files").glob("game.bin.*.zdelta"):
        head = d.read_bytes()[:4]
        assert int.from_bytes(head, "little") == copytable.COPIES_MAGIC
        sizes.append(d.stat().st_size)
    # the inserted bytes (random: 1,500 from 1.1.0, 3,000 from 1.0.0) and little else
    assert sorted(sizes)[0] < 1500 + 100 and sorted(sizes)[1] < 3000 + 100
    for install in installs:
        asked = _update(install, repo)
        assert tree_digest(install) == tree_digest(versions[2])
        assert not [u for u in asked if u.endswith(("game.bin", ".fidx", ".stz"))]
