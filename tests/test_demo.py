"""The README's first command, ``stitch demo``: it publishes as ``stitch publish`` does by
default (compressed chunks and deltas), installs 1.0.0, updates to 1.1.0 and says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_demo_installs_then_updates_with_the_publish_defaults(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--dir", str(tmp_path / "d"),
                        "--scale", "0.3"], capture_output=True, text=True, cwd=REPO_ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "every file matches version 1.1.0" in r.stdout
    assert "deltas from 1.0.0:" in r.stdout  # published with the defaults
    deltas = list((tmp_path / "d" / "repo").rglob("*.zdelta"))
    stz = list((tmp_path / "d" / "repo").rglob("*.stz"))
    assert deltas and stz, sorted(p.name for p in (tmp_path / "d" / "repo").rglob("*"))
