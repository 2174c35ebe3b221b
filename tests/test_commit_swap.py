"""The commit that swaps each staged file with the file it replaces (Linux ``renameat2``,
core/system/exchange.py; docs/format.md, the journal): one system call per file, the old file
left at the staged name. A power cut after any number of swaps rolls forward to the new
release, or back to the old one when the staged files are gone; a file refused part-way
rolls back at once; a journal written by moves (format /1 or a system without the swap)
still recovers. Every case asserts the install, file for file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest

import core.engine.commit
from core.engine.commit import Op, commit, recover
from core.engine.state import InstalledFile, InstalledState, StateStore
from core.system.exchange import Swap, exchanger
from tests.conftest import tree_digest

OLD = {"Game.exe": b"old exe", "data/a.pak": b"old a" * 100, "data/b.pak": b"old b",
       "gone.txt": b"removed in the new release", "maps/e1.map": b"old map"}
NEW = {"Game.exe": b"new exe!", "data/a.pak": b"new a" * 120, "data/b.pak": b"new b",
       "data/c.pak": b"added", "maps/e1.map": b"new map", "maps/new/e2.map": b"added 2"}
STAGED = [p for p in NEW]  # one op each, then the removal of gone.txt

needs_swap = pytest.mark.skipif(exchanger(Path(tempfile.gettempdir())) is None,
                                reason="no renameat2 here (the Windows suite moves files)")


def _prepare(install: Path) -> tuple[StateStore, list[Op], InstalledState]:
    for rel, data in OLD.items():
        (install / rel).parent.mkdir(parents=True, exist_ok=True)
        (install / rel).write_bytes(data)
    store = StateStore(install)
    store.staging.mkdir(parents=True)
    ops = []
    for i, rel in enumerate(STAGED):
        (store.staging / f"f{i}.part").write_bytes(NEW[rel])
        ops.append(Op(rel, f"staging/f{i}.part", rel.endswith(".exe"),
                      (install / rel).exists()))
    ops.append(Op("gone.txt", None, False, True))
    state = InstalledState(product="p", channel="stable", version="2", files={
        rel: InstalledFile(hashlib.sha256(d).hexdigest(), 0, 0, 0) for rel, d in NEW.items()})
    return store, ops, state


def _moves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Where every ``os.replace`` from now on moves a file to (filled as they happen)."""
    moved: list[str] = []
    real = os.replace

    def spy(a: str, b: str) -> None:
        moved.append(str(b))
        real(a, b)

    monkeypatch.setattr(os, "replace", spy)
    return moved


class Cut(Exception):
    pass


def _dying(after: int, error: OSError | None = None) -> tuple[Swap, list[int]]:
    """The real swap, which fails once (``error``, or a power cut) when ``after`` swaps are
    done (a call that finds no file to swap with counts for none)."""
    real = exchanger(Path(tempfile.gettempdir()))
    assert real is not None
    done = [0]
    failed = [False]

    def swap(a: str, b: str) -> None:
        if done[0] == after and not failed[0]:
            failed[0] = True
            raise error if error is not None else Cut("power cut")
        real(a, b)
        done[0] += 1

    return swap, done


@needs_swap
def test_a_commit_swaps_each_file_in_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    store, ops, state = _prepare(tmp_path)
    moved = _moves(monkeypatch)
    commit(store, ops, state, b'{"m": 1}', None)
    assert tree_digest(tmp_path) == {k: v for k, v in NEW.items()}
    # Moves into the install only where there was nothing to swap with (the two new
    # files); a backup only of the removed file.
    inside = [Path(m).relative_to(tmp_path).as_posix() for m in moved]
    assert [m for m in inside if not m.startswith(".stitch/")] == ["data/c.pak",
                                                                   "maps/new/e2.map"]
    assert [m.rsplit("/", 1)[1] for m in inside if m.startswith(".stitch/backup/")] == \
        ["gone.txt"]
    assert not store.journal.exists() and not (store.root / "backup").exists()
    assert not list(store.staging.iterdir())  # the old files swapped out are deleted
    saved = json.loads((store.root / "state.json").read_bytes())["files"]
    for rel in NEW:  # the fingerprints are the placed files'
        st = os.stat(tmp_path / rel)
        assert saved[rel][1:] == [st.st_size, st.st_mtime_ns, st.st_ino]


@needs_swap
@pytest.mark.parametrize("after", range(len(STAGED) + 1))
def test_a_power_cut_after_any_swap_rolls_forward(tmp_path: Path, after: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store, ops, state = _prepare(tmp_path)
    swap, _ = _dying(after)
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: swap)
    if after < 5:  # (the sixth op adds a file: nothing to swap; the removal follows)
        with pytest.raises(Cut):
            commit(store, ops, state, b'{"m": 1}', None)
        assert store.journal.exists()
        journal = json.loads(store.journal.read_bytes())
        assert journal["format"] == "stitch.journal/2"
        assert all(op[5] > 0 for op in journal["ops"][:len(STAGED)])
    else:
        commit(store, ops, state, b'{"m": 1}', None)
    monkeypatch.setattr(core.engine.commit, "swapper", exchanger)
    recover(store)  # the next run
    assert tree_digest(tmp_path) == NEW
    assert not store.journal.exists() and not list(store.staging.iterdir())


@needs_swap
@pytest.mark.parametrize("only_replacing", [False, True])
@pytest.mark.parametrize("after", [0, 1, 3, 4])
def test_staged_files_gone_after_a_power_cut_roll_back(tmp_path: Path, after: int,
                                                       only_replacing: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The user deletes the staged files not yet swapped in (``only_replacing``: those of
    files that replace one, not the added files'): the old files swapped out are swapped
    back, and the install is the old release exactly."""
    store, ops, state = _prepare(tmp_path)
    swap, _ = _dying(after)
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: swap)
    with pytest.raises(Cut):
        commit(store, ops, state, b'{"m": 1}', None)
    monkeypatch.setattr(core.engine.commit, "swapper", exchanger)
    deleted = 0
    for i, rel in enumerate(STAGED):  # what was not swapped in yet
        if only_replacing and rel not in OLD:
            continue
        if not (tmp_path / rel).exists() or (tmp_path / rel).read_bytes() != NEW[rel]:
            (store.staging / f"f{i}.part").unlink()
            deleted += 1
    assert recover(store)
    # (nothing deleted: only an added file was still to come, and the commit finishes)
    assert tree_digest(tmp_path) == (OLD if deleted else NEW)
    assert deleted or (after, only_replacing) == (4, True)
    assert not store.journal.exists()


@needs_swap
@pytest.mark.parametrize("after", [0, 2, 4])
def test_a_file_refused_part_way_rolls_back_at_once(tmp_path: Path, after: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store, ops, state = _prepare(tmp_path)
    denied = PermissionError(errno.EACCES, "Permission denied")
    swap, _ = _dying(after, denied)
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: swap)
    with pytest.raises(PermissionError):
        commit(store, ops, state, b'{"m": 1}', None)
    assert tree_digest(tmp_path) == OLD
    assert not store.journal.exists()
    # The new files are staged again for the next run.
    assert sorted(p.read_bytes() for p in store.staging.glob("f*.part")) == \
        sorted(NEW.values())


def test_without_the_swap_files_are_moved_aside(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A system or file system without it (``swapper`` says None): backups, ``ino`` 0."""
    store, ops, state = _prepare(tmp_path)
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
    seen = _moves(monkeypatch)
    commit(store, ops, state, b'{"m": 1}', None)
    assert tree_digest(tmp_path) == NEW
    backups = [Path(s).relative_to(tmp_path).as_posix() for s in seen]
    assert sum(b.startswith(".stitch/backup/") for b in backups) == 5  # 4 replaced, gone.txt


def test_a_journal_of_format_1_still_recovers(tmp_path: Path) -> None:
    """An update interrupted by an earlier stitch (ops of five fields, backups) finishes."""
    store, ops, state = _prepare(tmp_path)
    root = store.root
    (root / "staging" / "release.json").write_bytes(b'{"m": 1}')
    rows = [[o.path, o.staged, o.executable, o.had_old, f"backup/0123456789abcdef/{o.path}"]
            for o in ops]
    # The first op had been done: old file moved aside, new one in.
    (root / "backup/0123456789abcdef/Game.exe").parent.mkdir(parents=True)
    os.replace(tmp_path / "Game.exe", root / "backup/0123456789abcdef/Game.exe")
    os.replace(root / "staging/f0.part", tmp_path / "Game.exe")
    store.journal.write_text(json.dumps({"format": "stitch.journal/1", "ops": rows,
                                         "state": json.loads(state.to_json()),
                                         "signed": False}))
    assert recover(store)
    assert tree_digest(tmp_path) == NEW
    assert not store.journal.exists() and not (root / "backup").exists()


@needs_swap
def test_a_swap_journal_finished_without_the_swap(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Written where the swap works, finished where it does not: three moves per file."""
    store, ops, state = _prepare(tmp_path)
    swap, _ = _dying(2)
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: swap)
    with pytest.raises(Cut):
        commit(store, ops, state, b'{"m": 1}', None)
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
    assert recover(store)
    assert tree_digest(tmp_path) == NEW
    assert not list(store.staging.iterdir())


@needs_swap
@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("moves_done", [1, 2])
def test_a_power_cut_inside_the_three_moves(tmp_path: Path, moves_done: int, forward: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The recovery without the swap is cut after the first or second of a file's three
    moves (the old file then at ``<staged>.old``). The next recovery finishes the release
    with nothing left in staging, or, the staged files gone (``forward`` False), puts the
    old release back, that file included."""
    store, ops, state = _prepare(tmp_path)
    swap, _ = _dying(2)  # Game.exe and data/a.pak swapped in; data/b.pak next
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: swap)
    with pytest.raises(Cut):
        commit(store, ops, state, b'{"m": 1}', None)
    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
    staged_b = str(store.staging / "f2.part")
    real = os.replace

    def cut(a: str, b: str) -> None:  # the second move, or the third
        if (moves_done == 1 and str(a) == staged_b) or str(a) == staged_b + ".old":
            raise Cut("power cut")
        real(a, b)

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(Cut):
        recover(store)
    monkeypatch.setattr(os, "replace", real)
    assert os.path.exists(staged_b + ".old")  # the cut came where it was meant to
    if not forward:
        for i in range(3, len(STAGED)):  # those not in place yet
            (store.staging / f"f{i}.part").unlink()
    assert recover(store)
    assert tree_digest(tmp_path) == (NEW if forward else OLD)
    assert not store.journal.exists()
    left = sorted(p.name for p in store.staging.glob("f*"))  # (.old too)
    assert left == ([] if forward else ["f0.part", "f1.part", "f2.part"])


def _turning(install: Path) -> tuple[StateStore, list[Op], InstalledState]:
    """A release that turns the file "data" into a folder and the folder "maps/e1" into a
    file; ops as the updater lists them (files placed first, then the removals)."""
    old = {"data": b"a file", "maps/e1/level.dat": b"in a folder", "keep": b"k"}
    new = {"data/x.bin": b"now in a folder", "maps/e1": b"now a file", "keep": b"k"}
    for rel, data in old.items():
        (install / rel).parent.mkdir(parents=True, exist_ok=True)
        (install / rel).write_bytes(data)
    store = StateStore(install)
    store.staging.mkdir(parents=True)
    ops = []
    for i, rel in enumerate(("data/x.bin", "maps/e1")):
        (store.staging / f"t{i}.part").write_bytes(new[rel])
        ops.append(Op(rel, f"staging/t{i}.part", False, (install / rel).exists()))
    ops += [Op("data", None, False, True), Op("maps/e1/level.dat", None, False, True)]
    state = InstalledState(product="p", channel="stable", version="2", files={
        rel: InstalledFile(hashlib.sha256(d).hexdigest(), 0, 0, 0) for rel, d in new.items()})
    return store, ops, state


@pytest.mark.parametrize("swap", [True, False])
def test_a_file_turned_into_a_folder_and_back(tmp_path: Path, swap: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if swap and exchanger(tmp_path) is None:
        pytest.skip("no renameat2 here: the moves are the other case")
    if not swap:
        monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
    store, ops, state = _turning(tmp_path)
    commit(store, ops, state, b'{"m": 1}', None)
    assert tree_digest(tmp_path) == {"data/x.bin": b"now in a folder", "keep": b"k",
                               "maps/e1": b"now a file"}
    assert not store.journal.exists() and not list(store.staging.iterdir())


def test_a_refusal_after_a_file_turned_into_a_folder_rolls_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, ops, state = _turning(tmp_path)
    before = tree_digest(tmp_path)
    real = os.replace

    def refusing(a: str, b: str) -> None:
        if str(b).endswith("e1") and ".stitch" not in str(b):  # placing the file maps/e1
            raise PermissionError(errno.EACCES, "Permission denied", str(b))
        real(a, b)

    monkeypatch.setattr(core.engine.commit, "swapper", lambda folder: None)
    monkeypatch.setattr(os, "replace", refusing)
    with pytest.raises(PermissionError):
        commit(store, ops, state, b'{"m": 1}', None)
    monkeypatch.setattr(os, "replace", real)
    assert tree_digest(tmp_path) == before and not store.journal.exists()


def test_a_journal_stuck_on_a_file_turned_into_a_folder_finishes(tmp_path: Path) -> None:
    """An earlier stitch placed files before removing: its journal failed at every run on
    making the folder "data". Recovery now removes first, and the release is whole."""
    store, ops, state = _turning(tmp_path)
    (store.root / "staging" / "release.json").write_bytes(b'{"m": 1}')
    rows = [[o.path, o.staged, o.executable, o.had_old, f"backup/0123456789abcdef/{o.path}"]
            for o in ops]
    store.journal.write_text(json.dumps({"format": "stitch.journal/1", "ops": rows,
                                         "state": json.loads(state.to_json()),
                                         "signed": False}))
    assert recover(store)
    assert tree_digest(tmp_path) == {"data/x.bin": b"now in a folder", "keep": b"k",
                               "maps/e1": b"now a file"}


@needs_swap
def test_no_swap_on_a_file_system_without_inode_numbers(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """An inode number of 0 (some FUSE file systems) could not tell a swapped op: files are
    moved aside instead, and the journal's ops carry no ino."""
    store, ops, state = _prepare(tmp_path)
    real = os.stat

    def no_inodes(path: str, *a: object, **k: object) -> os.stat_result:
        st = real(path, *a, **k)  # type: ignore[arg-type]
        if "staging" in str(path):
            fields = list(st)
            fields[1] = 0  # st_ino
            return os.stat_result(fields)
        return st

    journals: list[bytes] = []
    real_write = core.engine.commit.atomic_write  # type: ignore[attr-defined]

    def keep(path: Path, data: bytes, *a: object, **k: object) -> None:
        if path == store.journal:
            journals.append(data)
        real_write(path, data, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", no_inodes)
    monkeypatch.setattr(core.engine.commit, "atomic_write", keep)
    commit(store, ops, state, b'{"m": 1}', None)
    monkeypatch.setattr(os, "stat", real)
    assert tree_digest(tmp_path) == NEW
    assert journals and all(op[5] == 0 for op in json.loads(journals[0])["ops"])


@needs_swap
def test_a_power_cut_before_the_old_files_are_deleted_leaves_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while the old files swapped out (at staged names) are being deleted: the
    journal is still there, and the next run deletes the rest. Staging never keeps them
    (they would look like files built for an update)."""
    store, ops, state = _prepare(tmp_path)
    monkeypatch.setattr(core.engine.commit, "_sweep", lambda backup, old: None)

    def dying(thread: object) -> None:
        raise Cut("power cut")

    monkeypatch.setattr(core.engine.commit, "join", dying)
    with pytest.raises(Cut):
        commit(store, ops, state, b'{"m": 1}', None)
    assert store.journal.exists()
    assert tree_digest(tmp_path) == NEW
    assert list(store.staging.glob("f*.part"))  # the old files, not deleted yet
    monkeypatch.undo()
    assert recover(store)
    assert tree_digest(tmp_path) == NEW
    assert not store.journal.exists() and not list(store.staging.iterdir())
