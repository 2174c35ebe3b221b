"""What a release is made of, on the wire and on disk, apart from chunk indexes.

- ``manifest``: ``release.json`` and ``latest.json``, path rules; ``pep440``: versions.
- ``layout``: where things live in a repository (paths and URLs).
- ``signing``: minisign keys and signatures.
- ``delta``: publisher deltas (zstd patch-from), made and decoded as bytes arrive;
  ``copytable``: a delta's table of runs copied from the old file; ``manifest_delta``:
  the manifest as a delta of an earlier one.
- ``listing``: ``stitch sync``'s listing pages, text lists and source sidecars.

Codecs and checks of untrusted bytes; ``docs/format.md`` is their normative spec. No
network, no install state, no numpy.

May import: the top-level modules of ``core`` (``errors``, ``fsutil``, ``progress``, ...).
Nothing from ``core.chunks``, ``core.net``, ``core.engine``, ``core.system``,
``core.publisher`` (``tests/test_layout.py``).
"""
