"""The ``stitch`` command as a user runs it: a real process, real servers, and every
documented exit code caused on purpose (``ROWS``: each row of README's table, and every bad
argument or file named on the command line). Messages are one line; nothing is
half-installed. Also: every option has help, and the window's display check."""

from __future__ import annotations

import http.server
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.publisher.publish import publish
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


# -- every row of README's exit-code table, from the command line ------------------------------

ROOT = Path(__file__).resolve().parent.parent
BUG = ("import sys, core.engine.updater, app.cli\n"
       "def boom(self):\n    raise ZeroDivisionError('simulated bug')\n"
       "core.engine.updater.Updater.prepare = boom\n"
       "sys.exit(app.cli.main(sys.argv[1:]))\n")
NO_QT = ("import sys, app.cli\n"
         "sys.modules['PySide6'] = None  # as if it were not installed\n"
         "sys.exit(app.cli.main(sys.argv[1:]))\n")
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


@dataclass
class Ctx:
    """What a row's command runs against: ``repo`` (1.0.0, unsigned) served at ``url``."""

    tmp: Path
    repo: Path
    url: str
    game: tuple[Path, Path]
    serve: Callable[..., Any]
    install: Path = field(init=False)
    before: dict[str, bytes] = field(default_factory=dict)
    held: list[Any] = field(default_factory=list)  # sockets, processes: closed after the row

    def __post_init__(self) -> None:
        self.install = self.tmp / "install"

    def installed(self) -> None:
        """Install 1.0.0 first and remember the tree."""
        r = stitch(*_update_args(self.url, self.install, "--progress", "none"))
        assert r.returncode == 0, r.stderr
        self.before = tree_digest(self.install)


@dataclass(frozen=True)
class Row:
    code: int
    argv: Callable[[Ctx], list[str]]  # stitch's arguments (or a whole command: sys.executable)
    says: tuple[str, ...]  # words of the last line of ``stream``
    setup: Callable[[Ctx], object] | None = None
    check: Callable[[Ctx], object] | None = None
    env: Callable[[dict[str, str]], object] | None = None
    preexec: Callable[[], None] | None = None
    signal: signal.Signals | None = None  # sent once stitch says it is waiting (--wait-pid)
    stream: str = "stderr"
    lines: int | None = 1  # lines on stderr (failures: the one-line error); None: any


def _file(ctx: Ctx, name: str, text: str) -> Path:
    path = ctx.tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _busy_port(ctx: Ctx) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    ctx.held.append(s)


def _sleeper(ctx: Ctx) -> None:
    ctx.held.append(subprocess.Popen(["sleep", "60"]))


def _lock_holder(ctx: Ctx) -> None:
    """Another stitch run, as far as the install can tell: a process holding its lock."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from core.engine.lock import acquire; acquire(Path(sys.argv[1])); print('held', "
         "flush=True); "
         "time.sleep(60)", str(ctx.install / ".stitch")],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    ctx.held.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"


def _keys(ctx: Ctx, password: str | None = None) -> None:
    from core.formats import signing

    signing.keygen(ctx.tmp / "release.key", password.encode() if password else None)


def _signed_repo(ctx: Ctx) -> None:
    """A second repository signed with release.key, served at ``ctx.url``."""
    from core.formats import signing

    _keys(ctx)
    key = signing.load_secret_key((ctx.tmp / "release.key").read_bytes(), None)
    publish(ctx.game[0], ctx.tmp / "signed", "1.0.0", sign_key=key)
    ctx.url = ctx.serve(ctx.tmp / "signed").url


def _other_key(ctx: Ctx) -> str:
    from core.formats import signing

    return signing.parse_public_key(signing.generate_keypair(None)[1]).b64()


def _full_disk(ctx: Ctx) -> None:
    ctx.installed()
    publish(ctx.game[1], ctx.repo, "1.1.0")


def _damaged(ctx: Ctx) -> None:
    ctx.installed()
    victim = ctx.install / "data/game.wad"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 1
    victim.write_bytes(bytes(data))


def _unsafe_path(ctx: Ctx) -> None:
    from tests.test_updater import _republish_with

    _republish_with(ctx.repo, lambda o: o["files"].__setitem__(
        0, {**o["files"][0], "path": "../../outside.txt"}))


def _lying_index(ctx: Ctx) -> None:
    fidx = ctx.repo / "stable/1.0.0/files/data/game.wad.fidx"
    data = bytearray(fidx.read_bytes())
    data[40] ^= 1  # the file digest inside the index
    fidx.write_bytes(bytes(data))


def _no_display(env: dict[str, str]) -> None:
    for k in NO_DISPLAY:
        env.pop(k, None)


def _untouched(ctx: Ctx) -> None:
    assert tree_digest(ctx.install) == ctx.before


def _not_created(ctx: Ctx) -> None:
    assert not (ctx.install / "data").exists()


def _up(ctx: Ctx, *extra: str) -> list[str]:
    return _update_args(ctx.url, ctx.install, "--progress", "none", *extra)


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="X11/Wayland display check (Linux)")

ROWS = [
    # 0: the install is at the newest release
    pytest.param(Row(0, lambda c: _update_args(c.url, c.install), ("updated", "-> 1.0.0"),
                     check=lambda c: tree_digest(c.install) == tree_digest(c.game[0]),
                     lines=None),
                 id="0-installs"),
    pytest.param(Row(0, lambda c: _update_args(c.url, c.install), ("up to date: 1.0.0",),
                     setup=Ctx.installed, check=_untouched, lines=None), id="0-up-to-date"),
    pytest.param(Row(0, lambda c: _update_args(c.url, c.install, "--pubkey",
                                               str(c.tmp / "release.key.pub")),
                     ("updated", "-> 1.0.0"), setup=_signed_repo, lines=None),
                 id="0-pubkey-as-a-pub-file"),
    # 1: a bug (simulated inside the engine: nothing else can cause one on purpose)
    pytest.param(Row(1, lambda c: [sys.executable, "-c", BUG, *_up(c)],
                     ("internal error", "simulated bug"), check=_not_created), id="1-bug"),
    # 2: bad arguments, files named on the command line, configuration file
    pytest.param(Row(2, lambda c: _update_args(c.url.split("//")[1], c.install),
                     ("--url", "no scheme", "http://"), check=_not_created),
                 id="2-url-without-scheme"),
    pytest.param(Row(2, lambda c: ["sync", "ftp://127.0.0.1/x.fidx", "--dir", str(c.install)],
                     ("URL", "'ftp'")), id="2-sync-url-not-http"),
    pytest.param(Row(2, lambda c: _up(c, "--pubkey", str(c.tmp / "missing.pub")),
                     ("--pubkey", "missing.pub", "No such file")), id="2-pubkey-file-missing"),
    pytest.param(Row(2, lambda c: _up(c, "--pubkey", str(_file(c, "bad.pub", "hello\n"))),
                     ("--pubkey", "bad.pub", "not a minisign public key")),
                 id="2-pubkey-file-not-a-key"),
    pytest.param(Row(2, lambda c: _up(c, "--pubkey", str(c.tmp / "release.key")),
                     ("--pubkey", "release.key", "not a minisign public key"), setup=_keys),
                 id="2-pubkey-is-the-secret-key"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(c.tmp / "r"), "--version",
                                   "1", "--sign-key", str(c.tmp / "missing.key")],
                     ("--sign-key", "missing.key", "No such file")), id="2-sign-key-missing"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(c.tmp / "r"), "--version",
                                   "1", "--sign-key", str(c.tmp / "release.key.pub")],
                     ("--sign-key", "is a public key", "without .pub"), setup=_keys,
                     check=lambda c: not (c.tmp / "r").exists()), id="2-sign-key-is-a-pub"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(c.tmp / "r"), "--version",
                                   "1", "--sign-key", str(c.tmp / "release.key")],
                     ("--sign-key", "needs a password", "STITCH_KEY_PASSWORD"),
                     setup=lambda c: _keys(c, "secret"),
                     env=lambda e: e.pop("STITCH_KEY_PASSWORD", None)),
                 id="2-sign-key-password-no-terminal"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(c.tmp / "r"), "--version",
                                   "1", "--sign-key", str(c.tmp / "release.key")],
                     ("--sign-key", "wrong password"), setup=lambda c: _keys(c, "secret"),
                     env=lambda e: e.update(STITCH_KEY_PASSWORD="wrong")),
                 id="2-sign-key-wrong-password"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(_file(c, "f", "")),
                                   "--version", "1"], ("REPO", "not a folder")),
                 id="2-publish-repo-is-a-file"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(c.tmp / "r"), "--version",
                                   "1", "--notes", f"@{c.tmp / 'missing.txt'}"],
                     ("--notes", "missing.txt")), id="2-publish-notes-file-missing"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(c.tmp / "r"), "--version",
                                   "1", "--compress-level", "0"],
                     ("--compress-level", "1 to 22")), id="2-compress-level"),
    pytest.param(Row(2, lambda c: ["serve", str(c.repo), "--port",
                                   str(c.held[0].getsockname()[1])],
                     ("port", "in use", "--port"), setup=_busy_port), id="2-serve-port-busy"),
    pytest.param(Row(2, lambda c: ["serve", str(c.repo), "--port", "65536"],
                     ("--port", "0 to 65535")), id="2-serve-port-out-of-range"),
    pytest.param(Row(2, lambda c: ["serve", str(c.repo), "--bind", "192.0.2.7", "--port", "0"],
                     ("--bind", "192.0.2.7", "not an address of this machine")),
                 id="2-serve-bind-not-this-machine"),  # 192.0.2.0/24: documentation only
    pytest.param(Row(2, lambda c: ["serve", str(c.tmp / "missing")], ("REPO", "not a folder")),
                 id="2-serve-repo-missing"),
    pytest.param(Row(2, lambda c: ["publish", str(c.game[0]), str(c.tmp / "r"), "--version",
                                   "1", "--channel", "../escape"], ("--channel", "../escape"),
                     check=lambda c: not (c.tmp / "escape").exists()),
                 id="2-publish-channel-outside-repo"),
    pytest.param(Row(2, lambda c: _up(c, "--channel", "a/b"), ("--channel", "'a/b'")),
                 id="2-update-channel-not-a-name"),
    pytest.param(Row(2, lambda c: ["fidx", str(_file(c, "one.bin", "x")), "--url",
                                   "ftp://mirror/one.bin"], ("--url", "'ftp'"),
                     check=lambda c: not (c.tmp / "one.bin.fidx").exists()),
                 id="2-fidx-url-not-http"),
    pytest.param(Row(2, lambda c: ["keygen", str(c.tmp / "k"), "--password"],
                     ("--password", "STITCH_KEY_PASSWORD"),
                     env=lambda e: e.pop("STITCH_KEY_PASSWORD", None),
                     check=lambda c: not (c.tmp / "k").exists()),
                 id="2-keygen-password-no-terminal"),
    pytest.param(Row(2, lambda c: ["keygen", str(c.tmp)], ("KEYFILE", "is a folder")),
                 id="2-keygen-keyfile-is-a-folder"),
    pytest.param(Row(2, lambda c: ["keygen", str(_file(c, "f", "")) + "/k"],
                     ("KEYFILE", "not a folder")), id="2-keygen-under-a-file"),
    pytest.param(Row(2, lambda c: ["demo", "--dir", str(_file(c, "f", ""))],
                     ("--dir", "not a folder")), id="2-demo-dir-is-a-file"),
    pytest.param(Row(2, lambda c: _up(c, "--connections", "0"), ("--connections", "at least 1")),
                 id="2-connections-zero"),
    pytest.param(Row(2, lambda c: ["sync", c.url + "x.fidx", "--dir", str(c.install),
                                   "--connections", "-2"], ("--connections", "at least 1")),
                 id="2-sync-connections-negative"),
    pytest.param(Row(2, lambda c: _up(c, "--wait-pid", "0"), ("--wait-pid", "at least 1")),
                 id="2-wait-pid-zero"),
    pytest.param(Row(2, lambda c: _up(c, "--no-such-option"), ("unrecognized", "--help")),
                 id="2-unknown-option"),
    pytest.param(Row(2, lambda c: _update_args(c.url, _file(c, "afile", "I am a file")),
                     ("--dir", "afile", "not a folder"),
                     check=lambda c: (c.tmp / "afile").read_text() == "I am a file"),
                 id="2-dir-is-a-file"),
    pytest.param(Row(2, lambda c: ["verify", "--dir", str(_file(c, "afile", ""))],
                     ("--dir", "not a folder")), id="2-verify-dir-is-a-file"),
    pytest.param(Row(2, lambda c: ["sync", c.url + "x.fidx", "--dir", str(_file(c, "afile", ""))],
                     ("--dir", "not a folder")), id="2-sync-dir-is-a-file"),
    pytest.param(Row(2, lambda c: ["--update", "--config", str(_file(
        c, "updater.toml", 'url = "http://x"\nchannel = \n'))], ("updater.toml", "line 2")),
                 id="2-config-broken"),
    pytest.param(Row(2, lambda c: ["--update", "--config", str(c.tmp)], ("cannot read",)),
                 id="2-config-is-a-folder"),
    pytest.param(Row(2, lambda c: ["--update", "--config", str(_file(
        c, "updater.toml", 'url = "cdn.example.com/game"\ninstall_dir = "i"\n'))],
                     ("updater.toml", "line 1", "http://")), id="2-config-url-without-scheme"),
    pytest.param(Row(2, lambda c: [], ("no display", "stitch --update"), env=_no_display),
                 id="2-no-display", marks=linux_only),
    pytest.param(Row(2, lambda c: [], ("no X server answers", "stitch --update"),
                     env=lambda e: (_no_display(e), e.update(DISPLAY=f":{_unused_display()}"))),
                 id="2-stale-display", marks=linux_only),
    pytest.param(Row(2, lambda c: ["gui"], ("no display", "stitch --update"),
                     env=lambda e: (_no_display(e), e.update(QT_QPA_PLATFORM="xcb"))),
                 id="2-gui-no-display-xcb", marks=linux_only),
    pytest.param(Row(2, lambda c: [sys.executable, "-c", NO_QT, "gui"],
                     ("needs PySide6", "stitch --update"),
                     env=lambda e: e.update(QT_QPA_PLATFORM="offscreen")),
                 id="2-gui-without-pyside6"),
    # 3: network
    pytest.param(Row(3, lambda c: _update_args(f"http://127.0.0.1:{free_port()}", c.install,
                                               "--progress", "none"), ("refused",),
                     check=lambda c: not c.install.exists()), id="3-server-down"),
    pytest.param(Row(3, _up, ("404",),
                     setup=lambda c: (c.repo / "stable/1.0.0/release.json").unlink(),
                     check=_not_created), id="3-manifest-missing"),
    # 4: release rejected
    pytest.param(Row(4, _up, ("unsafe path",), setup=_unsafe_path,
                     check=lambda c: not (c.tmp / "outside.txt").exists()
                     and not (c.tmp.parent / "outside.txt").exists()), id="4-unsafe-path"),
    pytest.param(Row(4, _up, ("fidx",), setup=_lying_index, check=_not_created),
                 id="4-lying-index"),
    pytest.param(Row(4, lambda c: _up(c, "--pubkey", _other_key(c)), ("not a trusted key",),
                     setup=_signed_repo, check=_not_created), id="4-untrusted-key"),
    # 5: local disk
    pytest.param(Row(5, _up, ("File too large",), setup=_full_disk, check=_untouched,
                     preexec=lambda: _limit_file_size()), id="5-disk-full"),
    # 6: cancelled
    pytest.param(Row(6, lambda c: _up(c, "--wait-pid", str(c.held[0].pid)), ("cancelled",),
                     setup=_sleeper, signal=signal.SIGTERM, lines=2, check=_not_created),
                 id="6-sigterm"),
    pytest.param(Row(6, lambda c: _up(c, "--wait-pid", str(c.held[0].pid)), ("cancelled",),
                     setup=_sleeper, signal=signal.SIGINT, lines=2, check=_not_created),
                 id="6-sigint"),
    # 7: verify found damage
    pytest.param(Row(7, lambda c: ["verify", "--dir", str(c.install), "--progress", "none"],
                     ("damaged", "1 damaged"), setup=_damaged, stream="stdout", lines=0),
                 id="7-verify-damaged"),
    # 8: another run holds the install
    pytest.param(Row(8, lambda c: _up(c, "--lock-wait", "0"), ("another update",),
                     setup=_lock_holder, lines=2), id="8-busy"),
]


def _run(row: Row, ctx: Ctx) -> subprocess.CompletedProcess[str]:
    argv = row.argv(ctx)
    cmd = argv if argv[:1] == [sys.executable] else [*STITCH, *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if row.env:
        row.env(env)
    if row.signal is None:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env,
                              cwd=ctx.tmp, stdin=subprocess.DEVNULL, start_new_session=True,
                              preexec_fn=row.preexec)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ctx.tmp, stdin=subprocess.DEVNULL)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "waiting for process N": the handlers are in place
    assert "waiting for process" in first, first
    proc.send_signal(row.signal)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, first + err)


@pytest.mark.parametrize("row", ROWS)
def test_exit_code_table(row: Row, tmp_path: Path, served, game, stitch_server) -> None:  # type: ignore[no-untyped-def]
    repo, url = served
    ctx = Ctx(tmp_path, repo, url, game, stitch_server)
    try:
        if row.setup:
            row.setup(ctx)
        r = _run(row, ctx)
    finally:
        for h in ctx.held:
            if isinstance(h, subprocess.Popen):
                h.kill()
                h.wait()
            else:
                h.close()
    assert r.returncode == row.code, (r.stdout, r.stderr)
    err = r.stderr.splitlines()
    assert row.lines is None or len(err) == row.lines, r.stderr
    said = (r.stdout if row.stream == "stdout" else r.stderr).strip().splitlines()[-1]
    if row.code != 0 and row.stream == "stderr":
        assert said.startswith("stitch"), said
    for word in row.says:
        assert word in said, said
    if row.check:
        assert row.check(ctx) is not False


def test_the_table_covers_every_row_of_readme() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("### Exit codes", 1)[1].split("\n\n", 2)[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}
    tested = {p.values[0].code for p in ROWS}  # type: ignore[attr-defined]
    assert documented == set(range(9)) == tested


@pytest.mark.parametrize(("env", "platform", "ok"), [
    ({}, "linux", False),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", False),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
    ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "linux", True),
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "freebsd14", True),
    ({}, "freebsd14", False),
    ({}, "win32", True),
    ({}, "darwin", True),
])
def test_no_display_check(env: dict[str, str], platform: str, ok: bool) -> None:
    from app.cli import no_display_problem

    assert (no_display_problem(env, platform, lambda n: True) == "") is ok


@pytest.mark.parametrize(("display", "answers", "ok"), [
    (":0", True, True), (":0", False, False), ("unix:1.0", False, False),
    ("localhost:10.0", False, True),  # remote (ssh -X): not probed
])
def test_a_local_x_display_must_answer(display: str, answers: bool, ok: bool) -> None:
    from app.cli import no_display_problem

    asked: list[int] = []

    def x11(n: int) -> bool:
        asked.append(n)
        return answers

    problem = no_display_problem({"DISPLAY": display}, "linux", x11)
    assert (problem == "") is ok
    assert not ok or answers or not asked
    if not ok:
        assert f"DISPLAY={display}" in problem


def _unused_display() -> int:
    """A display number no X server here listens on (bounded search)."""
    from app.cli import _x11_answers

    for n in range(4242, 4342):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not _x11_answers(n):
            return n
    raise AssertionError("no free X display number")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux abstract sockets")
def test_x11_probe_sees_a_listening_server() -> None:
    """A socket where an X server's would be (Linux's abstract name) answers; once it is
    closed, nothing does."""
    from app.cli import _x11_answers

    n = _unused_display()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(f"\0/tmp/.X11-unix/X{n}")
    server.listen()
    try:
        assert _x11_answers(n)
    finally:
        server.close()
    assert not _x11_answers(n)


def _parsers() -> list[tuple[str, Any]]:
    """``stitch`` and each subcommand's parser."""
    import argparse

    from app.cli import build_parser

    top = build_parser()
    subs = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(subs) == 1
    return [("stitch", top), *((f"stitch {n}", p) for n, p in subs[0].choices.items())]


def test_help_reads_like_a_synopsis() -> None:
    """Every argument of every command has help; no developer markup; --smoke-test hidden."""
    import argparse

    names = []
    for prog, parser in _parsers():
        names.append(prog)
        assert parser.description, prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            what = f"{prog} {action.option_strings or action.dest}"
            if action.option_strings == ["--smoke-test"]:
                assert action.help == argparse.SUPPRESS
                continue
            assert action.help and action.help.strip(), f"{what} has no help"
        text = parser.format_help()
        assert "`" not in text and "``" not in text, prog
        assert "--smoke-test" not in text, prog
    assert {"stitch", "stitch publish", "stitch update", "stitch serve", "stitch keygen",
            "stitch demo", "stitch fidx", "stitch sync", "stitch verify",
            "stitch gui", "stitch uninstall"} == set(names)
    r = stitch("publish", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: stitch publish")
    assert "the game folder to publish" in r.stdout and "`" not in r.stdout


def test_smoke_test_option_is_hidden_but_parsed() -> None:
    from app.cli import build_parser

    assert build_parser().parse_args(["--smoke-test", "2.5"]).smoke_test == 2.5


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
    code = ("import sys, core.engine.updater, core.publisher.publish, app.cli;"
            "print(any(m.startswith('PySide6') for m in sys.modules),"
            " 'httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
    importers = [p.as_posix() for p in sorted(Path("core").rglob("*.py"))
                 if "import httpx" in p.read_text()]
    assert importers == ["core/net/http/client.py"]  # one module owns HTTP


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
    assert threads("import core.chunks.planner, numpy") == 1


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
    import core.engine.updater

    def broken(self: object) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(core.engine.updater.Updater, "prepare", broken)
    _, url = served
    code = app.cli.main(_update_args(url, tmp_path / "i", "--progress", "json"))
    assert code == 1
    out, err = capsys.readouterr()
    final = json.loads(out.splitlines()[-1])
    assert final == {"event": "error", "kind": "internal",
                     "message": "simulated bug", "exit_code": 1}
    assert "internal error" in err and "Traceback" not in err
    assert not (tmp_path / "i" / "data").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal (Linux)")
def test_a_pub_as_sign_key_is_named_without_a_password_prompt(tmp_path: Path, game) -> None:  # type: ignore[no-untyped-def]
    """With a terminal too (where a prompt could appear), a public key given as --sign-key
    is recognised before any password is asked for."""
    import pty

    from core.formats import signing

    signing.keygen(tmp_path / "release.key", b"secret")
    argv = [*STITCH, "publish", str(game[0]), str(tmp_path / "r"), "--version", "1",
            "--sign-key", str(tmp_path / "release.key.pub")]
    env = {k: v for k, v in os.environ.items() if k != "STITCH_KEY_PASSWORD"}
    env["PYTHONPATH"] = str(ROOT)
    pid, fd = pty.fork()
    if pid == 0:  # the child: stitch with the pty as its terminal
        os.execve(argv[0], argv, env)
    out = b""
    for _ in range(10_000):  # bounded: until the child closes the terminal
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child exited
            break
        out += chunk
        if not chunk or b"password" in out:
            break
    if b"password" in out:  # it prompts: it would wait for an answer forever
        os.kill(pid, signal.SIGKILL)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 2, text
    assert "is a public key" in text and "password" not in text
    assert not (tmp_path / "r").exists()
