"""core/system/procwait.py: ``--wait-pid``. The Windows path with a fake kernel32 (the real calls
run under the Windows CPython in tests/windows/test_procwait_win.py); the POSIX path for real."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from core.errors import ConfigError
from core.system import procwait
from core.system.procwait import ProcessWaitError, wait_for_exit


class FakeKernel32:
    """OpenProcess/WaitForSingleObject/CloseHandle as Windows answers them for a process that
    exits after ``runs_for`` waits of a slice each (None: never), or that does not exist
    (``exists=False``: ERROR_INVALID_PARAMETER), or is not ours (``denied``)."""

    def __init__(self, runs_for: int | None = 0, exists: bool = True,
                 denied: bool = False) -> None:
        self.runs_for, self.exists, self.denied = runs_for, exists, denied
        self.calls: list[tuple[Any, ...]] = []
        self.error = 0

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:
        self.calls.append(("open", access, inherit, pid))
        if not self.exists or self.denied:
            self.error = 5 if self.denied else 87
            return 0
        return 0x44

    def WaitForSingleObject(self, handle: int, ms: int) -> int:
        self.calls.append(("wait", handle, ms))
        if self.runs_for is not None and self.runs_for <= 0:
            return procwait.WAIT_OBJECT_0
        if self.runs_for is not None:
            self.runs_for -= 1
        return procwait.WAIT_TIMEOUT

    def CloseHandle(self, handle: int) -> int:
        self.calls.append(("close", handle))
        return 1

    def get_last_error(self) -> int:
        return self.error


def test_windows_waits_on_the_process_handle() -> None:
    k32 = FakeKernel32(runs_for=3)
    wait_for_exit(4242, 60, windows=True, kernel32=k32)
    assert k32.calls[0] == ("open", procwait.SYNCHRONIZE, False, 4242)
    assert procwait.SYNCHRONIZE == 0x00100000
    waits = [c for c in k32.calls if c[0] == "wait"]
    assert len(waits) == 4 and all(c[1:] == (0x44, procwait._SLICE_MS) for c in waits)
    assert k32.calls[-1] == ("close", 0x44)


def test_windows_a_pid_that_does_not_exist_returns_at_once() -> None:
    k32 = FakeKernel32(exists=False)
    wait_for_exit(4242, 60, windows=True, kernel32=k32)
    assert [c[0] for c in k32.calls] == ["open"]


def test_windows_times_out_with_a_clear_message() -> None:
    k32 = FakeKernel32(runs_for=None)
    with pytest.raises(ProcessWaitError, match=r"^process 4242 did not exit within 2 s$"):
        wait_for_exit(4242, 2, windows=True, kernel32=k32)
    assert len([c for c in k32.calls if c[0] == "wait"]) == 2000 // procwait._SLICE_MS
    assert k32.calls[-1] == ("close", 0x44)  # the handle is closed on the way out


def test_windows_access_denied_is_a_clear_error() -> None:
    with pytest.raises(ProcessWaitError, match="cannot wait for process 7: access denied"):
        wait_for_exit(7, 60, windows=True, kernel32=FakeKernel32(denied=True))


def test_windows_never_calls_os_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.kill(pid, 0) on Windows sends CTRL_C_EVENT: the fault this module fixes."""
    def no_kill(pid: int, sig: int) -> None:
        raise AssertionError("os.kill called on Windows")

    monkeypatch.setattr(procwait.os, "kill", no_kill)
    wait_for_exit(4242, 60, windows=True, kernel32=FakeKernel32(runs_for=1))


def test_a_wait_error_is_a_config_error() -> None:
    assert issubclass(ProcessWaitError, ConfigError)  # exit code 2 in the README table
    with pytest.raises(ProcessWaitError, match="above 0"):
        wait_for_exit(0, 1, windows=True, kernel32=FakeKernel32())


def test_posix_waits_for_a_real_process() -> None:
    if sys.platform == "win32":
        pytest.skip("the POSIX path")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    with pytest.raises(ProcessWaitError, match="did not exit within 0 s"):
        wait_for_exit(child.pid, 0.0, windows=False)
    child.communicate(b"")  # ends and is reaped
    wait_for_exit(child.pid, 5.0, windows=False)  # gone: returns at once


def test_posix_polls_until_the_process_is_gone() -> None:
    left = {"n": 3}
    sleeps: list[float] = []

    def kill(pid: int, sig: int) -> None:
        assert sig == 0
        if left["n"] == 0:
            raise ProcessLookupError
        left["n"] -= 1

    now = {"t": 0.0}

    def sleep(s: float) -> None:
        sleeps.append(s)
        now["t"] += s

    wait_for_exit(99, 60, windows=False, kill=kill, sleep=sleep, clock=lambda: now["t"])
    assert sleeps == [procwait._POLL] * 3


def test_the_cli_waits_then_updates_and_a_bad_pid_is_exit_2(
        tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """``stitch --update --wait-pid``: an ended process lets the update go on (here to the
    refused connection's exit code 3); a negative pid is a clear argument error (exit 2)."""
    from app.cli import main

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    args = ["--update", "--url", "http://127.0.0.1:9/", "--dir", str(tmp_path),
            "--progress", "none"]
    assert main([*args, "--wait-pid", str(child.pid)]) == 3
    with pytest.raises(SystemExit) as exited:
        main([*args, "--wait-pid", "-5"])
    assert exited.value.code == 2
    assert "--wait-pid: must be at least 1, not -5" in capsys.readouterr().err
