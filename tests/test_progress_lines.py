"""Every progress report keeps its promises (``core.progress.Progress``): 0 <= done <= total,
phases in order, an overall fraction that never goes backwards, speed and time left while
bytes arrive. Real updates: the engine against a ``MemoryFetcher``, and the ``stitch``
process against ``stitch serve`` (throttled by ``tests.faultproxy`` where speed matters),
every JSON line parsed and checked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.serve import make_server
from core.engine.meter import NET_WEIGHT, Meter
from core.engine.updater import Updater, UpdaterConfig
from core.progress import PHASE_ORDER, Phase, Progress
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest
from tests.faultproxy import FaultProxy, Rule

STITCH = [sys.executable, "-m", "app.cli"]
ORDER = [p.value for p in Phase]


def check_reports(reports: list[Progress]) -> None:
    """The invariants, on every report."""
    assert reports
    rank = -1
    fraction = 0.0
    for p in reports:
        assert 0 <= p.done <= p.total, p
        assert PHASE_ORDER[p.phase] >= rank, p
        rank = PHASE_ORDER[p.phase]
        assert 0 <= p.overall_done <= p.overall_total or p.overall_total == 0, p
        assert 0 <= p.download_done <= p.download_total or p.download_total == 0, p
        f = p.fraction
        if f is not None:
            assert f >= fraction, (p, fraction)
            fraction = f
    assert reports[-1].phase is Phase.DONE


def check_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same invariants on JSON lines; returns the progress lines."""
    progress = [o for o in lines if o["event"] == "progress"]
    assert progress
    rank = -1
    fraction = 0.0
    for o in progress:
        assert 0 <= o["done"] <= o["total"], o
        assert ORDER.index(o["phase"]) >= rank, o
        rank = ORDER.index(o["phase"])
        if o["overall_total"]:
            assert 0 <= o["overall_done"] <= o["overall_total"], o
            f = o["overall_done"] / o["overall_total"]
            assert f >= fraction, (o, fraction)
            fraction = f
        else:
            assert o["overall_done"] == 0, o
        if o["download_total"]:
            assert 0 <= o["download_done"] <= o["download_total"], o
        assert o["speed"] >= 0
        assert o["eta"] is None or o["eta"] >= 0
        if o["phase"] not in ("rebuild", "download"):
            assert o["speed"] == 0 and o["eta"] is None, o
    assert progress[-1]["phase"] == "done"
    return progress


# --- the meter alone -----------------------------------------------------------------------


def test_meter_counts_each_kind_of_byte_in_its_own_phase_only() -> None:
    got: list[Progress] = []
    m = Meter(got.append)
    m.phase(Phase.CHECK, 0, 3)
    m.add_metadata(5271)  # an index fetched before the scan: not a step of the check
    m.phase(Phase.CHECK, 3, 3)
    m.expect(1000)
    m.phase(Phase.SCAN, 0, 0)  # nothing to read
    m.add_metadata(4920)  # a group table's records
    m.plan(600, 400)
    m.phase(Phase.PLAN, 1, 1)
    m.phase(Phase.REBUILD, 0, 600)
    m.add_download(100)  # fetched ahead: counts overall at once
    m.add_local(600)
    m.phase(Phase.DOWNLOAD, 0, 400)
    m.phase(Phase.SCAN, 0, 50)  # a delta's fall-back scans again: phases never go back
    m.add_read(50)
    m.add_local(30)  # and copies: not the download's bytes
    m.add_network(350)  # a retried range: more than planned
    m.phase(Phase.VERIFY, 0, 1000)
    m.add_done(1000)
    m.phase(Phase.INSTALL, 1, 1)
    m.phase(Phase.DONE, 1, 1)
    check_reports(got)
    assert [p.phase for p in got if p.phase is Phase.SCAN and p.total == 50] == []
    download = [p for p in got if p.phase is Phase.DOWNLOAD]
    assert download[0].done == 100 and download[-1].done == download[-1].total == 450
    assert got[-1].bytes_network == 5271 + 4920 + 450
    assert got[-1].overall_done == got[-1].overall_total == 600 + 400 * NET_WEIGHT


def test_the_plan_never_moves_the_fraction_back() -> None:
    got: list[Progress] = []
    m = Meter(got.append)
    m.expect(100)  # at most 100 bytes to write, were all of them downloaded
    m.phase(Phase.SCAN, 0, 100)
    m.add_read(100)
    m.plan(80, 110)  # more than expected (compressed copies a little bigger): capped
    m.phase(Phase.PLAN, 1, 1)
    check_reports([*got, Progress(Phase.DONE)])
    assert got[-1].overall_done == 100 and got[-1].overall_total == 100 + 100 * NET_WEIGHT


# --- the engine, in memory -----------------------------------------------------------------


def _update(repo: Path, install: Path) -> list[Progress]:
    got: list[Progress] = []
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), memory_fetcher(repo),
                 progress=got.append)
    up.update()
    return got


@pytest.mark.parametrize("extras", [{}, {"compress": True, "deltas": True, "subchunks": True}],
                         ids=["chunks", "stz-deltas-subchunks"])
def test_engine_reports_keep_their_invariants(tmp_path: Path, game: tuple[Path, Path],
                                              extras: dict[str, bool]) -> None:
    v1, v2 = game
    repo = tmp_path / "repo"
    install = tmp_path / "install"
    publish(v1, repo, "1.0.0")
    first = _update(repo, install)
    check_reports(first)
    planned = [p for p in first if p.phase is Phase.PLAN][-1]
    size = sum(len(b) for b in tree_digest(v1).values())
    # A first install: the overall work is the download (nothing to read or copy).
    assert planned.overall_total == planned.download_total * NET_WEIGHT
    assert planned.download_total >= size * 9 // 10
    publish(v2, repo, "1.1.0", **extras)  # type: ignore[arg-type]
    second = _update(repo, install)
    check_reports(second)
    assert tree_digest(install) == tree_digest(v2)
    planned = [p for p in second if p.phase is Phase.PLAN][-1]
    assert 0 < planned.download_total < planned.overall_total
    # The copies and the download make the whole of the work.
    last = [p for p in second if p.phase is Phase.DOWNLOAD][-1]
    assert last.overall_done == last.overall_total
    assert (last.bytes_local + last.download_done * NET_WEIGHT
            >= last.overall_total - planned.overall_done)


# --- the command line against a real server ------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, game: tuple[Path, Path]) -> Iterator[tuple[Path, str]]:
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0")
    server = make_server(repo, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield repo, server.url
    server.shutdown()
    server.server_close()


def _run(url: str, install: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, "update", "--url", url, "--dir", str(install),
                           "--progress", mode], capture_output=True, text=True, timeout=300)


# The file bodies at 2.5 MB/s in all: each request at a quarter of it, the update's four
# connections side by side (core/engine/pieces.py). A first install of the demo game (about
# 7 MB) takes about three seconds, long enough for the speed to be known (one second of
# samples).
RATE = 2_500_000 // 4


def _throttled(url: str) -> FaultProxy:
    return FaultProxy(url, [Rule("throttle", path=r"/files/.*(?<!\.fidx)$", rate=RATE)],
                      lifetime=300)


@pytest.mark.slow
def test_cli_json_lines_keep_their_invariants_and_tell_speed(
        tmp_path: Path, served: tuple[Path, str], game: tuple[Path, Path]) -> None:
    repo, url = served
    install = tmp_path / "install"
    with _throttled(url) as proxy:
        r = _run(proxy.url, install, "json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    progress = check_lines(lines)
    assert tree_digest(install) == tree_digest(game[0])
    moving = [o for o in progress if o["phase"] in ("rebuild", "download")]
    fast = [o for o in moving if o["speed"] > 0 and o["eta"] is not None]
    assert len(fast) >= 3, moving[-5:]
    # The speed is the throttle's, give or take the start-up and the slices it sends.
    assert all(RATE / 4 < o["speed"] < RATE * 4 for o in fast), [o["speed"] for o in fast]
    result = lines[-1]
    assert result["event"] == "result"
    assert progress[-1]["download_done"] <= result["bytes_downloaded"]
    # Every key is documented.
    keys = set().union(*(o.keys() for o in lines))
    assert result["bytes_content"] == progress[-1]["download_done"]
    assert result["bytes_resumed"] == 0
    docs = (Path(__file__).parents[1] / "README.md").read_text()
    for key in keys:
        assert f'"{key}"' in docs, key
    launchers = (Path(__file__).parents[1] / "docs" / "publishing.md").read_text()
    for key in ("overall_done", "overall_total", "download_done", "download_total", "speed",
                "eta", "message"):
        assert key in launchers, key

    # An update (v1 -> v2) on the same install: the same promises.
    publish(game[1], repo, "1.1.0")
    r = _run(url, install, "json")
    assert r.returncode == 0, r.stderr
    check_lines([json.loads(line) for line in r.stdout.splitlines()])
    assert tree_digest(install) == tree_digest(game[1])


@pytest.mark.slow
def test_cli_text_progress_moves_steadily(tmp_path: Path, served: tuple[Path, str],
                                          game: tuple[Path, Path]) -> None:
    _repo, url = served
    install = tmp_path / "install"
    with _throttled(url) as proxy:
        r = _run(proxy.url, install, "text")
    assert r.returncode == 0, r.stderr
    assert tree_digest(install) == tree_digest(game[0])
    pcts = [int(m.group(1)) for m in re.finditer(r" +(\d+)%", r.stderr)]
    assert pcts == sorted(pcts), r.stderr
    assert len({p for p in pcts if 0 < p < 100}) >= 2, r.stderr
    assert re.search(r"MB/s, about \d+ s left", r.stderr), r.stderr


def test_text_percentages_follow_the_overall_figure_only() -> None:
    import io

    from app.report import Reporter

    out = io.StringIO()
    r = Reporter("text", out)
    got: list[Progress] = []
    m = Meter(lambda p: (got.append(p), r(p)))
    m.phase(Phase.CHECK, 0, 3)
    m.phase(Phase.CHECK, 3, 3)  # all of the check, nothing of the update: no "100%"
    m.expect(100)
    m.phase(Phase.SCAN, 0, 0)
    m.plan(0, 100)
    m.phase(Phase.PLAN, 1, 1)
    m.phase(Phase.REBUILD, 0, 0)
    m.phase(Phase.DOWNLOAD, 0, 100)
    m.add_network(100)
    m.phase(Phase.VERIFY, 0, 100)
    m.phase(Phase.DONE, 1, 1)
    pcts = [int(x) for x in re.findall(r" +(\d+)%", out.getvalue())]
    assert pcts == sorted(pcts) and pcts[-1] == 100, out.getvalue()
    assert out.getvalue().splitlines()[0] == "checking for updates"
