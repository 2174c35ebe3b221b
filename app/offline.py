"""Whether an installed release can be played without asking the server.

``--launch`` (and the window's Play after a failed check) start the game only when the
install is complete: a release was installed (``.stitch/state.json`` names a version and the
installed manifest is there), no commit was left half-done (no journal), every file of the
installed manifest is on disk with the size, modification time and file id recorded when it
was last verified (the state cache's fingerprint, as ``core.engine.updater`` vouches for files).
No file is read: a launcher pays a few ``stat`` calls.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.engine.state import StateStore
from core.errors import ContentError
from core.formats.manifest import parse_manifest
from core.fsutil import file_fingerprint


def playable_version(install_dir: Path) -> str | None:
    """The installed version if the install is complete and unchanged, else None."""
    store = StateStore(Path(install_dir))
    state = store.load()
    if state.version is None or store.journal.exists():
        return None
    data = store.installed_manifest()
    if data is None:
        return None
    try:
        manifest = parse_manifest(data)
    except ContentError:  # a damaged installed manifest: not playable offline
        return None
    if manifest.version != state.version:
        return None
    for f in manifest.files:
        have = state.files.get(f.path)
        if have is None or have.sha256 != f.sha256:
            return None
        try:
            st = os.stat(Path(install_dir).joinpath(*f.path.split("/")))
        except OSError:
            return None
        if file_fingerprint(st) != (have.size, have.mtime_ns, have.ino):
            return None
    return state.version
