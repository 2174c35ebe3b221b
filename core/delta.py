"""Publisher-computed deltas: ``zstd --patch-from`` of a file against its previous version.

For the common case of a player one version behind, the publisher can upload, beside a
changed file, a zstd frame that rebuilds it from the previous release's file used as a raw
dictionary (``NAME.<first 16 hex of the old SHA-256>.zdelta``). It knows both sides, so it
is usually far smaller than any chunk-level update. The client uses it only when its own
file is exactly that previous version (the state cache vouches for its SHA-256), checks the
delta's own SHA-256 from the signed manifest before using it, and checks the result's
SHA-256 like any rebuilt file; on any failure it falls back to chunks. The byte layout is
docs/format.md §10.

Both sides hold the old file in memory (it is the dictionary), so deltas are made only for
files up to ``MAX_FILE_SIZE``; the update of such a file peaks at about twice its size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.errors import FormatError

SUFFIX = ".zdelta"
MAX_FILE_SIZE = 128 << 20  # bytes: larger files are updated by chunks only
DEFAULT_LEVEL = 15  # measured: the best size/time trade-off for patch-from (benchmarks.md)
LDM_ABOVE = 128 << 20  # old + new bytes above which long-distance matching is used
_OUT_BLOCK = 1 << 20


def name_for(path: str, from_sha256: str) -> str:
    """Where the delta from the file with ``from_sha256`` lives, beside ``path``."""
    return f"{path}.{from_sha256[:16]}{SUFFIX}"


def _window_log(old_size: int, new_size: int) -> int:
    # The window must span the dictionary (the old file) and the new file.
    return max(10, min(31, (old_size + new_size).bit_length()))


def make(old: Path, new: Path, dest: Path, level: int = DEFAULT_LEVEL) -> int:
    """Write the delta that rebuilds ``new`` from ``old`` to ``dest``; return its size."""
    import zstandard as zstd

    old_data = old.read_bytes()
    new_data = new.read_bytes()
    # Long-distance matching only for big pairs. Measured: a 6 MB script's level-15 patch is
    # 145 KB with it and 0.9 KB without; a 130 MB archive's is 100 MB without it (the normal
    # match finder cannot see that far back) and needs it to reach the chunk-level floor.
    params = zstd.ZstdCompressionParameters.from_level(
        level, window_log=_window_log(len(old_data), len(new_data)),
        enable_ldm=len(old_data) + len(new_data) > LDM_ABOVE)
    dictionary = zstd.ZstdCompressionDict(old_data, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    out = zstd.ZstdCompressor(dict_data=dictionary, compression_params=params).compress(new_data)
    dest.write_bytes(out)
    return len(out)


def apply(old: Path, delta: bytes, size: int,
          write: Callable[[bytes, int], None]) -> None:
    """Rebuild a file of ``size`` bytes from ``old`` and ``delta``, handing the result to
    ``write(data, offset)`` in order. Never produces more than ``size`` bytes; a delta
    that does not decode, or decodes to another length, is a ``FormatError``."""
    import zstandard as zstd

    old_data = old.read_bytes()
    dictionary = zstd.ZstdCompressionDict(old_data, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    decompressor = zstd.ZstdDecompressor(dict_data=dictionary, max_window_size=1 << 31)
    pos = 0
    try:
        with decompressor.stream_reader(delta, read_across_frames=False) as reader:
            while block := reader.read(min(_OUT_BLOCK, size + 1 - pos)):
                if pos + len(block) > size:
                    raise FormatError("delta decodes to more than the file", what="delta")
                write(block, pos)
                pos += len(block)
    except zstd.ZstdError as e:
        raise FormatError(f"delta does not decode: {e}", what="delta") from None
    if pos != size:
        raise FormatError(f"delta decodes to {pos} bytes, not {size}", what="delta")
