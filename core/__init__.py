"""stitch's engine: publish releases and update installs from content-defined chunks.

The front ends (``app/``) use the names below; every other module is internal. The engine
never imports Qt, and only ``core.net.http.client`` imports httpx. Names are loaded on first use
(PEP 562), so ``import core.errors`` does not pull in numpy and the rest of the engine:
``stitch --version`` and ``stitch serve`` start fast.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# numpy's BLAS (OpenBLAS) starts a worker thread per CPU when numpy is imported, and they
# spin while idle: measured, 13 % of an update's samples on 2 CPUs, taken from the threads
# that copy, fetch and hash. stitch does no linear algebra; one BLAS thread (none extra) is
# enough. Set before numpy is imported; a value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if TYPE_CHECKING:
    from core.engine.config import UpdaterConfig
    from core.engine.updater import (
        CheckResult,
        Outcome,
        UpdatePlan,
        Updater,
        UpdateResult,
    )
    from core.errors import (
        CancelledError,
        ConfigError,
        ContentError,
        DownloadError,
        StitchError,
    )
    from core.progress import CancelToken, Phase, Progress

_WHERE = {
    "CancelledError": "core.errors",
    "ConfigError": "core.errors",
    "ContentError": "core.errors",
    "DownloadError": "core.errors",
    "StitchError": "core.errors",
    "CancelToken": "core.progress",
    "Phase": "core.progress",
    "Progress": "core.progress",
    "CheckResult": "core.engine.updater",
    "Outcome": "core.engine.updater",
    "Updater": "core.engine.updater",
    "UpdaterConfig": "core.engine.config",
    "UpdatePlan": "core.engine.updater",
    "UpdateResult": "core.engine.updater",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
