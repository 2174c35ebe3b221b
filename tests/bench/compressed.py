"""What compression costs an update: bytes a client one version behind downloads for a
tarball of a game folder, uncompressed vs gzip vs ``gzip --rsyncable`` vs xz vs zstd (and
``zstd --rsyncable``) vs zip, with ``.fidx`` v1 (bupsplit) and v2 (FastCDC, stitch's
defaults). Needs tar, gzip, xz, zstd and zip on PATH. Prints a Markdown table for
docs/sync.md.

    .venv/bin/python tests/bench/compressed.py [--scale 2] [--work /tmp/stitch-compressed]

The game is the demo game (incompressible assets, like real textures and sounds) plus a
copy of numpy's installed package (compressible code and data); version 2 is the demo's
version 2 plus 20 numpy files edited in place and one added.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.demo import make_game
from core.chunks.chunker import DEFAULT_PARAMS
from core.chunks.indexer import V1_PARAMS, index_file
from core.chunks.planner import SeedSet


def make_versions(work: Path, scale: float) -> tuple[Path, Path]:
    src = Path(np.__file__).parent
    out = []
    for v in (1, 2):
        d = work / f"game{v}"
        make_game(d / "game", v, scale)
        shutil.copytree(src, d / "game" / "lib", ignore=shutil.ignore_patterns("__pycache__"))
        out.append(d)
    rng = random.Random(5)
    files = sorted(p for p in (out[1] / "game" / "lib").rglob("*.py") if p.stat().st_size > 4000)
    for p in rng.sample(files, 20):
        data = bytearray(p.read_bytes())
        at = rng.randrange(len(data) - 200)
        data[at:at + 100] = bytes(rng.randrange(32, 127) for _ in range(100))
        p.write_bytes(bytes(data))
    (out[1] / "game" / "lib" / "new_module.py").write_text("x = 1\n" * 3000)
    return out[0], out[1]


FORMATS = {
    "tar (uncompressed)": ("tar", None),
    "tar.gz (gzip -9)": ("tar.gz", ["gzip", "-9", "-n", "-c"]),
    "tar.gz (gzip -9 --rsyncable)": ("rs.tar.gz", ["gzip", "-9", "-n", "--rsyncable", "-c"]),
    "tar.xz (xz -6)": ("tar.xz", ["xz", "-6", "-T1", "-c"]),
    "tar.zst (zstd -3)": ("tar.zst", ["zstd", "-3", "-q", "-c"]),
    "tar.zst (zstd -3 --rsyncable)": ("rs.tar.zst", ["zstd", "-3", "-q", "--rsyncable", "-c"]),
    "zip (deflate)": ("zip", None),
}


def archive(d: Path, name: str, cmd: list[str] | None, ext: str) -> Path:
    tar = d.with_suffix(".tar")
    if not tar.exists():
        subprocess.run(["tar", "--sort=name", "--mtime=2020-01-01", "--owner=0", "--group=0",
                        "-cf", str(tar), "-C", str(d), "game"], check=True)
    out = d.parent / f"{d.name}.{ext}"
    if ext == "zip":
        out.unlink(missing_ok=True)
        subprocess.run(["zip", "-q", "-X", "-r", str(out), "game"], cwd=d, check=True)
    elif cmd is None:
        return tar
    else:
        with open(out, "wb") as f:
            subprocess.run([*cmd, str(tar)], stdout=f, check=True)
    return out


def cost(old: Path, new: Path, params: object) -> tuple[int, int]:
    """(bytes of new chunks not in old, index size)."""
    a = index_file(old, params)  # type: ignore[arg-type]
    b = index_file(new, params)  # type: ignore[arg-type]
    seeds = SeedSet.build([("old", a.index.offsets()[:-1], a.index.lengths, a.index.ids)])
    missing = seeds.lookup(b.index.ids, b.index.lengths) < 0
    return int(b.index.lengths[missing].sum(dtype=np.uint64)), len(b.raw)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/stitch-compressed"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    g1, g2 = make_versions(args.work, args.scale)
    print("| archive | size | v1 download | v2 download |")
    print("| --- | ---: | ---: | ---: |")
    for label, (ext, cmd) in FORMATS.items():
        a, b = archive(g1, label, cmd, ext), archive(g2, label, cmd, ext)
        size = b.stat().st_size
        cells = []
        for params in (V1_PARAMS, DEFAULT_PARAMS):
            new, idx = cost(a, b, params)
            cells.append(f"{(new + idx) / 1e6:.2f} MB ({100 * (new + idx) / size:.0f}%)")
        print(f"| {label} | {size / 1e6:.2f} MB | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
