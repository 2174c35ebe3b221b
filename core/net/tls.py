"""The client TLS context: the OS's trust store, loaded only when a TLS handshake needs it."""

from __future__ import annotations

import ssl
import threading
from typing import Any


class LazyTrustContext(ssl.SSLContext):
    """``ssl.create_default_context()`` for clients, except that the OS's certificate store
    (20 ms to load) is read on the first TLS handshake rather than when the context is made.
    """

    def __new__(cls) -> LazyTrustContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)  # verifies certs and host names

    def __init__(self) -> None:
        super().__init__()
        self._trust_lock = threading.Lock()
        self._trusted = False

    def _load_trust(self) -> None:
        with self._trust_lock:
            if not self._trusted:
                self.load_default_certs(ssl.Purpose.SERVER_AUTH)
                self._trusted = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load_trust()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load_trust()
        return super().wrap_bio(*args, **kwargs)
