"""`stitch publish` says which cache headers each part of the repository should get (the
servers' snippets in docs/publishing.md are checked in real servers by test_servers)."""

from __future__ import annotations

from pathlib import Path

from core.formats import signing
from core.publisher.publish import CACHE_CHANGING, CACHE_VERSIONED, publish


def test_publish_prints_the_cache_headers(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(bytes(range(256)) * 40)
    report = publish(src, tmp_path / "repo", "1.0.0", channel="beta")
    assert report.lines()[-3:] == [
        "cache headers (docs/publishing.md); upload latest.json last:",
        f"  beta/latest.json: Cache-Control: {CACHE_CHANGING}",
        f"  beta/1.0.0/: Cache-Control: {CACHE_VERSIONED}",
    ]
    assert (CACHE_CHANGING, CACHE_VERSIONED) == ("no-cache",
                                                 "public, max-age=31536000, immutable")
    # Signed: the key published beside the pointer changes under its URL too.
    signing.keygen(tmp_path / "k", None)
    key = signing.load_secret_key((tmp_path / "k").read_bytes(), None)
    report = publish(src, tmp_path / "repo", "1.1.0", channel="beta", sign_key=key)
    assert f"  beta/latest.json, beta/minisign.pub: Cache-Control: {CACHE_CHANGING}" in \
        report.lines()
    assert len(report.lines()) <= 6  # short: the summary, then three lines of headers
