"""End to end over real HTTP: publish v1, install, publish v2, update — against nginx
(Debian's), ``stitch serve``, and Python's http.server (which ignores Range, so the client
must fall back to streaming whole files and keeping the parts it needs)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.publisher.publish import publish
from tests.conftest import tree_digest


def _sha(tree: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in tree.items()}


def _run(url: str, install: Path):  # type: ignore[no-untyped-def]
    up = Updater(UpdaterConfig(url=url, install_dir=install))
    try:
        plan = up.prepare()
        result = up.apply()
    finally:
        up.close()
    return plan, result


def _check_v2(install: Path, v2: Path) -> None:
    assert _sha(tree_digest(install)) == _sha(tree_digest(v2))
    assert not (install / "docs/changelog-1.txt").exists()
    if sys.platform != "win32":  # Windows has no executable bits
        assert os.access(install / "bin/stitchquest", os.X_OK)
        assert not os.access(install / "readme.txt", os.X_OK)


def _metadata_bytes(repo: Path, version: str, paths: list[str]) -> int:
    """Bytes of pointer, manifest and the changed files' indexes."""
    chan = repo / "stable"
    total = (chan / "latest.json").stat().st_size + (chan / version / "release.json").stat().st_size
    for p in paths:
        total += (chan / version / "files" / (p + ".fidx")).stat().st_size
    return total


@pytest.mark.nginx
def test_update_through_nginx_sends_what_the_plan_said(tmp_path: Path, game: tuple[Path, Path],
                                                       nginx, www: Path) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    repo = www / "repo"
    install = tmp_path / "install"
    publish(v1, repo, "1.0.0")
    server = nginx(repo, max_ranges=64)
    _, r = _run(server.url, install)
    assert r.outcome is Outcome.UPDATED and _sha(tree_digest(install)) == _sha(tree_digest(v1))

    publish(v2, repo, "1.1.0")
    before = len(server.log_lines())
    plan, r = _run(server.url, install)
    _check_v2(install, v2)
    lines = server.log_lines()[before:]
    sent = server.bytes_sent(before)
    changed = [p for p in tree_digest(v2) if (v1 / p).is_file() is False
               or (v1 / p).read_bytes() != (v2 / p).read_bytes()]
    expected = plan.bytes_to_download + _metadata_bytes(repo, "1.1.0", changed)
    # $bytes_sent counts headers and multipart framing too: within 10% of the plan.
    assert abs(sent - expected) <= 0.10 * expected, (sent, expected, lines)
    assert any(" 206 " in line for line in lines)
    # Far less than the release itself.
    assert sent < 0.5 * sum(len(b) for b in tree_digest(v2).values())


@pytest.mark.nginx
def test_nginx_with_few_max_ranges_still_works(tmp_path: Path, game: tuple[Path, Path],
                                               nginx, www: Path) -> None:  # type: ignore[no-untyped-def]
    """nginx answers 200 (whole file) when a request has more ranges than max_ranges;
    the client learns to ask for fewer and still gets the right files."""
    v1, v2 = game
    repo = www / "repo"
    install = tmp_path / "install"
    publish(v1, repo, "1.0.0", params=_small_chunks())
    server = nginx(repo, max_ranges=2)
    _run(server.url, install)
    publish(v2, repo, "1.1.0", params=_small_chunks())
    before = len(server.log_lines())
    _plan, _ = _run(server.url, install)
    _check_v2(install, v2)
    total = sum(len(b) for b in tree_digest(v2).values())
    fields = [(int(line.split()[0]), line.split()[1], line.split('"')[3])
              for line in server.log_lines()[before:]]
    # A request of too many ranges is answered with the whole file, which the client closes
    # unread (nginx's $bytes_sent counts what the sockets took meanwhile: timing, not the
    # client) and halves its ranges per request: from 32 to 2 in four such answers at most.
    whole = [f for f in fields if f[1] == "200" and f[2] != "-"]
    assert 1 <= len(whole) <= 4, whole
    # Everything else (the ranges, the manifest, indexes): far less than the release, not
    # the files downloaded whole.
    assert sum(f[0] for f in fields if f not in whole) < total / 2


def _small_chunks():  # type: ignore[no-untyped-def]
    from core.chunks.chunker import ChunkerParams

    return ChunkerParams(1024, 4096, 16384)


def test_update_through_stitch_serve(tmp_path: Path, game: tuple[Path, Path],
                                     stitch_server) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    repo = tmp_path / "repo"
    install = tmp_path / "install"
    publish(v1, repo, "1.0.0")
    server = stitch_server(repo)
    _run(server.url, install)
    publish(v2, repo, "1.1.0")
    sent_before = server.bytes_sent
    plan, r = _run(server.url, install)
    _check_v2(install, v2)
    changed = [p for p in tree_digest(v2) if not (v1 / p).is_file()
               or (v1 / p).read_bytes() != (v2 / p).read_bytes()]
    body = server.bytes_sent - sent_before
    expected = plan.bytes_to_download + _metadata_bytes(repo, "1.1.0", changed)
    assert abs(body - expected) <= 0.10 * expected
    assert abs(r.bytes_downloaded - body) <= 0.01 * body  # multipart framing aside


def test_update_through_a_server_without_range_support(tmp_path: Path, game: tuple[Path, Path],
                                                       plain_server) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    repo = tmp_path / "repo"
    install = tmp_path / "install"
    publish(v1, repo, "1.0.0")
    url = plain_server(repo)
    _run(url, install)
    publish(v2, repo, "1.1.0")
    _plan, r = _run(url, install)
    _check_v2(install, v2)
    # Each changed file was streamed once, whole: no more than the changed files' sizes.
    changed = [p for p in tree_digest(v2) if not (v1 / p).is_file()
               or (v1 / p).read_bytes() != (v2 / p).read_bytes()]
    whole = sum((v2 / p).stat().st_size for p in changed)
    assert r.bytes_downloaded <= whole + _metadata_bytes(repo, "1.1.0", changed)


@pytest.mark.nginx
def test_thousands_of_scattered_changes_take_tens_of_requests(tmp_path: Path, nginx,
                                                              www: Path) -> None:  # type: ignore[no-untyped-def]
    import random

    rng = random.Random(3000)
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    old = rng.randbytes(40 << 20)
    new = bytearray(old)
    for _ in range(3000):
        at = rng.randrange(len(new) - 8)
        new[at:at + 8] = rng.randbytes(8)
    (v1 / "big.pak").write_bytes(old)
    (v2 / "big.pak").write_bytes(bytes(new))
    repo = www / "repo"
    install = tmp_path / "install"
    publish(v1, repo, "1.0.0")
    install.mkdir()
    (install / "big.pak").write_bytes(old)
    server = nginx(repo, max_ranges=64)
    _run(server.url, install)
    report = publish(v2, repo, "1.1.0")
    before = len(server.log_lines())
    plan, r = _run(server.url, install)
    assert (install / "big.pak").read_bytes() == bytes(new)
    file_requests = [line for line in server.log_lines()[before:] if "big.pak " in line]
    assert 10 <= len(file_requests) <= 99, len(file_requests)  # tens, not thousands
    # ...without downloading more than 1.5x what the changed chunks need.
    assert plan.bytes_to_download <= 1.5 * report.new_bytes
    assert r.bytes_downloaded <= 1.5 * report.new_bytes + 400_000  # + index, metadata
