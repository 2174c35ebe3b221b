"""The release manifest (``release.json``) and the channel pointer (``latest.json``).

Owns their JSON shapes, strict parsing with bounds and path safety rules; the version order
is ``core.formats.pep440``'s (``version_key`` re-exported here). Signatures over the manifest bytes
live in ``core.formats.signing``; the layout of the repository on the server in
``core.formats.layout``. The normative description is docs/format.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.errors import FormatError, UnsafePathError
from core.formats import pack as _pack
from core.formats.layout import MAX_POINTER_SIZE as MAX_POINTER_SIZE  # (defined beside POINTER)
from core.formats.pack import PackedDelta, PackInfo, PackRef
from core.formats.pep440 import version_key as version_key

MANIFEST_FORMAT = "stitch.release/1"
POINTER_FORMAT = "stitch.pointer/1"

MAX_MANIFEST_SIZE = 64 << 20  # bytes of release.json a client will read
MAX_MANIFEST_DELTAS = 16  # earlier manifests a pointer may name deltas from
_HEX16 = re.compile(r"[0-9a-f]{16}")
MAX_FILES = 1_000_000
MAX_PATH_LENGTH = 4096
MAX_NOTES_LENGTH = 1 << 20

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
    *(f"COM{i}" for i in "123456789¹²³"), *(f"LPT{i}" for i in "123456789¹²³"),
}
_WINDOWS_BAD_CHARS = set('<>:"|?*\\') | {chr(i) for i in range(32)}
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # product and channel names
# A path ``check_path`` accepts without looking at each segment in turn (a manifest of
# thousands of files): plain names joined by single dots, no leading dot, so no empty,
# ".", ".." or ".stitch" segment, no trailing dot, no character Windows refuses. Only the
# reserved device names (CON, COM1.txt...) are left to check.
_PLAIN_SEGMENT = r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"
_PLAIN_PATH = re.compile(rf"\A{_PLAIN_SEGMENT}(?:/{_PLAIN_SEGMENT})*\Z")
# The reserved names a plain path can hold (its segments have no "$" and no superscript),
# as a segment's first dotted part: one search instead of a look at each segment.
_PLAIN_RESERVED = re.compile(r"(?:\A|/)(?:CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(?:[./]|\Z)",
                             re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Delta:
    """A publisher-computed delta that rebuilds a file from one earlier version of it."""

    from_sha256: str  # hex SHA-256 of the file it applies to
    size: int  # bytes of the delta
    sha256: str  # hex SHA-256 of the delta itself
    release: str = ""  # the earlier release whose folder serves it; "" = this release's


MAX_DELTAS = 16  # per file


@dataclass(frozen=True, slots=True)
class Earlier:
    """One earlier release of the channel a manifest names (``history``): its version and
    the SHA-256 of its ``release.json``, which vouches for that manifest."""

    version: str
    sha256: str  # hex SHA-256 of that release's release.json bytes


MAX_HISTORY = 16  # earlier releases one manifest names


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a release."""

    path: str  # relative, '/'-separated, validated by check_path
    size: int
    sha256: str  # hex
    fidx_sha256: str  # hex digest of the published .fidx
    fidx_size: int
    executable: bool = False
    stz_size: int = 0  # size of the compressed chunk copy NAME.stz; 0 = none published
    deltas: tuple[Delta, ...] = ()  # zstd patch-from deltas from earlier versions
    groups_size: int = 0  # size of the index's group table NAME.fidx.groups; 0 = none
    groups_sha256: str = ""  # hex SHA-256 of that table
    sub_size: int = 0  # size of the index's sub-index NAME.fidx.sub; 0 = none
    sub_table_size: int = 0  # bytes of its header and table (what a client fetches first)
    sub_table_sha256: str = ""  # hex SHA-256 of those bytes
    pack: PackRef | None = None  # where the file lies in the release's pack of small files
    # a file not packed whole: where those of its deltas that are lie in the pack
    pack_deltas: tuple[PackedDelta, ...] = ()
    # the publisher found at most its index's length of its bytes in the release before
    # the one that brought this content: its index would find nothing to reuse (§3)
    fresh: bool = False


@dataclass(frozen=True)
class Manifest:
    product: str
    channel: str
    version: str
    created: str  # ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"
    files: tuple[FileEntry, ...]
    expires: str | None = None
    notes: str = ""
    files_url: str = ""  # where the file bytes live when not beside the manifest
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept for forwards compat
    history: tuple[Earlier, ...] = ()  # the channel's earlier releases, newest first
    pack: PackInfo | None = None  # the release's pack of small files (core.formats.pack)

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires is None:
            return False
        return (now or datetime.now(UTC)) >= parse_time(self.expires)


@dataclass(frozen=True, slots=True)
class Pointer:
    """``latest.json``: an unsigned hint naming the channel's current manifest."""

    version: str
    manifest: str  # path of release.json relative to the channel folder
    sha256: str
    # First 16 hex digits of the earlier manifests' SHA-256 from which a delta of this
    # manifest is published (``release.json.<16 hex>.zdelta``, docs/format.md §4).
    manifest_deltas: tuple[str, ...] = ()


def check_path(path: str) -> str:
    """Return ``path`` if it is a safe relative path for any OS; raise ``UnsafePathError``.

    Rejects absolute paths, drive letters, UNC paths, backslashes, ``.``/``..`` and empty
    segments, NUL and control characters, names Windows cannot hold (reserved device names,
    trailing dot or space, ``<>:"|?*``), and overlong paths. The same rules apply on every
    OS so that a release that installs on Linux installs on Windows too.
    """
    if (isinstance(path, str) and len(path) <= MAX_PATH_LENGTH and _PLAIN_PATH.match(path)
            and not _PLAIN_RESERVED.search(path)):
        return path

    def bad(why: str) -> UnsafePathError:
        return UnsafePathError(f"unsafe path in manifest: {path!r} ({why})", path=path)

    if not isinstance(path, str) or not path:
        raise bad("empty")
    if len(path) > MAX_PATH_LENGTH:
        raise bad("too long")
    if path.startswith(("/", "\\")) or re.match(r"\A[A-Za-z]:", path):
        raise bad("absolute")
    for seg in path.split("/"):
        if seg in ("", ".", ".."):
            raise bad("empty, '.' or '..' segment")
        if any(ch in _WINDOWS_BAD_CHARS for ch in seg):
            raise bad("character not allowed in file names")
        if seg.endswith((".", " ")):
            raise bad("trailing dot or space")
        if seg.split(".")[0].upper().rstrip(" ") in _WINDOWS_RESERVED:
            raise bad("reserved device name on Windows")
        if seg == ".stitch" and path.split("/")[0] == seg:
            raise bad("the updater's own state folder")
    return path


def parse_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise FormatError(f"bad timestamp {value!r}", what="manifest") from None


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _obj(data: bytes, limit: int, what: str) -> dict[str, Any]:
    if len(data) > limit:
        raise FormatError(f"{what} larger than {limit} bytes", what=what)
    try:
        obj = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSON and UTF-8 errors, ints over 4300 digits
        raise FormatError(f"{what} is not valid JSON: {e}", what=what) from None
    if not isinstance(obj, dict):
        raise FormatError(f"{what} is not a JSON object", what=what)
    return obj


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str,
         default: Any = ...) -> Any:
    if key not in obj:
        if default is ...:
            raise FormatError(f"{what}: missing '{key}'", what=what)
        return default
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise FormatError(f"{what}: '{key}' has the wrong type", what=what)
    return value


def _size(obj: dict[str, Any], key: str, what: str) -> int:
    value: int = _get(obj, key, int, what)
    if not 0 <= value < 1 << 63:
        raise FormatError(f"{what}: '{key}' out of range", what=what)
    return value


def _hex(obj: dict[str, Any], key: str, what: str) -> str:
    value: str = _get(obj, key, str, what)
    if not _HEX64.match(value):
        raise FormatError(f"{what}: '{key}' is not a hex SHA-256", what=what)
    return value


def _deltas(raw: dict[str, Any], w: str) -> tuple[Delta, ...]:
    items = _get(raw, "deltas", list, w, [])
    if len(items) > MAX_DELTAS:
        raise FormatError(f"{w}: more than {MAX_DELTAS} deltas for one file", what=w)
    out = []
    for d in items:
        if not isinstance(d, dict):
            raise FormatError(f"{w}: a delta is not an object", what=w)
        release = _get(d, "release", str, w, "")
        if release and not _NAME.match(release):
            raise FormatError(f"{w}: bad delta release {release!r}", what=w)
        out.append(Delta(_hex(d, "from", w), _size(d, "size", w), _hex(d, "sha256", w),
                         release))
    return tuple(out)


def _groups(raw: dict[str, Any], w: str) -> dict[str, Any]:
    """The optional group table fields of a file entry: both or neither."""
    if "fidx_groups_size" not in raw and "fidx_groups_sha256" not in raw:
        return {}
    return {"groups_size": _size(raw, "fidx_groups_size", w),
            "groups_sha256": _hex(raw, "fidx_groups_sha256", w)}


def _sub(raw: dict[str, Any], w: str) -> dict[str, Any]:
    """The optional sub-index fields of a file entry: all three or none."""
    keys = ("fidx_sub_size", "fidx_sub_table_size", "fidx_sub_table_sha256")
    if not any(k in raw for k in keys):
        return {}
    size, table_size = _size(raw, keys[0], w), _size(raw, keys[1], w)
    if not 0 < table_size <= size:
        raise FormatError(f"{w}: sub-index table size out of range", what=w)
    return {"sub_size": size, "sub_table_size": table_size,
            "sub_table_sha256": _hex(raw, keys[2], w)}


def _entry(raw: dict[str, Any], w: str, max_file_size: int) -> FileEntry:
    """One file entry, every field checked (naming the first fault)."""
    path = check_path(_get(raw, "path", str, w))
    size = _size(raw, "size", w)
    if size > max_file_size:
        raise FormatError(f"manifest: {path} is {size} bytes, over the limit", what=w)
    deltas = _deltas(raw, w)
    return FileEntry(
        path=path, size=size, sha256=_hex(raw, "sha256", w),
        fidx_sha256=_hex(raw, "fidx_sha256", w), fidx_size=_size(raw, "fidx_size", w),
        executable=_get(raw, "executable", bool, w, False),
        stz_size=_size(raw, "stz_size", w) if "stz_size" in raw else 0,
        deltas=deltas, **_groups(raw, w), **_sub(raw, w),
        pack=_pack.parse_ref(raw, [(d.from_sha256, d.size) for d in deltas], w),
        pack_deltas=_pack.parse_delta_refs(raw, [(d.from_sha256, d.size) for d in deltas],
                                           w) if "pack_deltas" in raw else (),
        fresh=_get(raw, "fresh", bool, w, False),
    )


def parse_manifest(data: bytes, max_file_size: int = 1 << 40) -> Manifest:
    """Parse and check ``release.json``. Raises ``FormatError`` or ``UnsafePathError``."""
    w = "manifest"
    obj = _obj(data, MAX_MANIFEST_SIZE, w)
    if obj.get("format") != MANIFEST_FORMAT:
        raise FormatError(f"not a stitch release manifest (format {obj.get('format')!r})", what=w)
    product = _get(obj, "product", str, w)
    channel = _get(obj, "channel", str, w)
    version = _get(obj, "version", str, w)
    for key, value in (("product", product), ("channel", channel), ("version", version)):
        if not _NAME.match(value):
            raise FormatError(f"manifest: bad {key} {value!r}", what=w)
    created = _get(obj, "created", str, w)
    parse_time(created)
    expires = _get(obj, "expires", (str, type(None)), w, None)
    if expires is not None:
        parse_time(expires)
    notes = _get(obj, "notes", str, w, "")
    if len(notes) > MAX_NOTES_LENGTH:
        raise FormatError("manifest: notes too long", what=w)
    files_url = _get(obj, "files_url", str, w, "")
    raw_files = _get(obj, "files", list, w)
    if len(raw_files) > MAX_FILES:
        raise FormatError(f"manifest: more than {MAX_FILES} files", what=w)
    files: list[FileEntry] = []
    seen: set[str] = set()
    for raw in raw_files:
        if not isinstance(raw, dict):
            raise FormatError("manifest: a file entry is not an object", what=w)
        entry = _entry(raw, w, max_file_size)
        folded = entry.path.casefold()
        if folded in seen:
            raise UnsafePathError(f"duplicate path (ignoring case): {entry.path!r}",
                                  path=entry.path)
        seen.add(folded)
        files.append(entry)
    # A file may not also be a folder of another file ("a" and "a/b").
    for f in files:
        parts = f.path.casefold().split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in seen:
                raise UnsafePathError(f"{f.path!r} is inside a file", path=f.path)
    pack = _pack.parse_info(obj, w)
    _pack.check_refs(pack, [(f.pack, {d.from_sha256: d.size for d in f.deltas})
                            for f in files if f.pack is not None], w,
                     [(f.pack_deltas, {d.from_sha256: d.size for d in f.deltas})
                      for f in files if f.pack_deltas])
    known = {"format", "product", "channel", "version", "created", "expires", "notes",
             "files_url", "files", "history", "pack"}
    extra = {k: v for k, v in obj.items() if k not in known}
    return Manifest(product, channel, version, created, tuple(files), expires, notes,
                    files_url, extra, history=_history(obj, w), pack=pack)


def _history(obj: dict[str, Any], w: str) -> tuple[Earlier, ...]:
    """The optional ``history``: at most ``MAX_HISTORY`` earlier releases, each named once."""
    items = _get(obj, "history", list, w, [])
    if len(items) > MAX_HISTORY:
        raise FormatError(f"{w}: more than {MAX_HISTORY} earlier releases", what=w)
    out: list[Earlier] = []
    for e in items:
        if not isinstance(e, dict):
            raise FormatError(f"{w}: an earlier release is not an object", what=w)
        version = _get(e, "version", str, w)
        if not _NAME.match(version) or any(x.version == version for x in out):
            raise FormatError(f"{w}: bad or repeated earlier version {version!r}", what=w)
        out.append(Earlier(version, _hex(e, "sha256", w)))
    return tuple(out)


def encode_manifest(m: Manifest) -> bytes:
    """Serialize a manifest: UTF-8 JSON, sorted keys, two-space indent, each file entry on
    one line (compact: a release of thousands of small files pays for its manifest's
    whitespace with every update), trailing newline."""
    obj: dict[str, Any] = dict(m.extra)
    obj.update({
        "format": MANIFEST_FORMAT, "product": m.product, "channel": m.channel,
        "version": m.version, "created": m.created, "expires": m.expires, "notes": m.notes,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256, "fidx_sha256": f.fidx_sha256,
             "fidx_size": f.fidx_size, "executable": f.executable,
             **({"stz_size": f.stz_size} if f.stz_size else {}),
             **({"fidx_groups_size": f.groups_size, "fidx_groups_sha256": f.groups_sha256}
                if f.groups_size else {}),
             **({"fidx_sub_size": f.sub_size, "fidx_sub_table_size": f.sub_table_size,
                 "fidx_sub_table_sha256": f.sub_table_sha256} if f.sub_size else {}),
             **({"deltas": [{"from": d.from_sha256, "size": d.size, "sha256": d.sha256,
                             **({"release": d.release} if d.release else {})}
                            for d in f.deltas]} if f.deltas else {}),
             **({"pack": _pack.encode_ref(f.pack, [d.from_sha256 for d in f.deltas])}
                if f.pack is not None else {}),
             **({"pack_deltas": _pack.encode_delta_refs(f.pack_deltas,
                                                        [d.from_sha256 for d in f.deltas])}
                if f.pack_deltas else {}),
             **({"fresh": True} if f.fresh else {})}
            for f in m.files
        ],
    })
    if m.pack is not None:
        obj["pack"] = _pack.encode_info(m.pack)
    if m.files_url:
        obj["files_url"] = m.files_url
    if m.history:
        obj["history"] = [{"version": e.version, "sha256": e.sha256} for e in m.history]
    files = obj.pop("files")
    obj["files"] = _FILES_HERE
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)
    lines = ",\n    ".join(json.dumps(f, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")) for f in files)
    listed = f"[\n    {lines}\n  ]" if files else "[]"
    return (text.replace(json.dumps(_FILES_HERE), listed, 1) + "\n").encode()


_FILES_HERE = "\x00files\x00"  # where encode_manifest puts the file entries, one a line


def parse_pointer(data: bytes) -> Pointer:
    w = "pointer"
    obj = _obj(data, MAX_POINTER_SIZE, w)
    if obj.get("format") != POINTER_FORMAT:
        raise FormatError("not a stitch pointer (latest.json)", what=w)
    version = _get(obj, "version", str, w)
    if not _NAME.match(version):
        raise FormatError(f"pointer: bad version {version!r}", what=w)
    manifest = _get(obj, "manifest", str, w)
    check_path(manifest)
    deltas = obj.get("manifest_deltas", [])
    if (not isinstance(deltas, list) or len(deltas) > MAX_MANIFEST_DELTAS
            or not all(isinstance(d, str) and _HEX16.fullmatch(d) for d in deltas)):
        raise FormatError(f"pointer: manifest_deltas must be a list of at most "
                          f"{MAX_MANIFEST_DELTAS} strings of 16 hex digits", what=w)
    return Pointer(version, manifest, _hex(obj, "sha256", w), tuple(deltas))


def encode_pointer(p: Pointer) -> bytes:
    obj: dict[str, object] = {"format": POINTER_FORMAT, "version": p.version,
                              "manifest": p.manifest, "sha256": p.sha256}
    if p.manifest_deltas:
        obj["manifest_deltas"] = list(p.manifest_deltas)
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
