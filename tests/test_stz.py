"""The compressed chunk copy (.stz): format round trip and checks, decompression bounds,
and updates that download compressed chunks, falling back to raw ranges when the copy lies."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import struct
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chunks import stz
from core.chunks.chunker import DEFAULT_PARAMS, chunk_file
from core.chunks.fidx import FileIndex, encode
from core.engine.updater import Updater, UpdaterConfig
from core.errors import FormatError
from core.publisher import publish_files
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest


def _text(rng: random.Random, n: int) -> bytes:
    words = [b"lump", b"sector", b"linedef", b"thing", b"vertex", b"sidedef", b"blockmap"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" %d\n" % rng.randrange(1000)
    return bytes(out[:n])


def _indexed(tmp_path: Path, data: bytes) -> tuple[Path, FileIndex, bytes]:
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    chunks, sha = chunk_file(p, DEFAULT_PARAMS)
    idx = FileIndex.from_chunks(DEFAULT_PARAMS, chunks, sha)
    return p, idx, encode(idx)


def test_round_trip_compressed_and_stored_chunks(tmp_path: Path) -> None:
    rng = random.Random(1)
    data = _text(rng, 300_000) + rng.randbytes(100_000)  # compressible, then not
    p, idx, fidx = _indexed(tmp_path, data)
    out = tmp_path / "f.bin.stz"
    size = stz.write(p, idx, fidx, out)
    blob = out.read_bytes()
    assert size == len(blob) < len(data)
    table = stz.parse_table(blob[:stz.table_size(len(idx))], idx,
                            hashlib.sha256(fidx).digest(), size)
    assert table.raw.any() and (~table.raw).any()
    offsets = idx.offsets()
    for k in range(len(idx)):
        stored = blob[int(table.offsets[k]):int(table.offsets[k + 1])]
        chunk = stz.decode_chunk(stored, bool(table.raw[k]), int(idx.lengths[k]))
        assert chunk == data[int(offsets[k]):int(offsets[k + 1])]
    assert stz.worthwhile(p, idx)
    noise = tmp_path / "noise"
    _, nidx, _ = _indexed(tmp_path, os.urandom(200_000))
    (tmp_path / "f.bin").rename(noise)
    assert not stz.worthwhile(noise, nidx)


def _table(tmp_path: Path) -> tuple[bytes, FileIndex, bytes, int]:
    p, idx, fidx = _indexed(tmp_path, _text(random.Random(2), 100_000))
    size = stz.write(p, idx, fidx, tmp_path / "x.stz")
    head = (tmp_path / "x.stz").read_bytes()[:stz.table_size(len(idx))]
    return head, idx, hashlib.sha256(fidx).digest(), size


def test_table_checks(tmp_path: Path) -> None:
    head, idx, sha, size = _table(tmp_path)
    stz.parse_table(head, idx, sha, size)
    bad_cases = [
        (b"XXXX" + head[4:], sha, size),  # magic
        (head, b"\0" * 32, size),  # belongs to another index
        (head, sha, size + 1),  # total does not match the manifest
        (head[:-1], sha, size),  # truncated
    ]
    lie = bytearray(head)
    struct.pack_into(">I", lie, stz.HEADER_SIZE, int(idx.lengths[0]))  # "compressed" = length
    bad_cases.append((bytes(lie), sha, size))
    for data, s, total in bad_cases:
        with pytest.raises(FormatError):
            stz.parse_table(data, idx, s, total)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 255))
def test_fuzzed_tables_only_format_errors(tmp_path_factory: pytest.TempPathFactory,
                                          pos: int, xor: int) -> None:
    head, idx, sha, size = _table(tmp_path_factory.mktemp("t"))
    data = bytearray(head)
    data[pos % len(data)] ^= xor
    with contextlib.suppress(FormatError):
        stz.parse_table(bytes(data), idx, sha, size)


def test_decompression_is_bounded_by_the_chunk_length() -> None:
    bomb = zstandard.ZstdCompressor().compress(bytes(50 << 20))  # 50 MB of zeros, tiny frame
    with pytest.raises(FormatError):
        stz.decode_chunk(bomb, False, 4096)
    with pytest.raises(FormatError):
        stz.decode_chunk(b"not zstd at all", False, 4096)


def _releases(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = random.Random(7)
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    (v1 / "data").mkdir(parents=True)
    (v2 / "data").mkdir(parents=True)
    text = _text(rng, 3_000_000)
    (v1 / "data/script.txt").write_bytes(text)
    edited = bytearray(text)
    for _ in range(40):
        at = rng.randrange(len(edited) - 2000)
        edited[at:at + 1500] = _text(rng, 1500)
    (v2 / "data/script.txt").write_bytes(bytes(edited))
    noise = rng.randbytes(500_000)
    (v1 / "noise.bin").write_bytes(noise)
    (v2 / "noise.bin").write_bytes(noise[:1000] + rng.randbytes(3000) + noise[4000:])
    return v1, v2, tmp_path / "repo"


def _update(install: Path, fetcher):  # type: ignore[no-untyped-def]
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)
    plan = up.prepare()
    return plan, up.apply()


def test_update_downloads_compressed_chunks(tmp_path: Path) -> None:
    v1, v2, repo = _releases(tmp_path)
    publish(v1, repo, "1.0.0", compress=True)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", compress=True)
    assert (repo / "stable/1.1.0/files/data/script.txt.stz").exists()
    assert not (repo / "stable/1.1.0/files/noise.bin.stz").exists()  # not worth it

    raw_repo = tmp_path / "raw"
    publish(v1, raw_repo, "1.0.0")
    raw_install = tmp_path / "raw-install"
    _update(raw_install, memory_fetcher(raw_repo))
    publish(v2, raw_repo, "1.1.0")
    raw_fetcher = memory_fetcher(raw_repo)
    raw_plan, _ = _update(raw_install, raw_fetcher)

    fetcher = memory_fetcher(repo)
    plan, _ = _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v2)
    stz_asked = sum(b - a for u, rs in fetcher.requests if rs and u.endswith(".stz")
                    for a, b in rs)
    script_raw = [rs for u, rs in fetcher.requests if rs and u.endswith("script.txt")]
    assert stz_asked > 0 and script_raw == []  # the text came compressed, never raw
    assert plan.bytes_to_download < 0.6 * raw_plan.bytes_to_download
    assert plan.bytes_needed == raw_plan.bytes_needed


def test_a_lying_compressed_copy_falls_back_to_raw_ranges(tmp_path: Path) -> None:
    v1, v2, repo = _releases(tmp_path)
    publish(v1, repo, "1.0.0", compress=True)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", compress=True)
    fetcher = memory_fetcher(repo)
    # The new release's copy (folder listing order differs between platforms).
    url = next(u for u in fetcher.files if u.endswith("/1.1.0/files/data/script.txt.stz"))
    blob = bytearray(fetcher.files[url])
    for at in range(len(blob) // 2, len(blob), 997):  # garbage in the second half's frames
        blob[at] ^= 0x5A
    fetcher.files[url] = bytes(blob)
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v2)
    raw = [rs for u, rs in fetcher.requests if rs and u.endswith("script.txt")]
    assert raw, "bad chunks were fetched again, raw, from the original file"


def _mixed(rng: random.Random) -> bytes:
    """Text, a long incompressible region (several batches), text again."""
    return _text(rng, 600_000) + rng.randbytes(1_500_000) + _text(rng, 600_000)


class _CountingCompressor:
    """stz's compressor, counting the chunks it is given (one by one or in batches)."""

    def __init__(self, cz: object, tried: list[int]) -> None:
        self._cz, self._tried = cz, tried

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        tried = [0]
        real = stz._compressor
        monkeypatch.setattr(stz, "_compressor", lambda level: cls(real(level), tried))
        return tried

    def compress(self, data: bytes) -> bytes:
        self._tried[0] += 1
        return self._cz.compress(data)  # type: ignore[attr-defined, no-any-return]

    def multi_compress_to_buffer(self, data: object, threads: int) -> object:
        self._tried[0] += len(data)  # type: ignore[arg-type]
        return self._cz.multi_compress_to_buffer(data, threads=threads)  # type: ignore[attr-defined]


def test_incompressible_batches_are_stored_raw_and_round_trip(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks are compressed a batch at a time on zstd's threads; a batch whose sampled
    chunks do not shrink is stored raw whole. Every chunk still decodes to its bytes, and
    the text's chunks come out exactly as compressing each chunk alone makes them."""
    monkeypatch.setattr(stz, "_BATCH", 128 << 10)  # many batches in a small file
    data = _mixed(random.Random(3))
    p, idx, fidx = _indexed(tmp_path, data)
    out = tmp_path / "f.bin.stz"
    tried = _CountingCompressor.install(monkeypatch)
    size = stz.write(p, idx, fidx, out, threads=2)
    blob = out.read_bytes()
    table = stz.parse_table(blob[:stz.table_size(len(idx))], idx,
                            hashlib.sha256(fidx).digest(), size)
    offsets = idx.offsets()
    cz = zstandard.ZstdCompressor(level=stz.DEFAULT_LEVEL, write_content_size=True,
                                  write_checksum=False)
    noise = (offsets[:-1] >= 700_000) & (offsets[1:] <= 2_000_000)
    assert noise.sum() > 100 and table.raw[noise].all()  # the random middle: raw
    # ... and most of its chunks were never given to zstd (only each batch's samples).
    assert tried[0] < len(idx) - noise.sum() // 2, (tried, len(idx), noise.sum())
    text = offsets[1:] <= 550_000
    assert not table.raw[text].any()
    for k in range(len(idx)):
        raw = data[int(offsets[k]):int(offsets[k + 1])]
        stored = blob[int(table.offsets[k]):int(table.offsets[k + 1])]
        assert stz.decode_chunk(stored, bool(table.raw[k]), len(raw)) == raw
        if text[k]:
            assert stored == cz.compress(raw)
    # One thread of zstd's writes the same file.
    assert stz.write(p, idx, fidx, tmp_path / "t1.stz", threads=1) == size
    assert (tmp_path / "t1.stz").read_bytes() == blob


def test_update_from_batched_copy_with_raw_regions_is_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Publish → update → the same bytes, with a copy holding raw batches between
    compressed ones, and the changed chunks fetched from the .stz only."""
    monkeypatch.setattr(stz, "_BATCH", 128 << 10)
    rng = random.Random(4)
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    data = bytearray(_mixed(rng))
    (v1 / "mixed.dat").write_bytes(bytes(data))
    for at in (100_000, 1_000_000, 2_500_000):  # text, noise, text
        data[at:at + 3000] = rng.randbytes(3000)
    (v2 / "mixed.dat").write_bytes(bytes(data))
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0", compress=True)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", compress=True)
    assert (repo / "stable/1.1.0/files/mixed.dat.stz").exists()
    fetcher = memory_fetcher(repo)
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v2)
    assert any(rs and u.endswith(".stz") for u, rs in fetcher.requests)
    assert not [rs for u, rs in fetcher.requests if rs and u.endswith("mixed.dat")]


def test_unchanged_files_reuse_the_previous_release_s_copies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file with the previous release's SHA-256 gets that release's index, group table
    and .stz copied, byte for byte what computing them makes; a previous index that does
    not match its manifest entry is not trusted (computed again). Updates stay exact."""
    v1, v2, repo = _releases(tmp_path)
    (v2 / "data/same.txt").write_bytes(_text(random.Random(9), 2_000_000))
    shutil.copy(v2 / "data/same.txt", v1 / "data/same.txt")
    publish(v1, repo, "1.0.0", compress=True)
    fresh = tmp_path / "fresh"
    publish(v2, fresh, "1.1.0", compress=True)  # no previous release: everything computed
    one = repo / "stable/1.0.0/files/data"
    # Tamper with the previous index of script.txt (changed anyway) and of same.txt.
    (one / "same.txt.fidx").write_bytes(b"x" + (one / "same.txt.fidx").read_bytes()[1:])
    publish(v2, repo, "1.1.0", compress=True)
    two, ref = repo / "stable/1.1.0/files/data", fresh / "stable/1.1.0/files/data"
    for suffix in (".fidx", ".fidx.groups", ".stz"):
        assert (two / f"same.txt{suffix}").read_bytes() == (ref / f"same.txt{suffix}").read_bytes()
    assert (two / "same.txt.fidx").read_bytes() != (one / "same.txt.fidx").read_bytes()
    # Untampered: copied from 1.1.0 into 1.2.0, neither chunked nor compressed again.
    (v2 / "readme.txt").write_text("1.2.0\n")
    worked: list[str] = []
    real_chunk, real_write = publish_files.chunk_file, stz.write
    monkeypatch.setattr(publish_files, "chunk_file",
                        lambda p, *a: (worked.append(Path(p).name), real_chunk(p, *a))[1])
    monkeypatch.setattr(stz, "write",
                        lambda p, *a, **k: (worked.append(Path(p).name), real_write(p, *a, **k))[1])
    publish(v2, repo, "1.2.0", compress=True)
    assert set(worked) == {"readme.txt"}  # the one changed file
    three = repo / "stable/1.2.0/files/data"
    for suffix in (".fidx", ".fidx.groups", ".stz"):
        got = (three / f"same.txt{suffix}").read_bytes()
        assert got == (two / f"same.txt{suffix}").read_bytes()
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    assert tree_digest(install) == tree_digest(v2)


# -- a first install: the copy fetched whole, rebuilt without the index ----------------------


def _whole(tmp_path: Path, data: bytes) -> tuple[bytes, bytes]:
    """``data``'s ``.stz`` and the SHA-256 of its ``.fidx``."""
    p, idx, fidx = _indexed(tmp_path, data)
    stz.write(p, idx, fidx, tmp_path / "f.stz")
    return (tmp_path / "f.stz").read_bytes(), hashlib.sha256(fidx).digest()


def test_decode_whole_rebuilds_the_file_without_its_index(tmp_path: Path) -> None:
    rng = random.Random(3)
    data = _text(rng, 200_000) + rng.randbytes(60_000) + _text(rng, 50_000)
    blob, sha = _whole(tmp_path, data)
    assert stz.decode_whole(blob, sha, len(data)) == data


def test_decode_whole_refuses_what_does_not_hold_the_file_exactly(tmp_path: Path) -> None:
    rng = random.Random(4)
    data = _text(rng, 100_000) + rng.randbytes(20_000)
    blob, sha = _whole(tmp_path, data)
    bad = [
        (b"XTZC" + blob[4:], sha, len(data)),  # magic
        (blob, bytes(32), len(data)),  # another index's copy
        (blob[:-1], sha, len(data)),  # cut short
        (blob + b"\0", sha, len(data)),  # a byte after the last chunk
        (blob, sha, len(data) - 1),  # more than the file
        (blob, sha, len(data) + 1),  # less than the file
        (blob[:stz.HEADER_SIZE + 3], sha, len(data)),  # cut inside the table
    ]
    for data_, sha_, size in bad:
        with pytest.raises(FormatError):
            stz.decode_whole(data_, sha_, size)


def test_decode_whole_is_bounded_by_the_file_size() -> None:
    """A frame whose header promises more than the file has left is refused before it is
    decompressed (no 50 MB allocation for a 4 KiB file)."""
    bomb = zstandard.ZstdCompressor(write_content_size=True).compress(bytes(50 << 20))
    blob = (struct.pack(">4sI32sQ", b"STZC", 1, bytes(32), 1)
            + struct.pack(">I", len(bomb)) + bomb)
    with pytest.raises(FormatError, match="length"):
        stz.decode_whole(blob, bytes(32), 4096)
    unknown = zstandard.ZstdCompressor(write_content_size=False).compress(b"a" * 4096)
    blob = (struct.pack(">4sI32sQ", b"STZC", 1, bytes(32), 1)
            + struct.pack(">I", len(unknown)) + unknown)
    with pytest.raises(FormatError):
        stz.decode_whole(blob, bytes(32), 4096)


@settings(max_examples=150, deadline=None)
@given(pos=st.integers(0, 1 << 20), xor=st.integers(1, 255))
def test_fuzzed_whole_copies_are_format_errors_or_the_right_length(
        tmp_path_factory: pytest.TempPathFactory, pos: int, xor: int) -> None:
    """Any byte changed: a ``FormatError``, or bytes of the file's length (a raw chunk's
    change; the caller's SHA-256 refuses those)."""
    rng = random.Random(5)
    data = _text(rng, 30_000) + rng.randbytes(8_000)
    blob, sha = _whole(tmp_path_factory.mktemp("w"), data)
    bad = bytearray(blob)
    bad[pos % len(bad)] ^= xor
    with contextlib.suppress(FormatError):
        assert len(stz.decode_whole(bytes(bad), sha, len(data))) == len(data)


def _first_install_tree(root: Path) -> Path:
    rng = random.Random(9)
    (root / "data").mkdir(parents=True)
    (root / "data/a.txt").write_bytes(_text(rng, 300_000))
    (root / "data/b.txt").write_bytes(_text(rng, 900_000))
    (root / "big.txt").write_bytes(_text(rng, 5_000_000))  # over STZ_WHOLE_MAX: by its index
    (root / "noise.bin").write_bytes(rng.randbytes(200_000))  # no copy: by its index
    return root


def test_first_install_fetches_small_copies_whole_without_indexes(tmp_path: Path) -> None:
    src = _first_install_tree(tmp_path / "v1")
    repo = tmp_path / "repo"
    publish(src, repo, "1.0.0", compress=True)
    fetcher = memory_fetcher(repo)
    install = tmp_path / "install"
    plan, _ = _update(install, fetcher)
    assert tree_digest(install) == tree_digest(src)
    asked = [(u.rsplit("/files/", 1)[-1], rs) for u, rs in fetcher.requests if "/files/" in u]
    sizes = {u.rsplit("/files/", 1)[-1]: len(b) for u, b in fetcher.files.items()}
    for name in ("data/a.txt", "data/b.txt"):
        # the copy in one request, whole; neither its index nor its original file
        assert [rs for u, rs in asked if u == f"{name}.stz"] == [((0, sizes[f"{name}.stz"]),)]
        assert not [u for u, _ in asked if u in (f"{name}.fidx", name)]
    assert [u for u, _ in asked if u == "big.txt.fidx"] == ["big.txt.fidx"]
    assert [u for u, _ in asked if u == "noise.bin.fidx"] == ["noise.bin.fidx"]
    copies = sizes["data/a.txt.stz"] + sizes["data/b.txt.stz"]
    assert plan.bytes_to_download < copies + 5_000_000 + 300_000  # the copies, not the files


def test_a_bad_whole_copy_falls_back_to_the_index(tmp_path: Path) -> None:
    src = _first_install_tree(tmp_path / "v1")
    repo = tmp_path / "repo"
    publish(src, repo, "1.0.0", compress=True)
    fetcher = memory_fetcher(repo)
    url = next(u for u in fetcher.files if u.endswith("/files/data/b.txt.stz"))
    blob = bytearray(fetcher.files[url])
    blob[len(blob) // 2] ^= 0x5A  # one byte of a frame: the copy rebuilds nothing right
    fetcher.files[url] = bytes(blob)
    install = tmp_path / "install"
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(src)
    asked = [u.rsplit("/files/", 1)[-1] for u, _ in fetcher.requests if "/files/" in u]
    assert "data/b.txt.fidx" in asked  # its index, after the whole copy failed
    assert "data/a.txt.fidx" not in asked
