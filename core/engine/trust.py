"""Deciding whether to believe a release: pointer → manifest → signature → policy.

Owns the client's trust decisions: fetch the channel pointer and the manifest it names,
check the manifest's bytes against the signature made with a trusted key (configured, else
the one pinned in the install's state; the key a signed release verified with is pinned,
the server's ``minisign.pub`` on first contact when none is configured), and refuse a
manifest for another product or channel, an expired one, or a downgrade. Signature formats
are ``core.formats.signing``; what the files say once trusted is ``core.formats.manifest``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.engine.meter import Meter
from core.engine.state import InstalledState
from core.errors import (
    ContentError,
    DowngradeError,
    ExpiredError,
    FormatError,
    HashMismatchError,
    HTTPStatusError,
    SignatureError,
)
from core.formats import manifest_delta
from core.formats.layout import MANIFEST, MAX_POINTER_SIZE, SIGNATURE, join_url
from core.formats.layout import pointer_url as layout_pointer_url
from core.formats.manifest import (
    MAX_MANIFEST_SIZE,
    Manifest,
    Pointer,
    parse_manifest,
    parse_pointer,
)
from core.formats.pep440 import parse as parse_version
from core.net.fetcher import Fetcher
from core.parallel import each
from core.progress import CancelToken, Phase

if TYPE_CHECKING:
    from core.engine.config import UpdaterConfig

MAX_SIGNATURE_SIZE = 4096
PUBLIC_KEY = "minisign.pub"  # published beside latest.json for trust on first use


@dataclass(frozen=True)
class TrustedRelease:
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes | None
    key_id: str | None  # hex key id that signed it, None when unsigned
    pinned_keys: list[str]  # public keys (base64) the install trusts from now on
    warnings: tuple[str, ...] = field(default=())


def verify_release(fetcher: Fetcher, cfg: UpdaterConfig, state: InstalledState,
                   cancel: CancelToken, meter: Meter,
                   installed: tuple[bytes, bytes | None] | None = None,
                   on_fetch: Callable[[], None] | None = None,
                   fetch_pointer: Callable[[], bytes] | None = None) -> TrustedRelease:
    """Fetch and check the channel's current release (see module doc). Raises
    ``DownloadError``, ``FormatError``, ``HashMismatchError``, ``SignatureError``,
    ``ExpiredError`` or ``DowngradeError``.

    ``installed``: the manifest installed last and its signature. When the pointer names
    exactly that manifest (its SHA-256), the local copies are checked instead of fetching
    them again: a launcher's run that finds nothing new costs one request. Should they not
    pass (the trusted keys changed, say), the server's copies are fetched and decide.
    ``on_fetch`` is called as the manifest is about to be fetched (another release than the
    installed one: an update will follow). ``fetch_pointer``: the pointer's bytes, asked for
    already (``core.engine.early``), instead of fetching it here."""
    base = cfg.url
    pointer_url = layout_pointer_url(base, cfg.channel)
    # The pointer is the one file that changes under its URL: never a cache's stale copy.
    pointer = parse_pointer(fetch_pointer() if fetch_pointer is not None else
                            fetcher.fetch_fresh(pointer_url, MAX_POINTER_SIZE, cancel,
                                                bust=cfg.cache_bust))
    meter.phase(Phase.CHECK, 1, 3)
    manifest_url = join_url(base, cfg.channel, pointer.manifest)
    if not pointer.manifest.endswith("/" + MANIFEST):
        raise FormatError(f"{pointer_url}: manifest path must end in {MANIFEST}",
                          what="pointer")
    if installed is not None and hashlib.sha256(installed[0]).hexdigest() == pointer.sha256:
        try:
            return _accept(fetcher, cfg, state, cancel, meter, pointer, manifest_url,
                           installed[0], installed[1])
        except ContentError as e:
            meter.log(f"installed manifest not accepted again ({e}); fetching it")
    sig_url = manifest_url[: -len(MANIFEST)] + SIGNATURE

    def fetch_signature() -> bytes | None:
        try:
            return fetcher.fetch(sig_url, MAX_SIGNATURE_SIZE, cancel)
        except HTTPStatusError as e:
            if e.status_code not in (404, 410):
                raise
            return None

    def fetch_manifest() -> bytes:
        if installed is not None:
            data = _by_delta(fetcher, cancel, meter, pointer, manifest_url, installed[0])
            if data is not None:
                return data
        return fetcher.fetch(manifest_url, MAX_MANIFEST_SIZE, cancel)

    # The manifest and its signature side by side: one round trip, not two.
    if on_fetch is not None:
        on_fetch()
    data, signature = each(lambda fetch: fetch(), [fetch_manifest, fetch_signature],
                           cfg.connections)
    assert data is not None
    actual = hashlib.sha256(data).hexdigest()
    if actual != pointer.sha256:
        raise HashMismatchError(f"{manifest_url}: does not match latest.json",
                                expected=pointer.sha256, actual=actual, url=manifest_url)
    return _accept(fetcher, cfg, state, cancel, meter, pointer, manifest_url, data, signature)


def _by_delta(fetcher: Fetcher, cancel: CancelToken, meter: Meter, pointer: Pointer,
              manifest_url: str, installed: bytes) -> bytes | None:
    """The manifest rebuilt from the installed one and the delta the pointer names for it
    (``core.formats.manifest_delta``), checked against the pointer's SHA-256; None when
    there is none or it fails (the full manifest is then fetched)."""
    base = hashlib.sha256(installed).hexdigest()
    if base[:16] not in pointer.manifest_deltas:
        return None
    url = manifest_delta.name_for(manifest_url, base)
    try:
        made = manifest_delta.decode(installed, fetcher.fetch(url, MAX_MANIFEST_SIZE, cancel),
                                     MAX_MANIFEST_SIZE)
    except (ContentError, HTTPStatusError, ImportError) as e:  # ImportError: no zstd here
        meter.log(f"manifest delta not used ({e}); fetching the manifest")
        return None
    if hashlib.sha256(made).hexdigest() != pointer.sha256:
        meter.log("manifest delta does not rebuild the manifest latest.json names; "
                  "fetching the manifest")
        return None
    return made


def _accept(fetcher: Fetcher, cfg: UpdaterConfig, state: InstalledState,
            cancel: CancelToken, meter: Meter, pointer: Pointer, manifest_url: str,
            data: bytes, signature: bytes | None) -> TrustedRelease:
    """The checks of a manifest whose bytes match the pointer: signature, then policy."""
    meter.phase(Phase.CHECK, 2, 3)
    from core.formats import signing  # (cryptography: loaded while the check waited)

    base = cfg.url
    warnings: list[str] = []
    keys = [signing.parse_public_key(k) for k in cfg.pubkeys]
    pinned = list(state.pinned_keys)
    if not keys and pinned:
        keys = [signing.parse_public_key(k) for k in pinned]
    key_id: str | None = None
    if signature is None:
        if keys:
            raise SignatureError(f"{manifest_url}: the release is not signed, and this "
                                 "install only accepts signed releases")
        warnings.append("the release is not signed: its origin cannot be checked")
    else:
        if not keys:
            # Trust on first use: the key published with the channel is pinned from now on.
            text = fetcher.fetch(join_url(base, cfg.channel, PUBLIC_KEY), 4096, cancel)
            keys = [signing.parse_public_key(text.decode("ascii", "replace"))]
            warnings.append("no publisher key configured: trusting the key the server "
                            "published, and only that key from now on")
        verified = signing.verify(data, signature, keys)
        key_id = verified.key_id.hex()
        # Pin the key this release verified with, configured or not: a later run without
        # a configured key trusts that key alone, never the one the server publishes.
        pinned = [k.b64() for k in keys if k.key_id == verified.key_id]

    manifest = parse_manifest(data, cfg.max_file_size)
    if manifest.channel != cfg.channel:
        raise FormatError(f"manifest is for channel {manifest.channel!r}, not {cfg.channel!r}",
                          what="manifest")
    product = cfg.product or state.product
    if product and manifest.product != product:
        raise FormatError(f"manifest is for {manifest.product!r}, not {product!r}",
                          what="manifest")
    if manifest.version != pointer.version:
        raise FormatError("manifest version differs from latest.json", what="manifest")
    if manifest.expired():
        raise ExpiredError(f"release {manifest.version} expired at {manifest.expires}")
    offered = parse_version(manifest.version).key()  # FormatError: not a version
    if (state.version is not None and not cfg.allow_downgrade
            and offered < _installed_key(state.version)):
        raise DowngradeError(
            f"offered release {manifest.version} is older than installed {state.version}",
            installed=state.version, offered=manifest.version)
    return TrustedRelease(manifest, data, signature, key_id, pinned, tuple(warnings))


def _installed_key(version: str) -> tuple[tuple[int, ...], ...]:
    """The installed version's sort key; one that is not a PEP 440 version (installed by an
    older stitch, which published any name) sorts before every version."""
    try:
        return parse_version(version).key()
    except FormatError:
        return ((-1,),)
