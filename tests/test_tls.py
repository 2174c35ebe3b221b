"""TLS through the real fetcher: a loopback HTTPS server with a self-signed certificate.

The client's trust store is loaded on the first handshake (``core.net.tls``), so these tests
check that verification is still on (an unknown certificate is refused), that the store is
the OS's (``SSL_CERT_FILE`` is honoured, as OpenSSL documents), and that plain HTTP loads
nothing.
"""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import NetworkError
from core.net.http import HttpFetcher
from core.net.tls import LazyTrustContext
from tests.conftest import REPO_ROOT, self_signed

BODY = bytes(range(256)) * 64


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/file", cert
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_certificate_is_refused(https_server: tuple[str, Path],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url, _ = https_server
    empty = tmp_path / "empty-store.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    fetcher = HttpFetcher(attempts=1)
    try:
        with pytest.raises(NetworkError, match="CERTIFICATE"):
            fetcher.fetch(url, 1 << 20)
    finally:
        fetcher.close()


def test_certificate_in_the_os_store_is_trusted(https_server: tuple[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    fetcher = HttpFetcher(attempts=1)
    try:
        assert fetcher.fetch(url, 1 << 20) == BODY
    finally:
        fetcher.close()


def test_trust_store_loads_on_first_handshake_only() -> None:
    ctx = LazyTrustContext()
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 0
    ctx._load_trust()
    loaded = ctx.cert_store_stats()
    ctx._load_trust()
    assert ctx.cert_store_stats() == loaded


def test_plain_http_loads_no_trust_store(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(BODY)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        lambda *a: _Handler(*a))  # type: ignore[no-untyped-call]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fetcher = HttpFetcher(attempts=1)
    try:
        assert fetcher.fetch(f"http://127.0.0.1:{server.server_address[1]}/f", 1 << 20) == BODY
        assert fetcher._tls().cert_store_stats()["x509_ca"] == 0
    finally:
        fetcher.close()
        server.shutdown()
        server.server_close()


_TWO_ORIGINS = """
import sys
from core.net.http import HttpFetcher
plain, tls = sys.argv[1:]
fetcher = HttpFetcher(attempts=1)
assert fetcher.fetch(plain, 1 << 20) == bytes(range(256)) * 64
print("plain", *[m for m in ("h2", "anyio") if m in sys.modules])
assert fetcher.fetch(tls, 1 << 20) == bytes(range(256)) * 64
print("tls", *[m for m in ("h2", "anyio") if m in sys.modules])
fetcher.close()
"""


def test_plain_http_skips_http2_imports_and_tls_still_speaks_http2(
        tmp_path: Path, nginx, www: Path) -> None:  # type: ignore[no-untyped-def]
    """A plain-HTTP client imports no HTTP/2 or async machinery (``core.net.http``), and a TLS
    origin in the same process still gets HTTP/2 from real nginx."""
    root = www
    (root / "f").write_bytes(BODY)
    cert, key = self_signed(tmp_path)
    plain, tls = nginx(root), nginx(root, tls=(cert, key))
    env = {**os.environ, "SSL_CERT_FILE": str(cert)}
    out = subprocess.run([sys.executable, "-c", _TWO_ORIGINS, f"{plain.url}/f", f"{tls.url}/f"],
                         capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["plain", "tls h2"]
    assert [line.split('"')[1] for line in plain.log_lines()] == ["GET /f HTTP/1.1"]
    assert [line.split('"')[1] for line in tls.log_lines()] == ["GET /f HTTP/2.0"]
