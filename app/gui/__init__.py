"""The Qt front end: one window that checks, shows the plan, updates and starts the game.

``run()`` is the entry point the CLI calls. Modules: ``text`` (every string, pure),
``model`` (bar position and file table), ``worker`` (the engine on a thread), ``window``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.gui.window import UpdaterWindow

__all__ = ["run"]


def run(config_path: Path | None, argv: Sequence[str]) -> int:
    """Show the updater window for ``config_path`` (default: ``updater.toml`` beside the
    executable) and return the exit code: 0 when the install is current, 1 after an error
    or a cancel, 2 when the config file cannot be used."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.config import default_config_path, load_config
    from app.gui.desktop import app_icon
    from app.gui.tr import install_translator, tr
    from app.gui.window import UpdaterWindow
    from core.errors import ConfigError

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(list(argv))
    app.setApplicationName("stitch")
    install_translator(app)  # the system locale's, or $STITCH_LANG's (app/gui/tr.py)
    # Fusion everywhere: the style sheet is written against it, and it follows the desktop's
    # light or dark colour scheme on Windows, macOS and Linux alike.
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    path = config_path or default_config_path()
    try:
        config = load_config(path)
    except ConfigError as e:
        print(f"stitch: {e}", file=sys.stderr)  # for launchers' logs and support staff
        if app.platformName() != "offscreen":  # nobody could ever dismiss it there
            QMessageBox.critical(
                None,
                tr("Updater"),
                tr("The updater's settings file has a problem, so it cannot update. "
                   "Tell the publisher of the game.") + f"\n\n{e}",
            )
        return 2
    window = UpdaterWindow(config)
    _close_on_signals(window)
    window.show()
    window.start()
    app.exec()
    return window.exit_code


def _close_on_signals(window: UpdaterWindow) -> None:
    """SIGTERM and Ctrl+C close the window the way Cancel does, without asking: the engine
    stops at its next check and the install stays as it was. Python runs signal handlers
    only between bytecodes, so a timer gives it the chance while Qt's loop waits."""
    from PySide6.QtCore import QTimer

    def handler(signum: int, frame: object) -> None:
        window.confirm_cancel = lambda _parent: True
        QTimer.singleShot(0, window.close)

    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is not None:
            signal.signal(sig, handler)
    tick = QTimer(window)
    tick.timeout.connect(lambda: None)
    tick.start(200)
