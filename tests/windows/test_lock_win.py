"""The install lock's Windows path (``msvcrt.locking``) under the Windows CPython: refused
while another process holds it, naming its pid; free again after ``TerminateProcess``, after
an exception and after an exit without release (``lock_probe.py`` drives real processes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the msvcrt lock path")


def test_the_lock_under_windows_cpython(tmp_path: Path) -> None:
    from tests.windows.lock_probe import main

    state = tmp_path / "game" / ".stitch"
    facts = main(state)
    assert facts["platform"] == "win32"
    holder, me = facts["holder"], facts["me"]
    assert facts["pid_in_file"] == holder
    assert facts["busy_while_held"] == holder  # refused, and the refusal names the holder
    assert facts["after_kill"] == "free"  # TerminateProcess left nothing stale
    assert facts["in_process_second"] == me  # a second lock object in one process: refused
    assert facts["after_release"] == facts["after_exception"] == facts["after_exit"] == "free"
    assert (state / "lock").is_file()
