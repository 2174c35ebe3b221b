"""core/publisher/publish_files.py: the copy a release is made of (bytes, holes, its SHA-256)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from core.publisher.publish_files import copy_hashed


def test_copy_hashed_keeps_bytes_and_holes_and_hashes_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with open(src, "wb") as f:
        f.truncate(24 << 20)
        f.seek(5 << 20)
        f.write(b"island")
        f.seek((24 << 20) - 3)
        f.write(b"end")
    dst = tmp_path / "dst"
    data = src.read_bytes()
    assert copy_hashed(src, dst) == hashlib.sha256(data).hexdigest()
    assert dst.read_bytes() == data
    if sys.platform != "win32":  # Windows' stat has no st_blocks
        assert dst.stat().st_blocks * 512 < 4 << 20
    assert copy_hashed(src, tmp_path / "again", hashed=False) == ""
    assert (tmp_path / "again").read_bytes() == data
    (tmp_path / "empty").write_bytes(b"")
    assert copy_hashed(tmp_path / "empty", tmp_path / "e2") == hashlib.sha256().hexdigest()
    assert (tmp_path / "e2").read_bytes() == b""
