"""Files over 4 GiB, end to end: 64-bit offsets everywhere, and the memory budget.

The files are sparse (disk-image-like, with data islands and scattered edits, some past
4 GiB), so the tests need little disk: publish copies holes as holes and the rebuild leaves
all-zero chunks unwritten. Each update runs as its own process under GNU time, and its peak
RSS must stay under the 150 MB budget (a resource bound, not a timing): a 4.5 GiB file
planned in memory, and a 50 GB one (3 M chunks, a 61 MB index) planned from its index on
disk (core.engine.bigplan).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from core.fsutil import copy_sparse
from core.publisher.publish import publish
from tests.conftest import need_tool

SIZE = (4 << 30) + (512 << 20)  # 4.5 GiB
STITCH = [sys.executable, "-m", "app.cli"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def _write_at(path: Path, edits: list[tuple[int, bytes]]) -> None:
    with open(path, "r+b") as f:
        for offset, data in edits:
            f.seek(offset)
            f.write(data)


@pytest.mark.slow
def test_update_of_a_4_5_gib_file(tmp_path: Path, stitch_server) -> None:  # type: ignore[no-untyped-def]
    gnu_time = need_tool("time") if not Path("/usr/bin/time").exists() else "/usr/bin/time"
    rng = random.Random(45)
    v1 = tmp_path / "v1"
    v1.mkdir()
    img = v1 / "disk.img"
    with open(img, "wb") as f:
        f.truncate(SIZE)
    islands = [(rng.randrange(0, SIZE - (1 << 20)), rng.randbytes(256 << 10)) for _ in range(24)]
    islands.append((SIZE - (300 << 10), rng.randbytes(300 << 10)))  # data in the last chunk
    _write_at(img, islands)
    (v1 / "readme.txt").write_text("disk image v1\n")

    v2 = tmp_path / "v2"
    v2.mkdir()
    copy_sparse(img, v2 / "disk.img")
    edits = [(rng.randrange(0, SIZE - 200), rng.randbytes(100)) for _ in range(150)]
    edits += [((4 << 30) + 12345, b"past the 4 GiB line"), ((1 << 32) - 7, b"across 2**32")]
    _write_at(v2 / "disk.img", edits)
    (v2 / "readme.txt").write_text("disk image v2\n")

    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    install = tmp_path / "install"
    install.mkdir()
    copy_sparse(img, install / "disk.img")  # a reinstall over the files already there
    url = stitch_server(repo).url
    r = subprocess.run([*STITCH, "update", "--url", url, "--dir", str(install),
                        "--progress", "json"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout.splitlines()[-1])
    # Nothing of the image itself: only its index (20 bytes per chunk: ~6 MB for 4.5 GiB of
    # mostly-zero 16 KiB chunks), readme.txt and the manifest.
    assert first["bytes_downloaded"] < 8 << 20

    report = publish(v2, repo, "1.1.0")
    rss_file = tmp_path / "rss"
    r = subprocess.run([gnu_time, "-f", "%M", "-o", str(rss_file), *STITCH, "update",
                        "--url", url, "--dir", str(install), "--progress", "json"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout.splitlines()[-1])
    assert final["outcome"] == "updated"
    assert (install / "disk.img").stat().st_size == SIZE
    assert _sha256(install / "disk.img") == _sha256(v2 / "disk.img")
    assert (install / "readme.txt").read_text() == "disk image v2\n"
    # Only the edited chunks travel: ~150 edits x ~4-16 KiB chunks, plus the index.
    assert final["bytes_downloaded"] < report.new_bytes + 8 * (1 << 20)
    assert final["bytes_downloaded"] < 64 << 20
    peak_mb = int(rss_file.read_text().split()[-1]) / 1024
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
    # Sparse in, sparse out: the rebuilt image did not write its zeros.
    assert os.stat(install / "disk.img").st_blocks * 512 < 1 << 30


BIG = 50_000_000_000  # 50 GB: 3.05 M chunks (zeros cut at 16 KiB), a 61 MB index


def _region_digests(path: Path, regions: list[tuple[int, int]]) -> list[str]:
    out = []
    with open(path, "rb") as f:
        for a, n in regions:
            f.seek(a)
            out.append(hashlib.sha256(f.read(n)).hexdigest())
    return out


@pytest.mark.slow
@pytest.mark.timeout(2400)  # SHA-256 of 50 GB six times, chunking it twice: minutes
def test_update_of_a_50_gb_file_stays_under_the_memory_budget(
        tmp_path: Path, stitch_server) -> None:  # type: ignore[no-untyped-def]
    gnu_time = need_tool("time") if not Path("/usr/bin/time").exists() else "/usr/bin/time"
    rng = random.Random(50)
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    with open(v1 / "game.pak", "wb") as f:
        f.truncate(BIG)
    islands = [(rng.randrange(0, BIG - (1 << 20)), rng.randbytes(256 << 10)) for _ in range(24)]
    _write_at(v1 / "game.pak", islands)
    copy_sparse(v1 / "game.pak", v2 / "game.pak")
    edits = [(rng.randrange(0, BIG - 200), rng.randbytes(100)) for _ in range(150)]
    edits += [(BIG - 50, b"the last bytes")]
    _write_at(v2 / "game.pak", edits)
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    url = stitch_server(repo).url
    install = tmp_path / "install"
    r = subprocess.run([*STITCH, "update", "--url", url, "--dir", str(install),
                        "--progress", "none"], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr

    report = publish(v2, repo, "1.1.0")
    rss_file = tmp_path / "rss"
    r = subprocess.run([gnu_time, "-f", "%M", "-o", str(rss_file), *STITCH, "update",
                        "--url", url, "--dir", str(install), "--progress", "json"],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout.splitlines()[-1])
    assert final["outcome"] == "updated"
    peak_mb = int(rss_file.read_text().split()[-1]) / 1024
    print(f"50 GB update: peak RSS {peak_mb:.1f} MB, {final['bytes_downloaded']} bytes "
          f"downloaded ({report.new_bytes} of new chunks), {final['requests']} requests")
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
    # Only the edited chunks and the index records of their groups travel.
    assert report.new_bytes <= final["bytes_downloaded"] < report.new_bytes + (4 << 20)
    pak = install / "game.pak"
    assert pak.stat().st_size == BIG
    regions = [(a, len(d)) for a, d in edits + islands]
    assert _region_digests(pak, regions) == _region_digests(v2 / "game.pak", regions)
    # The whole file against the release's SHA-256, by stitch itself.
    r = subprocess.run([*STITCH, "verify", "--dir", str(install)], capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.stat(pak).st_blocks * 512 < 1 << 30  # sparse in, sparse out
