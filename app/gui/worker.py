"""The engine on a background thread, talking to the window only through typed signals.

``UpdateSession`` is what the window holds: it owns the ``QThread``, the ``UpdateWorker``
living on it, the ``WorkerSignals`` the window connects to, and the ``CancelToken`` of the
current attempt. Pause, resume and cancel go straight to the token (thread-safe), because the
worker thread is busy inside the engine and would not run a queued slot until it returned.

The worker builds the ``Updater`` inside its thread, so every engine call (and the engine's
HTTP client) stays on that thread. Progress is throttled to about ten signals a second;
phase changes and the last value of an operation always get through, and the details-log
messages of skipped values are carried by the next one that is sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.gui.text import describe_error
from core.engine.updater import CheckResult, UpdatePlan, UpdaterConfig, UpdateResult
from core.progress import CancelToken, Phase, Progress, ProgressCallback

_MAX_LOG_LINES = 200  # per delivered value; a flood of range messages is cut, not queued


class UpdaterLike(Protocol):
    """The part of ``core.engine.updater.Updater`` the window uses (tests pass stand-ins)."""

    def check(self) -> CheckResult: ...
    def prepare(self) -> UpdatePlan: ...
    def apply(self) -> UpdateResult: ...
    def close(self) -> None: ...


UpdaterFactory = Callable[[UpdaterConfig, ProgressCallback, CancelToken], UpdaterLike]
# Work other than an update (verify and repair), run on the worker's thread.
Job = Callable[[UpdaterFactory, ProgressCallback, CancelToken], object]


def real_updater(
    config: UpdaterConfig, progress: ProgressCallback, cancel: CancelToken
) -> UpdaterLike:
    from core.engine.updater import Updater

    return Updater(config, progress=progress, cancel=cancel)


class ProgressThrottle:
    """Decides which progress values reach the GUI. Thread-safe (the engine may report from
    its download threads) and free of Qt, so it is tested on its own."""

    def __init__(self, interval: float = 0.1, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_sent = float("-inf")
        self._phase: Phase | None = None
        self._pending: Progress | None = None
        self._messages: list[str] = []
        self._dropped_messages = 0

    def offer(self, p: Progress, emit: Callable[[Progress], None]) -> None:
        """Send ``p`` through ``emit`` now, or keep it to send later."""
        with self._lock:
            now = self._clock()
            if p.phase is not self._phase:
                # The previous phase's last value first, so its numbers end where they ended.
                if self._pending is not None:
                    emit(self._take(self._pending))
                self._phase = p.phase
                self._add_message(p)
                self._send(p, now, emit)
                return
            self._add_message(p)
            if now - self._last_sent >= self.interval:
                self._send(p, now, emit)
            else:
                self._pending = p

    def flush(self, emit: Callable[[Progress], None]) -> None:
        """Send the value held back, if any. Called when an operation ends."""
        with self._lock:
            if self._pending is not None:
                self._send(self._pending, self._clock(), emit)

    def _add_message(self, p: Progress) -> None:
        if not p.message:
            return
        if len(self._messages) < _MAX_LOG_LINES:
            self._messages.append(p.message)
        else:
            self._dropped_messages += 1

    def _send(self, p: Progress, now: float, emit: Callable[[Progress], None]) -> None:
        emit(self._take(p))
        self._last_sent = now

    def _take(self, p: Progress) -> Progress:
        """``p`` carrying every log message gathered since the last value sent."""
        self._pending = None
        lines = self._messages
        if self._dropped_messages:
            lines = [*lines, f"… {self._dropped_messages} more lines not shown"]
        self._messages = []
        self._dropped_messages = 0
        if lines == [p.message]:
            return p
        return dataclasses.replace(p, message="\n".join(lines))


class WorkerSignals(QObject):
    """Everything the worker tells the window. Emitted from the worker's threads; delivered
    on the GUI thread (queued), where the slots change widgets."""

    progress = Signal(Progress)
    checked = Signal(CheckResult)
    planned = Signal(UpdatePlan)
    finished = Signal(UpdateResult)
    failed = Signal(str, str, str)  # kind, message for the player, technical detail
    ran = Signal(object)  # what a job (``UpdateSession.run_job``) returned


class UpdateWorker(QObject):
    """Runs engine calls on the thread it was moved to."""

    def __init__(
        self, signals: WorkerSignals, factory: UpdaterFactory, interval: float = 0.1
    ) -> None:
        super().__init__()
        self._signals = signals
        self._factory = factory
        self._interval = interval
        self._updater: UpdaterLike | None = None
        self._throttle = ProgressThrottle(interval)

    def _report(self, p: Progress) -> None:
        self._throttle.offer(p, self._signals.progress.emit)

    def _fail(self, exc: BaseException) -> None:
        self._throttle.flush(self._signals.progress.emit)
        text = describe_error(exc)
        self._signals.failed.emit(text.kind, text.message, text.detail)

    @Slot(object, object)
    def prepare(self, config: UpdaterConfig, cancel: CancelToken) -> None:
        """Start afresh for ``config``: check, and unless up to date, scan and plan."""
        self._close_updater()
        self._throttle = ProgressThrottle(self._interval)
        try:
            self._updater = self._factory(config, self._report, cancel)
            check = self._updater.check()
            self._throttle.flush(self._signals.progress.emit)
            self._signals.checked.emit(check)
            if check.up_to_date:
                return
            plan = self._updater.prepare()
            self._throttle.flush(self._signals.progress.emit)
            self._signals.planned.emit(plan)
        except BaseException as e:  # every failure becomes words; the thread must live on
            self._fail(e)

    @Slot(object)
    def apply(self, install_dir: Path | None) -> None:
        """Run the prepared plan, creating ``install_dir`` first when given (a first install
        may target a folder that does not exist yet)."""
        try:
            if self._updater is None:
                raise RuntimeError("apply() before prepare()")
            if install_dir is not None:
                Path(install_dir).mkdir(parents=True, exist_ok=True)
            result = self._updater.apply()
            self._throttle.flush(self._signals.progress.emit)
            self._signals.finished.emit(result)
        except BaseException as e:
            self._fail(e)

    @Slot(object, object)
    def run_job(self, job: Job, cancel: CancelToken) -> None:
        """Run ``job`` (``app/repair.py``'s repair, say) on this thread with the progress
        and failures of an update; its result goes out as ``ran``."""
        self._close_updater()
        self._throttle = ProgressThrottle(self._interval)
        try:
            result = job(self._factory, self._report, cancel)
            self._throttle.flush(self._signals.progress.emit)
            self._signals.ran.emit(result)
        except BaseException as e:
            self._fail(e)

    @Slot()
    def shutdown(self) -> None:
        """Close the updater, then end this thread's event loop: ordered after any call
        queued before it, which ``QThread.quit()`` from outside would not be."""
        self._close_updater()
        thread = self.thread()
        if thread is not None:
            thread.quit()

    def _close_updater(self) -> None:
        if self._updater is not None:
            # Closing must not hide the result already reported.
            with contextlib.suppress(Exception):
                self._updater.close()
            self._updater = None


class UpdateSession(QObject):
    """The window's handle on the background update: start, pause, resume, cancel, stop."""

    _do_prepare = Signal(object, object)
    _do_apply = Signal(object)
    _do_job = Signal(object, object)
    _do_shutdown = Signal()

    def __init__(
        self,
        factory: UpdaterFactory | None = None,
        interval: float = 0.1,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.signals = WorkerSignals()
        self._tokens: list[CancelToken] = [CancelToken()]  # shared with the finalizer
        self._thread = QThread()
        self._thread.setObjectName("stitch-update")
        self._worker = UpdateWorker(self.signals, factory or real_updater, interval)
        self._worker.moveToThread(self._thread)
        self._do_prepare.connect(self._worker.prepare)
        self._do_apply.connect(self._worker.apply)
        self._do_job.connect(self._worker.run_job)
        self._do_shutdown.connect(self._worker.shutdown)
        self._thread.start()
        # A window dropped without close() (a failed test, an exception in a slot) must not
        # destroy a running QThread, which aborts the process: stop it when we go away.
        self._finalizer = weakref.finalize(self, _stop_thread, self._thread, self._tokens)

    def prepare(self, config: UpdaterConfig) -> None:
        """Check and plan for ``config`` with a fresh cancel token."""
        self._tokens[0] = CancelToken()
        self._do_prepare.emit(config, self.cancel_token)

    def apply(self, install_dir: Path | None = None) -> None:
        self._do_apply.emit(install_dir)

    def run_job(self, job: Job) -> None:
        """Run ``job`` on the worker's thread with a fresh cancel token."""
        self._tokens[0] = CancelToken()
        self._do_job.emit(job, self.cancel_token)

    @property
    def cancel_token(self) -> CancelToken:
        """The token of the current attempt."""
        return self._tokens[0]

    def pause(self) -> None:
        self.cancel_token.pause()

    def resume(self) -> None:
        self.cancel_token.resume()

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @property
    def paused(self) -> bool:
        return self.cancel_token.paused

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel whatever runs, close the updater on its thread and end the thread.
        Returns False if the thread did not end within ``timeout_ms``."""
        self.cancel_token.cancel()
        if not self._thread.isRunning():
            return True
        self._do_shutdown.emit()
        if self._thread.wait(timeout_ms):
            return True
        self._thread.quit()
        return self._thread.wait(1000)


def _stop_thread(thread: QThread, tokens: list[CancelToken]) -> None:
    tokens[0].cancel()
    if thread.isRunning():
        thread.quit()
        thread.wait(30_000)
