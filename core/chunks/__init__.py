"""Content-defined chunks: cutting, indexing, and the reuse plan of one file.

- ``chunker``: FastCDC parameters, chunking bytes and files (the ``chunk_files`` pool).
- ``fidx``, ``fidx_groups``, ``fidx_sub``: the ``.fidx`` v2 index, its group table and its
  sub-index; ``fidx_v1`` and ``rollsum``: bupdate's ``.fidx`` v1 and bup's rollsum.
- ``stz``: the compressed chunk copy ``NAME.stz``.
- ``planner``: ``SeedSet`` and ``plan_file``: which chunks are copied from local files and
  which byte ranges are fetched (pure, no I/O).
- ``indexer``: indexes of local files in either version (``stitch fidx``, ``stitch sync``).

numpy lives here: an update that needs no chunk (nothing new, or deltas only) never
imports this package (``tests/test_delta.py``).

May import: the top-level modules of ``core`` and ``core.formats``. Nothing from
``core.net``, ``core.engine``, ``core.system``, ``core.publisher``.
"""
