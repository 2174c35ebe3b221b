"""Publisher deltas (zstd patch-from): a player one version behind downloads the delta and
nothing else; a player on another version, or a bad delta, falls back to chunks."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from core.engine.staging import BlankFile
from core.engine.updater import Updater, UpdaterConfig
from core.errors import FormatError
from core.formats import copytable, delta
from core.net.fetcher import MemoryFetcher
from core.publisher.publish import PublishReport, publish
from tests.conftest import MEM, memory_fetcher, tree_digest


def _versions(tmp_path: Path) -> list[Path]:
    rng = random.Random(5)
    base = bytearray(rng.randbytes(3_000_000))
    out = []
    for v in range(3):
        d = tmp_path / f"v{v}"
        (d / "bin").mkdir(parents=True)
        for _ in range(60):  # scattered small edits: the case chunks handle worst
            at = rng.randrange(len(base) - 8)
            base[at:at + 4] = rng.randbytes(4)
        (d / "bin/game").write_bytes(bytes(base))
        (d / "readme.txt").write_text(f"version {v}\n")
        out.append(d)
    return out


def _update(install: Path, fetcher):  # type: ignore[no-untyped-def]
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)
    plan = up.prepare()
    return plan, up.apply()


class _Behind(NamedTuple):
    v0: Path
    v1: Path
    v2: Path
    repo: Path
    install: Path  # on v0 (1.0.0)
    report: PublishReport  # of v1 (1.1.0), published with a delta for bin/game


def _one_behind(tmp_path: Path) -> _Behind:
    """v0 installed, v1 published with a delta for bin/game (v2 not published)."""
    v0, v1, v2 = _versions(tmp_path)
    repo = tmp_path / "repo"
    publish(v0, repo, "1.0.0", deltas=True)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    report = publish(v1, repo, "1.1.0", deltas=True)
    return _Behind(v0, v1, v2, repo, install, report)


def _apply(old: Path, data: bytes, size: int,
           write: Callable[[bytes | memoryview, int], None]) -> None:
    """Rebuild from the whole delta ``data`` through ``delta.open_decoder``."""
    decoder = delta.open_decoder(old, size, write)
    try:
        for at in range(0, len(data), 1 << 20):
            decoder.feed(data[at:at + (1 << 20)])
        decoder.finish()
    finally:
        decoder.close()


def test_one_version_behind_downloads_only_the_delta(tmp_path: Path,
                                                     decoder_kind: str) -> None:
    _, v1, _, repo, install, report = _one_behind(tmp_path)
    manifest = json.loads((repo / "stable/1.1.0/release.json").read_text())
    entry = next(f for f in manifest["files"] if f["path"] == "bin/game")
    assert len(entry["deltas"]) == 1 and report.delta_bytes > 0

    fetcher = memory_fetcher(repo)
    plan, _ = _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v1)
    asked = [u for u, _ in fetcher.requests]
    assert any(u.endswith(".zdelta") for u in asked)
    assert not [rs for u, rs in fetcher.requests if rs and u.endswith("bin/game")]
    assert not [u for u in asked if u.endswith("bin/game.fidx")]  # the delta is enough
    assert plan.bytes_to_download < report.new_bytes / 4  # far below the new chunks


def test_two_versions_behind_chain_deltas_and_a_bad_delta_falls_back_to_chunks(
        tmp_path: Path) -> None:
    _, _, v2, repo, behind, _ = _one_behind(tmp_path)
    current = tmp_path / "current"
    _update(current, memory_fetcher(repo))
    publish(v2, repo, "1.2.0", deltas=True, delta_releases=1)  # its delta is from 1.1.0 only

    fetcher = memory_fetcher(repo)
    _update(behind, fetcher)  # on 1.0.0: no delta of 1.2.0 fits its file: a chain does
    assert tree_digest(behind) == tree_digest(v2)
    asked = [u.rsplit("/stable/", 1)[1] for u, _ in fetcher.requests]
    assert [u.split("/files/")[0] for u in asked if u.endswith(".zdelta")] == ["1.1.0", "1.2.0"]
    assert "1.1.0/release.json" in asked  # the chain's middle, vouched by 1.2.0's history
    # (its index was fetched: the chain was weighed against the chunks, its listed fallback)
    assert not [u for u in asked if u.endswith("bin/game")]

    fetcher = memory_fetcher(repo)
    url = next(u for u in fetcher.files if "/1.2.0/files/bin/game." in u
               and u.endswith(".zdelta"))
    fetcher.files[url] = fetcher.files[url][:-10] + b"\0" * 10  # breaks its SHA-256
    _update(current, fetcher)
    assert tree_digest(current) == tree_digest(v2)
    assert [rs for u, rs in fetcher.requests if rs and u.endswith("bin/game")]
    assert [u for u, _ in fetcher.requests if u.endswith("bin/game.fidx")]  # fetched late


@pytest.fixture(params=["prefix", "dictionary"])
def decoder_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each decoder test runs twice: with zstd's own API (the old file as a prefix by
    reference, where python-zstandard's wheels are) and with the portable dictionary copy."""
    if request.param == "prefix":
        assert delta._binding() is not None  # the wheels CI installs have it
    else:
        monkeypatch.setattr(delta, "_binding", lambda: None)
    return str(request.param)


def test_open_decoder_uses_the_old_file_in_place_where_it_can(
        tmp_path: Path, decoder_kind: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"abc" * 1000)
    new.write_bytes(b"abc" * 900 + b"xyz")
    delta.make(old, new, tmp_path / "d")
    dec = delta.open_decoder(old, 2703, lambda _b, _o: None)
    try:
        dec.feed((tmp_path / "d").read_bytes()[:8])  # the frame's decoder is made here
        assert isinstance(dec._inner, delta._PrefixDecoder) == (decoder_kind == "prefix")
    finally:
        dec.close()


@pytest.mark.parametrize("copies", [False, True])
def test_one_decode_opens_the_old_file_once(tmp_path: Path, decoder_kind: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            copies: bool) -> None:
    """A many-file update decodes thousands of small deltas in a row, and every open of the
    old file costs its system calls: one decode opens it once, whichever decoder, with a
    copy table (the copies and zstd's prefix share one map) or without."""
    old, new = tmp_path / "old", tmp_path / "new"
    rng = random.Random(8)
    base = rng.randbytes(300_000)
    old.write_bytes(base)
    new.write_bytes(base[:200_000] + rng.randbytes(1000) + base[200_000:])
    delta.make(old, new, tmp_path / "d", copies=[(0, 0, 200_000)] if copies else ())
    data = (tmp_path / "d").read_bytes()
    assert (int.from_bytes(data[:4], "little") == copytable.COPIES_MAGIC) == copies
    got = bytearray(new.stat().st_size)

    def write(block: bytes | memoryview, at: int) -> None:
        got[at:at + len(block)] = block

    opened: list[str] = []

    def counting(module: Any) -> Callable[..., Any]:
        real = module.open

        def call(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, str | os.PathLike) and Path(file) == old:
                opened.append(f"{module.__name__}.open")
            return real(file, *args, **kwargs)
        return call

    for module in (os, io, builtins):
        monkeypatch.setattr(module, "open", counting(module))
    _apply(old, data, len(got), write)
    monkeypatch.undo()
    assert bytes(got) == new.read_bytes()
    assert len(opened) == 1, opened


def test_apply_is_bounded_and_checks_length(tmp_path: Path, decoder_kind: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"abc" * 10_000)
    new.write_bytes(b"abc" * 9_000 + b"xyz" * 2_000)
    size = delta.make(old, new, tmp_path / "d")
    data = (tmp_path / "d").read_bytes()
    assert size == len(data) < 1000
    got = bytearray(new.stat().st_size)

    def write(block: bytes | memoryview, at: int) -> None:
        got[at:at + len(block)] = block

    _apply(old, data, len(got), write)
    assert bytes(got) == new.read_bytes()
    with pytest.raises(FormatError):
        _apply(old, data, len(got) - 1, write)  # would produce more than stated
    with pytest.raises(FormatError):
        _apply(old, data, len(got) + 1, write)  # produces less
    with pytest.raises(FormatError):
        _apply(old, b"garbage" * 10, len(got), write)


def test_publish_defaults_write_compressed_copies_and_deltas(tmp_path: Path) -> None:
    """``stitch publish`` without options writes the variant that wins (issue 16): the
    compressed chunk copies and the deltas; ``--no-compress --no-delta`` writes neither;
    the old flags are still accepted. A player one version behind updates exactly."""
    v0, v1, _ = _versions(tmp_path)
    for v in (v0, v1):
        (v / "data.txt").write_bytes(b"".join(b"line %d of the game's data\n" % i
                                              for i in range(40_000)))
    (v1 / "data.txt").write_bytes((v1 / "data.txt").read_bytes() + b"one more line\n")
    run = [sys.executable, "-m", "app.cli", "publish"]
    repo, raw = tmp_path / "repo", tmp_path / "raw"
    for src, version in ((v0, "1"), (v1, "2")):
        assert subprocess.run([*run, str(src), str(repo), "--version", version]).returncode == 0
        assert subprocess.run([*run, str(src), str(raw), "--version", version,
                               "--no-compress", "--no-delta"]).returncode == 0
    files = repo / "stable/2/files"
    assert (files / "data.txt.stz").exists()
    assert list(files.glob("bin/game.*.zdelta")) and list(files.glob("data.txt.*.zdelta"))
    assert not [p for p in raw.rglob("*") if p.suffix in (".stz", ".zdelta")]
    old = tmp_path / "old"
    assert subprocess.run([*run, str(v0), str(old), "--version", "1", "--compress", "--delta",
                           "--compress-level", "9", "--delta-level", "15"]).returncode == 0
    assert (old / "stable/1/files/data.txt.stz").exists()

    install = tmp_path / "install"
    shutil.copytree(v0, install)
    _update(install, memory_fetcher(repo))  # 2, from files that are 1's
    assert tree_digest(install) == tree_digest(v1)


def test_publish_delta_flag_reports_it(tmp_path: Path) -> None:
    v0, v1, _ = _versions(tmp_path)
    repo = tmp_path / "repo"
    run = [sys.executable, "-m", "app.cli", "publish"]
    assert subprocess.run([*run, str(v0), str(repo), "--version", "1"]).returncode == 0
    r = subprocess.run([*run, str(v1), str(repo), "--version", "2", "--delta"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "deltas from 1:" in r.stdout
    assert list((repo / "stable/2/files/bin").glob("game.*.zdelta"))


# -- streamed deltas: a bad delta never gets past staging, and the install is the new release --


def _swap_delta(repo: Path, data: bytes) -> None:
    """Replace bin/game's delta in 1.1.0 by ``data`` and make the (unsigned) manifest and the
    pointer vouch for it: only the decoder and the output's SHA-256 stand in the way."""
    chan = repo / "stable"
    man_path = chan / "1.1.0" / "release.json"
    man = json.loads(man_path.read_bytes())
    entry = next(f for f in man["files"] if f["path"] == "bin/game")
    d = entry["deltas"][0]
    (chan / "1.1.0/files" / delta.name_for("bin/game", d["from"])).write_bytes(data)
    d["size"], d["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    body = (json.dumps(man, indent=2, sort_keys=True) + "\n").encode()
    man_path.write_bytes(body)
    ptr = json.loads((chan / "latest.json").read_bytes())
    ptr["sha256"] = hashlib.sha256(body).hexdigest()
    (chan / "latest.json").write_bytes(json.dumps(ptr).encode())


def _record_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """(offset, length, file size) of every write a delta makes into staging."""
    seen: list[tuple[int, int, int]] = []
    real = BlankFile.write_at

    def write_at(self: BlankFile, data: bytes, offset: int) -> None:
        seen.append((offset, len(data), self.size))
        real(self, data, offset)

    monkeypatch.setattr(BlankFile, "write_at", write_at)
    return seen


def _assert_fell_back(fetcher: MemoryFetcher, install: Path, v1: Path) -> None:
    assert tree_digest(install) == tree_digest(v1)
    assert [u for u, _ in fetcher.requests if u.endswith(".zdelta")]
    assert [u for u, _ in fetcher.requests if u.endswith("bin/game.fidx")]  # chunks after all
    assert not list((install / ".stitch/staging").glob("*"))


@pytest.mark.parametrize("damage", ["garbage-frame", "flipped-bytes", "truncated"])
def test_corrupt_delta_with_a_matching_digest_falls_back_to_chunks(
        tmp_path: Path, damage: str) -> None:
    _, v1, _, repo, install, _ = _one_behind(tmp_path)
    chan = repo / "stable/1.1.0/files/bin"
    good = next(chan.glob("game.*.zdelta")).read_bytes()
    if damage == "garbage-frame":
        bad = good[:4] + random.Random(1).randbytes(len(good) - 4)  # zstd magic, then noise
    elif damage == "flipped-bytes":
        bad = bytearray(good)
        for at in range(len(bad) // 3, len(bad), max(1, len(bad) // 50)):
            bad[at] ^= 0x5A
        bad = bytes(bad)
    else:
        bad = good[: len(good) // 2]
    _swap_delta(repo, bad)
    fetcher = memory_fetcher(repo)
    _update(install, fetcher)
    _assert_fell_back(fetcher, install, v1)


def test_tampered_delta_bytes_fall_back_to_chunks(tmp_path: Path) -> None:
    """The server's delta differs from the one the manifest vouches for (its digest)."""
    _, v1, _, repo, install, _ = _one_behind(tmp_path)
    fetcher = memory_fetcher(repo)
    url = next(u for u in fetcher.files if u.endswith(".zdelta") and "/1.1.0/files/bin/" in u)
    body = bytearray(fetcher.files[url])
    body[len(body) // 2] ^= 1
    fetcher.files[url] = bytes(body)
    _update(install, fetcher)
    _assert_fell_back(fetcher, install, v1)


def test_delta_decoding_past_the_file_size_is_cut_before_writing_past_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoder_kind: str) -> None:
    v0, v1, _, repo, install, _ = _one_behind(tmp_path)
    longer = tmp_path / "longer"
    longer.write_bytes((v1 / "bin/game").read_bytes() + bytes(3 << 20))  # a small delta
    made = tmp_path / "longer.zdelta"
    delta.make(v0 / "bin/game", longer, made)
    _swap_delta(repo, made.read_bytes())
    seen = _record_writes(monkeypatch)
    fetcher = memory_fetcher(repo)
    _update(install, fetcher)
    _assert_fell_back(fetcher, install, v1)
    size = (v1 / "bin/game").stat().st_size
    delta_writes = [(at, n) for at, n, s in seen if s == size]
    assert delta_writes and max(at + n for at, n in delta_writes) <= size


def test_delta_that_rebuilds_another_file_is_caught_by_the_hash_on_write(
        tmp_path: Path, decoder_kind: str) -> None:
    """The delta matches its digest and decodes to the right length, but one byte of the
    output is wrong (a publisher's mistake, or a decoder fault): the SHA-256 hashed behind
    the writes catches it right after decoding, and chunks rebuild the file."""
    v0, v1, _, repo, install, _ = _one_behind(tmp_path)
    wrong = bytearray((v1 / "bin/game").read_bytes())
    wrong[len(wrong) // 2] ^= 0xFF
    (tmp_path / "wrong").write_bytes(bytes(wrong))
    made = tmp_path / "wrong.zdelta"
    delta.make(v0 / "bin/game", tmp_path / "wrong", made)
    _swap_delta(repo, made.read_bytes())
    fetcher = memory_fetcher(repo)
    _update(install, fetcher)
    _assert_fell_back(fetcher, install, v1)


def test_decoder_fed_piece_by_piece_is_bounded(tmp_path: Path, decoder_kind: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    rng = random.Random(3)
    base = rng.randbytes(3 << 20)
    old.write_bytes(base)
    new.write_bytes(base[:1 << 20] + rng.randbytes(5000) + base[1 << 20:])
    delta.make(old, new, tmp_path / "d")
    data = (tmp_path / "d").read_bytes()
    size = new.stat().st_size
    for limit in (size, size - 1):
        got = bytearray()

        def write(block: bytes | memoryview, at: int, got: bytearray = got,
                  limit: int = limit) -> None:
            assert at == len(got) and at + len(block) <= limit  # never past the limit
            got.extend(block)

        dec = delta.open_decoder(old, limit, write)
        try:
            for at in range(0, len(data), 777):
                dec.feed(data[at:at + 777])
            dec.finish()
        except FormatError:
            assert limit < size and len(got) <= limit
        else:
            assert limit == size and bytes(got) == new.read_bytes()
        finally:
            dec.close()
    assert delta.max_window(len(base), size) >= len(base) + size


def test_decoder_refuses_a_window_beyond_what_the_pair_needs(
        tmp_path: Path, decoder_kind: str) -> None:
    import zstandard as zstd

    old = tmp_path / "old"
    old.write_bytes(b"x" * 1000)
    params = zstd.ZstdCompressionParameters.from_level(3, window_log=28,
                                                       write_content_size=False)
    cobj = zstd.ZstdCompressor(compression_params=params).compressobj()
    frame = cobj.compress(bytes(range(256)) * 400) + cobj.flush()
    assert zstd.get_frame_parameters(frame).window_size == 1 << 28
    dec = delta.open_decoder(old, 200_000, lambda _b, _o: None)
    try:
        with pytest.raises(FormatError, match="does not decode"):
            dec.feed(frame)
            dec.finish()
    finally:
        dec.close()


def test_decoder_refuses_bytes_after_the_frame_and_a_cut_frame(
        tmp_path: Path, decoder_kind: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(bytes(range(256)) * 200)
    new.write_bytes(bytes(range(256)) * 150 + b"new" * 3000)
    delta.make(old, new, tmp_path / "d")
    data = (tmp_path / "d").read_bytes()
    size = new.stat().st_size
    got = bytearray(size)

    def write(block: bytes | memoryview, at: int) -> None:
        got[at:at + len(block)] = block

    _apply(old, data, size, write)
    assert bytes(got) == new.read_bytes()
    with pytest.raises(FormatError):
        _apply(old, data + data, size, write)  # a second frame: not this delta
    with pytest.raises(FormatError):
        _apply(old, data[:-3], size, write)  # cut short


_LOADED = (
    "import sys\n"
    "from app.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "heavy = ('numpy', 'pyfastcdc', 'xxhash', 'PySide6')\n"
    "print(code, *sorted(m for m in heavy if m in sys.modules))\n"
)


def test_update_by_delta_starts_without_the_chunk_machinery(
        tmp_path: Path, plain_server) -> None:  # type: ignore[no-untyped-def]
    """Start-up: a launcher's update rebuilt from a delta, and the next run that finds
    nothing to do, import neither numpy (the planner, indexes) nor the chunker nor Qt."""
    v0, v1, _ = _versions(tmp_path)
    (v1 / "readme.txt").write_bytes((v0 / "readme.txt").read_bytes())  # only the delta
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v0, repo, "1.0.0", deltas=True)
    _update(install, memory_fetcher(repo))
    publish(v1, repo, "1.1.0", deltas=True)
    url = plain_server(repo)
    cmd = [sys.executable, "-c", _LOADED, "update", "--url", url, "--dir", str(install),
           "--progress", "none"]
    root = Path(__file__).parent.parent
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root)
    assert first.stdout.split() == ["0"], first.stderr
    assert tree_digest(install) == tree_digest(v1)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root)
    assert again.stdout.split() == ["0"], again.stderr
