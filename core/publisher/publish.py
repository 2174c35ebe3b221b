"""``stitch publish``: turn a folder into a release in a repository folder.

Owns the publisher side of the layout (``core.formats.layout``): copy each file under
``<channel>/<version>/files/``, write its ``.fidx`` (and, for files of many chunks, the
index's group table) beside it, write and optionally sign
``release.json``, and switch ``latest.json`` last, atomically, so a client never sees a
pointer to a half-written release. Also reports what the release costs a player who has the
previous one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from core.chunks import fidx_sub, stz
from core.chunks.chunker import DEFAULT_PARAMS, ChunkerParams
from core.chunks.fidx import FileIndex, decode
from core.chunks.planner import SeedSet, plan_file
from core.chunks.wire import REQUEST_COST, wire_bytes  # what a player's requests cost
from core.errors import ConfigError, FormatError
from core.formats import manifest_delta
from core.formats.layout import (
    FIDX_SUFFIX,
    FILES,
    MANIFEST,
    POINTER,
    SIGNATURE,
    STATE_DIR,
    SUB_SUFFIX,
    manifest_rel,
)
from core.formats.manifest import (
    FileEntry,
    Manifest,
    Pointer,
    check_path,
    encode_manifest,
    encode_pointer,
    format_time,
    parse_manifest,
    parse_pointer,
)
from core.formats.pep440 import Key
from core.formats.pep440 import parse as parse_version
from core.fsutil import atomic_write, current_umask
from core.publisher.earlier import DEFAULT_DELTA_RELEASES, Release, earlier, history
from core.publisher.pack import write_pack
from core.publisher.publish_files import Options, missing_bytes, publish_files

PUBLIC_KEY = "minisign.pub"
# The Cache-Control each part of a repository should be served with (docs/publishing.md):
# the files that change under their URL are revalidated on every request; a version's folder
# never changes (a new release is a new folder), so caches may keep it for good.
CACHE_CHANGING = "no-cache"
CACHE_VERSIONED = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class PublishReport:
    version: str
    previous: str | None
    files: int
    total_bytes: int
    chunks: int
    index_bytes: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    new_bytes: int  # bytes of chunks not in the previous release: what an update costs
    signed: bool
    warnings: tuple[str, ...] = ()  # e.g. large files compressed against chunking
    compressed_bytes: int = 0  # total size of the .stz compressed chunk copies written
    delta_bytes: int = 0  # total size of the deltas from the previous release written
    channel: str = ""  # "" leaves the cache header lines out
    delta_bases: int = 0  # releases the deltas were made from (``--delta-releases``)
    pack_bytes: int = 0  # size of the pack of small files written
    packed: int = 0  # files in it

    def lines(self) -> list[str]:
        overhead = 100 * self.index_bytes / self.total_bytes if self.total_bytes else 0.0
        out = [
            f"published {self.version}: {self.files} files, {self.total_bytes} bytes, "
            f"{self.chunks} chunks, index {self.index_bytes} bytes ({overhead:.2f}%)"
            + (", signed" if self.signed else ", NOT signed"),
        ]
        if self.previous is not None:
            out.append(
                f"since {self.previous}: {len(self.added)} added, {len(self.changed)} changed, "
                f"{len(self.removed)} removed; {self.new_bytes} bytes of new chunks")
        if self.compressed_bytes:
            out.append(f"compressed chunk copies: {self.compressed_bytes} bytes")
        if self.delta_bytes:
            out.append(f"deltas from {self.previous}: {self.delta_bytes} bytes"
                       + (" (and from earlier releases)" if self.delta_bases > 1 else ""))
        if self.pack_bytes:
            out.append(f"pack of {self.packed} small files: {self.pack_bytes} bytes")
        out.extend(f"warning: {w}" for w in self.warnings)
        if self.channel:
            changing = f"{self.channel}/{POINTER}" + (
                f", {self.channel}/{PUBLIC_KEY}" if self.signed else "")
            out += ["cache headers (docs/publishing.md); upload latest.json last:",
                    f"  {changing}: Cache-Control: {CACHE_CHANGING}",
                    f"  {self.channel}/{self.version}/: Cache-Control: {CACHE_VERSIONED}"]
        return out


def _source_files(src: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != STATE_DIR)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(src).as_posix()
            check_path(rel)
            out.append((rel, p))
    return out


def publish(
    src: Path,
    repo: Path,
    version: str,
    channel: str = "stable",
    product: str = "",
    params: ChunkerParams = DEFAULT_PARAMS,
    sign_key: object | None = None,
    notes: str = "",
    expires_days: int | None = None,
    files_url: str = "",
    force: bool = False,
    compress: bool = False,
    compress_level: int = stz.DEFAULT_LEVEL,
    deltas: bool = False,
    delta_level: int | None = None,
    subchunks: bool = False,
    delta_releases: int = DEFAULT_DELTA_RELEASES,
    pack_max: int = 0,
) -> PublishReport:
    """Publish ``src`` as ``version`` of ``channel`` in ``repo``. ``sign_key`` is a
    ``core.formats.signing.SecretKey``. Raises ``ConfigError`` for bad arguments (a version that is
    not a PEP 440 version; without ``force``, one not newer than the channel's latest or
    one that exists), ``UnsafePathError`` for file names that cannot be installed
    everywhere, ``OSError`` for disk problems. ``subchunks`` writes sub-indexes
    (``core.chunks.fidx_sub``) against the previous release, when there is one, for the
    files that changed and got no delta from their previous version. ``compress`` and
    ``deltas`` are off unless asked here (the library's explicit form, which the tests
    use); the ``stitch publish`` command turns both on by default (``--no-compress``,
    ``--no-delta``). With ``deltas``, each changed file gets deltas from its versions in the
    channel's last ``delta_releases`` releases (``core.publisher.earlier``), and the manifest
    names the channel's earlier releases (``history``) for players who skipped some;
    ``delta_level`` is their zstd level (None: ``core.formats.delta.default_level``, by the
    old file's size). ``pack_max``: files of at most this many bytes also go into the release's pack
    (``core.publisher.pack``; 0: no pack; the command's default is
    ``core.formats.pack.DEFAULT_MAX_FILE``)."""
    if not src.is_dir():
        raise ConfigError(f"source folder not found: {src}")
    params.validate()
    try:
        key = parse_version(version).key()  # before the version names any path
    except FormatError as e:
        raise ConfigError(f"--version: {e}") from None
    chan = repo / channel
    previous = _previous(chan)
    # A product name, once published, stays: clients refuse a manifest for another product.
    product = product or (previous[0].product if previous else _default_product(repo))
    final = chan / version
    if final.exists() and not force:
        raise ConfigError(f"version {version} already exists in {chan} (use --force)")
    if not force:
        _check_newer(key, version, chan, channel)
    work = chan / f".{version}.publishing"
    shutil.rmtree(work, ignore_errors=True)
    (work / FILES).mkdir(parents=True)

    entries: list[FileEntry] = []
    indexes: dict[str, FileIndex] = {}
    index_bytes = 0
    warnings: list[str] = []
    stz_bytes = 0
    delta_bytes = 0
    # Everything below is created with the mode the umask gives (0o644 files, 0o755
    # folders under 022), whatever the source's own modes: a web server's workers, running
    # as another user, must read it.
    umask = current_umask()
    if umask & 0o005:
        warnings.append(_umask_warning(umask))
    # The previous release's chunks, read once: the deltas' payoff and the report.
    prev_seeds = _previous_seeds(previous) if previous is not None else None
    # The releases before this one still in the folder: the deltas' bases (the last
    # ``delta_releases``) and the manifest's ``history``.
    releases = earlier(chan, key, version) if deltas else []
    opts = Options(params, umask, compress, compress_level, deltas, delta_level, previous,
                   prev_seeds, previous[0].by_path() if previous is not None else {},
                   tuple(releases[:max(0, delta_releases)]), files_url)
    jobs = [(rel, path, work / FILES / Path(*rel.split("/")))
            for rel, path in _source_files(src)]
    # Several files at once (a pool sized to the CPUs); results come in order.
    for done in publish_files(jobs, opts):
        entries.append(done.entry)
        indexes[done.entry.path] = done.index
        index_bytes += done.index_bytes
        stz_bytes += done.stz_bytes
        delta_bytes += done.delta_bytes
        warnings.extend(done.warnings)

    if subchunks and previous is not None:
        entries, sub_bytes = _write_subindexes(previous, work, entries, indexes)
        index_bytes += sub_bytes
    pack_info = None
    if pack_max:
        entries, pack_info = write_pack(work, entries, pack_max, compress_level)

    now = datetime.now(UTC)
    manifest = Manifest(
        product=product, channel=channel, version=version, created=format_time(now),
        files=tuple(entries), notes=notes, files_url=files_url,
        expires=format_time(now + timedelta(days=expires_days)) if expires_days else None,
        history=history(releases),
        pack=pack_info,
    )
    manifest_bytes = encode_manifest(manifest)
    parse_manifest(manifest_bytes)  # what we write, a client must accept
    (work / MANIFEST).write_bytes(manifest_bytes)
    manifest_deltas = _write_manifest_deltas(work, manifest_bytes, opts.bases)
    if sign_key is not None:
        from core.formats import signing

        assert isinstance(sign_key, signing.SecretKey)
        sig = signing.sign(manifest_bytes, sign_key,
                           f"stitch release {product} {channel} {version}")
        (work / SIGNATURE).write_bytes(sig)
        atomic_write(chan / PUBLIC_KEY, sign_key.public_key.to_file())

    report = _report(manifest, indexes, index_bytes, previous, prev_seeds,
                     sign_key is not None)
    report = replace(report, warnings=tuple(warnings), compressed_bytes=stz_bytes,
                     delta_bytes=delta_bytes, channel=channel,
                     delta_bases=len(opts.bases),
                     pack_bytes=pack_info.size if pack_info else 0,
                     packed=sum(1 for e in entries if e.pack is not None))
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
    atomic_write(chan / POINTER, encode_pointer(
        Pointer(version, manifest_rel(version), _sha256(manifest_bytes), manifest_deltas)))
    return report


def _write_manifest_deltas(work: Path, manifest_bytes: bytes,
                           bases: tuple[Release, ...]) -> tuple[str, ...]:
    """Beside the manifest, its delta from each earlier release's manifest that deltas are
    made from (``core.formats.manifest_delta``), where it is smaller; the digests' first 16
    hex digits, for the pointer."""
    out: list[str] = []
    for r in bases:
        try:
            old = (r.folder / MANIFEST).read_bytes()
        except OSError:
            continue
        if _sha256(old) != r.sha256:
            continue  # replaced since it was read: the pointer must not name a wrong base
        made = manifest_delta.make(old, manifest_bytes)
        if len(made) < len(manifest_bytes):
            (work / manifest_delta.name_for(MANIFEST, r.sha256)).write_bytes(made)
            out.append(r.sha256[:16])
    return tuple(out)


def _check_newer(key: Key, version: str, chan: Path, channel: str) -> None:
    """Refuse a version (sort key ``key``) not newer than the channel's latest: players who
    have that one would refuse it as a downgrade."""
    try:
        latest = parse_pointer((chan / POINTER).read_bytes()).version
    except (OSError, FormatError):
        return  # a new channel (or a broken pointer, which this release replaces)
    try:
        latest_key = parse_version(latest).key()
    except FormatError:
        return  # published by an older stitch, which took any name: older than any version
    if key <= latest_key:
        raise ConfigError(
            f"--version {version} is not newer than {latest}, the latest release of channel "
            f"{channel!r} (players who have {latest} would refuse it as a downgrade; "
            "--force publishes it anyway)")


def _umask_warning(umask: int) -> str:
    return (f"umask {umask:04o} leaves the repository unreadable by other users: a web server "
            "whose workers run as another user (www-data) will answer 403; publish under "
            "umask 022, or run chmod -R o+rX on the repository")


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _default_product(src: Path) -> str:
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in src.resolve().name)
    return name.strip("-._")[:64] or "product"


def _previous(chan: Path) -> tuple[Manifest, Path] | None:
    try:
        pointer = parse_pointer((chan / POINTER).read_bytes())
        path = chan / pointer.manifest
        return parse_manifest(path.read_bytes()), path.parent
    except (OSError, FormatError):
        return None


def _previous_seeds(previous: tuple[Manifest, Path]) -> SeedSet:
    """Every chunk of the previous release, as a player one version behind has them."""
    prev, prev_dir = previous
    seeds = []
    for f in prev.files:
        try:
            idx = decode((prev_dir / FILES / (f.path + FIDX_SUFFIX)).read_bytes())
        except (OSError, FormatError):
            continue
        seeds.append((f.path, idx.offsets()[:-1], idx.lengths, idx.ids))
    return SeedSet.build(seeds)


def _write_subindexes(previous: tuple[Manifest, Path], work: Path, entries: list[FileEntry],
                      indexes: dict[str, FileIndex]) -> tuple[list[FileEntry], int]:
    """Write the sub-index of every file that has chunks new since the previous release
    whose sub-chunks are partly in the previous release's orphan chunks (those the new
    release no longer uses); return the entries with their sub-index fields, and the bytes
    written."""
    prev, prev_dir = previous
    before = prev.by_path()
    wanted = {e.path for e in entries if _wants_sub(e, before.get(e.path))}
    if not wanted:
        return entries, 0
    used = SeedSet.build([(rel, idx.offsets()[:-1], idx.lengths, idx.ids)
                          for rel, idx in indexes.items()])
    old = []
    for f in prev.files:
        try:
            idx = decode((prev_dir / FILES / (f.path + FIDX_SUFFIX)).read_bytes())
        except (OSError, FormatError):
            continue
        old.append((str(prev_dir / FILES / Path(*f.path.split("/"))), idx.offsets()[:-1],
                    idx.lengths, idx.ids))
    orphan_list = fidx_sub.orphan_seeds(old, used)
    orphans = SeedSet.build(orphan_list)
    if not len(orphans):
        return entries, 0
    prev_chunks = SeedSet.build(old)
    # What a player one version behind holds: the previous release's chunks, and the
    # sub-chunks of its orphans.
    behind = SeedSet.build(old + orphan_list)
    out: list[FileEntry] = []
    written = 0
    for e in entries:
        if e.path not in wanted:
            out.append(e)
            continue
        idx = indexes[e.path]
        new = prev_chunks.lookup(idx.ids, idx.lengths) < 0
        dest = work / FILES / Path(*e.path.split("/"))
        table_stz = _stz_table(dest, idx, e)
        read, close = fidx_sub.file_reader(str(dest))
        try:
            made = fidx_sub.build(read, idx, bytes.fromhex(e.fidx_sha256), new, orphans,
                                  whole_cost=None if table_stz is None else table_stz.sizes)
        finally:
            close()
        made = _worth_it(made, idx, table_stz, prev_chunks, behind)
        if made is None:
            out.append(e)
            continue
        table, records = made
        data = fidx_sub.encode(table, records)
        (dest.parent / (dest.name + SUB_SUFFIX)).write_bytes(data)
        written += len(data)
        out.append(replace(e, sub_size=len(data), sub_table_size=table.table_size,
                           sub_table_sha256=_sha256(data[:table.table_size])))
    return out, written


def _wants_sub(e: FileEntry, was: FileEntry | None) -> bool:
    """A sub-index is for a file that changed since the previous release and has no delta
    from its previous version: a player one behind updates it by chunks (a file a delta
    rebuilds never reads its index)."""
    if was is None:
        return True
    return was.sha256 != e.sha256 and not any(d.from_sha256 == was.sha256 for d in e.deltas)


def _stz_table(dest: Path, idx: FileIndex, e: FileEntry) -> stz.StzTable | None:
    """The size table of the ``.stz`` written beside ``dest`` (None: there is none, chunks
    come raw)."""
    if not e.stz_size:
        return None
    with open(dest.parent / (dest.name + stz.SUFFIX), "rb") as f:
        head = f.read(stz.table_size(len(idx)))
    return stz.parse_table(head, idx, bytes.fromhex(e.fidx_sha256), e.stz_size)


def _worth_it(made: tuple[fidx_sub.SubTable, bytes] | None, idx: FileIndex,
              table_stz: stz.StzTable | None, prev: SeedSet, behind: SeedSet
              ) -> tuple[fidx_sub.SubTable, bytes] | None:
    """The part of a sub-index that pays off for a player one version behind: plan the
    update as that player would, without and with sub-chunks (``behind``: the previous
    release's chunks and its orphans' sub-chunks), keep the chunks the plan takes as
    sub-chunks, and nothing unless the bytes saved exceed the sub-index's."""
    if made is None:
        return None
    table, records = made
    recs = fidx_sub.records_of(table, records, idx)
    chosen = fidx_sub.choose(idx, recs, np.ones(len(table), dtype=bool), behind)
    if chosen is None:
        return None
    use, mixed, plan = chosen
    offsets = idx.offsets()
    before = wire_bytes(_ranges(plan_file(idx, prev).remote), table_stz, offsets)
    after = wire_bytes(_ranges(plan.remote), table_stz, offsets, mixed.sub)
    table, records = fidx_sub.subset(table, records, use)
    if after + table.table_size + len(records) + 2 * REQUEST_COST >= before:
        return None
    return table, records


def _ranges(remote: np.ndarray) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in remote.tolist()]


def _report(manifest: Manifest, indexes: dict[str, FileIndex], index_bytes: int,
            previous: tuple[Manifest, Path] | None, prev_seeds: SeedSet | None,
            signed: bool) -> PublishReport:
    chunks = sum(len(i) for i in indexes.values())
    new_bytes = manifest.total_size
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    prev_version = None
    if previous is not None:
        prev = previous[0]
        prev_version = prev.version
        old = prev.by_path()
        new = manifest.by_path()
        added = tuple(sorted(set(new) - set(old)))
        removed = tuple(sorted(set(old) - set(new)))
        changed = tuple(sorted(p for p in set(new) & set(old) if new[p].sha256 != old[p].sha256))
        seed_set = prev_seeds if prev_seeds is not None else _previous_seeds(previous)
        new_bytes = sum(missing_bytes(seed_set, idx) for idx in indexes.values())
    return PublishReport(manifest.version, prev_version, len(manifest.files),
                         manifest.total_size, chunks, index_bytes, added, removed, changed,
                         new_bytes, signed)
