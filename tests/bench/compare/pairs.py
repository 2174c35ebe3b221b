"""The release pairs: generated game-like ones and real public ones from package registries.

Generated (deterministic):

- the demo game (``app.demo.make_game``, scale ``--scale``): a WAD-like lump archive with
  two lumps inserted, two replaced and one edited; a packed asset file with 20 scattered
  edits; an executable with code inserted at three places; textures with three renames and
  one edit; a file added, one removed. Pure noise in the big files, like compressed game
  assets, so compression helps nobody there.
- the WAD alone (a single-file pair) and the texture folder alone (renames), cut from it;
- a code-shifted executable-like binary (``--bin-mb``; a mix of random, skewed and zero-heavy
  4 KiB blocks, which ``zstd -3`` shrinks to 86 %), with 30 insertions of 64 B-4 KiB and
  200 4-byte patches.

Real (fetched once into ``--cache`` with the registries' own clients):

- npm ``typescript`` 5.4.4 -> 5.4.5: a patch release; 116 files, 32 MB unpacked, four
  JavaScript bundles (1.8-9.1 MB) edited in a few places, and package.json. The ``.tgz`` too (the
  archive as published: gzip, so small edits scramble everything after them).
- Debian ``libreoffice-core`` 4:7.4.7-1+deb12u13 -> deb12u14: two consecutive security
  rebuilds of the same upstream release; 73 files, 120 MB unpacked, one 69 MB shared
  library (``libmergedlo.so``) rebuilt with code shifts throughout. Like a game patch
  of a big engine binary. The ``.deb`` too (ar + xz).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np

from app.demo import make_game
from tests.bench.compare.harness import Pair, files_of

TS = ("typescript", "5.4.4", "5.4.5")
LO = ("libreoffice-core", "4:7.4.7-1+deb12u13", "4:7.4.7-1+deb12u14")


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _sub_tree(src: Path, dst: Path) -> Path:
    for rel, p in files_of(src).items():
        _link(p, dst / rel)
    return dst


def file_pair(name: str, old: Path, new: Path, dest: Path, origin: str,
              as_name: str = "") -> Pair:
    """A single-file pair: one file under the same name (``as_name``, else the new one's)
    on both sides."""
    as_name = as_name or new.name
    _link(old, dest / "old" / as_name)
    _link(new, dest / "new" / as_name)
    return Pair(name, dest / "old", dest / "new", "file", origin)


def folder_pair(name: str, old: Path, new: Path, dest: Path, origin: str) -> Pair:
    """A folder pair of regular files only (symlinks are left out: stitch skips them and
    zsync cannot carry them)."""
    return Pair(name, _sub_tree(old, dest / "old"), _sub_tree(new, dest / "new"), "folder",
                origin)


# ------------------------------------------------------------------------------ generated

def _code_like(rng: np.random.Generator, n: int) -> bytes:
    """Executable-like bytes in 4 KiB blocks of three kinds: random (data, 35 %), skewed like
    opcodes and small immediates (50 %), zero-heavy tables (15 %). ``zstd -3`` shrinks 64 MB
    of it to 86 %."""
    blocks = -(-n // 4096)
    kinds = rng.choice(3, size=blocks, p=[0.35, 0.5, 0.15])
    out = np.empty(blocks * 4096, dtype=np.uint8)
    view = out.reshape(blocks, 4096)
    r = rng.integers(0, 256, size=(int((kinds == 0).sum()), 4096), dtype=np.uint8)
    view[kinds == 0] = r
    g = np.minimum(rng.geometric(0.04, size=(int((kinds == 1).sum()), 4096)), 255)
    view[kinds == 1] = g.astype(np.uint8)
    t = rng.integers(0, 256, size=(int((kinds == 2).sum()), 4096), dtype=np.uint8)
    t[:, rng.random(4096) < 0.75] = 0
    view[kinds == 2] = t
    return out[:n].tobytes()


def code_shift_binary(dest: Path, mb: float, seed: int = 3) -> Pair:
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    old = _code_like(rng, int(mb * 1e6))
    new = bytearray(old)
    for _ in range(200):  # relocated addresses
        at = prng.randrange(len(new) - 8)
        new[at:at + 4] = prng.randbytes(4)
    for _ in range(30):  # code inserted: everything after it shifts
        at = prng.randrange(len(new))
        new[at:at] = _code_like(rng, prng.randrange(64, 4096))
    for side, data in (("old", old), ("new", bytes(new))):
        p = dest / side / "engine.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return Pair(f"code-shifted binary ({mb:g} MB)", dest / "old", dest / "new", "file",
                f"generated: {mb:g} MB, 30 insertions (64 B-4 KiB), 200 4-byte patches")


def generated(work: Path, scale: float, bin_mb: float) -> list[Pair]:
    g = work / "gen"
    v1 = make_game(g / "game-v1", 1, scale)
    v2 = make_game(g / "game-v2", 2, scale)
    origin = f"app.demo.make_game(scale={scale:g})"
    return [
        Pair(f"demo game folder (scale {scale:g})", v1, v2, "folder", origin),
        file_pair("WAD lump archive", v1 / "data/game.wad", v2 / "data/game.wad",
                  g / "wad", origin + ": data/game.wad"),
        folder_pair("texture folder (3 renames, 1 edit)", v1 / "textures", v2 / "textures",
                    g / "textures", origin + ": textures/"),
        code_shift_binary(g / "bin", bin_mb),
    ]


# ----------------------------------------------------------------------------------- real

def _fetch_npm(cache: Path, name: str, version: str) -> Path:
    tgz = cache / f"{name}-{version}.tgz"
    if not tgz.exists():
        subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(cache),
                        "--silent"], check=True, stdout=subprocess.DEVNULL)
    return tgz


def _fetch_deb(cache: Path, name: str, version: str) -> Path:
    fname = f"{name}_{version.replace(':', '%3a')}_amd64.deb"
    deb = cache / fname
    if not deb.exists():
        subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=cache,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return deb


def _unpack(archive: Path, dest: Path) -> Path:
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if archive.suffix == ".deb":
            subprocess.run(["dpkg-deb", "-x", str(archive), str(tmp)], check=True)
        else:
            subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp)], check=True)
        tmp.rename(dest)
    return dest


def real(work: Path, cache: Path) -> list[Pair]:
    cache.mkdir(parents=True, exist_ok=True)
    r = work / "real"
    name, a, b = TS
    ta, tb = _fetch_npm(cache, name, a), _fetch_npm(cache, name, b)
    ua, ub = _unpack(ta, cache / f"{name}-{a}"), _unpack(tb, cache / f"{name}-{b}")
    npm = f"npm pack {name}@{a} / @{b}"
    name_l, la, lb = LO
    da, db = _fetch_deb(cache, name_l, la), _fetch_deb(cache, name_l, lb)
    xa = _unpack(da, cache / f"{name_l}-{la.split('+')[-1]}")
    xb = _unpack(db, cache / f"{name_l}-{lb.split('+')[-1]}")
    apt = f"apt-get download {name_l}={la} / ={lb}"
    return [
        folder_pair(f"{name} {a}→{b}, unpacked", ua, ub, r / "ts-dir", npm),
        file_pair(f"{name} {a}→{b}, .tgz", ta, tb, r / "ts-tgz", npm, f"{name}.tgz"),
        folder_pair(f"{name_l} 7.4.7 deb12u13→u14, unpacked", xa, xb, r / "lo-dir", apt),
        file_pair(f"{name_l} 7.4.7 deb12u13→u14, .deb", da, db, r / "lo-deb", apt,
                  f"{name_l}_amd64.deb"),
    ]


def custom(work: Path, old: Path, new: Path) -> Pair:
    if old.is_file() and new.is_file():
        return file_pair(new.name, old, new, work / "custom", f"{old} → {new}")
    if old.is_dir() and new.is_dir():
        return folder_pair(new.name, old, new, work / "custom", f"{old} → {new}")
    raise SystemExit("OLD and NEW must both be files or both folders")
