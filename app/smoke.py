"""``stitch --smoke-test SECONDS``: prove a packaged build can show its window, then close it.

Owns the one hook the packaging smoke test (tests/test_packaging.py, and CI on every
platform) needs in the window: after ``SECONDS`` it prints one JSON line describing what the
running program found (Qt platform plugin, image formats, bundled assets, window state, icon,
style sheet, the German translation) and closes the window the way a player does: closing
while work is under way is Cancel (confirmed), so the engine stops and the window closes
when it has. A watchdog ends the process with exit code 70 if the window has not closed 30
seconds later, so a hang shows up as a failure rather than a stuck CI job.

It changes nothing in the window's behaviour and is inert unless the option is given. Only
``install()`` imports Qt.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

WATCHDOG_SECONDS = 30.0
EXIT_HUNG = 70


def install(seconds: float) -> None:
    """Create the QApplication (``app.gui.run`` reuses it) and arm the close and the
    watchdog timers. Call before ``app.gui.run``."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    QTimer.singleShot(round(seconds * 1000), _close_window)

    def hung() -> None:
        _emit({"event": "smoke", "stage": "hung", "exit_code": EXIT_HUNG})
        os._exit(EXIT_HUNG)

    QTimer.singleShot(round((seconds + WATCHDOG_SECONDS) * 1000), hung)
    app.aboutToQuit.connect(_report_quit)


def report(window: Any) -> dict[str, Any]:
    """What a packaged build must have, as seen from inside it."""
    from PySide6.QtGui import QGuiApplication, QImageReader

    from app import assets

    folder = assets.asset_dir()
    return {
        "event": "smoke",
        "stage": "close",
        "frozen": bool(getattr(sys, "frozen", False)),
        "platform": QGuiApplication.platformName(),
        "image_formats": sorted(
            bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()
        ),
        "asset_dir": str(folder),
        "assets": sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                         if p.is_file()) if folder.is_dir() else [],
        "state": getattr(getattr(window, "state", None), "value", None),
        "window_title": window.windowTitle() if window is not None else None,
        "icon_sizes": [s.width() for s in window.windowIcon().availableSizes()] if window else [],
        "style_sheet": len(window.styleSheet()) if window is not None else 0,
        "translation_de": _german(),
        "modules": sorted(m for m in sys.modules if m.startswith("PySide6.Qt")),
    }


def _german() -> str:
    """"&Cancel" with the bundled German translation loaded ("" when it cannot be)."""
    from PySide6.QtCore import QCoreApplication

    from app.gui.tr import install_translator, tr

    app = QCoreApplication.instance()
    translator = install_translator(app, "de") if app is not None else None
    if translator is None:
        return ""
    try:
        return tr("&Cancel")
    finally:
        QCoreApplication.removeTranslator(translator)


def _close_window() -> None:
    from PySide6.QtWidgets import QApplication

    from app.gui.window import UpdaterWindow

    windows = QApplication.topLevelWidgets()
    window = next((w for w in windows if isinstance(w, UpdaterWindow) and w.isVisible()), None)
    _emit(report(window))
    if window is None:
        QApplication.quit()
        return
    # The player's answer to "Cancel the update?" is yes; then close as the title bar would.
    window.confirm_cancel = lambda _parent: True
    window.close()


def _report_quit() -> None:
    from PySide6.QtWidgets import QApplication

    window = next((w for w in QApplication.topLevelWidgets() if hasattr(w, "request_cancel")), None)
    state = getattr(getattr(window, "state", None), "value", None)
    _emit({"event": "smoke", "stage": "quit", "state": state,
           "error_kind": getattr(window, "error_kind", None)})


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)
