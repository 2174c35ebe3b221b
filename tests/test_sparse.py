"""core/system/sparse.py: staged files are sized without writing their bytes. The Windows path with
a fake kernel32 (the real calls run under the Windows CPython: tests/windows/test_sparse_win.py);
the C runtime's zero-writing os.ftruncate is never used there."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import pytest

import core.system.sparse
from core.engine.staging import BlankFile
from core.system.sparse import FSCTL_SET_SPARSE, set_size

_real_ftruncate = os.ftruncate


class FakeWin32:
    """The calls set_size makes, recorded; the file really gets its size (through the real
    ftruncate, standing for what NTFS does) so the rest of the code can run on it. A file
    system without sparse files refuses FSCTL_SET_SPARSE (``sparse_ok=False``)."""

    def __init__(self, sparse_ok: bool = True) -> None:
        self.sparse_ok = sparse_ok
        self.calls: list[tuple[Any, ...]] = []
        self.pos: dict[int, int] = {}

    def handle(self, fd: int) -> int:
        return 1000 + fd

    def DeviceIoControl(self, h: int, code: int, inbuf: Any, insize: int, outbuf: Any,
                        outsize: int, returned: Any, overlapped: Any) -> int:
        self.calls.append(("DeviceIoControl", h, code, inbuf, insize))
        return 1 if self.sparse_ok else 0

    def SetFilePointerEx(self, h: int, dist: ctypes.c_int64, new: Any, method: int) -> int:
        self.calls.append(("SetFilePointerEx", h, dist.value, method))
        if method == core.system.sparse.FILE_CURRENT:
            new._obj.value = self.pos.get(h, 0) + dist.value
        else:
            self.pos[h] = dist.value
        return 1

    def SetEndOfFile(self, h: int) -> int:
        self.calls.append(("SetEndOfFile", h))
        _real_ftruncate(h - 1000, self.pos[h])
        return 1

    def get_last_error(self) -> int:
        return 0


def test_windows_marks_sparse_then_sets_the_end(tmp_path: Path) -> None:
    w = FakeWin32()
    with open(tmp_path / "f.part", "wb") as f:
        h = 1000 + f.fileno()
        assert set_size(f.fileno(), 5 << 30, windows=True, api=w) is True
        assert w.calls == [
            ("DeviceIoControl", h, FSCTL_SET_SPARSE, None, 0),  # FSCTL_SET_SPARSE first
            ("SetFilePointerEx", h, 0, 1),  # where the descriptor was (FILE_CURRENT)
            ("SetFilePointerEx", h, 5 << 30, 0),  # the new end (FILE_BEGIN)
            ("SetEndOfFile", h),
            ("SetFilePointerEx", h, 0, 0),  # the position put back
        ]
    assert FSCTL_SET_SPARSE == 0x900C4
    assert os.path.getsize(tmp_path / "f.part") == 5 << 30


def test_windows_without_sparse_files_still_never_writes_zeros(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ftruncate(fd: int, size: int) -> None:
        raise AssertionError("os.ftruncate is the CRT's _chsize_s on Windows: writes zeros")

    monkeypatch.setattr(os, "ftruncate", no_ftruncate)
    w = FakeWin32(sparse_ok=False)  # FAT32, exFAT
    with open(tmp_path / "f.part", "wb") as f:
        assert set_size(f.fileno(), 12345, windows=True, api=w) is False
    assert [c[0] for c in w.calls][-2:] == ["SetEndOfFile", "SetFilePointerEx"]
    assert os.path.getsize(tmp_path / "f.part") == 12345


def test_blank_file_on_windows_uses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staged file as the updater makes it on Windows: sized, written, reset, re-sized;
    os.ftruncate (the CRT's zero-writing _chsize_s there) is never called."""
    w = FakeWin32()
    real_set_size = core.system.sparse.set_size
    monkeypatch.setattr("core.engine.staging.set_size",
                        lambda fd, size: real_set_size(fd, size, windows=True, api=w))

    def no_ftruncate(fd: int, size: int) -> None:
        raise AssertionError("os.ftruncate called")

    monkeypatch.setattr(os, "ftruncate", no_ftruncate)
    b = BlankFile(tmp_path / "staging" / "x.part", 3 << 20)
    try:
        b.write_at(b"hello", 1 << 20)
        assert [c[0] for c in w.calls].count("DeviceIoControl") == 1
        assert b.path.read_bytes() == bytes(1 << 20) + b"hello" + bytes((2 << 20) - 5)
        b.reset()
        assert os.path.getsize(b.path) == 3 << 20
        assert [c[0] for c in w.calls].count("SetEndOfFile") == 3  # created, 0, size
    finally:
        b.close()
    assert (tmp_path / "staging" / "x.part").read_bytes() == bytes(3 << 20)


def test_posix_leaves_a_hole(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("POSIX")
    with open(tmp_path / "f", "wb") as f:
        assert set_size(f.fileno(), 64 << 20) is True
    st = os.stat(tmp_path / "f")
    assert st.st_size == 64 << 20
    assert st.st_blocks * 512 < (1 << 20)  # nothing written (tmpfs and ext4 alike)
