"""The Windows test suite: these modules run under the official Windows CPython (under wine
here, through ``tests/windows/run``; natively on the GitHub workflow's Windows runner). They
are not collected by a Linux or macOS pytest, whose platform they do not test."""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.platform != "win32":
    collect_ignore_glob = ["test_*.py"]

# Set by tests/windows/run, which starts nginx on the Linux side: there, a missing server is a
# failure. Elsewhere (a native Windows runner without nginx) the nginx tests skip.
UNDER_RUNNER = os.environ.get("STITCH_WIN_RUNNER") == "1"


@dataclass
class LinuxNginx:
    """nginx started by tests/windows/run: ``url`` serves the folder ``root`` (a Z:\\ path)."""

    url: str
    root: Path
    log: Path | None  # its access log ("$status $request $http_range" lines), if given

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log and self.log.exists() else []

    def folder(self) -> tuple[Path, str]:
        """A fresh sub-folder of the served root, and its URL."""
        name = uuid.uuid4().hex[:12]
        path = self.root / name
        path.mkdir()
        return path, f"{self.url}/{name}"


@pytest.fixture
def linux_nginx() -> LinuxNginx:
    url = os.environ.get("STITCH_WIN_NGINX_URL")
    root = os.environ.get("STITCH_WIN_WWW")
    if not url or not root:
        if UNDER_RUNNER:
            pytest.fail("tests/windows/run did not pass STITCH_WIN_NGINX_URL / STITCH_WIN_WWW")
        pytest.skip("nginx is started on the Linux side by tests/windows/run")
    log = os.environ.get("STITCH_WIN_NGINX_LOG")
    return LinuxNginx(url.rstrip("/"), Path(root), Path(log) if log else None)
