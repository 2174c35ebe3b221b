"""Words and looks of the window's states, driven by a scripted engine (no network): a
first install is not worded as an update, an attempt that ended early does not look like
progress, Retry after a started attempt goes on without a second click."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from gui_fakes import Script, make_check, make_plan
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot
from test_gui_window import WAIT, Recorder, make_window

from app.gui import text
from app.gui.window import BAR_MAX, State, UpdaterWindow
from core.errors import NetworkError, SignatureError


class AskingRecorder(Recorder):
    """Records what the confirmation would ask (the real one words it from the window)."""

    def __init__(self) -> None:
        super().__init__()
        self.questions: list[tuple[str, str, str, str]] = []

    def confirm_cancel(self, parent: QWidget) -> bool:
        assert isinstance(parent, UpdaterWindow)
        self.questions.append(text.cancel_question(parent.first_install))
        return super().confirm_cancel(parent)


def test_first_install_is_not_worded_as_an_update(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.check = make_check(None, "1.0")
    # The zeros of new files count as copies in the plan: not the player's files.
    script.plan = make_plan(script.check, download=40_000_000, reused=2_500_000)
    script.gate = threading.Event()
    rec = AskingRecorder()
    w, _ = make_window(qtbot, tmp_path, fake_factory, rec)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert w.heading.text() == "Ready to install Dungeon Crawl 1.0"
    assert not w.summary_form.isRowVisible(w.reuse_value)  # no "0 bytes (0% saved)"
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(script.in_download.is_set, timeout=WAIT)
    qtbot.waitUntil(lambda: w.status.text().startswith("Downloading"), timeout=WAIT)
    assert "reused" not in w.status.text()
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    assert rec.questions[-1][0] == "Stop the installation?"
    assert rec.questions[-1][2:] == ("&Stop download", "&Keep downloading")
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "Installation cancelled"
    assert w.message.text() == (
        "The installation was cancelled. What was downloaded is kept for next time."
    )
    script.gate.set()
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert w.message.text() == "Installed Dungeon Crawl 1.0. Downloaded 40.0 MB."
    assert "new install" not in w.subheading.text()
    assert w.subheading.text() == "Dungeon Crawl · Version 1.0"


def test_an_update_is_worded_as_one(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.gate = threading.Event()
    rec = AskingRecorder()
    w, _ = make_window(qtbot, tmp_path, fake_factory, rec, auto_start=True)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING,
                    timeout=WAIT)
    assert w.summary_form.isRowVisible(w.reuse_value)
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    assert rec.questions[-1][0] == "Stop the update?"
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "Update cancelled"
    assert w.message.text() == "The update was cancelled. Your files were not changed."


def _stopped_look(w: UpdaterWindow, tone: str) -> None:
    assert not w.bar.isVisible()  # not a bar stuck at 73 %
    assert w.state_icon.isVisible() and not w.state_icon.pixmap().isNull()
    assert w.message.property("tone") == tone
    assert w.message.isVisible()


def test_a_failed_check_started_nothing(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.check_error = NetworkError("[Errno 111] Connection refused", url="http://x/")
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "Could not check for updates"
    _stopped_look(w, "error")
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)  # nothing had started
    assert w.bar.isVisible() and not w.state_icon.isVisible()


def test_errors_and_cancels_look_different_from_progress(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.apply_error = SignatureError("untrusted key")
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "The update did not finish"
    _stopped_look(w, "error")
    error_icon = w.state_icon.pixmap().toImage()

    script.gate = threading.Event()
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING,
                    timeout=WAIT)
    assert w.bar.isVisible() and not w.state_icon.isVisible()
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    _stopped_look(w, "cancelled")
    assert w.state_icon.pixmap().toImage() != error_icon


def test_retry_goes_on_without_a_second_click(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.gate = threading.Event()
    w, _ = make_window(qtbot, tmp_path, fake_factory)  # the player clicks Update once
    values: list[int] = []
    w.bar.valueChanged.connect(values.append)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    qtbot.mouseClick(w.update_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(script.in_download.is_set, timeout=WAIT)
    qtbot.waitUntil(lambda: w.bar.value() > BAR_MAX // 2, timeout=WAIT)
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    stopped_at = w.bar.value()
    # The next plan knows what the stopped attempt kept.
    assert script.plan is not None
    script.plan = dataclasses.replace(script.plan, bytes_resumed=2_000_000)
    script.gate.set()
    qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)  # one click, no Update
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert script.calls.count("apply") == 2
    assert values == sorted(values) and stopped_at <= values[-1] == BAR_MAX
    assert w.download_value.text() == "4.0 MB (2.0 MB already downloaded)"
    assert "Continuing where it stopped" in w.log.toPlainText()


def test_ready_after_a_stopped_attempt_says_what_was_kept(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.plan = dataclasses.replace(make_plan(script.check), bytes_resumed=26_000_000)
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert w.status.text() == "26.0 MB already downloaded: it continues where it stopped."
    assert w.download_value.text() == "4.0 MB (26.0 MB already downloaded)"
    # Reused: from the installed files only (40 MB of the fake plan, less the 26 MB kept).
    assert w.reuse_value.text() == "14.0 MB (31% saved)"


def test_words_for_each_case() -> None:
    from core.engine.updater import Outcome, UpdateResult

    assert text.stopped_heading(cancelled=True, started=True, first_install=False) == (
        "Update cancelled")
    assert text.stopped_heading(cancelled=True, started=True, first_install=True) == (
        "Installation cancelled")
    assert text.stopped_heading(cancelled=True, started=False, first_install=False) == (
        "Cancelled")
    assert text.stopped_heading(cancelled=False, started=True, first_install=True) == (
        "The installation did not finish")
    assert text.stopped_heading(cancelled=False, started=False, first_install=False) == (
        "Could not check for updates")
    check = make_check("1.0", "1.1")
    assert text.version_line(check, finished=False) == "1.0 → 1.1"
    assert text.version_line(make_check(None, "1.1"), finished=True) == "1.1"
    plan = make_plan(check, download=125_000_000, reused=147_000_000)
    assert text.download_line(plan) == "125 MB"
    assert text.ready_line(plan) == "Nothing has been downloaded yet."
    plan = dataclasses.replace(plan, bytes_resumed=26_000_000)
    assert text.download_line(plan) == "125 MB (26.0 MB already downloaded)"
    assert text.reuse_line(plan) == "121 MB (44% saved)"
    # The final totals in the plan's categories: now, earlier, from the installed files.
    result = UpdateResult(Outcome.UPDATED, "1.0", "1.1", 125_900_000, 147_000_000, 2, 0, 9,
                          bytes_resumed=26_000_000, bytes_content=125_000_000)
    assert text.done_message(result) == (
        "Updated from 1.0 to 1.1. Downloaded 125 MB (and 26.0 MB before it was stopped), "
        "reused 121 MB from your existing files."
    )
    first = UpdateResult(Outcome.UPDATED, None, "1.0", 151_500_000, 2_500_000, 3, 0, 9,
                         bytes_content=151_000_000)
    assert text.done_message(first) == "Installed 1.0. Downloaded 151 MB."


def test_lines_and_track_read_on_a_dark_theme(qtbot: QtBot) -> None:
    from PySide6.QtGui import QColor, QPalette

    from app.gui.desktop import style_sheet

    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Window, QColor("#202124"))
    dark.setColor(QPalette.ColorRole.WindowText, QColor("#e8eaed"))
    dark.setColor(QPalette.ColorRole.Base, QColor("#17181a"))
    dark.setColor(QPalette.ColorRole.Mid, QColor("#2a2b2e"))  # what a dark theme gives
    qss = style_sheet("#3d7eff", dark)
    import re

    assert not re.search(r"@\w+@", qss)  # every placeholder filled
    border = re.search(r"QProgressBar \{[^}]*border: 1px solid (#[0-9a-f]{6})", qss)
    track = re.search(r"QProgressBar \{[^}]*background: (#[0-9a-f]{6})", qss)
    frame = re.search(r"QFrame#Summary \{[^}]*border: 1px solid (#[0-9a-f]{6})", qss)
    assert border and track and frame
    window = QColor("#202124").lightnessF()
    # Clearly apart from the window (palette(mid) was 0.03 away), below the text.
    assert QColor(border.group(1)).lightnessF() - window > 0.2
    assert QColor(frame.group(1)).lightnessF() - window > 0.2
    assert QColor(track.group(1)).lightnessF() - window > 0.07


def test_a_plain_cancel_offers_no_technical_details(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.gate = threading.Event()
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING,
                    timeout=WAIT)
    w.cancel_button.click()
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert not w.error_details_button.isVisible()
    assert w.retry_button.isVisible()


def test_release_notes_have_a_label_room_and_quiet_headings(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    from PySide6.QtGui import QTextFormat

    script.check = make_check("1.0", "1.1", notes="# Dungeon Crawl 1.1\n\n- New level\n")
    script.plan = make_plan(script.check)
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert w.notes_label.isVisible() and w.notes_label.text() == "What's new"
    line = w.notes.fontMetrics().lineSpacing()
    assert w.notes.height() >= 6 * line
    block = w.notes.document().begin()
    assert block.blockFormat().headingLevel() == 1 and block.text() == "Dungeon Crawl 1.1"
    fmt = block.begin().fragment().charFormat()
    assert fmt.intProperty(QTextFormat.Property.FontSizeAdjustment) == 0
    assert fmt.fontWeight() >= 600
    body = block.next().begin().fragment().charFormat()
    assert fmt.font().pointSizeF() <= max(body.font().pointSizeF(), w.notes.font().pointSizeF())


def test_no_release_notes_no_label(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert not w.notes.isVisible() and not w.notes_label.isVisible()


def test_speed_after_resume_does_not_swing_from_a_buffered_burst() -> None:
    from app.rate import RateMeter

    m = RateMeter()
    t, got = 0.0, 0
    for _ in range(100):  # 1 MB/s for 10 s
        t, got = t + 0.1, got + 100_000
        m.add(t, got)
    before = m.speed or 0
    m.pause()
    t += 30  # paused; socket buffers filled meanwhile
    m.add(t, got)
    got += 3_000_000  # they arrive at once on resume
    m.add(t + 0.05, got)
    for _ in range(20):  # then 1 MB/s again
        t, got = t + 0.1, got + 100_000
        m.add(t, got)
        assert 0.8 * before < (m.speed or 0) < 1.25 * before


def test_paused_shows_no_speed_nor_time_left(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    from core.progress import Phase, Progress

    assert text.paused_line(Progress(Phase.DOWNLOAD, download_done=12_300_000,
                                     download_total=31_500_000)) == (
        "Paused — 12.3 MB of 31.5 MB")
    assert text.paused_line(Progress(Phase.SCAN, 5, 10)) == "Paused"
    script.gate = threading.Event()
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: w.status.text().startswith("Downloading"), timeout=WAIT)
    w.pause_button.click()
    import re

    assert re.fullmatch(r"Paused — [\d.]+ (bytes|kB|MB) of 4\.0 MB", w.status.text())
    w.pause_button.click()
    script.gate.set()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
