"""Verify and repair an install, as one job with one progress bar (the window's "Verify and
repair files"; ``stitch verify --repair`` is the same two steps in ``app/cli.py``).

1. ``core.engine.verify.verify_install`` hashes every file of the installed release and marks the
   damaged ones in ``state.json``, so that the next update re-reads them.
2. When something is damaged or missing, an ordinary update (``core.engine.updater``): the damaged
   files are chunked, their good chunks copied and only the bad chunks downloaded.

One bar for both: the verify's bytes are the first part of the work and the repair the
rest. How much the repair will cost is known only once the verify has found what is
damaged, so the repair is given a fixed share (``REPAIR_SHARE`` of the verify's bytes) from
the start; hashing the whole install is most of the work when a few files are damaged.
The verify's own DONE is not passed on (the job is not done), a line it says before hashing
(waiting for another run's lock) is VERIFY's, and the bar only moves forward. No Qt here:
``app/gui/worker.py`` runs ``repair`` on its thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.engine.config import UpdaterConfig
from core.engine.updater import Outcome, UpdateResult
from core.progress import CancelToken, Phase, Progress, ProgressCallback

REPAIR_SHARE = 0.1  # the repair's part of the bar, as a share of the verify's bytes


class _Updater(Protocol):
    def apply(self) -> UpdateResult: ...
    def close(self) -> None: ...


UpdaterFactory = Callable[[UpdaterConfig, ProgressCallback, CancelToken], _Updater]


@dataclass(frozen=True)
class RepairResult:
    """What the verify found and, when something was damaged, what the repair did."""

    product: str
    version: str  # the release verified
    files: int  # files it lists
    damaged: tuple[str, ...]  # present but of the wrong size or SHA-256
    missing: tuple[str, ...]
    update: UpdateResult | None  # None: nothing to repair

    @property
    def repaired(self) -> int:
        """Files brought back (the update rebuilt every damaged or missing one)."""
        return len(self.damaged) + len(self.missing) if self.update is not None else 0

    @property
    def downloaded(self) -> int:
        """File content downloaded by the repair (the plan's unit, as the window says)."""
        if self.update is None:
            return 0
        return self.update.bytes_content or self.update.bytes_downloaded

    @property
    def version_after(self) -> str:
        """The version installed now: the repair installs the release the server offers,
        which is a newer one when one was published since."""
        if self.update is None or self.update.outcome is not Outcome.UPDATED:
            return self.version
        return self.update.to_version


class _Bar:
    """Folds the two steps' progress into one overall figure that only moves forward."""

    def __init__(self, progress: ProgressCallback) -> None:
        self._progress = progress
        self.verify_total = 0
        self.reserve = 1
        self._done = 0

    def _send(self, p: Progress, done: int) -> None:
        total = self.verify_total + self.reserve
        self._done = min(total, max(self._done, done))
        self._progress(dataclasses.replace(p, overall_done=self._done, overall_total=total))

    def verify(self, p: Progress) -> None:
        if p.phase is Phase.DONE:
            return  # the job goes on (or ends with its own DONE)
        if p.phase is Phase.CHECK:  # a line said before hashing (waiting for the lock)
            p = dataclasses.replace(p, phase=Phase.VERIFY, done=0, total=0)
        if p.phase is Phase.VERIFY and p.total != self.verify_total:
            self.verify_total = p.total
            self.reserve = max(1, round(p.total * REPAIR_SHARE))
        self._send(p, p.done)

    def update(self, p: Progress) -> None:
        if p.phase is Phase.DONE:
            return  # the job's own DONE ends it
        share = p.fraction
        if share is None:  # the check: the update's total is not known yet
            self._send(p, self._done)
            return
        self._send(p, self.verify_total + round(share * self.reserve))

    def done(self) -> None:
        self._progress(Progress(Phase.DONE, 1, 1, overall_done=1, overall_total=1))


def repair(config: UpdaterConfig, factory: UpdaterFactory, progress: ProgressCallback,
           cancel: CancelToken) -> RepairResult:
    """Verify ``config.install_dir``; when anything is damaged or missing, update it from
    ``config``'s repository with an updater from ``factory``. Raises what the verify and
    the update raise (``ConfigError`` when the folder holds no install, ``DownloadError``,
    ``CancelledError``, ``InstallBusyError``, ``OSError``...)."""
    from core.engine.verify import verify_install

    bar = _Bar(progress)
    found = verify_install(config.install_dir, bar.verify, cancel, lock_wait=config.lock_wait)
    update = None
    if not found.clean:
        updater = factory(config, bar.update, cancel)
        try:
            update = updater.apply()
        finally:
            updater.close()
    bar.done()
    return RepairResult(found.product, found.version, found.files, found.damaged,
                        found.missing, update)
