"""One piece of an operation run on a thread of its own while the caller does another:
``Background``.

The updater fetches the planned remote ranges of the files built from chunks while it copies
their local chunks (``core.engine.updater``): on a real network the copies then cost no time, and
the sealer can hash past the holes while the copies go on.

The work gets a cancel token of its own, a child of the operation's: cancelling the
operation stops it, and its failure stops the caller's loops that check the same token
(``token``), so neither side goes on long after the other failed. ``wait`` hands the
work's exception to the caller; ``stop`` (always called, in a ``finally``) makes sure the
thread is gone before the files it writes are closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core.errors import CancelledError
from core.parallel import join
from core.progress import CancelToken


class Background:
    def __init__(self, cancel: CancelToken, name: str) -> None:
        self.token = CancelToken(cancel)  # the work's, and the caller's loops beside it
        self._cancel = cancel
        self._name = name
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, work: Callable[[CancelToken], None]) -> None:
        """Run ``work(token)`` on a new thread."""
        def run() -> None:
            try:
                work(self.token)
            except BaseException as e:  # handed to the caller by wait()
                self._error = e
                self.token.cancel()  # the caller's loops stop too

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Wait for the work to end; raise what it raised."""
        if self._thread is not None:
            join(self._thread)  # (waking up: a signal is handled on this thread)
        if self._error is not None:
            raise self._error

    def failed(self) -> bool:
        """Whether the work ended with an error of its own (not a cancel of the operation):
        then a ``CancelledError`` the caller meets through ``token`` is the work's doing,
        and ``wait`` raises the cause."""
        return self._error is not None and not (isinstance(self._error, CancelledError)
                                                and self._cancel.cancelled)

    def stop(self) -> None:
        """Cancel the work, if still running, and wait for its thread to end."""
        if self._thread is not None and self._thread.is_alive():
            self.token.cancel()
            join(self._thread)
