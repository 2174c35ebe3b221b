"""app/launch.py: the game starts without the packaged updater's bundle in its DLL search
path or environment (PyInstaller's "Launching external programs from the frozen
application")."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from app import launch
from app.launch import dll_search_reset, game_environment

WIN_BUNDLE = r"C:\Users\p\AppData\Local\Temp\_MEI12345"


def test_windows_bundle_paths_are_dropped() -> None:
    environ = {
        # The PySide6 run-time hook prepends the bundle to PATH and points Qt at it.
        "PATH": WIN_BUNDLE + r";C:\Windows\system32;C:\Windows;c:\users\p\appdata\local\temp"
                r"\_mei12345\PySide6",
        "QT_PLUGIN_PATH": WIN_BUNDLE + r"\PySide6\plugins",
        "QML2_IMPORT_PATH": WIN_BUNDLE + r"\PySide6\qml",
        "_PYI_APPLICATION_HOME_DIR": WIN_BUNDLE,
        "_PYI_ARCHIVE_FILE": r"C:\Games\dcrawl\stitch.exe",
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "GAME_LANG": "de",
        "PATHEXT": ".COM;.EXE",
        # A folder that merely starts with the same letters is not in the bundle.
        "OTHER": WIN_BUNDLE + "0;D:\\x",
    }
    env = game_environment(environ, WIN_BUNDLE, windows=True)
    assert env == {
        "PATH": r"C:\Windows\system32;C:\Windows",
        "GAME_LANG": "de",
        "PATHEXT": ".COM;.EXE",
        "OTHER": WIN_BUNDLE + "0;D:\\x",
        "PYINSTALLER_RESET_ENVIRONMENT": "1",
    }
    assert environ["QT_PLUGIN_PATH"]  # the updater's own environment is not changed


def test_linux_library_path_is_restored_from_orig() -> None:
    bundle = "/tmp/_MEIabc"
    environ = {"LD_LIBRARY_PATH": bundle + ":/opt/game/lib",
               "LD_LIBRARY_PATH_ORIG": "/opt/game/lib", "PATH": "/usr/bin:/bin",
               "QT_PLUGIN_PATH": bundle + "/PySide6/Qt/plugins", "HOME": "/home/p"}
    env = game_environment(environ, bundle, windows=False)
    assert env == {"LD_LIBRARY_PATH": "/opt/game/lib", "PATH": "/usr/bin:/bin",
                   "HOME": "/home/p", "PYINSTALLER_RESET_ENVIRONMENT": "1"}
    # No LD_LIBRARY_PATH before the bundle: none for the game.
    env = game_environment({"LD_LIBRARY_PATH": bundle, "HOME": "/h"}, bundle, windows=False)
    assert "LD_LIBRARY_PATH" not in env and env["HOME"] == "/h"


def test_not_frozen_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert launch.bundle_dir() is None
    environ = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x"}
    assert game_environment(environ, None) == environ


class FakeKernel32:
    def __init__(self, current: str) -> None:
        self.current = current
        self.calls: list[Any] = []

    def GetDllDirectoryW(self, size: int, buf: Any) -> int:
        buf.value = self.current
        return len(self.current)

    def SetDllDirectoryW(self, path: str | None) -> int:
        self.calls.append(path)
        self.current = path or ""
        return 1


def test_dll_directory_is_reset_around_the_start() -> None:
    k32 = FakeKernel32(WIN_BUNDLE)
    seen = []
    with dll_search_reset(k32, windows=True, frozen=True):
        seen.append(k32.current)
    assert k32.calls == [None, WIN_BUNDLE]  # SetDllDirectoryW(NULL), then put back
    assert seen == [""]
    k32 = FakeKernel32(WIN_BUNDLE)
    with dll_search_reset(k32, windows=True, frozen=False):
        pass
    with dll_search_reset(k32, windows=False, frozen=True):
        pass
    assert k32.calls == []


def test_the_game_gets_the_clean_environment(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """launch_detached as the frozen updater runs it (sys.frozen, sys._MEIPASS): what it hands
    to Popen."""
    bundle = str(tmp_path / "_MEIxyz")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", bundle, raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", bundle)
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG", raising=False)
    monkeypatch.setenv("QT_PLUGIN_PATH", bundle + "/PySide6/Qt/plugins")
    monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + bundle)
    started: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(launch.subprocess, "Popen",
                        lambda argv, **kw: started.append((argv, kw)))
    resets: list[bool] = []

    class Reset:
        def __enter__(self) -> None:
            resets.append(True)

        def __exit__(self, *exc: object) -> None:
            resets.append(False)

    monkeypatch.setattr(launch, "dll_search_reset", Reset)
    launch.launch_detached(["game", "--fast"], tmp_path)
    ((argv, kw),) = started
    assert argv == ["game", "--fast"] and kw["cwd"] == str(tmp_path)
    env = kw["env"]
    assert "QT_PLUGIN_PATH" not in env
    assert bundle not in env["PATH"].split(os.pathsep)
    if sys.platform != "win32":
        assert "LD_LIBRARY_PATH" not in env
    assert env["PYINSTALLER_RESET_ENVIRONMENT"] == "1"
    assert resets == [True, False]  # started inside the DLL search reset
