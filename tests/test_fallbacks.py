"""The listed fallbacks for optional files the server does not have (issue 13, item 10):
group table -> whole ``.fidx`` -> whole file; ``.stz`` -> raw ranges; delta -> chunks.
Each test asserts the installed bytes and the requests made (``MemoryFetcher`` answers 404
for a file it does not hold), and one runs ``stitch update`` against a real server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.engine.updater import Updater, UpdaterConfig
from core.errors import HashMismatchError, HTTPStatusError
from core.net.fetcher import MemoryFetcher, RangeSink
from core.progress import CancelToken
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest
from tests.test_cli import STITCH
from tests.test_fidx_groups import BIG, PARAMS, _noise, _release
from tests.test_stz import _releases as _text_releases

FILES = f"{MEM}/stable/1.1.0/files"


def _update(install: Path, fetcher: MemoryFetcher) -> None:
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)
    try:
        up.update()
    finally:
        up.close()


@pytest.fixture
def grouped(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """1.0.0 installed; 1.1.0 published (one edit in a file big enough for a group table)."""
    old = _noise(600_000, 9)
    new = old[:300_000] + b"x" * 40 + old[300_040:]
    repo = tmp_path / "repo"
    v1, v2 = _release(tmp_path, "v1", old), _release(tmp_path, "v2", new)
    publish(v1, repo, "1.0.0", params=PARAMS)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", params=PARAMS)
    assert (repo / "stable/1.1.0/files" / (BIG + ".fidx.groups")).is_file()
    return repo, install, v1, v2


def _asked(fetcher: MemoryFetcher, name: str) -> list[tuple[str, object]]:
    return [(u[len(FILES) + 1:], rs) for u, rs in fetcher.requests
            if u.startswith(f"{FILES}/{name}")]


def test_missing_group_table_falls_back_to_the_whole_index(
        grouped: tuple[Path, Path, Path, Path]) -> None:
    repo, install, _v1, v2 = grouped
    fetcher = memory_fetcher(repo)
    del fetcher.files[f"{FILES}/{BIG}.fidx.groups"]
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v2)
    asked = _asked(fetcher, BIG)
    assert asked[:2] == [(BIG + ".fidx.groups", None), (BIG + ".fidx", None)]
    # Then only ranges of the file itself: the plan from the whole index, not the file.
    size = (v2 / BIG).stat().st_size
    file_ranges = [rs for u, rs in asked[2:] if u == BIG]
    assert len(asked) == 2 + len(file_ranges) and file_ranges
    assert sum(b - a for rs in file_ranges for a, b in rs) < size // 10


def test_a_group_table_that_does_not_match_falls_back_too(
        grouped: tuple[Path, Path, Path, Path]) -> None:
    repo, install, _v1, v2 = grouped
    fetcher = memory_fetcher(repo)
    url = f"{FILES}/{BIG}.fidx.groups"
    fetcher.files[url] = fetcher.files[url][:-1] + b"\0"  # a stale or cut copy
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v2)
    assert (f"{FILES}/{BIG}.fidx", None) in fetcher.requests


def test_missing_group_table_and_index_download_the_whole_file(
        grouped: tuple[Path, Path, Path, Path]) -> None:
    repo, install, _v1, v2 = grouped
    fetcher = memory_fetcher(repo)
    del fetcher.files[f"{FILES}/{BIG}.fidx.groups"]
    del fetcher.files[f"{FILES}/{BIG}.fidx"]
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v2)
    size = (v2 / BIG).stat().st_size
    assert _asked(fetcher, BIG) == [(BIG + ".fidx.groups", None), (BIG + ".fidx", None),
                                    (BIG, ((0, size),))]


def test_a_missing_index_on_a_first_install_downloads_the_whole_file(
        grouped: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    repo, _install, _v1, v2 = grouped
    fetcher = memory_fetcher(repo)
    del fetcher.files[f"{FILES}/{BIG}.fidx"]
    fresh = tmp_path / "fresh"
    _update(fresh, fetcher)
    assert tree_digest(fresh) == tree_digest(v2)
    size = (v2 / BIG).stat().st_size
    assert _asked(fetcher, BIG) == [(BIG + ".fidx", None), (BIG, ((0, size),))]


def test_a_whole_file_with_wrong_bytes_is_refused(
        grouped: tuple[Path, Path, Path, Path]) -> None:
    """The last fallback is checked like any file: by the manifest's SHA-256."""
    repo, install, v1, _v2 = grouped
    fetcher = memory_fetcher(repo)
    del fetcher.files[f"{FILES}/{BIG}.fidx.groups"]
    del fetcher.files[f"{FILES}/{BIG}.fidx"]
    body = bytearray(fetcher.files[f"{FILES}/{BIG}"])
    body[1234] ^= 1
    fetcher.files[f"{FILES}/{BIG}"] = bytes(body)
    with pytest.raises(HashMismatchError):
        _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v1)


def test_an_index_with_wrong_bytes_stays_an_error(
        grouped: tuple[Path, Path, Path, Path]) -> None:
    """A missing index falls back; one whose bytes do not match the manifest is bad
    content from that server (exit 4), as before."""
    repo, install, v1, _v2 = grouped
    fetcher = memory_fetcher(repo)
    del fetcher.files[f"{FILES}/{BIG}.fidx.groups"]
    fetcher.files[f"{FILES}/{BIG}.fidx"] = b"not an index"
    with pytest.raises(HashMismatchError):
        _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v1)


class StzGoesMissing(MemoryFetcher):
    """Serves the ``.stz`` size table (its first request) and then answers 404 for it."""

    def fetch_ranges(self, url: str, ranges: Sequence[tuple[int, int]], sink: RangeSink,
                     cancel: CancelToken | None = None) -> None:
        if url.endswith(".stz") and any(u == url for u, _ in self.requests):
            self.requests.append((url, tuple(ranges)))
            raise HTTPStatusError(f"{url}: HTTP 404", url=url, status_code=404)
        super().fetch_ranges(url, ranges, sink, cancel)


@pytest.mark.parametrize("how", ["missing", "gone-after-its-table"])
def test_missing_compressed_copy_falls_back_to_raw_ranges(tmp_path: Path, how: str) -> None:
    v1, v2, repo = _text_releases(tmp_path)
    publish(v1, repo, "1.0.0", compress=True)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", compress=True)
    files = memory_fetcher(repo).files
    stz = f"{FILES}/data/script.txt.stz"
    assert stz in files
    if how == "missing":
        del files[stz]
        fetcher = MemoryFetcher(files)
    else:
        fetcher = StzGoesMissing(files)
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v2)
    stz_asked = [rs for u, rs in fetcher.requests if u == stz]
    raw = [rs for u, rs in fetcher.requests if u == f"{FILES}/data/script.txt"]
    assert len(stz_asked) == (1 if how == "missing" else 2) and raw


def test_missing_delta_falls_back_to_chunks(tmp_path: Path) -> None:
    from tests.test_delta import _one_behind

    b = _one_behind(tmp_path)
    fetcher = memory_fetcher(b.repo)
    from core.formats.delta import SUFFIX

    deltas = [u for u in fetcher.files if "/1.1.0/" in u and u.endswith(SUFFIX)]
    assert deltas
    for u in deltas:
        del fetcher.files[u]
    _update(b.install, fetcher)
    assert tree_digest(b.install) == tree_digest(b.v1)
    assert any(u in deltas for u, _ in fetcher.requests)  # tried, 404, then chunks
    assert any(u.endswith("bin/game.fidx") for u, _ in fetcher.requests)


def test_stitch_update_through_a_real_server_without_group_tables_or_indexes(
        grouped: tuple[Path, Path, Path, Path], stitch_server) -> None:  # type: ignore[no-untyped-def]
    repo, install, _v1, v2 = grouped
    files = repo / "stable/1.1.0/files"
    (files / (BIG + ".fidx.groups")).unlink()
    r = subprocess.run([*STITCH, "update", "--url", str(stitch_server(repo).url), "--dir",
                        str(install), "--progress", "json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert tree_digest(install) == tree_digest(v2)
    (files / (BIG + ".fidx")).unlink()
    (files / "readme.txt.fidx").unlink()
    fresh = install.parent / "fresh"
    r = subprocess.run([*STITCH, "update", "--url", str(stitch_server(repo).url), "--dir",
                        str(fresh), "--progress", "json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert tree_digest(fresh) == tree_digest(v2)
    result = json.loads(r.stdout.splitlines()[-1])
    size = sum(len(b) for b in tree_digest(v2).values())
    metadata = sum(p.stat().st_size for p in (repo / "stable/latest.json",
                                              repo / "stable/1.1.0/release.json"))
    # The two files whole, the pointer and the manifest; no index (there is none).
    assert result["bytes_downloaded"] == size + metadata
