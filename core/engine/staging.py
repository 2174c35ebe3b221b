"""A file being built in staging, before it is proven right: ``BlankFile``.

Free of numpy and of the chunk machinery, so an update rebuilt only from deltas (or one
with nothing to do) never imports them. ``core.engine.rebuild.StagedFile`` extends it to build
from chunks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from core.errors import HashMismatchError
from core.fsutil import pwrite
from core.system.sparse import set_size


def check_digest(path: Path, expected: str, actual: str) -> None:
    """``HashMismatchError`` unless a rebuilt file's SHA-256 is the expected one."""
    if actual != expected:
        raise HashMismatchError(
            f"rebuilt file does not match the release (SHA-256 {actual[:16]}…, "
            f"expected {expected[:16]}…)", expected=expected, actual=actual,
            path=str(path))


def _no_mark(_a: int, _b: int) -> None:
    pass


class BlankFile:
    """A file being built at ``path`` in staging, ``size`` bytes, starting as a hole (POSIX;
    on Windows a sparse file where the file system has them, never zeros written by the C
    runtime: ``core.system.sparse``). A delta writes it in order; ``StagedFile`` builds it from
    chunks.

    ``written(a, b)`` is called after bytes [a, b) hold their final value (written, or
    already zeros), from whichever thread wrote them: ``core.engine.sealer`` hashes behind it."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        # O_CREAT without truncation: a .part left by an interrupted run keeps its bytes.
        # The folder is made when missing only: thousands of small files share one.
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        try:
            self._fd = os.open(path, flags, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, flags, 0o666)
        if os.fstat(self._fd).st_size != size:
            set_size(self._fd, size)
        self.written: Callable[[int, int], None] = _no_mark

    @property
    def fd(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def reset(self) -> None:
        """Empty the staged file again (all zeros, a hole), keeping its size."""
        set_size(self._fd, 0)
        set_size(self._fd, self.size)

    def write_at(self, data: bytes | memoryview, offset: int) -> None:
        """Write bytes checked some other way (a delta's output, checked by the SHA-256)."""
        pwrite(self._fd, data, offset)
        self.written(offset, offset + len(data))
