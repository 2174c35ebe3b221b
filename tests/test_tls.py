"""TLS through the real fetcher: a loopback HTTPS server with a self-signed certificate.

The client's trust store is loaded on the first handshake (``core.tls``), so these tests
check that verification is still on (an unknown certificate is refused), that the store is
the OS's (``SSL_CERT_FILE`` is honoured, as OpenSSL documents), and that plain HTTP loads
nothing.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.errors import NetworkError
from core.http import HttpFetcher
from core.tls import LazyTrustContext

BODY = bytes(range(256)) * 64


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = _self_signed(tmp_path)
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
