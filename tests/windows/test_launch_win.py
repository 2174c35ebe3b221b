"""Starting the game under the Windows CPython with the real kernel32: the DLL search folder
PyInstaller's bootloader sets is reset around the start and put back after, and the game
gets an environment without the bundle's paths (app/launch.py)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import launch

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the Windows API")


def _dll_directory() -> str:
    k32 = launch._kernel32()
    buf = ctypes.create_unicode_buffer(32768)
    n = k32.GetDllDirectoryW(32768, buf)
    return buf.value if n else ""


def test_the_dll_directory_is_reset_for_the_start_and_put_back(tmp_path: Path) -> None:
    k32 = launch._kernel32()
    bundle = str(tmp_path / "_MEI12345")
    os.mkdir(bundle)
    assert k32.SetDllDirectoryW(bundle)  # what the bootloader does
    try:
        with launch.dll_search_reset(frozen=True):
            assert _dll_directory() == ""
        assert _dll_directory() == bundle
    finally:
        k32.SetDllDirectoryW(None)


def test_the_game_starts_with_the_clean_environment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = str(tmp_path / "_MEIabc")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", bundle, raising=False)
    monkeypatch.setenv("PATH", bundle + ";" + os.environ["PATH"])
    monkeypatch.setenv("QT_PLUGIN_PATH", bundle + r"\PySide6\plugins")
    out = tmp_path / "env.txt"
    script = tmp_path / "game.py"
    script.write_text("import os, sys\n"
                      "tmp = sys.argv[1] + '.tmp'\n"
                      "open(tmp, 'w').write(repr(sorted(os.environ.items())))\n"
                      "os.replace(tmp, sys.argv[1])\n")
    # The Popen the launcher makes, waited for here through its process handle.
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        p = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(p)
        return p

    monkeypatch.setattr(launch.subprocess, "Popen", popen)
    launch.launch_detached([sys.executable, str(script), str(out)], tmp_path)
    assert started[0].wait(120) == 0
    env = {k.upper(): v for k, v in eval(out.read_text())}
    assert "QT_PLUGIN_PATH" not in env
    assert bundle.lower() not in env["PATH"].lower()
    assert env["PYINSTALLER_RESET_ENVIRONMENT"] == "1"
