"""What the publish defaults cost on the server (not a test; numbers go to docs/benchmarks.md).

For each pair of ``tests.bench.compare`` (the generated ones; real ones from ``--cache``
when their unpacked folders are there), publishes the old release and then the new one
into a fresh repository twice, with the defaults (compressed chunk copies and deltas) and
with ``--no-compress --no-delta``, and prints the repository's size on disk (``du``:
allocated blocks) after both releases, and the new release's folder alone.

    .venv/bin/python -m tests.bench.storage [--work /tmp/stitch-storage]
        [--cache /tmp/stitch-compare-cache]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from tests.bench.compare import pairs as P
from tests.bench.publish import STITCH, disk_usage

VARIANTS = (("defaults", []), ("--no-compress --no-delta", ["--no-compress", "--no-delta"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/stitch-storage"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/stitch-compare-cache"))
    ap.add_argument("--scale", type=float, default=30.0)
    ap.add_argument("--bin-mb", type=float, default=64.0)
    args = ap.parse_args()
    pairs = P.generated(args.work / "src", args.scale, args.bin_mb)
    for name, old, new in (
            ("typescript 5.4.4→5.4.5, unpacked", "typescript-5.4.4", "typescript-5.4.5"),
            ("libreoffice-core deb12u13→u14, unpacked", "libreoffice-core-deb12u13",
             "libreoffice-core-deb12u14")):
        if (args.cache / old).is_dir() and (args.cache / new).is_dir():
            pairs.append(P.folder_pair(name, args.cache / old, args.cache / new,
                                       args.work / "real" / old, "cache"))
    print("| pair | new release | repo, defaults | repo, --no-compress --no-delta | extra "
          "| new release folder, defaults | without |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for pair in pairs:
        sizes: dict[str, tuple[int, int]] = {}
        for label, opts in VARIANTS:
            repo = args.work / "repo"
            shutil.rmtree(repo, ignore_errors=True)
            for src, version in ((pair.old, "1.0.0"), (pair.new, "2.0.0")):
                src_dir = src if src.is_dir() else src.parent
                subprocess.run([*STITCH, "publish", str(src_dir), str(repo), "--version",
                                version, *opts], check=True, stdout=subprocess.DEVNULL)
            sizes[label] = (disk_usage(repo), disk_usage(repo / "stable/2.0.0"))
        new_size = disk_usage(pair.new if pair.new.is_dir() else pair.new.parent)
        (d_all, d_new), (r_all, r_new) = sizes["defaults"], sizes["--no-compress --no-delta"]
        print(f"| {pair.name} | {new_size:,} | {d_all:,} | {r_all:,} | "
              f"+{100 * (d_all - r_all) / r_all:.0f} % | {d_new:,} | {r_new:,} |", flush=True)


if __name__ == "__main__":
    main()
