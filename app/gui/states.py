"""The states of the window's one updater run (the diagram is in app/gui/window.py), apart
from the window so that app/gui/maintenance.py can use them without importing the window."""

from __future__ import annotations

import enum


class State(enum.Enum):
    CHECKING = "checking"  # check, scan and plan (nothing downloaded but indexes)
    READY = "ready"  # the plan is shown; waiting for the Update button
    RUNNING = "running"  # download, rebuild, verify, install (or a repair: maintenance.py)
    CANCELLING = "cancelling"  # cancel requested; waiting for the engine to stop
    DONE = "done"
    UP_TO_DATE = "up-to-date"
    ERROR = "error"  # includes "cancelled": Retry starts over
