"""The ``stitch`` command: parse arguments, build the engine's objects, run one thing, and
map the error families to messages and exit codes (the table is in README.md).

With no arguments (or ``gui``) it opens the updater window; ``--update`` runs the same
update silently for launchers. Nothing here imports Qt unless the window is asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from app.report import Reporter
from core.errors import (
    CancelledError,
    ConfigError,
    ContentError,
    DownloadError,
    InstallBusyError,
    StitchError,
)
from core.progress import CancelToken
from core.version import __version__

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2  # bad arguments or configuration file
EXIT_NETWORK = 3  # server unreachable, HTTP error, broken range answers
EXIT_REJECTED = 4  # the release failed a check: signature, hash, format, downgrade, path
EXIT_DISK = 5  # local disk: not writable, full, missing
EXIT_CANCELLED = 6
EXIT_DAMAGED = 7  # stitch verify: damaged or missing files found, not repaired
EXIT_BUSY = 8  # another stitch run held the install's lock for all of --lock-wait


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, CancelledError):
        return EXIT_CANCELLED
    if isinstance(exc, InstallBusyError):
        return EXIT_BUSY
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, DownloadError):
        return EXIT_NETWORK
    if isinstance(exc, ContentError):
        return EXIT_REJECTED
    if isinstance(exc, OSError):
        return EXIT_DISK
    return EXIT_INTERNAL


def error_kind(exc: BaseException) -> str:
    return {EXIT_CANCELLED: "cancelled", EXIT_CONFIG: "config", EXIT_NETWORK: "network",
            EXIT_REJECTED: "rejected", EXIT_DISK: "disk",
            EXIT_BUSY: "busy"}.get(exit_code_for(exc), "internal")


def one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, StitchError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _add_update_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="base URL of the release repository")
    p.add_argument("--channel", help="release channel (default: stable)")
    p.add_argument("--dir", type=Path, help="install folder")
    p.add_argument("--pubkey", action="append", default=[],
                   help="trusted minisign public key: a .pub file or its base64 (repeatable)")
    p.add_argument("--progress", choices=["text", "json", "none"], default="text")
    p.add_argument("--allow-downgrade", action="store_true")
    p.add_argument("--wait-pid", type=int, help="wait for this process to exit first")
    p.add_argument("--launch", action="store_true", help="start the configured program after "
                   "(also when the server cannot be reached but the installed release is "
                   "complete, unless --require-update)")
    p.add_argument("--require-update", action="store_true",
                   help="with --launch: do not play when the check for updates failed")
    p.add_argument("--connections", type=int, default=4, help="parallel HTTP requests")
    add_lock_wait(p)
    p.add_argument("--no-cache-bust", action="store_true",
                   help="ask for latest.json without the ?stitch=<random> query (for hosts "
                   "that refuse queries; caches are still asked to revalidate)")

    p.add_argument("--timeout", type=_timeout_seconds, metavar="SECONDS",
                   help="network limits (default 15): a server must answer a request "
                   "within SECONDS and then send at least 1 KiB/s over every SECONDS")


def add_lock_wait(p: argparse.ArgumentParser) -> None:
    from core.lock import DEFAULT_WAIT

    p.add_argument("--lock-wait", type=_seconds, default=DEFAULT_WAIT, metavar="SECONDS",
                   help="how long to wait for another stitch run on the same install "
                   f"(default {DEFAULT_WAIT:g}; then exit {EXIT_BUSY})")


def _seconds_between(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from ``low`` to ``high``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text}: give {low:g} to {high:g} seconds")
        return value
    return parse


_seconds = _seconds_between(0, 86_400)
_timeout_seconds = _seconds_between(1, 600)


def say_waiting(line: str) -> None:
    """The one line a run prints while another run holds the install's lock."""
    print(f"stitch: {line}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stitch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"stitch {__version__}")
    parser.add_argument("--config", type=Path, help="updater.toml to use")
    parser.add_argument("--smoke-test", type=float, metavar="SECONDS",
                        help="packaging check: close the window after SECONDS (as Cancel) "
                        "and print a JSON report")
    parser.add_argument("--update", action="store_true",
                        help="update silently (launcher mode); same options as 'update'")
    _add_update_options(parser)
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("publish", help="turn a folder into a release")
    p.add_argument("src", type=Path)
    p.add_argument("repo", type=Path)
    p.add_argument("--version", dest="release_version", required=True)
    p.add_argument("--channel", default="stable")
    p.add_argument("--product", default="")
    p.add_argument("--notes", default="", help="release notes (text, or @FILE)")
    p.add_argument("--sign-key", type=Path, help="minisign secret key file")
    p.add_argument("--expires-days", type=int)
    p.add_argument("--files-url", default="", help="where the files are hosted, if elsewhere")
    p.add_argument("--avg-chunk", type=int, help="average chunk size in bytes (power of 2)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing version, or publish one not newer than the "
                   "channel's latest")
    p.add_argument("--compress", action="store_true",
                   help="also upload NAME.stz, each chunk zstd-compressed: updates download "
                   "compressed chunks (needs the zstandard package)")
    p.add_argument("--compress-level", type=int, default=9, help="zstd level (1-22)")
    p.add_argument("--delta", action="store_true",
                   help="also upload, for each changed file up to 128 MiB, a zstd patch from "
                   "the previous release's version: players one version behind download it")
    p.add_argument("--subchunks", action="store_true",
                   help="also upload NAME.fidx.sub: chunks new since the previous release cut "
                   "again at a 512-byte average, so small edits cost less to players")
    p.add_argument("--delta-level", type=int, default=15, help="zstd level for deltas")

    p = sub.add_parser("update", help="install or update a folder")
    _add_update_options(p)

    p = sub.add_parser("serve", help="serve a release folder over HTTP (ranges supported)")
    p.add_argument("repo", type=Path)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--bind", default="127.0.0.1")

    p = sub.add_parser("keygen", help="make a minisign key pair for signing releases")
    p.add_argument("keyfile", type=Path)
    p.add_argument("--password", action="store_true", help="protect the key with a password")
    p.add_argument("--force", action="store_true")

    p = sub.add_parser("demo", help="publish, serve, install and update a demo game")
    p.add_argument("--dir", type=Path, default=Path("demo"), help="work folder (replaced)")
    p.add_argument("--scale", type=float, default=1.0, help="size factor (1.0 = about 5 MB)")

    from app.sync import add_parsers as add_sync_parsers

    add_sync_parsers(sub, _add_update_options)  # fidx, sync, verify
    p = sub.add_parser("uninstall", help="remove an installed game (the files you made stay)")
    p.add_argument("--config", dest="uninstall_config", type=Path, help="updater.toml to use")
    p.add_argument("--dir", type=Path, help="install folder (default: from the config or the "
                   "remembered install)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sub.add_parser("gui", help="open the updater window (the default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(sys, "frozen", False):  # only a packaged updater replaces itself
        from app.selfupdate import finish_pending

        finish_pending()  # a staged new executable: swap it in, clean up old ones (Windows)
    try:
        if args.command in ("fidx", "sync", "verify"):
            from app.sync import run as run_sync

            return run_sync(args)
        if args.command == "publish":
            return cmd_publish(args)
        if args.command == "serve":
            from app.serve import run

            return run(args.repo, args.bind, args.port)
        if args.command == "demo":
            from app.demo import run_demo

            return run_demo(args.dir, args.scale)
        if args.command == "keygen":
            return cmd_keygen(args)
        if args.command == "uninstall":
            from app.uninstall import run as run_uninstall

            return run_uninstall(args)
        if args.command == "update" or args.update:
            return cmd_update(args)
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


def cmd_publish(args: argparse.Namespace) -> int:
    from core.chunker import DEFAULT_PARAMS, ChunkerParams
    from core.publish import publish

    params = DEFAULT_PARAMS
    if args.avg_chunk:
        a = args.avg_chunk
        params = ChunkerParams(max(64, a // 4), a, min(16 << 20, a * 4))
        try:
            params.validate()
        except ValueError as e:
            raise ConfigError(f"--avg-chunk: {e}") from None
    key = None
    if args.sign_key:
        key = _load_secret_key(args.sign_key)
    notes = args.notes
    if notes.startswith("@"):
        notes = Path(notes[1:]).read_text(encoding="utf-8")
    report = publish(args.src, args.repo, args.release_version, channel=args.channel,
                     product=args.product, params=params, sign_key=key, notes=notes,
                     expires_days=args.expires_days, files_url=args.files_url,
                     force=args.force, compress=args.compress,
                     compress_level=args.compress_level, deltas=args.delta,
                     delta_level=args.delta_level, subchunks=args.subchunks)
    for line in report.lines():
        print(line)
    return EXIT_OK


def _load_secret_key(path: Path) -> object:
    from core import signing

    data = path.read_bytes()
    try:
        return signing.load_secret_key(data, None)
    except StitchError:
        import getpass

        pw = os.environ.get("STITCH_KEY_PASSWORD")
        if pw is None:
            pw = getpass.getpass(f"password for {path}: ")
        return signing.load_secret_key(data, pw.encode())


def cmd_keygen(args: argparse.Namespace) -> int:
    from core import signing

    password = None
    if args.password:
        import getpass

        pw = os.environ.get("STITCH_KEY_PASSWORD") or getpass.getpass("new key password: ")
        password = pw.encode()
    try:
        pub = signing.keygen(args.keyfile, password, force=args.force)
    except FileExistsError:
        raise ConfigError(f"{args.keyfile} exists (use --force to replace it)") from None
    print(f"secret key: {args.keyfile}\npublic key: {args.keyfile}.pub\n{pub.b64()}")
    return EXIT_OK


def _pubkey_arg(value: str) -> str:
    """A --pubkey value: a .pub file path or the base64 key itself."""
    p = Path(value)
    if p.is_file():
        from core import signing

        return signing.parse_public_key(p.read_text(encoding="utf-8")).b64()
    return value


def cmd_update(args: argparse.Namespace) -> int:
    reporter = Reporter(args.progress)
    # Signals cancel from the start: waiting for --wait-pid and every network wait included.
    cancel = CancelToken()
    restore_signals = _cancel_on_signals(cancel)
    try:
        return _update(args, reporter, cancel)
    finally:
        restore_signals()


def _update(args: argparse.Namespace, reporter: Reporter, cancel: CancelToken) -> int:
    from core.updater import Outcome, Updater, UpdaterConfig

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
        pubkeys = tuple(_pubkey_arg(k) for k in args.pubkey) or \
            (cfg_file.pubkeys if cfg_file else ())
        config = UpdaterConfig(
            url=url, install_dir=Path(install_dir),
            channel=args.channel or (cfg_file.channel if cfg_file else "stable"),
            product=cfg_file.product if cfg_file else "",
            pubkeys=pubkeys, allow_downgrade=args.allow_downgrade,
            connections=args.connections, lock_wait=args.lock_wait, timeout=args.timeout,
            cache_bust=not args.no_cache_bust and (cfg_file.cache_bust if cfg_file else True),
        )
        _check_writable(Path(install_dir), cfg_file)
        if args.wait_pid:
            _wait_pid(args.wait_pid, cancel)
        updater = Updater(config, progress=reporter if args.progress != "none" else None,
                          cancel=cancel, on_wait=say_waiting)
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


def _cancel_on_signals(cancel: CancelToken) -> Callable[[], None]:
    """Ctrl+C and SIGTERM set the cancel token; returns what puts the old handlers back."""
    def handler(signum: int, frame: object) -> None:
        cancel.cancel()

    sigs = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    old = {s: signal.signal(s, handler) for s in sigs}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore


def _wait_pid(pid: int, cancel: CancelToken, timeout: float = 600.0) -> None:
    """``--wait-pid``: core/procwait.py (OpenProcess + WaitForSingleObject on Windows); the
    run's cancel token (SIGTERM, Ctrl+C) ends the wait."""
    from core.procwait import wait_for_exit

    wait_for_exit(pid, timeout, cancel=cancel)


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
