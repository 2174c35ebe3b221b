"""The pointer asked for before the engine loads (core/engine/early.py): the check uses that
answer instead of asking again, fails as it would have with its error, and asks again after
waiting for another run. Real HTTP: ``stitch serve`` behind the test proxy, which logs every
request."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from pathlib import Path

import pytest

from core.engine.early import EarlyPointer
from core.engine.lock import acquire
from core.engine.updater import Updater, UpdaterConfig
from core.errors import HTTPStatusError
from core.progress import CancelToken
from core.publisher.publish import publish
from tests.faultproxy import FaultProxy

KEY = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"  # (any: never checked here)


def _pointers(proxy: FaultProxy) -> int:
    return len(proxy.entries(r"/stable/latest\.json"))


def _served(tmp_path: Path, game: tuple[Path, Path], stitch_server) -> str:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0")
    return str(stitch_server(repo).url)


def test_the_check_takes_the_pointer_asked_for_early(tmp_path: Path, game,  # type: ignore[no-untyped-def]
                                                      stitch_server) -> None:
    with FaultProxy(_served(tmp_path, game, stitch_server)) as proxy:
        config = UpdaterConfig(url=proxy.url, install_dir=tmp_path / "install")
        early = EarlyPointer(config, CancelToken())
        for _ in range(300):  # asked for before any updater exists
            if _pointers(proxy):
                break
            time.sleep(0.01)
        assert _pointers(proxy) == 1
        updater = Updater(config, early=early)
        try:
            assert updater.update().to_version == "1.0.0"
        finally:
            updater.close()
        assert _pointers(proxy) == 1  # the check took it: not asked again
        assert (tmp_path / "install" / ".stitch" / "state.json").exists()


def test_a_pointer_that_failed_early_fails_the_check_alike(tmp_path: Path, game,  # type: ignore[no-untyped-def]
                                                           stitch_server) -> None:
    url = _served(tmp_path, game, stitch_server)
    errors = []
    for early in (False, True):
        config = UpdaterConfig(url=url, install_dir=tmp_path / f"i{early}", channel="beta")
        updater = Updater(config, early=EarlyPointer(config, CancelToken()) if early else None)
        try:
            with pytest.raises(HTTPStatusError) as e:
                updater.check()
            errors.append(re.sub(r"stitch=[0-9a-f]+", "stitch=<random>", str(e.value)))
        finally:
            updater.close()
    assert errors[0] == errors[1] and "404" in errors[0]


def test_after_waiting_for_another_run_the_pointer_is_asked_again(  # type: ignore[no-untyped-def]
        tmp_path: Path, game, stitch_server) -> None:
    with FaultProxy(_served(tmp_path, game, stitch_server)) as proxy:
        config = UpdaterConfig(url=proxy.url, install_dir=tmp_path / "install", lock_wait=60)
        first = Updater(config)
        try:
            first.update()
        finally:
            first.close()
        held = acquire(tmp_path / "install" / ".stitch", wait=0)  # "another run"
        waited: list[str] = []
        release = threading.Timer(0.3, held.release)
        early = EarlyPointer(config, CancelToken())
        updater = Updater(config, early=early, on_wait=waited.append)
        release.start()
        try:
            assert updater.check().up_to_date
        finally:
            release.cancel()
            updater.close()
        assert len(waited) == 1
        assert _pointers(proxy) == 3  # the first run's, the early one, the one after the wait


def test_an_early_pointer_is_for_its_own_repository_and_channel(tmp_path: Path) -> None:
    """The keys may come after it was asked for (the command line parses them meanwhile);
    another channel may not."""
    config = UpdaterConfig(url="http://127.0.0.1:9", install_dir=tmp_path)
    early = EarlyPointer(config, CancelToken())
    try:
        with pytest.raises(ValueError):
            Updater(dataclasses.replace(config, channel="beta"), early=early)
        keyed = dataclasses.replace(config, pubkeys=(KEY,))
        assert Updater(keyed, early=early).config.pubkeys == (KEY,)
    finally:
        early.fetcher.close()
