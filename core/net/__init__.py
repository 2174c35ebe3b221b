"""Getting bytes from a server.

- ``fetcher``: the ``Fetcher`` seam the engine is written against (``MemoryFetcher`` for
  tests).
- ``http``: ``HttpFetcher`` and everything HTTP; ``http.client`` is httpx's one importer.
- ``multipart``: multipart/byteranges parsing; ``retry``: what is retried, back-off,
  ``Retry-After``; ``tls``: the client TLS context (the OS trust store).

Says nothing about what the bytes mean: the caller checks every hash.

May import: the top-level modules of ``core`` only.
"""
