"""Deltas of a release's manifest from earlier manifests (``release.json.<16 hex>.zdelta``).

A manifest lists every file of a release with its digests: about 370 bytes a file, 43 kB for
a 116-file package, where the files a patch release changes may cost a few kB by delta. A
player who has an earlier manifest installed (``.stitch/installed/release.json``) fetches a
zstd frame made with that manifest as a raw-content dictionary instead, and checks what it
decodes to against the pointer's SHA-256 before the signature is checked as usual; anything
wrong and the full manifest is fetched. The publisher writes one for each of the releases
it makes file deltas from (``--delta-releases``) and names them in ``latest.json``
(``manifest_deltas``), so a client never asks for one that is not there. The layout is
docs/format.md §4.

Both sides hold the manifests in memory (they are read whole anyway, at most
``core.formats.manifest.MAX_MANIFEST_SIZE``); decoding stops at ``limit`` bytes of output.
"""

from __future__ import annotations

import io

from core.errors import FormatError

SUFFIX = ".zdelta"
LEVEL = 19  # manifests are small: the best ratio costs milliseconds (16 ms for 1 MB)
FAST_LEVEL = 3  # above FAST_ABOVE bytes, level 19 would take seconds
FAST_ABOVE = 8 << 20
_MAX_WINDOW_LOG = 31


def name_for(manifest_name: str, from_sha256: str) -> str:
    """``release.json.<first 16 hex of the earlier manifest's SHA-256>.zdelta``."""
    return f"{manifest_name}.{from_sha256[:16]}{SUFFIX}"


def _window_log(old: int, new: int) -> int:
    return max(10, min(_MAX_WINDOW_LOG, (old + new).bit_length()))


def make(old: bytes, new: bytes) -> bytes:
    """The frame that rebuilds ``new`` from ``old`` (a raw-content dictionary)."""
    import zstandard as zstd

    level = LEVEL if len(old) + len(new) <= FAST_ABOVE else FAST_LEVEL
    params = zstd.ZstdCompressionParameters.from_level(
        level, window_log=_window_log(len(old), len(new)), write_content_size=True)
    dictionary = zstd.ZstdCompressionDict(old, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    return bytes(zstd.ZstdCompressor(dict_data=dictionary,
                                     compression_params=params).compress(new))


def decode(old: bytes, data: bytes, limit: int) -> bytes:
    """What ``data`` rebuilds from ``old``: ``FormatError`` when it does not decode, asks for
    a window larger than both manifests could need, or decodes to more than ``limit``
    bytes."""
    import zstandard as zstd

    dictionary = zstd.ZstdCompressionDict(old, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    dctx = zstd.ZstdDecompressor(dict_data=dictionary,
                                 max_window_size=1 << _window_log(len(old), limit))
    try:
        with dctx.stream_reader(io.BytesIO(data), read_across_frames=False) as reader:
            out = reader.read(limit + 1)
    except zstd.ZstdError as e:
        raise FormatError(f"manifest delta does not decode: {e}", what="manifest") from None
    if len(out) > limit:
        raise FormatError(f"manifest delta decodes to more than {limit} bytes",
                          what="manifest")
    return bytes(out)
