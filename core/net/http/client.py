"""httpx at the boundary, and the only module that imports it: the clients stitch makes,
the imports they need (and the ones they do not), URL parsing, the translation of every httpx
exception into ``core.errors``, and the header checks every response gets.
``core.net.http.session`` and ``core.net.http.fetcher`` build on it and use httpx's objects only
through the names below.
"""

from __future__ import annotations

import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from core.errors import DownloadError, HTTPStatusError, NetworkError, RangeError
from core.net.http.deadline import POLL, current

if TYPE_CHECKING:
    import httpcore

_T = TypeVar("_T")

# The httpx types the fetcher handles (a client per origin, streamed responses, and the
# transport tests put in place of the network).
Client = httpx.Client
Response = httpx.Response
Transport = httpx.BaseTransport


def translate_error(exc: Exception, url: str) -> DownloadError:
    """The stitch error for an httpx exception (the one place this mapping lives)."""
    message = f"{url}: {str(exc) or type(exc).__name__}"
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return HTTPStatusError(message, url=url, status_code=code)
    if isinstance(exc, httpx.TooManyRedirects):
        return HTTPStatusError(f"{url}: too many redirects", url=url, status_code=0)
    if isinstance(exc, httpx.DecodingError):
        # A body that does not decode (bad gzip, bad chunking) is a broken transfer.
        return NetworkError(f"{url}: response could not be decoded: {exc}", url=url)
    # TransportError (timeouts, connect/read/write errors, protocol, proxy, unsupported
    # scheme), InvalidURL, CookieConflict and the StreamError family (which only a bug of
    # ours could raise) all mean "the transfer did not happen".
    return NetworkError(message, url=url)


HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict, httpx.StreamError)


def import_httpcore() -> None:
    """Import httpcore (httpx's transport) without the packages it loads eagerly only in case
    they are wanted: h2 (HTTP/2, used only over TLS, where httpx imports it itself) and anyio
    (async clients; stitch's are threads). httpcore is written to work without either, and
    imports its HTTP/2 connection again when a TLS server offers HTTP/2. Measured: 20-25 ms
    of a 0.2 s update over plain HTTP, whose client never speaks HTTP/2."""
    if "httpcore" in sys.modules:
        return
    held = [name for name in ("h2", "anyio") if name not in sys.modules]
    for name in held:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import httpcore  # noqa: F401
    finally:
        for name in held:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Re-raise any httpx exception as its stitch error (and give URL-less stitch errors the
    URL); everything else, a sink's exception included, passes unchanged."""
    try:
        yield
    except HTTPX_ERRORS as exc:
        raise translate_error(exc, url) from exc
    except DownloadError as exc:
        if not exc.url:  # from core.net.multipart, which knows no URLs
            exc.url = url
        raise


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``. Must run inside ``translate_errors``."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def new_client(http2: bool, tls: ssl.SSLContext, read_timeout: float, connect_timeout: float,
               user_agent: str, connections: int, transport: Transport | None) -> Client:
    """A client for one origin: proxies from the environment, redirects followed, up to
    ``connections`` kept alive. Must run inside ``translate_errors``."""
    import_httpcore()
    client = httpx.Client(
        http2=http2,
        verify=tls,
        trust_env=True,  # proxies from the environment
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        follow_redirects=True,
        headers={"User-Agent": user_agent},
        limits=httpx.Limits(max_connections=connections * 2,
                            max_keepalive_connections=connections),
        transport=transport,
    )
    guard_sockets(client)
    return client


# -- sockets that a cancel or a deadline can interrupt -------------------------------------------
#
# httpx's sync client blocks in ``recv`` for up to its read timeout, and every byte that
# arrives starts that timeout again. So the socket reads of every connection stitch opens go
# through ``_GuardedStream``: it reads in slices of at most ``POLL`` seconds and, between
# two slices, lets the calling thread's ``RequestGuard`` (``core.net.http.deadline``) raise:
# a cancel, the headers' deadline, a silent or trickling body. A slice that times out has
# consumed nothing (plain and TLS sockets alike resume where they were), so the reads the
# HTTP layer sees are exactly as without the guard. Connecting and the TLS handshake are
# single calls that cannot be resumed: they run on a helper thread the request waits for
# in the same slices, and a connection given up on is closed as soon as it is made.


def guard_sockets(client: Client) -> bool:
    """Route the network I/O of ``client``'s connection pools (direct and through proxies)
    through guarded streams. httpx has no public hook for its network backend: this sets
    the ``network_backend`` httpcore's pools take, on the pools httpx made. Returns whether
    any pool was found (False with a test transport). Should httpx move these attributes,
    clients keep httpx's own timeouts only, and tests/test_deadlines.py fails."""
    found = False
    transports: list[object] = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            continue
        found = True
        if not isinstance(backend, _GuardedBackend):
            pool._network_backend = _GuardedBackend(backend)  # type: ignore[union-attr]
    return found


def _interruptible(call: Callable[[], _T], close: Callable[[_T], None]) -> _T:
    """``call()`` on a helper thread, waited for in ``POLL`` slices so the current guard can
    raise meanwhile; a result that comes after the caller gave up is ``close``d."""
    guard = current()
    if guard is None:
        return call()
    box: dict[str, Any] = {}
    lock = threading.Lock()
    done = threading.Event()

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
        with lock:
            done.set()
            if "abandoned" in box and "result" in box:
                close(box["result"])

    threading.Thread(target=run, name="stitch-connect", daemon=True).start()
    try:
        while not done.wait(POLL):
            guard.check()
    except BaseException:
        with lock:
            box["abandoned"] = True
            if done.is_set() and "result" in box:
                close(box["result"])
        raise
    if "error" in box:
        raise box["error"]
    result: _T = box["result"]
    return result


def _close_stream(stream: httpcore.NetworkStream) -> None:
    with suppress(Exception):  # a connection nobody waits for any more
        stream.close()


class _GuardedStream:
    """A ``httpcore.NetworkStream`` whose reads the current guard can interrupt."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        guard = current()
        if guard is None:
            return self._inner.read(max_bytes, timeout)
        import httpcore

        give_up = None if timeout is None else time.monotonic() + timeout
        while True:
            guard.between()  # a pause holds the reading here at once, a cancel raises
            now = time.monotonic()
            step = min(POLL, guard.wait_until() - now)
            if give_up is not None:
                if now >= give_up:
                    raise httpcore.ReadTimeout(f"no data for {timeout:g} s")
                step = min(step, give_up - now)
            try:
                return self._inner.read(max_bytes, max(step, 0.001))
            except httpcore.ReadTimeout:
                guard.check()  # nothing consumed: look at the guard, then read on

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        guard = current()
        if guard is not None:
            guard.check()
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> _GuardedStream:
        inner = _interruptible(
            lambda: self._inner.start_tls(ssl_context, server_hostname, timeout),
            _close_stream)
        return _GuardedStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend:
    """A ``httpcore.NetworkBackend`` making ``_GuardedStream``s."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> _GuardedStream:
        stream = _interruptible(
            lambda: self._inner.connect_tcp(host, port, timeout, local_address,
                                            socket_options),
            _close_stream)
        return _GuardedStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> _GuardedStream:
        return _GuardedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def content_length(resp: Response, url: str) -> int | None:
    """The response's Content-Length (None: not sent); ``RangeError`` if it is malformed."""
    value = resp.headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit() or len(value.strip()) > 19:
        raise RangeError(f"{url}: bad Content-Length {value[:40]!r}", url=url)
    return int(value)


def check_identity(resp: Response, url: str) -> None:
    """``RangeError`` unless the body is sent as is (no Content-Encoding)."""
    # Byte offsets only mean something in the file itself, never in a compressed rendition.
    # (With identity checked, ``iter_bytes`` yields the body exactly as sent.)
    encoding = resp.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise RangeError(f"{url}: range answered with Content-Encoding {encoding}", url=url)
