"""core.net.http.HttpFetcher against httpx.MockTransport: errors, retries, range-mode fallbacks."""

from __future__ import annotations

import inspect
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from core.errors import (
    CancelledError,
    DownloadError,
    HTTPStatusError,
    NetworkError,
    RangeError,
)
from core.net.http import HttpFetcher, parse_retry_after
from core.net.http.fetcher import SPAN_GAP, spans
from core.net.multipart import format_range_header
from core.progress import CancelToken

URL = "https://cdn.example/files/game.pak"
DATA = random.Random(7).randbytes(200_000)


class Chunks(httpx.SyncByteStream):
    """A response body in pieces; can fail after ``fail_after`` bytes; records if it was read."""

    def __init__(self, data: bytes, piece: int = 4096, fail_after: int | None = None) -> None:
        self.data, self.piece, self.fail_after = data, piece, fail_after
        self.read = False

    def __iter__(self) -> Iterator[bytes]:
        self.read = True
        for i in range(0, len(self.data), self.piece):
            if self.fail_after is not None and i >= self.fail_after:
                raise httpx.ReadError("connection reset mid-body")
            yield self.data[i : i + self.piece]


class FakeServer:
    """Serves ``DATA`` at ``URL`` the way different servers do (``mode``), recording requests.

    modes: "multi" (multipart up to ``max_ranges``, 200 beyond), "single" (first range only,
    like S3), "none" (always 200 with the full body), "varnish" (416 with ``Content-Range:
    bytes */SIZE`` to any multi-range request, as Varnish 7.1 answers; ``size_in_416``
    False leaves the header out), "first10" (multipart of the first 10 ranges only, as
    lighttpd answers a longer request).
    """

    def __init__(self, mode: str = "multi", max_ranges: int = 1000) -> None:
        self.mode = mode
        self.max_ranges = max_ranges
        self.ranges_seen: list[str | None] = []
        self.streams: list[Chunks] = []
        self.before: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.fail_after: int | None = None  # bytes into the next body, once
        self.lock = threading.Lock()
        self.size_in_416 = True

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def body(self, status: int, data: bytes, headers: dict[str, str]) -> httpx.Response:
        with self.lock:
            fail, self.fail_after = self.fail_after, None
        stream = Chunks(data, fail_after=fail)
        self.streams.append(stream)
        headers = {"content-length": str(len(data)), **headers}
        return httpx.Response(status, headers=headers, stream=stream)

    def handle(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("range")
        with self.lock:
            self.ranges_seen.append(header)
            hooks = list(self.before)
        for hook in hooks:
            response = hook(request)
            if response is not None:
                return response
        if header is None or self.mode == "none":
            return self.body(200, DATA, {})
        assert request.headers["accept-encoding"] == "identity"
        specs = [tuple(int(x) for x in s.split("-")) for s in header[6:].split(",")]
        if len(specs) > 1 and self.mode == "varnish":
            size = {"content-range": f"bytes */{len(DATA)}"} if self.size_in_416 else {}
            return self.body(416, b"", size)
        if len(specs) > self.max_ranges:  # like nginx's max_ranges: ranges work, not this many
            return self.body(200, DATA, {"accept-ranges": "bytes"})
        if len(specs) == 1 or self.mode == "single":
            first, last = specs[0]
            return self.body(
                206, DATA[first : last + 1], {"content-range": f"bytes {first}-{last}/{len(DATA)}"}
            )
        out = bytearray()
        if self.mode == "first10":
            specs = specs[:10]
        for first, last in specs:
            out += f"\r\n--B\r\nContent-Range: bytes {first}-{last}/{len(DATA)}\r\n\r\n".encode()
            out += DATA[first : last + 1]
        out += b"\r\n--B--\r\n"
        return self.body(206, bytes(out), {"content-type": "multipart/byteranges; boundary=B"})


class Sink:
    """Collects pieces, asserting each byte arrives once and calls never overlap."""

    def __init__(self) -> None:
        self.buf = bytearray(len(DATA))
        self.seen = bytearray(len(DATA))
        self.busy = threading.Lock()

    def __call__(self, offset: int, data: bytes) -> None:
        assert self.busy.acquire(blocking=False), "sink called from two threads at once"
        try:
            view = self.seen[offset : offset + len(data)]
            assert not any(view), f"bytes at {offset} delivered twice"
            self.seen[offset : offset + len(data)] = b"\1" * len(data)
            self.buf[offset : offset + len(data)] = data
        finally:
            self.busy.release()

    def check(self, ranges: list[tuple[int, int]]) -> None:
        want = bytearray(len(DATA))
        for s, e in ranges:
            want[s:e] = b"\1" * (e - s)
            assert self.buf[s:e] == DATA[s:e]
        assert self.seen == want


def fetcher(transport: httpx.BaseTransport, **kwargs: object) -> HttpFetcher:
    sleeps: list[float] = []
    options: dict[str, object] = {"backoff": 0.001, "retry_after_max": 0.01, "connections": 4}
    options.update(kwargs)
    f = HttpFetcher(transport=transport, sleep=sleeps.append, **options)  # type: ignore[arg-type]
    f.sleeps = sleeps  # type: ignore[attr-defined]
    f.lines = []  # type: ignore[attr-defined]
    f.log = f.lines.append  # type: ignore[attr-defined]
    return f


def spread(count: int, size: int = 100, step: int = 1000) -> list[tuple[int, int]]:
    return [(i * step, i * step + size) for i in range(count)]


# -- error mapping -----------------------------------------------------------------------------


def httpx_exception_classes() -> list[type[Exception]]:
    return [
        obj
        for name in httpx.__all__
        if inspect.isclass(obj := getattr(httpx, name)) and issubclass(obj, Exception)
    ]


def make_exception(cls: type[Exception]) -> Exception:
    request = httpx.Request("GET", URL)
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("418", request=request, response=httpx.Response(418, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    try:
        return cls("boom")
    except TypeError:
        return cls()


def test_every_httpx_exception_is_covered() -> None:
    classes = httpx_exception_classes()
    assert httpx.ReadTimeout in classes and httpx.StreamConsumed in classes
    assert len(classes) >= 25  # httpx's public tree; a new class lands in the test below


@pytest.mark.parametrize("cls", httpx_exception_classes(), ids=lambda c: c.__name__)
def test_httpx_exception_maps_to_download_error(cls: type[Exception]) -> None:
    exc = make_exception(cls)

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    f = fetcher(httpx.MockTransport(handler), attempts=2)
    with pytest.raises(DownloadError) as info:
        f.fetch(URL, 1000)
    assert type(info.value) in (NetworkError, HTTPStatusError, RangeError)
    assert info.value.__cause__ is exc
    assert info.value.url == URL
    with pytest.raises(DownloadError):
        f.fetch_ranges(URL, [(0, 10)], lambda o, d: None)


def test_mid_body_exception_is_translated() -> None:
    server = FakeServer()
    server.fail_after = 0
    f = fetcher(server.transport(), attempts=1)
    with pytest.raises(NetworkError) as info:
        f.fetch(URL, len(DATA))
    assert isinstance(info.value.__cause__, httpx.ReadError)


# -- statuses and retries ----------------------------------------------------------------------


def status_hook(
    statuses: list[int], headers: dict[str, str] | None = None
) -> Callable[..., object]:
    def hook(request: httpx.Request) -> httpx.Response | None:
        if statuses:
            return httpx.Response(statuses.pop(0), headers=headers or {})
        return None

    return hook


def test_fetch_whole_body() -> None:
    f = fetcher(FakeServer().transport())
    assert f.fetch(URL, len(DATA)) == DATA
    assert f.stats.requests == 1 and f.stats.bytes_received == len(DATA)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retry_on_5xx_and_429(status: int) -> None:
    server = FakeServer()
    server.before.append(status_hook([status, status]))
    f = fetcher(server.transport())
    assert f.fetch(URL, len(DATA)) == DATA
    assert f.stats.retries == 2 and f.stats.requests == 3
    assert any("retry" in line for line in f.lines)


def test_retry_after_seconds_is_honoured_and_capped() -> None:
    server = FakeServer()
    server.before.append(status_hook([503, 429], {"retry-after": "3"}))
    f = fetcher(server.transport(), retry_after_max=2.5, backoff=0.001)
    sink = Sink()
    f.fetch_ranges(URL, [(0, 10)], sink)
    sink.check([(0, 10)])
    assert f.sleeps == [2.5, 2.5]


def test_retry_after_http_date() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=20), usegmt=True)
    assert parse_retry_after(later, now) == pytest.approx(20)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert parse_retry_after("7") == 7
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_gives_up_after_attempts() -> None:
    server = FakeServer()
    server.before.append(status_hook([503] * 10))
    f = fetcher(server.transport(), attempts=3)
    with pytest.raises(HTTPStatusError) as info:
        f.fetch_ranges(URL, [(0, 10)], Sink())
    assert info.value.status_code == 503
    assert f.stats.requests == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_4xx_not_retried(status: int) -> None:
    server = FakeServer()
    server.before.append(status_hook([status] * 5))
    f = fetcher(server.transport())
    with pytest.raises(HTTPStatusError) as info:
        f.fetch(URL, len(DATA))
    assert info.value.status_code == status and info.value.url == URL
    assert f.stats.requests == 1 and f.stats.retries == 0


def test_416_is_range_error() -> None:
    server = FakeServer()
    server.before.append(status_hook([416], {"content-range": f"bytes */{len(DATA)}"}))
    with pytest.raises(RangeError):
        fetcher(server.transport()).fetch_ranges(URL, [(len(DATA), len(DATA) + 5)], Sink())


@pytest.mark.parametrize("size_in_416", [True, False])
def test_416_to_multi_range_inside_the_file_means_single_ranges(size_in_416: bool) -> None:
    """Varnish answers every multi-range request 416 (single ranges work): the origin is
    learned as single-range and every range arrives. Ranges far apart are asked one per
    request, each once; close ones as the one range spanning them (``spans``), from the
    start in later calls."""
    server = FakeServer(mode="varnish")
    server.size_in_416 = size_in_416
    f = fetcher(server.transport())
    ranges = spread(3, step=SPAN_GAP + 1000)  # gaps of SPAN_GAP + 900 bytes: not bridged
    sink = Sink()
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    assert server.ranges_seen[0] == format_range_header(ranges)  # refused
    assert sorted(server.ranges_seen[1:]) == sorted(format_range_header([r]) for r in ranges)
    assert any("single ranges" in line and "416" in line for line in f.lines)  # type: ignore[attr-defined]
    server.ranges_seen.clear()
    close = spread(40)  # 900-byte gaps: one request for bytes 0-39099, the gaps dropped
    sink = Sink()
    f.fetch_ranges(URL, close, sink)
    sink.check(close)
    assert server.ranges_seen == ["bytes=0-39099"]
    assert f.stats.bytes_received == 3 * 100 + 39_100


def test_single_ranges_span_neighbours_up_to_the_limits() -> None:
    """``spans``: a next range within ``gap`` bytes joins the group, up to ``most`` bytes
    from the group's start; a range longer than ``most`` is a group of its own."""
    assert spans([]) == []
    assert spans([(0, 10), (20, 30), (41, 50)], gap=10, most=100) == [[(0, 10), (20, 30)],
                                                                      [(41, 50)]]
    assert spans([(0, 10), (10, 20), (20, 30)], gap=0, most=25) == [[(0, 10), (10, 20)],
                                                                   [(20, 30)]]
    assert spans([(0, 500), (500, 510)], gap=10, most=100) == [[(0, 500)], [(500, 510)]]


def test_416_to_a_span_is_an_error_not_another_fallback() -> None:
    """A span asks one range: a 416 to it is the error it says, not a reason to fall back
    to single ranges again (which it already is)."""
    server = FakeServer()
    server.before.append(status_hook([416] * 20, {"content-range": f"bytes */{len(DATA)}"}))
    f = fetcher(server.transport(), connections=1)
    with pytest.raises(RangeError):
        f.fetch_ranges(URL, spread(40), Sink())
    assert server.ranges_seen[:2] == [format_range_header(spread(32)), "bytes=0-39099"]
    assert f.stats.requests <= 3


def test_a_span_answered_in_part_is_asked_again_for_the_rest() -> None:
    """A server that answers a long range with its first bytes only (a CDN's cap on a
    range's length, say): what is missing is asked for again, every byte delivered once."""
    server = FakeServer(mode="varnish")

    def capped(request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("range", "")
        if "," in header:
            return None  # refused as Varnish does
        first, last = (int(x) for x in header[6:].split("-"))
        last = min(last, first + 9_999)
        return httpx.Response(206, headers={"content-range": f"bytes {first}-{last}/{len(DATA)}"},
                              content=DATA[first:last + 1])

    server.before.append(capped)
    f = fetcher(server.transport(), connections=1)
    ranges = spread(40)
    sink = Sink()
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    asked = server.ranges_seen[1:]
    assert 4 <= len(asked) <= 6 and all("," not in h for h in asked), asked  # type: ignore[operator]


def test_multipart_of_the_first_ranges_only_teaches_how_many() -> None:
    """lighttpd answers the first 10 ranges of a longer request: the rest is asked again,
    and from then on 10 ranges per request, so no later request is answered in part."""
    server = FakeServer(mode="first10")
    f = fetcher(server.transport(), connections=1)
    ranges = spread(60)
    sink = Sink()
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    counts = [h.count(",") + 1 for h in server.ranges_seen if h is not None]
    assert counts[0] == 32 and all(c <= 10 for c in counts[1:]), counts
    assert sum(min(c, 10) for c in counts) == 60  # every request answered in full but the first
    assert len(counts) == 1 + 5  # 10 of the first 32, then 50 in batches of 10
    assert any("10 of 32 ranges answered" in line for line in f.lines)  # type: ignore[attr-defined]


def test_416_to_multi_range_past_the_end_is_range_error() -> None:
    """A 416 whose size shows the ranges do not fit the file is the error it says."""
    server = FakeServer(mode="varnish")
    f = fetcher(server.transport())
    with pytest.raises(RangeError, match="416"):
        f.fetch_ranges(URL, [(0, 10), (len(DATA) - 5, len(DATA) + 5)], Sink())
    assert server.ranges_seen == [f"bytes=0-9,{len(DATA) - 5}-{len(DATA) + 4}"]


def test_416_to_a_single_range_inside_the_file_stays_an_error() -> None:
    """Fallback is for multi-range only: a single range refused is not retried."""
    server = FakeServer()
    server.before.append(status_hook([416] * 3, {"content-range": f"bytes */{len(DATA)}"}))
    f = fetcher(server.transport())
    with pytest.raises(RangeError):
        f.fetch_ranges(URL, [(0, 10)], Sink())
    assert f.stats.requests == 1


def test_fetch_max_length() -> None:
    f = fetcher(FakeServer().transport())
    with pytest.raises(RangeError):
        f.fetch(URL, len(DATA) - 1)  # Content-Length says too much: nothing read
    assert f.stats.bytes_received == 0

    def no_length(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Chunks(DATA))

    f = fetcher(httpx.MockTransport(no_length))
    with pytest.raises(RangeError):
        f.fetch(URL, 10_000)
    assert f.stats.bytes_received <= 10_000 + 4096


def test_cancel() -> None:
    token = CancelToken()
    token.cancel()
    f = fetcher(FakeServer().transport())
    with pytest.raises(CancelledError):
        f.fetch_ranges(URL, spread(10), Sink(), token)
    with pytest.raises(CancelledError):
        f.fetch(URL, len(DATA), token)


def test_sink_exception_propagates() -> None:
    class Full(Exception):
        pass

    def sink(offset: int, data: bytes) -> None:
        raise Full

    with pytest.raises(Full):
        fetcher(FakeServer().transport()).fetch_ranges(URL, spread(100), sink)


# -- range modes -------------------------------------------------------------------------------


def test_multirange_in_one_request() -> None:
    server = FakeServer()
    f = fetcher(server.transport())
    sink, ranges = Sink(), spread(30)
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    assert f.stats.requests == 1


def test_multirange_batches_of_32_in_parallel() -> None:
    server = FakeServer()
    f = fetcher(server.transport())
    sink, ranges = Sink(), spread(150, size=700)
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    assert f.stats.requests == 5
    assert all(h is not None and h.count(",") < 32 for h in server.ranges_seen)


def test_200_to_multirange_halves_and_closes_unread() -> None:
    server = FakeServer(max_ranges=5)
    f = fetcher(server.transport())
    sink, ranges = Sink(), spread(40)
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    full_bodies = [s for s in server.streams if len(s.data) == len(DATA)]
    assert full_bodies and not any(s.read for s in full_bodies)
    assert any("range mode" in line for line in f.lines)
    # learnt for the origin: the next call goes straight to 4 ranges per request
    server.ranges_seen.clear()
    f.fetch_ranges(URL, spread(8), Sink())
    assert len(server.ranges_seen) == 2


def test_bad_multipart_halves() -> None:
    server = FakeServer()

    def broken(request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("range", "")
        if header.count(",") >= 4:
            body = b"--B\r\nContent-Range: bytes 0-9/5\r\n\r\n0123456789\r\n--B--"
            ctype = {"content-type": "multipart/byteranges; boundary=B"}
            return httpx.Response(206, headers=ctype, content=body)
        return None

    server.before.append(broken)
    f = fetcher(server.transport())
    sink, ranges = Sink(), spread(20)
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)


def test_s3_first_range_only_switches_to_singles() -> None:
    """S3 answers a multi-range request with its first range: the rest come as single
    ranges, neighbours spanned (``spans``), each asked byte delivered once."""
    server = FakeServer(mode="single")
    f = fetcher(server.transport())
    sink, ranges = Sink(), spread(20)
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    assert server.ranges_seen == [format_range_header(ranges), "bytes=1000-19099"]
    assert f.stats.requests == 2


def test_coalesced_single_part_answer() -> None:
    server = FakeServer()

    def coalesce(request: httpx.Request) -> httpx.Response | None:
        specs = request.headers["range"][6:].split(",")
        first, last = specs[0].split("-")[0], specs[-1].split("-")[1]
        rng = f"bytes {first}-{last}/{len(DATA)}"
        return httpx.Response(
            206, headers={"content-range": rng}, content=DATA[int(first) : int(last) + 1]
        )

    server.before.append(coalesce)
    f = fetcher(server.transport())
    sink, ranges = Sink(), [(0, 10), (20, 30), (35, 50)]
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    assert f.stats.requests == 1


def test_no_range_support_streams_whole_body_once() -> None:
    server = FakeServer(mode="none")
    f = fetcher(server.transport())
    sink, ranges = Sink(), spread(60, size=50, step=2000)
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    assert server.ranges_seen.count(None) == 1  # one whole-body GET for all ranges
    # the whole-body GET stops reading after the last range
    assert f.stats.bytes_received < ranges[-1][1] + 8192
    server.ranges_seen.clear()
    f.fetch_ranges(URL, [(5, 10)], Sink())
    assert server.ranges_seen == [None]  # learnt: no more range requests to this origin


def test_no_range_support_resumes_without_duplicates() -> None:
    server = FakeServer(mode="none")
    f = fetcher(server.transport())
    f.fetch_ranges(URL, [(0, 10)], Sink())  # learn the mode
    server.fail_after = 100_000
    sink, ranges = Sink(), spread(100, size=100, step=1900)
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)
    assert f.stats.retries == 1


# -- lying servers -----------------------------------------------------------------------------


def lying(content_range: str, body: bytes, length: bool = True) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-range": content_range}
        if not length:
            return httpx.Response(206, headers=headers, stream=Chunks(body, piece=7))
        return httpx.Response(206, headers=headers, content=body)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("content_range", "body", "length"),
    [
        ("bytes 0-9/200000", DATA[:20], False),  # body longer than its range, no length
        ("bytes 0-9/200000", DATA[:20], True),  # Content-Length disagrees with the range
        ("bytes 100-109/200000", DATA[100:110], True),  # not the range asked
        ("bytes 0-19/200000", DATA[:20], True),  # more than asked
        ("bytes 0-9/5", DATA[:10], True),  # impossible
        ("bytes garbage", DATA[:10], True),
    ],
)
def test_lying_content_range(content_range: str, body: bytes, length: bool) -> None:
    f = fetcher(lying(content_range, body, length))
    with pytest.raises(RangeError) as info:
        f.fetch_ranges(URL, [(0, 10)], Sink())
    assert info.value.url == URL
    assert f.stats.retries == 0


def test_206_without_content_range() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(206, content=DATA[:10])

    with pytest.raises(RangeError):
        fetcher(httpx.MockTransport(handler)).fetch_ranges(URL, [(0, 10)], Sink())


def test_size_change_between_requests() -> None:
    totals = iter([len(DATA), 999])

    def handler(request: httpx.Request) -> httpx.Response:
        first, last = (int(x) for x in request.headers["range"][6:].split("-"))
        rng = f"bytes {first}-{last}/{next(totals)}"
        return httpx.Response(206, headers={"content-range": rng}, content=DATA[first : last + 1])

    f = fetcher(httpx.MockTransport(handler), max_ranges=1, connections=1)
    with pytest.raises(RangeError, match="size changed"):
        f.fetch_ranges(URL, [(0, 10), (20, 30)], Sink())


# -- resume and redirects ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_resume_after_mid_body_failure(count: int) -> None:
    server = FakeServer()
    server.fail_after = 8192 * 3
    f = fetcher(server.transport())
    sink = Sink()
    ranges = [(1000, 60_000)] if count == 1 else [(0, 20_000), (30_000, 50_000), (60_000, 61_000)]
    f.fetch_ranges(URL, ranges, sink)
    sink.check(ranges)  # every byte exactly once
    assert f.stats.retries == 1
    retry = server.ranges_seen[1]
    assert (
        retry is not None
        and not retry.startswith("bytes=0-")
        and not retry.startswith("bytes=1000-")
    )


def test_expired_signed_redirect_is_resolved_again() -> None:
    origin = "https://origin.example/game.pak"
    signed = {"n": 0, "valid": ""}

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == origin:
            signed["n"] += 1
            signed["valid"] = f"https://signed.example/game.pak?sig={signed['n']}"
            return httpx.Response(302, headers={"location": signed["valid"]})
        if str(request.url) != signed["valid"]:
            return httpx.Response(403)
        first, last = (int(x) for x in request.headers["range"][6:].split("-"))
        rng = f"bytes {first}-{last}/{len(DATA)}"
        return httpx.Response(206, headers={"content-range": rng}, content=DATA[first : last + 1])

    f = fetcher(httpx.MockTransport(handler))
    sink = Sink()
    f.fetch_ranges(origin, [(0, 10)], sink)
    signed["valid"] = "expired"  # the CDN signature runs out
    f.fetch_ranges(origin, [(20, 30)], sink)
    sink.check([(0, 10), (20, 30)])
    assert signed["n"] == 2
    assert any("resolving" in line for line in f.lines)

    signed["valid"] = "expired"
    f2 = fetcher(httpx.MockTransport(lambda r: httpx.Response(403)))
    with pytest.raises(HTTPStatusError) as info:
        f2.fetch_ranges(origin, [(0, 10)], Sink())
    assert info.value.status_code == 403


def test_user_agent_and_identity() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x")

    fetcher(httpx.MockTransport(handler)).fetch(URL, 10)
    assert seen[0].headers["user-agent"].startswith("stitch/")
    assert seen[0].headers["accept-encoding"] == "identity"


# -- the pointer: never a cache's stale copy ------------------------------------------------
def test_fetch_fresh_asks_caches_to_revalidate_and_busts_with_a_unique_query() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"{}")

    f = fetcher(httpx.MockTransport(handle))
    assert f.fetch_fresh(URL, 100, bust=True) == b"{}"
    assert f.fetch_fresh(URL, 100, bust=True) == b"{}"
    assert f.fetch_fresh(URL + "?token=x", 100, bust=True) == b"{}"
    assert f.fetch_fresh(URL, 100) == b"{}"
    assert f.fetch(URL, 100) == b"{}"
    for r in seen[:4]:
        assert r.headers["cache-control"] == "no-cache" and r.headers["pragma"] == "no-cache"
    assert "cache-control" not in seen[4].headers and "pragma" not in seen[4].headers
    busts = [dict(r.url.params) for r in seen[:3]]
    assert all(len(b["stitch"]) == 16 and int(b["stitch"], 16) >= 0 for b in busts)
    assert busts[0]["stitch"] != busts[1]["stitch"]  # each check its own URL
    assert busts[2]["token"] == "x"  # a query already there is kept
    assert str(seen[0].url).startswith(URL + "?stitch=")
    assert str(seen[3].url) == URL and str(seen[4].url) == URL


def test_fetch_fresh_retries_like_fetch() -> None:
    server = FakeServer()
    server.before.append(status_hook([503, 503]))
    f = fetcher(server.transport())
    assert f.fetch_fresh(URL, len(DATA), bust=True) == DATA
    assert f.stats.requests == 3 and f.stats.retries == 2
