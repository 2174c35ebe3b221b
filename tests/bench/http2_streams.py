"""Do HttpFetcher's parallel range batches run as concurrent streams of one HTTP/2
connection? (issue 16.4, docs/benchmarks.md "Many small changed files")

    .venv/bin/python -m tests.bench.http2_streams [WORK]

nginx over TLS with HTTP/2 and ``limit_rate 500k`` (so each answer takes about 0.5 s and
concurrent ones overlap) serves an 8 MiB file; the fetcher (4 connections) asks for 128
ranges, which it sends as 4 multi-range requests of 32. Prints each request's connection
number and start and end times from nginx's log (``$connection``, ``$msec``,
``$request_time``). Needs nginx and openssl.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    d = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/stitch-http2-streams")
    for sub in ("logs", "tmp", "root"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    (d / "root").chmod(0o755)
    (d / "root" / "f").write_bytes(os.urandom(8 << 20))
    (d / "root" / "f").chmod(0o644)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = "user root;" if os.geteuid() == 0 else ""
    log = d / "logs" / "access.log"
    log.unlink(missing_ok=True)
    (d / "nginx.conf").write_text(f"""{user} worker_processes 1;
error_log {d}/logs/error.log; pid {d}/nginx.pid; events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;
 fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
 log_format t '$connection $msec $request_time $status $bytes_sent "$request"';
 server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {cert};
   ssl_certificate_key {key}; root {d}/root; max_ranges 64; limit_rate 500k;
   access_log {log} t; }} }}
""")
    nginx = subprocess.Popen(["nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-g",
                              "daemon off;"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        os.environ["SSL_CERT_FILE"] = str(cert)
        from core.net.http import HttpFetcher

        f = HttpFetcher(connections=4)
        ranges = [(i * 65536, i * 65536 + 8192) for i in range(128)]
        t = time.perf_counter()
        f.fetch_ranges(f"https://127.0.0.1:{port}/f", ranges, lambda _o, _b: None)
        print(f"wall {time.perf_counter() - t:.2f} s, {f.stats.requests} requests")
        f.close()
        time.sleep(0.5)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
    for line in log.read_text().splitlines():
        conn, end, took, rest = line.split(" ", 3)
        print(f"connection {conn}: {float(end) - float(took):.3f} -> {float(end):.3f}  {rest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
