"""Sealing staged files off the main thread: their whole-file SHA-256 and their fsync.

A staged file is written in any order (local copies, then ranges as they arrive; a delta
strictly in order). Writers report each byte range once it is on disk (``written``);
worker threads (``WORKERS``; a file is only ever on one of them at a time, so its hash is
fed in order) hash every tracked file as its contiguous written prefix grows, reading the
bytes back (from the page cache: the data was just written), so the verify at the end only
waits for the tail instead of re-reading whole files. When a file is declared complete
(``complete``: nothing more will be written), the worker hashes whatever is left (the marks
only let hashing start early; the end result never depends on them) and fsyncs the file,
once, while the main thread builds the next one (or leaves it to the caller, who syncs many
small files at once: ``Sealer(sync_each=False)``). ``result`` waits for the digest of a file
whose bytes are then durable. On Linux the worker also asks the kernel to start writing out
each piece it has hashed (``posix_fadvise(DONTNEED)``), so that fsync has less left to do.

Reading back rather than hashing the buffers handed to ``pwrite`` costs a memory copy per
byte on the second core and checks what the kernel holds, not what we meant to write. On
POSIX the worker reads through the writer's descriptor (``pread`` moves no file position);
on Windows, where positional I/O is seek + read and two threads must not share a file
position, through one of its own. It fsyncs through the writer's.

Owns: the worker thread, the per-file hash state. Leaves to ``core.engine.rebuild`` what is written
and to ``core.engine.updater`` what a digest is compared with. The thread is never killed: it
stops between two reads of at most ``READ_BLOCK`` bytes once ``close`` is called.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.fsutil import READ_BLOCK, pread_into
from core.progress import CancelToken

_STEP = 4  # reads per turn on one file before looking at the others
# Worker threads: one file is only ever on one of them; several let the fsyncs of many
# small files overlap (the file system commits them together): 2,121 small files of a
# release took 4.5 s of fsyncs one after the other (docs/benchmarks.md, "Many small files").
WORKERS = 4
# Linux starts writeback of dirty pages on POSIX_FADV_DONTNEED (and drops the clean ones,
# which nothing reads again soon); elsewhere the fsync does all of it.
_WRITEBACK = getattr(os, "POSIX_FADV_DONTNEED", 0) if sys.platform == "linux" else 0


@dataclass(eq=False)
class _Track:
    fd: int  # the writer's descriptor: fsync goes through it
    rfd: int  # the worker's own, read-only
    size: int
    prefix: int = 0  # bytes [0, prefix) are written
    pending: list[tuple[int, int]] = field(default_factory=list)  # heap of later ranges
    hashed: int = 0
    sha: Any = field(default_factory=hashlib.sha256)
    complete: bool = False
    synced: bool = False
    busy: bool = False  # the worker is reading or syncing it (outside the lock)
    error: BaseException | None = None
    digest: str = ""

    def work(self) -> bool:
        if self.error is not None:
            return False
        if self.hashed < (self.size if self.complete else self.prefix):
            return True
        return self.complete and not self.synced


class Sealer:
    """Worker threads hashing and syncing the staged files it tracks (module doc).

    Files are identified by the writer's open file descriptor, which must stay open until
    ``forget`` or ``close`` returns (the worker never touches it afterwards)."""

    def __init__(self, sync_each: bool = True) -> None:
        # False: the caller makes every file durable at once (``fsutil.sync_filesystem``),
        # and ``result(durable=True)`` means hashed.
        self._sync_each = sync_each
        self._cond = threading.Condition()
        self._tracks: dict[int, _Track] = {}
        self._ready: dict[int, None] = {}  # fds with work, in the order they got it
        self._stop = False
        self._threads: list[threading.Thread] = []

    # -- main side --------------------------------------------------------------------------
    def track(self, fd: int, path: Path, size: int) -> Callable[[int, int], None]:
        """Start tracking the staged file ``path``, open for writing as ``fd``; returns its
        ``written(a, b)``. ``OSError`` if it cannot be opened for reading."""
        # POSIX reads at a position without moving the file's: the writer's descriptor
        # serves (no second open per file); Windows needs one of its own (module doc).
        rfd = fd if os.name != "nt" else os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        with self._cond:
            self._tracks[fd] = _Track(fd, rfd, size)
            if not self._threads:
                # Without fsyncs to overlap, one worker hashes faster than the page cache
                # fills; more would only wake each other for every small file.
                workers = WORKERS if self._sync_each else 1
                self._threads = [threading.Thread(target=self._run, name="stitch-sealer",
                                                  daemon=True) for _ in range(workers)]
                for thread in self._threads:
                    thread.start()

        def written(a: int, b: int) -> None:
            self.written(fd, a, b)

        return written

    def written(self, fd: int, a: int, b: int) -> None:
        """Bytes [a, b) of the file are on disk (any thread; pieces in any order)."""
        with self._cond:
            t = self._tracks.get(fd)
            if t is None or b <= t.prefix:
                return
            if a > t.prefix:
                heapq.heappush(t.pending, (a, b))
                return
            t.prefix = b
            while t.pending and t.pending[0][0] <= t.prefix:
                t.prefix = max(t.prefix, heapq.heappop(t.pending)[1])
            if t.prefix - t.hashed >= READ_BLOCK:  # waking the worker per chunk costs more
                self._wake(fd, t)

    def complete(self, fd: int) -> None:
        """Nothing more will be written to the file: hash the rest and fsync it."""
        with self._cond:
            t = self._tracks[fd]
            t.complete = True
            t.pending.clear()
            self._wake(fd, t)

    def hashed(self, fd: int) -> int:
        """Bytes of the file hashed so far (for progress)."""
        with self._cond:
            return self._tracks[fd].hashed

    def result(self, fd: int, cancel: CancelToken,
               on_bytes: Callable[[int], None] | None = None, durable: bool = True) -> str:
        """The file's SHA-256 (hex) once it is hashed and, if ``durable``, fsynced;
        ``complete`` must have been called. Re-raises the worker's ``OSError``; checks
        ``cancel`` while waiting. ``on_bytes`` gets the bytes hashed since the last call,
        for progress."""
        reported = 0
        while True:
            cancel.check()
            with self._cond:
                t = self._tracks[fd]
                if not ((t.synced if durable else t.digest) or t.error is not None):
                    self._cond.wait(0.1)
                done = t.synced if durable else bool(t.digest)
                hashed, error = t.hashed, t.error
            if on_bytes is not None and hashed > reported:
                on_bytes(hashed - reported)
                reported = hashed
            if error is not None:
                raise error
            if done:
                return t.digest

    def forget(self, fd: int) -> None:
        """Stop tracking the file (waits if the worker is on it right now) and close the
        worker's descriptor of it."""
        with self._cond:
            while (t := self._tracks.get(fd)) is not None and t.busy:
                self._cond.wait(0.1)
            t = self._tracks.pop(fd, None)
            self._ready.pop(fd, None)
        if t is not None and t.rfd != t.fd:
            os.close(t.rfd)

    def close(self) -> None:
        """Stop the worker and wait for it; it touches no file afterwards."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        for t in self._tracks.values():
            if t.rfd != t.fd:
                os.close(t.rfd)
        self._tracks.clear()
        self._ready.clear()

    # -- worker side ------------------------------------------------------------------------
    def _wake(self, fd: int, t: _Track) -> None:
        # (a file a worker is on is woken again by that worker when it is done with it)
        if fd not in self._ready and not t.busy and t.work():
            self._ready[fd] = None
            self._cond.notify_all()

    def _run(self) -> None:
        buf = memoryview(bytearray(READ_BLOCK))  # this worker's one read buffer
        while True:
            with self._cond:
                while not self._ready and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                fd = next(iter(self._ready))
                del self._ready[fd]
                t = self._tracks[fd]
                t.busy = True
                limit = t.size if t.complete else t.prefix
                start = t.hashed
            try:
                self._turn(t, start, limit, buf)
            except BaseException as e:  # handed to result(); the thread goes on
                with self._cond:
                    t.error = e
            with self._cond:
                t.busy = False
                self._wake(fd, t)
                self._cond.notify_all()

    def _turn(self, t: _Track, start: int, limit: int, buf: memoryview) -> None:
        """Hash up to ``_STEP`` reads of [start, limit), or fsync a file all hashed."""
        pos = start
        for _ in range(_STEP):
            if pos >= limit or self._stop:
                break
            n = pread_into(t.rfd, buf[:min(READ_BLOCK, limit - pos)], pos)
            if not n:
                raise OSError(f"staged file ends at {pos} bytes, not {t.size}")
            t.sha.update(buf[:n])
            if _WRITEBACK:  # start writing these pages out now: the fsync will wait less
                os.posix_fadvise(t.fd, pos, n, _WRITEBACK)
            pos += n
            with self._cond:
                t.hashed = pos
        if pos == t.size and t.complete and not self._stop:
            if not t.digest:
                digest = t.sha.hexdigest()
                with self._cond:
                    t.digest = digest
                    self._cond.notify_all()
            if self._sync_each:
                os.fsync(t.fd)
            with self._cond:
                t.synced = True
