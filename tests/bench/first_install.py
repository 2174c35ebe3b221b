"""A first install of a many-file tree at a real round trip: requests, bytes and wall time.

    .venv/bin/python -m tests.bench.first_install [--delay 50] [--repeat 3]
        [--work /tmp/first-install] [--cache /tmp/stitch-compare-cache] [TREE]

``TREE`` (default: npm ``@fortawesome/fontawesome-free`` 6.7.2, unpacked, fetched once into
``--cache`` as ``tests/bench/compare/many.py`` does: 2,149 files, 18.5 MB) is published
with ``stitch publish`` (the defaults, signed) and served by nginx behind the delay proxy
(``--delay`` ms before every answer); ``stitch update`` installs it into an empty folder
``--repeat`` times. Printed per run: wall time, requests and bytes from nginx's log, and
the requests by kind (pointer, manifest, index, compressed copy, pack, file); every result
is checked file by file (SHA-256).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.compare import many
from tests.bench.compare.harness import REPO_ROOT, Nginx, check_tree, files_of, sha256
from tests.faultproxy import FaultProxy, Rule

STITCH = [sys.executable, "-m", "app.cli"]


def kind(line: str) -> str:
    path = line.split('"')[1].split()[1].split("?")[0]
    for suffix, name in ((".fidx", "index"), (".stz", "compressed copy"), (".pack", "pack"),
                         ("latest.json", "pointer"), ("release.json", "manifest"),
                         (".minisig", "signature")):
        if path.endswith(suffix):
            return name
    return "file"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree", nargs="?", type=Path)
    ap.add_argument("--delay", type=float, default=50.0, help="ms before every answer")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/first-install"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/stitch-compare-cache"))
    args = ap.parse_args()
    tree = args.tree or many.pairs(args.work / "src", args.cache)[0].new
    if args.work.exists():
        shutil.rmtree(args.work / "web", ignore_errors=True)
    web, inst = args.work / "web", args.work / "install"
    key = args.work / "stitch.key"
    if not key.exists():
        subprocess.run([*STITCH, "keygen", str(key)], cwd=REPO_ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([*STITCH, "publish", str(tree), str(web / "repo"), "--version", "1.0.0",
                    "--sign-key", str(key)], cwd=REPO_ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    expected = {rel: sha256(p) for rel, p in files_of(tree).items()}
    nginx = Nginx(web, args.work / "nginx")
    proxy = FaultProxy(nginx.url, [Rule("delay", delay=args.delay / 1000)],
                       lifetime=3600, idle_timeout=60)
    walls = []
    try:
        for i in range(args.repeat):
            shutil.rmtree(inst, ignore_errors=True)
            subprocess.run(["sync"], check=True)
            nginx.mark()
            t = time.perf_counter()
            subprocess.run([*STITCH, "update", "--url", f"{proxy.url}/repo", "--dir", str(inst),
                            "--progress", "none", "--pubkey", f"{key}.pub"], cwd=REPO_ROOT,
                           check=True)
            walls.append(time.perf_counter() - t)
            sent, requests, lines = nginx.since_mark()
            kinds = collections.Counter(kind(line) for line in lines)
            print(f"run {i}: {walls[-1]:.2f} s, {requests} requests, {sent:,} bytes sent "
                  f"({', '.join(f'{n} {k}' for k, n in kinds.most_common())}), "
                  f"{check_tree(expected, inst)}", flush=True)
    finally:
        proxy.close()
        nginx.stop()
    print(f"median wall {statistics.median(walls):.2f} s over {len(walls)} runs "
          f"({len(expected)} files, --delay {args.delay:g} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
