"""core/engine/commit.py's Windows behaviour with fakes, on any system: a file the game holds open
(the pre-check's probe says "sharing violation"), a file refused between the check and the
move, access denied, and backups left behind by an earlier commit. Each asserts the install
is, file for file, the old release or the new one.

The same faults with the real Windows CPython (wine) are in tests/windows/test_commit_win.py.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import core.engine.commit
from core.engine.commit import Op, commit, recover
from core.engine.state import InstalledFile, InstalledState, StateStore
from core.system import winfiles
from core.system.winfiles import AccessDeniedError, FileLockedError, LockReport

OLD = {"Game.exe": b"old exe", "data/a.pak": b"old a" * 100, "data/b.pak": b"old b",
       "gone.txt": b"removed in the new release"}
NEW = {"Game.exe": b"new exe!", "data/a.pak": b"new a" * 120, "data/b.pak": b"new b",
       "data/c.pak": b"added"}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".stitch" not in p.parts}


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winfiles, "FIRST_DELAY", 0.0)
    monkeypatch.setattr(winfiles, "MAX_DELAY", 0.0)
    # Windows has no swap of two names (core.system.exchange): files are moved aside.
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)


def _prepare(install: Path) -> tuple[StateStore, list[Op], InstalledState]:
    """The old release installed, the new one staged as the updater leaves it."""
    for rel, data in OLD.items():
        (install / rel).parent.mkdir(parents=True, exist_ok=True)
        (install / rel).write_bytes(data)
    store = StateStore(install)
    store.staging.mkdir(parents=True)
    ops = []
    for i, (rel, data) in enumerate(NEW.items()):
        (store.staging / f"f{i}.ready").write_bytes(data)
        ops.append(Op(rel, f"staging/f{i}.ready", rel.endswith(".exe"),
                      (install / rel).exists()))
    ops.append(Op("gone.txt", None, False, True))
    state = InstalledState(product="p", channel="stable", version="2", files={
        rel: InstalledFile(hashlib.sha256(d).hexdigest(), 0, 0, 0) for rel, d in NEW.items()})
    return store, ops, state


def _commit(store: StateStore, ops: list[Op], state: InstalledState,
            on_locked: Callable[[LockReport], None] | None = None) -> None:
    commit(store, ops, state, b'{"manifest": 1}', None, on_locked=on_locked)


def _held(names: set[str], code: int = winfiles.ERROR_SHARING_VIOLATION,
          times: int = 10**6) -> Callable[[Path], OSError | None]:
    """A probe as Windows answers it while a program holds ``names`` (file names), for the
    first ``times`` probes of each."""
    seen: dict[str, int] = {}

    def probe(path: Path) -> OSError | None:
        if path.name in names:
            seen[path.name] = seen.get(path.name, 0) + 1
            if seen[path.name] <= times:
                return winfiles.win_error(code, path)
        return None

    return probe


def test_a_held_file_stops_the_commit_before_anything_moves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, ops, state = _prepare(tmp_path)
    monkeypatch.setattr(core.engine.commit, "replace_probe", _held({"b.pak"}))
    game = winfiles.Holder(4242, "Dungeon Crawl", "window")
    monkeypatch.setattr(winfiles, "holders", lambda paths, rm=None, windows=None: [game])
    moved: list[tuple[str, str]] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append((str(a), str(b))),
                                                     real(a, b))[1])
    reports: list[LockReport] = []
    with pytest.raises(FileLockedError) as info:
        _commit(store, ops, state, reports.append)
    # The game's file is named (not .stitch/backup/...), with the program holding it.
    assert info.value.path == tmp_path / "data" / "b.pak"
    assert "backup" not in str(info.value) and "Dungeon Crawl (pid 4242)" in str(info.value)
    assert len(reports) == winfiles.ATTEMPTS
    assert reports[0].message() == "b.pak is in use by Dungeon Crawl (pid 4242); close it " \
        "to continue"
    # Nothing was moved, no journal was written: the old release, file for file.
    assert moved == []
    assert not store.journal.exists()
    assert _tree(tmp_path) == OLD
    assert not (store.root / "backup").exists()


def test_a_file_freed_while_waiting_lets_the_commit_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, ops, state = _prepare(tmp_path)
    monkeypatch.setattr(core.engine.commit, "replace_probe", _held({"Game.exe"}, times=2))
    monkeypatch.setattr(winfiles, "holders", lambda paths, rm=None, windows=None: [])
    reports: list[LockReport] = []
    _commit(store, ops, state, reports.append)
    assert [r.path.name for r in reports] == ["Game.exe", "Game.exe"]
    assert _tree(tmp_path) == NEW
    assert not store.journal.exists() and not (store.root / "backup").exists()


def test_access_denied_is_an_immediate_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, ops, state = _prepare(tmp_path)
    monkeypatch.setattr(core.engine.commit, "replace_probe",
                        _held({"a.pak"}, winfiles.ERROR_ACCESS_DENIED))
    reports: list[LockReport] = []
    with pytest.raises(AccessDeniedError) as info:
        _commit(store, ops, state, reports.append)
    assert reports == []  # not waited for, not called "in use"
    assert info.value.path == tmp_path / "data" / "a.pak"
    assert "access denied" in str(info.value) and "in use" not in str(info.value)
    assert _tree(tmp_path) == OLD and not store.journal.exists()


def test_a_file_refused_after_the_check_rolls_back_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The game opens a file between the check and the move (Windows: the move fails with a
    sharing violation through every retry): the install is put back to the old release
    now, not left mixed until the next run; the new files stay staged for it."""
    store, ops, state = _prepare(tmp_path)
    monkeypatch.setattr(core.engine.commit, "replace_probe", lambda p: None)
    monkeypatch.setattr(winfiles, "is_locked_error",
                        lambda e, windows=None: getattr(e, "winerror", None) in (32, 33))
    real = os.replace

    def replace(a: Path, b: Path) -> None:
        if Path(a) == tmp_path / "data" / "b.pak":  # the old b.pak, to its backup
            raise winfiles.win_error(winfiles.ERROR_SHARING_VIOLATION, a)
        real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(FileLockedError) as info:
        _commit(store, ops, state)
    assert info.value.path == tmp_path / "data" / "b.pak"  # not .stitch/backup/...
    monkeypatch.setattr(os, "replace", real)
    assert _tree(tmp_path) == OLD
    assert not store.journal.exists()
    assert not (store.root / "backup").exists()
    # The files already placed went back to staging: the next run need not fetch them again.
    assert sorted(p.read_bytes() for p in store.staging.glob("*.ready")) == sorted(NEW.values())


def test_a_leftover_backup_is_never_restored_over_another_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier commit could not delete its backups (a renamed running exe); this commit is
    interrupted and rolled back: every file is exactly the old release."""
    store, ops, state = _prepare(tmp_path)
    # Leftovers at the old positional names (backup/0, backup/1...) and at this layout's
    # names of an earlier journal, all holding an old exe.
    for rel in ("backup/0", "backup/1", "backup/2", "backup/r0",
                "backup/0123456789abcdef/data/a.pak", "backup/0123456789abcdef/Game.exe"):
        (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / rel).write_bytes(b"a stale exe from long ago")
    calls = {"n": 0}
    real = os.replace

    def dying(a: Path, b: Path) -> None:
        if str(a).endswith(".ready"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.EIO, "simulated power cut")
        real(a, b)

    monkeypatch.setattr(os, "replace", dying)
    with pytest.raises(OSError, match="power cut"):
        _commit(store, ops, state)
    monkeypatch.setattr(os, "replace", real)
    assert store.journal.exists()
    # The user deletes the staged files: recovery must roll back.
    for p in store.staging.glob("*.ready"):
        p.unlink()
    assert recover(store)
    assert _tree(tmp_path) == OLD
    assert not store.journal.exists()


def test_backups_live_in_a_folder_of_their_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, ops, state = _prepare(tmp_path)
    (store.root / "backup" / "1").parent.mkdir(parents=True)
    (store.root / "backup" / "1").write_bytes(b"stale")
    seen: list[str] = []
    real = os.replace

    def spy(a: Path, b: Path) -> None:
        seen.append(Path(b).relative_to(tmp_path).as_posix())
        real(a, b)

    monkeypatch.setattr(os, "replace", spy)
    _commit(store, ops, state)
    backups = [s for s in seen if s.startswith(".stitch/backup/")]
    assert len(backups) == 4  # the three replaced files and the removed one
    journal_ids = {s.split("/")[2].removesuffix(".r") for s in backups}
    assert len(journal_ids) == 1 and len(journal_ids.pop()) == 16
    # Replaced files under <id>.r/, removed ones under <id>/: a folder the release turns
    # into a file never collides with the backups of the files it held.
    assert {s.split("/", 3)[3] for s in backups if s.split("/")[2].endswith(".r")} == \
        {"Game.exe", "data/a.pak", "data/b.pak"}
    assert {s.split("/", 3)[3] for s in backups if not s.split("/")[2].endswith(".r")} == \
        {"gone.txt"}
    assert _tree(tmp_path) == NEW


def test_no_check_off_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux the pre-check is a no-op: core.system.winfiles is not even imported by a commit."""
    if os.name == "nt":
        pytest.skip("the Windows check runs there")
    store, ops, state = _prepare(tmp_path)
    assert core.engine.commit._probe() is None
    _commit(store, ops, state)
    assert _tree(tmp_path) == NEW


def test_cancelling_the_wait_for_a_held_file_leaves_the_old_release(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The player cancels while the commit waits for a file refused after the check."""
    from core.errors import CancelledError

    store, ops, state = _prepare(tmp_path)
    monkeypatch.setattr(core.engine.commit, "replace_probe", lambda p: None)
    monkeypatch.setattr(winfiles, "is_locked_error",
                        lambda e, windows=None: getattr(e, "winerror", None) == 32)
    real = os.replace

    def replace(a: Path, b: Path) -> None:
        if Path(a) == tmp_path / "data" / "b.pak":
            raise winfiles.win_error(winfiles.ERROR_SHARING_VIOLATION, a)
        real(a, b)

    def on_locked(report: LockReport) -> None:
        raise CancelledError("cancelled")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(CancelledError):
        _commit(store, ops, state, on_locked)
    monkeypatch.setattr(os, "replace", real)
    assert _tree(tmp_path) == OLD and not store.journal.exists()
