"""Small deltas decoded whole in memory (``core.formats.delta_small``): the same bytes as the
streaming decoder, one context reused across deltas and threads, every bad delta refused,
and deltas with a copy table left to the streaming decoder."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest

from core.errors import FormatError
from core.formats import delta as zdelta
from core.formats.copytable import COPIES_MAGIC
from core.formats.delta_small import SMALL_OLD, decode_whole, read_old


def _pair(tmp_path: Path, seed: int, size: int = 3000) -> tuple[bytes, bytes, bytes]:
    """(old, new, the delta from old to new), made by ``delta.make``."""
    rnd = random.Random(seed)
    old = bytes(rnd.getrandbits(8) for _ in range(size))
    edit = rnd.randrange(size - 100)
    new = old[:edit] + b"<svg version 6.7.2>" + old[edit + 40:]
    (tmp_path / f"old{seed}").write_bytes(old)
    (tmp_path / f"new{seed}").write_bytes(new)
    zdelta.make(tmp_path / f"old{seed}", tmp_path / f"new{seed}", tmp_path / f"d{seed}")
    return old, new, (tmp_path / f"d{seed}").read_bytes()


def _streamed(old_path: Path, delta: bytes, size: int) -> bytes:
    out = bytearray(size)

    def write(piece: bytes | memoryview, offset: int) -> None:
        out[offset:offset + len(piece)] = piece

    dec = zdelta.open_decoder(old_path, size, write)
    try:
        dec.feed(delta)
        dec.finish()
    finally:
        dec.close()
    return bytes(out)


def test_decodes_what_the_streaming_decoder_does(tmp_path: Path) -> None:
    for seed in range(5):  # one context, reset between deltas
        old, new, d = _pair(tmp_path, seed)
        got = decode_whole(old, d, len(new))
        assert got is not None and bytes(got) == new
        assert bytes(got) == _streamed(tmp_path / f"old{seed}", d, len(new))


def test_an_empty_old_file_and_an_empty_new_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "new").write_bytes(b"fresh content " * 10)
    zdelta.make(tmp_path / "empty", tmp_path / "new", tmp_path / "d1")
    got = decode_whole(b"", (tmp_path / "d1").read_bytes(), 140)
    assert got is not None and bytes(got) == b"fresh content " * 10
    zdelta.make(tmp_path / "new", tmp_path / "empty", tmp_path / "d2")
    got = decode_whole(b"fresh content " * 10, (tmp_path / "d2").read_bytes(), 0)
    assert got is not None and bytes(got) == b""


def test_threads_each_decode_right(tmp_path: Path) -> None:
    pairs = [_pair(tmp_path, seed) for seed in range(8)]
    results: dict[int, bytes] = {}

    def work(k: int) -> None:
        for _ in range(20):
            old, new, d = pairs[k]
            got = decode_whole(old, d, len(new))
            assert got is not None
            results[k] = bytes(got)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {k: p[1] for k, p in enumerate(pairs)}


@pytest.mark.parametrize("how", ["other size", "longer", "cut", "flipped", "two frames",
                                 "wrong old"])
def test_a_bad_delta_is_refused(tmp_path: Path, how: str) -> None:
    old, new, d = _pair(tmp_path, 1)
    size = len(new)
    if how == "other size":
        size -= 1
    elif how == "longer":
        size += 1
    elif how == "cut":
        d = d[:-5]
    elif how == "flipped":
        d = d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 0xFF]) + d[len(d) // 2 + 1:]
    elif how == "two frames":
        d = d + d
    elif how == "wrong old":
        old = bytes(len(old))
    try:
        got = decode_whole(old, d, size)
    except FormatError:
        return
    # A flipped literal or another prefix may decode to the right length: never to the file
    # (the caller compares the SHA-256, as it does for every delta).
    assert how in ("flipped", "wrong old") and got is not None and bytes(got) != new


def test_a_copy_table_is_left_to_the_streaming_decoder(tmp_path: Path) -> None:
    old = os.urandom(200_000)
    new = old[:150_000] + b"changed" + old[150_007:]
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    zdelta.make(tmp_path / "old", tmp_path / "new", tmp_path / "d",
                copies=[(0, 0, 150_000)])
    d = (tmp_path / "d").read_bytes()
    assert int.from_bytes(d[:4], "little") == COPIES_MAGIC
    assert decode_whole(old, d, len(new)) is None
    assert _streamed(tmp_path / "old", d, len(new)) == new


def test_read_old_reads_small_files_only(tmp_path: Path) -> None:
    (tmp_path / "small").write_bytes(b"abc" * 1000)
    assert read_old(tmp_path / "small") == b"abc" * 1000
    (tmp_path / "empty").write_bytes(b"")
    assert read_old(tmp_path / "empty") == b""
    with open(tmp_path / "big", "wb") as f:
        f.truncate(SMALL_OLD + 1)
    assert read_old(tmp_path / "big") is None
    with pytest.raises(OSError):
        read_old(tmp_path / "missing")
