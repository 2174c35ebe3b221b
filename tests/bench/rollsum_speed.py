"""Throughput of core.chunks.rollsum's fast path (and, on a small sample, the pure-Python
reference).

Run from the repository root: ``python tests/bench/rollsum_speed.py [MiB]``. Prints MiB/s for
random data (about 8 KiB chunks), for zeros (forced 32 KiB cuts) and for a file via mmap.
Not a test: pytest does not collect it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.chunks.rollsum import split_file, split_lengths, split_points_reference


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """Best wall time of ``runs`` calls, in seconds (the machine is shared; take the best)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    size = mib << 20
    random_data = os.urandom(size)
    zeros = bytes(size)
    print(f"cores: {os.cpu_count()}, input: {mib} MiB")

    t = best_of(3, lambda: split_lengths(random_data))
    print(f"fast, random data: {mib / t:8.1f} MiB/s ({len(split_lengths(random_data))} chunks)")
    t = best_of(3, lambda: split_lengths(zeros))
    print(f"fast, zeros:       {mib / t:8.1f} MiB/s ({len(split_lengths(zeros))} chunks)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data"
        path.write_bytes(random_data)
        t = best_of(3, lambda: sum(1 for _ in split_file(path)))
        print(f"fast, file (mmap): {mib / t:8.1f} MiB/s")

    sample = random_data[: 2 << 20]
    t = best_of(1, lambda: split_points_reference(sample))
    print(f"reference:         {2 / t:8.1f} MiB/s (2 MiB sample)")


if __name__ == "__main__":
    main()
