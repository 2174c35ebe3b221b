"""The publisher's commands: ``stitch publish`` (a game folder into a signed release) and
``stitch keygen`` (a minisign key pair), with the secret key's loading and password.
Thin like the rest of the CLI: errors are ``ConfigError`` (exit 2, ``app.outcome``) or the
engine's own; ``app.cli`` parses and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.outcome import EXIT_OK
from core.errors import ConfigError


def cmd_publish(args: argparse.Namespace) -> int:
    from core.chunks.chunker import DEFAULT_PARAMS, ChunkerParams
    from core.publisher.publish import publish

    params = DEFAULT_PARAMS
    if args.avg_chunk:
        a = args.avg_chunk
        params = ChunkerParams(max(64, a // 4), a, min(16 << 20, a * 4))
        try:
            params.validate()
        except ValueError as e:
            raise ConfigError(f"--avg-chunk: {e}") from None
    if args.repo.exists() and not args.repo.is_dir():
        raise ConfigError(f"REPO {args.repo}: not a folder")
    key = None
    if args.sign_key:
        key = _load_secret_key(args.sign_key)
    notes = args.notes
    if notes.startswith("@"):
        try:
            notes = Path(notes[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise ConfigError(f"--notes {notes}: cannot read: {why}") from None
    report = publish(args.src, args.repo, args.release_version, channel=args.channel,
                     product=args.product, params=params, sign_key=key, notes=notes,
                     expires_days=args.expires_days, files_url=args.files_url,
                     force=args.force, compress=args.compress,
                     compress_level=args.compress_level, deltas=args.delta,
                     delta_level=args.delta_level, subchunks=args.subchunks,
                     delta_releases=args.delta_releases, pack_max=args.pack_max)
    for line in report.lines():
        print(line)
    return EXIT_OK


def _load_secret_key(path: Path) -> object:
    """The ``--sign-key`` file, decrypted. Every problem with it is a ``ConfigError``
    naming it (exit code 2): missing, unreadable, a public key, not a key, wrong password."""
    from core.errors import FormatError, SignatureError
    from core.formats import signing

    what = f"--sign-key {path}"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what}: {e.strerror or e}") from None
    try:
        signing.parse_public_key(data)
    except FormatError:
        pass
    else:
        raise ConfigError(f"{what} is a public key: give the secret key file (the one "
                          "without .pub)")
    try:
        try:
            return signing.load_secret_key(data, None)
        except SignatureError:  # encrypted: a password is needed
            pass
        pw = os.environ.get("STITCH_KEY_PASSWORD")
        if pw is None:
            import getpass

            needs = f"{what} needs a password: set STITCH_KEY_PASSWORD or run in a terminal"
            if not _has_terminal():
                raise ConfigError(needs)
            try:
                pw = getpass.getpass(f"password for {path}: ")
            except EOFError:
                raise ConfigError(needs) from None
        return signing.load_secret_key(data, pw.encode())
    except FormatError as e:
        raise ConfigError(f"{what}: {e}") from None
    except SignatureError as e:
        raise ConfigError(f"{what}: {e}") from None


def _has_terminal() -> bool:
    """Whether getpass can ask: a controlling terminal (POSIX) or a console on stdin."""
    if os.name != "nt":
        try:
            with open("/dev/tty", "rb"):
                return True
        except OSError:
            pass
    return sys.stdin is not None and sys.stdin.isatty()


def cmd_keygen(args: argparse.Namespace) -> int:
    from core.formats import signing

    if args.keyfile.is_dir():
        raise ConfigError(f"KEYFILE {args.keyfile} is a folder")
    for parent in args.keyfile.parents:  # missing folders are created; a file in the way is not
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"KEYFILE {args.keyfile}: {parent} is not a folder")
            break
    password = None
    if args.password:
        import getpass

        pw = os.environ.get("STITCH_KEY_PASSWORD")
        if not pw:
            needs = "--password needs one: set STITCH_KEY_PASSWORD or run in a terminal"
            if not _has_terminal():
                raise ConfigError(needs)
            try:
                pw = getpass.getpass("new key password: ")
            except EOFError:
                raise ConfigError(needs) from None
        password = pw.encode()
    try:
        pub = signing.keygen(args.keyfile, password, force=args.force)
    except FileExistsError:
        raise ConfigError(f"{args.keyfile} exists (use --force to replace it)") from None
    except ValueError as e:  # a password minisign could not read (empty, too long, a newline)
        raise ConfigError(f"--password: {e}") from None
    print(f"secret key: {args.keyfile}\npublic key: {args.keyfile}.pub\n{pub.b64()}")
    return EXIT_OK
