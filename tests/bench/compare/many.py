"""Many small changed files (issue 16.4): a real many-file pair, and zsync on a tar of it.

- npm ``@fortawesome/fontawesome-free`` 6.7.1 -> 6.7.2 (``npm pack``, fetched once into
  ``--cache``): 2,149 files, 18.5 MB unpacked; 2,121 of them changed, most by a few bytes
  (every one of its 2,060 SVG icons carries the version in a comment), like a game-data tree
  rebuilt with a new version stamp. Median changed file 823 bytes: per-file requests, not
  bytes, are what such an update costs.
- tool ``zsync-tar``: zsync as a publisher of a many-file tree would use it: one ``.zsync``
  of a deterministic tar of the new tree; the player keeps the old tar as the seed, and the
  timed command is ``zsync -i OLD.tar -o NEW.tar URL.zsync`` and ``tar -xf`` of the result.
  Tool ``zsync-tar-sync``: the same, then ``sync -f`` of the result's file system (stitch
  makes its files durable with one ``syncfs`` before its commit): context, not a target.

Hooked into ``__main__`` (``--pairs many``) and ``harness.compare_pair`` (the tool).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from tests.bench.compare.harness import Pair, Run, files_of
from tests.bench.compare.pairs import _unpack, folder_pair

FA = ("@fortawesome/fontawesome-free", "6.7.1", "6.7.2")


def pairs(work: Path, cache: Path) -> list[Pair]:
    cache.mkdir(parents=True, exist_ok=True)
    name, a, b = FA
    slug = name.lstrip("@").replace("/", "-")  # npm pack's file name for a scoped package
    ta, tb = _fetch_npm_scoped(cache, name, a, slug), _fetch_npm_scoped(cache, name, b, slug)
    ua = _unpack(ta, cache / f"{slug}-{a}") / "package"
    ub = _unpack(tb, cache / f"{slug}-{b}") / "package"
    return [folder_pair(f"fontawesome-free {a}→{b}, unpacked (many small files)", ua, ub,
                        work / "many" / "fa", f"npm pack {name}@{a} / @{b}")]


def _fetch_npm_scoped(cache: Path, name: str, version: str, slug: str) -> Path:
    tgz = cache / f"{slug}-{version}.tgz"
    if not tgz.exists():
        subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(cache),
                        "--silent"], check=True, stdout=subprocess.DEVNULL)
    return tgz


def tar(tree: Path, out: Path) -> Path:
    """A deterministic tar of ``tree`` (sorted, fixed owner and mtime)."""
    subprocess.run(["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
                    "--mtime=@0", "-cf", str(out), "-C", str(tree), *files_of(tree)],
                   check=True)
    return out


def zsync_tar(pair: Pair, www: Path, out: Path, work: Path, base: str, durable: bool = False
              ) -> tuple[Run, list[str], object, Path]:
    """The ``zsync-tar`` run: (run, command, prepare, result folder) for ``measure``.
    ``durable`` (tool ``zsync-tar-sync``): then ``sync -f`` of the result's file system, what
    stitch pays to be crash-safe (one ``syncfs``), for comparison only."""
    name = "zsync-tar-sync" if durable else "zsync-tar"
    zroot = www / "zsync-tar"
    zroot.mkdir(parents=True, exist_ok=True)
    new_tar = zroot / "new.tar"
    if not new_tar.exists():
        tar(pair.new, new_tar)
    old_tar = work / "old.tar"
    if not old_tar.exists():
        tar(pair.old, old_tar)
    t = time.perf_counter()
    subprocess.run(["zsyncmake", "-Z", "-o", f"{new_tar}.zsync", "-u", "new.tar",
                    str(new_tar)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    pub = time.perf_counter() - t
    dest = out / name
    got = work / f"{name}-new.tar"
    script = work / f"{name}.sh"
    script.write_text("set -e\n" + "\n".join([
        shlex.join(["zsync", "-q", "-i", str(old_tar), "-o", str(got),
                    f"{base}/zsync-tar/new.tar.zsync"]),
        shlex.join(["mkdir", "-p", str(dest)]),
        shlex.join(["tar", "-xf", str(got), "-C", str(dest)]),
        *([shlex.join(["sync", "-f", str(dest)])] if durable else []),
    ]) + "\n")

    def prepare() -> None:
        subprocess.run(["rm", "-rf", str(dest), str(got)], check=True)

    if durable:
        run = Run("zsync (one tar) + sync", publish_s=pub, note="zsync + tar -xf + sync -f")
    else:
        run = Run("zsync (one tar of the tree)", publish_s=pub, note="zsync + tar -xf")
    return run, ["sh", str(script)], prepare, dest
