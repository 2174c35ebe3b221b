"""stitch's engine: publish releases and update installs from content-defined chunks.

The front ends (``app/``) use the names below; every other module is internal. The engine
never imports Qt, and only ``core.http`` imports httpx.
"""

from __future__ import annotations

from core.errors import (
    CancelledError,
    ConfigError,
    ContentError,
    DownloadError,
    StitchError,
)
from core.progress import CancelToken, Phase, Progress
from core.updater import (
    CheckResult,
    Outcome,
    UpdatePlan,
    Updater,
    UpdaterConfig,
    UpdateResult,
)

__all__ = [
    "CancelToken",
    "CancelledError",
    "CheckResult",
    "ConfigError",
    "ContentError",
    "DownloadError",
    "Outcome",
    "Phase",
    "Progress",
    "StitchError",
    "UpdatePlan",
    "UpdateResult",
    "Updater",
    "UpdaterConfig",
]
