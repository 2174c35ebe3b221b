"""End to end on Windows CPython: publish signed releases, then install and update them with
the CLI (a Windows child process) against nginx on 127.0.0.1 (started on the Linux side by
tests/windows/run) and against ``stitch serve`` run by this Windows Python. Every file's
bytes are compared with the published ones."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from core.formats import signing
from core.publisher.publish import publish
from tests.conftest import tree_digest
from tests.windows.conftest import LinuxNginx


def _keys(folder: Path) -> tuple[object, str]:
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "release.key"
    pub = signing.keygen(key_file, None)
    return signing.load_secret_key(key_file.read_bytes(), None), pub.b64()


def _update(url: str, install: Path, pub: str, *extra: str) -> dict[str, object]:
    """``python -m app.cli update`` as a child process; the JSON result event."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "update", "--url", url, "--dir", str(install),
         "--pubkey", pub, "--progress", "json", *extra],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert events and events[-1]["event"] == "result", done.stdout
    return events[-1]


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in root.rglob("*") if p.is_file() and ".stitch" not in p.parts}


def test_signed_install_then_update_through_nginx(
    tmp_path: Path, game: tuple[Path, Path], linux_nginx: LinuxNginx
) -> None:
    v1, v2 = game
    key, pub = _keys(tmp_path)
    repo, url = linux_nginx.folder()
    install = tmp_path / "Program Files ü" / "game"  # a space and a non-ASCII letter

    publish(v1, repo, "1.0.0", product="demo", sign_key=key)
    first = _update(url, install, pub)
    assert first["outcome"] == "updated" and first["to_version"] == "1.0.0"
    assert tree_digest(install) == tree_digest(v1)

    publish(v2, repo, "1.1.0", product="demo", sign_key=key, deltas=True)
    second = _update(url, install, pub)
    assert second["outcome"] == "updated" and second["to_version"] == "1.1.0"
    assert int(second["bytes_reused"]) > 0  # type: ignore[call-overload]
    assert tree_digest(install) == tree_digest(v2)
    if linux_nginx.log is not None:  # the update asked nginx for byte ranges
        assert any(line.startswith("206 ") for line in linux_nginx.log_lines())

    # Up to date: nothing downloaded, nothing rewritten.
    before = _mtimes(install)
    third = _update(url, install, pub)
    assert third["outcome"] == "up-to-date"
    assert _mtimes(install) == before
    assert tree_digest(install) == tree_digest(v2)


def test_compressed_release_from_stitch_serve(
    tmp_path: Path, game: tuple[Path, Path], stitch_server: functools.partial[object]
) -> None:
    """``stitch serve`` in this Windows Python; a compressed, sub-chunked release."""
    v1, v2 = game
    key, pub = _keys(tmp_path)
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0", product="demo", sign_key=key, compress=True)
    server = stitch_server(repo)
    url = server.url  # type: ignore[attr-defined]
    install = tmp_path / "install"
    assert _update(url, install, pub)["to_version"] == "1.0.0"
    assert tree_digest(install) == tree_digest(v1)

    publish(v2, repo, "2.0.0", product="demo", sign_key=key, compress=True, subchunks=True)
    result = _update(url, install, pub)
    assert result["outcome"] == "updated" and result["to_version"] == "2.0.0"
    assert tree_digest(install) == tree_digest(v2)


def test_wrong_key_is_refused_and_the_install_is_untouched(
    tmp_path: Path, game: tuple[Path, Path], stitch_server: functools.partial[object]
) -> None:
    v1, v2 = game
    key, pub = _keys(tmp_path)
    _, other_pub = _keys(tmp_path / "other")
    repo = tmp_path / "repo"
    publish(v1, repo, "1.0.0", product="demo", sign_key=key)
    server = stitch_server(repo)
    url = server.url  # type: ignore[attr-defined]
    install = tmp_path / "install"
    _update(url, install, pub)
    publish(v2, repo, "2.0.0", product="demo", sign_key=key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "update", "--url", url, "--dir", str(install),
         "--pubkey", other_pub, "--progress", "none"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 4, done.stderr  # release rejected (README's exit codes)
    assert tree_digest(install) == tree_digest(v1)
