"""Fresh files (``FileEntry.fresh``, docs/format.md §3): a changed file the publisher found
next to nothing of in the previous release is taken whole by an update, its compressed copy
when it has one, never by its index: the index would cost a round trip (and the chunk
machinery's start-up) to find nothing to reuse."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from core.engine.chunkplan import STZ_WHOLE_MAX
from core.engine.plan import IndexStep, StzWholeStep, WholeStep
from core.engine.updater import Updater, UpdaterConfig
from core.errors import FormatError
from core.formats.manifest import encode_manifest, parse_manifest
from core.publisher.publish import publish
from core.publisher.publish_files import is_fresh
from tests.conftest import MEM, memory_fetcher, tree_digest


def _text(rng: random.Random, n: int) -> bytes:
    words = [b"sprite", b"palette", b"vertex", b"shader", b"lump", b"sector", b"anim"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" " + str(rng.randrange(10_000)).encode() + b"\n"
    return bytes(out[:n])


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _two_releases(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(11)
    script = _text(rng, 400_000)
    keep = rng.randbytes(100_000)
    v1 = _tree(tmp_path / "v1", {
        "data/script.txt": script,
        "data/noise.bin": rng.randbytes(200_000),
        "data/keep.bin": keep,
        "data/lines.txt": _text(rng, 300_000),
    })
    edited = bytearray(script)
    edited[100_000:100_050] = _text(rng, 50)
    v2 = _tree(tmp_path / "v2", {
        "data/script.txt": bytes(edited),  # a small edit: shares most
        "data/noise.bin": rng.randbytes(200_000),  # new bytes, incompressible: no copy
        "data/keep.bin": keep,  # unchanged
        "data/lines.txt": _text(random.Random(12), 300_000),  # new text: has a copy
        "data/moved.bin": keep,  # new path, old bytes: its chunks are in the release
        "data/huge.bin": rng.randbytes(STZ_WHOLE_MAX + 100_000),  # fresh, over the bound
    })
    return v1, v2


def _entries(repo: Path, version: str) -> dict[str, dict[str, object]]:
    man = json.loads((repo / "stable" / version / "release.json").read_bytes())
    return {f["path"]: f for f in man["files"]}


def test_publish_marks_what_the_previous_release_holds_nothing_of(tmp_path: Path) -> None:
    v1, v2 = _two_releases(tmp_path)
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0", compress=True)
    assert not any("fresh" in f for f in _entries(repo, "1.0.0").values())  # (no previous)
    publish(v2, repo, "1.1.0", compress=True)
    fresh = {p for p, f in _entries(repo, "1.1.0").items() if f.get("fresh")}
    assert fresh == {"data/noise.bin", "data/lines.txt", "data/huge.bin"}
    assert all(f["fresh"] is True for p, f in _entries(repo, "1.1.0").items() if p in fresh)
    # A file unchanged since keeps the mark (for players of the release before).
    v3 = _tree(tmp_path / "v3", {p: (v2 / p).read_bytes() for p in
                                 ("data/noise.bin", "data/keep.bin", "data/lines.txt")})
    (v3 / "data/script.txt").write_bytes((v1 / "data/script.txt").read_bytes())
    publish(v3, repo, "1.2.0", compress=True)
    fresh3 = {p for p, f in _entries(repo, "1.2.0").items() if f.get("fresh")}
    assert fresh3 == {"data/noise.bin", "data/lines.txt"}


def test_files_in_the_pack_are_not_marked(tmp_path: Path) -> None:
    """The pack holds a packed file's content whole: the mark would be bytes for nothing."""
    v1, v2 = _two_releases(tmp_path)
    rng = random.Random(3)
    (v1 / "icons").mkdir()
    (v2 / "icons").mkdir()
    for k in range(5):
        (v1 / f"icons/{k}.bin").write_bytes(rng.randbytes(3000))
        (v2 / f"icons/{k}.bin").write_bytes(rng.randbytes(3000))
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0", pack_max=65536)
    publish(v2, repo, "1.1.0", pack_max=65536)
    entries = _entries(repo, "1.1.0")
    assert all("pack" in entries[f"icons/{k}.bin"] for k in range(5))
    assert {p for p, f in entries.items() if f.get("fresh")} == {
        "data/noise.bin", "data/lines.txt", "data/huge.bin"}


def test_fresh_is_at_most_the_index_s_length_found() -> None:
    assert is_fresh(10_000, 10_000, 100)
    assert is_fresh(10_000, 9_900, 100)
    assert not is_fresh(10_000, 9_899, 100)
    assert is_fresh(0, 0, 60)


def test_the_manifest_keeps_the_mark_and_checks_its_type(tmp_path: Path) -> None:
    v1, v2 = _two_releases(tmp_path)
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0")
    publish(v2, repo, "1.1.0")
    data = (repo / "stable/1.1.0/release.json").read_bytes()
    man = parse_manifest(data)
    assert {f.path for f in man.files if f.fresh} == {"data/noise.bin", "data/lines.txt",
                                                       "data/huge.bin"}
    assert encode_manifest(man) == data
    for bad in ('"yes"', "1", "null"):
        broken = data.replace(b'"fresh":true', b'"fresh":' + bad.encode(), 1)
        assert broken != data
        with pytest.raises(FormatError, match="fresh"):
            parse_manifest(broken)


def _asked(fetcher) -> list[tuple[str, tuple[tuple[int, int], ...] | None]]:  # type: ignore[no-untyped-def]
    return [(u.rsplit("/files/", 1)[-1], rs) for u, rs in fetcher.requests if "/files/" in u]


def _installed_then_published(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The first release installed, the second published: (its tree, repo, install)."""
    v1, v2 = _two_releases(tmp_path)
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v1, repo, "1.0.0", compress=True)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).update()
    publish(v2, repo, "1.1.0", compress=True)
    return v2, repo, install


def test_an_update_takes_small_fresh_files_whole_without_their_index(tmp_path: Path) -> None:
    v2, repo, install = _installed_then_published(tmp_path)
    fetcher = memory_fetcher(repo)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)
    steps = {f.entry.path: tuple(type(s) for s in f.steps) for f in up.build_plan().files}
    assert steps["data/lines.txt"] == (StzWholeStep, IndexStep, WholeStep)
    assert steps["data/noise.bin"] == (WholeStep,)
    up.apply()
    assert tree_digest(install) == tree_digest(v2)
    asked = _asked(fetcher)
    names = [u for u, _ in asked]
    sizes = {u.rsplit("/files/", 1)[-1]: len(b) for u, b in fetcher.files.items()
             if "/1.1.0/files/" in u}
    # The copy whole, the file without a copy whole: neither index asked.
    assert [rs for u, rs in asked if u == "data/lines.txt.stz"] == [
        ((0, sizes["data/lines.txt.stz"]),)]
    assert "data/lines.txt" not in names
    assert sum(b - a for u, rs in asked if u == "data/noise.bin" for a, b in rs or
               [(0, sizes[u])]) == 200_000
    assert not {"data/lines.txt.fidx", "data/noise.bin.fidx"} & set(names)
    # The others by their index, as before: the edited file, the moved one (its chunks are
    # local), and the fresh one over STZ_WHOLE_MAX.
    assert {"data/script.txt.fidx", "data/moved.bin.fidx", "data/huge.bin.fidx"} <= set(names)
    assert "data/moved.bin" not in names and "data/moved.bin.stz" not in names


def test_a_fresh_file_left_half_done_resumes_by_its_index(tmp_path: Path) -> None:
    """A ``.part`` an interrupted run left holds chunks of the new file: the index finds them."""
    v2, repo, install = _installed_then_published(tmp_path)
    new = (v2 / "data/noise.bin").read_bytes()
    fetcher = memory_fetcher(repo)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)
    entry = parse_manifest(fetcher.files[f"{MEM}/stable/1.1.0/release.json"]).by_path()[
        "data/noise.bin"]
    part = up._part_path(entry)  # where a run leaves the file it was building
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(new[:150_000] + bytes(len(new) - 150_000))
    up.update()
    assert tree_digest(install) == tree_digest(v2)
    asked = _asked(fetcher)
    assert "data/noise.bin.fidx" in [u for u, _ in asked]
    got = sum(b - a for u, rs in asked if u == "data/noise.bin" and rs for a, b in rs)
    assert got < 100_000  # the half it had is not fetched again


_LOADED = (
    "import sys\n"
    "from app.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print(code, *sorted(m for m in ('numpy', 'pyfastcdc', 'xxhash') if m in sys.modules))\n"
)


def test_an_update_of_fresh_files_and_deltas_starts_without_the_chunk_machinery(
        tmp_path: Path, plain_server) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    text = _text(rng, 300_000)
    edited = text[:1000] + b"patched " + text[1008:]
    v1 = _tree(tmp_path / "v1", {"a.txt": text, "b.bin": rng.randbytes(300_000)})
    v2 = _tree(tmp_path / "v2", {"a.txt": edited, "b.bin": rng.randbytes(300_000)})
    repo, install = tmp_path / "repo", tmp_path / "install"
    publish(v1, repo, "1.0.0", compress=True, deltas=True)
    Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=memory_fetcher(repo)).update()
    publish(v2, repo, "1.1.0", compress=True, deltas=True)
    assert [f["path"] for f in _entries(repo, "1.1.0").values() if f.get("fresh")] == ["b.bin"]
    cmd = [sys.executable, "-c", _LOADED, "update", "--url", plain_server(repo), "--dir",
           str(install), "--progress", "none"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent)
    assert done.stdout.split() == ["0"], done.stderr
    assert tree_digest(install) == tree_digest(v2)
