"""Fixtures for the player's window tests: offscreen Qt, a scripted stand-in for the engine,
and (for the end-to-end tests) real releases published with ``core.publisher.publish`` and served by
``app.serve``.

The release fixtures are named ``app_release`` and ``app_server`` so they never shadow the
project-wide ``published_repo`` / ``stitch_server`` fixtures of tests/conftest.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gui_fakes import FakeUpdater, Release, RunningServer, Script

from core.engine.updater import UpdaterConfig
from core.progress import CancelToken, ProgressCallback


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def fake_factory(script: Script) -> Callable[..., FakeUpdater]:
    def factory(
        config: UpdaterConfig, progress: ProgressCallback, cancel: CancelToken
    ) -> FakeUpdater:
        return FakeUpdater(script, config, progress, cancel)

    return factory


@pytest.fixture
def app_release(tmp_path: Path) -> Release:
    repo = tmp_path / "repo"
    repo.mkdir()
    return Release(repo, {})


@pytest.fixture
def app_server(app_release: Release) -> Iterator[Callable[..., RunningServer]]:
    """Start servers for ``app_release.repo``: ``app_server(port=0, delay=0.0)``."""
    servers: list[RunningServer] = []

    def start(port: int = 0, delay: float = 0.0) -> RunningServer:
        s = RunningServer(app_release.repo, port, delay)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
