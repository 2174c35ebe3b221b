"""Manifest deltas (``release.json.<16 hex>.zdelta``, docs/format.md §4).

A player with an earlier release installed fetches the new manifest as a zstd delta of the
one it has, named in ``latest.json``; what it decodes to must match the pointer's SHA-256
and then the signature, as a fetched manifest must. Anything wrong and the full manifest is
fetched: the update is the same either way. Served by a real nginx; the requests it logged
say which was fetched.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.errors import FormatError
from core.formats import manifest_delta
from core.formats.manifest import Pointer, encode_pointer, parse_pointer
from core.formats.signing import SecretKey, generate_keypair, load_secret_key
from core.net.http import HttpFetcher
from core.publisher.publish import publish
from tests.conftest import tree_digest

VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]


def _trees(tmp_path: Path, files: int = 120) -> list[Path]:
    """Releases of a many-file package: each changes two files of ``files``."""
    rng = random.Random(4)
    contents = {f"lib/m{i:03}.js": rng.randbytes(2000) for i in range(files)}
    out = []
    for v in range(len(VERSIONS)):
        for _ in range(2):
            name = rng.choice(sorted(contents))
            contents[name] = rng.randbytes(2000)
        d = tmp_path / f"v{v}"
        for name, data in contents.items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(data)
        out.append(d)
    return out


def _key() -> SecretKey:
    secret, _pub = generate_keypair()
    return load_secret_key(secret, None)


def _asked(log: Path, since: int) -> list[tuple[int, str]]:
    out = []
    for line in log.read_text().splitlines()[since:]:
        m = re.match(r'(\d+) (\d+) "GET (\S+) [^"]*"', line)
        if m:
            out.append((int(m.group(2)), m.group(3).split("?")[0]))
    return out


def _update(url: str, install: Path, pubkey: str) -> None:
    f = HttpFetcher()
    try:
        up = Updater(UpdaterConfig(url=url, install_dir=install, pubkeys=(pubkey,)), fetcher=f)
        assert up.update().outcome is Outcome.UPDATED
    finally:
        f.close()


@pytest.fixture
def channel(tmp_path: Path, nginx, www: Path):  # type: ignore[no-untyped-def]
    """Five signed releases (deltas from the last two), an install left on each of the
    first four."""
    trees = _trees(tmp_path)
    repo = www / "repo"
    repo.mkdir()
    server = nginx(repo)
    key = _key()
    pub = key.public_key.b64()
    installs = []
    for n, (tree, version) in enumerate(zip(trees, VERSIONS, strict=True)):
        publish(tree, repo, version, deltas=True, delta_releases=2, sign_key=key)
        if n < len(VERSIONS) - 1:
            install = tmp_path / f"install-{version}"
            _update(server.url, install, pub)
            installs.append(install)
    return trees, repo, server, installs, pub


@pytest.mark.nginx
def test_players_up_to_k_behind_fetch_the_manifest_as_a_delta(channel) -> None:  # type: ignore[no-untyped-def]
    trees, repo, server, installs, pub = channel
    chan = repo / "stable"
    pointer = parse_pointer((chan / "latest.json").read_bytes())
    full = (chan / "1.4.0/release.json").read_bytes()
    named = sorted(pointer.manifest_deltas)
    # One delta from each of the last two releases' manifests, each far smaller.
    assert len(named) == 2
    for d in named:
        made = (chan / f"1.4.0/release.json.{d}.zdelta").stat().st_size
        assert made < len(full) // 5, (made, len(full))
    for install, version in zip(installs, VERSIONS, strict=False):
        since = len(server.log.read_text().splitlines())
        had = _sha(install / ".stitch/installed/release.json")[:16]
        _update(server.url, install, pub)
        assert tree_digest(install) == tree_digest(trees[-1])
        asked = [p for status, p in _asked(server.log, since) if status < 400]
        behind = len(VERSIONS) - 1 - VERSIONS.index(version)
        of_manifest = sorted(p for p in asked if p.startswith("/stable/1.4.0/release.json"))
        if behind <= 2:
            assert had in named
            assert of_manifest == [f"/stable/1.4.0/release.json.{had}.zdelta",
                                   "/stable/1.4.0/release.json.minisig"], asked
        else:
            assert had not in named
            assert of_manifest == ["/stable/1.4.0/release.json",
                                   "/stable/1.4.0/release.json.minisig"], asked
        # Installed is exactly the new manifest: the next check costs one request.
        assert (install / ".stitch/installed/release.json").read_bytes() == full


@pytest.mark.nginx
def test_a_bad_manifest_delta_falls_back_to_the_manifest(channel) -> None:  # type: ignore[no-untyped-def]
    trees, repo, server, installs, pub = channel
    chan = repo / "stable"
    pointer = parse_pointer((chan / "latest.json").read_bytes())
    # Damage every manifest delta: one does not decode, the other decodes to other bytes.
    first, second = sorted(pointer.manifest_deltas)
    bad = chan / f"1.4.0/release.json.{first}.zdelta"
    bad.write_bytes(bad.read_bytes()[::-1])
    other = chan / f"1.4.0/release.json.{second}.zdelta"
    base = next(chan / v / "release.json" for v in VERSIONS
                if (chan / v / "release.json").exists()
                and _sha(chan / v / "release.json").startswith(second))
    other.write_bytes(manifest_delta.make(base.read_bytes(), b'{"not": "it"}'))
    for install in installs[2:]:  # the two players a delta is named for
        since = len(server.log.read_text().splitlines())
        _update(server.url, install, pub)
        assert tree_digest(install) == tree_digest(trees[-1])
        asked = [p for _, p in _asked(server.log, since)]
        assert "/stable/1.4.0/release.json" in asked, asked  # fetched after the delta failed
        assert [p for p in asked if p.endswith(".zdelta") and "release.json" in p], asked


def _sha(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_make_and_decode() -> None:
    rng = random.Random(7)
    old = b"".join(rng.randbytes(40).hex().encode() + b"\n" for _ in range(2000))
    new = old[:30000] + b"changed line\n" + old[30100:]
    made = manifest_delta.make(old, new)
    assert len(made) < 300
    assert manifest_delta.decode(old, made, len(new)) == new
    with pytest.raises(FormatError, match="more than"):
        manifest_delta.decode(old, made, len(new) - 1)
    with pytest.raises(FormatError, match="does not decode"):
        manifest_delta.decode(old, made[::-1], len(new))
    assert manifest_delta.name_for("a/release.json", "ab" * 32) == (
        "a/release.json.abababababababab.zdelta")


def test_the_pointer_names_manifest_deltas() -> None:
    p = Pointer("1.1.0", "1.1.0/release.json", "00" * 32, ("0123456789abcdef",))
    assert parse_pointer(encode_pointer(p)) == p
    plain = Pointer("1.1.0", "1.1.0/release.json", "00" * 32)
    assert b"manifest_deltas" not in encode_pointer(plain)
    assert parse_pointer(encode_pointer(plain)) == plain
    for bad in (["0123"], ["0123456789ABCDEF"], "0123456789abcdef", ["0" * 16] * 17, [1]):
        text = encode_pointer(plain).replace(
            b'"format"', b'"manifest_deltas": ' + repr(bad).replace("'", '"').encode()
            + b', "format"')
        with pytest.raises(FormatError, match="manifest_deltas"):
            parse_pointer(text)
