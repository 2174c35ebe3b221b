"""httpx at the boundary, and the only module that imports it: the clients stitch makes,
the imports they need (and the ones they do not), URL parsing, the translation of every httpx
exception into ``core.errors``, and the header checks every response gets.
``core.http.fetcher`` builds on it and uses httpx's objects only through the names below.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from core.errors import DownloadError, HTTPStatusError, NetworkError, RangeError

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
        if not exc.url:  # from core.multipart, which knows no URLs
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
    return httpx.Client(
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
