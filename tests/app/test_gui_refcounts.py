"""A long session must not crash the interpreter.

PySide6 6.12 on CPython 3.11 drops a reference to ``None`` on every void C++ call and one
to ``True`` on every signal emit, and the interpreter aborts after some thousands (hence
the pin in pyproject.toml). A real update makes hundreds of thousands of such calls; this
makes as many, and aborts the test process if a broken wheel comes back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressBar
from pytestqt.qtbot import QtBot


class _Emitter(QObject):
    fired = Signal(object)


def test_many_void_calls_and_emits(qtbot: QtBot) -> None:
    bar = QProgressBar()
    qtbot.addWidget(bar)
    emitter = _Emitter()
    seen: list[object] = []
    emitter.fired.connect(seen.append)
    before = sys.getrefcount(None)
    for i in range(200_000):
        bar.setValue(i % 100)
    for i in range(50_000):
        emitter.fired.emit(i)
    assert len(seen) == 50_000
    # Whatever the wheel does to the count, None is still very much alive.
    assert sys.getrefcount(None) > 0 and before > 0
