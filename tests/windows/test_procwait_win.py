"""``--wait-pid`` with the real kernel32 calls (OpenProcess + WaitForSingleObject) under the
Windows CPython: a live child process, one that has ended, a pid that names nothing. Before
the fix ``os.kill(pid, 0)`` raised ``OSError [WinError 12]`` (3.12) or ``SystemError``
(3.11) at once, or sent CTRL_C_EVENT."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.system.procwait import ProcessWaitError, wait_for_exit

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the Windows API")


def _child() -> subprocess.Popen[bytes]:
    # Lives until its stdin is closed: nothing here depends on a clock.
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)


def test_a_live_process_is_waited_for_until_the_timeout() -> None:
    child = _child()
    try:
        with pytest.raises(ProcessWaitError, match=rf"^process {child.pid} did not exit "):
            wait_for_exit(child.pid, 0.5)
        assert child.poll() is None  # still running: the wait did not signal it
    finally:
        child.communicate(b"")


def test_a_process_that_ended_returns_at_once() -> None:
    child = _child()
    child.communicate(b"")
    assert child.returncode == 0
    wait_for_exit(child.pid, 600)  # the handle is signalled (or the pid names nothing)


def test_waits_while_the_process_runs_then_returns() -> None:
    """The process ends while we wait: a thread closes its stdin after the first slices."""
    import threading

    child = _child()
    done = threading.Event()

    def end_it() -> None:
        done.wait(2.0)
        assert child.stdin is not None
        child.stdin.close()

    t = threading.Thread(target=end_it)
    t.start()
    try:
        done.set()
        wait_for_exit(child.pid, 600)
        assert child.wait(60) == 0
    finally:
        t.join()


def test_a_pid_that_names_no_process_returns_at_once() -> None:
    # Windows pids are multiples of 4: an odd one names no process.
    wait_for_exit(4093, 600)
