"""The update, phase by phase: check, scan, plan, download, rebuild, verify, install.

This is the one object front ends drive. ``check()`` fetches and verifies the release,
``prepare()`` scans local files and plans (nothing is downloaded yet, so a front end can show
what will happen), ``apply()`` runs the plan and commits. ``update()`` does all three.
"""

from __future__ import annotations

import bisect
import enum
import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core import delta
from core.commit import Op, commit, recover
from core.errors import (
    ContentError,
    DownloadError,
    FormatError,
    HashMismatchError,
    NotEnoughSpaceError,
    RangeError,
)
from core.fetcher import Fetcher
from core.fsutil import file_fingerprint, inside
from core.layout import fidx_url, file_url, groups_url, sub_url
from core.manifest import Delta, FileEntry, Manifest
from core.meter import Meter
from core.progress import CancelToken, Phase, ProgressCallback, no_progress
from core.scan import ScanResult, scan_local
from core.sealer import Sealer
from core.staging import BlankFile, check_digest
from core.state import InstalledFile, InstalledState, StateStore
from core.trust import TrustedRelease, verify_release

if TYPE_CHECKING:
    # The chunk machinery (numpy, the planner, indexes, compressed copies) is imported where
    # it is used: an update rebuilt from deltas, or one with nothing to do, starts without it.
    import numpy as np

    from core.chunker import ChunkerParams
    from core.fidx import FileIndex
    from core.fidx_groups import GroupTable, LocalGroups
    from core.fidx_sub import OrphanSubChunks, SubTable
    from core.planner import FilePlan, PlanOptions, SeedSet
    from core.stz import StzTable


@dataclass(frozen=True)
class UpdaterConfig:
    """Where to update from and to. Sizes in bytes."""

    url: str  # base URL of the release repository (the folder holding <channel>/)
    install_dir: Path
    channel: str = "stable"
    product: str = ""  # when set, a manifest for another product is refused
    pubkeys: tuple[str, ...] = ()  # trusted minisign public keys (base64); empty = unsigned ok
    allow_downgrade: bool = False
    max_file_size: int = 1 << 40  # ceiling for one file in a manifest (1 TiB)
    connections: int = 4  # parallel HTTP requests
    files_url: str = ""  # where file bytes live when not beside the manifest; "" = beside


class Outcome(enum.Enum):
    UPDATED = "updated"  # files were changed; the install is now the offered release
    UP_TO_DATE = "up-to-date"  # nothing to do


@dataclass(frozen=True)
class CheckResult:
    """What the server offers compared with what is installed."""

    installed_version: str | None  # None: nothing installed (first install)
    offered_version: str
    up_to_date: bool
    notes: str  # release notes from the manifest, "" if none
    files_changed: int  # added or changed files
    files_removed: int
    total_size: int  # size of the whole offered release
    signed: bool  # the manifest was signed by a trusted key
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdatePlan:
    """What ``apply()`` will do, computed before any byte is downloaded."""

    check: CheckResult
    bytes_to_download: int  # remote bytes, including coalesced gaps
    bytes_reused: int  # bytes copied from files already on disk
    bytes_needed: int  # bytes the new files need in total (download + reuse)
    disk_needed: int  # free space the update needs in the install folder's disk
    disk_free: int
    requests_estimate: int  # HTTP range requests the plan expects to make


@dataclass(frozen=True)
class UpdateResult:
    outcome: Outcome
    from_version: str | None
    to_version: str
    bytes_downloaded: int  # body bytes received from the network (all requests)
    bytes_reused: int
    files_changed: int
    files_removed: int
    requests: int
    warnings: tuple[str, ...] = field(default=())


class Updater:
    """Updates one install folder from one release repository.

    Collaborators are passed in; ``fetcher`` defaults to an ``HttpFetcher``, ``progress`` to
    a no-op and ``cancel`` to a fresh token. Raises ``StitchError`` subclasses for anything
    the release or the network did wrong and ``OSError`` for local disk problems; in every
    case the install folder holds the old release or the new one.
    """

    def __init__(
        self,
        config: UpdaterConfig,
        fetcher: Fetcher | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        options: PlanOptions | None = None,
    ) -> None:
        self.config = config
        self._own_fetcher = fetcher is None
        self._fetcher = fetcher
        self.cancel = cancel or CancelToken()
        self.meter = Meter(progress or no_progress)
        self._options = options
        self.store = StateStore(config.install_dir)
        self._check: _Checked | None = None
        self._plan: _Planned | None = None

    @property
    def options(self) -> PlanOptions:
        if self._options is None:
            from core.planner import PlanOptions

            self._options = PlanOptions()
        return self._options

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            from core.http import HttpFetcher  # only here: tests and tools pass their own

            self._fetcher = HttpFetcher(connections=self.config.connections)
        return self._fetcher

    def close(self) -> None:
        if self._own_fetcher and self._fetcher is not None:
            self._fetcher.close()

    # -- check ------------------------------------------------------------------------
    def check(self) -> CheckResult:
        if self._check is None:
            self._check = self._do_check()
        return self._check.result

    def _do_check(self) -> _Checked:
        m = self.meter
        m.phase(Phase.CHECK, 0, 3)
        recover(self.store)  # finish a commit an earlier run was interrupted in
        state = self.store.load()
        cfg = self.config
        self.cancel.check()
        trusted: TrustedRelease = verify_release(self.fetcher, cfg, state, self.cancel, m)
        manifest = trusted.manifest
        installed = state.files
        changed: list[FileEntry] = []
        for f in manifest.files:
            have = installed.get(f.path)
            if have is None or have.sha256 != f.sha256 or not self._vouched(f.path, have):
                changed.append(f)
        removed = sorted(set(installed) - {f.path for f in manifest.files})
        result = CheckResult(
            installed_version=state.version,
            offered_version=manifest.version,
            up_to_date=not changed and not removed and state.version == manifest.version,
            notes=manifest.notes,
            files_changed=len(changed),
            files_removed=len(removed),
            total_size=manifest.total_size,
            signed=trusted.key_id is not None,
            warnings=trusted.warnings,
        )
        m.phase(Phase.CHECK, 3, 3)
        return _Checked(result, trusted, state, changed, removed)

    def _vouched(self, path: str, have: InstalledFile) -> bool:
        """The state cache vouches for a file whose size, mtime and file id did not change."""
        try:
            st = os.stat(self.config.install_dir.joinpath(*path.split("/")))
        except OSError:
            return False
        return file_fingerprint(st) == (have.size, have.mtime_ns, have.ino)

    # -- prepare: fetch indexes, scan, plan -----------------------------------------------
    def prepare(self) -> UpdatePlan:
        if self._plan is None:
            self.check()
            assert self._check is not None
            self._plan = self._do_prepare(self._check)
        return self._plan.plan

    def _do_prepare(self, c: _Checked) -> _Planned:
        cfg = self.config
        man = c.trusted.manifest
        by_delta = [(f, d) for f in c.changed if (d := self._delta_for(f, c.state))]
        delta_paths = {f.path for f, _ in by_delta}
        builds, scan = self._plan_by_chunks(
            man, c.state, [f for f in c.changed if f.path not in delta_paths])
        builds += [_Build(f, None, None, None, d) for f, d in by_delta]
        self.meter.phase(Phase.PLAN, 1, 1)
        to_download = sum(b.wire_bytes() for b in builds)
        reused = sum(b.plan.bytes_local for b in builds if b.plan is not None)
        part_bytes = sum(_size_or_zero(self._part_path(b.entry)) for b in builds)
        needed = max(0, sum(b.entry.size for b in builds) - part_bytes)
        plan = UpdatePlan(
            check=c.result,
            bytes_to_download=to_download,
            bytes_reused=reused,
            bytes_needed=sum(b.entry.size for b in builds),
            disk_needed=needed,
            disk_free=_free_space(cfg.install_dir),
            requests_estimate=sum(b.plan.requests(self.options.ranges_per_request)
                                  if b.plan is not None else 1 for b in builds),
        )
        return _Planned(plan, builds, scan)

    def _plan_by_chunks(self, man: Manifest, state: InstalledState,
                        entries: list[FileEntry]) -> tuple[list[_Build], ScanResult]:
        """Fetch the indexes of ``entries``, scan local files and plan each from chunks.

        A file with a group table (and something local to match it against) gets its table
        first and its index after the scan: the records of the groups found in local
        indexes come from them, the others from byte ranges of the ``.fidx``."""
        if entries:
            from core.fidx_groups import LocalGroups
            from core.fidx_sub import OrphanSubChunks
            from core.planner import plan_file
        targets: dict[str, FileIndex] = {}
        tables: dict[str, GroupTable] = {}
        local_files = _has_local_files(self.config.install_dir, state)
        for f in entries:
            self.cancel.check()
            if f.groups_size and local_files and not self._has_part(f):
                tables[f.path] = self._fetch_table(man, f)
            else:
                targets[f.path] = self._fetch_index(man, f)

        scan = scan_local(self.store, state, man, targets, entries, self.cancel, self.meter,
                          self._part_path, frozenset(t.params for t in tables.values()))
        local: dict[tuple[ChunkerParams, int, int], LocalGroups] = {}
        for f in entries:
            table = tables.get(f.path)
            if table is None or f.path in scan.unchanged:
                continue
            key = (table.params, table.target, table.maximum)
            if key not in local:
                local[key] = LocalGroups.of(
                    [(lengths, ids) for _, _, lengths, ids in scan.seeds.get(table.params, [])],
                    table.target, table.maximum)
            targets[f.path] = self._assemble_index(man, f, table, local[key])

        builds: list[_Build] = []
        subs = None
        if entries:
            # Files the update leaves as they are hold no orphans.
            root = self.config.install_dir
            changing = {f.path for f in entries} - scan.unchanged
            keep = frozenset(str(root.joinpath(*p.split("/"))) for p in man.by_path()
                             if p not in changing)
            subs = OrphanSubChunks(scan.seeds, targets, self.cancel.check, keep)
        for f in entries:
            if f.path in scan.unchanged:
                continue
            idx = targets[f.path]
            seeds = scan.seeds_for(idx.params, f.path)
            fplan = plan_file(idx, seeds, self.options)
            stz_table = self._stz_table(man, f, idx) if fplan.bytes_remote else None
            b = _Build(f, idx, fplan, stz_table)
            if f.sub_size and fplan.bytes_remote and subs is not None:
                b = self._refine(man, b, seeds, subs) or b
            builds.append(b)
        return builds, scan

    def _refine(self, man: Manifest, b: _Build, seeds: SeedSet,
                subs: OrphanSubChunks) -> _Build | None:
        """``b`` with the chunks it downloads replaced by their sub-records (from the
        file's sub-index, ``core.fidx_sub``) where the sub-chunks found in local orphan
        chunks save bytes; None when nothing is saved. Nothing is fetched when what the
        sub-index costs could not pay off. A sub-index that does not match the manifest or
        its own table is not used (the file is built from whole chunks)."""
        import numpy as np

        from core import fidx_sub
        from core.fidx import RECORD_SIZE
        from core.planner import zero_chunks

        f, idx = b.entry, b.index
        assert idx is not None
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
                self.meter.add_network(len(data))
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
            if len(entries) == 0 or (not small and int(whole[chunks[entries]].sum())
                                     < SUB_PAYOFF * (records + REQUEST_COST)):
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
        better = _Build(f, mixed.index, fplan, b.stz, whole=idx, sub=mixed.sub)
        before = b.wire_bytes()
        after = better.wire_bytes() + (REQUEST_COST if b.stz is not None else 0)
        self.meter.log(f"{f.path}: {int(use.sum())} chunks as sub-chunks: {before} -> "
                       f"{after} bytes to download")
        return better if after < before else None

    def _accept_sub_table(self, url: str, f: FileEntry, idx: FileIndex,
                          data: bytes) -> SubTable:
        from core.fidx_sub import decode_table

        actual = hashlib.sha256(data).hexdigest()
        if actual != f.sub_table_sha256:
            raise HashMismatchError(f"{url}: sub-index table does not match the manifest",
                                    expected=f.sub_table_sha256, actual=actual, path=f.path)
        return decode_table(data, idx, bytes.fromhex(f.fidx_sha256), f.sub_size)

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
        self.meter.add_network(sum(b - a for a, b in ranges))
        return {a: bytes(buf) for a, buf in bufs.items()}

    def _has_part(self, f: FileEntry) -> bool:
        pp = self._part_path(f)
        return pp.exists() or pp.with_suffix(".ready").exists()

    def _fetch_index(self, man: Manifest, f: FileEntry) -> FileIndex:
        """The whole ``.fidx`` of ``f``, checked against the manifest."""
        cfg = self.config
        url = fidx_url(cfg.url, cfg.channel, man.version, f.path)
        data = self.fetcher.fetch(url, f.fidx_size, self.cancel)
        self.meter.add_network(len(data))
        return self._accept_index(url, f, data)

    def _accept_index(self, url: str, f: FileEntry, data: bytes) -> FileIndex:
        from core.fidx import decode

        if hashlib.sha256(data).hexdigest() != f.fidx_sha256:
            raise HashMismatchError(f"{url}: index does not match the manifest",
                                    expected=f.fidx_sha256, path=f.path)
        idx = decode(data, self.config.max_file_size)
        if idx.sha256.hex() != f.sha256 or idx.file_size != f.size:
            raise FormatError(f"{url}: index describes another file", what="fidx")
        # Cached now (content-addressed, so harmless if the update stops) rather than
        # holding the raw bytes until the commit: big files have big indexes.
        self.store.cache_index(idx, data)
        return idx

    def _fetch_table(self, man: Manifest, f: FileEntry) -> GroupTable:
        """The group table of ``f``'s index, checked against the manifest."""
        from core import fidx_groups

        cfg = self.config
        url = groups_url(cfg.url, cfg.channel, man.version, f.path)
        data = self.fetcher.fetch(url, f.groups_size, self.cancel)
        self.meter.add_network(len(data))
        actual = hashlib.sha256(data).hexdigest()
        if actual != f.groups_sha256:
            raise HashMismatchError(f"{url}: group table does not match the manifest",
                                    expected=f.groups_sha256, actual=actual, path=f.path)
        table = fidx_groups.decode(data, cfg.max_file_size)
        if (table.sha256.hex() != f.sha256 or table.file_size != f.size
                or table.fidx_size != f.fidx_size):
            raise FormatError(f"{url}: group table describes another file", what="fidx")
        return table

    def _assemble_index(self, man: Manifest, f: FileEntry, table: GroupTable,
                        local: LocalGroups) -> FileIndex:
        """``f``'s index from the groups ``local`` holds and the fetched records of the
        others; the whole ``.fidx`` instead when most records are missing anyway, or when a
        fetched group does not match the table. The result is checked against the
        manifest's digest of the ``.fidx``. Raises ``HashMismatchError``, ``FormatError``
        or ``DownloadError``."""
        from core.fidx_groups import Assembly

        cfg = self.config
        asm = Assembly.start(table, local)
        ranges = asm.leaf_ranges()
        cost = asm.missing_bytes() + LEAF_RANGE_COST * len(ranges)
        if cost > f.fidx_size * 3 // 4:
            return self._fetch_index(man, f)
        url = fidx_url(cfg.url, cfg.channel, man.version, f.path)
        if ranges:
            bufs = {a: bytearray(b - a) for a, b in ranges}
            firsts = [a for a, _ in ranges]

            def sink(offset: int, data: bytes) -> None:
                a = firsts[max(0, bisect.bisect_right(firsts, offset) - 1)]
                buf, rel = bufs[a], offset - a
                if rel < 0 or rel + len(data) > len(buf):
                    raise RangeError(f"{url}: bytes at {offset} outside the ranges asked",
                                     url=url)
                buf[rel:rel + len(data)] = data

            self.fetcher.fetch_ranges(url, ranges, sink, self.cancel)
            got = sum(len(b) for b in bufs.values())
            self.meter.add_network(got)
            try:
                for a, buf in bufs.items():
                    asm.add_leaves(a, bytes(buf), url)
            except ContentError as e:
                # Like a chunk that fails its id, asked once more: the whole index this time
                # (one plain GET, checked against the manifest), so a proxy that garbles
                # multipart answers costs bytes, not the update.
                self.meter.log(f"{f.path}: {e}; fetching the whole index")
                return self._fetch_index(man, f)
            self.meter.log(f"{f.path}: index records of {len(ranges)} changed regions "
                           f"({got} bytes) fetched")
        return self._accept_index(url, f, asm.fidx_bytes())

    def _delta_for(self, f: FileEntry, state: InstalledState) -> Delta | None:
        """The publisher's delta for this file, when the installed file is exactly its base
        (the state cache vouches for its SHA-256) and zstd is here. Then neither the index
        nor the local files are read: the delta alone rebuilds the file."""
        have = state.files.get(f.path)
        if have is None or not f.deltas or not delta.available():
            return None
        if not self._vouched(f.path, have):
            return None
        return next((d for d in f.deltas if d.from_sha256 == have.sha256 and d.size < f.size),
                    None)

    def _stz_table(self, man: Manifest, f: FileEntry, idx: FileIndex) -> StzTable | None:
        """The compressed copy's size table, when the release has one and zstd is here.
        A copy that is missing or does not fit its index is ignored: raw ranges still work."""
        from core import stz

        if not f.stz_size or not stz.available():
            return None
        url = self._file_url(man, f.path) + stz.SUFFIX
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
        self.meter.add_network(size)
        return table

    def _file_url(self, man: Manifest, path: str) -> str:
        cfg = self.config
        return file_url(cfg.url, cfg.channel, man.version, path,
                        cfg.files_url or man.files_url)

    def _part_path(self, f: FileEntry) -> Path:
        key = hashlib.sha256(f.path.encode()).hexdigest()[:24]
        return self.store.staging / f"{key}-{f.sha256[:24]}.part"

    # -- apply ------------------------------------------------------------------------
    def apply(self) -> UpdateResult:
        self.prepare()
        assert self._check is not None and self._plan is not None
        c, p = self._check, self._plan
        cfg = self.config
        if c.result.up_to_date:
            self.meter.phase(Phase.DONE, 1, 1)
            return self._result(Outcome.UP_TO_DATE, c, p)
        if p.plan.disk_needed > p.plan.disk_free:
            raise NotEnoughSpaceError(p.plan.disk_needed, p.plan.disk_free,
                                      str(cfg.install_dir))
        self._clean_stale_staging({self._part_path(b.entry).name for b in p.builds})
        staged = [self._staged(b) for b in p.builds]
        sealer = Sealer()
        try:
            for s in staged:
                s.written = sealer.track(s.fd, s.path, s.size)
            self._rebuild(p, staged, sealer)
            self._download(c, p, staged, sealer)
            self._verify(p, staged, sealer)
        finally:
            sealer.close()  # before the files: it must not touch a closed descriptor
            for s in staged:
                s.close()
            for scan in (p.scan, *p.more_scans):
                scan.close()
        self._install(c, p, staged)
        self.meter.phase(Phase.DONE, 1, 1)
        return self._result(Outcome.UPDATED, c, p)

    def update(self) -> UpdateResult:
        """Check, prepare and apply in one call."""
        return self.apply()

    def _staged(self, b: _Build) -> BlankFile:
        """The staging file ``b`` is built in: from chunks, or (a delta) in order."""
        if b.index is None or b.plan is None:
            return BlankFile(self._part_path(b.entry), b.entry.size)
        from core.rebuild import StagedFile

        return StagedFile(self._part_path(b.entry), b.index, b.plan, b.stz, b.whole, b.sub)

    def _rebuild(self, p: _Planned, staged: list[BlankFile], sealer: Sealer) -> None:
        m = self.meter
        total = sum(b.plan.bytes_local for b in p.builds if b.plan is not None)
        m.phase(Phase.REBUILD, 0, total)
        for b, s in zip(p.builds, staged, strict=True):
            if b.plan is None:
                continue  # a delta rebuilds its file in the download phase
            from core.rebuild import StagedFile

            if isinstance(s, StagedFile):
                m.current = b.entry.path
                s.copy_local(p.scan.open_seed_for(s.plan), self.cancel, m.add_local)
                if not s.remote_ranges():
                    sealer.complete(s.fd)  # hashed and synced while the others are built

    def _apply_delta(self, man: Manifest, b: _Build, s: BlankFile, sealer: Sealer) -> bool:
        """Rebuild ``s`` from the publisher's delta, decoded as it arrives; False (after
        logging why) when the delta cannot be used, so the caller falls back to chunks.

        The delta is decoded before its last byte (hence its digest) is known: the output
        goes to the staging file only, is bounded by the file's size (``delta.Decoder``),
        and is used only if the delta's SHA-256 and then the output's match the manifest.
        """
        assert b.delta is not None
        d = b.delta
        url = self._file_url(man, delta.name_for(b.entry.path, d.from_sha256))
        old = self.config.install_dir.joinpath(*b.entry.path.split("/"))
        decoder = delta.Decoder(old, b.entry.size, s.write_at)
        digest = hashlib.sha256()
        got = 0

        def sink(offset: int, data: bytes) -> None:
            nonlocal got
            if offset != got:
                raise FormatError(f"{url}: delta bytes arrived out of order", what="delta")
            digest.update(data)
            decoder.feed(data)
            got += len(data)
            self.meter.add_network(len(data))

        try:
            self.fetcher.fetch_ranges(url, [(0, d.size)], sink, self.cancel)
            if got != d.size or digest.hexdigest() != d.sha256:
                raise HashMismatchError(f"{url}: delta does not match the manifest",
                                        expected=d.sha256, path=b.entry.path)
            decoder.finish()
            sealer.complete(s.fd)
            actual = sealer.result(s.fd, self.cancel, durable=False)  # the tail only
            if actual != b.entry.sha256:
                raise HashMismatchError(f"{url}: delta rebuilds another file",
                                        expected=b.entry.sha256, actual=actual,
                                        path=b.entry.path)
        except (DownloadError, ContentError) as e:
            self.meter.log(f"{b.entry.path}: delta not used ({e}); using chunks")
            return False
        finally:
            decoder.close()  # the dictionary (a copy of the old file) goes now
        self.meter.log(f"{b.entry.path}: rebuilt from a {d.size}-byte delta")
        return True

    def _download(self, c: _Checked, p: _Planned, staged: list[BlankFile],
                  sealer: Sealer) -> None:
        m = self.meter
        man = c.trusted.manifest
        m.phase(Phase.DOWNLOAD, 0, sum(b.wire_bytes() for b in p.builds))
        for i, b in enumerate(p.builds):
            s = staged[i]
            fell_back = False
            if b.delta is not None:
                m.current = b.entry.path
                if self._apply_delta(man, b, s, sealer):
                    continue
                # The delta failed: build this file from chunks after all.
                sealer.forget(s.fd)
                s.reset()  # drop what a bad delta wrote: the plan counts on zeros
                s.close()
                more, scan = self._plan_by_chunks(man, c.state, [b.entry])
                p.more_scans.append(scan)
                b = p.builds[i] = more[0]
                assert b.index is not None and b.plan is not None
                s = staged[i] = self._staged(b)
                s.written = sealer.track(s.fd, s.path, s.size)
                fell_back = True
            from core import stz
            from core.rebuild import StagedFile

            assert isinstance(s, StagedFile) and b.plan is not None
            if fell_back:  # the local chunks of a file whose delta failed are copied now
                s.copy_local(p.more_scans[-1].open_seed_for(b.plan), self.cancel,
                             m.add_local)
            ranges = s.remote_ranges()
            if ranges:
                m.current = b.entry.path
                url = self._file_url(man, b.entry.path)
                how = "compressed" if s.stz is not None else "raw"
                m.log(f"{b.entry.path}: {len(ranges)} ranges, {s.wire_bytes()} bytes {how}")
                s.download(self.fetcher, url, self.cancel, m.add_network,
                           url + stz.SUFFIX if s.stz is not None else "")
            sealer.complete(s.fd)

    def _verify(self, p: _Planned, staged: list[BlankFile], sealer: Sealer) -> None:
        """Wait for each file's SHA-256 (hashed on the sealer's thread while it was
        written, so mostly done) and fsync, compare, and mark it ready."""
        m = self.meter
        m.phase(Phase.VERIFY, 0, sum(b.entry.size for b in p.builds))
        for b, s in zip(p.builds, staged, strict=True):
            m.current = b.entry.path
            actual = sealer.result(s.fd, self.cancel, m.add_done)
            sealer.forget(s.fd)
            s.close()
            check_digest(s.path, b.entry.sha256, actual)
            os.replace(s.path, s.path.with_suffix(".ready"))

    def _install(self, c: _Checked, p: _Planned, staged: list[BlankFile]) -> None:
        m = self.meter
        man = c.trusted.manifest
        self.cancel.check()  # the last point where cancel leaves the old release in place
        ops: list[Op] = []
        for i, (b, s) in enumerate(zip(p.builds, staged, strict=True)):
            dest = self.config.install_dir.joinpath(*b.entry.path.split("/"))
            ops.append(Op(b.entry.path, f"staging/{s.path.with_suffix('.ready').name}",
                          b.entry.executable, os.path.lexists(dest), f"backup/{i}"))
        for j, path in enumerate(c.removed):
            dest = self.config.install_dir.joinpath(*path.split("/"))
            ops.append(Op(path, None, False, os.path.lexists(dest), f"backup/r{j}"))
        # Executable bits of unchanged files are part of the release too.
        built = {b.entry.path for b in p.builds}
        root = self.config.install_dir
        for f in man.files:
            if f.path not in built and not _executable_as(root, f.path, f.executable):
                _set_executable(inside(root, f.path), f.executable)
        state = InstalledState(
            product=man.product, channel=man.channel, version=man.version,
            files={k: v for k, v in p.scan.fingerprints.items() if k in man.by_path()},
            pinned_keys=c.trusted.pinned_keys,
        )
        for path in c.removed:
            state.files.pop(path, None)
        for b in p.builds:
            state.files[b.entry.path] = InstalledFile(b.entry.sha256, 0, 0, 0)
        m.phase(Phase.INSTALL, 0, len(ops))
        commit(self.store, ops, state, c.trusted.manifest_bytes, c.trusted.signature,
               lambda i, path: m.phase(Phase.INSTALL, i, len(ops), path),
               lambda report: m.log(report.message()))
        self.store.prune_index_cache({f.sha256 for f in man.files})
        self.store.clear_staging()

    def _clean_stale_staging(self, keep: set[str]) -> None:
        """Staging never grows: drop what belongs to no file of this update."""
        if self.store.staging.is_dir():
            for p in self.store.staging.iterdir():
                if p.name not in keep:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)

    def _result(self, outcome: Outcome, c: _Checked, p: _Planned) -> UpdateResult:
        if outcome is Outcome.UP_TO_DATE and p.scan.fingerprints_changed:
            # Files re-read during the scan proved unchanged: remember their fingerprints.
            state = c.state
            paths = c.trusted.manifest.by_path()
            state.files.update({k: v for k, v in p.scan.fingerprints.items() if k in paths})
            self.store.save(state)
        stats = self.fetcher.stats if self._fetcher is not None else None
        return UpdateResult(
            outcome=outcome,
            from_version=c.result.installed_version,
            to_version=c.result.offered_version,
            bytes_downloaded=stats.bytes_received if stats else 0,
            bytes_reused=self.meter.bytes_local,
            files_changed=len(p.builds),
            files_removed=len(c.removed) if outcome is Outcome.UPDATED else 0,
            requests=stats.requests if stats else 0,
            warnings=c.result.warnings,
        )


@dataclass
class _Checked:
    result: CheckResult
    trusted: TrustedRelease
    state: InstalledState
    changed: list[FileEntry]
    removed: list[str]


@dataclass
class _Build:
    entry: FileEntry
    index: FileIndex | None  # None when a delta rebuilds the file (its index is not fetched)
    plan: FilePlan | None
    stz: StzTable | None = None
    delta: Delta | None = None  # the publisher's delta, when it applies and is cheaper
    # When ``index`` is mixed (core.fidx_sub): the published index, and its chunks replaced
    # by sub-records.
    whole: FileIndex | None = None
    sub: np.ndarray | None = None

    def wire_bytes(self) -> int:
        """Bytes the planned remote ranges take on the network (compressed when possible),
        or the delta's size when the file is rebuilt from one."""
        if self.delta is not None:
            return self.delta.size
        assert self.plan is not None and self.index is not None
        ranges = [(int(a), int(b)) for a, b in self.plan.remote.tolist()]
        from core.rebuild import wire_bytes

        whole = self.index if self.whole is None else self.whole
        return wire_bytes(ranges, self.stz, whole.offsets(), self.sub)


@dataclass
class _Planned:
    plan: UpdatePlan
    builds: list[_Build]
    scan: ScanResult
    more_scans: list[ScanResult] = field(default_factory=list)  # from delta fall-backs


# Bytes one more leaf range costs (multipart part headers), against fetching the whole index.
LEAF_RANGE_COST = 100
# Bytes a chunk taken as sub-chunks must save at least (the extra ranges' part headers).
SUB_RANGE_COST = 100
# Bytes one more request costs (response headers).
REQUEST_COST = 400
# A sub-index is fetched only when the chunks it may replace cost this many times more
# than it (most of a chunk is saved at best).
SUB_PAYOFF = 2
# A sub-index whose records take at most this many bytes is fetched whole, in one request.
SUB_WHOLE = 4096


def _has_local_files(root: Path, state: InstalledState) -> bool:
    """Whether anything local could match a group table (else the whole index is cheaper)."""
    if state.files:
        return True
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d == ".stitch")]
        if filenames:
            return True
    return False


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _free_space(path: Path) -> int:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return shutil.disk_usage(p).free


def _executable_as(root: Path, rel: str, executable: bool) -> bool:
    """Whether the file at ``rel`` is a regular file whose executable bits are already as
    the release says (then nothing is written, and the symlink-safe walk of ``inside``,
    a few ms per hundred files, is not needed). Windows has no such bits."""
    if os.name == "nt":
        return True
    try:
        mode = os.lstat(root.joinpath(*rel.split("/"))).st_mode
    except OSError:
        return False
    bits = mode & 0o111
    return stat.S_ISREG(mode) and bits == (0o111 if executable else 0)


def _set_executable(path: Path, executable: bool) -> None:
    try:
        mode = path.lstat().st_mode
    except OSError:
        return
    if stat.S_ISLNK(mode):
        return  # chmod would follow the link, possibly out of the install
    want = mode | 0o111 if executable else mode & ~0o111
    if want != mode and os.name != "nt":
        os.chmod(path, want)
