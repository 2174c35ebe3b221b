"""What goes into the packaged updater, as data the spec and the tests share.

``stitch.spec`` imports this module (it sits beside the spec) to decide which files the
one-file executable carries: the assets listed explicitly (the window's translations among
them), the Qt plugins each platform needs, none of Qt's own translations, no Qt modules the
window does not use, no test or build tools. The same lists are what
``tests/test_packaging.py`` checks the built executable against, so a bundle that misses a
file, or carries one it should not, fails there.

It also writes the small generated build inputs: the Windows version resource (text form,
from the project version in ``pyproject.toml``) and the multi-size ``.ico`` (from the
committed PNGs, with Pillow).

Pure functions of paths and strings; it imports neither PyInstaller nor Qt. Not a package:
``packaging/`` has no ``__init__.py`` on purpose, so it never shadows the PyPI ``packaging``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

PRODUCT_NAME = "stitch updater"
COMPANY_NAME = "stitch"
DESCRIPTION = "Game installer and updater"
COPYRIGHT = "MIT licence"

ICON_SIZES = (16, 32, 48, 64, 128, 256)

# The assets the window reads (app/gui/desktop.py: icons, style sheet). Listed explicitly so a
# new asset is a decision, not an accident; icon.svg stays out: the PNGs cover every size and
# the SVG is only the source they are rendered from (assets/make_icons.py).
# The translations are the .qm files compiled from assets/i18n/stitch_<lang>.ts (committed;
# assets/i18n/update.py --release remakes them, tests/app/test_gui_i18n.py checks they match).
TRANSLATIONS = ("de",)
ASSET_FILES = (
    *(f"icon-{n}.png" for n in ICON_SIZES),
    "style.qss",
    *(f"i18n/stitch_{lang}.qm" for lang in TRANSLATIONS),
)

# The Qt bindings the app imports (app/gui/*) plus QtSvg, whose plugins let a publisher's
# [window] icon be an SVG. Every other PySide6 extension module is excluded from analysis.
QT_MODULES_USED = ("QtCore", "QtGui", "QtWidgets", "QtSvg")
QT_MODULES_EXCLUDED = (
    "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender",
    "QtAxContainer", "QtBluetooth", "QtCharts", "QtConcurrent", "QtDBus", "QtDataVisualization",
    "QtDesigner", "QtGraphs", "QtGraphsWidgets", "QtHelp", "QtHttpServer", "QtLabsStyleKit",
    "QtLocation", "QtMultimedia", "QtMultimediaWidgets", "QtNetwork", "QtNetworkAuth", "QtNfc",
    "QtOpenGL", "QtOpenGLWidgets", "QtPdf", "QtPdfWidgets", "QtPositioning", "QtPrintSupport",
    "QtQml", "QtQmlFeatures", "QtQuick", "QtQuick3D", "QtQuickControls2", "QtQuickTest",
    "QtQuickWidgets", "QtRemoteObjects", "QtScxml", "QtSensors", "QtSerialBus", "QtSerialPort",
    "QtSpatialAudio", "QtSql", "QtStateMachine", "QtSvgWidgets", "QtTest", "QtTextToSpeech",
    "QtUiTools", "QtWebChannel", "QtWebEngineCore", "QtWebEngineQuick", "QtWebEngineWidgets",
    "QtWebSockets", "QtWebView", "QtXml",
)

# Python modules never needed at run time: tests, build tools, GUI toolkits we do not use,
# numpy's optional parts (numpy itself is needed: core keeps chunk indexes in arrays; these
# subpackages are never imported at run time: checked with ``python -X importtime``).
PY_EXCLUDES = (
    *(f"PySide6.{m}" for m in QT_MODULES_EXCLUDED),
    "PyQt5", "PyQt6", "PySide2", "shiboken2",
    "tkinter", "_tkinter", "turtle", "idlelib", "lib2to3", "pydoc_data", "ensurepip", "venv",
    "distutils", "setuptools", "pkg_resources", "pip", "wheel",
    "PyInstaller", "pytest", "_pytest", "pytestqt", "pytest_timeout", "hypothesis",
    "mypy", "ruff", "IPython", "jedi",
    "numpy.f2py", "numpy.distutils", "numpy.testing", "numpy._pyinstaller", "numpy.tests",
    "numpy.random", "numpy.fft", "numpy.polynomial", "numpy.ma",
    "unittest", "doctest", "pydoc",
    "PIL",
    "tests",
)

# Qt plugin folders to keep, per platform (everything else under plugins/ is dropped):
# platforms: the windowing backends; imageformats/iconengines: ICO and SVG for a publisher's
# own icon (PNG is built into QtGui); styles: the native Windows 11 / macOS look;
# xcbglintegrations: xcb needs one to create its GL-capable windows.
QT_PLUGINS: dict[str, tuple[str, ...]] = {
    "linux": (
        "platforms/libqxcb.so",
        "platforms/libqoffscreen.so",
        "xcbglintegrations/libqxcb-glx-integration.so",
        "xcbglintegrations/libqxcb-egl-integration.so",
        "platforminputcontexts/libcomposeplatforminputcontextplugin.so",
        "imageformats/libqico.so",
        "imageformats/libqsvg.so",
        "iconengines/libqsvgicon.so",
    ),
    "win32": (
        "platforms/qwindows.dll",
        "platforms/qoffscreen.dll",
        "styles/qmodernwindowsstyle.dll",
        "imageformats/qico.dll",
        "imageformats/qsvg.dll",
        "iconengines/qsvgicon.dll",
    ),
    "darwin": (
        "platforms/libqcocoa.dylib",
        "platforms/libqoffscreen.dylib",
        "styles/libqmacstyle.dylib",
        "imageformats/libqico.dylib",
        "imageformats/libqsvg.dylib",
        "iconengines/libqsvgicon.dylib",
    ),
}

# Qt shared libraries that plugins we dropped would have needed; nothing we keep links them.
_QT_LIB_DROP = re.compile(
    r"Qt6?(Network|Qml\w*|Quick\w*|Pdf\w*|WebEngine\w*|Wayland\w*|EglFS\w*|Designer\w*|"
    r"VirtualKeyboard\w*|Lottie\w*|Labs\w*|Sql|Test|Help|Multimedia\w*|Positioning|"
    r"Location|Charts|3D\w*|PrintSupport|OpenGLWidgets|Concurrent|UiTools|Xml)\b",
    re.IGNORECASE,
)


def project_version(root: Path) -> str:
    """stitch's version (the one ``stitch --version`` prints): ``core/version.py``, which
    ``pyproject.toml`` names as its dynamic version (read, not imported)."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    attr = data["tool"]["setuptools"]["dynamic"]["version"]["attr"]  # core.version.__version__
    module, _, name = attr.rpartition(".")
    source = (root / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8")
    match = re.search(rf'^{re.escape(name)}\s*=\s*"([^"]+)"', source, re.MULTILINE)
    if match is None:
        raise ValueError(f"{attr}: no version string")
    return match.group(1)


# FILEVERSION's fourth number: where a release stands among the builds of the same X.Y.Z.
# Windows compares the four 16-bit numbers in order, so pre-releases get numbers below the
# final release's, and each kind its own range (docs/publishing.md, "Version resource"):
#   X.Y.Z.devN -> N          (N < 10000)
#   X.Y.ZaN    -> 10000 + N  (alpha; N < 10000)
#   X.Y.ZbN    -> 20000 + N  (beta)
#   X.Y.ZrcN   -> 30000 + N  (release candidate)
#   X.Y.Z      -> 40000      (the final release)
#   X.Y.Z.postN-> 40000 + N  (N <= 25535)
_PRE_BASE = {"a": 10000, "b": 20000, "rc": 30000}
_FINAL = 40000
_PRE_MAX = 9999
_PRE_SPELLINGS = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "rc": "rc", "c": "rc",
                  "pre": "rc", "preview": "rc"}
_VERSION_RE = re.compile(
    r"""^v?(?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_n>\d+)?)?
    (?:[-_.]?(?:post|rev|r)[-_.]?(?P<post>\d+))?
    (?P<devpart>[-_.]?dev[-_.]?(?P<dev>\d+)?)?
    (?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$""",
    re.VERBOSE | re.IGNORECASE,
)


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """The four numbers of the Windows version resource (FILEVERSION, PRODUCTVERSION) for a
    PEP 440 version: ``X.Y.Z`` then where the build stands among X.Y.Z's pre-releases, final
    and post-releases (the table above): ``1.2.3rc1`` -> ``(1, 2, 3, 30001)``, ``1.2.3`` ->
    ``(1, 2, 3, 40000)``. A local part (``+g123``) is left out. ``ValueError``, naming the
    part, for a version that does not fit: more than three release numbers, a number above
    65535, a pre-release or dev number above 9999, a post number above 25535, or a dev
    release of a pre- or post-release."""
    m = _VERSION_RE.match(version.strip())
    if m is None:
        raise ValueError(f"version {version!r}: not a PEP 440 version (X.Y.Z, X.Y.ZrcN...)")
    release = [int(x) for x in m["release"].split(".")]
    if len(release) > 3:
        raise ValueError(f"version {version!r}: at most three release numbers fit the Windows "
                         "version resource (its fourth number orders pre-releases)")
    release += [0] * (3 - len(release))
    for name, n in zip(("major", "minor", "patch"), release, strict=True):
        if n > 0xFFFF:
            raise ValueError(f"version {version!r}: the {name} number {n} does not fit the "
                             "Windows version resource (at most 65535)")
    pre, pre_n, post, dev = m["pre"], m["pre_n"], m["post"], m["dev"]
    if m["devpart"] is not None:
        dev_n = int(dev or 0)
        if pre is not None or post is not None:
            raise ValueError(f"version {version!r}: a dev release of a pre- or post-release "
                             "has no place in the Windows version resource's order")
        fourth = _bounded(version, "dev", dev_n, _PRE_MAX)
    elif pre is not None:
        kind = _PRE_SPELLINGS[pre.lower()]
        fourth = _PRE_BASE[kind] + _bounded(version, kind, int(pre_n or 0), _PRE_MAX)
        if post is not None:
            raise ValueError(f"version {version!r}: a post-release of a pre-release has no "
                             "place in the Windows version resource's order")
    elif post is not None:
        fourth = _FINAL + _bounded(version, "post", int(post), 0xFFFF - _FINAL)
    else:
        fourth = _FINAL
    return (release[0], release[1], release[2], fourth)


def _bounded(version: str, what: str, n: int, limit: int) -> int:
    if n > limit:
        raise ValueError(f"version {version!r}: the {what} number {n} does not fit the Windows "
                         f"version resource (at most {limit})")
    return n


def version_info_text(version: str, exe_name: str) -> str:
    """The Windows version resource in PyInstaller's text form (``EXE(version=FILE)``).

    Explorer shows these strings under Properties > Details; SmartScreen and antivirus
    vendors show ProductName and CompanyName, so an updater with them looks less anonymous.
    """
    v = version_tuple(version)
    strings = {
        "CompanyName": COMPANY_NAME,
        "FileDescription": DESCRIPTION,
        "FileVersion": version,
        "InternalName": exe_name,
        "LegalCopyright": COPYRIGHT,
        "OriginalFilename": f"{exe_name}.exe",
        "ProductName": PRODUCT_NAME,
        "ProductVersion": version,
    }
    table = ",\n".join(f"          StringStruct({k!r}, {val!r})" for k, val in strings.items())
    return f"""# Generated by packaging/stitch_bundle.py from pyproject.toml; do not edit.
VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={v},
    prodvers={v},
    mask=0x3f,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0)
  ),
  kids=[
    StringFileInfo([
      StringTable(
        '040904B0',
        [
{table}
        ])
    ]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""


def write_ico(assets: Path, out: Path) -> Path:
    """A multi-size Windows icon from ``assets/icon-<size>.png`` (each size drawn, not scaled).

    Raises ``FileNotFoundError`` if a PNG is missing and ``ImportError`` without Pillow.
    """
    from PIL import Image

    images = [Image.open(assets / f"icon-{n}.png").convert("RGBA") for n in ICON_SIZES]
    out.parent.mkdir(parents=True, exist_ok=True)
    largest = images[-1]
    largest.save(
        out,
        format="ICO",
        sizes=[(n, n) for n in ICON_SIZES],
        append_images=images[:-1],
    )
    return out


def asset_datas(root: Path) -> list[tuple[str, str]]:
    """``(source, destination folder)`` pairs for ``Analysis(datas=...)``: every asset by name
    (``i18n/stitch_de.qm`` goes to ``assets/i18n``).

    Raises ``FileNotFoundError`` naming the first asset missing from the source tree.
    """
    pairs = []
    for name in ASSET_FILES:
        src = root / "assets" / name
        if not src.is_file():
            raise FileNotFoundError(f"asset missing from the source tree: {src}")
        pairs.append((str(src), str(PurePosixPath("assets", name).parent)))
    return pairs


def qt_plugin_name(dest: str) -> str | None:
    """``"platforms/libqxcb.so"`` for a bundled Qt plugin's destination path, else None.
    PySide6 keeps plugins in ``PySide6/Qt/plugins`` on Linux and macOS, ``PySide6/plugins``
    on Windows."""
    parts = dest.replace("\\", "/").split("/")
    if "PySide6" in parts and "plugins" in parts:
        i = parts.index("plugins")
        if parts.index("PySide6") < i:
            return "/".join(parts[i + 1 :])
    return None


def keep_binary(dest: str, platform: str) -> bool:
    """Whether a collected binary (its destination path in the bundle) stays in it."""
    plugin = qt_plugin_name(dest)
    if plugin is not None:
        return plugin in QT_PLUGINS.get(platform, ())
    name = dest.replace("\\", "/").rsplit("/", 1)[-1]
    return not ("PySide6" in dest and _QT_LIB_DROP.search(name))


def keep_plugin(plugin_type: str, filename: str, platform: str) -> bool:
    """Whether the Qt plugin ``filename`` (any path) of ``plugin_type`` is one we ship."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{plugin_type}/{base}" in QT_PLUGINS.get(platform, ())


def keep_data(dest: str) -> bool:
    """Whether a collected data file stays: no Qt translations, no type stubs."""
    d = dest.replace("\\", "/")
    if "PySide6/" in d and ("/translations/" in d or d.endswith(".qm")):
        return False
    return not d.endswith((".pyi", "py.typed"))


def is_qt_module(name: str) -> bool:
    """Whether a Python module name (a PyInstaller ``a.pure`` entry) is part of the Qt
    bindings: left out of the one-file console program ``NAME-cli.exe``."""
    top = name.split(".", 1)[0]
    return top in ("PySide6", "shiboken6", "app") and (top != "app" or name.startswith("app.gui"))


def is_qt_file(dest: str) -> bool:
    """Whether a bundled file (its destination path) belongs to Qt or its bindings."""
    top = dest.replace("\\", "/").split("/", 1)[0]
    return top in ("PySide6", "shiboken6")


def is_qt_runtime_hook(name: str) -> bool:
    """PyInstaller's run-time hook for PySide6 (it imports Qt helpers at start-up)."""
    return "pyside6" in name.lower()


def filter_toc(
    toc: Iterable[tuple[str, str, str]], keep: object
) -> list[tuple[str, str, str]]:
    """The entries of a PyInstaller TOC (``(dest, src, kind)``) for which ``keep(dest)``."""
    return [entry for entry in toc if keep(entry[0])]  # type: ignore[operator]


# Libraries that auditwheel grafted into a wheel (``numpy.libs/libscipy_openblas64_-32a4b2a6.so``)
# were rewritten by patchelf; ``strip`` turns them into files the loader refuses ("ELF load
# command address/offset not page-aligned"). Their names carry a hash; they stay as they are.
_GRAFTED = re.compile(r"(^|/)[^/]+\.libs/|-[0-9a-f]{8}[.-]")


def strip_binaries(
    toc: Iterable[tuple[str, str, str]], out_dir: Path, strip: str
) -> list[tuple[str, str, str]]:
    """Linux: the TOC with each unstripped ELF binary replaced by a stripped copy in
    ``out_dir``, except the auditwheel-grafted ones. A copy ``strip`` fails on keeps the
    original. (PyInstaller's own ``strip=True`` strips everything, grafted files included.)"""
    import shutil
    import subprocess

    result = []
    for dest, src, kind in toc:
        if kind in ("BINARY", "EXTENSION") and not _GRAFTED.search(dest.replace("\\", "/")):
            copy = out_dir / dest
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy)
            done = subprocess.run([strip, "--strip-unneeded", str(copy)], capture_output=True)
            if done.returncode == 0:
                result.append((dest, str(copy), kind))
                continue
        result.append((dest, src, kind))
    return result


def expected_plugins(platform: str) -> tuple[str, ...]:
    """The Qt plugins a build for ``platform`` must carry (``sys.platform`` values)."""
    return QT_PLUGINS[platform]
