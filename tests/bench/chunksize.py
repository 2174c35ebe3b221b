"""Choose the default FastCDC sizes by measurement on game-like release pairs.

For each candidate average chunk size (min = avg/4, max = avg*4), on each pair: the bytes an
update downloads (planned remote ranges with the default cost model, plus the .fidx of every
changed file), the index overhead of the whole release, and chunking throughput.

    .venv/bin/python tests/bench/chunksize.py [--scale 4]

Not a test: run by hand, record the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from pathlib import Path

from app.demo import make_game
from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.fidx import HEADER_SIZE, RECORD_SIZE, TRAILER_SIZE, FileIndex
from core.chunks.planner import PlanOptions, SeedSet, plan_file


def code_shift_pair(size: int, seed: int = 3) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A big executable-like binary: v2 has code inserted at 30 places and 200 small
    patches (relocated addresses)."""
    rng = random.Random(seed)
    old = bytearray(rng.randbytes(size))
    new = bytearray(old)
    for _ in range(200):
        at = rng.randrange(len(new) - 8)
        new[at:at + 4] = rng.randbytes(4)
    for _ in range(30):
        at = rng.randrange(len(new))
        new[at:at] = rng.randbytes(rng.randrange(64, 4096))
    return {"game.bin": bytes(old)}, {"game.bin": bytes(new)}


def folder(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def measure(old: dict[str, bytes], new: dict[str, bytes], avg: int,
            options: PlanOptions) -> tuple[int, int, int, int, float]:
    params = ChunkerParams(max(64, avg // 4), avg, avg * 4)
    t0 = time.perf_counter()
    seeds = []
    for name, data in old.items():
        c = chunk_bytes(data, params)
        idx = FileIndex.from_chunks(params, c, b"\0" * 32)
        seeds.append((name, idx.offsets()[:-1], idx.lengths, idx.ids))
    seed_set = SeedSet.build(seeds)
    download = 0
    requests = 0
    index_all = 0
    nbytes = sum(len(d) for d in old.values())
    for name, data in new.items():
        c = chunk_bytes(data, params)
        nbytes += len(data)
        idx = FileIndex.from_chunks(params, c, hashlib.sha256(data).digest())
        size = HEADER_SIZE + RECORD_SIZE * len(idx) + TRAILER_SIZE
        index_all += size
        if old.get(name) == data:
            continue
        plan = plan_file(idx, seed_set, options)
        download += plan.bytes_remote + size
        requests += plan.requests(options.ranges_per_request)
    secs = time.perf_counter() - t0
    total = sum(len(d) for d in new.values())
    return download, requests, index_all, total, nbytes / secs / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--range-cost", type=int, nargs="+", default=[0, 2000, 16000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pairs = {
            "demo game (WAD, pak, exe, textures)": (
                folder(make_game(base / "a", 1, args.scale)),
                folder(make_game(base / "b", 2, args.scale))),
            "code-shifted binary": code_shift_pair(int(16e6 * args.scale / 4)),
        }
        print("| pair | avg chunk | range cost | update downloads (bytes) | range requests "
              "| index overhead | chunk+plan MB/s |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, (old, new) in pairs.items():
            for avg in (2048, 4096, 8192, 16384, 32768, 65536):
                for cost in args.range_cost:
                    opts = PlanOptions(range_cost=cost)
                    dl, req, idx, total, speed = measure(old, new, avg, opts)
                    print(f"| {label} | {avg // 1024} KiB | {cost} | {dl:,} | {req} "
                          f"| {100 * idx / total:.2f}% | {speed:.0f} |")


if __name__ == "__main__":
    main()
