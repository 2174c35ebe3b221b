"""Executing a ``FilePlan``: writing one new file into staging and proving it correct.

Owns the staging file's bytes: local copies (each chunk re-hashed as it is copied, so a
stale seed costs a download, never a wrong byte), remote ranges (each chunk checked against
its xxh3-128 id, or a bupdate v1 target's SHA-1, before it is written), and the report of
which byte ranges are final (``written``) that ``core.engine.sealer`` hashes behind. It does not
decide what to copy or fetch (``core.chunks.planner``, ``core.engine.plan``) nor how bytes travel
(``core.net.fetcher``); ``core.engine.assemble`` drives it.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xxhash

from core.chunks.fidx import FileIndex
from core.chunks.planner import ZERO_SEED, FilePlan
from core.chunks.stz import StzTable, compressed_ranges, decode_chunk
from core.chunks.wire import split_raw, wire_bytes
from core.engine.pieces import Job, cut, piece_size, run_jobs
from core.engine.staging import BlankFile
from core.errors import FormatError, HashMismatchError, HTTPStatusError, RangeError
from core.fsutil import READ_BLOCK, pread, pwrite, pwritev
from core.net.fetcher import Fetcher
from core.progress import CancelToken

_RUN_CHUNKS = 256  # chunks per write of downloaded chunks at most (fsutil.IOV_MAX)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, without duplicates, touching ranges joined: what ``fetch_ranges`` takes."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(set(ranges)):
        if merged and merged[-1][1] >= a:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


@functools.lru_cache(maxsize=64)
def _zero_id(length: int) -> bytes:
    return xxhash.xxh3_128_digest(bytes(length))


class SeedFiles:
    """Read-only file descriptors of the local files plans copy from, opened once each and
    shared by every plan of an update."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def opener(self, plan: FilePlan) -> Callable[[int], int]:
        """``open_seed(i)`` for ``copy_local``: the fd of ``plan.seed_names[i]``."""
        def open_seed(i: int) -> int:
            name = plan.seed_names[i]
            fd = self._fds.get(name)
            if fd is None:
                fd = self._fds[name] = os.open(name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            return fd
        return open_seed

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class StagedFile(BlankFile):
    """One file being built from chunks: local copies and remote ranges, as planned."""

    def __init__(self, path: Path, index: FileIndex, plan: FilePlan,
                 stz_table: StzTable | None = None, whole: FileIndex | None = None,
                 sub: np.ndarray | None = None, sha1: np.ndarray | None = None) -> None:
        super().__init__(path, index.file_size)
        self.index = index
        self.plan = plan
        self.stz = stz_table  # the compressed copy's table, when one is published
        self.offsets = index.offsets()
        # ``index`` may be a mixed index (core.chunks.fidx_sub): then ``whole`` is the published
        # one, whose chunk numbers the .stz follows, and ``sub`` marks its chunks replaced
        # by sub-records, which only raw ranges can fetch.
        self.whole = whole if whole is not None else index
        self.whole_offsets = self.whole.offsets() if whole is not None else self.offsets
        self.sub = sub
        # A bupdate v1 target (``core.engine.sync``): each chunk's full 20-byte git-blob SHA-1,
        # checked instead of the id the planner matched on (its first 16 bytes).
        self.sha1 = sha1
        self.retry_ranges: list[tuple[int, int]] = []  # local chunks that failed their check
        self.fetched_ahead = False  # the planned remote ranges are in (``download``)
        # Copies and the fetch ahead write the file from two threads (never the same bytes).
        # The kernel serialises writes to one file anyway, but its lock spins: measured, the
        # waiting thread burnt a third of its time spinning while the copier, sharing the
        # core, slowed down. Waiting here sleeps instead.
        self._write_lock = threading.Lock()

    def _ok(self, k: int, chunk: bytes | bytearray | memoryview, chunk_id: bytes) -> bool:
        """Whether ``chunk`` is chunk ``k`` of the target, whose index id is ``chunk_id``
        (a v1 target: its SHA-1)."""
        if self.sha1 is not None:
            from core.chunks.fidx_v1 import git_blob_id

            return bool(git_blob_id(chunk) == self.sha1[k].tobytes())
        return bool(xxhash.xxh3_128_digest(chunk) == chunk_id)

    def verify_chunks(self, cancel: CancelToken, on_bytes: Callable[[int], None]) -> None:
        """Re-read the finished file and check every chunk (a v1 target has no whole-file
        digest: its chunks' SHA-1 is all there is)."""
        for k, (a, b) in enumerate(zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist(),
                                       strict=True)):
            if k % 256 == 0:
                cancel.check()
            if not self._ok(k, pread(self._fd, b - a, a), self.index.ids[k].tobytes()):
                raise HashMismatchError(f"rebuilt file: chunk {k} at {a} does not match "
                                        "its digest", path=str(self.path))
            on_bytes(b - a)

    def _chunk_range(self, start: int, end: int) -> tuple[int, int]:
        """Chunk numbers [i, j) exactly covering target bytes [start, end)."""
        # np.uint64, not int: a Python int makes numpy cast the whole array on every call.
        i = int(np.searchsorted(self.offsets, np.uint64(start)))
        j = int(np.searchsorted(self.offsets, np.uint64(end)))
        return i, j

    def copy_local(self, open_seed: Callable[[int], int], cancel: CancelToken,
                   on_bytes: Callable[[int], None]) -> None:
        """Copy every planned local run, checking each chunk's id on the way. A run is read
        in pieces of up to ``READ_BLOCK`` bytes (whole chunks); the good chunks of a piece are
        written with one ``pwrite`` per stretch between bad or all-zero chunks (measured:
        per-chunk writes were half of a 64 MB copy's time)."""
        for toff, seed, soff, length in self.plan.copies.tolist():
            cancel.check()
            if self.plan.seed_names[seed] == ZERO_SEED:
                self.written(toff, toff + length)
                on_bytes(length)  # already zeros: the staged file starts as a hole
                continue
            fd = open_seed(seed)
            i, j = self._chunk_range(toff, toff + length)
            pos = 0
            while i < j:
                # Chunks [i, e): at most READ_BLOCK bytes, one chunk at least.
                e = int(np.searchsorted(self.offsets, np.uint64(toff + pos + READ_BLOCK),
                                        side="right")) - 1
                e = min(j, max(e, i + 1))
                size = int(self.offsets[e]) - toff - pos
                self._copy_piece(pread(fd, size, soff + pos), i, e, toff + pos)
                on_bytes(size)
                pos += size
                i = e
                cancel.check()

    def _copy_piece(self, data: bytes, i: int, e: int, at: int) -> None:
        """Check chunks [i, e), read from a seed as ``data`` (short at a seed's end), and
        write the good ones at target offset ``at`` on."""
        view = memoryview(data)
        ids = self.index.ids[i:e].tobytes()
        lengths = self.index.lengths[i:e].tolist()
        final = 0  # bytes of the piece from here on hold their final value once written
        pending = 0  # bytes of the piece from here on are good but not yet written
        pos = 0
        for n, clen in enumerate(lengths):
            cid = ids[16 * n:16 * n + 16]
            chunk = view[pos:pos + clen]
            good = len(chunk) == clen and self._ok(i + n, chunk, cid)
            if not good or cid == _zero_id(clen):  # a stretch ends here
                if pending < pos:
                    with self._write_lock:
                        pwrite(self._fd, view[pending:pos], at + pending)
                pending = pos + clen
                if not good:
                    self.retry_ranges.append((at + pos, at + pos + clen))
                    if final < pos:
                        self.written(at + final, at + pos)
                    final = pos + clen
            pos += clen
        if pending < pos:
            with self._write_lock:
                pwrite(self._fd, view[pending:pos], at + pending)
        if final < pos:
            self.written(at + final, at + pos)

    def remote_ranges(self) -> list[tuple[int, int]]:
        """What is still to fetch: the planned remote ranges (unless fetched ahead) plus
        local chunks that failed their check, merged."""
        planned = [] if self.fetched_ahead else self.plan.remote.tolist()
        return _merge([(int(a), int(b)) for a, b in planned] + self.retry_ranges)

    def planned_ranges(self) -> list[tuple[int, int]]:
        """The plan's remote ranges, merged."""
        return _merge([(int(a), int(b)) for a, b in self.plan.remote.tolist()])

    def wire_bytes(self, ranges: list[tuple[int, int]] | None = None) -> int:
        """Bytes a download of ``ranges`` (default: what is still to fetch) takes from the
        network."""
        return wire_bytes(self.remote_ranges() if ranges is None else ranges, self.stz,
                          self.whole_offsets, self.sub)

    def download(self, fetcher: Fetcher, url: str, cancel: CancelToken,
                 on_bytes: Callable[[int], None], stz_url: str = "",
                 ahead: bool = False, workers: int = 1) -> None:
        """Fetch the remote ranges into the file, each chunk verified before it is written:
        from the compressed copy at ``stz_url`` when there is one, else raw from ``url``;
        in pieces (``download_jobs``), up to ``workers`` at a time.

        A chunk that arrives wrong (or does not decompress) is fetched once more, raw from
        the original file; a second failure is a ``HashMismatchError``: the server holds bad
        bytes. ``ahead``: only the planned ranges, on another thread while ``copy_local``
        runs (the writes never overlap: a chunk is either copied or fetched); the local
        chunks that fail their check are left to a later call."""
        ranges = self.planned_ranges() if ahead else self.remote_ranges()
        piece = piece_size(sum(b - a for a, b in ranges), workers)
        run_jobs(self.download_jobs(fetcher, url, on_bytes, stz_url, ahead, piece), workers,
                 cancel)
        if ahead:
            self.fetched_ahead = True

    def download_jobs(self, fetcher: Fetcher, url: str, on_bytes: Callable[[int], None],
                      stz_url: str = "", ahead: bool = False, piece: int | None = None
                      ) -> list[Job]:
        """``download``'s work as jobs for ``core.engine.pieces.run_jobs``: the ranges (the
        planned ones if ``ahead``, else what is still to fetch) cut into pieces of about
        ``piece`` raw bytes (default ``pieces.MAX_PIECE``) between whole chunks (a
        compressed entry is one whole chunk), in file order. The caller sets
        ``fetched_ahead`` once every job of ``ahead`` ran."""
        ranges = self.planned_ranges() if ahead else self.remote_ranges()
        return [functools.partial(self._download_piece, fetcher, url, part, on_bytes,
                                  stz_url, ahead)
                for part in cut(ranges, piece or piece_size(0, 1), self.whole_offsets)]

    def _download_piece(self, fetcher: Fetcher, url: str, ranges: list[tuple[int, int]],
                        on_bytes: Callable[[int], None], stz_url: str, ahead: bool,
                        cancel: CancelToken) -> None:
        """One piece of ``download``: ``HashMismatchError`` if a chunk is still bad."""
        # Ahead, through a descriptor of its own: where positional writes are seek + write
        # (Windows), two threads must not share a file position (the pieces' writes share
        # ``_write_lock``).
        fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_BINARY", 0)) if ahead else None
        try:
            bad = self._fetch_all(fetcher, url, ranges, cancel, on_bytes, stz_url, fd)
        finally:
            if fd is not None:
                os.close(fd)
        if bad:
            a, b = bad[0]
            raise HashMismatchError(
                f"{url}: bytes {a}-{b - 1} do not match the index (server content is bad)",
                url=url, path=str(self.path))

    def _fetch_all(self, fetcher: Fetcher, url: str, ranges: list[tuple[int, int]],
                   cancel: CancelToken, on_bytes: Callable[[int], None], stz_url: str,
                   fd: int | None) -> list[tuple[int, int]]:
        """``download``'s fetches: the chunks still bad after a second try, raw."""
        if self.stz is not None and stz_url:
            table = self.stz
            whole = self.whole

            def unpack(k: int, stored: bytes | bytearray | memoryview) -> bytes | None:
                try:
                    return decode_chunk(stored, bool(table.raw[k]), int(whole.lengths[k]))
                except FormatError:
                    return None

            packed, raw = split_raw(ranges, self.whole_offsets, self.sub)
            bad = []
            if packed:
                try:
                    bad = self._fetch(fetcher, stz_url,
                                      compressed_ranges(table, self.whole_offsets, packed),
                                      cancel, on_bytes, table.offsets, unpack, whole, fd)
                except (HTTPStatusError, RangeError):
                    # The compressed copy went missing (a CDN miss, a partial upload):
                    # raw ranges instead (core.engine.chunkplan's fallbacks). Chunks it did
                    # deliver are written again with the same bytes.
                    bad = packed
            if raw:
                bad = _merge(bad + self._fetch(fetcher, url, raw, cancel, on_bytes,
                                               write_fd=fd))
        else:
            bad = self._fetch(fetcher, url, ranges, cancel, on_bytes, write_fd=fd)
        if bad:
            bad = self._fetch(fetcher, url, bad, cancel, on_bytes, write_fd=fd)
        return bad

    def _fetch(self, fetcher: Fetcher, url: str, ranges: list[tuple[int, int]],
               cancel: CancelToken, on_bytes: Callable[[int], None],
               layout: np.ndarray | None = None,
               unpack: Callable[[int, bytes | bytearray | memoryview], bytes | None]
               | None = None, index: FileIndex | None = None,
               write_fd: int | None = None) -> list[tuple[int, int]]:
        """Fetch ``ranges`` of ``url`` and write every chunk that arrives whole and right;
        return the (raw) ranges of chunks that arrived wrong or incomplete.

        ``layout`` says where chunk k lies in the fetched file (default: the raw offsets);
        ``unpack`` turns its stored bytes into the chunk (None: they are the chunk).
        Pieces may start and end anywhere and arrive in any order (a server may split and
        reorder multipart parts); a chunk is assembled in memory until all its bytes are
        there, checked, and only then written. Only chunks under way are held. ``index``
        (default the plan's) is the chunk list the ranges and ``layout`` follow;
        ``write_fd`` (default the file's own) the descriptor written through."""
        partial: dict[int, tuple[bytearray, list[int]]] = {}  # chunk -> (bytes, [filled])
        bad: list[tuple[int, int]] = []
        ids = (self.index if index is None else index).ids
        raw_offsets = self.offsets if index is None else self.whole_offsets
        offsets = raw_offsets if layout is None else layout
        fd = self._fd if write_fd is None else write_fd
        written = self.written
        # Good chunks that follow one another are written together (one pwritev per run,
        # within one piece of data from the network): fewer writes, and fewer waits on the
        # file's lock when another thread copies local chunks into the same file.
        run: list[bytes | bytearray | memoryview] = []
        run_at = [0, 0]  # the run's start and end in the file

        def flush() -> None:
            if run:
                with self._write_lock:
                    pwritev(fd, run, run_at[0])
                written(run_at[0], run_at[1])
                run.clear()

        def finish(k: int, stored: bytes | bytearray | memoryview, a: int, b: int) -> None:
            start, end = int(raw_offsets[k]), int(raw_offsets[k + 1])
            chunk = stored if unpack is None else unpack(k, stored)
            cid = ids[k].tobytes()
            if chunk is not None and (
                    self._ok(k, chunk, cid) if index is None
                    else xxhash.xxh3_128_digest(chunk) == cid):
                # An all-zero chunk is not written: the staged file starts as a hole and
                # only ever holds correct bytes, so its zeros are there (sparse images stay
                # sparse; zero chunks are recognised by their id, just checked).
                if cid == _zero_id(len(chunk)):
                    flush()
                    written(start, end)
                else:
                    if not run or run_at[1] != start or len(run) >= _RUN_CHUNKS:
                        flush()
                        run_at[0] = start
                    run.append(chunk)
                    run_at[1] = end
            else:
                flush()
                bad.append((start, end))
            on_bytes(b - a)

        def sink(offset: int, data: bytes) -> None:
            view = memoryview(data)
            pos, end = offset, offset + len(data)
            k = int(np.searchsorted(offsets, np.uint64(pos), side="right")) - 1
            try:
                while pos < end:
                    a, b = int(offsets[k]), int(offsets[k + 1])
                    take = min(end, b) - pos
                    piece = view[pos - offset:pos - offset + take]
                    if pos == a and take == b - a:
                        finish(k, piece, a, b)  # the usual case: a whole chunk, no copy
                    else:
                        buf, filled = partial.setdefault(k, (bytearray(b - a), [0]))
                        buf[pos - a:pos - a + take] = piece
                        filled[0] += take
                        if filled[0] >= b - a:
                            del partial[k]
                            finish(k, buf, a, b)
                    pos += take
                    k += 1
            finally:
                flush()  # the run may point into ``data``: written before it goes

        fetcher.fetch_ranges(url, ranges, sink, cancel)
        for k in partial:  # never completed: the server sent less than it said
            bad.append((int(raw_offsets[k]), int(raw_offsets[k + 1])))
        return _merge(bad)


def verify_known_chunks(path: Path, index: FileIndex, cancel: CancelToken) -> np.ndarray:
    """Which chunks of ``index`` are already correct in the partial file ``path`` (bool
    array): the resume case, where an interrupted run left a ``.part`` behind."""
    ok = np.zeros(len(index), dtype=bool)
    offsets = index.offsets()
    digest = xxhash.xxh3_128_digest
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return ok
    try:
        size = os.fstat(fd).st_size
        for k in range(len(index)):
            if k % 256 == 0:
                cancel.check()
            a, b = int(offsets[k]), int(offsets[k + 1])
            if b > size:
                break
            data = pread(fd, b - a, a)
            # An all-zero hole was never written; skip the hash unless the chunk is zeros.
            ok[k] = digest(data) == index.ids[k].tobytes()
    finally:
        os.close(fd)
    return ok
