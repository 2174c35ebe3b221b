"""The local scan: several files at once on a bounded pool, results equal to one file at a
time, and files the state cache vouches for never opened at all."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import core.chunks.chunker as chunker
from core.chunks.chunker import DEFAULT_PARAMS, ChunkerParams, chunk_bytes, chunk_file, chunk_files
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.errors import CancelledError
from core.net.fetcher import MemoryFetcher
from core.progress import CancelToken, Phase, Progress
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

# Every file the process opens (path, phase of the update then running), while recording.
_OPENS: list[tuple[str, Phase | None]] = []
_RECORDING = threading.Event()
_PHASE: list[Phase | None] = [None]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _RECORDING.is_set() and isinstance(args[0], str | bytes | Path):
        _OPENS.append((os.fsdecode(args[0]), _PHASE[0]))  # type: ignore[arg-type]


sys.addaudithook(_audit)  # hooks cannot be removed: it records only while the event is set


def _files(tmp_path: Path, sizes: list[int]) -> list[Path]:
    out = []
    for i, n in enumerate(sizes):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(n // 2) + bytes(n - n // 2))
        out.append(p)
    return out


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_pool_results_equal_one_file_at_a_time(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunker, "_SMALL", 100_000)  # small ones inline, the rest mapped
    small = ChunkerParams(64, 256, 1024)
    paths = _files(tmp_path, [0, 1, 50_000, 3_000_000, 1_500_001, 700_000, 2_000_000])
    jobs = [(p, params) for p in paths for params in (DEFAULT_PARAMS, small)]
    reported: list[int] = []
    got = list(chunk_files(jobs, on_bytes=reported.append, workers=workers))
    assert len(got) == len(jobs)
    for (path, params), (chunks, sha) in zip(jobs, got, strict=True):
        data = path.read_bytes()
        want = chunk_bytes(data, params)
        assert chunks.lengths.tolist() == want.lengths.tolist()
        assert chunks.ids.tobytes() == want.ids.tobytes()
        assert sha == hashlib.sha256(data).digest()
    assert all(n > 0 for n in reported)
    assert sum(reported) == sum(p.stat().st_size for p, _ in jobs)


def test_pool_progress_comes_on_the_calling_thread(tmp_path: Path) -> None:
    paths = _files(tmp_path, [3_000_000] * 4)
    threads: set[int] = set()
    list(chunk_files([(p, DEFAULT_PARAMS) for p in paths],
                     on_bytes=lambda _: threads.add(threading.get_ident()), workers=2))
    assert threads == {threading.get_ident()}


def test_pool_raises_the_first_error_in_job_order(tmp_path: Path) -> None:
    paths = _files(tmp_path, [2_000_000, 2_000_000, 2_000_000])
    jobs = [(paths[0], DEFAULT_PARAMS), (tmp_path / "gone", DEFAULT_PARAMS),
            (paths[2], DEFAULT_PARAMS)]
    it = chunk_files(jobs, workers=2)
    assert next(it)[1] == hashlib.sha256(paths[0].read_bytes()).digest()
    with pytest.raises(FileNotFoundError):
        next(it)
    assert not [t for t in threading.enumerate() if t.name.startswith("stitch-scan")]


def test_pool_cancel_stops_every_worker(tmp_path: Path) -> None:
    paths = _files(tmp_path, [4_000_000] * 6)
    token = CancelToken()
    seen = 0

    def on_bytes(_: int) -> None:
        nonlocal seen
        seen += 1
        token.cancel()

    with pytest.raises(CancelledError):
        for _ in chunk_files([(p, DEFAULT_PARAMS) for p in paths], token, on_bytes, 3):
            pass
    assert seen >= 1
    assert not [t for t in threading.enumerate() if t.name.startswith("stitch-")]


def test_no_pool_for_one_file_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoPool:
        def __init__(self, *_: object, **__: object) -> None:
            raise AssertionError("a pool was started")

    (p,) = _files(tmp_path, [200_000])  # read whole: no SHA thread either
    monkeypatch.setattr(chunker, "ThreadPoolExecutor", NoPool)
    assert list(chunk_files([], workers=4)) == []
    ((chunks, sha),) = chunk_files([(p, DEFAULT_PARAMS)], workers=4)
    assert (chunks.lengths.tolist(), sha) == (
        chunk_file(p, DEFAULT_PARAMS)[0].lengths.tolist(), hashlib.sha256(p.read_bytes()).digest())


def _updater(install: Path, fetcher: MemoryFetcher) -> Updater:
    def progress(p: Progress) -> None:
        _PHASE[0] = p.phase

    return Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher,
                   progress=progress)


def _installed(tmp_path: Path, game: tuple[Path, Path]) -> tuple[Path, Path]:
    """The game's first version published to ``repo`` and installed: (repo, install)."""
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0", product="quest")
    install = tmp_path / "install"
    assert _updater(install, memory_fetcher(repo)).update().outcome is Outcome.UPDATED
    return repo, install


def test_files_the_state_cache_vouches_for_are_never_opened(
    tmp_path: Path, game: tuple[Path, Path]
) -> None:
    v1, v2 = game
    repo, install = _installed(tmp_path, game)
    publish(v2, repo, "1.1.0")
    same = sorted(
        p.relative_to(v1).as_posix() for p in v1.rglob("*")
        if p.is_file() and (v2 / p.relative_to(v1)).is_file()
        and p.read_bytes() == (v2 / p.relative_to(v1)).read_bytes()
    )
    assert same  # the pair has files that do not change

    # Replace the bytes of every unchanged file, keeping its size, mtime and inode: only a
    # read could notice. The update must neither notice nor open them.
    stale: dict[str, bytes] = {}
    for rel in same:
        path = install / rel
        st = path.stat()
        data = bytes(b ^ 0x5A for b in path.read_bytes())
        with open(path, "r+b") as f:
            f.write(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert path.stat().st_ino == st.st_ino
        stale[rel] = data

    _OPENS.clear()
    _RECORDING.set()
    try:
        r = _updater(install, memory_fetcher(repo)).update()
    finally:
        _RECORDING.clear()
    assert r.outcome is Outcome.UPDATED and r.to_version == "1.1.0"
    inside = [(Path(p).resolve(), ph) for p, ph in _OPENS]
    stitch_dir = (install / ".stitch").resolve()
    scanned = [p for p, ph in inside if ph is Phase.SCAN
               and p.is_relative_to(install.resolve()) and not p.is_relative_to(stitch_dir)]
    assert scanned == []  # every old file was vouched: the scan read none of them
    for rel in same:
        assert (install / rel).resolve() not in {p for p, _ in inside}, rel
        assert (install / rel).read_bytes() == stale[rel]  # never read, so never repaired
    want = tree_digest(v2)
    got = tree_digest(install)
    assert {k: v for k, v in got.items() if k not in stale} == \
        {k: v for k, v in want.items() if k not in stale}


def test_the_scan_takes_each_files_lstat_from_the_check(
    tmp_path: Path, game: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check's thread asks about every installed file while it waits for the network
    (``Updater._warm``); the plan's scan finds those answers, asking no file again, and a
    file changed by hand since is still seen as changed (its size differs)."""
    v2 = game[1]
    repo, install = _installed(tmp_path, game)
    publish(v2, repo, "1.1.0")
    installed = sorted(p for p in install.rglob("*") if p.is_file()
                       and ".stitch" not in p.relative_to(install).parts)
    edited = installed[0]
    edited.write_bytes(edited.read_bytes() + b"!")  # a player's edit: not vouched
    asked: list[str] = []
    real = os.lstat

    def counting(path: str | os.PathLike[str], *a: object, **k: object) -> os.stat_result:
        asked.append(os.fspath(path))
        return real(path, *a, **k)  # type: ignore[arg-type]

    up = _updater(install, memory_fetcher(repo))
    monkeypatch.setattr(os, "lstat", counting)
    up.prepare()
    scans = [p for p in asked if Path(p) in set(installed)]
    assert sorted(set(scans)) == sorted(str(p) for p in installed)
    assert len(scans) == len(set(scans))  # once each: by the check, none by the scan
    monkeypatch.setattr(os, "lstat", real)
    r = up.apply()
    assert r.outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)


_CHECKED = (
    "import sys\n"
    "from pathlib import Path\n"
    "from core.engine.updater import Updater, UpdaterConfig\n"
    "up = Updater(UpdaterConfig(url=sys.argv[1], install_dir=Path(sys.argv[2])))\n"
    "r = up.check()\n"
    "print(r.up_to_date, *sorted(m for m in ('core.engine.assemble', 'core.engine.deltasource')\n"
    "                            if m in sys.modules))\n"
)


def test_the_checks_thread_loads_the_plans_modules_only_for_a_new_release(  # type: ignore[no-untyped-def]
    tmp_path: Path, game: tuple[Path, Path], plain_server
) -> None:
    """A launcher's every start finds the release installed: its check loads nothing for a
    plan; a check that finds a new release has them loaded (while its manifest came)."""
    v2 = game[1]
    repo, install = _installed(tmp_path, game)
    url = plain_server(repo)

    def checked() -> list[str]:
        done = subprocess.run([sys.executable, "-c", _CHECKED, url, str(install)],
                              capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).parent.parent)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert checked() == ["True"]
    publish(v2, repo, "1.1.0")
    assert checked() == ["False", "core.engine.assemble", "core.engine.deltasource"]
