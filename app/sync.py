"""The bupdate-compatible commands: ``stitch fidx`` and ``stitch sync`` (and the parser of
``stitch verify``, whose command is ``app.cli.cmd_verify``: it repairs through an update).

Thin, like the rest of the CLI: parse, call the engine once (``core.chunks.indexer``,
``core.engine.sync``), print, and return an exit code (README's table; errors are mapped by
``app.outcome``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from app.args import (
    EXIT_CODES_EPILOG,
    add_lock_wait,
    check_dir_arg,
    files_url_arg,
    http_url,
    positive_int,
)
from app.outcome import EXIT_OK, cancel_on_signals, say_waiting
from app.report import Reporter, mb
from core.errors import ConfigError
from core.progress import CancelToken


def add_parsers(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                add_update_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("fidx", help="write FILE.fidx beside each file (bupdate's tool)",
                       description="Write a chunk index FILE.fidx beside each FILE, for "
                       "stitch sync (or bupdate, with --format v1).")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="the files to index")
    p.add_argument("--format", choices=["v1", "v2"], default="v2",
                   help="v2: FastCDC + xxh3 + SHA-256 (default); v1: bupdate's")
    p.add_argument("--url", type=files_url_arg, default="",
                   help="where the files' bytes are served, if not "
                   "beside the index: a file URL, or a folder URL ending in /")
    p.add_argument("--avg-chunk", type=positive_int, metavar="BYTES",
                   help="v2 average chunk size in bytes, a power of 2 (default: 4096)")
    p.add_argument("--force", action="store_true", help="rewrite indexes newer than files")

    p = sub.add_parser("sync", help="update files in a folder from a web folder of .fidx",
                       description="Bring the files URL lists up to date in DIR, reusing "
                       "the bytes already there and downloading the rest as byte ranges.",
                       epilog=EXIT_CODES_EPILOG)
    p.add_argument("url", type=http_url, metavar="URL",
                   help="a .fidx URL, a directory listing, or a text list of .fidx URLs")
    p.add_argument("--dir", type=Path, required=True, help="local folder to bring up to date")
    p.add_argument("--progress", choices=["text", "json", "none"], default="text",
                   help="progress: text (on stderr), json (one object a line on stdout) "
                   "or none (default: text)")
    p.add_argument("--connections", type=positive_int, default=4, metavar="N",
                   help="parallel HTTP requests (default: 4)")
    add_lock_wait(p)

    p = sub.add_parser("verify", help="re-hash an install; --repair downloads what is damaged",
                       description="Re-hash every file of the install in DIR against its "
                       "release; with --repair, download what is damaged or missing.",
                       epilog=EXIT_CODES_EPILOG)
    add_update_options(p)
    p.add_argument("--repair", action="store_true",
                   help="update from --url (or the config) to repair damaged files")


def run(args: argparse.Namespace) -> int:
    """``fidx`` or ``sync`` (``verify`` is an install's command: ``app.cli.cmd_verify``)."""
    if args.command == "fidx":
        return cmd_fidx(args)
    return cmd_sync(args)


def _params(format_: str, avg: int | None) -> object:
    from core.chunks.chunker import DEFAULT_PARAMS, ChunkerParams
    from core.chunks.indexer import V1_PARAMS

    if format_ == "v1":
        if avg:
            raise ConfigError("--avg-chunk applies to v2 only (v1 chunks are bupsplit's)")
        return V1_PARAMS
    if not avg:
        return DEFAULT_PARAMS
    params = ChunkerParams(max(64, avg // 4), avg, min(16 << 20, avg * 4))
    try:
        params.validate()
    except ValueError as e:
        raise ConfigError(f"--avg-chunk: {e}") from None
    return params


def cmd_fidx(args: argparse.Namespace) -> int:
    from core.chunks.chunker import ChunkerParams
    from core.chunks.indexer import write_beside
    from core.formats.listing import SOURCE_SUFFIX, encode_source
    from core.fsutil import atomic_write

    params = _params(args.format, args.avg_chunk)
    assert isinstance(params, ChunkerParams)
    if args.url and not args.url.endswith("/") and len(args.files) > 1:
        raise ConfigError("--url names one file; for several, give a folder URL ending in /")
    for path in args.files:
        if not path.is_file():
            raise ConfigError(f"not a file: {path}")
    for path in args.files:
        wrote = write_beside(path, params, force=args.force)
        print(f"{path}.fidx: {'written' if wrote else 'skipped (newer than the file)'} "
              f"({args.format})")
        if args.url:
            url = args.url + quote(path.name) if args.url.endswith("/") else args.url
            atomic_write(path.with_name(path.name + SOURCE_SUFFIX), encode_source(url))
            print(f"{path}{SOURCE_SUFFIX}: bytes at {url}")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from core.engine.sync import FileOutcome, SyncConfig, sync

    check_dir_arg(args.dir, "--dir")
    reporter = Reporter(args.progress)
    cancel = CancelToken()
    cancel_on_signals(cancel)
    result = sync(SyncConfig(args.url, args.dir, connections=args.connections,
                             lock_wait=args.lock_wait),
                  progress=reporter if args.progress != "none" else None, cancel=cancel,
                  on_wait=say_waiting)
    for f in result.files:
        check = "whole-file SHA-256 matched the index" if f.whole_file_verified else \
            "v1 index: every chunk's SHA-1 checked; the file as a whole is not signed"
        if args.progress == "json":
            reporter.emit({"event": "file", "name": f.name, "outcome": f.outcome.value,
                           "index_version": f.index_version,
                           "whole_file_verified": f.whole_file_verified, "size": f.size,
                           "bytes_local": f.bytes_local, "bytes_remote": f.bytes_remote,
                           "source": f.source_url})
        elif f.outcome is FileOutcome.UP_TO_DATE:
            print(f"{f.name}: up to date ({check})")
        else:
            print(f"{f.name}: updated, {mb(f.bytes_local)} from disk, "
                  f"{mb(f.bytes_remote)} from {f.source_url} ({check})")
    if args.progress == "json":
        reporter.emit({"event": "result", "outcome": "updated" if result.updated else
                       "up-to-date", "files": len(result.files), "files_changed": result.updated,
                       "bytes_downloaded": result.bytes_downloaded,
                       "requests": result.requests, "exit_code": EXIT_OK})
    else:
        print(f"synced {len(result.files)} files: {result.updated} updated; downloaded "
              f"{result.bytes_downloaded} bytes in {result.requests} requests")
    return EXIT_OK


