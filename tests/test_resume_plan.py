"""An attempt that stopped half way: the next plan counts what it kept (``bytes_resumed``),
the disk space still needed by the blocks really written (staged files are sparse), and the
final result keeps the plan's categories (downloaded now, downloaded earlier, reused)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.errors import CancelledError
from core.net.fetcher import MemoryFetcher, RangeSink
from core.progress import CancelToken
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

BIG = 8_000_000
PIECE = 64 * 1024


class StoppingFetcher(MemoryFetcher):
    """Sends ranges in small pieces, and cancels ``token`` once ``stop_after`` bytes of
    ranges went out (a player pressing Cancel mid-download)."""

    def __init__(self, base: MemoryFetcher, token: CancelToken, stop_after: int) -> None:
        super().__init__(base.files)
        self.token = token
        self.stop_after = stop_after
        self.sent = 0

    def fetch_ranges(self, url: str, ranges: Sequence[tuple[int, int]], sink: RangeSink,
                     cancel: CancelToken | None = None) -> None:
        def pieces(offset: int, data: bytes) -> None:
            for i in range(0, len(data), PIECE):
                if cancel is not None:
                    cancel.check()
                sink(offset + i, data[i:i + PIECE])
                self.sent += len(data[i:i + PIECE])
                if self.sent >= self.stop_after:
                    self.token.cancel()

        super().fetch_ranges(url, ranges, pieces, cancel)


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "data" / "big.pak").write_bytes(random.Random(5).randbytes(BIG))
    (src / "readme.txt").write_text("hello\n")
    repo = tmp_path / "repo"
    publish(src, repo, "1.0")
    return src, repo


def test_a_stopped_first_install_resumes_and_counts_what_it_kept(
        tmp_path: Path, release: tuple[Path, Path]) -> None:
    src, repo = release
    install = tmp_path / "install"
    config = UpdaterConfig(url=MEM, install_dir=install, connections=1)
    token = CancelToken()
    stopping = StoppingFetcher(memory_fetcher(repo), token, BIG // 3)
    first = Updater(config, stopping, cancel=token)
    plan1 = first.prepare()
    assert plan1.bytes_resumed == 0 and plan1.disk_needed == BIG + 6
    with pytest.raises(CancelledError):
        first.apply()
    staged = [p.stat() for p in (install / ".stitch" / "staging").glob("*.part")]
    big = [st for st in staged if st.st_size == BIG]  # apparent size: the whole file
    assert len(big) == 1
    written = sum(min(st.st_size, st.st_blocks * 512) for st in staged)
    assert stopping.sent // 2 < big[0].st_blocks * 512 < BIG // 2  # sparse

    second = Updater(config, memory_fetcher(repo))
    plan2 = second.prepare()
    # Kept: the chunks that arrived whole (a piece of a chunk is fetched again).
    assert BIG // 4 < plan2.bytes_resumed <= stopping.sent
    assert plan2.bytes_to_download < BIG - BIG // 4
    # Still needed on disk: what is not yet written, not "0 bytes" for a big sparse file.
    assert plan2.disk_needed == BIG + 6 - written
    result = second.apply()
    assert tree_digest(install) == tree_digest(src)
    assert result.outcome is Outcome.UPDATED
    assert result.bytes_resumed == plan2.bytes_resumed
    assert result.bytes_content == plan2.bytes_to_download
    assert result.bytes_downloaded > result.bytes_content  # the indexes, the manifest
    assert plan2.bytes_resumed + result.bytes_content >= BIG
