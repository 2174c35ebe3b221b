"""Where things live in a release repository, on disk (publisher) and as URLs (client).

    REPO/<channel>/latest.json
    REPO/<channel>/<version>/release.json (+ .minisig)
    REPO/<channel>/<version>/files/<path>  (+ <path>.fidx, .fidx.groups, .fidx.sub)
    REPO/<channel>/<version>/small.pack    (the release's small files, core.formats.pack)
"""

from __future__ import annotations

import re
from urllib.parse import quote

POINTER = "latest.json"
MAX_POINTER_SIZE = 64 << 10  # bytes of latest.json a client will read
MANIFEST = "release.json"
SIGNATURE = "release.json.minisig"
FILES = "files"
FIDX_SUFFIX = ".fidx"
GROUPS_SUFFIX = ".fidx.groups"  # the group table of a two-level index
SUB_SUFFIX = ".fidx.sub"  # the sub-index: smaller chunks inside changed chunks
PACK = "small.pack"  # the release's pack of small files, beside its manifest
# An install's own folder of updater state (core.engine.state); never part of a release,
# so `stitch publish` leaves it out of a game folder.
STATE_DIR = ".stitch"


# What ``quote(p, safe="/")`` leaves as it is: a part of only these needs no quoting (an
# update asks for thousands of files' URLs, and ``quote`` costs microseconds each).
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~/-]*")


def pointer_url(base: str, channel: str) -> str:
    """The URL of ``channel``'s pointer in the repository at ``base``."""
    return join_url(base, channel, POINTER)


def join_url(base: str, *parts: str) -> str:
    """``base`` + '/'-joined parts, each percent-encoded (slashes inside a part are kept)."""
    out = base.rstrip("/")
    for p in parts:
        out += "/" + (p if _UNQUOTED.fullmatch(p) else quote(p, safe="/"))
    return out


def manifest_rel(version: str) -> str:
    """Path of a version's manifest relative to its channel folder (as in latest.json)."""
    return f"{version}/{MANIFEST}"


def file_url(base: str, channel: str, version: str, path: str, files_url: str = "") -> str:
    """URL of a release file's bytes; ``files_url`` (a mirror of the files/ folder) wins."""
    if files_url:
        return join_url(files_url, path)
    return join_url(base, channel, version, FILES, path)


def fidx_url(base: str, channel: str, version: str, path: str) -> str:
    return join_url(base, channel, version, FILES, path + FIDX_SUFFIX)


def groups_url(base: str, channel: str, version: str, path: str) -> str:
    return join_url(base, channel, version, FILES, path + GROUPS_SUFFIX)


def sub_url(base: str, channel: str, version: str, path: str) -> str:
    return join_url(base, channel, version, FILES, path + SUB_SUFFIX)


def pack_url(base: str, channel: str, version: str) -> str:
    """URL of a release's pack of small files (beside its manifest, even with ``files_url``)."""
    return join_url(base, channel, version, PACK)
