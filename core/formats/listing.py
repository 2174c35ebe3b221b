"""The remote side of ``stitch sync``: what a URL names, and where each file's bytes live.

Owns three small formats, all untrusted input, all parsed from bytes (no network here):

* directory listing pages (nginx, Apache and ``stitch serve`` autoindex, or any HTML page):
  the links ending in ``.fidx`` that stay inside the listed folder;
* text lists: one ``.fidx`` URL or relative path a line, ``#`` comments and blank lines
  ignored;
* the source sidecar ``NAME.fidx.json`` that ``stitch fidx --url`` writes when the original
  bytes are hosted elsewhere (``{"format": "stitch.fidx-source/1", "url": ...}``).

Leaves out: fetching (``core.engine.sync`` through a ``Fetcher``), index formats
(``core.chunks.fidx``, ``core.chunks.fidx_v1``) and path safety on disk
(``core.formats.manifest.check_path``, ``core.fsutil``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from core.errors import FormatError

FIDX_SUFFIX = ".fidx"
SOURCE_SUFFIX = ".fidx.json"  # the source sidecar beside NAME.fidx
SOURCE_FORMAT = "stitch.fidx-source/1"
MAX_LISTING = 16 << 20  # bytes of a listing page or text list we are willing to read
MAX_SOURCE = 64 << 10  # bytes of a source sidecar
MAX_TARGETS = 100_000  # .fidx links followed from one listing


@dataclass(frozen=True, slots=True)
class Link:
    """One index named by a listing: its URL and the relative path of the file it describes
    (the ``.fidx`` suffix removed, ``/``-separated, percent-decoded)."""

    fidx_url: str
    name: str
    has_source: bool = False  # the listing also shows NAME.fidx.json (HTML listings only)


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        if tag == "a" and d.get("href"):
            self.hrefs.append(str(d["href"]))
        elif tag == "base" and d.get("href") and self.base is None:
            self.base = str(d["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def looks_like_html(body: bytes) -> bool:
    """True when ``body`` is an HTML page rather than a text list."""
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<title", b"<pre", b"<a "))


def _folder(url: str) -> str:
    """The folder URL of ``url``: everything up to and including the last ``/`` of its path."""
    parts = urlsplit(url)
    path = parts.path[: parts.path.rfind("/") + 1] or "/"
    return str(urlunsplit((parts.scheme, parts.netloc, path, "", "")))


def listing_base(url: str, title: str = "") -> str:
    """The folder a listing page at ``url`` lists.

    An autoindex page is often fetched without its trailing slash (``/files`` redirects to
    ``/files/``), and relative links must then resolve inside ``/files/``. The page title
    ``Index of /files/`` (nginx, Apache, ``stitch serve``) says which folder it is; without
    one, a last segment with no dot is taken as a folder.
    """
    parts = urlsplit(url)
    m = re.match(r"\s*Index of (/.*?)\s*$", title)
    if m:
        path = quote(unquote(str(m.group(1))), safe="/")
        return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/") + "/", "", ""))
    last = parts.path.rsplit("/", 1)[-1]
    if last and "." not in last:
        return urlunsplit((parts.scheme, parts.netloc, parts.path + "/", "", ""))
    return _folder(url)


def _name_under(base: str, url: str) -> str | None:
    """The relative, decoded path of ``url`` inside folder ``base``, or None if outside."""
    b, u = urlsplit(base), urlsplit(url)
    if (b.scheme, b.netloc) != (u.scheme, u.netloc) or not u.path.startswith(b.path):
        return None
    rest = u.path[len(b.path):]
    if not rest or rest.endswith("/"):
        return None
    return unquote(rest)


def _strip(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def parse_html_listing(body: bytes, url: str) -> list[Link]:
    """The ``.fidx`` links of an HTML listing page fetched from ``url``, in page order.

    Only links that resolve inside the listed folder count (not ``../``, not other hosts,
    not query links such as Apache's sort headers); each index is named once. Raises
    ``FormatError`` if the page is larger than ``MAX_LISTING``.
    """
    if len(body) > MAX_LISTING:
        raise FormatError(f"{url}: listing larger than {MAX_LISTING} bytes", what="listing")
    parser = _Hrefs()
    parser.feed(body.decode("utf-8", errors="replace"))
    parser.close()
    base = listing_base(url, parser.title)
    if parser.base:
        base = _folder(urljoin(url, parser.base))
    found: dict[str, str] = {}
    sidecars: set[str] = set()
    for href in parser.hrefs:
        target = urljoin(base, href)
        if urlsplit(target).query:
            continue
        target = _strip(target)
        name = _name_under(base, target)
        if name is None:
            continue
        if name.endswith(FIDX_SUFFIX) and len(name) > len(FIDX_SUFFIX):
            found.setdefault(target, name[: -len(FIDX_SUFFIX)])
        elif name.endswith(SOURCE_SUFFIX):
            sidecars.add(name[: -len(SOURCE_SUFFIX)])
        if len(found) > MAX_TARGETS:
            raise FormatError(f"{url}: more than {MAX_TARGETS} indexes listed", what="listing")
    return [Link(u, n, n in sidecars) for u, n in found.items()]


def parse_text_list(body: bytes, url: str) -> list[Link]:
    """The indexes named by a text list fetched from ``url``: one URL or path relative to it
    a line. A file inside the list's folder keeps its relative path as its name; one
    elsewhere is named by its last segment. Raises ``FormatError`` for a line that does not
    end in ``.fidx``, a list that is not UTF-8 or is larger than ``MAX_LISTING``."""
    if len(body) > MAX_LISTING:
        raise FormatError(f"{url}: list larger than {MAX_LISTING} bytes", what="listing")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{url}: list is not UTF-8 text", what="listing") from None
    base = _folder(url)
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        target = _strip(urljoin(url, line))
        if not urlsplit(target).path.endswith(FIDX_SUFFIX):
            raise FormatError(f"{url} line {number}: not a .fidx URL: {line[:80]!r}",
                              what="listing")
        name = _name_under(base, target)
        if name is None:
            name = unquote(urlsplit(target).path.rsplit("/", 1)[-1])
        found.setdefault(target, name[: -len(FIDX_SUFFIX)])
        if len(found) > MAX_TARGETS:
            raise FormatError(f"{url}: more than {MAX_TARGETS} indexes listed", what="listing")
    return [Link(u, n) for u, n in found.items()]


def single_index(url: str) -> Link:
    """The ``Link`` for a URL that is itself a ``.fidx``: named by its last segment."""
    last = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = last[: -len(FIDX_SUFFIX)] if last.endswith(FIDX_SUFFIX) else last
    return Link(_strip(url), name)


def file_url_of(fidx_url: str) -> str:
    """Where a file's bytes live by default: its index's URL without ``.fidx``."""
    return fidx_url[: -len(FIDX_SUFFIX)] if fidx_url.endswith(FIDX_SUFFIX) else fidx_url


def source_url_of(fidx_url: str) -> str:
    """The URL of the source sidecar of the index at ``fidx_url``."""
    return fidx_url + SOURCE_SUFFIX[len(FIDX_SUFFIX):]


def encode_source(url: str) -> bytes:
    """The source sidecar saying the file's bytes are at ``url`` (absolute, or relative to
    the sidecar's own URL)."""
    return (json.dumps({"format": SOURCE_FORMAT, "url": url}, indent=2, sort_keys=True)
            + "\n").encode()


def parse_source(data: bytes, sidecar_url: str) -> str:
    """The absolute URL of the file's bytes from a source sidecar fetched from
    ``sidecar_url``. Raises ``FormatError`` if it is too large, not JSON, of another
    format, or names something other than an http(s) URL."""
    if len(data) > MAX_SOURCE:
        raise FormatError(f"{sidecar_url}: larger than {MAX_SOURCE} bytes", what="source")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"{sidecar_url}: not JSON: {e}", what="source") from None
    if not isinstance(obj, dict) or obj.get("format") != SOURCE_FORMAT:
        raise FormatError(f"{sidecar_url}: not a {SOURCE_FORMAT} file", what="source")
    url = obj.get("url")
    if not isinstance(url, str) or not url:
        raise FormatError(f"{sidecar_url}: no url", what="source")
    absolute = urljoin(sidecar_url, url)
    if urlsplit(absolute).scheme not in ("http", "https"):
        raise FormatError(f"{sidecar_url}: url is not http(s): {url[:80]!r}", what="source")
    return absolute
