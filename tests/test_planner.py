"""The planner: plans always rebuild the target exactly; coalescing follows its cost model."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chunks.chunker import ChunkerParams, chunk_bytes
from core.chunks.fidx import FileIndex
from core.chunks.planner import ZERO_SEED, PlanOptions, SeedSet, plan_file

P = ChunkerParams(64, 256, 1024)


def _index(data: bytes) -> FileIndex:
    return FileIndex.from_chunks(P, chunk_bytes(data, P), hashlib.sha256(data).digest())


def _seeds(files: dict[str, bytes]) -> SeedSet:
    items = []
    for name, data in files.items():
        idx = _index(data)
        items.append((name, idx.offsets()[:-1], idx.lengths, idx.ids))
    return SeedSet.build(items)


def _execute(plan, target: bytes, files: dict[str, bytes]) -> bytes:  # type: ignore[no-untyped-def]
    out = bytearray(len(target))
    covered = np.zeros(len(target), dtype=np.int8)
    for a, b in plan.remote.tolist():
        out[a:b] = target[a:b]
        covered[a:b] += 1
    for toff, seed, soff, length in plan.copies.tolist():
        if plan.seed_names[seed] == ZERO_SEED:
            assert soff == toff
            covered[toff:toff + length] += 1  # out is zeros already, like a new staged file
            continue
        src = files[plan.seed_names[seed]]
        out[toff:toff + length] = src[soff:soff + length]
        covered[toff:toff + length] += 1
    assert (covered == 1).all(), "every byte comes from exactly one place"
    return bytes(out)


def _mutate(rng: random.Random, data: bytes, edits: int) -> bytes:
    out = bytearray(data)
    for _ in range(edits):
        kind = rng.randrange(3)
        at = rng.randrange(len(out) + 1)
        n = rng.randrange(1, 3000)
        if kind == 0:
            out[at:at] = rng.randbytes(n)
        elif kind == 1:
            del out[at:at + n]
        else:
            out[at:at + n] = rng.randbytes(min(n, len(out) - at))
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), edits=st.integers(0, 12), size=st.integers(0, 60_000),
       cost=st.sampled_from([0, 100, 5000, 10**9]), cap=st.sampled_from([1, 4, 1000]))
def test_plan_reconstructs_target_exactly(seed: int, edits: int, size: int, cost: int,
                                          cap: int) -> None:
    rng = random.Random(seed)
    old = rng.randbytes(size)
    other = rng.randbytes(rng.randrange(0, 20_000))
    target = _mutate(rng, old + other[: len(other) // 2], edits)
    files = {"old": old, "other": other}
    plan = plan_file(_index(target), _seeds(files),
                     PlanOptions(range_cost=cost, ranges_per_request=cap, max_requests=2))
    assert _execute(plan, target, files) == target
    assert plan.bytes_remote + plan.bytes_local == len(target)
    ranges = plan.remote.tolist()
    assert ranges == sorted(ranges)
    assert all(a < b for a, b in ranges)
    assert all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))


def test_unchanged_file_needs_no_download() -> None:
    data = os.urandom(100_000)
    plan = plan_file(_index(data), _seeds({"f": data}))
    assert plan.bytes_remote == 0 and len(plan.copies) == 1  # one contiguous copy


def test_empty_seeds_means_one_range() -> None:
    data = os.urandom(50_000)
    plan = plan_file(_index(data), _seeds({}))
    assert plan.remote.tolist() == [[0, 50_000]] and len(plan.copies) == 0


def test_renamed_and_shared_content_found_across_files() -> None:
    rng = random.Random(11)
    a, b = rng.randbytes(30_000), rng.randbytes(30_000)
    target = b + a  # both halves exist, in two different local files
    plan = plan_file(_index(target), _seeds({"x/a": a, "y/b": b}))
    # Only around the join: b's last chunk (cut short by b's end) and the chunks of the
    # target until its cut points meet a's again; a few max-size chunks at most.
    assert 0 < plan.bytes_remote <= 4 * P.max_size
    assert {plan.seed_names[int(s)] for s in plan.copies[:, 1]} == {"x/a", "y/b"}


def test_small_gaps_are_bridged_by_cost_not_large_ones() -> None:
    rng = random.Random(5)
    old = rng.randbytes(200_000)
    target = bytearray(old)
    for at in (20_000, 22_000, 150_000):  # two edits close together, one far away
        target[at:at + 10] = rng.randbytes(10)
    idx = _index(bytes(target))
    exact = plan_file(idx, _seeds({"old": old}), PlanOptions(range_cost=0))
    bridged = plan_file(idx, _seeds({"old": old}), PlanOptions(range_cost=3000))
    assert len(exact.remote) == 3
    assert len(bridged.remote) == 2  # the 2 KB gap costs less than a range; 128 KB does not
    assert bridged.bytes_remote > exact.bytes_remote


def test_request_cap_merges_smallest_gaps_within_overfetch_budget() -> None:
    rng = random.Random(9)
    old = rng.randbytes(2_000_000)
    target = bytearray(old)
    for at in range(10_000, 1_990_000, 5_000):  # ~400 scattered small changes
        target[at:at + 4] = rng.randbytes(4)
    idx = _index(bytes(target))
    opts = PlanOptions(range_cost=0, ranges_per_request=8, max_requests=5)
    plan = plan_file(idx, _seeds({"old": old}), opts)
    exact = plan_file(idx, _seeds({"old": old}), PlanOptions(range_cost=0))
    assert len(exact.remote) > 40
    assert plan.requests(opts.ranges_per_request) < exact.requests(opts.ranges_per_request)
    assert plan.bytes_remote <= 1.5 * exact.bytes_remote + 1
    assert _execute(plan, bytes(target), {"old": old}) == bytes(target)


def test_zero_runs_need_no_source_and_no_download() -> None:
    rng = random.Random(11)
    target = rng.randbytes(3000) + bytes(200_000) + rng.randbytes(3000) + bytes(50_000)
    plan = plan_file(_index(target), _seeds({}))
    assert _execute(plan, target, {}) == target
    assert plan.bytes_remote < 10_000  # the two random islands (plus chunk edges)
    zero_runs = [r for r in plan.copies.tolist() if plan.seed_names[r[1]] == ZERO_SEED]
    assert 1 <= len(zero_runs) <= 2  # contiguous zero chunks merge into one run each
    assert sum(r[3] for r in zero_runs) > 240_000
