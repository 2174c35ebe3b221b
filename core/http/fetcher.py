"""``HttpFetcher``: the real fetcher (see the package's docstring for what it owns).

Per origin it learns how the server answers range requests (multipart multi-range and how
many ranges per request, single ranges in parallel, or no ranges at all: from a 200, a
multipart of the first ranges only, a first range only, or a 416 to a multi-range request
inside the file) and checks every status, Content-Range and length against what was
asked; it retries with jittered back-off and ``Retry-After``, resuming where the sink left
off, and re-resolves an expired signed redirect. ``fetch_fresh`` fetches a file past the
caches on the way (the pointer). httpx itself (the client, its exceptions, its lazy
imports) is behind ``core.http.client``.
"""

from __future__ import annotations

import enum
import secrets
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass

from core.errors import DownloadError, HTTPStatusError, RangeError
from core.fetcher import Fetcher, RangeSink
from core.http.client import (
    Client,
    Response,
    Transport,
    check_identity,
    content_length,
    new_client,
    origin_of,
    translate_errors,
)
from core.http.deadline import Limits, RequestGuard, current, guarding
from core.multipart import (
    ByteRangesParser,
    Coverage,
    PartBody,
    format_range_header,
    multipart_boundary,
    parse_content_range,
)
from core.progress import CancelToken
from core.retry import (
    RetryableStatusError,
    RetryPolicy,
    RetryState,
    Stopped,
    check_stop,
    parse_retry_after,
)
from core.tls import LazyTrustContext
from core.version import __version__

USER_AGENT = f"stitch/{__version__}"
# fetch_fresh: ask every cache on the way to check with the origin (Pragma for HTTP/1.0 ones).
REVALIDATE = {"Cache-Control": "no-cache", "Pragma": "no-cache"}
BUST_PARAM = "stitch"  # fetch_fresh(bust=True) adds ?stitch=<16 random hex digits>
MAX_RANGES_PER_REQUEST = 32  # where multi-range starts; halved when a server balks
DEFAULT_TIMEOUT = 15.0  # seconds: headers' deadline, body's speed window, read timeout


class _NoRangeSupport(Exception):
    """Internal: the server answered a single range with 200; stream whole bodies instead."""


class _FewerRanges(Exception):
    """Internal: the server balked at a multi-range request; ask again with fewer ranges."""


class _Resplit(Exception):
    """Internal: the origin now takes fewer ranges per request; cut the batches again."""


class _Unsatisfiable(RangeError):
    """A 416 answer; ``total`` is the size its ``Content-Range: bytes */SIZE`` gave."""

    def __init__(self, message: str, url: str, total: int | None) -> None:
        super().__init__(message, url=url)
        self.total = total


class _Mode(enum.Enum):
    MULTI = "multipart multi-range"
    SINGLE = "single ranges in parallel"
    NONE = "no range support (whole bodies)"


@dataclass
class _Origin:
    """What we learned about one scheme://host:port."""

    client: Client
    mode: _Mode = _Mode.MULTI
    max_ranges: int = MAX_RANGES_PER_REQUEST


class HttpFetcher(Fetcher):
    """``Fetcher`` over HTTP(S). Thread-safe; one instance serves a whole update.

    ``connections``: parallel requests per ``fetch_ranges`` call. ``attempts``: tries per
    request before giving up on transport errors, 5xx and 429. ``backoff``/``backoff_max``:
    first and largest back-off delay in seconds (jittered, doubling). ``retry_after_max``:
    cap on a server's ``Retry-After`` in seconds.

    The limits every request lives under (``core.http.deadline``; docs/publishing.md):
    ``read_timeout`` is the one knob a launcher turns (``stitch --timeout``), and the default
    of the others: the status line and headers must be in ``headers_timeout`` seconds after
    the request started (connecting and redirects included), the body must deliver at least
    ``min_speed`` bytes a second averaged over ``speed_window`` seconds (a silent body fails
    after one window). ``connect_timeout`` bounds connecting alone. Failing any of them is a
    ``NetworkError``, retried like a dropped connection; a cancel ends a blocked read within
    ``core.http.deadline.POLL`` seconds.
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
        self._origins: dict[tuple[str, str, int | None], _Origin] = {}
        self._resolved: dict[str, str] = {}  # URL asked -> URL it redirected to, once it worked
        self._sizes: dict[str, int] = {}  # URL -> size from Content-Range, in this call

    # -- public API -----------------------------------------------------------------------

    def fetch(self, url: str, max_length: int, cancel: CancelToken | None = None) -> bytes:
        """The whole body of ``url``. Raises ``RangeError`` if it is (or announces itself as)
        longer than ``max_length``; ``NetworkError``/``HTTPStatusError`` after retries;
        ``CancelledError``."""
        cancel = cancel or CancelToken()
        retry = self._retry_state(url, cancel)
        while True:
            try:
                return self._fetch_once(url, max_length, cancel)
            except DownloadError as exc:
                retry.failed(exc, progressed=False)

    def fetch_fresh(self, url: str, max_length: int, cancel: CancelToken | None = None,
                    *, bust: bool = False) -> bytes:
        """``fetch`` with ``REVALIDATE``'s headers, and with ``bust`` a query unique to this
        call (see ``core.fetcher.Fetcher.fetch_fresh``)."""
        cancel = cancel or CancelToken()
        if bust:
            url += ("&" if "?" in url else "?") + f"{BUST_PARAM}={secrets.token_hex(8)}"
        retry = self._retry_state(url, cancel)
        while True:
            try:
                return self._fetch_once(url, max_length, cancel, REVALIDATE)
            except DownloadError as exc:
                retry.failed(exc, progressed=False)

    def fetch_ranges(
        self,
        url: str,
        ranges: Sequence[tuple[int, int]],
        sink: RangeSink,
        cancel: CancelToken | None = None,
    ) -> None:
        """Deliver ``ranges`` of ``url`` to ``sink``, each byte once (see ``core.fetcher``).

        Raises ``RangeError`` when the server answers ranges wrongly (416 to a single range
        or past the end, a Content-Range that was not asked, a body longer than its range),
        ``NetworkError`` or ``HTTPStatusError`` after retries, ``CancelledError``; a sink
        exception propagates.
        """
        ranges = list(ranges)
        if not ranges:
            return
        Coverage(ranges)  # validates: sorted, non-overlapping, non-empty (ValueError if not)
        cancel = cancel or CancelToken()
        with self._lock:
            self._sizes.pop(url, None)  # the file may differ from an earlier call's, not within one
        sink_lock = threading.Lock()

        def locked_sink(offset: int, data: bytes) -> None:
            with sink_lock:  # the contract: never two sink calls at once
                sink(offset, data)

        leftover = ranges
        if self._origin(url).mode is not _Mode.NONE:
            leftover = self._run_batches(url, ranges, locked_sink, cancel)
        if leftover:
            self._fetch_whole(url, leftover, locked_sink, cancel)

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
            with translate_errors(""):
                origin.client.close()

    # -- origins, requests, statuses --------------------------------------------------------

    def _retry_state(self, url: str, cancel: CancelToken,
                     stop: threading.Event | None = None) -> RetryState:
        def on_retry(line: str) -> None:
            self.stats.add(retries=1)
            self.log(line)
        return RetryState(self._retry, url, cancel, stop, on_retry)

    def _origin(self, url: str) -> _Origin:
        """The origin state for where ``url`` is really served (after known redirects)."""
        return self._origin_at(self._resolved.get(url, url))

    def _origin_at(self, target: str) -> _Origin:
        with self._lock:
            with translate_errors(target):
                key = origin_of(target)
            origin = self._origins.get(key)
            if origin is None:
                with translate_errors(target):
                    # HTTP/2 only over TLS: httpx has no h2c upgrade.
                    client = new_client(self._http2 and key[0] == "https", self._tls(),
                                        self._read_timeout, self._connect_timeout,
                                        self._user_agent, self._connections, self._transport)
                origin = self._origins[key] = _Origin(client=client, max_ranges=self._max_ranges)
            return origin

    def _set_mode(self, origin: _Origin, mode: _Mode, max_ranges: int, why: str) -> None:
        with self._lock:
            if origin.mode is _Mode.NONE or (origin.mode, origin.max_ranges) == (mode, max_ranges):
                return
            origin.mode, origin.max_ranges = mode, max_ranges
        detail = f" ({max_ranges} per request)" if mode is _Mode.MULTI else ""
        self.log(f"range mode: {mode.value}{detail}: {why}")

    def _fewer_ranges(self, origin: _Origin, asked: int, why: str) -> None:
        # Halve from what this request used, so workers failing at once halve only once.
        n = min(origin.max_ranges, asked // 2)
        self._set_mode(origin, _Mode.MULTI if n > 1 else _Mode.SINGLE, max(n, 1), why)

    @contextmanager
    def _get(self, url: str, headers: dict[str, str], cancel: CancelToken,
             stop: threading.Event | None = None) -> Iterator[Response]:
        """GET ``url`` (streamed); yields only 200/206 responses, raises the rest.

        Must run inside ``translate_errors``. Requests go straight to where ``url`` last
        redirected; if that answers 403/410 (a signed CDN URL expired), resolve once more
        from ``url`` itself. The request and the caller's reading of the body run under a
        ``RequestGuard`` (the limits, ``cancel`` and ``stop``): ``_paced`` reads through it.
        """
        target = self._resolved.get(url, url)
        while True:
            origin = self._origin_at(target)
            request = origin.client.build_request("GET", target, headers=headers)
            guard = RequestGuard(url, self._limits, cancel, stop)
            with guarding(guard):
                response = origin.client.send(request, stream=True)
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
            return _Unsatisfiable(f"{message}: range not satisfiable ({size})", url,
                                  int(total) if known else None)
        return HTTPStatusError(message, url=url, status_code=status)

    def _paced(self, resp: Response, url: str) -> Iterator[bytes]:
        """``resp.iter_bytes()`` under ``_get``'s guard: ``TooSlowError`` when fewer than
        ``min_speed`` bytes a second arrive over a ``speed_window`` (a byte every second
        never trips a per-read timeout); a silent body and a cancel are caught in the
        socket reads themselves (``core.http.client``)."""
        guard = current()
        assert guard is not None, "_paced reads a body _get opened"
        for piece in resp.iter_bytes():
            guard.received(len(piece))
            guard.poll()  # a pause waits here, where its time is not held against the server
            yield piece

    def _check_total(self, url: str, total: int | None) -> None:
        if total is None:
            return
        with self._lock:
            known = self._sizes.setdefault(url, total)
        if known != total:
            raise RangeError(f"{url}: size changed on the server ({known} -> {total})", url=url)

    # -- whole bodies -------------------------------------------------------------------------

    def _fetch_once(self, url: str, max_length: int, cancel: CancelToken,
                    extra: dict[str, str] | None = None) -> bytes:
        # identity: the length limit then applies to the bytes on the wire and in the file.
        headers = {"Accept-Encoding": "identity", **(extra or {})}
        with translate_errors(url), self._get(url, headers, cancel) as resp:
            if resp.status_code != 200:
                raise RangeError(f"{url}: 206 to a request without Range", url=url)
            length = content_length(resp, url)
            if length is not None and length > max_length:
                raise RangeError(f"{url}: body of {length} bytes, limit {max_length}", url=url)
            body = bytearray()
            for piece in self._paced(resp, url):
                cancel.check()
                self.stats.add(bytes_received=len(piece))
                body += piece
                if len(body) > max_length:
                    raise RangeError(f"{url}: body longer than {max_length} bytes", url=url)
            return bytes(body)

    def _fetch_whole(
        self, url: str, ranges: list[tuple[int, int]], sink: RangeSink, cancel: CancelToken
    ) -> None:
        """No range support: stream the whole body (once per attempt), keep the asked parts."""
        retry = self._retry_state(url, cancel)
        while ranges:
            coverage = Coverage(ranges)
            try:
                self._whole_body_once(url, coverage, sink, cancel)
            except DownloadError as exc:
                retry.failed(exc, progressed=coverage.delivered_bytes > 0)
            finally:
                ranges = coverage.missing()

    def _whole_body_once(
        self, url: str, coverage: Coverage, sink: RangeSink, cancel: CancelToken
    ) -> None:
        headers = {"Accept-Encoding": "identity"}
        with translate_errors(url), self._get(url, headers, cancel) as resp:
            if resp.status_code != 200:
                raise RangeError(f"{url}: 206 to a request without Range", url=url)
            check_identity(resp, url)
            end = coverage.ranges[-1][1]
            length = content_length(resp, url)
            if length is not None:
                self._check_total(url, length)
                if length < end:
                    raise RangeError(f"{url}: {length} bytes, ranges up to {end}", url=url)
            body = PartBody(coverage, 0, end, sink, check=False)
            for piece in self._paced(resp, url):
                cancel.check()
                self.stats.add(bytes_received=len(piece))
                body.feed(piece[: body.left])
                if body.left == 0:
                    return  # the rest of the file is not needed; closing drops it
            body.finish()

    # -- ranges -------------------------------------------------------------------------------

    def _run_batches(
        self, url: str, ranges: list[tuple[int, int]], sink: RangeSink, cancel: CancelToken
    ) -> list[tuple[int, int]]:
        """Fetch ``ranges`` in batches, in parallel. Returns what is left to stream whole
        (everything not delivered) if the server turned out to ignore ranges, else [].

        Batches are re-cut whenever the origin's ranges-per-request shrinks, so a switch to
        single ranges (S3) spreads the rest over all connections.
        """
        pending = ranges
        while pending:
            origin = self._origin(url)
            if origin.mode is _Mode.NONE:
                return pending
            size = origin.max_ranges if origin.mode is _Mode.MULTI else 1
            batches = [pending[i : i + size] for i in range(0, len(pending), size)]
            no_ranges = self._run_pool(url, batches, size, sink, cancel)
            pending = [r for batch in batches for r in batch]
            if no_ranges:
                return pending
        return []

    def _run_pool(
        self,
        url: str,
        batches: list[list[tuple[int, int]]],
        size: int,
        sink: RangeSink,
        cancel: CancelToken,
    ) -> bool:
        """Run ``_run_batch`` over ``batches``; True if the server ignores ranges."""
        stop = threading.Event()
        if len(batches) == 1 or self._connections == 1:
            for batch in batches:
                try:
                    self._run_batch(url, batch, size, sink, cancel, stop)
                except _NoRangeSupport:
                    return True
                except _Resplit:
                    pass
            return False
        no_ranges = False
        error: BaseException | None = None
        workers = min(self._connections, len(batches))
        with ThreadPoolExecutor(workers, thread_name_prefix="stitch-http") as pool:
            futures = [
                pool.submit(self._run_batch, url, b, size, sink, cancel, stop) for b in batches
            ]
            for future in as_completed(futures):
                try:
                    future.result()
                except _NoRangeSupport:
                    no_ranges = True
                    stop.set()
                except (Stopped, _Resplit):
                    pass
                except BaseException as exc:  # re-raised below, once every worker stopped
                    error = error or exc
                    stop.set()
        if error is not None:
            raise error
        return no_ranges

    def _run_batch(
        self,
        url: str,
        batch: list[tuple[int, int]],
        size: int,
        sink: RangeSink,
        cancel: CancelToken,
        stop: threading.Event,
    ) -> None:
        """Fetch ``batch`` (updated in place to what is still missing) until it is empty."""
        retry = self._retry_state(url, cancel, stop)
        while batch:
            if stop.is_set():
                raise Stopped
            cancel.check()
            origin = self._origin(url)
            if origin.mode is _Mode.NONE:
                raise _NoRangeSupport
            n = origin.max_ranges if origin.mode is _Mode.MULTI else 1
            if n < size and len(batch) > n:
                raise _Resplit
            coverage = Coverage(batch[:n])
            try:
                self._ranges_once(url, origin, coverage, sink, cancel, stop)
            except _FewerRanges:
                pass  # the origin now asks for fewer ranges; not a failure
            except _Unsatisfiable as exc:
                if not self._multi_unsatisfiable(url, origin, coverage, exc):
                    retry.failed(exc, progressed=coverage.delivered_bytes > 0)
            except DownloadError as exc:
                retry.failed(exc, progressed=coverage.delivered_bytes > 0)
            finally:
                batch[:n] = coverage.missing()

    def _multi_unsatisfiable(self, url: str, origin: _Origin, coverage: Coverage,
                             exc: _Unsatisfiable) -> bool:
        """A 416 to a multi-range request whose ranges lie inside the file (as far as the
        416's ``Content-Range: bytes */SIZE`` or an earlier answer says): the server refuses
        multi-range (Varnish does), it does not say the ranges are wrong. Switch the origin
        to single ranges and return True; False for a 416 that is a real error."""
        if len(coverage.ranges) < 2:
            return False
        self._check_total(url, exc.total)  # a size that changed is an error of its own
        with self._lock:
            total = self._sizes.get(url)
        if total is not None and coverage.ranges[-1][1] > total:
            return False
        self._set_mode(origin, _Mode.SINGLE, 1,
                       f"416 to a {len(coverage.ranges)}-range request inside the file")
        return True

    def _ranges_once(
        self,
        url: str,
        origin: _Origin,
        coverage: Coverage,
        sink: RangeSink,
        cancel: CancelToken,
        stop: threading.Event,
    ) -> None:
        """One request for ``coverage.ranges``; delivers what the answer holds."""
        n = len(coverage.ranges)
        headers = {"Range": format_range_header(coverage.ranges), "Accept-Encoding": "identity"}
        with translate_errors(url), self._get(url, headers, cancel, stop) as resp:
            if resp.status_code == 200:
                # Leaving the block closes it unread: the body may be the whole (huge) file.
                accept = resp.headers.get("accept-ranges", "").strip().lower()
                if n > 1 and accept == "bytes":  # ranges work, just not this many at once
                    self._fewer_ranges(origin, n, f"200 to a {n}-range request")
                    raise _FewerRanges
                if n > 1 and accept != "none":  # ranges not advertised: try one at a time
                    self._set_mode(origin, _Mode.SINGLE, 1, f"200 to a {n}-range request")
                    raise _FewerRanges
                self._set_mode(origin, _Mode.NONE, 0, "200 to a range request")
                raise _NoRangeSupport
            check_identity(resp, url)
            boundary = multipart_boundary(resp.headers.get("content-type", ""))
            if boundary is None:
                self._single_part(url, resp, coverage, cancel, stop, sink)
                if n > 1 and not coverage.complete:
                    # S3 and some CDNs answer only the first range: ask one at a time.
                    self._set_mode(origin, _Mode.SINGLE, 1, "only part of a multi-range answered")
                return
            parser = ByteRangesParser(boundary, coverage, sink, total=self._sizes.get(url))
            try:
                for piece in self._paced(resp, url):
                    check_stop(cancel, stop)
                    self.stats.add(bytes_received=len(piece))
                    parser.feed(piece)
                    if parser.done:
                        break  # the epilogue is not needed
                parser.finish()
            except RangeError as exc:
                if n == 1:
                    raise
                self._fewer_ranges(origin, n, f"bad multipart answer: {exc}")
                raise _FewerRanges from exc
            self._check_total(url, parser.total)
            if coverage.delivered_bytes == 0:
                raise RangeError(f"{url}: multipart answer without any asked bytes", url=url)
            answered = n - len(coverage.missing())
            if not coverage.complete and 1 <= answered < origin.max_ranges:
                # lighttpd answers the first 10 ranges of a longer request: ask that many.
                self._set_mode(origin, _Mode.MULTI if answered > 1 else _Mode.SINGLE,
                               answered, f"{answered} of {n} ranges answered")

    def _single_part(
        self,
        url: str,
        resp: Response,
        coverage: Coverage,
        cancel: CancelToken,
        stop: threading.Event,
        sink: RangeSink,
    ) -> None:
        value = resp.headers.get("content-range")
        if value is None:
            raise RangeError(f"{url}: 206 without Content-Range", url=url)
        start, end, total = parse_content_range(value)
        self._check_total(url, total)
        length = content_length(resp, url)
        if length is not None and length != end - start:
            raise RangeError(f"{url}: Content-Length {length} for range {start}-{end - 1}", url=url)
        body = PartBody(coverage, start, end, sink)
        for piece in self._paced(resp, url):
            check_stop(cancel, stop)
            self.stats.add(bytes_received=len(piece))
            body.feed(piece)  # RangeError if longer than the Content-Range: no buffer grows
        body.finish()
