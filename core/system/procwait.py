"""Waiting for another process to exit (``stitch --update --wait-pid PID``): a launcher that
updates itself, or the game that was running, must let go of its files first.

- Windows: ``OpenProcess(SYNCHRONIZE)`` then ``WaitForSingleObject`` on the handle, in slices
  of ``_SLICE_MS`` so Ctrl+C is seen between them. ``os.kill(pid, 0)`` is no existence check
  there: Python sends ``CTRL_C_EVENT`` for signal 0 (``GenerateConsoleCtrlEvent``).
  A pid that names no process (``ERROR_INVALID_PARAMETER``) returns at once.
- Elsewhere: ``os.kill(pid, 0)`` every ``_POLL`` seconds until ``ProcessLookupError``.

Either way ``ProcessWaitError`` (a ``ConfigError``: exit code 2) after ``timeout`` seconds,
or when Windows will not let stitch wait for that process. Every OS call is injectable, so
the tests run the Windows path with fakes on any system.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.progress import CancelToken

SYNCHRONIZE = 0x00100000
WAIT_OBJECT_0 = 0
WAIT_TIMEOUT = 0x102
WAIT_FAILED = 0xFFFFFFFF
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_PARAMETER = 87

_SLICE_MS = 200
_POLL = 0.2


class ProcessWaitError(ConfigError):
    """The process did not exit in time, or cannot be waited for."""


def wait_for_exit(pid: int, timeout: float = 600.0, *, windows: bool | None = None,
                  kernel32: Any = None, kill: Callable[[int, int], None] | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic,
                  cancel: CancelToken | None = None,
                  on_wait: Callable[[], None] | None = None) -> None:
    """Return once process ``pid`` has exited (at once if there is none); ``cancel`` is
    checked between slices (raises ``CancelledError``); ``on_wait`` is called once, when the
    process was found running."""
    said = False

    def check() -> None:
        nonlocal said
        if cancel is not None:
            cancel.check()
        if not said and on_wait is not None:
            said = True
            on_wait()

    if pid <= 0:
        raise ProcessWaitError(f"--wait-pid needs a process id above 0, not {pid}")
    if os.name == "nt" if windows is None else windows:
        _wait_windows(pid, timeout, kernel32 if kernel32 is not None else _kernel32(), check)
    else:
        _wait_posix(pid, timeout, kill if kill is not None else os.kill, sleep, clock, check)


def _timed_out(pid: int, timeout: float) -> ProcessWaitError:
    return ProcessWaitError(f"process {pid} did not exit within {timeout:.0f} s")


def _wait_posix(pid: int, timeout: float, kill: Callable[[int, int], None],
                sleep: Callable[[float], None], clock: Callable[[], float],
                check: Callable[[], None]) -> None:
    deadline = clock() + timeout
    for _ in range(int(timeout / _POLL) + 2):  # bounded, whatever the clock does
        try:
            kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass  # it exists, owned by someone else
        check()
        if clock() >= deadline:
            break
        sleep(_POLL)
    raise _timed_out(pid, timeout)


def _wait_windows(pid: int, timeout: float, k32: Any, check: Callable[[], None]) -> None:
    handle = k32.OpenProcess(SYNCHRONIZE, False, pid)
    if not handle:
        code = int(k32.get_last_error())
        if code == ERROR_INVALID_PARAMETER:  # no such process (any more)
            return
        if code == ERROR_ACCESS_DENIED:
            raise ProcessWaitError(f"cannot wait for process {pid}: access denied (a process "
                                   "of another user or a protected one)")
        raise ProcessWaitError(f"cannot wait for process {pid}: OpenProcess failed with "
                               f"error {code}")
    try:
        slices = max(1, int(timeout * 1000) // _SLICE_MS + (int(timeout * 1000) % _SLICE_MS > 0))
        for _ in range(slices):
            check()
            result = int(k32.WaitForSingleObject(handle, _SLICE_MS))
            if result == WAIT_OBJECT_0:
                return
            if result != WAIT_TIMEOUT:
                raise ProcessWaitError(f"cannot wait for process {pid}: WaitForSingleObject "
                                       f"returned {result:#x} (error {k32.get_last_error()})")
        raise _timed_out(pid, timeout)
    finally:
        k32.CloseHandle(handle)


class _Kernel32:
    """The three kernel32 calls with their C types, and the last error."""

    def __init__(self) -> None:
        from ctypes import wintypes

        k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        k32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        k32.OpenProcess.restype = wintypes.HANDLE
        k32.WaitForSingleObject.argtypes = [wintypes.HANDLE, wintypes.DWORD]
        k32.WaitForSingleObject.restype = wintypes.DWORD
        k32.CloseHandle.argtypes = [wintypes.HANDLE]
        k32.CloseHandle.restype = wintypes.BOOL
        self.OpenProcess = k32.OpenProcess
        self.WaitForSingleObject = k32.WaitForSingleObject
        self.CloseHandle = k32.CloseHandle

    @staticmethod
    def get_last_error() -> int:
        return int(ctypes.get_last_error())  # type: ignore[attr-defined]


def _kernel32() -> Any:
    return _Kernel32()
