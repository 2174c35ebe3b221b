"""A file being built in staging, before it is proven right: ``BlankFile``.

Free of numpy and of the chunk machinery, so an update rebuilt only from deltas (or one
with nothing to do) never imports them. ``core.engine.rebuild.StagedFile`` extends it to build
from chunks.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from core.errors import HashMismatchError
from core.fsutil import pread_into, pwrite
from core.parallel import WAKE
from core.progress import CancelToken
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

    def write_at(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        """Write bytes checked some other way (a delta's output, checked by the SHA-256)."""
        pwrite(self._fd, data, offset)
        self.written(offset, offset + len(data))


class LaterFile(BlankFile):
    """A ``BlankFile`` created on another thread (``create_all``) while the caller goes on:
    the thousands of small files a pack builds are created while the requests before the
    pack's are in flight, not before them. Using the file waits until it exists (and raises
    what creating it raised). The pack writes each whole, at once (``write_whole``): it is
    not tracked by the sealer."""

    def __init__(self, path: Path, size: int) -> None:  # (no file yet: create() makes it)
        self.path = path
        self.size = size
        self._fd = -1
        self.written = _no_mark
        self._made = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self.digest = ""  # set by write_whole: the SHA-256 of the file, closed since
        self._sized = False  # created empty: given its size by the first reset or write_at

    def create(self) -> None:
        """Create the file (the creating thread). Nothing if it was closed meanwhile."""
        with self._lock:
            try:
                if not self._closed:
                    self._fd = _create_empty(self.path)
            except BaseException as e:
                self._error = e
                raise
            finally:
                self._made.set()

    def fail(self, error: BaseException) -> None:
        """It will not be created: using it raises ``error``."""
        with self._lock:
            if not self._made.is_set():
                self._error = error
                self._made.set()

    @property
    def fd(self) -> int:
        while not self._made.wait(WAKE):  # (waking up: a signal is handled on this thread)
            pass
        if self._error is not None:
            raise self._error
        return self._fd

    def close(self) -> None:
        with self._lock:
            self._closed = True
            super().close()

    def reset(self) -> None:
        _ = self.fd
        super().reset()
        self._sized = True

    def write_at(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        """As ``BlankFile``'s (the file is given its size first: it is created empty)."""
        if not self._sized:
            self.reset()
        super().write_at(data, offset)

    def write_whole(self, data: bytes | bytearray | memoryview, durable: bool,
                    expect: str | None = None) -> None:
        """Write the file's whole content at once, read it back and hash it (``digest``),
        fsync it if ``durable``, and close it: a small file is done in one go, with none of
        the sealer's per-file bookkeeping (``core.engine.sealer`` reads back what it hashes
        too: the digest is of what the kernel holds, not of ``data``). ``expect``: the
        SHA-256 the file must have, else ``HashMismatchError`` with the file still open
        (the caller's next step ``reset``s it): the one hash of a pack's file."""
        fd = self.fd
        if len(data) != self.size:
            raise ValueError(f"{self.path}: {len(data)} bytes for a file of {self.size}")
        if self.size:
            pwrite(fd, data, 0)
        back = bytearray(self.size)
        if pread_into(fd, memoryview(back), 0) != self.size:
            raise OSError(f"{self.path}: the staged file is shorter than written")
        digest = hashlib.sha256(back).hexdigest()
        if expect is not None and digest != expect:
            raise HashMismatchError(f"{self.path.name}: written bytes do not match the "
                                    "manifest", expected=expect)
        self.digest = digest
        if durable:
            os.fsync(fd)
        self.close()


def _create_empty(path: Path) -> int:
    """A new empty file at ``path`` (emptied if there is one), open for reading and writing:
    a pack's file is written whole at once (``write_whole``), or sized by ``reset`` when
    another step builds it, so neither its size nor what an earlier run left matters."""
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o666)


def create_all(files: list[LaterFile], cancel: CancelToken) -> None:
    """Create ``files`` in order (a thread of the assembler's); a cancel or an error leaves
    the rest failing with it."""
    for i, f in enumerate(files):
        try:
            cancel.check()
            f.create()
        except BaseException as e:
            for rest in files[i:]:
                rest.fail(e)
            raise
