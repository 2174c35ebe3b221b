"""What the window asks of the desktop: a yes/no question, a folder, starting the game,
the icon and the style sheet.

The first three block or leave the process, so the window takes them as parameters and tests
pass stand-ins; these are the real ones. Starting the game (``launch_detached``) lives in
``app/launch.py``, Qt-free, shared with the CLI: it undoes what the packaged updater's bundle
changed (DLL search folder, environment) before the game starts.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app import assets
from app.config import AppConfig
from app.gui import text
from app.launch import launch_detached

__all__ = ["app_icon", "ask_cancel", "confirm", "launch_detached", "pick_folder", "style_sheet"]


def ask_cancel(parent: QWidget) -> bool:
    """The real confirmation: a question box whose default answer keeps updating, worded
    for a first install or an update (``parent.first_install``)."""
    words = text.cancel_question(bool(getattr(parent, "first_install", False)))
    return confirm(parent, QMessageBox.Icon.Question, words)


def confirm(parent: QWidget, icon: QMessageBox.Icon, words: tuple[str, str, str, str]) -> bool:
    """A question whose safe answer is the default (Enter and Escape both keep things as
    they are): ``words`` = title, question, the button that acts, the one that keeps.
    True when the player chose to act."""
    title, question, act, keep = words
    box = QMessageBox(icon, title, question, parent=parent)
    act_button = box.addButton(act, QMessageBox.ButtonRole.DestructiveRole)
    keep_button = box.addButton(keep, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep_button)
    box.setEscapeButton(keep_button)
    box.exec()
    return box.clickedButton() is act_button


def pick_folder(parent: QWidget, caption: str, start: Path) -> Path | None:
    """The real folder chooser. Starts at the nearest existing parent of ``start``."""
    probe = start
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    chosen = QFileDialog.getExistingDirectory(parent, caption, str(probe))
    return Path(chosen) if chosen else None


def app_icon(config: AppConfig | None = None) -> QIcon:
    """The configured icon, or stitch's own in every size (crisp at any DPI)."""
    if config is not None and config.icon is not None:
        return QIcon(str(config.icon))
    icon = QIcon()
    for size in (16, 32, 48, 64, 128, 256):
        png = assets.asset_path(f"icon-{size}.png")
        if png.is_file():
            icon.addFile(str(png), QSize(size, size))
    svg = assets.asset_path("icon.svg")
    if icon.isNull() and svg.is_file():
        icon.addFile(str(svg))
    return icon


def style_sheet(accent: str, palette: QPalette) -> str:
    """``assets/style.qss`` with the accent colour filled in ("" = the palette's highlight);
    "" if the file is missing (the window still works, in the plain platform style)."""
    qss_file = assets.asset_path("style.qss")
    if not qss_file.is_file():
        return ""
    colour = QColor(accent) if accent else palette.color(QPalette.ColorRole.Highlight)
    if not colour.isValid():
        colour = palette.color(QPalette.ColorRole.Highlight)
    # Black or white text, whichever reads on the accent (relative luminance).
    luminance = 0.2126 * colour.redF() + 0.7152 * colour.greenF() + 0.0722 * colour.blueF()
    accent_text = "#000000" if luminance > 0.6 else "#ffffff"
    qss = qss_file.read_text(encoding="utf-8")
    # Lines and the bar's track from the window's own colours, mixed towards its text: they
    # read on light and dark themes alike (palette(mid) all but vanishes on dark ones).
    window = palette.color(QPalette.ColorRole.Window)
    ink = palette.color(QPalette.ColorRole.WindowText)
    return (
        qss.replace("@accent_text@", accent_text)
        .replace("@accent@", colour.name())
        .replace("@line@", _mix(window, ink, 0.35))
        .replace("@track@", _mix(window, ink, 0.12))
    )


def _mix(a: QColor, b: QColor, share: float) -> str:
    """``a`` with ``share`` of ``b``, as ``#rrggbb``."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * share,
        a.greenF() + (b.greenF() - a.greenF()) * share,
        a.blueF() + (b.blueF() - a.blueF()) * share,
    ).name()
