"""The command line's argument types and checks, shared by ``app.cli`` and ``app.sync``:
argparse types that refuse bad values with a message naming the value, the parser whose
errors are one line (exit code 2, README's table), and checks of folders named on the
command line. Imports nothing from the engine but its errors.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from app.outcome import EXIT_BUSY, EXIT_CONFIG
from core.engine.lock import DEFAULT_WAIT
from core.errors import ConfigError

_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # as core.formats.manifest requires

EXIT_CODES_EPILOG = (
    "exit codes: 0 success, 1 internal error (a bug), 2 bad arguments or configuration file, "
    "3 network, 4 release rejected, 5 local disk, 6 cancelled, 7 verify found damage, "
    "8 another stitch run holds the install"
)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line naming the argument (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def int_between(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in ``[low, high]``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, not {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """argparse type: a number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def http_url(text: str) -> str:
    """argparse type: an absolute http:// or https:// URL with a host."""
    problem = url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def url_problem(url: str) -> str:
    """Why ``url`` cannot be a release or file URL, or "" if it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as e:
        return f"not a valid URL: {url!r} ({e})"
    if parts.scheme.lower() not in ("http", "https"):
        how = f"the scheme {parts.scheme!r}" if parts.scheme and "//" in url else "no scheme"
        return f"{url!r} has {how}: give an http:// or https:// URL"
    if not parts.hostname:
        return f"{url!r} has no host name"
    return ""


def name_arg(text: str) -> str:
    """argparse type: a channel or product name as manifests allow it (a folder name)."""
    if not _NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit")
    return text


def optional_name_arg(text: str) -> str:
    """``name_arg``, or "" for "choose for me"."""
    return text and name_arg(text)


def files_url_arg(text: str) -> str:
    """argparse type: where file bytes are served: "" (beside), an http(s) URL, or a URL
    relative to the index or manifest (docs/format.md)."""
    if text and urlsplit(text).scheme and url_problem(text):
        raise argparse.ArgumentTypeError(url_problem(text))
    return text


def check_dir_arg(path: Path, what: str) -> None:
    """An install folder named by the user may be missing (it is created) but not a file."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path}: not a folder")


def add_lock_wait(p: argparse.ArgumentParser, default: object = None) -> None:
    """``--lock-wait`` (update, verify, sync)."""
    p.add_argument("--lock-wait", type=lock_wait_seconds, metavar="SECONDS",
                   default=DEFAULT_WAIT if default is None else default,
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


DEFAULT_LOCK_WAIT = DEFAULT_WAIT  # seconds: --lock-wait's default
lock_wait_seconds = _seconds_between(0, 86_400)
timeout_seconds = _seconds_between(1, 600)
