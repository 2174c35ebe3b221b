"""core/system/winfiles.py with fakes: the Restart Manager calls (a fake rstrtmgr.dll that fills the
ctypes structures the way Windows does) and the retry loop (a fake os.replace that fails with
sharing violations while a fake program holds the file). Nothing here needs Windows."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from core.system import winfiles
from core.system.winfiles import (
    RM_PROCESS_INFO,
    CtypesRestartManager,
    FileLockedError,
    Holder,
    LockReport,
    replace_with_retry,
)


def test_structures_have_the_windows_layout() -> None:
    # RM_UNIQUE_PROCESS: DWORD + FILETIME = 12; RM_PROCESS_INFO = 12 + 256 + 64 WCHARs + 4*4.
    # A WCHAR is 2 bytes on Windows (668 bytes in all); ctypes' c_wchar is 4 on Linux.
    w = ctypes.sizeof(ctypes.c_wchar)
    assert ctypes.sizeof(winfiles.RM_UNIQUE_PROCESS) == 12
    assert ctypes.sizeof(RM_PROCESS_INFO) == 12 + 320 * w + 16
    assert RM_PROCESS_INFO.strAppName.offset == 12
    assert RM_PROCESS_INFO.ApplicationType.offset == 12 + 320 * w
    if w == 2:
        assert ctypes.sizeof(RM_PROCESS_INFO) == 668


class FakeRstrtmgr:
    """Plays rstrtmgr.dll: the ctypes arguments are written through ``byref`` as Windows
    does. ``holders`` are (pid, name, app type); ``grow`` makes the first RmGetList answer
    ERROR_MORE_DATA, as when a process opens the file between two calls."""

    def __init__(self, holders: Sequence[tuple[int, str, int]], grow: bool = False,
                 fail: dict[str, int] | None = None) -> None:
        self.holders = list(holders)
        self.grow = grow
        self.fail = fail or {}
        self.registered: list[str] = []
        self.ended: list[int] = []
        self.calls: list[str] = []

    def RmStartSession(self, handle: Any, flags: int, key: Any) -> int:
        self.calls.append("start")
        if "start" in self.fail:
            return self.fail["start"]
        handle._obj.value = 7
        key.value = "0" * 32
        return 0

    def RmRegisterResources(
        self, session: Any, n: Any, names: Any, n_apps: int, apps: Any, n_svc: int, svc: Any
    ) -> int:
        self.calls.append("register")
        assert session.value == 7
        self.registered = [names[i] for i in range(n.value)]
        return self.fail.get("register", 0)

    def RmGetList(
        self, session: Any, needed: Any, count: Any, infos: Any, reasons: Any
    ) -> int:
        self.calls.append("list")
        if "list" in self.fail:
            return self.fail["list"]
        needed._obj.value = len(self.holders)
        if self.grow or count._obj.value < len(self.holders):
            self.grow = False
            return winfiles.ERROR_MORE_DATA
        for i, (pid, name, kind) in enumerate(self.holders):
            infos[i].Process.dwProcessId = pid
            infos[i].strAppName = name
            infos[i].ApplicationType = kind
            infos[i].bRestartable = 1
        count._obj.value = len(self.holders)
        return 0

    def RmEndSession(self, session: Any) -> int:
        self.calls.append("end")
        self.ended.append(session.value)
        return 0


def test_holders_through_the_restart_manager_calls() -> None:
    dll = FakeRstrtmgr([(4242, "Dungeon Crawl", 1), (88, "Windows Defender", 3)])
    found = winfiles.holders([Path("C:/Games/dc/data.pak")], CtypesRestartManager(dll))
    assert found == [
        Holder(4242, "Dungeon Crawl", "window", "", True),
        Holder(88, "Windows Defender", "service", "", True),
    ]
    assert dll.registered == [str(Path("C:/Games/dc/data.pak"))]
    assert dll.calls == ["start", "register", "list", "end"]
    assert str(found[0]) == "Dungeon Crawl (pid 4242)"


def test_more_data_is_asked_again_with_a_bigger_array() -> None:
    many = [(1000 + i, f"p{i}", 5) for i in range(20)]  # more than the first array of 8
    dll = FakeRstrtmgr(many, grow=True)
    found = winfiles.holders(["x"], CtypesRestartManager(dll))
    assert [h.pid for h in found] == [1000 + i for i in range(20)]
    assert dll.calls.count("list") >= 2
    assert {h.kind for h in found} == {"console"}


@pytest.mark.parametrize("where", ["start", "register", "list"])
def test_a_failing_restart_manager_means_unknown_holders(where: str) -> None:
    dll = FakeRstrtmgr([(1, "a", 1)], fail={where: 5})
    assert winfiles.holders(["x"], CtypesRestartManager(dll)) == []
    if where != "start":
        assert dll.ended == [7]  # the session is always ended


def test_no_restart_manager_off_windows() -> None:
    assert winfiles.holders(["x"], windows=False) == []
    assert winfiles.holders([], windows=True) == []


class LockedFile:
    """A fake os.replace: fails with a sharing violation ``busy`` times, then works."""

    def __init__(self, busy: int, winerror: int = 32) -> None:
        self.busy = busy
        self.winerror = winerror
        self.calls: list[tuple[Path, Path]] = []

    def __call__(self, src: Path, dst: Path) -> None:
        self.calls.append((src, dst))
        if self.busy > 0:
            self.busy -= 1
            e = PermissionError(errno.EACCES, "The process cannot access the file", str(dst))
            e.winerror = self.winerror  # type: ignore[attr-defined]
            raise e


def test_retries_with_back_off_and_tells_who_holds_the_file() -> None:
    replace = LockedFile(busy=3)
    sleeps: list[float] = []
    reports: list[LockReport] = []
    game = Holder(4242, "Dungeon Crawl", "window")
    used = replace_with_retry(
        "stage/data.pak", "game/data.pak", attempts=8, on_locked=reports.append,
        replace=replace, sleep=sleeps.append, find_holders=lambda paths: [game], windows=True,
    )
    assert used == 4
    assert len(replace.calls) == 4
    assert sleeps == [0.25, 0.5, 1.0]
    assert [r.attempt for r in reports] == [1, 2, 3]
    assert reports[0].holders == (game,)
    assert reports[0].message() == (
        "data.pak is in use by Dungeon Crawl (pid 4242); close it to continue"
    )


def test_gives_up_with_the_holders_after_the_last_attempt() -> None:
    replace = LockedFile(busy=100, winerror=33)  # ERROR_LOCK_VIOLATION
    sleeps: list[float] = []
    reports: list[LockReport] = []
    holder = Holder(9, "MsMpEng.exe", "service", "WinDefend")
    with pytest.raises(FileLockedError) as info:
        replace_with_retry(
            "a", "b", attempts=6, on_locked=reports.append, replace=replace,
            sleep=sleeps.append, find_holders=lambda paths: [holder], windows=True,
            first_delay=1.0, max_delay=4.0,
        )
    assert isinstance(info.value, PermissionError)  # still a local disk problem (exit code 5)
    assert info.value.holders == (holder,)
    assert info.value.path == Path("b")
    assert sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]  # capped
    assert reports[-1].retry_in == 0.0 and reports[-1].attempt == 6
    assert "MsMpEng.exe (pid 9)" in str(info.value)


def test_the_callback_can_cancel_the_wait() -> None:
    class Cancelled(Exception):
        pass

    def on_locked(report: LockReport) -> None:
        raise Cancelled

    replace = LockedFile(busy=5)
    with pytest.raises(Cancelled):
        replace_with_retry("a", "b", on_locked=on_locked, replace=replace,
                           sleep=lambda s: None, find_holders=lambda p: [], windows=True)
    assert len(replace.calls) == 1


def test_other_errors_and_other_systems_do_not_wait() -> None:
    def missing(src: Path, dst: Path) -> None:
        raise FileNotFoundError(errno.ENOENT, "gone", str(src))

    sleeps: list[float] = []
    with pytest.raises(FileNotFoundError):
        replace_with_retry("a", "b", replace=missing, sleep=sleeps.append, windows=True)
    # On Linux/macOS a PermissionError is about permissions, not a lock: no waiting.
    with pytest.raises(PermissionError):
        replace_with_retry("a", "b", replace=LockedFile(busy=1), sleep=sleeps.append,
                           windows=False)
    assert sleeps == []


def test_really_replaces_a_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "new", tmp_path / "old"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    assert replace_with_retry(src, dst) == 1
    assert dst.read_bytes() == b"new" and not src.exists()


# --- access denied is not "in use" -----------------------------------------------------------


def _oserror(winerror: int | None, cls: type[OSError] = PermissionError) -> OSError:
    e = cls(errno.EACCES, "refused", "game/data.pak")
    if winerror is not None:
        e.winerror = winerror  # type: ignore[attr-defined]
    return e


@pytest.mark.parametrize(("winerror", "locked"), [
    (32, True), (33, True),  # ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION: in use
    (5, False),  # ERROR_ACCESS_DENIED: a permission, not a program
    (None, False),  # a PermissionError without a Windows code
    (2, False),
])
def test_only_sharing_and_lock_violations_are_in_use(winerror: int | None, locked: bool) -> None:
    assert winfiles.is_locked_error(_oserror(winerror), windows=True) is locked
    assert winfiles.is_locked_error(_oserror(winerror), windows=False) is False


def test_access_denied_is_raised_at_once_without_waiting() -> None:
    replace = LockedFile(busy=100, winerror=5)
    sleeps: list[float] = []
    reports: list[LockReport] = []
    with pytest.raises(PermissionError) as info:
        replace_with_retry("a", "b", on_locked=reports.append, replace=replace,
                           sleep=sleeps.append, find_holders=lambda p: [], windows=True)
    assert not isinstance(info.value, FileLockedError)
    assert len(replace.calls) == 1 and sleeps == [] and reports == []


def test_the_report_names_the_file_asked_for() -> None:
    """The commit moves the game's file to .stitch/backup/...: the game's file is named."""
    replace = LockedFile(busy=100)
    reports: list[LockReport] = []
    with pytest.raises(FileLockedError) as info:
        replace_with_retry("game/data.pak", ".stitch/backup/1", attempts=2,
                           on_locked=reports.append, replace=replace, sleep=lambda s: None,
                           find_holders=lambda p: [], windows=True, name="game/data.pak")
    assert info.value.path == Path("game/data.pak")
    assert {r.path for r in reports} == {Path("game/data.pak")}
    assert "backup" not in str(info.value)


# --- the pre-check: can every file be moved now? -----------------------------------------


class FakeKernel32:
    """CreateFileW/CloseHandle as Windows answers them: ``held`` paths fail with a sharing
    violation, ``denied`` ones with access denied, missing ones with file not found."""

    def __init__(self, held: set[str] = frozenset(), denied: set[str] = frozenset(),  # type: ignore[assignment]
                 missing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.held, self.denied, self.missing = held, denied, missing
        self.opened: list[tuple[str, int, int, int, int]] = []
        self.closed: list[int] = []
        self.error = 0

    def CreateFileW(self, name: str, access: int, share: int, sa: Any, disposition: int,
                    flags: int, template: Any) -> int:
        self.opened.append((name, access, share, disposition, flags))
        for names, code in ((self.held, 32), (self.denied, 5), (self.missing, 2)):
            if name in names:
                self.error = code
                return winfiles.INVALID_HANDLE_VALUE
        return 100 + len(self.opened)

    def CloseHandle(self, handle: int) -> None:
        self.closed.append(handle)

    def get_last_error(self) -> int:
        return self.error


def test_probe_opens_for_delete_with_every_share_mode() -> None:
    k32 = FakeKernel32(held={"held.pak"}, denied={"ro.pak"}, missing={"gone.pak"})
    assert winfiles.probe_replace("free.pak", k32) is None
    _name, access, share, disposition, flags = k32.opened[0]
    assert access == winfiles.DELETE == 0x10000
    assert share == 0x7  # FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE
    assert disposition == 3  # OPEN_EXISTING: never creates a file
    assert flags & winfiles.FILE_FLAG_OPEN_REPARSE_POINT  # a link is moved, not its target
    assert k32.closed == [101]  # the handle is closed at once
    err = winfiles.probe_replace("held.pak", k32)
    assert err is not None and err.winerror == 32  # type: ignore[attr-defined]
    assert winfiles.is_locked_error(err, windows=True)
    denied = winfiles.probe_replace("ro.pak", k32)
    assert denied is not None and winfiles.is_access_denied(denied)
    assert winfiles.probe_replace("gone.pak", k32) is None  # nothing to move aside
    assert len(k32.closed) == 1


def test_wait_until_replaceable_waits_then_names_the_held_file() -> None:
    busy = {"game/Game.exe": 2}

    def probe(path: Path) -> OSError | None:
        if busy.get(path.as_posix(), 0) > 0:
            busy[path.as_posix()] -= 1
            return winfiles.win_error(32, path)
        return None

    reports: list[LockReport] = []
    sleeps: list[float] = []
    game = Holder(77, "Dungeon Crawl", "window")
    used = winfiles.wait_until_replaceable(
        [Path("game/a.pak"), Path("game/Game.exe")], probe, reports.append,
        sleep=sleeps.append, find_holders=lambda paths: [game])
    assert used == 3 and sleeps == [0.25, 0.5]
    assert [r.path.as_posix() for r in reports] == ["game/Game.exe"] * 2
    assert reports[0].message() == (
        "Game.exe is in use by Dungeon Crawl (pid 77); close it to continue")

    with pytest.raises(FileLockedError) as info:
        winfiles.wait_until_replaceable(
            [Path("game/Game.exe")], lambda p: winfiles.win_error(33, p), attempts=3,
            sleep=sleeps.append, find_holders=lambda paths: [game])
    assert info.value.path == Path("game/Game.exe") and info.value.holders == (game,)


def test_wait_until_replaceable_does_not_wait_for_access_denied() -> None:
    sleeps: list[float] = []
    with pytest.raises(winfiles.AccessDeniedError) as info:
        winfiles.wait_until_replaceable(
            [Path("game/ro.pak")], lambda p: winfiles.win_error(5, p), sleep=sleeps.append,
            find_holders=lambda paths: [])
    assert sleeps == [] and info.value.path == Path("game/ro.pak")
    assert "access denied" in str(info.value) and "ro.pak" in str(info.value)
