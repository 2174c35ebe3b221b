"""The packaged updater: what goes into it (fast checks of packaging/stitch_bundle.py and the
Windows build inputs) and the built executable itself (slow: ``packaging/build`` runs
PyInstaller once per session, ~40 s on 2 cores; the rest runs the BUILT FILE, never the source).
Here that is the Linux build (one file); ``tests/windows/run --packaging`` runs the same tests
under wine against the Windows build (one folder: NAME.exe, NAME-cli.exe and ``_internal/``,
the Windows default); the CI workflow (packaging/github-workflow.yml) runs the same
tests on Windows and macOS against the file it built, named by ``STITCH_EXE``.

The smoke tests fail when the bundle lacks a Python module (the executable cannot start, or
prints an import warning such as pyfastcdc's pure-Python fallback), a Qt plugin (offscreen,
xcb, ICO/SVG formats), or an asset (icons, style sheet), and when it carries Qt parts that
were meant to stay out.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import xml.dom.minidom
from pathlib import Path
from types import ModuleType

import pytest

from core.publisher.publish import publish
from tests.conftest import REPO_ROOT, need_tool, tree_digest

BUILD = REPO_ROOT / "packaging" / "build"


def _load_bundle() -> ModuleType:
    # packaging/ is not a package (it would shadow PyPI's "packaging"): load the file itself.
    spec = importlib.util.spec_from_file_location(
        "stitch_bundle", REPO_ROOT / "packaging" / "stitch_bundle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sb = _load_bundle()


# --- fast: the build inputs -----------------------------------------------------------------


def test_every_listed_asset_exists_and_the_window_needs_no_other() -> None:
    datas = sb.asset_datas(REPO_ROOT)
    assets = REPO_ROOT / "assets"
    assert {Path(src).relative_to(assets).as_posix() for src, _ in datas} == set(sb.ASSET_FILES)
    assert {dest for _, dest in datas} == {"assets", "assets/i18n"}
    # Every translation in assets/i18n is shipped (a .ts without its .qm in the list is not).
    shipped = {f"i18n/{ts.stem}.qm" for ts in (assets / "i18n").glob("stitch_*.ts")}
    assert shipped <= set(sb.ASSET_FILES)
    # app/gui/desktop.py asks for icon-<size>.png and style.qss: all of them are listed.
    desktop = (REPO_ROOT / "app" / "gui" / "desktop.py").read_text(encoding="utf-8")
    assert '"style.qss"' in desktop and 'f"icon-{size}.png"' in desktop


def test_version_resource_text_is_what_pyinstaller_evaluates(tmp_path: Path) -> None:
    """PyInstaller reads the file with ``eval`` over its versioninfo classes (on Windows; that
    module needs pefile and win32api, so here the classes are stand-ins that record what they
    were given). The Windows CI build embeds the real thing."""

    def record(kind: str) -> object:
        return lambda *a, **kw: (kind, a, kw)

    names = ["VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable",
             "StringStruct", "VarFileInfo", "VarStruct"]
    version = sb.project_version(REPO_ROOT)
    text = sb.version_info_text(version, "dcrawl-updater")
    info = eval(text, {n: record(n) for n in names})  # the same eval PyInstaller does
    kind, _, fields = info
    assert kind == "VSVersionInfo"
    ffi = fields["ffi"][2]
    assert ffi["filevers"] == ffi["prodvers"] == sb.version_tuple(version)
    strings = {s[1][0]: s[1][1] for s in fields["kids"][0][1][0][0][1][1]}
    assert strings["ProductVersion"] == strings["FileVersion"] == version
    assert strings["OriginalFilename"] == "dcrawl-updater.exe"
    assert strings["ProductName"] == sb.PRODUCT_NAME
    assert sb.version_tuple("1.2.3rc1+g123") == (1, 2, 3, 30001)  # tests/test_version_resource.py


def test_manifest_runs_as_invoker_and_is_long_path_aware() -> None:
    pytest.importorskip("PyInstaller")
    from PyInstaller.utils.win32 import winmanifest

    source = (REPO_ROOT / "packaging" / "stitch.manifest").read_bytes()
    # What PyInstaller embeds: our manifest passed through its own editor with uac_admin off.
    built = winmanifest.create_application_manifest(source, uac_admin=False)
    dom = xml.dom.minidom.parseString(built)
    (level,) = dom.getElementsByTagName("requestedExecutionLevel")
    assert level.getAttribute("level") == "asInvoker"
    (long_paths,) = dom.getElementsByTagName("longPathAware")
    assert long_paths.firstChild.data == "true"


def test_ico_has_every_size(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    ico = sb.write_ico(REPO_ROOT / "assets", tmp_path / "stitch.ico")
    with pil.open(ico) as im:
        assert set(im.info["sizes"]) == {(n, n) for n in sb.ICON_SIZES}


def test_plugin_and_library_filters() -> None:
    qt = "PySide6/Qt/plugins"
    assert sb.keep_binary(f"{qt}/platforms/libqxcb.so", "linux")
    assert sb.keep_binary(f"{qt}/platforms/libqoffscreen.so", "linux")
    assert not sb.keep_binary(f"{qt}/platforms/libqwayland.so", "linux")
    assert not sb.keep_binary(f"{qt}/platformthemes/libqgtk3.so", "linux")
    assert sb.keep_binary("PySide6\\plugins\\platforms\\qwindows.dll", "win32")  # Windows layout
    assert sb.qt_plugin_name("PySide6/plugins/styles/qmodernwindowsstyle.dll") == (
        "styles/qmodernwindowsstyle.dll"
    )
    assert not sb.keep_binary("PySide6\\Qt\\plugins\\platforms\\qdirect2d.dll", "win32")
    assert sb.keep_binary("PySide6/Qt/lib/libQt6Widgets.so.6", "linux")
    assert sb.keep_binary("PySide6/Qt/lib/libQt6DBus.so.6", "linux")
    assert not sb.keep_binary("PySide6/Qt/lib/libQt6Network.so.6", "linux")
    assert not sb.keep_binary("PySide6/Qt6Qml.dll", "win32")
    assert sb.keep_binary("numpy.libs/libscipy_openblas64_-32a4b2a6.so", "linux")
    assert not sb.keep_data("PySide6/Qt/translations/qtbase_de.qm")
    assert sb.keep_data("assets/style.qss")
    assert sb.keep_data("assets/i18n/stitch_de.qm")  # the window's own translation stays
    assert sb.keep_plugin("imageformats", "/x/PySide6/Qt/plugins/imageformats/libqsvg.so", "linux")
    assert not sb.keep_plugin("imageformats", "/x/libqjpeg.so", "linux")


# --- slow: the built executable -------------------------------------------------------------



@pytest.fixture(scope="session")
def built_exe() -> Path:
    """``packaging/build`` run once; the path it printed on its last line."""
    pytest.importorskip("PySide6")
    if os.environ.get("STITCH_EXE"):  # CI built it in a step of its own (Git Bash on Windows)
        return Path(os.environ["STITCH_EXE"]).resolve()
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(BUILD)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"packaging/build failed ({done.returncode}):\n{done.stderr[-4000:]}")
    exe = Path(done.stdout.strip().splitlines()[-1])
    assert exe.is_file() and os.access(exe, os.X_OK), exe
    print(f"built {exe}: {exe.stat().st_size / 2**20:.1f} MiB in {time.monotonic() - start:.0f} s")
    return exe


def run_exe(
    exe: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_"))}
    base["QT_QPA_PLATFORM"] = "offscreen"
    base.update(env or {})
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, env=base,
        cwd=exe.parent,
    )


def no_bundle_warnings(stderr: str) -> None:
    """Nothing the bundle lacks shows up as a warning (pyfastcdc falls back to pure Python
    with only a warning when its Cython modules are missing; Qt names a missing plugin)."""
    for bad in ("Failed to import", "ModuleNotFoundError", "ImportError", "Traceback",
                "Could not find the Qt platform plugin", "Could not load the Qt platform"):
        assert bad not in stderr, stderr


def one_folder(exe: Path) -> bool:
    """Whether ``exe`` is a one-folder build: its libraries in ``_internal/`` beside it."""
    return (exe.parent / "_internal").is_dir()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture
def exe_copy(built_exe: Path, tmp_path: Path) -> Path:
    """The built executable in a folder of its own, where its updater.toml will sit: the one
    file, or the whole one-folder build (hard links where the file system allows)."""
    folder = tmp_path / "shipped"
    if one_folder(built_exe):
        shutil.copytree(built_exe.parent, folder, copy_function=_link_or_copy)
        return folder / built_exe.name
    folder.mkdir()
    target = folder / built_exe.name
    _link_or_copy(str(built_exe), str(target))
    return target


def bundle_listing(exe: Path) -> tuple[set[str], set[str]]:
    """(every file of the bundle, relative to its root and "/"-separated; the modules of its
    PYZ). One file: the executable's CArchive. One folder: the executable's CArchive (the
    scripts and the PYZ) and the files of ``_internal/`` beside it."""
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    archive = CArchiveReader(str(exe))
    names = {n.replace("\\", "/") for n in archive.toc}
    if one_folder(exe):
        internal = exe.parent / "_internal"
        names |= {p.relative_to(internal).as_posix() for p in internal.rglob("*") if p.is_file()}
    if "PYZ.pyz" in archive.toc:
        modules = set(archive.open_embedded_archive("PYZ.pyz").toc)
    else:  # a PyInstaller that keeps the PYZ beside the executable
        (pyz,) = (exe.parent / "_internal").glob("*.pyz")
        modules = set(ZlibArchiveReader(str(pyz)).toc)
    return names, modules


@pytest.fixture(scope="session")
def signed_repo(
    game: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """Version 1.0.0 of the demo game, published and signed: (repo folder, public key). The
    secret key is ``release.key`` beside the repo folder."""
    from core.formats import signing

    base = tmp_path_factory.mktemp("pkgrepo")
    key_file = base / "release.key"
    pub = signing.keygen(key_file, None)
    key = signing.load_secret_key(key_file.read_bytes(), None)
    repo = base / "repo"
    publish(game[0], repo, "1.0.0", product="demo", sign_key=key)
    return repo, pub.b64()


def write_config(folder: Path, url: str, pubkey: str, *, auto_start: bool) -> None:
    (folder / "updater.toml").write_text(
        f'product = "demo"\nname = "Demo Game"\nurl = "{url}"\ninstall_dir = "game"\n'
        f'pubkey = "{pubkey}"\nauto_start = {"true" if auto_start else "false"}\n',
        encoding="utf-8",
    )


def smoke_lines(stdout: str) -> dict[str, dict[str, object]]:
    """The ``--smoke-test`` report lines by stage ("close", "quit", "hung")."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            if obj.get("event") == "smoke":
                out[str(obj["stage"])] = obj
    return out


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_bundle_contents(built_exe: Path) -> None:
    """What is inside the bundle (the one file, or the one-folder build: Windows' default):
    listed plugins and assets in, excluded parts out."""
    pytest.importorskip("PyInstaller")
    names, modules = bundle_listing(built_exe)
    plugins = {p for p in map(sb.qt_plugin_name, names) if p is not None}
    if sys.platform == "win32":
        # Shipped as one folder (packaging/build's Windows default): the windowed NAME.exe
        # and the console NAME-cli.exe beside the _internal/ folder they share, which holds
        # every DLL, so the executable unpacks nothing at start.
        assert one_folder(built_exe), f"{built_exe}: not a one-folder build"
        cli = built_exe.with_name(built_exe.stem + "-cli.exe")
        for program in (built_exe, cli):
            assert program.read_bytes()[:2] == b"MZ", program
        from PyInstaller.archive.readers import CArchiveReader

        inside_exe = {n.replace("\\", "/") for n in CArchiveReader(str(built_exe)).toc}
        assert not [n for n in inside_exe if n.lower().endswith((".dll", ".pyd"))], inside_exe
        assert f"python{sys.version_info[0]}{sys.version_info[1]}.dll" in names
        assert {"PySide6/Qt6Core.dll", "PySide6/Qt6Gui.dll", "PySide6/Qt6Widgets.dll"} <= names
        assert {"platforms/qwindows.dll", "platforms/qoffscreen.dll"} <= plugins
    assert plugins == set(sb.expected_plugins(sys.platform))
    for asset in sb.ASSET_FILES:
        assert f"assets/{asset}" in names, asset
    assert not [n for n in names if "/translations/" in n]
    # Windows' own icuuc.dll (and the stand-in tests/windows/run puts in wine's system32)
    # is the system's: never shipped.
    assert not [n for n in names if n.lower().rsplit("/", 1)[-1].startswith("icuuc")]
    assert not [n for n in names if any(q in n for q in ("Qt6Network", "Qt6Qml", "Qt6Quick",
                                                          "QtNetwork", "QtQml", "QtQuick"))]
    assert {"core.engine.updater", "core.net.http", "app.cli", "app.gui.window", "app.config",
            "app.installs", "app.shortcuts", "app.uninstall", "app.winregistry",
            "app.winlnk", "app.winfolders"} <= modules
    assert any(n.startswith("pyfastcdc/cy/fastcdc") for n in names)  # the Cython chunker
    assert any(n.startswith("zstandard/_cffi") for n in names)  # deltas decoded in place
    assert any(n.startswith("_cffi_backend") for n in names)
    for excluded in ("pytest", "PyInstaller", "tests", "PySide6.QtNetwork", "numpy.random"):
        assert excluded not in modules and not any(
            m.startswith(excluded + ".") for m in modules
        ), excluded
    # The version printed is the project's, and nothing is missing at import time.
    done = run_exe(built_exe, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"stitch {sb.project_version(REPO_ROOT)}"
    assert done.stderr == ""
    if sys.platform == "win32":  # the launcher's console program, from the same folder
        done = run_exe(built_exe.with_name(built_exe.stem + "-cli.exe"), "--version")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"stitch {sb.project_version(REPO_ROOT)}"


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_silent_update_with_the_built_exe(
    exe_copy: Path,
    game: tuple[Path, Path],
    signed_repo: tuple[Path, str],
    stitch_server: functools.partial[object],
    tmp_path: Path,
) -> None:
    """Launcher mode: install 1.0.0 then update to 2.0.0; every file's bytes checked."""
    from core.formats import signing

    repo, pub = signed_repo
    repo = Path(shutil.copytree(repo, tmp_path / "repo"))
    server = stitch_server(repo)
    url = server.url  # type: ignore[attr-defined]
    install = tmp_path / "install dir ü"  # a space and a non-ASCII letter, as players have

    done = run_exe(exe_copy, "--update", "--url", url, "--dir", str(install),
                   "--pubkey", pub, "--progress", "json")
    assert done.returncode == 0, done.stderr
    no_bundle_warnings(done.stderr)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "result" and events[-1]["to_version"] == "1.0.0"
    assert any(e["event"] == "progress" for e in events)
    assert tree_digest(install) == tree_digest(game[0])

    key = signing.load_secret_key((signed_repo[0].parent / "release.key").read_bytes(), None)
    publish(game[1], repo, "2.0.0", product="demo", sign_key=key, deltas=True)
    done = run_exe(exe_copy, "--update", "--url", url, "--dir", str(install),
                   "--pubkey", pub, "--progress", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["outcome"] == "updated" and result["to_version"] == "2.0.0"
    assert result["bytes_reused"] > 0
    assert tree_digest(install) == tree_digest(game[1])


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_window_installs_then_closes(
    exe_copy: Path,
    game: tuple[Path, Path],
    signed_repo: tuple[Path, str],
    stitch_server: functools.partial[object],
) -> None:
    """The window, offscreen, with updater.toml beside the exe: it installs (auto_start) and
    closes cleanly with exit code 0; the bundle's plugins and assets are all found."""
    repo, pub = signed_repo
    server = stitch_server(repo)
    write_config(exe_copy.parent, server.url, pub, auto_start=True)  # type: ignore[attr-defined]
    done = run_exe(exe_copy, "--smoke-test", "8")
    report = smoke_lines(done.stdout)
    assert "hung" not in report, done.stderr
    close, quit_ = report["close"], report["quit"]
    assert close["frozen"] is True and close["platform"] == "offscreen"
    assert set(close["assets"]) == set(sb.ASSET_FILES)  # type: ignore[arg-type]
    assert {"png", "ico", "svg"} <= set(close["image_formats"])  # type: ignore[arg-type]
    assert close["icon_sizes"] == list(sb.ICON_SIZES)
    assert close["style_sheet"] > 0  # type: ignore[operator]
    assert close["translation_de"] == "&Abbrechen"  # assets/i18n/stitch_de.qm, bundled
    assert close["window_title"] == "Demo Game updater", (done.stdout, done.stderr)
    assert close["state"] == "done", done.stderr
    assert quit_["state"] == "done"
    assert done.returncode == 0, done.stderr
    no_bundle_warnings(done.stderr)
    assert tree_digest(exe_copy.parent / "game") == tree_digest(game[0])


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_window_cancel_while_working(
    exe_copy: Path,
    signed_repo: tuple[Path, str],
    stitch_server: functools.partial[object],
) -> None:
    """Closing the window mid-update is Cancel: the engine stops, the window closes, the
    exit code is 1 and nothing was installed."""
    repo, pub = signed_repo
    server = stitch_server(repo)
    base = server.RequestHandlerClass  # type: ignore[attr-defined]

    class SlowHandler(base):  # type: ignore[misc, valid-type]
        def handle_one_request(self) -> None:  # a slow CDN: 1 s before every answer
            time.sleep(1.0)
            super().handle_one_request()

    server.RequestHandlerClass = SlowHandler  # type: ignore[attr-defined]
    write_config(exe_copy.parent, server.url, pub, auto_start=True)  # type: ignore[attr-defined]
    done = run_exe(exe_copy, "--smoke-test", "3")
    report = smoke_lines(done.stdout)
    assert "hung" not in report, done.stderr
    assert report["close"]["state"] in ("checking", "running"), report
    assert report["quit"]["state"] == "error"
    assert report["quit"]["error_kind"] == "cancelled"
    assert done.returncode == 1, done.stderr
    no_bundle_warnings(done.stderr)
    game_dir = exe_copy.parent / "game"
    installed = [p for p in game_dir.rglob("*") if p.is_file() and ".stitch" not in p.parts] \
        if game_dir.exists() else []
    assert installed == []


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_window_on_x11(
    exe_copy: Path,
    signed_repo: tuple[Path, str],
    stitch_server: functools.partial[object],
) -> None:
    """The xcb platform plugin (what a Linux desktop uses) loads from the bundle: under Xvfb
    the window opens, plans, and closes on the smoke timer."""
    if sys.platform != "linux":
        pytest.skip("X11 is Linux's")
    xvfb_run = need_tool("xvfb-run")
    repo, pub = signed_repo
    server = stitch_server(repo)
    write_config(exe_copy.parent, server.url, pub, auto_start=False)  # type: ignore[attr-defined]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_"))}
    done = subprocess.run(
        [xvfb_run, "-a", str(exe_copy), "--smoke-test", "4"],
        capture_output=True, text=True, timeout=120, env=env, cwd=exe_copy.parent,
    )
    report = smoke_lines(done.stdout)
    assert "close" in report, done.stderr
    assert report["close"]["platform"] == "xcb"
    assert report["close"]["state"] == "ready"
    assert "quit" in report and "hung" not in report
    assert done.returncode == 1, done.stderr  # closed before updating: not "current"
    no_bundle_warnings(done.stderr)


def _exe_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_"))}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_wait_pid_waits_for_a_live_process_then_updates(
    exe_copy: Path,
    game: tuple[Path, Path],
    signed_repo: tuple[Path, str],
    stitch_server: functools.partial[object],
    tmp_path: Path,
) -> None:
    """A launcher passes its own pid and exits: the updater installs only once that process
    has ended (on Windows, the game's files are free only then)."""
    repo, pub = signed_repo
    server = stitch_server(repo)
    install = tmp_path / "install"
    # A process that lives until its stdin is closed.
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)
    updater = None
    try:
        updater = subprocess.Popen(
            [str(exe_copy), "--update", "--url", server.url,  # type: ignore[attr-defined]
             "--dir", str(install), "--pubkey", pub, "--progress", "none",
             "--wait-pid", str(holder.pid)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_exe_env(), cwd=exe_copy.parent,
        )
        try:
            _, err = updater.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # still waiting, as it should
        else:
            pytest.fail(f"--wait-pid returned while the process lived (exit {updater.returncode})"
                        f":\n{err}")
        assert not install.exists() or tree_digest(install) == {}
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
        _, err = updater.communicate(timeout=600)
        assert updater.returncode == 0, err
        no_bundle_warnings(err)
        assert tree_digest(install) == tree_digest(game[0])
    finally:
        for proc in (holder, updater):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.packaging
@pytest.mark.timeout(900)
def test_wait_pid_of_an_ended_process_updates_at_once(
    exe_copy: Path,
    game: tuple[Path, Path],
    signed_repo: tuple[Path, str],
    stitch_server: functools.partial[object],
    tmp_path: Path,
) -> None:
    repo, pub = signed_repo
    server = stitch_server(repo)
    install = tmp_path / "install"
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    assert ended.wait(timeout=60) == 0
    done = run_exe(exe_copy, "--update", "--url", server.url,  # type: ignore[attr-defined]
                   "--dir", str(install), "--pubkey", pub, "--progress", "none",
                   "--wait-pid", str(ended.pid))
    assert done.returncode == 0, done.stderr
    no_bundle_warnings(done.stderr)
    assert tree_digest(install) == tree_digest(game[0])
