"""The plan is a frozen value (``core.engine.plan``): its steps and fallbacks are listed before any
byte is downloaded, running it changes nothing in it, and a failed delta moves to the next
listed step (chunks from the file's index) inside the download phase, never back."""

from __future__ import annotations

import itertools
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.engine.meter import Meter
from core.engine.plan import BuildPlan, ChunkStep, DeltaStep, IndexStep, WholeStep
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.net.http import HttpFetcher
from core.progress import PHASE_ORDER, Phase, Progress
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

GAME = "bin/game"
SLICE = "bin/slice.dat"


def _versions(tmp_path: Path) -> list[Path]:
    """Three versions: a 3 MB binary with scattered small edits each time (a delta is far
    smaller than its changed chunks), a file new each time (``fresh``: fetched whole), and
    one made each time of another part of the binary and a few new bytes (built from
    chunks: its old version shares nothing with it, the release's binary most of it)."""
    rng = random.Random(7)
    base = bytearray(rng.randbytes(3_000_000))
    out = []
    for v in range(3):
        d = tmp_path / f"v{v}"
        (d / "bin").mkdir(parents=True)
        for _ in range(60):
            at = rng.randrange(len(base) - 8)
            base[at:at + 4] = rng.randbytes(4)
        (d / GAME).write_bytes(bytes(base))
        (d / "level.dat").write_bytes(rng.randbytes(6000))  # no delta pays off
        (d / SLICE).write_bytes(bytes(base[v * 400_000:v * 400_000 + 200_000])
                                + rng.randbytes(6000))
        out.append(d)
    return out


def _steps(plan: BuildPlan) -> dict[str, tuple[type, ...]]:
    return {f.entry.path: tuple(type(s) for s in f.steps) for f in plan.files}


def test_the_plan_is_the_same_value_after_the_update(tmp_path: Path) -> None:
    v0, v1, _ = _versions(tmp_path)
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v0, repo, "1.0.0", deltas=True)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).update()
    publish(v1, repo, "1.1.0", deltas=True)

    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo))
    shown = up.prepare()
    plan = up.build_plan()
    before = plan.fingerprint()
    # The delta first, then its fallbacks, listed up front; the others have no delta, and
    # level.dat nothing in common with the release before (fresh): no index for it.
    assert _steps(plan) == {GAME: (DeltaStep, IndexStep, WholeStep),
                            "level.dat": (WholeStep,), SLICE: (ChunkStep,)}
    assert {f.entry.path for f in plan.files if f.entry.fresh} == {"level.dat"}
    chunks = next(f.first for f in plan.files if isinstance(f.first, ChunkStep))
    with pytest.raises(ValueError):  # its arrays cannot be written in place either
        chunks.plan.remote[...] = 0
    assert up.apply().outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v1)
    assert up.build_plan() is plan and plan.fingerprint() == before
    # What the player was shown is the plan's first steps.
    delta = next(f.first for f in plan.files if isinstance(f.first, DeltaStep)).delta
    assert shown.bytes_to_download == delta.size + chunks.wire_bytes() + 6000
    assert shown.bytes_reused == chunks.plan.bytes_local


def test_the_fingerprint_sees_every_step(tmp_path: Path) -> None:
    v0, v1, _ = _versions(tmp_path)
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v0, repo, "1.0.0", deltas=True)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).update()
    publish(v1, repo, "1.1.0", deltas=True)
    plan = Updater(UpdaterConfig(url=MEM, install_dir=install),
                   fetcher=memory_fetcher(repo)).build_plan()
    game = next(f for f in plan.files if f.entry.path == GAME)
    fewer = BuildPlan(tuple(type(f)(f.entry, (f.steps[0], f.steps[2])) if f is game else f
                            for f in plan.files))
    assert BuildPlan(tuple(plan.files)).fingerprint() == plan.fingerprint()
    assert fewer.fingerprint() != plan.fingerprint()  # a fallback less is another plan
    step = next(f.first for f in plan.files if isinstance(f.first, ChunkStep))
    same = ChunkStep(step.index, type(step.plan)(step.plan.size, np.array(step.plan.remote),
                                                 step.plan.copies, step.plan.seed_names))
    assert same == step  # equal by content, not identity
    other = np.array(step.plan.remote)
    other[0, 1] -= 1  # one byte less of one range
    changed = ChunkStep(step.index, type(step.plan)(step.plan.size, other, step.plan.copies,
                                                    step.plan.seed_names))
    assert changed != step


def _update(cfg: UpdaterConfig) -> None:
    f = HttpFetcher()
    try:
        assert Updater(cfg, fetcher=f).update().outcome is Outcome.UPDATED
    finally:
        f.close()


def _log(server_log: Path) -> list[tuple[int, str, str]]:
    """(status, path, Range header) of each request nginx logged."""
    out = []
    for line in server_log.read_text().splitlines():
        m = re.match(r'(\d+) (\d+) "GET (\S+) [^"]*" "([^"]*)"', line)
        if m:
            out.append((int(m.group(2)), m.group(3), m.group(4)))
    return out


@pytest.mark.nginx
def test_a_corrupt_delta_falls_back_to_the_listed_step_without_going_back(
        tmp_path: Path, nginx, www: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository published with ``stitch publish --delta``; the delta file is then
    damaged on the server. The update runs the plan's steps in their listed order: the
    delta (fails its SHA-256), then the file's index and ranges of the file; the phases
    reported never go backwards (nor does the engine ask for an earlier one), and the
    installed bytes are the release's."""
    v0, v1, _ = _versions(tmp_path)
    repo, install = www / "repo", tmp_path / "install"

    def publish_cli(src: Path, version: str) -> None:
        r = subprocess.run([sys.executable, "-m", "app.cli", "publish", str(src), str(repo),
                            # (no pack: it would hold a copy of the delta, tried first)
                            "--version", version, "--delta", "--pack-max", "0"],
                           capture_output=True, text=True,
                           cwd=Path(__file__).parent.parent, timeout=120)
        assert r.returncode == 0, r.stderr

    publish_cli(v0, "1.0.0")
    server = nginx(repo)
    cfg = UpdaterConfig(url=server.url, install_dir=install)
    _update(cfg)
    publish_cli(v1, "1.1.0")
    zdelta = next((repo / "stable/1.1.0/files/bin").glob("game.*.zdelta"))
    body = bytearray(zdelta.read_bytes())
    body[len(body) // 2] ^= 0x40  # the manifest's SHA-256 of it no longer holds
    zdelta.write_bytes(bytes(body))

    asked: list[Phase] = []  # what the engine asks the meter for, before it filters
    real_phase = Meter.phase

    def phase(self: Meter, p: Phase, done: int, total: int, current: str = "") -> None:
        asked.append(p)
        real_phase(self, p, done, total, current)

    monkeypatch.setattr(Meter, "phase", phase)
    reports: list[Progress] = []
    before = len(_log(server.log))
    f = HttpFetcher()
    try:
        up = Updater(cfg, fetcher=f, progress=reports.append)
        plan = up.build_plan()
        fingerprint = plan.fingerprint()
        assert _steps(plan)[GAME] == (DeltaStep, IndexStep, WholeStep)
        result = up.apply()
    finally:
        f.close()
    assert result.outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v1)
    assert plan.fingerprint() == fingerprint

    for seq in (asked, [p.phase for p in reports]):
        order = [PHASE_ORDER[p] for p in seq]
        assert order == sorted(order), seq
    assert Phase.SCAN not in asked[asked.index(Phase.DOWNLOAD):]

    game = [(status, path, rng) for status, path, rng in _log(server.log)[before:]
            if path.startswith("/stable/1.1.0/files/bin/game")]
    kinds = [path.rsplit("/", 1)[1] for _, path, _ in game]
    # The delta, then the listed fallback: the index (the group table is not used for a
    # file with a staging file) and ranges of the file; never the whole-file step.
    assert kinds[0].endswith(".zdelta") and kinds[1] == "game.fidx", game
    assert kinds[2:] and set(kinds[2:]) == {"game"}, game
    assert all(status == 206 and rng.startswith("bytes=") for status, _, rng in game[2:])
    ranged = sum(sum(int(b) - int(a) + 1 for a, b in re.findall(r"(\d+)-(\d+)", rng))
                 for _, _, rng in game[2:])
    assert ranged < (v1 / GAME).stat().st_size // 2  # chunks, not the whole file


def _record_runs(monkeypatch: pytest.MonkeyPatch) -> list[BuildPlan]:
    """The plans ``core.engine.assemble.Assembler`` runs (it still runs them)."""
    from core.engine.assemble import Assembler

    runs: list[BuildPlan] = []
    real = Assembler.run

    def run(self: Assembler) -> list[Path]:
        runs.append(self.plan)
        return real(self)

    monkeypatch.setattr(Assembler, "run", run)
    return runs


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_sync_builds_through_the_one_assembler(tmp_path: Path, fmt: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from core.chunks.chunker import DEFAULT_PARAMS
    from core.chunks.indexer import V1_PARAMS, index_file
    from core.engine.sync import SyncConfig, sync
    from core.net.fetcher import MemoryFetcher

    data = random.Random(3).randbytes(300_000)
    (tmp_path / "x.bin").write_bytes(data)
    li = index_file(tmp_path / "x.bin", V1_PARAMS if fmt == "v1" else DEFAULT_PARAMS)
    local = tmp_path / "local"
    local.mkdir()
    (local / "x.bin").write_bytes(data[:100_000] + bytes(10) + data[100_000:200_000])
    runs = _record_runs(monkeypatch)
    fetcher = MemoryFetcher({"http://h/x.bin.fidx": li.raw, "http://h/x.bin": data})
    result = sync(SyncConfig("http://h/x.bin.fidx", local), fetcher)
    assert (local / "x.bin").read_bytes() == data
    assert len(runs) == 1 and [f.entry.path for f in runs[0].files] == ["x.bin"]
    step = runs[0].files[0].first
    assert isinstance(step, ChunkStep) and (step.sha1 is not None) == (fmt == "v1")
    assert result.files[0].bytes_local == step.plan.bytes_local > 0


@pytest.mark.nginx
def test_verify_repair_builds_through_the_one_assembler(
        tmp_path: Path, nginx, www: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main

    v0, _, _ = _versions(tmp_path)
    repo, install = www / "repo", tmp_path / "install"
    publish(v0, repo, "1.0.0")
    server = nginx(repo)
    _update(UpdaterConfig(url=server.url, install_dir=install))
    game = bytearray((install / GAME).read_bytes())
    game[1_000_000] ^= 1
    (install / GAME).write_bytes(bytes(game))
    runs = _record_runs(monkeypatch)
    code = main(["verify", "--dir", str(install), "--repair", "--url", server.url,
                 "--progress", "none"])
    assert code == 0
    assert tree_digest(install) == tree_digest(v0)
    assert [[f.entry.path for f in r.files] for r in runs] == [[GAME]]
    step = runs[0].files[0].first
    assert isinstance(step, ChunkStep) and step.plan.bytes_local > len(game) // 2


def test_a_bad_delta_and_no_index_end_at_the_whole_file_step(tmp_path: Path) -> None:
    """The third listed step: the delta fails its digest, the server has no index for the
    file (a partial upload), so the whole file is downloaded and checked by its SHA-256."""
    v0, v1, _ = _versions(tmp_path)
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v0, repo, "1.0.0", deltas=True)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).update()
    publish(v1, repo, "1.1.0", deltas=True)
    fetcher = memory_fetcher(repo)
    zdelta = next(u for u in fetcher.files if u.endswith(".zdelta")
                  and "/1.1.0/files/bin/game." in u)
    fetcher.files[zdelta] = fetcher.files[zdelta][::-1]
    for u in [u for u in fetcher.files if "/1.1.0/files/bin/game.fidx" in u]:
        del fetcher.files[u]
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)
    plan = up.build_plan()
    assert _steps(plan)[GAME] == (DeltaStep, IndexStep, WholeStep)
    up.apply()
    assert tree_digest(install) == tree_digest(v1)
    game = [(u.rsplit("/", 1)[1], rs) for u, rs in fetcher.requests if "/1.1.0/files/bin/game" in u]
    size = (v1 / GAME).stat().st_size
    names = [name for name, _ in game]
    assert names[:2] == [zdelta.rsplit("/", 1)[1], "game.fidx"], game
    assert set(names[2:]) == {"game"}, game
    # The whole file, in pieces side by side (core/engine/pieces.py) that tile it exactly.
    pieces = sorted(r for _, rs in game[2:] for r in rs)
    assert pieces[0][0] == 0 and pieces[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))


def test_a_file_plan_ends_with_a_step_that_builds() -> None:
    from core.engine.plan import FileSteps, Hop
    from core.formats.manifest import Delta, FileEntry

    entry = FileEntry("a", 10, "0" * 64, "0" * 64, 0)
    hop = Hop("1.0", "http://h/a.1111111111111111.zdelta", Delta("1" * 64, 5, "2" * 64),
              "0" * 64, 10)
    with pytest.raises(ValueError):
        FileSteps(entry, (DeltaStep((hop,)), IndexStep()))
    with pytest.raises(ValueError):
        DeltaStep(())
    with pytest.raises(ValueError):
        FileSteps(entry, ())
    assert FileSteps(entry, (IndexStep(), WholeStep())).first == IndexStep()
