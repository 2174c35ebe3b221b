"""Benchmark a launcher's every-start check with the Windows exe under wine: ``stitch.exe
--update`` on an install that is already current, for each built layout (one file, one
folder), and ``--version`` (not a test; numbers go to docs/benchmarks.md).

Publishes the demo game signed (Linux Python), serves it with nginx on loopback, installs it
with each exe, then times ``--runs`` rounds; in each round every exe runs once (interleaved,
so a busy moment of the machine hits all layouts alike). Each run is a process of its own
under wine (the wineserver is already up). Uses the wine prefix of tests/windows/run.

    bash packaging/build --windows --onefile && bash packaging/build --windows  # one folder
    .venv/bin/python tests/bench/windows_uptodate.py \\
        --exe onefile=dist/windows/stitch.exe --exe onedir=dist/windows/stitch/stitch.exe
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.demo import make_game
from tests.bench.compare.harness import Nginx

REPO_ROOT = Path(__file__).resolve().parents[2]
STITCH = [sys.executable, "-m", "app.cli"]


def wine_env() -> tuple[str, dict[str, str]]:
    wine = shutil.which("wine64") or shutil.which("wine") or "/usr/lib/wine/wine64"
    cache = Path(os.environ.get("STITCH_WIN_CACHE", REPO_ROOT / ".venv-win"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_", "PIP_"))}
    env.update(WINEPREFIX=str(cache / "prefix"), WINEDEBUG="-all",
               WINEDLLOVERRIDES="mscoree,mshtml=", WINEQT_QPA_PLATFORM="offscreen")
    return wine, env


def winpath(p: Path) -> str:
    return "Z:" + str(p.resolve()).replace("/", "\\")


def run(wine: str, env: dict[str, str], args: list[str]) -> float:
    """Seconds for one run; stdin, stdout and stderr are pipes (Windows programs under wine
    need real handles)."""
    t = time.perf_counter()
    done = subprocess.run([wine, *args], input=b"", capture_output=True, env=env, timeout=300)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--scale", type=float, default=4.0, help="demo game scale")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    exes = dict(item.split("=", 1) for item in args.exe)
    wine, env = wine_env()
    with tempfile.TemporaryDirectory(prefix="stitch-winstart-") as tmp:
        work = Path(tmp)
        src = work / "game"
        make_game(src, 1, scale=args.scale)
        key, web = work / "release.key", work / "web"
        subprocess.run([*STITCH, "keygen", str(key)], check=True, capture_output=True)
        subprocess.run([*STITCH, "publish", str(src), str(web / "repo"), "--version", "1.0.0",
                        "--sign-key", str(key)], check=True, capture_output=True)
        pub = (work / "release.key.pub").read_text().splitlines()[-1].strip()
        nginx = Nginx(web, work / "nginx")
        walls: dict[str, list[float]] = {name: [] for name in exes}
        versions: dict[str, list[float]] = {name: [] for name in exes}
        try:
            updates = {}
            for name, exe in exes.items():
                install = work / f"install-{name}"
                updates[name] = [str(Path(exe).resolve()), "--update", "--url",
                                 f"{nginx.url}/repo", "--dir", winpath(install),
                                 "--pubkey", pub, "--progress", "none"]
                run(wine, env, updates[name])  # installs; also warms the caches
            for _ in range(args.runs):
                for name, exe in exes.items():
                    walls[name].append(run(wine, env, updates[name]))
                    versions[name].append(run(wine, env, [str(Path(exe).resolve()),
                                                          "--version"]))
        finally:
            nginx.stop()
    for name in exes:
        w, v = walls[name], versions[name]
        print(f"{name}: --update up to date: median {statistics.median(w):.2f} s "
              f"({min(w):.2f}-{max(w):.2f}); --version: median {statistics.median(v):.2f} s "
              f"({min(v):.2f}-{max(v):.2f}); {len(w)} runs")


if __name__ == "__main__":
    main()
