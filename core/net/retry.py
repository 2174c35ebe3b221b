"""Retrying one HTTP request loop: which failures are worth another attempt, how long to
wait (jittered exponential back-off, ``Retry-After``), and when to give up.

Owned here so ``core.net.http`` keeps to talking HTTP; nothing in this module imports httpx.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import DownloadError, HTTPStatusError, NetworkError
from core.progress import CancelToken


class RetryableStatusError(HTTPStatusError):
    """A 5xx or 429: worth another attempt, after ``retry_after`` seconds if the server said."""

    def __init__(self, message: str, *, url: str, status_code: int, retry_after: float | None):
        super().__init__(message, url=url, status_code=status_code)
        self.retry_after = retry_after


class TooSlowError(NetworkError):
    """A body arrived slower than the fetcher's ``min_speed``: a stall, retried like one."""


class Stopped(Exception):
    """Internal: another worker of the same call failed; stop quietly."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone accepts "²", which int() refuses
        return float(int(value[:12]))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How a request loop retries: a value the fetcher is given, not a reader of its state."""

    attempts: int = 4  # failures in a row without progress before giving up
    backoff: float = 0.5  # seconds before the first retry, doubled each time (jittered)
    backoff_max: float = 10.0  # seconds, cap of one back-off
    retry_after_max: float = 30.0  # seconds, cap of a server's Retry-After
    # Waits with this instead of sleeping in cancel-checked slices (tests: a fake clock).
    sleep: Callable[[float], None] | None = None


class RetryState:
    """Counts failures of one request loop and waits between attempts.

    ``attempts`` failures in a row without progress give up; a failure after bytes were
    delivered restarts the count (the retry resumes), up to ``10 * attempts`` failures in all.
    ``on_retry`` hears each retry's one-line reason (the fetcher counts and logs it).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        url: str,
        cancel: CancelToken,
        stop: threading.Event | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self._policy = policy
        self._on_retry = on_retry
        self._url = url
        self._cancel = cancel
        self._stop = stop
        self._in_a_row = 0
        self._total = 0

    def failed(self, exc: DownloadError, *, progressed: bool) -> None:
        """Wait before the next attempt, or re-raise ``exc`` if it should not be retried."""
        f = self._policy
        retryable = isinstance(exc, NetworkError | RetryableStatusError)
        # A trickle delivers a few bytes per attempt: that is not progress worth a reset.
        progressed = progressed and not isinstance(exc, TooSlowError)
        self._in_a_row = 1 if progressed else self._in_a_row + 1
        self._total += 1
        if not retryable or self._in_a_row >= f.attempts or self._total >= 10 * f.attempts:
            raise exc
        delay = min(f.backoff_max, f.backoff * 2 ** (self._in_a_row - 1))
        delay *= random.uniform(0.5, 1.0)  # jitter: parallel workers do not retry in step
        if isinstance(exc, RetryableStatusError) and exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, f.retry_after_max))
        if self._on_retry is not None:
            self._on_retry(f"retry in {delay:.1f}s: {exc}")
        if f.sleep is not None:
            f.sleep(delay)
            return
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            check_stop(self._cancel, self._stop)
            time.sleep(min(left, 0.05))


def check_stop(cancel: CancelToken, stop: threading.Event | None) -> None:
    cancel.check()
    if stop is not None and stop.is_set():
        raise Stopped
