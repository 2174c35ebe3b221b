"""File modes on disk: what ``stitch publish``, ``keygen``, ``fidx``, ``update`` and ``sync``
write gets the mode the umask gives (0644 files, 0755 folders and executables under 022),
as ``cp`` would make it, never mkstemp's 0600; and nginx with unprivileged workers refuses
(403) a file the publisher left unreadable, so the end-to-end tests would catch it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.fsutil import atomic_write, create_temp, current_umask, file_mode
from core.publisher.publish import publish
from tests.conftest import IN_CI, nginx_worker_user

STITCH = [sys.executable, "-m", "app.cli"]
UMASKS = [0o022, 0o077]


def octal(mask: int) -> str:
    return f"umask{mask:03o}"


def stitch(*args: str, umask: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=120,
                          umask=umask)


@contextmanager
def umask_of(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def modes(root: Path, skip: str = "") -> dict[str, int]:
    """Mode of every file and folder under ``root`` (folders end in /)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if skip and rel.startswith(skip):
            continue
        out[rel + ("/" if p.is_dir() else "")] = mode(p)
    return out


def small_game(dest: Path, version: int) -> Path:
    """A release of three files: ``bin/run`` executable; v2 changes ``a.txt`` and makes
    the unchanged ``sub/b.dat`` executable."""
    (dest / "bin").mkdir(parents=True)
    (dest / "sub").mkdir()
    (dest / "a.txt").write_bytes(b"a%d" % version * 5000)
    (dest / "bin/run").write_bytes(b"#!/bin/sh\necho run\n")
    (dest / "bin/run").chmod(0o755)
    (dest / "sub/b.dat").write_bytes(bytes(range(256)) * 300)
    (dest / "sub/b.dat").chmod(0o755 if version == 2 else 0o600)  # the source's mode is no rule
    return dest


def expected(paths: list[str], umask: int, executable: set[str]) -> dict[str, int]:
    return {p: file_mode(p.endswith("/") or p in executable, umask) for p in paths}


# -- the helpers ------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002], ids=octal)
def test_atomic_write_and_temp_files_honour_the_umask(tmp_path: Path, mask: int) -> None:
    with umask_of(mask):
        assert current_umask() == mask
        atomic_write(tmp_path / "plain", b"x")
        atomic_write(tmp_path / "secret", b"x", 0o600)
        atomic_write(tmp_path / "secret", b"y", 0o600)  # replacing keeps it private
        fd, tmp = create_temp(tmp_path, "t")
        os.close(fd)
    assert mode(tmp_path / "plain") == 0o666 & ~mask
    assert mode(tmp_path / "secret") == 0o600
    assert mode(tmp) == 0o666 & ~mask
    assert file_mode(True, mask) == 0o777 & ~mask and file_mode(False, mask) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["plain", "secret", tmp.name])


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=octal)
def test_umask_without_proc_is_read_and_restored(monkeypatch: pytest.MonkeyPatch,
                                                 mask: int) -> None:
    """Where /proc/self/status is missing (Windows, macOS) the umask is set and put back."""
    import core.fsutil as fsutil

    def no_proc(*args: object, **kw: object) -> object:
        raise FileNotFoundError(2, "no /proc here")

    monkeypatch.setattr(fsutil, "open", no_proc, raising=False)
    with umask_of(mask):
        assert current_umask() == mask
        assert current_umask() == mask  # and left as it was
        assert os.umask(mask) == mask


# -- publisher side: publish, keygen, fidx, as processes under an explicit umask --------------

@pytest.mark.parametrize("mask", UMASKS, ids=octal)
def test_publish_and_keygen_write_what_the_umask_gives(tmp_path: Path, mask: int) -> None:
    src = small_game(tmp_path / "v1", 1)
    r = stitch("keygen", str(tmp_path / "release.key"), umask=mask)
    assert r.returncode == 0, r.stderr
    assert mode(tmp_path / "release.key") == 0o600
    assert mode(tmp_path / "release.key.pub") == 0o666 & ~mask
    repo = tmp_path / "repo"
    r = stitch("publish", str(src), str(repo), "--version", "1.0.0", "--sign-key",
               str(tmp_path / "release.key"), umask=mask)
    assert r.returncode == 0, r.stderr
    got = modes(repo)
    assert "stable/latest.json" in got and "stable/minisign.pub" in got
    assert "stable/1.0.0/release.json.minisig" in got and "stable/1.0.0/files/a.txt.fidx" in got
    assert got == expected(list(got), mask, {"stable/1.0.0/files/bin/run"})
    # 0o600 in the source (sub/b.dat) is published readable, as the umask says.
    assert got["stable/1.0.0/files/sub/b.dat"] == 0o666 & ~mask
    warned = "umask 0077 leaves the repository unreadable" in r.stdout + r.stderr
    assert warned == (mask == 0o077)
    # The optional writers too: compressed copies, deltas, sub-indexes.
    r = stitch("publish", str(small_game(tmp_path / "v2", 2)), str(repo), "--version", "1.1.0",
               "--compress", "--delta", "--subchunks", umask=mask)
    assert r.returncode == 0, r.stderr
    got = modes(repo)
    assert any(p.endswith(".stz") for p in got) and any(p.endswith(".zdelta") for p in got)
    assert got == expected(list(got), mask, {"stable/1.0.0/files/bin/run",
                                             "stable/1.1.0/files/bin/run",
                                             "stable/1.1.0/files/sub/b.dat"})


@pytest.mark.parametrize("mask", UMASKS, ids=octal)
def test_fidx_writes_what_the_umask_gives(tmp_path: Path, mask: int) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(200_000))
    (tmp_path / "big.bin").chmod(0o600)
    r = stitch("fidx", str(tmp_path / "big.bin"), "--url", "http://127.0.0.1:1/big.bin",
               umask=mask)
    assert r.returncode == 0, r.stderr
    assert mode(tmp_path / "big.bin.fidx") == 0o666 & ~mask
    sources = [p for p in tmp_path.iterdir() if p.name.startswith("big.bin.") and
               p.name != "big.bin.fidx"]
    assert sources and all(mode(p) == 0o666 & ~mask for p in sources)


# -- player side: update and sync ----------------------------------------------------------------

@pytest.mark.parametrize("mask", UMASKS, ids=octal)
def test_update_writes_what_the_umask_gives_plus_the_executable_bit(
        tmp_path: Path, mask: int, stitch_server) -> None:  # type: ignore[no-untyped-def]
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(small_game(tmp_path / "v1", 1), repo, "1.0.0")
    url = stitch_server(repo).url
    r = stitch("update", "--url", url, "--dir", str(install), umask=mask)
    assert r.returncode == 0, r.stderr
    game = modes(install, skip=".stitch")
    assert game == expected(list(game), mask, {"bin/run"})
    assert len(game) == 5  # a.txt, bin/, bin/run, sub/, sub/b.dat
    state = modes(install / ".stitch")
    assert state["state.json"] == 0o666 & ~mask  # nothing secret: see docs/format.md §6

    publish(small_game(tmp_path / "v2", 2), repo, "1.1.0")
    r = stitch("update", "--url", url, "--dir", str(install), umask=mask)
    assert r.returncode == 0, r.stderr
    game = modes(install, skip=".stitch")
    # a.txt rebuilt; sub/b.dat unchanged but now executable: chmod'ed as the umask allows.
    assert game == expected(list(game), mask, {"bin/run", "sub/b.dat"})


@pytest.mark.parametrize("mask", UMASKS, ids=octal)
def test_sync_new_files_get_what_the_umask_gives(tmp_path: Path, mask: int,
                                                 stitch_server) -> None:  # type: ignore[no-untyped-def]
    srv, local = tmp_path / "srv", tmp_path / "local"
    srv.mkdir()
    for name in ("one.bin", "two.bin"):
        (srv / name).write_bytes(os.urandom(100_000))
        assert stitch("fidx", str(srv / name), umask=0o022).returncode == 0
    url = stitch_server(srv).url
    r = stitch("sync", url + "/", "--dir", str(local), umask=mask)
    assert r.returncode == 0, r.stderr
    got = modes(local, skip=".stitch")
    assert got == {"one.bin": 0o666 & ~mask, "two.bin": 0o666 & ~mask}
    assert mode(local) == 0o777 & ~mask


# -- a real web server with unprivileged workers ------------------------------------------------

@pytest.mark.nginx
@pytest.mark.parametrize("private", ["stable/latest.json", "stable/1.0.0/files/a.txt.fidx"])
def test_a_file_nginx_workers_cannot_read_fails_the_update(
        tmp_path: Path, www: Path, nginx, private: str) -> None:  # type: ignore[no-untyped-def]
    """What the fixture's unprivileged workers prove: a file left 0600 by the publisher
    (stitch before this fix, for the pointer) is answered 403: the pointer fails the update
    (exit 3); an index falls back to the whole file."""
    if nginx_worker_user() is None:
        if IN_CI:
            pytest.fail("CI runs as root so that nginx's workers can drop privileges")
        pytest.skip("not root: nginx cannot run its workers as another user")
    repo, install = www / "repo", tmp_path / "install"
    with umask_of(0o022):
        publish(small_game(tmp_path / "v1", 1), repo, "1.0.0")
    (repo / private).chmod(0o600)
    server = nginx(repo)
    r = stitch("update", "--url", server.url, "--dir", str(install), umask=0o022)
    assert any(line.split()[1] == "403" and private in line for line in server.log_lines())
    if private.endswith(".fidx"):
        # A missing index is one of the plan's listed fall-backs (docs/format.md §2.2): the
        # whole file, checked by its SHA-256. The 403 above is what the fixture proves.
        assert r.returncode == 0, r.stderr
        assert (install / "a.txt").read_bytes() == (tmp_path / "v1/a.txt").read_bytes()
        return
    assert r.returncode == 3, r.stderr
    assert "403" in r.stderr
    assert not (install / "a.txt").exists()
    (repo / private).chmod(0o644)  # readable by others: the same server now serves it
    r = stitch("update", "--url", server.url, "--dir", str(install), umask=0o022)
    assert r.returncode == 0, r.stderr
    assert (install / "a.txt").read_bytes() == (tmp_path / "v1/a.txt").read_bytes()
    shutil.rmtree(repo)
