"""Where the player installed: one record per user and per product, and the per-user folders.

A record is written only after an install succeeded into a folder the player confirmed (or
the config named), never before; it lets the window and ``stitch --update`` find the game
next time when the config says ``install_dir = "ask"``, and lets ``stitch uninstall`` find
the shortcuts it made. The place, per platform::

    Linux, BSD   $XDG_STATE_HOME/stitch/installs/<product>.json  (default ~/.local/state)
    Windows      <LocalAppData>\\stitch\\installs\\<product>.json
    macOS        ~/Library/Application Support/stitch/installs/<product>.json

The file (``docs/format.md`` §11)::

    {"format": "stitch.install/1", "product": "dcrawl", "name": "Dungeon Crawl",
     "install_dir": "/home/ann/.local/share/Dungeon Crawl", "version": "1.1",
     "channel": "stable", "url": "https://cdn.example.com/dcrawl/",
     "config": "/opt/dcrawl/updater.toml", "pubkeys": ["RWQ..."],
     "shortcuts": ["/home/ann/.local/share/applications/stitch-dcrawl.desktop", ...],
     "registry": []}  # Windows: ["Software\\Microsoft\\...\\Uninstall\\stitch-dcrawl"]

On Windows, <LocalAppData> is the Known Folder ``FOLDERID_LocalAppData`` asked from the
shell (``app/winfolders.py``), ``%LOCALAPPDATA%`` only when the shell cannot answer.

The per-user default install folder (``install_dir = "ask"``) needs no elevation:
``<LocalAppData>\\Programs\\<name>`` on Windows (as Squirrel and Velopack do),
``$XDG_DATA_HOME/<name>`` on Linux (default ``~/.local/share/<name>``: the XDG place for a
user's application data, always writable, and the mirror of the Windows choice; ``~/Games``
is no standard and clutters the visible home), ``~/Applications/<name>`` on macOS.

No Qt here: the silent launcher mode and ``stitch uninstall`` use it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.fsutil import atomic_write

RECORD_FORMAT = "stitch.install/1"


@dataclass
class InstallRecord:
    """One remembered install."""

    product: str
    install_dir: Path
    name: str = ""
    version: str | None = None
    channel: str = ""
    url: str = ""
    config: str = ""  # the updater.toml used
    pubkeys: list[str] = field(default_factory=list)
    shortcuts: list[str] = field(default_factory=list)  # files made for this install
    registry: list[str] = field(default_factory=list)  # HKCU keys made (Windows)

    def to_json(self) -> bytes:
        obj: dict[str, Any] = {"format": RECORD_FORMAT, **asdict(self)}
        obj["install_dir"] = str(self.install_dir)
        return (json.dumps(obj, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> InstallRecord:
        obj = json.loads(data)
        if not isinstance(obj, dict) or obj.get("format") != RECORD_FORMAT:
            raise ValueError("not a stitch install record")
        return cls(
            product=str(obj["product"]),
            install_dir=Path(str(obj["install_dir"])),
            name=str(obj.get("name", "")),
            version=None if obj.get("version") is None else str(obj["version"]),
            channel=str(obj.get("channel", "")),
            url=str(obj.get("url", "")),
            config=str(obj.get("config", "")),
            pubkeys=[str(k) for k in obj.get("pubkeys", [])],
            shortcuts=[str(s) for s in obj.get("shortcuts", [])],
            registry=[str(k) for k in obj.get("registry", [])],
        )


def home() -> Path:
    return Path(os.path.expanduser("~"))


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var, "")
    # The spec: a relative path in these variables is invalid and is ignored.
    return Path(value) if value and os.path.isabs(value) else home() / default


def state_home() -> Path:
    """The folder where stitch keeps per-user records (created only when one is written)."""
    if sys.platform == "win32":
        return _local_app_data() / "stitch"
    if sys.platform == "darwin":
        return home() / "Library" / "Application Support" / "stitch"
    return _xdg("XDG_STATE_HOME", ".local/state") / "stitch"


def data_home() -> Path:
    """``$XDG_DATA_HOME`` (Linux and other freedesktop systems)."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def _local_app_data() -> Path:
    """The Known Folder LocalAppData (``app/winfolders.py``; ``%LOCALAPPDATA%`` only as the
    fallback)."""
    from app.winfolders import local_app_data

    return local_app_data()


def user_install_dir(folder_name: str) -> Path:
    """The per-user default install folder for a game called ``folder_name``."""
    if sys.platform == "win32":
        return _local_app_data() / "Programs" / folder_name
    if sys.platform == "darwin":
        return home() / "Applications" / folder_name
    return data_home() / folder_name


def record_path(product: str) -> Path:
    return state_home() / "installs" / f"{product}.json"


def load(product: str) -> InstallRecord | None:
    """The remembered install of ``product``, or None (none, or unreadable: then the
    player is asked again, which is safe)."""
    if not product:
        return None
    try:
        return InstallRecord.from_json(record_path(product).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(record: InstallRecord) -> None:
    atomic_write(record_path(record.product), record.to_json())


def forget(product: str) -> bool:
    """Remove the record; True if there was one."""
    try:
        record_path(product).unlink()
    except FileNotFoundError:
        return False
    return True


def writable(folder: Path) -> bool:
    """Whether this user can create files in ``folder``, or create ``folder`` (the nearest
    existing parent is tried then). Tried for real, with a probe created and removed at
    once: ``os.access`` ignores Windows' ACLs and virtualisation of Program Files."""
    probe_in = Path(folder)
    for _ in range(64):  # bounded: a path has far fewer parts
        if probe_in.is_dir():
            break
        if probe_in.exists() or probe_in.parent == probe_in:
            return False  # a file is in the way, or nothing of the path exists
        probe_in = probe_in.parent
    probe = probe_in / f".stitch-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.rmdir()
    return True
