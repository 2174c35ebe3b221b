"""One honest percentage: the window's bar, its title and the words under it, checked at every
progress event of real updates (the engine against a real, slowed ``stitch serve``).

The bar is the share of the update's bytes of work done: bytes read while scanning, copied
from the installed files, and downloaded, out of the plan's total. The test recomputes that
from the plan and each event's byte counters, and wants the bar within a few percent of it,
never moving backwards.
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
        w.session.signals.progress.connect(self.on_progress)

    def on_progress(self, p: Progress) -> None:
        w = self.w
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
        total = self.scan_total + plan.bytes_reused + plan.bytes_to_download
        done = self.scan_total + p.bytes_local + p.download_done
        expected = 1.0 if p.phase in (Phase.VERIFY, Phase.INSTALL) else min(1.0, done / total)
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
    server = app_server(delay=0.01)  # a few seconds of downloading
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
    server.delay = 0.01
    w = window(qtbot, app_config(tmp_path, server.url, install, auto_start=True))
    watch = Watcher(w)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.1"])
    assert watch.checked >= 10
    assert w.bar.value() == BAR_MAX
    # The download was seen moving, with its speed once known.
    assert any(0 < bar < 1 for bar, _ in watch.words)
    assert any("/s" in words for _, words in watch.words)
