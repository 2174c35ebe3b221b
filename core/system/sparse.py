"""Sizing a staged file without writing its bytes: ``set_size(fd, size)``.

POSIX: ``os.ftruncate`` leaves a hole (no block is written or allocated until data comes).

Windows: Python's ``os.ftruncate`` is the C runtime's ``_chsize_s``, which extends a file
by *writing zeros* up to the new size: every staged byte would be written twice (a 50 GB pak
costs 50 GB of extra writes). Here instead: ``FSCTL_SET_SPARSE`` (``DeviceIoControl``) marks
the file sparse on NTFS/ReFS, so ranges never written are holes and writing past the end of
the written data does not zero-fill up to it; then ``SetFilePointerEx`` + ``SetEndOfFile``
set the size (metadata only). A file system without sparse files (FAT32, exFAT, some network
shares) refuses the first call: the size is set with ``SetEndOfFile`` all the same (never
the CRT's zero-writing); the file system then fills as it must. The descriptor's file
position is put back. Every OS call is injectable, so the tests run the Windows path with
fakes on any system.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

FSCTL_SET_SPARSE = 0x000900C4
FILE_BEGIN = 0
FILE_CURRENT = 1


def set_size(fd: int, size: int, *, windows: bool | None = None, api: Any = None) -> bool:
    """Make the file behind ``fd`` exactly ``size`` bytes, new bytes reading as zeros,
    without writing them. Returns whether the file is sparse (POSIX: True)."""
    if not (os.name == "nt" if windows is None else windows):
        os.ftruncate(fd, size)
        return True
    w = api if api is not None else _Win32()
    handle = w.handle(fd)
    sparse = bool(w.DeviceIoControl(handle, FSCTL_SET_SPARSE, None, 0, None, 0,
                                    ctypes.byref(ctypes.c_uint32(0)), None))
    here = ctypes.c_int64(0)
    if not w.SetFilePointerEx(handle, ctypes.c_int64(0), ctypes.byref(here), FILE_CURRENT):
        raise _error(w, "SetFilePointerEx")
    try:
        if not w.SetFilePointerEx(handle, ctypes.c_int64(size), None, FILE_BEGIN):
            raise _error(w, "SetFilePointerEx")
        if not w.SetEndOfFile(handle):
            raise _error(w, "SetEndOfFile")
    finally:
        w.SetFilePointerEx(handle, here, None, FILE_BEGIN)
    return sparse


def _error(w: Any, call: str) -> OSError:
    code = int(w.get_last_error())
    err = OSError(0, f"{call} failed (Windows error {code})")
    err.winerror = code  # type: ignore[attr-defined,unused-ignore]
    return err


class _Win32:
    """kernel32's three calls with their C types, the CRT's handle of a descriptor, and the
    last error."""

    def __init__(self) -> None:
        import msvcrt
        from ctypes import wintypes

        k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        k32.DeviceIoControl.argtypes = [
            wintypes.HANDLE, wintypes.DWORD, ctypes.c_void_p, wintypes.DWORD, ctypes.c_void_p,
            wintypes.DWORD, ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p]
        k32.DeviceIoControl.restype = wintypes.BOOL
        k32.SetFilePointerEx.argtypes = [wintypes.HANDLE, ctypes.c_int64,
                                         ctypes.POINTER(ctypes.c_int64), wintypes.DWORD]
        k32.SetFilePointerEx.restype = wintypes.BOOL
        k32.SetEndOfFile.argtypes = [wintypes.HANDLE]
        k32.SetEndOfFile.restype = wintypes.BOOL
        self.DeviceIoControl = k32.DeviceIoControl
        self.SetFilePointerEx = k32.SetFilePointerEx
        self.SetEndOfFile = k32.SetEndOfFile
        self.handle = msvcrt.get_osfhandle  # type: ignore[attr-defined,unused-ignore]

    @staticmethod
    def get_last_error() -> int:
        return int(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]
