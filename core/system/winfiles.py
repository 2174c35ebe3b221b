"""Files in use on Windows: who holds a file, and replacing it once they let go.

Owns what the commit needs on Windows, where a file that a running program (the game, an
antivirus scan, a backup tool) has open without ``FILE_SHARE_DELETE`` cannot be renamed
over:

- ``holders(paths)``: which processes have those files open, asked of the Restart Manager
  (``rstrtmgr.dll``: ``RmStartSession``, ``RmRegisterResources``, ``RmGetList``,
  ``RmEndSession``) through ctypes. Elsewhere, or if the API fails, it returns ``[]``: naming
  the program is a courtesy, not a condition.
- ``replace_with_retry(src, dst, attempts, on_locked)``: ``os.replace`` that, on a sharing
  violation, asks who holds the file, reports it through ``on_locked`` (so a front end can
  say "close Dungeon Crawl (pid 4242)"), waits with back-off and tries again; after the last
  attempt it raises ``FileLockedError`` carrying the holders. ``on_locked`` may raise (a
  cancel) to stop waiting. ``name`` says which file to name (the game's file, not the
  backup it is being moved to).
- ``probe_replace(path)`` and ``wait_until_replaceable(paths, probe)``: the commit's check,
  before its journal is written, that every file it will move can be moved now: each is
  opened for ``DELETE`` with every share mode allowed (``CreateFileW``), which fails with a
  sharing violation exactly when a program holds it without ``FILE_SHARE_DELETE``. Held
  files are waited for like ``replace_with_retry`` does; if one stays held, nothing has
  been moved yet.

Only sharing and lock violations (``ERROR_SHARING_VIOLATION`` 32, ``ERROR_LOCK_VIOLATION``
33) mean "in use" and are waited for; access denied (``ERROR_ACCESS_DENIED`` 5: permissions,
a read-only file, a folder) is a clear error at once.

It never ends a process: the Restart Manager's shutdown and restart calls are not used.
Every OS call is injectable, so the tests run the Windows paths with fakes on any system.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ERROR_SUCCESS = 0
ERROR_FILE_NOT_FOUND = 2
ERROR_PATH_NOT_FOUND = 3
ERROR_ACCESS_DENIED = 5
ERROR_SHARING_VIOLATION = 32
ERROR_LOCK_VIOLATION = 33
ERROR_MORE_DATA = 234
_LOCKED_WINERRORS = (ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION)

# How long a held file is waited for (about 20 s in all); read at call time, so tests can
# make the waits zero.
ATTEMPTS = 8
FIRST_DELAY = 0.25
MAX_DELAY = 4.0

# CreateFileW
DELETE = 0x00010000
FILE_SHARE_READ = 0x1
FILE_SHARE_WRITE = 0x2
FILE_SHARE_DELETE = 0x4
OPEN_EXISTING = 3
FILE_FLAG_BACKUP_SEMANTICS = 0x02000000
FILE_FLAG_OPEN_REPARSE_POINT = 0x00200000
INVALID_HANDLE_VALUE = -1

CCH_RM_SESSION_KEY = 32  # characters of a session key (a GUID as hex), plus a NUL
CCH_RM_MAX_APP_NAME = 255
CCH_RM_MAX_SVC_NAME = 63

# RM_APP_TYPE
_APP_TYPES = {0: "unknown", 1: "window", 2: "window", 3: "service", 4: "explorer",
              5: "console", 1000: "critical"}


@dataclass(frozen=True, slots=True)
class Holder:
    """A process that has a file open."""

    pid: int
    name: str  # what the Restart Manager calls it: the window title or the program's name
    kind: str = "unknown"  # window, console, service, explorer, critical, unknown
    service: str = ""  # short service name when kind == "service"
    restartable: bool = False

    def __str__(self) -> str:
        return f"{self.name or 'a program'} (pid {self.pid})"


@dataclass(frozen=True, slots=True)
class LockReport:
    """What ``on_locked`` is told after each failed attempt."""

    path: Path  # the file that could not be replaced
    attempt: int  # 1-based
    attempts: int
    holders: tuple[Holder, ...]
    retry_in: float  # seconds until the next attempt (0 after the last)

    def message(self) -> str:
        who = ", ".join(str(h) for h in self.holders) or "another program"
        return f"{self.path.name} is in use by {who}; close it to continue"


class AccessDeniedError(PermissionError):
    """Windows refused access to a file (``ERROR_ACCESS_DENIED``): a permission, a read-only
    file, not a program holding it. Not waited for."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno or 13, "access denied (stitch may not change this file: "
                         "check the folder's permissions and the file's read-only attribute)",
                         str(path))
        self.path = Path(path)
        self.winerror = getattr(cause, "winerror", None)


class FileLockedError(PermissionError):
    """A file stayed in use through every attempt. A ``PermissionError`` (a local disk
    problem, exit code 5) with the path and the processes holding it."""

    def __init__(self, path: Path, holders: Sequence[Holder], cause: OSError) -> None:
        who = ", ".join(str(h) for h in holders) or "another program"
        super().__init__(cause.errno or 13, f"in use by {who}", str(path))
        self.path = Path(path)
        self.holders = tuple(holders)


# --- Restart Manager -------------------------------------------------------------------------


class FILETIME(ctypes.Structure):
    _fields_ = [("dwLowDateTime", ctypes.c_uint32), ("dwHighDateTime", ctypes.c_uint32)]


class RM_UNIQUE_PROCESS(ctypes.Structure):  # the Windows SDK's names, for grep
    _fields_ = [("dwProcessId", ctypes.c_uint32), ("ProcessStartTime", FILETIME)]


class RM_PROCESS_INFO(ctypes.Structure):
    _fields_ = [
        ("Process", RM_UNIQUE_PROCESS),
        ("strAppName", ctypes.c_wchar * (CCH_RM_MAX_APP_NAME + 1)),
        ("strServiceShortName", ctypes.c_wchar * (CCH_RM_MAX_SVC_NAME + 1)),
        ("ApplicationType", ctypes.c_int),
        ("AppStatus", ctypes.c_uint32),
        ("TSSessionId", ctypes.c_uint32),
        ("bRestartable", ctypes.c_int),
    ]


def holder_from(info: RM_PROCESS_INFO) -> Holder:
    return Holder(
        pid=int(info.Process.dwProcessId),
        name=info.strAppName,
        kind=_APP_TYPES.get(int(info.ApplicationType), "unknown"),
        service=info.strServiceShortName,
        restartable=bool(info.bRestartable),
    )


class RestartManager(Protocol):
    """The four calls, as a Python interface (``CtypesRestartManager`` is the real one)."""

    def start_session(self) -> int: ...
    def register_files(self, session: int, paths: Sequence[str]) -> None: ...
    def get_list(self, session: int) -> list[Holder]: ...
    def end_session(self, session: int) -> None: ...


class RestartManagerError(OSError):
    """A Restart Manager call returned an error code (``winerror``)."""

    def __init__(self, call: str, code: int) -> None:
        super().__init__(f"{call} failed with error {code}")
        self.winerror = code


class CtypesRestartManager:
    """``RestartManager`` over ``rstrtmgr.dll``. ``dll`` is injectable for tests; by default it
    is loaded on first use (Windows Vista and later)."""

    def __init__(self, dll: Any = None) -> None:
        self._dll = dll

    @property
    def dll(self) -> Any:
        if self._dll is None:
            self._dll = ctypes.WinDLL("rstrtmgr", use_last_error=True)  # type: ignore[attr-defined]
        return self._dll

    def start_session(self) -> int:
        handle = ctypes.c_uint32(0)
        key = ctypes.create_unicode_buffer(CCH_RM_SESSION_KEY + 1)
        self._check("RmStartSession", self.dll.RmStartSession(ctypes.byref(handle), 0, key))
        return int(handle.value)

    def register_files(self, session: int, paths: Sequence[str]) -> None:
        names = (ctypes.c_wchar_p * len(paths))(*paths)
        code = self.dll.RmRegisterResources(
            ctypes.c_uint32(session), ctypes.c_uint(len(paths)), names, 0, None, 0, None
        )
        self._check("RmRegisterResources", code)

    def get_list(self, session: int) -> list[Holder]:
        needed = ctypes.c_uint(0)
        reasons = ctypes.c_uint32(0)
        size = 8
        for _ in range(5):  # the list can grow between the calls; ask again, a few times
            count = ctypes.c_uint(size)
            infos = (RM_PROCESS_INFO * size)()
            code = self.dll.RmGetList(
                ctypes.c_uint32(session), ctypes.byref(needed), ctypes.byref(count), infos,
                ctypes.byref(reasons),
            )
            if code == ERROR_MORE_DATA:
                size = max(int(needed.value), size * 2)
                continue
            self._check("RmGetList", code)
            return [holder_from(infos[i]) for i in range(int(count.value))]
        raise RestartManagerError("RmGetList", ERROR_MORE_DATA)

    def end_session(self, session: int) -> None:
        self.dll.RmEndSession(ctypes.c_uint32(session))

    @staticmethod
    def _check(call: str, code: int) -> None:
        if code != ERROR_SUCCESS:
            raise RestartManagerError(call, int(code))


def holders(
    paths: Sequence[Path | str], rm: RestartManager | None = None, *, windows: bool | None = None
) -> list[Holder]:
    """The processes that have any of ``paths`` open; ``[]`` when not on Windows, when nothing
    holds them, or when the Restart Manager cannot tell (never raises)."""
    if not paths:
        return []
    if rm is None:
        if not (os.name == "nt" if windows is None else windows):
            return []
        rm = CtypesRestartManager()
    try:
        session = rm.start_session()
    except (OSError, AttributeError):
        return []
    try:
        rm.register_files(session, [os.fspath(p) for p in paths])
        found = rm.get_list(session)
    except OSError:
        return []
    finally:
        with contextlib.suppress(OSError):
            rm.end_session(session)
    unique: dict[int, Holder] = {}
    for h in found:
        unique.setdefault(h.pid, h)
    return list(unique.values())


# --- replace with retry ----------------------------------------------------------------------


def is_locked_error(exc: BaseException, *, windows: bool | None = None) -> bool:
    """Whether ``exc`` means "another process has the file open" (worth waiting for): a
    sharing or lock violation, told by its ``winerror``. Access denied (5), or a
    ``PermissionError`` without a ``winerror``, is not. Only on Windows: elsewhere a
    permission error is a permission problem and waiting cannot help."""
    if not (os.name == "nt" if windows is None else windows):
        return False
    return getattr(exc, "winerror", None) in _LOCKED_WINERRORS


def is_access_denied(exc: BaseException) -> bool:
    """Whether ``exc`` is Windows' ``ERROR_ACCESS_DENIED``."""
    return getattr(exc, "winerror", None) == ERROR_ACCESS_DENIED


def replace_with_retry(
    src: Path | str,
    dst: Path | str,
    attempts: int | None = None,
    on_locked: Callable[[LockReport], None] | None = None,
    *,
    first_delay: float | None = None,
    max_delay: float | None = None,
    replace: Callable[[Path, Path], None] = os.replace,
    sleep: Callable[[float], None] | None = None,
    find_holders: Callable[[Sequence[Path]], list[Holder]] | None = None,
    windows: bool | None = None,
    name: Path | str | None = None,
) -> int:
    """``os.replace(src, dst)``, waiting for other programs to let go of ``dst`` (or ``src``).

    On a sharing violation: ask who holds the files, call ``on_locked`` with a ``LockReport``,
    sleep (``first_delay``, doubling up to ``max_delay``: the defaults wait about 20 s over 8
    attempts), try again. Returns the number of attempts used. Raises ``FileLockedError``
    after the last attempt, any other ``OSError`` at once, and whatever ``on_locked`` raises.
    Reports and the error name ``name`` (default ``dst``): the commit passes the game's
    file when it moves that file to its backup.
    """
    src, dst = Path(src), Path(dst)
    named = Path(name) if name is not None else dst
    attempts = ATTEMPTS if attempts is None else attempts
    delay = FIRST_DELAY if first_delay is None else first_delay
    cap = MAX_DELAY if max_delay is None else max_delay
    pause = sleep if sleep is not None else time.sleep
    find = find_holders if find_holders is not None else holders
    for attempt in range(1, attempts + 1):
        try:
            replace(src, dst)
            return attempt
        except OSError as e:
            if not is_locked_error(e, windows=windows):
                raise
            who = tuple(find([dst, src]))
            last = attempt == attempts
            if on_locked is not None:
                on_locked(LockReport(named, attempt, attempts, who, 0.0 if last else delay))
            if last:
                raise FileLockedError(named, who, e) from e
            pause(delay)
            delay = min(delay * 2, cap)
    raise ValueError("attempts must be at least 1")


# --- can every file be moved now? ------------------------------------------------------------


def probe_replace(path: Path | str, kernel32: Any = None) -> OSError | None:
    """Whether ``path`` can be renamed away now: ``None`` if so (or if it does not exist),
    else the ``OSError`` (with ``winerror``) that opening it for ``DELETE`` gave. The file is
    opened with every share mode allowed, so only a program that opened it without
    ``FILE_SHARE_DELETE`` (or a missing permission) makes it fail; the handle is closed at
    once. Windows only (``kernel32`` is injectable for tests)."""
    k32 = kernel32 if kernel32 is not None else _kernel32()
    handle = k32.CreateFileW(
        os.fspath(path), DELETE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, None,
        OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, None)
    if handle is None or handle == INVALID_HANDLE_VALUE:
        code = int(k32.get_last_error() if hasattr(k32, "get_last_error")
                   else ctypes.get_last_error())  # type: ignore[attr-defined]
        if code in (ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND):
            return None
        return win_error(code, path)
    k32.CloseHandle(handle)
    return None


def win_error(code: int, path: Path | str) -> OSError:
    """An ``OSError`` for Windows error ``code`` on ``path``, with ``winerror`` set (also
    where Python would not set it: the fakes of the tests run everywhere)."""
    text = {ERROR_ACCESS_DENIED: "Access is denied",
            ERROR_SHARING_VIOLATION: "The process cannot access the file because it is being "
                                     "used by another process",
            ERROR_LOCK_VIOLATION: "The process cannot access the file because another "
                                  "process has locked a portion of the file"}
    err = OSError(errno.EACCES if code in (ERROR_ACCESS_DENIED, *_LOCKED_WINERRORS)
                  else errno.EIO, text.get(code, f"Windows error {code}"), os.fspath(path))
    err.winerror = code  # type: ignore[attr-defined,unused-ignore]
    return err


def _kernel32() -> Any:
    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    from ctypes import wintypes

    k32.CreateFileW.restype = wintypes.HANDLE
    k32.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD,
                                ctypes.c_void_p, wintypes.DWORD, wintypes.DWORD,
                                wintypes.HANDLE]
    k32.CloseHandle.argtypes = [wintypes.HANDLE]
    k32.CloseHandle.restype = wintypes.BOOL
    return _Win32Handles(k32)


class _Win32Handles:
    """kernel32 with ``CreateFileW`` answering ``INVALID_HANDLE_VALUE`` as -1 (ctypes gives
    the HANDLE as an unsigned int) and the last error read from ctypes' private copy."""

    def __init__(self, k32: Any) -> None:
        self._k32 = k32

    def CreateFileW(self, *args: Any) -> int:
        handle = self._k32.CreateFileW(*args)
        if handle is None or handle in (INVALID_HANDLE_VALUE, (1 << 64) - 1, (1 << 32) - 1):
            return INVALID_HANDLE_VALUE
        return int(handle)

    def CloseHandle(self, handle: int) -> None:
        self._k32.CloseHandle(handle)

    @staticmethod
    def get_last_error() -> int:
        return int(ctypes.get_last_error())  # type: ignore[attr-defined]


def wait_until_replaceable(
    paths: Sequence[Path],
    probe: Callable[[Path], OSError | None],
    on_locked: Callable[[LockReport], None] | None = None,
    *,
    attempts: int | None = None,
    sleep: Callable[[float], None] | None = None,
    find_holders: Callable[[Sequence[Path]], list[Holder]] | None = None,
) -> int:
    """Wait until ``probe`` finds every one of ``paths`` free to move (see module doc).

    A held file is reported through ``on_locked`` (naming it and, where the Restart Manager
    can tell, the programs holding it) and waited for with the back-off of
    ``replace_with_retry``; ``FileLockedError`` names it after the last attempt. Access
    denied raises ``AccessDeniedError`` at once, any other error as it is. Returns the number
    of attempts used. Nothing is moved here: the caller has written nothing yet either.
    """
    attempts = ATTEMPTS if attempts is None else attempts
    pause = sleep if sleep is not None else time.sleep
    delay = FIRST_DELAY
    for attempt in range(1, attempts + 1):
        held: list[tuple[Path, OSError]] = []
        for path in paths:
            err = probe(path)
            if err is None:
                continue
            if is_locked_error(err, windows=True):
                held.append((path, err))
            elif is_access_denied(err):
                raise AccessDeniedError(path, err) from err
            else:
                raise err
        if not held:
            return attempt
        first, err = held[0]
        find = find_holders if find_holders is not None else holders
        who = tuple(find([p for p, _ in held]))
        last = attempt == attempts
        if on_locked is not None:
            on_locked(LockReport(first, attempt, attempts, who, 0.0 if last else delay))
        if last:
            raise FileLockedError(first, who, err) from err
        pause(delay)
        delay = min(delay * 2, MAX_DELAY)
    raise ValueError("attempts must be at least 1")
