"""The ``stitch`` command: parse arguments, build the engine's objects, run one thing, and
map the error families to messages and exit codes (the table is in README.md).

With no arguments (or ``gui``) it opens the updater window; ``--update`` runs the same
update silently for launchers. Nothing here imports Qt unless the window is asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from app.args import (
    DEFAULT_LOCK_WAIT,
    EXIT_CODES_EPILOG,
    Parser,
    add_lock_wait,
    check_dir_arg,
    files_url_arg,
    http_url,
    int_between,
    name_arg,
    optional_name_arg,
    positive_float,
    positive_int,
    timeout_seconds,
)
from app.outcome import (
    EXIT_CANCELLED,
    EXIT_DAMAGED,
    EXIT_INTERNAL,
    EXIT_OK,
    cancel_on_signals,
    error_kind,
    exit_code_for,
    one_line,
    say_waiting,
)
from app.report import Reporter
from core.errors import (
    ConfigError,
    DownloadError,
    StitchError,
)
from core.progress import CancelToken
from core.version import __version__

DESCRIPTION = (
    "Install and update large game files from any static web server: only changed chunks "
    "are downloaded, and the install is always the old release or the new one. With no "
    "command, open the updater window (updater.toml beside the program)."
)


def _add_update_options(p: argparse.ArgumentParser, top: bool = False) -> None:
    """The options of ``update`` (and ``verify``, and ``stitch --update``). A subcommand's
    options default to "not given", so ``stitch --url URL update`` keeps the URL; the
    defaults live on the top-level parser (``top``)."""
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument("--config", type=Path, metavar="FILE", default=default(None),
                   help="the updater.toml to use (default: the one beside the program)")
    p.add_argument("--url", type=http_url, metavar="URL", default=default(None),
                   help="the release repository: the http(s) folder holding CHANNEL/")
    p.add_argument("--channel", type=name_arg, default=default(None),
                   help="release channel to follow (default: stable, or the config's)")
    p.add_argument("--dir", type=Path, metavar="DIR", default=default(None),
                   help="install folder (created if missing)")
    p.add_argument("--pubkey", action="append", default=default([]), metavar="KEY",
                   help="trust this minisign public key (repeatable): the key itself (its "
                   "base64 line, 56 characters starting with RW), or else the path of a .pub "
                   "file")
    p.add_argument("--progress", choices=["text", "json", "none"], default=default("text"),
                   help="progress: text (on stderr, for people), json (one object a line "
                   "on stdout, for launchers) or none (default: text)")
    p.add_argument("--allow-downgrade", action="store_true", default=default(False),
                   help="accept a release older than the installed one")
    p.add_argument("--wait-pid", type=positive_int, metavar="PID", default=default(None),
                   help="first wait (up to 10 minutes) for process PID to exit")
    p.add_argument("--launch", action="store_true", default=default(False),
                   help="afterwards, start the program the config names (also when the "
                   "server cannot be reached but the installed release is complete, unless "
                   "--require-update)")
    p.add_argument("--connections", type=positive_int, default=default(4), metavar="N",
                   help="HTTP requests at once; big downloads are split across them "
                   "(default: 4)")
    p.add_argument("--require-update", action="store_true", default=default(False),
                   help="with --launch: do not play when the check for updates failed")
    add_lock_wait(p, default(DEFAULT_LOCK_WAIT))
    p.add_argument("--no-cache-bust", action="store_true", default=default(False),
                   help="ask for latest.json without the ?stitch=<random> query (for hosts "
                   "that refuse queries; caches are still asked to revalidate)")
    p.add_argument("--timeout", type=timeout_seconds, metavar="SECONDS", default=default(None),
                   help="network limits (default 15): a server must answer a request "
                   "within SECONDS and then send at least 1 KiB/s over every SECONDS")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="stitch", description=DESCRIPTION, epilog=EXIT_CODES_EPILOG)
    parser.add_argument("--version", action="version", version=f"stitch {__version__}",
                        help="print the version and exit")
    # Packaging tests only: close the window after SECONDS (as Cancel), print a JSON report.
    parser.add_argument("--smoke-test", type=positive_float, metavar="SECONDS",
                        help=argparse.SUPPRESS)
    parser.add_argument("--update", action="store_true",
                        help="update silently, without a window (for launchers); takes the "
                        "options below, as the update command does")
    _add_update_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                title="commands (stitch COMMAND --help for each)")

    p = sub.add_parser("publish", help="turn a game folder into a signed release",
                       description="Publish the folder SRC as a new release in REPO, the "
                       "folder to upload to the web server.", epilog=EXIT_CODES_EPILOG)
    p.add_argument("src", type=Path, metavar="SRC", help="the game folder to publish")
    p.add_argument("repo", type=Path, metavar="REPO",
                   help="the repository folder (created if missing); upload it as a whole")
    p.add_argument("--version", dest="release_version", required=True, metavar="VERSION",
                   help="the release's version, e.g. 1.2.0 (required)")
    p.add_argument("--channel", type=name_arg, default="stable",
                   help="release channel, a folder in REPO (default: stable)")
    p.add_argument("--product", type=optional_name_arg, default="",
                   help="product id that clients check (default: the previous release's, "
                   "or REPO's folder name)")
    p.add_argument("--notes", default="", help="release notes: the text, or @FILE to read it")
    p.add_argument("--sign-key", type=Path, metavar="FILE",
                   help="sign with this minisign secret key (not the .pub); a password is "
                   "read from STITCH_KEY_PASSWORD or the terminal")
    p.add_argument("--expires-days", type=positive_int, metavar="DAYS",
                   help="clients refuse the release this many days after publishing")
    p.add_argument("--files-url", type=files_url_arg, default="", metavar="URL",
                   help="where the files are hosted, if not in REPO")
    p.add_argument("--avg-chunk", type=positive_int, metavar="BYTES",
                   help="average chunk size in bytes, a power of 2 (default: 4096)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing version, or publish one not newer than the "
                   "channel's latest")
    p.add_argument("--compress", action=argparse.BooleanOptionalAction, default=True,
                   help="upload NAME.stz beside each file whose chunks compress, each chunk "
                   "zstd-compressed: updates download compressed chunks (the default; "
                   "--no-compress: raw ranges only)")
    p.add_argument("--compress-level", type=int_between(1, 22), default=3, metavar="LEVEL",
                   help="zstd level of the compressed chunks, 1 to 22 (default: 3)")
    p.add_argument("--delta", action=argparse.BooleanOptionalAction, default=True,
                   help="upload, for each changed file up to 128 MiB, zstd patches from "
                   "its versions in the last releases (--delta-releases): players behind "
                   "download them (the default; --no-delta: none)")
    p.add_argument("--subchunks", action=argparse.BooleanOptionalAction, default=True,
                   help="upload NAME.fidx.sub for changed files without a delta (files over "
                   "128 MiB, say): their chunks new since the previous release cut again at "
                   "a 512-byte average, so small edits cost less to players (the default; "
                   "--no-subchunks: none)")
    p.add_argument("--delta-level", type=int_between(1, 22), default=None, metavar="LEVEL",
                   help="zstd level of the deltas, 1 to 22 (default: 9, and 3 for files "
                   "over 32 MiB)")
    p.add_argument("--delta-releases", type=int_between(1, 16), default=3, metavar="K",
                   help="make each changed file's deltas from its versions in the last K "
                   "releases, 1 to 16 (default: 3); players further behind chain them")
    p.add_argument("--pack-max", type=int_between(0, 1 << 30), default=64 << 10,
                   metavar="BYTES",
                   help="also put the files of at most this many bytes, compressed, and "
                   "their deltas into one pack, small.pack: an update of many small files "
                   "then takes a few requests (default: 65536; 0: no pack)")

    p = sub.add_parser("update", help="install or update a folder from a release URL",
                       description="Install the newest release of CHANNEL from URL into DIR, "
                       "or update DIR to it. Without --url, the config file gives it.",
                       epilog=EXIT_CODES_EPILOG)
    _add_update_options(p)

    p = sub.add_parser("serve", help="serve a repository over HTTP with byte ranges (LAN)",
                       description="Serve the folder REPO over HTTP/1.1 with byte ranges, "
                       "for a LAN party or an offline mirror, until Ctrl+C.",
                       epilog="exit codes: 0 stopped by Ctrl+C, 2 REPO is not a folder, or "
                       "the port is in use or cannot be bound")
    p.add_argument("repo", type=Path, metavar="REPO", help="the folder to serve")
    p.add_argument("--port", type=int_between(0, 65535), default=8080,
                   help="TCP port to listen on; 0 picks a free one (default: 8080)")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                   help="address to listen on: 0.0.0.0 or :: for every network "
                   "(default: 127.0.0.1, this machine only)")

    p = sub.add_parser("keygen", help="make a minisign key pair for signing releases",
                       description="Write the secret key KEYFILE and the public key "
                       "KEYFILE.pub (minisign format).")
    p.add_argument("keyfile", type=Path, metavar="KEYFILE",
                   help="where to write the secret key; the public key goes to KEYFILE.pub")
    p.add_argument("--password", action="store_true",
                   help="protect the key with a password (STITCH_KEY_PASSWORD or asked)")
    p.add_argument("--force", action="store_true", help="replace existing key files")

    p = sub.add_parser("demo", help="publish, serve, install and update a demo game",
                       description="Generate a small game, publish versions 1.0.0 and "
                       "1.1.0, serve them, install 1.0.0 and update it to 1.1.0.")
    p.add_argument("--dir", type=Path, default=Path("demo"),
                   help="work folder, replaced (default: ./demo)")
    p.add_argument("--scale", type=positive_float, default=1.0, metavar="FACTOR",
                   help="size factor: 1.0 is about 5 MB (default: 1.0)")

    from app.sync import add_parsers as add_sync_parsers

    add_sync_parsers(sub, _add_update_options)  # fidx, sync, verify
    p = sub.add_parser("uninstall", help="remove an installed game (the files you made stay)",
                       description="Remove the release's files from an install, its .stitch/ "
                       "state, its shortcuts and its uninstall entry; files you made (saves, "
                       "settings) stay.", epilog=EXIT_CODES_EPILOG)
    p.add_argument("--config", dest="uninstall_config", type=Path, metavar="FILE",
                   help="updater.toml to use")
    p.add_argument("--dir", type=Path, help="install folder (default: from the config or the "
                   "remembered install)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_lock_wait(p, DEFAULT_LOCK_WAIT)
    sub.add_parser("gui", help="open the updater window (the default)",
                   description="Open the updater window for the updater.toml beside the "
                   "program (or --config).")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(sys, "frozen", False):  # only a packaged updater replaces itself
        from app.selfupdate import finish_pending

        finish_pending()  # a staged new executable: swap it in, clean up old ones (Windows)
    try:
        if args.command in ("fidx", "sync", "verify"):
            if args.command == "verify":
                return cmd_verify(args)
            from app.sync import run as run_sync

            return run_sync(args)
        if args.command == "publish":
            from app.publisher import cmd_publish

            return cmd_publish(args)
        if args.command == "serve":
            from app.serve import run

            return run(args.repo, args.bind, args.port)
        if args.command == "demo":
            from app.demo import run_demo

            check_dir_arg(args.dir, "--dir")
            return run_demo(args.dir, args.scale)
        if args.command == "keygen":
            from app.publisher import cmd_keygen

            return cmd_keygen(args)
        if args.command == "uninstall":
            from app.uninstall import run as run_uninstall

            return run_uninstall(args)
        if args.command == "update" or args.update:
            return cmd_update(args)
        problem = no_display_problem(os.environ, sys.platform)
        if problem:
            raise ConfigError(problem)
        try:
            import PySide6.QtWidgets  # noqa: F401 (the window's toolkit: is it installed?)
        except ImportError:
            raise ConfigError("the window needs PySide6 (pip install 'stitch[gui]'); to "
                              "update without one: stitch --update [--url URL --dir DIR]") from None
        from app.gui import run as run_gui

        if args.smoke_test is not None:
            from app.smoke import install as install_smoke_test

            install_smoke_test(args.smoke_test)
        return run_gui(args.config, sys.argv if argv is None else list(argv))
    except KeyboardInterrupt:
        print("stitch: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except (StitchError, OSError) as e:
        print(f"stitch: {one_line(e)}", file=sys.stderr)
        return exit_code_for(e)
    except Exception as e:  # a bug: one line, and the traceback only when asked for
        _internal_error(e)
        return EXIT_INTERNAL


def no_display_problem(env: Mapping[str, str], platform: str,
                       x11_answers: Callable[[int], bool] | None = None) -> str:
    """Why the window cannot open here, or "": on Linux and the BSDs Qt needs an X11 or
    Wayland display (DISPLAY, WAYLAND_DISPLAY) unless QT_QPA_PLATFORM names a platform that
    draws without one (offscreen, vnc, ...). Without this check Qt aborts (SIGABRT). A local
    X display (DISPLAY=:N) that no X server answers counts as none (``x11_answers``)."""
    if platform.startswith(("win32", "cygwin", "darwin")):
        return ""
    wanted = [p.split(":")[0].strip() for p in env.get("QT_QPA_PLATFORM", "").split(";")]
    if any(p and p not in _DISPLAY_PLATFORMS for p in wanted):
        return ""
    if env.get("WAYLAND_DISPLAY"):
        return ""
    display = env.get("DISPLAY", "")
    local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if display and not local:
        return ""  # a remote display (ssh -X: localhost:10.0): Xlib's business
    if local and (x11_answers or _x11_answers)(int(local[1])):
        return ""
    why = f"no X server answers on DISPLAY={display}" if display else \
        "DISPLAY and WAYLAND_DISPLAY are not set"
    return (f"no display found ({why}) to open the window; to update without one: "
            "stitch --update [--url URL --dir DIR]")


_DISPLAY_PLATFORMS = ("xcb", "wayland", "wayland-egl", "wayland-brcm")  # need a display


def _x11_answers(number: int) -> bool:
    """Whether a local X server listens for display ``:number``: its socket in
    /tmp/.X11-unix (or Linux's abstract one of the same name) takes a connection. Only a
    socket that is missing or refuses counts as no server; other errors give the benefit
    of the doubt."""
    import socket

    path = f"/tmp/.X11-unix/X{number}"
    for address in ("\0" + path, path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            try:
                s.connect(address)
                return True
            except (FileNotFoundError, ConnectionRefusedError):
                continue
            except OSError:
                return True
    return False


def pubkey_arg(value: str) -> str:
    """A ``--pubkey`` value as the key's base64. A value that is a minisign public key (its
    one base64 line) is that key; any other value is the path of a ``.pub`` file. A missing
    or unreadable file, or one that is not a public key, is a ``ConfigError`` naming it."""
    from core.errors import FormatError
    from core.formats import signing

    if "\n" not in value.strip():
        try:
            return signing.parse_public_key(value.strip()).b64()
        except FormatError:
            pass  # not a key: a file name
    what = f"--pubkey {value}"
    try:
        text = Path(value).read_bytes()
    except OSError as e:
        hint = " (give a .pub file or the key's base64 line)" \
            if isinstance(e, FileNotFoundError) else ""
        raise ConfigError(f"{what}: {e.strerror or e}{hint}") from None
    try:
        return signing.parse_public_key(text).b64()
    except FormatError as e:
        raise ConfigError(f"{what}: {e}") from None


def cmd_update(args: argparse.Namespace) -> int:
    reporter = Reporter(args.progress)
    # Signals cancel from the start: waiting for --wait-pid and every network wait included.
    cancel = CancelToken()
    restore_signals = cancel_on_signals(cancel)
    try:
        return _update(args, reporter, cancel)
    finally:
        restore_signals()


def cmd_verify(args: argparse.Namespace) -> int:
    from core.engine.verify import verify_install

    if args.dir is None:
        raise ConfigError("verify needs --dir")
    check_dir_arg(args.dir, "--dir")
    reporter = Reporter(args.progress)
    progress = reporter if args.progress != "none" else None
    try:
        found = verify_install(args.dir, progress, lock_wait=args.lock_wait,
                               on_wait=say_waiting)
    except (StitchError, OSError) as e:
        if args.progress == "json":
            reporter.emit({"event": "error", "kind": error_kind(e), "message": one_line(e),
                           "exit_code": exit_code_for(e)})
        raise
    after = found
    if not found.clean and args.repair:
        args.channel = args.channel or found.channel
        code = cmd_update(args)
        if code != EXIT_OK:
            return code
        after = verify_install(args.dir, progress, lock_wait=args.lock_wait,
                               on_wait=say_waiting)
    code = EXIT_OK if after.clean else EXIT_DAMAGED
    outcome = "clean" if found.clean else ("repaired" if after.clean else "damaged")
    if args.progress == "json":
        reporter.emit({"event": "result", "outcome": outcome, "version": after.version,
                       "files": after.files, "damaged": list(found.damaged),
                       "missing": list(found.missing), "still_damaged":
                       list(after.damaged + after.missing), "exit_code": code})
        return code
    for p in found.damaged:
        print(f"damaged: {p}")
    for p in found.missing:
        print(f"missing: {p}")
    print(f"{outcome}: {after.product} {after.version}, {after.files} files, "
          f"{len(found.damaged)} damaged, {len(found.missing)} missing")
    return code


def _update(args: argparse.Namespace, reporter: Reporter, cancel: CancelToken) -> int:
    from core.engine.config import UpdaterConfig

    cfg_file = None
    install_dir: Path | None = None
    config_path = args.config
    if config_path is None and not args.url:
        from app.config import default_config_path

        config_path = default_config_path()
    try:
        if config_path is not None:
            from app.config import load_config

            cfg_file = load_config(config_path)
        url = args.url or (cfg_file.url if cfg_file else "")
        install_dir = args.dir or (cfg_file.install_dir if cfg_file else None)
        if install_dir is None and cfg_file is not None:
            from app import installs

            record = installs.load(cfg_file.product)  # where the player installed last time
            install_dir = record.install_dir if record else None
        if not url:
            raise ConfigError("no release URL: pass --url or a config file with url")
        if install_dir is None:
            raise ConfigError("no install folder: pass --dir (the config says 'ask' and no "
                              "install is remembered)")
        check_dir_arg(Path(install_dir), "--dir" if args.dir else f"{config_path}: install_dir")
        config = UpdaterConfig(
            url=url, install_dir=Path(install_dir),
            channel=args.channel or (cfg_file.channel if cfg_file else "stable"),
            product=cfg_file.product if cfg_file else "",
            pubkeys=cfg_file.pubkeys if cfg_file else (), allow_downgrade=args.allow_downgrade,
            connections=args.connections, lock_wait=args.lock_wait, timeout=args.timeout,
            cache_bust=not args.no_cache_bust and (cfg_file.cache_bust if cfg_file else True),
        )
        _check_writable(Path(install_dir), cfg_file)
        if args.wait_pid:
            _wait_pid(args.wait_pid, cancel)
        # The pointer is asked for now, and the engine loads while it travels
        # (core/engine/early.py): on a distant server most of a launcher's start-up is hidden.
        from core.engine.early import EarlyPointer

        early = EarlyPointer(config, cancel)
        if args.pubkey:  # (the signature module loads meanwhile too)
            config = dataclasses.replace(config, pubkeys=tuple(pubkey_arg(k)
                                                               for k in args.pubkey))
        from core.engine.updater import Outcome, Updater

        updater = Updater(config, progress=reporter if args.progress != "none" else None,
                          cancel=cancel, on_wait=say_waiting, early=early)
        try:
            result = updater.update()
        finally:
            updater.close()
        if cfg_file is not None:
            from app.remember import remember

            _, notes = remember(cfg_file, config.install_dir, result.to_version)
            result = dataclasses.replace(result, warnings=(*result.warnings, *notes))
    except Exception as e:  # StitchError, OSError, or a bug (exit code 1, kind "internal")
        code = exit_code_for(e)
        offline = _offline_version(args, cfg_file, install_dir, e)
        if offline is not None:
            assert cfg_file is not None and install_dir is not None
            print(f"stitch: couldn't check for updates ({one_line(e)}); playing the "
                  f"installed {offline}", file=sys.stderr)
            if args.progress == "json":
                reporter.emit({"event": "offline", "message": one_line(e),
                               "installed_version": offline, "exit_code": 0})
            _launch(cfg_file.program, cfg_file.args, Path(install_dir))
            return EXIT_OK
        if code == EXIT_INTERNAL:
            _internal_error(e)
        if args.progress == "json":
            reporter.emit({"event": "error", "kind": error_kind(e), "message": one_line(e),
                           "exit_code": code})
        if code != EXIT_INTERNAL:
            print(f"stitch: {one_line(e)}", file=sys.stderr)
        return code
    for w in result.warnings:
        print(f"stitch: warning: {w}", file=sys.stderr)
    if args.progress == "json":
        reporter.emit({
            "event": "result", "outcome": result.outcome.value,
            "from_version": result.from_version, "to_version": result.to_version,
            "bytes_downloaded": result.bytes_downloaded, "bytes_reused": result.bytes_reused,
            "bytes_content": result.bytes_content, "bytes_resumed": result.bytes_resumed,
            "files_changed": result.files_changed, "files_removed": result.files_removed,
            "requests": result.requests, "warnings": list(result.warnings), "exit_code": 0,
        })
    elif args.progress == "text":
        if result.outcome is Outcome.UP_TO_DATE:
            reporter.line(f"up to date: {result.to_version}")
        else:
            total = result.bytes_downloaded + result.bytes_reused
            saved = 100 * result.bytes_reused / total if total else 0.0
            reporter.line(
                f"updated {result.from_version or '(nothing)'} -> {result.to_version}: "
                f"{result.files_changed} files changed, {result.files_removed} removed; "
                f"downloaded {result.bytes_downloaded} bytes in {result.requests} requests, "
                f"reused {result.bytes_reused} bytes from disk ({saved:.1f}% saved)")
    if args.launch and cfg_file is not None and cfg_file.program:
        _launch(cfg_file.program, cfg_file.args, Path(config.install_dir))
    return EXIT_OK


def _check_writable(install_dir: Path, cfg: object) -> None:
    """A first install into a folder this user cannot write to (Program Files) fails before
    anything is downloaded, naming the per-user folder to use instead (exit 5)."""
    if (install_dir / ".stitch" / "state.json").exists():
        return  # installed: the update's own errors say what is wrong
    from app import installs
    from app.config import AppConfig

    if installs.writable(install_dir):
        return
    name = (cfg.display_name if isinstance(cfg, AppConfig) else "") or install_dir.name
    per_user = installs.user_install_dir(name or "game")
    raise OSError(13, "cannot install there without administrator rights; install in your "
                  f"own folder instead: --dir \"{per_user}\"", str(install_dir))


def _offline_version(args: argparse.Namespace, cfg: object, install_dir: object,
                     exc: BaseException) -> str | None:
    """The installed version to play when ``--launch`` met a network failure and the
    installed release is complete (``app.offline``); None when it must not play."""
    from app.config import AppConfig

    if not (args.launch and not args.require_update and isinstance(exc, DownloadError)
            and isinstance(cfg, AppConfig) and cfg.program and install_dir is not None):
        return None
    from app.offline import playable_version

    return playable_version(Path(str(install_dir)))


def _internal_error(exc: BaseException) -> None:
    if os.environ.get("STITCH_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    else:
        print("stitch: internal error (a bug; set STITCH_DEBUG=1 for details): "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)


def _wait_pid(pid: int, cancel: CancelToken, timeout: float = 600.0) -> None:
    """``--wait-pid``: core/system/procwait.py (OpenProcess + WaitForSingleObject on Windows); the
    run's cancel token (SIGTERM, Ctrl+C) ends the wait."""
    from core.system.procwait import wait_for_exit

    def waiting() -> None:
        print(f"stitch: waiting for process {pid} to exit (--wait-pid)", file=sys.stderr,
              flush=True)

    wait_for_exit(pid, timeout, cancel=cancel, on_wait=waiting)


def _launch(program: str, args: Sequence[str], install_dir: Path) -> None:
    """``--launch``: the game as a program of its own (app/launch.py: no bundle paths in its
    environment, the DLL search folder reset on Windows)."""
    from app.launch import launch_detached

    exe = Path(program)
    if not exe.is_absolute():
        exe = install_dir / exe
    launch_detached([str(exe), *args], install_dir)


def entry() -> NoReturn:
    """The ``stitch`` program (console script, ``python -m app.cli``, the packaged exe):
    ``main``, then exit. When no window was shown, exit at once after flushing output
    rather than tearing the interpreter down module by module: a launcher runs
    ``--update`` before every game start, and the teardown was 25 ms of a 0.25 s update.
    Nothing in the CLI relies on ``atexit``; the window (Qt) exits the normal way."""
    code = main()
    if "PySide6.QtCore" not in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
