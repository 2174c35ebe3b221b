"""Local scan speed: chunk + xxh3-128 + SHA-256 of files already in the page cache.

Run from the repository root: ``python tests/bench/scan_speed.py --help``. It writes N
files of M MiB and one big file (game-like content: random runs, zero runs, repeated
blocks), reads them once so they sit in the page cache, then times, best of ``--repeat``:

- the parts alone on one thread (FastCDC cut points, xxh3-128 per chunk, SHA-256), so the
  bound of each is on record for this CPU;
- the N files one at a time (``workers=1``: the scan before the pool), then on the pool
  (``core.chunks.chunker.chunk_files``);
- the big file in one pass.

Each line gives MB/s of wall time, MB/s per core (wall rate / cores the run may use) and MB
per CPU-second (process time: what a core delivers when kept busy; robust to a shared
machine). Not a test: pytest does not collect it. With ``PYTHONPATH`` pointing at an older
checkout whose chunker has no pool, the pool line is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if "core" not in sys.modules and not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import xxhash

import core.chunks.chunker as chunker
from core.chunks.chunker import DEFAULT_PARAMS, chunk_file

MB = 1_000_000


def _write(path: Path, size: int, seed: int) -> None:
    """Game-like bytes: mostly random runs, some zero runs, a repeated block."""
    rng = random.Random(seed)
    block = rng.randbytes(64 << 10)
    left = size
    with open(path, "wb") as f:
        while left > 0:
            kind = rng.random()
            n = min(left, rng.randrange(64 << 10, 4 << 20))
            f.write(rng.randbytes(n) if kind < 0.8 else bytes(n) if kind < 0.9
                    else (block * (n // len(block) + 1))[:n])
            left -= n


def _warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(8 << 20):
                pass


def _time(repeat: int, fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, cpu) seconds of the best of ``repeat`` runs by wall time."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        run = (time.perf_counter() - w, time.process_time() - c)
        best = min(best, run)
    return best


def _line(name: str, nbytes: int, cores: int, wall: float, cpu: float) -> None:
    rate = nbytes / wall / MB
    print(f"{name:44s} {rate:7.0f} MB/s  {rate / cores:6.0f} MB/s/core  "
          f"{nbytes / max(cpu, 1e-9) / MB:6.0f} MB/cpu-s  (cores {cores}, {wall:.3f} s)")


def _parts(path: Path, repeat: int) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        lengths: list[int] = []

        def cut() -> None:
            lengths.clear()
            lengths.extend(c.length for c in DEFAULT_PARAMS.make().cut_buf(view))

        def ids() -> None:
            digest, pos = xxhash.xxh3_128_digest, 0
            for n in lengths:
                digest(view[pos:pos + n])
                pos += n

        _line("part: FastCDC cut points (1 thread)", size, 1, *_time(repeat, cut))
        _line("part: xxh3-128 of each chunk (1 thread)", size, 1, *_time(repeat, ids))
        _line("part: SHA-256 (1 thread)", size, 1,
              *_time(repeat, lambda: hashlib.sha256(view).digest()))
        view.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=8, help="number of small files (default 8)")
    ap.add_argument("--mb", type=int, default=64, help="MiB per small file (default 64)")
    ap.add_argument("--big-mb", type=int, default=1024, help="MiB of the big file (default 1024)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per line, best kept (default 3)")
    ap.add_argument("--workers", type=int, default=0,
                    help="pool size for the N files (default: chunker.scan_workers())")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the files "
                    "(default: a temporary folder, removed at the end)")
    args = ap.parse_args()

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    pool = getattr(chunker, "chunk_files", None)
    workers = args.workers or (chunker.scan_workers() if pool else 1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        small = [Path(tmp) / f"f{i}.bin" for i in range(args.files)]
        for i, p in enumerate(small):
            _write(p, args.mb << 20, i)
        big = Path(tmp) / "big.bin"
        _write(big, args.big_mb << 20, 99)
        _warm([*small, big])
        print(f"CPUs: {cpus}; {args.files} files x {args.mb} MiB, one file of {args.big_mb} "
              f"MiB, page-cached; best of {args.repeat}; {os.getloadavg()[0]:.2f} load")
        _parts(small[0], args.repeat)
        total = sum(p.stat().st_size for p in small)

        def one_at_a_time() -> None:
            for p in small:
                chunk_file(p, DEFAULT_PARAMS)

        _line(f"{args.files} files, one at a time", total, min(cpus, 2),
              *_time(args.repeat, one_at_a_time))
        if pool is not None:
            jobs = [(p, DEFAULT_PARAMS) for p in small]
            _line(f"{args.files} files, pool of {workers}", total, min(cpus, 2 * workers),
                  *_time(args.repeat, lambda: list(pool(jobs, workers=workers))))
        size = big.stat().st_size
        _line("big file, one pass", size, min(cpus, 2),
              *_time(args.repeat, lambda: chunk_file(big, DEFAULT_PARAMS)))
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
