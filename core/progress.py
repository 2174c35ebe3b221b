"""Progress reporting and cancellation: the two things every long loop in the engine touches.

The engine never draws anything. It calls one ``ProgressCallback`` with a frozen ``Progress``
value and checks one ``CancelToken``; front ends decide how to show or throttle.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import CancelledError


class Phase(enum.Enum):
    """The phases of an update, in the order they happen."""

    CHECK = "check"  # fetch pointer and manifest, verify them
    SCAN = "scan"  # chunk local files the state cache cannot vouch for
    PLAN = "plan"  # decide local copies and remote ranges
    REBUILD = "rebuild"  # copy reused chunks from local files into staging (the planned
    # remote ranges are fetched meanwhile, on a thread of their own)
    DOWNLOAD = "download"  # fetch what is left of the remote ranges into staging
    VERIFY = "verify"  # whole-file SHA-256 of every staged file (mostly hashed already,
    # behind the writes of REBUILD and DOWNLOAD: ``done`` jumps by that) and its fsync
    INSTALL = "install"  # journaled swap into the install folder
    DONE = "done"


PHASE_ORDER: dict[Phase, int] = {p: i for i, p in enumerate(Phase)}


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report (``core.engine.meter`` keeps every invariant below).

    ``done``/``total``: the phase's own count, ``0 <= done <= total`` (bytes, except CHECK
    (steps) and INSTALL (files)). ``bytes_local``/``bytes_network``: running totals for the
    whole update (network: every body byte, indexes included).

    ``overall_done``/``overall_total``: the whole update's work, the one honest percentage:
    bytes read while scanning + bytes copied from local files, each counting 1, + bytes
    downloaded, each counting ``core.engine.meter.NET_WEIGHT`` (35: what a downloaded byte costs
    next to a local one). ``overall_total`` is 0 while nothing is known (the check), an
    upper bound during the scan (the changed files, as if all downloaded), the plan's exact
    figure from PLAN on; ``overall_done`` never decreases, never passes ``overall_total``,
    and the fraction never goes backwards. VERIFY and INSTALL add nothing (they are mostly
    done behind the writes): the fraction is 1 there.

    ``download_done``/``download_total``: the plan's download in bytes (what goes over the
    wire, fetched ahead during REBUILD included), for speed and time left; 0 before the
    plan.
    """

    phase: Phase
    done: int = 0
    total: int = 0
    bytes_local: int = 0
    bytes_network: int = 0
    current: str = ""  # the file being worked on, relative path, or ""
    message: str = ""  # a line for the details log (ranges, retries), or ""
    overall_done: int = 0
    overall_total: int = 0
    download_done: int = 0
    download_total: int = 0

    @property
    def fraction(self) -> float | None:
        """``overall_done / overall_total`` in [0, 1]; 1 at DONE; None while unknown."""
        if self.phase is Phase.DONE:
            return 1.0
        if self.overall_total <= 0:
            return None
        return min(1.0, self.overall_done / self.overall_total)


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """The default progress callback: does nothing."""


class CancelToken:
    """Cancel and pause for one operation, shared between the engine and a front end.

    ``check()`` is called in every long loop: it raises ``CancelledError`` once ``cancel()``
    was called, and blocks while paused. Safe to use from any thread. A token made with a
    ``parent`` is also cancelled and paused by it (one part of an operation can be stopped
    without stopping the rest).
    """

    def __init__(self, parent: CancelToken | None = None) -> None:
        self._parent = parent
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._paused_at = 0.0  # time.monotonic() of the pause, while paused

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # wake a paused worker so it can see the cancel

    def pause(self) -> None:
        if self._running.is_set():
            self._paused_at = time.monotonic()
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def paused_for(self) -> float:
        """Seconds since this token (or its parent) was paused; 0 while not paused. Every
        request of a paused operation is closed at the same grace after the pause, however
        late its thread noticed (``core.net.http.deadline``)."""
        own = 0.0 if self._running.is_set() else time.monotonic() - self._paused_at
        if self._parent is not None:
            return max(own, self._parent.paused_for())
        return own

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set() or (self._parent is not None and self._parent.cancelled)

    @property
    def paused(self) -> bool:
        return not self._running.is_set() or (self._parent is not None and self._parent.paused)

    def check(self) -> None:
        """Raise ``CancelledError`` if cancelled; wait here while paused."""
        if self._parent is not None:
            self._parent.check()
        while not self._running.wait(0.1):
            pass
        if self._cancelled.is_set():
            raise CancelledError("cancelled")
