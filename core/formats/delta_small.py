"""Decoding a small delta held whole in memory: ``decode_whole``.

A many-file update decodes thousands of deltas of a few hundred bytes each (the release's
pack holds them: ``core.engine.packstep``). The streaming decoder of ``core.formats.delta``
maps the old file and creates a zstd context per delta; here the old file is read into
memory (``read_old``), one zstd context per thread is reused (reset between deltas), and the
frame is decoded in one call straight into the file's buffer. Same contract as the
streaming decoder: the output is exactly ``size`` bytes or a ``FormatError``; a delta with a
copy table (``copytable.COPIES_MAGIC``, docs/format.md §10) is left to the streaming decoder
(``None``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from core.errors import FormatError
from core.formats.copytable import COPIES_MAGIC
from core.formats.delta import _binding, max_window

# An old file up to this size is read into memory; a bigger one is mapped by the streaming
# decoder instead.
SMALL_OLD = 1 << 20

_local = threading.local()
_COPIES = COPIES_MAGIC.to_bytes(4, "little")


def read_old(path: Path) -> bytes | None:
    """The whole of the installed file ``path`` when it is at most ``SMALL_OLD`` bytes, else
    None. ``OSError`` when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        if size > SMALL_OLD:
            return None
        parts = []
        while size > 0 and (piece := os.read(fd, size)):
            parts.append(piece)
            size -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)


def _context(cffi: Any) -> Any:
    """This thread's zstd decoding context (freed with the thread's locals)."""
    dctx = getattr(_local, "dctx", None)
    if dctx is None:
        raw = cffi.lib.ZSTD_createDCtx()
        if raw == cffi.ffi.NULL:
            raise MemoryError("zstd: no decoder")
        dctx = _local.dctx = cffi.ffi.gc(raw, cffi.lib.ZSTD_freeDCtx)
    return dctx


def decode_whole(old: bytes, delta: bytes | bytearray | memoryview, size: int
                 ) -> bytearray | None:
    """The ``size`` bytes ``delta`` (one zstd frame with ``old`` as its prefix) rebuilds, or
    None when this decoder does not apply (a copy table; no zstd binding here): the caller
    then uses the streaming decoder. ``FormatError`` if it does not decode to exactly
    ``size`` bytes."""
    cffi = _binding()
    if cffi is None or bytes(delta[:4]) == _COPIES:
        return None
    ffi, lib = cffi.ffi, cffi.lib
    dctx = _context(cffi)

    def check(ret: int) -> int:
        if lib.ZSTD_isError(ret):
            name = ffi.string(lib.ZSTD_getErrorName(ret)).decode()
            raise FormatError(f"delta does not decode: {name}", what="delta")
        return int(ret)

    check(lib.ZSTD_DCtx_reset(dctx, lib.ZSTD_reset_session_and_parameters))
    check(lib.ZSTD_DCtx_setParameter(dctx, lib.ZSTD_d_windowLogMax,
                                     max_window(len(old), size).bit_length() - 1))
    prefix = ffi.from_buffer(old) if old else None
    if prefix is not None:
        check(lib.ZSTD_DCtx_refPrefix(dctx, prefix, len(old)))
    out = bytearray(size)
    dst = ffi.from_buffer(out) if size else ffi.NULL
    src = ffi.from_buffer(delta)
    try:
        # One call decodes every frame of ``src``; the prefix serves only the first, so a
        # second frame decodes to more than ``size`` or fails: either way refused below.
        made = check(lib.ZSTD_decompressDCtx(dctx, dst, size, src, len(delta)))
    finally:
        if prefix is not None:
            ffi.release(prefix)
        ffi.release(src)
        if size:
            ffi.release(dst)
    if made != size:
        raise FormatError(f"delta decodes to {made} bytes, not {size}", what="delta")
    return out
