"""The Windows layout of the packaged updater, checked without building it: the windowed
program runs with no standard streams, the Qt-free console program's filters, and the spec
making the two programs (docs/publishing.md, "Two programs on Windows"). The built programs
are run under wine by tests/windows/run --packaging."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "stitch_bundle_for_windows", REPO_ROOT / "packaging" / "stitch_bundle.py")
assert _spec is not None and _spec.loader is not None
sb = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = sb
_spec.loader.exec_module(sb)


def test_the_console_program_leaves_qt_out() -> None:
    for dest in ("PySide6/Qt6Core.dll", "PySide6\\plugins\\platforms\\qwindows.dll",
                 "PySide6/QtWidgets.pyd", "shiboken6/shiboken6.abi3.dll"):
        assert sb.is_qt_file(dest), dest
    for dest in ("numpy/_core/_multiarray_umath.cp311-win_amd64.pyd", "python311.dll",
                 "assets/icon-16.png", "zstandard/backend_c.cp311-win_amd64.pyd"):
        assert not sb.is_qt_file(dest), dest
    for name in ("PySide6", "PySide6.QtCore", "shiboken6", "app.gui", "app.gui.window"):
        assert sb.is_qt_module(name), name
    for name in ("app", "app.cli", "app.launch", "core.engine.updater", "numpy", "apple"):
        assert not sb.is_qt_module(name), name
    assert sb.is_qt_runtime_hook("pyi_rth_pyside6")
    assert not sb.is_qt_runtime_hook("pyi_rth_inspect")


def test_the_windowed_program_runs_without_standard_streams() -> None:
    """PyInstaller's windowed mode gives sys.stdout/stderr = None when there is no console:
    --update must still run (silently) and exit with its code, not crash on a print."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT / 'packaging')!r})\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "sys.stdout = sys.stderr = None\n"
        "sys.argv = ['stitch', '--update', '--url', 'http://127.0.0.1:9/', '--dir', 'x',"
        " '--progress', 'json']\n"
        "import stitch_main\n"
        "stitch_main.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          cwd=REPO_ROOT)
    assert done.returncode == 3, done.stderr  # the network error's exit code, no traceback
    assert done.stdout == b"" and done.stderr == b""


def test_the_spec_makes_a_windowed_and_a_console_program() -> None:
    spec = (REPO_ROOT / "packaging" / "stitch.spec").read_text(encoding="utf-8")
    assert 'args.name, console=False' in spec  # NAME.exe: the player's, no console
    assert 'f"{args.name}-cli", console=True' in spec  # NAME-cli.exe: the launcher's
    assert "hide_console" not in spec  # no console to hide any more


def test_the_qt_free_console_program_says_where_the_window_is() -> None:
    """The one-file NAME-cli.exe carries no PySide6: asked for the window (no arguments), it
    names the windowed program and exits 2, instead of an internal error."""
    code = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'PySide6' else real(n, *a)\n"
        f"sys.path.insert(0, {str(REPO_ROOT / 'packaging')!r})\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "sys.executable = 'C:/Games/dcrawl/dcrawl-updater-cli.exe'\n"
        "sys.argv = ['dcrawl-updater-cli']\n"
        "import stitch_main\n"
        "stitch_main.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          cwd=REPO_ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().strip() == (
        "dcrawl-updater-cli.exe: this console program has no window; start "
        "dcrawl-updater.exe for it")
    assert b"PySide6.QtCore" not in done.stdout
