"""The test proxy's own models that the benchmarks rely on (tests/faultproxy.py)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.faultproxy import FaultProxy


def test_a_line_is_shared_by_every_connection(tmp_path: Path,
                                              plain_server: Callable[[Path], str]) -> None:
    """Two downloads side by side through a line of R bytes a second take at least their
    total over R (a per-connection pace would let them finish in half that), and arrive
    whole."""
    size, rate = 256 * 1024, 1 << 20
    bodies = {name: bytes([n]) * size for n, name in enumerate(("a.bin", "b.bin"))}
    for name, body in bodies.items():
        (tmp_path / name).write_bytes(body)
    got: dict[str, bytes] = {}
    with FaultProxy(plain_server(tmp_path), line_rate=rate) as proxy:
        def get(name: str) -> None:
            with urllib.request.urlopen(f"{proxy.url}/{name}", timeout=30) as r:
                got[name] = r.read()
        threads = [threading.Thread(target=get, args=(name,)) for name in bodies]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        took = time.monotonic() - start
    assert got == bodies
    assert took >= 0.95 * 2 * size / rate
