"""Run by tests/windows/test_lock_win.py under the Windows CPython: the install lock's
msvcrt path, with real processes. Prints one JSON object of facts; asserts nothing itself.

    python lock_probe.py main STATE_DIR    the checks
    python lock_probe.py hold STATE_DIR    take the lock, say "held", wait for stdin
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.engine.lock import LOCK_NAME, acquire, holder_pid
from core.errors import InstallBusyError


def _holder(state: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, __file__, "hold", str(state)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def _busy_pid(state: Path) -> int | str | None:
    """The pid the refusal names, or "free" when the lock could be taken."""
    try:
        with acquire(state, wait=0):
            return "free"
    except InstallBusyError as e:
        return e.pid


def main(state: Path) -> dict[str, object]:
    facts: dict[str, object] = {"platform": sys.platform, "me": os.getpid()}
    killed = _holder(state)
    facts["holder"] = killed.pid
    facts["pid_in_file"] = holder_pid(state / LOCK_NAME)
    facts["busy_while_held"] = _busy_pid(state)
    killed.kill()  # TerminateProcess: no chance to release
    killed.wait()
    facts["after_kill"] = _busy_pid(state)
    with acquire(state, wait=0):
        facts["in_process_second"] = _busy_pid(state)
    facts["after_release"] = _busy_pid(state)
    try:
        with acquire(state, wait=0):
            raise ZeroDivisionError
    except ZeroDivisionError:
        pass
    facts["after_exception"] = _busy_pid(state)
    exits = _holder(state)
    assert exits.stdin is not None
    exits.stdin.close()  # it exits without releasing
    exits.wait()
    facts["after_exit"] = _busy_pid(state)
    return facts


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        lock = acquire(Path(sys.argv[2]), wait=0)
        print("held", flush=True)
        sys.stdin.readline()
        os._exit(0)
    print(json.dumps(main(Path(sys.argv[2]))), flush=True)
