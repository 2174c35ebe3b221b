"""The ``stitch`` command as a user runs it: a real process, real servers, and every
documented exit code caused on purpose. Messages are one line; nothing is half-installed."""

from __future__ import annotations

import http.server
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.publish import publish
from tests.conftest import free_port, tree_digest

STITCH = [sys.executable, "-m", "app.cli"]


def stitch(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=timeout,
                          **kw)  # type: ignore[call-overload]


def _update_args(url: str, install: Path, *extra: str) -> list[str]:
    return ["update", "--url", url, "--dir", str(install), *extra]


@pytest.fixture
def served(tmp_path: Path, game: tuple[Path, Path], stitch_server):  # type: ignore[no-untyped-def]
    v1, _ = game
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    return repo, stitch_server(repo).url


def test_json_progress_lines_and_result(tmp_path: Path, served, game) -> None:  # type: ignore[no-untyped-def]
    _repo, url = served
    install = tmp_path / "install"
    r = stitch(*_update_args(url, install, "--progress", "json"))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(isinstance(o, dict) for o in lines)
    phases = [o["phase"] for o in lines if o["event"] == "progress"]
    order = ["check", "scan", "plan", "rebuild", "download", "verify", "install", "done"]
    firsts = sorted(set(phases), key=phases.index)
    assert firsts == order
    final = lines[-1]
    assert final["event"] == "result" and final["outcome"] == "updated"
    assert final["to_version"] == "1.0.0" and final["exit_code"] == 0
    size = sum(len(b) for b in tree_digest(install).values())
    assert size == sum(len(b) for b in tree_digest(game[0]).values())
    assert final["bytes_downloaded"] >= size

    r = stitch(*_update_args(url, install, "--progress", "json"))
    final = json.loads(r.stdout.splitlines()[-1])
    assert r.returncode == 0 and final["outcome"] == "up-to-date"


def test_exit_3_when_the_server_is_down(tmp_path: Path) -> None:
    r = stitch(*_update_args(f"http://127.0.0.1:{free_port()}", tmp_path / "i"))
    assert r.returncode == 3
    errors = [line for line in r.stderr.splitlines() if line.startswith("stitch:")]
    assert len(errors) == 1 and "refused" in errors[0]
    assert not (tmp_path / "i").exists()


def test_exit_3_when_the_manifest_is_missing(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    repo, url = served
    (repo / "stable/1.0.0/release.json").unlink()
    r = stitch(*_update_args(url, tmp_path / "i", "--progress", "json"))
    assert r.returncode == 3
    err = json.loads(r.stdout.splitlines()[-1])
    assert err["event"] == "error" and err["kind"] == "network" and "404" in err["message"]


def test_exit_4_for_an_unsafe_path_and_nothing_written_outside(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    repo, url = served
    from tests.test_updater import _republish_with

    _republish_with(repo, lambda o: o["files"].__setitem__(
        0, {**o["files"][0], "path": "../../outside.txt"}))
    r = stitch(*_update_args(url, tmp_path / "i"))
    assert r.returncode == 4, r.stderr
    assert "unsafe path" in r.stderr
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path.parent / "outside.txt").exists()


def test_exit_4_for_a_lying_index(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    repo, url = served
    fidx = repo / "stable/1.0.0/files/data/game.wad.fidx"
    data = bytearray(fidx.read_bytes())
    data[40] ^= 1  # the file digest inside the index
    fidx.write_bytes(bytes(data))
    r = stitch(*_update_args(url, tmp_path / "i"))
    assert r.returncode == 4
    assert not (tmp_path / "i" / "data").exists()


def test_exit_2_for_a_broken_config(tmp_path: Path) -> None:
    cfg = tmp_path / "updater.toml"
    cfg.write_text('url = "http://x"\nchannel = \n')
    r = stitch("--update", "--config", str(cfg))
    assert r.returncode == 2
    assert "updater.toml" in r.stderr and "line 2" in r.stderr


def test_exit_5_when_the_install_folder_is_not_a_folder(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    _, url = served
    target = tmp_path / "afile"
    target.write_text("I am a file")
    r = stitch(*_update_args(url, target))
    assert r.returncode == 5, r.stderr
    assert target.read_text() == "I am a file"


def _limit_file_size() -> None:
    # A disk that fills up: writes past 1 MB fail with EFBIG (the signal is ignored so the
    # write returns an error instead of killing the process).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_exit_5_on_a_full_disk_and_the_old_install_survives(tmp_path: Path, served,
                                                              game) -> None:  # type: ignore[no-untyped-def]
    repo, url = served
    install = tmp_path / "install"
    assert stitch(*_update_args(url, install, "--progress", "none")).returncode == 0
    before = tree_digest(install)
    publish(game[1], repo, "1.1.0")
    r = stitch(*_update_args(url, install), preexec_fn=_limit_file_size)
    assert r.returncode == 5, r.stderr
    assert r.stderr.splitlines()[-1].startswith("stitch: ")
    assert tree_digest(install) == before
    # Space back: the next run completes, reusing what the failed one staged.
    r = stitch(*_update_args(url, install))
    assert r.returncode == 0, r.stderr
    assert tree_digest(install) == tree_digest(game[1])


class _Trickle(http.server.SimpleHTTPRequestHandler):
    """Serves metadata normally and file bodies at a crawl (no Range support)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        if "/files/" not in self.path or self.path.endswith(".fidx"):
            super().copyfile(source, outputfile)
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (block := source.read(2048)):
            try:
                outputfile.write(block)
                outputfile.flush()
            except OSError:
                return
            time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_exit_6_on_a_signal_and_install_untouched(tmp_path: Path, served, game,  # type: ignore[no-untyped-def]
                                                  sig: signal.Signals) -> None:
    repo, url = served
    install = tmp_path / "install"
    assert stitch(*_update_args(url, install, "--progress", "none")).returncode == 0
    before = tree_digest(install)
    publish(game[1], repo, "1.1.0")
    handler = lambda *a, **k: _Trickle(*a, directory=str(repo), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        slow = f"http://127.0.0.1:{server.server_address[1]}"
        proc = subprocess.Popen([*STITCH, *_update_args(slow, install, "--progress", "json")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until bytes are flowing
            if json.loads(line).get("phase") == "download":
                break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 6, err
    assert json.loads(out.splitlines()[-1])["kind"] == "cancelled"
    assert tree_digest(install) == before
    assert any((install / ".stitch/staging").iterdir())  # kept for the next run


def test_publish_report_and_version_flag(tmp_path: Path, game) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    repo = tmp_path / "repo"
    r = stitch("publish", str(v1), str(repo), "--version", "1.0.0")
    assert r.returncode == 0 and "published 1.0.0" in r.stdout
    r = stitch("publish", str(v2), str(repo), "--version", "1.1.0")
    assert "since 1.0.0:" in r.stdout and "removed" in r.stdout
    r = stitch("publish", str(v2), str(repo), "--version", "1.1.0")
    assert r.returncode == 2 and "already exists" in r.stderr
    r = stitch("--version")
    assert r.returncode == 0 and r.stdout.startswith("stitch ")


def test_core_does_not_load_qt_and_only_http_loads_httpx() -> None:
    code = ("import sys, core.updater, core.publish, app.cli;"
            "print(any(m.startswith('PySide6') for m in sys.modules),"
            " 'httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
    importers = [p.as_posix() for p in sorted(Path("core").rglob("*.py"))
                 if "import httpx" in p.read_text()]
    assert importers == ["core/http/client.py"]  # one module owns HTTP


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2,
                    reason="counts threads in Linux's /proc; needs 2 CPUs for BLAS threads")
def test_the_engine_runs_no_idle_blas_threads() -> None:
    """numpy's BLAS starts a spinning worker thread per extra CPU; the engine turns them off
    (it does no linear algebra) before numpy is loaded."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}

    def threads(code: str) -> int:
        code += "; import os; print(len(os.listdir('/proc/self/task')))"
        return int(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                  text=True, check=True, env=env).stdout)

    assert threads("import numpy") > 1  # what numpy does on its own here
    assert threads("import core.planner, numpy") == 1


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A small tmpfs (root only; 12 MB unless the test is marked ``disk_mb(N)``): a real
    disk that fills up and can be remounted read-only."""
    marker = request.node.get_closest_marker("disk_mb")
    mb = marker.args[0] if marker else 12
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.disk_mb(40)
def test_exit_5_on_a_read_only_install_folder(small_disk: Path, served, game) -> None:  # type: ignore[no-untyped-def]
    repo, url = served
    install = small_disk / "game"
    assert stitch(*_update_args(url, install, "--progress", "none")).returncode == 0
    before = tree_digest(install)
    publish(game[1], repo, "1.1.0")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    r = stitch(*_update_args(url, install))
    assert r.returncode == 5, r.stderr
    assert "Read-only file system" in r.stderr.splitlines()[-1]
    assert tree_digest(install) == before


def test_exit_5_when_the_disk_is_too_small_checked_before_writing(small_disk: Path, served,  # type: ignore[no-untyped-def]
                                                                  game) -> None:
    repo, url = served
    install = small_disk / "game"
    assert stitch(*_update_args(url, install, "--progress", "none")).returncode == 0
    before = tree_digest(install)
    publish(game[1], repo, "1.1.0")
    r = stitch(*_update_args(url, install))
    assert r.returncode == 5, r.stderr
    assert "not enough disk space" in r.stderr.splitlines()[-1]
    assert tree_digest(install) == before
    staging = install / ".stitch/staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_exit_1_for_a_bug_is_one_line_and_a_json_error(tmp_path: Path, served,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Exit code 1 is for bugs only; simulate one inside the engine."""
    import app.cli
    import core.updater

    def broken(self: object) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(core.updater.Updater, "prepare", broken)
    _, url = served
    code = app.cli.main(_update_args(url, tmp_path / "i", "--progress", "json"))
    assert code == 1
    out, err = capsys.readouterr()
    final = json.loads(out.splitlines()[-1])
    assert final == {"event": "error", "kind": "internal",
                     "message": "simulated bug", "exit_code": 1}
    assert "internal error" in err and "Traceback" not in err
    assert not (tmp_path / "i" / "data").exists()
