"""Signed releases end to end: stitch keygen/publish --sign-key, the real minisign on both
sides, pinning on first use, rotation, and every refusal the trust policy makes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.engine.updater import Updater, UpdaterConfig
from core.errors import ExpiredError, FormatError, SignatureError
from core.formats import signing
from core.publisher.publish import publish
from tests.conftest import MEM, memory_fetcher, need_tool, tree_digest

STITCH = [sys.executable, "-m", "app.cli"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[signing.SecretKey, signing.PublicKey,
                                                             signing.SecretKey, Path]:
    d = tmp_path_factory.mktemp("keys")
    pub = signing.keygen(d / "release.key", None)
    other = d / "other.key"
    signing.keygen(other, None)
    return (signing.load_secret_key((d / "release.key").read_bytes(), None), pub,
            signing.load_secret_key(other.read_bytes(), None), d)


def _update(install: Path, repo: Path, **kw: object):  # type: ignore[no-untyped-def]
    up = Updater(UpdaterConfig(url=MEM, install_dir=install, **kw),  # type: ignore[arg-type]
                 fetcher=memory_fetcher(repo))
    return up.update()


def _manifest_path(repo: Path, version: str) -> Path:
    return repo / "stable" / version / "release.json"


def test_signed_release_with_configured_key(tmp_path: Path, game, keys) -> None:  # type: ignore[no-untyped-def]
    key, pub, _, _ = keys
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0", sign_key=key)
    r = _update(tmp_path / "i", repo, pubkeys=(pub.b64(),))
    assert r.warnings == () and tree_digest(tmp_path / "i") == tree_digest(game[0])


@pytest.mark.parametrize("damage", ["strip", "other key", "flip manifest", "flip signature",
                                    "trusted comment"])
def test_bad_signatures_refused_and_nothing_installed(tmp_path: Path, game, keys,  # type: ignore[no-untyped-def]
                                                       damage: str) -> None:
    key, pub, other, _ = keys
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0", sign_key=other if damage == "other key" else key)
    sig = _manifest_path(repo, "1.0.0").with_suffix(".json.minisig")
    if damage == "strip":
        sig.unlink()
    elif damage == "flip manifest":
        # Changing the manifest means changing the pointer's digest too, as an attacker would.
        from tests.test_updater import _republish_with

        _republish_with(repo, lambda o: o.__setitem__("notes", "evil"))
    elif damage == "flip signature":
        lines = sig.read_bytes().split(b"\n")
        raw = bytearray(lines[1])
        raw[20] = ord("A") if raw[20] != ord("A") else ord("B")
        lines[1] = bytes(raw)
        sig.write_bytes(b"\n".join(lines))
    elif damage == "trusted comment":
        sig.write_bytes(sig.read_bytes().replace(b"trusted comment: stitch",
                                                 b"trusted comment: evil"))
    with pytest.raises(SignatureError):
        _update(tmp_path / "i", repo, pubkeys=(pub.b64(),))
    assert not (tmp_path / "i").exists() or tree_digest(tmp_path / "i") == {}


def test_key_rotation_any_configured_key(tmp_path: Path, game, keys) -> None:  # type: ignore[no-untyped-def]
    key, pub, other, _ = keys
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0", sign_key=key)
    both = (pub.b64(), other.public_key.b64())
    _update(tmp_path / "i", repo, pubkeys=both)
    publish(game[1], repo, "1.1.0", sign_key=other)  # the publisher moved to the new key
    r = _update(tmp_path / "i", repo, pubkeys=both)
    assert r.to_version == "1.1.0"


def test_unsigned_warns_then_first_signature_pins_and_stripping_fails(
        tmp_path: Path, game, keys) -> None:  # type: ignore[no-untyped-def]
    key, _, other, _ = keys
    repo = tmp_path / "repo"
    install = tmp_path / "i"
    publish(game[0], repo, "1.0.0")
    r = _update(install, repo)
    assert any("not signed" in w for w in r.warnings)
    publish(game[1], repo, "1.1.0", sign_key=key)
    r = _update(install, repo)
    assert any("trusting the key" in w for w in r.warnings)
    state = json.loads((install / ".stitch/state.json").read_text())
    assert state["pinned_keys"] == [key.public_key.b64()]
    # From now on: a release without signature, or signed by another key, is refused,
    # even with the server's minisign.pub replaced.
    before = tree_digest(install)
    publish(game[0], repo, "1.2.0")
    with pytest.raises(SignatureError):
        _update(install, repo)
    publish(game[0], repo, "1.3.0", sign_key=other)
    with pytest.raises(SignatureError):
        _update(install, repo)
    assert tree_digest(install) == before
    publish(game[0], repo, "1.4.0", sign_key=key)
    assert _update(install, repo).to_version == "1.4.0"


def test_expired_and_foreign_manifests_refused(tmp_path: Path, game) -> None:  # type: ignore[no-untyped-def]
    from tests.test_updater import _republish_with

    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0", product="quest")
    _republish_with(repo, lambda o: o.__setitem__("expires", "2001-01-01T00:00:00Z"))
    with pytest.raises(ExpiredError):
        _update(tmp_path / "a", repo)
    publish(game[0], repo, "1.0.1", product="quest")
    _update(tmp_path / "b", repo)
    publish(game[1], repo, "1.1.0", product="other-game")
    with pytest.raises(FormatError, match="quest"):
        _update(tmp_path / "b", repo)  # the install remembers its product
    with pytest.raises(FormatError, match="other-game"):
        _update(tmp_path / "c", repo, product="quest")
    publish(game[1], repo, "1.1.1", product="quest")
    _republish_with(repo, lambda o: o.__setitem__("channel", "beta"))
    with pytest.raises(FormatError, match="channel"):
        _update(tmp_path / "b", repo)


# --------------------------------------------------------------- the CLI and real minisign


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STITCH, *args], capture_output=True, text=True, timeout=120)


def test_cli_keygen_publish_update_and_minisign_verifies_ours(tmp_path: Path, game,  # type: ignore[no-untyped-def]
                                                               stitch_server) -> None:
    minisign = need_tool("minisign")
    key = tmp_path / "release.key"
    r = _run("keygen", str(key))
    assert r.returncode == 0 and (tmp_path / "release.key.pub").exists()
    repo = tmp_path / "repo"
    r = _run("publish", str(game[0]), str(repo), "--version", "1.0.0", "--sign-key", str(key))
    assert r.returncode == 0 and "signed" in r.stdout and "NOT signed" not in r.stdout
    manifest = _manifest_path(repo, "1.0.0")
    v = subprocess.run([minisign, "-V", "-p", str(tmp_path / "release.key.pub"), "-m",
                        str(manifest)], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    assert "stitch release" in v.stdout  # the trusted comment minisign printed
    url = stitch_server(repo).url
    install = tmp_path / "i"
    r = _run("update", "--url", url, "--dir", str(install), "--pubkey",
             str(tmp_path / "release.key.pub"))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr
    # The base64 form of the key works too; a wrong key is exit code 4.
    b64 = (tmp_path / "release.key.pub").read_text().splitlines()[1]
    assert _run("update", "--url", url, "--dir", str(install), "--pubkey", b64).returncode == 0
    other = tmp_path / "other.key"
    _run("keygen", str(other))
    r = _run("update", "--url", url, "--dir", str(tmp_path / "j"), "--pubkey",
             str(tmp_path / "other.key.pub"))
    assert r.returncode == 4 and "key" in r.stderr.lower()


def test_release_signed_with_the_real_minisign_installs(tmp_path: Path, game,  # type: ignore[no-untyped-def]
                                                         stitch_server) -> None:
    minisign = need_tool("minisign")
    g = subprocess.run([minisign, "-G", "-W", "-p", "mk.pub", "-s", "mk.key"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert g.returncode == 0, g.stderr
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0")  # unsigned by stitch...
    manifest = _manifest_path(repo, "1.0.0")
    s = subprocess.run([minisign, "-S", "-s", "mk.key", "-m", str(manifest), "-t",
                        "signed by the publisher's own minisign"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert s.returncode == 0, s.stderr  # ...then signed with minisign -S (prehashed)
    url = stitch_server(repo).url
    r = _run("update", "--url", url, "--dir", str(tmp_path / "i"), "--pubkey",
             str(tmp_path / "mk.pub"), "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert tree_digest(tmp_path / "i") == tree_digest(game[0])
    shutil.rmtree(tmp_path / "i")
    manifest.with_suffix(".json.minisig").write_text("untrusted comment: x\nnonsense\n")
    r = _run("update", "--url", url, "--dir", str(tmp_path / "i"), "--pubkey",
             str(tmp_path / "mk.pub"))
    assert r.returncode == 4


@pytest.mark.parametrize("bust", [True, False])
def test_only_the_pointer_is_fetched_fresh(tmp_path: Path, game, bust: bool) -> None:  # type: ignore[no-untyped-def]
    """latest.json changes under its URL, so it is asked past every cache (with the query
    unless the config turns it off); the manifest and files are versioned paths that a
    cache may keep."""
    repo = tmp_path / "repo"
    publish(game[0], repo, "1.0.0")
    fetcher = memory_fetcher(repo)
    Updater(UpdaterConfig(url=MEM, install_dir=tmp_path / "i", cache_bust=bust),
            fetcher=fetcher).update()
    assert fetcher.fresh == [(f"{MEM}/stable/latest.json", bust)]
    assert len(fetcher.requests) > 3  # the rest went through fetch / fetch_ranges


def test_nothing_new_costs_one_request_and_a_key_change_fetches_again(
        tmp_path: Path, game, keys) -> None:  # type: ignore[no-untyped-def]
    """A launcher's run that finds the installed release current checks the local copies of
    its manifest and signature (one request: the pointer). When those no longer pass (the
    release was re-signed with a new key and only that key is trusted now), the server's
    copies are fetched and decide."""
    key, pub, other, d = keys
    repo, install = tmp_path / "repo", tmp_path / "i"
    publish(game[0], repo, "1.0.0", sign_key=key)
    _update(install, repo, pubkeys=(pub.b64(),))

    fetcher = memory_fetcher(repo)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install, pubkeys=(pub.b64(),)),
                 fetcher=fetcher)
    assert up.check().up_to_date
    assert [u for u, _ in fetcher.requests] == [f"{MEM}/stable/latest.json"]

    # Re-signed with the other key; the install now trusts only that one.
    manifest = _manifest_path(repo, "1.0.0")
    sig = manifest.with_suffix(".json.minisig")
    sig.write_bytes(signing.sign(manifest.read_bytes(), other, "re-signed"))
    other_pub = signing.parse_public_key((d / "other.key.pub").read_text())
    fetcher = memory_fetcher(repo)
    up = Updater(UpdaterConfig(url=MEM, install_dir=install, pubkeys=(other_pub.b64(),)),
                 fetcher=fetcher)
    result = up.check()
    assert result.up_to_date and result.signed
    asked = [u for u, _ in fetcher.requests]
    assert asked[0] == f"{MEM}/stable/latest.json"
    assert sorted(asked[1:]) == sorted([f"{MEM}/stable/1.0.0/release.json",
                                        f"{MEM}/stable/1.0.0/release.json.minisig"])
    # With a key that signed neither copy, nothing is trusted: refused as before.
    third = signing.keygen(tmp_path / "third.key", None)
    with pytest.raises(SignatureError):
        Updater(UpdaterConfig(url=MEM, install_dir=install, pubkeys=(third.b64(),)),
                fetcher=memory_fetcher(repo)).check()


def test_install_with_pubkey_pins_it_and_a_run_without_trusts_only_that_key(
        tmp_path: Path, game, stitch_server) -> None:  # type: ignore[no-untyped-def]
    """The key an install was verified with is pinned: a later run without --pubkey refuses
    a release re-signed with another key (and the server's minisign.pub swapped for it),
    exit 4, install untouched. Configuring the new key is the rotation path: it verifies,
    and is pinned from then on."""
    assert _run("keygen", str(tmp_path / "a.key")).returncode == 0
    assert _run("keygen", str(tmp_path / "b.key")).returncode == 0
    pub_a = (tmp_path / "a.key.pub").read_text().splitlines()[1]
    pub_b = (tmp_path / "b.key.pub").read_text().splitlines()[1]
    repo, install = tmp_path / "repo", tmp_path / "i"
    assert publish_cli(game[0], repo, "1.0.0", tmp_path / "a.key").returncode == 0
    url = stitch_server(repo).url
    up = ("update", "--url", url, "--dir", str(install), "--progress", "none")
    r = _run(*up, "--pubkey", str(tmp_path / "a.key.pub"))
    assert r.returncode == 0, r.stderr
    state = json.loads((install / ".stitch/state.json").read_text())
    assert state["pinned_keys"] == [pub_a]

    # The server now offers 1.1.0 signed with key B, and publishes B as minisign.pub.
    assert publish_cli(game[1], repo, "1.1.0", tmp_path / "b.key").returncode == 0
    assert pub_b in (repo / "stable/minisign.pub").read_text()
    before = tree_digest(install)
    r = _run(*up)
    assert r.returncode == 4, r.stderr
    assert "key" in r.stderr.lower()
    assert tree_digest(install) == before
    assert json.loads((install / ".stitch/state.json").read_text())["pinned_keys"] == [pub_a]

    # Rotation: the player (or updater.toml) configures B; it verifies and is pinned.
    r = _run(*up, "--pubkey", pub_b)
    assert r.returncode == 0, r.stderr
    assert tree_digest(install) == tree_digest(game[1])
    assert json.loads((install / ".stitch/state.json").read_text())["pinned_keys"] == [pub_b]
    assert publish_cli(game[0], repo, "1.2.0", tmp_path / "b.key").returncode == 0
    assert _run(*up).returncode == 0  # B pinned: trusted without --pubkey
    assert publish_cli(game[1], repo, "1.3.0", tmp_path / "a.key").returncode == 0
    assert _run(*up).returncode == 4  # A no longer


def test_an_up_to_date_run_with_pubkey_pins_the_key(tmp_path: Path, game, keys) -> None:  # type: ignore[no-untyped-def]
    """An install whose state pins nothing (made by an older stitch) pins the configured key
    on its next run, even when nothing is new."""
    key, pub, _, _ = keys
    repo, install = tmp_path / "repo", tmp_path / "i"
    publish(game[0], repo, "1.0.0", sign_key=key)
    _update(install, repo, pubkeys=(pub.b64(),))
    path = install / ".stitch/state.json"
    state = json.loads(path.read_text())
    state["pinned_keys"] = []
    path.write_text(json.dumps(state))
    assert _update(install, repo, pubkeys=(pub.b64(),)).outcome.value == "up-to-date"
    assert json.loads(path.read_text())["pinned_keys"] == [pub.b64()]


def publish_cli(src: Path, repo: Path, version: str, key: Path) -> subprocess.CompletedProcess[str]:
    return _run("publish", str(src), str(repo), "--version", version, "--sign-key", str(key))
