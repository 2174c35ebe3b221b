"""The network seam: what the engine needs from a server, and an in-memory stand-in.

``Fetcher`` is the interface the updater talks to. The real one, ``core.net.http.HttpFetcher``,
lives in the only module that imports httpx; tests use ``MemoryFetcher``, which serves bytes
from a dict and records every request so a test can assert the ranges a plan asked for.

Contract of ``fetch_ranges``: ``ranges`` is a sorted list of non-overlapping half-open
``(start, end)`` byte ranges. The sink is called with ``(offset, data)`` pieces that together
cover every requested byte exactly once; within one range the pieces arrive in increasing
offset order, ranges may arrive in any order, and the sink may be called from a worker
thread (never from two threads at once). Every failure is raised as a ``DownloadError``
subclass (or ``CancelledError``); a sink exception propagates unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.errors import HTTPStatusError, RangeError
from core.progress import CancelToken

RangeSink = Callable[[int, bytes], None]


@dataclass
class FetchStats:
    """Counters a fetcher keeps for reports and tests."""

    requests: int = 0
    bytes_received: int = 0  # body bytes, including bytes fetched but not needed
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, requests: int = 0, bytes_received: int = 0, retries: int = 0) -> None:
        with self.lock:
            self.requests += requests
            self.bytes_received += bytes_received
            self.retries += retries


class Fetcher:
    """Base class of fetchers. Subclasses implement ``fetch`` and ``fetch_ranges``."""

    def __init__(self) -> None:
        self.stats = FetchStats()
        self.log: Callable[[str], None] = lambda _msg: None  # details log (retries, modes)

    def fetch(self, url: str, max_length: int, cancel: CancelToken | None = None) -> bytes:
        """Return the whole body of ``url``; ``DownloadError`` if it is longer than
        ``max_length`` (checked before reading past it)."""
        raise NotImplementedError

    def fetch_fresh(self, url: str, max_length: int, cancel: CancelToken | None = None,
                    *, bust: bool = False) -> bytes:
        """``fetch`` for a file that changes under the same URL (the channel pointer): the
        answer must not come from a cache that has not asked the origin. HTTP asks caches to
        revalidate, and with ``bust`` adds a query of its own to the URL, so a cache that
        ignores request headers (Varnish, most CDNs) misses as well. Here (no cache on the
        way) it is ``fetch``."""
        return self.fetch(url, max_length, cancel)

    def fetch_ranges(
        self,
        url: str,
        ranges: Sequence[tuple[int, int]],
        sink: RangeSink,
        cancel: CancelToken | None = None,
    ) -> None:
        """Deliver the bytes of ``ranges`` of ``url`` to ``sink`` (see module docstring)."""
        raise NotImplementedError

    def split_ranges(self, url: str, cancel: CancelToken | None = None) -> bool:
        """Whether several ``fetch_ranges`` calls for parts of ``url`` may run side by side
        (``core.engine.pieces``): False when the server ignores ranges, so that each call
        would stream the file from its start. Here (no server) always."""
        return True

    def close(self) -> None:
        """Release connections. The fetcher may not be used afterwards."""


class MemoryFetcher(Fetcher):
    """Serves ``files`` (url -> bytes) from memory and records what was asked.

    ``requests`` holds ``(url, ranges)`` per call, ``ranges`` being ``None`` for ``fetch``;
    ``fresh`` holds ``(url, bust)`` per ``fetch_fresh`` call.
    """

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        super().__init__()
        self.files: dict[str, bytes] = dict(files or {})
        self.requests: list[tuple[str, tuple[tuple[int, int], ...] | None]] = []
        self.fresh: list[tuple[str, bool]] = []

    def fetch_fresh(self, url: str, max_length: int, cancel: CancelToken | None = None,
                    *, bust: bool = False) -> bytes:
        self.fresh.append((url, bust))
        return self.fetch(url, max_length, cancel)

    def _body(self, url: str) -> bytes:
        try:
            return self.files[url]
        except KeyError:
            raise HTTPStatusError(f"404 Not Found: {url}", url=url, status_code=404) from None

    def fetch(self, url: str, max_length: int, cancel: CancelToken | None = None) -> bytes:
        self.requests.append((url, None))
        body = self._body(url)
        if len(body) > max_length:
            raise RangeError(f"{url}: body longer than {max_length} bytes", url=url)
        self.stats.add(requests=1, bytes_received=len(body))
        return body

    def fetch_ranges(
        self,
        url: str,
        ranges: Sequence[tuple[int, int]],
        sink: RangeSink,
        cancel: CancelToken | None = None,
    ) -> None:
        self.requests.append((url, tuple(ranges)))
        body = self._body(url)
        self.stats.add(requests=1)
        for start, end in ranges:
            if cancel is not None:
                cancel.check()
            if not 0 <= start < end <= len(body):
                raise RangeError(f"{url}: range {start}-{end - 1} not satisfiable", url=url)
            sink(start, body[start:end])
            self.stats.add(bytes_received=end - start)
