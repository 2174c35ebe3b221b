"""The publisher's side: ``stitch publish``.

- ``publish``: files, indexes (group tables, sub-indexes), compressed copies, deltas,
  manifest, signature, pointer, and the report.
- ``compressed``: recognising compression that defeats chunking (the report's warnings).

May import: the top-level modules of ``core``, ``core.formats``, ``core.chunks``; never
``core.net`` (a publisher writes files, it fetches nothing). For now also ``core.engine``
(``REQUEST_COST``, ``wire_bytes``, ``STATE_DIR``), which issue 15 moves down.
"""
