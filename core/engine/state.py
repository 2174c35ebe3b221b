"""The install's own state in ``INSTALL_DIR/.stitch/``.

Owns what is stored there and how: the installed release (``state.json`` plus the installed
manifest's bytes), the cache of chunk indexes (content-addressed by file SHA-256 and chunker
parameters, so a file that did not change is never chunked again), the staging folder and the
journal's location. What the journal means belongs to ``core.engine.commit``.

    .stitch/state.json            installed version, per-file fingerprint and SHA-256, pinned keys
    .stitch/installed/release.json (+ .minisig)   the manifest that was installed
    .stitch/index/<sha256>-<params>.fidx          cached chunk indexes
    .stitch/staging/                              new files being built
    .stitch/journal.json                          present only while a commit is under way
    .stitch/lock                                  the lock one run at a time holds
    (core.engine.lock)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import FormatError
from core.formats.layout import STATE_DIR as STATE_DIR  # (its home: a name on disk)
from core.fsutil import atomic_write, write_all_durably

if TYPE_CHECKING:  # the index cache needs numpy; an update that needs no chunks does not
    from core.chunks.chunker import ChunkerParams
    from core.chunks.fidx import FileIndex

STATE_FORMAT = "stitch.state/1"
# Indexes of more chunks than this are written to the cache a window at a time.
STREAM_INDEX = 1 << 20


@dataclass(frozen=True, slots=True)
class InstalledFile:
    sha256: str
    size: int
    mtime_ns: int
    ino: int


@dataclass
class InstalledState:
    """What is installed. ``files`` maps each path to its SHA-256 and the fingerprint the
    file had when it was last checked."""

    product: str = ""
    channel: str = ""
    version: str | None = None
    files: dict[str, InstalledFile] = field(default_factory=dict)
    # Public keys (base64): the one the last signed release verified with.
    pinned_keys: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        obj: dict[str, Any] = {
            "format": STATE_FORMAT, "product": self.product, "channel": self.channel,
            "version": self.version, "pinned_keys": self.pinned_keys,
            "files": {p: [f.sha256, f.size, f.mtime_ns, f.ino]
                      for p, f in sorted(self.files.items())},
        }
        # json's C encoder (``indent`` would take its Python one: 18 ms for 2,149 files, written
        # twice per update), then one file per line: ``], "`` is only ever between two
        # values (inside a string a quote is escaped).
        return (json.dumps(obj).replace('], "', '],\n "') + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> InstalledState:
        try:
            obj = json.loads(data)
            if obj.get("format") != STATE_FORMAT:
                raise ValueError("unknown format")
            files = {p: InstalledFile(str(v[0]), int(v[1]), int(v[2]), int(v[3]))
                     for p, v in obj["files"].items()}
            return cls(str(obj["product"]), str(obj["channel"]), obj["version"], files,
                       [str(k) for k in obj.get("pinned_keys", [])])
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise FormatError(f"install state is damaged: {e}", what="state") from None


class StateStore:
    """Reads and writes ``INSTALL_DIR/.stitch``. Creates nothing until asked to write."""

    def __init__(self, install_dir: Path) -> None:
        self.install_dir = install_dir
        self.root = install_dir / STATE_DIR
        self.staging = self.root / "staging"
        self.journal = self.root / "journal.json"
        self._index_dir = self.root / "index"
        self._installed_dir = self.root / "installed"

    def load(self) -> InstalledState:
        """The installed state; an empty one when nothing was installed or the state file
        is unreadable (then every file is re-checked, which is safe, only slower)."""
        try:
            return InstalledState.from_json((self.root / "state.json").read_bytes())
        except FileNotFoundError:
            return InstalledState()
        except FormatError:
            return InstalledState()

    def save(self, state: InstalledState, manifest: bytes | None = None,
             signature: bytes | None = None) -> None:
        """Write the state (and the installed manifest and signature), all durable when
        this returns (``fsutil.write_all_durably``)."""
        files: list[tuple[Path, bytes]] = []
        if manifest is not None:
            files.append((self._installed_dir / "release.json", manifest))
            sig = self._installed_dir / "release.json.minisig"
            if signature is not None:
                files.append((sig, signature))
            else:
                sig.unlink(missing_ok=True)
        files.append((self.root / "state.json", state.to_json()))
        write_all_durably(files)

    def installed_manifest(self) -> bytes | None:
        try:
            return (self._installed_dir / "release.json").read_bytes()
        except FileNotFoundError:
            return None

    def installed_release(self) -> tuple[bytes, bytes | None] | None:
        """The installed manifest and its signature (None: unsigned), or None."""
        manifest = self.installed_manifest()
        if manifest is None:
            return None
        try:
            return manifest, (self._installed_dir / "release.json.minisig").read_bytes()
        except FileNotFoundError:
            return manifest, None

    def _index_path(self, sha256: str, params: ChunkerParams) -> Path:
        return self._index_dir / self.index_name(sha256, params)

    @staticmethod
    def index_name(sha256: str, params: ChunkerParams) -> str:
        """The file name of the cached index of that content (``index_path``'s)."""
        p = params
        return f"{sha256}-{p.min_size}-{p.avg_size}-{p.max_size}-{p.normalization}-{p.seed}.fidx"

    def index_names(self) -> frozenset[str]:
        """The names of the cached indexes now (one listing: a scan of thousands of
        installed files asks for each file's, and most have none)."""
        try:
            return frozenset(os.listdir(self._index_dir))
        except OSError:
            return frozenset()

    def index_path(self, sha256: str, params: ChunkerParams) -> Path:
        """Where the cached index of that content is (or would be) kept."""
        return self._index_path(sha256, params)

    def cached_index(self, sha256: str, params: ChunkerParams) -> FileIndex | None:
        """The cached index of the content with this SHA-256, or None. A damaged cache
        entry is dropped, never trusted."""
        from core.chunks.fidx import decode

        path = self._index_path(sha256, params)
        try:
            idx = decode(path.read_bytes())
        except FileNotFoundError:
            return None
        except FormatError:
            path.unlink(missing_ok=True)
            return None
        if idx.sha256.hex() != sha256:
            path.unlink(missing_ok=True)
            return None
        return idx

    def cache_index(self, index: FileIndex, data: bytes | None = None) -> None:
        from core.chunks.fidx import encode

        path = self._index_path(index.sha256.hex(), index.params)
        if not path.exists():
            # No fsync: a cache entry lost or torn by a power cut is detected and dropped.
            if data is None and len(index) > STREAM_INDEX:
                from core.chunks.diskindex import write_index

                # A big index (a scanned 50 GB file: 60-250 MB) without a second copy.
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                write_index(tmp, index)
                os.replace(tmp, path)
                return
            atomic_write(path, data if data is not None else encode(index), durable=False)

    def prune_index_cache(self, keep: set[str]) -> None:
        """Drop cached indexes of content no longer installed (``keep``: SHA-256 hex)."""
        if not self._index_dir.is_dir():
            return
        for p in self._index_dir.iterdir():
            if p.name.split("-", 1)[0] not in keep:
                p.unlink(missing_ok=True)

    def token(self) -> bytes:
        """What a check and plan depend on, to compare later: ``state.json``'s bytes, the
        journal's, and each staging file's name, size and mtime. Equal tokens: no other run
        committed, recovered, verified or built anything in between."""
        parts = []
        for path in (self.root / "state.json", self.journal):
            try:
                parts.append(path.read_bytes())
            except FileNotFoundError:
                parts.append(b"-")
        try:
            with os.scandir(self.staging) as it:
                for e in sorted(it, key=lambda e: e.name):
                    st = e.stat(follow_symlinks=False)
                    parts.append(f"{e.name} {st.st_size} {st.st_mtime_ns}".encode())
        except FileNotFoundError:
            pass
        return hashlib.sha256(b"\0".join(parts)).digest()

    def clear_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
