"""A fault-injecting HTTP proxy for tests: sits in front of a real server on loopback and
misbehaves on purpose, the ways real servers, CDNs and networks do.

    with FaultProxy(server.url, [Rule("reset", path=r"\\.wad$", times=1)]) as proxy:
        Updater(UpdaterConfig(url=proxy.url, ...)).update()
        proxy.requests, proxy.bytes_sent, proxy.log

Each request is matched against the rules in order; the first rule that matches (path regex,
request number, Range or not, and fewer than ``times`` hits so far) decides what happens to
it. A request no rule matches is passed through unchanged. Faults (``Rule.fault``):

    pass          forward unchanged (useful with ``throttle``-like rules listed after it)
    reset         send the headers and ``at`` of the body, then reset the connection (RST)
    truncate      the same, but close cleanly (FIN): the body is shorter than announced
    flip          flip ``flips`` bytes at random places in the body (seeded)
    full200       answer a Range request with 200 and the whole file
    first_range   answer a multi-range request with a single-part 206 for its first range
    multipart_lie answer a multi-range request with a bad multipart body; ``lie`` is one of
                  wrong_range (a part's Content-Range is off by ``shift``), bad_boundary (the
                  body's boundary differs from the header's), long_part / short_part (a part
                  holds more / fewer bytes than its Content-Range says), swap (two parts'
                  bytes are exchanged, labels kept), no_close (no closing delimiter);
                  single_wrong_range lies in a single-part 206's Content-Range instead;
                  split_reversed is no lie: every range is sent as two parts, the second
                  half first (RFC 9110 lets a server split and order parts as it likes)
    status        answer ``status`` (503, 429, ...) with ``Retry-After: retry_after``
    stall         send the real headers, then nothing (until the client gives up)
    trickle       send the real headers, then ``rate`` body bytes a second
    head_trickle  send the real status line and headers at ``rate`` bytes a second (each
                  byte restarts a per-read timeout), and no body
    silent        read the request, then send nothing at all
    redirect      302 to a "signed" URL on this proxy that works ``uses`` times, then
                  answers ``gone`` (403 or 410); asking the original URL again re-signs
    416           answer 416 Range Not Satisfiable
    throttle      forward unchanged, the body paced at ``rate`` bytes a second
    delay         forward unchanged, ``delay`` seconds after the request came in (a round
                  trip of a distant server, for the benchmarks)

``line_rate`` (bytes a second) models the player's line rather than the server: every body
byte of every connection (but those a ``throttle`` or ``trickle`` rule paces) goes through one
shared pace, as on a DSL or cable line, where a
second connection shares the bandwidth instead of adding to it (``throttle`` paces each
response on its own, as a server's per-connection cap does).

Bounded in time: the proxy stops by itself after ``lifetime`` seconds, an idle connection
is closed after ``idle_timeout``, a stall or trickle lasts at most ``stall_max`` seconds,
and ``close()`` (or leaving the ``with`` block) ends every connection at once. It listens on
127.0.0.1 only and forwards only to the upstream it was given. Test infrastructure: simple
and blocking, one thread per connection, whole upstream bodies held in memory.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import select
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

FAULTS = {
    "pass", "reset", "truncate", "flip", "full200", "first_range", "multipart_lie", "status",
    "stall", "trickle", "redirect", "416", "throttle", "delay", "head_trickle", "silent",
}
LIES = {"wrong_range", "bad_boundary", "long_part", "short_part", "swap", "no_close",
        "single_wrong_range", "split_reversed"}
MAX_HEAD = 64 * 1024  # bytes of request headers accepted
SIGNED = "/_signed/"  # path prefix of the expiring redirect targets


@dataclass
class Rule:
    """When (``path``, ``requests``, ``ranged``, ``multi``, ``times``) to do what (``fault``
    and its parameters)."""

    fault: str
    path: str | None = None  # regex searched in the request path; None: any path
    requests: Collection[int] | None = None  # global request numbers (1-based); None: any
    ranged: bool | None = None  # only requests with (True) or without (False) a Range header
    multi: bool | None = None  # only requests asking for several (True) or one range (False)
    times: int | None = None  # apply at most this many times; None: every time
    at: float = 0.5  # reset/truncate: fraction of the body sent first
    flips: int = 1  # flip: bytes flipped
    status: int = 503  # status: the code sent
    retry_after: str | None = "0"  # status: Retry-After value (None: header left out)
    accept_ranges: str | None = None  # full200: Accept-Ranges value (None: header left out)
    lie: str = "wrong_range"  # multipart_lie: which lie
    shift: int = 1  # multipart_lie wrong_range/single_wrong_range: label offset
    uses: int = 1  # redirect: uses of each signed URL
    gone: int = 403  # redirect: status once a signed URL has expired
    rate: float = 1.0  # trickle/throttle: body bytes per second
    delay: float = 0.05  # delay: seconds before the answer starts
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}")
        if self.lie not in LIES:
            raise ValueError(f"unknown lie {self.lie!r}")


@dataclass
class Entry:
    """One request the proxy answered."""

    number: int
    path: str
    range: str | None
    fault: str
    status: int = 0
    body_bytes: int = 0  # body bytes written to the client


@dataclass
class _Request:
    number: int
    method: str
    path: str  # path and query as sent
    headers: dict[str, str]  # lower-case names

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    def ranges(self, size: int) -> list[tuple[int, int]]:
        return parse_ranges(self.range or "", size)


def parse_ranges(value: str, size: int) -> list[tuple[int, int]]:
    """Half-open ranges of a simple ``bytes=a-b,c-d`` header (what stitch sends)."""
    unit, _, specs = value.partition("=")
    if unit.strip() != "bytes":
        return []
    out = []
    for spec in specs.split(","):
        first, _, last = spec.strip().partition("-")
        if first.isdigit():
            start = int(first)
            end = size if not last else min(size, int(last) + 1)
        elif last.isdigit():
            start, end = max(0, size - int(last)), size
        else:
            continue
        if start < end:
            out.append((start, end))
    return out


class _Line:
    """One line shared by every connection: a body piece is sent when the line has carried
    everything before it at ``rate`` bytes a second (first come, first served)."""

    PIECE = 16 * 1024

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("line_rate must be positive")
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = 0.0  # when the line has carried every piece booked so far

    def book(self, n: int) -> float:
        """Book ``n`` bytes on the line: the moment their sending may end."""
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + n / self.rate
            return self._free_at


class _Gone(Exception):
    """The client went away, or the proxy is stopping."""


class FaultProxy:
    """See the module docstring. ``upstream``: base URL of the real server (http only)."""

    def __init__(self, upstream: str, rules: Collection[Rule] = (), *, lifetime: float = 120.0,
                 idle_timeout: float = 10.0, stall_max: float = 30.0, seed: int = 0,
                 line_rate: float | None = None) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy forwards to a loopback http:// server only")
        self._up_host = parsed.hostname
        self._up_port = parsed.port or 80
        self._up_prefix = parsed.path.rstrip("/")
        self.rules: list[Rule] = list(rules)
        self.lifetime = lifetime
        self.idle_timeout = idle_timeout
        self.stall_max = stall_max
        self._rng = random.Random(seed)
        self._line = _Line(line_rate) if line_rate is not None else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._signed: dict[int, int] = {}  # token -> uses left
        self.requests = 0
        self.bytes_sent = 0  # body bytes written to clients, every request
        self.log: list[Entry] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name="faultproxy-accept")
        self._acceptor.start()

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, end every connection, wait (briefly) for the threads."""
        self._stop.set()
        self._acceptor.join(timeout=5)
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(timeout=5)
        self._listener.close()

    def _stopping(self) -> bool:
        return self._stop.is_set() or time.monotonic() > self._deadline

    def _accept_loop(self) -> None:
        while not self._stopping():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._connection, args=(conn,), daemon=True,
                                 name="faultproxy-conn")
            with self._lock:
                self._conns.add(conn)
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()
        self._stop.set()

    # -- counters -----------------------------------------------------------------------------

    def body_bytes(self, pred: Callable[[Entry], bool] = lambda e: True) -> int:
        """Body bytes sent for the requests ``pred`` selects."""
        with self._lock:
            return sum(e.body_bytes for e in self.log if pred(e))

    def entries(self, path: str | None = None) -> list[Entry]:
        with self._lock:
            return [e for e in self.log if path is None or re.search(path, e.path)]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no client connection is open (a killed client's included); False if
        some still are after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    return True
            time.sleep(0.02)
        return False

    def reset_counters(self) -> None:
        with self._lock:
            self.requests = 0
            self.bytes_sent = 0
            self.log = []
            for r in self.rules:
                r.hits = 0

    # -- one connection -------------------------------------------------------------------------

    def _connection(self, conn: socket.socket) -> None:
        conn.settimeout(self.idle_timeout)
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every response.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while not self._stopping():
                head, buf = self._read_head(conn, buf)
                if head is None:
                    return
                request = self._parse(head)
                if request is None:
                    self._send(conn, None, 400, [], b"bad request\n")
                    return
                if not self._handle(conn, request):
                    return
                if request.headers.get("connection", "").lower() == "close":
                    return  # the client reads until the connection ends (zsync does)
        except (_Gone, OSError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _read_head(self, conn: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEAD or self._stopping():
                return None, b""
            try:
                data = conn.recv(65536)
            except (TimeoutError, OSError):
                return None, b""
            if not data:
                return None, b""
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _parse(self, head: bytes) -> _Request | None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            return None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        with self._lock:
            self.requests += 1
            number = self.requests
        if parts[2] == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"  # HTTP/1.0 closes unless asked not to
        return _Request(number, parts[0], parts[1], headers)

    def _match(self, req: _Request) -> Rule | None:
        path = urllib.parse.urlsplit(req.path).path
        n_ranges = len((req.range or "").split(",")) if req.range else 0
        with self._lock:
            for rule in self.rules:
                if rule.path is not None and not re.search(rule.path, path):
                    continue
                if rule.requests is not None and req.number not in rule.requests:
                    continue
                if rule.ranged is not None and rule.ranged != (n_ranges > 0):
                    continue
                if rule.multi is not None and rule.multi != (n_ranges > 1):
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                rule.hits += 1
                return rule
        return None

    # -- upstream -------------------------------------------------------------------------------

    def _upstream(self, path: str, range_header: str | None
                  ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=30)
        try:
            headers = {"Accept-Encoding": "identity"}
            if range_header:
                headers["Range"] = range_header
            conn.request("GET", self._up_prefix + path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            keep = ("content-type", "content-range", "accept-ranges", "etag", "last-modified",
                    "location")
            hdrs = [(k, v) for k, v in resp.getheaders() if k.lower() in keep]
            return resp.status, hdrs, body
        finally:
            conn.close()

    # -- answering ------------------------------------------------------------------------------

    def _handle(self, conn: socket.socket, req: _Request) -> bool:
        """Answer one request; False when the connection must end."""
        path = req.path
        if path.startswith(SIGNED):
            token_s, _, rest = path[len(SIGNED):].partition("/")
            with self._lock:
                left = self._signed.get(int(token_s), 0) if token_s.isdigit() else 0
                if left > 0:
                    self._signed[int(token_s)] = left - 1
            gone = next((r.gone for r in self.rules if r.fault == "redirect"), 403)
            if left <= 0:
                return self._send(conn, req, gone, [], b"expired\n", fault="expired")
            path = "/" + rest
            status, headers, body = self._upstream(path, req.range)
            return self._send(conn, req, status, headers, body, fault="signed")

        rule = self._match(req)
        fault = rule.fault if rule is not None else "pass"
        if rule is not None and fault == "delay":
            self._stop.wait(rule.delay)
            fault = "pass"
        if rule is None or fault == "pass":
            status, headers, body = self._upstream(path, req.range)
            return self._send(conn, req, status, headers, body)
        assert rule is not None

        if fault in ("silent", "head_trickle"):
            return self._crawl_head(conn, req, rule)
        if fault == "status":
            extra = [] if rule.retry_after is None else [("Retry-After", rule.retry_after)]
            return self._send(conn, req, rule.status, extra, b"", fault=fault)
        if fault == "redirect":
            with self._lock:
                token = len(self._signed) + 1
                self._signed[token] = rule.uses
            location = f"{self.url}{SIGNED}{token}{path}"
            return self._send(conn, req, 302, [("Location", location)], b"", fault=fault)

        if fault in ("full200", "first_range", "multipart_lie", "416") and req.range:
            status, headers, whole = self._upstream(path, None)
            if status != 200:
                return self._send(conn, req, status, headers, whole)
            size = len(whole)
            ranges = req.ranges(size)
            ctype = [(k, v) for k, v in headers if k.lower() == "content-type"]
            if fault == "full200":
                extra = [] if rule.accept_ranges is None else [("Accept-Ranges",
                                                                rule.accept_ranges)]
                return self._send(conn, req, 200, ctype + extra, whole, fault=fault)
            if fault == "416":
                return self._send(conn, req, 416, [("Content-Range", f"bytes */{size}")], b"",
                                  fault=fault)
            if fault == "first_range" and len(ranges) > 1:
                a, b = ranges[0]
                cr = ("Content-Range", f"bytes {a}-{b - 1}/{size}")
                return self._send(conn, req, 206, [*ctype, cr], whole[a:b], fault=fault)
            if fault == "multipart_lie":
                return self._lie(conn, req, rule, whole, ranges, ctype)
        status, headers, body = self._upstream(path, req.range)
        if fault == "flip" and body:
            body = bytearray(body)
            with self._lock:
                spots = [self._rng.randrange(len(body)) for _ in range(rule.flips)]
            for i in spots:
                body[i] ^= 0xFF
            body = bytes(body)
        if fault in ("reset", "truncate"):
            return self._send(conn, req, status, headers, body, fault=fault,
                              cut=int(len(body) * rule.at), rst=fault == "reset")
        if fault in ("stall", "trickle"):
            return self._send(conn, req, status, headers, body, fault=fault,
                              rate=0.0 if fault == "stall" else rule.rate, crawl=True)
        if fault == "throttle":
            return self._send(conn, req, status, headers, body, fault=fault, rate=rule.rate)
        return self._send(conn, req, status, headers, body, fault=fault)

    def _crawl_head(self, conn: socket.socket, req: _Request, rule: Rule) -> bool:
        """``silent`` and ``head_trickle``: nothing, or the real head at ``rule.rate`` bytes a
        second, until the client gives up or ``stall_max`` passes."""
        head = b""
        status = 0
        if rule.fault == "head_trickle":
            status, headers, body = self._upstream(req.path, req.range)
            reason = http.client.responses.get(status, "Unknown")
            lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
            lines += [f"{k}: {v}" for k, v in headers if k.lower() != "content-length"]
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        with self._lock:
            self.log.append(Entry(req.number, req.path, req.range, rule.fault, status))
        rate = rule.rate if rule.fault == "head_trickle" else 0.0
        self._paced(conn, head, rate, None, time.monotonic() + self.stall_max)
        return False

    def _lie(self, conn: socket.socket, req: _Request, rule: Rule, whole: bytes,
             ranges: list[tuple[int, int]], ctype: list[tuple[str, str]]) -> bool:
        size = len(whole)
        lie = rule.lie
        if lie == "single_wrong_range" or len(ranges) < 2:
            if lie != "single_wrong_range" or not ranges:
                status, headers, body = self._upstream(req.path, req.range)
                return self._send(conn, req, status, headers, body, fault="pass")
            a, b = ranges[0]
            la = min(max(0, a + rule.shift), size - (b - a))
            cr = ("Content-Range", f"bytes {la}-{la + b - a - 1}/{size}")
            return self._send(conn, req, 206, [*ctype, cr], whole[a:b], fault=lie)
        boundary = "faultproxy0123456789"
        datas = [whole[a:b] for a, b in ranges]
        labels = list(ranges)
        if lie == "wrong_range":
            a, b = labels[0]
            la = min(max(0, a + rule.shift), size - (b - a))
            labels[0] = (la, la + b - a)
        elif lie == "long_part":
            datas[0] = datas[0] + b"\0" * 10
        elif lie == "short_part":
            datas[0] = datas[0][:-10] if len(datas[0]) > 10 else b""
        elif lie == "split_reversed":
            halves = [((a + b) // 2, b) for a, b in ranges if b - a > 1]
            halves += [(a, (a + b) // 2) if b - a > 1 else (a, b) for a, b in ranges]
            labels, datas = halves, [whole[a:b] for a, b in halves]
        elif lie == "swap":
            n = min(len(datas[0]), len(datas[1]))
            datas[0], datas[1] = datas[1][:n] + datas[0][n:], datas[0][:n] + datas[1][n:]
        out = bytearray()
        body_boundary = "notthesameboundary42" if lie == "bad_boundary" else boundary
        for i, ((a, b), data) in enumerate(zip(labels, datas, strict=True)):
            if i:
                out += b"\r\n"
            out += (f"--{body_boundary}\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Range: bytes {a}-{b - 1}/{size}\r\n\r\n").encode()
            out += data
        if lie != "no_close":
            out += f"\r\n--{body_boundary}--\r\n".encode()
        headers = [("Content-Type", f"multipart/byteranges; boundary={boundary}")]
        return self._send(conn, req, 206, headers, bytes(out), fault=lie)

    def _send(self, conn: socket.socket, req: _Request | None, status: int,
              headers: list[tuple[str, str]], body: bytes, *, fault: str = "pass",
              cut: int | None = None, rst: bool = False, rate: float | None = None,
              crawl: bool = False) -> bool:
        """Write one response. ``cut``: stop after that many body bytes (RST if ``rst``, else
        FIN). ``rate``: pace the body (bytes/s; 0 sends none). ``crawl``: a stall or trickle,
        bounded by ``stall_max``. Returns whether the connection may be reused."""
        entry = None
        if req is not None:
            entry = Entry(req.number, req.path, req.range, fault, status)
            with self._lock:
                self.log.append(entry)
        reason = http.client.responses.get(status, "Unknown")
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() != "content-length"]
        if req is not None and req.method == "HEAD":
            body = b""
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        send = body if cut is None else body[:cut]
        deadline = time.monotonic() + self.stall_max if crawl else None
        if rate is None:
            self._write(conn, send, entry)
        else:
            self._paced(conn, send, rate, entry, deadline)
            if crawl:  # stalled or trickled until the deadline or the client gave up
                return False
        if cut is not None:
            if rst:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.shutdown(socket.SHUT_WR)
            return False
        return True

    def _write(self, conn: socket.socket, data: bytes, entry: Entry | None) -> None:
        view = memoryview(data)
        line = self._line
        step = 64 * 1024 if line is None else _Line.PIECE
        for i in range(0, len(view), step):
            if self._stopping():
                raise _Gone
            if line is not None:
                wait = line.book(min(step, len(view) - i)) - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    raise _Gone
            conn.sendall(view[i:i + step])
            self._count(entry, min(step, len(view) - i))

    def _paced(self, conn: socket.socket, data: bytes, rate: float, entry: Entry | None,
               deadline: float | None) -> None:
        """Send ``data`` at ``rate`` bytes a second (none at all when 0), watching for the
        client closing the connection and for ``deadline``."""
        tick = 0.05
        step = max(1, int(rate * tick)) if rate > 0 else 0
        credit = 0.0
        pos = 0
        last = time.monotonic()
        while pos < len(data) or (rate == 0 and deadline is not None):
            now = time.monotonic()
            if self._stopping() or (deadline is not None and now > deadline):
                raise _Gone
            readable, _, _ = select.select([conn], [], [], tick)
            if readable:
                if not conn.recv(1, socket.MSG_PEEK):
                    raise _Gone  # the client closed: a timeout worked
                time.sleep(tick)  # a pipelined request waits; do not spin on it
            if rate <= 0:
                continue
            credit += (time.monotonic() - last) * rate
            last = time.monotonic()
            n = min(len(data) - pos, int(credit), max(step, 1) * 4)
            if n <= 0:
                continue
            conn.sendall(data[pos:pos + n])
            self._count(entry, n)
            credit -= n
            pos += n

    def _count(self, entry: Entry | None, n: int) -> None:
        with self._lock:
            self.bytes_sent += n
            if entry is not None:
                entry.body_bytes += n
