"""The limits every HTTP request lives under, and the guard that enforces them from inside
the blocking socket reads.

A request must have its status line and headers ``headers`` seconds after it started
(connecting, the TLS handshake and redirects included); its body must then deliver at least
``min_speed`` bytes a second, averaged over windows of ``window`` seconds (so a body that
falls silent fails after at most one window, and a trickle after one window too). Per-read
timeouts alone bound neither: a server that sends one byte a second resets them forever.

``RequestGuard`` holds one request's deadlines and its cancel token. ``core.net.http.fetcher``
makes one per request attempt and makes it the thread's current guard (``guarding``) while
it sends the request and reads the body; ``core.net.http.client``'s network streams read the
socket in slices of at most ``POLL`` seconds and call ``check()`` between two slices, so a
cancel, a missed deadline or a silent body ends a blocked read within ``POLL`` seconds.

A pause stops the reads at once (the guard holds the reading thread); if it lasts longer
than ``PAUSE_GRACE`` seconds the guard raises ``RequestPaused``, which closes the response
and its connection (so the server stops sending, instead of filling socket buffers and
holding the connection until its own send timeout); the fetcher then waits for the resume
and asks for the bytes its sink has not had yet, by range, so no byte is fetched twice.
This module imports no HTTP library.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.errors import CancelledError, NetworkError
from core.net.retry import Stopped, TooSlowError
from core.progress import CancelToken

POLL = 0.1  # seconds a blocked socket read waits before looking at the guard again
# Seconds a pause holds a request open before closing it: a quick pause and resume keeps the
# connection; a longer one closes it well before the first second is over, so the server
# sends nothing more (with POLL, the close comes at most PAUSE_GRACE + 2 * POLL after Pause).
PAUSE_GRACE = 0.5


@dataclass(frozen=True)
class Limits:
    """The deadlines of one request (seconds, bytes a second); see the module docstring."""

    headers: float
    window: float
    min_speed: float

    def __post_init__(self) -> None:
        if not (self.headers > 0 and self.window > 0 and self.min_speed >= 0):
            raise ValueError("timeouts must be positive and the minimum speed not negative")


class HeadersTimeoutError(NetworkError):
    """No complete status line and headers within the limit: a silent or trickling server."""


class RequestPaused(Exception):
    """Internal to ``core.net.http``: the request was paused for longer than ``PAUSE_GRACE``;
    its response is closed, and the fetcher asks for the rest after the resume. Not a
    ``DownloadError``: a pause is no failure and costs no retry."""


class RequestGuard:
    """One request attempt's deadlines and cancel token (module docstring). ``clock`` is
    replaceable for tests. Used by one thread at a time: the one the request runs on."""

    def __init__(self, url: str, limits: Limits, cancel: CancelToken,
                 stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.limits = limits
        self._cancel = cancel
        self._stop = stop
        self._clock = clock
        self._headers_by = clock() + limits.headers
        self._next_check = 0.0  # see ``poll``
        self._in_body = False
        self._window_start = 0.0
        self._got = 0

    def headers_received(self) -> None:
        """The status line and headers are in: from now on the body's rate counts."""
        self._in_body = True
        self._window_start = self._clock()
        self._got = 0

    def wait_until(self) -> float:
        """The clock time by which the current wait must end (then ``check`` fails it)."""
        if self._in_body:
            return self._window_start + self.limits.window
        return self._headers_by

    def check(self) -> None:
        """Raise ``CancelledError`` (or the fetcher's internal stop) when cancelled,
        ``HeadersTimeoutError`` past the headers' deadline, ``NetworkError`` for a silent
        body and ``TooSlowError`` for a trickling one. While paused, wait here up to
        ``PAUSE_GRACE`` seconds, then raise ``RequestPaused`` (time spent paused does not
        count against the server)."""
        before = self._clock()
        self._hold(before)
        paused = self._clock() - before
        if paused > POLL:
            self._headers_by += paused
            self._window_start += paused
        now = self._clock()
        if not self._in_body:
            if now >= self._headers_by:
                raise HeadersTimeoutError(
                    f"{self.url}: no response headers within {self.limits.headers:g} s",
                    url=self.url)
            return
        self._roll(now)

    def _hold(self, since: float) -> None:
        """Raise for a cancel or a stop; while paused, wait (reading nothing) until resumed,
        or raise ``RequestPaused`` once ``PAUSE_GRACE`` seconds have passed."""
        while True:
            if self._cancel.cancelled:
                raise CancelledError("cancelled")
            if self._stop is not None and self._stop.is_set():
                raise Stopped
            if not self._cancel.paused:
                return
            # From the pause itself (requests that share a connection notice it one after
            # another) or, on a test's clock, from when this guard noticed it.
            if max(self._cancel.paused_for(), self._clock() - since) >= PAUSE_GRACE:
                raise RequestPaused(self.url)
            time.sleep(POLL / 4)

    def poll(self) -> None:
        """``check``, at most every ``POLL`` seconds unless a deadline is due: the cheap
        call for paths that run per read while bytes flow."""
        now = self._clock()
        if now >= self._next_check or now >= self.wait_until():
            self.check()
            self._next_check = self._clock() + POLL

    def between(self) -> None:
        """Between two pieces of a body: ``check`` at once if cancelled, stopped or paused
        (the reading stops there), else ``poll``."""
        if self._cancel.cancelled or self._cancel.paused or (
                self._stop is not None and self._stop.is_set()):
            self.check()
        else:
            self.poll()

    def received(self, n: int) -> None:
        """``n`` more body bytes arrived; raises as ``check`` when a window ended short."""
        self._got += n
        self._roll(self._clock())

    def _roll(self, now: float) -> None:
        elapsed = now - self._window_start
        if elapsed < self.limits.window:
            return
        if self._got == 0:
            raise NetworkError(f"{self.url}: no data for {elapsed:.1f} s", url=self.url)
        if self._got < self.limits.min_speed * elapsed:
            raise TooSlowError(
                f"{self.url}: {self._got} bytes in {elapsed:.1f} s, under "
                f"{self.limits.min_speed:.0f} bytes/s", url=self.url)
        self._window_start, self._got = now, 0


_local = threading.local()


def current() -> RequestGuard | None:
    """The guard of the request this thread is running, if any."""
    guard: RequestGuard | None = getattr(_local, "guard", None)
    return guard


@contextmanager
def guarding(guard: RequestGuard) -> Iterator[RequestGuard]:
    """Make ``guard`` this thread's current guard for the ``with`` block."""
    previous = current()
    _local.guard = guard
    try:
        yield guard
    finally:
        _local.guard = previous
