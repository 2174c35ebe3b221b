"""Release versions: PEP 440 parsing and order (core.formats.pep440), checked against PEP 440's own
examples and against ``packaging`` (pytest's dependency, never stitch's); ``stitch publish``
refusing, as a process, a version players would refuse; the client using the same order."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine.updater import Updater, UpdaterConfig
from core.errors import DowngradeError, FormatError
from core.formats.pep440 import Version, parse, version_key
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, tree_digest

STITCH = [sys.executable, "-m", "app.cli"]

# PEP 440's "Summary of permitted suffixes and relative ordering" (its local versions left
# out: a release's name cannot hold '+'), in order.
PEP440_ORDER = ["1.dev0", "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12",
                "1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345",
                "1.0rc1.dev456", "1.0rc1", "1.0", "1.0.post456.dev34", "1.0.post456", "1.0.15",
                "1.1.dev1"]


def test_pep440_example_order() -> None:
    assert sorted(reversed(PEP440_ORDER), key=version_key) == PEP440_ORDER
    keys = [version_key(v) for v in PEP440_ORDER]
    assert all(a < b for a, b in itertools.pairwise(keys))  # strictly


def test_game_style_versions_order() -> None:
    order = ["0.9", "1.0.0-alpha", "1.0.0-alpha.2", "1.0.0-beta.1", "1.0.0-rc1", "1.0.0-rc.2",
             "1.0.0", "1.0.0-1", "1.0.1", "1.2", "1.10.0", "2.0.0-beta", "2.0.0", "2024.1.1",
             "2024.11.28"]
    assert sorted(reversed(order), key=version_key) == order


@pytest.mark.parametrize(("a", "b"), [
    ("1.0", "1.0.0"), ("v1.2", "1.2"), ("1.0.0-rc.1", "1.0.0rc1"), ("2.0.0-RC1", "2.0.0rc1"),
    ("1.0.0-beta", "1.0.0b0"), ("1.0.0-alpha.2", "1.0.0a2"), ("1.0c1", "1.0rc1"),
    ("1.0-1", "1.0.post1"), ("1.0_post_2", "1.0.post2"), ("1.0rev3", "1.0.post3"),
    ("1.0-dev", "1.0.dev0"), ("1.0pre4", "1.0rc4"),
])
def test_spellings_of_one_version_are_equal(a: str, b: str) -> None:
    assert version_key(a) == version_key(b)
    assert str(parse(a)) == str(parse(b)) or (a, b) == ("1.0", "1.0.0")  # zeros are kept


def test_normal_form() -> None:
    assert str(parse("v1.0.0-Beta.2-3.DEV4")) == "1.0.0b2.post3.dev4"
    assert parse("2024.11.28") == Version((2024, 11, 28))


@pytest.mark.parametrize("bad", [
    "banana", "", "v", "1.", ".1", "1..0", "1.0-hotfix", "1.0+local", "1!2.0", "latest",
    "1.0.0-rc.1.2", "1.0.0-x.7.z.92", "1.0 ", " 1.0", "1,0", "1" * 65, "١.٠",
])
def test_what_is_not_a_version(bad: str) -> None:
    with pytest.raises(FormatError, match="not a version"):
        parse(bad)


# A version as PEP 440 writes it, every part optional but the release.
_versions = st.builds(
    lambda release, pre, post, dev: ".".join(map(str, release)) + pre + post + dev,
    st.lists(st.integers(0, 30), min_size=1, max_size=4),
    st.one_of(st.just(""), st.builds(lambda s, n: f"{s}{n}", st.sampled_from(
        ["a", "b", "rc", "-alpha.", "-beta", "-rc.", "c", "pre"]), st.integers(0, 3))),
    st.one_of(st.just(""), st.builds(lambda n: f".post{n}", st.integers(0, 3)),
              st.builds(lambda n: f"-{n}", st.integers(0, 3))),
    st.one_of(st.just(""), st.builds(lambda n: f".dev{n}", st.integers(0, 3))),
)


@settings(max_examples=400, deadline=None)
@given(_versions, _versions)
def test_order_is_packagings(a: str, b: str) -> None:
    """Our order is PEP 440's as ``packaging`` implements it (a test-only dependency)."""
    from packaging.version import Version as Reference

    ka, kb = version_key(a), version_key(b)
    ra, rb = Reference(a), Reference(b)
    assert (ka < kb, ka == kb) == (ra < rb, ra == rb)
    assert str(parse(a)) == str(ra)


# -- stitch publish as a process ----------------------------------------------------------------

def _stitch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "game"
    (d / "bin").mkdir(parents=True)
    (d / "data.bin").write_bytes(bytes(range(256)) * 400)
    (d / "bin/run").write_bytes(b"run")
    return d


def _latest(repo: Path) -> str:
    return str(json.loads((repo / "stable/latest.json").read_text())["version"])


def test_publish_refuses_what_is_not_a_version(tmp_path: Path, src: Path) -> None:
    repo = tmp_path / "repo"
    r = _stitch("publish", str(src), str(repo), "--version", "banana")
    assert r.returncode == 2
    assert "--version" in r.stderr and "'banana' is not a version" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (repo / "stable").exists()


def test_publish_refuses_a_version_not_newer_unless_forced(tmp_path: Path, src: Path) -> None:
    repo = tmp_path / "repo"
    assert _stitch("publish", str(src), str(repo), "--version", "1.1.0").returncode == 0
    r = _stitch("publish", str(src), str(repo), "--version", "1.1.0")
    assert r.returncode == 2 and "version 1.1.0 already exists" in r.stderr
    for older in ("1.0.0", "1.1", "v1.1.0", "1.1.0rc1", "1.1.0.dev5"):
        r = _stitch("publish", str(src), str(repo), "--version", older)
        assert r.returncode == 2, (older, r.stderr)
        assert f"--version {older} is not newer than 1.1.0" in r.stderr, r.stderr
        assert "--force" in r.stderr
        assert _latest(repo) == "1.1.0"
        assert not (repo / "stable" / older).exists()
    for newer in ("1.1.0.post1", "1.2.0rc1", "1.2.0rc2", "1.2.0"):
        r = _stitch("publish", str(src), str(repo), "--version", newer)
        assert r.returncode == 0, r.stderr
        assert _latest(repo) == newer
    r = _stitch("publish", str(src), str(repo), "--version", "1.0.0", "--force")
    assert r.returncode == 0, r.stderr
    assert _latest(repo) == "1.0.0"  # a deliberate rollback
    # --force does not make a non-version acceptable.
    assert _stitch("publish", str(src), str(repo), "--version", "x-1", "--force").returncode == 2


def test_a_channel_whose_latest_is_no_version_accepts_any_version(tmp_path: Path,
                                                                   src: Path) -> None:
    """A repository an older stitch published as 'banana': the next version is newer."""
    from tests.test_updater import _republish_with

    repo = tmp_path / "repo"
    publish(src, repo, "1.0.0")
    _republish_with(repo, lambda o: o.__setitem__("version", "banana"))
    r = _stitch("publish", str(src), str(repo), "--version", "0.1")
    assert r.returncode == 0, r.stderr


# -- the client: the same order ---------------------------------------------------------------

def _update(install: Path, repo: Path, **kw: object):  # type: ignore[no-untyped-def]
    return Updater(UpdaterConfig(url=MEM, install_dir=install, **kw),  # type: ignore[arg-type]
                   fetcher=memory_fetcher(repo)).update()


def test_client_orders_as_publish_does(tmp_path: Path, src: Path) -> None:
    repo, install = tmp_path / "repo", tmp_path / "i"
    publish(src, repo, "1.0.0rc1")
    assert _update(install, repo).to_version == "1.0.0rc1"
    publish(src, repo, "1.0.0")
    assert _update(install, repo).to_version == "1.0.0"  # rc1 < 1.0.0
    publish(src, repo, "1.0.0rc2", force=True)
    with pytest.raises(DowngradeError, match=r"1\.0\.0rc2 is older than installed 1\.0\.0"):
        _update(install, repo)
    publish(src, repo, "1.0.0.post1")
    assert _update(install, repo).to_version == "1.0.0.post1"


def test_client_refuses_a_release_that_is_no_version_and_updates_a_legacy_install(
        tmp_path: Path, src: Path) -> None:
    from tests.test_updater import _republish_with

    repo, install = tmp_path / "repo", tmp_path / "i"
    publish(src, repo, "1.0.0")
    _update(install, repo)
    # An install made by an older stitch from a release named "banana" updates to 1.0.1.
    state_path = install / ".stitch/state.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "version": "banana"}))
    publish(src, repo, "1.0.1")
    assert _update(install, repo).to_version == "1.0.1"
    # A server offering a release named "banana" is refused (exit 4: malformed manifest).
    _republish_with(repo, lambda o: o.__setitem__("version", "banana"))
    before = tree_digest(install)
    with pytest.raises(FormatError, match="'banana' is not a version"):
        _update(install, repo)
    assert tree_digest(install) == before
