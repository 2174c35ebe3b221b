"""The publisher's side: ``stitch publish``.

- ``publish``: files, indexes (group tables, sub-indexes), compressed copies, deltas,
  manifest, signature, pointer, and the report.
- ``publish_files``: one file of a release (copied and hashed, indexed, compressed, its
  delta), files side by side on a pool.
- ``compressed``: recognising compression that defeats chunking (the report's warnings).

May import: the top-level modules of ``core``, ``core.formats``, ``core.chunks``; never
``core.net`` (a publisher writes files, it fetches nothing) nor ``core.engine`` (what a
player's requests cost is ``core.chunks.wire``; the install's state folder's name,
``core.formats.layout``).
"""
