"""Indexes on one host, file bytes on another: ``stitch publish --files-url`` (the URL is in
the signed manifest) and ``stitch fidx --url`` (a source sidecar for ``stitch sync``). Two
``stitch serve`` instances on loopback; their byte counters say what came from where."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.chunks.chunker import DEFAULT_PARAMS
from core.chunks.indexer import V1_PARAMS, write_beside
from core.engine.sync import SyncConfig, sync
from core.engine.updater import Outcome, Updater, UpdaterConfig
from core.formats.listing import encode_source
from core.formats.signing import SecretKey, generate_keypair, load_secret_key
from core.publisher.publish import publish
from tests.conftest import tree_digest


def _split(repo: Path, mirror: Path, version: str) -> None:
    """Move the file bytes of ``version`` to the mirror; only indexes stay in the repo."""
    files = repo / "stable" / version / "files"
    for p in sorted(files.rglob("*")):
        if p.is_file() and not p.name.endswith((".fidx", ".fidx.groups")):
            dest = mirror / version / p.relative_to(files)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(p, dest)


def _metadata(repo: Path, version: str, paths: list[str], tables: bool = False) -> int:
    """Bytes of the pointer, manifest, signature and indexes (with ``tables``, their group
    tables too: an update may fetch a table and only part of its index)."""
    chan = repo / "stable"
    files = chan / version / "files"
    return sum(p.stat().st_size for p in [
        chan / "latest.json", chan / version / "release.json",
        chan / version / "release.json.minisig",
        *[files / (rel + ".fidx") for rel in paths],
        *[files / (rel + ".fidx.groups") for rel in paths
          if tables and (files / (rel + ".fidx.groups")).is_file()]])


def _key() -> SecretKey:
    secret, _pub = generate_keypair()
    return load_secret_key(secret, None)


def _update(url: str, install: Path, pubkey: str):  # type: ignore[no-untyped-def]
    up = Updater(UpdaterConfig(url=url, install_dir=install, pubkeys=(pubkey,)))
    try:
        return up.prepare(), up.update()
    finally:
        up.close()


def test_manifest_from_one_server_file_bytes_from_another(
        tmp_path: Path, game: tuple[Path, Path], stitch_server) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = game
    repo, mirror, install = tmp_path / "repo", tmp_path / "mirror", tmp_path / "install"
    repo.mkdir()
    mirror.mkdir()
    key = _key()
    a = stitch_server(repo)
    b = stitch_server(mirror)

    publish(v1, repo, "1.0.0", sign_key=key, files_url=b.url + "1.0.0/")
    _split(repo, mirror, "1.0.0")
    _, r = _update(a.url, install, key.public_key.b64())
    assert r.outcome is Outcome.UPDATED
    assert tree_digest(install) == tree_digest(v1)
    all_files = list(tree_digest(v1))
    total = sum(len(x) for x in tree_digest(v1).values())
    assert a.bytes_sent == _metadata(repo, "1.0.0", all_files)  # manifest and indexes only
    assert total <= b.bytes_sent <= total * 1.02  # every file byte, from the mirror

    # An update: the bytes it plans to download come from the mirror, nothing else does.
    publish(v2, repo, "1.1.0", sign_key=key, files_url=b.url + "1.1.0/")
    _split(repo, mirror, "1.1.0")
    a0, b0 = a.bytes_sent, b.bytes_sent
    plan, r = _update(a.url, install, key.public_key.b64())
    assert tree_digest(install) == tree_digest(v2)
    changed = [p for p in tree_digest(v2) if not (v1 / p).is_file()
               or (v1 / p).read_bytes() != (v2 / p).read_bytes()]
    # Metadata only from the repo: at most the manifest, tables and whole indexes (plus
    # multipart framing when only some index records are fetched).
    assert _metadata(repo, "1.1.0", []) < a.bytes_sent - a0 \
        <= _metadata(repo, "1.1.0", changed, tables=True) + 1000
    got = b.bytes_sent - b0
    assert plan.bytes_to_download <= got <= plan.bytes_to_download * 1.05 + 2000
    assert got < 0.5 * total


def test_a_lying_mirror_is_caught_by_the_signed_digests(
        tmp_path: Path, game: tuple[Path, Path], stitch_server) -> None:  # type: ignore[no-untyped-def]
    v1, _ = game
    repo, mirror, install = tmp_path / "repo", tmp_path / "mirror", tmp_path / "install"
    repo.mkdir()
    mirror.mkdir()
    key = _key()
    a, b = stitch_server(repo), stitch_server(mirror)
    publish(v1, repo, "1.0.0", sign_key=key, files_url=b.url + "1.0.0/")
    _split(repo, mirror, "1.0.0")
    wad = mirror / "1.0.0/data/game.wad"
    data = bytearray(wad.read_bytes())
    data[1000] ^= 1
    wad.write_bytes(bytes(data))
    from core.errors import HashMismatchError

    try:
        _update(a.url, install, key.public_key.b64())
        raise AssertionError("a bad mirror byte was accepted")
    except HashMismatchError:
        pass
    assert not (install / "data/game.wad").exists()


def test_sync_index_here_bytes_there(tmp_path: Path, game: tuple[Path, Path],
                                     stitch_server) -> None:  # type: ignore[no-untyped-def]
    """``stitch fidx --url``: the sidecar beside the index sends ``stitch sync`` to the
    upstream host for the file's bytes."""
    v1, v2 = game
    idx_dir, upstream, local = tmp_path / "idx", tmp_path / "up", tmp_path / "local"
    idx_dir.mkdir()
    upstream.mkdir()
    local.mkdir()
    b = stitch_server(upstream)
    for name, params in (("game.wad", V1_PARAMS), ("assets.pak", DEFAULT_PARAMS)):
        shutil.copyfile(v2 / "data" / name, upstream / name)
        shutil.copyfile(v1 / "data" / name, local / name)
        write_beside(upstream / name, params)
        shutil.move(upstream / (name + ".fidx"), idx_dir / (name + ".fidx"))
        (idx_dir / (name + ".fidx.json")).write_bytes(encode_source(b.url + name))
    a = stitch_server(idx_dir)
    result = sync(SyncConfig(a.url, local))
    for name in ("game.wad", "assets.pak"):
        assert (local / name).read_bytes() == (v2 / "data" / name).read_bytes()
    assert {f.source_url for f in result.files} == {b.url + "game.wad", b.url + "assets.pak"}
    remote = sum(f.bytes_remote for f in result.files)
    assert remote <= b.bytes_sent <= remote * 1.05 + 2000
    side = sum(p.stat().st_size for p in idx_dir.iterdir())
    assert side <= a.bytes_sent <= side + 5000  # indexes, sidecars and the listing page
