"""``stitch sync`` (a plain web folder of ``.fidx``, no manifest) and the installer role
(``stitch update`` and ``stitch verify --repair`` over a damaged install).

Listings are parsed from the bytes real servers send; syncs run against ``stitch serve``,
nginx (autoindex) and Python's http.server (no ranges) on loopback; every test checks the
resulting bytes and what crossed the network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chunks.chunker import DEFAULT_PARAMS
from core.chunks.indexer import V1_PARAMS, IndexCache, index_file, write_beside
from core.engine.sync import SYNC_CACHE, TEMP_SUFFIX, FileOutcome, SyncConfig, discover, sync
from core.errors import FormatError, HashMismatchError, UnsafePathError
from core.formats.listing import (
    encode_source,
    parse_html_listing,
    parse_source,
    parse_text_list,
)
from core.net.fetcher import MemoryFetcher
from core.publisher.publish import publish
from tests.conftest import tree_digest

STITCH = [sys.executable, "-m", "app.cli"]
BIG = ["data/game.wad", "data/assets.pak", "bin/stitchquest"]


def stitch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=timeout)


# -- listings ------------------------------------------------------------------------------

NGINX_PAGE = b"""<html>
<head><title>Index of /pub/</title></head>
<body>
<h1>Index of /pub/</h1><hr><pre><a href="../">../</a>
<a href="sub/">sub/</a>                         28-Nov-2026 07:00       -
<a href="game.wad">game.wad</a>                 28-Nov-2026 07:00  4337012
<a href="game.wad.fidx">game.wad.fidx</a>       28-Nov-2026 07:00    12436
<a href="my%20map.pak.fidx">my map.pak.fidx</a> 28-Nov-2026 07:00     7952
<a href="my%20map.pak.fidx.json">my map.pak.fidx.json</a>
</pre><hr></body>
</html>
"""

APACHE_PAGE = b"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /pub</title>
 </head>
 <body>
<h1>Index of /pub</h1>
<table>
<tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><a href="/">Parent Directory</a></td></tr>
<tr><td><a href="game.wad.fidx">game.wad.fidx</a></td></tr>
<tr><td><a href="game.wad.fidx?x=1">game.wad.fidx</a></td></tr>
<tr><td><a href="http://elsewhere.example/other.fidx">other</a></td></tr>
<tr><td><a href="/pub/data.bin.fidx">data.bin.fidx</a></td></tr>
</table>
</body></html>
"""


def test_nginx_listing_links_names_and_sidecars() -> None:
    # Fetched without the trailing slash: the title says which folder it lists.
    links = parse_html_listing(NGINX_PAGE, "http://h:1/pub")
    assert [(x.fidx_url, x.name, x.has_source) for x in links] == [
        ("http://h:1/pub/game.wad.fidx", "game.wad", False),
        ("http://h:1/pub/my%20map.pak.fidx", "my map.pak", True),
    ]


def test_apache_listing_skips_sort_links_parents_and_other_hosts() -> None:
    links = parse_html_listing(APACHE_PAGE, "http://h/pub/")
    assert [(x.fidx_url, x.name) for x in links] == [
        ("http://h/pub/game.wad.fidx", "game.wad"), ("http://h/pub/data.bin.fidx", "data.bin")]


def test_text_list_relative_absolute_and_comments() -> None:
    body = b"# indexes\n\nfiles/a.iso.fidx\n  http://h/pub/b.img.fidx  \n" \
           b"http://mirror/x/c.tar.fidx\n"
    links = parse_text_list(body, "http://h/pub/list.txt")
    assert [(x.fidx_url, x.name) for x in links] == [
        ("http://h/pub/files/a.iso.fidx", "files/a.iso"), ("http://h/pub/b.img.fidx", "b.img"),
        ("http://mirror/x/c.tar.fidx", "c.tar")]
    with pytest.raises(FormatError):
        parse_text_list(b"a.iso\n", "http://h/list.txt")


def test_source_sidecar_round_trip_and_refusals() -> None:
    assert parse_source(encode_source("http://b/files/x.iso"), "http://a/x.iso.fidx.json") \
        == "http://b/files/x.iso"
    assert parse_source(encode_source("../raw/x.iso"), "http://a/idx/x.iso.fidx.json") \
        == "http://a/raw/x.iso"
    for bad in (b"[]", b"{", b'{"format": "stitch.fidx-source/1", "url": "file:///etc/x"}'):
        with pytest.raises(FormatError):
            parse_source(bad, "http://a/x.fidx.json")


@pytest.mark.parametrize("line,url", [
    (b".stitch/sync/x.fidx", "http://h/.stitch/sync/x.fidx"),
    (b"%2e%2e/x.fidx", "http://h/%2e%2e/x.fidx"),  # dots urljoin does not resolve
])
def test_unsafe_names_are_refused(tmp_path: Path, line: bytes, url: str) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"x" * 5000)
    raw = index_file(f, DEFAULT_PARAMS).raw
    fetcher = MemoryFetcher({"http://h/list.txt": line + b"\n", url: raw})
    with pytest.raises(UnsafePathError):
        discover(fetcher, "http://h/list.txt")
    assert not [u for u, _ in fetcher.requests if u == url]  # refused before fetching


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_listing_parsers_take_any_bytes(body: bytes) -> None:
    for parse in (parse_html_listing, parse_text_list):
        try:
            links = parse(body, "http://h/pub/x")
        except FormatError:
            continue
        for link in links:
            assert link.fidx_url.startswith("http") and link.name


# -- syncing a folder ----------------------------------------------------------------------

def _serve_folder(root: Path, game: Path, fmt: str, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel in names:
        dest = root / Path(rel).name
        shutil.copyfile(game / rel, dest)
        write_beside(dest, V1_PARAMS if fmt == "v1" else DEFAULT_PARAMS)


def _local_v1(dir_: Path, game: Path, names: list[str]) -> None:
    dir_.mkdir(parents=True, exist_ok=True)
    for rel in names:
        shutil.copyfile(game / rel, dir_ / Path(rel).name)


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_sync_from_stitch_serve_listing(tmp_path: Path, game: tuple[Path, Path], fmt: str,
                                        stitch_server) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    srv, local = tmp_path / "srv", tmp_path / "local"
    _serve_folder(srv, v2, fmt, BIG)
    _local_v1(local, v1, BIG)
    (local / "notes.txt").write_bytes(b"the player's own file\n")
    server = stitch_server(srv)
    r = stitch("sync", server.url, "--dir", str(local))
    assert r.returncode == 0, r.stderr
    for rel in BIG:
        assert (local / Path(rel).name).read_bytes() == (v2 / rel).read_bytes()
    assert (local / "notes.txt").read_bytes() == b"the player's own file\n"
    # No .fidx scattered among the user's files; no temp file left; indexes cached.
    assert sorted(p.name for p in local.iterdir()) == [
        ".stitch", "assets.pak", "game.wad", "notes.txt", "stitchquest"]
    assert any((local / ".stitch" / SYNC_CACHE).iterdir())
    whole = sum((v2 / rel).stat().st_size for rel in BIG)
    assert server.bytes_sent < 0.75 * whole
    if fmt == "v1":
        assert r.stdout.count("the file as a whole is not signed") == 3
    else:
        assert r.stdout.count("whole-file SHA-256 matched the index") == 3

    sent = server.bytes_sent
    r = stitch("sync", server.url.rstrip("/"), "--dir", str(local), "--progress", "json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    files = [e for e in events if e["event"] == "file"]
    assert {e["outcome"] for e in files} == {"up-to-date"} and len(files) == 3
    assert events[-1]["event"] == "result" and events[-1]["outcome"] == "up-to-date"
    srv_index_bytes = sum(p.stat().st_size for p in srv.glob("*.fidx"))
    assert server.bytes_sent - sent < srv_index_bytes + 10_000  # indexes and the listing only


def test_cached_indexes_are_not_rebuilt(tmp_path: Path, game: tuple[Path, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    v1, v2 = game
    srv, local = tmp_path / "srv", tmp_path / "local"
    _serve_folder(srv, v2, "v2", ["data/game.wad"])
    _local_v1(local, v1, BIG)
    fetcher = MemoryFetcher({f"http://h/{p.name}": p.read_bytes() for p in srv.iterdir()})
    fetcher.files["http://h/list.txt"] = b"game.wad.fidx\n"
    import core.engine.sync

    calls: list[Path] = []
    real = core.engine.sync.index_file

    def counting(path: Path, params: object, cancel: object = None) -> object:
        calls.append(path)
        return real(path, params, cancel)  # type: ignore[arg-type]

    monkeypatch.setattr(core.engine.sync, "index_file", counting)
    result = sync(SyncConfig("http://h/list.txt", local), fetcher)
    assert [f.outcome for f in result.files] == [FileOutcome.UPDATED]
    assert len(calls) == 3  # each local file once
    calls.clear()
    (local / "stitchquest").write_bytes(b"changed")  # only this one is read again
    result = sync(SyncConfig("http://h/list.txt", local), MemoryFetcher(fetcher.files))
    assert [f.outcome for f in result.files] == [FileOutcome.UP_TO_DATE]
    assert [p.name for p in calls] == ["stitchquest"]


def test_v1_prefix_match_is_checked_on_all_20_bytes(tmp_path: Path) -> None:
    """The planner matches v1 chunks on 16-byte SHA-1 prefixes; a local chunk that matches
    the prefix but not the whole SHA-1 (here: a poisoned cache entry claiming a file holds
    the target's chunks) is downloaded instead, and the file still comes out right."""
    target = os.urandom(300_000)
    (tmp_path / "t.bin").write_bytes(target)
    li = index_file(tmp_path / "t.bin", V1_PARAMS)
    local = tmp_path / "local"
    local.mkdir()
    decoy = local / "decoy.bin"
    decoy.write_bytes(os.urandom(len(target)))
    IndexCache(local / ".stitch" / SYNC_CACHE).put("decoy.bin", decoy.stat(), li)
    fetcher = MemoryFetcher({"http://h/t.bin.fidx": li.raw, "http://h/t.bin": target})
    result = sync(SyncConfig("http://h/t.bin.fidx", local), fetcher)
    assert (local / "t.bin").read_bytes() == target
    f = result.files[0]
    assert f.bytes_local == 0 and f.bytes_remote == len(target)
    assert not f.whole_file_verified and f.index_version == 1


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_bad_server_bytes_leave_the_folder_as_it_was(tmp_path: Path, fmt: str) -> None:
    data = os.urandom(200_000)
    (tmp_path / "x.iso").write_bytes(data)
    li = index_file(tmp_path / "x.iso", V1_PARAMS if fmt == "v1" else DEFAULT_PARAMS)
    local = tmp_path / "local"
    local.mkdir()
    (local / "x.iso").write_bytes(data[:50_000])
    bad = bytearray(data)
    bad[150_000] ^= 0xFF
    fetcher = MemoryFetcher({"http://h/x.iso.fidx": li.raw, "http://h/x.iso": bytes(bad)})
    with pytest.raises(HashMismatchError):
        sync(SyncConfig("http://h/x.iso.fidx", local), fetcher)
    assert (local / "x.iso").read_bytes() == data[:50_000]
    assert not list(local.glob(f"*{TEMP_SUFFIX}")) and not list(local.glob(".x.iso*"))


@pytest.mark.nginx
def test_sync_from_nginx_autoindex_keeps_file_mode(tmp_path: Path, game: tuple[Path, Path],
                                                   nginx, www: Path) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    srv, local = www / "srv", tmp_path / "local"
    _serve_folder(srv, v2, "v2", BIG)
    _local_v1(local, v1, BIG)
    (local / "stitchquest").chmod(0o755)
    server = nginx(srv)
    r = stitch("sync", server.url + "/", "--dir", str(local))
    assert r.returncode == 0, r.stderr
    for rel in BIG:
        assert (local / Path(rel).name).read_bytes() == (v2 / rel).read_bytes()
    assert (local / "stitchquest").stat().st_mode & 0o777 == 0o755
    assert any(" 206 " in line for line in server.log_lines())
    assert server.bytes_sent() < 0.75 * sum((v2 / rel).stat().st_size for rel in BIG)


def test_sync_text_list_through_a_server_without_ranges(
        tmp_path: Path, game: tuple[Path, Path], plain_server) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    srv, local = tmp_path / "srv", tmp_path / "local"
    _serve_folder(srv / "pub", v2, "v1", ["data/game.wad"])
    (srv / "list.txt").write_text("# what to sync\npub/game.wad.fidx\n")
    _local_v1(local, v1, ["data/game.wad"])
    url = plain_server(srv)
    r = stitch("sync", url + "/list.txt", "--dir", str(local))
    assert r.returncode == 0, r.stderr
    assert (local / "pub/game.wad").read_bytes() == (v2 / "data/game.wad").read_bytes()


def test_sync_exit_codes(tmp_path: Path, stitch_server) -> None:  # type: ignore[no-untyped-def]
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "x.bin").write_bytes(os.urandom(100_000))
    write_beside(srv / "x.bin", DEFAULT_PARAMS)
    (srv / "empty").mkdir()
    server = stitch_server(srv)
    assert stitch("sync", server.url + "missing.fidx", "--dir", str(tmp_path / "a")
                  ).returncode == 3
    assert stitch("sync", server.url + "empty/", "--dir", str(tmp_path / "a")).returncode == 4
    (srv / "x.bin").write_bytes(os.urandom(100_000))  # the index now lies
    r = stitch("sync", server.url + "x.bin.fidx", "--dir", str(tmp_path / "b"))
    assert r.returncode == 4 and "stitch:" in r.stderr
    assert not (tmp_path / "b" / "x.bin").exists()


# -- the installer role: a damaged install is repaired -------------------------------------

def _install(tmp_path: Path, v1: Path, stitch_server):  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    server = stitch_server(repo)
    install = tmp_path / "install"
    r = stitch("update", "--url", server.url, "--dir", str(install), "--progress", "none")
    assert r.returncode == 0, r.stderr
    return server, install


def _damage(install: Path) -> int:
    """Delete readme.txt, flip 10 bytes of game.wad keeping its mtime; returns the deleted
    file's size."""
    readme = install / "readme.txt"
    size = readme.stat().st_size
    readme.unlink()
    wad = install / "data/game.wad"
    st = wad.stat()
    data = bytearray(wad.read_bytes())
    data[100_000:100_010] = b"corrupted!"
    wad.write_bytes(bytes(data))
    os.utime(wad, ns=(st.st_atime_ns, st.st_mtime_ns))  # bit rot leaves the mtime alone
    return size


def _metadata(repo: Path) -> int:
    chan = repo / "stable"
    return (chan / "latest.json").stat().st_size + \
        (chan / "1.0.0/release.json").stat().st_size + \
        (chan / "1.0.0/files/data/game.wad.fidx").stat().st_size + \
        (chan / "1.0.0/files/readme.txt.fidx").stat().st_size


def test_update_cli_repairs_a_damaged_install(tmp_path: Path, game: tuple[Path, Path],
                                              stitch_server) -> None:  # type: ignore[no-untyped-def]
    v1, _ = game
    server, install = _install(tmp_path, v1, stitch_server)
    readme = _damage(install)
    os.utime(install / "data/game.wad")  # a changed mtime: the update notices by itself
    sent = server.bytes_sent
    r = stitch("update", "--url", server.url, "--dir", str(install), "--progress", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["outcome"] == "updated"
    assert tree_digest(install) == tree_digest(v1)
    got = server.bytes_sent - sent
    assert got <= readme + _metadata(tmp_path / "repo") + 2 * 65536


def test_verify_finds_damage_and_repair_downloads_only_it(
        tmp_path: Path, game: tuple[Path, Path], stitch_server) -> None:  # type: ignore[no-untyped-def]
    v1, _ = game
    server, install = _install(tmp_path, v1, stitch_server)
    r = stitch("verify", "--dir", str(install))
    assert r.returncode == 0 and r.stdout.startswith("clean:"), r.stdout + r.stderr

    readme = _damage(install)
    r = stitch("verify", "--dir", str(install), "--progress", "json")
    assert r.returncode == 7
    result = json.loads(r.stdout.splitlines()[-1])
    assert result["damaged"] == ["data/game.wad"] and result["missing"] == ["readme.txt"]
    assert result["outcome"] == "damaged" and result["exit_code"] == 7

    # Same mtime, size and inode: only verify's note in state.json makes the update look.
    sent = server.bytes_sent
    r = stitch("verify", "--dir", str(install), "--repair", "--url", server.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "repaired: " in r.stdout and "damaged: data/game.wad" in r.stdout
    assert tree_digest(install) == tree_digest(v1)
    got = server.bytes_sent - sent
    assert got <= readme + _metadata(tmp_path / "repo") + 2 * 65536
    assert hashlib.sha256((install / "data/game.wad").read_bytes()).digest() == \
        hashlib.sha256((v1 / "data/game.wad").read_bytes()).digest()


def test_verify_exit_codes_without_an_install(tmp_path: Path) -> None:
    r = stitch("verify", "--dir", str(tmp_path))
    assert r.returncode == 2 and "no stitch install" in r.stderr
