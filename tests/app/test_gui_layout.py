"""The layout holds: long names, long paths, a status line that wraps, 100 % and 200 % scale.
No visible label is ever smaller than it needs to be (its size hint, or its height for its
width when it wraps): the window grows instead of squashing its rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from gui_fakes import Script, make_check, make_plan
from pytestqt.qtbot import QtBot
from test_gui_window import WAIT, make_window

from app.gui.window import State

LONG_NAME = "Dungeon Crawl: The Extraordinarily Long Subtitle Edition of Doom"
REPO = Path(__file__).resolve().parents[2]


def clipped_labels(w) -> list[str]:  # type: ignore[no-untyped-def]
    """Visible labels cut short, as ``name: has WxH, needs WxH``."""
    from PySide6.QtWidgets import QLabel

    out = []
    for label in w.findChildren(QLabel):
        if not label.isVisible():
            continue
        g, hint = label.geometry(), label.sizeHint()
        need_h = label.heightForWidth(g.width()) if label.wordWrap() else hint.height()
        need_w = 0 if label.wordWrap() else hint.width()
        if g.height() < need_h or g.width() < need_w:
            name = label.objectName() or label.text()[:40]
            out.append(f"{name}: has {g.width()}x{g.height()}, needs {need_w}x{need_h}")
    return out


def test_long_names_paths_and_a_wrapping_status_line_fit(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.check = make_check("1.0", "1.1", notes="## 1.1\n\n" + "- a change\n" * 8)
    script.plan = make_plan(script.check)
    script.gate = threading.Event()
    folder = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    w, _ = make_window(qtbot, tmp_path, fake_factory, name=LONG_NAME, install_dir=folder,
                       default_install_dir=folder, auto_start=True)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING,
                    timeout=WAIT)
    qtbot.wait(50)
    assert clipped_labels(w) == []
    height = w.height()
    # A status line several lines long (a translation, a huge font): the window grows.
    w.status.setText("Downloading 312 kB of 3.1 MB · 121 MB reused · 288 kB/s · " * 6)
    w.fit_content()
    qtbot.wait(50)
    assert clipped_labels(w) == [] and w.height() > height
    script.gate.set()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    qtbot.wait(50)
    assert clipped_labels(w) == []


SCALED = """
import json, sys, tempfile, threading
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests/app"]
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.gui.tr import install_translator
if sys.argv[2] != "en":
    assert install_translator(app, sys.argv[2]) is not None
from gui_fakes import Script, FakeUpdater, make_check, make_plan
from test_gui_layout import LONG_NAME
from app.config import AppConfig
from app.gui.view import clipped_widgets
from app.gui.window import State, UpdaterWindow
from core.errors import NetworkError
tmp = Path(tempfile.mkdtemp())
seen = {}


def settle():
    for _ in range(5):
        app.processEvents()


def until(condition):
    for _ in range(2000):  # bounded: about 20 s
        app.processEvents()
        if condition():
            settle()
            return
        threading.Event().wait(0.01)
    raise SystemExit("timed out")


def window(script, installed=True):
    folder = tmp.joinpath(*["a-rather-long-folder-name"] * 8)
    cfg = AppConfig(path=tmp / "updater.toml", url="http://127.0.0.1:9/", product="d",
                    name=LONG_NAME, install_dir=folder, default_install_dir=folder,
                    program="play.py")
    w = UpdaterWindow(cfg, factory=lambda c, p, t: FakeUpdater(script, c, p, t),
                      confirm_cancel=lambda _w: True, choose_folder=lambda *a: None,
                      launcher=lambda *a: None)
    w.show()
    w.start()
    return w


script = Script(check=make_check("1.0", "1.1", notes="## 1.1\\n\\n" + "- a change\\n" * 8))
script.plan = make_plan(script.check)
script.gate = threading.Event()
w = window(script)
until(lambda: w.state is State.READY)
seen["ready"] = clipped_widgets(w)
w.update_button.click()
until(lambda: w.state is State.RUNNING and script.in_download.is_set())
seen["running"] = clipped_widgets(w)
# A status line several lines long (a huge font, a wordy language): the window grows.
w.status.setText(w.status.text() + " · " + " · ".join([w.status.text()] * 4))
w.fit_content()
settle()
seen["running, long status"] = clipped_widgets(w)
w.pause_button.click()
settle()
seen["paused"] = clipped_widgets(w)
w.pause_button.click()
w.details_button.setChecked(True)
settle()
seen["details"] = clipped_widgets(w)
w.cancel_button.click()
until(lambda: w.state is State.ERROR)
seen["cancelled"] = clipped_widgets(w)
script.gate.set()
w.retry_button.click()
until(lambda: w.state is State.DONE)
seen["done"] = clipped_widgets(w)
w.session.stop()

script = Script(check=make_check("1.0", "1.1"), check_error=NetworkError("refused"))
e = window(script)
until(lambda: e.state is State.ERROR)
e.error_details_button.setChecked(True)
settle()
seen["network error"] = clipped_widgets(e)
e.session.stop()

script = Script(check=make_check(None, "1.1", notes="- first"))
f = window(script)
until(lambda: f.state is State.READY)
seen["first install"] = clipped_widgets(f)
f.session.stop()

script = Script(check=make_check("1.1", "1.1"))
u = window(script)
until(lambda: u.state is State.UP_TO_DATE)
seen["up to date"] = clipped_widgets(u)
u.session.stop()
print(json.dumps(seen))
"""

STATES = ["ready", "running", "running, long status", "paused", "details", "cancelled", "done",
          "network error", "first install", "up to date"]


@pytest.mark.parametrize(("scale", "lang"), [("1", "en"), ("2", "en"), ("1", "de"), ("2", "de")])
def test_the_layout_holds_at_each_scale_and_language(scale: str, lang: str) -> None:
    """Every state the window reaches without a network, at 100 % and 200 %, in English and
    in German: no visible label or button is smaller than it needs to be."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": scale}
    r = subprocess.run([sys.executable, "-c", SCALED, str(REPO), lang], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout.splitlines()[-1])
    assert seen == {state: [] for state in STATES}, seen


def test_final_screens_leave_no_blank_space_and_say_the_version_once(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.check = make_check("1.0", "1.1", notes="## 1.1\n\n" + "- a change\n" * 8)
    script.plan = make_plan(script.check)
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert not w.summary_form.isRowVisible(w.version_value)
    assert "1.0 → 1.1" in w.subheading.text()
    ready_height = w.height()
    w.update_button.click()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    qtbot.wait(50)
    layout = w.layout()
    assert w.height() <= layout.totalHeightForWidth(w.width()) < ready_height - 100
    assert clipped_labels(w) == []


def test_the_clipping_check_catches_a_cut_button_and_a_cut_label(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

    from app.gui.view import clipped_widgets

    root = QWidget()
    qtbot.addWidget(root)
    layout = QVBoxLayout(root)
    button = QPushButton("Verify and repair all the files")
    label = QLabel("a label that wraps " * 10)
    label.setWordWrap(True)
    layout.addWidget(button)
    layout.addWidget(label)
    root.show()
    qtbot.waitExposed(root)
    assert clipped_widgets(root) == []
    button.setFixedWidth(button.sizeHint().width() // 2)
    label.setFixedHeight(label.heightForWidth(label.width()) // 2)
    cut = clipped_widgets(root)
    assert len(cut) == 2
    assert {c.split("'")[1][:6] for c in cut} == {"Verify", "a labe"}


def test_no_empty_line_under_the_status_line(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    """The current file's line shows only when there is a file to name (issue 18, item 10)."""
    from core.progress import Phase, Progress

    script.gate = threading.Event()
    w, _ = make_window(qtbot, tmp_path, fake_factory, auto_start=True)
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: w.current_file.text() == "data/big.pak", timeout=WAIT)
    assert w.current_file.isVisible()
    w._on_progress(Progress(Phase.DOWNLOAD, 1, 10, download_done=1, download_total=10))
    qtbot.wait(50)
    assert not w.current_file.isVisible()
    gap = w.summary.geometry().top() - w.status.geometry().bottom() - 1
    assert gap == w.layout().spacing()
    script.gate.set()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)


@pytest.mark.timeout(300)
def test_the_screenshots_script_finds_nothing_clipped_in_german_at_200_percent(
    tmp_path: Path,
) -> None:
    """docs/screenshots.py against a real release served by ``stitch serve``: ready,
    downloading, paused, cancelled, done and error, German, 200 %, a long name and path."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, str(REPO / "docs" / "screenshots.py"), "--no-images",
                        "--lang", "de", "--scale", "2", "--long"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr[-2000:]
    checked = [line.split(":")[0] for line in r.stdout.splitlines() if "nothing clipped" in line]
    assert checked == [f"{s}-de-200-long" for s in
                       ("ready", "downloading", "paused", "cancelled", "done", "error")]
