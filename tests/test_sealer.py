"""The sealer: whole-file SHA-256 hashed behind the writes on a worker thread, one fsync per
file; and, through the updater, that a byte spoilt between a chunk's check and the disk is
caught before anything is committed."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.outcome import EXIT_REJECTED, exit_code_for
from core import fsutil
from core.engine import assemble, rebuild
from core.engine.assemble import BATCH_SYNC_FILES
from core.engine.sealer import Sealer
from core.engine.updater import Updater, UpdaterConfig
from core.errors import CancelledError, HashMismatchError
from core.fsutil import HAS_SYNCFS
from core.net.fetcher import MemoryFetcher
from core.progress import CancelToken
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

# Staged files are opened read-write (Windows fsync needs write access) and binary.
O_BINARY = getattr(os, "O_BINARY", 0)


def _file(tmp_path: Path, size: int, seed: int = 1) -> tuple[Path, bytes]:
    data = random.Random(seed).randbytes(size)
    path = tmp_path / "f.part"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("marked", [1.0, 0.7, 0.0])
def test_digest_of_pieces_marked_in_any_order(tmp_path: Path, marked: float) -> None:
    """Marks (in any order, overlapping, some missing) only let hashing start early: the
    digest is the file's either way, and progress adds up to its size."""
    size = 9_000_001
    path, data = _file(tmp_path, size)
    rng = random.Random(2)
    cuts = sorted({0, size, *(rng.randrange(size) for _ in range(300))})
    pieces = list(itertools.pairwise(cuts))
    rng.shuffle(pieces)
    pieces = pieces[:int(len(pieces) * marked)]
    pieces += pieces[:10]  # marked twice
    fd = os.open(path, os.O_RDWR | O_BINARY)
    sealer = Sealer()
    try:
        written = sealer.track(fd, path, size)
        for a, b in pieces:
            written(a, b)
        sealer.complete(fd)
        progress: list[int] = []
        assert sealer.result(fd, CancelToken(), progress.append) \
            == hashlib.sha256(data).hexdigest()
        assert sum(progress) == size == sealer.hashed(fd)
        sealer.forget(fd)
    finally:
        sealer.close()
        os.close(fd)


def test_many_files_and_an_empty_one(tmp_path: Path) -> None:
    sealer = Sealer()
    fds: list[tuple[int, str]] = []
    try:
        for i, size in enumerate([0, 1, 5 << 20, 123_457]):
            sub = tmp_path / str(i)
            sub.mkdir()
            path, data = _file(sub, size, seed=i)
            fd = os.open(path, os.O_RDWR | O_BINARY)
            fds.append((fd, hashlib.sha256(data).hexdigest()))
            sealer.track(fd, path, size)(0, size)
            sealer.complete(fd)
        for fd, want in reversed(fds):
            assert sealer.result(fd, CancelToken()) == want
    finally:
        sealer.close()
        for fd, _ in fds:
            os.close(fd)


def test_workers_never_share_a_file(tmp_path: Path) -> None:
    """Several workers: big files written in many marked pieces (each mark may wake a
    worker while another is on the file) and many small ones completed at once all get
    their own digest: a file's hash is fed by one worker at a time, in order."""
    sealer = Sealer()
    fds: list[tuple[int, str]] = []
    try:
        for i in range(300):
            size = 3 * fsutil.READ_BLOCK + 17 if i % 50 == 0 else 700 + i
            sub = tmp_path / str(i)
            sub.mkdir()
            path, data = _file(sub, size, seed=i)
            fd = os.open(path, os.O_RDWR | O_BINARY)
            fds.append((fd, hashlib.sha256(data).hexdigest()))
            written = sealer.track(fd, path, size)
            for a in range(0, size, 4096):
                written(a, min(size, a + 4096))
            sealer.complete(fd)
        for fd, want in fds:
            assert sealer.result(fd, CancelToken()) == want
    finally:
        sealer.close()
        for fd, _ in fds:
            os.close(fd)


def test_a_file_shorter_than_its_size_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, 1000)
    fd = os.open(path, os.O_RDWR | O_BINARY)
    sealer = Sealer()
    try:
        sealer.track(fd, path, 5000)
        sealer.complete(fd)
        with pytest.raises(OSError, match="ends at 1000"):
            sealer.result(fd, CancelToken())
    finally:
        sealer.close()
        os.close(fd)


def test_waiting_for_a_result_sees_cancel(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, 1000)
    fd = os.open(path, os.O_RDWR | O_BINARY)
    sealer = Sealer()
    cancel = CancelToken()
    try:
        sealer.track(fd, path, 1000)  # never completed: the result would never come
        cancel.cancel()
        with pytest.raises(CancelledError):
            sealer.result(fd, cancel)
    finally:
        sealer.close()
        os.close(fd)


def test_a_byte_spoilt_between_the_chunk_check_and_the_disk_is_caught(
        game: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk is checked before it is written; a fault after that check (here: the
    write puts one wrong byte on disk) is caught by the SHA-256 hashed behind the writes,
    and the install stays the old release."""
    v1, v2 = game
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    install = tmp_path / "install"
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).apply()
    publish(v2, repo, "2.0.0")
    before = tree_digest(install)

    real = rebuild.pwritev
    spoilt: list[int] = []

    def faulty(fd: int, chunks: list[bytes | bytearray | memoryview], offset: int) -> None:
        real(fd, chunks, offset)  # downloaded chunks, each checked just before
        if not spoilt and len(chunks[0]) > 100:
            spoilt.append(offset)
            fsutil.pwrite(fd, bytes([chunks[0][50] ^ 0x01]), offset + 50)

    monkeypatch.setattr(rebuild, "pwritev", faulty)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo))
    with pytest.raises(HashMismatchError) as info:
        up.apply()
    up.close()
    assert spoilt
    assert exit_code_for(info.value) == EXIT_REJECTED
    assert tree_digest(install) == before
    assert not (install / ".stitch/journal.json").exists()


def _small_tree(root: Path, files: int, version: int) -> Path:
    rng = random.Random(3)
    for i in range(files):
        (root / f"d{i % 5}").mkdir(parents=True, exist_ok=True)
        body = rng.randbytes(rng.randrange(200, 2000))
        (root / f"d{i % 5}" / f"f{i:03}.bin").write_bytes(b"v%d " % version + body)
    return root


@dataclass
class _SmallFiles:
    """An install on 1.0.0 and a published 2.0.0 that changes each of its small files;
    ``os.fsync`` counts the staged files it syncs (``.part`` names, Linux only: elsewhere
    no fd names to tell staged files by)."""

    v2: Path
    repo: Path
    install: Path
    staged_fsyncs: list[str]

    def update(self) -> MemoryFetcher:
        """One update of the install from the repository; its fetcher."""
        fetcher = memory_fetcher(self.repo)
        Updater(UpdaterConfig(url=MEM, install_dir=self.install), fetcher=fetcher).apply()
        return fetcher

    def updated(self) -> bool:
        return tree_digest(self.install) == tree_digest(self.v2)


@pytest.fixture
def small_files(tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Callable[[int], _SmallFiles]:
    """``small_files(n)``: the set-up of an update of ``n`` changed small files."""

    def make(files: int) -> _SmallFiles:
        v1 = _small_tree(tmp_path / "v1", files, 1)
        v2 = _small_tree(tmp_path / "v2", files, 2)
        repo, install = tmp_path / "repo", tmp_path / "install"
        publish(v1, repo, "1.0.0")
        run = _SmallFiles(v2, repo, install, [])
        run.update()
        publish(v2, repo, "2.0.0")
        real_fsync = os.fsync

        def fsync(fd: int) -> None:  # the real fsync, counted when it is a staged file's
            name = os.readlink(f"/proc/self/fd/{fd}") if sys.platform == "linux" else ""
            if name.endswith(".part"):
                run.staged_fsyncs.append(name)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        return run

    return make


@pytest.mark.parametrize("files", [BATCH_SYNC_FILES - 4, BATCH_SYNC_FILES + 36])
def test_many_small_files_are_made_durable_in_one_sync(
        files: int, small_files: Callable[[int], _SmallFiles],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An update of many small files fsyncs none of them one by one: it syncs the file
    system once, after every file is hashed and compared and before any is marked ready
    (Linux ``syncfs``); a smaller update, or a system without it, fsyncs each file."""
    run = small_files(files)
    fs_syncs: list[list[str]] = []
    real_sync = assemble.sync_filesystem

    def sync_filesystem(fd: int) -> bool:  # the real one, counted, with what is ready then
        staging = run.install / ".stitch/staging"
        fs_syncs.append(sorted(p.name for p in staging.glob("*.ready")))
        return real_sync(fd)

    monkeypatch.setattr(assemble, "sync_filesystem", sync_filesystem)
    run.update()
    assert run.updated()
    if files >= BATCH_SYNC_FILES and HAS_SYNCFS:
        assert fs_syncs == [[]]  # once, before any file was marked ready
        assert run.staged_fsyncs == []
    else:
        assert fs_syncs == []
        if sys.platform == "linux":  # (elsewhere no fd names to tell staged files by)
            assert len(run.staged_fsyncs) == files


def test_a_many_file_run_stopped_before_the_commit_is_not_fetched_again(
        small_files: Callable[[int], _SmallFiles], monkeypatch: pytest.MonkeyPatch) -> None:
    """Files synced at once keep their staging names; a run stopped right before the
    commit leaves them durable there, and the next run fetches nothing but metadata."""
    files = BATCH_SYNC_FILES + 36
    run = small_files(files)
    before = tree_digest(run.install)

    def stop(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt  # as if killed right before the commit

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(Updater, "_install", stop)
        run.update()
    assert tree_digest(run.install) == before
    staging = run.install / ".stitch/staging"
    kept = list(staging.glob("*.part")) + list(staging.glob("*.ready"))
    assert len(kept) == files
    if HAS_SYNCFS:  # synced at once: no rename to .ready either
        assert not list(staging.glob("*.ready"))
    fetcher = run.update()
    assert run.updated()
    # Metadata only (the pointer, the manifest, its signature, and each file's index, to
    # check a .part against, as after any interruption): no pack, delta or file bytes.
    fetched = [url.rsplit("/", 1)[-1] for url, _ in fetcher.requests]
    assert fetched and all(n.startswith(("latest.json", "release.json")) or
                           n.endswith(".fidx") for n in fetched), fetched


@pytest.mark.skipif(sys.platform != "linux", reason="names staged files through /proc")
def test_without_syncfs_a_many_file_plan_fsyncs_each_file(
        small_files: Callable[[int], _SmallFiles], monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the C library has no ``syncfs`` after all (``sync_filesystem`` says False),
    every staged file of a many-file plan is fsynced before any is committed."""
    files = BATCH_SYNC_FILES + 6
    run = small_files(files)
    monkeypatch.setattr(assemble, "sync_filesystem", lambda fd: False)
    run.update()
    assert run.updated()
    assert len(set(run.staged_fsyncs)) == files
