"""The one assembler: runs a ``BuildPlan`` (``core.engine.plan``) into staged files, proven right.

Used by every way stitch builds files: ``core.engine.updater`` (updates and ``verify --repair``)
and ``core.engine.sync``. It owns the REBUILD, DOWNLOAD and VERIFY phases:

1. REBUILD: the local chunks of every file whose first step is a ``ChunkStep`` are copied
   (each re-hashed) while a thread of its own (``core.engine.background``) fetches their planned
   remote ranges: the fetch-ahead overlap. Every download is cut into pieces that run side
   by side on ``connections`` threads (``core.engine.pieces``).
2. DOWNLOAD: deltas (small files' side by side), then the rest: what a chunk build still
   needs (a stale seed, a range not fetched ahead), the whole files. A step that cannot be
   used (a delta that fails its digest or decodes wrong, an index the server does not have)
   hands its file to the next listed step of the plan, still in this phase: an
   ``IndexStep`` fetches the index and matches local chunks here (``Places.index_step``).
3. VERIFY: each file's SHA-256, hashed behind the writes by ``core.engine.sealer`` (one fsync
   each), compared with the plan's (a bupdate v1 target, which has none, has every chunk's
   SHA-1 checked by re-reading instead); the file is then marked ready.

Where files go and come from (staging paths, URLs, the installed file a delta applies to,
an index fetched late) is the caller's ``Places``. Errors other than a step's "cannot be
used" propagate: a chunk the server serves wrong twice is a ``HashMismatchError``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.engine import deltasource
from core.engine.background import Background
from core.engine.meter import Meter
from core.engine.packstep import PackJob, PackStep, fetch_packed
from core.engine.pieces import Job, cut, piece_size, run_jobs
from core.engine.plan import (
    BuildPlan,
    ChunkStep,
    DeltaStep,
    FileSteps,
    IndexStep,
    Step,
    StzWholeStep,
    WholeStep,
)
from core.engine.sealer import Sealer
from core.engine.staging import BlankFile, LaterFile, check_digest, create_all
from core.errors import (
    CancelledError,
    ContentError,
    DownloadError,
    HashMismatchError,
)
from core.formats.manifest import FileEntry
from core.fsutil import HAS_SYNCFS, sync_filesystem
from core.net.fetcher import Fetcher
from core.parallel import each
from core.progress import CancelToken, Phase

if TYPE_CHECKING:
    # The chunk machinery is imported where it is used: a plan of deltas alone never loads it.
    from core.chunks.planner import FilePlan
    from core.engine.rebuild import SeedFiles, StagedFile

# A plan of at least this many files is made durable by one sync of the file system once
# every file is hashed (Linux ``syncfs``), not an fsync per file: each fsync is a journal
# commit, and 2,121 of them were most of a many-small-files update's verify phase.
BATCH_SYNC_FILES = 64

# Deltas of files up to this size are fetched and decoded side by side (up to
# ``connections`` at once, each holding about its file in memory); bigger ones one by one.
SIDE_BY_SIDE_DELTA = 8 << 20


class Unusable(Exception):
    """A step of a file's plan cannot be used: the assembler tries the next listed one."""


class Places(Protocol):
    """Where the files of a plan are built and fetched from (the assembler's caller)."""

    def staged(self, entry: FileEntry) -> Path:
        """The staging file ``entry`` is built in."""

    def url(self, entry: FileEntry) -> str:
        """Where the file's bytes are served (``.stz`` beside it)."""

    def installed(self, entry: FileEntry) -> Path:
        """The installed file a delta (the first of a chain) applies to."""

    def index_step(self, entry: FileEntry) -> ChunkStep | None:
        """An ``IndexStep`` run: the file's index fetched, local chunks matched, the file
        planned from chunks; None when the server does not have the index."""


def mb(n: int) -> str:
    """A size for the details log: ``67.1 MB``, ``12.0 kB``, ``512 bytes``."""
    if n < 1000:
        return f"{n} bytes"
    return f"{n / 1e3:.1f} kB" if n < 1_000_000 else f"{n / 1e6:.1f} MB"


class Assembler:
    """Runs one ``BuildPlan`` (see the module doc). ``run()`` once; then ``used[i]`` is the
    step that built file ``i`` and ``staged[i]`` its (closed) staged file."""

    def __init__(self, plan: BuildPlan, places: Places, fetcher: Fetcher, meter: Meter,
                 cancel: CancelToken, connections: int, ready_suffix: str | None = ".ready"
                 ) -> None:
        self.plan = plan
        self.places = places
        self.fetcher = fetcher
        self.meter = meter
        self.cancel = cancel
        self.connections = connections
        self.ready_suffix = ready_suffix  # the verified file is renamed so (None: kept)
        self.staged: list[BlankFile] = []
        self.used: list[Step] = [f.first for f in plan.files]
        self._seeds: SeedFiles | None = None

    # -- the whole run ----------------------------------------------------------------------
    def run(self) -> list[Path]:
        """Build, download and verify every file; return the ready files' paths, in order."""
        files = self.plan.files
        sealer = Sealer(sync_each=not self._batch_sync())
        ahead = Background(self.cancel, "stitch-fetch-ahead")
        creator = Background(self.cancel, "stitch-create")
        try:
            # The files a pack builds are created on a thread of their own, while the
            # rebuild and the deltas go on (a file created costs from 25 µs to 1 ms,
            # thousands of them); the others now.
            later: list[LaterFile] = []
            for f in files:
                if isinstance(f.first, PackStep):
                    later.append(LaterFile(self.places.staged(f.entry), f.entry.size))
                    self.staged.append(later[-1])
                else:
                    s = self._open(f.entry, f.first)
                    s.written = sealer.track(s.fd, s.path, s.size)
                    self.staged.append(s)
            if later:
                creator.start(lambda token: create_all(later, token))
            self._rebuild(sealer, ahead)
            self._download(sealer, ahead)
            # The seeds are read no more. Closed before the staged files are renamed: a seed
            # may be the staged file itself (a .part an earlier run left), and Windows
            # refuses to rename a file open without FILE_SHARE_DELETE.
            self._close_seeds()
            return self._verify(sealer)
        finally:
            ahead.stop()  # before the files: it writes them
            creator.stop()  # before the files and the sealer: it makes and tracks them
            sealer.close()  # before the files: it must not touch a closed descriptor
            for s in self.staged:
                s.close()
            self._close_seeds()

    def _batch_sync(self) -> bool:
        return len(self.plan.files) >= BATCH_SYNC_FILES and HAS_SYNCFS

    def _close_seeds(self) -> None:
        if self._seeds is not None:
            self._seeds.close()

    def _open_seed(self, plan: FilePlan) -> Callable[[int], int]:
        if self._seeds is None:
            from core.engine.rebuild import SeedFiles

            self._seeds = SeedFiles()
        return self._seeds.opener(plan)

    def _open(self, entry: FileEntry, step: Step) -> BlankFile:
        """The staging file ``step`` builds in: from chunks, or written in order."""
        path = self.places.staged(entry)
        if not isinstance(step, ChunkStep):
            return BlankFile(path, entry.size)
        from core.engine.bigstage import BigChunkStep, BigStagedFile
        from core.engine.rebuild import StagedFile

        if isinstance(step, BigChunkStep):  # its index on disk (core.engine.bigplan)
            return BigStagedFile(path, step)
        return StagedFile(path, step.index, step.plan, step.stz, step.whole, step.sub,
                          step.sha1)

    # -- REBUILD --------------------------------------------------------------------------
    def _rebuild(self, sealer: Sealer, ahead: Background) -> None:
        """Copy the local chunks of every file built from chunks, while ``ahead`` fetches
        their planned remote ranges; the download phase waits for it. Local chunks that
        fail their check are fetched in the download phase."""
        m = self.meter
        files = self.plan.files
        m.phase(Phase.REBUILD, 0, sum(f.bytes_local() for f in files))
        jobs = [(f, s) for f, s in zip(files, self.staged, strict=True)
                if f.chunks is not None and len(f.chunks.plan.remote)]

        def fetch_ahead(token: CancelToken) -> None:
            # Every file's pieces in file order, side by side (core.engine.pieces).
            total = sum(b - a for _, s in jobs for a, b in _chunked(s).planned_ranges())
            piece = piece_size(total, self.connections)
            work = [job for f, s in jobs
                    for job in self._remote_jobs(f.entry, s, m.add_download, piece, token,
                                                 True)]
            run_jobs(work, self.connections, token)
            for _, s in jobs:
                _chunked(s).fetched_ahead = True

        if jobs:
            ahead.start(fetch_ahead)
        try:
            for f, s in zip(files, self.staged, strict=True):
                if f.chunks is not None:  # the other steps run in the download phase
                    self._copy_local(f.entry, f.chunks, s, sealer, ahead.token)
        except CancelledError:
            if ahead.failed():
                ahead.wait()  # raises the fetch's own error: that is what stopped the copies
            raise

    def _copy_local(self, entry: FileEntry, step: ChunkStep, s: BlankFile, sealer: Sealer,
                    cancel: CancelToken | None = None) -> None:
        """Copy the local chunks of ``step`` into ``s``; a file that needs nothing from the
        network is complete, and the sealer finishes it meanwhile."""
        staged = _chunked(s)
        self.meter.current = entry.path
        staged.copy_local(self._open_seed(step.plan), cancel or self.cancel,
                          self.meter.add_local)
        if not staged.remote_ranges():
            sealer.complete(s.fd)  # hashed and synced while the others are built

    # -- DOWNLOAD -------------------------------------------------------------------------
    def _download(self, sealer: Sealer, ahead: Background) -> None:
        """Deltas, then (once ``ahead`` has fetched their planned ranges) whatever the
        files still need, each file's steps in their listed order."""
        m = self.meter
        files = self.plan.files
        m.phase(Phase.DOWNLOAD, 0, sum(f.wire_bytes() for f in files))
        # Deltas of small files side by side (each holds about its file in memory while it
        # is decoded); the others one at a time, below.
        # Compressed copies taken whole go with them (one request each).
        small = [(i, f.first) for i, f in enumerate(files)
                 if (isinstance(f.first, DeltaStep) and f.entry.size <= SIDE_BY_SIDE_DELTA)
                 or isinstance(f.first, StzWholeStep)]
        # The pack's files, and the files taken whole, are fetched beside those (a thread of
        # their own each): one after the other they cost a round trip more, and their
        # decoding waits for nothing. (The fetcher keeps ``connections`` requests in flight.)
        packed: dict[int, bool] = {}
        wholes: dict[int, bool] = {}
        packer = Background(self.cancel, "stitch-pack")
        wholer = Background(self.cancel, "stitch-wholes")
        pack_files = [i for i, f in enumerate(files) if isinstance(f.first, PackStep)]
        whole_files = [i for i, f in enumerate(files) if isinstance(f.first, WholeStep)]
        try:
            if pack_files:
                packer.start(lambda token: packed.update(
                    self._run_packed(pack_files, sealer, cancel=token)))
            if whole_files:
                wholer.start(lambda token: wholes.update(
                    self._fetch_wholes(whole_files, sealer, token)))
            early = dict(zip([i for i, _ in small],
                             each(lambda job: self._try_first(job[0], job[1], sealer), small,
                                  self.connections), strict=True))
            wholer.wait()
            packer.wait()
        finally:
            wholer.stop()  # (an error above: before the files they write are closed)
            packer.stop()
        early.update(wholes)
        early.update(packed)
        ahead.wait()  # the planned ranges of the files built from chunks
        for i, f in enumerate(files):
            for n, step in enumerate(f.steps):
                if n:  # the step before could not be used: this one starts from zeros
                    self._reopen(i, f, step, sealer)
                m.current = f.entry.path
                if n == 0 and i in early:
                    used: Step | None = step if early[i] else None
                else:
                    used = self._run_step(i, f, step, sealer)
                if used is not None:
                    self.used[i] = used
                    break
            else:  # (``FileSteps`` ends with a step that is always usable)
                raise AssertionError(f"{f.entry.path}: no step of its plan could be used")

    def _try_first(self, i: int, step: Step, sealer: Sealer) -> bool:
        """A small file's delta, or a compressed copy taken whole: run side by side."""
        if isinstance(step, DeltaStep):
            return self._try_delta(i, step, sealer)
        assert isinstance(step, StzWholeStep)
        return self._try_stz_whole(i, step, sealer)

    def _run_step(self, i: int, f: FileSteps, step: Step, sealer: Sealer) -> Step | None:
        """Run ``step`` for file ``i`` in the download phase; return the step that built
        the file (an ``IndexStep`` becomes the ``ChunkStep`` it planned), or None when it
        cannot be used (logged) and the next listed step must. The first step's local
        copies were made in the rebuild phase; a later step makes them now."""
        if isinstance(step, DeltaStep):
            return step if self._try_delta(i, step, sealer) else None
        if isinstance(step, PackStep):
            return step if self._run_packed([i], sealer, step)[i] else None
        if isinstance(step, WholeStep):
            self._fetch_whole_file(f.entry, self.staged[i])
            sealer.complete(self.staged[i].fd)
            return step
        if isinstance(step, StzWholeStep):
            return step if self._try_stz_whole(i, step, sealer) else None
        if isinstance(step, IndexStep):
            late = self.places.index_step(f.entry)
            if late is None:
                return None
            self._swap(i, self._open(f.entry, late), sealer)
            step = late
        if step is not f.first:
            self._copy_local(f.entry, step, self.staged[i], sealer)
        staged = _chunked(self.staged[i])
        if ranges := staged.remote_ranges():  # local chunks that failed, or not fetched ahead
            piece = piece_size(sum(b - a for a, b in ranges), self.connections)
            run_jobs(self._remote_jobs(f.entry, staged, self.meter.add_network, piece,
                                       self.cancel), self.connections, self.cancel)
        sealer.complete(staged.fd)
        return step

    def _run_packed(self, files: list[int], sealer: Sealer, step: PackStep | None = None,
                    cancel: CancelToken | None = None) -> dict[int, bool]:
        """Build ``files`` (each a ``PackStep``: its first, or ``step``) from the release's
        pack together, in shared multi-range requests (``core.engine.packstep``); per file,
        whether it was built. ``cancel``: the run's token, or a thread's child of it."""
        if not files:
            return {}
        jobs = []
        durable = not self._batch_sync()
        for i in files:
            f = self.plan.files[i]
            st = step or f.first
            assert isinstance(st, PackStep)
            s = self.staged[i]
            # A file made for the pack is written, hashed and closed in one go; one the
            # pack builds after another step failed is the sealer's like any other.
            # (it hashes what it wrote, and compares: the decode need not)
            write = (partial(_write_whole, s, durable, f.entry.sha256)
                     if isinstance(s, LaterFile) else s.write_at)
            jobs.append(PackJob(f.entry, st, write, self.places.installed(f.entry),
                                isinstance(s, LaterFile)))
        built = fetch_packed(jobs, self.fetcher, cancel or self.cancel, self.meter.add_network,
                             self.meter.log, self.meter.add_metadata)
        for i, ok in zip(files, built, strict=True):
            if ok and not isinstance(self.staged[i], LaterFile):
                sealer.complete(self.staged[i].fd)
        return dict(zip(files, built, strict=True))

    def _reopen(self, i: int, f: FileSteps, step: Step, sealer: Sealer) -> None:
        """Empty file ``i``'s staging again for ``step``: what the step before wrote goes
        (the next one counts on zeros)."""
        self.staged[i].reset()
        self._swap(i, self._open(f.entry, step), sealer)

    def _swap(self, i: int, new: BlankFile, sealer: Sealer) -> None:
        """Make ``new`` (the same path) file ``i``'s staged file, tracked by ``sealer``."""
        old = self.staged[i]
        sealer.forget(old.fd)
        old.close()
        self.staged[i] = new
        new.written = sealer.track(new.fd, new.path, new.size)

    def _piece_for(self, url: str, ranges: list[tuple[int, int]], piece: int,
                   cancel: CancelToken) -> int:
        """``piece``, or one piece for all of ``ranges`` when ``url``'s server ignores
        ranges (each piece would stream the file from its start)."""
        total = sum(b - a for a, b in ranges)
        if total <= piece or self.fetcher.split_ranges(url, cancel):
            return piece
        return total

    def _remote_jobs(self, entry: FileEntry, s: BlankFile, on_bytes: Callable[[int], None],
                     piece: int, cancel: CancelToken, ahead: bool = False) -> list[Job]:
        """The pieces of what ``s`` (built from chunks) still needs, or of its planned
        ranges if ``ahead`` (``StagedFile.download_jobs``)."""
        from core.chunks import stz

        staged = _chunked(s)
        ranges = staged.planned_ranges() if ahead else staged.remote_ranges()
        if not ranges:
            return []
        how = ", compressed" if staged.stz is not None else ""
        parts = "1 part" if len(ranges) == 1 else f"{len(ranges)} parts"
        url = self.places.url(entry)
        jobs = staged.download_jobs(self.fetcher, url, on_bytes,
                                    url + stz.SUFFIX if staged.stz is not None else "",
                                    ahead, self._piece_for(url, ranges, piece, cancel))
        pieces = f", {len(jobs)} pieces side by side" if len(jobs) > 1 else ""
        self.meter.log(f"{entry.path}: downloading {mb(staged.wire_bytes(ranges))} in "
                       f"{parts}{how}{pieces}")
        return jobs

    def _try_delta(self, i: int, step: DeltaStep, sealer: Sealer) -> bool:
        """Rebuild file ``i`` from the publisher's deltas (``core.engine.deltasource``: a
        direct delta or a chain); False (after logging why) when they cannot be used."""
        entry = self.plan.files[i].entry
        return deltasource.run(step, self.places.installed(entry), self.staged[i], entry,
                               self.fetcher, self.cancel, self.meter, sealer)

    def _try_stz_whole(self, i: int, step: StzWholeStep, sealer: Sealer) -> bool:
        """Rebuild file ``i`` from its compressed copy fetched whole (one request, no
        index: ``core.chunks.stz.decode_whole``), checked by its SHA-256 before a byte is
        written; False (after logging why) when it cannot be had or does not rebuild it."""
        from core.chunks import stz

        entry = self.plan.files[i].entry
        url = self.places.url(entry) + stz.SUFFIX
        data = bytearray(step.size)

        def sink(offset: int, piece: bytes) -> None:  # (the bar moves as the bytes arrive)
            data[offset:offset + len(piece)] = piece
            self.meter.add_network(len(piece))

        try:
            if step.size:
                self.fetcher.fetch_ranges(url, [(0, step.size)], sink, self.cancel)
            out = stz.decode_whole(data, bytes.fromhex(entry.fidx_sha256), entry.size)
            if hashlib.sha256(out).hexdigest() != entry.sha256:
                raise HashMismatchError("compressed copy rebuilds another file",
                                        expected=entry.sha256)
        except (DownloadError, ContentError) as e:
            self.meter.log(f"{entry.path}: compressed copy not used whole ({e}); trying "
                           "the next step")
            return False
        self.staged[i].write_at(out, 0)
        sealer.complete(self.staged[i].fd)
        return True

    def _fetch_wholes(self, wholes: list[int], sealer: Sealer, cancel: CancelToken
                      ) -> dict[int, bool]:
        """The files ``wholes`` (planned whole: no index), side by side in pieces:
        ``{i: True}`` for each, complete (the verify phase checks its SHA-256)."""
        files = self.plan.files
        piece = piece_size(sum(files[i].entry.size for i in wholes), self.connections)
        run_jobs([job for i in wholes
                  for job in self._whole_jobs(files[i].entry, self.staged[i], piece, cancel)],
                 self.connections, cancel)
        for i in wholes:
            sealer.complete(self.staged[i].fd)
        return dict.fromkeys(wholes, True)

    def _fetch_whole_file(self, entry: FileEntry, s: BlankFile) -> None:
        """Download all of the file into ``s`` (its index cannot be had); the verify phase
        checks its SHA-256."""
        run_jobs(self._whole_jobs(entry, s, piece_size(entry.size, self.connections)),
                 self.connections, self.cancel)

    def _whole_jobs(self, entry: FileEntry, s: BlankFile, piece: int,
                    cancel: CancelToken | None = None) -> list[Job]:
        """The pieces of all of the file, for ``_fetch_whole_file``'s ``run_jobs``."""
        url = self.places.url(entry)
        self.meter.log(f"{entry.path}: downloading the whole file ({entry.size} bytes)")

        lock = threading.Lock()  # pieces side by side: one write at a time (Windows seeks)

        def sink(offset: int, data: bytes) -> None:
            with lock:
                s.write_at(data, offset)
            self.meter.add_network(len(data))

        def job(part: list[tuple[int, int]]) -> Job:
            return lambda token: self.fetcher.fetch_ranges(url, part, sink, token)

        # Cut anywhere: the sealer hashes the written prefix whatever the order of the
        # pieces, and the verify phase compares the whole file's SHA-256.
        whole = [(0, entry.size)] if entry.size else []
        each_piece = self._piece_for(url, whole, piece, cancel or self.cancel)
        return [job(p) for p in cut(whole, each_piece)]

    # -- VERIFY ---------------------------------------------------------------------------
    def _verify(self, sealer: Sealer) -> list[Path]:
        """Wait for each file's SHA-256 (hashed on the sealer's thread while it was
        written, so mostly done) and fsync, compare, and mark it ready. A many-file plan
        (``BATCH_SYNC_FILES``) is made durable by one sync of the file system once all are
        compared, and left under its staging names."""
        m = self.meter
        files = self.plan.files
        m.phase(Phase.VERIFY, 0, sum(f.entry.size for f in files))
        batch = self._batch_sync()
        out: list[Path] = []
        for f, s, used in zip(files, self.staged, self.used, strict=True):
            m.current = f.entry.path
            if isinstance(s, LaterFile):  # written whole from the pack: hashed then
                actual = s.digest
                m.add_done(s.size)
            else:
                actual = sealer.result(s.fd, self.cancel, m.add_done)
                sealer.forget(s.fd)
            if isinstance(used, ChunkStep) and used.sha1 is not None:
                _chunked(s).verify_chunks(self.cancel, lambda _n: None)  # v1: no SHA-256
            else:
                check_digest(s.path, f.entry.sha256, actual)
            if not batch:
                out.append(self._ready(s))
        if batch and self.staged:
            # Durable at once; not renamed one by one to ``ready_suffix`` either (a rename
            # each: what a later run does with a ready file it does with a .part too,
            # checking its chunks again).
            _sync_all(self.staged)
            out = [s.path for s in self.staged]
        return out

    def _ready(self, s: BlankFile) -> Path:
        """Close a verified staged file and mark it ready (renamed with ``ready_suffix``)."""
        s.close()
        if self.ready_suffix is None:
            return s.path
        path = s.path.with_suffix(self.ready_suffix)
        os.replace(s.path, path)
        return path


def _write_whole(s: LaterFile, durable: bool, sha256: str, data: bytes | bytearray,
                 offset: int) -> None:
    """A pack job's ``write``: the file's whole content (``offset`` 0), which must have
    ``sha256``."""
    assert offset == 0
    s.write_whole(data, durable, sha256)


def _sync_all(staged: list[BlankFile]) -> None:
    """Make every staged file durable at once (Linux ``syncfs`` through the staging folder),
    or else each with an fsync of its own; then close them."""
    fd = os.open(staged[0].path.parent, os.O_RDONLY)
    try:
        synced = sync_filesystem(fd)
    finally:
        os.close(fd)
    if not synced:  # no such call here after all
        for s in staged:
            if s.fd >= 0:
                os.fsync(s.fd)
            else:  # written whole and closed: open again to sync it
                again = os.open(s.path, os.O_RDONLY)
                try:
                    os.fsync(again)
                finally:
                    os.close(again)
    for s in staged:
        s.close()


def _chunked(s: BlankFile) -> StagedFile:
    """``s`` as the ``StagedFile`` a ``ChunkStep`` opened (``Assembler._open``)."""
    from core.engine.rebuild import StagedFile

    if not isinstance(s, StagedFile):
        raise TypeError(f"{s.path}: not built from chunks")
    return s
