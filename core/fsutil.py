"""Small file-system helpers every writer in the engine uses: atomic writes, fsync of
folders, and the check that a path stays inside the install folder."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from core.errors import UnsafePathError

READ_BLOCK = 4 << 20  # bytes per read when the engine copies, hashes or reads back a file


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


HAS_SYNCFS = sys.platform == "linux"  # sync_filesystem does it in one call


def sync_filesystem(fd: int) -> bool:
    """Make everything written to the file system holding ``fd`` durable, in one call
    (Linux ``syncfs``: one journal commit, where an fsync per file costs one each). False
    where there is no such call (the caller then syncs each file)."""
    if sys.platform != "linux":
        return False
    import ctypes  # only here: not every run loads it

    libc = ctypes.CDLL(None, use_errno=True)
    syncfs = getattr(libc, "syncfs", None)
    if syncfs is None:
        return False
    if syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return True


def write_all_durably(files: list[tuple[Path, bytes]]) -> None:
    """``atomic_write`` each of ``files``, all of them durable when this returns: with one
    sync of the file system where there is one (``sync_filesystem``: one journal commit
    where an fsync of each file and its folder costs two each), else each synced."""
    if files and HAS_SYNCFS:
        for path, data in files:
            atomic_write(path, data, durable=False)
        fd = os.open(files[0][0].parent, os.O_RDONLY)
        try:
            if sync_filesystem(fd):
                return
        finally:
            os.close(fd)
    for path, data in files:  # (written again, durably: nothing of it is in use yet)
        atomic_write(path, data)


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS shows it (Linux's
    ``/proc/self/status``); elsewhere set to 0o077 and back under a lock, so a file another
    thread creates meanwhile gets fewer permissions, never more."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode(executable: bool = False, umask: int | None = None) -> int:
    """The permissions a new file gets, as ``cp`` or a compiler would make it: 0o666 (0o777
    when ``executable``) less the umask (``umask``, or the process's): 0o644 / 0o755 under
    the usual 022, 0o600 / 0o700 under 077."""
    mask = current_umask() if umask is None else umask
    return (0o777 if executable else 0o666) & ~mask & 0o777


def create_temp(folder: Path, name: str, perms: int = 0o666,
                suffix: str = ".tmp") -> tuple[int, Path]:
    """A new, empty file ``folder/.<name>.<random><suffix>`` opened for writing (its
    descriptor and path). Unlike ``tempfile.mkstemp`` (always 0o600), its permissions are
    ``perms`` less the umask, as ``open()`` would make them."""
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_NOINHERIT", 0) | getattr(os, "O_CLOEXEC", 0))
    for _ in range(100):  # a name clash is rare: bounded, as tempfile's TMP_MAX
        tmp = folder / f".{name}.{secrets.token_hex(6)}{suffix}"
        try:
            return os.open(tmp, flags, perms), tmp
        except FileExistsError:
            continue
    raise FileExistsError(17, "no free temporary name", str(folder / f".{name}.*{suffix}"))


def atomic_write(path: Path, data: bytes, mode: int = 0o666,
                 durable: bool = True) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a mix:
    temp file in the same folder, fsync, ``os.replace``, fsync of the folder. ``durable``
    False skips the fsyncs, for caches whose readers check what they read anyway.
    ``mode`` less the umask are the file's permissions (0o644 under the usual umask, so a
    web server's workers can read what ``stitch publish`` writes); a secret passes 0o600,
    and its file is never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(path.parent, path.name, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def inside(root: Path, rel: str) -> Path:
    """``root/rel`` after checking that no existing part of it is a symlink or leaves
    ``root``; raises ``UnsafePathError``. ``rel`` was already checked by
    ``manifest.check_path``; this guards against the disk (a symlinked folder), not the
    manifest. Many paths under one root: ``SafePaths``, which checks each folder once."""
    return SafePaths(root)(rel)


class SafePaths:
    """``inside`` for many paths under one ``root``: the root is resolved once and each
    folder checked once (a commit of 2,000 small files spent a second resolving each path
    twice). A symlink at a file's own place is returned as is: it is replaced, never
    written through."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._root_text = os.path.join(str(self.root), "")  # ends with the separator
        self._checked: set[str] = set()  # folders (relative, "/"-joined) known not links

    def __call__(self, rel: str) -> Path:
        return Path(self.text(rel))

    def text(self, rel: str) -> str:
        """``self(rel)`` as a string (thousands of files: no ``Path`` made for each)."""
        folder, slash, name = rel.rpartition("/")
        if folder in self._checked if slash else True:  # only the name is left to check
            if name in ("", ".", ".."):
                raise UnsafePathError(f"path leaves the install folder: {rel}", path=rel)
        else:
            self._check(rel)
        return self._root_text + rel.replace("/", os.sep)

    def _check(self, rel: str) -> None:
        parts = rel.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise UnsafePathError(f"path leaves the install folder: {rel}", path=rel)
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in self._checked:
                continue
            cur = self.root.joinpath(*parts[:i])
            if cur.is_symlink():
                raise UnsafePathError(f"refusing to follow a symlinked folder: {cur}",
                                      path=rel)
            # A Windows junction is no symlink to is_symlink (before Python 3.12), but
            # resolving the folder follows it.
            if cur.exists() and not str(cur.resolve()).startswith(str(self.root) + os.sep):
                raise UnsafePathError(f"path leaves the install folder: {rel}", path=rel)
            self._checked.add(folder)
        # No part is "..", and no folder on the way a link: the path is under the root.


def copy_sparse(src: Path, dst: Path, block: int = 1 << 20) -> None:
    """Copy ``src`` to ``dst`` leaving all-zero blocks as holes (VM and disk images, padded
    archives): as fast as reading, and no disk spent on zeros."""
    zero = bytes(block)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        while data := fi.read(block):
            if data == zero[: len(data)]:
                fo.seek(len(data), os.SEEK_CUR)
            else:
                fo.write(data)
        fo.truncate(size)


def _pread_seek(fd: int, n: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    out = b""
    while len(out) < n and (block := os.read(fd, n - len(out))):
        out += block
    return out


def _pwrite_seek(fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
    os.lseek(fd, offset, os.SEEK_SET)
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])
    return done


# Positional I/O: os.pread/os.pwrite where they exist; Windows has neither, and there each
# staged or seed fd is used by one thread at a time, so seek + read/write is equivalent.
pread: Callable[[int, int, int], bytes] = getattr(os, "pread", _pread_seek)
pwrite: Callable[[int, bytes | bytearray | memoryview, int], int] = getattr(
    os, "pwrite", _pwrite_seek)


IOV_MAX = 1024  # buffers per pwritev call (POSIX's minimum is 16; Linux and BSD: 1024)


def pwritev(fd: int, bufs: list[bytes | bytearray | memoryview], offset: int) -> None:
    """Write ``bufs`` one after the other at ``offset``: one system call where the OS has
    ``pwritev`` (at most ``IOV_MAX`` buffers), else one ``pwrite`` each."""
    native = getattr(os, "pwritev", None)
    if native is None or len(bufs) > IOV_MAX:
        for b in bufs:
            pwrite(fd, b, offset)
            offset += len(b)
        return
    total = sum(len(b) for b in bufs)
    done = native(fd, bufs, offset)
    if done < total:  # a short write (rare): the rest one buffer at a time
        rest = memoryview(b"".join(bufs))[done:]
        while len(rest):
            n = pwrite(fd, rest, offset + done)
            done += n
            rest = rest[n:]


def pread_into(fd: int, buf: memoryview, offset: int) -> int:
    """Read up to ``len(buf)`` bytes at ``offset`` into ``buf`` (a reused buffer: no fresh
    memory per read, hence no page faults competing with another thread's); the count read,
    short only at the end of the file."""
    preadv = getattr(os, "preadv", None)
    done = 0
    if preadv is not None:
        while done < len(buf) and (n := preadv(fd, [buf[done:]], offset + done)):
            done += n
        return done
    os.lseek(fd, offset, os.SEEK_SET)  # Windows: the caller's descriptor is its own
    with open(fd, "rb", buffering=0, closefd=False) as f:
        while done < len(buf) and (n := f.readinto(buf[done:])):
            done += n
    return done


def file_fingerprint(st: os.stat_result) -> tuple[int, int, int]:
    """What the state cache compares to vouch that a file did not change: size, mtime in
    nanoseconds, and inode (the file id on Windows)."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def allocated_bytes(path: Path, cap: int) -> int:
    """Bytes ``path`` holds on disk (its allocated blocks where the system says, else its
    size), at most ``cap``; 0 when it does not exist."""
    try:
        st = path.stat()
    except OSError:
        return 0
    blocks = getattr(st, "st_blocks", None)
    return min(cap, st.st_size if blocks is None else blocks * 512)


def free_space(path: Path) -> int:
    """Free bytes on the disk that holds ``path`` (or would: its nearest existing parent)."""
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return shutil.disk_usage(p).free
