"""Publisher-computed deltas: ``zstd --patch-from`` of a file against its previous version.

For the common case of a player one version behind, the publisher can upload, beside a
changed file, a zstd frame that rebuilds it from the previous release's file used as a raw
dictionary (``NAME.<first 16 hex of the old SHA-256>.zdelta``). It knows both sides, so it
is usually far smaller than any chunk-level update. The client uses it only when its own
file is exactly that previous version (the state cache vouches for its SHA-256). The delta
is decoded as it arrives (``Decoder``), into the staging file only; the updater checks the
delta's SHA-256 from the signed manifest when its last byte has arrived and the output's
SHA-256 (hashed as it is written) before anything is committed; on any failure it falls
back to chunks. The byte layout is docs/format.md §10.

Decoding is bounded: the output never exceeds the file's size and the decoder's window is
capped at what the publisher needs to span both files. The old file is opened once per
decode and mapped read-only, once (``_OldFile``: a many-file update decodes thousands of
small deltas in a row). Where python-zstandard's CFFI binding is present (its wheels have
it), ``open_decoder`` hands that map to zstd as a prefix by reference; elsewhere
``Decoder`` copies it once into a raw-content dictionary (28 ms and 64 MB more for a 64 MB
file). Either way the output is written a block at a time through the caller's ``write``,
and the decoder's window holds up to the file's size: about one file of memory, plus the
old file's pages in the page cache. Deltas are made only for files up to
``MAX_FILE_SIZE``.

A delta may begin with a table of copies (``make``'s ``copies``; docs/format.md §10,
``core.formats.copytable``): long runs of the new file found unchanged in the old one,
copied from it by the decoder, so the zstd frame holds only the bytes between them. zstd's
blocks hold at most 128 KiB each and every block costs its headers and one sequence at
least (about 14 bytes): a 9 MB file changed in three places cost 1 kB of blocks as one
frame, and 0.3 kB with its unchanged runs copied (docs/benchmarks.md, "Skipped releases
within 2x").
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

from core.errors import FormatError
from core.formats.copytable import Copy, CopyingDecoder, encode_copies, gaps

SUFFIX = ".zdelta"
MAX_FILE_SIZE = 128 << 20  # bytes: larger files are updated by chunks only
# The default level (``level=None``): 9 where the old file is at most LEVEL_SIZE bytes, 3
# above. Measured (docs/benchmarks.md, "Skipped releases within 2x"): with the copy table
# the frame is small and a level's cost is mostly loading the old file into its tables;
# level 9 made typescript's and esbuild-wasm's deltas 20-40 % smaller than level 3, and
# costs about 4 (random bytes) to 10 (text) ns a byte of the old file, against 1.4 at level 3.
DEFAULT_LEVEL = 9
LARGE_LEVEL = 3
LEVEL_SIZE = 32 << 20
DICTIONARY_LEVEL = 15  # the least level of ``make`` without zstd's own API (see there)
LDM_ABOVE = 128 << 20  # old + new bytes above which long-distance matching is used
_OUT_BLOCK = 1 << 20
_DEFAULT_WINDOW_LOG = 27  # zstd's default decoder limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT)


def available() -> bool:
    """Whether zstd is here to decode deltas (an optional dependency)."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def name_for(path: str, from_sha256: str) -> str:
    """Where the delta from the file with ``from_sha256`` lives, beside ``path``."""
    return f"{path}.{from_sha256[:16]}{SUFFIX}"


def _window_log(old_size: int, new_size: int) -> int:
    # The window must span the dictionary (the old file) and the new file.
    return max(10, min(31, (old_size + new_size).bit_length()))


def default_level(old_size: int) -> int:
    """The zstd level of a delta from an old file of ``old_size`` bytes, unless asked."""
    return DEFAULT_LEVEL if old_size <= LEVEL_SIZE else LARGE_LEVEL


def make(old: Path, new: Path, dest: Path, level: int | None = None,
         copies: Sequence[Copy] = ()) -> int:
    """Write the delta that rebuilds ``new`` from ``old`` to ``dest`` at zstd ``level``
    (None: ``default_level``); return its size.

    ``copies``: runs of ``new`` equal to runs of ``old`` (new offset, old offset, length;
    in the order of the new file, not overlapping), which the delta's copy table gives and
    its frame leaves out; the caller vouches that they are equal (``ValueError`` if they do
    not fit in the files).

    As ``zstd --patch-from`` does: the old file is zstd's prefix (by reference, mapped
    read-only, where python-zstandard's CFFI binding is here; else a raw-content
    dictionary, the same frame), the window spans both files, and long-distance matching is
    on when the files are longer than the level's match finder can reach back. Measured
    (docs/benchmarks.md, publish): a prefix with long-distance matching finds a 100 MB
    pack's 40 edits at level 3 in about a second, where the dictionary at level 15 took
    46 s for a delta 240 times larger."""
    old_size, new_size = old.stat().st_size, new.stat().st_size
    if level is None:
        level = default_level(old_size)
    table = encode_copies(copies, old_size, new_size) if copies else b""
    spans = gaps(copies, new_size)
    cffi = _compress_binding()
    if cffi is not None:
        return _make_prefix(cffi, old, new, dest, level, table, spans)
    # A dictionary is not searched by long-distance matching, and low levels' tables forget
    # most of it (measured on a 3 MB file with 60 edits: 1.9 MB at level 3, 704 B at 15).
    return _make_dictionary(old, new, dest, max(level, DICTIONARY_LEVEL), table, spans)




def _compress_binding() -> Any:
    """The CFFI binding for ``make`` (looked up apart from the decoders' ``_binding``)."""
    try:
        from zstandard import _cffi  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _cffi


def _ldm(old_size: int, new_size: int, level: int) -> bool:
    """Long-distance matching: on when the window (both files) is longer than what the
    level's own match finder covers (zstd's CLI rule for --patch-from), and above
    ``LDM_ABOVE`` always."""
    import zstandard as zstd

    p = zstd.ZstdCompressionParameters.from_level(level, source_size=new_size + old_size)
    # zstd's cycle log: the chain log, less one for the binary-tree strategies (btlazy2+).
    cycle = p.chain_log - (1 if p.strategy >= zstd.STRATEGY_BTLAZY2 else 0)
    return (_window_log(old_size, new_size) > cycle
            or old_size + new_size > LDM_ABOVE)


def _make_dictionary(old: Path, new: Path, dest: Path, level: int, table: bytes,
                     spans: list[tuple[int, int]]) -> int:
    import zstandard as zstd

    old_data = old.read_bytes()
    whole = new.read_bytes()
    new_data = b"".join(whole[a:b] for a, b in spans) if table else whole
    params = zstd.ZstdCompressionParameters.from_level(
        level, window_log=_window_log(len(old_data), len(new_data)),
        enable_ldm=_ldm(len(old_data), len(new_data), level))
    dictionary = zstd.ZstdCompressionDict(old_data, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    out = zstd.ZstdCompressor(dict_data=dictionary, compression_params=params).compress(new_data)
    dest.write_bytes(table + out)
    return len(table) + len(out)


def _make_prefix(cffi: Any, old: Path, new: Path, dest: Path, level: int, table: bytes,
                 spans: list[tuple[int, int]]) -> int:
    """``make`` through zstd's own API: ``ZSTD_CCtx_refPrefix`` on the mapped old file, the
    new file mapped as the input (the runs of ``spans`` in turn), output written a block at
    a time after ``table``."""
    ffi, lib = cffi.ffi, cffi.lib

    def check(ret: int) -> int:
        if lib.ZSTD_isError(ret):
            raise OSError(f"zstd: {ffi.string(lib.ZSTD_getErrorName(ret)).decode()}")
        return int(ret)

    cctx = lib.ZSTD_createCCtx()
    if cctx == ffi.NULL:
        raise MemoryError("zstd: no compressor")
    keep: list[Any] = []  # buffers zstd points into, released after the context
    try:
        with open(old, "rb") as fo, open(new, "rb") as fn, open(dest, "wb") as out:
            old_size = os.fstat(fo.fileno()).st_size
            file_size = os.fstat(fn.fileno()).st_size
            new_size = sum(b - a for a, b in spans)  # what the frame holds
            out.write(table)
            for param, value in (
                    (lib.ZSTD_c_compressionLevel, level),
                    (lib.ZSTD_c_windowLog, _window_log(old_size, new_size)),
                    (lib.ZSTD_c_enableLongDistanceMatching,
                     1 if _ldm(old_size, new_size, level) else 0),
                    (lib.ZSTD_c_contentSizeFlag, 1),
                    (lib.ZSTD_c_checksumFlag, 0)):
                check(lib.ZSTD_CCtx_setParameter(cctx, param, value))
            check(lib.ZSTD_CCtx_setPledgedSrcSize(cctx, new_size))
            if old_size:
                old_map = _map(fo.fileno())
                keep.append(old_map)
                prefix = ffi.from_buffer(old_map)
                keep.append(prefix)
                check(lib.ZSTD_CCtx_refPrefix(cctx, prefix, old_size))
            src_buf: Any = ffi.NULL
            if file_size:
                new_map = mmap.mmap(fn.fileno(), 0, access=mmap.ACCESS_READ)
                keep.append(new_map)
                src_buf = ffi.from_buffer(new_map)
                keep.append(src_buf)
            block = bytearray(_OUT_BLOCK)
            dst = ffi.from_buffer(block)
            keep.append(dst)
            inb = ffi.new("ZSTD_inBuffer *")
            outb = ffi.new("ZSTD_outBuffer *")
            view = memoryview(block)
            for n, (a, b) in enumerate(spans or [(0, 0)]):  # each run of the input in turn
                last = n == max(len(spans), 1) - 1
                inb.src, inb.size, inb.pos = src_buf + a if b > a else src_buf, b - a, 0
                op = lib.ZSTD_e_end if last else lib.ZSTD_e_continue
                while True:  # each round writes a block, takes all the run, or ends
                    outb.dst, outb.size, outb.pos = dst, len(block), 0
                    left = check(lib.ZSTD_compressStream2(cctx, outb, inb, op))
                    out.write(view[:outb.pos])
                    if (left == 0 if last else inb.pos == inb.size and outb.pos < outb.size):
                        break
            return out.tell()
    finally:
        lib.ZSTD_freeCCtx(cctx)
        for k in reversed(keep):
            if isinstance(k, mmap.mmap):
                k.close()
            else:
                ffi.release(k)


def max_window(old_size: int, new_size: int) -> int:
    """The largest zstd window a delta between files of these sizes may ask for: the one
    ``make`` uses (and ``zstd --patch-from``'s, which is no larger), or zstd's own default
    limit (2^27) for small pairs, whose deltas other tools may make with a level's default
    window. A frame asking for more is refused before anything is allocated for it."""
    return max(1 << _window_log(old_size, new_size), 1 << _DEFAULT_WINDOW_LOG)


def _load_dictionary(old: _OldFile) -> Any:
    """The old file as a raw-content dictionary. python-zstandard copies the buffer it is
    given, so it is given a read-only mmap (the shared one when the copy table made it,
    else one released right after), not a second copy."""
    import zstandard as zstd

    if old.size == 0:
        return zstd.ZstdCompressionDict(b"", dict_type=zstd.DICT_TYPE_RAWCONTENT)
    with old.borrow() as view, memoryview(view) as buf:
        return zstd.ZstdCompressionDict(buf, dict_type=zstd.DICT_TYPE_RAWCONTENT)


def _map(fd: int) -> mmap.mmap:
    """A read-only map of the whole file, its pages read in one go where the OS allows
    (Linux ``MAP_POPULATE``: measured faster than faulting them in one by one)."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate and os.name != "nt":
        return mmap.mmap(fd, 0, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
    return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)


# O_BINARY: Windows' C runtime opens in text mode without it (O_CLOEXEC is os.open's default)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


class _OldFile:
    """The old file of one decode (``copytable.OldFile``), opened once: a many-file update
    decodes thousands of small deltas in a row, and each ``open()`` of a file costs an
    open, an fstat, an ioctl and an lseek. Its size is the fstat of that descriptor; its
    one read-only map, made on first use (``map``), is shared by the copy table's copies and
    zstd's prefix, so its pages are mapped once (each map counts in the process's RSS).
    ``OSError`` if the file cannot be opened or is not a regular file."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, _READ_FLAGS)
        try:
            st = os.fstat(self._fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(path))
        except BaseException:
            os.close(self._fd)
            raise
        self.size = st.st_size
        self._map: mmap.mmap | None = None

    def _new_map(self) -> mmap.mmap:
        if self._fd < 0:
            raise ValueError("the old file is closed")
        m = _map(self._fd)
        if len(m) != self.size:
            m.close()
            raise FormatError("the old file changed while decoding", what="delta")
        return m

    def map(self) -> mmap.mmap:
        """The whole file (not empty) mapped read-only: one map, kept until ``close``.
        ``FormatError`` if it no longer has ``size`` bytes."""
        if self._map is None:
            self._map = self._new_map()
        return self._map

    @contextmanager
    def borrow(self) -> Iterator[mmap.mmap]:
        """The file mapped for a moment: the shared map if it is made, else a map of its own
        closed on exit."""
        if self._map is not None:
            yield self._map
            return
        with self._new_map() as m:
            yield m

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _Output:
    """The decoder's writer: hands blocks on in order and refuses to go past ``size``."""

    def __init__(self, size: int, write: Callable[[bytes, int], None]) -> None:
        self.size = size
        self.pos = 0
        self._write = write

    def write(self, data: bytes) -> int:
        if self.pos + len(data) > self.size:
            raise FormatError("delta decodes to more than the file", what="delta")
        self._write(data, self.pos)
        self.pos += len(data)
        return len(data)


class Decoder:
    """Rebuilds a file of ``size`` bytes from ``old`` and a delta fed in order, piece by
    piece as it arrives (``feed``), handing the result to ``write(data, offset)`` in order.

    Never produces more than ``size`` bytes; a delta that does not decode, asks for a
    window larger than ``max_window``, or decodes to another length (``finish``) is a
    ``FormatError``. Holds the dictionary and the decoder's window, never the delta.
    ``OSError`` if ``old`` cannot be read. ``old`` stays the caller's to close.
    """

    def __init__(self, old: _OldFile, size: int,
                 write: Callable[[bytes, int], None]) -> None:
        import zstandard as zstd

        self._zstd = zstd
        dictionary = _load_dictionary(old)
        decompressor = zstd.ZstdDecompressor(
            dict_data=dictionary, max_window_size=max_window(len(dictionary), size))
        self._out = _Output(size, write)
        self._writer: Any = decompressor.stream_writer(
            cast("IO[bytes]", self._out), write_size=_OUT_BLOCK, closefd=False)

    def close(self) -> None:
        """Free the dictionary and the decoder's window (the decoder is unusable after)."""
        self._writer = None

    def feed(self, data: bytes | memoryview) -> None:
        try:
            self._writer.write(data)
        except self._zstd.ZstdError as e:
            raise FormatError(f"delta does not decode: {e}", what="delta") from None

    def finish(self) -> None:
        """All of the delta was fed: check the output has the file's length."""
        try:
            self._writer.flush()
        except self._zstd.ZstdError as e:
            raise FormatError(f"delta does not decode: {e}", what="delta") from None
        if self._out.pos != self._out.size:
            raise FormatError(f"delta decodes to {self._out.pos} bytes, not "
                              f"{self._out.size}", what="delta")


def _binding() -> Any:
    """python-zstandard's CFFI module (``ffi``, ``lib``: zstd's own API), or None."""
    try:
        from zstandard import _cffi  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _cffi


class _PrefixDecoder:
    """``Decoder``'s contract without the dictionary copy (module doc): the old file, mapped
    read-only, is zstd's prefix by reference; output is copied out of zstd's window a block
    at a time into a buffer reused for every block."""

    def __init__(self, cffi: Any, old: _OldFile, size: int,
                 write: Callable[[bytes | memoryview, int], None]) -> None:
        """``old``'s shared map is the prefix; ``old`` stays the caller's to close, after
        this."""
        ffi, lib = cffi.ffi, cffi.lib
        self._ffi, self._lib = ffi, lib
        self._size = size
        self._write = write
        self._pos = 0
        self._done = False  # the frame has ended
        self._prefix: Any = None
        # (a small file's buffer is its size: thousands of small files are decoded in a row)
        self._buf = bytearray(min(_OUT_BLOCK, max(size, 4096)))
        self._dctx = lib.ZSTD_createDCtx()
        if self._dctx == ffi.NULL:
            raise MemoryError("zstd: no decoder")
        try:
            window = max_window(old.size, size)
            self._check(lib.ZSTD_DCtx_setParameter(
                self._dctx, lib.ZSTD_d_windowLogMax, window.bit_length() - 1))
            if old.size:
                self._prefix = ffi.from_buffer(old.map())
                self._check(lib.ZSTD_DCtx_refPrefix(self._dctx, self._prefix, old.size))
        except BaseException:
            self.close()
            raise
        self._out = ffi.new("ZSTD_outBuffer *")
        self._out_dst = ffi.from_buffer(self._buf)
        self._in = ffi.new("ZSTD_inBuffer *")

    def _check(self, ret: int) -> int:
        if self._lib.ZSTD_isError(ret):
            name = self._ffi.string(self._lib.ZSTD_getErrorName(ret)).decode()
            raise FormatError(f"delta does not decode: {name}", what="delta")
        return ret

    def feed(self, data: bytes | memoryview) -> None:
        if self._dctx is None:
            raise FormatError("delta does not decode: decoder closed", what="delta")
        if not len(data):
            return
        if self._done:
            raise FormatError("delta does not decode: bytes after its end", what="delta")
        src = self._ffi.from_buffer(data)
        self._in.src, self._in.size, self._in.pos = src, len(data), 0
        view = memoryview(self._buf)
        while True:
            self._out.dst, self._out.size, self._out.pos = self._out_dst, len(self._buf), 0
            ret = self._check(self._lib.ZSTD_decompressStream(self._dctx, self._out,
                                                              self._in))
            made = self._out.pos
            if made:
                if self._pos + made > self._size:
                    raise FormatError("delta decodes to more than the file", what="delta")
                self._write(view[:made], self._pos)
                self._pos += made
            if ret == 0:
                self._done = True
                if self._in.pos < self._in.size:
                    raise FormatError("delta does not decode: bytes after its end",
                                      what="delta")
                return
            if self._in.pos == self._in.size and made < len(self._buf):
                return  # all input taken and nothing left to flush

    def finish(self) -> None:
        if not self._done:
            raise FormatError("delta does not decode: it ends early", what="delta")
        if self._pos != self._size:
            raise FormatError(f"delta decodes to {self._pos} bytes, not {self._size}",
                              what="delta")

    def close(self) -> None:
        if self._dctx is not None:
            self._lib.ZSTD_freeDCtx(self._dctx)
            self._dctx = None
        if self._prefix is not None:
            self._ffi.release(self._prefix)
            self._prefix = None


def open_decoder(old: Path, size: int,
                 write: Callable[[bytes | memoryview, int], None]) -> CopyingDecoder:
    """A decoder rebuilding a file of ``size`` bytes from ``old`` and a delta fed in order,
    handing the output to ``write(data, offset)`` in order (``data`` may be a view of a
    buffer reused after the call returns): a copy table's copies from the mapped old file,
    the frame without copying the old file where zstd's own API is reachable, else
    ``Decoder``. The old file is opened once (``_OldFile``) and mapped once, closed with
    the decoder. ``OSError`` if ``old`` cannot be read."""
    cffi = _binding()
    source = _OldFile(old)

    def inner(size: int, write: Callable[[bytes | memoryview, int], None]
              ) -> Decoder | _PrefixDecoder:
        if cffi is not None:
            return _PrefixDecoder(cffi, source, size, write)
        return Decoder(source, size, write)

    return CopyingDecoder(source, size, write, inner)
