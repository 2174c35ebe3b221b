"""Two real ``stitch update`` processes at once on one install (a launcher's ``--update``
while the player starts the updater), against a real server, many times: after each pair
the install is exactly the release, and ``stitch verify`` agrees (issue 13, items 3 and 11).

Before the install lock, pairs like these ended with ``state.json`` at the new release and
a file still old (every later run saying "up to date"), or with the loser failing on a
staging file the winner had removed (exit 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.publisher.publish import publish
from tests.conftest import REPO_ROOT, tree_digest

STITCH = [sys.executable, "-m", "app.cli"]
EXIT_OK, EXIT_BUSY = 0, 8
PAIRS = 12


def _start(url: str, install: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*STITCH, "update", "--url", url, "--dir", str(install), "--progress", "none",
         "--allow-downgrade", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)


@pytest.mark.slow
def test_two_updates_at_once_leave_the_release_and_a_clean_verify(
        tmp_path: Path, game: tuple[Path, Path], stitch_server) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    # Two repositories, so that every pair has work to do: odd pairs go to 2.0.0, even
    # pairs back to 1.0.0 (a downgrade the runs allow).
    publish(v1, tmp_path / "r1", "1.0.0", product="quest")
    publish(v2, tmp_path / "r2", "2.0.0", product="quest")
    urls = {1: stitch_server(tmp_path / "r1").url, 2: stitch_server(tmp_path / "r2").url}
    releases = {1: tree_digest(v1), 2: tree_digest(v2)}
    install = tmp_path / "install"
    waited = busy = 0
    for i in range(PAIRS):
        target = 2 if i % 2 == 0 else 1
        # Half the pairs wait for each other (the default --lock-wait); the others do not
        # wait at all, so the loser exits 8 when they overlap.
        extra = () if i % 4 < 2 else ("--lock-wait", "0")
        procs = [_start(urls[target], install, *extra) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        codes = [p.returncode for p in procs]
        detail = f"pair {i}: exit codes {codes}, stderr {[e for _, e in outs]}"
        assert set(codes) <= {EXIT_OK, EXIT_BUSY}, detail
        assert EXIT_OK in codes, detail
        for code, (_, err) in zip(codes, outs, strict=True):
            if code == EXIT_BUSY:
                assert "another update of this game is running (pid " in err, detail
                assert "gave up after 0 s (--lock-wait)" in err, detail
        busy += codes.count(EXIT_BUSY)
        waited += sum("waiting up to" in err for _, err in outs)
        assert tree_digest(install) == releases[target], detail
        r = subprocess.run([*STITCH, "verify", "--dir", str(install), "--progress", "none"],
                           capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
        assert r.returncode == 0 and "clean:" in r.stdout, (detail, r.stdout, r.stderr)
        # What the state vouches for is what is on disk: the next run has nothing to do.
        r = subprocess.run([*STITCH, "update", "--url", urls[target], "--dir", str(install)],
                           capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
        assert r.returncode == 0 and "up to date" in r.stderr, (detail, r.stderr)
    # The pairs did run into each other (two processes started together, each a
    # multi-megabyte update): the lock was exercised, not just present.
    assert waited + busy > 0
    print(f"{PAIRS} pairs: {waited} runs waited for the other, {busy} exited 8")
