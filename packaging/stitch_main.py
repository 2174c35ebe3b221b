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


def main() -> None:
    _no_console_streams()
    from app.cli import entry

    try:
        entry()
    except ModuleNotFoundError as e:  # the window asked of the Qt-free console program
        if (e.name or "").split(".")[0] not in ("PySide6", "shiboken6", "app"):
            raise
        exe = os.path.basename(sys.executable)
        gui = exe.replace("-cli", "") if "-cli" in exe else "the windowed program"
        print(f"{exe}: this console program has no window; start {gui} for it",
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
