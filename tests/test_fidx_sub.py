"""The sub-index (``NAME.fidx.sub``, docs/format.md §2.4): the worked example, the strict
table decoder, the ranges an update asks for (MemoryFetcher), tampered sub-indexes, plans
on mixed records, and clients further behind."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.chunks import fidx_sub as fs
from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.fidx import FileIndex, decode, encode
from core.chunks.planner import ZERO_SEED, SeedSet, plan_file
from core.chunks.wire import split_raw
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.errors import FormatError, HashMismatchError
from core.formats.manifest import parse_manifest
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, spec_example, tree_digest

EXAMPLE_PARAMS = ChunkerParams(256, 1024, 2048)
BIG = "big.bin"
SUB_URL = f"{MEM}/stable/1.1.0/files/{BIG}.fidx.sub"
FILE_URL = f"{MEM}/stable/1.1.0/files/{BIG}"


def _index(data: bytes, params: ChunkerParams) -> FileIndex:
    return FileIndex.from_chunks(params, chunk_bytes(data, params), hashlib.sha256(data).digest())


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    return lambda a, n: data[a:a + n]


def _orphans(old: bytes, old_idx: FileIndex, new_idx: FileIndex) -> SeedSet:
    """The sub-chunks of ``old``'s chunks that ``new_idx`` does not use."""
    gone = SeedSet.of_index("new", new_idx).lookup(old_idx.ids, old_idx.lengths) < 0
    offs, lens, ids, _ = fs.cut_chunks(_reader(old), old_idx.offsets()[:-1][gone],
                                       old_idx.lengths[gone])
    return SeedSet.build([("old", offs, lens, ids)])


def _sub_index(old: bytes, new: bytes, params: ChunkerParams
               ) -> tuple[FileIndex, FileIndex, bytes, bytes] | None:
    """What the publisher writes for ``new`` after ``old``: (old index, new index, .fidx of
    new, .fidx.sub of new), or None when no chunk is covered."""
    old_idx, new_idx = _index(old, params), _index(new, params)
    fidx = encode(new_idx)
    new_mask = SeedSet.of_index("old", old_idx).lookup(new_idx.ids, new_idx.lengths) < 0
    made = fs.build(_reader(new), new_idx, hashlib.sha256(fidx).digest(), new_mask,
                    _orphans(old, old_idx, new_idx))
    if made is None:
        return None
    return old_idx, new_idx, fidx, fs.encode(*made)


def _example_from_spec() -> bytes:
    return spec_example("worked-example-sub")


def _example() -> tuple[bytes, bytes]:
    old = b"".join(b"%d\n" % x for x in range(600))
    return old, old[:1000] + b"EDIT" + old[1004:]


# -- the format ---------------------------------------------------------------------------------

def test_worked_example_matches_the_spec_byte_for_byte() -> None:
    old, new = _example()
    made = _sub_index(old, new, EXAMPLE_PARAMS)
    assert made is not None
    _old_idx, new_idx, fidx, data = made
    spec = _example_from_spec()
    assert data == spec
    table = fs.decode_table(spec[:64 + 28], new_idx, hashlib.sha256(fidx).digest(), len(spec))
    assert table.chunks.tolist() == [0] and table.counts.tolist() == [4]
    assert table.params == fs.SUB_PARAMS and table.size == len(spec) == 172
    # The records are the new chunk 0 cut again from its first byte, and add up to it.
    sub = chunk_bytes(new[:2048], fs.SUB_PARAMS)
    assert sub.lengths.tolist() == [166, 832, 602, 448]
    assert spec[92:] == b"".join(struct.pack(">I", n) + bytes(i)
                                 for n, i in zip(sub.lengths.tolist(), sub.ids, strict=True))
    assert bytes(table.digests[0]) == hashlib.sha256(spec[92:]).digest()[:16]


def _table_of(data: bytes) -> bytes:
    k = struct.unpack_from(">Q", data, 56)[0]
    return data[:64 + 28 * k]


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


@pytest.mark.parametrize("change, size_delta, why", [
    (lambda t: b"FIDX" + t[4:], 0, "bad magic"),
    (lambda t: _patch(t, 4, ">I", 2), 0, "version"),
    (lambda t: t[:8] + bytes(32) + t[40:], 0, "another index"),
    (lambda t: _patch(t, 44, ">I", 500), 0, "sub-chunker"),
    (lambda t: _patch(t, 48, ">I", 4096), 0, "larger than the index"),
    (lambda t: _patch(t, 56, ">Q", 2), 0, "does not fit"),
    (lambda t: t[:-1], 0, "does not fit"),
    (lambda t: _patch(t, 64, ">Q", 2), 0, "out of order or range"),
    (lambda t: _patch(t, 72, ">I", 1), -60, "record count"),
    (lambda t: _patch(t, 72, ">I", 99), 20 * 95, "record count"),
    (lambda t: t, 20, "size"),
])
def test_table_decoder_rejects_bad_tables(change, size_delta: int, why: str) -> None:  # type: ignore[no-untyped-def]
    old, new = _example()
    made = _sub_index(old, new, EXAMPLE_PARAMS)
    assert made is not None
    _o, new_idx, fidx, data = made
    table = change(_table_of(data))
    with pytest.raises(FormatError, match=why):
        fs.decode_table(table, new_idx, hashlib.sha256(fidx).digest(), len(data) + size_delta)


def test_records_that_do_not_match_their_digest_or_chunk_are_refused() -> None:
    old, new = _example()
    made = _sub_index(old, new, EXAMPLE_PARAMS)
    assert made is not None
    _o, new_idx, fidx, data = made
    table = fs.decode_table(_table_of(data), new_idx, hashlib.sha256(fidx).digest(), len(data))
    entries = np.array([0])
    (a, b), = fs.record_ranges(table, entries)
    assert (a, b) == (92, 172)
    good = fs.take_records(table, new_idx, entries, {a: data[a:b]}, "u")
    assert good.lengths.tolist() == [166, 832, 602, 448]
    bad = bytearray(data[a:b])
    bad[30] ^= 1
    with pytest.raises(HashMismatchError):
        fs.take_records(table, new_idx, entries, {a: bytes(bad)}, "u")
    with pytest.raises(FormatError):
        fs.take_records(table, new_idx, entries, {a: data[a:b - 20]}, "u")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1),
       edits=st.lists(st.tuples(st.integers(0, 59_000), st.integers(0, 300),
                                st.binary(min_size=0, max_size=300)), min_size=1, max_size=12))
def test_plans_with_sub_chunks_rebuild_the_target_exactly(
        seed: int, edits: list[tuple[int, int, bytes]]) -> None:
    """Publisher and client sides together, in memory: whatever the edits, the plan on the
    mixed records copies and downloads exactly the new file, every record matching its id."""
    params = ChunkerParams(256, 1024, 4096)
    rng = np.random.default_rng(seed)
    old = rng.integers(0, 256, 60_000, dtype=np.uint8).tobytes()
    new = old
    for pos, cut, ins in sorted(edits, reverse=True):
        pos = min(pos, len(new))
        new = new[:pos] + ins + new[pos + cut:]
    made = _sub_index(old, new, params)
    new_idx = _index(new, params)
    old_idx = _index(old, params)
    seeds_list = [("old", old_idx.offsets()[:-1], old_idx.lengths, old_idx.ids)]
    target = new_idx
    if made is not None:
        _o, new_idx, fidx, data = made
        table = fs.decode_table(_table_of(data), new_idx, hashlib.sha256(fidx).digest(),
                                len(data))
        entries = np.arange(len(table))
        fetched = {a: data[a:b] for a, b in fs.record_ranges(table, entries)}
        recs = fs.take_records(table, new_idx, entries, fetched, "u")
        use = np.asarray(rng.integers(0, 2, len(recs.chunks)), dtype=bool)
        target = fs.mix(new_idx, recs, use).index
        used = SeedSet.of_index("new", new_idx)
        gone = used.lookup(old_idx.ids, old_idx.lengths) < 0
        offs, lens, ids, _ = fs.cut_chunks(_reader(old), old_idx.offsets()[:-1][gone],
                                           old_idx.lengths[gone])
        seeds_list.append(("old", offs, lens, ids))
    assert int(target.lengths.sum(dtype=np.uint64)) == len(new)
    plan = plan_file(target, SeedSet.build(seeds_list))
    out = bytearray(len(new))
    for toff, seed, soff, length in plan.copies.tolist():
        if plan.seed_names[seed] != ZERO_SEED:
            out[toff:toff + length] = old[soff:soff + length]
    for a, b in plan.remote.tolist():
        out[a:b] = new[a:b]
    assert bytes(out) == new
    offsets = target.offsets().tolist()
    for k in range(len(target)):
        assert xxhash.xxh3_128_digest(new[offsets[k]:offsets[k + 1]]) == bytes(target.ids[k])


# -- the updater ------------------------------------------------------------------------------

def _noise(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _text(n: int, seed: int) -> bytes:
    """Compressible bytes (words from a small vocabulary), so --compress writes a .stz."""
    rng = np.random.default_rng(seed)
    words = [bytes(rng.integers(97, 123, int(rng.integers(2, 9)), dtype=np.uint8)) + b" "
             for _ in range(500)]
    out = b"".join(words[int(i)] for i in rng.integers(0, 500, n // 3))
    return out[:n]


def _patched(data: bytes, seed: int, count: int = 30) -> bytes:
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for pos in rng.integers(0, len(data) - 4, count).tolist():
        out[pos:pos + 4] = b"EDIT"
    return bytes(out)


def _release(tmp: Path, name: str, body: bytes) -> Path:
    d = tmp / name
    d.mkdir(parents=True)
    (d / BIG).write_bytes(body)
    (d / "readme.txt").write_text(name)
    return d


def _update(install: Path, fetcher: object, log: list[str] | None = None) -> int:
    up = Updater(UpdaterConfig(url=MEM, install_dir=install), fetcher=fetcher)  # type: ignore[arg-type]
    if log is not None:
        up.meter.log = log.append  # type: ignore[method-assign]
    try:
        result = up.update()
        assert result.outcome is Outcome.UPDATED
        return result.bytes_downloaded
    finally:
        up.close()


def _file_bytes(fetcher: object, url: str) -> int:
    return sum(b - a for u, rs in fetcher.requests if u == url and rs  # type: ignore[attr-defined]
               for a, b in rs)


def _setup(tmp: Path, old: bytes, new: bytes, subchunks: bool, compress: bool = False
           ) -> tuple[Path, Path, Path]:
    repo = tmp / "repo"
    v1, v2 = _release(tmp, "v1", old), _release(tmp, "v2", new)
    publish(v1, repo, "1.0.0", compress=compress)
    install = tmp / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", compress=compress, subchunks=subchunks)
    return repo, install, v2


def test_update_fetches_sub_records_and_fewer_file_bytes(tmp_path: Path) -> None:
    old = _noise(1_000_000, 1)
    new = _patched(old, 2)
    got = {}
    for sub in (False, True):
        repo, install, v2 = _setup(tmp_path / str(sub), old, new, sub)
        fetcher = memory_fetcher(repo)
        total = _update(install, fetcher)
        assert tree_digest(install) == tree_digest(v2)
        got[sub] = (total, _file_bytes(fetcher, FILE_URL), fetcher)
    assert SUB_URL not in {u for u, _ in got[False][2].requests}
    fetcher = got[True][2]
    asked = [rs for u, rs in fetcher.requests if u == SUB_URL]
    man = parse_manifest(fetcher.files[f"{MEM}/stable/1.1.0/release.json"])
    entry = man.by_path()[BIG]
    data = fetcher.files[SUB_URL]
    assert entry.sub_size == len(data)
    # The table first, then the records of the chunks the install misses, in one request.
    assert asked[0] == ((0, entry.sub_table_size),)
    assert len(asked) == 2
    new_idx = _index(new, ChunkerParams(1024, 4096, 16384))
    table = fs.decode_table(data[:entry.sub_table_size], new_idx,
                            bytes.fromhex(entry.fidx_sha256), len(data))
    old_idx = _index(old, ChunkerParams(1024, 4096, 16384))
    missing = SeedSet.of_index("old", old_idx).lookup(new_idx.ids, new_idx.lengths) < 0
    entries = np.flatnonzero(missing[table.chunks.astype(np.int64)])
    assert list(asked[1]) == fs.record_ranges(table, entries)
    # 30 four-byte edits: whole chunks (and the gaps the planner bridges) cost far more.
    assert got[True][1] * 3 < got[False][1]
    assert got[True][0] < got[False][0]


def test_compressed_copy_and_sub_chunks_together(tmp_path: Path) -> None:
    old = _text(600_000, 3)
    new = _patched(old, 4, 20)
    log: list[str] = []
    repo, install, v2 = _setup(tmp_path, old, new, True, compress=True)
    fetcher = memory_fetcher(repo)
    _update(install, fetcher, log)
    assert tree_digest(install) == tree_digest(v2)
    urls = {u for u, _ in fetcher.requests}
    assert SUB_URL in urls
    assert any("as sub-chunks" in m for m in log), log
    # Sub-chunked chunks come raw from the file, each range inside a covered chunk; whole
    # chunks from the .stz.
    man = parse_manifest(fetcher.files[f"{MEM}/stable/1.1.0/release.json"])
    entry = man.by_path()[BIG]
    new_idx = decode(fetcher.files[FILE_URL + ".fidx"])
    data = fetcher.files[SUB_URL]
    table = fs.decode_table(data[:entry.sub_table_size], new_idx,
                            bytes.fromhex(entry.fidx_sha256), len(data))
    offsets = new_idx.offsets()
    covered: list[tuple[int, int]] = []  # runs of adjacent covered chunks
    for c in table.chunks.tolist():
        a, b = int(offsets[c]), int(offsets[c + 1])
        if covered and covered[-1][1] == a:
            covered[-1] = (covered[-1][0], b)
        else:
            covered.append((a, b))
    raw = [r for u, rs in fetcher.requests if u == FILE_URL and rs for r in rs]
    assert raw and all(any(a <= x and y <= b for a, b in covered) for x, y in raw)
    assert _file_bytes(fetcher, FILE_URL + ".stz") > 0


def test_split_raw_cuts_ranges_at_sub_chunked_chunks() -> None:
    offsets = np.array([0, 100, 200, 300, 400], dtype=np.uint64)
    sub = np.array([False, True, True, False])
    assert split_raw([(0, 400)], offsets, None) == ([(0, 400)], [])
    assert split_raw([(0, 400)], offsets, sub) == ([(0, 100), (300, 400)], [(100, 300)])
    assert split_raw([(150, 180), (250, 350)], offsets, sub) == ([(300, 350)],
                                                                 [(150, 180), (250, 300)])


@pytest.mark.parametrize("what", ["table", "records", "file-bytes"])
def test_tampered_sub_index_is_not_used(tmp_path: Path, what: str) -> None:
    old = _noise(400_000, 5)
    new = _patched(old, 6, 10)
    repo, install, v2 = _setup(tmp_path, old, new, True)
    fetcher = memory_fetcher(repo)
    data = bytearray(fetcher.files[SUB_URL])
    k = struct.unpack_from(">Q", data, 56)[0]
    log: list[str] = []
    if what == "table":
        data[64 + 20] ^= 1  # a digest: the table no longer matches the manifest
    elif what == "records":
        data[64 + 28 * k + 10] ^= 1  # an id of the first covered chunk's records
    fetcher.files[SUB_URL] = bytes(data)
    if what == "file-bytes":
        # Bytes of a sub-chunk arrive wrong both times: the update fails, the old release
        # stays, nothing of the new one is installed.
        real = fetcher.fetch_ranges

        def garble(url, ranges, sink, cancel=None):  # type: ignore[no-untyped-def]
            if url == FILE_URL:
                return real(url, ranges, lambda o, d: sink(o, bytes(len(d))), cancel)
            return real(url, ranges, sink, cancel)

        fetcher.fetch_ranges = garble  # type: ignore[method-assign]
        with pytest.raises(HashMismatchError):
            _update(install, fetcher, log)
        assert tree_digest(install) == tree_digest(tmp_path / "v1")
        return
    _update(install, fetcher, log)
    assert tree_digest(install) == tree_digest(v2)
    assert any("sub-index not used" in m for m in log), log


def test_client_two_versions_behind(tmp_path: Path) -> None:
    v1 = _noise(500_000, 7)
    v2 = _patched(v1, 8, 10)
    v3 = _patched(v2, 9, 10)
    repo = tmp_path / "repo"
    publish(_release(tmp_path, "v1", v1), repo, "1.0.0")
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(_release(tmp_path, "v2", v2), repo, "1.1.0", subchunks=True)
    publish(_release(tmp_path, "v3", v3), repo, "1.2.0", subchunks=True)
    fetcher = memory_fetcher(repo)
    _update(install, fetcher)
    assert tree_digest(install) == tree_digest(tmp_path / "v3")
    assert f"{MEM}/stable/1.2.0/files/{BIG}.fidx.sub" in {u for u, _ in fetcher.requests}


def test_publisher_writes_sub_indexes_only_when_asked_and_useful(tmp_path: Path) -> None:
    old = _noise(300_000, 10)
    repo = tmp_path / "repo"
    publish(_release(tmp_path, "v1", old), repo, "1.0.0", subchunks=True)  # no previous
    publish(_release(tmp_path, "v2", _patched(old, 11, 5)), repo, "1.1.0")  # not asked
    publish(_release(tmp_path, "v3", _patched(old, 12, 5)), repo, "1.2.0", subchunks=True)
    publish(_release(tmp_path, "v4", _noise(300_000, 13)), repo, "1.3.0", subchunks=True)
    subs = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.fidx.sub"))
    # v3 has one (small edits); v4 is all new bytes: nothing of v3 to find in it.
    assert subs == [f"stable/1.2.0/files/{BIG}.fidx.sub"]
    man = parse_manifest((repo / "stable/1.2.0/release.json").read_bytes())
    e = man.by_path()[BIG]
    data = (repo / "stable/1.2.0/files" / (BIG + ".fidx.sub")).read_bytes()
    assert e.sub_size == len(data)
    assert e.sub_table_sha256 == hashlib.sha256(data[:e.sub_table_size]).hexdigest()
    assert man.by_path()["readme.txt"].sub_size == 0


@pytest.mark.parametrize("fields", [
    {"fidx_sub_size": 100},
    {"fidx_sub_size": 100, "fidx_sub_table_size": 64},
    {"fidx_sub_size": 100, "fidx_sub_table_size": 200, "fidx_sub_table_sha256": "0" * 64},
    {"fidx_sub_size": 100, "fidx_sub_table_size": 0, "fidx_sub_table_sha256": "0" * 64},
])
def test_manifest_sub_fields_come_together_and_in_range(fields: dict[str, object]) -> None:
    import json

    from core.formats.manifest import MANIFEST_FORMAT
    entry = {"path": "a", "size": 1, "sha256": "0" * 64, "fidx_sha256": "0" * 64,
             "fidx_size": 1, **fields}
    raw = json.dumps({"format": MANIFEST_FORMAT, "product": "p", "channel": "stable",
                      "version": "1", "created": "2026-01-01T00:00:00Z", "files": [entry]})
    with pytest.raises(FormatError):
        parse_manifest(raw.encode())


def test_orphans_come_only_from_files_the_update_changes(tmp_path: Path) -> None:
    params = ChunkerParams(256, 1024, 4096)
    old, other = _noise(50_000, 14), _noise(50_000, 15)
    new = _patched(old, 16, 3)
    seeds = {}
    for name, body in (("old", old), ("other", other)):
        (tmp_path / name).write_bytes(body)
        idx = _index(body, params)
        seeds[name] = (str(tmp_path / name), idx.offsets()[:-1], idx.lengths, idx.ids)
    targets = {"f": _index(new, params)}
    keep = frozenset({seeds["other"][0]})
    subs = fs.OrphanSubChunks({params: list(seeds.values())}, targets, None, keep)
    got = subs.get(params, fs.SUB_PARAMS)
    assert got is not None and set(got.names) == {seeds["old"][0]}
    # Every orphan byte of the changed file was cut, nothing of the kept one.
    gone = SeedSet.of_index("f", targets["f"]).lookup(seeds["old"][3], seeds["old"][2]) < 0
    assert int(got.length.sum(dtype=np.uint64)) == int(seeds["old"][2][gone].sum())
    assert subs.orphan_bytes(params) == int(seeds["old"][2][gone].sum())
    # The combined set holds the local chunks of both files and the orphans' sub-chunks.
    assert len(subs.combined(params)) == len(got) + sum(len(s[2]) for s in seeds.values())
    assert fs.OrphanSubChunks({params: [seeds["other"]]}, targets, None, keep).get(
        params, fs.SUB_PARAMS) is None


def test_sub_index_is_skipped_when_cutting_orphans_costs_more_than_it_may_save(
        tmp_path: Path) -> None:
    """Three small edits promise a few chunks' worth of bytes; a replaced 4 MB pack leaves
    4 MB of orphans to cut again. The client reads the sub-index table, weighs the two at
    the cost model's rates (``chunkplan.CUT_RATE``, ``NET_RATE``) and builds from chunks."""
    old = _noise(1_000_000, 21)
    new = _patched(old, 22, 3)
    repo = tmp_path / "repo"
    v1, v2 = _release(tmp_path, "v1", old), _release(tmp_path, "v2", new)
    (v1 / "pack.bin").write_bytes(_noise(4 << 20, 23))
    (v2 / "pack.bin").write_bytes(_noise(4 << 20, 24))
    publish(v1, repo, "1.0.0")
    install = tmp_path / "install"
    _update(install, memory_fetcher(repo))
    publish(v2, repo, "1.1.0", subchunks=True)
    fetcher = memory_fetcher(repo)
    log: list[str] = []
    _update(install, fetcher, log)
    assert tree_digest(install) == tree_digest(v2)
    entry = parse_manifest(fetcher.files[f"{MEM}/stable/1.1.0/release.json"]).by_path()[BIG]
    assert entry.sub_size > 0  # published: it pays for a player without the pack's orphans
    assert len([u for u, _ in fetcher.requests if u == SUB_URL]) == 1  # read, then weighed
    assert any(f"{BIG}: sub-index not used: cutting" in line for line in log)
    assert not any("as sub-chunks" in line for line in log)
