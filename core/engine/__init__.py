"""The player's side: one update from check to commit, and the other operations on an
install.

- ``config``: what one update is told (``UpdaterConfig``); ``lock``: one run per install.
- ``trust``: which release to believe (pointer, manifest, signature, policy).
- ``scan``, ``chunkplan``: what is local, and what each changed file needs.
- ``staging``, ``rebuild``, ``background``, ``sealer``: files built in staging from local
  chunks, fetched ranges and deltas; hashed and fsynced behind the writes.
- ``commit``: the journaled swap; ``state``: ``.stitch/``.
- ``updater``: the pipeline and its results; ``meter``: progress at a sane rate.
- ``verify``, ``sync``: ``stitch verify`` and ``stitch sync``.

May import: every other package of ``core`` but ``core.publisher``, and the top-level
modules. Never ``app`` or Qt (nothing in ``core`` does).
"""
