"""The release's pack of small files (``<version>/small.pack``, docs/format.md §12), as
``stitch publish`` writes it: after every file of the release is written, each file of at
most ``max_file`` bytes gets its content (one zstd frame) and its deltas (the ``.zdelta``
files' bytes) copied into one file, the deltas first and the contents after, each part in
path order, so what one update needs lies close together (a player one release behind
needs the deltas of the changed files: one stretch of the pack). A bigger file (up to
``pack.MAX_DELTA_FILE``) gets its deltas of at most ``max_file`` bytes packed too, not its
content (``pack_deltas``). Identical entries are stored once. The per-file files stay: old
clients, and the fallbacks, use them.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from core.formats import delta, pack
from core.formats.layout import FILES, PACK
from core.formats.manifest import FileEntry
from core.formats.pack import PackedDelta, PackInfo, PackRef


def write_pack(work: Path, entries: list[FileEntry], max_file: int, level: int
               ) -> tuple[list[FileEntry], PackInfo | None]:
    """Write ``work``'s pack (``work`` being the version's folder being published) of the
    files of ``entries`` of 1 to ``max_file`` bytes; return the entries with their
    ``pack`` fields and the pack's size and SHA-256 (None, and nothing written, when no
    file is that small or zstd is missing). A delta whose file cannot be read or does not
    match its entry is left out of the pack (the client fetches its own file)."""
    small = sorted((e for e in entries if 0 < e.size <= max_file), key=lambda e: e.path)
    # A bigger file's small deltas too (``pack_deltas``): each would cost a request of its
    # own for a few hundred bytes.
    bigger = sorted((e for e in entries if max_file < e.size <= pack.MAX_DELTA_FILE
                     and any(d.size <= max_file for d in e.deltas)), key=lambda e: e.path)
    if not small or not pack.available():
        return entries, None
    files = work / FILES
    out = work / PACK
    sha = hashlib.sha256()
    at = 0
    stored: dict[str, tuple[int, int]] = {}  # SHA-256 of an entry's bytes -> (offset, size)

    with open(out, "wb") as f:
        def put(data: bytes, key: str) -> int:
            nonlocal at
            if key not in stored:
                f.write(data)
                sha.update(data)
                stored[key] = (at, len(data))
                at += len(data)
            return stored[key][0]

        put(pack.HEADER, "header")
        deltas: dict[str, tuple[PackedDelta, ...]] = {}
        for e in sorted([*small, *bigger], key=lambda e: e.path):
            got = []
            for d in e.deltas:
                if e.size > max_file and d.size > max_file:
                    continue  # it carries its bytes: a request of its own is worth it
                try:
                    data = (files / delta.name_for(e.path, d.from_sha256)).read_bytes()
                except OSError:
                    continue
                if len(data) == d.size and hashlib.sha256(data).hexdigest() == d.sha256:
                    got.append(PackedDelta(d.from_sha256, put(data, "d" + d.sha256)))
            deltas[e.path] = tuple(got)
        refs: dict[str, PackRef] = {}
        for e in small:
            key = "c" + e.sha256
            if key in stored:
                offset, size = stored[key]
            else:
                data = pack.compress((files / Path(*e.path.split("/"))).read_bytes(), level)
                offset, size = put(data, key), len(data)
            refs[e.path] = PackRef(offset, size, deltas[e.path])
    info = PackInfo(at, sha.hexdigest())
    # (a packed file is not ``fresh``: its content is in the pack, whatever a player has)
    return [replace(e, pack=refs[e.path], fresh=False) if e.path in refs
            else replace(e, pack_deltas=deltas[e.path]) if deltas.get(e.path)
            else e for e in entries], info
