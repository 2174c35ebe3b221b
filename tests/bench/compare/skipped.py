"""Players who skipped releases (issue 16.2): a series of releases, a player on each earlier
one updating to the latest, stitch (defaults) beside zsync, casync and ``zstd --patch-from``.

    .venv/bin/python -m tests.bench.compare --pairs skipped [--only NAME] [--ks 1,2,3,5]

Series (the real ones fetched once into ``--cache`` with npm):

- npm ``typescript`` 5.4.2, 5.4.3, 5.4.4, 5.4.5 (unpacked: 116 files, 32 MB);
- npm ``esbuild-wasm`` 0.19.8 … 0.19.12 (unpacked; its 11 MB ``esbuild.wasm`` changes in
  every release);
- a generated game of six releases (``game_series``): an executable with code inserted
  each release, a packed asset file with scattered edits, a lump archive with one lump
  replaced, files that never change.

stitch: every release published in turn with the defaults (signed) into one repository; a
snapshot of the repository (hard links) after each release installs the player on it; the
player then updates from the full repository and nginx's log gives the bytes and requests.
zsync, casync and the zstd figures come from ``harness.compare_pair`` on the pair (the
player's release, the latest). ``--ks``: the same series published with each
``--delta-releases K``, its deltas' storage and each player's bytes (the K table).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.bench.compare.harness import (
    REPO_ROOT,
    STITCH,
    Nginx,
    Pair,
    PairResult,
    Run,
    check_tree,
    compare_pair,
    files_of,
    sha256,
    timed,
)
from tests.bench.compare.pairs import _fetch_npm, _unpack

Series = tuple[str, str, list[tuple[str, Path]]]  # name, origin, (version, folder) oldest first

TS = ("typescript", ["5.4.2", "5.4.3", "5.4.4", "5.4.5"])
ESBUILD = ("esbuild-wasm", ["0.19.8", "0.19.9", "0.19.10", "0.19.11", "0.19.12"])


def npm_series(cache: Path, name: str, versions: list[str]) -> Series:
    rels = []
    for v in versions:
        rels.append((v, _unpack(_fetch_npm(cache, name, v), cache / f"{name}-{v}")))
    return (name, f"npm pack {name}@{versions[0]} … @{versions[-1]}", rels)


def game_series(dest: Path, releases: int = 6, mb: float = 48.0, seed: int = 16) -> Series:
    """A game of ``releases`` versions (about ``mb`` MB): each release inserts code at three
    places of the executable (everything after shifts), edits 20 scattered 100-byte spots
    of the packed assets, and replaces one lump of the archive; the music never changes."""
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    n = int(mb * 1e6)
    exe = bytearray(rng.integers(0, 256, n // 4, dtype=np.uint8).tobytes())
    pak = bytearray(rng.integers(0, 256, n // 2, dtype=np.uint8).tobytes())
    lumps = [rng.integers(0, 256, n // 64, dtype=np.uint8).tobytes() for _ in range(8)]
    music = rng.integers(0, 256, n // 8, dtype=np.uint8).tobytes()
    rels = []
    for r in range(releases):
        if r:
            for _ in range(3):
                at = prng.randrange(len(exe))
                exe[at:at] = prng.randbytes(prng.randrange(200, 3000))
            for _ in range(20):
                at = prng.randrange(len(pak) - 100)
                pak[at:at + 100] = prng.randbytes(100)
            lumps[prng.randrange(len(lumps))] = prng.randbytes(len(lumps[0]))
        d = dest / f"game-{r + 1}"
        for rel, data in (("bin/game.exe", bytes(exe)), ("data/assets.pak", bytes(pak)),
                          ("data/maps.wad", b"".join(lumps)), ("data/music.ogg", music),
                          ("readme.txt", f"release 1.{r}\n".encode() * 20)):
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        rels.append((f"1.{r}.0", d))
    return ("generated game", f"tests.bench.compare.skipped.game_series({releases}, "
            f"{mb:g} MB)", rels)


def _publish_series(series: Series, repo: Path, snaps: Path | None, opts: list[str],
                    key: Path) -> float:
    """Publish every release of ``series`` into ``repo`` in turn; after each but the last,
    a hard-linked snapshot ``snaps/<version>`` (the repository as it was then). Returns the
    seconds the last publish took."""
    import time

    took = 0.0
    for n, (version, folder) in enumerate(series[2]):
        t = time.perf_counter()
        subprocess.run([*STITCH, "publish", str(folder), str(repo), "--version", version,
                        "--sign-key", str(key), "--product", "bench", *opts],
                       cwd=REPO_ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        took = time.perf_counter() - t
        if snaps is not None and n < len(series[2]) - 1:
            subprocess.run(["cp", "-al", str(repo), str(snaps / version)], check=True)
    return took


def _delta_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for p in repo.rglob("*.zdelta"))


def _stitch_run(label: str, base: str, web: Path, repo: Path, snap: Path, inst: Path,
                key: Path, nginx: Nginx, logs: Path, expected: dict[str, str],
                publish_s: float | None) -> Run:
    """Install from ``snap`` (the player's release), then update from ``repo``: one run."""
    trust = ["--pubkey", f"{key}.pub"]
    if inst.exists():
        shutil.rmtree(inst)
    url = f"{base}/{snap.relative_to(web).as_posix()}"
    subprocess.run([*STITCH, "update", "--url", url, "--dir", str(inst), "--progress", "none",
                    *trust], cwd=REPO_ROOT, check=True, stderr=subprocess.DEVNULL)
    run = Run(label, publish_s=publish_s)
    nginx.mark()
    wall, rss = timed([*STITCH, "update", "--url", f"{base}/{repo.relative_to(web).as_posix()}",
                       "--dir", str(inst), "--progress", "none", *trust],
                      logs / f"{inst.name}.log", cwd=REPO_ROOT)
    run.sent, run.requests, lines = nginx.since_mark()
    run.meta = sum(int(x.split()[0]) for x in lines if ".zdelta" not in x.split()[-2]
                   and x.split()[-2].endswith((".fidx", ".groups", ".json", ".minisig")))
    run.walls, run.rss_kb = [wall], rss
    run.check = check_tree(expected, inst)
    return run


def compare_series(series: Series, work: Path, nginx: Nginx, web: Path, patch_level: int,
                   zstd_cache: Path | None, say: Callable[[str], None],
                   ks: list[int]) -> tuple[list[PairResult], list[str]]:
    """The comparison rows of every player of ``series`` (one ``PairResult`` per release
    behind) and the lines of its K table."""
    name, origin, rels = series
    www = work / "www"
    (www / "snaps").mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    key = work / "stitch.key"
    subprocess.run([*STITCH, "keygen", str(key)], cwd=REPO_ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    base = nginx.url
    repo = www / "stitch"
    pub_s = _publish_series(series, repo, www / "snaps", [], key)
    latest_v, latest = rels[-1]
    expected = {rel: sha256(p) for rel, p in files_of(latest).items()}
    results = []
    for behind in range(1, len(rels)):
        old_v, old = rels[-1 - behind]
        label = f"{name} {old_v}→{latest_v} ({behind} behind)"
        say(f"  {label}")
        pair = Pair(label, old, latest, "folder", origin)
        res = compare_pair(pair, work / f"b{behind}", nginx, web, ["zsync", "casync"], 1,
                           patch_level, zstd_cache, say)
        run = _stitch_run("stitch (defaults)", base, web, repo, www / "snaps" / old_v,
                          work / "out" / f"stitch-{behind}", key, nginx, logs, expected,
                          pub_s)
        say(f"    stitch: sent {run.sent:,} in {run.requests} requests, {run.check}")
        res.runs.insert(0, run)
        results.append(res)
    table = []
    for k in ks:
        krepo = www / f"k{k}"
        _publish_series(series, krepo, None, ["--delta-releases", str(k)], key)
        sent = []
        for behind in range(1, len(rels)):
            old_v = rels[-1 - behind][0]
            run = _stitch_run(f"K={k}", base, web, krepo, www / "snaps" / old_v,
                              work / "out" / f"k{k}-{behind}", key, nginx, logs, expected,
                              None)
            sent.append(f"{run.sent:,}" + ("" if run.check.startswith("ok") else " FAILED"))
        table.append(f"| {name} | {k} | {_delta_bytes(krepo):,} | " + " | ".join(sent) + " |")
        say("  " + table[-1])
    return results, table


def run_all(args: argparse.Namespace, nginx: Nginx, web: Path, say: Callable[[str], None]
            ) -> tuple[list[PairResult], list[str]]:
    """Every series (``--only`` filters by name); the comparison rows and the K table."""
    work: Path = args.work
    cache: Path = args.cache
    only: str = args.only.lower()
    ks = [int(k) for k in args.ks.split(",") if k]
    cache.mkdir(parents=True, exist_ok=True)
    series = []
    if only in "typescript":
        series.append(npm_series(cache, *TS))
    if only in "esbuild-wasm":
        series.append(npm_series(cache, *ESBUILD))
    if only in "generated game":
        series.append(game_series(work / "src" / "game"))
    results: list[PairResult] = []
    table = ["| series | K | deltas stored (all releases) | "
             + " | ".join(f"{b} behind" for b in range(1, 6)) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in range(5)) + " |"]
    for i, s in enumerate(series):
        say(f"[{i + 1}/{len(series)}] {s[0]} ({s[1]})")
        res, rows = compare_series(s, web / f"s{i}", nginx, web, args.patch_level,
                                   cache / "zstd-figures.json", say, ks)
        results += res
        table += rows
    return results, table
