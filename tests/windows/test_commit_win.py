"""The commit with a file really held open under the Windows CPython: a program that opened
the game's file without FILE_SHARE_DELETE (Python's own open() does: the C runtime shares
read and write only). The pre-check must name that file and stop before anything moves; the
install stays the old release byte for byte; once the file is let go the commit goes on.
Under wine, share modes are the wineserver's emulation; the GitHub workflow's Windows runner
runs the same test on NTFS."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from core.engine.commit import Op, commit
from core.engine.state import InstalledFile, InstalledState, StateStore
from core.system import winfiles

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the Windows API")

OLD = {"Game.exe": b"old exe", "data/a.pak": b"old a" * 1000}
NEW = {"Game.exe": b"new exe!", "data/a.pak": b"new a" * 1200, "data/c.pak": b"added"}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".stitch" not in p.parts}


def _prepare(install: Path) -> tuple[StateStore, list[Op], InstalledState]:
    for rel, data in OLD.items():
        (install / rel).parent.mkdir(parents=True, exist_ok=True)
        (install / rel).write_bytes(data)
    store = StateStore(install)
    store.staging.mkdir(parents=True)
    ops = []
    for i, (rel, data) in enumerate(NEW.items()):
        (store.staging / f"f{i}.ready").write_bytes(data)
        ops.append(Op(rel, f"staging/{f'f{i}.ready'}", False, (install / rel).exists()))
    state = InstalledState(product="p", channel="stable", version="2", files={
        rel: InstalledFile(hashlib.sha256(d).hexdigest(), 0, 0, 0) for rel, d in NEW.items()})
    return store, ops, state


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winfiles, "ATTEMPTS", 3)
    monkeypatch.setattr(winfiles, "FIRST_DELAY", 0.0)
    monkeypatch.setattr(winfiles, "MAX_DELAY", 0.0)


def test_the_probe_sees_a_file_held_without_share_delete(tmp_path: Path) -> None:
    f = tmp_path / "held.pak"
    f.write_bytes(b"x")
    assert winfiles.probe_replace(f) is None
    with open(f, "rb"):  # the C runtime shares read|write, not delete
        err = winfiles.probe_replace(f)
        assert err is not None and getattr(err, "winerror", None) == 32, err
        # The fault itself: the rename the commit would do fails the same way.
        with pytest.raises(PermissionError) as info:
            os.replace(f, tmp_path / "aside")
        assert getattr(info.value, "winerror", None) == 32
    assert winfiles.probe_replace(f) is None
    assert winfiles.probe_replace(tmp_path / "missing.pak") is None


def test_a_held_file_stops_the_commit_before_anything_moves(tmp_path: Path) -> None:
    store, ops, state = _prepare(tmp_path)
    reports: list[winfiles.LockReport] = []
    held = tmp_path / "data" / "a.pak"
    with open(held, "rb"), pytest.raises(winfiles.FileLockedError) as info:
        commit(store, ops, state, b"{}", None, on_locked=reports.append)
    assert info.value.path == held  # the game's file, not .stitch\backup\...
    assert "backup" not in str(info.value)
    assert len(reports) == 3 and all(r.path == held for r in reports)
    assert _tree(tmp_path) == OLD  # nothing moved: never a mix
    assert not store.journal.exists()
    assert not (store.root / "backup").exists()
    # Let go: the same commit goes through.
    commit(store, ops, state, b"{}", None)
    assert _tree(tmp_path) == NEW
    assert not store.journal.exists()


def test_a_running_exe_can_be_replaced(tmp_path: Path) -> None:
    """A running program's own exe is open with FILE_SHARE_DELETE by the loader: it can be
    moved aside, so the check must not call it held."""
    import shutil
    import subprocess

    exe = tmp_path / "game.exe"
    shutil.copy(sys.executable, exe)
    for dll in Path(sys.executable).parent.glob("*.dll"):
        shutil.copy(dll, tmp_path / dll.name)
    for z in Path(sys.executable).parent.glob("python*.zip"):
        shutil.copy(z, tmp_path / z.name)
    child = subprocess.Popen([str(exe), "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        assert winfiles.probe_replace(exe) is None
    finally:
        child.communicate(b"")
