"""Where the updater's own files (icons, style sheet) are, frozen or not.

One helper, so the PyInstaller spec and the code agree on one folder: ``assets/`` at the
repository root when running from source, ``<_MEIPASS>/assets`` inside a frozen build (the
spec must list these files as data with the destination ``assets``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def asset_dir() -> Path:
    """The folder holding the assets."""
    if getattr(sys, "frozen", False):
        # One-file builds unpack to sys._MEIPASS; one-folder builds keep data beside the exe.
        base = getattr(sys, "_MEIPASS", None)
        root = Path(base) if base else Path(sys.executable).resolve().parent
        return root / "assets"
    return Path(__file__).resolve().parent.parent / "assets"


def asset_path(name: str) -> Path:
    """The path of asset ``name`` (like ``"style.qss"`` or ``"icon-32.png"``).

    The file may not exist; callers that can do without it check ``is_file()``.
    """
    return asset_dir() / name
