"""How a command ends: the exit codes (README's table), the error behind one mapped to its
code and its JSON ``kind``, the one-line message; and what every command that changes an
install shares on the way: Ctrl+C and SIGTERM cancel it, and the one line it prints while
another run holds the install's lock. ``app.cli`` and ``app.sync`` both use it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from core.errors import (
    CancelledError,
    ConfigError,
    ContentError,
    DownloadError,
    InstallBusyError,
    StitchError,
)
from core.progress import CancelToken

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


def say_waiting(line: str) -> None:
    """The one line a run prints while another run holds the install's lock."""
    print(f"stitch: {line}", file=sys.stderr, flush=True)


def cancel_on_signals(cancel: CancelToken) -> Callable[[], None]:
    """Ctrl+C and SIGTERM set the cancel token; returns what puts the old handlers back."""
    def handler(signum: int, frame: object) -> None:
        cancel.cancel()

    sigs = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    old = {s: signal.signal(s, handler) for s in sigs}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
