"""Entry script of the packaged updater: the ``stitch`` CLI (``app.cli:entry``).

With no arguments it opens the window; ``--update`` runs silently for launchers.

On Windows the same script is two programs (packaging/stitch.spec): ``NAME.exe``, windowed,
and ``NAME-cli.exe``, a console program. In the windowed one the standard streams are None
(PyInstaller's windowed mode): they are pointed at NUL here so a ``--update`` run from it
still works, silently, and exits with its code. The one-file ``NAME-cli.exe`` carries no Qt:
asked for the window, it says which program has it.
"""

from __future__ import annotations

import os
import sys


def _no_console_streams() -> None:
    for name in ("stdin", "stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "r" if name == "stdin" else "w"))  # noqa: SIM115


def _no_window_here() -> None:
    """In a program built without Qt (the one-file ``NAME-cli.exe``), ``app.gui`` is a
    stand-in whose window says which program has it (exit code 2)."""
    import importlib.util
    import types

    if importlib.util.find_spec("PySide6") is not None:
        return
    gui = types.ModuleType("app.gui")

    def run(*args: object, **kwargs: object) -> int:
        exe = os.path.basename(sys.executable)
        windowed = exe.replace("-cli", "") if "-cli" in exe else "the windowed program"
        print(f"{exe}: this console program has no window; start {windowed} for it",
              file=sys.stderr)
        return 2

    gui.run = run  # type: ignore[attr-defined]
    sys.modules["app.gui"] = gui


def main() -> None:
    _no_console_streams()
    _no_window_here()
    from app.cli import entry

    entry()


if __name__ == "__main__":
    main()
