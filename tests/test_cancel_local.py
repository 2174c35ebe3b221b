"""SIGTERM and Ctrl+C end a run promptly in the local phases too (issue 13, item 9: "in
every phase"): a real ``stitch update`` of a 1 GiB file, signalled as soon as it says it
entered the scan (reading the old file for its chunks) or the rebuild (copying them into
the new one). The network phases and the waits are in tests/test_deadlines.py and
tests/test_lock.py.

No wall-clock limit: the bound is a ratio within the test's own runs. An uncancelled run
first shows how long each phase lasts here; a run that looked at the signal only at the
end of the phase would take about that long after it, a prompt one a small part of it."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.serve import make_server
from core.publisher.publish import publish
from tests.test_cli import STITCH

pytestmark = pytest.mark.slow

SIZE = 1 << 30  # big enough that scan and rebuild each last seconds, not milliseconds
BLOCK = 1 << 24
EDITS = 20  # 3,000-byte edits spread over the file: a small download, a big rebuild


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


@dataclass
class Big:
    url: str
    installed: Path  # 1.0.0, installed; each run works on a copy
    old_sha: str
    phases: dict[str, float]  # seconds each phase lasted in an uncancelled update


def _update(url: str, install: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*STITCH, "update", "--url", url, "--dir", str(install),
                             "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _phase_lengths(proc: subprocess.Popen[str]) -> dict[str, float]:
    assert proc.stdout is not None
    starts: dict[str, float] = {}
    last: dict[str, object] = {}
    for line in proc.stdout:
        last = json.loads(line)
        phase = last.get("phase")
        if isinstance(phase, str):
            starts.setdefault(phase, time.monotonic())
    assert proc.wait(timeout=600) == 0, (last, proc.stderr.read() if proc.stderr else "")
    order = sorted(starts, key=starts.__getitem__)
    return {a: starts[b] - starts[a] for a, b in itertools.pairwise(order)}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Big]:
    base = tmp_path_factory.mktemp("bigcancel")
    v1, v2, repo = base / "v1", base / "v2", base / "repo"
    v1.mkdir()
    v2.mkdir()
    with open(v1 / "big.bin", "wb") as f:
        for _ in range(SIZE // BLOCK):
            f.write(os.urandom(BLOCK))
    shutil.copyfile(v1 / "big.bin", v2 / "big.bin")
    with open(v2 / "big.bin", "r+b") as f:
        for i in range(EDITS):
            f.seek(i * (SIZE // EDITS) + 12_345)
            f.write(os.urandom(3000))
    publish(v1, repo, "1.0.0")
    server = make_server(repo, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = str(server.url)
        installed = base / "installed"
        assert _update(url, installed).wait(timeout=600) == 0
        publish(v2, repo, "1.1.0")
        shutil.rmtree(v1)
        shutil.rmtree(v2)
        shutil.copytree(installed, base / "probe")
        phases = _phase_lengths(_update(url, base / "probe"))
        shutil.rmtree(base / "probe")
        yield Big(url, installed, _sha256(installed / "big.bin"), phases)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("phase", "sig"), [
    ("scan", signal.SIGTERM), ("rebuild", signal.SIGTERM), ("rebuild", signal.SIGINT),
])
def test_a_signal_in_a_local_phase_ends_the_run_promptly(
        big: Big, tmp_path: Path, phase: str, sig: signal.Signals) -> None:
    lasted = big.phases[phase]
    install = tmp_path / "install"
    shutil.copytree(big.installed, install)
    proc = _update(big.url, install)
    assert proc.stdout is not None
    for line in proc.stdout:  # bounded: the run ends
        if json.loads(line).get("phase") == phase:
            break
    else:
        pytest.fail(f"the run never said it entered {phase}")
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=600)
    took = time.monotonic() - sent
    assert proc.returncode == 6, err
    assert json.loads(out.splitlines()[-1])["kind"] == "cancelled"
    # Ended within a small part of what the phase lasts uncancelled (seconds here).
    assert took < lasted / 3, (took, big.phases)
    # The old release, untouched; the new one never committed.
    assert _sha256(install / "big.bin") == big.old_sha
    assert json.loads((install / ".stitch/state.json").read_text())["version"] == "1.0.0"
