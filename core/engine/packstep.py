"""Small files from the release's pack (``core.formats.pack``): a source of file bytes.

A changed file the publisher packed (``FileEntry.pack``) is planned as a ``PackStep``: its
delta from the installed version when the pack holds it, else its whole content, one zstd
frame. The steps of every such file are run together (``fetch_packed``): their spans of the
one pack URL, adjacent ones merged (a gap costs less than another range), are fetched with
multi-range requests (``core.net``: many ranges per request, several requests side by
side), so an update of a thousand small files costs a handful of requests, not one or three
per file. Each entry is checked before anything is written: a delta by its SHA-256 from the
manifest, the file it rebuilds (or the decompressed content) by the file's SHA-256. An entry
that fails, or a pack the server does not have, hands its file to the next listed step (the
file's own delta, its index, the whole file: ``core.engine.updater`` lists them).

Cost: ``PackStep.size`` bytes on the wire, and the requests shared by every packed file.
Numpy-free (the start-up rule of docs/architecture.md).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ContentError, FormatError, HashMismatchError, HTTPStatusError, RangeError
from core.formats import delta as zdelta
from core.formats import pack
from core.formats.delta_small import decode_whole, read_old
from core.formats.manifest import Delta, FileEntry
from core.net.fetcher import Fetcher
from core.progress import CancelToken

# Spans closer than this are fetched as one range: a gap costs its bytes, another range
# its part headers (~100 bytes) and a share of a request (one of 32 ranges of a request
# worth a 50 ms round trip at 10 MB/s: core.chunks.planner.PlanOptions.range_cost).
GAP = 100 + 500_000 // 32
RANGES_PER_REQUEST = 32  # the fetcher's starting multi-range count (core.net.http.session)
# More ranges than RANGES_PER_REQUEST per this many bytes fetched: merge the smallest gaps
# too, bridging at most as many bytes as are needed, so requests follow bytes, not files.
BATCH = 1 << 20
# What says "the server does not have the pack" (or serves it wrong): use the next steps.
FALLBACK = (HTTPStatusError, RangeError)


@dataclass(frozen=True)
class PackStep:
    """Build the file from the release's pack at ``url``: ``size`` bytes at ``offset``,
    the publisher's ``delta`` of the installed file when given, else the file's content."""

    url: str
    offset: int
    size: int
    delta: Delta | None = None


def pack_step(entry: FileEntry, url: str, installed_delta: Delta | None) -> PackStep | None:
    """How ``entry`` is taken from the pack at ``url``: its delta from the installed file
    (``installed_delta``, when the client may apply it and the pack holds it), else its
    content; None when the file is not packed or zstd is missing here."""
    ref = entry.pack
    if not url or not pack.available():
        return None
    if ref is None:  # its deltas alone may be packed (a file rebuilt in memory: bounded)
        if installed_delta is None or entry.size > pack.MAX_DELTA_FILE:
            return None
        at = next((d.offset for d in entry.pack_deltas
                   if d.from_sha256 == installed_delta.from_sha256), None)
        return None if at is None else PackStep(url, at, installed_delta.size,
                                                installed_delta)
    if installed_delta is not None:
        at = ref.delta_offset(installed_delta.from_sha256)
        if at is not None:
            return PackStep(url, at, installed_delta.size, installed_delta)
    return PackStep(url, ref.offset, ref.size)


def merge_spans(spans: Sequence[tuple[int, int]], gap: int = GAP,
                per_request: int = RANGES_PER_REQUEST, batch: int = BATCH
                ) -> list[tuple[int, int]]:
    """Sorted, disjoint ``spans`` as the ranges to ask for: every gap up to ``gap`` bridged;
    then, while there are more than ``per_request`` ranges for each ``batch`` bytes needed,
    the smallest other gaps too, as long as the bridged bytes stay within the needed ones."""
    if not spans:
        return []
    need = sum(b - a for a, b in spans)
    limit = per_request * (1 + need // batch)
    gaps = [spans[k + 1][0] - spans[k][1] for k in range(len(spans) - 1)]
    join = [False] * len(gaps)
    ranges, bridged = len(spans), 0
    for k in sorted(range(len(gaps)), key=gaps.__getitem__):
        g = gaps[k]
        if g > gap and (ranges <= limit or bridged + g > need):
            break
        join[k] = True
        ranges -= 1
        bridged += g
    out = [spans[0]]
    for k, (a, b) in enumerate(spans[1:]):
        out[-1:] = [(out[-1][0], b)] if join[k] else [out[-1], (a, b)]
    return out


@dataclass
class PackJob:
    """One file to build from the pack: its entry, step, staged file and installed file."""

    entry: FileEntry
    step: PackStep
    write: Callable[[bytes | bytearray, int], None]  # the staged file's write_at
    installed: Path  # what a delta applies to
    # ``write`` reads back what it wrote and compares its SHA-256 with the manifest's
    # (``LaterFile.write_whole``), raising a ``ContentError``: the decode then hashes nothing
    # (one hash of each file, not two).
    checks: bool = False


class _Slot:
    """One span of the pack and the jobs its bytes build (identical files share one)."""

    def __init__(self, offset: int, size: int) -> None:
        self.offset, self.size = offset, size
        self.jobs: list[int] = []
        self.buf: bytearray | None = None
        self.filled = 0


def fetch_packed(jobs: Sequence[PackJob], fetcher: Fetcher, cancel: CancelToken,
                 on_bytes: Callable[[int], None], log: Callable[[str], None],
                 on_gap: Callable[[int], None] = lambda _n: None) -> list[bool]:
    """Build every job's file from the pack (see the module's docstring); per job, whether
    it was built (False: logged, the file's next listed step must). ``on_bytes`` counts the
bytes of the entries as they arrive, ``on_gap`` those of the gaps bridged. Raises what the fetch
    raises but the pack's absence (``FALLBACK``): a ``NetworkError``, ``CancelledError``."""
    ok = [False] * len(jobs)
    by_url: dict[str, list[int]] = {}
    for j, job in enumerate(jobs):
        by_url.setdefault(job.step.url, []).append(j)
    for url, js in by_url.items():
        built = _fetch_one_pack(url, [jobs[j] for j in js], fetcher, cancel, on_bytes,
                                on_gap, log)
        for j, b in zip(js, built, strict=True):
            ok[j] = b
    return ok


def _fetch_one_pack(url: str, jobs: Sequence[PackJob], fetcher: Fetcher, cancel: CancelToken,
                    on_bytes: Callable[[int], None], on_gap: Callable[[int], None],
                    log: Callable[[str], None]) -> list[bool]:
    ok = [False] * len(jobs)
    slots: dict[tuple[int, int], _Slot] = {}
    for j, job in enumerate(jobs):
        key = (job.step.offset, job.step.size)
        slots.setdefault(key, _Slot(*key)).jobs.append(j)
    spans = _disjoint(sorted(slots.values(), key=lambda s: s.offset))
    starts = [s.offset for s in spans]
    ranges = merge_spans([(s.offset, s.offset + s.size) for s in spans])
    got = 0
    decoder = pack.decoder()  # one for every content entry (thousands of small files)

    def finish(slot: _Slot) -> None:
        data, slot.buf = slot.buf, None
        assert data is not None
        for j in slot.jobs:
            job = jobs[j]
            try:
                out = _decode(job, data, decoder)
                job.write(out, 0)
            except (ContentError, OSError) as e:
                log(f"{job.entry.path}: not taken from the pack ({e}); trying the next step")
                continue
            ok[j] = True

    def sink(offset: int, data: bytes) -> None:
        nonlocal got
        got += len(data)
        end = offset + len(data)
        used = 0
        k = max(0, bisect.bisect_right(starts, offset) - 1)
        while k < len(spans) and spans[k].offset < end:
            s = spans[k]
            a, b = max(offset, s.offset), min(end, s.offset + s.size)
            if b > a:
                if s.buf is None:
                    s.buf = bytearray(s.size)
                s.buf[a - s.offset:b - s.offset] = data[a - offset:b - offset]
                s.filled += b - a
                used += b - a
                if s.filled == s.size:
                    finish(s)
            k += 1
        on_bytes(used)
        on_gap(len(data) - used)

    try:
        fetcher.fetch_ranges(url, ranges, sink, cancel)
    except FALLBACK as e:
        log(f"pack not used ({e}); the files it was to build take their next steps")
        return ok
    finally:
        for s in spans:
            s.buf = None
    need = sum(s.size for s in spans)
    log(f"{len(jobs)} small files from the pack: {got} bytes ({need} needed) in "
        f"{len(ranges)} ranges")
    return ok


def pack_ranges(steps: Sequence[PackStep]) -> dict[str, list[tuple[int, int]]]:
    """The ranges ``fetch_packed`` asks for to run ``steps``, by pack URL (what
    ``core.engine.packahead`` fetches ahead)."""
    by_url: dict[str, set[tuple[int, int]]] = {}
    for st in steps:
        by_url.setdefault(st.url, set()).add((st.offset, st.size))
    return {url: merge_spans([(s.offset, s.offset + s.size)
                              for s in _disjoint([_Slot(*k) for k in sorted(keys)])])
            for url, keys in by_url.items()}


def _disjoint(order: list[_Slot]) -> list[_Slot]:
    """``order`` (by offset) without the spans that overlap one before them (the manifest's
    check keeps entries disjoint; a plan made otherwise takes the first)."""
    spans: list[_Slot] = []
    for s in order:
        if not spans or s.offset >= spans[-1].offset + spans[-1].size:
            spans.append(s)
    return spans


def _decode(job: PackJob, data: bytearray, decoder: Any) -> bytes | bytearray:
    """The file's bytes from its pack entry, checked against the manifest (the file's own
    SHA-256 by the write instead when ``job.checks``)."""
    entry, d = job.entry, job.step.delta
    want = None if job.checks else entry.sha256
    if d is None:
        return pack.decode_content(data, entry.size, want, decoder)
    if hashlib.sha256(data).hexdigest() != d.sha256:
        raise HashMismatchError("packed delta does not match the manifest",
                                expected=d.sha256)
    old = read_old(job.installed)
    quick = decode_whole(old, data, entry.size) if old is not None else None
    if quick is not None:
        if want is not None and hashlib.sha256(quick).hexdigest() != want:
            raise FormatError("packed delta rebuilds another file", what="pack")
        return quick
    out = bytearray(entry.size)
    written = 0

    def write(piece: bytes | memoryview, offset: int) -> None:
        nonlocal written
        out[offset:offset + len(piece)] = piece
        written = max(written, offset + len(piece))

    stream = zdelta.open_decoder(job.installed, entry.size, write)
    try:
        stream.feed(bytes(data))
        stream.finish()
    finally:
        stream.close()
    if written != entry.size or (want is not None
                                 and hashlib.sha256(out).hexdigest() != want):
        raise FormatError("packed delta rebuilds another file", what="pack")
    return out
