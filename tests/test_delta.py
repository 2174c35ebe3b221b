"""Publisher deltas (zstd patch-from): a player one version behind downloads the delta and
nothing else; a player on another version, or a bad delta, falls back to chunks."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from core import delta
from core.errors import FormatError
from core.publish import publish
from core.updater import Updater, UpdaterConfig
from tests.conftest import MEM, memory_fetcher, tree_digest


def _versions(tmp_path: Path) -> list[Path]:
    rng = random.Random(5)
    base = bytearray(rng.randbytes(3_000_000))
    out = []
    for v in range(3):
        d = tmp_path / f"v{v}"
        (d / "bin").mkdir(parents=True)
        for _ in range(60):  # scattered small edits: the case chunks handle worst
            at = rng.randrange(len(base) - 8)
            base[at:at + 4] = rng.randbytes(4)
        (d / "bin/game").write_bytes(bytes(base))
        (d / "readme.txt").write_text(f"version {v}\n")
        out.append(d)
    return out


def _update(install: Path, fetcher):  # type: ignore[no-untyped-def]
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)
    plan = up.prepare()
    return plan, up.apply()


def test_one_version_behind_downloads_only_the_delta(tmp_path: Path) -> None:
    v0, v1, _ = _versions(tmp_path)
    repo = tmp_path / "repo"
    publish(v0, repo, "1.0.0", deltas=True)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    report = publish(v1, repo, "1.1.0", deltas=True)
    manifest = json.loads((repo / "stable/1.1.0/release.json").read_text())
    entry = next(f for f in manifest["files"] if f["path"] == "bin/game")
    assert len(entry["deltas"]) == 1 and report.delta_bytes > 0

    fetcher = memory_fetcher(repo)
    plan, _ = _update(install, fetcher)
    assert tree_digest(install) == tree_digest(v1)
    asked = [u for u, _ in fetcher.requests]
    assert any(u.endswith(".zdelta") for u in asked)
    assert not [rs for u, rs in fetcher.requests if rs and u.endswith("bin/game")]
    assert not [u for u in asked if u.endswith("bin/game.fidx")]  # the delta is enough
    assert plan.bytes_to_download < report.new_bytes / 4  # far below the new chunks


def test_two_versions_behind_or_a_bad_delta_fall_back_to_chunks(tmp_path: Path) -> None:
    v0, v1, v2 = _versions(tmp_path)
    repo = tmp_path / "repo"
    publish(v0, repo, "1.0.0", deltas=True)
    behind = tmp_path / "behind"
    _update(behind, memory_fetcher(repo))
    publish(v1, repo, "1.1.0", deltas=True)
    current = tmp_path / "current"
    _update(current, memory_fetcher(repo))
    publish(v2, repo, "1.2.0", deltas=True)  # its delta is from 1.1.0 only

    fetcher = memory_fetcher(repo)
    _update(behind, fetcher)  # on 1.0.0: no delta fits its file
    assert tree_digest(behind) == tree_digest(v2)
    assert not [u for u, _ in fetcher.requests if u.endswith(".zdelta")]

    fetcher = memory_fetcher(repo)
    url = next(u for u in fetcher.files if "/1.2.0/files/bin/game." in u
               and u.endswith(".zdelta"))
    fetcher.files[url] = fetcher.files[url][:-10] + b"\0" * 10  # breaks its SHA-256
    _update(current, fetcher)
    assert tree_digest(current) == tree_digest(v2)
    assert [rs for u, rs in fetcher.requests if rs and u.endswith("bin/game")]
    assert [u for u, _ in fetcher.requests if u.endswith("bin/game.fidx")]  # fetched late


def test_apply_is_bounded_and_checks_length(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"abc" * 10_000)
    new.write_bytes(b"abc" * 9_000 + b"xyz" * 2_000)
    size = delta.make(old, new, tmp_path / "d")
    data = (tmp_path / "d").read_bytes()
    assert size == len(data) < 1000
    got = bytearray(new.stat().st_size)

    def write(block: bytes, at: int) -> None:
        got[at:at + len(block)] = block

    delta.apply(old, data, len(got), write)
    assert bytes(got) == new.read_bytes()
    with pytest.raises(FormatError):
        delta.apply(old, data, len(got) - 1, write)  # would produce more than stated
    with pytest.raises(FormatError):
        delta.apply(old, data, len(got) + 1, write)  # produces less
    with pytest.raises(FormatError):
        delta.apply(old, b"garbage" * 10, len(got), write)


def test_publish_delta_flag_reports_it(tmp_path: Path) -> None:
    v0, v1, _ = _versions(tmp_path)
    repo = tmp_path / "repo"
    run = [sys.executable, "-m", "app.cli", "publish"]
    assert subprocess.run([*run, str(v0), str(repo), "--version", "1"]).returncode == 0
    r = subprocess.run([*run, str(v1), str(repo), "--version", "2", "--delta"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "deltas from 1:" in r.stdout
    assert list((repo / "stable/2/files/bin").glob("game.*.zdelta"))
