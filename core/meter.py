"""Turns the engine's byte counts into ``Progress`` reports at a sane rate.

The engine calls ``add_*`` for every chunk; the meter keeps the running totals and calls the
front end's callback on every phase change and otherwise at most every 50 ms, so a scan at
GB/s does not flood a GUI or a JSON pipe. Any thread may call it (files' metadata and deltas
are fetched side by side): totals and reports are taken under one lock.
"""

from __future__ import annotations

import threading
import time

from core.progress import Phase, Progress, ProgressCallback

_INTERVAL = 0.05  # seconds between two reports within a phase


class Meter:
    def __init__(self, callback: ProgressCallback) -> None:
        self._cb = callback
        self.bytes_local = 0
        self.bytes_network = 0
        self._phase = Phase.CHECK
        self._done = 0
        self._total = 0
        self._early = 0  # download bytes fetched before the download phase (add_download)
        self.current = ""
        self._last = 0.0
        self._lock = threading.RLock()  # a callback may log, which reports again

    def _emit(self, message: str = "") -> None:
        self._last = time.monotonic()
        self._cb(Progress(self._phase, self._done, self._total, self.bytes_local,
                          self.bytes_network, self.current, message))

    def phase(self, phase: Phase, done: int, total: int, current: str = "") -> None:
        """Enter (or report a step of) ``phase``: always reported."""
        with self._lock:
            if phase is Phase.DOWNLOAD:
                done, self._early = done + self._early, 0
            self._phase, self._done, self._total, self.current = phase, done, total, current
            self._emit()

    def _step(self, n: int) -> None:
        self._done += n
        if self._done >= self._total or time.monotonic() - self._last >= _INTERVAL:
            self._emit()

    def add_local(self, n: int) -> None:
        with self._lock:
            self.bytes_local += n
            self._step(n)

    def add_network(self, n: int) -> None:
        with self._lock:
            self.bytes_network += n
            self._step(n)

    def add_download(self, n: int) -> None:
        """Network bytes of the download phase, which may arrive before it begins (fetched
        ahead, during the rebuild): until then they count in the update's total only, and
        the phase begins with them done."""
        with self._lock:
            self.bytes_network += n
            if self._phase is Phase.DOWNLOAD:
                self._step(n)
                return
            self._early += n
            if time.monotonic() - self._last >= _INTERVAL:
                self._emit()

    def add_done(self, n: int) -> None:
        with self._lock:
            self._step(n)

    def log(self, message: str) -> None:
        """A line for the details log, sent with the current progress."""
        with self._lock:
            self._emit(message)
