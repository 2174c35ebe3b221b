"""Offline estimates behind the proposals in docs/benchmarks.md (issue 7): what two changes
to stitch would download on a pair, computed from the bytes, without a server.

    .venv/bin/python -m tests.bench.compare.estimates compress OLD NEW
    .venv/bin/python -m tests.bench.compare.estimates subchunk OLD NEW [--avg 512]

Both chunk every file of OLD and NEW with stitch's defaults (``core.chunks.chunker.DEFAULT_PARAMS``)
and look at the chunks of NEW that no file of OLD has: what a chunk client must fetch.

``compress``: their raw size vs each chunk compressed alone with zstd (levels 3 and 19: a
per-chunk compressed copy beside each file) vs zstd frames over runs of consecutive chunks
cut at about 64 KiB (a needed chunk costs its whole frame). Needs the ``zstandard`` module
(``pip install --target /tmp/zs zstandard`` and ``PYTHONPATH=/tmp/zs``; it is not a
dependency of stitch).

``subchunk``: "smaller chunks inside changed regions": each run of missing chunks is cut again
at a small average (FastCDC, min avg/4, max avg*4); counts the sub-chunks that OLD (cut at
the same small size) lacks, and the extra index (20 bytes per sub-chunk).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.chunks.chunker import DEFAULT_PARAMS, ChunkerParams, chunk_bytes, chunk_file
from tests.bench.compare.harness import files_of


def _tree(p: Path) -> dict[str, Path]:
    return {p.name: p} if p.is_file() else files_of(p)


def _ids(files: dict[str, Path], params: ChunkerParams) -> set[bytes]:
    out: set[bytes] = set()
    for p in files.values():
        c, _ = chunk_file(p, params)
        out.update(bytes(x) for x in c.ids)
    return out


def _missing_runs(old: dict[str, Path], new: dict[str, Path]):  # type: ignore[no-untyped-def]
    """Yield (file bytes, chunk offsets, needed mask) for every changed file of ``new``."""
    have = _ids(old, DEFAULT_PARAMS)
    for p in new.values():
        c, _ = chunk_file(p, DEFAULT_PARAMS)
        need = np.array([bytes(x) not in have for x in c.ids], dtype=bool)
        if need.any():
            offs = np.concatenate([[0], np.cumsum(c.lengths.astype(np.int64))])
            yield p.read_bytes(), offs, need


def compress(old: dict[str, Path], new: dict[str, Path]) -> None:
    import zstandard  # type: ignore[import-not-found]

    z3, z19 = zstandard.ZstdCompressor(level=3), zstandard.ZstdCompressor(level=19)
    raw = c3 = c19 = frames = frames_raw = 0
    for data, offs, need in _missing_runs(old, new):
        for k in np.nonzero(need)[0]:
            b = data[offs[k]:offs[k + 1]]
            raw += len(b)
            c3 += len(z3.compress(b))
            c19 += len(z19.compress(b))
        start = 0
        while start < len(need):
            end = start
            while end < len(need) and offs[end] - offs[start] < 65536:
                end += 1
            if need[start:end].any():
                b = data[offs[start]:offs[end]]
                frames += len(z19.compress(b))
                frames_raw += len(b)
            start = end
    print(f"new chunk bytes {raw:,}; each chunk zstd -3: {c3:,} ({c3 / max(raw, 1):.2f}); "
          f"each chunk zstd -19: {c19:,} ({c19 / max(raw, 1):.2f}); 64 KiB frames zstd -19: "
          f"{frames:,} (frames hold {frames_raw:,} raw bytes)")


def subchunk(old: dict[str, Path], new: dict[str, Path], avg: int) -> None:
    small = ChunkerParams(avg // 4, avg, avg * 4)
    have_small = _ids(old, small)
    raw = count = needed = 0
    for data, offs, need in _missing_runs(old, new):
        k = 0
        while k < len(need):
            if not need[k]:
                k += 1
                continue
            j = k
            while j < len(need) and need[j]:
                j += 1
            region = data[offs[k]:offs[j]]
            raw += len(region)
            sc = chunk_bytes(region, small)
            count += len(sc.lengths)
            needed += sum(int(n) for n, i in zip(sc.lengths, sc.ids, strict=True)
                          if bytes(i) not in have_small)
            k = j
    print(f"avg {avg} B: new chunk bytes {raw:,}; {count:,} sub-chunks (index "
          f"{count * 20:,} B); sub-chunk bytes still needed {needed:,}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.compare.estimates")
    ap.add_argument("what", choices=["compress", "subchunk"])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--avg", type=int, default=512, help="sub-chunk average (subchunk)")
    a = ap.parse_args()
    old, new = _tree(a.old), _tree(a.new)
    if a.what == "compress":
        compress(old, new)
    else:
        subchunk(old, new, a.avg)


if __name__ == "__main__":
    main()
