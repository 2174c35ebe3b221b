"""One honest percentage: the window's bar, its title and the words under it, checked at every
progress event of real updates (the engine against a real, slowed ``stitch serve``).

The bar is the share of the update's work done: bytes read while scanning and copied from
the installed files (1 each), and downloaded (``NET_WEIGHT`` each, for what they cost), out
of the plan's total. The test recomputes that from the plan and each event's byte counters,
and wants the bar within a few percent of it, never moving backwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_fakes import Release, RunningServer
from pytestqt.qtbot import QtBot
from test_gui_e2e import WAIT, app_config, install_with_engine, tree, window

from app.gui.window import BAR_MAX, State, UpdaterWindow
from core.engine.meter import NET_WEIGHT
from core.progress import Phase, Progress

pytestmark = pytest.mark.slow

TOLERANCE = 0.03  # the bar's share against the bytes' share


class Watcher:
    """Checks the window after it handled each progress event (connected after it)."""

    def __init__(self, w: UpdaterWindow) -> None:
        self.w = w
        self.bars: list[int] = []
        self.checked = 0
        self.scan_total = 0
        self.words: list[tuple[float, str]] = []
        self.floor = 0.0  # a retry that goes on holds the bar where the last attempt stopped
        self.last: Progress | None = None
        w.session.signals.progress.connect(self.on_progress)

    def on_progress(self, p: Progress) -> None:
        w = self.w
        self.last = p
        bar = w.bar.value()
        assert not self.bars or bar >= self.bars[-1], (self.bars[-1], bar, p)
        self.bars.append(bar)
        if p.phase is Phase.SCAN:
            self.scan_total = p.total
        if w.state is State.RUNNING:
            assert w.windowTitle().startswith(f"{bar * 100 // BAR_MAX}% · ")
        plan = w.plan
        if plan is None or p.phase not in (Phase.REBUILD, Phase.DOWNLOAD, Phase.VERIFY,
                                           Phase.INSTALL):
            return
        # Bytes read or copied count 1, downloaded bytes NET_WEIGHT (what they cost).
        total = self.scan_total + plan.bytes_reused + plan.bytes_to_download * NET_WEIGHT
        done = self.scan_total + p.bytes_local + p.download_done * NET_WEIGHT
        expected = 1.0 if p.phase in (Phase.VERIFY, Phase.INSTALL) else min(1.0, done / total)
        expected = max(expected, self.floor)
        assert abs(bar / BAR_MAX - expected) <= TOLERANCE, (bar, expected, p)
        self.checked += 1
        m = re.match(r"Downloading ([\d.]+ \w+) of ([\d.]+ \w+)", w.status.text())
        if m:
            self.words.append((bar / BAR_MAX, w.status.text()))


def _size(words: str) -> float:
    value, unit = words.split()
    return float(value) * {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]


def test_first_install_bar_is_the_download(
    qtbot: QtBot, tmp_path: Path, app_release: Release,
    app_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import serve

    monkeypatch.setattr(serve, "BLOCK", 64 * 1024)
    # A few seconds of downloading, on four connections with the pack's files beside the
    # others (at 0.01 s a block it was over in about a second: 4 samples of the bar).
    server = app_server(delay=0.03)
    app_release.publish("1.0")
    install = tmp_path / "game"
    w = window(qtbot, app_config(tmp_path, server.url, install, auto_start=True))
    watch = Watcher(w)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.0"])
    assert watch.checked >= 10 and w.bar.value() == BAR_MAX
    # Nothing to read or copy: the bar is the download, and the words say the same.
    moving = [(bar, words) for bar, words in watch.words if 0 < bar < 1]
    assert len(moving) >= 5
    for bar, words in moving:
        m = re.match(r"Downloading ([\d.]+ \w+) of ([\d.]+ \w+)", words)
        assert m is not None
        # The sizes are rounded to 3 digits; the bar to 0.1 %.
        assert abs(_size(m.group(1)) / _size(m.group(2)) - bar) <= 0.02, (bar, words)
        assert "reused" not in words  # a first install reuses nothing of the player's
    assert w.message.text().startswith("Installed Dungeon Crawl 1.0.")


def test_update_bar_matches_the_bytes_and_never_goes_back(
    qtbot: QtBot, tmp_path: Path, app_release: Release,
    app_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import serve

    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    install_with_engine(app_config(tmp_path, server.url, install), install)
    app_release.publish("1.1")
    monkeypatch.setattr(serve, "BLOCK", 16 * 1024)
    # Slow enough per connection that the download lasts past the speed's warm-up with
    # its pieces on four connections side by side.
    server.delay = 0.04
    w = window(qtbot, app_config(tmp_path, server.url, install, auto_start=True))
    watch = Watcher(w)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.1"])
    assert watch.checked >= 10
    assert w.bar.value() == BAR_MAX
    # The download was seen moving, with its speed once known.
    assert any(0 < bar < 1 for bar, _ in watch.words)
    assert any("/s" in words for _, words in watch.words)
    # The details log speaks in words, not "1 ranges, 67108864 bytes raw".
    log = w.log.toPlainText()
    assert re.search(r"data/big\.pak: downloading [\d.]+ (kB|MB) in \d+ parts?\b", log), log
    assert "bytes raw" not in log and " 1 parts" not in log


def _kept_on_disk(install: Path) -> int:
    """Bytes the staged files of a stopped attempt really hold (they are sparse)."""
    staging = install / ".stitch" / "staging"
    return sum(min(st.st_size, st.st_blocks * 512)
               for st in (p.stat() for p in staging.iterdir() if p.suffix in (".part", ".ready")))


def test_retry_resumes_with_one_click_and_counts_what_was_kept(
    qtbot: QtBot, tmp_path: Path, app_release: Release,
    app_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import serve

    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    install_with_engine(app_config(tmp_path, server.url, install), install)
    app_release.publish("1.1")
    monkeypatch.setattr(serve, "BLOCK", 16 * 1024)
    server.delay = 0.02
    w = window(qtbot, app_config(tmp_path, server.url, install))
    watch = Watcher(w)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    first_plan = w.plan
    assert first_plan is not None and first_plan.bytes_resumed == 0
    before = server.bytes_sent
    w.update_button.click()
    qtbot.waitUntil(lambda: w.state is State.RUNNING and watch.last is not None
                    and watch.last.download_done > first_plan.bytes_to_download // 3,
                    timeout=WAIT)
    w.cancel_button.click()  # confirmed by the stub
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.0"])
    stopped_at = w.bar.value()
    kept = _kept_on_disk(install)
    assert kept > 0

    server.delay = 0.0
    watch.floor = stopped_at / BAR_MAX
    w.retry_button.click()  # the only click: the update goes on by itself
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.1"])
    plan = w.plan
    assert plan is not None and plan.bytes_resumed > 0
    assert "already downloaded" in w.download_value.text()
    # Disk space: what the staged files really hold is not needed again (nor their size).
    assert plan.disk_needed == first_plan.disk_needed - kept > 0
    assert not w.disk_value.text().startswith("0 bytes")
    # Nothing downloaded twice but the chunks cut off mid-way, and the indexes.
    assert server.bytes_sent - before <= first_plan.bytes_to_download + 1_000_000
    # The bar never went back, through the retry too.
    assert watch.bars == sorted(watch.bars) and min(watch.bars[-5:]) >= stopped_at
    result = w.result
    assert result is not None and result.bytes_resumed == plan.bytes_resumed
    assert "before it was stopped" in w.message.text()
