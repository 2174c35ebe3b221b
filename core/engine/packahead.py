"""The pack's entries asked for while the rest of the plan is made: ``PackAhead``.

An update of many small files waits a round trip for the pack's first bytes
(``core.engine.packstep``) after the plan is made, the assembler set up and the pack's
files created. The ranges are known as soon as the plan knows which files the pack builds;
so a plan run at once (``Updater.apply`` planning for itself, not a plan shown to the player
first) asks for them then, on a thread, and the assembler is given a ``PackAhead`` as its
fetcher: the one ``fetch_ranges`` call for exactly those ranges is answered from what has
arrived and is arriving, in the same pieces; any other call, or that one asked again (a
fallback), goes to the network as ever. At most ``CAP`` bytes are held ahead of the
assembler (the fetch waits beyond). The bytes, requests and errors are the network's own:
an error the fetch met is raised to the call, after the pieces that came before it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from core.engine.packstep import PackStep, pack_ranges
from core.engine.plan import Step
from core.net.fetcher import Fetcher, RangeSink
from core.parallel import WAKE
from core.progress import CancelToken

CAP = 16 << 20  # bytes fetched ahead and not yet taken


class _Abandoned(Exception):
    """Ends the fetch ahead once nobody will take it (raised from its sink)."""


class PackAhead(Fetcher):
    """``inner``, with ``ranges`` of ``url`` fetched from construction on (see module)."""

    def __init__(self, inner: Fetcher, url: str, ranges: Sequence[tuple[int, int]],
                 cancel: CancelToken, cap: int = CAP) -> None:
        super().__init__()
        self.inner = inner
        self.stats = inner.stats
        self.log = inner.log
        self.url, self.ranges, self.cap = url, list(ranges), cap
        self._cancel = cancel
        self._cond = threading.Condition()
        self._pieces: deque[tuple[int, bytes]] = deque()
        self._held = 0
        self._done = False
        self._taken = False
        self._abandoned = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stitch-pack-ahead",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.inner.fetch_ranges(self.url, self.ranges, self._keep, self._cancel)
        except BaseException as e:  # (raised to the call that takes these ranges)
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _keep(self, offset: int, data: bytes) -> None:
        piece = bytes(data)  # (the fetcher may reuse its buffer after the call)
        with self._cond:
            while self._held >= self.cap and not self._abandoned:
                self._cond.wait(WAKE)
                self._cancel.check()
            if self._abandoned:
                raise _Abandoned
            self._pieces.append((offset, piece))
            self._held += len(piece)
            self._cond.notify_all()

    def fetch_ranges(self, url: str, ranges: Sequence[tuple[int, int]], sink: RangeSink,
                     cancel: CancelToken | None = None) -> None:
        with self._cond:
            mine = not self._taken and url == self.url and list(ranges) == self.ranges
            self._taken = self._taken or mine
        if not mine:
            self.inner.fetch_ranges(url, ranges, sink, cancel)
            return
        token = cancel or self._cancel
        try:
            while True:
                with self._cond:
                    while not self._pieces and not self._done:
                        self._cond.wait(WAKE)
                        token.check()
                    if not self._pieces:
                        break
                    offset, data = self._pieces.popleft()
                    self._held -= len(data)
                    self._cond.notify_all()
                sink(offset, data)
        except BaseException:
            self.stop()
            raise
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Let the fetch ahead end (at its next piece) and drop what it holds: nothing will
        take it. Does not wait for it."""
        with self._cond:
            self._abandoned = True
            self._pieces.clear()
            self._held = 0
            self._cond.notify_all()

    # The rest is the network's, as ever.
    def fetch(self, url: str, max_length: int, cancel: CancelToken | None = None) -> bytes:
        return self.inner.fetch(url, max_length, cancel)

    def fetch_fresh(self, url: str, max_length: int, cancel: CancelToken | None = None,
                    *, bust: bool = False) -> bytes:
        return self.inner.fetch_fresh(url, max_length, cancel, bust=bust)

    def split_ranges(self, url: str, cancel: CancelToken | None = None) -> bool:
        return self.inner.split_ranges(url, cancel)

    def close(self) -> None:
        """Stops the fetch ahead; the inner fetcher is its owner's to close."""
        self.stop()


def fetch_ahead(fetcher: Fetcher, steps: Sequence[Step], cancel: CancelToken
                ) -> PackAhead | None:
    """The pack's ranges for ``steps`` (the first steps of the files the pack builds),
    asked for now; None when there is no pack, or not one URL."""
    by_url = pack_ranges([st for st in steps if isinstance(st, PackStep)])
    if len(by_url) != 1:
        return None
    ((url, ranges),) = by_url.items()
    return PackAhead(fetcher, url, ranges, cancel)
