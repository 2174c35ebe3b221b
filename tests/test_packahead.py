"""The pack's ranges asked for while the plan is made (core/engine/packahead.py): the one
call for them is answered with the same bytes, others go to the network, at most the cap is
held ahead, an error comes after the pieces before it; and an update over real HTTP takes
the pack from the fetch ahead, a plan shown first does not."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import core.net.http.fetcher as http_fetcher
from core.engine.packahead import PackAhead
from core.engine.updater import Updater, UpdaterConfig
from core.errors import HTTPStatusError
from core.net.fetcher import Fetcher, MemoryFetcher, RangeSink
from core.progress import CancelToken
from core.publisher.publish import publish
from tests.conftest import tree_digest

BODY = bytes(range(256)) * 64  # 16 KiB
URL = "mem://pack"
RANGES = [(0, 100), (1000, 5000), (9000, 16384)]


def _take(fetcher: Fetcher, ranges: Sequence[tuple[int, int]] = RANGES) -> dict[int, bytes]:
    got: dict[int, bytes] = {}

    def sink(offset: int, data: bytes) -> None:
        got[offset] = bytes(data)
    fetcher.fetch_ranges(URL, ranges, sink)
    return got


def _whole(got: dict[int, bytes]) -> dict[int, bytes]:
    return {a: b"".join(d for o, d in sorted(got.items()) if a <= o < b) for a, b in RANGES}


def test_the_call_for_those_ranges_is_answered_ahead_and_no_other() -> None:
    inner = MemoryFetcher({URL: BODY})
    ahead = PackAhead(inner, URL, RANGES, CancelToken())
    assert _whole(_take(ahead)) == {a: BODY[a:b] for a, b in RANGES}
    assert _whole(_take(ahead)) == {a: BODY[a:b] for a, b in RANGES}  # asked again
    _take(ahead, RANGES[:1])  # other ranges
    assert inner.requests == [(URL, tuple(RANGES)), (URL, tuple(RANGES)), (URL, (RANGES[0],))]
    assert ahead.stats is inner.stats and inner.stats.requests == 3


class _Pieces(Fetcher):
    """Sends ``BODY`` in 1 KiB pieces, counting them; then raises ``error`` if given."""

    def __init__(self, error: BaseException | None = None) -> None:
        super().__init__()
        self.sent = 0
        self.error = error
        self.ended: BaseException | None = None

    def fetch_ranges(self, url: str, ranges: Sequence[tuple[int, int]], sink: RangeSink,
                     cancel: CancelToken | None = None) -> None:
        try:
            for a, b in ranges:
                for at in range(a, b, 1024):
                    sink(at, BODY[at:min(b, at + 1024)])
                    self.sent += 1
            if self.error is not None:
                raise self.error
        except BaseException as e:
            self.ended = e
            raise


def _settled(inner: _Pieces) -> int:
    """``inner.sent`` once it stops growing (bounded wait)."""
    last = -1
    for _ in range(100):
        if inner.sent == last:
            break
        last = inner.sent
        time.sleep(0.05)
    return inner.sent


def test_at_most_the_cap_is_held_ahead() -> None:
    inner = _Pieces()
    ahead = PackAhead(inner, URL, [(0, len(BODY))], CancelToken(), cap=3 * 1024)
    assert _settled(inner) <= 3 + 1  # three held, one waiting in the sink
    got: dict[int, bytes] = {}
    ahead.fetch_ranges(URL, [(0, len(BODY))], lambda o, d: got.__setitem__(o, d))
    assert b"".join(d for _, d in sorted(got.items())) == BODY
    assert inner.sent == len(BODY) // 1024


def test_an_error_comes_after_the_pieces_before_it() -> None:
    inner = _Pieces(HTTPStatusError("mem://pack: HTTP 503", status_code=503))
    ahead = PackAhead(inner, URL, [(0, 4096)], CancelToken())
    got: list[int] = []
    with pytest.raises(HTTPStatusError):
        ahead.fetch_ranges(URL, [(0, 4096)], lambda o, d: got.append(o))
    assert got == [0, 1024, 2048, 3072]


def test_stopped_the_fetch_ahead_ends() -> None:
    inner = _Pieces()
    ahead = PackAhead(inner, URL, [(0, len(BODY))], CancelToken(), cap=1024)
    _settled(inner)
    ahead.stop()
    for _ in range(100):
        if inner.ended is not None:
            break
        time.sleep(0.05)
    assert inner.ended is not None and inner.sent < len(BODY) // 1024


def _small_files(root: Path, version: int) -> None:
    for i in range(40):
        (root / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 4}" / f"f{i}.txt").write_text(f"file {i} of version {version}\n" * 30)


@pytest.mark.parametrize("shown_first", [False, True])
def test_an_update_takes_the_pack_from_the_fetch_ahead(
        tmp_path: Path, shown_first: bool, stitch_server,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``update()`` plans and runs at once: the pack's one request is the fetch ahead's.
    A plan ``prepare()`` made first (for the player to see) is run as before."""
    v1, v2, repo = tmp_path / "v1", tmp_path / "v2", tmp_path / "repo"
    _small_files(v1, 1)
    _small_files(v2, 2)
    packed = {"compress": True, "deltas": True, "pack_max": 64 << 10}  # (the CLI's defaults)
    publish(v1, repo, "1.0.0", **packed)  # type: ignore[arg-type]
    url = str(stitch_server(repo).url)
    config = UpdaterConfig(url=url, install_dir=tmp_path / "install")
    first = Updater(config)
    first.update()
    first.close()
    publish(v2, repo, "2.0.0", **packed)  # type: ignore[arg-type]
    asked: list[str] = []
    real = http_fetcher.HttpFetcher.fetch_ranges

    def spy(self, url, ranges, sink, cancel=None):  # type: ignore[no-untyped-def]
        if url.endswith("small.pack"):
            asked.append(threading.current_thread().name)
        return real(self, url, ranges, sink, cancel)

    monkeypatch.setattr(http_fetcher.HttpFetcher, "fetch_ranges", spy)
    updater = Updater(config)
    try:
        if shown_first:
            assert updater.prepare().check.files_changed == 40
            assert updater.apply().to_version == "2.0.0"
        else:
            assert updater.update().to_version == "2.0.0"
    finally:
        updater.close()
    assert asked == (["stitch-pack"] if shown_first else ["stitch-pack-ahead"])
    got = tree_digest(tmp_path / "install")
    assert got == tree_digest(v2) and len(got) == 40
