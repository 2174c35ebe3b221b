"""A small writer of Windows shortcut files (``.lnk``), the Shell Link Binary File Format
([MS-SHLLINK], Microsoft Open Specifications), pure Python so it is tested on any system.

What is written, and nothing else (every offset is the specification's)::

    ShellLinkHeader   76 bytes: HeaderSize 0x4C, LinkCLSID 00021401-0000-0000-C000-
                      000000000046, LinkFlags, FileAttributes NORMAL, times 0, FileSize 0,
                      IconIndex, ShowCommand SW_SHOWNORMAL, no hot key
    LinkInfo          VolumeIDAndLocalBasePath: a VolumeID (DRIVE_FIXED, serial 0, empty
                      label) and the target's absolute path, ANSI (characters the ANSI code
                      page lacks become '?') and, header size 0x24, Unicode as well
    StringData        Unicode, each a 16-bit character count then UTF-16LE:
                      NAME_STRING (description), WORKING_DIR, COMMAND_LINE_ARGUMENTS,
                      ICON_LOCATION, each only when given
    ExtraData         the TerminalBlock (4 zero bytes)

No LinkTargetIDList: Windows resolves a link by its LinkInfo path, and that needs no shell
item ids (which depend on the machine's shell namespace). ``parse`` reads the same subset
back, for tests and for support staff.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

CLSID = bytes.fromhex("0114020000000000c000000000000046")

HAS_LINK_INFO = 0x02
HAS_NAME = 0x04
HAS_WORKING_DIR = 0x10
HAS_ARGUMENTS = 0x20
HAS_ICON_LOCATION = 0x40
IS_UNICODE = 0x80

FILE_ATTRIBUTE_NORMAL = 0x80
SW_SHOWNORMAL = 1
DRIVE_FIXED = 3
_HEADER = struct.Struct("<I16sIIQQQIiIHHII")  # 76 bytes


@dataclass(frozen=True)
class Link:
    """What a shortcut says."""

    target: str  # absolute Windows path of the program
    arguments: str = ""
    working_dir: str = ""
    description: str = ""
    icon: str = ""  # a .exe, .dll or .ico; "" = the target's own icon
    icon_index: int = 0


def _string(s: str) -> bytes:
    data = s.encode("utf-16-le")
    if len(data) // 2 > 0xFFFF:
        raise ValueError("shortcut string too long")
    return struct.pack("<H", len(data) // 2) + data


def _link_info(path: str) -> bytes:
    volume_label = b"\x00"
    volume = struct.pack("<IIII", 16 + len(volume_label), DRIVE_FIXED, 0, 16) + volume_label
    ansi = path.encode("mbcs" if sys.platform == "win32" else "cp1252", "replace") + b"\x00"
    suffix = b"\x00"
    unicode_path = path.encode("utf-16-le") + b"\x00\x00"
    unicode_suffix = b"\x00\x00"
    header_size = 0x24
    volume_at = header_size
    path_at = volume_at + len(volume)
    suffix_at = path_at + len(ansi)
    unicode_path_at = suffix_at + len(suffix)
    unicode_suffix_at = unicode_path_at + len(unicode_path)
    size = unicode_suffix_at + len(unicode_suffix)
    head = struct.pack("<IIIIIIIII", size, header_size, 0x1, volume_at, path_at, 0,
                       suffix_at, unicode_path_at, unicode_suffix_at)
    return head + volume + ansi + suffix + unicode_path + unicode_suffix


def build(link: Link) -> bytes:
    """The ``.lnk`` bytes for ``link``."""
    if not ((len(link.target) > 2 and link.target[1] == ":") or link.target.startswith("\\\\")):
        raise ValueError(f"a shortcut target must be an absolute Windows path: {link.target!r}")
    flags = HAS_LINK_INFO | IS_UNICODE
    strings = b""
    for flag, value in ((HAS_NAME, link.description), (HAS_WORKING_DIR, link.working_dir),
                        (HAS_ARGUMENTS, link.arguments), (HAS_ICON_LOCATION, link.icon)):
        if value:
            flags |= flag
            strings += _string(value)
    header = _HEADER.pack(0x4C, CLSID, flags, FILE_ATTRIBUTE_NORMAL, 0, 0, 0, 0,
                          link.icon_index, SW_SHOWNORMAL, 0, 0, 0, 0)
    return header + _link_info(link.target) + strings + b"\x00\x00\x00\x00"


def parse(data: bytes) -> Link:
    """Read back a shortcut with the parts ``build`` writes (and skip a LinkTargetIDList).
    Raises ``ValueError`` for anything else."""
    if len(data) < _HEADER.size:
        raise ValueError("too short for a shell link header")
    (size, clsid, flags, _attrs, _c, _a, _w, _fs, icon_index, _show, _hot, _r1, _r2,
     _r3) = _HEADER.unpack_from(data)
    if size != 0x4C or clsid != CLSID:
        raise ValueError("not a shell link")
    pos = _HEADER.size
    if flags & 0x01:  # HasLinkTargetIDList: skipped
        (idlist_size,) = struct.unpack_from("<H", data, pos)
        pos += 2 + idlist_size
    target = ""
    if flags & HAS_LINK_INFO:
        info = data[pos:]
        (info_size, header_size, info_flags, _vol, path_at, _net, _suffix_at) = \
            struct.unpack_from("<IIIIIII", info)
        if info_flags & 1:
            if header_size >= 0x24:
                (unicode_at,) = struct.unpack_from("<I", info, 28)
                end = unicode_at
                while info[end:end + 2] != b"\x00\x00":
                    end += 2
                target = info[unicode_at:end].decode("utf-16-le")
            else:
                target = info[path_at:info.index(b"\x00", path_at)].decode("cp1252")
        pos += info_size
    values = {}
    for flag in (HAS_NAME, 0x08, HAS_WORKING_DIR, HAS_ARGUMENTS, HAS_ICON_LOCATION):
        if flags & flag:
            (count,) = struct.unpack_from("<H", data, pos)
            unit = 2 if flags & IS_UNICODE else 1
            raw = data[pos + 2:pos + 2 + count * unit]
            values[flag] = raw.decode("utf-16-le" if unit == 2 else "cp1252")
            pos += 2 + count * unit
    return Link(target=target, arguments=values.get(HAS_ARGUMENTS, ""),
                working_dir=values.get(HAS_WORKING_DIR, ""),
                description=values.get(HAS_NAME, ""), icon=values.get(HAS_ICON_LOCATION, ""),
                icon_index=icon_index)
