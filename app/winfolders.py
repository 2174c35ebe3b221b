"""The user's shell folders on Windows, from the Known Folder API (``SHGetKnownFolderPath``
in shell32, through ctypes), the way Explorer and installers find them.

Environment variables (``%LOCALAPPDATA%``, ``%APPDATA%``, ``%USERPROFILE%``) are only the
fallback: they are copies made at logon, absent in some service and scheduled-task
environments, and wrong when an administrator or the user has moved a folder (a Desktop
redirected to OneDrive or to another drive changes the Known Folder, not the variables).

    LOCAL_APP_DATA  FOLDERID_LocalAppData  C:\\Users\\<user>\\AppData\\Local
    PROGRAMS        FOLDERID_Programs      ...\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs
    DESKTOP         FOLDERID_Desktop       C:\\Users\\<user>\\Desktop

``STITCH_FOLDERS_FROM_ENV=1`` makes stitch use the environment variables only (the test
suites set it, with the variables pointing at a temporary folder, so no test writes into the
real profile; a portable setup can use it the same way).

No Qt here; nothing Windows-only is imported on other systems (``known_folder`` is then None).
"""

from __future__ import annotations

import ctypes
import os
import sys
import uuid
from pathlib import Path

LOCAL_APP_DATA = "F1B32785-6FBA-4FCF-9D55-7B8E7F157091"
PROGRAMS = "A77F5D77-2E2B-44C3-A6A2-ABA601054A51"
DESKTOP = "B4BFCC3A-DB2C-424C-B029-7FE99A87C641"

# Return the path even when the folder does not exist yet (a fresh profile's Programs
# folder): the caller creates it when it writes there.
KF_FLAG_DONT_VERIFY = 0x00004000


class _GUID(ctypes.Structure):
    _fields_ = [("Data1", ctypes.c_uint32), ("Data2", ctypes.c_uint16),
                ("Data3", ctypes.c_uint16), ("Data4", ctypes.c_ubyte * 8)]


def from_env_only() -> bool:
    return os.environ.get("STITCH_FOLDERS_FROM_ENV", "") == "1"


def known_folder(folder_id: str) -> Path | None:
    """The path of a Known Folder (``folder_id``: one of the GUIDs above), or None when it
    cannot be asked (not Windows, shell32 missing, the call failed, or
    ``STITCH_FOLDERS_FROM_ENV=1``)."""
    if sys.platform != "win32" or from_env_only():
        return None
    try:
        shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined,unused-ignore]
        ole32 = ctypes.WinDLL("ole32")  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return None
    get = shell32.SHGetKnownFolderPath
    get.argtypes = [ctypes.POINTER(_GUID), ctypes.c_uint32, ctypes.c_void_p,
                    ctypes.POINTER(ctypes.c_void_p)]
    get.restype = ctypes.c_long  # HRESULT
    ole32.CoTaskMemFree.argtypes = [ctypes.c_void_p]
    ole32.CoTaskMemFree.restype = None
    guid = _GUID.from_buffer_copy(uuid.UUID(folder_id).bytes_le)
    buf = ctypes.c_void_p()
    hr = get(ctypes.byref(guid), KF_FLAG_DONT_VERIFY, None, ctypes.byref(buf))
    try:
        path = ctypes.wstring_at(buf.value) if hr == 0 and buf.value else ""
    finally:
        ole32.CoTaskMemFree(buf)  # freed whether or not the call succeeded (its documentation)
    return Path(path) if path and os.path.isabs(path) else None


def _env(var: str) -> Path | None:
    value = os.environ.get(var, "")
    return Path(value) if value and os.path.isabs(value) else None


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def local_app_data() -> Path:
    """``FOLDERID_LocalAppData``, else ``%LOCALAPPDATA%``, else ``~\\AppData\\Local``."""
    return known_folder(LOCAL_APP_DATA) or _env("LOCALAPPDATA") or (
        _home() / "AppData" / "Local")


def start_menu_programs() -> Path:
    """``FOLDERID_Programs`` (the user's Start menu), else under ``%APPDATA%``."""
    found = known_folder(PROGRAMS)
    if found is not None:
        return found
    appdata = _env("APPDATA") or _home() / "AppData" / "Roaming"
    return appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs"


def desktop() -> Path:
    """``FOLDERID_Desktop``, else ``%USERPROFILE%\\Desktop``."""
    return known_folder(DESKTOP) or (_env("USERPROFILE") or _home()) / "Desktop"
