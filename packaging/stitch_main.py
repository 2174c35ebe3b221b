"""Entry script of the packaged updater: the ``stitch`` CLI (``app.cli:main``).

With no arguments it opens the window; ``--update`` runs silently for launchers.
"""

from __future__ import annotations

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
