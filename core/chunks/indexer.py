"""Indexes of local files in either ``.fidx`` version, for ``stitch fidx`` and ``stitch sync``.

Owns: one in-memory form for v1 and v2 indexes (``LocalIndex``: a ``FileIndex`` the planner
can use, plus the full 20-byte SHA-1 ids of a v1 index), building one from a file with the
right chunker (v2: FastCDC through ``core.chunks.chunker``; v1: bupsplit through
``core.chunks.fidx_v1``), parsing either version from untrusted bytes, writing ``FILE.fidx`` beside
a file the way bupdate did (skipped when the index is newer than the file), and the sync index cache
in ``DIR/.stitch/sync/`` keyed by (path, size, mtime, inode).

How v1 fits the planner: ``SeedSet`` looks chunks up by 16-byte ids, so a v1 index is
planned with the first 16 bytes of each SHA-1 (plus the chunk length). A 128-bit prefix is
as good a key as xxh3-128 for finding candidates; the full 20 bytes are checked on every
chunk that is copied or downloaded (``core.engine.sync``), so a prefix collision costs a download,
never a wrong byte.

Leaves out: the byte layouts (``core.chunks.fidx``, ``core.chunks.fidx_v1``), cut points
(``core.chunks.chunker``, ``core.chunks.rollsum``) and what sync does with the indexes.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.chunks.chunker import ChunkerParams, chunk_file
from core.chunks.fidx import FileIndex, decode, encode
from core.chunks.fidx_v1 import IndexV1, index_file_v1, parse_v1
from core.errors import FormatError
from core.fsutil import atomic_write, file_fingerprint
from core.progress import CancelToken

# The marker "a v1 (bupsplit) index" in the params slot of a ``FileIndex``. A real v2 index
# can never carry it (v2 needs min_size >= 64), so it doubles as the seed-group key.
V1_PARAMS = ChunkerParams(min_size=1, avg_size=8192, max_size=32768, normalization=0, seed=0)
V1_ID_SIZE = 20
MAX_INDEX_BYTES = 1 << 30  # a .fidx larger than this is refused before it is parsed
_VERSION = struct.Struct(">4sI")


@dataclass(frozen=True, eq=False)
class LocalIndex:
    """An index of either version, ready for ``core.chunks.planner``.

    ``index``: for v2 the index itself; for v1 a ``FileIndex`` with ``params=V1_PARAMS``,
    ids = the first 16 bytes of each chunk's SHA-1 and ``sha256 = b""`` (v1 has no
    whole-file digest). ``sha1``: v1 only, the full ids, shape (n, 20) uint8. ``raw``: the
    ``.fidx`` bytes.
    """

    index: FileIndex
    sha1: np.ndarray | None
    raw: bytes

    @property
    def version(self) -> int:
        return 1 if self.sha1 is not None else 2

    @property
    def params(self) -> ChunkerParams:
        return self.index.params

    def same_content(self, other: LocalIndex) -> bool:
        """True when both describe the same bytes (v2: whole-file SHA-256; v1: every chunk's
        length and SHA-1, the only identity v1 has)."""
        if self.version != other.version:
            return False
        if self.sha1 is None or other.sha1 is None:
            return self.index.sha256 == other.index.sha256 and \
                self.index.file_size == other.index.file_size
        return bool(np.array_equal(self.index.lengths, other.index.lengths)
                    and np.array_equal(self.sha1, other.sha1))


def from_v1(ix: IndexV1, raw: bytes) -> LocalIndex:
    lengths = np.frombuffer(ix.lengths, dtype=np.uint32).copy()
    sha1 = np.frombuffer(ix.ids, dtype=np.uint8).reshape(-1, V1_ID_SIZE)
    prefix = np.ascontiguousarray(sha1[:, :16])
    size = int(lengths.sum(dtype=np.uint64))
    return LocalIndex(FileIndex(V1_PARAMS, size, b"", lengths, prefix), sha1, raw)


def fidx_version(data: bytes) -> int:
    """The version field of ``.fidx`` bytes; ``FormatError`` if they are not a ``.fidx``."""
    if len(data) < _VERSION.size:
        raise FormatError("not a .fidx: too short", what="fidx")
    magic, version = _VERSION.unpack_from(data)
    if magic != b"FIDX":
        raise FormatError("not a .fidx (bad magic)", what="fidx")
    return int(version)


def parse_any(data: bytes, max_file_size: int) -> LocalIndex:
    """Parse untrusted ``.fidx`` bytes of version 1 or 2. Raises ``FormatError``."""
    version = fidx_version(data)
    if version == 1:
        li = from_v1(parse_v1(data, MAX_INDEX_BYTES), data)
        if li.index.file_size > max_file_size:
            raise FormatError(f"file length {li.index.file_size} over the limit "
                              f"{max_file_size}", what="fidx")
        return li
    if version == 2:
        return LocalIndex(decode(data, max_file_size), None, data)
    raise FormatError(f"unsupported .fidx version {version}", what="fidx")


def index_file(path: Path, params: ChunkerParams, cancel: CancelToken | None = None) -> LocalIndex:
    """Index the file at ``path``: bupsplit v1 when ``params`` is ``V1_PARAMS``, else
    FastCDC v2 with ``params``. Raises ``OSError`` if it cannot be read."""
    if params == V1_PARAMS:
        if cancel is not None:
            cancel.check()
        raw = index_file_v1(path)
        return from_v1(parse_v1(raw, len(raw)), raw)
    chunks, sha = chunk_file(path, params, cancel)
    idx = FileIndex.from_chunks(params, chunks, sha)
    return LocalIndex(idx, None, encode(idx))


def write_beside(path: Path, params: ChunkerParams, force: bool = False) -> bool:
    """Write ``PATH.fidx`` (v1 if ``params`` is ``V1_PARAMS``, else v2) atomically.

    Skipped, as bupdate did, when an index of the same version already exists and is newer
    than the file (unless ``force``). Returns True if it wrote the index. Raises ``OSError``.
    """
    dest = path.with_name(path.name + ".fidx")
    want = 1 if params == V1_PARAMS else 2
    if not force:
        try:
            if dest.stat().st_mtime_ns > path.stat().st_mtime_ns:
                with open(dest, "rb") as f:
                    if fidx_version(f.read(_VERSION.size)) == want:
                        return False
        except (FileNotFoundError, FormatError):
            pass
    atomic_write(dest, index_file(path, params).raw)  # 0o644 under umask 022: servable
    return True


def _params_tag(params: ChunkerParams) -> str:
    if params == V1_PARAMS:
        return "v1"
    p = params
    return f"{p.min_size}-{p.avg_size}-{p.max_size}-{p.normalization}-{p.seed}"


class IndexCache:
    """Indexes of the files in a sync folder, in ``DIR/.stitch/sync/``, so a file whose
    path, size, mtime and inode did not change is never read again.

    Entry: ``<key>-<params>.fidx`` where key is the first 32 hex digits of
    SHA-256(``path NUL size NUL mtime_ns NUL inode``) and params is ``v1`` or
    ``min-avg-max-norm-seed``. Damaged entries are dropped, never trusted.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._used: set[str] = set()

    def _name(self, rel: str, st: os.stat_result, params: ChunkerParams) -> str:
        size, mtime, ino = file_fingerprint(st)
        key = hashlib.sha256(f"{rel}\0{size}\0{mtime}\0{ino}".encode()).hexdigest()[:32]
        return f"{key}-{_params_tag(params)}.fidx"

    def get(self, rel: str, st: os.stat_result, params: ChunkerParams) -> LocalIndex | None:
        name = self._name(rel, st, params)
        self._used.add(name)
        path = self.root / name
        try:
            li = parse_any(path.read_bytes(), 1 << 62)
        except FileNotFoundError:
            return None
        except FormatError:
            path.unlink(missing_ok=True)
            return None
        if li.params != params or li.index.file_size != st.st_size:
            path.unlink(missing_ok=True)
            return None
        return li

    def put(self, rel: str, st: os.stat_result, li: LocalIndex) -> None:
        name = self._name(rel, st, li.params)
        self._used.add(name)
        atomic_write(self.root / name, li.raw)

    def prune(self) -> None:
        """Drop every entry not looked up or stored since this cache was opened."""
        if not self.root.is_dir():
            return
        for p in self.root.iterdir():
            if p.name.endswith(".fidx") and p.name not in self._used:
                p.unlink(missing_ok=True)
