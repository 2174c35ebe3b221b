"""Compressed files that defeat chunking: recognised from their bytes (real gzip, xz, zip
output), rsyncable gzip told apart from plain gzip, and ``stitch publish`` warns about
large ones only."""

from __future__ import annotations

import gzip
import lzma
import random
import subprocess
import zipfile
from pathlib import Path

import pytest

from core.publisher.compressed import WARN_SIZE, inspect, sniff_bytes, warning
from core.publisher.publish import publish
from tests.conftest import need_tool


def _text(size: int, seed: int = 1) -> bytes:
    """Compressible, game-script-like text."""
    rng = random.Random(seed)
    words = [b"door", b"key", b"imp", b"hall", b"lava", b"exit", b"secret", b"ammo", b"%d"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words).replace(b"%d", str(rng.randrange(10**6)).encode()) + b" "
    return bytes(out[:size])


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("c") / "data.tar"
    p.write_bytes(_text(6 << 20))
    return p


def test_magic_numbers() -> None:
    assert sniff_bytes(b"\x1f\x8b\x08\x00") == "gzip"
    assert sniff_bytes(b"\xfd7zXZ\x00\x00") == "xz"
    assert sniff_bytes(b"\x28\xb5\x2f\xfd\x04") == "zstd"
    assert sniff_bytes(b"BZh91AY&SY") == "bzip2"
    assert sniff_bytes(b"7z\xbc\xaf\x27\x1c\x00") == "7z"
    assert sniff_bytes(b"PK\x03\x04") == "zip"
    assert sniff_bytes(b"PWAD\x00\x00") is None
    assert sniff_bytes(b"") is None


def test_plain_gzip_vs_rsyncable_gzip(raw: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar.gz"
    plain.write_bytes(gzip.compress(raw.read_bytes(), 9))
    c = inspect(plain)
    assert c is not None and c.kind == "gzip" and not c.chunk_friendly
    gz = need_tool("gzip")
    rs = tmp_path / "rs.tar.gz"
    with open(rs, "wb") as f:
        subprocess.run([gz, "-9", "--rsyncable", "-c", str(raw)], stdout=f, check=True,
                       timeout=60)
    c = inspect(rs)
    assert c is not None and c.kind == "gzip" and c.chunk_friendly
    # GNU gzip without --rsyncable: no sync points either.
    cli = tmp_path / "cli.tar.gz"
    with open(cli, "wb") as f:
        subprocess.run([gz, "-6", "-c", str(raw)], stdout=f, check=True, timeout=60)
    c = inspect(cli)
    assert c is not None and not c.chunk_friendly


def test_xz_and_zip(raw: Path, tmp_path: Path) -> None:
    xz = tmp_path / "a.tar.xz"
    xz.write_bytes(lzma.compress(raw.read_bytes()[: 2 << 20], preset=0))
    c = inspect(xz)
    assert c is not None and c.kind == "xz" and not c.chunk_friendly
    deflated = tmp_path / "d.zip"
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", raw.read_bytes())
    c = inspect(deflated)
    assert c is not None and c.kind == "zip" and not c.chunk_friendly
    stored = tmp_path / "s.zip"
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.txt", raw.read_bytes())
    c = inspect(stored)
    assert c is not None and c.chunk_friendly
    assert inspect(raw) is None


def test_warning_wording_and_size_floor(tmp_path: Path) -> None:
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(b"x" * 10))
    c = inspect(gz)
    assert c is not None
    assert warning("x.gz", WARN_SIZE - 1, c) is None
    w = warning("x.gz", WARN_SIZE, c)
    assert w is not None and "--rsyncable" in w and "66%" in w and "docs/sync.md" in w


def test_publish_warns_about_large_plain_gzip_only(raw: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = raw.read_bytes()
    (src / "big.tar.gz").write_bytes(gzip.compress(data, 6))
    (src / "small.tar.gz").write_bytes(gzip.compress(data[:100_000], 6))
    (src / "big.tar").write_bytes(data[: 2 << 20])
    report = publish(src, tmp_path / "repo", "1.0.0")
    assert len(report.warnings) == 1 and report.warnings[0].startswith("big.tar.gz: gzip")
    assert [line for line in report.lines() if line.startswith("warning: ")] == \
        [f"warning: {report.warnings[0]}"]
