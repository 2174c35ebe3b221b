"""One stitch run at a time per install: an exclusive lock on ``INSTALL_DIR/.stitch/lock``.

Owns: taking and releasing the operating system's lock on that file, waiting a bounded time
for another run to let go (a message first, cancel honoured while waiting), and the
holder's process id written into the file for that message.

The lock is the kernel's, never the file's existence: ``flock`` (whole file, exclusive) on
POSIX, ``msvcrt.locking`` (one byte far past the pid, so the pid stays readable) on
Windows. Both belong to the open file, so they go when the process ends in any way (exit,
exception, ``kill -9``, a crash): a killed run never leaves the install locked. The file
itself stays (an empty-but-for-a-pid file in ``.stitch/``); its content is information
only. Within one process, two ``InstallLock`` objects on the same install exclude each
other like two processes do (each opens the file anew).

Why not the ``filelock`` package: it uses the same two calls, but the message a waiting
run prints names the holder's pid, and the wait must stop at once on the run's
``CancelToken``; both need the file and the loop in our hands, and one module of the
standard library costs the packaged updater nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.errors import InstallBusyError
from core.progress import CancelToken

LOCK_NAME = "lock"  # INSTALL_DIR/.stitch/lock
DEFAULT_WAIT = 10.0  # seconds a second run waits for the first (``--lock-wait``)
_POLL = 0.1  # seconds between attempts while waiting
_PID_BYTES = 32  # the pid is written at offset 0; Windows locks one byte at _WIN_OFFSET
_WIN_OFFSET = 1 << 30

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WIN_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    _OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_BINARY | os.O_NOINHERIT
    _READ_FLAGS = os.O_RDONLY | os.O_BINARY | os.O_NOINHERIT
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    _OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    _READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC


def busy_message(pid: int | None, what: str = "update of this game") -> str:
    """``another update of this game is running (pid 1234)``: the one line a waiting run
    prints, and the start of the error when it gives up."""
    return f"another {what} is running" + (f" (pid {pid})" if pid else "")


class InstallLock:
    """The held lock on one install's ``.stitch/lock``. Release it with ``release()`` or a
    ``with`` block; a process that dies releases it too."""

    def __init__(self, path: Path, fd: int | None, writable: bool = True) -> None:
        self.path = path
        self._fd: int | None = fd
        self._writable = writable

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._writable:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # no pid: nobody holds it now
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> InstallLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_pid(path: Path) -> int | None:
    """The pid the holder wrote into the lock file; None when unknown (being written, or
    an older file). Information for the message only: the lock is the kernel's."""
    try:
        with open(path, "rb") as f:
            text = f.read(_PID_BYTES)
    except OSError:
        return None
    try:
        pid = int(text.strip() or b"0")
    except ValueError:
        return None
    return pid if pid > 0 else None


def acquire_existing(state_dir: Path, *, wait: float = DEFAULT_WAIT,
                     cancel: CancelToken | None = None,
                     on_wait: Callable[[str], None] | None = None,
                     what: str = "update of this game") -> InstallLock | None:
    """``acquire``, but None (and nothing created) when ``state_dir`` does not exist: a step
    that writes nothing to an install that has no ``.stitch/`` yet needs no lock."""
    if not state_dir.is_dir():
        return None
    return acquire(state_dir, wait=wait, cancel=cancel, on_wait=on_wait, what=what)


def acquire(state_dir: Path, *, wait: float = DEFAULT_WAIT, cancel: CancelToken | None = None,
            on_wait: Callable[[str], None] | None = None,
            what: str = "update of this game") -> InstallLock:
    """Take the exclusive lock on ``state_dir/lock`` (``state_dir`` is ``INSTALL_DIR/.stitch``),
    creating ``state_dir`` and its parents if needed.

    When another run holds the lock, ``on_wait`` gets one line saying so, and the lock is
    tried again every 0.1 s for ``wait`` seconds (0: once); then ``InstallBusyError``.
    ``cancel`` is checked between attempts (``CancelledError``).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    fd, writable = _open(path)
    if fd is None:
        return InstallLock(path, None, False)  # nothing to lock, and nothing can be written
    try:
        if not _try_lock(fd):
            _wait(fd, path, max(0.0, wait), cancel, on_wait, what)
        if writable:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
    except BaseException:
        os.close(fd)  # releases the lock too, if it was taken
        raise
    return InstallLock(path, fd, writable)


def _open(path: Path) -> tuple[int | None, bool]:
    """The lock file, open for writing (the pid); read-only where it exists but may not be
    written (an install on read-only media, or another user's): the lock needs no write
    access, so an up-to-date check there still works. ``(None, False)`` where it can
    neither be opened nor created for lack of rights (a read-only install made before the
    lock existed): this run can write nothing there, so it goes on unlocked."""
    try:
        return os.open(path, _OPEN_FLAGS, 0o666), True
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        try:
            return os.open(path, _READ_FLAGS), False
        except FileNotFoundError:
            return None, False


def _wait(fd: int, path: Path, wait: float, cancel: CancelToken | None,
          on_wait: Callable[[str], None] | None, what: str) -> None:
    """Try again until ``wait`` seconds have passed; raise ``InstallBusyError`` then."""
    pid = holder_pid(path)
    if on_wait is not None:
        on_wait(f"{busy_message(pid, what)} — waiting up to {wait:g} s…")
    deadline = time.monotonic() + wait
    while True:  # bounded: the deadline
        if cancel is not None:
            cancel.check()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pid = holder_pid(path) or pid
            raise InstallBusyError(f"{busy_message(pid, what)}: gave up after {wait:g} s "
                                   "(--lock-wait)", path=str(path), pid=pid)
        time.sleep(min(_POLL, remaining))
        if _try_lock(fd):
            return
