"""Bytes and CPU seconds of deltas: one frame against the copy table, by zstd level (issue
16.2; numbers go to docs/benchmarks.md, "Skipped releases within 2x").

    .venv/bin/python -m tests.bench.delta_cost typescript [--cache /tmp/ts-cache]
    .venv/bin/python -m tests.bench.delta_cost publish [--dir /tmp/ts-pub]

``typescript``: the deltas of typescript 5.4.5's four bundles from 5.4.4, 5.4.3 and 5.4.2
(fetched by ``tests.bench.compare --pairs skipped`` into ``--cache``). ``publish``: the
deltas of every file changed between the two releases ``tests.bench.publish`` published
into ``--dir`` (run it first). Each variant in turn in this process; CPU = user + system.
"""

from __future__ import annotations

import argparse
import filecmp
import resource
import tempfile
from pathlib import Path

from core.chunks.chunker import DEFAULT_PARAMS, chunk_file
from core.chunks.fidx import FileIndex, decode
from core.formats import delta
from core.publisher import delta_copies

BUNDLES = ["lib/tsc.js", "lib/tsserver.js", "lib/typescript.js", "lib/typingsInstaller.js"]
SKIP = (".fidx", ".groups", ".stz", ".zdelta", ".sub")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _index(path: Path) -> FileIndex:
    published = path.with_name(path.name + ".fidx")
    if published.exists():
        return decode(published.read_bytes())
    chunks, sha = chunk_file(path, DEFAULT_PARAMS)
    return FileIndex.from_chunks(DEFAULT_PARAMS, chunks, sha)


def measure(pairs: list[tuple[Path, Path]],
            variants: list[tuple[str, int | None, bool]]) -> None:
    indexes = {p: _index(p) for pair in pairs for p in pair}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "d"
        for label, level, copies in variants:
            find = make = 0.0
            total = 0
            for old, new in pairs:
                t = _cpu()
                cp = delta_copies.find(old, indexes[old], new, indexes[new]) if copies else []
                t2 = _cpu()
                total += delta.make(old, new, out, level, cp)
                find, make = find + t2 - t, make + _cpu() - t2
            print(f"| {label} | {total:,} | {find:.2f} + {make:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["typescript", "publish"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/stitch-compare-cache"))
    ap.add_argument("--dir", type=Path, default=Path("/tmp/stitch-publish-bench"))
    args = ap.parse_args()
    if args.what == "typescript":
        new = args.cache / "typescript-5.4.5/package"
        pairs = [(args.cache / f"typescript-{v}/package" / f, new / f)
                 for v in ("5.4.4", "5.4.3", "5.4.2") for f in BUNDLES]
        variants: list[tuple[str, int | None, bool]] = [
            ("one frame, level 3", 3, False), ("copy table, level 3", 3, True),
            ("copy table, level 6", 6, True), ("copy table, level 9", 9, True)]
    else:
        r = args.dir / "repo/stable"
        pairs = []
        for n in sorted((r / "2.0.0/files").rglob("*")):
            o = r / "1.0.0/files" / n.relative_to(r / "2.0.0/files")
            if (n.is_file() and not n.name.endswith(SKIP) and o.exists()
                    and not filecmp.cmp(o, n, shallow=False)):
                pairs.append((o, n))
        print(f"{len(pairs)} changed files, {sum(n.stat().st_size for _, n in pairs):,} bytes")
        variants = [("one frame, level 3", 3, False), ("defaults", None, True)] * 2
    print("| variant | bytes of the deltas | CPU s (find + make) |\n| --- | --- | --- |")
    measure(pairs, variants)


if __name__ == "__main__":
    main()
