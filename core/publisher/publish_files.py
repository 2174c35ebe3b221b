"""One file of a release, as ``stitch publish`` writes it: the copy, its ``.fidx`` (and group
table), its ``.stz`` and its delta from the previous release; several files at once.

Each file is read for its index once (``core.chunks.chunker.chunk_file``: chunks and SHA-256 in one
pass) and everything after works from that index. Files are done side by side on a pool of
threads sized to the CPUs (``core.chunks.chunker.scan_workers``): zstd (the ``.stz`` chunks, on
threads of its own, and the deltas) runs outside the interpreter lock, so the chunking of
one file and the compression of another share the cores. Results come back in the jobs'
order, at most ``2 * workers`` ahead of the caller (bounded memory).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.chunks import fidx_groups, stz
from core.chunks.chunker import ChunkerParams, chunk_file, scan_workers
from core.chunks.fidx import FileIndex, decode, encode
from core.chunks.planner import SeedSet
from core.errors import FormatError
from core.formats import delta
from core.formats.layout import FIDX_SUFFIX, FILES, GROUPS_SUFFIX
from core.formats.manifest import MAX_DELTAS, Delta, FileEntry, Manifest
from core.fsutil import file_mode
from core.publisher import delta_copies
from core.publisher.compressed import WARN_SIZE, inspect, warning
from core.publisher.earlier import Release

_SAMPLE_ABOVE = 1 << 20  # bytes: larger files are judged compressible on a sample


@dataclass(frozen=True)
class Options:
    """What to write for every file of one release."""

    params: ChunkerParams
    umask: int
    compress: bool
    compress_level: int
    deltas: bool
    delta_level: int | None  # None: core.formats.delta.default_level
    previous: tuple[Manifest, Path] | None  # the previous release and its folder
    prev_seeds: SeedSet | None  # its chunks (for the deltas' payoff), when deltas are made
    prev_files: dict[str, FileEntry] = field(default_factory=dict)  # its files by path
    bases: tuple[Release, ...] = ()  # the releases deltas are made from, newest first
    files_url: str = ""  # the release's files are served from there (deltas not carried)


@dataclass(frozen=True, eq=False)
class Done:
    """One file written: its manifest entry, its index and what it cost."""

    entry: FileEntry
    index: FileIndex
    index_bytes: int
    stz_bytes: int
    delta_bytes: int
    warnings: tuple[str, ...]


def publish_files(jobs: Sequence[tuple[str, Path, Path]], opts: Options,
                  workers: int | None = None) -> Iterator[Done]:
    """Write every ``(rel, source, dest)`` of ``jobs`` (``publish_file``), up to ``workers``
    files at a time, and yield their results in the order of ``jobs``. The first error in
    job order is raised after the files already started are done."""
    n = scan_workers() if workers is None else max(1, workers)
    if n == 1 or len(jobs) <= 1:
        for rel, src, dest in jobs:
            yield publish_file(rel, src, dest, opts)
        return
    todo = iter(jobs)
    queued: deque[Future[Done]] = deque()
    with ThreadPoolExecutor(n, thread_name_prefix="stitch-publish") as pool:
        try:
            for rel, src, dest in itertools.islice(todo, 2 * n):
                queued.append(pool.submit(publish_file, rel, src, dest, opts))
            while queued:  # each round takes one result and submits at most one job
                done = queued.popleft().result()
                for rel, src, dest in itertools.islice(todo, 1):
                    queued.append(pool.submit(publish_file, rel, src, dest, opts))
                yield done
        finally:
            for f in queued:
                f.cancel()


def publish_file(rel: str, src: Path, dest: Path, opts: Options) -> Done:
    """Copy ``src`` to ``dest`` (a release's ``files/`` folder) with the umask's mode, and
    write beside it its index, group table, ``.stz`` (when asked and its chunks compress)
    and delta from the previous release's ``rel`` (when asked and it pays)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    prev = opts.prev_files.get(rel)
    if prev is not None and prev.size != src.stat().st_size:
        prev = None  # changed: no need to hash it while copying (chunking hashes it)
    src_sha = copy_hashed(src, dest, hashed=prev is not None)
    executable = bool(src.stat().st_mode & stat.S_IXUSR)
    os.chmod(dest, file_mode(executable, opts.umask))
    if prev is not None and prev.sha256 == src_sha and opts.previous is not None:
        reused = _reuse(rel, dest, prev, opts.previous[1], executable, opts)
        if reused is not None:
            return reused
    chunks, sha = chunk_file(dest, opts.params)
    idx = FileIndex.from_chunks(opts.params, chunks, sha)
    data = encode(idx)
    (dest.parent / (dest.name + FIDX_SUFFIX)).write_bytes(data)
    index_bytes = len(data)
    groups_size, groups_sha = 0, ""
    if len(idx) >= fidx_groups.MIN_CHUNKS:
        # The group table lets a client fetch only the records of changed regions.
        gdata = fidx_groups.encode(fidx_groups.build(idx))
        (dest.parent / (dest.name + GROUPS_SUFFIX)).write_bytes(gdata)
        groups_size, groups_sha = len(gdata), sha256_hex(gdata)
        index_bytes += groups_size
    stz_size = 0
    if opts.compress:
        stz_size = _write_stz(dest, idx, data, opts.compress_level)
    # What a player of the previous release would download of it by chunks.
    missing = missing_bytes(opts.prev_seeds, idx) if opts.prev_seeds is not None else None
    made: tuple[Delta, ...] = ()
    if opts.deltas and opts.bases:
        made = _make_deltas(opts, rel, dest, sha.hex(), idx, len(data), missing)
    entry = FileEntry(rel, idx.file_size, sha.hex(), sha256_hex(data), len(data), executable,
                      stz_size, made, groups_size, groups_sha,
                      fresh=missing is not None and is_fresh(idx.file_size, missing, len(data)))
    return Done(entry, idx, index_bytes, stz_size, sum(d.size for d in made),
                tuple(_compression_warning(rel, dest, idx.file_size)))


def is_fresh(size: int, missing: int, index_len: int) -> bool:
    """Whether a file is ``fresh`` (docs/format.md §3): at most its index's length of its
    bytes is found in the previous release's chunks, so a player fetching the file whole
    (or its ``.stz``) pays no more than its index and the missing chunks would cost."""
    return size - missing <= index_len


def _make_deltas(opts: Options, rel: str, dest: Path, new_sha: str, idx: FileIndex,
                 index_len: int, missing: int | None) -> tuple[Delta, ...]:
    """The deltas to ``rel`` from each distinct earlier version of it in ``opts.bases`` (the
    last K releases, newest first), each kept only when smaller than what a player who has
    that version would download by chunks: its chunks missing from that player's files and
    the index (for the previous release, every chunk of the release, as before; for an
    older one, that version of the file's own chunks, an upper bound). Called for changed
    files only: an unchanged file (same SHA-256 as the previous release's) gets none."""
    size = dest.stat().st_size
    if size == 0 or size > delta.MAX_FILE_SIZE:
        return ()
    seen = {new_sha[:16]}  # (the name holds the first 16 hex digits)
    out: list[Delta] = []
    for base in opts.bases:
        old = base.files.get(rel)
        if old is None or old.sha256[:16] in seen or old.size > delta.MAX_FILE_SIZE:
            continue
        seen.add(old.sha256[:16])
        old_path = base.folder / FILES / Path(*rel.split("/"))
        previous = opts.previous is not None and opts.previous[1] == base.folder
        old_idx = _old_index(old_path)
        if previous and missing is not None:
            cost = missing + index_len
        elif old_idx is not None:
            cost = missing_bytes(SeedSet.of_index("", old_idx), idx) + index_len
        else:
            cost = idx.file_size + index_len
        try:
            if os.stat(old_path).st_size != old.size:
                continue  # not the version the manifest names (a folder being replaced)
            out_path = dest.parent / Path(delta.name_for(rel, old.sha256)).name
            copies = (delta_copies.find(old_path, old_idx, dest, idx)
                      if old_idx is not None and old_idx.file_size == old.size else [])
            made = delta.make(old_path, dest, out_path, opts.delta_level, copies)
        except OSError:
            continue  # the release's folder is gone or damaged: no delta from it
        if made >= cost:
            out_path.unlink()
            continue
        out.append(Delta(old.sha256, made, _file_sha256(out_path)))
        if len(out) >= MAX_DELTAS:
            break
    return tuple(out)


def _old_index(old_path: Path) -> FileIndex | None:
    """The earlier file's published ``.fidx`` (None when it cannot be read)."""
    try:
        return decode((old_path.parent / (old_path.name + FIDX_SUFFIX)).read_bytes())
    except (OSError, FormatError):
        return None


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _reuse(rel: str, dest: Path, prev: FileEntry, prev_dir: Path, executable: bool,
           opts: Options) -> Done | None:
    """The previous release's index, group table and ``.stz`` of an unchanged file (same
    SHA-256), copied instead of computed again, when they check against its manifest entry
    and were cut with the same parameters; None otherwise (the caller computes them). A
    ``.stz`` the previous release did not have is written when asked and worthwhile."""
    base = prev_dir / FILES / Path(*rel.split("/"))
    try:
        data = (base.parent / (base.name + FIDX_SUFFIX)).read_bytes()
        if sha256_hex(data) != prev.fidx_sha256:
            return None
        idx = decode(data)
        if idx.params != opts.params or idx.sha256.hex() != prev.sha256:
            return None
        index_bytes = len(data)
        if prev.groups_size:
            gdata = (base.parent / (base.name + GROUPS_SUFFIX)).read_bytes()
            if sha256_hex(gdata) != prev.groups_sha256:
                return None
            (dest.parent / (dest.name + GROUPS_SUFFIX)).write_bytes(gdata)
            index_bytes += len(gdata)
        elif len(idx) >= fidx_groups.MIN_CHUNKS:
            return None  # published without a group table: make one
        stz_size = 0
        stz_dest = dest.parent / (dest.name + stz.SUFFIX)
        if opts.compress and prev.stz_size:
            stz_src = base.parent / (base.name + stz.SUFFIX)
            with open(stz_src, "rb") as f:
                stz.parse_table(f.read(stz.table_size(len(idx))), idx,
                                bytes.fromhex(prev.fidx_sha256), prev.stz_size)
            if stz_src.stat().st_size != prev.stz_size:
                return None
            shutil.copyfile(stz_src, stz_dest)
            stz_size = prev.stz_size
        elif opts.compress and stz.worthwhile(dest, idx, opts.compress_level):
            # (judged on a sample: most such files were judged not worth it last time)
            stz_size = stz.write(dest, idx, data, stz_dest, opts.compress_level)
    except (OSError, FormatError):
        return None
    (dest.parent / (dest.name + FIDX_SUFFIX)).write_bytes(data)
    entry = FileEntry(rel, idx.file_size, prev.sha256, prev.fidx_sha256, len(data),
                      executable, stz_size, _carried(rel, prev, opts), prev.groups_size,
                      prev.groups_sha256, fresh=prev.fresh)
    return Done(entry, idx, index_bytes, stz_size, 0,
                tuple(_compression_warning(rel, dest, idx.file_size)))


def _carried(rel: str, prev: FileEntry, opts: Options) -> tuple[Delta, ...]:
    """The deltas of an unchanged file: the previous release's deltas of it from the
    versions a player up to K releases behind this one may have, served where they are
    (``release``: their release's folder; nothing is made or copied). A player so far
    behind then needs no earlier manifest. None when deltas are off, the previous release
    is not the newest base, or the files are served from elsewhere (``files_url``)."""
    if (not opts.deltas or not opts.bases or opts.previous is None or opts.files_url
            or opts.bases[0].folder != opts.previous[1]):
        return ()
    wanted = {f.sha256 for b in opts.bases if (f := b.files.get(rel)) is not None}
    version = opts.previous[0].version
    return tuple(replace(d, release=d.release or version) for d in prev.deltas
                 if d.from_sha256 in wanted and d.from_sha256 != prev.sha256)


def _write_stz(dest: Path, idx: FileIndex, data: bytes, level: int) -> int:
    """Write ``dest``'s ``.stz`` when its chunks compress (``stz.WORTHWHILE``); return its
    size, 0 for none. A file up to ``_SAMPLE_ABOVE`` is compressed whole and judged on the
    result (a sample of its chunks would be most of them, compressed twice); a larger one
    on a sample first (``stz.worthwhile``)."""
    out = dest.parent / (dest.name + stz.SUFFIX)
    if idx.file_size > _SAMPLE_ABOVE:
        return stz.write(dest, idx, data, out, level) if stz.worthwhile(dest, idx, level) else 0
    if not len(idx) or not stz.available():
        return 0
    size = stz.write(dest, idx, data, out, level)
    if size - stz.table_size(len(idx)) < stz.WORTHWHILE * idx.file_size:
        return size
    out.unlink()
    return 0


def copy_hashed(src: Path, dst: Path, hashed: bool = True, block: int = 1 << 20) -> str:
    """Copy ``src`` to ``dst`` as ``core.fsutil.copy_sparse`` does (all-zero blocks left as
    holes) and return the hex SHA-256 of what was copied, in the same pass ("" unless
    ``hashed``)."""
    zero = bytes(block)
    sha = hashlib.sha256() if hashed else None
    with open(src, "rb", buffering=0) as fi, open(dst, "wb", buffering=0) as fo:
        size = os.fstat(fi.fileno()).st_size
        buf = bytearray(block)
        view = memoryview(buf)
        while n := fi.readinto(buf):
            part = view[:n]
            if sha is not None:
                sha.update(part)
            # bytearray == bytes is a memcmp; memoryview == bytes compares item by item,
            # 90 times slower (5.6 s a GiB measured: most of a 50 GB sparse file's publish).
            if buf == zero if n == block else bytes(part) == zero[:n]:
                fo.seek(n, os.SEEK_CUR)
            else:
                done = 0
                while done < n:  # each round writes at least one byte, or raises
                    wrote = fo.write(part[done:])
                    if not wrote:
                        raise OSError(f"{dst}: nothing written")
                    done += wrote
        fo.truncate(size)
    return sha.hexdigest() if sha is not None else ""


def _compression_warning(rel: str, path: Path, size: int) -> list[str]:
    """A report line when a large file is compressed in a way that defeats chunking."""
    if size < WARN_SIZE:
        return []
    c = inspect(path)
    w = warning(rel, size, c) if c is not None else None
    return [w] if w else []


def missing_bytes(seeds: SeedSet, idx: FileIndex) -> int:
    """Bytes of ``idx``'s chunks that ``seeds`` do not have: what chunks would download."""
    missing = seeds.lookup(idx.ids, idx.lengths) < 0
    return int(idx.lengths[missing].sum(dtype=np.uint64))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
