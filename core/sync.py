"""``stitch sync``: bring the files of a local folder up to date with a plain web folder of
``.fidx`` indexes, with no release manifest (bupdate's model, and apt's ``Packages.fidx``).

Owns: finding the targets a URL names (a ``.fidx``, a listing page or a text list, through
``core.listing``), indexing the folder's own files with each target's chunker (cached by
``core.indexer.IndexCache``), planning every target (``core.planner``), building each into a
temp file beside its destination (local copies and remote ranges, every chunk checked before
it is written), verifying it, and replacing the destination atomically (fsync,
``os.replace``). Targets are all built before any is replaced, so every local file is still
what it was indexed as while it serves as a seed.

What is checked: a v2 target must match its index's whole-file SHA-256 (the index itself is
not signed: it is as trustworthy as the server it came from); a v1 target has no whole-file
digest, so every chunk's full 20-byte SHA-1 is checked as it lands and again over the
finished file, and results say ``whole_file_verified=False``.

The folder's lock (``DIR/.stitch/lock``, ``core.lock``) is held from the scan of the local
files to the last replacement, so a sync never overlaps an update, verify or sync of the
same folder.

Leaves out: releases, signatures and install state (``core.updater``), HTTP
(``core.http``), and the byte layouts (``core.fidx``, ``core.fidx_v1``).
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from core.chunker import ChunkerParams
from core.errors import FormatError, HashMismatchError, HTTPStatusError, NotEnoughSpaceError
from core.fetcher import Fetcher
from core.fidx_v1 import git_blob_id
from core.fsutil import current_umask, file_fingerprint, file_mode, fsync_dir, inside, pread
from core.indexer import MAX_INDEX_BYTES, IndexCache, LocalIndex, index_file, parse_any
from core.listing import (
    FIDX_SUFFIX,
    MAX_LISTING,
    MAX_SOURCE,
    Link,
    file_url_of,
    looks_like_html,
    parse_html_listing,
    parse_source,
    parse_text_list,
    single_index,
    source_url_of,
)
from core.lock import DEFAULT_WAIT, acquire
from core.manifest import check_path
from core.meter import Meter
from core.planner import FilePlan, PlanOptions, SeedSet, plan_file
from core.progress import CancelToken, Phase, ProgressCallback, no_progress
from core.rebuild import SeedFiles, StagedFile
from core.state import STATE_DIR

SYNC_CACHE = "sync"  # DIR/.stitch/sync/: the local index cache
TEMP_SUFFIX = ".stitch-tmp"  # DIR/<folder>/.<name>.<random>.stitch-tmp while building
MAX_LOCAL_FILES = 100_000  # never walk a whole disk if pointed at one


@dataclass(frozen=True)
class SyncConfig:
    """What to sync. Sizes in bytes."""

    url: str  # a .fidx, a listing page, or a text list of .fidx URLs
    directory: Path
    connections: int = 4  # parallel HTTP requests
    max_file_size: int = 1 << 40  # ceiling for one target file (1 TiB)
    lock_wait: float = DEFAULT_WAIT  # seconds to wait for another run's lock on the folder


class FileOutcome(enum.Enum):
    UPDATED = "updated"  # the file was rebuilt and replaced (or created)
    UP_TO_DATE = "up-to-date"  # the file on disk already matched its index


@dataclass(frozen=True)
class SyncedFile:
    name: str  # relative path in the folder
    outcome: FileOutcome
    index_version: int  # 1 or 2
    whole_file_verified: bool  # v2: whole-file SHA-256 matched; v1: False (chunks only)
    size: int
    bytes_local: int  # bytes copied from files already in the folder
    bytes_remote: int  # bytes of ranges fetched from source_url
    source_url: str


@dataclass(frozen=True)
class SyncResult:
    files: tuple[SyncedFile, ...]
    bytes_downloaded: int  # body bytes from the network: listing, indexes and ranges
    requests: int

    @property
    def updated(self) -> int:
        return sum(f.outcome is FileOutcome.UPDATED for f in self.files)


@dataclass(frozen=True)
class Target:
    """One file to sync: its name in the folder, where its index and bytes are, the index."""

    name: str
    fidx_url: str
    file_url: str
    index: LocalIndex


# -- discovery -----------------------------------------------------------------------------

def discover(fetcher: Fetcher, url: str, max_file_size: int = 1 << 40,
             cancel: CancelToken | None = None) -> list[Target]:
    """The targets ``url`` names, each index fetched and parsed.

    Raises ``DownloadError`` when something cannot be fetched, ``FormatError`` when the URL
    is neither a ``.fidx`` nor a listing, an index does not parse, or two targets share a
    name, ``UnsafePathError`` for a name that cannot be a relative path in the folder.
    """
    # Bound what is read by what the URL claims to be: a listing is small, an index may not be.
    is_fidx = urlsplit(url).path.endswith(FIDX_SUFFIX)
    body = fetcher.fetch(url, MAX_INDEX_BYTES if is_fidx else MAX_LISTING, cancel)
    if body[:4] == b"FIDX":
        link = single_index(url)
        return [_target(fetcher, link, body, max_file_size, True, cancel)]
    if len(body) > MAX_LISTING:
        raise FormatError(f"{url}: neither a .fidx nor a listing", what="listing")
    html = looks_like_html(body)
    links = parse_html_listing(body, url) if html else parse_text_list(body, url)
    if not links:
        raise FormatError(f"{url}: lists no .fidx files", what="listing")
    seen: set[str] = set()
    targets: list[Target] = []
    for link in links:
        if link.name.lower() in seen:
            raise FormatError(f"{url}: {link.name} is listed twice", what="listing")
        seen.add(link.name.lower())
        check_path(link.name)
        data = fetcher.fetch(link.fidx_url, MAX_INDEX_BYTES, cancel)
        targets.append(_target(fetcher, link, data, max_file_size,
                               link.has_source or not html, cancel))
    return targets


def _target(fetcher: Fetcher, link: Link, data: bytes, max_file_size: int, ask_source: bool,
            cancel: CancelToken | None) -> Target:
    check_path(link.name)
    try:
        index = parse_any(data, max_file_size)
    except FormatError as e:
        raise FormatError(f"{link.fidx_url}: {e}", what="fidx") from None
    file_url = file_url_of(link.fidx_url)
    if ask_source:
        sidecar = source_url_of(link.fidx_url)
        try:
            file_url = parse_source(fetcher.fetch(sidecar, MAX_SOURCE, cancel), sidecar)
        except HTTPStatusError as e:
            if e.status_code not in (404, 410):
                raise
    return Target(link.name, link.fidx_url, file_url, index)


# -- the local folder ----------------------------------------------------------------------

def local_files(root: Path, limit: int = MAX_LOCAL_FILES) -> list[str]:
    """Relative paths of the regular files under ``root`` that may serve as seeds: not
    ``.stitch/``, not symlinks, not our own temp files; at most ``limit``."""
    out: list[str] = []
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not (Path(dirpath) == root and d == STATE_DIR))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.endswith(TEMP_SUFFIX) or p.is_symlink() or not p.is_file():
                continue
            out.append(p.relative_to(root).as_posix())
            if len(out) >= limit:
                return out
    return out


@dataclass
class _Local:
    indexes: dict[str, dict[ChunkerParams, LocalIndex]]  # rel path -> params -> index
    stats: dict[str, os.stat_result]


def _scan(root: Path, groups: set[ChunkerParams], cache: IndexCache, meter: Meter,
          cancel: CancelToken) -> _Local:
    local = _Local({}, {})
    todo: list[tuple[str, Path, os.stat_result, ChunkerParams]] = []
    for rel in local_files(root):
        path = root.joinpath(*rel.split("/"))
        try:
            st = path.stat()
        except OSError:
            continue
        local.stats[rel] = st
        local.indexes[rel] = {}
        for params in groups:
            cached = cache.get(rel, st, params)
            if cached is not None:
                local.indexes[rel][params] = cached
            else:
                todo.append((rel, path, st, params))
    meter.phase(Phase.SCAN, 0, sum(st.st_size for _, _, st, _ in todo))
    for rel, path, st, params in todo:
        cancel.check()
        meter.current = rel
        li = index_file(path, params, cancel)
        if file_fingerprint(path.stat()) == file_fingerprint(st):  # unchanged while read
            cache.put(rel, st, li)
        local.indexes[rel][params] = li
        meter.add_read(st.st_size)
    return local


def _seed_set(root: Path, local: _Local, params: ChunkerParams) -> SeedSet:
    seeds = []
    for rel, by_params in local.indexes.items():
        li = by_params.get(params)
        if li is not None and len(li.index):
            idx = li.index
            seeds.append((str(root.joinpath(*rel.split("/"))), idx.offsets()[:-1],
                          idx.lengths, idx.ids))
    return SeedSet.build(seeds)


# -- building one file ---------------------------------------------------------------------

class _V1StagedFile(StagedFile):
    """A ``StagedFile`` for a v1 target: chunks are checked against their full 20-byte
    git-blob SHA-1 instead of an xxh3-128 id (the planner only saw the first 16 bytes)."""

    def __init__(self, path: Path, target: LocalIndex, plan: FilePlan) -> None:
        super().__init__(path, target.index, plan)
        assert target.sha1 is not None
        self.sha1: np.ndarray = target.sha1

    def _ok(self, k: int, chunk: bytes | bytearray | memoryview, chunk_id: bytes) -> bool:
        return bool(git_blob_id(chunk) == self.sha1[k].tobytes())

    def verify_chunks(self, cancel: CancelToken, on_bytes: Callable[[int], None]) -> None:
        """Re-read the finished file and check every chunk's SHA-1 (v1 has nothing else)."""
        os.fsync(self._fd)
        for k, (a, b) in enumerate(zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist(),
                                       strict=True)):
            if k % 256 == 0:
                cancel.check()
            if not self._ok(k, pread(self._fd, b - a, a), b""):
                raise HashMismatchError(f"rebuilt file: chunk {k} at {a} does not match its "
                                        "SHA-1", path=str(self.path))
            on_bytes(b - a)


@dataclass
class _Build:
    target: Target
    dest: Path
    plan: FilePlan
    staged: StagedFile | None = None


# -- the whole sync ------------------------------------------------------------------------

def sync(config: SyncConfig, fetcher: Fetcher | None = None,
         progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
         options: PlanOptions | None = None,
         on_wait: Callable[[str], None] | None = None) -> SyncResult:
    """Bring ``config.directory`` up to date with the indexes at ``config.url``.

    Raises ``DownloadError`` (network), ``ContentError`` (a listing or index that does not
    parse, bytes that do not match an index, an unsafe name), ``CancelledError``,
    ``InstallBusyError`` when another run holds the folder's lock for more than
    ``config.lock_wait`` seconds (``on_wait`` gets the line said meanwhile), and
    ``OSError`` for local disk problems (``NotEnoughSpaceError`` before anything is written).
    On any failure no destination file has been touched, except that files already
    replaced stay replaced (each replacement is atomic and complete).
    """
    cancel = cancel or CancelToken()
    meter = Meter(progress or no_progress)
    own = fetcher is None
    if fetcher is None:
        from core.http import HttpFetcher  # only here: tests pass their own fetcher

        fetcher = HttpFetcher(connections=config.connections)
    root = config.directory
    try:
        meter.phase(Phase.CHECK, 0, 1)
        targets = discover(fetcher, config.url, config.max_file_size, cancel)
        meter.phase(Phase.CHECK, 1, 1)
        root.mkdir(parents=True, exist_ok=True)
        with acquire(root / STATE_DIR, wait=config.lock_wait, cancel=cancel,
                     on_wait=on_wait or meter.log, what="stitch run in this folder"):
            return _sync(root, targets, fetcher, meter, cancel, options or PlanOptions())
    finally:
        if own:
            fetcher.close()


def _sync(root: Path, targets: list[Target], fetcher: Fetcher, meter: Meter,
          cancel: CancelToken, options: PlanOptions) -> SyncResult:
    root.mkdir(parents=True, exist_ok=True)
    cache = IndexCache(root / STATE_DIR / SYNC_CACHE)
    groups = {t.index.params for t in targets}
    meter.expect(sum(t.index.index.file_size for t in targets))  # until the plan says
    local = _scan(root, groups, cache, meter, cancel)

    results: dict[str, SyncedFile] = {}
    builds: list[_Build] = []
    sets: dict[ChunkerParams, SeedSet] = {}
    for t in targets:
        dest = inside(root, t.name)
        have = local.indexes.get(t.name, {}).get(t.index.params)
        if have is not None and have.same_content(t.index):
            results[t.name] = _synced(t, FileOutcome.UP_TO_DATE, 0, 0)
            continue
        if t.index.params not in sets:
            sets[t.index.params] = _seed_set(root, local, t.index.params)
        builds.append(_Build(t, dest, plan_file(t.index.index, sets[t.index.params], options)))
    meter.plan(sum(b.plan.bytes_local for b in builds), sum(b.plan.bytes_remote for b in builds))
    meter.phase(Phase.PLAN, 1, 1)

    need = sum(b.target.index.index.file_size for b in builds)
    free = shutil.disk_usage(root).free
    if need > free:
        raise NotEnoughSpaceError(need, free, str(root))
    seeds = SeedFiles()
    try:
        _build_all(builds, seeds, fetcher, meter, cancel)
        seeds.close()  # Windows: a file open as a source cannot be replaced
        _replace_all(builds, cache, meter, cancel)
    finally:
        seeds.close()
        for b in builds:
            if b.staged is not None:
                b.staged.close()
                with contextlib.suppress(OSError):
                    os.unlink(b.staged.path)  # still there only if something failed
    for b in builds:
        got = b.staged
        assert got is not None
        remote = sum(e - s for s, e in got.remote_ranges())
        results[b.target.name] = _synced(b.target, FileOutcome.UPDATED,
                                         b.plan.bytes_local - _retried(got), remote)
    cache.prune()
    meter.phase(Phase.DONE, 1, 1)
    return SyncResult(tuple(results[t.name] for t in targets), fetcher.stats.bytes_received,
                      fetcher.stats.requests)


def _retried(s: StagedFile) -> int:
    return sum(e - a for a, e in s.retry_ranges)


def _synced(t: Target, outcome: FileOutcome, local: int, remote: int) -> SyncedFile:
    return SyncedFile(t.name, outcome, t.index.version, t.index.version == 2,
                      t.index.index.file_size, local, remote, t.file_url)


def _build_all(builds: list[_Build], seeds: SeedFiles, fetcher: Fetcher, meter: Meter,
               cancel: CancelToken) -> None:
    for b in builds:
        b.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=b.dest.parent, prefix=f".{b.dest.name}.",
                                   suffix=TEMP_SUFFIX)
        os.close(fd)
        li = b.target.index
        b.staged = _V1StagedFile(Path(tmp), li, b.plan) if li.version == 1 else \
            StagedFile(Path(tmp), li.index, b.plan)
    meter.phase(Phase.REBUILD, 0, sum(b.plan.bytes_local for b in builds))
    for b in builds:
        assert b.staged is not None
        meter.current = b.target.name
        b.staged.copy_local(seeds.opener(b.plan), cancel, meter.add_local)
    total = sum(sum(e - s for s, e in b.staged.remote_ranges()) for b in builds if b.staged)
    meter.phase(Phase.DOWNLOAD, 0, total)
    for b in builds:
        assert b.staged is not None
        if b.staged.remote_ranges():
            meter.current = b.target.name
            b.staged.download(fetcher, b.target.file_url, cancel, meter.add_network)
    meter.phase(Phase.VERIFY, 0, sum(b.target.index.index.file_size for b in builds))
    for b in builds:
        s = b.staged
        assert s is not None
        meter.current = b.target.name
        if isinstance(s, _V1StagedFile):
            s.verify_chunks(cancel, meter.add_done)
        else:
            s.verify(b.target.index.index.sha256.hex(), cancel, meter.add_done)


def _replace_all(builds: list[_Build], cache: IndexCache, meter: Meter,
                 cancel: CancelToken) -> None:
    cancel.check()  # the last point where a cancel leaves every file as it was
    meter.phase(Phase.INSTALL, 0, len(builds))
    umask = current_umask()
    for i, b in enumerate(builds):
        s = b.staged
        assert s is not None
        s.close()
        try:
            mode = b.dest.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = file_mode(umask=umask)  # a new file: what the umask gives, as cp's
        os.chmod(s.path, mode)
        os.replace(s.path, b.dest)
        fsync_dir(b.dest.parent)
        cache.put(b.target.name, b.dest.stat(), b.target.index)
        meter.phase(Phase.INSTALL, i + 1, len(builds), b.target.name)
