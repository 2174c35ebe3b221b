"""``stitch verify``: re-hash an install against the manifest it was installed from.

Owns: reading ``.stitch/installed/release.json``, hashing every file it lists (SHA-256,
never trusting the state cache's fingerprints: that is the point of a verify), the report
of damaged and missing files, and marking damaged files in ``state.json`` so that the next
update re-reads them even when their size, mtime and inode look unchanged (bit rot, or a
tool that restored the mtime). The repair itself is an ordinary update (``core.engine.updater``):
a file whose fingerprint does not match is chunked, its good chunks reused and only its
damaged chunks downloaded.

The install's lock (``core.engine.lock``) is held from reading the manifest to saving the state:
a verify never reads files an update is replacing, and never saves over its state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.engine.lock import DEFAULT_WAIT, acquire_existing
from core.engine.meter import Meter
from core.engine.state import InstalledFile, StateStore
from core.errors import ConfigError
from core.formats.manifest import parse_manifest
from core.fsutil import READ_BLOCK, file_fingerprint
from core.progress import CancelToken, Phase, ProgressCallback, no_progress


@dataclass(frozen=True)
class VerifyReport:
    product: str
    channel: str
    version: str
    files: int  # files the installed manifest lists
    bytes_checked: int
    damaged: tuple[str, ...]  # present but of the wrong size or SHA-256
    missing: tuple[str, ...]  # absent, or not a regular file

    @property
    def clean(self) -> bool:
        return not self.damaged and not self.missing


def verify_install(install_dir: Path, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None, lock_wait: float = DEFAULT_WAIT,
                   on_wait: Callable[[str], None] | None = None) -> VerifyReport:
    """Hash every file of the installed release in ``install_dir``, holding its lock.

    Raises ``ConfigError`` if the folder holds no stitch install, ``FormatError`` if the
    installed manifest is damaged, ``CancelledError``, ``InstallBusyError`` when another
    run holds the install for more than ``lock_wait`` seconds (``on_wait`` gets the line
    said meanwhile; default: the progress log), and ``OSError`` for unreadable files.
    """
    cancel = cancel or CancelToken()
    meter = Meter(progress or no_progress)
    store = StateStore(install_dir)
    lock = acquire_existing(store.root, wait=lock_wait, cancel=cancel,
                            on_wait=on_wait or meter.log)
    try:
        return _verify(install_dir, store, meter, cancel)
    finally:
        if lock is not None:
            lock.release()


def _verify(install_dir: Path, store: StateStore, meter: Meter,
            cancel: CancelToken) -> VerifyReport:
    raw = store.installed_manifest()
    if raw is None:
        raise ConfigError(f"{install_dir}: no stitch install here (.stitch/installed/"
                          "release.json is missing)")
    manifest = parse_manifest(raw)
    state = store.load()
    damaged: list[str] = []
    missing: list[str] = []
    present = []
    for f in manifest.files:
        path = install_dir.joinpath(*f.path.split("/"))
        if path.is_symlink() or not path.is_file():
            missing.append(f.path)
        else:
            present.append((f, path))
    meter.phase(Phase.VERIFY, 0, sum(f.size for f, _ in present))
    checked = 0
    fresh: dict[str, InstalledFile] = {}
    for f, path in present:
        meter.current = f.path
        st = path.stat()
        if st.st_size != f.size:
            damaged.append(f.path)
            continue
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(READ_BLOCK):
                cancel.check()
                h.update(block)
                meter.add_done(len(block))
                checked += len(block)
        if h.hexdigest() != f.sha256:
            damaged.append(f.path)
        elif file_fingerprint(path.stat()) == file_fingerprint(st):
            fresh[f.path] = InstalledFile(f.sha256, *file_fingerprint(st))
    # What was just proved right (or wrong) is what the next update should believe.
    if state.version == manifest.version and state.files:
        for p in damaged + missing:
            if p in state.files:
                state.files[p] = InstalledFile(state.files[p].sha256, 0, 0, 0)
        state.files.update({p: v for p, v in fresh.items() if p in state.files})
        store.save(state)
    meter.phase(Phase.DONE, 1, 1)
    return VerifyReport(manifest.product, manifest.channel, manifest.version,
                        len(manifest.files), checked, tuple(damaged), tuple(missing))
