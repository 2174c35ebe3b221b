"""What one update is told: the repository, the install folder, trust and network settings.

A frozen value the front ends build (``app/config.py`` from ``updater.toml``, the CLI from its
options) and the engine reads (``core.engine.updater``, ``core.engine.trust``,
``core.engine.chunkplan``). It lives apart from ``core.engine.updater`` so that the modules the
updater calls need not import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.engine.lock import DEFAULT_WAIT


@dataclass(frozen=True)
class UpdaterConfig:
    """Where to update from and to. Sizes in bytes."""

    url: str  # base URL of the release repository (the folder holding <channel>/)
    install_dir: Path
    channel: str = "stable"
    product: str = ""  # when set, a manifest for another product is refused
    pubkeys: tuple[str, ...] = ()  # trusted minisign public keys (base64); empty = unsigned ok
    allow_downgrade: bool = False
    max_file_size: int = 1 << 40  # ceiling for one file in a manifest (1 TiB)
    connections: int = 4  # parallel HTTP requests
    files_url: str = ""  # where file bytes live when not beside the manifest; "" = beside
    lock_wait: float = DEFAULT_WAIT  # seconds to wait for another run's lock on the install
    # latest.json is asked with a query of its own (?stitch=<random>) so no cache answers
    # with a stale copy; False when the host refuses queries (docs/publishing.md).
    cache_bust: bool = True
    # Network limits in seconds (core.net.http.HttpFetcher's read_timeout: the headers' deadline
    # and the body's speed window); None: its default. Launchers shorten it (--timeout).
    timeout: float | None = None
