"""The window's More actions against the real engine: "Verify and repair files" from a real
nginx (tests/conftest.py's, whose access log has each request's bytes and Range header), and
"Uninstall…" of an install the window made (private XDG folders: tests/conftest.py).

Releases are gui_fakes' (a 12 MB archive, a script, a readme), signed and published with
``core.publisher.publish``."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_fakes import Release, RunningServer
from pytestqt.qtbot import QtBot
from test_gui_e2e import WAIT, app_config, install_with_engine, tree, window

from app import installs
from app.gui.window import BAR_MAX, State, UpdaterWindow
from tests.conftest import Nginx

pytestmark = pytest.mark.slow

BIG = "data/big.pak"  # 12,000,000 bytes


def nginx_entries(server: Nginx, since: int, expected: int) -> list[tuple[int, int, str, str]]:
    """(bytes sent, status, request, Range) per logged request from ``since`` on, once the
    log holds ``expected`` of them (nginx logs a request as it ends: bounded wait)."""
    for _ in range(200):
        lines = server.log_lines()[since:]
        if len(lines) >= expected:
            break
        time.sleep(0.05)
    out = []
    for line in server.log_lines()[since:]:
        sent, status, rest = line.split(" ", 2)
        request, _, rng = rest.rpartition(' "')
        out.append((int(sent), int(status), request.strip('"'), rng.rstrip('"')))
    return out


def rot(path: Path, offset: int, length: int) -> None:
    """Bit rot: bytes change, size, mtime and inode do not (the state cache still vouches
    for the file, so only a verify can tell)."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(length)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in old))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def more(w: UpdaterWindow) -> tuple[bool, bool]:
    """The More button shown, and its actions enabled."""
    m = w.maintenance
    return m.more_button.isVisible(), m.repair_action.isEnabled()


@pytest.fixture
def served(tmp_path: Path, www: Path, nginx: Callable[..., Nginx]) -> tuple[Release, Nginx]:
    repo = www / "repo"
    repo.mkdir()
    repo.chmod(0o755)
    release = Release(repo, {})
    release.publish("1.0")
    for d in [repo, *repo.rglob("*")]:  # nginx's workers (www-data) read it
        d.chmod(0o755 if d.is_dir() else 0o644)
    return release, nginx(repo)


def test_repair_downloads_only_the_damaged_chunks(
    qtbot: QtBot, tmp_path: Path, served: tuple[Release, Nginx]
) -> None:
    release, server = served
    install = tmp_path / "game"
    cfg = app_config(tmp_path, server.url, install, pubkeys=(release.pubkey,))
    install_with_engine(cfg, install)
    want = tree(release.sources["1.0"])
    rot(install / BIG, 6_000_000, 4096)
    assert tree(install) != want

    w = window(qtbot, cfg)
    qtbot.waitUntil(lambda: w.state is State.UP_TO_DATE, timeout=WAIT)  # the check can't tell
    assert more(w) == (True, True)
    values: list[int] = []
    w.bar.valueChanged.connect(values.append)
    before = len(server.log_lines())
    w.maintenance.repair_action.trigger()
    assert w.state is State.RUNNING and not w.maintenance.more_button.isVisible()
    assert w.pause_button.isVisible() and w.cancel_button.isVisible()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)

    assert tree(install) == want  # the release's bytes again
    r = w.maintenance.repair_result
    assert r is not None and r.damaged == (BIG,) and r.missing == () and r.update is not None
    entries = nginx_entries(server, before, r.update.requests)
    assert len(entries) == r.update.requests
    assert all(status in (200, 206) for _, status, _, _ in entries), entries
    big = [e for e in entries if BIG in e[2] and "fidx" not in e[2]]
    # Only ranges of the archive: a few chunks around the 4 kB of rot, not its 12 MB.
    assert big and all(status == 206 and rng.startswith("bytes=") for _, status, _, rng in big)
    sent = sum(e[0] for e in big)
    assert sent < 12_000_000 // 20, big
    assert sum(e[0] for e in entries) < 12_000_000 // 10
    assert w.heading.text() == "Files repaired" and w.status.text() == "Done"
    assert w.message.text().startswith("Repaired 1 file, downloaded ")
    assert w.bar.value() == BAR_MAX and values == sorted(values)
    log = w.log.toPlainText()
    for heading in ("Verifying files", "Scanning local files", "Downloading", "Installing"):
        assert heading in log
    assert f"damaged: {BIG}" in log
    assert w.play_button.isVisible() and more(w) == (True, True)

    # Nothing damaged: said so, and nothing asked of the server.
    before = len(server.log_lines())
    w.maintenance.repair_action.trigger()
    qtbot.waitUntil(lambda: w.state is State.DONE and w.maintenance.repair_result is not None,
                    timeout=WAIT)
    assert w.heading.text() == "All files are intact"
    assert w.message.text() == ("All 3 files of Dungeon Crawl 1.0 are intact. "
                                "Nothing was downloaded.")
    assert len(server.log_lines()) == before

    # A file the player deleted, repaired from the Done screen.
    (install / "readme.txt").unlink()
    w.maintenance.repair_action.trigger()
    qtbot.waitUntil(lambda: w.state is State.DONE and w.maintenance.repair_result is not None,
                    timeout=WAIT)
    assert w.maintenance.repair_result.missing == ("readme.txt",)
    assert tree(install) == want
    w.close()
    assert w.exit_code == 0


def test_repair_that_cannot_reach_the_server_then_retry(
    qtbot: QtBot, tmp_path: Path, app_release: Release,
    app_server: Callable[..., RunningServer],
) -> None:
    """A failed repair ends on "The repair did not finish" with the failure's words; Retry
    repairs (not a plain check, which would call the rotten file up to date)."""
    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    cfg = app_config(tmp_path, server.url, install)
    install_with_engine(cfg, install)
    rot(install / BIG, 100_000, 100)
    w = window(qtbot, cfg)
    qtbot.waitUntil(lambda: w.state is State.UP_TO_DATE, timeout=WAIT)
    port = int(server.url.rsplit(":", 1)[1].rstrip("/"))
    server.stop()
    w.maintenance.repair_action.trigger()
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "The repair did not finish"
    assert w.error_kind == "network" and "could not be reached" in w.message.text()
    assert w.retry_button.isVisible() and more(w) == (True, True)
    assert w.offline_version is None  # the verify marked the archive: not playable as is

    app_server(port=port)
    w.retry_button.click()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert w.heading.text() == "Files repaired"
    assert tree(install) == tree(app_release.sources["1.0"])
    w.close()


def test_repair_waits_for_another_run_and_can_be_cancelled(
    qtbot: QtBot, tmp_path: Path, app_release: Release,
    app_server: Callable[..., RunningServer],
) -> None:
    """Another run holding the install: the repair waits for it under "Verifying files",
    and Cancel then ends it as a repair cancelled, with nothing changed."""
    from core.engine.lock import acquire

    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    cfg = app_config(tmp_path, server.url, install)
    install_with_engine(cfg, install)
    rot(install / BIG, 100_000, 100)
    rotten = tree(install)
    w = window(qtbot, cfg)
    qtbot.waitUntil(lambda: w.state is State.UP_TO_DATE, timeout=WAIT)
    with acquire(install / ".stitch"):  # a launcher's --update, say
        w.maintenance.repair_action.trigger()
        qtbot.waitUntil(lambda: "waiting up to" in w.log.toPlainText(), timeout=WAIT)
        assert w.state is State.RUNNING and w.heading.text() == "Verifying files"
        assert "Checking for updates" not in w.log.toPlainText().split("Verifying and")[-1]
        assert w.request_cancel()
        qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "Repair cancelled"
    assert w.message.text() == "The repair was cancelled. Your files were not changed."
    assert tree(install) == rotten
    w.retry_button.click()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert w.heading.text() == "Files repaired"
    assert tree(install) == tree(app_release.sources["1.0"])
    w.close()


def test_uninstall_from_the_window_keeps_the_players_files(
    qtbot: QtBot, tmp_path: Path, app_release: Release,
    app_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    (home / "Desktop").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    server = app_server()
    app_release.publish("1.0")
    cfg = app_config(tmp_path, server.url, None, shortcuts=("menu", "desktop"))
    chosen = tmp_path / "Games" / "Dungeon Crawl"
    w = window(qtbot, cfg, folder=chosen)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    w.update_button.click()
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    record = installs.load("dcrawl")
    assert record is not None and len(record.shortcuts) >= 2
    made = [Path(p) for p in record.shortcuts]
    assert all(p.is_file() for p in made)
    save = chosen / "saves" / "slot1.sav"
    save.parent.mkdir()
    save.write_bytes(b"level 3, 120 gold")
    settings = chosen / "data" / "my-settings.ini"  # in a folder of the release
    settings.write_text("fullscreen=1\n")
    assert more(w) == (True, True)

    asked: list[tuple[str, str, str, str]] = []
    w.maintenance.confirm = lambda _parent, words: asked.append(words) is None and False
    w.maintenance.uninstall_action.trigger()
    assert len(asked) == 1 and w.state is State.DONE  # kept: nothing removed
    assert tree(chosen).keys() == {*tree(app_release.sources["1.0"]), "saves/slot1.sav",
                                   "data/my-settings.ini"}
    title, question, remove, keep = asked[0]
    assert title == "Uninstall Dungeon Crawl?"
    assert f"This removes Dungeon Crawl 1.0 from {chosen.resolve()}: its 3 files" in question
    assert "Files you made there stay (2 files: data/my-settings.ini, saves/slot1.sav)" in (
        question)
    assert (remove, keep) == ("&Uninstall", "&Keep the game")

    w.maintenance.confirm = lambda _parent, words: True
    w.maintenance.uninstall_action.trigger()
    assert w.state is State.DONE
    assert sorted(p.relative_to(chosen).as_posix() for p in chosen.rglob("*")) == [
        "data", "data/my-settings.ini", "saves", "saves/slot1.sav"]
    assert save.read_bytes() == b"level 3, 120 gold"
    assert not (chosen / ".stitch").exists()
    assert not any(p.exists() for p in made)
    assert installs.load("dcrawl") is None
    assert w.heading.text() == "Dungeon Crawl was uninstalled"
    assert w.message.text() == (
        f"Removed 3 files from {chosen.resolve()}. Kept 2 files you made: "
        "data/my-settings.ini, saves/slot1.sav.")
    assert not w.play_button.isVisible() and not w.maintenance.more_button.isVisible()
    assert not w.bar.isVisible() and w.status.text() == "Done"
    assert w.close_button.isVisible() and w.close_button.isDefault()
    w.close()
    assert w.exit_code == 0


def test_uninstall_refused_when_a_file_cannot_be_moved(
    qtbot: QtBot, tmp_path: Path, app_release: Release,
    app_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = app_server()
    app_release.publish("1.0")
    install = tmp_path / "game"
    cfg = app_config(tmp_path, server.url, install)
    install_with_engine(cfg, install)
    before = tree(install)
    w = window(qtbot, cfg)
    qtbot.waitUntil(lambda: w.state is State.UP_TO_DATE, timeout=WAIT)
    w.maintenance.confirm = lambda _parent, words: True
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        if str(src).endswith("play.py"):
            raise PermissionError(13, "Permission denied", str(src))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    w.maintenance.uninstall_action.trigger()
    monkeypatch.setattr(os, "replace", real_replace)
    assert tree(install) == before and (install / ".stitch" / "state.json").is_file()
    assert w.state is State.UP_TO_DATE
    assert w.warning.isVisible() and w.warning.text().startswith(
        "Could not uninstall: Cannot remove play.py (Permission denied); nothing was removed")
    assert hashlib.sha256((install / BIG).read_bytes()).hexdigest() == before[BIG]
    w.close()
