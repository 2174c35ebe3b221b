"""Replacing the packaged updater itself, and its ``updater.toml``, without ever breaking them.

Owns three things:

- **Staging** a new updater executable beside the running one as ``NAME.new`` (copied to a
  temp file, fsynced, checked against an expected SHA-256, then renamed: a ``.new`` that
  exists is complete).
- **The swap** (rename-aside). Windows cannot overwrite or delete a running executable, but
  it can rename it: the running ``NAME`` becomes ``NAME.old`` (or ``NAME.old1``... when an
  older one is still running), then ``NAME.new`` becomes ``NAME``. If the second rename
  fails, the first is undone, so ``NAME`` always exists. The process keeps running the old
  code; the next start runs the new one and deletes the ``.old`` files
  (``finish_pending()``, called first thing by ``app.cli.main``). The same steps are correct
  on Linux and macOS, where they are merely unnecessary.
- **Replacing ``updater.toml``** atomically, and only with text that ``app.config`` accepts:
  a publisher's bad config never reaches the player's disk.

Leaves out: where a new updater comes from (a file in a release, or a separate URL) and
restarting into it. Every file operation goes through a ``FileOps`` object, so the tests run
the Windows rules (rename yes, delete or overwrite no, while running) on any OS with a fake.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from core.errors import ConfigError
from core.fsutil import create_temp

NEW_SUFFIX = ".new"
OLD_SUFFIX = ".old"
MAX_OLD = 16  # NAME.old, NAME.old1 ... NAME.old15: one per updater process still running


class FileOps(Protocol):
    """The file operations this module needs (``OsFileOps`` is the real one)."""

    def exists(self, path: Path) -> bool: ...
    def rename(self, src: Path, dst: Path) -> None: ...  # fails if dst exists (as Windows does)
    def replace(self, src: Path, dst: Path) -> None: ...
    def remove(self, path: Path) -> None: ...
    def copy_atomic(self, src: Path, dst: Path) -> str: ...  # returns the SHA-256 (hex) copied
    def write_temp(self, folder: Path, name: str, data: bytes) -> Path: ...  # fsynced


class OsFileOps:
    """``FileOps`` on the real file system."""

    def exists(self, path: Path) -> bool:
        return path.exists()

    def rename(self, src: Path, dst: Path) -> None:
        if os.name != "nt" and dst.exists():  # POSIX rename would overwrite; Windows refuses
            raise FileExistsError(17, "File exists", str(dst))
        os.rename(src, dst)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def remove(self, path: Path) -> None:
        path.unlink()

    def copy_atomic(self, src: Path, dst: Path) -> str:
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            shutil.copymode(src, tmp)
            os.replace(tmp, dst)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return digest.hexdigest()

    def write_temp(self, folder: Path, name: str, data: bytes) -> Path:
        fd, tmp = create_temp(folder, name)  # the mode the umask gives, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return Path(tmp)


def running_executable() -> Path | None:
    """The packaged updater's own file, or None when running from source (nothing to swap)."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve()
    return None


def staged_path(exe: Path) -> Path:
    return exe.with_name(exe.name + NEW_SUFFIX)


def old_paths(exe: Path) -> list[Path]:
    """Every name the rename-aside may have given an old executable."""
    base = exe.with_name(exe.name + OLD_SUFFIX)
    return [base] + [exe.with_name(f"{exe.name}{OLD_SUFFIX}{i}") for i in range(1, MAX_OLD)]


def stage(exe: Path, new_exe: Path, sha256: str | None = None, ops: FileOps | None = None) -> Path:
    """Put ``new_exe`` beside ``exe`` as ``NAME.new``, complete or not at all.

    Raises ``ValueError`` (and stages nothing) if ``sha256`` is given and the copy's digest
    differs; ``OSError`` from the file system.
    """
    ops = ops or OsFileOps()
    target = staged_path(exe)
    tmp = target.with_name(target.name + ".part")
    digest = ops.copy_atomic(new_exe, tmp)
    if sha256 is not None and digest != sha256.lower():
        with contextlib.suppress(OSError):
            ops.remove(tmp)
        raise ValueError(f"{new_exe}: SHA-256 {digest}, expected {sha256.lower()}")
    ops.replace(tmp, target)
    return target


def swap(exe: Path, ops: FileOps | None = None) -> bool:
    """Rename-aside: running ``exe`` -> ``NAME.old*``, ``NAME.new`` -> ``exe``.

    Returns False if nothing is staged. Raises ``OSError`` if the swap cannot be done; ``exe``
    is then the old executable, still in place (and ``NAME.new`` still staged).
    """
    ops = ops or OsFileOps()
    new = staged_path(exe)
    if not ops.exists(new):
        return False
    if not ops.exists(exe):  # an earlier swap got as far as moving the old one aside
        ops.rename(new, exe)
        return True
    aside = _free_old_name(exe, ops)
    ops.rename(exe, aside)
    try:
        ops.rename(new, exe)
    except OSError:
        ops.rename(aside, exe)  # undo: never leave the updater missing
        raise
    return True


def cleanup(exe: Path, ops: FileOps | None = None) -> list[Path]:
    """Delete the ``NAME.old*`` files no process is running any more; returns those deleted.
    One still running (Windows refuses) stays for the next start."""
    ops = ops or OsFileOps()
    removed = []
    for old in old_paths(exe):
        if ops.exists(old):
            try:
                ops.remove(old)
            except OSError:
                continue
            removed.append(old)
    return removed


def finish_pending(exe: Path | None = None, ops: FileOps | None = None) -> bool:
    """At start: swap in a staged updater (a run that staged one and stopped before swapping)
    and delete old ones. Never raises: an updater that cannot tidy up still updates the game.
    Returns True if a new executable was swapped in (it runs from the next start on)."""
    exe = exe or running_executable()
    if exe is None:
        return False
    ops = ops or OsFileOps()
    swapped = False
    with contextlib.suppress(OSError):
        swapped = swap(exe, ops)
    with contextlib.suppress(OSError):
        cleanup(exe, ops)
    return swapped


def replace_config(
    path: Path,
    text: str,
    ops: FileOps | None = None,
    *,
    check: Callable[[Path], object] | None = None,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Replace ``updater.toml`` at ``path`` with ``text``, atomically, if ``text`` is a valid
    config (checked in place, beside the old one, so relative paths mean the same).

    A ``PermissionError`` from the final rename (Windows: an antivirus or editor holding the
    file) is retried ``attempts`` times with back-off. Raises ``ConfigError`` for invalid
    text (the old file is untouched), ``OSError`` when the file system refuses.
    """
    ops = ops or OsFileOps()
    if check is None:
        from app.config import load_config

        check = load_config
    tmp = ops.write_temp(path.parent, path.name, text.encode("utf-8"))
    try:
        try:
            check(tmp)
        except ConfigError as e:
            raise ConfigError(f"new {path.name} rejected: {e}", path=str(path)) from None
        delay = 0.1
        for attempt in range(attempts):
            try:
                ops.replace(tmp, path)
                return
            except PermissionError:
                if attempt == attempts - 1:
                    raise
                sleep(delay)
                delay = min(delay * 2, 2.0)
    finally:
        if ops.exists(tmp):
            with contextlib.suppress(OSError):
                ops.remove(tmp)


def _free_old_name(exe: Path, ops: FileOps) -> Path:
    for old in old_paths(exe):
        if not ops.exists(old):
            return old
        with contextlib.suppress(OSError):
            ops.remove(old)  # an old updater no longer running
            return old
    raise FileExistsError(17, f"{MAX_OLD} old updaters still running", str(exe))
