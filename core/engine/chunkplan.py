"""Planning files by chunks: fetch what a file's plan needs from the release (its index, whole
or assembled from a group table and local indexes; its compressed copy's size table; its
sub-index), scan local files, and plan each file (``core.chunks.planner``).

Everything but the file itself is optional, and each has a listed fallback for when the
server does not have it (a partial upload, a CDN miss: an HTTP error status or a range the
file does not hold; ``FALLBACK``) or, for the derived tables, when it does not match the
manifest: group table -> the whole ``.fidx`` -> the whole file (a ``WholeStep``,
checked by its SHA-256 like any other); ``.stz`` -> raw ranges (here and in
``core.engine.rebuild``); sub-index -> whole chunks; a delta -> chunks -> the whole file (the steps
``core.engine.updater`` lists in the plan, ``core.engine.plan``). A
transport failure (``NetworkError``: the server does not answer) is not a reason to try
another file of the same server, and a ``.fidx`` whose bytes do not match the manifest
stays an error: that server serves bad content.

``ChunkPlanner`` is what ``core.engine.updater`` calls for every changed file a delta does not
rebuild, and when a delta's fallback step runs (``core.engine.assemble``); it returns each file's
steps (``core.engine.plan.FileSteps``: a ``ChunkStep``, or a ``WholeStep``). Importing this module
is cheap: numpy and the chunk machinery are imported where they are used (the start-up rule
in docs/architecture.md).
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from core.chunks.wire import REQUEST_COST
from core.engine import bigplan
from core.engine.bigplan import BigPlanner, is_big
from core.engine.meter import Meter
from core.engine.plan import ChunkStep, FileSteps, IndexStep, StzWholeStep, WholeStep
from core.engine.scan import ScanResult, scan_local
from core.engine.state import InstalledState, StateStore
from core.errors import (
    ContentError,
    DownloadError,
    FormatError,
    HashMismatchError,
    HTTPStatusError,
    RangeError,
)
from core.formats.delta import available as zstd_available
from core.formats.layout import fidx_url, file_url, groups_url, sub_url
from core.formats.manifest import FileEntry, Manifest
from core.net.fetcher import Fetcher
from core.parallel import each
from core.progress import CancelToken

if TYPE_CHECKING:

    from core.chunks.chunker import ChunkerParams
    from core.chunks.diskindex import DiskIndex
    from core.chunks.fidx import FileIndex
    from core.chunks.fidx_groups import GroupTable, LocalGroups
    from core.chunks.fidx_sub import OrphanSubChunks, SubTable
    from core.chunks.planner import FilePlan, PlanOptions, SeedSet
    from core.chunks.stz import StzTable
    from core.engine.config import UpdaterConfig

T = TypeVar("T")
R = TypeVar("R")

# Bytes one more leaf range costs (multipart part headers), against fetching the whole index.
LEAF_RANGE_COST = 100
# Bytes a chunk taken as sub-chunks must save at least (the extra ranges' part headers).
SUB_RANGE_COST = 100
# A sub-index is fetched only when the chunks it may replace cost this many times more
# than it (most of a chunk is saved at best).
SUB_PAYOFF = 2
# A sub-index whose records take at most this many bytes is fetched whole, in one request.
SUB_WHOLE = 4096
# Using a sub-index means cutting the local orphan chunks again (core.chunks.fidx_sub, measured at
# 340-390 MB/s on one core); that is done only when the bytes it may save would take longer
# to download than the cut, at the network speed the planner's cost model assumes.
CUT_RATE = 350_000_000  # bytes/s
# A first install's file with a compressed copy, up to this size, is rebuilt from the copy
# fetched whole (``StzWholeStep``: held in memory while it is decoded and checked).
STZ_WHOLE_MAX = 4 << 20
NET_RATE = 10_000_000  # bytes/s (core.chunks.planner.PlanOptions.range_cost: 50 ms at 10 MB/s)


# What says "the server does not have this optional file": try the next fallback.
FALLBACK = (HTTPStatusError, RangeError)


def _has_local_files(root: Path, state: InstalledState) -> bool:
    """Whether anything local could match a group table (else the whole index is cheaper)."""
    if state.files:
        return True
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d == ".stitch")]
        if filenames:
            return True
    return False


def _packed(man: Manifest, entries: list[FileEntry]) -> frozenset[str]:
    """The release's packed files (``core.engine.packstep``) other than ``entries``: the scan
    does not read them for seeds (``scan_local``'s ``no_seeds``)."""
    planned = {f.path for f in entries}
    return frozenset(f.path for f in man.files if f.pack is not None and f.path not in planned)


def release_file_url(cfg: UpdaterConfig, man: Manifest, path: str) -> str:
    """Where the bytes of ``path`` of this release are served."""
    return file_url(cfg.url, cfg.channel, man.version, path, cfg.files_url or man.files_url)


class ChunkPlanner:
    """Plans the files of one update from chunks (see the module's docstring)."""

    def __init__(self, config: UpdaterConfig, fetcher: Fetcher, store: StateStore,
                 meter: Meter, cancel: CancelToken, options: PlanOptions | None,
                 part_path: Callable[[FileEntry], Path],
                 lstat: Callable[[str], os.stat_result | None] | None = None) -> None:
        """``lstat``: the install's files' ``os.lstat`` by relative path, cached by the
        caller (``scan_local``'s)."""
        self.config = config
        self._lstat = lstat
        self.fetcher = fetcher
        self.store = store
        self.meter = meter
        self.cancel = cancel
        self._options = options
        self._part_path = part_path

    @property
    def options(self) -> PlanOptions:
        if self._options is None:
            from core.chunks.planner import PlanOptions

            self._options = PlanOptions()
        return self._options

    def plan(self, man: Manifest, state: InstalledState, entries: list[FileEntry],
             enter_scan: bool = True, stz_whole: bool = True
             ) -> tuple[list[FileSteps], ScanResult]:
        """Fetch the indexes of ``entries``, scan local files and plan each from chunks.

        A file with a group table (and something local to match it against) gets its table
        first and its index after the scan: the records of the groups found in local
        indexes come from them, the others from byte ranges of the ``.fidx``. A file whose
        index the server does not have gets a ``WholeStep`` (the module's fallbacks).
        ``enter_scan`` False: the scan does not report its phase (a fallback step run in
        the download phase, which phases never leave backwards).

        Into an install with no file yet (a first install), a file up to ``STZ_WHOLE_MAX``
        with a compressed copy and nothing staged is planned as that copy fetched whole
        (``StzWholeStep``, then its index, then the whole file): nothing local could match
        its chunks, so its index and size table would cost two round trips for nothing.
        ``stz_whole`` False: never (the index is what the caller asks for).

        So is a ``fresh`` file of an update (``FileEntry.fresh``: the publisher found next to
        nothing of it in the previous release), up to ``STZ_WHOLE_MAX``: its compressed
        copy, or (none, or no zstd here) the whole file; its index would cost a round trip
        (and the chunk machinery's start-up) to find nothing to reuse."""
        targets: dict[str, FileIndex] = {}
        tables: dict[str, GroupTable] = {}
        local_files = _has_local_files(self.config.install_dir, state) if entries else False
        every = entries
        whole_stz, whole = self._taken_whole(entries, local_files, stz_whole)
        if whole_stz or whole:
            taken = {f.path for f in whole_stz} | {f.path for f in whole}
            entries = [f for f in entries if f.path not in taken]
        if entries:
            from core.chunks.fidx_groups import LocalGroups
            from core.chunks.fidx_sub import OrphanSubChunks
            from core.chunks.planner import plan_file
        by_table = {f.path for f in entries
                    if f.groups_size and local_files and not self._has_part(f)}

        raw: set[str] = set()  # files whose index the server does not have
        # Files too big to hold their index are planned from disk (core.engine.bigplan).
        big, big_params = self._big_first(man, entries, local_files)
        entries = [f for f in entries if f.path not in big]

        def first(f: FileEntry) -> GroupTable | FileIndex | None:
            self.cancel.check()
            if f.path in by_table:
                try:
                    return self._fetch_table(man, f)
                except (*FALLBACK, ContentError) as e:
                    self.meter.log(f"{f.path}: group table not used ({e}); fetching the "
                                   "whole index")
            return self._index_or_none(man, f)

        for f, got in zip(entries, self._each(first, entries), strict=True):
            from core.chunks.fidx_groups import GroupTable

            if got is None:
                raw.add(f.path)
            elif isinstance(got, GroupTable):
                tables[f.path] = got
            else:
                targets[f.path] = got

        scan = scan_local(self.store, state, man, targets, every, self.cancel, self.meter,
                          self._part_path,
                          frozenset(t.params for t in tables.values()) | big_params,
                          enter_phase=enter_scan, big_index=bigplan.BIG_INDEX,
                          no_seeds=_packed(man, every), lstat=self._lstat)
        local: dict[tuple[ChunkerParams, int, int], LocalGroups] = {}
        assemble = [f for f in entries if f.path in tables and f.path not in scan.unchanged]
        for f in assemble:
            table = tables[f.path]
            key = (table.params, table.target, table.maximum)
            if key not in local:
                local[key] = LocalGroups.of(
                    [(lengths, ids) for _, _, lengths, ids in scan.seeds.get(table.params, [])],
                    table.target, table.maximum)

        def assembled(f: FileEntry) -> FileIndex | None:
            table = tables[f.path]
            return self._assemble_index(man, f, table,
                                        local[(table.params, table.target, table.maximum)])

        for f, got_idx in zip(assemble, self._each(assembled, assemble), strict=True):
            if got_idx is None:
                raw.add(f.path)
            else:
                targets[f.path] = got_idx

        out: list[FileSteps] = []
        subs = None
        if entries:
            # Files the update leaves as they are hold no orphans (those it takes whole do).
            root = self.config.install_dir
            changing = ({f.path for f in (*entries, *whole_stz, *whole)}
                        - scan.unchanged)
            keep = frozenset(str(root.joinpath(*p.split("/"))) for p in man.by_path()
                             if p not in changing)
            subs = OrphanSubChunks(scan.seeds, targets, self.cancel.check, keep)
        planned = [(f, plan_file(targets[f.path], scan.seeds_for(targets[f.path].params,
                                                                 f.path), self.options))
                   for f in entries if f.path not in scan.unchanged and f.path not in raw]

        def stz_table(item: tuple[FileEntry, FilePlan]) -> StzTable | None:
            f, fplan = item
            return self._stz_table(man, f, targets[f.path]) if fplan.bytes_remote else None

        for (f, fplan), stz in zip(planned, self._each(stz_table, planned), strict=True):
            idx = targets[f.path]
            step = ChunkStep(idx, fplan, stz)
            if f.sub_size and fplan.bytes_remote and subs is not None:
                step = self._refine(man, f, step, scan.seeds_for(idx.params, f.path),
                                    subs) or step
            out.append(FileSteps(f, (step,)))
        out += [FileSteps(f, (WholeStep(),)) for f in entries
                if f.path in raw and f.path not in scan.unchanged]
        out += self._big_steps(man, [f for f in every if f.path in big], big, scan)
        out += [FileSteps(f, (StzWholeStep(f.stz_size), IndexStep(), WholeStep()))
                for f in whole_stz if f.path not in scan.unchanged]
        out += [FileSteps(f, (WholeStep(),)) for f in whole if f.path not in scan.unchanged]
        return out, scan

    def _taken_whole(self, entries: list[FileEntry], local_files: bool, stz_whole: bool
                     ) -> tuple[list[FileEntry], list[FileEntry]]:
        """The files planned whole, without their index (``plan``'s docstring): those
        taken as their compressed copy, and those taken as the file itself."""
        if not stz_whole:
            return [], []
        small = [f for f in entries if (f.fresh or not local_files) and not is_big(f)
                 and max(f.size, f.stz_size) <= STZ_WHOLE_MAX and not self._has_part(f)]
        zstd = bool(small) and zstd_available()
        return ([f for f in small if f.stz_size and zstd],
                [f for f in small if f.fresh and not (f.stz_size and zstd)])

    def _big_first(self, man: Manifest, entries: list[FileEntry], local_files: bool
                   ) -> tuple[dict[str, GroupTable | DiskIndex | None],
                                           frozenset[ChunkerParams]]:
        """Before the scan, for each big file: its group table (when there is something
        local to match), else its whole index on disk; None when the server has no index."""
        got: dict[str, GroupTable | DiskIndex | None] = {}
        for f in entries:
            if not is_big(f):
                continue
            self.cancel.check()
            got[f.path] = None
            self._big.drop_part(self._part_path(f))
            if f.groups_size and f.groups_size <= bigplan.BIG_INDEX and local_files:
                try:
                    got[f.path] = self._fetch_table(man, f)
                    continue
                except (*FALLBACK, ContentError) as e:
                    self.meter.log(f"{f.path}: group table not used ({e}); fetching the "
                                   "whole index")
            try:
                got[f.path] = self._big.fetch_whole(man, f)
            except FALLBACK as e:
                self.meter.log(f"{f.path}: index not available ({e}); downloading the "
                               "whole file")
        return got, frozenset(t.params for t in got.values() if t is not None)

    def _big_steps(self, man: Manifest, files: list[FileEntry],
                   first: dict[str, GroupTable | DiskIndex | None],
                   scan: ScanResult) -> list[FileSteps]:
        """The steps of the big files the scan did not find already right."""
        out = []
        for f in files:
            if f.path in scan.unchanged:
                continue
            have = scan.fingerprints.get(f.path)
            got = first[f.path]
            step = None if got is None else self._big.plan(
                man, f, got, have.sha256 if have is not None else None, self.options)
            out.append(FileSteps(f, (step or WholeStep(),)))
        return out

    @property
    def _big(self) -> BigPlanner:
        return BigPlanner(self.config, self.fetcher, self.store, self.meter, self.cancel,
                          self._fetch_pieces)

    def _refine(self, man: Manifest, f: FileEntry, b: ChunkStep, seeds: SeedSet,
                subs: OrphanSubChunks) -> ChunkStep | None:
        """``b`` with the chunks it downloads replaced by their sub-records (from the
        file's sub-index, ``core.chunks.fidx_sub``) where the sub-chunks found in local orphan
        chunks save bytes; None when nothing is saved. Nothing is fetched when what the
        sub-index costs could not pay off. A sub-index that does not match the manifest or
        its own table is not used (the file is built from whole chunks)."""
        import numpy as np

        from core.chunks import fidx_sub
        from core.chunks.fidx import RECORD_SIZE
        from core.chunks.planner import zero_chunks

        idx = b.index
        missing = (seeds.lookup(idx.ids, idx.lengths) < 0) & ~zero_chunks(idx.ids, idx.lengths)
        # What each chunk costs whole: compressed when the .stz has it.
        whole = (b.stz.sizes if b.stz is not None else idx.lengths).astype(np.int64)
        if int(whole[missing].sum()) < SUB_PAYOFF * (f.sub_table_size + REQUEST_COST):
            return None
        cfg = self.config
        url = sub_url(cfg.url, cfg.channel, man.version, f.path)
        try:
            small = f.sub_size - f.sub_table_size <= SUB_WHOLE
            if small:  # one request for the whole file
                data = self.fetcher.fetch(url, f.sub_size, self.cancel)
                self.meter.add_metadata(len(data))
                if len(data) != f.sub_size:
                    raise FormatError(f"{url}: sub-index is {len(data)} bytes, expected "
                                      f"{f.sub_size}", what="fidx")
                table = self._accept_sub_table(url, f, idx, data[:f.sub_table_size])
            else:
                table = self._accept_sub_table(
                    url, f, idx, self._fetch_pieces(url, [(0, f.sub_table_size)])[0])
            chunks = table.chunks.astype(np.int64)
            entries = np.flatnonzero(missing[chunks])
            records = RECORD_SIZE * int(table.counts[entries].sum(dtype=np.int64))
            promised = int(whole[chunks[entries]].sum())  # at most this much is saved
            if len(entries) == 0 or (not small and promised
                                     < SUB_PAYOFF * (records + REQUEST_COST)):
                return None
            orphans = subs.orphan_bytes(idx.params)
            if promised * CUT_RATE < orphans * NET_RATE:
                self.meter.log(f"{f.path}: sub-index not used: cutting {orphans} local bytes "
                               f"again would take longer than the {promised} bytes it may "
                               "save")
                return None
            local = subs.get(idx.params, table.params)
            if local is None:
                return None
            ranges = fidx_sub.record_ranges(table, entries)
            fetched = ({a: data[a:c] for a, c in ranges} if small
                       else self._fetch_pieces(url, ranges))
            recs = fidx_sub.take_records(table, idx, entries, fetched, url)
        except (DownloadError, ContentError) as e:
            self.meter.log(f"{f.path}: sub-index not used ({e})")
            return None
        # Per chunk: what its missing sub-chunks cost raw, against the chunk whole.
        found = local.lookup(recs.ids, recs.lengths) >= 0
        first = np.zeros(len(recs.counts), dtype=np.int64)
        np.cumsum(recs.counts[:-1], out=first[1:])
        need = np.add.reduceat(np.where(found, 0, recs.lengths).astype(np.int64), first)
        use = need + SUB_RANGE_COST < whole[recs.chunks]
        chosen = fidx_sub.choose(idx, recs, use, subs.combined(idx.params),
                                 self.options)
        if chosen is None:
            return None
        use, mixed, fplan = chosen
        better = ChunkStep(mixed.index, fplan, b.stz, whole=idx, sub=mixed.sub)
        before = b.wire_bytes()
        after = better.wire_bytes() + (REQUEST_COST if b.stz is not None else 0)
        self.meter.log(f"{f.path}: {int(use.sum())} chunks as sub-chunks: {before} -> "
                       f"{after} bytes to download")
        return better if after < before else None

    def _accept_sub_table(self, url: str, f: FileEntry, idx: FileIndex,
                          data: bytes) -> SubTable:
        from core.chunks.fidx_sub import decode_table

        actual = hashlib.sha256(data).hexdigest()
        if actual != f.sub_table_sha256:
            raise HashMismatchError(f"{url}: sub-index table does not match the manifest",
                                    expected=f.sub_table_sha256, actual=actual, url=url)
        return decode_table(data, idx, bytes.fromhex(f.fidx_sha256), f.sub_size)

    def _each(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        """Per-file fetches side by side (``core.parallel``)."""
        return each(fn, items, self.config.connections)

    def _fetch_pieces(self, url: str, ranges: list[tuple[int, int]]) -> dict[int, bytes]:
        """The bytes of ``ranges`` of ``url`` (sorted, disjoint), by range start, in one
        multi-range request. Raises ``DownloadError``."""
        bufs = {a: bytearray(b - a) for a, b in ranges}
        firsts = [a for a, _ in ranges]

        def sink(offset: int, data: bytes) -> None:
            a = firsts[max(0, bisect.bisect_right(firsts, offset) - 1)]
            buf, rel = bufs[a], offset - a
            if rel < 0 or rel + len(data) > len(buf):
                raise RangeError(f"{url}: bytes at {offset} outside the ranges asked", url=url)
            buf[rel:rel + len(data)] = data

        self.fetcher.fetch_ranges(url, ranges, sink, self.cancel)
        self.meter.add_metadata(sum(b - a for a, b in ranges))
        return {a: bytes(buf) for a, buf in bufs.items()}

    def _has_part(self, f: FileEntry) -> bool:
        pp = self._part_path(f)
        return pp.exists() or pp.with_suffix(".ready").exists()

    def _index_or_none(self, man: Manifest, f: FileEntry) -> FileIndex | None:
        """``_fetch_index``, or None (logged) when the server does not have the index."""
        try:
            return self._fetch_index(man, f)
        except FALLBACK as e:
            self.meter.log(f"{f.path}: index not available ({e}); downloading the whole file")
            return None

    def _fetch_index(self, man: Manifest, f: FileEntry) -> FileIndex:
        """The whole ``.fidx`` of ``f``, checked against the manifest."""
        cfg = self.config
        url = fidx_url(cfg.url, cfg.channel, man.version, f.path)
        data = self.fetcher.fetch(url, f.fidx_size, self.cancel)
        self.meter.add_metadata(len(data))
        return self._accept_index(url, f, data)

    def _accept_index(self, url: str, f: FileEntry, data: bytes) -> FileIndex:
        from core.chunks.fidx import decode

        if hashlib.sha256(data).hexdigest() != f.fidx_sha256:
            raise HashMismatchError(f"{url}: index does not match the manifest",
                                    expected=f.fidx_sha256, url=url)
        idx = decode(data, self.config.max_file_size)
        if idx.sha256.hex() != f.sha256 or idx.file_size != f.size:
            raise FormatError(f"{url}: index describes another file", what="fidx")
        # Cached now (content-addressed, so harmless if the update stops) rather than
        # holding the raw bytes until the commit: big files have big indexes.
        self.store.cache_index(idx, data)
        return idx

    def _fetch_table(self, man: Manifest, f: FileEntry) -> GroupTable:
        """The group table of ``f``'s index, checked against the manifest."""
        from core.chunks import fidx_groups

        cfg = self.config
        url = groups_url(cfg.url, cfg.channel, man.version, f.path)
        data = self.fetcher.fetch(url, f.groups_size, self.cancel)
        self.meter.add_metadata(len(data))
        actual = hashlib.sha256(data).hexdigest()
        if actual != f.groups_sha256:
            raise HashMismatchError(f"{url}: group table does not match the manifest",
                                    expected=f.groups_sha256, actual=actual, url=url)
        table = fidx_groups.decode(data, cfg.max_file_size)
        if (table.sha256.hex() != f.sha256 or table.file_size != f.size
                or table.fidx_size != f.fidx_size):
            raise FormatError(f"{url}: group table describes another file", what="fidx")
        return table

    def _assemble_index(self, man: Manifest, f: FileEntry, table: GroupTable,
                        local: LocalGroups) -> FileIndex | None:
        """``f``'s index from the groups ``local`` holds and the fetched records of the
        others; the whole ``.fidx`` instead when most records are missing anyway, when a
        fetched group does not match the table, or when the server refuses the ranges;
        None when it does not have the ``.fidx`` at all. The result is checked against the
        manifest's digest of the ``.fidx``. Raises ``HashMismatchError``, ``FormatError``
        or ``DownloadError``."""
        from core.chunks.fidx_groups import Assembly

        cfg = self.config
        asm = Assembly.start(table, local)
        ranges = asm.leaf_ranges()
        cost = asm.missing_bytes() + LEAF_RANGE_COST * len(ranges)
        if cost > f.fidx_size * 3 // 4:
            return self._index_or_none(man, f)
        url = fidx_url(cfg.url, cfg.channel, man.version, f.path)
        if ranges:
            try:
                pieces = self._fetch_pieces(url, ranges)
            except FALLBACK as e:
                self.meter.log(f"{f.path}: index records not fetched ({e}); fetching the "
                               "whole index")
                return self._index_or_none(man, f)
            got = sum(len(piece) for piece in pieces.values())
            try:
                for a, piece in pieces.items():
                    asm.add_leaves(a, piece, url)
            except ContentError as e:
                # Like a chunk that fails its id, asked once more: the whole index this time
                # (one plain GET, checked against the manifest), so a proxy that garbles
                # multipart answers costs bytes, not the update.
                self.meter.log(f"{f.path}: {e}; fetching the whole index")
                return self._index_or_none(man, f)
            self.meter.log(f"{f.path}: index records of {len(ranges)} changed regions "
                           f"({got} bytes) fetched")
        return self._accept_index(url, f, asm.fidx_bytes())

    def _stz_table(self, man: Manifest, f: FileEntry, idx: FileIndex) -> StzTable | None:
        """The compressed copy's size table, when the release has one and zstd is here.
        A copy that is missing or does not fit its index is ignored: raw ranges still work."""
        from core.chunks import stz

        if not f.stz_size or not stz.available():
            return None
        url = release_file_url(self.config, man, f.path) + stz.SUFFIX
        size = stz.table_size(len(idx))
        got = bytearray(size)

        def sink(offset: int, data: bytes) -> None:
            got[offset:offset + len(data)] = data

        try:
            self.fetcher.fetch_ranges(url, [(0, size)], sink, self.cancel)
            fidx_sha = bytes.fromhex(f.fidx_sha256)
            table = stz.parse_table(bytes(got), idx, fidx_sha, f.stz_size)
        except (DownloadError, FormatError) as e:
            self.meter.log(f"{f.path}: compressed copy not used ({e})")
            return None
        self.meter.add_metadata(size)
        return table
