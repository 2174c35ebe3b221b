"""The channel's pointer, asked for before the rest of an update is loaded: ``EarlyPointer``.

A launcher's run is mostly start-up (the interpreter and the imports) and one round trip,
for the pointer (docs/format.md §4). Everything after it waits for it, and asking for it
needs nothing from the install. So the command line (``app.cli``) asks for it as soon as it
knows the repository, on a thread of its own, and loads the updater, the signature module
and the install's state while the answer travels: on a distant server the round trip hides
that part of the start-up. The ``Updater`` given the ``EarlyPointer`` takes its answer (or
its error) once, in place of fetching the pointer itself
(``core.engine.trust.verify_release``); a later check in the same run (another run changed
the install meanwhile) asks the server again.

Loads only the HTTP layer: it runs before the engine is imported.
"""

from __future__ import annotations

import threading

from core.engine.config import UpdaterConfig
from core.formats.layout import MAX_POINTER_SIZE, pointer_url
from core.net.fetcher import Fetcher
from core.parallel import join
from core.progress import CancelToken


def make_fetcher(config: UpdaterConfig) -> Fetcher:
    """The HTTP fetcher of a run with ``config`` (its connections and timeout)."""
    from core.net.http import HttpFetcher  # httpx: only a run that goes to the network

    if config.timeout is None:
        return HttpFetcher(connections=config.connections)
    return HttpFetcher(connections=config.connections, read_timeout=config.timeout)


class EarlyPointer:
    """``config``'s pointer, fetched on a thread from construction on with ``fetcher`` (made
    here: the run's fetcher, which the ``Updater`` given this one closes)."""

    def __init__(self, config: UpdaterConfig, cancel: CancelToken) -> None:
        self.config = config
        self.fetcher = make_fetcher(config)
        self._data: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fetch, args=(cancel,),
                                        name="stitch-pointer", daemon=True)
        self._thread.start()

    def serves(self, config: UpdaterConfig) -> bool:
        """Whether this is ``config``'s pointer, asked for as its run would: the same
        repository, channel and network settings (the keys, say, may come later)."""
        return _asked(config) == _asked(self.config)

    def _fetch(self, cancel: CancelToken) -> None:
        try:
            self._data = self.fetcher.fetch_fresh(
                pointer_url(self.config.url, self.config.channel), MAX_POINTER_SIZE, cancel,
                bust=self.config.cache_bust)
        except BaseException as e:  # (raised to the taker, in the run's thread)
            self._error = e

    def take(self) -> bytes:
        """The pointer's bytes once fetched, or what fetching it raised."""
        join(self._thread)
        if self._error is not None:
            raise self._error
        assert self._data is not None
        return self._data


def _asked(config: UpdaterConfig) -> tuple[object, ...]:
    """What the pointer's request depends on."""
    return (config.url, config.channel, config.cache_bust, config.connections, config.timeout)
