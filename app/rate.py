"""Smoothed transfer speed and time left, shared by the window and the CLI's progress output.

Pure (no Qt, no engine imports), so the command line can use it without loading either.
"""

from __future__ import annotations


class RateMeter:
    """Smoothed transfer speed and time left, from ``(time, bytes so far)`` samples.

    Feed it only bytes from this session (not what an interrupted earlier run fetched), or the
    first estimate is absurd. The speed is an exponential moving average with a half-life in
    seconds, time-weighted and corrected for its start (the average starts from nothing, not
    from the first sample: an estimate seeded with the first, slow fraction of a second took
    several half-lives to reach the real speed); it stays unknown until ``warmup`` seconds
    of samples exist, since the first fraction of a second is mostly connection setup.
    ``pause()`` forgets the last sample so the idle time does not count as slow transfer,
    and the first ``settle`` seconds after it do not count either: what waited in socket
    buffers arrives at once on resume and would read as a burst of speed.
    """

    def __init__(self, half_life: float = 3.0, warmup: float = 1.0,
                 settle: float = 0.5) -> None:
        self.half_life = half_life
        self.warmup = warmup
        self.settle = settle
        self._settle_until: float | None = None
        self._resumed = False
        self._last: tuple[float, int] | None = None
        self._elapsed = 0.0
        self._acc = 0.0  # the moving average of the samples, started from 0
        self._weight = 0.0  # the same average of 1s: dividing by it removes the start's bias

    def add(self, t: float, total_bytes: int) -> None:
        if self._last is None:
            self._last = (t, total_bytes)
            if self._resumed:
                self._settle_until = t + self.settle
                self._resumed = False
            return
        if self._settle_until is not None:
            if t < self._settle_until:
                self._last = (t, total_bytes)  # the anchor moves; nothing counts yet
                return
            self._settle_until = None
        t0, b0 = self._last
        dt = t - t0
        if dt <= 0:
            return
        inst = max(0, total_bytes - b0) / dt
        keep = 0.5 ** (dt / self.half_life)
        self._acc = self._acc * keep + (1.0 - keep) * inst
        self._weight = self._weight * keep + (1.0 - keep)
        self._elapsed += dt
        self._last = (t, total_bytes)

    def pause(self) -> None:
        self._last = None
        self._resumed = True

    @property
    def speed(self) -> float | None:
        """Bytes per second, or None while too little is known."""
        if self._weight <= 0 or self._elapsed < self.warmup:
            return None
        return self._acc / self._weight

    def eta(self, remaining: int) -> float | None:
        """Seconds until ``remaining`` more bytes arrive at the current speed, or None."""
        speed = self.speed
        if not speed or speed <= 0:
            return None
        return max(0, remaining) / speed
