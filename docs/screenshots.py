"""Take screenshots of the updater window in its main states, against a real local release.

    python docs/screenshots.py [--out docs/img] [--dark] [--lang de] [--scale 2] [--long]

Publishes two versions of a small game-like folder with ``core.publisher.publish``, installs the
first with the engine, serves the repository with ``app.serve`` (slowed down, so the download is
caught in flight) and drives the real window to: ready, downloading, paused, done, cancelled
and error (server unreachable). Rendering is offscreen (``QWidget.grab()``), so no display is
needed. ``--dark`` also writes ``*-dark.png`` with a dark palette; ``--lang`` installs that
translation (``*-de.png``), ``--scale`` sets QT_SCALE_FACTOR (``*-200.png``), ``--long`` uses
a long game name and a deep install folder (``*-long.png``).

Every shot is checked first: a visible label or button smaller than its size hint (or, when
it wraps, than its height for its width) stops the script with exit code 1, naming it
(``app.gui.view.clipped_widgets``). ``--no-images`` checks without writing pictures.
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
from app.gui.tr import install_translator  # noqa: E402
from app.gui.view import clipped_widgets  # noqa: E402
from app.gui.window import State, UpdaterWindow, app_icon  # noqa: E402
from core.engine.updater import Updater  # noqa: E402
from core.formats import signing  # noqa: E402
from core.publisher.publish import publish  # noqa: E402

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


LONG_NAME = "Dungeon Crawl: The Extraordinarily Long Subtitle Edition of the Ice Caverns"


class Clipped(SystemExit):
    """A label or button was cut: exit code 1, with what was cut."""


def shoot(app: QApplication, w: UpdaterWindow, out: Path | None, name: str) -> None:
    """Check the window in its present state for clipped widgets, then save ``name``.png
    (unless ``out`` is None)."""
    for _ in range(5):  # let layouts settle after the last state change
        app.processEvents()
    w.fit_content()
    app.processEvents()
    cut = clipped_widgets(w)
    if cut:
        print(f"{name}: clipped: " + "; ".join(cut), file=sys.stderr)
        raise Clipped(1)
    if out is None:
        print(f"{name}: nothing clipped")
        return
    path = out / f"{name}.png"
    if not w.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(path)


def config(base: Path, url: str, install: Path, pubkey: str, long: bool = False) -> AppConfig:
    return AppConfig(
        path=base / "updater.toml",
        url=url,
        product="dcrawl",
        name=LONG_NAME if long else "Dungeon Crawl",
        install_dir=install,
        default_install_dir=install,
        pubkeys=(pubkey,),
        program=sys.executable,
        args=("dcrawl.py",),
    )


def run(out: Path | None, suffix: str, app: QApplication, long: bool = False) -> None:
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
                    if long:
                        install = base.joinpath(*["Games and other long folder names"] * 5,
                                                "Dungeon Crawl")
                    u = Updater(
                        to_updater_config(config(base, server.url, install, pubkey), install)
                    )
                    u.apply()
                    u.close()

            cfg = config(base, server.url, install, pubkey, long)
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
            w.pause_button.click()
            shoot(app, w, out, "paused" + suffix)
            w.pause_button.click()
            w.cancel_button.click()  # confirmed by the stand-in: kept for the retry
            wait_for(app, lambda: w.state is State.ERROR)
            shoot(app, w, out, "cancelled" + suffix)
            server.delay = 0.0
            serve.BLOCK = serve_block
            w.retry_button.click()  # goes on where it stopped
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
    parser.add_argument("--lang", default="", help="a translation to install, e.g. de")
    parser.add_argument("--scale", type=float, default=1.0, help="QT_SCALE_FACTOR, e.g. 2")
    parser.add_argument("--long", action="store_true",
                        help="a long game name and a deep install folder")
    parser.add_argument("--no-images", action="store_true",
                        help="only check that nothing is clipped")
    args = parser.parse_args(argv)
    out = None if args.no_images else args.out
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    suffix = (f"-{args.lang}" if args.lang else "") + (
        f"-{round(args.scale * 100)}" if args.scale != 1 else "") + ("-long" if args.long else "")
    if args.scale != 1:
        os.environ["QT_SCALE_FACTOR"] = f"{args.scale:g}"  # read when the application starts
    app = QApplication(sys.argv[:1])
    QCoreApplication.setApplicationName("stitch")
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    if args.lang and install_translator(app, args.lang) is None:
        raise SystemExit(f"no translation for {args.lang!r} in assets/i18n")
    try:
        run(out, suffix, app, args.long)
        if args.dark:
            app.setPalette(dark_palette())
            run(out, suffix + "-dark", app, args.long)
    except Clipped:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
