"""The window's Cancel during a network wait (issue 13, item 9): ``UpdateSession.cancel``
cancels the token the worker's real ``Updater`` was given, and the guarded socket reads
(``core.net.http.deadline``) end the blocked request. The server is silent and the updater's
limits are 60 s, so only the cancel can end the check within the 5 s waited here."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.gui.worker import UpdateSession
from app.serve import make_server
from core.engine.updater import UpdaterConfig
from core.publisher.publish import publish
from tests.faultproxy import FaultProxy, Rule


def test_cancel_ends_a_check_blocked_on_a_silent_server(qtbot: QtBot, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "readme.txt").write_text("hello")
    repo = tmp_path / "repo"
    publish(src, repo, "1.0.0")
    server = make_server(repo, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    session = UpdateSession()
    try:
        with FaultProxy(url, [Rule("silent", path=r"latest\.json$")], stall_max=120) as proxy:
            session.prepare(UpdaterConfig(url=proxy.url, install_dir=tmp_path / "i",
                                          timeout=60))
            deadline = time.monotonic() + 30
            while not proxy.log:  # the request is out, and the server says nothing
                assert time.monotonic() < deadline
                qtbot.wait(20)
            qtbot.wait(300)
            with qtbot.waitSignal(session.signals.failed, timeout=5000) as blocker:
                session.cancel()
            assert blocker.args[0] == "cancelled"
            assert [e.fault for e in proxy.log] == ["silent"]  # not retried after the cancel
    finally:
        assert session.stop()
        server.shutdown()
        server.server_close()
