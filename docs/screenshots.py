"""Take screenshots of the updater window in its main states, against a real local release.

    python docs/screenshots.py [--out docs/img] [--dark]

Publishes two versions of a small game-like folder with ``core.publish``, installs the first
with the engine, serves the repository with ``app.serve`` (slowed down, so the download is
caught in flight) and drives the real window to: ready, downloading, error (server
unreachable) and done. Rendering is offscreen (``QWidget.grab()``), so no display is needed.
``--dark`` also writes ``*-dark.png`` with a dark palette.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QCoreApplication  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app import serve  # noqa: E402
from app.config import AppConfig, to_updater_config  # noqa: E402
from app.gui.window import State, UpdaterWindow, app_icon  # noqa: E402
from core import signing  # noqa: E402
from core.publish import publish  # noqa: E402
from core.updater import Updater  # noqa: E402

NOTES = """\
### What's new in {version}

- The ice caverns level, with a new boss
- Loading is twice as fast on hard disks
- Fixed a crash when changing resolution
"""


def make_game(dest: Path, version: str) -> None:
    """A 24 MB archive (edited between versions), a movie, small files."""
    rng = random.Random(7)
    pak = bytearray(rng.randbytes(24_000_000))
    movie = rng.randbytes(6_000_000)
    if version != "1.0":
        edit = random.Random(11)
        for offset in (2_000_000, 9_000_000, 17_000_000):
            pak[offset : offset + 700_000] = edit.randbytes(700_000)
    files = {
        "data/world.pak": bytes(pak),
        "movies/intro.bin": movie,
        "readme.txt": f"Dungeon Crawl {version}\n".encode(),
        "dcrawl.py": b"print('Dungeon Crawl')\n",
    }
    for rel, data in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#26272b",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2d2e31",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.Highlight: "#4f8cff",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Mid: "#4a4b4f",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.ToolTipBase: "#2d2e31",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    return p


class Server:
    """``stitch serve`` in a thread, with an adjustable per-block delay."""

    def __init__(self, repo: Path, port: int = 0) -> None:
        outer = self
        self.delay = 0.0

        class Slow(serve.StitchServer):
            def count(self, sent: int, requests: int = 0) -> None:
                super().count(sent, requests)
                if outer.delay and sent:
                    time.sleep(outer.delay)

        self.server = Slow(("127.0.0.1", port), repo, quiet=True)
        self.url = self.server.url
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(app: QApplication, condition: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.01)


def shoot(app: QApplication, w: UpdaterWindow, out: Path, name: str) -> None:
    for _ in range(5):  # let layouts settle after the last state change
        app.processEvents()
    w.adjustSize()
    app.processEvents()
    path = out / f"{name}.png"
    if not w.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(path)


def config(base: Path, url: str, install: Path, pubkey: str) -> AppConfig:
    return AppConfig(
        path=base / "updater.toml",
        url=url,
        product="dcrawl",
        name="Dungeon Crawl",
        install_dir=install,
        default_install_dir=install,
        pubkeys=(pubkey,),
        program=sys.executable,
        args=("dcrawl.py",),
    )


def run(out: Path, suffix: str, app: QApplication) -> None:
    with tempfile.TemporaryDirectory(prefix="stitch-shots-") as tmp:
        base = Path(tmp)
        repo = base / "repo"
        repo.mkdir()
        server = Server(repo)
        key = signing.load_secret_key(signing.generate_keypair()[0], None)
        pubkey = key.public_key.b64()
        try:
            for version in ("1.0", "1.1"):
                src = base / f"src-{version}"
                make_game(src, version)
                publish(
                    src,
                    repo,
                    version=version,
                    sign_key=key,
                    product="dcrawl",
                    notes=NOTES.format(version=version),
                )
                if version == "1.0":
                    install = base / "Dungeon Crawl"
                    u = Updater(
                        to_updater_config(config(base, server.url, install, pubkey), install)
                    )
                    u.apply()
                    u.close()

            cfg = config(base, server.url, install, pubkey)
            w = UpdaterWindow(cfg, confirm_cancel=lambda _p: True, launcher=lambda a, c: None)
            w.show()
            w.start()
            wait_for(app, lambda: w.state is State.READY)
            shoot(app, w, out, "ready" + suffix)

            serve_block = serve.BLOCK
            serve.BLOCK = 16 * 1024
            server.delay = 0.03  # ~0.5 MB/s per connection: long enough to show speed and ETA
            w.start_update()
            wait_for(app, lambda: "/s ·" in w.status.text() or w.state is not State.RUNNING)
            if w.state is not State.RUNNING:
                raise SystemExit("the download ended before its speed was known")
            shoot(app, w, out, "downloading" + suffix)
            server.delay = 0.0
            serve.BLOCK = serve_block
            wait_for(app, lambda: w.state is State.DONE)
            shoot(app, w, out, "done" + suffix)
            w.close()

            dead = AppConfig(**{**cfg.__dict__, "url": "http://127.0.0.1:9/"})
            e = UpdaterWindow(dead)
            e.show()
            e.start()
            wait_for(app, lambda: e.state is State.ERROR)
            e.error_details_button.setChecked(True)
            shoot(app, e, out, "error" + suffix)
            e.close()
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--dark", action="store_true", help="also take dark-palette shots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    QCoreApplication.setApplicationName("stitch")
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    run(args.out, "", app)
    if args.dark:
        app.setPalette(dark_palette())
        run(args.out, "-dark", app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
