"""The journaled swap of staged files into the install folder.

Every new file was built and verified (SHA-256) in ``.stitch/staging`` before this module
runs. On Windows ``commit()`` first checks that every file it will move can be moved now
(``core.system.winfiles``: a file the game holds open is named, waited for, and if it stays held the
commit stops before anything was written or moved). It then writes the journal (what goes
where, and the new state) durably; from that moment the update is decided and every step is
idempotent, so ``recover()`` rolls an interrupted commit forward whenever stitch runs next.
Where the system can swap two files' names in one step (Linux ``renameat2``:
``core.system.exchange``), a staged file and the file it replaces swap names: the new file
is in place and the old one is left at the staged file's name, in one system call (moving
the old file aside and the new one in took two). The journal then records each staged
file's inode number: an op is done when the install's path is that inode, whichever way
the run stopped. Elsewhere replaced files are moved to ``.stitch/backup/<journal id>/<path>``
(a rename, no copy: a folder of this journal's own, so a backup an earlier commit could not
delete is never mistaken for one of this commit's); removed files always are. The old files
are deleted only after the new state is written. If a staged file has vanished (the user
deleted ``.stitch``), recovery rolls back instead, using the old files; so does ``commit()``
itself when a file is refused after all (held or denied between the check and the move).
Either way the install ends as the complete old or new release.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.engine.state import STATE_DIR, InstalledState, StateStore
from core.errors import CancelledError, FormatError
from core.fsutil import (
    HAS_SYNCFS,
    SafePaths,
    atomic_write,
    current_umask,
    file_mode,
    fsync_dir,
    sync_filesystem,
    write_all_durably,
)
from core.parallel import join
from core.system.exchange import Swap, exchanger

if TYPE_CHECKING:
    from core.system.winfiles import LockReport

JOURNAL_FORMAT = "stitch.journal/2"
_JOURNAL_FORMATS = ("stitch.journal/1", JOURNAL_FORMAT)  # /1: ops without ``ino``
ASIDE = ".old"  # where the swap done by three moves keeps the old file meanwhile


@dataclass(frozen=True, slots=True)
class Op:
    """Put staged file ``staged`` (relative to .stitch) at ``path``, or remove ``path`` when
    ``staged`` is None. ``had_old`` records whether ``path`` existed when the journal was
    written, so a rollback knows whether to restore or delete."""

    path: str
    staged: str | None
    executable: bool
    had_old: bool
    backup: str = ""  # relative to .stitch; ``commit()`` sets it (backup/<journal id>/<path>)
    # The staged file's inode number when ``commit()`` swaps it in (module doc): the old
    # file is left at ``staged``, and the op is done when ``path`` is this inode. 0: the old
    # file is moved to ``backup``.
    ino: int = 0


# How a commit finds the swap for a folder (``core.system.exchange.exchanger``); tests put
# ``lambda folder: None`` here to run the moves of a system without it.
swapper: Callable[[Path], Swap | None] = exchanger


def _write_journal(store: StateStore, ops: list[Op], state: InstalledState,
                   manifest: bytes, signature: bytes | None) -> None:
    # The manifest and signature the journal's recovery needs: durable before the journal.
    write_all_durably([(store.root / "staging" / "release.json", manifest),
                       *([(store.root / "staging" / "release.json.minisig", signature)]
                         if signature is not None else [])])
    obj = {
        "format": JOURNAL_FORMAT,
        "ops": [[o.path, o.staged, o.executable, o.had_old, o.backup, o.ino] for o in ops],
        "state": None,
        "signed": signature is not None,
    }
    # The state's own JSON, spliced in (not parsed back to be written again: thousands of
    # files).
    head, tail = json.dumps(obj).encode().split(b'"state": null', 1)
    atomic_write(store.journal, head + b'"state": ' + state.to_json() + tail)


def _read_journal(store: StateStore) -> tuple[list[Op], dict[str, Any], bool]:
    try:
        obj = json.loads(store.journal.read_bytes())
        if obj["format"] not in _JOURNAL_FORMATS:
            raise ValueError("unknown journal format")
        ops = [Op(str(p), s, bool(x), bool(h), str(b), int(rest[0]) if rest else 0)
               for p, s, x, h, b, *rest in obj["ops"]]
        return ops, obj["state"], bool(obj["signed"])
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"commit journal is damaged: {e}", what="journal") from None


# Whether a file can be moved away now: ``None`` if so, else why not (an ``OSError`` with its
# ``winerror``). ``None`` here means the platform's own: ``core.system.winfiles.probe_replace`` on
# Windows, no check elsewhere (a rename on POSIX is not refused because a file is open).
# Tests put a fake here to run the Windows path anywhere.
replace_probe: Callable[[Path], OSError | None] | None = None


def _probe() -> Callable[[Path], OSError | None] | None:
    if replace_probe is not None:
        return replace_probe
    if os.name == "nt":
        from core.system.winfiles import probe_replace

        return probe_replace
    return None


def _check_movable(root: Path, ops: list[Op],
                   on_locked: Callable[[LockReport], None] | None) -> None:
    """Before the journal: wait until every file the commit moves aside can be moved (see
    the module doc); raises ``FileLockedError`` naming the game's file, or
    ``AccessDeniedError``, with nothing written or moved."""
    probe = _probe()
    if probe is None:
        return
    from core.system.winfiles import wait_until_replaceable

    targets = [p for p in (root.joinpath(*o.path.split("/")) for o in ops) if os.path.lexists(p)]
    if targets:
        wait_until_replaceable(targets, probe, on_locked)


def _move(src: Path | str, dst: Path | str, on_locked: Callable[[LockReport], None] | None,
          name: Path | str) -> None:
    """``os.replace``, waiting (on Windows) for a program that holds either file open: the
    game still running, an antivirus scan. Reports and errors name ``name`` (the install's
    file, not its backup). ``os.replace`` is looked up at call time so tests can cut the
    power in the middle of a commit. (``core.system.winfiles`` loads ctypes: imported only once a
    move has failed, not by every update.)"""
    try:
        os.replace(src, dst)
        return
    except OSError as e:
        from core.system.winfiles import AccessDeniedError, is_access_denied, is_locked_error

        if is_access_denied(e):
            raise AccessDeniedError(Path(name), e) from e
        if not is_locked_error(e):
            raise
    from core.system.winfiles import replace_with_retry

    replace_with_retry(src, dst, on_locked=on_locked, replace=os.replace, name=name)


def replace_file(staged: Path, dest: Path, umask: int | None = None,
                 on_locked: Callable[[LockReport], None] | None = None) -> None:
    """Put one verified staged file at ``dest`` at once (``core.engine.sync``, which has no release
    and no journal: each file is replaced on its own, atomically): the mode ``dest`` had (a
    new file: what the umask gives, as ``cp``'s), the rename (waiting, on Windows, for a
    program that holds ``dest``), then its folder synced."""
    try:
        mode = dest.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = file_mode(umask=umask)
    os.chmod(staged, mode)
    _move(staged, dest, on_locked, dest)
    fsync_dir(dest.parent)


def commit(store: StateStore, ops: list[Op], state: InstalledState, manifest: bytes,
           signature: bytes | None, on_file: Callable[[int, str], None] | None = None,
           on_locked: Callable[[LockReport], None] | None = None) -> None:
    """Swap staged files in (see module doc). ``state`` is the new state without
    fingerprints for the files being placed; they are filled in after the swap."""
    safe = SafePaths(store.install_dir)
    for op in ops:  # refuse a symlinked folder before anything is decided
        safe.text(op.path)
    _check_movable(store.install_dir, ops, on_locked)
    journal_id = secrets.token_hex(8)
    base = os.path.join(str(store.root), "")
    swap = swapper(store.staging) if any(o.staged is not None for o in ops) else None
    # Each staged file as it is before the swap: its mode (set once if it differs) and its
    # fingerprint in the new state (a rename keeps the inode and mtime: no stat after).
    staged = {o.path: os.stat(base + o.staged.replace("/", os.sep)) for o in ops
              if o.staged is not None}
    if any(st.st_ino == 0 for st in staged.values()):
        swap = None  # (a file system without inode numbers: an op's ino could not tell)
    ops = [Op(o.path, o.staged, o.executable, o.had_old, "", staged[o.path].st_ino)
           if o.staged is not None and swap is not None
           else Op(o.path, o.staged, o.executable, o.had_old,
                   f"backup/{journal_id}{'' if o.staged is None else '.r'}/{o.path}")
           for o in ops]
    _write_journal(store, ops, state, manifest, signature)
    try:
        _roll_forward(store, ops, on_file, on_locked, safe, swap, staged)
    except (PermissionError, CancelledError):
        # Refused after all (held, or denied, since the check), or the wait for a held file
        # cancelled: put the old release back now rather than leave a mix until the next
        # run. If that fails too, the journal stays and the next run finishes the commit.
        with contextlib.suppress(OSError):
            _roll_back(store, ops, swap)
        raise
    _finish(store, ops, state, manifest, signature, staged)


def recover(store: StateStore) -> bool:
    """Finish (or undo) a commit that was interrupted. Returns True if there was one."""
    if not store.journal.exists():
        return False
    ops, state_obj, signed = _read_journal(store)
    staging = store.root / "staging"
    manifest = (staging / "release.json").read_bytes() \
        if (staging / "release.json").exists() else None
    signature = (staging / "release.json.minisig").read_bytes() \
        if signed and (staging / "release.json.minisig").exists() else None
    root = os.path.join(str(store.install_dir), "")
    missing = [o for o in ops if o.staged is not None
               and not (store.root / o.staged).exists()
               and not (_placed(root + o.path, o.ino) if o.ino
                        else os.path.lexists(root + o.path))]
    swap = swapper(staging) if any(o.ino for o in ops) else None
    if missing or manifest is None or (signed and signature is None):
        _roll_back(store, ops, swap)
        return True
    state = InstalledState.from_json(json.dumps(state_obj).encode())
    _roll_forward(store, ops, None, swap=swap)
    _finish(store, ops, state, manifest, signature)
    return True


def _placed(dest: str, ino: int) -> bool:
    """Whether the swap of an op put its staged file (inode ``ino``) at ``dest``."""
    try:
        return os.lstat(dest).st_ino == ino
    except OSError:
        return False


def _remove_empty_folder(path: str) -> bool:
    """Remove ``path`` if it is an empty folder (not a link); whether it did."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        os.rmdir(path)
    except OSError:
        return False
    return True


def _in_order(ops: list[Op]) -> list[Op]:
    """The order ops run in (a roll-back undoes them in reverse): the removals first. A
    release may turn a file into a folder ("data" removed, "data/x.bin" added): the folder
    can be made only once the file is gone. (Journals written in any order run so: one
    written by an earlier stitch, which placed files first, failed on that folder at every
    run.)"""
    return [o for o in ops if o.staged is None] + [o for o in ops if o.staged is not None]


def _swap_in(staged: str, dest: str, swap: Swap | None,
             on_locked: Callable[[LockReport], None] | None) -> None:
    """Put ``staged`` at ``dest``, leaving the file that was there (if any) at ``staged``.
    Without the swap, three moves through ``<staged>.old`` (``ASIDE``), which
    ``_settle_aside`` finishes or undoes after a power cut between them."""
    if swap is None:  # a journal of a system with the swap, finished on one without
        if os.path.lexists(dest):
            aside = staged + ASIDE
            _move(dest, aside, on_locked, dest)
            _move(staged, dest, on_locked, dest)
            os.replace(aside, staged)
        else:
            _move(staged, dest, on_locked, dest)
        return
    try:
        swap(staged, dest)
    except FileNotFoundError:
        if os.path.lexists(dest) or not os.path.lexists(staged):
            raise
        _move(staged, dest, on_locked, dest)  # nothing to swap with: a new file


def _settle_aside(staged: str, dest: str, ino: int) -> None:
    """Finish or undo ``_swap_in``'s three moves, cut part-way by a power cut: the old file,
    found at ``<staged>.old``, goes where a swap leaves it (``staged``) once ``dest`` is the
    staged file (inode ``ino``), or back to ``dest`` while nothing is there. The op is then
    exactly swapped in or not at all, as the recovery expects."""
    aside = staged + ASIDE
    if not os.path.lexists(aside):
        return
    if _placed(dest, ino):
        os.replace(aside, staged)
    elif not os.path.lexists(dest):
        os.replace(aside, dest)


def _roll_forward(store: StateStore, ops: list[Op],
                  on_file: Callable[[int, str], None] | None,
                  on_locked: Callable[[LockReport], None] | None = None,
                  safe: SafePaths | None = None, swap: Swap | None = None,
                  staged_stats: dict[str, os.stat_result] | None = None) -> None:
    """Put each op's staged file in place (swapped in, or the old file moved aside first).
    ``staged_stats`` (a commit just journaled, not a recovery): each staged file's stat
    before, so none was placed yet and none of its backups exists."""
    safe = safe or SafePaths(store.install_dir)
    fresh = staged_stats is not None
    base = os.path.join(str(store.root), "")  # .stitch/, the ops' staged and backup paths
    touched: set[str] = set()
    made: set[str] = set()  # folders made (or found) already: one mkdir each, not per file
    umask = current_umask()  # new files get what it gives, plus the release's executable bit
    modes = (file_mode(False, umask), file_mode(True, umask))

    def folder(path: str) -> str:
        parent = os.path.dirname(path)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        return parent

    # (strings, not Paths, and one system call where one answers: thousands of small files)
    for i, op in enumerate(_in_order(ops)):
        dest = safe.text(op.path)
        staged = base + op.staged.replace("/", os.sep) if op.staged else None
        staged_mode = 0
        if staged is not None:
            if op.ino and not fresh:
                _settle_aside(staged, dest, op.ino)
            if op.ino and not fresh and _placed(dest, op.ino):
                staged = None  # swapped in by an earlier, interrupted run
            else:
                try:
                    st = staged_stats[op.path] if staged_stats else os.stat(staged)
                    staged_mode = st.st_mode & 0o7777
                except FileNotFoundError:
                    continue  # already moved into place by an earlier, interrupted run
        if staged is not None and op.ino:
            touched.add(folder(dest))
            mode = modes[op.executable]
            if staged_mode != mode:  # staging made most of them so
                os.chmod(staged, mode)
            _swap_in(staged, dest, swap, on_locked)
        elif not op.ino:
            backup = base + op.backup.replace("/", os.sep)
            if staged is not None and _remove_empty_folder(dest):
                pass  # a folder the release turns into a file, emptied by the removals
            elif (fresh or not os.path.lexists(backup)) and os.path.lexists(dest):
                folder(backup)
                _move(dest, backup, on_locked, dest)
            if staged is not None:
                touched.add(folder(dest))
                mode = modes[op.executable]
                if staged_mode != mode:
                    os.chmod(staged, mode)
                _move(staged, dest, on_locked, dest)
            else:
                touched.add(os.path.dirname(dest))
        if on_file is not None:
            on_file(i + 1, op.path)
    _sync_folders(touched)


def _sync_folders(folders: set[str]) -> None:
    """Make the renames in ``folders`` durable: one sync of the file system where there is
    one and more than two folders changed (an fsync of a folder is a journal commit each),
    else an fsync of each."""
    if len(folders) > 2 and HAS_SYNCFS:
        fd = os.open(next(iter(folders)), os.O_RDONLY)
        try:
            if sync_filesystem(fd):
                return
        finally:
            os.close(fd)
    for d in folders:
        with contextlib.suppress(OSError):
            fsync_dir(Path(d))


def _finish(store: StateStore, ops: list[Op], state: InstalledState, manifest: bytes,
            signature: bytes | None,
            staged_stats: dict[str, os.stat_result] | None = None) -> None:
    from core.engine.state import InstalledFile  # local: only needed here

    # The old files are needed no more (recovery only ever rolls forward from here), and
    # removing them is the slow part (freeing a big file's blocks; thousands of small
    # ones): it runs beside the bookkeeping below.
    base = os.path.join(str(store.root), "")
    old = [base + o.staged.replace("/", os.sep) for o in ops if o.ino and o.staged]
    sweeper = threading.Thread(target=_sweep, args=(store.root / "backup", old),
                               name="stitch-sweep")
    sweeper.start()
    root = os.path.join(str(store.install_dir), "")
    for op in ops:
        if op.staged is None:
            continue
        st = (staged_stats[op.path] if staged_stats is not None
              else os.stat(root + op.path.replace("/", os.sep)))
        was = state.files[op.path]
        state.files[op.path] = InstalledFile(was.sha256, st.st_size, st.st_mtime_ns,
                                             st.st_ino)
    store.save(state, manifest, signature)
    # The old files gone before the journal: a run killed before then leaves the journal,
    # and the next one finishes the sweep (old files left at staged names would otherwise
    # stay in staging, looking like files built for an update).
    join(sweeper)
    store.journal.unlink()
    for name in ("release.json", "release.json.minisig"):  # the journal's copy, now saved
        (store.root / "staging" / name).unlink(missing_ok=True)
    fsync_dir(store.root)
    _remove_empty_dirs(store.install_dir, [o.path for o in ops if o.staged is None])


def _sweep(backup: Path, old: list[str]) -> None:
    """Delete the old files: ``backup`` (those moved aside) and ``old`` (those swapped out:
    a folder replaced by a file is one too)."""
    shutil.rmtree(backup, ignore_errors=True)
    for path in old:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(path, ignore_errors=True)


def _roll_back(store: StateStore, ops: list[Op], swap: Swap | None = None) -> None:
    """Put every file back as the journal found it. A new file already in place goes back
    to staging (the next run uses it again) when the op had moved the old one aside or had
    none; only this journal's own backups are restored. A swapped op is swapped back."""
    root = store.install_dir
    for op in reversed(_in_order(ops)):
        dest = root.joinpath(*op.path.split("/"))
        staged = store.root / op.staged if op.staged is not None else None
        if op.ino and staged is not None:
            _settle_aside(str(staged), str(dest), op.ino)
            if _placed(str(dest), op.ino):
                if os.path.lexists(staged):  # the old file: swapped back
                    _swap_in(str(staged), str(dest), swap, None)
                else:  # there was none
                    staged.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(dest, staged)
            continue
        backup = store.root / op.backup
        placed = (staged is not None and not os.path.lexists(staged) and os.path.lexists(dest)
                  and (os.path.lexists(backup) or not op.had_old))
        if placed and staged is not None:
            staged.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dest, staged)
        if os.path.lexists(backup):
            dest.parent.mkdir(parents=True, exist_ok=True)
            _remove_empty_folder(str(dest))  # made for a file of the release undone
            os.replace(backup, dest)
    store.journal.unlink()
    shutil.rmtree(store.root / "backup", ignore_errors=True)


def _remove_empty_dirs(root: Path, removed: list[str]) -> None:
    for rel in removed:
        parts = rel.split("/")[:-1]
        while parts and parts[0] != STATE_DIR:
            d = root.joinpath(*parts)
            try:
                d.rmdir()
            except OSError:
                break
            parts.pop()


def set_executable_bits(root: Path, files: list[tuple[str, bool]]) -> None:
    """Give each unchanged file of a release (``(path, executable)``) the executable bits
    the release says, where they differ (the release's files being committed get theirs in
    ``_roll_forward``)."""
    xbits = file_mode(True) & 0o111  # the executable bits the umask lets a file have
    safe = SafePaths(root)
    for rel, executable in files:
        if not _executable_as(root, rel, executable, xbits):
            _set_executable(safe(rel), executable, xbits)


def _executable_as(root: Path, rel: str, executable: bool, xbits: int = 0o111) -> bool:
    """Whether the file at ``rel`` is a regular file whose executable bits are already as
    the release says (then nothing is written, and the symlink-safe walk of ``inside``,
    a few ms per hundred files, is not needed). Windows has no such bits."""
    if os.name == "nt":
        return True
    try:
        mode = os.lstat(root.joinpath(*rel.split("/"))).st_mode
    except OSError:
        return False
    bits = mode & 0o111
    return stat.S_ISREG(mode) and bits == (xbits if executable else 0)


def _set_executable(path: Path, executable: bool, xbits: int = 0o111) -> None:
    try:
        mode = path.lstat().st_mode
    except OSError:
        return
    if stat.S_ISLNK(mode):
        return  # chmod would follow the link, possibly out of the install
    want = (mode & ~0o111) | xbits if executable else mode & ~0o111
    if want != mode and os.name != "nt":
        os.chmod(path, want)
