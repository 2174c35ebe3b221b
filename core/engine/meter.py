"""Turns the engine's byte counts into ``Progress`` reports at a sane rate.

The engine calls ``add_*`` for every chunk; the meter keeps the running totals and calls the
front end's callback on every phase change and otherwise at most every 50 ms, so a scan at
GB/s does not flood a GUI or a JSON pipe. Any thread may call it (files' metadata and deltas
are fetched side by side): totals and reports are taken under one lock.

It also keeps the invariants every report promises (``core.progress.Progress``):

- phases only move forward: a phase entered again later (the scan of a delta that fell
  back to chunks, during DOWNLOAD) is not reported, and its bytes do not count in the phase
  that is on;
- ``0 <= done <= total``: each ``add_*`` counts in the phase it belongs to only (bytes read
  while scanning, local copies, downloaded bytes, hashed bytes); indexes and tables fetched
  while planning count in ``bytes_network`` only; a phase that turns out to need more than
  its total (a retried range, a local chunk that went stale) has its total raised;
- the overall work (``overall_done``/``overall_total``) never runs backwards: before the
  plan its total is an upper bound (``expect``), the plan lowers it to the real figure
  (``plan``), and work beyond the plan finds the bar at its end.

The overall work weighs each byte by what it costs: a byte read while scanning or copied
from a local file counts 1, a downloaded byte ``NET_WEIGHT`` (the planner's nominal rates,
``core.engine.chunkplan``: local chunking at 350 MB/s, the network at 10 MB/s). So the bar moves
at about the pace of the clock through local work and downloads alike: an update that
reuses 22 MB and downloads 2 MB is not at 90 % before its download has begun.
"""

from __future__ import annotations

import threading
import time

from core.progress import PHASE_ORDER, Phase, Progress, ProgressCallback

_INTERVAL = 0.05  # seconds between two reports within a phase
NET_WEIGHT = 35  # a downloaded byte weighs as much as this many bytes read or copied locally


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
        # The overall work, in bytes: read while scanning, copied, downloaded.
        self._work = 0
        self._scan_total = 0
        self._rest: int | None = None  # copy + download: expected, then planned
        self._planned = False
        self.download_done = 0
        self.download_total = 0

    # -- reports --------------------------------------------------------------------------
    def _overall(self) -> tuple[int, int]:
        if self._rest is None:
            return 0, 0
        total = self._scan_total + self._rest
        return min(self._work, total), total

    def _emit(self, message: str = "") -> None:
        self._last = time.monotonic()
        done, total = self._overall()
        self._cb(Progress(self._phase, min(self._done, self._total), self._total,
                          self.bytes_local, self.bytes_network, self.current, message,
                          done, total, self.download_done,
                          max(self.download_total, self.download_done)))

    def phase(self, phase: Phase, done: int, total: int, current: str = "") -> None:
        """Enter (or report a step of) ``phase``: always reported, unless ``phase`` comes
        before the one on (then nothing happens: phases never go backwards)."""
        with self._lock:
            if PHASE_ORDER[phase] < PHASE_ORDER[self._phase]:
                return
            entering = phase is not self._phase
            if phase is Phase.DOWNLOAD:
                done, self._early = done + self._early, 0
            if entering and phase is Phase.SCAN:
                self._scan_total = total
            if entering and phase in (Phase.VERIFY, Phase.INSTALL, Phase.DONE):
                # Every byte of reading, copying and downloading is behind us.
                _, overall_total = self._overall()
                self._work = max(self._work, overall_total)
            self._phase, self._done, self._total, self.current = (
                phase, done, max(done, total), current)
            self._emit()

    # -- the overall work -------------------------------------------------------------------
    def expect(self, write_bytes: int) -> None:
        """Before the plan: the changed files' sizes, an upper bound of the bytes the plan
        will copy and download (the overall total during the scan)."""
        with self._lock:
            if not self._planned:
                self._rest = write_bytes * NET_WEIGHT  # were all of it downloaded

    def plan(self, copy_bytes: int, download_bytes: int) -> None:
        """The plan's figures: bytes to copy from local files and to download. Never above
        what ``expect`` said (the fraction must not go backwards): the excess, if any, is
        left out of the total, so the bar reaches its end a little early."""
        with self._lock:
            rest = copy_bytes + download_bytes * NET_WEIGHT
            if self._rest is not None and not self._planned:
                rest = min(rest, self._rest)
            self._rest = rest
            self._planned = True
            self.download_total = download_bytes

    # -- counting -------------------------------------------------------------------------
    def _step(self, n: int, phase: Phase | None = None) -> None:
        """Count ``n`` in the phase's ``done`` if ``phase`` (None: whichever) is on."""
        if phase is not None and phase is not self._phase:
            if time.monotonic() - self._last >= _INTERVAL:
                self._emit()
            return
        self._done += n
        self._total = max(self._total, self._done)
        if self._done >= self._total or time.monotonic() - self._last >= _INTERVAL:
            self._emit()

    def add_read(self, n: int) -> None:
        """Bytes of local files read while scanning."""
        with self._lock:
            if not self._planned:
                self._work += n
            self._step(n, Phase.SCAN)

    def add_local(self, n: int) -> None:
        """Bytes copied from local files into staging."""
        with self._lock:
            self.bytes_local += n
            self._work += n
            self._step(n, Phase.REBUILD)

    def add_network(self, n: int) -> None:
        """Bytes of the planned download received (the download phase's unit)."""
        self.add_download(n)

    def add_download(self, n: int) -> None:
        """Network bytes of the download, which may arrive before its phase begins (fetched
        ahead, during the rebuild): until then they count in the update's totals only, and
        the phase begins with them done."""
        with self._lock:
            self.bytes_network += n
            self.download_done += n
            self._work += n * NET_WEIGHT
            if self._phase is Phase.DOWNLOAD:
                self._step(n)
                return
            if PHASE_ORDER[self._phase] < PHASE_ORDER[Phase.DOWNLOAD]:
                self._early += n
            if time.monotonic() - self._last >= _INTERVAL:
                self._emit()

    def add_metadata(self, n: int) -> None:
        """Network bytes that are not file content (indexes, group tables, size tables):
        in ``bytes_network`` only."""
        with self._lock:
            self.bytes_network += n
            if time.monotonic() - self._last >= _INTERVAL:
                self._emit()

    def step_to(self, done: int, current: str = "") -> None:
        """The phase that is on reached ``done`` of its steps (the install's files), on
        ``current``: reported at most every ``_INTERVAL``, and at its last step."""
        with self._lock:
            self._done, self.current = done, current
            self._total = max(self._total, done)
            if done >= self._total or time.monotonic() - self._last >= _INTERVAL:
                self._emit()

    def add_done(self, n: int) -> None:
        """Bytes of the phase that is on, in its own unit (hashed while verifying)."""
        with self._lock:
            self._step(n)

    def log(self, message: str) -> None:
        """A line for the details log, sent with the current progress."""
        with self._lock:
            self._emit(message)
