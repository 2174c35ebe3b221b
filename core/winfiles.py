"""Files in use on Windows: who holds a file, and replacing it once they let go.

Owns two things the commit needs on Windows, where a file that a running program (the game,
an antivirus scan, a backup tool) has open without ``FILE_SHARE_DELETE`` cannot be renamed
over:

- ``holders(paths)``: which processes have those files open, asked of the Restart Manager
  (``rstrtmgr.dll``: ``RmStartSession``, ``RmRegisterResources``, ``RmGetList``,
  ``RmEndSession``) through ctypes. Elsewhere, or if the API fails, it returns ``[]``: naming
  the program is a courtesy, not a condition.
- ``replace_with_retry(src, dst, attempts, on_locked)``: ``os.replace`` that, on a sharing
  violation, asks who holds the file, reports it through ``on_locked`` (so a front end can
  say "close Dungeon Crawl (pid 4242)"), waits with back-off and tries again; after the last
  attempt it raises ``FileLockedError`` carrying the holders. ``on_locked`` may raise (a
  cancel) to stop waiting.

It never ends a process: the Restart Manager's shutdown and restart calls are not used.
Every OS call is injectable, so the tests run the Windows paths with fakes on any system.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ERROR_SUCCESS = 0
ERROR_ACCESS_DENIED = 5
ERROR_SHARING_VIOLATION = 32
ERROR_LOCK_VIOLATION = 33
ERROR_MORE_DATA = 234
_LOCKED_WINERRORS = (ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION)

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
    """Whether ``exc`` means "another process has the file open" (worth waiting for). Only on
    Windows: elsewhere a permission error is a permission problem and waiting cannot help."""
    if not (os.name == "nt" if windows is None else windows):
        return False
    if getattr(exc, "winerror", None) in _LOCKED_WINERRORS:
        return True
    return isinstance(exc, PermissionError)


def replace_with_retry(
    src: Path | str,
    dst: Path | str,
    attempts: int = 8,
    on_locked: Callable[[LockReport], None] | None = None,
    *,
    first_delay: float = 0.25,
    max_delay: float = 4.0,
    replace: Callable[[Path, Path], None] = os.replace,
    sleep: Callable[[float], None] = time.sleep,
    find_holders: Callable[[Sequence[Path]], list[Holder]] = holders,
    windows: bool | None = None,
) -> int:
    """``os.replace(src, dst)``, waiting for other programs to let go of ``dst`` (or ``src``).

    On a sharing violation: ask who holds the files, call ``on_locked`` with a ``LockReport``,
    sleep (``first_delay``, doubling up to ``max_delay``: the defaults wait about 20 s over 8
    attempts), try again. Returns the number of attempts used. Raises ``FileLockedError``
    after the last attempt, any other ``OSError`` at once, and whatever ``on_locked`` raises.
    """
    src, dst = Path(src), Path(dst)
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            replace(src, dst)
            return attempt
        except OSError as e:
            if not is_locked_error(e, windows=windows):
                raise
            who = tuple(find_holders([dst, src]))
            last = attempt == attempts
            if on_locked is not None:
                on_locked(LockReport(dst, attempt, attempts, who, 0.0 if last else delay))
            if last:
                raise FileLockedError(dst, who, e) from e
            sleep(delay)
            delay = min(delay * 2, max_delay)
    raise ValueError("attempts must be at least 1")
