"""The updater against an in-memory server: what it downloads, what it writes, and that a
failure at any point leaves the old install as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.errors import (
    CancelledError,
    DowngradeError,
    HashMismatchError,
    HTTPStatusError,
    NotEnoughSpaceError,
    UnsafePathError,
)
from core.net.fetcher import MemoryFetcher
from core.progress import CancelToken, Phase, Progress
from core.publisher.publish import publish
from tests.conftest import MEM, UNDER_WINE, memory_fetcher, tree_digest


def _update(install: Path, fetcher: MemoryFetcher, **kw: object):  # type: ignore[no-untyped-def]
    progress: list[Progress] = kw.pop("progress_log", [])  # type: ignore[assignment]
    up = Updater(UpdaterConfig(url=MEM, install_dir=install, **kw), fetcher=fetcher,  # type: ignore[arg-type]
                 progress=progress.append)
    return up, up.update()


@pytest.fixture
def releases(tmp_path: Path, game: tuple[Path, Path]) -> tuple[Path, Path, Path]:
    v1, v2 = game
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0", product="quest")
    return repo, v1, v2


def test_first_install_then_update_then_up_to_date(tmp_path: Path,
                                                   releases: tuple[Path, Path, Path]) -> None:
    repo, v1, v2 = releases
    install = tmp_path / "install"
    _, r = _update(install, memory_fetcher(repo))
    assert r.outcome is Outcome.UPDATED and r.to_version == "1.0.0"
    assert tree_digest(install) == tree_digest(v1)
    assert os.access(install / "bin/stitchquest", os.X_OK)

    report = publish(v2, repo, "1.1.0")
    fetcher = memory_fetcher(repo)
    log: list[Progress] = []
    up, r = _update(install, fetcher, progress_log=log)
    assert tree_digest(install) == tree_digest(v2)
    assert not (install / "docs/changelog-1.txt").exists()
    assert os.access(install / "bin/stitchquest", os.X_OK)
    assert r.from_version == "1.0.0" and r.to_version == "1.1.0"

    # Bytes asked of the server: exactly the planned ranges, which are the new chunks
    # (plus gaps the cost model chose to bridge) — far less than the release.
    file_ranges = [rs for url, rs in fetcher.requests if rs is not None
                   and not url.endswith(".fidx")]
    ranged = sum(b - a for rs in file_ranges for a, b in rs)
    plan = up.prepare()
    assert ranged == plan.bytes_to_download
    assert report.new_bytes <= ranged <= report.new_bytes * 1.25
    assert plan.bytes_reused + plan.bytes_to_download == plan.bytes_needed
    # Renamed textures come from the old files: none of them is fetched.
    assert not [u for u, rs in fetcher.requests if rs and "stone0" in u]
    # Phases in order, each at most once in sequence.
    phases = [p.phase for p in log]
    order = [Phase.CHECK, Phase.SCAN, Phase.PLAN, Phase.REBUILD, Phase.DOWNLOAD,
             Phase.VERIFY, Phase.INSTALL, Phase.DONE]
    seen = [ph for i, ph in enumerate(phases) if i == 0 or phases[i - 1] is not ph]
    assert seen == order
    index_bytes = sum(len(fetcher.files[u]) if rs is None else sum(b - a for a, b in rs)
                      for u, rs in fetcher.requests if u.endswith((".fidx", ".fidx.groups")))
    assert log[-1].bytes_network == plan.bytes_to_download + index_bytes

    fetcher = memory_fetcher(repo)
    _, r = _update(install, fetcher)
    assert r.outcome is Outcome.UP_TO_DATE
    assert all(not u.endswith(".fidx") and rs is None for u, rs in fetcher.requests)


def test_remote_ranges_are_fetched_while_local_chunks_are_copied(
        tmp_path: Path, releases: tuple[Path, Path, Path]) -> None:
    """The planned ranges are requested during the rebuild, on another thread: the copies
    wait (at their last progress report) until a file's data has been asked for (the first
    request is made during the rebuild; on a slow machine, or under wine, the other thread
    may still be asking for the next files when the download phase begins). The
    download phase begins with what was fetched meanwhile and ends at its total."""
    repo, install, _before = _v1_installed_v2_published(tmp_path, releases)
    fetched = threading.Event()
    phase_when_asked: list[Phase] = []
    log: list[Progress] = []

    class Watching(MemoryFetcher):
        def fetch_ranges(self, url, ranges, sink, cancel=None):  # type: ignore[no-untyped-def]
            ours = "/files/" in url and not url.endswith((".fidx", ".groups", ".sub"))
            if ours:
                phase_when_asked.append(log[-1].phase)
            super().fetch_ranges(url, ranges, sink, cancel)
            if ours:
                fetched.set()

    def progress(p: Progress) -> None:
        log.append(p)
        if p.phase is Phase.REBUILD and p.done and p.done == p.total:
            fetched.wait(10)  # bounded: a run that fetches only afterwards fails below

    fetcher = Watching(memory_fetcher(repo).files)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher,
                 progress=progress)
    r = up.update()
    assert r.outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(releases[2])
    # Asked on the fetch-ahead thread, which starts as the rebuild begins (the last report
    # it saw may still be the plan's); on a loaded machine its later files may be asked for
    # once the download phase has begun, which waits for it.
    assert phase_when_asked and phase_when_asked[0] in (Phase.PLAN, Phase.REBUILD)
    downloads = [p for p in log if p.phase is Phase.DOWNLOAD]
    assert downloads[0].done > 0  # fetched during the rebuild
    assert [p.done for p in downloads] == sorted(p.done for p in downloads)
    assert downloads[-1].done == downloads[-1].total == up.prepare().bytes_to_download


def test_unchanged_files_are_not_read_again(tmp_path: Path, releases: tuple[Path, Path, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _, v2 = releases
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0")
    import core.chunks.chunker

    read: list[str] = []
    real = core.chunks.chunker.chunk_file
    monkeypatch.setattr(core.chunks.chunker, "chunk_file",
                        lambda p, *a, **k: (read.append(str(p)), real(p, *a, **k))[1])
    _update(install, memory_fetcher(repo))
    assert read == []  # every seed came from the index cache, vouched by the fingerprint
    assert tree_digest(install) == tree_digest(v2)


def test_repair_downloads_only_damaged_chunks(tmp_path: Path,
                                              releases: tuple[Path, Path, Path]) -> None:
    repo, v1, _ = releases
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    wad = install / "data/game.wad"
    data = bytearray(wad.read_bytes())
    data[100_000:100_010] = b"corrupted!"
    wad.write_bytes(bytes(data))
    (install / "readme.txt").unlink()
    fetcher = memory_fetcher(repo)
    _, _r = _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v1)
    ranged = sum(b - a for _, rs in fetcher.requests if rs for a, b in rs)
    assert ranged <= (install / "readme.txt").stat().st_size + 2 * 65536


def test_install_over_existing_files_reuses_them(tmp_path: Path,
                                                 releases: tuple[Path, Path, Path]) -> None:
    repo, v1, _ = releases
    install = tmp_path / "install"
    shutil.copytree(v1, install)  # a folder with the files but no .stitch state
    fetcher = memory_fetcher(repo)
    _, _r = _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v1)
    assert not [rs for _, rs in fetcher.requests if rs]


def _break(fetcher: MemoryFetcher, suffix: str, change) -> None:  # type: ignore[no-untyped-def]
    url = next(u for u in fetcher.files if u.endswith(suffix))
    fetcher.files[url] = change(fetcher.files[url])


def _v1_installed_v2_published(tmp_path: Path, releases: tuple[Path, Path, Path]):  # type: ignore[no-untyped-def]
    repo, _v1, v2 = releases
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0")
    return repo, install, tree_digest(install)


def _flip(data: bytes) -> bytes:
    at = min(5000, len(data) // 2)
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _flip_records(data: bytes) -> bytes:
    """Every record of a .fidx changed: whichever leaves a client fetches are wrong."""
    return data[:80] + bytes(x ^ 0xFF for x in data[80:-32]) + data[-32:]


@pytest.mark.parametrize("what,change,error", [
    ("1.1.0/files/data/game.wad", _flip, HashMismatchError),
    ("1.1.0/files/data/game.wad.fidx", _flip_records, HashMismatchError),
    # A bad .fidx.groups is not used (the whole .fidx instead): tests/test_fallbacks.py.
    ("1.1.0/release.json", lambda d: d.replace(b"1.1.0", b"1.1.1"), HashMismatchError),
])
def test_bad_server_content_changes_nothing(tmp_path: Path, releases: tuple[Path, Path, Path],
                                            what: str, change, error: type) -> None:  # type: ignore[no-untyped-def]
    repo, install, before = _v1_installed_v2_published(tmp_path, releases)
    fetcher = memory_fetcher(repo)
    _break(fetcher, what, change)
    with pytest.raises(error) as e:
        _update(install, fetcher)
    assert e.value.url == f"{MEM}/stable/{what}"  # where the bad bytes came from
    # The local file that held them: a staged file for the release file, none for the rest.
    held = Path(e.value.path) if e.value.path else None
    assert (held is not None and held.parent == install / ".stitch" / "staging") == \
        what.endswith(".wad")
    assert tree_digest(install) == before


def test_missing_manifest_is_a_download_error(tmp_path: Path,
                                              releases: tuple[Path, Path, Path]) -> None:
    repo, install, before = _v1_installed_v2_published(tmp_path, releases)
    fetcher = memory_fetcher(repo)
    del fetcher.files[f"{MEM}/stable/1.1.0/release.json"]
    with pytest.raises(HTTPStatusError) as e:
        _update(install, fetcher)
    assert e.value.status_code == 404
    assert tree_digest(install) == before


def _republish_with(repo: Path, mutate) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the current manifest (and the pointer's digest) as a hostile server would."""
    from core.formats.manifest import Pointer, encode_pointer, parse_pointer

    chan = repo / "stable"
    pointer = parse_pointer((chan / "latest.json").read_bytes())
    path = chan / pointer.manifest
    obj = json.loads(path.read_bytes())
    mutate(obj)
    data = json.dumps(obj).encode()
    path.write_bytes(data)
    (chan / "latest.json").write_bytes(encode_pointer(Pointer(
        obj["version"], pointer.manifest, hashlib.sha256(data).hexdigest())))


@pytest.mark.parametrize("evil", ["../../escaped.txt", "/etc/evil", "C:\\evil", "CON"])
def test_unsafe_manifest_path_writes_nothing(tmp_path: Path, releases: tuple[Path, Path, Path],
                                             evil: str) -> None:
    repo, install, before = _v1_installed_v2_published(tmp_path, releases)
    _republish_with(repo, lambda o: o["files"].__setitem__(0, {**o["files"][0], "path": evil}))
    with pytest.raises(UnsafePathError):
        _update(install, memory_fetcher(repo))
    assert tree_digest(install) == before
    assert not (tmp_path / "escaped.txt").exists()


def test_downgrade_refused_unless_allowed(tmp_path: Path,
                                          releases: tuple[Path, Path, Path]) -> None:
    repo, install, _ = _v1_installed_v2_published(tmp_path, releases)
    _update(install, memory_fetcher(repo))
    publish(releases[1], repo, "1.0.1", force=True)  # 1.0.1 < installed 1.1.0
    with pytest.raises(DowngradeError):
        _update(install, memory_fetcher(repo))
    _, r = _update(install, memory_fetcher(repo), allow_downgrade=True)
    assert r.to_version == "1.0.1" and tree_digest(install) == tree_digest(releases[1])


class _CancelAfter(MemoryFetcher):
    """Cancels the update after ``n`` range requests (as Ctrl+C would)."""

    def __init__(self, files: dict[str, bytes], token: CancelToken, n: int) -> None:
        super().__init__(files)
        self.token, self.n = token, n
        self.delivered = 0

    def fetch_ranges(self, url, ranges, sink, cancel=None):  # type: ignore[no-untyped-def]
        def counting(offset: int, data: bytes) -> None:
            sink(offset, data)
            self.delivered += len(data)

        super().fetch_ranges(url, ranges, counting, cancel)
        self.n -= 1
        if self.n <= 0:
            self.token.cancel()


def test_cancel_keeps_install_and_resume_does_not_refetch(
        tmp_path: Path, releases: tuple[Path, Path, Path]) -> None:
    repo, install, before = _v1_installed_v2_published(tmp_path, releases)
    baseline = tmp_path / "baseline"
    shutil.copytree(install, baseline)
    token = CancelToken()
    first = _CancelAfter(memory_fetcher(repo).files, token, 2)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=first, cancel=token)
    with pytest.raises(CancelledError):
        up.update()
    assert tree_digest(install) == before
    got_first = first.delivered
    assert got_first > 0

    second = memory_fetcher(repo)
    up2 = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=second)
    plan = up2.prepare()
    up2.apply()
    assert tree_digest(install) == tree_digest(releases[2])
    got_second = sum(b - a for _, rs in second.requests if rs for a, b in rs)
    # What the first run fetched is reused from the .part files, not downloaded again.
    assert got_second == plan.bytes_to_download
    f = memory_fetcher(repo)
    _update(baseline, f)
    assert got_second == sum(b - a for _, rs in f.requests if rs for a, b in rs) - got_first


def test_not_enough_space_is_checked_before_writing(tmp_path: Path,
                                                    releases: tuple[Path, Path, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo, install, before = _v1_installed_v2_published(tmp_path, releases)
    import core.engine.updater

    monkeypatch.setattr(core.engine.updater, "free_space", lambda p: 1000)
    with pytest.raises(NotEnoughSpaceError):
        _update(install, memory_fetcher(repo))
    assert tree_digest(install) == before
    assert not (install / ".stitch/staging").exists() or not any(
        (install / ".stitch/staging").iterdir())


@pytest.mark.parametrize("swap", [True, False])
def test_crash_during_commit_rolls_forward(tmp_path: Path, releases: tuple[Path, Path, Path],
                                           monkeypatch: pytest.MonkeyPatch, swap: bool) -> None:
    """``swap``: files swapped in (core.system.exchange, where the system has it); else
    moved aside and in."""
    repo, install, _before = _v1_installed_v2_published(tmp_path, releases)
    import core.engine.commit
    from core.system.exchange import exchanger

    calls = {"n": 0}
    real = os.replace
    real_swapper = core.engine.commit.swapper
    if swap and exchanger(tmp_path) is None:
        pytest.skip("no renameat2 here: the moves are the commit (the other case)")

    def dying_replace(a, b):  # type: ignore[no-untyped-def]
        if str(a).endswith(".ready"):  # a staged file moving into place
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("simulated power cut")
        return real(a, b)

    def dying_swapper(folder):  # type: ignore[no-untyped-def]
        inner = exchanger(folder)

        def dying_swap(a, b):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("simulated power cut")
            inner(a, b)

        return dying_swap

    if swap:
        monkeypatch.setattr(core.engine.commit, "swapper", dying_swapper)
    else:
        monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
        monkeypatch.setattr(core.engine.commit.os, "replace", dying_replace)
    with pytest.raises(OSError, match="power cut"):
        _update(install, memory_fetcher(repo))
    assert (install / ".stitch/journal.json").exists()
    monkeypatch.setattr(core.engine.commit.os, "replace", real)
    monkeypatch.setattr(core.engine.commit, "swapper", real_swapper)
    # The next run finishes the commit first, then finds itself up to date.
    fetcher = memory_fetcher(repo)
    _, r = _update(install, fetcher)
    assert r.outcome is Outcome.UP_TO_DATE
    assert tree_digest(install) == tree_digest(releases[2])
    assert not (install / ".stitch/journal.json").exists()
    assert not (install / ".stitch/backup").exists()


def test_a_locked_file_is_waited_for_and_reported(tmp_path: Path,
                                                 releases: tuple[Path, Path, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The game still running holds a file (Windows' sharing violation, simulated): the commit
    tells who, waits, and goes on once the file is free."""
    repo, install, _before = _v1_installed_v2_published(tmp_path, releases)
    import core.system.winfiles

    busy = {"n": 2}
    real = os.replace

    def locked_replace(a, b):  # type: ignore[no-untyped-def]
        if str(a).endswith(".ready") and busy["n"] > 0:
            busy["n"] -= 1
            err = PermissionError(13, "The process cannot access the file")
            err.winerror = 32  # type: ignore[attr-defined]
            raise err
        return real(a, b)

    monkeypatch.setattr(core.system.winfiles, "is_locked_error",
                        lambda e, windows=None: getattr(e, "winerror", None) == 32)
    import core.engine.commit  # Windows moves files (it has no swap of two names)

    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
    monkeypatch.setattr(os, "replace", locked_replace)
    log: list[Progress] = []
    _, r = _update(install, memory_fetcher(repo), progress_log=log)
    assert r.outcome is Outcome.UPDATED
    assert busy["n"] == 0
    assert tree_digest(install) == tree_digest(releases[2])
    said = [p.message for p in log if "in use" in p.message]
    assert len(said) == 1 and said[0].endswith("close it to continue"), said


def test_read_only_install_folder_fails_cleanly(tmp_path: Path,
                                                releases: tuple[Path, Path, Path]) -> None:
    if sys.platform == "win32":
        pytest.skip("Windows ignores a folder's mode bits (no read-only folders by chmod)")
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions (tested in the CLI test with a rlimit)")
    repo, install, before = _v1_installed_v2_published(tmp_path, releases)
    install.chmod(0o555)
    try:
        with pytest.raises(OSError):
            _update(install, memory_fetcher(repo))
    finally:
        install.chmod(0o755)
    assert tree_digest(install) == before


@pytest.mark.skipif(UNDER_WINE, reason="wine shows a Unix symlink to Windows programs as a "
                    "plain folder, not a reparse point (checked on a real Windows runner)")
def test_symlinked_folder_pointing_out_is_refused(tmp_path: Path,
                                                  releases: tuple[Path, Path, Path]) -> None:
    repo, install, _ = _v1_installed_v2_published(tmp_path, releases)
    outside = tmp_path / "outside"
    shutil.move(str(install / "data"), outside)
    (install / "data").symlink_to(outside, target_is_directory=True)
    before = tree_digest(outside)
    with pytest.raises(UnsafePathError):
        _update(install, memory_fetcher(repo))
    assert tree_digest(outside) == before
    assert not (install / ".stitch/journal.json").exists()


def test_files_verified_before_an_interruption_are_not_fetched_again(
        tmp_path: Path, releases: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stopped between verify and commit leaves .ready files: the next run uses them."""
    repo, install, before = _v1_installed_v2_published(tmp_path, releases)
    import core.engine.updater

    def stop(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt  # as if killed right before the commit

    monkeypatch.setattr(core.engine.updater.Updater, "_install", stop)
    with pytest.raises(KeyboardInterrupt):
        _update(install, memory_fetcher(repo))
    monkeypatch.undo()
    assert tree_digest(install) == before
    assert list((install / ".stitch/staging").glob("*.ready"))
    fetcher = memory_fetcher(repo)
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(releases[2])
    assert not [rs for _, rs in fetcher.requests if rs]  # nothing but metadata


@pytest.mark.skipif(sys.platform == "win32", reason="Windows files have no executable bits")
def test_executable_bits_of_unchanged_files_follow_the_release(tmp_path: Path) -> None:
    """Modes are part of a release: an unchanged file whose flag flips, or whose bits the
    player changed, gets the release's bits at the next update; files already right are
    left alone."""
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    for v in (v1, v2):
        v.mkdir()
        (v / "run.sh").write_bytes(b"#!/bin/sh\necho game\n")
        (v / "data.bin").write_bytes(b"level data" * 100)
        (v / "tool").write_bytes(b"\x7fELF tool")
        (v / "readme.txt").write_text(f"release {v.name}\n")
    (v1 / "run.sh").chmod(0o755)
    (v1 / "data.bin").chmod(0o644)
    (v1 / "tool").chmod(0o755)
    (v2 / "run.sh").chmod(0o644)  # flipped off
    (v2 / "data.bin").chmod(0o755)  # flipped on
    (v2 / "tool").chmod(0o755)  # unchanged, but the player will clear it
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v1, repo, "1.0.0")
    _update(install, memory_fetcher(repo))
    assert os.access(install / "run.sh", os.X_OK) and os.access(install / "tool", os.X_OK)
    (install / "tool").chmod(0o644)
    publish(v2, repo, "2.0.0")
    _, result = _update(install, memory_fetcher(repo))
    assert result.outcome is Outcome.UPDATED and result.files_changed == 1  # readme only
    modes = {n: (install / n).stat().st_mode & 0o777 for n in ("run.sh", "data.bin", "tool")}
    assert modes == {"run.sh": 0o644, "data.bin": 0o755, "tool": 0o755}


@pytest.mark.parametrize("swap", [True, False])
def test_a_release_that_turns_a_file_into_a_folder_and_a_folder_into_a_file(
        tmp_path: Path, swap: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """"data" was a file and holds a file now; "maps/e1" held a file and is one now. The
    commit removes before it places (a folder cannot be made where a file still is): this
    update failed at every run, its journal stuck. ``swap``: files swapped in (Linux), else
    moved aside (Windows)."""
    import core.engine.commit
    from core.system.exchange import exchanger

    if swap and exchanger(tmp_path) is None:
        pytest.skip("no renameat2 here: the moves are the other case")
    if not swap:
        monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    for root, files in ((v1, {"data": b"a file", "maps/e1/level.dat": b"a level",
                              "keep.txt": b"same"}),
                        (v2, {"data/x.bin": b"in the folder", "maps/e1": b"a file now",
                              "keep.txt": b"same"})):
        for rel, content in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    assert tree_digest(install) == tree_digest(v1)
    publish(v2, repo, "1.1.0")
    _, r = _update(install, memory_fetcher(repo))
    assert r.outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)
    assert not (install / ".stitch/journal.json").exists()
