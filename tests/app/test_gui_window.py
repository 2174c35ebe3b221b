"""The window's states, buttons and keyboard, driven by a scripted engine (no network)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gui_fakes import Script, make_check, make_plan
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.config import AppConfig
from app.gui.window import BAR_MAX, State, UpdaterWindow
from core.errors import NetworkError, SignatureError

WAIT = 5000  # ms; every wait is bounded


def config(tmp_path: Path, **changes: object) -> AppConfig:
    base = {
        "path": tmp_path / "updater.toml",
        "url": "http://127.0.0.1:9/",
        "product": "dcrawl",
        "name": "Dungeon Crawl",
        "install_dir": tmp_path / "game",
        "default_install_dir": tmp_path / "game",
        "program": "play.py",
    }
    base.update(changes)
    return AppConfig(**base)  # type: ignore[arg-type]


class Recorder:
    """The injected confirmation, folder chooser and launcher, recording their calls."""

    def __init__(self, confirm: bool = True, folder: Path | None = None) -> None:
        self.confirm = confirm
        self.folder = folder
        self.confirmations = 0
        self.captions: list[str] = []
        self.launched: list[tuple[list[str], Path]] = []

    def confirm_cancel(self, _parent: QWidget) -> bool:
        self.confirmations += 1
        return self.confirm

    def choose_folder(self, _parent: QWidget, caption: str, _start: Path) -> Path | None:
        self.captions.append(caption)
        return self.folder

    def launcher(self, argv: list[str], cwd: Path) -> None:
        self.launched.append((list(argv), cwd))


def assert_unique_mnemonics(w: UpdaterWindow) -> None:
    """Alt+letter must be unambiguous among the buttons the player can see."""
    from PySide6.QtWidgets import QAbstractButton

    keys = []
    for b in w.findChildren(QAbstractButton):
        if b.isVisible() and "&" in b.text():
            keys.append(b.text()[b.text().index("&") + 1].lower())
    assert len(set(keys)) == len(keys), keys


def make_window(
    qtbot: QtBot, tmp_path: Path, fake_factory, rec: Recorder | None = None, **changes: object
) -> tuple[UpdaterWindow, Recorder]:
    rec = rec or Recorder()
    auto = changes.pop("auto_start", None)
    w = UpdaterWindow(
        config(tmp_path, **changes),
        factory=fake_factory,
        confirm_cancel=rec.confirm_cancel,
        choose_folder=rec.choose_folder,
        launcher=rec.launcher,
        auto_start=auto,  # type: ignore[arg-type]
    )
    qtbot.addWidget(w)
    w.show()
    w.start()
    return w, rec


def test_ready_shows_the_plan_then_updates(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.check = make_check("1.0", "1.1", notes="## 1.1\n\n- New level")
    script.plan = make_plan(
        script.check, download=41_000_000, reused=4_100_000_000, free=120_000_000_000
    )
    w, rec = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert w.heading.text() == "Update available: Dungeon Crawl 1.1"
    assert w.version_value.text() == "1.0 → 1.1"
    assert w.download_value.text() == "41.0 MB"
    assert w.reuse_value.text() == "4.1 GB (99% saved)"
    assert w.disk_value.text() == "4.1 GB needed · 120 GB free"
    assert "New level" in w.notes.toPlainText() and w.notes.isVisible()
    assert w.update_button.isVisible() and w.update_button.isDefault()
    assert not w.change_button.isVisible()  # not a first install
    assert not w.details.isVisible()  # details are hidden by default
    assert "Checking for updates" in w.log.toPlainText()

    qtbot.keyClick(w, Qt.Key.Key_Return)  # Enter presses the default button
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert w.bar.value() == BAR_MAX
    assert w.heading.text() == "Done"
    assert w.message.text() == (
        "Updated Dungeon Crawl from 1.0 to 1.1. Downloaded 41.0 MB, reused 4.1 GB from your "
        "existing files."
    )
    assert w.play_button.isVisible() and w.play_button.isDefault()
    assert w.exit_code == 0
    assert_unique_mnemonics(w)
    assert w.files.rowCount() == 1

    (tmp_path / "game").mkdir(exist_ok=True)
    (tmp_path / "game" / "play.py").write_text("")
    qtbot.mouseClick(w.play_button, Qt.MouseButton.LeftButton)
    assert rec.launched == [([str(tmp_path / "game" / "play.py")], tmp_path / "game")]
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)


def test_bar_never_runs_backwards(qtbot: QtBot, tmp_path: Path, fake_factory) -> None:
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    values: list[int] = []
    w.bar.valueChanged.connect(values.append)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert values == sorted(values) and values[-1] == BAR_MAX
    headings = w.log.toPlainText()
    order = [
        "Checking for updates",
        "Scanning local files",
        "Planning the update",
        "Rebuilding files",
        "Downloading",
        "Verifying files",
        "Installing",
        "Done",
    ]
    positions = [headings.index(h) for h in order]
    assert positions == sorted(positions)


def test_up_to_date_is_success(qtbot: QtBot, tmp_path: Path, fake_factory, script: Script) -> None:
    script.check = make_check("1.1", "1.1")
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.UP_TO_DATE, timeout=WAIT)
    assert w.heading.text() == "Up to date"
    assert w.message.text() == "Dungeon Crawl is up to date (version 1.1)."
    assert w.bar.value() == BAR_MAX
    assert w.play_button.isVisible() and w.close_button.isVisible()
    assert not w.retry_button.isVisible()
    assert w.exit_code == 0


def test_error_then_retry(qtbot: QtBot, tmp_path: Path, fake_factory, script: Script) -> None:
    script.check_error = NetworkError("[Errno 111] Connection refused", url="http://x/")
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.message.text() == (
        "The update server could not be reached. Check your connection and try again."
    )
    assert w.retry_button.isVisible() and w.retry_button.isDefault()
    assert w.status.text() == "Stopped while checking for updates"
    assert not w.error_detail.isVisible()
    qtbot.mouseClick(w.error_details_button, Qt.MouseButton.LeftButton)
    assert w.error_detail.isVisible()
    assert w.error_detail.toPlainText().startswith(
        "NetworkError: [Errno 111] Connection refused\nurl: http://x/"
    )
    assert w.exit_code == 1
    assert_unique_mnemonics(w)
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert not w.error_detail.isVisible() and not w.message.isVisible()


def test_content_error_in_apply(qtbot: QtBot, tmp_path: Path, fake_factory, script: Script) -> None:
    script.apply_error = SignatureError("untrusted key")
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "The update did not finish"
    assert "not signed by the publisher" in w.message.text()


def test_pause_resume_and_cancel(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.gate = threading.Event()
    w, rec = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(script.in_download.is_set, timeout=WAIT)
    qtbot.waitUntil(lambda: w.state is State.RUNNING, timeout=WAIT)
    qtbot.mouseClick(w.pause_button, Qt.MouseButton.LeftButton)
    assert w.session.paused
    assert w.pause_button.text() == "&Resume"
    qtbot.waitUntil(lambda: w.heading.text() == "Paused", timeout=WAIT)
    assert_unique_mnemonics(w)
    qtbot.mouseClick(w.pause_button, Qt.MouseButton.LeftButton)
    assert not w.session.paused and w.pause_button.text() == "&Pause"

    rec.confirm = False  # "No, keep going"
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    assert rec.confirmations == 1 and w.state is State.RUNNING
    rec.confirm = True
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.error_kind == "cancelled"
    assert w.heading.text() == "Update cancelled"
    assert w.message.text() == "The update was cancelled. Your files were not changed."
    assert w.retry_button.isVisible()


def test_cancel_while_paused(qtbot: QtBot, tmp_path: Path, fake_factory, script: Script) -> None:
    script.gate = threading.Event()
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING, timeout=WAIT)
    w.toggle_pause()
    qtbot.keyClick(w, Qt.Key.Key_Escape)  # Esc is Cancel
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.error_kind == "cancelled"


def test_closing_is_cancel(qtbot: QtBot, tmp_path: Path, fake_factory, script: Script) -> None:
    script.gate = threading.Event()
    w, rec = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING, timeout=WAIT)
    rec.confirm = False
    w.close()
    assert w.isVisible() and w.state is State.RUNNING
    rec.confirm = True
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)
    assert w.state is State.ERROR and w.error_kind == "cancelled"
    assert "apply" in script.calls and script.calls[-1] == "close"


def test_first_install_asks_for_a_folder(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    from app import installs

    script.check = make_check(None, "1.0")
    script.plan = make_plan(script.check, download=50_000_000, reused=0)
    chosen = tmp_path / "Games" / "Dungeon Crawl"
    rec = Recorder(folder=chosen)
    w, _ = make_window(qtbot, tmp_path, fake_factory, rec, install_dir=None, auto_start=True)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert rec.captions == ["Choose where to install Dungeon Crawl"]  # before any check
    assert [c.install_dir for c in script.configs] == [chosen]
    assert not (tmp_path / "game").exists()  # the default folder: never touched
    assert w.heading.text() == "Ready to install Dungeon Crawl 1.0"
    assert w.update_button.text() == "&Install"
    assert w.change_button.isVisible() and w.folder_value.text() == str(chosen)
    assert w.state is State.READY  # a player-chosen folder is confirmed, never auto-started
    assert installs.load("dcrawl") is None  # remembered only once installed
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert chosen.is_dir()  # created for the engine
    assert w.message.text() == "Installed Dungeon Crawl 1.0. Downloaded 50.0 MB."
    record = installs.load("dcrawl")
    assert record is not None and record.install_dir == chosen.resolve()
    assert record.version == "1.0"


def test_ask_without_a_choice_writes_nothing_and_retry_asks_again(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    import os

    script.check = make_check(None, "1.0")
    rec = Recorder(folder=None)
    w, _ = make_window(qtbot, tmp_path, fake_factory, rec, install_dir=None)
    assert w.state is State.ERROR and w.error_kind == "cancelled"
    assert script.configs == [] and not (tmp_path / "game").exists()
    assert not Path(os.environ["XDG_STATE_HOME"]).exists()  # no record either
    assert w.retry_button.isVisible() and "No folder was chosen" in w.message.text()
    rec.folder = tmp_path / "chosen"
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert len(rec.captions) == 2 and [c.install_dir for c in script.configs] == [rec.folder]


def test_the_remembered_folder_is_used_without_asking(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    from app import installs

    where = tmp_path / "elsewhere" / "Dungeon Crawl"
    installs.save(installs.InstallRecord("dcrawl", where, version="1.0"))
    script.check = make_check("1.0", "1.1")
    rec = Recorder(folder=tmp_path / "never")
    w, _ = make_window(qtbot, tmp_path, fake_factory, rec, install_dir=None)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert rec.captions == [] and [c.install_dir for c in script.configs] == [where]
    assert w.heading.text() == "Update available: Dungeon Crawl 1.1"


def test_an_unwritable_folder_is_told_and_the_per_user_one_used(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    import os

    from app import installs

    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")  # nothing can be created under a file, even by root
    script.check = make_check(None, "1.0")
    rec = Recorder(folder=blocker / "Dungeon Crawl")
    w, _ = make_window(qtbot, tmp_path, fake_factory, rec, install_dir=None)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    per_user = installs.user_install_dir("game")  # the default folder's name, per user
    if os.name != "nt":
        assert per_user == Path(os.environ["XDG_DATA_HOME"]) / "game"
    assert [c.install_dir for c in script.configs] == [per_user]
    assert w.warning.isVisible() and "without administrator rights" in w.warning.text()
    assert str(per_user) in w.warning.text() and w.folder_value.text() == str(per_user)
    assert "apply" not in script.calls  # told before anything downloads


def test_offline_play_beside_retry(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import offline

    played = {"1.1": True}
    monkeypatch.setattr(offline, "playable_version", lambda d: "1.1" if played["1.1"] else None)
    script.check_error = NetworkError("[Errno 111] Connection refused", url="http://x/")
    w, rec = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.message.text() == "Couldn't check for updates — you can still play Dungeon Crawl 1.1."
    assert w.play_button.isVisible() and w.retry_button.isVisible()
    assert w.retry_button.isDefault()
    qtbot.mouseClick(w.play_button, Qt.MouseButton.LeftButton)
    assert rec.launched and rec.launched[0][1] == tmp_path / "game"
    # An install that is not complete: Retry only.
    played["1.1"] = False
    script.check_error = NetworkError("[Errno 111] Connection refused", url="http://x/")
    w2, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w2.state is State.ERROR, timeout=WAIT)
    assert not w2.play_button.isVisible() and w2.retry_button.isVisible()



def test_not_enough_space_blocks_update(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.plan = make_plan(script.check, download=10**9, reused=0, free=10**6)
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    qtbot.wait(50)
    assert w.state is State.READY and not w.update_button.isEnabled()
    assert "not enough free disk space" in w.warning.text()


def test_details_toggle_and_mnemonics(qtbot: QtBot, tmp_path: Path, fake_factory) -> None:
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    qtbot.mouseClick(w.details_button, Qt.MouseButton.LeftButton)
    assert w.details.isVisible()
    assert "manifest verified" in w.log.toPlainText()  # Progress.message reaches the log
    qtbot.mouseClick(w.details_button, Qt.MouseButton.LeftButton)
    assert not w.details.isVisible()
    for button in (
        w.update_button,
        w.pause_button,
        w.cancel_button,
        w.retry_button,
        w.play_button,
        w.close_button,
        w.change_button,
        w.error_details_button,
    ):
        assert "&" in button.text(), button.text()
    assert "&" in w.details_button.text()
    assert_unique_mnemonics(w)


@pytest.mark.parametrize("program", ["", "play.py"])
def test_play_only_with_a_program(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script, program: str
) -> None:
    script.check = make_check("1.1", "1.1")
    w, _ = make_window(qtbot, tmp_path, fake_factory, program=program)
    qtbot.waitUntil(lambda: w.state is State.UP_TO_DATE, timeout=WAIT)
    assert w.play_button.isVisible() is bool(program)
    assert (w.default_button() is w.play_button) is bool(program)
