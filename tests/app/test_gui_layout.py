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
from gui_fakes import Script, FakeUpdater, make_check, make_plan
from test_gui_layout import LONG_NAME, clipped_labels
from app.config import AppConfig
from app.gui.window import State, UpdaterWindow
tmp = Path(tempfile.mkdtemp())
script = Script(check=make_check("1.0", "1.1", notes="## 1.1\\n\\n" + "- a change\\n" * 8))
script.plan = make_plan(script.check)
script.gate = threading.Event()
folder = tmp.joinpath(*["a-rather-long-folder-name"] * 8)
cfg = AppConfig(path=tmp / "updater.toml", url="http://127.0.0.1:9/", product="d",
                name=LONG_NAME, install_dir=folder, default_install_dir=folder,
                program="play.py")
w = UpdaterWindow(cfg, factory=lambda c, p, t: FakeUpdater(script, c, p, t),
                  confirm_cancel=lambda _w: True, auto_start=True)
w.show()
w.start()
seen = {}
for _ in range(2000):  # bounded: about 20 s
    app.processEvents()
    if w.state is State.RUNNING and script.in_download.is_set() and "running" not in seen:
        for _ in range(5):
            app.processEvents()
        seen["running"] = clipped_labels(w)
        script.gate.set()
    if w.state is State.DONE:
        for _ in range(5):
            app.processEvents()
        seen["done"] = clipped_labels(w)
        break
    threading.Event().wait(0.01)
w.session.stop()
print(json.dumps(seen))
"""


@pytest.mark.parametrize("scale", ["1", "2"])
def test_the_layout_holds_at_each_scale(scale: str) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": scale}
    r = subprocess.run([sys.executable, "-c", SCALED, str(REPO)], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout.splitlines()[-1])
    assert seen == {"running": [], "done": []}, seen


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
