"""The delta source: a file rebuilt from the publisher's deltas, directly or by a chain.

Owns what the delta way of getting bytes needs beyond its byte format
(``core.formats.delta``): which deltas a player can use (``plan``: a direct delta of the
offered release from the installed file, else the cheapest chain through the channel's
earlier releases that the offered manifest names, ``core.engine.deltapath``), and running a
``DeltaStep`` (``run``): each hop fetched and decoded as it streams in, checked against the
delta's SHA-256 and its output against the SHA-256 its release's manifest gives; a hop
before the last writes a temporary file in staging (removed once the next hop has read it,
and in any case at the end), the last one the staged file itself. One decoder at a time per
file; nothing outside staging is written, so a chain that fails leaves the install as it
was and the assembler tries the file's next listed step.

Trust: the earlier manifests a chain passes through are fetched by URL
(``<channel>/<version>/release.json``) and accepted only when their bytes have the SHA-256
the offered, signed manifest's ``history`` gives: the signed manifest vouches for them,
so their own signatures are not fetched (one request each, and keys rotated since do not
matter) and their expiry does not apply (what the chain finally builds is checked against
the offered manifest's SHA-256 of the file, like any file). docs/format.md §3 and §10.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from core.engine.chunkplan import release_file_url
from core.engine.config import UpdaterConfig
from core.engine.deltapath import cheapest
from core.engine.meter import Meter
from core.engine.plan import DeltaStep, Hop
from core.engine.sealer import Sealer
from core.engine.staging import BlankFile
from core.engine.state import InstalledFile, InstalledState
from core.errors import ContentError, DownloadError, FormatError, HashMismatchError
from core.formats import delta
from core.formats.layout import MANIFEST, file_url, join_url
from core.formats.manifest import (
    MAX_MANIFEST_SIZE,
    Delta,
    Earlier,
    FileEntry,
    Manifest,
    parse_manifest,
)
from core.formats.pep440 import parse as parse_version
from core.net.fetcher import Fetcher
from core.parallel import each
from core.progress import CancelToken

CHAIN_PAYOFF = 4  # see ``plan``


def plan(cfg: UpdaterConfig, fetcher: Fetcher, cancel: CancelToken, meter: Meter,
         man: Manifest, manifest_size: int, state: InstalledState, changed: list[FileEntry],
         vouched: Callable[[str, InstalledFile], bool]) -> dict[str, DeltaStep]:
    """For each file of ``changed`` whose installed version the state vouches for: the
    cheapest way from it to the offered file by deltas, by path. A direct delta of ``man``
    when there is one (one hop, no other request); else, when ``man`` names earlier
    releases, the cheapest chain through those newer than the installed release (their
    manifests fetched side by side, once, only then, and only when the files left without
    a direct delta are more than ``CHAIN_PAYOFF`` times those manifests' bytes, each
    counted as ``manifest_size``, the offered one's)."""
    if not (man.history or any(f.deltas for f in changed)) or not delta.available():
        return {}  # (zstandard is not even imported)
    have: dict[str, str] = {}
    for f in changed:
        h = state.files.get(f.path)
        if h is not None and h.sha256 != f.sha256 and vouched(f.path, h):
            have[f.path] = h.sha256
    out: dict[str, DeltaStep] = {}
    for f in changed:
        if f.path in have:
            d = next((d for d in f.deltas if d.from_sha256 == have[f.path]), None)
            direct = _hop(cfg, man, f, d) if d is not None else None
            if direct is not None:
                out[f.path] = DeltaStep((direct,))
    rest = [f for f in changed if f.path in have and f.path not in out]
    # The earlier manifests cost about this one's size each: fetched only when the files
    # they may help are much larger (a chain cannot save more than those files' bytes).
    between = _between(man, state.version)
    if sum(f.size for f in rest) <= CHAIN_PAYOFF * manifest_size * len(between):
        return out
    releases = [man, *earlier_manifests(cfg, fetcher, cancel, meter, man, between)]
    if len(releases) == 1:
        return out
    files = [r.by_path() for r in releases]
    for f in rest:
        edges = [h for r, fs in zip(releases, files, strict=True)
                 if (e := fs.get(f.path)) is not None for h in _hops(cfg, r, e)]
        chain = cheapest(have[f.path], f.sha256, edges)
        if chain is not None:
            out[f.path] = DeltaStep(chain)
    return out


def _hops(cfg: UpdaterConfig, r: Manifest, e: FileEntry) -> list[Hop]:
    """The deltas release ``r`` lists for its file ``e``, as hops (a delta not smaller than
    the file is left out: the file itself costs less). A delta an earlier release made
    (``release``: the file did not change since) is served from that release's folder of
    the repository; it is left out when the files are served from elsewhere."""
    return [h for d in e.deltas if (h := _hop(cfg, r, e, d)) is not None]


def _hop(cfg: UpdaterConfig, r: Manifest, e: FileEntry, d: Delta) -> Hop | None:
    """One of ``_hops``: delta ``d`` of release ``r``'s file ``e``, or None if left out."""
    if d.size >= e.size or (d.release and (cfg.files_url or r.files_url)):
        return None
    name = delta.name_for(e.path, d.from_sha256)
    url = (file_url(cfg.url, cfg.channel, d.release, name) if d.release
           else release_file_url(cfg, r, name))
    return Hop(d.release or r.version, url, d, e.sha256, e.size)


def _between(man: Manifest, installed: str | None) -> list[Earlier]:
    """The releases ``man`` names (``history``) newer than the ``installed`` version."""
    if installed is None or not man.history:
        return []
    try:
        low = parse_version(installed).key()
    except FormatError:
        return []  # installed by an older stitch: no chain is known from it
    return [e for e in man.history if _newer(e, low)]


def earlier_manifests(cfg: UpdaterConfig, fetcher: Fetcher, cancel: CancelToken,
                      meter: Meter, man: Manifest, want: list[Earlier]) -> list[Manifest]:
    """The manifests of the earlier releases ``want`` (from ``man``'s ``history``), each
    checked against the SHA-256 ``man`` gives (module doc), side by side; one that cannot
    be had or does not match is left out (logged)."""

    def fetch(e: Earlier) -> Manifest | None:
        url = join_url(cfg.url, cfg.channel, e.version, MANIFEST)
        try:
            data = fetcher.fetch(url, MAX_MANIFEST_SIZE, cancel)
            actual = hashlib.sha256(data).hexdigest()
            if actual != e.sha256:
                raise HashMismatchError(f"{url}: does not match the offered manifest's "
                                        "history", expected=e.sha256, actual=actual, url=url)
            m = parse_manifest(data, cfg.max_file_size)
            if (m.product, m.channel, m.version) != (man.product, man.channel, e.version):
                raise FormatError(f"{url}: another product, channel or version",
                                  what="manifest")
            return m
        except (DownloadError, ContentError) as err:
            meter.log(f"earlier release {e.version} not used for deltas ({err})")
            return None

    return [m for m in each(fetch, want, cfg.connections) if m is not None]


def _newer(e: Earlier, low: tuple[tuple[int, ...], ...]) -> bool:
    try:
        return parse_version(e.version).key() > low
    except FormatError:
        return False


# -- running a DeltaStep ----------------------------------------------------------------------
def run(step: DeltaStep, installed: Path, s: BlankFile, entry: FileEntry, fetcher: Fetcher,
        cancel: CancelToken, meter: Meter, sealer: Sealer) -> bool:
    """Rebuild ``entry`` into ``s`` from ``installed`` by ``step``'s hops in order; False
    (after logging why) when a hop cannot be used, and the assembler tries the next
    listed step. Temporary files of the hops before the last are removed however it ends.

    Each delta is decoded before its last byte (hence its digest) is known: the output goes
    to staging only, is bounded by the hop's size (``delta.open_decoder``), and is used
    only when the delta's SHA-256 and then the output's match the manifests."""
    temps: list[Path] = []
    base = installed
    try:
        for n, hop in enumerate(step.hops[:-1]):
            tmp = s.path.with_name(f"{s.path.name}.hop{n}")
            temps.append(tmp)
            _to_temp(hop, base, tmp, fetcher, cancel, meter)
            if len(temps) > 1:
                temps[-2].unlink(missing_ok=True)  # read by the hop just made: not needed
            base = tmp
        _to_staged(step.hops[-1], base, s, entry, fetcher, cancel, meter, sealer)
    except (DownloadError, ContentError) as e:
        meter.log(f"{entry.path}: delta not used ({e}); trying the next step")
        return False
    finally:
        for t in temps:
            t.unlink(missing_ok=True)
    n = len(step.hops)
    how = f"a {_mb(step.wire_bytes())} patch" if n == 1 else \
        f"a chain of {n} patches ({_mb(step.wire_bytes())})"
    meter.log(f"{entry.path}: rebuilt from {how}")
    return True


def _fetch_decode(hop: Hop, base: Path, write: Callable[[bytes | memoryview, int], None],
                  fetcher: Fetcher, cancel: CancelToken, meter: Meter,
                  then: Callable[[], None] = lambda: None) -> None:
    """Fetch ``hop``'s delta and decode it against ``base`` as it arrives into ``write``;
    check its SHA-256 and its output's length; ``then`` runs before the decoder is freed."""
    d, url = hop.delta, hop.url
    decoder = delta.open_decoder(base, hop.size, write)
    digest = hashlib.sha256()
    got = 0

    def sink(offset: int, data: bytes) -> None:
        nonlocal got
        if offset != got:
            raise FormatError(f"{url}: delta bytes arrived out of order", what="delta")
        digest.update(data)
        decoder.feed(data)
        got += len(data)
        meter.add_network(len(data))

    try:
        fetcher.fetch_ranges(url, [(0, d.size)], sink, cancel)
        if got != d.size or digest.hexdigest() != d.sha256:
            raise HashMismatchError(f"{url}: delta does not match the manifest",
                                    expected=d.sha256, url=url)
        decoder.finish()
        then()
    finally:
        decoder.close()


def _to_temp(hop: Hop, base: Path, tmp: Path, fetcher: Fetcher, cancel: CancelToken,
             meter: Meter) -> None:
    """A hop before the last: its output written to ``tmp`` in order, hashed as written,
    checked against the SHA-256 its release's manifest gives."""
    sha = hashlib.sha256()
    with open(tmp, "wb") as out:
        def write(data: bytes | memoryview, offset: int) -> None:
            if offset != out.tell():
                raise FormatError("delta output out of order", what="delta")
            sha.update(data)
            out.write(data)

        _fetch_decode(hop, base, write, fetcher, cancel, meter)
    if sha.hexdigest() != hop.sha256:
        raise HashMismatchError(f"{hop.url}: delta rebuilds another file",
                                expected=hop.sha256, actual=sha.hexdigest(), url=hop.url,
                                path=str(tmp))


def _to_staged(hop: Hop, base: Path, s: BlankFile, entry: FileEntry, fetcher: Fetcher,
               cancel: CancelToken, meter: Meter, sealer: Sealer) -> None:
    """The last hop: its output is the staged file, hashed behind the writes by the sealer
    and checked against the offered manifest's SHA-256 of the file."""
    # (the sealer's tail is hashed while the decoder's memory is freed)
    _fetch_decode(hop, base, s.write_at, fetcher, cancel, meter,
                  then=lambda: sealer.complete(s.fd))
    actual = sealer.result(s.fd, cancel, durable=False)
    if actual != entry.sha256:
        raise HashMismatchError(f"{hop.url}: delta rebuilds another file",
                                expected=entry.sha256, actual=actual, url=hop.url,
                                path=str(s.path))


def _mb(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    return f"{n / 1e3:.1f} kB" if n < 1_000_000 else f"{n / 1e6:.1f} MB"
