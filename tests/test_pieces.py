"""Downloads in pieces side by side (core.engine.pieces): the cuts, the runner, and first
installs through a real nginx whose connections are capped (``limit_rate``)."""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.engine.pieces import cut, piece_size, run_jobs
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.errors import CancelledError, HashMismatchError
from core.net.fetcher import MemoryFetcher
from core.progress import CancelToken
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

if sys.platform != "win32":  # tests/servers.py is POSIX (pwd); nginx is Linux's, below
    from tests.servers import Server, Timed, nginx_with, server_pool, timings  # noqa: F401

# nginx is Debian's, on the Linux side; the Windows suite runs the tests above them.
LINUX_NGINX = pytest.mark.skipif(sys.platform == "win32",
                                 reason="nginx is a Linux program here; the Linux suite runs it")

MiB = 1 << 20


def _tiles(pieces: list[list[tuple[int, int]]], ranges: list[tuple[int, int]]) -> bool:
    """Whether ``pieces``, in order, are exactly ``ranges`` with some ranges cut."""
    flat = [r for p in pieces for r in p]
    joined: list[tuple[int, int]] = []
    for a, b in flat:
        if joined and joined[-1][1] == a and not any(a == x for x, _ in ranges):
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return joined == ranges


def test_cut_tiles_the_ranges_at_chunk_bounds() -> None:
    rng = np.random.default_rng(5)
    bounds = np.concatenate([[0], np.cumsum(rng.integers(1, 70_000, 2000))]).astype(np.uint64)
    end = int(bounds[-1])
    # Ranges that start and end on chunk bounds, with gaps.
    marks = sorted(set(int(x) for x in rng.choice(bounds, 40, replace=False)))
    ranges = [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)]
    pieces = cut(ranges, MiB, bounds)
    assert _tiles(pieces, ranges)
    cuts = {a for p in pieces for a, _ in p} | {b for p in pieces for _, b in p}
    assert cuts <= set(bounds.tolist())  # no chunk is split
    sizes = [sum(b - a for a, b in p) for p in pieces]
    assert max(sizes) <= MiB and len(pieces) > 1
    # A piece is closed once full: all but the last hold at least a piece less a chunk.
    assert all(s > MiB - 70_000 for s in sizes[:-1])
    # Anywhere: exact sizes.
    whole = cut([(0, end)], MiB)
    assert _tiles(whole, [(0, end)]) and all(
        sum(b - a for a, b in p) == MiB for p in whole[:-1])


def test_cut_keeps_a_chunk_longer_than_a_piece_whole_and_small_files_whole() -> None:
    bounds = np.array([0, 10, 5000, 5010, 5020], dtype=np.uint64)
    assert cut([(0, 5020)], 100, bounds) == [[(0, 10)], [(10, 5000)], [(5000, 5020)]]
    assert cut([(0, 50)], 100) == [[(0, 50)]]
    assert cut([(0, 40), (60, 90), (100, 130)], 100) == [[(0, 40), (60, 90), (100, 130)]]


def test_piece_size_gives_every_connection_its_share() -> None:
    assert piece_size(24 * MiB, 4) == 3 * MiB  # 8 pieces: two rounds of 4
    assert piece_size(12 * MiB, 4) == 3 * MiB  # one round
    p = piece_size(150 * 10**6, 4)
    assert p <= 4 * MiB and (-(-150 * 10**6 // p)) % 4 == 0
    assert piece_size(100_000, 4) == MiB  # small downloads: one piece
    assert piece_size(10**9, 1) >= 4 * MiB


def test_run_jobs_runs_side_by_side_and_the_first_failure_stops_the_rest() -> None:
    cancel = CancelToken()
    at_once = 0
    most = 0
    lock = threading.Lock()
    both = threading.Barrier(2, timeout=10)

    def job(token: CancelToken) -> None:
        nonlocal at_once, most
        with lock:
            at_once += 1
            most = max(most, at_once)
        both.wait()  # two at once, or this times out
        with lock:
            at_once -= 1

    run_jobs([job, job, job, job], 2, cancel)
    assert most == 2

    started: list[int] = []

    def failing(n: int):  # type: ignore[no-untyped-def]
        def run(token: CancelToken) -> None:
            started.append(n)
            if n == 0:
                raise ValueError("bad piece")
            for _ in range(200):  # stops at the next check once the token is cancelled
                token.check()
                time.sleep(0.01)
        return run

    with pytest.raises(ValueError, match="bad piece"):
        run_jobs([failing(n) for n in range(20)], 3, cancel)
    assert len(started) < 20  # the rest never started
    cancel.cancel()
    with pytest.raises(CancelledError):
        run_jobs([lambda t: t.check()] * 3, 2, cancel)


def _tree(root: Path, sizes: dict[str, int]) -> Path:
    for i, (name, size) in enumerate(sizes.items()):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        # Half-compressible bytes (4 random bits each): the .stz is published for them.
        p.write_bytes(np.random.default_rng(i).integers(0, 16, size, dtype=np.uint8).tobytes())
    return root


def tree_sha(root: Path) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in tree_digest(root).items()}


def _install(url: str, install: Path, connections: int) -> float:
    up = Updater(UpdaterConfig(url=url, install_dir=install, connections=connections))
    try:
        t0 = time.perf_counter()
        up.prepare()
        r = up.apply()
        took = time.perf_counter() - t0
    finally:
        up.close()
    assert r.outcome is Outcome.UPDATED
    return took


def _overlap(reqs: list[Timed]) -> bool:
    """Whether two requests on different connections were served at the same time."""
    return any(a.connection != b.connection and a.start < b.end - 0.05 and b.start < a.end - 0.05
               for a in reqs for b in reqs)


@pytest.mark.nginx
@LINUX_NGINX
@pytest.mark.parametrize("compress", [False, True])
def test_first_install_tiles_big_files_in_pieces_on_several_connections(
        tmp_path: Path, www: Path, nginx_with, compress: bool) -> None:  # type: ignore[no-untyped-def]
    sizes = {"data/big.pak": 13 * MiB + 12345, "data/mid.pak": 5 * MiB + 7,
             **{f"small/{n}.bin": 40_000 + n for n in range(6)}}
    src = _tree(tmp_path / "src", sizes)
    repo = www / "repo"
    publish(src, repo, "1.0.0", compress=compress)
    server: Server = nginx_with(repo, "limit_rate 8m;")
    install = tmp_path / "install"
    _install(server.url, install, 4)
    assert tree_sha(install) == tree_sha(src)
    reqs = timings(server)
    # Before cutting a file, the client learns whether the server answers ranges at all
    # (a server that does not would stream the file from its start to every piece): one
    # request for one byte, when no range request was answered yet (raw: the index came
    # whole; compressed: the .stz table came by range).
    probes = [t for t in reqs if t.ranges == ((0, 1),)]
    assert len(probes) == (0 if compress else 1), probes
    reqs = [t for t in reqs if t not in probes]
    suffix = ".stz" if compress else ""
    for name in ("data/big.pak", "data/mid.pak"):
        served = f"/stable/1.0.0/files/{name}{suffix}"
        asked = sorted(r for t in reqs if t.uri == served for r in t.ranges)
        length = (repo / served.lstrip("/")).stat().st_size
        # The pieces tile the file exactly: no byte twice, none missing. (Compressed: the
        # .stz holds a header and table before its entries, which the index fetch read.)
        start = asked[0][0]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(asked)), asked
        assert asked[-1][1] == length and (start == 0 or compress), asked
        assert len([t for t in reqs if t.uri == served]) >= 2  # cut into pieces
    ranged = [t for t in reqs if t.ranges and "/files/" in t.uri]
    assert len({t.connection for t in ranged}) > 1 and _overlap(ranged)


@pytest.mark.nginx
@LINUX_NGINX
def test_capped_connections_add_up(tmp_path: Path, www: Path, nginx_with) -> None:  # type: ignore[no-untyped-def]
    """Against a server capping each connection at 4 MB/s, four connections install the
    same ~24 MB tree at least 2.5 times as fast as one (a ratio within one run)."""
    src = _tree(tmp_path / "src", {"a.pak": 16 * MiB, "b.pak": 8 * MiB, "c.txt": 30_000})
    repo = www / "repo"
    publish(src, repo, "1.0.0")
    server: Server = nginx_with(repo, "limit_rate 4m;")
    one = _install(server.url, tmp_path / "one", 1)
    four = _install(server.url, tmp_path / "four", 4)
    assert tree_sha(tmp_path / "one") == tree_sha(src) == tree_sha(tmp_path / "four")
    assert one / four >= 2.5, (one, four)
    assert os.path.getsize(tmp_path / "four" / "a.pak") == 16 * MiB


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.nginx
@LINUX_NGINX
def test_pause_and_cancel_stop_every_piece(tmp_path: Path, www: Path, nginx_with) -> None:  # type: ignore[no-untyped-def]
    """Pieces side by side still pause and cancel as one: paused, every request ends and
    nginx sends nothing more; resumed, the install completes without reading a byte twice;
    cancelled, it ends long before the tree is sent and the old (empty) install stays."""
    from core.net.http import HttpFetcher

    src = _tree(tmp_path / "src", {"a.pak": 14 * MiB, "b.pak": 6 * MiB, "c.txt": 30_000})
    total = sum(len(v) for v in tree_digest(src).values())
    repo = www / "repo"
    publish(src, repo, "1.0.0")
    server: Server = nginx_with(repo, "limit_rate 2m;")

    def sent() -> tuple[int, int]:
        return server.requests(), server.bytes_sent()

    # Pause after 3 MB, then resume.
    token = CancelToken()
    fetcher = HttpFetcher(connections=4)
    up = Updater(UpdaterConfig(url=server.url, install_dir=tmp_path / "one"), fetcher=fetcher,
                 cancel=token)
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            up.update()
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert _wait(lambda: fetcher.stats.bytes_received > 3 * MiB, 60)
        token.pause()
        # Every request ends (the grace, then closed): the log holds all the client made.
        assert _wait(lambda: server.requests() == fetcher.stats.requests, 10), (
            server.requests(), fetcher.stats.requests)
        paused = sent()
        time.sleep(1.0)
        assert sent() == paused  # nothing asked, nothing sent while paused
        assert not done.is_set()
        token.resume()
        assert done.wait(120)
    finally:
        token.cancel()
        worker.join()
        fetcher.close()
    assert not errors, errors
    assert tree_sha(tmp_path / "one") == tree_sha(src)
    # The resume asked only for what had not arrived: no file byte was read twice.
    assert fetcher.stats.bytes_received < total + 200_000, (fetcher.stats.bytes_received, total)

    # Cancel after 3 MB.
    token = CancelToken()
    before, asked = server.bytes_sent(), server.requests()
    fetcher = HttpFetcher(connections=4)
    up = Updater(UpdaterConfig(url=server.url, install_dir=tmp_path / "two"), fetcher=fetcher,
                 cancel=token)
    done.clear()
    errors.clear()
    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert _wait(lambda: fetcher.stats.bytes_received > 3 * MiB, 60)
        token.cancel()
        assert done.wait(60)
    finally:
        worker.join()
        fetcher.close()
    assert len(errors) == 1 and isinstance(errors[0], CancelledError), errors
    assert not (tmp_path / "two" / "a.pak").exists()
    server.settle(asked + fetcher.stats.requests)
    # Ended at once: far from the whole tree (4 x 2 MB/s would need 2.5 s more).
    assert server.bytes_sent() - before < total / 2, (server.bytes_sent() - before, total)


def _whole_file_install(tmp_path: Path, corrupt: bool) -> tuple[MemoryFetcher, Path, Path]:
    src = _tree(tmp_path / "src", {"big.pak": 9 * MiB + 321, "small.txt": 5_000})
    repo = tmp_path / "repo"
    publish(src, repo, "1.0.0")
    fetcher = memory_fetcher(repo)
    files = f"{MEM}/stable/1.0.0/files"
    for name in list(fetcher.files):  # no index: the big file is fetched whole
        if name.startswith(f"{files}/big.pak.fidx"):
            del fetcher.files[name]
    if corrupt:
        body = bytearray(fetcher.files[f"{files}/big.pak"])
        body[7 * MiB] ^= 1
        fetcher.files[f"{files}/big.pak"] = bytes(body)
    return fetcher, src, tmp_path / "install"


def test_a_whole_file_is_fetched_in_pieces_and_checked_by_its_sha256(tmp_path: Path) -> None:
    fetcher, src, install = _whole_file_install(tmp_path, corrupt=False)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install, connections=4), fetcher=fetcher)
    assert up.update().outcome is Outcome.UPDATED
    assert tree_sha(install) == tree_sha(src)
    asked = [rs for url, rs in fetcher.requests if url.endswith("/big.pak") and rs]
    ranges = sorted(r for rs in asked for r in rs)
    assert len(asked) == 4  # 9 MiB over 4 connections: 4 pieces, cut anywhere
    assert ranges[0][0] == 0 and ranges[-1][1] == 9 * MiB + 321
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))

    # One byte wrong in a piece the sealer hashed out of order: the SHA-256 still sees it.
    fetcher, _, install = _whole_file_install(tmp_path / "bad", corrupt=True)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install, connections=4), fetcher=fetcher)
    with pytest.raises(HashMismatchError):
        up.update()
    assert not (install / "big.pak").exists()
