"""Scanning local files: which files are already right, and which chunks are on disk.

Owns the decision of what to read. A file whose size, mtime and file id match the state
cache is never read: its chunk index comes from the index cache. Other files that may hold
useful chunks (installed files, files already at a target path, ``.part`` files an
interrupted run left in staging) are chunked once, and their SHA-256 tells whether they are
already the target; several at once (``core.chunks.chunker.chunk_files``, a pool sized to the
CPUs), their results taken in path order. Chunking itself is ``core.chunks.chunker``; the lookup
structure is ``core.chunks.planner.SeedSet``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.engine.meter import Meter
from core.engine.state import InstalledFile, InstalledState, StateStore
from core.formats.manifest import FileEntry, Manifest
from core.fsutil import file_fingerprint
from core.progress import CancelToken, Phase

if TYPE_CHECKING:
    # The chunk machinery (numpy) is imported where it is used: a scan with nothing to
    # chunk (an update rebuilt from deltas, or none at all) must not pay for it at start-up.
    import numpy as np

    from core.chunks.chunker import ChunkerParams
    from core.chunks.fidx import FileIndex
    from core.chunks.planner import SeedSet

    # A seed: local file name, and the offsets, lengths and ids of the chunks known there.
    Seed = tuple[str, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class ScanResult:
    unchanged: set[str]  # target paths whose file on disk is already the target
    fingerprints: dict[str, InstalledFile]  # what is now known about files on disk
    fingerprints_changed: bool
    seeds: dict[ChunkerParams, list[Seed]]
    # Local files whose index is too big to hold (``big_index``): kept on disk, by path
    # and parameters (``core.engine.bigplan`` reads them by windows; no other file's plan
    # copies from them).
    on_disk: dict[str, dict[ChunkerParams, Path]] = field(default_factory=dict)
    _sets: dict[ChunkerParams, SeedSet] = field(default_factory=dict)

    def seeds_for(self, params: ChunkerParams, path: str) -> SeedSet:
        """All local chunks cut with ``params`` (the set is global: any file feeds any)."""
        from core.chunks.planner import SeedSet

        if params not in self._sets:
            self._sets[params] = SeedSet.build(self.seeds.get(params, []))
        return self._sets[params]


def _whole(name: str, idx: FileIndex) -> Seed:
    return (name, idx.offsets()[:-1], idx.lengths, idx.ids)


def scan_local(store: StateStore, state: InstalledState, manifest: Manifest,
               targets: dict[str, FileIndex], changed: list[FileEntry],
               cancel: CancelToken, meter: Meter,
               part_path: Callable[[FileEntry], Path] | None = None,
               more_params: frozenset[ChunkerParams] = frozenset(),
               enter_phase: bool = True, big_index: int = 0,
               no_seeds: frozenset[str] = frozenset(),
               lstat: Callable[[str], os.stat_result | None] | None = None) -> ScanResult:
    """Scan for the chunks ``changed`` files need. ``targets`` are the whole indexes known
    so far (every file with a ``.part`` must have one); ``more_params`` the chunker
    parameters of targets whose index is still to be assembled (``core.chunks.fidx_groups``).
    ``enter_phase`` False: no SCAN phase is reported (a fallback step of the download).
    ``big_index``: local indexes over this many bytes stay on disk (``ScanResult.on_disk``),
    never loaded as seeds (0: none). ``no_seeds``: paths whose files the state vouches for
    are not read for seeds when their index is not cached (small files of the release's
    pack: reading thousands of them costs more than their chunks could save). ``lstat``:
    the ``os.lstat`` of a path relative to the install (None: none there), from a cache of
    the caller's (the check's, taken while it waited for the network)."""
    root = store.install_dir
    params_set = {idx.params for idx in targets.values()} | more_params
    by_path = manifest.by_path()
    fingerprints: dict[str, InstalledFile] = {}
    unchanged: set[str] = set()
    seeds: dict[ChunkerParams, list[Seed]] = {p: [] for p in params_set}
    changed_fp = False
    on_disk: dict[str, dict[ChunkerParams, Path]] = {}

    cached_names = store.index_names()  # what the cache holds: no lookup of a missing one

    def cached(sha256: str, p: ChunkerParams) -> FileIndex | None:
        if store.index_name(sha256, p) not in cached_names:
            return None
        return store.cached_index(sha256, p)

    def kept_on_disk(path: str, sha256: str, p: ChunkerParams) -> bool:
        if not big_index:
            return False
        cp = store.index_path(sha256, p)
        if cp.is_file() and cp.stat().st_size > big_index:
            on_disk.setdefault(path, {})[p] = cp
            return True
        return False

    # Which local files to look at, and whether the state cache vouches for each.
    candidates: dict[str, InstalledFile | None] = {}
    candidates.update(state.files)
    for f in changed:
        candidates.setdefault(f.path, None)
    if not state.files and params_set:
        # Nothing installed by stitch yet (a reinstall, or a folder filled by other means):
        # every file already in the folder may feed chunks, renamed ones included.
        for rel in _existing_files(root):
            candidates.setdefault(rel, None)
    work: list[tuple[str, str, os.stat_result, InstalledFile | None]] = []
    base = os.path.join(str(root), "")
    for path, known in sorted(candidates.items()):
        abs_path = base + path.replace("/", os.sep)
        if lstat is not None:
            seen = lstat(path)
            if seen is None:
                continue
            st = seen
        else:
            try:
                st = os.lstat(abs_path)
            except OSError:
                continue
        if not stat.S_ISREG(st.st_mode):
            continue  # never read through a link: it may point out of the install
        vouched = known is not None and file_fingerprint(st) == (
            known.size, known.mtime_ns, known.ino)
        if vouched and known is not None:
            fingerprints[path] = known
        work.append((path, abs_path, st, known if vouched else None))

    # Plan the reads first, so the scan phase has a total.
    to_read: list[tuple[str, Path, os.stat_result]] = []
    for path, abs_path, st, have in work:
        if not params_set:
            break
        if have is not None:
            found = {p: cached(have.sha256, p) for p in params_set
                     if store.index_name(have.sha256, p) not in cached_names
                     or not kept_on_disk(path, have.sha256, p)}
            if all(v is not None for v in found.values()):
                for p, idx in found.items():
                    assert idx is not None
                    seeds[p].append(_whole(abs_path, idx))
                continue
            if path in no_seeds:
                continue
        to_read.append((path, Path(abs_path), st))
    parts: list[tuple[FileEntry, Path]] = []
    if part_path is not None:
        for f in changed:
            pp = part_path(f)
            ready = pp.with_suffix(".ready")
            if ready.exists() and not pp.exists():
                # Built and verified by a run that stopped before the commit: reuse it whole
                # (its chunks are checked again below, like any .part).
                os.replace(ready, pp)
            if pp.exists() and f.path in targets:
                parts.append((f, pp))
    total = sum(st.st_size for _, _, st in to_read) + sum(p.stat().st_size for _, p in parts)
    if enter_phase:
        meter.phase(Phase.SCAN, 0, total)

    if to_read:
        _chunk_into(store, to_read, params_set, seeds, fingerprints, unchanged, by_path,
                    cancel, meter, kept_on_disk)
        changed_fp = True
    if parts:
        _seed_parts(parts, targets, seeds, cancel, meter)
    return ScanResult(unchanged, fingerprints, changed_fp, seeds, on_disk)


def _chunk_into(store: StateStore, to_read: list[tuple[str, Path, os.stat_result]],
                params_set: set[ChunkerParams], seeds: dict[ChunkerParams, list[Seed]],
                fingerprints: dict[str, InstalledFile], unchanged: set[str],
                by_path: dict[str, FileEntry], cancel: CancelToken, meter: Meter,
                kept_on_disk: Callable[[str, str, ChunkerParams], bool]) -> None:
    """Chunk ``to_read`` with every parameter set; record their seeds and fingerprints."""
    from core.chunks.chunker import chunk_files
    from core.chunks.fidx import FileIndex

    # Chunk them on a bounded pool (several files at once); results come back in order.
    plist = sorted(params_set, key=lambda p: (p.min_size, p.avg_size, p.max_size,
                                              p.normalization, p.seed))
    jobs = [(abs_path, p) for _, abs_path, _ in to_read for p in plist]
    with closing(chunk_files(jobs, cancel, meter.add_read)) as results:
        for path, abs_path, st in to_read:
            meter.current = path
            sha = ""
            for p in plist:
                chunks, digest = next(results)
                idx = FileIndex.from_chunks(p, chunks, digest)
                store.cache_index(idx)
                sha = digest.hex()
                if not kept_on_disk(path, sha, p):
                    seeds[p].append(_whole(str(abs_path), idx))
                del idx, chunks
            fingerprints[path] = InstalledFile(sha, *file_fingerprint(st))
            target = by_path.get(path)
            if target is not None and target.sha256 == sha:
                unchanged.add(path)


def _seed_parts(parts: list[tuple[FileEntry, Path]], targets: dict[str, FileIndex],
                seeds: dict[ChunkerParams, list[Seed]], cancel: CancelToken,
                meter: Meter) -> None:
    """The chunks of ``.part`` files an interrupted run left that are already right."""
    from core.engine.rebuild import verify_known_chunks

    for f, pp in parts:
        meter.current = f.path
        idx = targets[f.path]  # the caller fetched the whole index of a file with a .part
        ok = verify_known_chunks(pp, idx, cancel)
        meter.add_read(pp.stat().st_size)
        if ok.any():
            offs = idx.offsets()[:-1]
            seeds[idx.params].append((str(pp), offs[ok], idx.lengths[ok], idx.ids[ok]))


MAX_FOREIGN_FILES = 100_000  # never walk a whole disk if pointed at one


def _existing_files(root: Path) -> list[str]:
    out: list[str] = []
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d == ".stitch")]
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                out.append(p.relative_to(root).as_posix())
            if len(out) >= MAX_FOREIGN_FILES:
                return out
    return out
