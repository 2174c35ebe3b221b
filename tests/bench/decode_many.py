"""The per-delta cost of decoding many tiny deltas in a row, as a many-file update does
(issue 16.4; numbers go to docs/benchmarks.md, "One open of the old file per decode").

    .venv/bin/python -m tests.bench.decode_many [--files 2100] [--dir /tmp/decode-many]
        [--marker PATH]

Makes ``--files`` pairs of 4,000-byte files (the new one 4 bytes longer) and their deltas
in ``--dir`` (kept for the next run), then decodes every delta through
``delta.open_decoder`` in this process and prints the time of the decoding loop alone.
``--marker``: a file written just before the loop, so that ``strace -f -o LOG`` of the
run can be cut there (every line after its ``openat`` is the loop's).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from core.formats import delta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2100)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/decode-many"))
    ap.add_argument("--marker", type=Path)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    pairs = []
    for i in range(args.files):
        old, new, d = args.dir / f"o{i}", args.dir / f"n{i}", args.dir / f"d{i}"
        if not d.exists():
            b = rng.randbytes(4000)
            old.write_bytes(b)
            new.write_bytes(b[:2000] + b"edit" + b[2000:])
            delta.make(old, new, d)
        pairs.append((old, d.read_bytes(), new.read_bytes()))
    if args.marker is not None:
        args.marker.write_text("decoding\n")
    wrong = 0
    t = time.perf_counter()
    for old, data, want in pairs:
        out = bytearray(len(want))

        def write(b: bytes | memoryview, at: int, out: bytearray = out) -> None:
            out[at:at + len(b)] = b

        dec = delta.open_decoder(old, len(want), write)
        try:
            dec.feed(data)
            dec.finish()
        finally:
            dec.close()
        wrong += out != want
    took = time.perf_counter() - t
    print(f"{len(pairs)} decodes: {took:.3f} s ({took / len(pairs) * 1e6:.1f} µs each)"
          f"{f', {wrong} WRONG' if wrong else ''}")


if __name__ == "__main__":
    main()
