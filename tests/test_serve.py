"""app.serve against real clients on loopback: HttpFetcher and raw http.client requests."""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from app.serve import StitchServer, make_server, parse_range
from core.errors import HTTPStatusError, RangeError
from core.net.http import HttpFetcher
from core.net.multipart import ByteRangesParser, Coverage, multipart_boundary

DATA = random.Random(11).randbytes(700_000)  # bigger than one streaming block
PAK = "/stable/1.0/files/game.pak"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StitchServer]:
    base = tmp_path_factory.mktemp("serve")
    repo = base / "repo"
    (repo / "stable" / "1.0" / "files").mkdir(parents=True)
    (repo / "stable" / "1.0" / "files" / "game.pak").write_bytes(DATA)
    (repo / "stable" / "1.0" / "files" / "a b&c.txt").write_bytes(b"spaces")
    (repo / "empty.bin").write_bytes(b"")
    (base / "secret.txt").write_bytes(b"outside")
    (repo / "escape").symlink_to(base / "secret.txt")
    (repo / "escape_dir").symlink_to(base, target_is_directory=True)
    srv = make_server(repo, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def fetcher() -> Iterator[HttpFetcher]:
    f = HttpFetcher(backoff=0.001, retry_after_max=0.01, read_timeout=10)
    yield f
    f.close()


def url(srv: StitchServer, path: str = PAK) -> str:
    host, port = srv.server_address[:2]
    return f"http://{host}:{port}{path}"


def request(
    srv: StitchServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One raw request (http.client sends the path exactly as given: no dot-segment cleanup)."""
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def fetch_ranges(f: HttpFetcher, target: str, ranges: list[tuple[int, int]]) -> None:
    """Fetch ``ranges`` and assert every asked byte arrived once and right."""
    buf = bytearray(len(DATA))
    seen = bytearray(len(DATA))

    def sink(offset: int, data: bytes) -> None:
        assert not any(seen[offset : offset + len(data)]), "byte delivered twice"
        seen[offset : offset + len(data)] = b"\1" * len(data)
        buf[offset : offset + len(data)] = data

    f.fetch_ranges(target, ranges, sink)
    for start, end in ranges:
        assert buf[start:end] == DATA[start:end]
    assert sum(seen) == sum(e - s for s, e in ranges)


def assert_sent(srv: StitchServer, before: int, expected: int) -> None:
    """The server counts a block after writing it, so the client may finish first: wait."""
    deadline = time.monotonic() + 5
    while srv.bytes_sent - before < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    assert srv.bytes_sent - before == expected


# -- with the real fetcher ---------------------------------------------------------------------


def test_fetch_whole_file(server: StitchServer, fetcher: HttpFetcher) -> None:
    before = server.bytes_sent
    assert fetcher.fetch(url(server), len(DATA)) == DATA
    assert_sent(server, before, len(DATA))


def test_fetch_single_range(server: StitchServer, fetcher: HttpFetcher) -> None:
    fetch_ranges(fetcher, url(server), [(123_456, 654_321)])
    assert fetcher.stats.requests == 1


def test_fetch_multi_range_one_request(server: StitchServer, fetcher: HttpFetcher) -> None:
    ranges = [(i * 20_000, i * 20_000 + 1000 + i) for i in range(30)] + [(699_990, 700_000)]
    before = server.bytes_sent
    fetch_ranges(fetcher, url(server), ranges)
    assert fetcher.stats.requests == 1
    assert_sent(server, before, sum(e - s for s, e in ranges))


def test_fetch_many_ranges_in_parallel_batches(server: StitchServer, fetcher: HttpFetcher) -> None:
    ranges = [(i * 3000, i * 3000 + 100) for i in range(230)]
    fetch_ranges(fetcher, url(server), ranges)
    assert fetcher.stats.requests == 8  # 32 per request


def test_fetch_more_ranges_than_server_allows(server: StitchServer, fetcher: HttpFetcher) -> None:
    small = make_server(server.repo_dir, quiet=True, max_ranges=5)
    thread = threading.Thread(target=small.serve_forever, daemon=True)
    thread.start()
    lines: list[str] = []
    fetcher.log = lines.append
    try:
        fetch_ranges(fetcher, url(small), [(i * 1000, i * 1000 + 10) for i in range(40)])
        assert any("range mode" in line for line in lines)
    finally:
        small.shutdown()
        small.server_close()


def test_fetch_unsatisfiable_range(server: StitchServer, fetcher: HttpFetcher) -> None:
    with pytest.raises(RangeError):
        fetcher.fetch_ranges(url(server), [(len(DATA), len(DATA) + 10)], lambda o, d: None)


def test_fetch_missing_file(server: StitchServer, fetcher: HttpFetcher) -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetcher.fetch(url(server, "/nope"), 100)
    assert info.value.status_code == 404
    assert fetcher.stats.requests == 1


# -- raw requests ------------------------------------------------------------------------------


def test_full_get_and_head(server: StitchServer) -> None:
    status, headers, body = request(server, PAK)
    assert status == 200 and body == DATA
    assert headers["accept-ranges"] == "bytes" and headers["content-length"] == str(len(DATA))
    status, headers, body = request(server, PAK, method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(DATA))
    status, headers, body = request(server, PAK, {"Range": "bytes=0-1,5-9"}, method="HEAD")
    assert status == 206 and body == b"" and int(headers["content-length"]) > 7


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=500-", 500, len(DATA)),
        ("bytes=-500", len(DATA) - 500, len(DATA)),
        ("bytes=-9999999", 0, len(DATA)),
        ("bytes=699990-800000", 699_990, len(DATA)),
        ("bytes=5-5", 5, 6),
    ],
)
def test_single_range(server: StitchServer, header: str, start: int, end: int) -> None:
    status, headers, body = request(server, PAK, {"Range": header})
    assert status == 206
    assert headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert headers["content-length"] == str(end - start)
    assert body == DATA[start:end]


def test_multipart_ranges(server: StitchServer) -> None:
    status, headers, body = request(server, PAK, {"Range": "bytes=0-9, 100-199,-5"})
    assert status == 206
    assert headers["content-length"] == str(len(body))
    boundary = multipart_boundary(headers["content-type"])
    assert boundary is not None
    asked = [(0, 10), (100, 200), (len(DATA) - 5, len(DATA))]
    got: dict[int, bytes] = {}
    parser = ByteRangesParser(boundary, Coverage(asked), lambda o, d: got.update({o: d}))
    parser.feed(body)
    parser.finish()
    assert parser.parts == 3
    assert got == {s: DATA[s:e] for s, e in asked}
    assert body.count(b"Content-Type: application/octet-stream") == 3


@pytest.mark.parametrize("header", ["bytes=700000-", "bytes=800000-900000", "bytes=-0"])
def test_unsatisfiable(server: StitchServer, header: str) -> None:
    status, headers, body = request(server, PAK, {"Range": header})
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(DATA)}"
    assert body == b""


@pytest.mark.parametrize("header", ["bytes=9-0", "items=0-9", "bytes=a-b", "bytes=--5", "bytes"])
def test_invalid_range_header_is_ignored(server: StitchServer, header: str) -> None:
    status, _, body = request(server, PAK, {"Range": header})
    assert status == 200 and body == DATA


def test_too_many_ranges_serves_whole_file(server: StitchServer) -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(201))
    status, _, body = request(server, PAK, {"Range": header})
    assert status == 200 and body == DATA


def test_if_range(server: StitchServer) -> None:
    _, headers, _ = request(server, PAK, method="HEAD")
    status, _, _ = request(server, PAK, {"Range": "bytes=0-9", "If-Range": headers["etag"]})
    assert status == 206
    status, _, _ = request(server, PAK, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert status == 200


def test_empty_file(server: StitchServer) -> None:
    assert request(server, "/empty.bin")[0::2] == (200, b"")
    assert request(server, "/empty.bin", {"Range": "bytes=0-"})[0] == 416


@pytest.mark.parametrize(
    "path",
    [
        "/../etc/passwd",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/stable/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
        "/stable/..%2f..%2f..%2fetc/passwd",
        "/escape",
        "/escape_dir/secret.txt",
        "/%00",
        "/%ff%fe",
    ],
)
def test_traversal_refused(server: StitchServer, path: str) -> None:
    status, _, body = request(server, path)
    assert status in (400, 403, 404)
    assert b"outside" not in body and b"root:" not in body


def test_listing(server: StitchServer) -> None:
    status, headers, body = request(server, "/stable/1.0/files/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert 'href="game.pak"' in page and 'href="a%20b%26c.txt"' in page
    assert "a b&amp;c.txt" in page
    status, _, body = request(server, "/")
    assert 'href="stable/"' in body.decode()
    assert "escape" not in body.decode()  # symlinks out are not advertised
    status, headers, _ = request(server, "/stable")
    assert status == 301 and headers["location"] == "/stable/"
    assert request(server, "/stable/1.0/files/a%20b%26c.txt")[2] == b"spaces"


def test_parse_range_unit() -> None:
    assert parse_range("bytes=0-0,2-", 5, 10) == [(0, 1), (2, 5)]
    assert parse_range("bytes=, 1-1 ,", 5, 10) == [(1, 2)]
    assert parse_range("bytes=7-9", 5, 10) == []
    assert parse_range("bytes=0-1,2-3", 5, 1) is None
    assert parse_range("bytes=-5", 0, 10) == []


# -- bounded connections ----------------------------------------------------------------------


@pytest.fixture
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StitchServer]:
    """A server that closes connections idle for 0.3 s or whose headers take 1 s, and
    serves two at once; ``big.bin``
    (16 MiB) is more than the socket buffers hold, so a client that stops reading stalls it."""
    repo = tmp_path_factory.mktemp("short")
    (repo / "big.bin").write_bytes(random.Random(3).randbytes(16 << 20))
    (repo / "small.txt").write_bytes(b"small")
    srv = make_server(repo, quiet=True, idle_timeout=0.3, header_timeout=1.0,
                      max_connections=2)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def connect(srv: StitchServer) -> socket.socket:
    host, port = srv.server_address[:2]
    s = socket.create_connection((str(host), int(port)), timeout=10)
    return s


def closed_by_server(s: socket.socket) -> bool:
    """Read until the server closes (True) or 10 s of silence (False); bytes are discarded."""
    s.settimeout(10)
    try:
        for _ in range(100_000):  # bounded: 16 MiB at 64 KiB a read is 256 reads
            if not s.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def test_idle_connection_is_closed(short_server: StitchServer) -> None:
    with connect(short_server) as s:
        assert closed_by_server(s)  # sent nothing at all


def test_stalled_request_is_closed(short_server: StitchServer) -> None:
    with connect(short_server) as s:
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n")  # the blank line never comes
        assert closed_by_server(s)


def test_headers_sent_a_byte_at_a_time_are_cut_off(short_server: StitchServer) -> None:
    """Each byte comes well within the idle timeout; the header deadline still ends it."""
    request_bytes = b"GET /small.txt HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
    with connect(short_server) as s:
        sent = 0
        try:
            for byte in request_bytes:  # bounded: 0.05 s a byte, 50 s at most
                s.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.05)
                if sent % 10 == 0 and _peer_closed(s):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < len(request_bytes)  # cut off before the trickle ended
        assert closed_by_server(s)


def _peer_closed(s: socket.socket) -> bool:
    """Whether the server has closed its side (a non-blocking peek sees the end)."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)


def test_kept_alive_connection_is_closed_when_idle(short_server: StitchServer) -> None:
    with connect(short_server) as s:
        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"small"):
            chunk = s.recv(4096)
            assert chunk
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert closed_by_server(s)  # no second request: closed after the idle timeout


def _wait_for_free_slot(srv: StitchServer) -> tuple[int, dict[str, str], bytes]:
    """Request small.txt until it is answered 200 (bounded: 200 tries)."""
    for _ in range(200):
        status, headers, body = request(srv, "/small.txt")
        if status != 503:
            return status, headers, body
        time.sleep(0.05)
    return status, headers, body


def test_connections_beyond_the_cap_get_503_until_a_slot_frees(short_server: StitchServer
                                                               ) -> None:
    held = [connect(short_server), connect(short_server)]
    try:
        # Both slots are taken by idle connections (accepted in order): one more is refused.
        status, headers, _ = request(short_server, "/small.txt")
        assert status == 503 and headers["retry-after"] == "1"
        assert short_server.refused >= 1
    finally:
        for s in held:
            s.close()
    assert _wait_for_free_slot(short_server)[0::2] == (200, b"small")


def test_a_client_that_stops_reading_frees_its_slot(short_server: StitchServer) -> None:
    stuck = []
    for _ in range(2):  # both slots: a 16 MiB download nobody reads
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(short_server.server_address[:2])
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        stuck.append(s)
    try:
        # The server's writes stall, time out, and the connections are dropped: the slots
        # come back although the clients never read or closed.
        assert _wait_for_free_slot(short_server)[0::2] == (200, b"small")
        for s in stuck:
            assert closed_by_server(s)  # what was buffered, then the end
    finally:
        for s in stuck:
            s.close()
    assert short_server.bytes_sent < 2 * (16 << 20)
