"""stitch vs zsync vs casync on the same release pairs, one table (issue 7).

    .venv/bin/python -m tests.bench.compare OLD NEW            # one pair: two files or folders
    .venv/bin/python -m tests.bench.compare --pairs generated|real|all [--repeat 3]

For each pair: publish the new release with stitch (``python -m app.cli publish``; the old
release is published first so the repository has both), ``zsyncmake`` (one ``.zsync`` per
file) and ``casync make`` (a ``.caidx`` for a folder, a ``.caibx`` for a file, and a zstd
chunk store); serve everything with one nginx on loopback; update from the old release with
each tool; check every result by SHA-256; print the bytes nginx sent (``$bytes_sent``),
requests, wall time (median of ``--repeat``), peak RSS (GNU time ``%M``), publish time,
the full size, ``zstd -3`` of the new release and ``zstd --patch-from=OLD NEW``.

Tools: ``stitch`` (published with the defaults; the old release installed by stitch, so
``.stitch`` state exists), ``stitch-cold`` (the old files copied into the install folder, no
state), ``stitch-raw`` (published ``--no-compress --no-delta``: raw ranges only, the
defaults before issue 16), ``stitch-2k`` (that with ``--avg-chunk 2048``: what smaller
chunks would buy), ``zsync``,
``casync``; by name only, ``floor`` (``floor.py``: the least a Python client of stitch's design
does, on the many-file pair). Needs nginx, zsync, casync, zstd, GNU time; the real pairs
also npm and apt-get (fetched once into ``--cache``).

``--delay MS`` puts the test proxy in front of nginx, every request waiting that long (a
distant server); ``--line MBIT`` paces every connection's bodies through one shared line of
that speed (a player's DSL or cable line).
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.compare import many, skipped
from tests.bench.compare import pairs as P
from tests.bench.compare.harness import REPO_ROOT, Nginx, compare_pair, tables

TOOLS = ["stitch", "stitch-cold", "stitch-raw", "stitch-2k", "stitch-z", "stitch-z2k",
         "stitch-zs", "stitch-d", "stitch-d1", "zsync", "casync", "zsync-tar", "zsync-tar-sync"]
# Asked for by name only: ``floor`` (tests/bench/compare/floor.py) suits the many-file pair.
EXTRA_TOOLS = ["floor"]


def startup_time(cmd: list[str]) -> float:
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.compare",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("old", nargs="?", type=Path)
    ap.add_argument("new", nargs="?", type=Path)
    ap.add_argument("--pairs", choices=["generated", "real", "many", "all", "skipped"])
    ap.add_argument("--ks", default="", help="skipped: also each --delta-releases K (1,2,3)")
    ap.add_argument("--scale", type=float, default=30.0,
                    help="demo game scale (30 = about 220 MB per version)")
    ap.add_argument("--bin-mb", type=float, default=64.0, help="code-shifted binary size")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (median wall)")
    ap.add_argument("--patch-level", type=int, default=19, help="zstd --patch-from level")
    ap.add_argument("--only", default="", help="run only pairs whose name contains this")
    ap.add_argument("--work", type=Path, default=Path("/tmp/stitch-compare"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/stitch-compare-cache"),
                    help="downloaded real pairs (kept between runs)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--delay", type=float, default=0.0,
                    help="ms every request waits before its answer (a proxy in front of "
                         "nginx: a distant server's round trip)")
    ap.add_argument("--line", type=float, default=0.0,
                    help="Mbit/s of the player's line: one pace that every connection's "
                         "bodies share (the proxy's line_rate), as on a real DSL or cable "
                         "line; 0: no limit")
    ap.add_argument("--profile", type=Path,
                    help="also run each stitch update once more under pyinstrument (pip "
                         "install pyinstrument) and write its text report into this folder")
    args = ap.parse_args()
    if (args.old is None) == (args.pairs is None):
        ap.error("give OLD NEW or --pairs")
    tools = [t for t in args.tools.split(",") if t]
    if unknown := set(tools) - set(TOOLS) - set(EXTRA_TOOLS):
        ap.error(f"unknown tools: {sorted(unknown)}")
    for prog in ("nginx", "zsync", "zsyncmake", "casync", "zstd", "tar"):
        if not (shutil.which(prog) or Path(f"/usr/sbin/{prog}").exists()):
            sys.exit(f"{prog} not found (Debian: apt-get install nginx zsync casync zstd time)")

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    # An installed stitch (pip, the packaged exe) runs from bytecode; a source checkout under
    # PYTHONDONTWRITEBYTECODE would recompile every module on every run (30-45 ms).
    for package in ("core", "app"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)
    if args.work.exists():
        shutil.rmtree(args.work)
    web = args.work / "web"
    web.mkdir(parents=True)
    start = time.perf_counter()
    pairs = []
    if args.old is not None:
        pairs.append(P.custom(args.work / "src", args.old.resolve(), args.new.resolve()))
    if args.pairs in ("generated", "all"):
        t = time.perf_counter()
        pairs += P.generated(args.work / "src", args.scale, args.bin_mb)
        say(f"generated pairs in {time.perf_counter() - t:.1f} s")
    if args.pairs in ("real", "all"):
        t = time.perf_counter()
        pairs += P.real(args.work / "src", args.cache)
        say(f"real pairs ready in {time.perf_counter() - t:.1f} s")
    if args.pairs in ("many", "all"):  # many small changed files: tests/bench/compare/many.py
        pairs += many.pairs(args.work / "src", args.cache)
    pairs = [p for p in pairs if args.only.lower() in p.name.lower()]
    nginx = Nginx(web, args.work / "nginx")
    proxy = None
    if args.delay or args.line:
        from tests.faultproxy import FaultProxy, Rule

        rules = [Rule("delay", delay=args.delay / 1000)] if args.delay else []
        proxy = FaultProxy(nginx.url, rules, lifetime=24 * 3600, idle_timeout=60,
                           line_rate=args.line * 1e6 / 8 if args.line else None)
    results: list = []
    ktable: list[str] = []
    try:
        if args.pairs == "skipped":  # releases skipped: tests/bench/compare/skipped.py
            results, ktable = skipped.run_all(args, nginx, web, say)
        for i, pair in enumerate(pairs):
            say(f"[{i + 1}/{len(pairs)}] {pair.name} ({pair.origin})")
            t = time.perf_counter()
            results.append(compare_pair(pair, web / f"p{i}", nginx, web, tools, args.repeat,
                                        args.patch_level,
                                        args.cache / "zstd-figures.json", say,
                                        args.profile, proxy.url if proxy else ""))
            say(f"  pair done in {time.perf_counter() - t:.1f} s")
        startup = {name: startup_time(cmd) for name, cmd in (
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("python -m app.cli --version", [sys.executable, "-m", "app.cli", "--version"]),
            ("imports of `stitch update` (app.cli, core.engine.updater, core.net.http)",
             [sys.executable, "-c", "import app.cli, core.engine.updater, core.net.http"]),
            ("zsync -V", ["zsync", "-V"]),
        )}
    finally:
        if proxy is not None:
            proxy.close()
        nginx.stop()
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    print(tables(results))
    print("\n".join(["", *ktable]) if ktable else "")
    print("\nStart-up alone (median of 5): " + ", ".join(
        f"{name if name.startswith('imports') else f'`{name}`'} {t:.3f} s"
        for name, t in startup.items()))
    print(f"\n(total {time.perf_counter() - start:.0f} s; wall = median of {args.repeat}, "
          "range in brackets)")
    failed = [r for res in results for r in res.runs if not r.check.startswith("ok")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
