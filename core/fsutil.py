"""Small file-system helpers every writer in the engine uses: atomic writes, fsync of
folders, and the check that a path stays inside the install folder."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.errors import UnsafePathError


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int | None = None,
                 durable: bool = True) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a mix:
    temp file in the same folder, fsync, ``os.replace``, fsync of the folder. ``durable``
    False skips the fsyncs, for caches whose readers check what they read anyway."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
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
    manifest."""
    root = root.resolve()
    path = root.joinpath(*rel.split("/"))
    cur = root
    for part in rel.split("/")[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise UnsafePathError(f"refusing to follow a symlinked folder: {cur}", path=rel)
    if path.is_symlink():
        # A symlink at the file's own place is replaced, never written through.
        return path
    if not str(path.resolve()).startswith(str(root) + os.sep):
        raise UnsafePathError(f"path leaves the install folder: {rel}", path=rel)
    return path


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
