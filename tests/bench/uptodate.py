"""Benchmark the launcher's most common run: ``stitch update`` when the install is already
current (not a test; numbers go to docs/benchmarks.md).

Publishes a folder (``--src``, default: the demo game at ``--scale``) signed, serves it with
nginx on loopback, installs it, then times ``--runs`` more updates, each a process of its
own (interpreter start-up included), and prints the median, the range and the requests.

    .venv/bin/python tests/bench/uptodate.py [--src DIR | --scale 4] [--runs 9] [--delay MS]

``--delay``: every request waits that long before its answer (the test proxy in front of
nginx, as ``tests/bench/compare --delay``): a distant server's round trip.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.demo import make_game
from tests.bench.compare.harness import Nginx

STITCH = [sys.executable, "-m", "app.cli"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, help="folder to publish (default: the demo game)")
    ap.add_argument("--scale", type=float, default=4.0, help="demo game scale")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--delay", type=float, default=0.0, help="ms per request (a proxy)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stitch-uptodate-") as tmp:
        work = Path(tmp)
        src = args.src
        if src is None:
            src = work / "game"
            make_game(src, 1, scale=args.scale)
        key, web = work / "release.key", work / "web"
        subprocess.run([*STITCH, "keygen", str(key)], check=True, capture_output=True)
        subprocess.run([*STITCH, "publish", str(src), str(web / "repo"), "--version", "1.0.0",
                        "--sign-key", str(key)], check=True, capture_output=True)
        nginx = Nginx(web, work / "nginx")
        proxy = None
        if args.delay:
            from tests.faultproxy import FaultProxy, Rule

            proxy = FaultProxy(nginx.url, [Rule("delay", delay=args.delay / 1000)],
                               lifetime=3600, idle_timeout=60)
        front = proxy.url if proxy is not None else nginx.url
        try:
            update = [*STITCH, "update", "--url", f"{front}/repo", "--dir",
                      str(work / "install"), "--pubkey", f"{key}.pub", "--progress", "none"]
            subprocess.run(update, check=True, capture_output=True)
            walls, requests = [], []
            for _ in range(args.runs):
                nginx.mark()
                t = time.perf_counter()
                subprocess.run(update, check=True, capture_output=True)
                walls.append(time.perf_counter() - t)
                requests.append(nginx.since_mark()[1])
        finally:
            if proxy is not None:
                proxy.close()
            nginx.stop()
        files = sum(1 for p in src.rglob("*") if p.is_file())
        print(f"up to date, {files} files: median {statistics.median(walls):.3f} s "
              f"({min(walls):.3f}-{max(walls):.3f}), {max(requests)} requests per run")


if __name__ == "__main__":
    main()
