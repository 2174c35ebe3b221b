"""File-system helpers: the Windows positional-I/O fallback (run here too), sparse copies,
atomic writes and the symlink guard."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import core.fsutil as fsutil
from core.errors import UnsafePathError
from core.fsutil import (
    SafePaths,
    _pread_seek,
    _pwrite_seek,
    atomic_write,
    copy_sparse,
    inside,
    pread_into,
    pwritev,
)
from tests.conftest import UNDER_WINE


def test_seek_fallbacks_match_positional_io(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(bytes(100))
    fd = os.open(p, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        assert _pwrite_seek(fd, b"abc", 10) == 3
        assert _pwrite_seek(fd, memoryview(b"xyz"), 98) == 3
        assert _pread_seek(fd, 5, 9) == b"\0abc\0"
        assert _pread_seek(fd, 10, 98) == b"xyz"  # short read at the end
        if hasattr(os, "pread"):  # POSIX: the fallbacks agree with the real thing
            assert os.pread(fd, 3, 10) == b"abc"
    finally:
        os.close(fd)
    assert p.stat().st_size == 101


@pytest.mark.parametrize("positional", [True, False])
def test_pread_into_fills_the_buffer_and_is_short_at_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, positional: bool) -> None:
    if positional and not hasattr(os, "preadv"):
        pytest.skip("Windows has no preadv (the seek + readinto case runs there)")
    if not positional:  # Windows has no preadv: seek + readinto
        monkeypatch.delattr(os, "preadv", raising=False)
    p = tmp_path / "f"
    p.write_bytes(bytes(range(256)) * 40)
    buf = memoryview(bytearray(1000))
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        assert pread_into(fd, buf, 300) == 1000
        assert bytes(buf) == (bytes(range(256)) * 40)[300:1300]
        assert pread_into(fd, buf[:500], 10_000) == 240  # short at the end of the file
        assert bytes(buf[:240]) == (bytes(range(256)) * 40)[10_000:]
        assert pread_into(fd, buf, 20_000) == 0
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["native", "short", "none", "too many"])
def test_pwritev_writes_the_buffers_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             how: str) -> None:
    if how in ("native", "short") and not hasattr(os, "pwritev"):
        pytest.skip("Windows has no pwritev (the 'none' and 'too many' cases run there)")
    calls: list[int] = []
    native = getattr(os, "pwritev", None)

    def short(fd: int, bufs: list[bytes], offset: int) -> int:  # the kernel stops early
        calls.append(len(bufs))
        assert native is not None
        return native(fd, bufs[:1], offset)

    if how == "short":
        monkeypatch.setattr(os, "pwritev", short)
    elif how == "none":  # Windows has no pwritev: one pwrite each
        monkeypatch.delattr(os, "pwritev", raising=False)
    elif how == "too many":
        monkeypatch.setattr(fsutil, "IOV_MAX", 2)
    p = tmp_path / "f"
    p.write_bytes(bytes(20))
    bufs: list[bytes | bytearray | memoryview] = [b"abc", bytearray(b"defg"), memoryview(b"hi")]
    fd = os.open(p, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        pwritev(fd, bufs, 5)
    finally:
        os.close(fd)
    assert p.read_bytes() == bytes(5) + b"abcdefghi" + bytes(6)
    assert calls == ([3] if how == "short" else [])


def test_copy_sparse_keeps_bytes_and_holes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with open(src, "wb") as f:
        f.truncate(64 << 20)
        f.seek(5 << 20)
        f.write(b"island")
    dst = tmp_path / "dst"
    copy_sparse(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    if sys.platform != "win32":  # Windows' stat has no st_blocks
        assert dst.stat().st_blocks * 512 < 4 << 20


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "state.json"
    atomic_write(p, b"one")
    atomic_write(p, b"two", mode=0o600)
    assert p.read_bytes() == b"two"
    assert [x.name for x in p.parent.iterdir()] == ["state.json"]


@pytest.mark.skipif(UNDER_WINE, reason="wine shows a Unix symlink to Windows programs as a "
                    "plain folder, not a reparse point (checked on a real Windows runner)")
def test_inside_refuses_symlinked_folders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    assert inside(root, "real/file") == root.resolve() / "real" / "file"
    with pytest.raises(UnsafePathError):
        inside(root, "link/file")


@pytest.mark.skipif(UNDER_WINE, reason="wine shows a Unix symlink to Windows programs as a "
                    "plain folder, not a reparse point (checked on a real Windows runner)")
def test_safe_paths_checks_each_folder_of_many_paths(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    (root / "a" / "lnk").symlink_to(tmp_path, target_is_directory=True)
    safe = SafePaths(root)
    for i in range(3):  # the same folders again: still checked (from what it learnt)
        assert safe(f"a/b/f{i}") == root.resolve() / "a" / "b" / f"f{i}"
        assert safe(f"new/dir/f{i}") == root.resolve() / "new" / "dir" / f"f{i}"
        for bad in ("link/f", "a/lnk/f", "a/lnk/b/f", "a/../../f", "a//f", "./f",
                    # a known folder: only the name is left to check, and it is
                    "a/b/..", "a/b/.", "a/b/", "/f", "..", ".", ""):
            with pytest.raises(UnsafePathError):
                safe(bad)
    assert safe.text("a/b/f") == str(root.resolve() / "a" / "b" / "f")
    # A symlink at the file's own place is returned as is (it is replaced, not followed).
    assert safe("link") == root.resolve() / "link"


@pytest.mark.parametrize("syncfs", [True, False])
def test_write_all_durably_syncs_once_or_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              syncfs: bool) -> None:
    """One sync of the file system for all the files where there is one (no fsync of any);
    else each file written again with its own fsync. Either way every file holds its bytes
    and no temporary file is left."""
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    synced: list[int] = []
    windows = os.name == "nt"  # no syncfs there (a folder cannot even be opened): each file
    if not windows:
        monkeypatch.setattr(fsutil, "HAS_SYNCFS", True)
    monkeypatch.setattr(fsutil, "sync_filesystem", lambda fd: (synced.append(fd), syncfs)[1])
    files = [(tmp_path / "d" / f"f{i}.json", b"x" * i) for i in range(3)]
    fsutil.write_all_durably(files)
    for path, data in files:
        assert path.read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["f0.json", "f1.json",
                                                                    "f2.json"]
    assert len(synced) == (0 if windows else 1)
    if syncfs and not windows:
        assert fsyncs == []
    else:
        assert len(fsyncs) >= 3  # each file (and, on POSIX, its folder)
