"""What the updater tells its front ends: a check's answer, a plan's figures, a run's result.

Frozen values, computed by ``core.engine.updater`` (``UpdatePlan`` from the frozen plan,
``core.engine.plan``); ``core.engine.updater`` re-exports them, and front ends import them from
there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.Enum):
    UPDATED = "updated"  # files were changed; the install is now the offered release
    UP_TO_DATE = "up-to-date"  # nothing to do


@dataclass(frozen=True)
class CheckResult:
    """What the server offers compared with what is installed."""

    installed_version: str | None  # None: nothing installed (first install)
    offered_version: str
    up_to_date: bool
    notes: str  # release notes from the manifest, "" if none
    files_changed: int  # added or changed files
    files_removed: int
    total_size: int  # size of the whole offered release
    signed: bool  # the manifest was signed by a trusted key
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdatePlan:
    """What ``apply()`` will do, computed before any byte is downloaded."""

    check: CheckResult
    bytes_to_download: int  # remote bytes, including coalesced gaps
    bytes_reused: int  # bytes copied from files already on disk
    bytes_needed: int  # bytes the new files need in total (download + reuse)
    disk_needed: int  # free space the update needs in the install folder's disk
    disk_free: int
    requests_estimate: int  # HTTP range requests the plan expects to make
    # Of bytes_reused: bytes an earlier, interrupted attempt downloaded (kept in staging and
    # checked again), so neither downloaded now nor taken from the installed files.
    bytes_resumed: int = 0


@dataclass(frozen=True)
class UpdateResult:
    outcome: Outcome
    from_version: str | None
    to_version: str
    bytes_downloaded: int  # body bytes received from the network (all requests)
    bytes_reused: int
    files_changed: int
    files_removed: int
    requests: int
    warnings: tuple[str, ...] = field(default=())
    bytes_resumed: int = 0  # of bytes_reused: downloaded by an earlier attempt (the plan's)
    # File content received by this run, in the plan's unit (ranges, deltas, as sent):
    # bytes_downloaded less the indexes, manifests and tables fetched to plan.
    bytes_content: int = 0
