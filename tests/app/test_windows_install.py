"""The Windows parts of the installer half, on any system: ``.lnk`` shortcuts written by
app/winlnk.py and read back (by our reader, by libyal's ``lnkinfo``, Debian's liblnk-utils,
and by wine's shell, which starts the program the link names), and the "Add or remove
programs" entry through a fake registry, written by a first install, brought up to date by
the next, removed by ``stitch uninstall``."""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import pytest

from app import installs, uninstall
from app.config import AppConfig, load_config
from app.remember import remember
from app.shortcuts import make_windows
from app.winlnk import Link, build, parse
from app.winregistry import REG_DWORD, REG_SZ, key_for
from core.engine.state import InstalledFile, InstalledState, StateStore
from tests.conftest import need_tool

LINK = Link(
    target=r"C:\Users\Zoë\AppData\Local\Programs\Dungeon Crawl\dcrawl-updater.exe",
    arguments=r'--config "C:\Users\Zoë\AppData\Local\Programs\Dungeon Crawl\updater.toml"',
    working_dir=r"C:\Users\Zoë\AppData\Local\Programs\Dungeon Crawl",
    description="Update and play Dungeon Crawl",
    icon=r"C:\Users\Zoë\AppData\Local\Programs\Dungeon Crawl\dcrawl.ico",
    icon_index=0,
)


def test_lnk_round_trip_and_header() -> None:
    data = build(LINK)
    assert parse(data) == LINK
    assert data[:4] == b"\x4c\x00\x00\x00"
    assert data[4:20] == bytes.fromhex("0114020000000000c000000000000046")  # the link CLSID
    assert data[-4:] == b"\x00\x00\x00\x00"  # TerminalBlock
    assert parse(build(Link(r"D:\g.exe"))) == Link(r"D:\g.exe")
    with pytest.raises(ValueError):
        build(Link("relative\\g.exe"))
    with pytest.raises(ValueError):
        parse(b"\x4c" + bytes(80))


def test_lnkinfo_reads_what_we_write(tmp_path: Path) -> None:
    lnkinfo = need_tool("lnkinfo")
    path = tmp_path / "Dungeon Crawl.lnk"
    path.write_bytes(build(LINK))
    out = subprocess.run([lnkinfo, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    fields = {}
    for line in out.stdout.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    assert fields["Local path"] == LINK.target
    assert fields["Working directory"] == LINK.working_dir
    assert fields["Command line arguments"] == LINK.arguments
    assert fields["Description"] == LINK.description
    assert fields["Icon location"] == LINK.icon
    assert fields["Drive type"] == "Fixed (3)"


def _config(tmp_path: Path, folder: Path, extra: str = "") -> AppConfig:
    path = tmp_path / "updater.toml"
    path.write_text(
        f'product = "dcrawl"\nname = "Dungeon: Crawl"\nurl = "http://127.0.0.1:9/"\n'
        f'install_dir = "{folder.as_posix()}"\n{extra}',
        encoding="utf-8",
    )
    return load_config(path)


def test_windows_shortcuts_in_the_start_menu_and_on_the_desktop(tmp_path: Path) -> None:
    cfg = _config(tmp_path, tmp_path / "game", '[install]\nshortcuts = ["menu", "desktop"]\n')
    command = [r"C:\Games\Dungeon Crawl\dcrawl-updater.exe", "--config",
               r"C:\Games\Dungeon Crawl\updater.toml"]
    programs, desktop = tmp_path / "Programs", tmp_path / "Desktop"
    made = make_windows(cfg, Path(r"C:\Games\Dungeon Crawl"), command, programs, desktop)
    # ":" is not allowed in a Windows file name: dropped from the shortcut's name.
    assert made == [programs / "Dungeon Crawl.lnk", desktop / "Dungeon Crawl.lnk"]
    link = parse(made[0].read_bytes())
    assert link.target == command[0]
    assert link.arguments == r'--config "C:\Games\Dungeon Crawl\updater.toml"'
    assert link.icon == command[0] and link.description == "Update and play Dungeon: Crawl"
    assert made[1].read_bytes() == made[0].read_bytes()
    menu_only = _config(tmp_path, tmp_path / "game")
    assert make_windows(menu_only, tmp_path, command, tmp_path / "P2", tmp_path / "D2") == [
        tmp_path / "P2" / "Dungeon Crawl.lnk"]


class FakeRegistry:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, tuple[int, str | int]]] = {}

    def set_values(self, key: str, values: dict[str, tuple[int, str | int]]) -> None:
        self.keys.setdefault(key, {}).update(values)

    def delete_key(self, key: str) -> bool:
        return self.keys.pop(key, None) is not None


def test_uninstall_entry_written_updated_and_removed(tmp_path: Path) -> None:
    game = tmp_path / "game"
    (game / "data").mkdir(parents=True)
    (game / "data" / "big.pak").write_bytes(b"x" * 5000)
    (game / "save.dat").write_bytes(b"mine")
    StateStore(game).save(InstalledState("dcrawl", "stable", "1.0", {
        "data/big.pak": InstalledFile("0" * 64, 5000, 0, 0)}))
    cfg = _config(tmp_path, game, "[install]\nshortcuts = []\n")
    reg = FakeRegistry()
    updater = [r"C:\G\dcrawl-updater.exe", "--config", r"C:\G\updater.toml"]
    record, warnings = remember(cfg, game, "1.0", command=updater, registry=reg)
    assert warnings == [] and record is not None
    key = key_for("dcrawl")
    assert key == r"Software\Microsoft\Windows\CurrentVersion\Uninstall\stitch-dcrawl"
    assert record.registry == [key] and installs.load("dcrawl") == record
    values = reg.keys[key]
    assert values["DisplayName"] == (REG_SZ, "Dungeon: Crawl")
    assert values["DisplayVersion"] == (REG_SZ, "1.0")
    assert values["InstallLocation"] == (REG_SZ, str(game.resolve()))
    assert values["EstimatedSize"] == (REG_DWORD, 5)  # KiB, rounded up
    assert values["DisplayIcon"] == (REG_SZ, updater[0])
    config_arg = subprocess.list2cmdline([str(cfg.path)])
    assert values["UninstallString"] == (
        REG_SZ, rf"C:\G\dcrawl-updater.exe uninstall --config {config_arg}")
    assert values["QuietUninstallString"] == (
        REG_SZ, rf"C:\G\dcrawl-updater.exe uninstall --config {config_arg} --yes")

    remember(cfg, game, "1.1", command=updater, registry=reg)  # the next update
    assert reg.keys[key]["DisplayVersion"] == (REG_SZ, "1.1")

    args = argparse.Namespace(config=None, uninstall_config=cfg.path, dir=None, yes=True)
    assert uninstall.run(args, registry=reg) == 0
    assert reg.keys == {} and installs.load("dcrawl") is None
    assert sorted(p.relative_to(game).as_posix() for p in game.rglob("*")) == ["save.dat"]

    no_entry = _config(tmp_path, game, "[install]\nshortcuts = []\nuninstall_entry = false\n")
    record, _ = remember(no_entry, game, "1.0", command=updater, registry=reg)
    assert record is not None and record.registry == [] and reg.keys == {}


def _wine() -> tuple[str, str]:
    """wine64 and its wineserver (Debian puts them in /usr/lib/wine, off PATH)."""
    import os
    import shutil

    from tests.conftest import IN_CI

    wine = shutil.which("wine64") or shutil.which("wine") or "/usr/lib/wine/wine64"
    server = shutil.which("wineserver") or "/usr/lib/wine/wineserver"
    if not os.path.exists(wine):
        if IN_CI:
            pytest.fail("wine64 is not installed (.ci/run installs it)")
        pytest.skip("wine64 is not installed")
    return wine, server


def test_wine_starts_the_program_our_lnk_names(tmp_path: Path) -> None:
    """Wine's shell (shell32's IShellLink, as Explorer uses it) resolves our ``.lnk``: its
    target, arguments and working folder run cmd.exe, which writes a file we can see."""
    import os

    wine, server = _wine()
    cfg = _config(tmp_path, tmp_path / "game", '[install]\nshortcuts = ["menu"]\n')
    out = tmp_path / "out.txt"
    out_win = "Z:" + str(out).replace("/", "\\")
    command = [r"C:\windows\system32\cmd.exe", "/c", f"echo linked from %CD%> {out_win}"]
    (lnk,) = make_windows(cfg, Path(r"C:\windows"), command, tmp_path / "Programs",
                          tmp_path / "Desktop")
    env = {**os.environ, "WINEPREFIX": str(tmp_path / "prefix"), "WINEDEBUG": "-all"}
    try:
        subprocess.run([wine, "start", "/wait", "/unix", str(lnk)], env=env, timeout=300,
                       stdin=subprocess.DEVNULL, capture_output=True)
        for _ in range(300):  # bounded: cmd.exe may still be writing after start returns
            if out.exists() and out.read_bytes().endswith(b"\n"):
                break
            time.sleep(0.1)
        assert out.read_bytes().strip() == rb"linked from C:\windows"
    finally:
        subprocess.run([server, "-k"], env=env, timeout=60, capture_output=True)


def test_known_folders_fall_back_to_the_variables(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """app/winfolders.py: where the shell cannot be asked (here: not Windows; under wine,
    tests/windows/test_winfolders_win.py asks it for real), the variables, then the
    profile's standard places."""
    import os

    from app import winfolders

    monkeypatch.delenv("STITCH_FOLDERS_FROM_ENV", raising=False)
    if os.name == "nt":
        monkeypatch.setattr(winfolders, "known_folder", lambda folder_id: None)
    assert winfolders.known_folder(winfolders.LOCAL_APP_DATA) is None
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "roaming"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "me"))
    assert winfolders.local_app_data() == tmp_path / "local"
    assert winfolders.start_menu_programs() == (
        tmp_path / "roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs")
    assert winfolders.desktop() == tmp_path / "me" / "Desktop"
    for var in ("LOCALAPPDATA", "APPDATA", "USERPROFILE"):
        monkeypatch.setenv(var, "relative")  # not a path: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if os.name != "nt":
        assert winfolders.local_app_data() == tmp_path / "home" / "AppData" / "Local"
        assert winfolders.desktop() == tmp_path / "home" / "Desktop"
