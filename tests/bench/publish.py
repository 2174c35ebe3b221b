"""Benchmark ``stitch publish`` at game scale (not a test; numbers go to docs/benchmarks.md).

Generates two releases of a ~500 MB game-like tree that mixes incompressible data (packed,
already-compressed assets), compressible data (scripts, tables, uncompressed textures),
an executable-like binary and many small files; version 2 edits a fraction of them the way
patches do (scattered edits in a pack, code shifted in the executable, a few scripts and
small files changed, the rest identical). Then times ``stitch publish`` of version 1 into
an empty repository and of version 2 on top of it, each as a separate process (the CLI,
interpreter start-up included), and reports MiB/s (tree bytes / wall seconds), the CPU
seconds it used (user + system, every thread) and the repository's size on disk.

    .venv/bin/python -m tests.bench.publish [--dir /tmp/stitch-publish-bench] [--mb 500]
        [--repeat 1] [-- PUBLISH OPTIONS]

The trees are generated once under ``--dir`` and reused (deterministic for a given size).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STITCH = [sys.executable, "-m", "app.cli"]
MB = 1 << 20


def _text(rng: np.random.Generator, size: int) -> bytes:
    """Script- or table-like text: words from a fixed vocabulary, Zipf-distributed, with
    numbers and line breaks (zstd -3 shrinks it to about a third)."""
    vocab_rng = np.random.default_rng(1234)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz_", dtype=np.uint8)
    vocab = [bytes(letters[vocab_rng.integers(0, len(letters), int(n))])
             for n in vocab_rng.integers(2, 12, 4000)]
    vocab += [b"\n", b"(", b")", b" = ", b";\n", b"    "]
    words = np.minimum(rng.zipf(1.3, size // 4), len(vocab)) - 1
    out = bytearray()
    numbers = rng.integers(0, 100000, len(words) // 8 + 1)
    for i, w in enumerate(words.tolist()):
        out += vocab[w]
        out += b" "
        if i % 8 == 7:
            out += str(int(numbers[i // 8])).encode()
        if len(out) >= size:
            break
    return bytes(out[:size])


def _texture(rng: np.random.Generator, size: int) -> bytes:
    """An uncompressed image: smooth gradients with a little noise (compressible)."""
    side = int((size // 4) ** 0.5) + 1
    y, x = np.mgrid[0:side, 0:side]
    base = (x * int(rng.integers(1, 4)) + y * int(rng.integers(1, 4))) % 256
    noise = rng.integers(0, 6, base.shape)
    img = np.stack([base, (base + noise) % 256, (base * 2) % 256, np.full_like(base, 255)], -1)
    return img.astype(np.uint8).tobytes()[:size]


def _binary(rng: np.random.Generator, size: int) -> bytes:
    """An executable-like binary: random code with zero padding and repeated tables (zstd
    shrinks it to about 70-85 %)."""
    out = bytearray(rng.bytes(size))
    pos = 0
    while pos < size:
        run = int(rng.integers(64, 2048))
        out[pos:pos + run] = bytes(min(run, size - pos))
        pos += run + int(rng.integers(2048, 12000))
    return bytes(out)


def make_tree(dest: Path, version: int, total_mb: int = 500) -> int:
    """Write version 1 or 2 of the tree into ``dest``; return its size in bytes."""
    scale = total_mb / 500
    rng = np.random.default_rng(7)
    files: dict[str, bytes] = {}
    for i in range(2):
        files[f"paks/pak{i}.pak"] = rng.bytes(int(100 * MB * scale))  # incompressible
    files["bin/game.exe"] = _binary(rng, int(60 * MB * scale))
    for i in range(20):
        files[f"scripts/s{i:02d}.lua"] = _text(rng, int(5 * MB * scale))
    for i in range(30):
        files[f"textures/t{i:02d}.raw"] = _texture(rng, int(2 * MB * scale))
    for i in range(800):
        size = int(100_000 * scale) + i * 13
        files[f"small/{i // 100}/f{i:03d}.dat"] = (
            rng.bytes(size) if i % 2 else _text(rng, size))
    if version >= 2:
        p = np.random.default_rng(8)
        pak = bytearray(files["paks/pak0.pak"])
        for _ in range(40):  # scattered edits in one pack
            at = int(p.integers(0, len(pak) - 5000))
            pak[at:at + 4000] = p.bytes(4000)
        files["paks/pak0.pak"] = bytes(pak)
        exe = files["bin/game.exe"]
        for at in (1_000_000, 20_000_000, 45_000_000):  # code inserted: the rest shifts
            at = int(at * scale)
            exe = exe[:at] + p.bytes(3000) + exe[at:]
        files["bin/game.exe"] = exe
        for i in (1, 7, 13):
            s = files[f"scripts/s{i:02d}.lua"]
            at = int(p.integers(0, len(s) - 1000))
            files[f"scripts/s{i:02d}.lua"] = s[:at] + _text(p, 20_000) + s[at + 500:]
        files["textures/t04.raw"] = _texture(p, len(files["textures/t04.raw"]))
        for i in range(0, 800, 16):  # 50 small files changed
            rel = f"small/{i // 100}/f{i:03d}.dat"
            d = bytearray(files[rel])
            d[:200] = p.bytes(200)
            files[rel] = bytes(d)
    total = 0
    for rel, data in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
    return total


def _tree(root: Path, version: int, mb: int) -> tuple[Path, int]:
    path = root / f"v{version}-{mb}"
    done = path.with_name(path.name + ".done")
    if not done.exists():
        shutil.rmtree(path, ignore_errors=True)
        make_tree(path, version, mb)
        done.write_text("ok")
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path, size


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (``du``'s view: holes do not count)."""
    return sum(p.lstat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def publish_once(src: Path, repo: Path, version: str, options: list[str]
                 ) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, all threads) of one publish."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run([*STITCH, "publish", str(src), str(repo), "--version", version,
                        *options], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"publish failed: {r.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/stitch-publish-bench"))
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("options", nargs="*", help="publish options (after --)")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    v1, size1 = _tree(args.dir, 1, args.mb)
    v2, size2 = _tree(args.dir, 2, args.mb)
    print(f"tree: v1 {size1 / MB:.1f} MiB, v2 {size2 / MB:.1f} MiB; options: "
          f"{' '.join(args.options) or '(defaults)'}; cpus {os.cpu_count()}; "
          f"load {os.getloadavg()[0]:.2f}")
    for _ in range(args.repeat):
        repo = args.dir / "repo"
        shutil.rmtree(repo, ignore_errors=True)
        t1, c1 = publish_once(v1, repo, "1.0.0", args.options)
        used1 = disk_usage(repo)
        t2, c2 = publish_once(v2, repo, "2.0.0", args.options)
        used2 = disk_usage(repo / "stable" / "2.0.0")
        print(f"first release  {t1:6.2f} s  {size1 / MB / t1:6.1f} MiB/s  cpu {c1:5.2f} s  "
              f"repo on disk "
              f"{used1 / MB:.1f} MiB ({used1 / size1:.3f}x the tree)")
        print(f"second release {t2:6.2f} s  {size2 / MB / t2:6.1f} MiB/s  cpu {c2:5.2f} s  "
              f"release on disk "
              f"{used2 / MB:.1f} MiB ({used2 / size2:.3f}x the tree)  "
              f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
