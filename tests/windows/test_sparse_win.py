"""Staged files sized through the real kernel32 calls (FSCTL_SET_SPARSE, SetFilePointerEx,
SetEndOfFile) under the Windows CPython: right size, zeros where nothing was written, the
bytes written where they were, the descriptor's position kept. (Whether NTFS allocates no
blocks cannot be seen under wine, whose files are Linux files: a real Windows run.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from core.engine.staging import BlankFile
from core.fsutil import pwrite
from core.system.sparse import set_size

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the Windows API")


def test_set_size_grows_and_shrinks_without_touching_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_BINARY, 0o644)  # type: ignore[attr-defined]
    try:
        os.write(fd, b"head")
        set_size(fd, 10 << 20)
        assert os.fstat(fd).st_size == 10 << 20
        assert os.lseek(fd, 0, os.SEEK_CUR) == 4  # the position is kept
        pwrite(fd, b"tail", (10 << 20) - 4)
        set_size(fd, 5 << 20)
        assert os.fstat(fd).st_size == 5 << 20
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert data[:4] == b"head" and data[4:] == bytes((5 << 20) - 4)


def test_blank_file_has_the_right_size_and_content(tmp_path: Path) -> None:

    size = 3 << 20
    b = BlankFile(tmp_path / "staging" / "x.part", size)
    try:
        assert os.path.getsize(b.path) == size
        b.write_at(b"hello", 1 << 20)
        expected = bytes(1 << 20) + b"hello" + bytes(size - (1 << 20) - 5)
        assert b.path.read_bytes() == expected
        b.reset()
        assert os.path.getsize(b.path) == size
    finally:
        b.close()
    assert (tmp_path / "staging" / "x.part").read_bytes() == bytes(size)
