"""Starting the game after an update (the window's Play button, ``stitch --update --launch``),
as a program of its own and not as a part of the packaged updater.

A PyInstaller bundle changes its own process to find its libraries, and a child inherits
every change unless it is undone (PyInstaller's "Launching external programs from the frozen
application"):

- Windows: the bootloader calls ``SetDllDirectoryW(<bundle folder>)``; a program started
  meanwhile searches that folder for its DLLs first and may load the updater's Qt, OpenSSL or
  VC runtime instead of its own. ``dll_search_reset()`` sets it back to the default
  (``SetDllDirectoryW(NULL)``) around the start of the game.
- Environment: the bootloader points ``LD_LIBRARY_PATH`` (Linux) at the bundle and keeps
  the user's own in ``LD_LIBRARY_PATH_ORIG``; the PySide6 run-time hook prepends the bundle to
  ``PATH`` (Windows) and sets ``QT_PLUGIN_PATH`` and ``QML2_IMPORT_PATH`` into it; the
  bootloader's ``_PYI_*`` variables describe this process. ``game_environment()`` gives the
  game the environment without any of it.

Outside a bundle both change nothing. Qt-free, so the CLI uses it too.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# Library paths the PyInstaller bootloader rewrites, keeping the user's value in NAME_ORIG.
_RESTORED = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "LIBPATH")


def bundle_dir() -> str | None:
    """The folder the running bundle's files are in (``sys._MEIPASS``), or None when not
    frozen."""
    if not getattr(sys, "frozen", False):
        return None
    meipass = getattr(sys, "_MEIPASS", None)
    return str(meipass) if meipass else None


def game_environment(environ: Mapping[str, str], bundle: str | None,
                     *, windows: bool | None = None) -> dict[str, str]:
    """``environ`` as it was before the bundle started: the ``*_ORIG`` library paths put back,
    every entry inside ``bundle`` dropped from every path list (``PATH``, ``QT_PLUGIN_PATH``
    ...), a variable left empty removed, the bootloader's own variables removed. A copy of
    ``environ`` when ``bundle`` is None."""
    env = dict(environ)
    if bundle is None:
        return env
    win = os.name == "nt" if windows is None else windows
    sep = ";" if win else ":"

    def norm(p: str) -> str:
        p = p.rstrip("\\/") if len(p) > 1 else p
        return p.replace("/", "\\").lower() if win else p

    root = norm(bundle)
    slash = "\\" if win else "/"

    def in_bundle(entry: str) -> bool:
        e = norm(entry)
        return e == root or e.startswith(root + slash)

    for name in _RESTORED:
        orig = env.pop(name + "_ORIG", None)
        if orig is not None:
            env[name] = orig
        elif name == "LD_LIBRARY_PATH" and not win:
            env.pop(name, None)  # the bootloader set it, there was none before
    for name in [n for n in env if n.startswith("_PYI_") or n == "_MEIPASS2"]:
        del env[name]
    for name, value in list(env.items()):
        parts = value.split(sep)
        kept = [p for p in parts if not (p and in_bundle(p))]
        if len(kept) == len(parts):
            continue
        if any(kept):
            env[name] = sep.join(kept)
        else:
            del env[name]
    # A game that is itself a PyInstaller bundle then starts as a program of its own.
    env["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    return env


@contextlib.contextmanager
def dll_search_reset(kernel32: Any = None, *, windows: bool | None = None,
                     frozen: bool | None = None) -> Iterator[None]:
    """On Windows in a bundle: ``SetDllDirectoryW(NULL)`` for the block, the bundle's folder
    set again after it (the updater may still load a Qt plugin). Elsewhere nothing."""
    win = os.name == "nt" if windows is None else windows
    is_frozen = bundle_dir() is not None if frozen is None else frozen
    if not (win and is_frozen):
        yield
        return
    k32 = kernel32 if kernel32 is not None else _kernel32()
    import ctypes

    size = 32768
    old = ctypes.create_unicode_buffer(size)
    got = int(k32.GetDllDirectoryW(size, old))
    k32.SetDllDirectoryW(None)
    try:
        yield
    finally:
        k32.SetDllDirectoryW(old.value if got else None)


def _kernel32() -> Any:
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    k32.SetDllDirectoryW.argtypes = [wintypes.LPCWSTR]
    k32.SetDllDirectoryW.restype = wintypes.BOOL
    k32.GetDllDirectoryW.argtypes = [wintypes.DWORD, wintypes.LPWSTR]
    k32.GetDllDirectoryW.restype = wintypes.DWORD
    return k32


def launch_detached(argv: Sequence[str], cwd: Path) -> None:
    """Start the game and let it outlive the updater, with the DLL search path and the
    environment it would have had without the updater. Raises ``OSError`` if it cannot
    start."""
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = (
            subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        )
    else:
        kwargs["start_new_session"] = True  # not killed with the updater's process group
    env = game_environment(os.environ, bundle_dir())
    with dll_search_reset():
        subprocess.Popen(  # the program comes from the publisher's config
            list(argv),
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            **kwargs,  # type: ignore[call-overload]
        )
