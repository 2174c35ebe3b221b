"""A first install against a server that caps each connection (issue 16.3).

    .venv/bin/python -m tests.bench.capped [--scale 20.5] [--rate 4] [--connections 4]
        [--repeat 1] [--tools stitch,stitch-raw,zsync,casync] [--work /tmp/capped]

The demo game (``app.demo.make_game`` at ``--scale``: 20.5 is about 150 MB) is published
with ``stitch publish`` (the defaults, and ``--no-compress --no-delta`` as ``stitch-raw``),
as one tar with ``zsyncmake`` and as a folder index with ``casync make``; one nginx serves
it all with ``limit_rate`` C (``--rate`` MB/s, per request: nginx's cap), and each tool
installs it from nothing. Printed per tool: the bytes nginx sent, requests, wall time of the
install command, the throughput of the wire bytes over that wall time, and its ratio to
N x C (the goal: 0.8 with N = 4), and over the span from the first request's start to the
last one's end in nginx's log (the download alone, without start-up and the final fsync).
stitch runs once per ``--connections`` value listed (``4,1``: the same against one).
Every result is checked file by file (SHA-256). Needs nginx, zsync, casync, tar.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tests.bench.compare.harness import REPO_ROOT, check_tree, files_of, sha256, tree_size

STITCH = [sys.executable, "-m", "app.cli"]


class CappedNginx:
    """nginx on loopback serving ``root`` with ``limit_rate`` and a log of each request's
    bytes, start and end."""

    def __init__(self, root: Path, work: Path, rate_mb: float) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        for d in ("logs", "tmp"):
            (work / d).mkdir(parents=True, exist_ok=True)
        self.log = work / "logs" / "access.log"
        user = "user root;" if os.geteuid() == 0 else ""
        limit = f"limit_rate {int(rate_mb * 1_000_000)};" if rate_mb else ""
        (work / "nginx.conf").write_text(f"""{user}
worker_processes 2; error_log {work}/logs/error.log; pid {work}/nginx.pid;
events {{ worker_connections 512; }}
http {{ access_log off; client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp; uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  default_type application/octet-stream; sendfile on; keepalive_requests 100000;
  log_format b '$bytes_sent $msec $request_time $connection "$request"';
  server {{ listen 127.0.0.1:{self.port}; root {root}; max_ranges 64; {limit}
    access_log {self.log} b; }} }}
""")
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-p", str(work), "-c", str(work / "nginx.conf"),
                                      "-g", "daemon off;"])
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        self._pos = 0

    def mark(self) -> None:
        time.sleep(0.3)
        self._pos = self.log.stat().st_size if self.log.exists() else 0

    def since_mark(self) -> tuple[int, int, float, int]:
        """(bytes sent, requests, seconds from the first start to the last end, most
        connections used) since ``mark``."""
        time.sleep(0.3)
        with open(self.log, "rb") as f:
            f.seek(self._pos)
            lines = f.read().decode("utf-8", "replace").splitlines()
        sent = [int(x.split()[0]) for x in lines]
        ends = [float(x.split()[1]) for x in lines]
        starts = [e - float(x.split()[2]) for e, x in zip(ends, lines, strict=True)]
        conns = {x.split()[3] for x in lines}
        return sum(sent), len(lines), max(ends) - min(starts), len(conns)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run(cmd: list[str], log: Path, cwd: Path | None = None) -> float:
    with open(log, "ab") as out:
        t = time.perf_counter()
        p = subprocess.run(cmd, cwd=cwd or REPO_ROOT, stdout=out, stderr=out)
        wall = time.perf_counter() - t
    if p.returncode:
        raise RuntimeError(f"{cmd[:4]}... exited {p.returncode}: see {log}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.capped",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=20.5)
    ap.add_argument("--rate", type=float, default=4.0, help="nginx limit_rate, MB/s")
    ap.add_argument("--connections", default="4,1", help="stitch's, comma-separated")
    ap.add_argument("--throttle", action="store_true",
                    help="cap each request with tests/faultproxy.py's smooth throttle in "
                    "front of nginx instead of nginx's limit_rate (which lets the first "
                    "second's worth of every request through at once)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (median wall)")
    ap.add_argument("--tools", default="stitch,stitch-raw,zsync,casync")
    ap.add_argument("--work", type=Path, default=Path("/tmp/capped-bench"))
    ap.add_argument("--max-piece", default="0",
                    help="MiB, comma-separated: core.engine.pieces.MAX_PIECE for stitch's "
                    "installs, each in turn (0: its own)")
    a = ap.parse_args()
    tools = a.tools.split(",")
    max_pieces = [float(x) for x in a.max_piece.split(",")]

    def install(piece: float) -> list[str]:
        if not piece:
            return STITCH
        return [sys.executable, "-c", "import sys, core.engine.pieces as p; "
                "p.MAX_PIECE = int(sys.argv.pop(1)); import app.cli; app.cli.entry()",
                str(int(piece * (1 << 20)))]
    conns = [int(c) for c in a.connections.split(",")]
    n_goal = conns[0]
    work: Path = a.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "log.txt"
    from app.demo import make_game

    src = make_game(work / "src", 1, scale=a.scale)
    expected = {rel: sha256(p) for rel, p in files_of(src).items()}
    size = tree_size(src)
    www = work / "www"
    www.mkdir()
    print(f"tree: {size / 1e6:.1f} MB in {len(expected)} files; limit_rate {a.rate} MB/s; "
          f"machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}")
    if "stitch" in tools:
        run([*STITCH, "publish", str(src), str(www / "stitch"), "--version", "1.0.0"], log)
    if "stitch-raw" in tools:
        run([*STITCH, "publish", str(src), str(www / "raw"), "--version", "1.0.0",
             "--no-compress", "--no-delta"], log)
    if "zsync" in tools:
        (www / "zsync").mkdir()
        with tarfile.open(www / "zsync" / "game.tar", "w") as tar:
            tar.add(src, arcname="game")
        run(["zsyncmake", "-u", "game.tar", "-o", "game.tar.zsync", "game.tar"], log,
            www / "zsync")
    if "casync" in tools:
        (www / "casync").mkdir()
        run(["casync", "make", f"--store={www / 'casync' / 'default.castr'}",
             str(www / "casync" / "game.caidx"), str(src)], log)
    nginx = CappedNginx(www, work / "nginx", 0.0 if a.throttle else a.rate)
    base = nginx.url
    proxy = None
    if a.throttle:
        from tests.faultproxy import FaultProxy, Rule

        proxy = FaultProxy(nginx.url, [Rule("throttle", rate=a.rate * 1e6)], lifetime=3600,
                           idle_timeout=60)
        base = proxy.url
        print("capped by tests/faultproxy.py's throttle (no burst); nginx unlimited behind it")
    rows = []
    try:
        cases: list[tuple[str, int, float]] = []
        for tool in tools:
            cases += ([(tool, n, p) for n in conns for p in max_pieces]
                      if tool.startswith("stitch") else [(tool, 0, 0.0)])
        for tool, n, piece in cases:
            walls, last = [], (0, 0, 0.0, 0)
            for _ in range(a.repeat):
                out = work / "out" / f"{tool}-{n}"
                shutil.rmtree(out, ignore_errors=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                nginx.mark()
                if tool.startswith("stitch"):
                    repo = "stitch" if tool == "stitch" else "raw"
                    walls.append(run([*install(piece), "update", "--url", f"{base}/{repo}",
                                      "--dir", str(out), "--connections", str(n)], log))
                    result = out
                elif tool == "zsync":
                    out.mkdir()
                    walls.append(run(["zsync", "-q", "-o", str(out / "game.tar"),
                                      f"{base}/zsync/game.tar.zsync"], log, out))
                    with tarfile.open(out / "game.tar") as tar:
                        tar.extractall(out, filter="tar")
                    result = out / "game"
                else:
                    walls.append(run(["casync", "extract",
                                      f"--store={base}/casync/default.castr",
                                      f"{base}/casync/game.caidx", str(out)], log))
                    result = out
                last = nginx.since_mark()
                check = check_tree(expected, result)
                if not check.startswith("ok"):
                    raise SystemExit(f"{tool}: {check}")
            wall = statistics.median(walls)
            sent, requests, span, used = last
            n_eff = n or n_goal
            name = tool + (f" N={n}" if n else "") + (f" piece {piece:g} MiB" if piece else "")
            rows.append((name, sent, requests, used, wall,
                         sent / wall / 1e6, sent / wall / (n_eff * a.rate * 1e6),
                         sent / span / (n_eff * a.rate * 1e6)))
    finally:
        if proxy is not None:
            proxy.close()
        nginx.stop()
    print("| tool | sent MB | requests | connections | wall s | MB/s | / (N x C) | "
          "/ (N x C), download span |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, sent, req, used, wall, mbs, ratio, span_ratio in rows:
        print(f"| {name} | {sent / 1e6:.1f} | {req} | {used} | {wall:.1f} | {mbs:.1f} | "
              f"{ratio:.2f} | {span_ratio:.2f} |")
    print(f"(N x C uses N = {n_goal} for zsync and casync, whose connections are their own)")
    if a.throttle:
        print("(with --throttle, the connections and the download span are the proxy's to "
              "nginx: only the wall-time columns count)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
