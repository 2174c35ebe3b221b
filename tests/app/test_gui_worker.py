"""The progress throttle and the worker thread, with a scripted engine."""

from __future__ import annotations

import threading

from gui_fakes import Script, make_check, make_plan
from pytestqt.qtbot import QtBot

from app.gui.worker import ProgressThrottle, UpdateSession
from core.engine.updater import CheckResult, UpdatePlan, UpdateResult
from core.errors import NetworkError
from core.progress import Phase, Progress


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_throttle_keeps_phase_changes_last_values_and_messages() -> None:
    clock = Clock()
    throttle = ProgressThrottle(0.1, clock)
    sent: list[Progress] = []
    offer = lambda p: throttle.offer(p, sent.append)  # noqa: E731
    offer(Progress(Phase.SCAN, 0, 100))  # a new phase: sent
    for i in range(1, 50):  # 49 values within 10 ms: held back
        clock.t += 0.0002
        offer(Progress(Phase.SCAN, i, 100, message="range 1-2" if i == 7 else ""))
    assert [p.done for p in sent] == [0]
    clock.t = 0.2
    offer(Progress(Phase.SCAN, 60, 100))  # interval passed: sent, with the held message
    assert [p.done for p in sent] == [0, 60]
    assert sent[-1].message == "range 1-2"
    clock.t += 0.01
    offer(Progress(Phase.SCAN, 100, 100))  # held back...
    offer(Progress(Phase.DOWNLOAD, 0, 10))  # ...until the phase changes: both sent, in order
    assert [(p.phase, p.done) for p in sent[2:]] == [(Phase.SCAN, 100), (Phase.DOWNLOAD, 0)]
    clock.t += 0.01
    offer(Progress(Phase.DOWNLOAD, 10, 10, message="done"))
    throttle.flush(sent.append)  # the end of an operation: the final value gets through
    assert (sent[-1].done, sent[-1].message) == (10, "done")
    throttle.flush(sent.append)
    assert len(sent) == 5  # nothing held: nothing sent twice


def test_throttle_caps_a_message_flood() -> None:
    clock = Clock()
    throttle = ProgressThrottle(0.1, clock)
    sent: list[Progress] = []
    throttle.offer(Progress(Phase.DOWNLOAD), sent.append)
    for i in range(1000):
        throttle.offer(Progress(Phase.DOWNLOAD, i, message=f"line {i}"), sent.append)
    throttle.flush(sent.append)
    lines = sent[-1].message.splitlines()
    assert len(lines) == 201 and lines[-1] == "… 800 more lines not shown"


def test_throttle_is_thread_safe() -> None:
    throttle = ProgressThrottle(0.0)
    sent: list[Progress] = []
    lock = threading.Lock()

    def emit(p: Progress) -> None:
        with lock:
            sent.append(p)

    def work(n: int) -> None:
        for i in range(500):
            throttle.offer(Progress(Phase.DOWNLOAD, i, message=f"{n}"), emit)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    throttle.flush(emit)
    assert sum(len(p.message.splitlines()) for p in sent) == 2000


def test_session_runs_the_engine_on_its_thread(qtbot: QtBot, fake_factory, script: Script) -> None:
    session = UpdateSession(fake_factory)
    got: list[Progress] = []
    checked: list[CheckResult] = []
    session.signals.progress.connect(got.append)
    session.signals.checked.connect(checked.append)
    try:
        with qtbot.waitSignal(session.signals.planned, timeout=5000) as blocker:
            session.prepare(make_config())
        plan: UpdatePlan = blocker.args[0]
        assert checked == [script.check] and plan == script.plan
        with qtbot.waitSignal(session.signals.finished, timeout=5000) as blocker:
            session.apply()
        result: UpdateResult = blocker.args[0]
        assert result.to_version == "1.1"
        assert script.calls == ["check", "prepare", "apply"]
        phases = [p.phase for p in got]
        assert phases[0] is Phase.CHECK and phases[-1] is Phase.DONE
        assert got[-1].done == 1  # the final value is never throttled away
    finally:
        assert session.stop()
    assert script.calls[-1] == "close"


def test_session_reports_errors_as_words(qtbot: QtBot, fake_factory, script: Script) -> None:
    script.check_error = NetworkError("connection refused", url="http://127.0.0.1:9/")
    session = UpdateSession(fake_factory)
    try:
        with qtbot.waitSignal(session.signals.failed, timeout=5000) as blocker:
            session.prepare(make_config())
        kind, message, detail = blocker.args
        assert kind == "network"
        assert message.startswith("The update server could not be reached.")
        assert detail.startswith("NetworkError: connection refused")
        # Up to date: checked, and no plan asked for.
        script.check = make_check("1.1", "1.1")
        script.plan = make_plan(script.check)
        with qtbot.waitSignal(session.signals.checked, timeout=5000):
            session.prepare(make_config())
        qtbot.wait(50)
        assert script.calls.count("prepare") == 0
    finally:
        assert session.stop()


def make_config():
    from pathlib import Path

    from core.engine.updater import UpdaterConfig

    return UpdaterConfig(url="http://127.0.0.1:9/", install_dir=Path("/nonexistent"))
