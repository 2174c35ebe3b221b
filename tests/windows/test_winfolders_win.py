"""The per-user folders from the Known Folder API (app/winfolders.py), under the Windows
CPython: the paths ``SHGetKnownFolderPath`` gives are those the shell itself reports (its
older ``SHGetFolderPathW`` and the ``Shell Folders`` key it keeps in the registry, read with
``reg.exe``), whatever the environment variables say; the default install folder and the
Start-menu shortcut land there; the variables are used only when the shell cannot answer."""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app import installs, shortcuts, winfolders
from app.config import load_config
from app.winlnk import parse

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the Windows shell")

CSIDL_PROGRAMS = 0x02
CSIDL_DESKTOPDIRECTORY = 0x10
CSIDL_LOCAL_APPDATA = 0x1C
SHELL_FOLDERS = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Explorer\Shell Folders"


def shell_folder_path(csidl: int) -> str:
    """The shell's legacy answer: SHGetFolderPathW."""
    buf = ctypes.create_unicode_buffer(32768)
    shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined,unused-ignore]
    hr = shell32.SHGetFolderPathW(None, csidl, None, 0, buf)
    assert hr == 0, hex(hr & 0xFFFFFFFF)
    return buf.value


def registry_shell_folder(name: str) -> str:
    """The path the shell keeps for ``name`` under ...\\Explorer\\Shell Folders (reg.exe)."""
    done = subprocess.run(["reg.exe", "query", SHELL_FOLDERS, "/v", name], capture_output=True,
                          timeout=120, input="", encoding="oem", errors="replace")
    assert done.returncode == 0, (done.stdout, done.stderr)
    for line in done.stdout.splitlines():
        m = re.match(rf"^\s+{re.escape(name)}\s+REG_\w+\s+(.*?)\s*$", line)
        if m:
            return m.group(1)
    raise AssertionError(done.stdout)


def same(a: Path | str, b: Path | str) -> bool:
    return os.path.normcase(os.path.normpath(str(a))) == os.path.normcase(os.path.normpath(str(b)))


@pytest.fixture
def from_the_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Known Folders asked for real; the variables pointing somewhere else entirely."""
    monkeypatch.delenv("STITCH_FOLDERS_FROM_ENV", raising=False)
    for var in ("LOCALAPPDATA", "APPDATA", "USERPROFILE"):
        monkeypatch.setenv(var, str(tmp_path / f"wrong-{var}"))


def test_known_folders_are_what_the_shell_reports(from_the_shell: None) -> None:
    cases = [
        (winfolders.LOCAL_APP_DATA, winfolders.local_app_data(), CSIDL_LOCAL_APPDATA,
         "Local AppData"),
        (winfolders.PROGRAMS, winfolders.start_menu_programs(), CSIDL_PROGRAMS, "Programs"),
        (winfolders.DESKTOP, winfolders.desktop(), CSIDL_DESKTOPDIRECTORY, "Desktop"),
    ]
    for folder_id, path, csidl, name in cases:
        assert winfolders.known_folder(folder_id) == path, name
        assert path.is_absolute() and "wrong-" not in str(path), (name, path)
        assert same(path, shell_folder_path(csidl)), (name, path, shell_folder_path(csidl))
        assert same(path, registry_shell_folder(name)), (name, path)
    assert same(installs.user_install_dir("Dungeon Crawl"),
                winfolders.local_app_data() / "Programs" / "Dungeon Crawl")
    assert same(installs.record_path("dcrawl"),
                winfolders.local_app_data() / "stitch" / "installs" / "dcrawl.json")


def test_the_start_menu_shortcut_lands_in_the_known_folder(from_the_shell: None,
                                                          tmp_path: Path) -> None:
    name = f"stitch test {uuid.uuid4().hex[:8]}"
    config = tmp_path / "updater.toml"
    config.write_text(f'product = "t{uuid.uuid4().hex[:8]}"\nname = "{name}"\n'
                      f'url = "http://127.0.0.1:9/"\ninstall_dir = "{tmp_path.as_posix()}/g"\n',
                      encoding="utf-8")
    cfg = load_config(config)
    made = shortcuts.make(cfg, tmp_path / "g")
    try:
        assert len(made) == 1, made
        assert same(made[0], Path(shell_folder_path(CSIDL_PROGRAMS)) / f"{name}.lnk"), made
        link = parse(made[0].read_bytes())
        assert same(link.target, sys.executable)
        assert link.arguments.endswith(subprocess.list2cmdline([str(config)]))
    finally:
        shortcuts.remove([str(p) for p in made])
    assert not any(p.exists() for p in made)


def test_the_variables_are_the_fallback(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    """When the shell cannot answer, or STITCH_FOLDERS_FROM_ENV=1, the variables are used."""
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "roaming"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "me"))
    assert winfolders.known_folder(winfolders.DESKTOP) is None  # the suite sets the switch
    monkeypatch.delenv("STITCH_FOLDERS_FROM_ENV")
    monkeypatch.setattr(winfolders, "known_folder", lambda folder_id: None)
    assert winfolders.local_app_data() == tmp_path / "local"
    assert winfolders.start_menu_programs() == (
        tmp_path / "roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs")
    assert winfolders.desktop() == tmp_path / "me" / "Desktop"
    assert installs.user_install_dir("G") == tmp_path / "local" / "Programs" / "G"
