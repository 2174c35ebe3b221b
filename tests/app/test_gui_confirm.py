"""The real confirmation box behind Cancel and Uninstall… (``app.gui.desktop.confirm``)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton, QWidget

from app.gui.desktop import confirm

WORDS = ("Uninstall Game?", "This removes Game.", "&Uninstall", "&Keep the game")


@pytest.mark.parametrize(("click", "acted"), [("&Uninstall", True), ("&Keep the game", False)])
def test_confirm_keeps_by_default_and_reports_the_choice(qtbot, click: str, acted: bool) -> None:  # type: ignore[no-untyped-def]
    parent = QWidget()
    qtbot.addWidget(parent)
    seen: dict[str, str] = {}

    def answer() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen["title"] = box.windowTitle()
        default, escape = box.defaultButton(), box.escapeButton()
        seen["default"] = default.text() if default else ""
        seen["escape"] = escape.text() if isinstance(escape, QPushButton) else ""
        next(b for b in box.buttons() if b.text() == click).click()

    QTimer.singleShot(0, answer)
    assert confirm(parent, QMessageBox.Icon.Warning, WORDS) is acted
    assert seen == {"title": "Uninstall Game?", "default": "&Keep the game",
                    "escape": "&Keep the game"}
