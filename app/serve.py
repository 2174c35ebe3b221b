"""``stitch serve REPO_DIR``: a small range-capable static file server for a LAN or a mirror.

Owns: serving the files under one folder over HTTP/1.1 with GET and HEAD, byte ranges
(single → 206, several → ``multipart/byteranges``, suffix ``-500`` and open ``500-`` forms,
416 for unsatisfiable ones, a cap on how many like nginx's ``max_ranges``), an autoindex-style
listing for folders, and refusing every path that resolves outside the folder (``..``,
encoded ``%2e%2e``, symlinks pointing out). Files are streamed in blocks; nothing is read
whole into memory. A client that sends or reads nothing for ``idle_timeout`` seconds is
disconnected (idle keep-alive, a stalled request, a reader that stopped reading), as is one
whose request line and headers take longer than ``header_timeout`` (sent a byte at a time),
and at most ``max_connections`` connections are served at once: one more is answered ``503``
with ``Retry-After`` and closed, so a crowd of players cannot make the server start threads
without bound.

Leaves out: TLS, authentication, compression, caching headers beyond ETag/Last-Modified, and
anything about stitch's formats: the repository is plain files and this server does not
know what they mean. Uses only the standard library (``http.server``).
"""

from __future__ import annotations

import errno
import html
import io
import mimetypes
import os
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

BLOCK = 256 * 1024  # bytes read and written at a time
MAX_RANGES = 200  # more ranges than this in one request: answer 200 with the whole file
MAX_RANGE_HEADER = 16 * 1024  # a longer Range header is ignored (whole file)
IDLE_TIMEOUT = 60.0  # seconds a connection may send or take nothing (nginx: 60 s)
HEADER_TIMEOUT = 60.0  # seconds for a request line and headers, from the request's start
MAX_CONNECTIONS = 256  # connections served at once; one more is answered 503
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n")


class StitchServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that serves ``repo_dir`` and counts body bytes sent.

    ``idle_timeout``: seconds a connection may go without sending or taking a byte before it
    is closed. ``header_timeout``: seconds from the start of a request (a kept-alive
    connection's wait for the next one included) to the end of its headers.
    ``max_connections``: connections (threads) served at once."""

    daemon_threads = True  # a slow client never blocks shutdown

    def __init__(
        self,
        address: tuple[str, int],
        repo_dir: Path,
        *,
        quiet: bool = False,
        max_ranges: int = MAX_RANGES,
        idle_timeout: float = IDLE_TIMEOUT,
        header_timeout: float = HEADER_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        if not (idle_timeout > 0 and header_timeout > 0 and max_connections >= 1):
            raise ValueError("timeouts must be > 0 and max_connections >= 1")
        self.repo_dir = repo_dir.resolve(strict=True)
        self.quiet = quiet
        self.max_ranges = max_ranges
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.bytes_sent = 0  # body bytes, all requests (tests assert traffic with it)
        self.requests = 0
        self.refused = 0  # connections answered 503 because max_connections were busy
        self._count_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """Start a thread for the connection if a slot is free, else answer 503 and close."""
        if not self._slots.acquire(blocking=False):
            with self._count_lock:
                self.refused += 1
            try:
                request.settimeout(1.0)
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def count(self, sent: int, requests: int = 0) -> None:
        with self._count_lock:
            self.bytes_sent += sent
            self.requests += requests

    def handle_error(self, request: object, client_address: object) -> None:
        # A client closing a kept-alive connection is routine, not worth a traceback; nor is
        # one that stopped reading for idle_timeout (the handler's socket timeout).
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class _DeadlineReader(io.RawIOBase):
    """The handler's socket as a raw stream whose reads stop at its header deadline: a
    client sending a byte just before each idle timeout cannot hold a connection forever."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._handler.recv_into(buffer)


def parse_range(value: str, size: int, max_ranges: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges of a ``Range`` header as half-open ``(start, end)``.

    ``None`` means "ignore the header and send the whole file" (not ``bytes``, malformed, or
    more than ``max_ranges`` ranges, as RFC 9110 allows); ``[]`` means none is satisfiable
    (416).
    """
    unit, sep, specs = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or len(value) > MAX_RANGE_HEADER:
        return None
    parts = [p.strip() for p in specs.split(",")]
    parts = [p for p in parts if p]  # RFC 9110 allows empty list elements
    if not parts or len(parts) > max_ranges:
        return None
    out = []
    for spec in parts:
        first, dash, last = spec.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
            return None
        if first == "":
            if last == "":
                return None
            suffix = int(last)
            if suffix > 0 and size > 0:
                out.append((max(0, size - suffix), size))
            continue
        start = int(first)
        end = size if last == "" else int(last) + 1
        if last != "" and end <= start:
            return None  # last < first: the whole header is invalid
        if start < size:
            out.append((start, min(end, size)))
    return out


class _Handler(BaseHTTPRequestHandler):
    server: StitchServer
    protocol_version = "HTTP/1.1"  # keep-alive: fetchers reuse connections
    # Headers and body go out in separate writes; with Nagle on, each response then waits
    # for the client's delayed ACK (40 ms a request on Linux).
    disable_nagle_algorithm = True
    server_version = "stitch-serve"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)  # every recv and send
        self._deadline = float("inf")  # for the request line and headers
        self.rfile = io.BufferedReader(_DeadlineReader(self))

    def handle_one_request(self) -> None:
        self._deadline = time.monotonic() + self.server.header_timeout
        super().handle_one_request()

    def recv_into(self, buffer: memoryview) -> int:
        """One ``recv`` for ``rfile``, timing out at the header deadline or when idle."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request headers took too long")
        self.connection.settimeout(min(self.server.idle_timeout, left))
        return int(self.connection.recv_into(buffer))

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- paths ------------------------------------------------------------------------------

    def _local_path(self) -> Path | None:
        """The file or folder the request names, or None (after sending 403/404)."""
        raw = urllib.parse.urlsplit(self.path).path
        path = urllib.parse.unquote(raw, errors="strict") if "%" in raw else raw
        segments = [s for s in path.split("/") if s not in ("", ".")]
        # Backslashes and colons would be separators or drive letters on Windows.
        bad = ("\\", "\0", ":") if os.name == "nt" else ("\0",)
        if any(s == ".." or any(b in s for b in bad) for s in segments):
            self.send_error(HTTPStatus.FORBIDDEN)
            return None
        root = self.server.repo_dir
        try:
            resolved = root.joinpath(*segments).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a bad name
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        if not resolved.is_relative_to(root):  # a symlink pointing out of the folder
            self.send_error(HTTPStatus.FORBIDDEN)
            return None
        return resolved

    # -- responses --------------------------------------------------------------------------

    def _serve(self, head: bool) -> None:
        self._deadline = float("inf")  # the headers are in; sending is bounded by idle_timeout
        self.connection.settimeout(self.server.idle_timeout)
        self.server.count(0, requests=1)
        try:
            try:
                path = self._local_path()
            except UnicodeDecodeError:
                self.send_error(HTTPStatus.BAD_REQUEST)
                return
            if path is None:
                return
            if path.is_dir():
                self._listing(path, head)
            elif path.is_file():
                self._file(path, head)
            else:
                self.send_error(HTTPStatus.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away or stopped reading

    def _listing(self, folder: Path, head: bool) -> None:
        url_path = urllib.parse.urlsplit(self.path).path
        if not url_path.endswith("/"):
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", url_path + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        title = html.escape(urllib.parse.unquote(url_path))
        lines = [
            "<!DOCTYPE html>",
            f"<html><head><meta charset='utf-8'><title>Index of {title}</title></head>",
            f"<body><h1>Index of {title}</h1><hr><pre>",
        ]
        if url_path != "/":
            lines.append('<a href="../">../</a>')
        try:
            entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        except OSError:
            self.send_error(HTTPStatus.FORBIDDEN)
            return
        for entry in entries:
            try:
                if not entry.resolve().is_relative_to(self.server.repo_dir):
                    continue  # would be refused anyway; do not advertise it
                name = entry.name + ("/" if entry.is_dir() else "")
                size = "-" if entry.is_dir() else str(entry.stat().st_size)
            except OSError:
                continue
            href = urllib.parse.quote(name)
            lines.append(f'<a href="{href}">{html.escape(name)}</a>  {size}')
        lines.append("</pre><hr></body></html>\n")
        body = "\n".join(lines).encode("utf-8")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
            self.server.count(len(body))

    def _file(self, path: Path, head: bool) -> None:
        try:
            f = path.open("rb")
        except OSError:
            self.send_error(HTTPStatus.FORBIDDEN)
            return
        with f:
            st = os.fstat(f.fileno())
            size = st.st_size
            etag = f'"{st.st_mtime_ns:x}-{size:x}"'
            last_modified = formatdate(st.st_mtime, usegmt=True)
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            ranges = None
            header = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if header is not None and (if_range is None or if_range in (etag, last_modified)):
                ranges = parse_range(header, size, self.server.max_ranges)
            if ranges == []:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(HTTPStatus.OK if ranges is None else HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            if ranges is None or len(ranges) == 1:
                start, end = (0, size) if ranges is None else ranges[0]
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(end - start))
                if ranges is not None:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                self.end_headers()
                if not head:
                    self._copy(f, start, end)
                return
            self._multipart(f, ranges, size, ctype, head)

    def _multipart(
        self, f: BinaryIO, ranges: list[tuple[int, int]], size: int, ctype: str, head: bool
    ) -> None:
        boundary = secrets.token_hex(16)
        heads = [
            (
                f"--{boundary}\r\nContent-Type: {ctype}\r\n"
                f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n"
            ).encode("ascii")
            for start, end in ranges
        ]
        heads = [heads[0]] + [b"\r\n" + h for h in heads[1:]]
        tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        length = sum(len(h) for h in heads) + sum(e - s for s, e in ranges) + len(tail)
        self.send_header("Content-Type", f"multipart/byteranges; boundary={boundary}")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            return
        for part_head, (start, end) in zip(heads, ranges, strict=True):
            self.wfile.write(part_head)
            if not self._copy(f, start, end):
                return
        self.wfile.write(tail)

    def _copy(self, f: BinaryIO, start: int, end: int) -> bool:
        """Stream ``[start, end)`` of ``f``; False if the file ended early."""
        f.seek(start)
        pos = start
        while pos < end:
            block = f.read(min(BLOCK, end - pos))
            if not block:  # the file shrank under us: drop the connection, never pad
                self.close_connection = True
                return False
            self.wfile.write(block)
            self.server.count(len(block))
            pos += len(block)
        return True


def make_server(
    repo_dir: Path | str,
    bind: str = "127.0.0.1",
    port: int = 0,
    *,
    quiet: bool = False,
    max_ranges: int = MAX_RANGES,
    idle_timeout: float = IDLE_TIMEOUT,
    header_timeout: float = HEADER_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> StitchServer:
    """A server for ``repo_dir`` bound to ``bind:port`` (0 = any free port; see
    ``server_address``), not yet serving. Raises ``OSError`` if the folder is missing or the
    address is taken."""
    return StitchServer((bind, port), Path(repo_dir), quiet=quiet, max_ranges=max_ranges,
                        idle_timeout=idle_timeout, header_timeout=header_timeout,
                        max_connections=max_connections)


def serve_forever(server: StitchServer) -> None:
    """Serve until Ctrl+C, then close the socket."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def listen_problem(exc: OSError, bind: str, port: int) -> str:
    """The one-line reason ``make_server`` could not listen on ``bind:port``."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {bind} is in use (stop what holds it, or choose --port)"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"--bind {bind}: not an address of this machine ({exc.strerror or exc})"
    return f"cannot listen on {bind}:{port}: {exc.strerror or exc}"


def run(repo_dir: Path, bind: str = "127.0.0.1", port: int = 8080, *, quiet: bool = False) -> int:
    """Serve ``repo_dir`` until Ctrl+C, printing the URL. Returns the process exit code:
    2 (bad arguments, README's table) when REPO is not a folder or ``bind:port`` cannot be
    listened on (in use, privileged, not an address here)."""
    if not repo_dir.is_dir():
        print(f"stitch serve: REPO {repo_dir}: not a folder", file=sys.stderr)
        return 2
    try:
        server = make_server(repo_dir, bind, port, quiet=quiet)
    except OSError as exc:
        print(f"stitch serve: {listen_problem(exc, bind, port)}", file=sys.stderr)
        return 2
    print(f"serving {server.repo_dir} on {server.url} (Ctrl+C to stop)", flush=True)
    serve_forever(server)
    return 0

