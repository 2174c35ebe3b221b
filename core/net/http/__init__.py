"""HTTP(S) for stitch, through httpx, which only ``core.net.http.client`` imports.

Owns: one ``httpx.Client`` per origin, learning per origin how the server answers range
requests, checking every status, Content-Range and length against what was asked, retries
with jittered back-off and ``Retry-After`` that resume where the sink left off,
re-resolving an expired signed redirect, and translating every httpx exception into
``core.errors`` at one boundary.

- ``core.net.http.client``: httpx itself, its one importer: clients, lazy imports, URL
  parsing, exception translation, response header checks.
- ``core.net.http.session``: ``HttpSession``, the requests: one client per origin and what was
  learned about it, a request under its deadlines (``core.net.http.deadline``), statuses.
- ``core.net.http.fetcher``: ``HttpFetcher``, the ``Fetcher`` the updater uses: whole bodies,
  ranges in batches over parallel connections, retries that resume, pause and resume.

Leaves out: which ranges to ask for and how to coalesce them (the planner), what the bytes
mean (hash checks happen in the caller), and wire-format parsing (``core.net.multipart``).
"""

from core.net.http.fetcher import MAX_RANGES_PER_REQUEST, USER_AGENT, HttpFetcher
from core.net.retry import parse_retry_after

__all__ = ["MAX_RANGES_PER_REQUEST", "USER_AGENT", "HttpFetcher", "parse_retry_after"]
