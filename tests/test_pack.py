"""The release's pack of small files (issue 16.4; docs/format.md §12, core/engine/packstep.py):
an update of many small changed files costs a few requests, not one per file, against a
real nginx whose access log counts them; a missing or damaged pack falls back to the
per-file files and still installs the release exactly.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from core.engine.packstep import BATCH, merge_spans
from core.errors import FormatError
from core.formats.manifest import encode_manifest, parse_manifest
from tests.servers import (  # noqa: F401  (fixtures)
    Server,
    measure_update,
    nginx_with,
    publish_cli,
    server_pool,
    tree_sha,
)

pytestmark = pytest.mark.nginx

SMALL = 300  # small files in the tree
CHANGED = 100  # of them changed in each new release
WORDS = [b"lump", b"sprite", b"texture", b"level", b"sound", b"map", b"door", b"key",
         b"health", b"ammo", b"wall", b"floor", b"light", b"shadow", b"monster"]


def _text(rng: random.Random, n: int) -> bytes:
    return b" ".join(rng.choice(WORDS) for _ in range(n // 5))[:n]


def make_tree(root: Path, version: int) -> Path:
    """``SMALL`` small text files (0.5-3 KB, like a game's scripts and tables), one bigger
    file (past the pack's limit), and per version: ``CHANGED`` small files stamped with the
    version (a few bytes each), the bigger one edited, one file added and one removed."""
    rng = random.Random(7)
    for i in range(SMALL):
        data = _text(rng, rng.randrange(500, 3000))
        if i % 3 == 0:  # every third file carries the version, as a build stamp
            data = b"# build %d\n" % (version * 1000 + i) + data
        if i == 5 and version > 1:
            continue  # removed
        (root / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 7}" / f"f{i:03}.txt").write_bytes(data)
    big = bytearray(_text(rng, 200_000))
    big[1000:1010] = b"version %02d" % version
    (root / "big.dat").write_bytes(bytes(big))
    (root / f"added-{version}.txt").write_bytes(_text(rng, 900))
    return root


@pytest.fixture
def releases(tmp_path: Path) -> list[Path]:
    return [make_tree(tmp_path / f"v{v}", v) for v in (1, 2, 3)]


def _requests_to(entries: list[tuple[int, int, str]], what: str) -> list[str]:
    return [r for _, _, r in entries if what in r.split('"')[1]]


def _serve(start: Callable[[Path], Server], www: Path) -> tuple[Server, Path]:
    repo = www / "repo"
    repo.mkdir()
    return start(repo), repo


def test_many_small_files_take_a_few_requests(releases: list[Path], www: Path,
                                              tmp_path: Path, nginx_with) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    server, repo = _serve(nginx_with, www)
    install = tmp_path / "install"
    publish_cli(releases[0], repo, "1.0.0")
    first = measure_update(server, install)
    assert tree_sha(install) == tree_sha(releases[0])
    # A first install of 302 files: pointer, manifest, signature (404: unsigned), the pack,
    # and the big file's index, size table and ranges, not one request per file.
    assert first.requests <= 9, first.entries
    assert len(_requests_to(first.entries, "small.pack")) == 1

    publish_cli(releases[1], repo, "1.1.0")
    man = json.loads((repo / "stable/1.1.0/release.json").read_bytes())
    packed = {f["path"] for f in man["files"] if "pack" in f}
    assert len(packed) == SMALL  # every small file (and the added one), not big.dat
    update = measure_update(server, install)
    assert tree_sha(install) == tree_sha(releases[1])
    assert update.result["files_changed"] == CHANGED + 2  # stamped, big.dat, added
    # The bound: a constant plus the changed bytes over a batch. The pack's part: one
    # multi-range request per BATCH of deltas; nothing per small file.
    pack = _requests_to(update.entries, "small.pack")
    needed = sum(d["size"] for f in man["files"] if "pack" in f for d in f.get("deltas", []))
    assert 1 <= len(pack) <= 1 + needed // BATCH
    per_file = [r for r in update.entries if any(p in r[2] for p in packed)]
    assert per_file == []
    # big.dat is over the pack's limit: its content is not packed, its small delta is
    # (``pack_deltas``), so it costs no request of its own either.
    big = next(f for f in man["files"] if f["path"] == "big.dat")
    assert "pack" not in big and big["pack_deltas"] == [big["pack_deltas"][0]]
    assert [r for r in update.entries if "big.dat" in r[2]] == []
    assert update.requests <= 5 + len(pack), update.entries


def test_skipped_release_takes_contents_from_the_pack(releases: list[Path], www: Path,
                                                      tmp_path: Path, nginx_with) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    server, repo = _serve(nginx_with, www)
    install = tmp_path / "install"
    publish_cli(releases[0], repo, "1.0.0")
    measure_update(server, install)
    publish_cli(releases[1], repo, "1.1.0")
    publish_cli(releases[2], repo, "1.2.0")
    update = measure_update(server, install)  # 1.0.0 -> 1.2.0: no delta from 1.0.0
    assert tree_sha(install) == tree_sha(releases[2])
    assert len(_requests_to(update.entries, "small.pack")) == 1
    assert update.requests <= 9, update.entries


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_damaged_pack_falls_back(damage: str, releases: list[Path], www: Path,
                                              tmp_path: Path, nginx_with) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    server, repo = _serve(nginx_with, www)
    install = tmp_path / "install"
    publish_cli(releases[0], repo, "1.0.0")
    measure_update(server, install)
    publish_cli(releases[1], repo, "1.1.0")
    pack = repo / "stable/1.1.0/small.pack"
    if damage == "missing":
        pack.unlink()
    else:  # every byte past the header flipped: each entry fails its digest
        data = bytearray(pack.read_bytes())
        data[8:] = bytes(b ^ 0x5A for b in data[8:])
        pack.write_bytes(bytes(data))
    update = measure_update(server, install)
    assert tree_sha(install) == tree_sha(releases[1])
    # Every changed small file took its next listed step: its own delta.
    deltas = [r for r in _requests_to(update.entries, ".zdelta") if "/release.json." not in r]
    assert len(deltas) == CHANGED + 1, update.entries  # + big.dat's (not the manifest's)
    statuses = [s for s, _, r in update.entries if "small.pack" in r]
    assert statuses == ([404] if damage == "missing" else [206]), update.entries


def test_an_entry_that_decodes_to_another_file_falls_back(releases: list[Path], www: Path,
                                                          tmp_path: Path, nginx_with) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Two packed files' entries swapped in the pack: each decodes cleanly, to the other
    file. The SHA-256 of what was written (the one hash of a packed file) refuses both;
    each takes its next step, and the install is exact."""
    server, repo = _serve(nginx_with, www)
    tree = releases[0]
    (tree / "twin-a.txt").write_bytes(b"a" * 2000 + b"x")
    (tree / "twin-b.txt").write_bytes(b"a" * 2000 + b"y")
    publish_cli(tree, repo, "1.0.0")
    man = parse_manifest((repo / "stable/1.0.0/release.json").read_bytes())
    a, b = (next(f.pack for f in man.files if f.path == n) for n in ("twin-a.txt", "twin-b.txt"))
    assert a is not None and b is not None and a.size == b.size
    pack = repo / "stable/1.0.0/small.pack"
    data = bytearray(pack.read_bytes())
    data[a.offset:a.offset + a.size], data[b.offset:b.offset + b.size] = \
        data[b.offset:b.offset + b.size], data[a.offset:a.offset + a.size]
    pack.write_bytes(bytes(data))
    install = tmp_path / "install"
    update = measure_update(server, install)  # a first install: contents from the pack
    assert tree_sha(install) == tree_sha(tree)
    own = sorted({r.split('"')[1].split()[1].rsplit("/", 1)[1] for _, _, r in update.entries
                  if "/twin-" in r})
    assert own and all(n.startswith(("twin-a.txt", "twin-b.txt")) for n in own), own
    assert {n.split(".txt")[0] for n in own} == {"twin-a", "twin-b"}, own
    assert not [r for _, _, r in update.entries
                if '.txt' in r and "/twin-" not in r and "small.pack" not in r], update.entries


def test_without_a_pack_nothing_changes(releases: list[Path], www: Path, tmp_path: Path,
                                        nginx_with) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """``--pack-max 0``: no pack, no manifest key; a request per changed file, as before."""
    server, repo = _serve(nginx_with, www)
    install = tmp_path / "install"
    publish_cli(releases[0], repo, "1.0.0", "--pack-max", "0")
    measure_update(server, install)
    publish_cli(releases[1], repo, "1.1.0", "--pack-max", "0")
    assert not (repo / "stable/1.1.0/small.pack").exists()
    assert b'"pack"' not in (repo / "stable/1.1.0/release.json").read_bytes()
    update = measure_update(server, install)
    assert tree_sha(install) == tree_sha(releases[1])
    assert update.requests > CHANGED


# -- the pieces ---------------------------------------------------------------------------

def test_merge_spans_bridges_small_gaps_and_bounds_ranges() -> None:
    assert merge_spans([]) == []
    assert merge_spans([(10, 20), (30, 40)]) == [(10, 40)]  # a 10-byte gap: bridged
    far = [(0, 10), (10**6, 10**6 + 10)]
    assert merge_spans(far) == far  # a gap far larger than the bytes needed: kept
    # 1000 spans of 100 bytes 20 KB apart: more than 32 ranges for 100 KB needed; the
    # smallest gaps are bridged while the bridged bytes stay within the needed ones.
    spans = [(i * 20_100, i * 20_100 + 100) for i in range(1000)]
    out = merge_spans(spans)
    need = sum(b - a for a, b in spans)
    covered = sum(b - a for a, b in out)
    assert covered - need <= need
    assert all(any(a <= s and e <= b for a, b in out) for s, e in spans)
    # Equal gaps: as many bridged as the budget allows (100 KB of gaps of 20 KB: 5).
    assert len(out) == 1000 - 5
    # With gaps under the limit, everything is one range, however many files.
    tight = [(i * 200, i * 200 + 100) for i in range(10_000)]
    assert merge_spans(tight) == [(0, 10_000 * 200 - 100)]


def _manifest(pack: object, files: list[dict[str, object]]) -> bytes:
    obj = {"format": "stitch.release/1", "product": "p", "channel": "stable",
           "version": "1.0", "created": "2026-12-03T00:00:00Z", "expires": None,
           "files": files}
    if pack is not None:
        obj["pack"] = pack
    return json.dumps(obj).encode()


def _file(path: str, offset: int, size: int, **more: object) -> dict[str, object]:
    return {"path": path, "size": 10, "sha256": "a" * 64, "fidx_sha256": "b" * 64,
            "fidx_size": 112, "pack": [offset, size], **more}


def test_manifest_pack_keys_round_trip_and_checks() -> None:
    info = {"size": 100, "sha256": "c" * 64}
    d = {"from": "d" * 64, "size": 5, "sha256": "e" * 64}
    man = parse_manifest(_manifest(info, [
        _file("a", 8, 20, deltas=[d], pack=[8, 20, 28]),
        _file("b", 8, 20)]))  # identical content: the same entry
    assert man.pack is not None and man.pack.size == 100
    a = man.by_path()["a"].pack
    assert a is not None and a.delta_offset("d" * 64) == 28
    assert parse_manifest(encode_manifest(man)) == man
    # A file over the pack's limit: its deltas alone packed.
    big = {"path": "big", "size": 10, "sha256": "a" * 64, "fidx_sha256": "b" * 64,
           "fidx_size": 112, "deltas": [d, {**d, "from": "f" * 64}]}
    man = parse_manifest(_manifest(info, [{**big, "pack_deltas": [None, 40]}]))
    only = man.by_path()["big"]
    assert only.pack is None and [(x.from_sha256, x.offset) for x in only.pack_deltas] == [
        ("f" * 64, 40)]
    assert parse_manifest(encode_manifest(man)) == man
    bad = [
        _manifest(info, [{**big, "pack_deltas": [None, None]}]),  # none packed
        _manifest(info, [{**big, "pack_deltas": []}]),
        _manifest(info, [{**big, "pack_deltas": [8, 9, 10]}]),  # more than its deltas
        _manifest(info, [{**big, "pack_deltas": [-1]}]),
        _manifest(info, [{**big, "pack_deltas": [98]}]),  # past the end
        _manifest(info, [{**big, "pack_deltas": [8]}, _file("a", 10, 20)]),  # overlapping
        _manifest(None, [{**big, "pack_deltas": [8]}]),  # no pack
        _manifest(info, [{**big, "pack_deltas": [8], "pack": [20, 20]}]),  # both
        _manifest(None, [_file("a", 8, 20)]),  # packed, but no pack
        _manifest(info, [_file("a", 4, 20)]),  # inside the header
        _manifest(info, [_file("a", 90, 20)]),  # past the end
        _manifest(info, [_file("a", 8, 20), _file("b", 20, 20)]),  # overlapping
        _manifest(info, [_file("a", 8, 0)]),  # empty
        _manifest(info, [_file("a", 8, 20, pack=[8, 20, 28])]),  # a delta it does not have
        _manifest(info, [_file("a", 8, 20, pack=[8, -1])]),  # a negative size
        _manifest(info, [_file("a", 8, 20, pack={"offset": 8, "size": 20})]),  # not a list
        _manifest({"size": 4, "sha256": "c" * 64}, []),  # shorter than its header
    ]
    for data in bad:
        with pytest.raises(FormatError):
            parse_manifest(data)


def test_publish_writes_the_pack_and_its_storage_cost(releases: list[Path],
                                                      tmp_path: Path) -> None:
    """The pack holds each small file's content (zstd) and its deltas, each entry where the
    manifest says; it costs less than the small files themselves."""
    import hashlib

    import zstandard

    repo = tmp_path / "repo"
    publish_cli(releases[0], repo, "1.0.0")
    publish_cli(releases[1], repo, "1.1.0")
    data = (repo / "stable/1.1.0/small.pack").read_bytes()
    man = parse_manifest((repo / "stable/1.1.0/release.json").read_bytes())
    assert man.pack is not None and man.pack.size == len(data)
    assert man.pack.sha256 == hashlib.sha256(data).hexdigest()
    small = 0
    for f in man.files:
        if f.pack is None:
            assert f.size > 64 << 10
            sizes = {d.from_sha256: d for d in f.deltas}
            assert f.pack_deltas  # big.dat's small delta
            for pd in f.pack_deltas:
                d = sizes[pd.from_sha256]
                assert hashlib.sha256(data[pd.offset:pd.offset + d.size]).hexdigest() == \
                    d.sha256
            continue
        small += f.size
        content = zstandard.ZstdDecompressor().decompress(
            data[f.pack.offset:f.pack.offset + f.pack.size])
        assert hashlib.sha256(content).hexdigest() == f.sha256
        sizes = {d.from_sha256: d for d in f.deltas}
        for pd in f.pack.deltas:
            d = sizes[pd.from_sha256]
            assert hashlib.sha256(data[pd.offset:pd.offset + d.size]).hexdigest() == d.sha256
    assert sum(1 for f in man.files if f.pack is not None and f.pack.deltas) == CHANGED
    assert len(data) < small / 2
    shutil.rmtree(repo)
