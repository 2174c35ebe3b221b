"""Entry script of the packaged updater: the ``stitch`` CLI (``app.cli:entry``).

With no arguments it opens the window; ``--update`` runs silently for launchers.
"""

from __future__ import annotations

from app.cli import entry

if __name__ == "__main__":
    entry()
