"""Planning a big file (an index over ``BIG_INDEX`` bytes) without holding its index.

``core.engine.chunkplan`` hands these files here. Their index goes to disk, never whole into
memory: assembled from the group table (docs/format.md §2.2), the records of the groups
the installed version of the file has copied from its cached index and the others fetched
by ranges, a window at a time (``core.chunks.diskindex.assemble``); or, without a table or
local version, or when most records are missing anyway, the whole ``.fidx`` streamed to
disk. Either way it is checked (``open_index``) and must have the manifest's digest before
it is used; it is kept in the index cache, where the next update finds it as the installed
file's. The file is then planned window by window against the installed version
(``core.chunks.windowplan``) into a ``BigChunkStep`` (``core.engine.bigstage``).

A manifest declaring an index its file cannot have (more records than the file length
allows) is refused before anything is fetched; a big index the server serves is written to
disk as it arrives, so a lying size costs disk up to the declared size, never memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ContentError, FormatError, HashMismatchError, HTTPStatusError, RangeError
from core.formats.layout import fidx_url
from core.formats.manifest import FileEntry, Manifest

if TYPE_CHECKING:
    from core.chunks.chunker import ChunkerParams
    from core.chunks.diskindex import DiskIndex
    from core.chunks.fidx_groups import GroupTable
    from core.chunks.planner import PlanOptions
    from core.engine.bigstage import BigChunkStep
    from core.engine.config import UpdaterConfig
    from core.engine.meter import Meter
    from core.engine.state import StateStore
    from core.net.fetcher import Fetcher
    from core.progress import CancelToken

# A .fidx over this many bytes (about 1.6 M chunks, 6.7 GB of a file at 4 KiB chunks) is
# planned from disk: the in-memory planner takes several times the index.
BIG_INDEX = 32 << 20
# Bytes one more leaf range costs (as core.engine.chunkplan.LEAF_RANGE_COST).
_LEAF_RANGE_COST = 100
_SMALLEST_CHUNK = 64  # the chunker's lowest minimum (docs/format.md §2)
# The server does not have the index (as core.engine.chunkplan.FALLBACK).
_FALLBACK = (HTTPStatusError, RangeError)


def is_big(f: FileEntry) -> bool:
    return f.fidx_size > BIG_INDEX


def check_declared(f: FileEntry, url: str) -> None:
    """Refuse an index larger than any index of the file's length can be."""
    most = 112 + 20 * (f.size // _SMALLEST_CHUNK + 1)
    if f.fidx_size > most:
        raise FormatError(f"{url}: the manifest declares a {f.fidx_size}-byte index for a "
                          f"{f.size}-byte file (at most {most})", what="fidx")


class BigPlanner:
    """The big files of one update (see the module doc)."""

    def __init__(self, config: UpdaterConfig, fetcher: Fetcher, store: StateStore,
                 meter: Meter, cancel: CancelToken,
                 fetch_pieces: Callable[[str, list[tuple[int, int]]], dict[int, bytes]]
                 ) -> None:
        self.config = config
        self.fetcher = fetcher
        self.store = store
        self.meter = meter
        self.cancel = cancel
        self.fetch_pieces = fetch_pieces

    def cache_path(self, f: FileEntry, params: ChunkerParams) -> Path:
        return self.store.index_path(f.sha256, params)

    def cached(self, f: FileEntry, params: ChunkerParams) -> DiskIndex | None:
        """The target's index, checked, when an earlier attempt left it in the cache."""
        from core.chunks.diskindex import open_index

        path = self.cache_path(f, params)
        if not path.is_file():
            return None
        try:
            got = open_index(path, self.config.max_file_size)
        except (FormatError, OSError):
            path.unlink(missing_ok=True)
            return None
        if got.fidx_sha256 != f.fidx_sha256:
            path.unlink(missing_ok=True)
            return None
        return got

    def fetch_whole(self, man: Manifest, f: FileEntry) -> DiskIndex:
        """The whole ``.fidx`` of ``f``, streamed to disk and checked. Raises
        ``HTTPStatusError``/``RangeError`` (the server does not have it),
        ``HashMismatchError``, ``FormatError``, ``DownloadError``."""
        from core.chunks.diskindex import open_index
        from core.chunks.fidx import HEADER_SIZE, parse_header
        from core.fsutil import pwrite

        cfg = self.config
        url = fidx_url(cfg.url, cfg.channel, man.version, f.path)
        check_declared(f, url)
        from core.chunks.chunker import DEFAULT_PARAMS

        tmp = self.store.index_path(f.sha256, DEFAULT_PARAMS).with_name(f"{f.sha256}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            def sink(offset: int, data: bytes) -> None:
                if offset + len(data) > f.fidx_size:
                    raise FormatError(f"{url}: more bytes than the manifest says", what="fidx")
                pwrite(fd, data, offset)

            self.fetcher.fetch_ranges(url, [(0, f.fidx_size)], sink, self.cancel)
        finally:
            os.close(fd)
        self.meter.add_metadata(f.fidx_size)
        try:
            with open(tmp, "rb") as fh:
                params = parse_header(fh.read(HEADER_SIZE), cfg.max_file_size)[0]
            got = self._accept(url, f, tmp, open_index(tmp, cfg.max_file_size), params)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return got

    def assemble(self, man: Manifest, f: FileEntry, table: GroupTable,
                 local: DiskIndex) -> DiskIndex | None:
        """The target index assembled on disk from ``local``'s groups and fetched leaves;
        None when most records are missing anyway or a fetched group does not match (the
        caller fetches the whole index). Raises ``HashMismatchError`` when the assembled
        index does not have the manifest's digest, and what fetching raises."""
        from core.chunks.diskindex import assemble, disk_groups, missing_bytes, open_index

        cfg = self.config
        groups = disk_groups(local, table.target, table.maximum)
        hit = groups.find(table.digests)
        need, ranges = missing_bytes(table, hit)
        if need + _LEAF_RANGE_COST * ranges > f.fidx_size * 3 // 4:
            return None
        url = fidx_url(cfg.url, cfg.channel, man.version, f.path)
        tmp = self.cache_path(f, table.params).with_suffix(".tmp")
        fetched = [0]

        def fetch(rs: list[tuple[int, int]]) -> dict[int, bytes]:
            got = self.fetch_pieces(url, rs)
            fetched[0] += sum(len(v) for v in got.values())
            return got

        try:
            assemble(table, local, groups, hit, tmp, fetch, url)
        except ContentError as e:
            tmp.unlink(missing_ok=True)
            self.meter.log(f"{f.path}: {e}; fetching the whole index")
            return None
        self.meter.log(f"{f.path}: index records of {ranges} changed regions "
                       f"({fetched[0]} bytes) fetched")
        try:
            return self._accept(url, f, tmp, open_index(tmp, cfg.max_file_size),
                                table.params)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _accept(self, url: str, f: FileEntry, tmp: Path, got: DiskIndex,
                params: ChunkerParams) -> DiskIndex:
        """``got`` (at ``tmp``) checked against the manifest and moved into the cache."""
        from core.chunks.diskindex import open_index

        if got.fidx_sha256 != f.fidx_sha256:
            raise HashMismatchError(f"{url}: index does not match the manifest",
                                    expected=f.fidx_sha256, actual=got.fidx_sha256, url=url)
        if got.sha256.hex() != f.sha256 or got.file_size != f.size:
            raise FormatError(f"{url}: index describes another file", what="fidx")
        final = self.cache_path(f, params)
        os.replace(tmp, final)
        return open_index(final, self.config.max_file_size)

    def local(self, path: Path | None) -> DiskIndex | None:
        """The installed version's index (a cache file), checked; None when unusable."""
        from core.chunks.diskindex import open_index

        if path is None:
            return None
        try:
            return open_index(path, self.config.max_file_size)
        except (FormatError, OSError) as e:
            self.meter.log(f"{path.name}: cached index not used ({e})")
            return None

    def drop_part(self, part: Path) -> None:
        """A big file is not resumed: what an earlier attempt left of it goes (its staged
        file must start as a hole: all-zero chunks are never written)."""
        for p in (part, part.with_suffix(".ready")):
            if p.exists():
                self.meter.log(f"{p.name}: not resumed (a file planned from disk)")
                p.unlink()

    def plan(self, man: Manifest, f: FileEntry, first: GroupTable | DiskIndex,
             installed_sha: str | None, options: PlanOptions) -> BigChunkStep | None:
        """``f``'s step: ``first`` is its group table or its whole index on disk;
        ``installed_sha`` the content of the file now at its path. None when the server
        does not have the index (the caller downloads the file whole)."""
        from core.chunks.diskindex import DiskIndex

        params = first.params
        local = None
        if installed_sha is not None:
            path = self.store.index_path(installed_sha, params)
            local = self.local(path) if path.is_file() else None
        try:
            target = first if isinstance(first, DiskIndex) else self.cached(f, params)
            if target is None and local is not None:
                assert not isinstance(first, DiskIndex)
                target = self.assemble(man, f, first, local)
            if target is None:
                target = self.fetch_whole(man, f)
        except _FALLBACK as e:
            self.meter.log(f"{f.path}: index not available ({e}); downloading the whole file")
            return None
        return self.step(f, target, local, options)

    def step(self, f: FileEntry, target: DiskIndex, local: DiskIndex | None,
             options: PlanOptions) -> BigChunkStep:
        """Plan ``f`` window by window against the installed file (``local`` its index)."""
        from core.chunks import diskindex
        from core.chunks.windowplan import plan_windows
        from core.engine.bigstage import BigChunkStep, header_only

        installed = self.config.install_dir.joinpath(*f.path.split("/"))
        plan = plan_windows(target, local, str(installed), options, diskindex.WINDOW,
                            check=self.cancel.check)
        self.meter.log(f"{f.path}: planned from its index on disk ({target.count} chunks): "
                       f"{plan.bytes_remote} bytes to fetch in {len(plan.remote)} ranges")
        return BigChunkStep(header_only(target), plan, disk=target)
