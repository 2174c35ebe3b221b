"""Shared fixtures: test vectors, generated game releases, and real servers on loopback
(``stitch serve``, nginx from Debian's package, and Python's ``http.server`` which ignores
Range headers)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.demo import make_game
from app.serve import make_server
from core.net.fetcher import MemoryFetcher

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS = REPO_ROOT / "tests" / "vectors"  # golden vectors: tests/vectors/README.md
IN_CI = os.environ.get("CI") == "true"


def _under_wine() -> bool:
    """Windows CPython running under wine (tests/windows/run), not on Windows itself."""
    if sys.platform != "win32":
        return False
    import ctypes

    try:
        return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")
    except OSError:
        return False


UNDER_WINE = _under_wine()

# Under wine, CreateProcess now and then fails before the child exists with
# ERROR_INTERNAL_ERROR (WinError 1359): once in the Windows suite's ~800 tests (2026-12-03,
# test_hostile's CLI run; the same test passed in the run before). A wine fault, not the
# program's: a process start that meets it is tried again, twice at most. ``Popen``
# closes both ends of its pipes when the start fails, so starting again is clean.
_WINE_CREATEPROCESS_FAULT = 1359


def _popen_retrying_wine_fault() -> None:
    start = subprocess.Popen.__init__

    def init(self: subprocess.Popen[bytes], *args: object, **kwargs: object) -> None:
        for attempt in range(3):
            try:
                start(self, *args, **kwargs)  # type: ignore[arg-type]
                return
            except OSError as e:
                if getattr(e, "winerror", None) != _WINE_CREATEPROCESS_FAULT or attempt == 2:
                    raise
                time.sleep(0.2)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]


if UNDER_WINE:
    _popen_retrying_wine_fault()

MEM = "mem://repo"


def pytest_configure(config: pytest.Config) -> None:
    """Under wine, start its desktop process now. Wine starts it (``explorer.exe /desktop``)
    the first time any program asks for the desktop window (a windowed exe, Qt), and that
    process keeps every file descriptor open at that moment: the pipes of a test reading a
    child's output, whose end then never comes (seen twice: a smoke test and a test of the
    console exe hung until pytest-timeout). Asked for now, before any such pipe exists, it
    holds only pytest's own streams. On Windows the desktop is always there: a no-op."""
    if sys.platform == "win32":
        import ctypes

        ctypes.windll.user32.GetDesktopWindow()  # type: ignore[attr-defined]


def need_tool(name: str) -> str:
    """The path of a system tool; in CI a missing tool fails the test instead of skipping."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is None:
        if sys.platform == "win32":  # .ci/run installs Debian's; the Linux suite runs these
            pytest.skip(f"{name}: a Linux program here (Debian's package), not on Windows")
        if IN_CI:
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory: pytest.TempPathFactory,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every process it starts) gets empty per-user folders: remembered
    installs, shortcuts and icons (app/installs.py, app/shortcuts.py) never reach the real
    home of whoever runs the tests."""
    home = tmp_path_factory.mktemp("user")
    for var, sub in (("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CONFIG_HOME", "config"), ("LOCALAPPDATA", "local"),
                     ("APPDATA", "roaming"), ("USERPROFILE", "profile")):
        monkeypatch.setenv(var, str(home / sub))
    # Windows: take the folders from these variables, not from the shell's Known Folders
    # (app/winfolders.py), which would be the real profile; tests/windows/test_winfolders.py
    # asks the shell for real.
    monkeypatch.setenv("STITCH_FOLDERS_FROM_ENV", "1")


@pytest.fixture(scope="session")
def game(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Version 1 and version 2 of the generated demo game (about 7 MB each)."""
    base = tmp_path_factory.mktemp("game")
    return make_game(base / "v1", 1), make_game(base / "v2", 2)


def memory_fetcher(repo: Path, base: str = MEM) -> MemoryFetcher:
    """A MemoryFetcher serving every file of ``repo`` under ``base``."""
    files = {}
    for p in repo.rglob("*"):
        if p.is_file():
            files[f"{base}/{p.relative_to(repo).as_posix()}"] = p.read_bytes()
    return MemoryFetcher(files)


def tree_digest(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but .stitch) with its bytes, for exact comparisons."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".stitch" not in p.relative_to(root).parts
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


@pytest.fixture
def stitch_server(tmp_path: Path) -> Iterator[functools.partial[object]]:
    """Start ``stitch serve`` on a folder: ``start(repo) -> server`` (url in ``.url``)."""
    servers = []

    def start(repo: Path, **kw: object) -> object:
        server = make_server(repo, "127.0.0.1", 0, quiet=True, **kw)  # type: ignore[arg-type]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield functools.partial(start)
    for s in servers:
        s.shutdown()
        s.server_close()


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``tmp``: (cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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


@dataclass
class Nginx:
    url: str
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def bytes_sent(self, since: int = 0) -> int:
        """Sum of ``$bytes_sent`` (headers + body) over log lines from ``since`` on."""
        return sum(int(line.split()[0]) for line in self.log_lines()[since:])


class WwwFactory:
    """Folders a web server's workers, running as another user, can reach: pytest's own
    temporary folders are 0700 (only their owner may enter them), so served files live under
    a 0755 folder of their own in the system's temporary folder, as under /var/www."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="stitch-www-"))
        self.base.chmod(0o755)

    def mktemp(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        path.chmod(0o755)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def www_factory() -> Iterator[WwwFactory]:
    factory = WwwFactory()
    yield factory
    factory.cleanup()


@pytest.fixture
def www(www_factory: WwwFactory) -> Path:
    """An empty folder nginx's unprivileged workers can serve (see ``WwwFactory``)."""
    return www_factory.mktemp("www")


def nginx_worker_user() -> str | None:
    """The ``user`` line of the nginx fixture: as root, workers run as www-data (Debian's
    nginx user) or nobody, as on a server; not root, nginx cannot switch users (None)."""
    if os.geteuid() != 0:
        return None
    import grp  # POSIX only; conftest is imported on Windows too
    import pwd

    for name in ("www-data", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return f"{name} {grp.getgrgid(pw.pw_gid).gr_name}"
    raise RuntimeError("no unprivileged user (www-data, nobody) to run nginx's workers as")


def _check_reachable(root: Path) -> None:
    """Fail early, with the fix, when nginx's workers could not enter ``root``."""
    for d in (root.resolve(), *root.resolve().parents):
        if not d.stat().st_mode & 0o001:
            raise RuntimeError(f"nginx's workers cannot enter {d} (mode "
                               f"{d.stat().st_mode & 0o777:o}): serve a folder made by the "
                               "www or www_factory fixture")


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[functools.partial[Nginx]]:
    """Start nginx (Debian's) serving a folder: ``start(root, max_ranges=64) -> Nginx``.
    Its workers run as an unprivileged user (``nginx_worker_user``), as a server's do: a
    file they may not read is answered 403. ``root`` must be reachable by that user: make it
    with the ``www`` fixture."""
    if sys.platform == "win32":
        pytest.skip("nginx is Debian's, on the Linux side: tests/windows/test_e2e_windows.py "
                    "updates Windows clients from the nginx that tests/windows/run starts")
    binary = need_tool("nginx")
    procs: list[subprocess.Popen[bytes]] = []

    def start(root: Path, max_ranges: int = 64,
              tls: tuple[Path, Path] | None = None) -> Nginx:
        """``tls``: (certificate, key) to serve HTTPS, with HTTP/2 offered."""
        port = free_port()
        prefix = tmp_path / f"nginx-{port}"
        (prefix / "logs").mkdir(parents=True)
        log = prefix / "logs" / "access.log"
        worker = nginx_worker_user()
        if worker is not None:
            _check_reachable(root)
        user = f"user {worker};" if worker is not None else ""
        conf = prefix / "nginx.conf"
        listen = ""
        if tls is not None:
            listen = (f" ssl http2;\n        ssl_certificate {tls[0]};\n"
                      f"        ssl_certificate_key {tls[1]}")
        conf.write_text(f"""
{user}
worker_processes 1;
error_log {prefix}/logs/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    types {{ application/json json; }}
    default_type application/octet-stream;
    log_format bytes '$bytes_sent $status "$request" "$http_range"';
    server {{
        listen 127.0.0.1:{port}{listen};
        root {root};
        autoindex on;
        max_ranges {max_ranges};
        access_log {log} bytes;
    }}
}}
""")
        proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        try:
            wait_port(port)
        except TimeoutError:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise RuntimeError(f"nginx did not start: {err.decode()}") from None
        scheme = "http" if tls is None else "https"
        return Nginx(f"{scheme}://127.0.0.1:{port}", log)

    yield functools.partial(start)
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_server() -> Iterator[functools.partial[str]]:
    """Python's http.server on a folder: a server that ignores Range (always 200)."""
    servers = []

    def start(root: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield functools.partial(start)
    for s in servers:
        s.shutdown()
        s.server_close()


def spec_example(marker: str) -> bytes:
    """The bytes of the hex dump between ``<!-- MARKER -->`` and its code fence's end in
    docs/format.md (each line: decimal offset, hex bytes, comment), offsets checked."""
    text = (REPO_ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    block = re.search(rf"<!-- {re.escape(marker)} -->\n```\n(.*?)```", text, re.S)
    assert block is not None, f"docs/format.md lost its {marker}"
    out = b""
    for line in block.group(1).splitlines():
        offset, hexbytes = line.split()[:2]
        assert int(offset) == len(out), f"{marker}: offset column wrong at {offset}"
        out += bytes.fromhex(hexbytes)
    return out
