"""The update as a pipeline of values: check -> plan -> assemble -> commit.

This is the one object front ends drive. ``check()`` fetches and verifies the release
(``core.engine.trust``) into a ``CheckResult``; ``prepare()`` scans local files and plans
(``core.engine.chunkplan``): the frozen ``BuildPlan`` (``core.engine.plan``), every changed file
with its steps and their fallbacks, and the ``UpdatePlan`` a front end shows, computed from it
(nothing is downloaded yet); ``apply()`` has the assembler (``core.engine.assemble``) run the plan
into verified staged files and commits them (``core.engine.commit``). ``update()`` does all three.
Result types live in ``core.engine.results`` and are importable from here.

Each of the three holds the install's lock (``core.engine.lock``) while it runs, so two runs never
read or write one install at once; ``update()`` holds it from the check to the end of the
commit. Between calls (the window waiting for the player's click) the lock is free: each
call compares the install's state (``state.json``, the journal, the staging folder) with
what the check saw, and checks and plans again, under the lock, if another run changed it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.engine.commit import Op, commit, recover, set_executable_bits
from core.engine.config import UpdaterConfig as UpdaterConfig  # front ends import it from here too
from core.engine.deltapath import cheaper
from core.engine.early import EarlyPointer, make_fetcher
from core.engine.lock import InstallLock, acquire, acquire_existing
from core.engine.meter import Meter
from core.engine.packahead import PackAhead, fetch_ahead
from core.engine.packstep import PackStep, pack_step
from core.engine.plan import BuildPlan, ChunkStep, DeltaStep, FileSteps, IndexStep, WholeStep
from core.engine.results import CheckResult as CheckResult  # front ends import them from here
from core.engine.results import Outcome as Outcome
from core.engine.results import UpdatePlan as UpdatePlan
from core.engine.results import UpdateResult as UpdateResult
from core.engine.scan import ScanResult
from core.engine.state import InstalledFile, InstalledState, StateStore
from core.engine.trust import TrustedRelease, verify_release
from core.errors import NotEnoughSpaceError
from core.formats.layout import pack_url
from core.formats.manifest import FileEntry, Manifest
from core.fsutil import allocated_bytes, file_fingerprint, free_space
from core.net.fetcher import Fetcher
from core.parallel import join
from core.progress import CancelToken, Phase, ProgressCallback, no_progress

if TYPE_CHECKING:
    # The chunk machinery (numpy, the planner, indexes, compressed copies) is imported where
    # it is used: an update rebuilt from deltas, or one with nothing to do, starts without it.
    from core.chunks.planner import FilePlan, PlanOptions


class Updater:
    """Updates one install folder from one release repository.

    Collaborators are passed in; ``fetcher`` defaults to an ``HttpFetcher`` (``early``'s,
    when the front end asked for the pointer already: ``core.engine.early``), ``progress`` to
    a no-op and ``cancel`` to a fresh token. Raises ``StitchError`` subclasses for anything
    the release or the network did wrong (``InstallBusyError`` when another run held the
    install for longer than ``config.lock_wait``) and ``OSError`` for local disk problems; in
    every case the install folder holds the old release or the new one. ``on_wait`` gets the
    one line said while waiting for another run (default: the progress log).
    """

    def __init__(
        self,
        config: UpdaterConfig,
        fetcher: Fetcher | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        options: PlanOptions | None = None,
        on_wait: Callable[[str], None] | None = None,
        early: EarlyPointer | None = None,
    ) -> None:
        if early is not None and (fetcher is not None or not early.serves(config)):
            raise ValueError("an early pointer brings the run's fetcher, for this config")
        self.config = config
        self._on_wait = on_wait
        self._lock: InstallLock | None = None
        self._own_fetcher = fetcher is None
        self._fetcher = fetcher if early is None else early.fetcher
        self._early = early  # the first check's pointer, asked for already
        self._ahead_wanted = False  # _run_plan: the plan made now is run at once
        self._ahead: PackAhead | None = None  # the pack's ranges, asked for while planning
        self.cancel = cancel or CancelToken()
        self.meter = Meter(progress or no_progress)
        self._options = options
        self.store = StateStore(config.install_dir)
        self._check: _Checked | None = None
        self._plan: _Planned | None = None
        self._parts: dict[tuple[str, str], Path] = {}  # _part_path
        self._vouches: dict[tuple[str, InstalledFile], bool] = {}  # _vouched, this check's
        self._lstats: dict[str, os.stat_result | None] = {}  # _lstat, this check's

    @property
    def options(self) -> PlanOptions:
        if self._options is None:
            from core.chunks.planner import PlanOptions

            self._options = PlanOptions()
        return self._options

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:  # (tests and tools pass their own)
            self._fetcher = make_fetcher(self.config)
        return self._fetcher

    def close(self) -> None:
        if self._own_fetcher and self._fetcher is not None:
            self._fetcher.close()

    # -- the install's lock -------------------------------------------------------------
    @contextlib.contextmanager
    def _hold(self, create: bool) -> Iterator[None]:
        """Hold the install's lock for the body (nested calls: held once, by the outermost
        that took it), and first drop what was checked and planned if another run changed
        the install since.

        ``create`` False (the check): an install with no ``.stitch/`` yet is not locked,
        and nothing is created (there is nothing to read, and a check writes nothing); the
        steps that write (planning caches indexes, applying) take it with ``create``,
        making ``.stitch/`` then."""
        if self._lock is not None:
            yield
            return
        say = self._on_wait or self.meter.log

        def waiting(line: str) -> None:
            self._early = None  # a pointer asked for before waiting for another run: ask again
            say(line)

        lock = (acquire if create else acquire_existing)(
            self.store.root, wait=self.config.lock_wait, cancel=self.cancel,
            on_wait=waiting)
        self._lock = lock
        try:
            self._revalidate()
            yield
        finally:
            self._lock = None
            if lock is not None:
                lock.release()

    def _revalidate(self) -> None:
        """Forget the check and plan if the install is no longer what they were made from
        (another run committed, recovered, verified or used the staging folder meanwhile)."""
        if self._check is None or self._check.token == self.store.token():
            return
        self.meter.log("the install changed since the check (another run): checking again")
        self._check = None
        self._plan = None

    # -- check ------------------------------------------------------------------------
    def check(self) -> CheckResult:
        with self._hold(create=False):
            if self._check is None:
                self._check = self._do_check()
            return self._check.result

    def _do_check(self) -> _Checked:
        m = self.meter
        self._vouches.clear()  # (a check looks again)
        self._lstats.clear()
        m.phase(Phase.CHECK, 0, 3)
        recover(self.store)  # finish a commit an earlier run was interrupted in
        token = self.store.token()
        state = self.store.load()
        cfg = self.config
        self.cancel.check()
        local = self.store.installed_release() if state.version is not None else None
        fetcher = self.fetcher
        new = [False]  # another release than the installed one: its manifest is fetched
        decided = threading.Event()
        warm = threading.Thread(target=self._warm, args=(state, new, decided),
                                name="stitch-warm", daemon=True)
        warm.start()

        def fetching() -> None:
            new[0] = True
            decided.set()

        early, self._early = self._early, None  # (a check after this one asks again)
        try:
            trusted: TrustedRelease = verify_release(
                fetcher, cfg, state, self.cancel, m, local, fetching,
                early.take if early is not None else None)
        finally:
            decided.set()
            join(warm)  # (before ``_vouches`` is read)
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
        return _Checked(result, trusted, state, changed, removed, token)

    def _warm(self, state: InstalledState, new: list[bool], decided: threading.Event
              ) -> None:
        """What the check does while it waits for the network (where the main thread has
        nothing to do): load the signature check's module, ask the state cache about every
        installed file (``_vouched``, thousands of them: one stat each), and, once the
        pointer names another release (``new[0]``, said before ``decided`` is set: its
        manifest is on its way), load the modules the plan and the assembler use. A check
        that finds the release installed (``decided`` alone: a launcher's every start) loads
        none of those. Only preparation: whatever fails here fails again, and is reported,
        where it is used."""
        try:
            import core.formats.signing

            for path, have in list(state.files.items()):
                if self.cancel.cancelled:
                    return
                self._vouched(path, have)
            decided.wait()  # (set by the check when it returns, at the latest)
            if new[0]:
                import core.engine.assemble
                import core.engine.deltasource  # noqa: F401
                from core.formats import delta

                delta.available()  # (zstandard)
        except Exception:  # (see the docstring)
            pass

    def _vouched(self, path: str, have: InstalledFile) -> bool:
        """The state cache vouches for a file whose size, mtime and file id did not change
        (asked again while planning: answered from what this check found)."""
        key = (path, have)
        got = self._vouches.get(key)
        if got is None:
            st = self._lstat(path)
            if st is not None and stat.S_ISLNK(st.st_mode):
                try:  # (followed, as ever: the commit replaces the link, never its target)
                    st = os.stat(self._abs(path))
                except OSError:
                    st = None
            got = st is not None and file_fingerprint(st) == (have.size, have.mtime_ns,
                                                              have.ino)
            self._vouches[key] = got
        return got

    def _lstat(self, path: str) -> os.stat_result | None:
        """``os.lstat`` of the install's ``path`` (None: nothing there), once per check:
        the check's thread asks for every installed file while it waits for the network,
        and the scan of the plan finds them here."""
        try:
            return self._lstats[path]
        except KeyError:
            pass
        try:
            st: os.stat_result | None = os.lstat(self._abs(path))
        except OSError:
            st = None
        self._lstats[path] = st
        return st

    def _abs(self, path: str) -> str:
        return os.path.join(str(self.config.install_dir), path.replace("/", os.sep))

    # -- prepare: fetch indexes, scan, plan -----------------------------------------------
    def prepare(self) -> UpdatePlan:
        with self._hold(create=False):
            self.check()
            with self._hold(create=True):  # planning writes .stitch/ (the index cache)
                if self._plan is None:
                    self.check()  # again, if the install changed since
                    assert self._check is not None
                    self._plan = self._do_prepare(self._check)
                return self._plan.plan

    def build_plan(self) -> BuildPlan:
        """The frozen plan ``apply()`` runs (``core.engine.plan``): every changed file with its
        steps, fallbacks included. ``prepare()`` first if not yet done."""
        self.prepare()
        assert self._plan is not None
        return self._plan.work

    def _do_prepare(self, c: _Checked) -> _Planned:
        """The frozen plan (``core.engine.plan``): a file with a direct delta from the
        installed file lists the delta, then chunks from its index (fetched only if the delta
        fails), then the whole file; the others are planned from chunks now, preceded by a
        chain of deltas (``core.engine.deltasource``) where one costs less. The player's
        ``UpdatePlan`` is its summary."""
        man = c.trusted.manifest
        # Until the plan says, the overall work is at most every changed file written.
        self.meter.expect(sum(f.size for f in c.changed))
        from core.engine import deltasource  # (imported while the check waited: _warm)

        steps = deltasource.plan(self.config, self.fetcher, self.cancel, self.meter, man,
                                 len(c.trusted.manifest_bytes), c.state, c.changed,
                                 self._vouched)
        direct = {p: d for p, d in steps.items() if len(d.hops) == 1}
        packed = self._packed(c, direct)
        if self._ahead is not None:  # (planned again: the install changed meanwhile)
            self._ahead.stop()
            self._ahead = None
        if self._ahead_wanted:
            self._ahead = fetch_ahead(self.fetcher, [fs.steps[0] for fs in packed.values()],
                                      self.cancel)
        rest = [f for f in c.changed if f.path not in packed]
        by_chunks, scan = self._plan_by_chunks(
            man, c.state, [f for f in rest if f.path not in direct])
        files = [*(self._or_chain(fs, steps.get(fs.entry.path)) for fs in by_chunks),
                 *(FileSteps(f, (direct[f.path], IndexStep(), WholeStep()))
                   for f in rest if f.path in direct), *packed.values()]
        work = BuildPlan(tuple(files))
        plan = self._summary(c, work)
        self.meter.plan(plan.bytes_reused, plan.bytes_to_download)
        self.meter.phase(Phase.PLAN, 1, 1)
        return _Planned(plan, work, scan)

    def _packed(self, c: _Checked, direct: dict[str, DeltaStep]) -> dict[str, FileSteps]:
        """The changed files taken from the release's pack (``core.engine.packstep``), by
        path: the pack's copy of the direct delta from the installed file (``direct``; a
        file over the pack's size may have its small deltas alone packed), then that delta
        alone, or the pack's content; then the file's index, then the whole file."""
        man = c.trusted.manifest
        url = self._pack_url(man)
        out: dict[str, FileSteps] = {}
        for f in c.changed:
            own = direct.get(f.path) if f.pack is not None or f.pack_deltas else None
            step = pack_step(f, url, own.hops[0].delta if own is not None else None)
            if step is not None:
                alone = (own,) if own is not None and step.delta is not None else ()
                out[f.path] = FileSteps(f, (step, *alone, IndexStep(), WholeStep()))
        return out

    def _pack_url(self, man: Manifest) -> str:
        """Where the release's pack is served ("" when it has none)."""
        if man.pack is None:
            return ""
        return pack_url(self.config.url, self.config.channel, man.version)

    def _summary(self, c: _Checked, work: BuildPlan) -> UpdatePlan:
        """What the player sees of ``work``: its first steps' figures."""
        files = work.files
        # Staged files are sparse: what an earlier attempt wrote is their allocated blocks,
        # not their size (a 151 MB .part may hold 3 MB).
        try:  # (one listing: most updates start with nothing staged, thousands of files)
            staged = set(os.listdir(self.store.staging))
        except OSError:
            staged = set()
        part_bytes = sum(allocated_bytes(self._part_path(f.entry), f.entry.size) for f in files
                         if staged and self._part_path(f.entry).name in staged)
        # (The planner's options only when something is built from chunks: its module
        # loads numpy, which an update by deltas alone never needs.)
        chunks = any(f.chunks is not None for f in files)
        holes = 0  # all-zero chunks stay holes in the staged files (never written)
        parts: set[str] = set()
        if chunks:
            from core.chunks.planner import ZERO_SEED

            holes = sum(_copied_from(f.chunks.plan, {ZERO_SEED}) for f in files
                        if f.chunks is not None)
            parts = {str(self._part_path(f.entry)) for f in files}
        per_request = self.options.ranges_per_request if chunks else 1
        return UpdatePlan(
            check=c.result,
            bytes_to_download=sum(f.wire_bytes() for f in files),
            bytes_reused=sum(f.bytes_local() for f in files),
            bytes_needed=sum(f.entry.size for f in files),
            disk_needed=max(0, sum(f.entry.size for f in files) - part_bytes - holes)
            + sum(f.scratch_bytes() for f in files),
            disk_free=free_space(self.config.install_dir),
            requests_estimate=sum(f.requests(per_request) for f in files)
            + any(isinstance(f.first, PackStep) for f in files),  # the pack's (shared)
            bytes_resumed=sum(_copied_from(f.chunks.plan, parts) for f in files
                              if f.chunks is not None),
        )

    def _plan_by_chunks(self, man: Manifest, state: InstalledState, entries: list[FileEntry],
                        enter_scan: bool = True, stz_whole: bool = True
                        ) -> tuple[list[FileSteps], ScanResult]:
        """Plan ``entries`` from chunks (``core.engine.chunkplan``)."""
        # (The planner makes the default options itself when it needs them: they load numpy.)
        from core.engine.chunkplan import ChunkPlanner

        planner = ChunkPlanner(self.config, self.fetcher, self.store, self.meter, self.cancel,
                               self._options, self._part_path, self._lstat)
        return planner.plan(man, state, entries, enter_scan, stz_whole)

    def _or_chain(self, fs: FileSteps, chain: DeltaStep | None) -> FileSteps:
        """``fs`` (planned from chunks), preceded by a chain of deltas when the chain costs
        less by the planner's cost model (``core.engine.deltapath.cheaper``); the chunks then
        are its fallback, already planned."""
        if chain is None:
            return fs
        per_request = self.options.ranges_per_request if fs.chunks is not None else 1
        if not cheaper(chain.hops, fs.wire_bytes(), fs.requests(per_request)):
            return fs
        return FileSteps(fs.entry, (chain, *fs.steps))

    def _part_path(self, f: FileEntry) -> Path:
        # Asked several times per file (scan, plan, summary, staging): made once.
        got = self._parts.get((f.path, f.sha256))
        if got is None:
            key = hashlib.sha256(f.path.encode()).hexdigest()[:24]
            got = self._parts[(f.path, f.sha256)] = \
                self.store.staging / f"{key}-{f.sha256[:24]}.part"
        return got

    # -- apply ------------------------------------------------------------------------
    def apply(self) -> UpdateResult:
        """Run the plan and commit, holding the install's lock from the check (or, after a
        separate ``prepare()``, from re-validating it) to the end of the commit."""
        with self._hold(create=False):
            self.check()
            with self._hold(create=True):  # a first install makes .stitch/ only now
                return self._apply()

    def _apply(self) -> UpdateResult:
        result = self._run_plan()
        assert self._check is not None
        self._check.token = self.store.token()  # our own commit leaves the check current
        return result

    def _run_plan(self) -> UpdateResult:
        # A plan made here is run at once: the pack's ranges may be asked for as soon as
        # they are known (core.engine.packahead), not after the rest of the plan and the
        # assembler's set-up. (A plan ``prepare()`` made for the player to see is not.)
        self._ahead_wanted = self._plan is None
        try:
            self.prepare()
        finally:
            self._ahead_wanted = False
        ahead, self._ahead = self._ahead, None
        try:
            return self._run_prepared(ahead)
        finally:
            if ahead is not None:
                ahead.stop()

    def _run_prepared(self, ahead: PackAhead | None) -> UpdateResult:
        assert self._check is not None and self._plan is not None
        c, p = self._check, self._plan
        cfg = self.config
        if c.result.up_to_date:
            self.meter.phase(Phase.DONE, 1, 1)
            return self._result(Outcome.UP_TO_DATE, c, p)
        if p.plan.disk_needed > p.plan.disk_free:
            raise NotEnoughSpaceError(p.plan.disk_needed, p.plan.disk_free,
                                      str(cfg.install_dir))
        self._clean_stale_staging({self._part_path(f.entry).name for f in p.work.files})
        places = _Places(self, c)
        from core.engine.assemble import Assembler

        ready = Assembler(p.work, places, ahead or self.fetcher, self.meter, self.cancel,
                          cfg.connections).run()
        self._install(c, p, ready)
        self.meter.phase(Phase.DONE, 1, 1)
        return self._result(Outcome.UPDATED, c, p)

    def update(self) -> UpdateResult:
        """Check, prepare and apply in one call."""
        return self.apply()

    def _install(self, c: _Checked, p: _Planned, ready: list[Path]) -> None:
        m = self.meter
        man = c.trusted.manifest
        self.cancel.check()  # the last point where cancel leaves the old release in place
        ops: list[Op] = []
        root = os.path.join(str(self.config.install_dir), "")
        for fs, staged in zip(p.work.files, ready, strict=True):
            ops.append(Op(fs.entry.path, f"staging/{staged.name}", fs.entry.executable,
                          os.path.lexists(root + fs.entry.path.replace("/", os.sep))))
        for path in c.removed:
            ops.append(Op(path, None, False, os.path.lexists(root + path.replace("/", os.sep))))
        # Executable bits of unchanged files are part of the release too.
        built = {fs.entry.path for fs in p.work.files}
        paths = man.by_path()
        set_executable_bits(self.config.install_dir,
                            [(f.path, f.executable) for f in man.files if f.path not in built])
        state = InstalledState(
            product=man.product, channel=man.channel, version=man.version,
            files={k: v for k, v in p.scan.fingerprints.items() if k in paths},
            pinned_keys=c.trusted.pinned_keys,
        )
        for path in c.removed:
            state.files.pop(path, None)
        for fs in p.work.files:
            state.files[fs.entry.path] = InstalledFile(fs.entry.sha256, 0, 0, 0)
        m.phase(Phase.INSTALL, 0, len(ops))
        commit(self.store, ops, state, c.trusted.manifest_bytes, c.trusted.signature,
               m.step_to, lambda report: m.log(report.message()))
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
        if outcome is Outcome.UP_TO_DATE and (
                p.scan.fingerprints_changed or c.state.pinned_keys != c.trusted.pinned_keys):
            # Files re-read during the scan proved unchanged: remember their fingerprints;
            # and the key the release verified with (given now with --pubkey, say).
            state = c.state
            paths = c.trusted.manifest.by_path()
            state.files.update({k: v for k, v in p.scan.fingerprints.items() if k in paths})
            state.pinned_keys = list(c.trusted.pinned_keys)
            self.store.save(state)
        stats = self.fetcher.stats if self._fetcher is not None else None
        return UpdateResult(
            outcome=outcome,
            from_version=c.result.installed_version,
            to_version=c.result.offered_version,
            bytes_downloaded=stats.bytes_received if stats else 0,
            bytes_reused=self.meter.bytes_local,
            files_changed=len(p.work.files),
            files_removed=len(c.removed) if outcome is Outcome.UPDATED else 0,
            requests=stats.requests if stats else 0,
            warnings=c.result.warnings,
            bytes_resumed=p.plan.bytes_resumed if outcome is Outcome.UPDATED else 0,
            bytes_content=self.meter.download_done,
        )


@dataclass
class _Checked:
    result: CheckResult
    trusted: TrustedRelease
    state: InstalledState
    changed: list[FileEntry]
    removed: list[str]
    token: bytes  # StateStore.token() when checked: the install as the check saw it


@dataclass(frozen=True)
class _Planned:
    plan: UpdatePlan  # what the player sees: computed from ``work``
    work: BuildPlan  # the frozen plan the assembler runs
    scan: ScanResult


class _Places:
    """Where an update's files are staged and fetched from (``core.engine.assemble.Places``)."""

    def __init__(self, up: Updater, c: _Checked) -> None:
        self._up = up
        self._c = c
        self._man = c.trusted.manifest

    def staged(self, entry: FileEntry) -> Path:
        return self._up._part_path(entry)

    def url(self, entry: FileEntry) -> str:
        from core.engine.chunkplan import release_file_url

        return release_file_url(self._up.config, self._man, entry.path)

    def installed(self, entry: FileEntry) -> Path:
        return self._up.config.install_dir.joinpath(*entry.path.split("/"))

    def index_step(self, entry: FileEntry) -> ChunkStep | None:
        """The file's index fetched, local chunks matched and the file planned, all inside
        the download phase (no SCAN reported); None when the index cannot be had."""
        steps, _ = self._up._plan_by_chunks(self._man, self._c.state, [entry],
                                            enter_scan=False, stz_whole=False)
        first = steps[0].first if steps else None
        return first if isinstance(first, ChunkStep) else None


def _copied_from(plan: FilePlan, names: set[str]) -> int:
    """Bytes ``plan`` copies from the local files named in ``names``."""
    seeds = [i for i, name in enumerate(plan.seed_names) if name in names]
    if not seeds or not len(plan.copies):
        return 0
    import numpy as np

    rows = np.isin(plan.copies[:, 1], seeds)
    return int(plan.copies[rows, 3].sum())
