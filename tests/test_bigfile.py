"""A file over 4 GiB, end to end: 64-bit offsets everywhere, and the memory budget.

The file is sparse (a disk-image-like 4.5 GiB with data islands and scattered edits, some
past 4 GiB), so the test needs seconds and little disk: publish copies holes as holes and
the rebuild leaves all-zero chunks unwritten. The update runs as its own process under GNU
time, and its peak RSS must stay under the 150 MB budget (a resource bound, not a timing).
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
