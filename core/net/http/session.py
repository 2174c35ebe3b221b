"""``HttpSession``: the requests under ``HttpFetcher`` (``core.net.http.fetcher``): one client per
origin and what was learned about it (range mode, ranges per request, where a URL redirects,
the file's size), sending a request under its ``RequestGuard``, turning a status into its
error, reading a body at the guard's pace. httpx itself (the client, its exceptions, its
lazy imports) is behind ``core.net.http.client``.
"""

from __future__ import annotations

import enum
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.errors import DownloadError, HTTPStatusError, RangeError
from core.net.fetcher import Fetcher
from core.net.http.client import (
    Client,
    Response,
    Transport,
    import_httpcore,
    new_client,
    origin_of,
    translate_errors,
)
from core.net.http.deadline import POLL, Limits, RequestGuard, current, guarding
from core.net.retry import (
    RetryableStatusError,
    RetryPolicy,
    RetryState,
    Stopped,
    parse_retry_after,
)
from core.net.tls import LazyTrustContext
from core.progress import CancelToken
from core.version import __version__

USER_AGENT = f"stitch/{__version__}"
MAX_RANGES_PER_REQUEST = 32  # where multi-range starts; halved when a server balks
DEFAULT_TIMEOUT = 15.0  # seconds: headers' deadline, body's speed window, read timeout


class NoRangeSupport(Exception):
    """Internal: the server answered a single range with 200; stream whole bodies instead."""


class FewerRanges(Exception):
    """Internal: the server balked at a multi-range request; ask again with fewer ranges."""


class Resplit(Exception):
    """Internal: the origin now takes fewer ranges per request; cut the batches again."""


class Unsatisfiable(RangeError):
    """A 416 answer; ``total`` is the size its ``Content-Range: bytes */SIZE`` gave."""

    def __init__(self, message: str, url: str, total: int | None) -> None:
        super().__init__(message, url=url)
        self.total = total


class Mode(enum.Enum):
    MULTI = "multipart multi-range"
    SINGLE = "single ranges in parallel"
    NONE = "no range support (whole bodies)"


@dataclass
class Origin:
    """What we learned about one scheme://host:port, and its client (None after a pause
    closed it: made again by the next request)."""

    https: bool
    client: Client | None = None
    mode: Mode = Mode.MULTI
    max_ranges: int = MAX_RANGES_PER_REQUEST
    ranged: bool = False  # it has answered a range request with a 206
    answered: int = 1  # the most ranges of one request it has answered with a multipart 206
    # Requests of more ranges than ``answered`` go one at a time: a server that answers them
    # with the whole file (nginx over its max_ranges) would send it to each one in flight.
    probe: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class HttpSession(Fetcher):
    """The request layer of ``HttpFetcher`` (whose constructor this is). Thread-safe.

    ``connections``: requests in flight at most, over every call at once (several
    ``fetch_ranges`` of one update side by side share them: ``core.engine.pieces``); one
    call runs up to that many in parallel. ``attempts``: tries per
    request before giving up on transport errors, 5xx and 429. ``backoff``/``backoff_max``:
    first and largest back-off delay in seconds (jittered, doubling). ``retry_after_max``:
    cap on a server's ``Retry-After`` in seconds.

    The limits every request lives under (``core.net.http.deadline``; docs/publishing.md):
    ``read_timeout`` is the one knob a launcher turns (``stitch --timeout``), and the default
    of the others: the status line and headers must be in ``headers_timeout`` seconds after
    the request started (connecting and redirects included), the body must deliver at least
    ``min_speed`` bytes a second averaged over ``speed_window`` seconds (a silent body fails
    after one window). ``connect_timeout`` bounds connecting alone. Failing any of them is a
    ``NetworkError``, retried like a dropped connection; a cancel ends a blocked read within
    ``core.net.http.deadline.POLL`` seconds.
    ``transport`` replaces the network (tests pass ``httpx.MockTransport``; the headers'
    deadline and the cancel of a blocked read need a real socket); ``sleep`` replaces the
    back-off wait (tests).
    """

    def __init__(
        self,
        *,
        connections: int = 4,
        connect_timeout: float = 10.0,
        read_timeout: float = DEFAULT_TIMEOUT,
        headers_timeout: float | None = None,
        attempts: int = 4,
        backoff: float = 0.5,
        backoff_max: float = 10.0,
        retry_after_max: float = 30.0,
        min_speed: float = 1024.0,
        speed_window: float | None = None,
        max_ranges: int = MAX_RANGES_PER_REQUEST,
        http2: bool = True,
        user_agent: str = USER_AGENT,
        transport: Transport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        if connections < 1 or attempts < 1 or max_ranges < 1:
            raise ValueError("connections, attempts and max_ranges must be at least 1")
        self._connections = connections
        self._read_timeout = read_timeout
        self._connect_timeout = min(connect_timeout, read_timeout)
        self._retry = RetryPolicy(attempts=attempts, backoff=backoff, backoff_max=backoff_max,
                                  retry_after_max=retry_after_max, sleep=sleep)
        self._limits = Limits(
            headers=read_timeout if headers_timeout is None else headers_timeout,
            window=read_timeout if speed_window is None else speed_window,
            min_speed=min_speed)
        self._max_ranges = max_ranges
        self._http2 = http2
        self._user_agent = user_agent
        self._transport = transport
        self._ssl: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._origins: dict[tuple[str, str, int | None], Origin] = {}
        self._busy = 0  # requests in flight (``_get`` blocks): clients in use
        self._slots = threading.BoundedSemaphore(connections)  # held by each ``_get``
        self._resolved: dict[str, str] = {}  # URL asked -> URL it redirected to, once it worked
        self._sizes: dict[str, int] = {}  # URL -> size from Content-Range, in this call
        if transport is None:
            # The transport's module now, on the thread that makes the fetcher: its first
            # request waits for it anyway, and then no other thread (the check's, in
            # core.engine.updater) contends with that import for the interpreter.
            import_httpcore()

    def _tls(self) -> ssl.SSLContext:
        """One TLS context for all origins, trusting the OS's certificate store (Windows'
        and macOS' own, or the distribution's CA bundle), made once: loading certifi's
        bundle for every client cost more than the rest of start-up. The store itself is
        loaded on the first handshake, so plain-HTTP updates never pay for it."""
        if self._ssl is None:
            self._ssl = LazyTrustContext()
        return self._ssl

    def close(self) -> None:
        with self._lock:
            origins, self._origins = list(self._origins.values()), {}
        for origin in origins:
            if origin.client is not None:
                with translate_errors(""):
                    origin.client.close()

    def _close_clients(self) -> bool:
        """Close every origin's client if no request is in flight (a pause: the connections
        kept alive, and over HTTP/2 the one a paused stream was closed on without a reset,
        which would let the server send up to a whole stream window more); the next request
        makes a new one. Returns whether any was closed."""
        with self._lock:
            if self._busy:
                return False
            clients = [o.client for o in self._origins.values() if o.client is not None]
            for origin in self._origins.values():
                origin.client = None
        for client in clients:
            with translate_errors(""):
                client.close()
        return bool(clients)

    # -- origins, requests, statuses --------------------------------------------------------

    def _retry_state(self, url: str, cancel: CancelToken,
                     stop: threading.Event | None = None) -> RetryState:
        def on_retry(line: str) -> None:
            self.stats.add(retries=1)
            self.log(line)
        return RetryState(self._retry, url, cancel, stop, on_retry)

    def _origin(self, url: str) -> Origin:
        """The origin state for where ``url`` is really served (after known redirects)."""
        return self._origin_at(self._resolved.get(url, url))

    def _origin_at(self, target: str) -> Origin:
        with self._lock:
            with translate_errors(target):
                key = origin_of(target)
            origin = self._origins.get(key)
            if origin is None:
                origin = self._origins[key] = Origin(https=key[0] == "https",
                                                     max_ranges=self._max_ranges)
            return origin

    def _client_at(self, target: str) -> Client:
        """The client of ``target``'s origin, made if there is none (yet, or since a pause).
        Only inside ``_in_flight``, so ``_close_clients`` leaves it alone."""
        origin = self._origin_at(target)
        with self._lock:
            if origin.client is None:
                with translate_errors(target):
                    # HTTP/2 only over TLS: httpx has no h2c upgrade.
                    origin.client = new_client(
                        self._http2 and origin.https, self._tls(), self._read_timeout,
                        self._connect_timeout, self._user_agent, self._connections,
                        self._transport)
            return origin.client

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        """Count a request in flight for the ``with`` block (see ``_close_clients``)."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1

    def _set_mode(self, origin: Origin, mode: Mode, max_ranges: int, why: str) -> None:
        with self._lock:
            if origin.mode is Mode.NONE or (origin.mode, origin.max_ranges) == (mode, max_ranges):
                return
            origin.mode, origin.max_ranges = mode, max_ranges
        detail = f" ({max_ranges} per request)" if mode is Mode.MULTI else ""
        self.log(f"range mode: {mode.value}{detail}: {why}")

    def _fewer_ranges(self, origin: Origin, asked: int, why: str) -> None:
        # Halve from what this request used, so workers failing at once halve only once.
        n = min(origin.max_ranges, asked // 2)
        self._set_mode(origin, Mode.MULTI if n > 1 else Mode.SINGLE, max(n, 1), why)

    @contextmanager
    def _get(self, url: str, headers: dict[str, str], cancel: CancelToken,
             stop: threading.Event | None = None) -> Iterator[Response]:
        """GET ``url`` (streamed); yields only 200/206 responses, raises the rest.

        Must run inside ``translate_errors``. Requests go straight to where ``url`` last
        redirected; if that answers 403/410 (a signed CDN URL expired), resolve once more
        from ``url`` itself. The request and the caller's reading of the body run under a
        ``RequestGuard`` (the limits, ``cancel`` and ``stop``): ``_paced`` reads through it.
        """
        with self._slot(cancel, stop), self._in_flight(), \
                self._get_in_flight(url, headers, cancel, stop) as response:
            yield response

    @contextmanager
    def _slot(self, cancel: CancelToken, stop: threading.Event | None) -> Iterator[None]:
        """Hold one of the ``connections`` request slots for the block: waits (checking
        ``cancel``, blocking while paused, and ``stop``) while every slot is taken."""
        while not self._slots.acquire(timeout=POLL):
            cancel.check()
            if stop is not None and stop.is_set():
                raise Stopped
        try:
            yield
        finally:
            self._slots.release()

    @contextmanager
    def _get_in_flight(self, url: str, headers: dict[str, str], cancel: CancelToken,
                       stop: threading.Event | None) -> Iterator[Response]:
        target = self._resolved.get(url, url)
        while True:
            client = self._client_at(target)
            request = client.build_request("GET", target, headers=headers)
            guard = RequestGuard(url, self._limits, cancel, stop)
            with guarding(guard):
                response = client.send(request, stream=True)
            guard.headers_received()
            self.stats.add(requests=1)
            if response.status_code in (403, 410) and target != url:
                response.close()
                self.log(f"{target}: {response.status_code}, resolving {url} again")
                with self._lock:
                    self._resolved.pop(url, None)
                target = url
                continue
            break
        try:
            status = response.status_code
            if status not in (200, 206):
                raise self._status_error(url, response)
            if str(response.url) != url:
                with self._lock:
                    self._resolved[url] = str(response.url)
            with guarding(guard):
                yield response
        finally:
            response.close()

    def _status_error(self, url: str, response: Response) -> DownloadError:
        status = response.status_code
        message = f"{url}: HTTP {status} {response.reason_phrase}"
        if status == 429 or 500 <= status <= 599:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return RetryableStatusError(
                message, url=url, status_code=status, retry_after=retry_after
            )
        if status == 416:
            size = response.headers.get("content-range", "")
            unit, _, total = size.strip().partition(" */")
            known = unit == "bytes" and total.isdigit() and len(total) <= 19
            return Unsatisfiable(f"{message}: range not satisfiable ({size})", url,
                                  int(total) if known else None)
        return HTTPStatusError(message, url=url, status_code=status)

    def _paced(self, resp: Response, url: str) -> Iterator[bytes]:
        """``resp.iter_bytes()`` under ``_get``'s guard: ``TooSlowError`` when fewer than
        ``min_speed`` bytes a second arrive over a ``speed_window`` (a byte every second
        never trips a per-read timeout); a silent body and a cancel are caught in the
        socket reads themselves (``core.net.http.client``). Between two pieces (each handed
        on first: a pause loses no byte already read) a cancel or a stop raises and a
        pause holds the reading, then raises ``RequestPaused`` after its grace."""
        guard = current()
        assert guard is not None, "_paced reads a body _get opened"
        for piece in resp.iter_bytes():
            guard.received(len(piece))
            yield piece
            guard.between()

    def _check_total(self, url: str, total: int | None) -> None:
        if total is None:
            return
        with self._lock:
            known = self._sizes.setdefault(url, total)
        if known != total:
            raise RangeError(f"{url}: size changed on the server ({known} -> {total})", url=url)
