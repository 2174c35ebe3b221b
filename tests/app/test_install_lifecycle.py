"""The installer half on Linux, end to end: the real ``stitch`` command in a process of its own,
a real ``stitch serve``, private XDG folders and HOME (tests/conftest.py gives every test
empty ones): install into a chosen folder, the remembered install found without ``--dir``,
the menu and desktop entries valid per ``desktop-file-validate``, offline play, uninstall
leaving the player's files and nothing else."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gui_fakes import Release, RunningServer

from app import installs, shortcuts
from app.uninstall import Plan
from tests.conftest import REPO_ROOT, need_tool

STITCH = [sys.executable, "-m", "app.cli"]


def stitch(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, stdin=stdin)


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (``.stitch/`` left out) -> SHA-256."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).as_posix().startswith(".stitch/")}


def write_config(folder: Path, url: str, pubkey: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "updater.toml"
    path.write_text(
        f'product = "dcrawl"\nname = "Dungeon Crawl"\nurl = "{url}"\n'
        f'install_dir = "ask"\npubkey = "{pubkey}"\n'
        f'[launch]\nprogram = {json.dumps(sys.executable)}\nargs = ["play.py", "played.txt"]\n'
        f"{extra}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    (h / "Desktop").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    return h


def test_install_remembered_shortcuts_offline_play_uninstall(tmp_path: Path, home: Path) -> None:
    validate = need_tool("desktop-file-validate")
    release = Release(tmp_path / "repo", {})
    release.repo.mkdir()
    release.publish("1.0")
    server = RunningServer(release.repo)
    # A folder with a space and a quote: the Exec line must quote it.
    cfg = write_config(tmp_path / "the \"best\" updater", server.url, release.pubkey,
                       '[install]\nshortcuts = ["menu", "desktop"]\n')
    game = tmp_path / "Games" / "Dungeon Crawl"
    data = Path(os.environ["XDG_DATA_HOME"])
    menu = data / "applications" / "stitch-dcrawl.desktop"
    on_desktop = home / "Desktop" / "stitch-dcrawl.desktop"
    try:
        # Nothing remembered yet: "ask" needs --dir, and nothing is written anywhere.
        r = stitch("--update", "--config", str(cfg))
        assert r.returncode == 2 and "pass --dir" in r.stderr
        assert installs.load("dcrawl") is None and not menu.exists()

        r = stitch("--update", "--config", str(cfg), "--dir", str(game))
        assert r.returncode == 0, r.stderr
        assert tree(game) == tree(release.sources["1.0"])
        record = installs.load("dcrawl")
        assert record is not None and record.install_dir == game.resolve()
        assert record.version == "1.0" and record.pubkeys == [release.pubkey]

        # The shortcuts: valid desktop entries starting this updater with this config.
        for entry in (menu, on_desktop):
            check = subprocess.run([validate, str(entry)], capture_output=True, text=True)
            assert check.returncode == 0 and not check.stdout.strip(), check.stdout
            assert str(entry) in record.shortcuts
        assert on_desktop.stat().st_mode & 0o111  # desktops run only executable entries
        text = menu.read_text(encoding="utf-8")
        assert "Icon=stitch-dcrawl\n" in text and "Categories=Game;\n" in text
        exec_value = next(line[5:] for line in text.splitlines() if line.startswith("Exec="))
        assert exec_value == shortcuts.exec_line(shortcuts.updater_command(cfg.resolve()))
        assert '"' + str(cfg.resolve()).replace('"', '\\\\"') + '"' in exec_value
        icons = sorted(data.glob("icons/hicolor/*/apps/stitch-dcrawl.png"))
        assert [p.parent.parent.name for p in icons] == [
            "128x128", "16x16", "256x256", "32x32", "48x48", "64x64"]
        assert all(str(p) in record.shortcuts for p in icons)

        # 1.1: found without --dir, and the shortcuts are not made again.
        release.publish("1.1")
        menu.unlink()  # the player removed the menu entry: an update does not bring it back
        r = stitch("--update", "--config", str(cfg))
        assert r.returncode == 0, r.stderr
        assert tree(game) == tree(release.sources["1.1"])
        assert installs.load("dcrawl").version == "1.1"  # type: ignore[union-attr]
        assert not menu.exists()

        # Offline: the server is gone, the complete 1.1 still plays with --launch ...
        server.stop()
        r = stitch("--update", "--config", str(cfg), "--launch", "--require-update")
        assert r.returncode == 3 and not (game / "played.txt").exists()
        r = stitch("--update", "--config", str(cfg), "--launch")
        assert r.returncode == 0, r.stderr
        assert "couldn't check for updates" in r.stderr and "1.1" in r.stderr
        played = game / "played.txt"
        for _ in range(200):  # bounded wait for the detached game process
            if played.exists() and played.read_text():
                break
            time.sleep(0.05)
        assert played.read_text() == f"played from {game.resolve()}"
        # ... but not an install whose files changed since they were verified.
        (game / "readme.txt").write_text("edited")
        r = stitch("--update", "--config", str(cfg), "--launch")
        assert r.returncode == 3
        (game / "readme.txt").write_bytes((release.sources["1.1"] / "readme.txt").read_bytes())
    finally:
        server.stop()

    # The player's own files: a save in a folder of its own, a note beside the release's data.
    (game / "saves").mkdir()
    (game / "saves" / "slot1.sav").write_bytes(b"level 3")
    (game / "data" / "notes.txt").write_text("mine")
    before = tree(game)

    r = stitch("uninstall", "--config", str(cfg))  # not a terminal, no --yes: asks nothing
    assert r.returncode == 2 and "--yes" in r.stderr and tree(game) == before

    r = stitch("uninstall", "--config", str(cfg), "--yes")
    assert r.returncode == 0, r.stderr
    assert tree(game) == {k: before[k] for k in ("data/notes.txt", "played.txt",
                                                  "saves/slot1.sav")}
    assert sorted(p.relative_to(game).as_posix() for p in game.rglob("*")) == [
        "data", "data/notes.txt", "played.txt", "saves", "saves/slot1.sav"]
    assert "kept 3 files you made" in r.stdout and "saves/slot1.sav" in r.stdout
    assert not on_desktop.exists() and not list(data.glob("icons/hicolor/*/apps/*"))
    assert installs.load("dcrawl") is None and not installs.record_path("dcrawl").exists()

    r = stitch("uninstall", "--config", str(cfg), "--yes")  # nothing remembered any more
    assert r.returncode == 2
    r = stitch("uninstall", "--dir", str(game), "--yes")  # and the folder is no install
    assert r.returncode == 2 and "not a stitch install" in r.stderr
    assert tree(game) == {k: before[k] for k in ("data/notes.txt", "played.txt",
                                                  "saves/slot1.sav")}


def test_an_unwritable_folder_fails_before_downloading(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")  # nothing can be created under a file, even by root
    cfg = write_config(tmp_path / "cfg", "http://127.0.0.1:9/", "RWQx")  # nothing listens
    r = stitch("--update", "--config", str(cfg), "--dir", str(blocker / "Dungeon Crawl"))
    assert r.returncode == 5
    per_user = Path(os.environ["XDG_DATA_HOME"]) / "Dungeon Crawl"
    assert "without administrator rights" in r.stderr and str(per_user) in r.stderr
    assert "refused" not in r.stderr  # told before any request was tried


def test_uninstall_puts_everything_back_when_a_file_cannot_be_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.engine.state import InstalledState, StateStore

    game = tmp_path / "game"
    files = {"a.bin": b"a" * 10, "data/b.bin": b"b" * 20, "data/c.bin": b"c" * 30}
    for rel, content in files.items():
        (game / rel).parent.mkdir(parents=True, exist_ok=True)
        (game / rel).write_bytes(content)
    from core.engine.state import InstalledFile

    state = InstalledState("dcrawl", "stable", "1.0",
                           {p: InstalledFile("0" * 64, len(c), 0, 0) for p, c in files.items()})
    StateStore(game).save(state)
    plan = Plan.of(game)
    assert plan.release == sorted(files) and plan.kept == []

    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        if str(src).endswith("c.bin"):
            raise PermissionError(13, "Permission denied", str(src))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError) as info:
        plan.remove()
    assert "data/c.bin" in str(info.value) and "nothing was removed" in str(info.value)
    monkeypatch.setattr(os, "replace", real_replace)
    assert tree(game) == {p: hashlib.sha256(c).hexdigest() for p, c in files.items()}
    assert (game / ".stitch" / "state.json").is_file()
    assert not (game / ".stitch" / "uninstalling").exists()


def test_uninstall_waits_for_a_running_update(tmp_path: Path) -> None:
    """Another run holding the install (an update, a launcher's --update): uninstall waits
    --lock-wait seconds, then exits 8 with every file in place; once it is gone, it runs."""
    from core.engine.state import InstalledFile, InstalledState, StateStore

    game = tmp_path / "game"
    files = {"a.bin": b"a" * 10, "data/b.bin": b"b" * 20}
    for rel, content in files.items():
        (game / rel).parent.mkdir(parents=True, exist_ok=True)
        (game / rel).write_bytes(content)
    (game / "save.dat").write_bytes(b"mine")
    StateStore(game).save(InstalledState(
        "dcrawl", "stable", "1.0",
        {p: InstalledFile("0" * 64, len(c), 0, 0) for p, c in files.items()}))
    before = tree(game)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from core.engine.lock import acquire; acquire(Path(sys.argv[1])); print('held', "
         "flush=True); "
         "time.sleep(60)", str(game / ".stitch")],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = stitch("uninstall", "--dir", str(game), "--yes", "--lock-wait", "0")
        assert busy.returncode == 8, busy.stderr
        assert "another update of this game is running" in busy.stderr, busy.stderr
        assert tree(game) == before
    finally:
        holder.kill()
        holder.wait(timeout=10)
    done = stitch("uninstall", "--dir", str(game), "--yes", "--lock-wait", "0")
    assert done.returncode == 0, done.stderr
    assert tree(game) == {"save.dat": hashlib.sha256(b"mine").hexdigest()}
    assert not (game / ".stitch").exists()


def test_record_round_trip_and_damaged_record(tmp_path: Path) -> None:
    rec = installs.InstallRecord("dcrawl", tmp_path / "g", name="D", version="1.0",
                                 shortcuts=["/x.desktop"])
    installs.save(rec)
    assert installs.load("dcrawl") == rec
    installs.record_path("dcrawl").write_text("{not json")
    assert installs.load("dcrawl") is None  # asked again, never a crash
    assert installs.forget("dcrawl") and not installs.forget("dcrawl")
    assert installs.load("") is None


def test_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"x")
    assert not installs.writable(blocker / "game")  # a file is in the way
    assert installs.writable(tmp_path / "new" / "deeper")
    assert sorted(tmp_path.iterdir()) == [blocker]  # the probe was removed, nothing created
    if os.name != "nt" and os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            assert not installs.writable(ro) and not installs.writable(ro / "new")
            assert list(ro.iterdir()) == []
        finally:
            ro.chmod(0o755)
