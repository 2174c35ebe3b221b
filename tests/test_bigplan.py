"""Big files planned from their index on disk (core.engine.bigplan), end to end at a small
scale: ``BIG_INDEX`` and the window are lowered so a few-MB file takes the path a 50 GB
one takes (tests/test_bigfile.py runs the real size)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.chunks import diskindex
from core.engine import bigplan
from core.engine.updater import Outcome
from core.errors import FormatError
from core.publisher.publish import publish
from tests.conftest import memory_fetcher, tree_digest
from tests.test_updater import _republish_with, _update


@pytest.fixture
def small_big(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bigplan, "BIG_INDEX", 16 << 10)  # pak.bin's index is ~60 KB
    monkeypatch.setattr(diskindex, "WINDOW", 500)


def _trees(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(16)
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    for v in (v1, v2):
        v.mkdir()
    old = rng.randbytes(8_000_000) + bytes(2_000_000) + rng.randbytes(3_000_000)
    new = bytearray(old)
    for _ in range(12):  # scattered edits in place
        at = rng.randrange(len(new) - 100)
        new[at:at + 100] = rng.randbytes(100)
    new[1_000_000:1_000_000] = rng.randbytes(5000)  # an insertion: what follows shifts
    (v1 / "pak.bin").write_bytes(old)
    (v2 / "pak.bin").write_bytes(bytes(new))
    for v in (v1, v2):
        (v / "readme.txt").write_text(f"{v.name}\n")
    return v1, v2


def test_a_big_file_is_installed_and_updated_from_its_index_on_disk(
        tmp_path: Path, small_big: None) -> None:
    v1, v2 = _trees(tmp_path)
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    install = tmp_path / "install"
    fetcher = memory_fetcher(repo)
    _, r = _update(install, fetcher)
    assert r.outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v1)
    # Nothing local: the whole index, then the file's non-zero bytes.
    pak = [rs for u, rs in fetcher.requests if u.endswith("pak.bin") and rs]
    assert 10_900_000 < sum(b - a for rs in pak for a, b in rs) < 11_100_000

    report = publish(v2, repo, "1.1.0")
    fetcher = memory_fetcher(repo)
    log: list[str] = []
    up, r = _update(install, fetcher)
    assert r.outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)
    # The index came as ranges of the changed groups, never whole.
    fidx = [rs for u, rs in fetcher.requests if u.endswith("pak.bin.fidx")]
    assert fidx and all(rs is not None for rs in fidx)
    fidx_size = (repo / "stable/1.1.0/files/pak.bin.fidx").stat().st_size
    assert sum(b - a for rs in fidx if rs for a, b in rs) < fidx_size // 3
    # Only the changed chunks (and bridged gaps) travel.
    got = sum(b - a for u, rs in fetcher.requests if u.endswith("pak.bin") and rs
              for a, b in rs)
    assert report.new_bytes - 100 <= got < 2 * report.new_bytes + 64_000  # (readme.txt)
    del log, up
    # The cache holds the new version's index: the next update plans from it.
    _, r = _update(install, memory_fetcher(repo))
    assert r.outcome is Outcome.UP_TO_DATE


def test_a_manifest_declaring_an_impossible_index_is_refused(
        tmp_path: Path, small_big: None) -> None:
    v1, _ = _trees(tmp_path)
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")

    def lie(o: dict) -> None:  # type: ignore[type-arg]
        for f in o["files"]:
            if f["path"] == "pak.bin":
                f["fidx_size"] = 1_300_000_000
    _republish_with(repo, lie)
    install = tmp_path / "install"
    with pytest.raises(FormatError, match="declares a 1300000000-byte index"):
        _update(install, memory_fetcher(repo))
    assert not install.joinpath("pak.bin").exists()


def test_the_plan_of_a_big_file_is_a_frozen_compact_value(tmp_path: Path,
                                                         small_big: None) -> None:
    from core.engine.bigstage import BigChunkStep
    from core.engine.updater import Updater, UpdaterConfig
    from tests.conftest import MEM

    v1, v2 = _trees(tmp_path)
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v1, repo, "1.0.0")
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0")
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo))
    shown = up.prepare()
    plan = up.build_plan()
    before = plan.fingerprint()
    step = next(f.first for f in plan.files if f.entry.path == "pak.bin")
    assert isinstance(step, BigChunkStep) and step.disk is not None
    assert len(step.index) == 0 and step.disk.count > 2000  # no records in memory
    # One row per copied run and remote range: the changes, not the chunks.
    assert len(step.plan.copies) + len(step.plan.remote) < 60
    with pytest.raises(ValueError):
        step.plan.remote[...] = 0
    with pytest.raises(ValueError):
        step.disk.marks[...] = 0
    assert shown.bytes_reused == step.plan.bytes_local  # (readme.txt is new)
    assert up.apply().outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)
    assert plan.fingerprint() == before
