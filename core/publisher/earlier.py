"""The channel's earlier releases, as ``stitch publish`` finds them in the repository folder.

A new release gets deltas from its files' versions in the last K releases (``bases``), and
names up to ``MAX_HISTORY`` earlier releases in its manifest (``history``, docs/format.md
§3), so that a player several releases behind can find a chain of deltas. Both come from
the channel folder itself: every ``<version>/release.json`` that reads and parses, older
than the version being published, newest first. A release whose folder (or manifest) is
gone is skipped, never an error.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import FormatError
from core.formats.layout import MANIFEST
from core.formats.manifest import MAX_HISTORY, Earlier, FileEntry, Manifest, parse_manifest
from core.formats.pep440 import Key
from core.formats.pep440 import parse as parse_version

# Releases back from which each changed file gets a delta (``--delta-releases``): chosen by
# measurement (docs/benchmarks.md, "Players who skipped releases"); the older ones reach the
# current version through chains of the deltas published since.
DEFAULT_DELTA_RELEASES = 3
MAX_DELTA_RELEASES = 16  # a file's ``deltas`` hold at most 16 (format.md §3)


@dataclass(frozen=True)
class Release:
    """One earlier release found in the channel folder."""

    manifest: Manifest
    folder: Path  # REPO/<channel>/<version>
    sha256: str  # of its release.json bytes
    files: dict[str, FileEntry]  # its files by path


def earlier(chan: Path, key: Key, version: str, limit: int = MAX_HISTORY) -> list[Release]:
    """Up to ``limit`` releases of ``chan`` older than ``key`` (``version``'s sort key),
    newest first; releases that cannot be read are left out."""
    found: list[tuple[Key, str]] = []
    try:
        names = os.listdir(chan)
    except OSError:
        return []
    for name in names:
        if name.startswith(".") or name == version:
            continue
        try:
            k = parse_version(name).key()
        except FormatError:
            continue  # latest.json, minisign.pub, a folder of an older stitch's naming
        if k < key:
            found.append((k, name))
    found.sort(reverse=True)
    out: list[Release] = []
    for _, name in found:
        if len(out) >= limit:
            break
        folder = chan / name
        try:
            data = (folder / MANIFEST).read_bytes()
            man = parse_manifest(data)
        except (OSError, FormatError):
            continue
        if man.version != name:
            continue
        out.append(Release(man, folder, hashlib.sha256(data).hexdigest(), man.by_path()))
    return out


def history(releases: list[Release]) -> tuple[Earlier, ...]:
    """What a manifest names of ``releases`` (newest first): at most ``MAX_HISTORY``."""
    return tuple(Earlier(r.manifest.version, r.sha256) for r in releases[:MAX_HISTORY])
