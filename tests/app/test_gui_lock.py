"""The window and the install lock (``core/engine/lock.py``), against the real engine and a real
``stitch serve``: another run holding the install is waited for, then named in plain
words; a run that updated the install while the window waited for its click is noticed
when the click comes (re-validated under the lock, checked again)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_fakes import Release, RunningServer
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.config import AppConfig, to_updater_config
from app.gui.window import State, UpdaterWindow
from core.engine.lock import acquire
from core.engine.updater import Outcome, Updater

pytestmark = pytest.mark.slow

WAIT = 30_000  # ms: the window waits 10 s for the lock (the default) before giving up


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".stitch" not in p.relative_to(root).parts}


def config(tmp_path: Path, url: str, install: Path) -> AppConfig:
    return AppConfig(path=tmp_path / "updater.toml", url=url, product="dcrawl",
                     name="Dungeon Crawl", install_dir=install, default_install_dir=install,
                     program=sys.executable, args=())


def engine_update(cfg: AppConfig, install: Path) -> Outcome:
    updater = Updater(to_updater_config(cfg, install))
    try:
        return updater.apply().outcome
    finally:
        updater.close()


@pytest.fixture
def installed_10(tmp_path: Path, app_release: Release,
                 app_server: Callable[..., RunningServer]) -> tuple[Path, AppConfig]:
    """1.0 installed by the engine, then 1.1 published: an update is waiting."""
    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    cfg = config(tmp_path, server.url, install)
    assert engine_update(cfg, install) is Outcome.UPDATED
    app_release.publish("1.1")
    return install, cfg


def open_window(qtbot: QtBot, cfg: AppConfig) -> UpdaterWindow:
    w = UpdaterWindow(cfg, confirm_cancel=lambda _parent: True,
                      choose_folder=lambda _p, _c, _s: None, launcher=lambda argv, cwd: None)
    qtbot.addWidget(w)
    w.show()
    w.start()
    return w


def test_another_run_holding_the_install_is_waited_for_then_named(
        qtbot: QtBot, app_release: Release, installed_10: tuple[Path, AppConfig]) -> None:
    install, cfg = installed_10
    before = tree(install)
    with acquire(install / ".stitch"):  # another run (a launcher's --update) holds it
        w = open_window(qtbot, cfg)
        qtbot.waitUntil(lambda: "waiting up to" in w.log.toPlainText(), timeout=WAIT)
        assert (f"another update of this game is running (pid {os.getpid()}) — waiting up to "
                "10 s…") in w.log.toPlainText()
        assert w.state is State.CHECKING
        qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
        assert w.error_kind == "busy"
        assert w.message.text() == ("Another update of this game is running. Wait for it to "
                                    "finish, then try again.")
        assert w.retry_button.isVisible()
    assert tree(install) == before
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)  # the other run is done
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.1"])


def test_an_update_made_while_the_window_waited_for_its_click_is_noticed(
        qtbot: QtBot, app_release: Release, installed_10: tuple[Path, AppConfig]) -> None:
    install, cfg = installed_10
    w = open_window(qtbot, cfg)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert w.plan is not None and w.plan.check.installed_version == "1.0"
    # The window holds no lock while it waits: the launcher's update runs meanwhile.
    assert engine_update(cfg, install) is Outcome.UPDATED
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert w.result is not None
    assert (w.result.outcome, w.result.from_version, w.result.to_version) == \
        (Outcome.UP_TO_DATE, "1.1", "1.1")
    assert "the install changed since the check (another run): checking again" in \
        w.log.toPlainText()
    assert tree(install) == tree(app_release.sources["1.1"])
