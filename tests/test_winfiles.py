"""core/winfiles.py with fakes: the Restart Manager calls (a fake rstrtmgr.dll that fills the
ctypes structures the way Windows does) and the retry loop (a fake os.replace that fails with
sharing violations while a fake program holds the file). Nothing here needs Windows."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from core import winfiles
from core.winfiles import (
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
    replace = LockedFile(busy=100, winerror=5)
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
