"""The "Add or remove programs" entry for real (issue 17): under the Windows CPython, stitch's
own code (app/remember.py through app/winregistry.py's ``winreg`` writer) writes
``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\stitch-<product>``, and
``reg.exe query`` (under wine: wine's own reg tool, in the same prefix as this process, the
one tests/windows/run sets up) reads every value back. Then the entry's QuietUninstallString,
run as Windows' Settings would run it, removes the release, the record and the entry:
``reg query`` then fails."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app import installs
from app.config import load_config
from app.remember import remember
from app.winregistry import key_for
from core.engine.state import InstalledFile, InstalledState, StateStore
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the Windows registry")


def reg(*args: str) -> subprocess.CompletedProcess[str]:
    """Windows' reg.exe (wine's own under wine), its output decoded: into a pipe it writes
    the OEM code page (437 here: "ü" is 0x81), as Windows' reg.exe does."""
    return subprocess.run(["reg.exe", *args], capture_output=True, timeout=120, input="",
                          encoding="oem", errors="replace")


def reg_values(key: str) -> dict[str, tuple[str, str]]:
    """``reg query HKCU\\<key>``: {value name: (type, data)}."""
    done = reg("query", f"HKCU\\{key}")
    assert done.returncode == 0, (done.stdout, done.stderr)
    out = {}
    for line in done.stdout.splitlines():
        m = re.match(r"^\s+(\S+)\s+(REG_\w+)\s+(.*?)\s*$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def test_uninstall_entry_in_the_real_registry(tmp_path: Path) -> None:
    product = f"stitchtest{uuid.uuid4().hex[:10]}"
    key = key_for(product)
    game = tmp_path / "Dungeon Crawl ü"
    (game / "data").mkdir(parents=True)
    (game / "data" / "big.pak").write_bytes(b"x" * 5000)
    (game / "game.exe").write_bytes(b"MZ" + bytes(3000))
    (game / "save.dat").write_bytes(b"the player's")
    StateStore(game).save(InstalledState(product, "stable", "1.2.0", {
        "data/big.pak": InstalledFile("0" * 64, 5000, 0, 0),
        "game.exe": InstalledFile("1" * 64, 3002, 0, 0)}))
    config = tmp_path / "updater.toml"
    config.write_text(
        f'product = "{product}"\nname = "Dungeon Crawl"\nurl = "http://127.0.0.1:9/"\n'
        f'install_dir = "{game.as_posix()}"\n[install]\nshortcuts = []\n'
        "uninstall_entry = true\n", encoding="utf-8")
    cfg = load_config(config)
    try:
        # No registry given: on Windows remember() writes through winreg (WinRegistry).
        record, warnings = remember(cfg, game, "1.2.0")
        assert warnings == [] and record is not None and record.registry == [key]
        values = reg_values(key)
        updater = subprocess.list2cmdline([sys.executable, "-m", "app.cli"])
        uninstall = f"{updater} uninstall --config {subprocess.list2cmdline([str(config)])}"
        assert values["DisplayName"] == ("REG_SZ", "Dungeon Crawl")
        assert values["DisplayVersion"] == ("REG_SZ", "1.2.0")
        assert values["Publisher"] == ("REG_SZ", "Dungeon Crawl")
        assert values["DisplayIcon"] == ("REG_SZ", sys.executable)
        assert values["InstallLocation"] == ("REG_SZ", str(game.resolve()))
        assert values["EstimatedSize"] == ("REG_DWORD", "0x8")  # 8002 bytes: 8 KiB, rounded up
        assert values["UninstallString"] == ("REG_SZ", uninstall)
        assert values["QuietUninstallString"] == ("REG_SZ", uninstall + " --yes")
        assert values["NoModify"] == values["NoRepair"] == ("REG_DWORD", "0x1")

        # The next update brings the version up to date in place.
        remember(cfg, game, "1.3.0")
        assert reg_values(key)["DisplayVersion"] == ("REG_SZ", "1.3.0")

        # What Settings runs for a silent uninstall: the command line, as it is stored.
        done = subprocess.run(values["QuietUninstallString"][1], capture_output=True,
                              text=True, timeout=300, cwd=REPO_ROOT, input="")
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert "kept 1 files you made" in done.stdout
        gone = reg("query", f"HKCU\\{key}")
        assert gone.returncode == 1, gone.stdout
        assert installs.load(product) is None
        assert sorted(p.name for p in game.iterdir()) == ["save.dat"]
    finally:
        reg("delete", f"HKCU\\{key}", "/f")
