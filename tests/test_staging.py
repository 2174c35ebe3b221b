"""Staging files created on another thread (``core.engine.staging.LaterFile``,
``create_all``): using one waits until it exists and is tracked; an error or a cancel
reaches whoever uses the files it left uncreated; a file closed first is never made."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from core.engine.staging import LaterFile, create_all
from core.errors import CancelledError
from core.progress import CancelToken


def _tracker(log: list[str]) -> Callable[[int, Path, int], Callable[[int, int], None]]:
    def track(fd: int, path: Path, size: int) -> Callable[[int, int], None]:
        log.append(path.name)
        return lambda a, b: log.append(f"{path.name}:{a}-{b}")
    return track


def test_files_are_created_in_order_and_tracked_before_use(tmp_path: Path) -> None:
    files = [LaterFile(tmp_path / "s" / f"f{i}.part", 10 + i) for i in range(20)]
    log: list[str] = []
    gate = threading.Event()

    def slow_track(fd: int, path: Path, size: int) -> Callable[[int, int], None]:
        gate.wait(10)  # the first file waits until its writer is already waiting for it
        return _tracker(log)(fd, path, size)

    t = threading.Thread(target=create_all, args=(files, slow_track, CancelToken()))
    t.start()
    gate.set()
    files[5].write_at(b"hello", 2)  # waits for the file, then reports the bytes written
    t.join(10)
    assert not t.is_alive()
    assert log[:6] == [f"f{i}.part" for i in range(6)]
    assert "f5.part:2-7" in log
    for i, f in enumerate(files):
        assert f.path.stat().st_size == 10 + i
        f.close()
    assert (tmp_path / "s" / "f5.part").read_bytes() == b"\0\0hello" + bytes(8)


def test_an_error_reaches_the_file_and_those_after_it(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"x")  # a file where a folder must be
    files = [LaterFile(tmp_path / "ok" / "a.part", 1),
             LaterFile(tmp_path / "blocker" / "b.part", 1),
             LaterFile(tmp_path / "ok" / "c.part", 1)]
    with pytest.raises(OSError):
        create_all(files, _tracker([]), CancelToken())
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
        create_all(files, _tracker([]), token)
    for f in files:
        with pytest.raises(CancelledError):
            _ = f.fd
        assert not f.path.exists()


def test_a_file_closed_before_it_is_created_is_never_made(tmp_path: Path) -> None:
    files = [LaterFile(tmp_path / f"f{i}.part", 1) for i in range(2)]
    files[0].close()
    create_all(files, _tracker([]), CancelToken())
    assert not files[0].path.exists() and files[1].path.exists()
    files[1].close()
