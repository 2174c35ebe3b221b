"""Release version numbers: PEP 440's public versions, parsed and ordered (docs/format.md
§3.1).

The subset a release may carry: ``[v]N(.N)*[{a|b|rc}N][.postN][.devN]``, with PEP 440's
spellings of the same thing (``1.0.0-rc.1``, ``1.0.0-beta2``, ``1.0-1`` for a post
release, upper case, ``_``/``-``/``.`` separators). No epoch (``!``) or local part (``+``):
neither fits a release's name (``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``). Pure: no I/O, no
dependency (``packaging`` would give the same order; ``tests/test_versions.py`` checks ours
against PEP 440's own examples).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import FormatError

_PATTERN = re.compile(
    r"""
    \A v?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_n1>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    \Z
    """,
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)
_PRE = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "rc": "rc", "pre": "rc",
        "preview": "rc"}
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}
MAX_LENGTH = 64  # a release's name is at most this long

Key = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Version:
    """A parsed version; compare with ``key()``. ``str()`` is PEP 440's normal form."""

    release: tuple[int, ...]
    pre: tuple[str, int] | None = None  # ("a" | "b" | "rc", n)
    post: int | None = None
    dev: int | None = None

    def key(self) -> Key:
        """PEP 440's order: 1.0.dev0 < 1.0a1 < 1.0b1 < 1.0rc1 < 1.0 < 1.0.post1 < 1.1;
        trailing zeros of the release do not count (1.0 == 1.0.0)."""
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        if self.pre is not None:
            pre: tuple[int, ...] = (1, _PRE_RANK[self.pre[0]], self.pre[1])
        elif self.post is None and self.dev is not None:
            pre = (0,)  # 1.0.dev0 sorts before 1.0a0
        else:
            pre = (2,)  # a final release sorts after its pre-releases
        post = (0,) if self.post is None else (1, self.post)
        dev = (1,) if self.dev is None else (0, self.dev)
        return (tuple(release), pre, post, dev)

    def __str__(self) -> str:
        out = ".".join(map(str, self.release))
        if self.pre is not None:
            out += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            out += f".post{self.post}"
        if self.dev is not None:
            out += f".dev{self.dev}"
        return out


def parse(text: str) -> Version:
    """``text`` as a version; ``FormatError`` (naming it) when it is not one."""
    m = _PATTERN.match(text) if len(text) <= MAX_LENGTH else None
    if m is None:
        raise FormatError(f"{text!r} is not a version: stitch orders versions as PEP 440 "
                          "does (1.2.0, 1.2.0rc1, 1.2.0.post1, 2024.11.28)", what="version")
    pre = None
    if m["pre_l"]:
        pre = (_PRE[m["pre_l"].lower()], int(m["pre_n"] or 0))
    post = None
    if m["post_n1"] or m["post_l"]:
        post = int(m["post_n1"] or m["post_n2"] or 0)
    dev = int(m["dev_n"] or 0) if m["dev_l"] else None
    return Version(tuple(int(p) for p in m["release"].split(".")), pre, post, dev)


def version_key(text: str) -> Key:
    """Sort key of a version string (``FormatError`` if it is not one)."""
    return parse(text).key()
