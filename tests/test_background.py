"""core.engine.background: a piece of work on its own thread, stopped with its operation."""

from __future__ import annotations

import threading

import pytest

from core.engine.background import Background
from core.errors import CancelledError, DownloadError
from core.progress import CancelToken


def _until_cancelled(token: CancelToken, started: threading.Event) -> None:
    started.set()
    for _ in range(1000):  # bounded: 1000 x 10 ms at most
        token.check()
        threading.Event().wait(0.01)
    raise AssertionError("never cancelled")


def test_the_work_failing_stops_the_caller_and_its_error_is_raised() -> None:
    op = CancelToken()
    bg = Background(op, "test")
    bg.start(lambda token: (_ for _ in ()).throw(DownloadError("server went away")))
    with pytest.raises(CancelledError):
        _until_cancelled(bg.token, threading.Event())  # the caller's loop is stopped
    assert bg.failed()
    with pytest.raises(DownloadError, match="server went away"):
        bg.wait()
    assert not op.cancelled  # the operation itself was not cancelled


def test_cancelling_the_operation_stops_the_work() -> None:
    op = CancelToken()
    bg = Background(op, "test")
    started = threading.Event()
    bg.start(lambda token: _until_cancelled(token, started))
    assert started.wait(10)
    op.cancel()
    with pytest.raises(CancelledError):
        bg.wait()
    assert not bg.failed()  # the user's cancel, not the work's error


def test_stop_ends_running_work_and_the_work_can_finish_first() -> None:
    bg = Background(CancelToken(), "test")
    started = threading.Event()
    bg.start(lambda token: _until_cancelled(token, started))
    assert started.wait(10)
    bg.stop()
    assert bg._thread is not None and not bg._thread.is_alive()

    done: list[int] = []
    bg = Background(CancelToken(), "test")
    bg.start(lambda token: done.append(1))
    bg.wait()
    bg.stop()  # nothing left to stop
    assert done == [1] and not bg.failed()
    Background(CancelToken(), "never started").stop()


def test_a_child_token_follows_its_parent() -> None:
    parent = CancelToken()
    child = CancelToken(parent)
    child.check()
    parent.pause()
    assert child.paused
    parent.resume()
    child.cancel()
    assert child.cancelled and not parent.cancelled
    with pytest.raises(CancelledError):
        child.check()
    other = CancelToken(parent)
    parent.cancel()
    assert other.cancelled
    with pytest.raises(CancelledError):
        other.check()
