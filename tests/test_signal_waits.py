"""A signal the OS delivers to a worker thread still cancels the run.

Python runs signal handlers on the main thread only, when it runs Python code; the OS may
hand SIGTERM to any thread. A main thread blocked in an unbounded ``join`` then never runs
the handler that sets the cancel token, and the workers it waits for never stop (seen: a
SIGTERM during a download in pieces ignored for over a minute). Every wait of the main
thread for others wakes up (``core.parallel.WAKE``). Here a worker sends SIGTERM to its own
thread and then waits for the handler's event: the main thread's wait must let it run.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHILD = """
import signal, sys, threading
from core.engine.background import Background
from core.engine.pieces import run_jobs
from core.parallel import each, join
from core.progress import CancelToken

how = sys.argv[1]
handled = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: handled.set())

def work(_token=None):
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this worker thread
    if not handled.wait(20):
        raise SystemExit("the handler never ran")

if how == "join":
    t = threading.Thread(target=work)
    t.start()
    join(t)
elif how == "run_jobs":
    run_jobs([work, lambda token: None], 2, CancelToken())
elif how == "background":
    b = Background(CancelToken(), "test")
    b.start(work)
    b.wait()
else:
    each(lambda x: work() if x else None, [1, 0], 2)
print("handled" if handled.is_set() else "not handled")
"""


@pytest.mark.parametrize("how", ["join", "run_jobs", "background", "each"])
def test_a_signal_to_a_worker_is_handled_while_the_main_thread_waits(how: str) -> None:
    r = subprocess.run([sys.executable, "-c", _CHILD, how], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["handled"]
