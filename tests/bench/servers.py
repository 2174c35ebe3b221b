"""Requests and bytes a full install and an update need from each web server publishers use
(not a test; the table goes to docs/benchmarks.md).

For nginx, Apache httpd, Caddy, lighttpd and Varnish 7.1 in front of nginx (Debian's
packages, started as tests/servers.py starts them: loopback, stock range handling, workers
unprivileged when run as root): `stitch publish` 1.0.0 of the demo game, `stitch update`
into an empty folder, `stitch publish` 1.1.0, `stitch update` again; once with
--no-compress --no-delta (the update asks for raw ranges of the files, where multi-range
answers matter) and once with the defaults (compressed chunk copies and deltas). Counts come
from each server's access log (bytes with headers; varnishncsa for Varnish); every run is
checked to end in the release's files.

    .venv/bin/python tests/bench/servers.py [--scale 1] [--servers nginx,apache,...] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.demo import make_game
from tests.servers import (
    Server,
    ServerPool,
    release_cycle,
    start_apache,
    start_caddy,
    start_lighttpd,
    start_nginx_with,
    start_varnish,
)

# The defaults publish compressed chunk copies and deltas (as tests/test_servers.py's "default");
# "--no-compress --no-delta" makes the update ask for raw ranges of the files.
OPTIONS = {"--no-compress --no-delta": ("--no-compress", "--no-delta"), "default": ()}


def _starters(pool: ServerPool) -> dict[str, Callable[[Path], Server]]:
    return {
        "nginx": lambda root: start_nginx_with(pool, root),
        "apache": lambda root: start_apache(pool, root),
        "caddy": lambda root: start_caddy(pool, root),
        "lighttpd": lambda root: start_lighttpd(pool, root),
        "varnish": lambda root: start_varnish(pool, start_nginx_with(pool, root).url),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="demo game scale (1: about 7 MB)")
    ap.add_argument("--servers", default="nginx,apache,caddy,lighttpd,varnish")
    ap.add_argument("--verbose", action="store_true", help="print the update's requests")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="stitch-bench-servers-") as tmp:
        work = Path(tmp)
        game = make_game(work / "v1", 1, scale=args.scale), make_game(work / "v2", 2,
                                                                       scale=args.scale)
        for name in args.servers.split(","):
            for label, options in OPTIONS.items():
                www = Path(tempfile.mkdtemp(prefix="stitch-www-"))
                os.chmod(www, 0o755)
                try:
                    with ServerPool.make() as pool:
                        pool.show_logs = False
                        repo = www / "repo"
                        repo.mkdir()
                        server = _starters(pool)[name](repo)
                        install = work / f"install-{name}-{len(rows)}"
                        full, update = release_cycle(game, repo, install, server, *options)
                finally:
                    shutil.rmtree(www, ignore_errors=True)
                rows.append((name, label, full, update))
                print(f"{name} {label}: install {full.statuses}, update {update.statuses}",
                      flush=True)
                if args.verbose:
                    for status, sent, request in update.entries:
                        print(f"    {status} {sent} {request[:150]}")
    print()
    base = {label: update.requests for name, label, _, update in rows if name == "nginx"}
    print("| server | publish options | install: requests | install: bytes sent "
          "| update: requests (vs nginx) | update: bytes sent | update: 416s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, label, full, update in rows:
        extra = f" ({update.requests - base[label]:+d})" if label in base else ""
        print(f"| {name} | {label} | {full.requests} | {full.bytes_sent:,} | "
              f"{update.requests}{extra} | {update.bytes_sent:,} | "
              f"{update.statuses.get(416, 0)} |")


if __name__ == "__main__":
    main()
