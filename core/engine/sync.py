"""``stitch sync``: bring the files of a local folder up to date with a plain web folder of
``.fidx`` indexes, with no release manifest (bupdate's model, and apt's ``Packages.fidx``).

Owns: finding the targets a URL names (a ``.fidx``, a listing page or a text list, through
``core.formats.listing``), indexing the folder's own files with each target's chunker (cached by
``core.chunks.indexer.IndexCache``), and planning every target (``core.chunks.planner``) as a frozen
plan (``core.engine.plan``). Building is the updater's assembler (``core.engine.assemble``: local
copies and remote ranges, every chunk checked before it is written, each file into a temp file
beside its destination, verified) and replacing is ``core.engine.commit.replace_file`` (atomic, one
file at a time: there is no release to journal). Targets are all built before any is replaced, so
every local file is still what it was indexed as while it serves as a seed.

What is checked: a v2 target must match its index's whole-file SHA-256 (the index itself is
not signed: it is as trustworthy as the server it came from); a v1 target has no whole-file
digest, so every chunk's full 20-byte SHA-1 is checked as it lands and again over the
finished file, and results say ``whole_file_verified=False``.

The folder's lock (``DIR/.stitch/lock``, ``core.engine.lock``) is held from the scan of the local
files to the last replacement, so a sync never overlaps an update, verify or sync of the
same folder.

Leaves out: releases, signatures and install state (``core.engine.updater``), HTTP
(``core.net.http``), and the byte layouts (``core.chunks.fidx``, ``core.chunks.fidx_v1``).
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

from core.chunks.chunker import ChunkerParams
from core.chunks.indexer import MAX_INDEX_BYTES, IndexCache, LocalIndex, index_file, parse_any
from core.chunks.planner import PlanOptions, SeedSet, plan_file
from core.engine.assemble import Assembler
from core.engine.commit import replace_file
from core.engine.lock import DEFAULT_WAIT, acquire
from core.engine.meter import Meter
from core.engine.plan import BuildPlan, ChunkStep, FileSteps
from core.engine.rebuild import StagedFile
from core.engine.staging import BlankFile
from core.engine.state import STATE_DIR
from core.errors import FormatError, HTTPStatusError, NotEnoughSpaceError
from core.formats.listing import (
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
from core.formats.manifest import FileEntry, check_path
from core.fsutil import current_umask, file_fingerprint, inside
from core.net.fetcher import Fetcher
from core.progress import CancelToken, Phase, ProgressCallback, no_progress

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


# -- where the assembler builds and fetches -------------------------------------------------

class _Places:
    """``core.engine.assemble.Places`` for a sync: each target is built in a temp file beside its
    destination (same folder, so the replacement is a rename) and fetched from its URL."""

    def __init__(self, root: Path, targets: dict[str, Target]) -> None:
        self._root = root
        self._targets = targets
        self.temps: dict[str, Path] = {}

    def dest(self, name: str) -> Path:
        return inside(self._root, name)

    def staged(self, entry: FileEntry) -> Path:
        if entry.path not in self.temps:
            dest = self.dest(entry.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                       suffix=TEMP_SUFFIX)
            os.close(fd)
            self.temps[entry.path] = Path(tmp)
        return self.temps[entry.path]

    def url(self, entry: FileEntry) -> str:
        return self._targets[entry.path].file_url

    def installed(self, entry: FileEntry) -> Path:
        return self.dest(entry.path)

    def index_step(self, entry: FileEntry) -> ChunkStep | None:
        return None  # every target's index is fetched before planning


def _steps(t: Target, seeds: SeedSet, options: PlanOptions) -> FileSteps:
    """One target's plan: chunks (its index is all a sync has). A v1 target has no
    whole-file digest: its chunks' SHA-1 is checked instead (``ChunkStep.sha1``)."""
    li = t.index
    idx = li.index
    sha = idx.sha256.hex() if li.version == 2 else ""
    entry = FileEntry(t.name, idx.file_size, sha, "", 0)
    return FileSteps(entry, (ChunkStep(idx, plan_file(idx, seeds, options),
                                       sha1=li.sha1 if li.version == 1 else None),))


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
        from core.net.http import HttpFetcher  # only here: tests pass their own fetcher

        fetcher = HttpFetcher(connections=config.connections)
    root = config.directory
    try:
        meter.phase(Phase.CHECK, 0, 1)
        targets = discover(fetcher, config.url, config.max_file_size, cancel)
        meter.phase(Phase.CHECK, 1, 1)
        root.mkdir(parents=True, exist_ok=True)
        with acquire(root / STATE_DIR, wait=config.lock_wait, cancel=cancel,
                     on_wait=on_wait or meter.log, what="stitch run in this folder"):
            return _sync(root, targets, fetcher, meter, cancel, options or PlanOptions(),
                         config.connections)
    finally:
        if own:
            fetcher.close()


def _sync(root: Path, targets: list[Target], fetcher: Fetcher, meter: Meter,
          cancel: CancelToken, options: PlanOptions, connections: int) -> SyncResult:
    root.mkdir(parents=True, exist_ok=True)
    cache = IndexCache(root / STATE_DIR / SYNC_CACHE)
    groups = {t.index.params for t in targets}
    meter.expect(sum(t.index.index.file_size for t in targets))  # until the plan says
    local = _scan(root, groups, cache, meter, cancel)

    results: dict[str, SyncedFile] = {}
    files: list[FileSteps] = []
    sets: dict[ChunkerParams, SeedSet] = {}
    for t in targets:
        have = local.indexes.get(t.name, {}).get(t.index.params)
        if have is not None and have.same_content(t.index):
            results[t.name] = _synced(t, FileOutcome.UP_TO_DATE, 0, 0)
            continue
        if t.index.params not in sets:
            sets[t.index.params] = _seed_set(root, local, t.index.params)
        files.append(_steps(t, sets[t.index.params], options))
    plan = BuildPlan(tuple(files))
    meter.plan(sum(f.bytes_local() for f in files), sum(f.wire_bytes() for f in files))
    meter.phase(Phase.PLAN, 1, 1)

    need = sum(f.entry.size for f in files)
    free = shutil.disk_usage(root).free
    if need > free:
        raise NotEnoughSpaceError(need, free, str(root))
    by_name = {t.name: t for t in targets}
    places = _Places(root, by_name)
    asm = Assembler(plan, places, fetcher, meter, cancel, connections, ready_suffix=None)
    try:
        built = asm.run()
        cancel.check()  # the last point where a cancel leaves every file as it was
        meter.phase(Phase.INSTALL, 0, len(files))
        umask = current_umask()
        for i, (f, tmp) in enumerate(zip(files, built, strict=True)):
            dest = places.dest(f.entry.path)
            replace_file(tmp, dest, umask)
            cache.put(f.entry.path, dest.stat(), by_name[f.entry.path].index)
            meter.phase(Phase.INSTALL, i + 1, len(files), f.entry.path)
    finally:
        for tmp in places.temps.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # still there only if something failed
    for f, staged in zip(files, asm.staged, strict=True):
        retried = _retried(staged)  # (no .stz: the wire bytes are the ranges' bytes)
        results[f.entry.path] = _synced(by_name[f.entry.path], FileOutcome.UPDATED,
                                        f.bytes_local() - retried, f.wire_bytes() + retried)
    cache.prune()
    meter.phase(Phase.DONE, 1, 1)
    return SyncResult(tuple(results[t.name] for t in targets), fetcher.stats.bytes_received,
                      fetcher.stats.requests)


def _retried(s: BlankFile) -> int:
    """Bytes of local chunks that failed their check and were fetched instead."""
    return sum(e - a for a, e in s.retry_ranges) if isinstance(s, StagedFile) else 0


def _synced(t: Target, outcome: FileOutcome, local: int, remote: int) -> SyncedFile:
    return SyncedFile(t.name, outcome, t.index.version, t.index.version == 2,
                      t.index.index.file_size, local, remote, t.file_url)
