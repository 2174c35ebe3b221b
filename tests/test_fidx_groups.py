"""The two-level index: the group table's worked example byte for byte, its strict decoder,
partial reads that fetch only the records of changed groups (the ranges asked of a
MemoryFetcher), tampered leaves and tables, and rebuilding from a partially fetched index."""

from __future__ import annotations

import contextlib
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.chunks import fidx_groups as fg
from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.fidx import FileIndex, decode, encode
from core.chunks.planner import SeedSet, plan_file
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.errors import FormatError, HashMismatchError
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, spec_example, tree_digest

PARAMS = ChunkerParams(256, 1024, 4096)


def _index(data: bytes, params: ChunkerParams = PARAMS) -> FileIndex:
    return FileIndex.from_chunks(params, chunk_bytes(data, params), hashlib.sha256(data).digest())


def _noise(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# -- the format ---------------------------------------------------------------------------------

def _example_from_spec() -> bytes:
    return spec_example("worked-example-groups")


def test_worked_example_matches_the_spec_byte_for_byte() -> None:
    data = b"".join(b"%d\n" % x for x in range(2000))
    idx = _index(data, ChunkerParams(256, 1024, 2048))
    spec = _example_from_spec()
    assert fg.encode(fg.build(idx, 2, 3)) == spec
    table = fg.decode(spec)
    assert table.counts.tolist() == [3, 1, 1, 1, 1]
    assert (table.target, table.maximum, table.chunks) == (2, 3, 7)
    assert table.sha256 == hashlib.sha256(data).digest()
    assert table.fidx_size == len(encode(idx))
    # Each digest is the truncated SHA-256 of that group's bytes in the .fidx.
    fidx = encode(idx)
    assert bytes(table.digests[0]) == hashlib.sha256(fidx[80:80 + 60]).digest()[:16]


def test_round_trip_and_the_grouping_rule() -> None:
    idx = _index(_noise(400_000, 1))
    table = fg.decode(fg.encode(fg.build(idx, 8)))
    assert int(table.counts.sum()) == len(idx) and table.maximum == 32
    assert int(table.counts.max()) <= 32
    ends = table.starts()[1:] - 1
    lo = np.ascontiguousarray(idx.ids[:, 8:]).view(">u8").ravel()
    natural = (lo & np.uint64(7)) == np.uint64(7)
    # Every group ends at a natural boundary, its maximum, or the last chunk...
    assert all(natural[e] or c == 32 or e == len(idx) - 1
               for e, c in zip(ends.tolist(), table.counts.tolist(), strict=True))
    # ...and no group holds a natural boundary before its end.
    starts = table.starts()[:-1]
    assert all(not natural[s:e].any() for s, e in zip(starts.tolist(), ends.tolist(),
                                                      strict=True))


def test_empty_index_has_an_empty_table() -> None:
    table = fg.decode(fg.encode(fg.build(_index(b""))))
    assert len(table) == 0 and table.chunks == 0


def _resign(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    body = bytearray(data[:-32])
    struct.pack_into(fmt, body, offset, value)
    return _resign(bytes(body))


GOOD = fg.encode(fg.build(_index(_noise(200_000, 2)), 4))


@pytest.mark.parametrize("bad", [
    b"",
    GOOD[:135],
    GOOD[:-1],
    GOOD + b"\0",
    _resign(b"FIDH" + GOOD[4:-32]),  # magic
    _patch(GOOD, 4, ">I", 2),  # version
    _patch(GOOD, 12, ">I", 3),  # embedded .fidx version
    _patch(GOOD, 88, ">I", 3),  # target not a power of two
    _patch(GOOD, 88, ">I", 1 << 17),  # target too big
    _patch(GOOD, 92, ">I", 2),  # maximum under the target
    _patch(GOOD, 92, ">I", (1 << 20) + 1),  # maximum too big
    _patch(GOOD, 96, ">Q", 10**12),  # more groups than chunks
    _patch(GOOD, 96, ">Q", 3),  # a group count the length does not fit
    _patch(GOOD, 104, ">I", 0),  # a group of no chunks
    _patch(GOOD, 104, ">I", 17),  # over the maximum (4 x 4)
    _patch(GOOD, 104, ">I", struct.unpack_from(">I", GOOD, 104)[0] % 16 + 1
           if struct.unpack_from(">I", GOOD, 104)[0] != 1 else 2),  # counts do not add up
    GOOD[:-1] + bytes([GOOD[-1] ^ 1]),  # trailer
])
def test_decoder_rejects_bad_tables(bad: bytes) -> None:
    with pytest.raises(FormatError):
        fg.decode(bad)


def test_decoder_rejects_a_file_over_the_ceiling() -> None:
    with pytest.raises(FormatError, match="over the limit"):
        fg.decode(GOOD, max_file_size=1000)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 33), st.integers(0, 255)),
                min_size=1, max_size=4), st.booleans())
def test_any_edit_parses_or_raises_format_error(edits: list[tuple[int, int]],
                                                reseal: bool) -> None:
    body = bytearray(GOOD[:-32] if reseal else GOOD)
    for at, value in edits:
        body[at % len(body)] = value
    data = _resign(bytes(body)) if reseal else bytes(body)
    with contextlib.suppress(FormatError):
        t = fg.decode(data)
        assert int(t.counts.sum()) == t.chunks and len(t.digests) == len(t.counts)


# -- assembling an index from local groups and fetched leaves --------------------------------

def _edit(old: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(old)
    for at, drop, insert in sorted(edits, reverse=True):
        at %= len(out) + 1
        out[at:at + drop] = insert
    return bytes(out)


def _assemble(new_fidx: bytes, table: fg.GroupTable, old: FileIndex) -> tuple[bytes, int]:
    """The target .fidx from ``old``'s groups and leaves cut from ``new_fidx``."""
    asm = fg.Assembly.start(table, fg.LocalGroups.of([(old.lengths, old.ids)], table.target,
                                                     table.maximum))
    fetched = 0
    for a, b in asm.leaf_ranges():
        asm.add_leaves(a, new_fidx[a:b], "mem://x.fidx")
        fetched += b - a
    return asm.fidx_bytes(), fetched


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3000),
                          st.binary(max_size=3000)), max_size=6),
       st.sampled_from([2, 4, 16]))
def test_a_plan_from_a_partly_fetched_index_rebuilds_the_target(
        seed: int, edits: list[tuple[int, int, bytes]], target: int) -> None:
    old = _noise(150_000, seed)
    new = _edit(old, edits)
    old_idx, new_idx = _index(old), _index(new)
    new_fidx = encode(new_idx)
    table = fg.decode(fg.encode(fg.build(new_idx, target)))
    data, fetched = _assemble(new_fidx, table, old_idx)
    assert data == new_fidx and fetched <= len(new_fidx)
    if not edits:
        assert fetched == 0
    idx = decode(data)
    plan = plan_file(idx, SeedSet.of_index("old", old_idx))
    out = bytearray(len(new))
    for t, _s, so, n in plan.copies.tolist():
        out[t:t + n] = old[so:so + n]
    for a, b in plan.remote.tolist():
        out[a:b] = new[a:b]
    assert bytes(out) == new


def test_a_leaf_that_does_not_match_its_group_is_refused() -> None:
    old = _noise(150_000, 5)
    new = old[:70_000] + b"an edit" + old[70_000:]
    new_idx = _index(new)
    table = fg.build(new_idx, 4)
    asm = fg.Assembly.start(table, fg.LocalGroups.of([(_index(old).lengths,
                                                       _index(old).ids)], 4, 16))
    (a, b), *_ = asm.leaf_ranges()
    leaf = bytearray(encode(new_idx)[a:b])
    leaf[5] ^= 1
    with pytest.raises(HashMismatchError, match="do not match the group table"):
        asm.add_leaves(a, bytes(leaf), "mem://x.fidx")
    with pytest.raises(FormatError):
        asm.add_leaves(a + 20, bytes(leaf[20:]), "mem://x.fidx")  # not a group's start
    with pytest.raises(FormatError):
        asm.fidx_bytes()  # records still missing


# -- the updater ------------------------------------------------------------------------------

BIG = "data/big.bin"


def _release(tmp: Path, name: str, body: bytes) -> Path:
    d = tmp / name
    (d / "data").mkdir(parents=True)
    (d / BIG).write_bytes(body)
    (d / "readme.txt").write_text(name)
    return d


def _update(install: Path, fetcher: object) -> Outcome:
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)  # type: ignore[arg-type]
    try:
        return up.update().outcome
    finally:
        up.close()


@pytest.fixture
def two_releases(tmp_path: Path) -> tuple[Path, Path, Path, Path, bytes, bytes]:
    """1.0.0 installed from ``repo``; 1.1.0 (one 40-byte edit in a 600 KB file) published."""
    old = _noise(600_000, 9)
    new = old[:300_000] + b"x" * 40 + old[300_040:]
    repo = tmp_path / "repo"
    v1, v2 = _release(tmp_path, "v1", old), _release(tmp_path, "v2", new)
    publish(v1, repo, "1.0.0", params=PARAMS)
    install = tmp_path / "install"
    assert _update(install, memory_fetcher(repo)) is Outcome.UPDATED
    publish(v2, repo, "1.1.0", params=PARAMS)
    return repo, install, v1, v2, old, new


def test_update_fetches_only_the_changed_groups_records(
        two_releases: tuple[Path, Path, Path, Path, bytes, bytes]) -> None:
    repo, install, _v1, v2, old, new = two_releases
    fetcher = memory_fetcher(repo)
    assert _update(install, fetcher) is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)
    fidx_url = f"{MEM}/stable/1.1.0/files/{BIG}.fidx"
    asked = [(u, rs) for u, rs in fetcher.requests if u.startswith(fidx_url)]
    # The table whole, then one ranged request for the .fidx: never the whole .fidx.
    assert asked[0] == (fidx_url + ".groups", None)
    assert len(asked) == 2 and asked[1][0] == fidx_url and asked[1][1] is not None
    # Exactly the records of the groups 1.0.0's index does not have.
    new_idx, old_idx = _index(new), _index(old)
    table = fg.build(new_idx)
    local = fg.LocalGroups.of([(old_idx.lengths, old_idx.ids)], table.target, table.maximum)
    want = fg.Assembly.start(table, local).leaf_ranges()
    assert list(asked[1][1]) == want
    fetched = sum(b - a for a, b in want)
    assert 0 < fetched <= 3 * 20 * table.maximum and fetched < len(encode(new_idx)) // 10
    # The assembled index went into the cache as the very .fidx the manifest names.
    cached = list((install / ".stitch" / "index").glob(f"{new_idx.sha256.hex()}-*"))
    assert [p.read_bytes() for p in cached] == [encode(new_idx)]


def _tamper_leaf(fetcher: object, new: bytes, old: bytes) -> None:
    """Change a record of a group the client will fetch, resealing the .fidx trailer (a
    server cannot reseal the manifest's digest)."""
    url = f"{MEM}/stable/1.1.0/files/{BIG}.fidx"
    files = fetcher.files  # type: ignore[attr-defined]
    new_idx, old_idx = _index(new), _index(old)
    table = fg.build(new_idx)
    asm = fg.Assembly.start(table, fg.LocalGroups.of([(old_idx.lengths, old_idx.ids)],
                                                     table.target, table.maximum))
    a, _ = asm.leaf_ranges()[0]
    body = bytearray(files[url][:-32])
    body[a + 10] ^= 0xFF
    files[url] = _resign(bytes(body))


def test_tampered_leaf_fails_and_keeps_the_old_release(
        two_releases: tuple[Path, Path, Path, Path, bytes, bytes]) -> None:
    repo, install, v1, _v2, old, new = two_releases
    fetcher = memory_fetcher(repo)
    _tamper_leaf(fetcher, new, old)
    with pytest.raises(HashMismatchError) as e:
        _update(install, fetcher)
    assert "index does not match the manifest" in str(e.value)
    assert tree_digest(install) == tree_digest(v1)
    # The bad leaf was refused, then the whole index fetched once more: also refused.
    assert (f"{MEM}/stable/1.1.0/files/{BIG}.fidx", None) in fetcher.requests


@pytest.mark.parametrize("what", ["table", "table-resealed"])
def test_tampered_table_is_not_used(
        two_releases: tuple[Path, Path, Path, Path, bytes, bytes], what: str) -> None:
    """A table that does not match the manifest is an optional file gone wrong: the whole
    .fidx (checked against the manifest) is fetched instead (core.engine.chunkplan's fallbacks)."""
    repo, install, _v1, v2, _old, _new = two_releases
    fetcher = memory_fetcher(repo)
    groups = f"{MEM}/stable/1.1.0/files/{BIG}.fidx.groups"
    data = bytearray(fetcher.files[groups])
    data[110] ^= 0xFF  # a group digest
    fetcher.files[groups] = _resign(bytes(data[:-32])) if what.endswith("resealed") \
        else bytes(data)
    assert _update(install, fetcher) is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)
    assert (f"{MEM}/stable/1.1.0/files/{BIG}.fidx", None) in fetcher.requests


def test_leaves_garbled_in_transit_fall_back_to_the_whole_index(
        two_releases: tuple[Path, Path, Path, Path, bytes, bytes]) -> None:
    repo, install, _v1, v2, _old, _new = two_releases
    fetcher = memory_fetcher(repo)
    real = fetcher.fetch_ranges

    def garble(url, ranges, sink, cancel=None):  # type: ignore[no-untyped-def]
        if url.endswith(".fidx"):
            return real(url, ranges, lambda o, d: sink(o, bytes(len(d))), cancel)
        return real(url, ranges, sink, cancel)

    fetcher.fetch_ranges = garble  # type: ignore[method-assign]
    assert _update(install, fetcher) is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)


def test_release_without_group_tables_still_updates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Releases published before group tables (or of small files) have a plain .fidx."""
    monkeypatch.setattr(fg, "MIN_CHUNKS", 10**9)
    old = _noise(300_000, 4)
    new = old[:1000] + b"edit" + old[1000:]
    repo = tmp_path / "repo"
    v1, v2 = _release(tmp_path, "v1", old), _release(tmp_path, "v2", new)
    publish(v1, repo, "1.0.0", params=PARAMS)
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", params=PARAMS)
    assert b"fidx_groups" not in (repo / "stable/1.1.0/release.json").read_bytes()
    fetcher = memory_fetcher(repo)
    assert _update(install, fetcher) is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v2)
    assert (f"{MEM}/stable/1.1.0/files/{BIG}.fidx", None) in fetcher.requests


def test_cold_install_fetches_no_table(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    v1 = _release(tmp_path, "v1", _noise(600_000, 3))
    publish(v1, repo, "1.0.0", params=PARAMS)
    assert (repo / "stable/1.0.0/files" / (BIG + ".fidx.groups")).is_file()
    fetcher = memory_fetcher(repo)
    assert _update(tmp_path / "install", fetcher) is Outcome.UPDATED
    assert not [u for u, _ in fetcher.requests if u.endswith(".groups")]
    assert tree_digest(tmp_path / "install") == tree_digest(v1)


def test_manifest_group_fields_come_in_pairs(
        two_releases: tuple[Path, Path, Path, Path, bytes, bytes]) -> None:
    from core.formats.manifest import encode_manifest, parse_manifest

    repo = two_releases[0]
    raw = (repo / "stable/1.1.0/release.json").read_bytes()
    m = parse_manifest(raw)
    big = m.by_path()[BIG]
    assert big.groups_size == len((repo / "stable/1.1.0/files" / (BIG + ".fidx.groups"))
                                  .read_bytes()) and len(big.groups_sha256) == 64
    assert m.by_path()["readme.txt"].groups_size == 0  # one chunk: no table
    assert parse_manifest(encode_manifest(m)).by_path()[BIG] == big
    with pytest.raises(FormatError):
        parse_manifest(raw.replace(b'"fidx_groups_sha256"', b'"fidx_groups_sha2"'))
