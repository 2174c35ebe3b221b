"""End to end against the web servers publishers really use (tests/servers.py): Apache
httpd, Caddy, lighttpd, and Varnish in front of nginx. For each: `stitch publish` 1.0.0, a
full install with `stitch update`, `stitch publish` 1.1.0, an update; once with
--no-compress --no-delta (raw ranges of the files) and once with the defaults (compressed
copies and deltas). Every run must end in files identical to the release, and each
server's access log says how many requests and bytes it took (`tests/bench/servers.py`
prints the table in docs/benchmarks.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from core.publisher.publish import CACHE_CHANGING, CACHE_VERSIONED, publish
from tests.conftest import REPO_ROOT
from tests.servers import (  # noqa: F401  (fixtures)
    Server,
    apache,
    caddy,
    lighttpd,
    measure_update,
    nginx_with,
    publish_cli,
    release_cycle,
    server_pool,
    tree_sha,
    varnish,
)

pytestmark = pytest.mark.slow

Start = Callable[..., Server]
# The defaults publish compressed chunk copies and deltas; "raw" opts out of both, so the
# update asks for raw ranges of the files (what the multi-range assertions below need).
OPTIONS = {"raw": ("--no-compress", "--no-delta"), "default": ()}


@pytest.mark.parametrize("options", sorted(OPTIONS))
@pytest.mark.parametrize("name", ["apache", "caddy", "lighttpd"])
def test_server_installs_and_updates(name: str, options: str, game: tuple[Path, Path],
                                     www: Path, tmp_path: Path,
                                     request: pytest.FixtureRequest) -> None:
    start: Start = request.getfixturevalue(name)
    repo = www / "repo"
    repo.mkdir()
    server = start(repo)
    full, update = release_cycle(game, repo, tmp_path / "install", server, *OPTIONS[options])
    # Ranges work on all three: the update asked for ranges and got 206s, and cost far
    # less than the release.
    assert update.statuses.get(206, 0) > 0, update.statuses
    assert update.bytes_sent < 0.5 * full.bytes_sent, (full, update)
    # The one refusal: the signature of an unsigned release (404).
    for step in (full, update):
        assert all(".minisig" in r for r in step.failed), step.failed


@pytest.mark.nginx
@pytest.mark.parametrize("options", sorted(OPTIONS))
def test_varnish_in_front_of_nginx(options: str, game: tuple[Path, Path], www: Path,
                                   tmp_path: Path, nginx, varnish) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Varnish answers every multi-range request 416 (single ranges work): the client
    learns single ranges and ends with the release; the pointer is never the cache's."""
    repo = www / "repo"
    repo.mkdir()
    cache = varnish(nginx(repo).url)
    full, update = release_cycle(game, repo, tmp_path / "install", cache, *OPTIONS[options])
    assert update.statuses.get(206, 0) > 0, update.statuses
    assert update.bytes_sent < 0.5 * full.bytes_sent, (full, update)
    # Multi-range refused: every 416 answered a multi-range request, and after the first
    # one the run asked one range per request (the learning lasts for one run).
    for step in (full, update):
        ranges = [(status, r.rsplit('"', 2)[-2]) for status, _, r in step.entries]
        refused = [i for i, (status, _) in enumerate(ranges) if status == 416]
        assert all("," in ranges[i][1] for i in refused), ranges
        if refused:
            assert not any("," in value for _, value in ranges[refused[-1] + 1:]), ranges
        assert all(".minisig" in r for s, _, r in step.entries if s not in (200, 206, 416))
    if options == "raw":  # (with deltas every changed file comes as one delta)
        assert update.statuses.get(416, 0) >= 1, update.statuses


@pytest.mark.nginx
def test_varnish_stale_pointer_is_not_believed(game: tuple[Path, Path], www: Path,
                                               tmp_path: Path, nginx, varnish) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Varnish keeps latest.json for its default TTL (120 s) whatever the request headers
    say: a check without the cache-busting query after a new release is told "up to date"
    with the old one; the default check sees the new release at once."""
    v1, v2 = game
    repo = www / "repo"
    repo.mkdir()
    cache = varnish(nginx(repo).url)
    install = tmp_path / "install"
    publish_cli(v1, repo, "1.0.0")
    first = measure_update(cache, install, "--no-cache-bust")  # the plain URL is now cached
    assert first.result["to_version"] == "1.0.0" and tree_sha(install) == tree_sha(v1)
    publish_cli(v2, repo, "1.1.0")
    stale = measure_update(cache, install, "--no-cache-bust")
    assert (stale.result["outcome"], stale.result["to_version"]) == ("up-to-date", "1.0.0")
    fresh = measure_update(cache, install)
    assert (fresh.result["outcome"], fresh.result["to_version"]) == ("updated", "1.1.0")
    assert tree_sha(install) == tree_sha(v2)


def _doc_snippet(name: str) -> str:
    text = (REPO_ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    block = re.search(rf"<!-- cache:{name} -->\n```\w*\n(.*?)```", text, re.S)
    assert block is not None, f"docs/publishing.md lost its cache:{name} snippet"
    return block.group(1)


@pytest.mark.parametrize("name", ["nginx", "apache", "caddy", "lighttpd"])
def test_cache_header_snippets_in_the_docs_work(name: str, www: Path, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    """docs/publishing.md's snippet for each server, in a real server: the pointer and the
    key revalidated, a version's files immutable, what `stitch publish` prints; ranges and
    the updater's cache-busting query still work."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(bytes(range(256)) * 400)
    repo = www / "repo"
    report = publish(src, repo, "1.0.0")
    (repo / "stable" / "minisign.pub").write_text("untrusted comment: stand-in\n")
    assert f"  stable/latest.json: Cache-Control: {CACHE_CHANGING}" in report.lines()
    assert f"  stable/1.0.0/: Cache-Control: {CACHE_VERSIONED}" in report.lines()
    docs = (REPO_ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    assert f"| `{CACHE_CHANGING}` |" in docs and f"| `{CACHE_VERSIONED}` |" in docs

    start = request.getfixturevalue("nginx_with" if name == "nginx" else name)
    server = start(repo, _doc_snippet(name))
    expected = {
        "stable/latest.json": CACHE_CHANGING,
        "stable/latest.json?stitch=0123456789abcdef": CACHE_CHANGING,
        "stable/minisign.pub": CACHE_CHANGING,
        "stable/1.0.0/release.json": CACHE_VERSIONED,
        "stable/1.0.0/files/data.bin": CACHE_VERSIONED,
    }
    with httpx.Client(base_url=server.url) as client:
        for path, want in expected.items():
            r = client.get("/" + path)
            assert (r.status_code, r.headers.get("cache-control")) == (200, want), path
        assert client.get("/stable/latest.json?stitch=1").content == \
            (repo / "stable" / "latest.json").read_bytes()
        r = client.get("/stable/1.0.0/files/data.bin", headers={"Range": "bytes=256-511"})
        assert (r.status_code, r.content) == (206, bytes(range(256)))
        assert r.headers["cache-control"] == CACHE_VERSIONED
