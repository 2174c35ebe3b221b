"""The window as a process, the way a player's desktop or a launcher starts it: SIGTERM
closes it like Cancel, and a broken updater.toml exits 2 with the file and line on stderr
instead of waiting forever on a dialog nobody can see."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.publisher.publish import publish
from tests.conftest import tree_digest
from tests.test_cli import _Trickle

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def test_sigterm_closes_the_window_as_cancel(tmp_path: Path, game) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0", product="quest")
    handler = lambda *a, **k: _Trickle(*a, directory=str(repo), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    install = tmp_path / "game"
    cfg = tmp_path / "updater.toml"
    cfg.write_text(f'product = "quest"\nurl = "http://127.0.0.1:{server.server_address[1]}"\n'
                   'install_dir = "game"\nauto_start = true\n')
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--config", str(cfg)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        staging = install / ".stitch" / "staging"
        while time.monotonic() < deadline and not list(staging.glob("*.part")):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert list(staging.glob("*.part")), "the download never started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
        server.server_close()
    assert proc.returncode == 1, err  # the window's code for "did not finish"
    assert tree_digest(install) == {}  # nothing installed; staging kept for next time
    assert list(staging.glob("*.part"))


def test_broken_config_exits_2_without_a_dialog(tmp_path: Path) -> None:
    cfg = tmp_path / "updater.toml"
    cfg.write_text('url = "http://127.0.0.1:9"\nchannel = [\n')
    r = subprocess.run([sys.executable, "-m", "app.cli", "--config", str(cfg)], env=ENV,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "updater.toml" in r.stderr and "line 2" in r.stderr
