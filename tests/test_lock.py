"""One run at a time per install (``core/engine/lock.py``): the lock is taken and released as it
should be (on exit, on an exception, on ``kill -9``), a second run waits and then gives up
with exit 8 and its message, and update, sync and verify all take it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.chunks.chunker import DEFAULT_PARAMS
from core.chunks.indexer import index_file, write_beside
from core.engine.lock import LOCK_NAME, acquire, acquire_existing, holder_pid
from core.engine.sync import SyncConfig, sync
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.engine.verify import verify_install
from core.errors import CancelledError, InstallBusyError, NetworkError
from core.net.fetcher import MemoryFetcher
from core.progress import CancelToken, Phase, Progress
from core.publisher.publish import publish
from tests.conftest import MEM, REPO_ROOT, memory_fetcher, tree_digest

STITCH = [sys.executable, "-m", "app.cli"]
EXIT_BUSY = 8

# A process that takes the lock on argv[1], says so, and then waits (bounded) to be killed,
# or exits at once without releasing it when argv[2] is "exit".
HOLDER = """
import os, sys, time
from pathlib import Path
from core.engine.lock import acquire
lock = acquire(Path(sys.argv[1]), wait=0)
print("held", flush=True)
if sys.argv[2] == "exit":
    os._exit(0)
sys.stdin.readline()  # until the test closes our stdin or kills us
"""


def _holder(state_dir: Path, how: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir), how],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held\n"
    return proc


def _busy(state_dir: Path) -> bool:
    """Whether another holder has the lock right now (tried once, never waiting)."""
    try:
        lock = acquire_existing(state_dir, wait=0)
    except InstallBusyError:
        return True
    if lock is not None:
        lock.release()
    return False


# -- the lock itself ----------------------------------------------------------------------

def test_a_second_taker_is_refused_until_release(tmp_path: Path) -> None:
    state = tmp_path / "game" / ".stitch"
    lines: list[str] = []
    with acquire(state) as lock:
        assert (state / LOCK_NAME).is_file() and lock.held
        assert holder_pid(state / LOCK_NAME) == os.getpid()
        with pytest.raises(InstallBusyError) as e:
            acquire(state, wait=0, on_wait=lines.append)
        assert e.value.pid == os.getpid()
        assert str(e.value) == (f"another update of this game is running (pid {os.getpid()}): "
                                "gave up after 0 s (--lock-wait)")
        assert lines == [f"another update of this game is running (pid {os.getpid()}) — "
                         "waiting up to 0 s…"]
    assert not lock.held
    assert holder_pid(state / LOCK_NAME) is None  # released: no pid left behind
    with acquire(state, wait=0):
        pass


def test_released_when_the_body_raises(tmp_path: Path) -> None:
    state = tmp_path / ".stitch"
    with pytest.raises(ZeroDivisionError), acquire(state):
        _ = 1 / 0
    assert not _busy(state)


def test_released_when_the_holder_exits_without_releasing(tmp_path: Path) -> None:
    state = tmp_path / ".stitch"
    proc = _holder(state, "exit")
    assert proc.wait(timeout=60) == 0
    assert holder_pid(state / LOCK_NAME) == proc.pid  # the file says so, the kernel does not
    with acquire(state, wait=0) as lock:
        assert lock.held


def test_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    state = tmp_path / ".stitch"
    proc = _holder(state, "wait")
    try:
        with pytest.raises(InstallBusyError) as e:
            acquire(state, wait=0)
        assert e.value.pid == proc.pid
        proc.kill()  # SIGKILL; TerminateProcess on Windows
        assert proc.wait(timeout=60) != 0
    finally:
        proc.kill()
        proc.wait(timeout=60)
    with acquire(state, wait=0) as lock:  # the next run takes it: nothing stale
        assert lock.held
        assert holder_pid(state / LOCK_NAME) == os.getpid()


def test_a_waiting_run_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    state = tmp_path / ".stitch"
    first = acquire(state)
    said = threading.Event()
    releaser = threading.Thread(target=lambda: (said.wait(60), first.release()))
    releaser.start()
    lines: list[str] = []

    def on_wait(line: str) -> None:
        lines.append(line)
        said.set()

    try:
        with acquire(state, wait=120, on_wait=on_wait) as second:
            assert second.held and not first.held
    finally:
        releaser.join(60)
    assert len(lines) == 1 and lines[0].endswith("waiting up to 120 s…")


def test_cancel_stops_the_wait(tmp_path: Path) -> None:
    state = tmp_path / ".stitch"
    cancel = CancelToken()
    with acquire(state), pytest.raises(CancelledError):
        acquire(state, wait=600, cancel=cancel, on_wait=lambda _: cancel.cancel())


def test_nothing_is_created_where_nothing_is_installed(tmp_path: Path) -> None:
    assert acquire_existing(tmp_path / "new" / ".stitch") is None
    assert not (tmp_path / "new").exists()


class _NoRanges(MemoryFetcher):
    """Serves whole files, fails every range request: the update fails mid-download."""

    def fetch_ranges(self, url, ranges, sink, cancel=None):  # type: ignore[no-untyped-def]
        raise NetworkError("connection reset", url=url)


# -- the updater holds it from the check to the end of the commit -------------------------

@pytest.fixture
def repo(tmp_path: Path, game: tuple[Path, Path]) -> Path:
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0")
    return repo


def _updater(install: Path, repo: Path, **kw: object) -> Updater:
    return Updater(UpdaterConfig(url=MEM, install_dir=install, **kw),  # type: ignore[arg-type]
                   fetcher=memory_fetcher(repo), progress=kw.pop("progress", None))  # type: ignore[arg-type]


def test_update_holds_the_lock_in_every_phase(tmp_path: Path, repo: Path,
                                              game: tuple[Path, Path]) -> None:
    install = tmp_path / "install"
    seen: list[tuple[Phase, bool]] = []  # each progress report: its phase, lock held?

    def probe(p: Progress) -> None:
        seen.append((p.phase, _busy(install / ".stitch")))

    first = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo),
                    progress=probe)
    assert first.update().outcome is Outcome.UPDATED
    # A first install makes .stitch/ only once it has something to write: the check ran
    # without it; from planning (which caches indexes) to the end it held the lock.
    assert seen[0] == (Phase.CHECK, False)
    first_scan = [p for p, _ in seen].index(Phase.SCAN)
    assert all(held for _, held in seen[first_scan:]), seen
    assert {p for p, _ in seen[first_scan:]} >= {
        Phase.SCAN, Phase.PLAN, Phase.REBUILD, Phase.DOWNLOAD, Phase.VERIFY, Phase.INSTALL,
        Phase.DONE}
    assert not _busy(install / ".stitch")  # and let it go

    publish(game[1], repo, "2.0.0")
    seen.clear()
    second = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo),
                     progress=probe)
    assert second.update().outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(game[1])
    assert {p for p, _ in seen} >= {Phase.CHECK, Phase.SCAN, Phase.PLAN, Phase.REBUILD,
                                    Phase.VERIFY, Phase.INSTALL, Phase.DONE}
    assert all(held for _, held in seen), seen  # an install: from the first report on
    assert not _busy(install / ".stitch")


def test_a_check_on_a_fresh_folder_creates_nothing(tmp_path: Path, repo: Path) -> None:
    install = tmp_path / "new-game"
    up = _updater(install, repo)
    assert up.check().installed_version is None
    assert not install.exists()


def test_update_waits_then_gives_up_and_changes_nothing(tmp_path: Path, repo: Path,
                                                        game: tuple[Path, Path]) -> None:
    install = tmp_path / "install"
    assert _updater(install, repo).update().outcome is Outcome.UPDATED
    publish(game[1], repo, "2.0.0")
    lines: list[str] = []
    with acquire(install / ".stitch"):
        up = Updater(UpdaterConfig(url=MEM, install_dir=install, lock_wait=0.2),
                     fetcher=memory_fetcher(repo), on_wait=lines.append)
        with pytest.raises(InstallBusyError):
            up.update()
        assert up.fetcher.requests == []  # type: ignore[attr-defined]  # not even the check
    assert len(lines) == 1 and "another update of this game is running" in lines[0]
    assert tree_digest(install) == tree_digest(game[0])


def test_released_after_a_failed_update(tmp_path: Path, repo: Path,
                                        game: tuple[Path, Path]) -> None:
    install = tmp_path / "install"
    assert _updater(install, repo).update().outcome is Outcome.UPDATED
    publish(game[1], repo, "2.0.0")
    up = Updater(UpdaterConfig(url=MEM, install_dir=install),
                 fetcher=_NoRanges(memory_fetcher(repo).files))
    with pytest.raises(NetworkError):
        up.update()
    assert not _busy(install / ".stitch")
    assert tree_digest(install) == tree_digest(game[0])


def test_the_window_s_plan_is_checked_again_after_another_run(tmp_path: Path, repo: Path,
                                                               game: tuple[Path, Path]) -> None:
    """The window checks and plans, then waits for the player with the lock free; another
    run updates meanwhile. The click re-validates under the lock and checks again."""
    install = tmp_path / "install"
    assert _updater(install, repo).update().outcome is Outcome.UPDATED
    publish(game[1], repo, "2.0.0")
    window = _updater(install, repo)
    plan = window.prepare()
    assert plan.check.installed_version == "1.0.0" and not plan.check.up_to_date
    assert not _busy(install / ".stitch")  # free while the player reads the plan
    assert _updater(install, repo).update().outcome is Outcome.UPDATED  # the launcher
    result = window.apply()
    assert (result.outcome, result.from_version, result.to_version) == \
        (Outcome.UP_TO_DATE, "2.0.0", "2.0.0")
    assert tree_digest(install) == tree_digest(game[1])
    assert verify_install(install).clean


# -- verify and sync take it too ----------------------------------------------------------

def test_verify_waits_for_the_lock(tmp_path: Path, repo: Path) -> None:
    install = tmp_path / "install"
    assert _updater(install, repo).update().outcome is Outcome.UPDATED
    with acquire(install / ".stitch"), pytest.raises(InstallBusyError):
        verify_install(install, lock_wait=0)
    assert verify_install(install, lock_wait=0).clean


def test_sync_waits_for_the_lock_and_writes_nothing(tmp_path: Path) -> None:
    target = os.urandom(300_000)
    (tmp_path / "t.bin").write_bytes(target)
    li = index_file(tmp_path / "t.bin", DEFAULT_PARAMS)
    fetcher = MemoryFetcher({"http://h/t.bin.fidx": li.raw, "http://h/t.bin": target})
    local = tmp_path / "local"
    with acquire(local / ".stitch"), pytest.raises(InstallBusyError) as e:
        sync(SyncConfig("http://h/t.bin.fidx", local, lock_wait=0), fetcher)
    assert str(e.value).startswith("another stitch run in this folder is running")
    assert sorted(p.name for p in local.iterdir()) == [".stitch"]
    assert sorted(p.name for p in (local / ".stitch").iterdir()) == [LOCK_NAME]
    sync(SyncConfig("http://h/t.bin.fidx", local, lock_wait=0), fetcher)
    assert (local / "t.bin").read_bytes() == target


# -- the command line: exit 8, the message, the JSON error --------------------------------

def _stitch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)


def test_cli_update_verify_and_sync_exit_8_while_another_run_holds_the_install(
        tmp_path: Path, stitch_server) -> None:  # type: ignore[no-untyped-def]
    served = tmp_path / "served"
    served.mkdir()
    (served / "t.bin").write_bytes(os.urandom(100_000))
    write_beside(served / "t.bin", DEFAULT_PARAMS)
    fidx_url = stitch_server(served).url + "t.bin.fidx"
    install = tmp_path / "install"
    state = install / ".stitch"
    nowhere = "http://127.0.0.1:9/"  # asked early (engine/early.py), unused: the lock first
    holder = _holder(state, "wait")
    try:
        r = _stitch("update", "--url", nowhere, "--dir", str(install), "--lock-wait", "0.3")
        assert r.returncode == EXIT_BUSY, r.stderr
        busy = f"another update of this game is running (pid {holder.pid})"
        assert r.stderr.splitlines() == [
            f"stitch: {busy} — waiting up to 0.3 s…",
            f"stitch: {busy}: gave up after 0.3 s (--lock-wait)",
        ]
        r = _stitch("--update", "--url", nowhere, "--dir", str(install), "--lock-wait", "0",
                    "--progress", "json")
        assert r.returncode == EXIT_BUSY
        assert json.loads(r.stdout.splitlines()[-1]) == {
            "event": "error", "kind": "busy", "exit_code": EXIT_BUSY,
            "message": f"{busy}: gave up after 0 s (--lock-wait)"}
        r = _stitch("verify", "--dir", str(install), "--lock-wait", "0")
        assert r.returncode == EXIT_BUSY and busy in r.stderr
        r = _stitch("sync", fidx_url, "--dir", str(install), "--lock-wait", "0")
        assert r.returncode == EXIT_BUSY
        assert f"another stitch run in this folder is running (pid {holder.pid})" in r.stderr
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert sorted(p.name for p in install.iterdir()) == [".stitch"]  # nothing else written


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals (Windows: Ctrl+Break)")
def test_cli_sigterm_ends_the_wait(tmp_path: Path) -> None:
    state = tmp_path / "install" / ".stitch"
    with acquire(state):
        proc = subprocess.Popen(
            [*STITCH, "update", "--url", "http://127.0.0.1:9/", "--dir", str(state.parent),
             "--lock-wait", "3600"],
            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        assert proc.stderr is not None
        assert "waiting up to 3600 s" in proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)  # not the hour it would otherwise wait
    assert proc.returncode == 6, err
    assert err.strip().splitlines()[-1] == "stitch: cancelled"


def test_cli_lock_wait_must_be_seconds(tmp_path: Path) -> None:
    for bad in ("-1", "soon", "1e9"):
        r = _stitch("update", "--url", "http://127.0.0.1:9/", "--dir", str(tmp_path),
                    "--lock-wait", bad)
        assert r.returncode == 2 and "--lock-wait" in r.stderr


# -- an install on read-only media ---------------------------------------------------------

@pytest.fixture
def ro_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A small tmpfs (root only) that the test can remount read-only."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _remount(mnt: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mounts a Linux tmpfs")
def test_an_up_to_date_install_on_read_only_media_still_checks(
        ro_disk: Path, repo: Path, stitch_server) -> None:  # type: ignore[no-untyped-def]
    url = stitch_server(repo).url
    install = ro_disk / "game"
    args = ("update", "--url", url, "--dir", str(install), "--progress", "none")
    assert _stitch(*args).returncode == 0
    before = tree_digest(install)
    _remount(ro_disk, "ro")
    r = _stitch(*args)  # the lock file is there: locked through a read-only descriptor
    assert r.returncode == 0, r.stderr
    holder = subprocess.Popen(  # ... which excludes others as well
        [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'rb'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.readline()",
         str(install / ".stitch" / LOCK_NAME)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert _stitch(*args, "--lock-wait", "0").returncode == EXIT_BUSY
    finally:
        holder.kill()
        holder.wait(timeout=60)
    _remount(ro_disk, "rw")
    (install / ".stitch" / LOCK_NAME).unlink()  # as an install made before the lock
    _remount(ro_disk, "ro")
    r = _stitch(*args)  # cannot be created, nothing can be written: runs unlocked
    assert r.returncode == 0, r.stderr
    assert tree_digest(install) == before
