"""The window against the real engine and a real ``stitch serve``: bytes on disk, not mocks.

Releases come from ``core.publisher.publish`` (1.0, then 1.1 editing 1.5 MB of a 12 MB archive and
adding a 2 MB file); the server is ``app.serve`` on a free port. Tests that must act
mid-download slow the server down per block instead of using a huge release.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_fakes import Release, RunningServer, free_port
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.config import AppConfig, to_updater_config
from app.gui.window import BAR_MAX, State, UpdaterWindow, launch_detached
from core.progress import Phase

pytestmark = pytest.mark.slow

WAIT = 30_000  # ms: generous for a loaded CI machine; every wait is still bounded


def tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file, the client's .stitch/ state left out."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".stitch/"):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def app_config(tmp_path: Path, url: str, install: Path | None, **changes: object) -> AppConfig:
    values: dict[str, object] = {
        "path": tmp_path / "updater.toml",
        "url": url,
        "product": "dcrawl",
        "name": "Dungeon Crawl",
        "install_dir": install,
        "default_install_dir": install or tmp_path / "Dungeon Crawl",
        "program": sys.executable,
        "args": ("play.py", "played.txt"),
    }
    values.update(changes)
    return AppConfig(**values)  # type: ignore[arg-type]


def install_with_engine(cfg: AppConfig, install: Path) -> None:
    from core.engine.updater import Updater

    updater = Updater(to_updater_config(cfg, install))
    try:
        updater.apply()
    finally:
        updater.close()


def window(
    qtbot: QtBot,
    cfg: AppConfig,
    *,
    confirm: bool = True,
    folder: Path | None = None,
    launcher: Callable[..., None] | None = None,
) -> UpdaterWindow:
    w = UpdaterWindow(
        cfg,
        confirm_cancel=lambda _parent: confirm,
        choose_folder=lambda _p, _c, _s: folder,
        launcher=launcher or (lambda argv, cwd: None),
    )
    qtbot.addWidget(w)
    w.show()
    w.start()
    return w


@pytest.fixture
def installed_10(
    tmp_path: Path, app_release: Release, app_server: Callable[..., RunningServer]
) -> tuple[Path, RunningServer]:
    """1.0 installed by the engine, then 1.1 published: an update is waiting."""
    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    install_with_engine(app_config(tmp_path, server.url, install), install)
    assert tree(install) == tree(app_release.sources["1.0"])
    app_release.publish("1.1")
    return install, server


def test_update_reaches_final_values_and_files_match(
    qtbot: QtBot, tmp_path: Path, app_release: Release, installed_10: tuple[Path, RunningServer]
) -> None:
    install, server = installed_10
    # The configured key reaches the engine: a release it did not sign would be refused.
    cfg = app_config(tmp_path, server.url, install, pubkeys=(app_release.pubkey,))
    w = window(qtbot, cfg)
    values: list[int] = []
    w.bar.valueChanged.connect(values.append)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert w.heading.text() == "Update available: Dungeon Crawl 1.1"
    assert w.version_value.text() == "1.0 → 1.1"
    assert w.plan is not None and 0 < w.plan.bytes_to_download < 6_000_000
    assert w.plan.bytes_reused > 8_000_000  # most of the archive comes from disk
    assert "Faster loading" in w.notes.toPlainText()
    before = server.bytes_sent
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)

    assert tree(install) == tree(app_release.sources["1.1"])
    assert w.bar.value() == BAR_MAX and values == sorted(values)
    assert w.heading.text() == "Done" and w.status.text() == "Done"
    assert w.message.text().startswith("Updated Dungeon Crawl from 1.0 to 1.1. Downloaded ")
    assert w.result is not None
    assert server.bytes_sent - before <= w.result.bytes_downloaded
    log = w.log.toPlainText()
    for heading in (
        "Checking for updates",
        "Scanning local files",
        "Rebuilding files",
        "Downloading",
        "Verifying files",
        "Installing",
    ):
        assert heading in log
    assert w.files.rowCount() >= 2
    assert w.plan.check.signed and not w.warning.text()


def test_first_install_into_a_chosen_folder_then_play(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    app_server: Callable[..., RunningServer],
) -> None:
    server = app_server()
    app_release.publish("1.0")
    chosen = tmp_path / "Games" / "Dungeon Crawl"
    w = window(
        qtbot, app_config(tmp_path, server.url, None), folder=chosen, launcher=launch_detached
    )
    qtbot.waitUntil(lambda: w.state is State.READY and w.install_dir == chosen, timeout=WAIT)
    assert w.heading.text() == "Ready to install Dungeon Crawl 1.0"
    assert w.change_button.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(chosen) == tree(app_release.sources["1.0"])
    assert w.message.text().startswith("Installed Dungeon Crawl 1.0.")

    qtbot.mouseClick(w.play_button, Qt.MouseButton.LeftButton)  # the real detached Popen
    marker = chosen / "played.txt"
    qtbot.waitUntil(marker.exists, timeout=WAIT)
    qtbot.waitUntil(lambda: marker.read_text() != "", timeout=WAIT)
    assert marker.read_text() == f"played from {chosen}"
    assert not w.isVisible()  # Play closes the updater


def test_ask_remembers_the_folder_and_leaves_no_stray_state(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    app_server: Callable[..., RunningServer],
) -> None:
    """``install_dir = "ask"``: the default folder is never written; after the install the
    next window finds the chosen folder by itself, and offers Play offline."""
    from app import installs

    server = app_server()
    app_release.publish("1.0")
    cfg = app_config(tmp_path, server.url, None)
    chosen = tmp_path / "Games" / "Dungeon Crawl"
    w = window(qtbot, cfg, folder=chosen)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert not cfg.default_install_dir.exists()  # no stray .stitch/ in the default folder
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    w.close()
    assert tree(chosen) == tree(app_release.sources["1.0"])
    assert not cfg.default_install_dir.exists()
    record = installs.load("dcrawl")
    assert record is not None and record.install_dir == chosen.resolve()

    asked: list[str] = []
    w2 = UpdaterWindow(cfg, confirm_cancel=lambda _p: True,
                       choose_folder=lambda _p, c, _s: asked.append(c) or tmp_path / "no",
                       launcher=lambda argv, cwd: None)
    qtbot.addWidget(w2)
    w2.show()
    w2.start()
    qtbot.waitUntil(lambda: w2.state is State.UP_TO_DATE, timeout=WAIT)
    assert asked == [] and w2.install_dir == chosen.resolve()
    w2.close()

    server.stop()  # offline: the complete 1.0 can still be played
    launched: list[Path] = []
    w3 = UpdaterWindow(cfg, confirm_cancel=lambda _p: True,
                       choose_folder=lambda _p, _c, _s: None,
                       launcher=lambda argv, cwd: launched.append(cwd))
    qtbot.addWidget(w3)
    w3.show()
    w3.start()
    qtbot.waitUntil(lambda: w3.state is State.ERROR, timeout=WAIT)
    assert w3.error_kind == "network" and w3.offline_version == "1.0"
    assert w3.play_button.isVisible() and "you can still play Dungeon Crawl 1.0" in (
        w3.message.text())
    qtbot.mouseClick(w3.play_button, Qt.MouseButton.LeftButton)
    assert launched == [chosen.resolve()]


def test_pause_stops_traffic_and_resume_finishes(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    installed_10: tuple[Path, RunningServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import serve

    install, server = installed_10
    monkeypatch.setattr(serve, "BLOCK", 16 * 1024)
    server.delay = 0.02  # about 0.8 MB/s per connection: seconds of downloading
    server.sndbuf = None  # the system's buffers: MBs fit in them unless the client closes
    w = window(qtbot, app_config(tmp_path, server.url, install, auto_start=True))
    qtbot.waitUntil(
        lambda: w._phase is Phase.DOWNLOAD and "Downloading 0 bytes" not in w.status.text(),
        timeout=WAIT,
    )
    qtbot.mouseClick(w.pause_button, Qt.MouseButton.LeftButton)
    assert w.pause_button.text() == "&Resume"

    # Within 1 s of Pause the requests in flight are closed: from then on the server sends
    # nothing (socket buffers no longer fill up), and the window takes nothing either.
    qtbot.wait(1000)
    paused_at = server.bytes_sent
    shown = (w.bar.value(), w.status.text())
    qtbot.wait(2000)
    assert server.bytes_sent == paused_at
    assert (w.bar.value(), w.status.text()) == shown
    assert w.state is State.RUNNING and w.heading.text() == "Paused"
    # "Paused — 12.3 MB of 31.5 MB": no speed, no time left.
    assert re.fullmatch(r"Paused — [\d.]+ (bytes|kB|MB) of [\d.]+ (kB|MB)", shown[1]), shown

    server.delay = 0.0
    qtbot.mouseClick(w.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert server.bytes_sent > paused_at
    assert tree(install) == tree(app_release.sources["1.1"])


def test_cancel_leaves_the_install_byte_identical(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    installed_10: tuple[Path, RunningServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import serve

    install, server = installed_10
    monkeypatch.setattr(serve, "BLOCK", 16 * 1024)
    server.delay = 0.02
    w = window(qtbot, app_config(tmp_path, server.url, install, auto_start=True))
    qtbot.waitUntil(lambda: w._phase is Phase.DOWNLOAD, timeout=WAIT)
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)  # confirmed by the stub
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.error_kind == "cancelled"
    assert w.message.text() == "The update was cancelled. Your files were not changed."
    assert tree(install) == tree(app_release.sources["1.0"])

    # Retry picks up where it stopped and finishes.
    server.delay = 0.0
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.1"])


def test_closing_mid_download_cancels(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    installed_10: tuple[Path, RunningServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import serve

    install, server = installed_10
    monkeypatch.setattr(serve, "BLOCK", 16 * 1024)
    server.delay = 0.02
    w = window(qtbot, app_config(tmp_path, server.url, install, auto_start=True))
    qtbot.waitUntil(lambda: w._phase is Phase.DOWNLOAD, timeout=WAIT)
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)
    assert w.error_kind == "cancelled"
    assert tree(install) == tree(app_release.sources["1.0"])


def test_unreachable_server_then_retry(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    app_server: Callable[..., RunningServer],
) -> None:
    app_release.publish("1.0")
    port = free_port()
    install = tmp_path / "game"
    w = window(qtbot, app_config(tmp_path, f"http://127.0.0.1:{port}/", install))
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.error_kind == "network"
    assert w.message.text() == (
        "The update server could not be reached. Check your connection and try again."
    )
    assert w.retry_button.isVisible() and w.retry_button.isDefault()
    assert "Traceback" not in w.error_detail.toPlainText()
    assert w.error_detail.toPlainText().split(":")[0] in ("NetworkError", "HTTPStatusError")

    app_server(port=port)
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert tree(install) == tree(app_release.sources["1.0"])


def test_up_to_date_after_update(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    app_server: Callable[..., RunningServer],
) -> None:
    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    install_with_engine(app_config(tmp_path, server.url, install), install)
    w = window(qtbot, app_config(tmp_path, server.url, install))
    qtbot.waitUntil(lambda: w.state is State.UP_TO_DATE, timeout=WAIT)
    assert w.heading.text() == "Up to date"
    assert w.message.text() == "Dungeon Crawl is up to date (version 1.0)."
    assert w.bar.value() == BAR_MAX


def test_run_entry_point(qtbot: QtBot, tmp_path: Path) -> None:
    """``app.gui.run`` reads the config, shows the window, and returns its exit code."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import run

    config = tmp_path / "updater.toml"
    config.write_text(f'url = "http://127.0.0.1:{free_port()}/"\nname = "Dungeon Crawl"\n')
    seen: list[UpdaterWindow] = []

    def close_when_failed() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, UpdaterWindow) and widget.state is State.ERROR:
                seen.append(widget)
                widget.close()
                return
        QTimer.singleShot(20, close_when_failed)

    QTimer.singleShot(20, close_when_failed)
    assert run(config, ["updater"]) == 1
    assert seen and seen[0].error_kind == "network"
    assert seen[0].windowTitle() == "Dungeon Crawl updater"


def test_wrong_key_is_refused_in_plain_words(
    qtbot: QtBot,
    tmp_path: Path,
    app_release: Release,
    app_server: Callable[..., RunningServer],
) -> None:
    from core.formats import signing

    server = app_server()
    app_release.publish("1.0")
    other = signing.load_secret_key(signing.generate_keypair()[0], None).public_key.b64()
    install = tmp_path / "game"
    w = window(qtbot, app_config(tmp_path, server.url, install, pubkeys=(other,)))
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.error_kind == "content"
    assert w.message.text() == (
        "The update is not signed by the publisher, so it was not installed. Nothing was changed."
    )
    assert not install.exists() or tree(install) == {}
