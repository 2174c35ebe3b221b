"""Benchmark one update end to end on loopback (not a test; numbers go to docs/benchmarks.md).

Generates a game-like release pair (``app.demo.make_game``; ``--scale 40`` ≈ 290 MB), publishes
both, serves them with nginx (when installed) or ``stitch serve``, installs v1, then times
``stitch update`` to v2 as a separate process and reports: bytes the server sent vs bytes of
really new chunks, requests, wall time (interpreter start-up included), peak RSS, and the
local scan throughput (cold index cache: every file re-chunked and hashed).

    .venv/bin/python tests/bench/update.py [--scale 40] [--server nginx|stitch]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from app.demo import make_game
from app.serve import make_server
from core.chunks.chunker import DEFAULT_PARAMS, chunk_file
from core.publisher.publish import publish

STITCH = [sys.executable, "-m", "app.cli"]


def start_nginx(root: Path, work: Path) -> tuple[str, Path, subprocess.Popen[bytes]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (work / "logs").mkdir(parents=True, exist_ok=True)
    log = work / "logs" / "access.log"
    conf = work / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""{user}
worker_processes 1; error_log {work}/logs/error.log; pid {work}/nginx.pid;
events {{ worker_connections 256; }}
http {{ access_log off; client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp; uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  default_type application/octet-stream; log_format b '$bytes_sent';
  server {{ listen 127.0.0.1:{port}; root {root}; max_ranges 64; access_log {log} b; }} }}
""")
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([binary, "-p", str(work), "-c", str(conf), "-g", "daemon off;"])
    time.sleep(0.5)
    return f"http://127.0.0.1:{port}", log, proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=40.0)
    ap.add_argument("--server", choices=["nginx", "stitch"],
                    default="nginx" if shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
                    else "stitch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        t = time.perf_counter()
        v1 = make_game(base / "v1", 1, args.scale)
        v2 = make_game(base / "v2", 2, args.scale)
        size = sum(p.stat().st_size for p in v2.rglob("*") if p.is_file())
        print(f"generated pair: {size / 1e6:.1f} MB per version ({time.perf_counter() - t:.1f} s)")
        repo = base / "repo"
        t = time.perf_counter()
        publish(v1, repo, "1.0.0")
        print(f"publish v1: {time.perf_counter() - t:.2f} s")
        if args.server == "nginx":
            url, log, proc = start_nginx(repo, base / "nginx")
            sent = lambda: sum(int(x) for x in log.read_text().split()) if log.exists() else 0  # noqa: E731
        else:
            server = make_server(repo, quiet=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = server.url
            sent = lambda: server.bytes_sent  # noqa: E731
        install = base / "install"
        subprocess.run([*STITCH, "update", "--url", url, "--dir", str(install),
                        "--progress", "none"], check=True)
        t = time.perf_counter()
        report = publish(v2, repo, "1.1.0")
        print(f"publish v2: {time.perf_counter() - t:.2f} s; new chunk bytes {report.new_bytes:,}")

        # Cold scan throughput: chunk + xxh3 + SHA-256 of every installed file.
        files = [p for p in install.rglob("*") if p.is_file() and ".stitch" not in p.parts]
        total = sum(p.stat().st_size for p in files)
        t = time.perf_counter()
        for p in files:
            chunk_file(p, DEFAULT_PARAMS)
        scan = total / (time.perf_counter() - t) / 1e6
        print(f"local scan (chunk + xxh3-128 + SHA-256, one core, page cache warm): "
              f"{scan:.0f} MB/s over {total / 1e6:.0f} MB")

        before = sent()
        t = time.perf_counter()
        out = base / "update.json"
        # Peak RSS through GNU time: a child forked from this (large) process would inherit
        # its high-water mark in ru_maxrss.
        rss_file = base / "rss"
        with open(out, "w") as f:
            subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *STITCH,
                            "update", "--url", url, "--dir", str(install),
                            "--progress", "json"], stdout=f, check=True)
        wall = time.perf_counter() - t
        time.sleep(0.3)  # nginx writes its log line after the response
        rss = int(rss_file.read_text().split()[-1]) / 1024
        import json

        final = json.loads(out.read_text().splitlines()[-1])
        got = sent() - before
        print(f"update 1.0.0 -> 1.1.0 via {args.server}: wall {wall:.2f} s, "
              f"server sent {got:,} bytes ({got / report.new_bytes:.3f}x the new chunk bytes), "
              f"{final['requests']} requests, reused {final['bytes_reused']:,} bytes, "
              f"peak RSS {rss:.0f} MB")
        same = all((install / p.relative_to(v2)).read_bytes() == p.read_bytes()
                   for p in v2.rglob("*") if p.is_file())
        print("result matches v2" if same else "RESULT DIFFERS FROM v2")
        if args.server == "nginx":
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
