"""app/selfupdate.py under Windows' rules, played by a fake file system: a running
executable can be renamed but not deleted or overwritten; rename never overwrites. Plus the
same steps on the real file system (where they are merely unnecessary)."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import selfupdate
from core.errors import ConfigError


@dataclass
class FakeFile:
    data: bytes
    running: bool = False  # mapped by a running process: Windows refuses delete and overwrite


class WindowsLikeFs:
    """``FileOps`` over a dict, with Windows' sharing rules for running executables."""

    def __init__(self) -> None:
        self.files: dict[Path, FakeFile] = {}
        self.log: list[str] = []
        self.fail_rename_from: set[Path] = set()
        self.locked: set[Path] = set()  # PermissionError on replace onto these (antivirus)
        self._n = 0

    def exists(self, path: Path) -> bool:
        return path in self.files

    def rename(self, src: Path, dst: Path) -> None:
        self.log.append(f"rename {src.name} {dst.name}")
        if src not in self.files:
            raise FileNotFoundError(2, "not found", str(src))
        if dst in self.files:
            raise FileExistsError(17, "exists", str(dst))
        if src in self.fail_rename_from:
            raise PermissionError(13, "denied", str(src))
        self.files[dst] = self.files.pop(src)

    def replace(self, src: Path, dst: Path) -> None:
        self.log.append(f"replace {src.name} {dst.name}")
        if dst in self.files and self.files[dst].running:
            raise PermissionError(13, "Access is denied", str(dst))
        if dst in self.locked:
            self.locked.discard(dst)  # the scan finishes: the next try works
            raise PermissionError(13, "used by another process", str(dst))
        self.files[dst] = self.files.pop(src)

    def remove(self, path: Path) -> None:
        self.log.append(f"remove {path.name}")
        if self.files[path].running:
            raise PermissionError(13, "Access is denied", str(path))
        del self.files[path]

    def copy_atomic(self, src: Path, dst: Path) -> str:
        data = self.files[src].data
        self.files[dst] = FakeFile(data)
        return hashlib.sha256(data).hexdigest()

    def write_temp(self, folder: Path, name: str, data: bytes) -> Path:
        self._n += 1
        tmp = folder / f".{name}.{self._n}.tmp"
        self.files[tmp] = FakeFile(data)
        return tmp


EXE = Path("C:/Games/Dungeon Crawl/dcrawl-updater.exe")
DOWNLOAD = Path("C:/Users/Zoë/AppData/Local/Temp/new-updater.exe")


@pytest.fixture
def fs() -> WindowsLikeFs:
    fs = WindowsLikeFs()
    fs.files[EXE] = FakeFile(b"v1", running=True)
    fs.files[DOWNLOAD] = FakeFile(b"v2")
    return fs


def names(fs: WindowsLikeFs) -> dict[str, bytes]:
    return {p.name: f.data for p, f in fs.files.items() if p.parent == EXE.parent}


def test_the_running_exe_cannot_simply_be_overwritten(fs: WindowsLikeFs) -> None:
    with pytest.raises(PermissionError):
        fs.replace(DOWNLOAD, EXE)  # what a naive update would do


def test_stage_swap_and_clean_on_next_start(fs: WindowsLikeFs) -> None:
    staged = selfupdate.stage(EXE, DOWNLOAD, hashlib.sha256(b"v2").hexdigest(), ops=fs)
    assert staged.name == "dcrawl-updater.exe.new"
    assert names(fs) == {"dcrawl-updater.exe": b"v1", "dcrawl-updater.exe.new": b"v2"}

    assert selfupdate.swap(EXE, ops=fs) is True
    assert names(fs) == {"dcrawl-updater.exe": b"v2", "dcrawl-updater.exe.old": b"v1"}
    # The old process still runs from the .old file: it cannot be deleted yet.
    assert selfupdate.cleanup(EXE, ops=fs) == []
    assert "dcrawl-updater.exe.old" in names(fs)

    # It exits; the new updater starts and tidies up.
    fs.files[EXE.with_name("dcrawl-updater.exe.old")].running = False
    fs.files[EXE].running = True
    assert selfupdate.finish_pending(EXE, ops=fs) is False  # nothing staged: no swap
    assert names(fs) == {"dcrawl-updater.exe": b"v2"}


def test_a_bad_download_is_not_staged(fs: WindowsLikeFs) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        selfupdate.stage(EXE, DOWNLOAD, "00" * 32, ops=fs)
    assert names(fs) == {"dcrawl-updater.exe": b"v1"}
    assert selfupdate.swap(EXE, ops=fs) is False


def test_a_failed_swap_puts_the_old_exe_back(fs: WindowsLikeFs) -> None:
    selfupdate.stage(EXE, DOWNLOAD, ops=fs)
    fs.fail_rename_from.add(selfupdate.staged_path(EXE))  # the second rename is refused
    with pytest.raises(PermissionError):
        selfupdate.swap(EXE, ops=fs)
    assert names(fs) == {"dcrawl-updater.exe": b"v1", "dcrawl-updater.exe.new": b"v2"}
    # finish_pending never raises: the updater still starts and updates the game.
    assert selfupdate.finish_pending(EXE, ops=fs) is False
    fs.fail_rename_from.clear()
    assert selfupdate.finish_pending(EXE, ops=fs) is True
    assert fs.files[EXE].data == b"v2"


def test_a_swap_interrupted_after_the_first_rename_finishes(fs: WindowsLikeFs) -> None:
    selfupdate.stage(EXE, DOWNLOAD, ops=fs)
    fs.rename(EXE, EXE.with_name("dcrawl-updater.exe.old"))  # then the power went out
    assert selfupdate.finish_pending(EXE, ops=fs) is True
    assert fs.files[EXE].data == b"v2"


def test_two_old_updaters_still_running(fs: WindowsLikeFs) -> None:
    fs.files[EXE.with_name("dcrawl-updater.exe.old")] = FakeFile(b"v0", running=True)
    selfupdate.stage(EXE, DOWNLOAD, ops=fs)
    assert selfupdate.swap(EXE, ops=fs) is True
    assert names(fs) == {
        "dcrawl-updater.exe": b"v2",
        "dcrawl-updater.exe.old": b"v0",
        "dcrawl-updater.exe.old1": b"v1",
    }


def test_not_frozen_means_nothing_to_do() -> None:
    assert selfupdate.running_executable() is None
    assert selfupdate.finish_pending() is False


def test_config_is_replaced_atomically_and_only_when_valid(fs: WindowsLikeFs) -> None:
    config = EXE.with_name("updater.toml")
    fs.files[config] = FakeFile(b'url = "https://old.example/"\n')
    checked: list[bytes] = []

    def check(path: Path) -> object:
        data = fs.files[path].data
        checked.append(data)
        if b"url" not in data:
            raise ConfigError(f"{path}: missing 'url'", path=str(path))
        return None

    with pytest.raises(ConfigError, match="rejected"):
        selfupdate.replace_config(config, 'name = "x"\n', ops=fs, check=check)
    assert fs.files[config].data == b'url = "https://old.example/"\n'
    assert names(fs).keys() == {"dcrawl-updater.exe", "updater.toml"}  # no temp left

    fs.locked.add(config)  # an antivirus has it open for a moment
    sleeps: list[float] = []
    selfupdate.replace_config(config, 'url = "https://cdn.example/"\n', ops=fs, check=check,
                              sleep=sleeps.append)
    assert fs.files[config].data == b'url = "https://cdn.example/"\n'
    assert sleeps == [0.1]
    assert names(fs).keys() == {"dcrawl-updater.exe", "updater.toml"}


def test_real_files(tmp_path: Path) -> None:
    exe = tmp_path / "Zoë's games" / "updater"
    exe.parent.mkdir()
    exe.write_bytes(b"v1")
    exe.chmod(0o755)
    new = tmp_path / "download"
    new.write_bytes(b"v2")
    new.chmod(0o755)
    selfupdate.stage(exe, new, hashlib.sha256(b"v2").hexdigest())
    assert selfupdate.finish_pending(exe) is True
    assert exe.read_bytes() == b"v2"
    assert sorted(p.name for p in exe.parent.iterdir()) == ["updater"]
    if sys.platform != "win32":  # Windows has no executable bits
        assert exe.stat().st_mode & 0o111

    config = exe.parent / "updater.toml"
    config.write_text('url = "https://old.example/"\n', encoding="utf-8")
    with pytest.raises(ConfigError):
        selfupdate.replace_config(config, 'url = "ftp://nope"\n')
    old = os.umask(0o022)
    try:
        selfupdate.replace_config(config, 'url = "https://cdn.example/game/"\nname = "Zoë"\n')
    finally:
        os.umask(old)
    assert "cdn.example" in config.read_text(encoding="utf-8")
    if sys.platform != "win32":  # Windows has no permission bits beyond read-only
        assert config.stat().st_mode & 0o777 == 0o644  # as the umask gives, not mkstemp's 0600
    assert sorted(p.name for p in exe.parent.iterdir()) == ["updater", "updater.toml"]
