"""Menu and desktop shortcuts made after a first install (Linux and other freedesktop systems).

A shortcut starts the updater with its config, so a click checks for an update and then
offers Play. What is made (``updater.toml`` ``[install] shortcuts``)::

    "menu"     $XDG_DATA_HOME/applications/stitch-<product>.desktop
    "desktop"  <desktop folder>/stitch-<product>.desktop  (executable, as desktops require)
    icon       $XDG_DATA_HOME/icons/hicolor/<N>x<N>/apps/stitch-<product>.png, one per size
               (or scalable/apps/…svg for an SVG icon)

On Windows (``make_windows``, written by ``app/winlnk.py``), in the Known Folders the shell
reports (``app/winfolders.py``; the environment variables only as the fallback)::

    "menu"     <FOLDERID_Programs>\\<name>.lnk  (fallback: %APPDATA%\\Microsoft\\Windows\\
                                               Start Menu\\Programs)
    "desktop"  <FOLDERID_Desktop>\\<name>.lnk   (fallback: %USERPROFILE%\\Desktop)
    icon       the configured icon when it is an .ico, else the updater executable's own

The paths made are returned, and kept in the install record (``app/installs.py``) so that
``stitch uninstall`` removes exactly them. macOS gets none yet (docs/publishing.md).
"""

from __future__ import annotations

import os
import re
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

from app.config import AppConfig
from app.installs import data_home, home
from core.fsutil import atomic_write

_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def supported() -> bool:
    """Shortcuts are made on freedesktop systems and Windows (not yet on macOS)."""
    return sys.platform != "darwin"


def updater_command(config_path: Path) -> list[str]:
    """The command a shortcut runs: this updater (frozen executable, or this Python running
    ``app.cli``) with its config."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--config", str(config_path)]
    return [sys.executable, "-m", "app.cli", "--config", str(config_path)]


def exec_line(argv: Sequence[str]) -> str:
    """A desktop entry's ``Exec`` value for ``argv``: arguments quoted per the Desktop Entry
    spec (reserved characters inside double quotes; ``"`` `` ` `` ``$`` ``\\`` escaped by a
    backslash), ``%`` doubled, then the string-value escape of backslashes."""
    parts = []
    for arg in argv:
        arg = arg.replace("%", "%%")
        if any(c in _EXEC_RESERVED for c in arg) or not arg:
            arg = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
        parts.append(arg)
    return " ".join(parts).replace("\\", "\\\\")


def desktop_dir() -> Path:
    """The user's desktop folder: ``XDG_DESKTOP_DIR`` from ``user-dirs.dirs``, else
    ``~/Desktop``."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(home() / ".config")
    try:
        text = (Path(config_home) / "user-dirs.dirs").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    for line in text.splitlines():
        m = re.match(r'^\s*XDG_DESKTOP_DIR\s*=\s*"(.*)"\s*$', line)
        if m:
            value = m.group(1).replace("$HOME", str(home()))
            if os.path.isabs(value):
                return Path(value)
    return home() / "Desktop"


def _png_size(path: Path) -> int | None:
    """The width of a square PNG (its IHDR), or None if it is not one."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width if width == height else None


def _icon_sources(cfg: AppConfig) -> list[tuple[str, Path]]:
    """(hicolor size folder, source file) pairs: the configured icon, else stitch's own."""
    from app.assets import asset_path

    if cfg.icon is not None:
        if cfg.icon.suffix.lower() == ".svg":
            return [("scalable", cfg.icon)]
        size = _png_size(cfg.icon)
        return [(f"{size}x{size}", cfg.icon)] if size else []
    out = []
    for size in (16, 32, 48, 64, 128, 256):
        png = asset_path(f"icon-{size}.png")
        if png.is_file():
            out.append((f"{size}x{size}", png))
    return out


def entry_text(cfg: AppConfig, command: Sequence[str], icon_name: str, install_dir: Path) -> str:
    name = cfg.display_name or "Game"
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",  # the newest desktop-file-validate (Debian) knows
        f"Name={_value(name)}",
        f"Comment={_value(f'Update and play {name}')}",
        f"Exec={exec_line(command)}",
        f"Path={_value(str(install_dir))}",
        f"Icon={icon_name}",
        "Terminal=false",
        "Categories=Game;",
        "",
    ]
    return "\n".join(lines)


def _value(s: str) -> str:
    """A desktop entry string value: backslash, newline, tab escaped."""
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def make(cfg: AppConfig, install_dir: Path, command: Sequence[str] | None = None) -> list[Path]:
    """Write the configured shortcuts and their icon; return every path written."""
    if not supported() or not cfg.shortcuts or not cfg.product:
        return []
    if sys.platform == "win32":
        from app import winfolders

        return make_windows(cfg, install_dir, command or updater_command(cfg.path),
                            winfolders.start_menu_programs(), winfolders.desktop())
    base = f"stitch-{cfg.product}"
    written: list[Path] = []
    icons = data_home() / "icons" / "hicolor"
    for size_dir, src in _icon_sources(cfg):
        dest = icons / size_dir / "apps" / (base + src.suffix.lower())
        atomic_write(dest, src.read_bytes())
        written.append(dest)
    icon_name = base if written else "applications-games"
    text = entry_text(cfg, command or updater_command(cfg.path), icon_name, install_dir)
    targets = []
    if "menu" in cfg.shortcuts:
        targets.append((data_home() / "applications" / f"{base}.desktop", 0o644))
    if "desktop" in cfg.shortcuts:
        targets.append((desktop_dir() / f"{base}.desktop", 0o755))  # desktops want +x
    for path, mode in targets:
        atomic_write(path, text.encode("utf-8"), mode=mode)
        written.append(path)
    return written


def make_windows(cfg: AppConfig, install_dir: Path, command: Sequence[str], programs: Path,
                 desktop: Path) -> list[Path]:
    """Windows ``.lnk`` shortcuts in the Start menu's ``programs`` folder and on the
    ``desktop`` folder, as configured; returns the paths written."""
    import subprocess

    from app.winlnk import Link, build

    name = _lnk_name(cfg.display_name or cfg.product)
    icon = str(cfg.icon) if cfg.icon is not None and cfg.icon.suffix.lower() == ".ico" else ""
    link = Link(
        target=command[0],
        arguments=subprocess.list2cmdline(list(command[1:])),
        working_dir=str(install_dir),
        description=f"Update and play {cfg.display_name or cfg.product}",
        icon=icon or command[0],
    )
    data = build(link)
    written = []
    for kind, folder in (("menu", programs), ("desktop", desktop)):
        if kind in cfg.shortcuts:
            path = folder / f"{name}.lnk"
            atomic_write(path, data)
            written.append(path)
    return written


def _lnk_name(name: str) -> str:
    """A file name Windows accepts for the shortcut."""
    return re.sub(r'[<>:"/\\|?*\x00-\x1f]', "", name).strip(" .") or "Game"


def remove(paths: Sequence[str]) -> list[str]:
    """Remove shortcut files made by ``make``; return those that could not be removed."""
    failed = []
    for p in paths:
        try:
            Path(p).unlink(missing_ok=True)
        except OSError as e:
            failed.append(f"{p}: {e.strerror or e}")
    return failed


__all__ = ["exec_line", "make", "remove", "supported", "updater_command"]
