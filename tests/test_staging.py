"""Staging files created on another thread (``core.engine.staging.LaterFile``,
``create_all``): using one waits until it exists; an error or a cancel reaches whoever uses
the files it left uncreated; a file closed first is never made; ``write_whole`` hashes what
it reads back, syncs when asked, and closes."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from core.engine import staging
from core.engine.staging import LaterFile, create_all
from core.errors import CancelledError, HashMismatchError
from core.progress import CancelToken


def test_files_are_created_in_order_and_usable_once_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [LaterFile(tmp_path / "s" / f"f{i}.part", 10 + i) for i in range(20)]
    made: list[str] = []
    gate = threading.Event()
    real = staging._create_empty

    def slow_create(path: Path) -> int:
        gate.wait(10)  # the first file waits until its writer is already waiting for it
        fd = real(path)
        made.append(path.name)
        return fd

    monkeypatch.setattr(staging, "_create_empty", slow_create)
    t = threading.Thread(target=create_all, args=(files, CancelToken()))
    t.start()
    gate.set()
    files[5].write_at(b"hello", 2)  # waits for the file; sizes it first
    t.join(10)
    assert not t.is_alive()
    assert made == [f"f{i}.part" for i in range(20)]
    for f in files:
        assert f.path.exists()
        f.close()
    assert (tmp_path / "s" / "f5.part").read_bytes() == b"\0\0hello" + bytes(8)


def test_a_file_left_by_an_earlier_run_is_emptied(tmp_path: Path) -> None:
    (tmp_path / "a.part").write_bytes(b"stale bytes of another run")
    f = LaterFile(tmp_path / "a.part", 3)
    create_all([f], CancelToken())
    f.write_whole(b"new", False)
    assert (tmp_path / "a.part").read_bytes() == b"new"


@pytest.mark.parametrize("durable", [False, True])
def test_write_whole_hashes_what_is_on_disk_and_closes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    data = b"small file " * 50
    f = LaterFile(tmp_path / "a.part", len(data))
    create_all([f], CancelToken())
    fd = f.fd
    f.write_whole(data, durable)
    assert f.path.read_bytes() == data
    assert f.digest == hashlib.sha256(data).hexdigest()
    assert f.fd == -1
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
    assert synced == ([fd] if durable else [])


def test_write_whole_refuses_another_length(tmp_path: Path) -> None:
    f = LaterFile(tmp_path / "a.part", 4)
    create_all([f], CancelToken())
    with pytest.raises(ValueError):
        f.write_whole(b"12345", False)
    assert f.digest == "" and f.fd >= 0
    f.close()


def test_write_whole_refuses_bytes_of_another_digest_and_stays_open(tmp_path: Path) -> None:
    """``expect``: what was read back must have that SHA-256; else the file is left open
    for the next step, which empties it and writes it again."""
    f = LaterFile(tmp_path / "a.part", 4)
    create_all([f], CancelToken())
    with pytest.raises(HashMismatchError):
        f.write_whole(b"evil", False, hashlib.sha256(b"good").hexdigest())
    assert f.digest == "" and f.fd >= 0
    f.reset()
    f.write_at(b"go", 0)
    f.close()
    assert f.path.read_bytes() == b"go\0\0"
    g = LaterFile(tmp_path / "b.part", 4)
    create_all([g], CancelToken())
    g.write_whole(b"good", False, hashlib.sha256(b"good").hexdigest())
    assert g.digest == hashlib.sha256(b"good").hexdigest() and g.fd == -1


def test_an_error_reaches_the_file_and_those_after_it(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"x")  # a file where a folder must be
    files = [LaterFile(tmp_path / "ok" / "a.part", 1),
             LaterFile(tmp_path / "blocker" / "b.part", 1),
             LaterFile(tmp_path / "ok" / "c.part", 1)]
    with pytest.raises(OSError):
        create_all(files, CancelToken())
    assert files[0].fd >= 0
    for f in files[1:]:
        with pytest.raises(OSError):
            f.write_at(b"x", 0)
    assert not (tmp_path / "ok" / "c.part").exists()
    files[0].close()


def test_a_cancel_leaves_the_rest_uncreated(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    files = [LaterFile(tmp_path / f"f{i}.part", 1) for i in range(3)]
    with pytest.raises(CancelledError):
        create_all(files, token)
    for f in files:
        with pytest.raises(CancelledError):
            _ = f.fd
        assert not f.path.exists()


def test_a_file_closed_before_it_is_created_is_never_made(tmp_path: Path) -> None:
    files = [LaterFile(tmp_path / f"f{i}.part", 1) for i in range(2)]
    files[0].close()
    create_all(files, CancelToken())
    assert not files[0].path.exists() and files[1].path.exists()
    files[1].close()
