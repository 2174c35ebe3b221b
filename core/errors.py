"""Every error stitch raises on purpose, in one tree.

    StitchError                      base: front ends catch this one
    ├── DownloadError                getting bytes from the server failed (retry may help)
    │   ├── NetworkError             transport: refused, reset, timed out, DNS, TLS
    │   ├── HTTPStatusError          an unexpected status code (404, 403, 5xx after retries)
    │   └── RangeError               the server answered a range request wrongly
    │                                (bad Content-Range, body longer or shorter than asked,
    │                                malformed multipart/byteranges)
    ├── ContentError                 the remote content is bad (retrying the same URL won't help)
    │   ├── FormatError              a .fidx, manifest, pointer or signature does not parse
    │   ├── HashMismatchError        bytes do not match the digest that vouches for them
    │   ├── SignatureError           missing, bad or untrusted signature
    │   ├── DowngradeError           the release is older than what is installed
    │   ├── ExpiredError             the release manifest has expired
    │   └── UnsafePathError          a path that would escape the install folder
    ├── CancelledError               the user (or a signal) cancelled
    ├── InstallBusyError             another stitch run holds the install's lock
    (core/engine/lock.py) └── ConfigError                  bad configuration or arguments (file and
    line when known)

Local disk problems (not writable, full, missing) stay ``OSError``: they are the player's
machine, not the release. ``NotEnoughSpaceError`` is an ``OSError`` raised by the space check
before anything is written.
"""

from __future__ import annotations

import errno


class StitchError(Exception):
    """Base of every error stitch raises on purpose."""


class DownloadError(StitchError):
    """Fetching from the server failed."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class NetworkError(DownloadError):
    """The transport failed: connection refused or reset, timeout, TLS, DNS."""


class HTTPStatusError(DownloadError):
    """The server answered with a status code we cannot use."""

    def __init__(self, message: str, *, url: str = "", status_code: int = 0) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code


class RangeError(DownloadError):
    """The server answered a range request with something other than what was asked."""


class ContentError(StitchError):
    """Remote content is bad: retrying the same URL will not help."""


class FormatError(ContentError):
    """A file from the network (or a cached copy of one) does not parse."""

    def __init__(self, message: str, *, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class HashMismatchError(ContentError):
    """Bytes do not match the digest that vouches for them.

    ``url``: where the bytes were downloaded from ("" when they were made locally);
    ``path``: the local file that holds them ("" when they were only in memory).
    """

    def __init__(
        self, message: str, *, expected: str = "", actual: str = "", url: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.url = url
        self.path = path


class SignatureError(ContentError):
    """The release signature is missing, bad, or made by a key we do not trust."""


class DowngradeError(ContentError):
    """The offered release is older than the installed one."""

    def __init__(self, message: str, *, installed: str = "", offered: str = "") -> None:
        super().__init__(message)
        self.installed = installed
        self.offered = offered


class ExpiredError(ContentError):
    """The release manifest is past its expiry time."""


class UnsafePathError(ContentError):
    """A manifest path that is absolute, escapes the install folder, or cannot exist on disk."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class CancelledError(StitchError):
    """The operation was cancelled; nothing installed was changed."""


class InstallBusyError(StitchError):
    """Another stitch run held the install's lock for longer than this run would wait."""

    def __init__(self, message: str, *, path: str = "", pid: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class ConfigError(StitchError):
    """Bad configuration file or arguments."""

    def __init__(self, message: str, *, path: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class NotEnoughSpaceError(OSError):
    """The plan needs more free disk space than the install folder's disk has."""

    def __init__(self, needed: int, available: int, path: str) -> None:
        super().__init__(
            errno.ENOSPC,
            f"not enough disk space: need {needed} bytes, {available} available",
            path,
        )
        self.needed = needed
        self.available = available
