"""Players who skipped releases (issue 16.2): deltas from the last K releases and chains.

A channel of five releases, published with deltas from the last two (``delta_releases=2``);
a player on each earlier release updates to the latest from a real nginx. Up to two
releases behind, the latest release's direct delta is all that is fetched of the file;
further behind, a chain of deltas from the releases between, each in its own release's
folder, the earlier manifests fetched only for it. A damaged hop falls back to the listed
chunk step without going back a phase; the plan's fingerprint is unchanged by the run;
``stitch verify`` passes after each update. The path choice itself is unit-tested on
hand-made hops.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest

from core.engine.deltapath import chain_cost, cheaper, cheapest
from core.engine.meter import Meter
from core.engine.plan import ChunkStep, DeltaStep, Hop
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.formats.manifest import Delta, parse_manifest
from core.net.http import HttpFetcher
from core.progress import PHASE_ORDER, Phase, Progress
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

GAME = "bin/game"
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]


def _trees(tmp_path: Path) -> list[Path]:
    """Five versions of a 3 MB binary, 60 scattered 4-byte edits each time (a delta is far
    smaller than the changed chunks), and a readme new each time."""
    rng = random.Random(16)
    base = bytearray(rng.randbytes(3_000_000))
    out = []
    for v in range(len(VERSIONS)):
        d = tmp_path / f"v{v}"
        (d / "bin").mkdir(parents=True)
        for _ in range(60):
            at = rng.randrange(len(base) - 8)
            base[at:at + 4] = rng.randbytes(4)
        (d / GAME).write_bytes(bytes(base))
        (d / "readme.txt").write_text(f"version {v}\n" * 50)
        out.append(d)
    return out


def _log(server_log: Path) -> list[tuple[int, str, str]]:
    """(status, path, Range header) of each request nginx logged."""
    out = []
    for line in server_log.read_text().splitlines():
        m = re.match(r'(\d+) (\d+) "GET (\S+) [^"]*" "([^"]*)"', line)
        if m:
            out.append((int(m.group(2)), m.group(3), m.group(4)))
    return out


def _update(cfg: UpdaterConfig, progress: list[Progress] | None = None
            ) -> tuple[Updater, str, str]:
    """Update; return the updater, and the plan's fingerprint before and after the run."""
    f = HttpFetcher()
    try:
        up = Updater(cfg, fetcher=f, progress=progress.append if progress is not None else None)
        before = up.build_plan().fingerprint()
        assert up.apply().outcome is Outcome.UPDATED
        return up, before, up.build_plan().fingerprint()
    finally:
        f.close()


def _verify(install: Path, url: str) -> None:
    from app.cli import main

    assert main(["verify", "--dir", str(install), "--url", url, "--progress", "none"]) == 0


@pytest.fixture
def channel(tmp_path: Path, nginx, www: Path):  # type: ignore[no-untyped-def]
    """Five releases published with ``delta_releases=2``, and an install left on each of
    the first four (each installed when it was the latest)."""
    trees = _trees(tmp_path)
    repo = www / "repo"
    repo.mkdir()
    server = nginx(repo)
    installs = []
    for n, (tree, version) in enumerate(zip(trees, VERSIONS, strict=True)):
        publish(tree, repo, version, deltas=True, compress=True, delta_releases=2)
        if n < len(VERSIONS) - 1:
            install = tmp_path / f"install-{version}"
            _update(UpdaterConfig(url=server.url, install_dir=install))
            installs.append(install)
    return trees, repo, server, installs


@pytest.mark.nginx
def test_each_earlier_release_updates_by_a_direct_delta_or_a_chain(channel) -> None:  # type: ignore[no-untyped-def]
    trees, repo, server, installs = channel
    latest = parse_manifest((repo / "stable/1.4.0/release.json").read_bytes())
    game = latest.by_path()[GAME]
    # Deltas from 1.3.0 and 1.2.0 (the last two releases), none from older ones.
    assert len(game.deltas) == 2
    assert [e.version for e in latest.history] == VERSIONS[-2::-1]
    for install, version in zip(installs, VERSIONS, strict=False):
        before = len(_log(server.log))
        up, fp_before, fp_after = _update(UpdaterConfig(url=server.url, install_dir=install))
        assert fp_before == fp_after  # the run changed nothing in the plan
        assert tree_digest(install) == tree_digest(trees[-1])
        _verify(install, server.url)
        asked = _log(server.log)[before:]
        zdeltas = [path.split("/")[2] for _, path, _ in asked
                   if "/files/bin/game." in path and path.endswith(".zdelta")]
        behind = VERSIONS.index("1.4.0") - VERSIONS.index(version)
        step = next(f.first for f in up.build_plan().files if f.entry.path == GAME)
        assert isinstance(step, DeltaStep)
        assert [h.version for h in step.hops] == zdeltas
        if behind <= 2:  # the latest release's own delta from this version
            assert zdeltas == ["1.4.0"], asked
            assert not [p for _, p, _ in asked if p.endswith("release.json")
                        and "/1.4.0/" not in p], asked
        else:  # a chain through the releases between, each hop from its own folder
            assert len(zdeltas) >= 2 and zdeltas[-1] == "1.4.0", asked
            assert all(VERSIONS.index(v) > VERSIONS.index(version) for v in zdeltas)
            middles = {p.split("/")[2] for _, p, _ in asked if p.endswith("/release.json")}
            assert set(zdeltas[:-1]) <= middles
        # Nothing of the file itself: the deltas rebuilt it.
        assert not [p for _, p, _ in asked if p.endswith("/files/bin/game")], asked
        got = sum(int(b) - int(a) + 1 for _, p, rng in asked
                  if "/files/bin/game." in p and p.endswith(".zdelta")
                  for a, b in re.findall(r"(\d+)-(\d+)", rng))
        assert got == step.wire_bytes()  # each hop fetched once, whole
        assert step.wire_bytes() < 100_000 < game.size // 10
    # The hops' temporary files are gone with the staging folder.
    for install in installs:
        assert not list((install / ".stitch").rglob("*.hop*"))


@pytest.mark.nginx
def test_a_damaged_hop_falls_back_to_chunks_without_going_back(
        channel, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    trees, repo, server, installs = channel
    install = installs[0]  # on 1.0.0: four behind, a chain
    look = Updater(UpdaterConfig(url=server.url, install_dir=install))
    try:
        plan = look.build_plan()
    finally:
        look.close()
    step = next(f for f in plan.files if f.entry.path == GAME)
    assert isinstance(step.first, DeltaStep) and len(step.first.hops) >= 2
    # The chunk plan weighed against it is its listed fallback (planned already).
    assert [type(s) for s in step.steps] == [DeltaStep, ChunkStep]
    middle = step.first.hops[0]  # damage the first hop: in an earlier release's folder
    name = middle.url.rsplit("/", 1)[1]
    path = repo / "stable" / middle.version / "files/bin" / name
    body = bytearray(path.read_bytes())
    body[len(body) // 2] ^= 0x40
    path.write_bytes(bytes(body))

    asked: list[Phase] = []
    real_phase = Meter.phase

    def phase(self: Meter, p: Phase, done: int, total: int, current: str = "") -> None:
        asked.append(p)
        real_phase(self, p, done, total, current)

    monkeypatch.setattr(Meter, "phase", phase)
    reports: list[Progress] = []
    before = len(_log(server.log))
    _, fp_before, fp_after = _update(UpdaterConfig(url=server.url, install_dir=install),
                                     reports)
    assert fp_before == fp_after
    assert tree_digest(install) == tree_digest(trees[-1])
    for seq in (asked, [p.phase for p in reports]):
        order = [PHASE_ORDER[p] for p in seq]
        assert order == sorted(order), seq
    assert Phase.SCAN not in asked[asked.index(Phase.DOWNLOAD):]
    _verify(install, server.url)
    log = [(s, p, r) for s, p, r in _log(server.log)[before:] if "/files/bin/game" in p]
    kinds = [p.rsplit("/", 1)[1] for _, p, _ in log]
    # The index (weighing the chain against chunks), the damaged hop, then chunk ranges;
    # no hop after the damaged one, never the whole file.
    assert kinds.count(name) == 1 and kinds.index(name) < len(kinds) - 1, kinds
    after = kinds[kinds.index(name) + 1:]
    assert after and set(after) == {"game"}, kinds
    ranged = sum(int(b) - int(a) + 1 for _, p, rng in log if p.endswith("/bin/game")
                 for a, b in re.findall(r"(\d+)-(\d+)", rng))
    fallback = step.steps[1]
    assert isinstance(fallback, ChunkStep)
    # The bytes of the listed fallback's ranges, as planned before the run; not the file.
    assert 0 < ranged == fallback.wire_bytes() < (trees[-1] / GAME).stat().st_size
    assert not list((install / ".stitch").rglob("*.hop*"))


def test_publish_keeps_deltas_from_the_last_k_releases(tmp_path: Path) -> None:
    """K bases, distinct versions only, folders that are gone skipped, no delta for a file
    that did not change, and the history newest first."""
    trees = _trees(tmp_path)
    repo = tmp_path / "repo"
    for tree, version in zip(trees[:4], VERSIONS, strict=False):
        publish(tree, repo, version, deltas=True, delta_releases=3)
    m = parse_manifest((repo / "stable/1.3.0/release.json").read_bytes())
    old = [parse_manifest((repo / f"stable/{v}/release.json").read_bytes()).by_path()[GAME]
           for v in VERSIONS[:3]]
    assert [d.from_sha256 for d in m.by_path()[GAME].deltas] == [o.sha256 for o in old[::-1]]
    assert [e.version for e in m.history] == ["1.2.0", "1.1.0", "1.0.0"]
    # A release whose folder is gone gives no delta and is not named.
    import shutil

    shutil.rmtree(repo / "stable/1.2.0")
    publish(trees[4], repo, "1.4.0", deltas=True, delta_releases=3)
    m = parse_manifest((repo / "stable/1.4.0/release.json").read_bytes())
    assert [e.version for e in m.history] == ["1.3.0", "1.1.0", "1.0.0"]
    assert len(m.by_path()[GAME].deltas) == 3  # 1.3.0, 1.1.0, 1.0.0
    # An unchanged file gets no delta made: the previous release's are listed, served from
    # its folder (``release``), those from versions still within K.
    publish(trees[4], repo, "1.5.0", deltas=True, delta_releases=3)
    m = parse_manifest((repo / "stable/1.5.0/release.json").read_bytes())
    prev = parse_manifest((repo / "stable/1.4.0/release.json").read_bytes()).by_path()[GAME]
    game = m.by_path()[GAME]
    assert not list((repo / "stable/1.5.0/files").rglob("*.zdelta"))
    # (1.3.0 and 1.1.0 are within 3 releases of 1.5.0; 1.0.0 is not, and 1.4.0 is the file)
    assert game.deltas == tuple(replace(d, release="1.4.0") for d in prev.deltas[:2])
    # K = 1 is the previous release alone.
    publish(trees[0], repo, "1.6.0", deltas=True, delta_releases=1)
    m = parse_manifest((repo / "stable/1.6.0/release.json").read_bytes())
    assert [d.from_sha256 for d in m.by_path()[GAME].deltas] == [
        parse_manifest((repo / "stable/1.5.0/release.json").read_bytes()).by_path()[GAME].sha256]


def test_a_file_unchanged_since_takes_the_delta_where_it_was_published(
        tmp_path: Path) -> None:
    """1.3.0 republishes 1.2.0's files: a player on 1.0.0 (three behind) takes 1.2.0's
    delta from 1.0.0, listed by 1.3.0 and fetched from 1.2.0's folder, and no earlier
    manifest."""
    trees = _trees(tmp_path)
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(trees[0], repo, "1.0.0", deltas=True)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).update()
    for tree, version in ((trees[1], "1.1.0"), (trees[2], "1.2.0"), (trees[2], "1.3.0")):
        publish(tree, repo, version, deltas=True)
    fetcher = memory_fetcher(repo)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher).update()
    assert tree_digest(install) == tree_digest(trees[2])
    asked = [u.removeprefix(f"{MEM}/stable/") for u, _ in fetcher.requests]
    first = parse_manifest((repo / "stable/1.0.0/release.json").read_bytes()).by_path()[GAME]
    assert [u for u in asked if "bin/game" in u] == [
        f"1.2.0/files/bin/game.{first.sha256[:16]}.zdelta"]
    # No earlier manifest; 1.3.0's as a delta of the installed one (three behind: K = 3).
    had = hashlib.sha256((repo / "stable/1.0.0/release.json").read_bytes()).hexdigest()
    assert [u for u in asked if "release.json" in u and not u.endswith(".minisig")] == [
        f"1.3.0/release.json.{had[:16]}.zdelta"]


def test_earlier_manifests_are_not_fetched_for_files_smaller_than_them(
        tmp_path: Path) -> None:
    """Only a small file changes: a chain could save at most its bytes, less than the
    earlier manifest it would need (``CHAIN_PAYOFF``), so none is fetched."""
    repo, install = tmp_path / "repo", tmp_path / "install"
    for n, version in enumerate(VERSIONS[:3]):
        tree = tmp_path / f"t{n}"
        tree.mkdir()
        (tree / "readme.txt").write_text(f"release {n}\n" * 30)
        publish(tree, repo, version, deltas=True, delta_releases=1)
        if n == 0:
            Updater(UpdaterConfig(url=MEM, install_dir=install),
                    fetcher=memory_fetcher(repo)).update()
    fetcher = memory_fetcher(repo)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher).update()
    assert (install / "readme.txt").read_text() == "release 2\n" * 30
    asked = [u.removeprefix(f"{MEM}/stable/") for u, _ in fetcher.requests]
    assert [u for u in asked if u.endswith("release.json")] == ["1.2.0/release.json"]
    assert not [u for u in asked if u.endswith(".zdelta")]


def test_an_earlier_manifest_that_does_not_match_the_history_is_not_used(
        tmp_path: Path) -> None:
    """The chain's middle is vouched by the offered manifest's SHA-256 of it: a changed one
    is left out (logged), and the file comes from chunks."""
    trees = _trees(tmp_path)
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(trees[0], repo, "1.0.0", deltas=True, delta_releases=1)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).update()
    for tree, version in zip(trees[1:3], VERSIONS[1:3], strict=True):
        publish(tree, repo, version, deltas=True, delta_releases=1)
    fetcher = memory_fetcher(repo)
    url = f"{MEM}/stable/1.1.0/release.json"
    fetcher.files[url] = fetcher.files[url].replace(b'"notes": ""', b'"notes": "x"')
    logged: list[str] = []
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher,
                 progress=lambda p: logged.append(p.message or ""))
    plan = up.build_plan()
    assert isinstance(next(f for f in plan.files if f.entry.path == GAME).first, ChunkStep)
    up.apply()
    assert tree_digest(install) == tree_digest(trees[2])
    assert any("1.1.0 not used for deltas" in m for m in logged), logged


# -- the path choice ---------------------------------------------------------------------
def _hop(a: str, b: str, size: int, version: str = "v") -> Hop:
    return Hop(version, f"http://h/{a}-{b}", Delta(a * 64, size, "f" * 64), b * 64, 1000)


def test_cheapest_prefers_the_cheaper_path_then_fewer_hops() -> None:
    a, b, c, d = "a", "b", "c", "d"
    direct = _hop(a, d, 5000)
    chain = (_hop(a, b, 100), _hop(b, c, 100), _hop(c, d, 100))
    assert cheapest(a * 64, d * 64, [direct, *chain]) == chain  # 3 × (100 + 400) < 5400
    big = _hop(a, d, 1000)
    assert cheapest(a * 64, d * 64, [*chain, big]) == (big,)  # 1400 < 1500
    tie = _hop(a, d, 1100)  # 1500, the chain's cost: fewer hops win
    assert cheapest(a * 64, d * 64, [*chain, tie]) == (tie,)
    assert chain_cost(chain) == 1500


def test_cheapest_finds_none_without_a_path_and_survives_cycles() -> None:
    a, b, c, d = "a", "b", "c", "d"
    loop = [_hop(a, b, 10), _hop(b, a, 10), _hop(b, c, 10), _hop(c, b, 10)]
    assert cheapest(a * 64, d * 64, loop) is None
    assert cheapest(a * 64, a * 64, loop) is None  # nothing to do
    assert cheapest(a * 64, c * 64, loop) == (loop[0], loop[2])
    long = [_hop(chr(ord("a") + i), chr(ord("a") + i + 1), 10) for i in range(20)]
    assert cheapest("a" * 64, "u" * 64, long) is None  # over MAX_HOPS
    assert cheapest("a" * 64, "u" * 64, long, max_hops=20) == tuple(long)


def test_a_chain_counts_its_intermediate_files_in_the_disk_space_needed() -> None:
    hops = (_hop("a", "b", 10), _hop("b", "c", 10), _hop("c", "d", 10))
    sized = tuple(replace(h, size=n) for h, n in zip(hops, (300, 500, 700), strict=True))
    assert DeltaStep(sized).scratch_bytes() == 800  # the two intermediates, not the file
    assert DeltaStep(sized[-1:]).scratch_bytes() == 0  # a direct delta needs none


def test_a_chain_is_taken_only_when_it_costs_less_than_the_chunks() -> None:
    chain = (_hop("a", "b", 1000), _hop("b", "c", 1000))  # 2800 with its two requests
    assert cheaper(chain, 2001, 2)  # 2001 + 800
    assert not cheaper(chain, 2000, 2)  # a tie goes to chunks
    assert not cheaper(chain, 0, 7)


# -- the manifest's history ----------------------------------------------------------------
def test_history_round_trips_and_is_bounded() -> None:
    import json

    from core.errors import FormatError
    from core.formats.manifest import Earlier, Manifest, encode_manifest

    m = Manifest("p", "stable", "1.2.0", "2026-12-03T00:00:00Z", (),
                 history=(Earlier("1.1.0", "a" * 64), Earlier("1.0.0", "b" * 64)))
    data = encode_manifest(m)
    assert parse_manifest(data).history == m.history
    assert "history" not in parse_manifest(data).extra
    assert "history" not in json.loads(encode_manifest(Manifest(
        "p", "stable", "1.2.0", "2026-12-03T00:00:00Z", ())))  # none: no key

    def with_history(items: object) -> bytes:
        obj = json.loads(data)
        obj["history"] = items
        return json.dumps(obj).encode()

    bad = [[{"version": f"1.0.{i}", "sha256": "a" * 64} for i in range(17)],  # over 16
           [{"version": "1.0.0", "sha256": "a" * 64}] * 2,  # a version twice
           [{"version": "1.0.0", "sha256": "A" * 64}],  # not lower-case hex
           [{"version": "../x", "sha256": "a" * 64}],  # not a version name
           ["1.0.0"], {"version": "1.0.0"}]
    for items in bad:
        with pytest.raises(FormatError):
            parse_manifest(with_history(items))


def test_publish_delta_releases_option(tmp_path: Path) -> None:
    """``stitch publish --delta-releases K``: K bases; out of range, one line and exit 2."""
    import subprocess
    import sys

    trees = _trees(tmp_path)
    repo = tmp_path / "repo"
    run = [sys.executable, "-m", "app.cli", "publish"]
    for tree, version in zip(trees[:3], VERSIONS, strict=False):
        r = subprocess.run([*run, str(tree), str(repo), "--version", version,
                            "--delta-releases", "2"], capture_output=True, text=True,
                           cwd=Path(__file__).parent.parent, timeout=120)
        assert r.returncode == 0, r.stderr
    assert "deltas from 1.1.0:" in r.stdout and "(and from earlier releases)" in r.stdout
    m = parse_manifest((repo / "stable/1.2.0/release.json").read_bytes())
    assert len(m.by_path()[GAME].deltas) == 2
    for bad in ("0", "17", "x"):
        r = subprocess.run([*run, str(trees[3]), str(repo), "--version", "1.3.0",
                            "--delta-releases", bad], capture_output=True, text=True,
                           cwd=Path(__file__).parent.parent, timeout=120)
        assert r.returncode == 2 and "--delta-releases" in r.stderr, r.stderr
        assert not (repo / "stable/1.3.0").exists()
