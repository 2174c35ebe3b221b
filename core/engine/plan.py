"""The plan of an update as a frozen value: per file, the ordered steps that can build it.

A ``FileSteps`` lists, before anything is downloaded, every way its file may be built, in the
order they are tried: the first is the plan, the others its fallbacks. The assembler
(``core.engine.assemble``) runs the first; when a step cannot be used (a delta that does not match,
is missing or decodes wrong; an index the server does not have) it moves to the next listed
one. Nothing is planned again while the download runs, and the value never changes: its
``fingerprint()`` before and after an update is the same (its numpy arrays are made
read-only, so nothing can write them in place either).

The steps (a tagged union, ``Step``):

- ``DeltaStep``: the publisher's deltas from the installed file, decoded as they stream in:
  one (a direct delta) or a chain of them applied in sequence, each hop checked against the
  SHA-256 its release's manifest gives (``core.engine.deltasource`` runs it,
  ``core.engine.deltapath`` chooses it).
- ``ChunkStep``: local chunks copied, the others fetched as ranges (compressed from the
  ``.stz`` where there is one, raw over chunks replaced by sub-records), every chunk checked.
- ``IndexStep``: a ``ChunkStep`` whose index is fetched, and local chunks matched, only when
  the step runs (the fallback of a delta, whose file's index was not fetched to plan).
- ``WholeStep``: the whole file as one range, checked by its SHA-256 (no index to be had).
- ``StzWholeStep``: the file's compressed copy (``.stz``) fetched whole and the file rebuilt
  from it without its index, checked by its SHA-256 (nothing of it is here to match: a
  first install).
- ``PackStep`` (``core.engine.packstep``): a small file's delta or content from the release's
  pack, fetched together with the other packed files' in shared multi-range requests.

``UpdatePlan`` (what a player sees, ``core.engine.updater``) is computed from the first steps.
Importing this module is cheap: numpy is imported by the methods that need it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Union

from core.engine.packstep import PackStep
from core.formats.manifest import Delta, FileEntry

if TYPE_CHECKING:
    import numpy as np

    from core.chunks.fidx import FileIndex
    from core.chunks.planner import FilePlan
    from core.chunks.stz import StzTable


@dataclass(frozen=True)
class Hop:
    """One delta of a chain: ``delta`` (published in release ``version``, served at ``url``)
    rebuilds the file of ``size`` bytes and SHA-256 ``sha256`` (what that release's manifest
    says of the file) from the version whose SHA-256 is ``delta.from_sha256``."""

    version: str
    url: str
    delta: Delta
    sha256: str
    size: int


@dataclass(frozen=True)
class DeltaStep:
    """Rebuild the file from the installed one by the publisher's deltas ``hops``, applied
    in order (the first from the installed file, each next one from the one before's
    output; the last one's output is the file)."""

    hops: tuple[Hop, ...]

    def __post_init__(self) -> None:
        if not self.hops:
            raise ValueError("a delta step has at least one delta")

    @property
    def delta(self) -> Delta:
        """The last delta: the one that rebuilds this release's file."""
        return self.hops[-1].delta

    def wire_bytes(self) -> int:
        return sum(h.delta.size for h in self.hops)

    def scratch_bytes(self) -> int:
        """Staging space the chain's intermediate outputs take at most at once (a hop's
        input and output: the two largest)."""
        return sum(sorted(h.size for h in self.hops[:-1])[-2:])


@dataclass(frozen=True, eq=False)
class ChunkStep:
    """Build the file from chunks: ``plan`` (``core.chunks.planner``) over ``index``.

    ``stz``: the compressed copy's table, when one is used. ``whole``/``sub``: when ``index``
    is a mixed index (``core.chunks.fidx_sub``), the published index and its chunks replaced by
    sub-records (fetched raw). ``sha1``: a bupdate v1 target's full 20-byte chunk digests
    (``core.engine.sync``), checked instead of the xxh3-128 ids (v1 has no whole-file digest)."""

    index: FileIndex
    plan: FilePlan
    stz: StzTable | None = None
    whole: FileIndex | None = None
    sub: np.ndarray | None = None
    sha1: np.ndarray | None = None

    def __post_init__(self) -> None:
        for arr in _arrays(self):
            arr.setflags(write=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChunkStep) and fingerprint(self) == fingerprint(other)

    def __hash__(self) -> int:
        return hash(fingerprint(self))

    def wire_bytes(self) -> int:
        """Bytes the planned remote ranges take on the network (compressed when possible)."""
        from core.chunks.wire import wire_bytes

        ranges = [(int(a), int(b)) for a, b in self.plan.remote.tolist()]
        whole = self.index if self.whole is None else self.whole
        return wire_bytes(ranges, self.stz, whole.offsets(), self.sub)


@dataclass(frozen=True)
class IndexStep:
    """Fetch the file's index and match local chunks when this step runs, then build it as a
    ``ChunkStep`` would; unusable when the server does not have the index."""


@dataclass(frozen=True)
class WholeStep:
    """Download the whole file (one range), checked by its SHA-256."""


@dataclass(frozen=True)
class StzWholeStep:
    """Download the file's compressed copy (``.stz``, ``size`` bytes) whole and rebuild the
    file from it, checked by its SHA-256 (``core.chunks.stz.decode_whole``); unusable when
    the copy cannot be had or does not rebuild the file."""

    size: int


Step = Union[DeltaStep, ChunkStep, IndexStep, WholeStep, PackStep, StzWholeStep]  # noqa: UP007 (a runtime alias)


@dataclass(frozen=True)
class FileSteps:
    """One file of the update and the steps that may build it, in the order tried."""

    entry: FileEntry
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.steps or not isinstance(self.steps[-1], (ChunkStep, WholeStep)):
            # The last step must be one that cannot be "unusable": it builds, or it raises.
            raise ValueError(f"{self.entry.path}: a file plan ends with a chunk or "
                             "whole-file step")

    @property
    def first(self) -> Step:
        return self.steps[0]

    @property
    def chunks(self) -> ChunkStep | None:
        """The first step when it builds from chunks planned now."""
        return self.first if isinstance(self.first, ChunkStep) else None

    def wire_bytes(self) -> int:
        """Network bytes of the first step (its delta, its ranges, or the whole file)."""
        return step_wire_bytes(self.first, self.entry)

    def scratch_bytes(self) -> int:
        """Staging space the first step needs besides the file (a chain's intermediates)."""
        return self.first.scratch_bytes() if isinstance(self.first, DeltaStep) else 0

    def bytes_local(self) -> int:
        c = self.chunks
        return c.plan.bytes_local if c is not None else 0

    def requests(self, ranges_per_request: int) -> int:
        c = self.chunks
        if isinstance(self.first, PackStep):
            return 0  # shared with every packed file (a few requests in all)
        return c.plan.requests(ranges_per_request) if c is not None else 1


def step_wire_bytes(step: Step, entry: FileEntry) -> int:
    if isinstance(step, DeltaStep):
        return step.wire_bytes()
    if isinstance(step, ChunkStep):
        return step.wire_bytes()
    if isinstance(step, (PackStep, StzWholeStep)):
        return step.size
    return entry.size  # WholeStep; an IndexStep is at most the whole file


@dataclass(frozen=True)
class BuildPlan:
    """Every file an update (or a sync) builds, each with its steps."""

    files: tuple[FileSteps, ...]

    def fingerprint(self) -> str:
        """SHA-256 over every field, arrays by their bytes: equal before and after a run."""
        return fingerprint(self)


def _arrays(step: ChunkStep) -> list[np.ndarray]:
    out = [step.plan.remote, step.plan.copies]
    for idx in (step.index, step.whole):
        if idx is not None:
            out += [idx.lengths, idx.ids]
    if step.stz is not None:
        out += [step.stz.sizes, step.stz.raw, step.stz.offsets]
    out += [a for a in (step.sub, step.sha1) if a is not None]
    return out


def fingerprint(value: object) -> str:
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def _feed(h: hashlib._Hash, v: object) -> None:
    if is_dataclass(v) and not isinstance(v, type):
        h.update(f"<{type(v).__name__}".encode())
        for f in fields(v):
            h.update(f.name.encode())
            _feed(h, getattr(v, f.name))
        h.update(b">")
    elif isinstance(v, (tuple, list)):
        h.update(f"[{len(v)}".encode())
        for x in v:
            _feed(h, x)
        h.update(b"]")
    elif hasattr(v, "tobytes") and hasattr(v, "dtype"):  # a numpy array
        h.update(f"a{v.dtype.str}{getattr(v, 'shape', ())}".encode())
        h.update(v.tobytes())
    elif isinstance(v, dict):
        h.update(f"{{{len(v)}".encode())
        for k in sorted(v, key=repr):
            _feed(h, k)
            _feed(h, v[k])
        h.update(b"}")
    else:
        h.update(f"{type(v).__name__}:{v!r};".encode())
