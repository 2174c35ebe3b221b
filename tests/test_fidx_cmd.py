"""``stitch fidx FILE...``: indexes written beside files, byte-exact, skipped when newer
(as bupdate did), and the ``--url`` source sidecar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.chunks.chunker import DEFAULT_PARAMS, chunk_file
from core.chunks.fidx import FileIndex, decode, encode
from core.chunks.fidx_v1 import build_v1
from core.chunks.indexer import V1_PARAMS, parse_any, write_beside

STITCH = [sys.executable, "-m", "app.cli"]


def stitch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    out = []
    for i, size in enumerate((0, 5000, 300_000)):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(size))
        out.append(p)
    return out


def test_v2_and_v1_indexes_are_exact(files: list[Path]) -> None:
    r = stitch("fidx", *map(str, files))
    assert r.returncode == 0, r.stderr
    for p in files:
        raw = p.with_name(p.name + ".fidx").read_bytes()
        chunks, sha = chunk_file(p, DEFAULT_PARAMS)
        assert raw == encode(FileIndex.from_chunks(DEFAULT_PARAMS, chunks, sha))
        assert decode(raw).file_size == p.stat().st_size
        if sys.platform != "win32":  # Windows has no mode bits
            assert p.with_name(p.name + ".fidx").stat().st_mode & 0o777 == 0o644
    r = stitch("fidx", "--format", "v1", *map(str, files))
    assert r.returncode == 0, r.stderr
    for p in files:  # v2 index was there but of the other version: rewritten
        assert p.with_name(p.name + ".fidx").read_bytes() == build_v1(p.read_bytes())


def test_skipped_when_the_index_is_newer(files: list[Path]) -> None:
    p = files[2]
    assert write_beside(p, DEFAULT_PARAMS)
    fidx = p.with_name(p.name + ".fidx")
    before = fidx.stat().st_mtime_ns
    r = stitch("fidx", str(p))
    assert r.returncode == 0 and "skipped" in r.stdout
    assert fidx.stat().st_mtime_ns == before
    # The file changes (and is newer): the index is rebuilt and describes the new bytes.
    p.write_bytes(os.urandom(200_000))
    later = time.time() + 5
    os.utime(p, (later, later))
    r = stitch("fidx", str(p))
    assert r.returncode == 0 and "written" in r.stdout
    li = parse_any(fidx.read_bytes(), 1 << 40)
    assert li.index.sha256 == chunk_file(p, DEFAULT_PARAMS)[1]
    assert write_beside(p, V1_PARAMS)  # a newer index of the other version is rewritten
    assert parse_any(fidx.read_bytes(), 1 << 40).version == 1


def test_url_writes_a_source_sidecar(files: list[Path]) -> None:
    r = stitch("fidx", "--url", "http://upstream.example/pub/", *map(str, files[1:]))
    assert r.returncode == 0, r.stderr
    for p in files[1:]:
        side = json.loads(p.with_name(p.name + ".fidx.json").read_text())
        assert side == {"format": "stitch.fidx-source/1",
                        "url": f"http://upstream.example/pub/{p.name}"}
    r = stitch("fidx", "--url", "http://upstream.example/one.bin", str(files[1]))
    assert r.returncode == 0
    side = json.loads(files[1].with_name(files[1].name + ".fidx.json").read_text())
    assert side["url"] == "http://upstream.example/one.bin"


def test_bad_arguments_exit_2(files: list[Path], tmp_path: Path) -> None:
    assert stitch("fidx", "--url", "http://x/one.bin", *map(str, files[1:])).returncode == 2
    assert stitch("fidx", str(tmp_path / "missing")).returncode == 2
    assert stitch("fidx", "--format", "v1", "--avg-chunk", "4096", str(files[1])).returncode == 2
    assert not (tmp_path / "missing.fidx").exists()
