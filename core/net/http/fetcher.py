"""``HttpFetcher``: the real fetcher (see the package's docstring for what it owns).

Per origin it learns how the server answers range requests (multipart multi-range and how
many ranges per request, single ranges in parallel, or no ranges at all: from a 200, a
multipart of the first ranges only, a first range only, or a 416 to a multi-range request
inside the file) and checks every status, Content-Range and length against what was
asked; it retries with jittered back-off and ``Retry-After``, resuming where the sink left
off, and re-resolves an expired signed redirect. ``fetch_fresh`` fetches a file past the
caches on the way (the pointer). A pause longer than ``core.net.http.deadline.PAUSE_GRACE``
closes the responses in flight; after the resume each asks, by range, for exactly what its
sink has not had. The requests themselves (origins, statuses, the guard) are
``core.net.http.session``'s.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from core.errors import DownloadError, RangeError
from core.net.fetcher import RangeSink
from core.net.http.client import Response, check_identity, content_length, translate_errors
from core.net.http.deadline import POLL, RequestPaused
from core.net.http.session import (
    DEFAULT_TIMEOUT,
    MAX_RANGES_PER_REQUEST,
    USER_AGENT,
    FewerRanges,
    HttpSession,
    Mode,
    NoRangeSupport,
    Origin,
    Resplit,
    Unsatisfiable,
)
from core.net.multipart import (
    ByteRangesParser,
    Coverage,
    PartBody,
    format_range_header,
    multipart_boundary,
    parse_content_range,
)
from core.net.retry import Stopped
from core.progress import CancelToken

__all__ = ["DEFAULT_TIMEOUT", "MAX_RANGES_PER_REQUEST", "USER_AGENT", "HttpFetcher"]

# fetch_fresh: ask every cache on the way to check with the origin (Pragma for HTTP/1.0 ones).
REVALIDATE = {"Cache-Control": "no-cache", "Pragma": "no-cache"}
BUST_PARAM = "stitch"  # fetch_fresh(bust=True) adds ?stitch=<16 random hex digits>


class HttpFetcher(HttpSession):
    """``Fetcher`` over HTTP(S). Thread-safe; one instance serves a whole update. The
    constructor's options (connections, retries, the limits of every request) are
    ``core.net.http.session.HttpSession``'s."""

    # -- public API -----------------------------------------------------------------------

    def fetch(self, url: str, max_length: int, cancel: CancelToken | None = None) -> bytes:
        """The whole body of ``url``. Raises ``RangeError`` if it is (or announces itself as)
        longer than ``max_length``; ``NetworkError``/``HTTPStatusError`` after retries;
        ``CancelledError``."""
        return self._fetch_retrying(url, max_length, cancel or CancelToken())

    def fetch_fresh(self, url: str, max_length: int, cancel: CancelToken | None = None,
                    *, bust: bool = False) -> bytes:
        """``fetch`` with ``REVALIDATE``'s headers, and with ``bust`` a query unique to this
        call (see ``core.net.fetcher.Fetcher.fetch_fresh``)."""
        if bust:
            url += ("&" if "?" in url else "?") + f"{BUST_PARAM}={secrets.token_hex(8)}"
        return self._fetch_retrying(url, max_length, cancel or CancelToken(), REVALIDATE)

    def fetch_ranges(
        self,
        url: str,
        ranges: Sequence[tuple[int, int]],
        sink: RangeSink,
        cancel: CancelToken | None = None,
    ) -> None:
        """Deliver ``ranges`` of ``url`` to ``sink``, each byte once (see ``core.net.fetcher``).

        Raises ``RangeError`` when the server answers ranges wrongly (416 to a single range
        or past the end, a Content-Range that was not asked, a body longer than its range),
        ``NetworkError`` or ``HTTPStatusError`` after retries, ``CancelledError``; a sink
        exception propagates. A pause of ``cancel`` holds the reading at once and, past
        ``core.net.http.deadline.PAUSE_GRACE``, closes the requests; after the resume the call
        goes on with exactly the bytes the sink has not had.
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
        if self._origin(url).mode is not Mode.NONE:
            leftover = self._run_batches(url, ranges, locked_sink, cancel)
        if leftover:
            self._fetch_whole(url, leftover, locked_sink, cancel)

    def split_ranges(self, url: str, cancel: CancelToken | None = None) -> bool:
        """Whether parts of ``url`` may be asked side by side: False when its server
        ignores ranges (each request would stream the file from its start). Learned, when
        its origin has answered no range request yet, from a request for its first byte."""
        origin = self._origin(url)
        if origin.mode is not Mode.NONE and not origin.ranged:
            self.fetch_ranges(url, [(0, 1)], lambda _offset, _data: None, cancel)
        return self._origin(url).mode is not Mode.NONE

    def _paused(self, url: str, cancel: CancelToken, left: list[tuple[int, int]]) -> None:
        """A request was paused past ``PAUSE_GRACE`` and its response closed: wait for the
        resume (or raise ``CancelledError``). ``left``: what is still to be asked for."""
        rest = f"{sum(e - s for s, e in left)} bytes" if left else "the whole body"
        self.log(f"paused: closed the request for {url}; {rest} left to ask for on resume")
        self._close_clients()  # the last request of a pause closes the connections left
        cancel.check()

    # -- whole bodies -------------------------------------------------------------------------

    def _fetch_retrying(self, url: str, max_length: int, cancel: CancelToken,
                        extra: dict[str, str] | None = None) -> bytes:
        """``_fetch_once`` until it works, retried after failures and resumed after a pause
        (a small body, asked for again whole)."""
        retry = self._retry_state(url, cancel)
        while True:
            try:
                return self._fetch_once(url, max_length, cancel, extra)
            except DownloadError as exc:
                retry.failed(exc, progressed=False)
            except RequestPaused:
                self._paused(url, cancel, [])

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
            except RequestPaused:  # the server has no ranges: the body starts over
                self._paused(url, cancel, coverage.missing())
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
            if origin.mode is Mode.NONE:
                return pending
            if origin.mode is Mode.MULTI:
                size = origin.max_ranges
                batches = [pending[i : i + size] for i in range(0, len(pending), size)]
            else:  # one range per request: neighbours asked as the one range spanning them
                size = 1
                batches = spans(pending)
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
                except NoRangeSupport:
                    return True
                except Resplit:
                    pass
            return False
        no_ranges = False
        error: BaseException | None = None
        workers = min(self._connections, len(batches))
        from concurrent.futures import ThreadPoolExecutor, as_completed  # (rarely needed: not
        # loaded before the first request, which every run waits for)

        with ThreadPoolExecutor(workers, thread_name_prefix="stitch-http") as pool:
            futures = [
                pool.submit(self._run_batch, url, b, size, sink, cancel, stop) for b in batches
            ]
            for future in as_completed(futures):
                try:
                    future.result()
                except NoRangeSupport:
                    no_ranges = True
                    stop.set()
                except (Stopped, Resplit):
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
            if origin.mode is Mode.NONE:
                raise NoRangeSupport
            n = origin.max_ranges if origin.mode is Mode.MULTI else 1
            if n < size and len(batch) > n:
                raise Resplit
            # A batch of ``spans`` (single ranges): its ranges asked as the one range
            # spanning them, the gaps between them dropped.
            span = size == 1 and origin.mode is Mode.SINGLE and len(batch) > 1
            coverage = Coverage(batch if span else batch[:n])
            try:
                k = 1 if span else len(coverage.ranges)
                with self._probing(origin, k, cancel, stop):
                    if k > 1 and (origin.mode is not Mode.MULTI or origin.max_ranges < k):
                        raise FewerRanges  # learned while this one waited its turn
                    self._ranges_once(url, origin, coverage, sink, cancel, stop, span)
            except FewerRanges:
                pass  # the origin now asks for fewer ranges; not a failure
            except Unsatisfiable as exc:  # (a span asked one range: no fallback from it)
                if span or not self._multi_unsatisfiable(url, origin, coverage, exc):
                    retry.failed(exc, progressed=coverage.delivered_bytes > 0)
            except DownloadError as exc:
                retry.failed(exc, progressed=coverage.delivered_bytes > 0)
            except RequestPaused:  # asked again from the first byte the sink has not had
                self._paused(url, cancel, coverage.missing())
            finally:
                batch[: len(coverage.ranges)] = coverage.missing()

    @contextmanager
    def _probing(self, origin: Origin, n: int, cancel: CancelToken,
                 stop: threading.Event) -> Iterator[None]:
        """Hold ``origin``'s probe lock for a request of ``n`` ranges while the origin has
        not yet answered that many with a multipart 206 (``Origin.answered``, set as soon as
        such an answer's headers arrive); else nothing."""
        held = False
        while n > origin.answered and not held:
            held = origin.probe.acquire(timeout=POLL)
            if not held:
                cancel.check()
                if stop.is_set():
                    raise Stopped
        try:
            yield
        finally:
            if held:
                origin.probe.release()

    def _multi_unsatisfiable(self, url: str, origin: Origin, coverage: Coverage,
                             exc: Unsatisfiable) -> bool:
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
        self._set_mode(origin, Mode.SINGLE, 1,
                       f"416 to a {len(coverage.ranges)}-range request inside the file")
        return True

    def _ranges_once(
        self,
        url: str,
        origin: Origin,
        coverage: Coverage,
        sink: RangeSink,
        cancel: CancelToken,
        stop: threading.Event,
        span: bool = False,
    ) -> None:
        """One request for ``coverage.ranges`` (``span``: for the one range from the first's
        start to the last's end); delivers what the answer holds."""
        asked = [(coverage.ranges[0][0], coverage.ranges[-1][1])] if span else coverage.ranges
        n = len(asked)
        headers = {"Range": format_range_header(asked), "Accept-Encoding": "identity"}
        with translate_errors(url), self._get(url, headers, cancel, stop) as resp:
            if resp.status_code == 200:
                # Leaving the block closes it unread: the body may be the whole (huge) file.
                accept = resp.headers.get("accept-ranges", "").strip().lower()
                if n > 1 and accept == "bytes":  # ranges work, just not this many at once
                    self._fewer_ranges(origin, n, f"200 to a {n}-range request")
                    raise FewerRanges
                if n > 1 and accept != "none":  # ranges not advertised: try one at a time
                    self._set_mode(origin, Mode.SINGLE, 1, f"200 to a {n}-range request")
                    raise FewerRanges
                self._set_mode(origin, Mode.NONE, 0, "200 to a range request")
                raise NoRangeSupport
            check_identity(resp, url)
            origin.ranged = True
            boundary = multipart_boundary(resp.headers.get("content-type", ""))
            if boundary is None:
                self._single_part(url, resp, coverage, cancel, stop, sink)
                if n > 1 and not coverage.complete:
                    # S3 and some CDNs answer only the first range: ask one at a time.
                    self._set_mode(origin, Mode.SINGLE, 1, "only part of a multi-range answered")
                return
            with self._lock:  # a multipart answer: requests of as many ranges need not wait
                origin.answered = max(origin.answered, n)
            parser = ByteRangesParser(boundary, coverage, sink, total=self._sizes.get(url))
            try:
                for piece in self._paced(resp, url):
                    self.stats.add(bytes_received=len(piece))
                    parser.feed(piece)
                    if parser.done:
                        break  # the epilogue is not needed
                parser.finish()
            except RangeError as exc:
                if n == 1:
                    raise
                self._fewer_ranges(origin, n, f"bad multipart answer: {exc}")
                raise FewerRanges from exc
            self._check_total(url, parser.total)
            if coverage.delivered_bytes == 0:
                raise RangeError(f"{url}: multipart answer without any asked bytes", url=url)
            answered = n - len(coverage.missing())
            if not coverage.complete and 1 <= answered < origin.max_ranges:
                # lighttpd answers the first 10 ranges of a longer request: ask that many.
                self._set_mode(origin, Mode.MULTI if answered > 1 else Mode.SINGLE,
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
            self.stats.add(bytes_received=len(piece))
            body.feed(piece)  # RangeError if longer than the Content-Range: no buffer grows
        body.finish()


# Single ranges (Varnish, S3, CDNs without multi-range): each range costs a request, so
# ranges closer than SPAN_GAP are asked as the one range spanning them, the bytes between
# dropped: about the gap the chunk planner bridges for one more range of a multi-range
# request (``core.chunks.planner.PlanOptions.range_cost``, 15.7 kB), here saving a whole
# request. Wider gaps cost more bytes than the requests they save are worth (measured in
# docs/benchmarks.md: Varnish, raw ranges). Up to SPAN_MAX bytes per request, so the
# connections still share the work.
SPAN_GAP = 16 << 10
SPAN_MAX = 4 << 20


def spans(ranges: Sequence[tuple[int, int]], gap: int = SPAN_GAP, most: int = SPAN_MAX
          ) -> list[list[tuple[int, int]]]:
    """Sorted, disjoint ``ranges`` in groups of neighbours: each next range starts at most
    ``gap`` bytes after the one before, and a group spans at most ``most`` bytes (a range
    longer than that is a group of its own)."""
    groups: list[list[tuple[int, int]]] = []
    for a, b in ranges:
        if groups and a - groups[-1][-1][1] <= gap and b - groups[-1][0][0] <= most:
            groups[-1].append((a, b))
        else:
            groups.append([(a, b)])
    return groups
