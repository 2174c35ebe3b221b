"""Building a file too big to hold its index: the step and the staged file of a big file.

A ``BigChunkStep`` is a ``ChunkStep`` whose records stay on disk (``disk``: a checked
``core.chunks.diskindex.DiskIndex``; ``index`` holds the header fields only, no records) and
whose plan was made window by window (``core.chunks.windowplan``): a frozen value like any
step, fingerprinted by the index's digest and its marks. ``BigStagedFile`` runs it as
``core.engine.rebuild.StagedFile`` runs any plan (every copied chunk re-hashed, every
fetched one checked against its id), but a batch at a time: the copy runs and remote ranges
are cut into batches of at most ``WINDOW`` chunks, and each batch is run by a view of the
staged file that holds the offsets and ids of the batch's chunks only. So memory is bounded
by the window, whatever the file's size; raw ranges only (no ``.stz``, no sub-index).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.chunks import diskindex
from core.chunks.diskindex import DiskIndex
from core.chunks.fidx import FileIndex
from core.chunks.planner import FilePlan
from core.engine.pieces import Job, run_jobs
from core.engine.plan import ChunkStep
from core.engine.rebuild import StagedFile, _merge
from core.net.fetcher import Fetcher
from core.progress import CancelToken


@dataclass(frozen=True, eq=False)
class BigChunkStep(ChunkStep):
    """A ``ChunkStep`` over an index on disk (``disk``); ``index`` has no records."""

    disk: DiskIndex | None = None


def header_only(disk: DiskIndex) -> FileIndex:
    """The ``index`` of a ``BigChunkStep``: ``disk``'s header fields, no records."""
    return FileIndex(disk.params, disk.file_size, disk.sha256, np.zeros(0, np.uint32),
                     np.zeros((0, 16), np.uint8))


class BigStagedFile(StagedFile):
    """A ``StagedFile`` for a ``BigChunkStep``: runs its plan a batch of chunks at a time."""

    def __init__(self, path: Path, step: BigChunkStep, window: int = 0) -> None:
        super().__init__(path, step.index, step.plan)
        assert step.disk is not None
        self.disk = step.disk
        self.window = window or diskindex.WINDOW

    def _view(self, spans: list[tuple[int, int]]) -> StagedFile:
        """This file seen through the chunks of ``spans`` (chunk numbers [i, j), sorted,
        disjoint, not touching) only: their offsets and ids, and between two spans a
        stand-in chunk (never copied nor fetched). It shares the descriptor, the lock,
        ``written`` and ``retry_ranges``."""
        offs, lengths, ids = [], [], []
        for n, (i, j) in enumerate(spans):
            ln, d = self.disk.records(i, j)
            if n + 1 < len(spans):  # the gap up to the next span: one stand-in chunk
                ln = np.append(ln, np.uint32(0))
                d = np.concatenate([d, np.zeros((1, 16), np.uint8)])
            offs.append(self.disk.offsets(i, j))  # the span's starts and its end
            lengths.append(ln)
            ids.append(d)
        view = copy.copy(self)
        view.offsets = view.whole_offsets = np.concatenate(offs)
        view.index = view.whole = FileIndex(self.disk.params, self.disk.file_size,
                                            self.disk.sha256, np.concatenate(lengths),
                                            np.concatenate(ids))
        return view

    def _batches(self, rows: list[tuple[int, int]]
                 ) -> Iterator[tuple[list[tuple[int, int, int]], list[tuple[int, int]]]]:
        """Byte ranges ``rows`` (sorted, disjoint, at chunk boundaries) cut at window
        boundaries and grouped, at most ``window`` chunks a batch: the pieces
        ``(a, b, row number)`` and their chunk spans."""
        pieces: list[tuple[int, int, int]] = []
        spans: list[tuple[int, int]] = []
        held = 0
        for r, (a, b) in enumerate(rows):
            i, j = self.disk.chunk_at(a), self.disk.chunk_at(b)
            while i < j:
                e = min(j, (i // self.window + 1) * self.window)
                if held and held + (e - i) > self.window:
                    yield pieces, spans
                    pieces, spans, held = [], [], 0
                end = b if e == j else int(self.disk.offsets(e, e)[0])
                pieces.append((a, end, r))
                if spans and spans[-1][1] == i:
                    spans[-1] = (spans[-1][0], e)
                else:
                    spans.append((i, e))
                held += e - i
                a, i = end, e
        if pieces:
            yield pieces, spans

    def copy_local(self, open_seed: Callable[[int], int], cancel: CancelToken,
                   on_bytes: Callable[[int], None]) -> None:
        """``StagedFile.copy_local``, a batch of chunks at a time."""
        rows = self.plan.copies.tolist()
        for pieces, spans in self._batches([(r[0], r[0] + r[3]) for r in rows]):
            cancel.check()
            part = [(a, rows[r][1], rows[r][2] + (a - rows[r][0]), b - a)
                    for a, b, r in pieces]
            view = self._view(spans)
            view.plan = FilePlan(self.plan.size, np.zeros((0, 2), np.uint64),
                                 np.array(part, dtype=np.uint64).reshape(-1, 4),
                                 self.plan.seed_names)
            StagedFile.copy_local(view, open_seed, cancel, on_bytes)

    def download(self, fetcher: Fetcher, url: str, cancel: CancelToken,
                 on_bytes: Callable[[int], None], stz_url: str = "",
                 ahead: bool = False, workers: int = 1) -> None:
        """``StagedFile.download`` (raw ranges), a batch of chunks at a time, up to
        ``workers`` batches side by side."""
        run_jobs(self.download_jobs(fetcher, url, on_bytes, stz_url, ahead), workers, cancel)
        if ahead:
            self.fetched_ahead = True

    def download_jobs(self, fetcher: Fetcher, url: str, on_bytes: Callable[[int], None],
                      stz_url: str = "", ahead: bool = False, piece: int | None = None
                      ) -> list[Job]:
        """``StagedFile.download_jobs``: one job per batch of at most ``window`` chunks (a
        piece between whole chunks; raw ranges: a big file has no ``.stz``), each batch's
        records read from the index on disk when its job runs."""
        ranges = self.planned_ranges() if ahead else self.remote_ranges()
        return [functools.partial(self._download_batch, fetcher, url, pieces, spans,
                                  on_bytes, ahead)
                for pieces, spans in self._batches(ranges)]

    def _download_batch(self, fetcher: Fetcher, url: str, pieces: list[tuple[int, int, int]],
                        spans: list[tuple[int, int]], on_bytes: Callable[[int], None],
                        ahead: bool, cancel: CancelToken) -> None:
        """One batch, as ``StagedFile`` downloads a piece, on this file seen through the
        batch's chunks only (``_view``)."""
        self._view(spans)._download_piece(fetcher, url, _ranges(pieces), on_bytes, "", ahead,
                                          cancel)


def _ranges(pieces: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    return _merge([(a, b) for a, b, _ in pieces])
