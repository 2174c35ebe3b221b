"""The web servers publishers really use, from Debian's packages, started on loopback the
way a server runs: Apache httpd (event MPM), Caddy, lighttpd, and Varnish (7.1, a cache
like the ones under CDNs) in front of another server. Each gets a free port, a config
written into a folder of its own, its stock range handling, and, when the tests run as
root, unprivileged workers (``www-data``; Varnish's own ``varnish``/``vcache`` users), so a
file the publisher left unreadable fails the test as it would fail players.

Every server writes an access log with the bytes it sent (headers included) per request:
``Server.requests()`` and ``Server.bytes_sent()`` count them, for the tests' assertions and
``docs/benchmarks.md``. A server that does not start raises with its error log.

Fixtures: ``www`` (a folder every worker can read, to publish into), ``apache``, ``caddy``,
``lighttpd``, ``nginx_with`` (each ``start(root, extra="") -> Server``, ``extra`` being
config lines for the folder's block) and ``varnish`` (``start(backend_url) -> Server``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port, need_tool, tree_digest

APACHE_MODULES = Path("/usr/lib/apache2/modules")
WORKER_USER = "www-data"


def _as_root() -> bool:
    return os.geteuid() == 0


def _worker_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(WORKER_USER)
    return entry.pw_uid, entry.pw_gid


@dataclass
class Server:
    """One running server: its base URL and how to read its access log."""

    name: str
    url: str
    log: Path
    error_log: Path
    proc: subprocess.Popen[bytes]
    parse: Callable[[str], tuple[int, int, str]]  # log line -> (status, bytes sent, request)
    extra: dict[str, object] = field(default_factory=dict)
    skip: int = 0  # log lines before the tests' requests (a start-up probe)

    def entries(self) -> list[tuple[int, int, str]]:
        """(status, bytes sent with headers, request line or path) per request so far."""
        if not self.log.exists():
            return []
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        return [self.parse(line) for line in lines[self.skip:]]

    def requests(self, since: int = 0) -> int:
        return len(self.entries()[since:])

    def bytes_sent(self, since: int = 0) -> int:
        return sum(e[1] for e in self.entries()[since:])

    def settle(self, expected: int, timeout: float = 10.0) -> None:
        """Wait (bounded) until the log holds at least ``expected`` requests: lighttpd
        buffers its access log (SIGHUP, its log-rotation signal, flushes it), varnishncsa
        reads the shared-memory log a moment behind."""
        deadline = time.monotonic() + timeout
        while self.requests() < expected and time.monotonic() < deadline:
            if self.name == "lighttpd" and self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGHUP)
            time.sleep(0.1)

    def errors(self) -> str:
        """The error log and what the server printed (``output`` beside it)."""
        logs = [self.error_log]
        if self.name != "varnishncsa":  # (its folder's output file is varnishd's)
            logs = list(dict.fromkeys((self.error_log, self.error_log.with_name("output"))))
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())


def _space_log(line: str) -> tuple[int, int, str]:
    """``STATUS BYTES "REQUEST" ...`` (Apache's and lighttpd's format below)."""
    status, sent, rest = line.split(" ", 2)
    return int(status), int(sent) if sent.isdigit() else 0, rest


def _caddy_log(line: str) -> tuple[int, int, str]:
    """Caddy's JSON access log: ``size`` counts the body; add the header bytes it lists."""
    entry = json.loads(line)
    headers = entry.get("resp_headers", {})
    head = len(f"HTTP/1.1 {entry['status']} \r\n") + 2 + sum(
        len(k) + 4 + len(v) for k, values in headers.items() for v in values)
    request = entry.get("request", {})
    return int(entry["status"]), int(entry.get("size", 0)) + head, str(request.get("uri", ""))


def _wait_http(proc: subprocess.Popen[bytes], port: int, error_log: Path, name: str,
               timeout: float = 20.0) -> None:
    """Wait until ``port`` accepts connections; raise with the server's errors if it does
    not, or if the process ends first."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    _stop(proc)
    logs = [p.read_text(errors="replace") for p in (error_log, error_log.with_name("output"))
            if p.exists()]
    raise RuntimeError(f"{name} did not start on port {port}:\n" + "\n".join(logs))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _server_dir(base: Path, name: str, port: int) -> Path:
    """A folder for one server's config and logs, writable by its unprivileged user."""
    d = base / f"{name}-{port}"
    d.mkdir(parents=True)
    if _as_root():
        os.chmod(d, 0o755)
        uid, gid = _worker_ids()
        os.chown(d, uid, gid)
    return d


class ServerPool:
    """Starts servers, stops them all at teardown, and prints the error logs of a failed
    test (pytest shows captured output of failures only)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[Server] = []
        self.show_logs = True  # print each server's error log when it stops

    def popen(self, argv: list[str], out: Path, **kw: object) -> subprocess.Popen[bytes]:
        """Start a server in a session of its own (stopped as a group), its stdout and
        stderr into ``out`` (a pipe nobody reads could fill up and stall it)."""
        with open(out, "ab") as f:
            return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,  # type: ignore[call-overload,no-any-return]
                                    start_new_session=True, **kw)

    @classmethod
    def make(cls) -> ServerPool:
        """A pool whose servers live in a new folder under the system's temp folder."""
        base = Path(tempfile.mkdtemp(prefix="stitch-servers-"))
        os.chmod(base, 0o755)
        return cls(base)

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every server, print its error log, remove the folder."""
        for s in self.started:
            _stop(s.proc)
            errors = s.errors()
            if errors.strip() and self.show_logs:
                print(f"--- {s.name} error log ---\n{errors[-4000:]}")
        self.started = []
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def server_pool() -> Iterator[ServerPool]:
    with ServerPool.make() as servers:
        yield servers


def start_apache(server_pool: ServerPool, root: Path, extra: str = "") -> Server:
    """Apache httpd (Debian's apache2, event MPM, stock range handling) serving a folder."""
    binary = need_tool("apache2")
    port = free_port()
    d = _server_dir(server_pool.base, "apache", port)
    log, error_log = d / "access.log", d / "error.log"
    mods = ["mpm_event", "authz_core", "mime", "dir", "autoindex", "headers"]
    loads = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in mods)
    user = f"User {WORKER_USER}\nGroup {WORKER_USER}" if _as_root() else ""
    conf = d / "httpd.conf"
    conf.write_text(f"""
ServerRoot {d}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
{loads}
{user}
PidFile {d}/httpd.pid
DefaultRuntimeDir {d}
Mutex file:{d}
ErrorLog {error_log}
LogLevel warn
LogFormat "%>s %O \\"%r\\" \\"%{{Range}}i\\"" bytes
CustomLog {log} bytes
TypesConfig /etc/mime.types
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
DocumentRoot {root}
<Directory {root}>
    Options Indexes
    Require all granted
{extra}
</Directory>
""")
    env = dict(os.environ, APACHE_RUN_DIR=str(d), APACHE_LOCK_DIR=str(d))
    proc = server_pool.popen([binary, "-f", str(conf), "-DFOREGROUND"], d / "output",
                             env=env)
    _wait_http(proc, port, error_log, "apache2")
    server = Server("apache", f"http://127.0.0.1:{port}", log, error_log, proc, _space_log)
    server_pool.started.append(server)
    return server


@pytest.fixture
def apache(server_pool: ServerPool) -> Callable[..., Server]:
    """``start_apache`` on this test's pool."""
    return functools.partial(start_apache, server_pool)


def start_lighttpd(server_pool: ServerPool, root: Path, extra: str = "") -> Server:
    """lighttpd (Debian's) serving a folder, workers as www-data when started as root."""
    binary = need_tool("lighttpd")
    port = free_port()
    d = _server_dir(server_pool.base, "lighttpd", port)
    log, error_log = d / "access.log", d / "error.log"
    user = (f'server.username = "{WORKER_USER}"\nserver.groupname = "{WORKER_USER}"'
            if _as_root() else "")
    conf = d / "lighttpd.conf"
    conf.write_text(f"""
server.modules = ("mod_accesslog", "mod_dirlisting", "mod_setenv")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
{user}
server.pid-file = "{d}/lighttpd.pid"
server.errorlog = "{error_log}"
accesslog.filename = "{log}"
accesslog.format = "%>s %O \\"%r\\" \\"%{{Range}}i\\""
mimetype.assign = (".json" => "application/json", "" => "application/octet-stream")
{extra}
""")
    proc = server_pool.popen([binary, "-D", "-f", str(conf)], d / "output")
    _wait_http(proc, port, error_log, "lighttpd")
    server = Server("lighttpd", f"http://127.0.0.1:{port}", log, error_log, proc,
                    _space_log)
    server_pool.started.append(server)
    return server


@pytest.fixture
def lighttpd(server_pool: ServerPool) -> Callable[..., Server]:
    """``start_lighttpd`` on this test's pool."""
    return functools.partial(start_lighttpd, server_pool)


def start_caddy(server_pool: ServerPool, root: Path, extra: str = "") -> Server:
    """Caddy (Debian's) serving a folder: ``caddy run`` with a Caddyfile, the admin endpoint
    off, HOME and XDG folders inside its own folder; as www-data when started as root (Caddy
    does not drop privileges itself; its packaged service runs it as an unprivileged user)."""
    binary = need_tool("caddy")
    port = free_port()
    d = _server_dir(server_pool.base, "caddy", port)
    log, error_log = d / "access.log", d / "error.log"
    conf = d / "Caddyfile"
    conf.write_text(f"""{{
    admin off
    auto_https off
    log {{
    output file {error_log}
    level WARN
    }}
}}
http://127.0.0.1:{port} {{
    bind 127.0.0.1
    root * {root}
    file_server browse
{extra}
    log {{
    output file {log}
    format json
    }}
}}
""")
    env = dict(os.environ, HOME=str(d), XDG_CONFIG_HOME=str(d / "config"),
               XDG_DATA_HOME=str(d / "data"))
    argv = [binary, "run", "--config", str(conf), "--adapter", "caddyfile"]
    if _as_root():
        argv = [need_tool("setpriv"), f"--reuid={WORKER_USER}", f"--regid={WORKER_USER}",
                "--clear-groups", "--", *argv]
    proc = server_pool.popen(argv, d / "output", env=env, cwd=d)
    _wait_http(proc, port, error_log, "caddy")
    server = Server("caddy", f"http://127.0.0.1:{port}", log, error_log, proc, _caddy_log)
    server_pool.started.append(server)
    return server


@pytest.fixture
def caddy(server_pool: ServerPool) -> Callable[..., Server]:
    """``start_caddy`` on this test's pool."""
    return functools.partial(start_caddy, server_pool)


def start_nginx_with(server_pool: ServerPool, root: Path, extra: str = "") -> Server:
    """nginx (Debian's) serving a folder with ``extra`` lines in its ``server`` block (the
    docs' snippets); workers as www-data when started as root. (tests/conftest.py's ``nginx``
    serves the other tests.)"""
    binary = need_tool("nginx")
    port = free_port()
    d = _server_dir(server_pool.base, "nginx", port)
    log, error_log = d / "access.log", d / "error.log"
    user = f"user {WORKER_USER};" if _as_root() else ""
    conf = d / "nginx.conf"
    conf.write_text(f"""
{user}
worker_processes 1;
error_log {error_log} warn;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    types {{ application/json json; }}
    default_type application/octet-stream;
    log_format counted '$status $bytes_sent "$request" "$http_range"';
    log_format timed '$connection $msec $request_time $uri "$http_range"';
    server {{
    listen 127.0.0.1:{port};
    root {root};
    access_log {log} counted;
    access_log {d}/timing.log timed;
{extra}
    }}
}}
""")
    proc = server_pool.popen([binary, "-p", str(d), "-c", str(conf), "-g", "daemon off;"],
                             d / "output")
    _wait_http(proc, port, error_log, "nginx")
    server = Server("nginx", f"http://127.0.0.1:{port}", log, error_log, proc, _space_log,
                    extra={"timing": d / "timing.log"})
    server_pool.started.append(server)
    return server


@dataclass(frozen=True)
class Timed:
    """One request in ``start_nginx_with``'s timing log: which connection served it, when
    (seconds, the server's clock), what and which ranges."""

    connection: int
    start: float
    end: float
    uri: str
    ranges: tuple[tuple[int, int], ...]  # half-open; () without a Range header


def timings(server: Server) -> list[Timed]:
    """The requests ``start_nginx_with``'s server has logged so far, from its timing log."""
    path = server.extra["timing"]
    assert isinstance(path, Path)
    out = []
    for line in path.read_text().splitlines()[server.skip:]:
        conn, msec, took, uri, header = line.split(" ", 4)
        ranges: list[tuple[int, int]] = []
        spec = header.strip('"').removeprefix("bytes=")
        for part in spec.split(",") if spec not in ("", "-") else []:
            a, _, b = part.strip().partition("-")
            ranges.append((int(a), int(b) + 1))
        end = float(msec)
        out.append(Timed(int(conn), end - float(took), end, uri, tuple(ranges)))
    return out


@pytest.fixture
def nginx_with(server_pool: ServerPool) -> Callable[..., Server]:
    """``start_nginx_with`` on this test's pool."""
    return functools.partial(start_nginx_with, server_pool)


VARNISH_VCL = """vcl 4.1;

backend default {{
    .host = "127.0.0.1";
    .port = "{port}";
}}
"""


def start_varnish(server_pool: ServerPool, backend_url: str) -> Server:
    """Varnish (Debian's 7.1) in front of ``backend_url``, its VCL just the backend (so the
    built-in VCL decides: 200s cached for the default TTL, 120 s), foreground (-F), a work
    folder of its own (-n), its workers jailed as its own users when started as root. The
    access log is ``varnishncsa``'s, run beside it on the same work folder."""
    binary = need_tool("varnishd")
    ncsa = need_tool("varnishncsa")
    port = free_port()
    d = _server_dir(server_pool.base, "varnish", port)
    backend_port = int(backend_url.rsplit(":", 1)[1].split("/")[0])
    vcl = d / "default.vcl"
    vcl.write_text(VARNISH_VCL.format(port=backend_port))
    os.chmod(vcl, 0o644)
    work = d / "work"
    log, error_log = d / "access.log", d / "output"
    argv = [binary, "-F", "-a", f"127.0.0.1:{port}", "-f", str(vcl), "-n", str(work),
            "-s", "malloc,64m", "-T", "none"]
    proc = server_pool.popen(argv, error_log)
    _wait_http(proc, port, error_log, "varnishd")
    # The access log, through the shared-memory log: status, bytes sent (headers and
    # body), the request line and the Range header, as Apache's format above.
    logger = server_pool.popen(
        [ncsa, "-n", str(work), "-w", str(log), "-F", '%s %O "%r" "%{Range}i"'],
        d / "ncsa-output")
    server = Server("varnish", f"http://127.0.0.1:{port}", log, error_log, proc,
                    _space_log, {"logger": logger})
    server_pool.started.append(server)
    server_pool.started.append(Server("varnishncsa", "", log, d / "ncsa-output", logger,
                                      _space_log))
    _wait_logger(server)
    return server


@pytest.fixture
def varnish(server_pool: ServerPool) -> Callable[..., Server]:
    """``start_varnish`` on this test's pool."""
    return functools.partial(start_varnish, server_pool)


def _wait_logger(server: Server, timeout: float = 10.0) -> None:
    """varnishncsa attaches to the shared-memory log a moment after it starts: send
    requests until one shows in its log, then forget them (bounded)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # a 404 is an answer too
            urllib.request.urlopen(server.url + "/.probe", timeout=2).close()
        time.sleep(0.1)
        if server.log.exists() and server.log.read_text().strip():
            server.skip = len(server.entries())
            return
    raise RuntimeError("varnishncsa wrote no access log")


# -- a release cycle through a server, measured -----------------------------------------------
STITCH = [sys.executable, "-m", "app.cli"]


def stitch(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def tree_sha(root: Path) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in tree_digest(root).items()}


@dataclass
class Step:
    """What one `stitch update` cost, from the server's access log."""

    requests: int
    bytes_sent: int
    statuses: dict[int, int]
    result: dict[str, object]
    failed: list[str]  # requests answered neither 200 nor 206
    entries: list[tuple[int, int, str]]  # (status, bytes, '"REQUEST" "RANGE"') per request


def measure_update(server: Server, install: Path, *extra: str) -> Step:
    """`stitch update` of ``install`` from ``server`` (exit 0 asserted), measured."""
    before = server.requests()
    r = stitch("update", "--url", server.url, "--dir", str(install), "--progress", "json",
               *extra)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:], server.errors()[-2000:])
    result = json.loads(r.stdout.strip().splitlines()[-1])
    requests = result["requests"]
    assert isinstance(requests, int)
    server.settle(before + requests)
    entries = server.entries()[before:]
    assert len(entries) == requests, (entries, requests)  # the log holds every request
    statuses: dict[int, int] = {}
    for status, _, _ in entries:
        statuses[status] = statuses.get(status, 0) + 1
    failed = [request for status, _, request in entries if status not in (200, 206)]
    return Step(len(entries), sum(e[1] for e in entries), statuses, result, failed, entries)


def publish_cli(src: Path, repo: Path, version: str, *options: str) -> None:
    r = stitch("publish", str(src), str(repo), "--version", version, *options)
    assert r.returncode == 0, r.stderr


def await_published(server: Server, repo: Path, timeout: float = 10.0) -> None:
    """Wait (bounded) until ``server`` serves each channel pointer of ``repo`` as on disk.

    A server may answer from a cache for a moment after a publish: lighttpd keeps a file's
    stat and open descriptor for up to a second (``server.stat-cache-engine``), so a pointer
    replaced by rename is served old for that long. A player asking then is told "up to
    date" and gets the release next time; a test that wants the new release waits here."""
    before = server.requests()
    asked = 0
    deadline = time.monotonic() + timeout
    for pointer in sorted(repo.glob("*/latest.json")):
        want = pointer.read_bytes()
        url = f"{server.url}/{pointer.relative_to(repo).as_posix()}"
        while True:
            asked += 1
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as answer:
                if answer.read() == want:
                    break
            assert time.monotonic() < deadline, f"{server.name} still serves an old {url}"
            time.sleep(0.2)
    server.settle(before + asked)


def release_cycle(game: tuple[Path, Path], repo: Path, install: Path, server: Server,
                  *options: str) -> tuple[Step, Step]:
    """Publish 1.0.0, install it, publish 1.1.0, update; assert each tree is the release's.
    ``repo`` must be what ``server`` serves (or its backend serves)."""
    v1, v2 = game
    publish_cli(v1, repo, "1.0.0", *options)
    full = measure_update(server, install)
    assert full.result["outcome"] == "updated"
    assert tree_sha(install) == tree_sha(v1)
    publish_cli(v2, repo, "1.1.0", *options)
    await_published(server, repo)
    update = measure_update(server, install)
    assert update.result["outcome"] == "updated", update.result
    assert tree_sha(install) == tree_sha(v2)
    return full, update
