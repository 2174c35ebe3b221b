"""The package rules of core/ (docs/architecture.md, "Layout"): which package may import
which, by AST over every module, function-level and TYPE_CHECKING imports included.
Written by the issue-15 regroup script; LAYERS is its table."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.test_imports import imports, modules

TOP = {"errors", "fsutil", "parallel", "progress", "version"}
LAYERS: dict[str, set[str]] = {
    "top": {"top"},
    "system": {"top", "system"},
    "formats": {"top", "formats"},
    "chunks": {"top", "formats", "chunks"},
    "net": {"top", "net"},
    "engine": {"top", "system", "formats", "chunks", "net", "engine"},
    "publisher": {"top", "formats", "chunks", "publisher"},
    "facade": {"top", "system", "formats", "chunks", "net", "engine", "publisher"},
}
FOREIGN = ("app", "PySide6", "shiboken6")  # nothing in core imports these
HTTP_LIBS = ("httpx", "httpcore", "h2", "anyio")  # only core.net.http.client does
NUMPY_FREE = ("top", "formats", "net", "system")


def group(name: str) -> str:
    """core.engine.updater -> engine; core.errors -> top; core -> facade."""
    parts = name.split(".")
    if len(parts) == 1:
        return "facade"
    if len(parts) == 2 and parts[1] in TOP:
        return "top"
    if len(parts) == 2 and parts[1] not in LAYERS:
        return "unplaced"
    return parts[1]  # a package (its __init__ too) or a module of one


def raw_imports(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in ``path`` (third-party included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


def violations(root: Path) -> list[str]:
    known = modules(root)
    found = []
    for name, path in known.items():
        if not name.startswith("core"):
            continue
        mine = group(name)
        if mine not in LAYERS:
            found.append(f"{name}: in no package of LAYERS (place it, or add it to TOP)")
            continue
        for target in sorted(imports(name, path, known)):
            if target.startswith("core") and group(target) not in LAYERS[mine]:
                found.append(f"{name} ({mine}) imports {target} ({group(target)})")
        for target in sorted(raw_imports(path)):
            top = target.split(".")[0]
            if top in FOREIGN:
                found.append(f"{name} imports {target}")
            if top in HTTP_LIBS and name != "core.net.http.client":
                found.append(f"{name} imports {target} (only core.net.http.client may)")
            if top == "numpy" and mine in NUMPY_FREE:
                found.append(f"{name} ({mine}) imports numpy")
    return found


def test_core_keeps_its_package_rules() -> None:
    assert violations(REPO_ROOT) == []


def test_every_package_says_what_it_may_import() -> None:
    for pkg in LAYERS:
        init = REPO_ROOT / "core" / pkg / "__init__.py"
        if pkg in ("top", "facade"):
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, init


def test_the_rules_catch_a_lazy_import_upwards(tmp_path: Path) -> None:
    """The checker itself: a format importing the engine inside a function, a net module
    importing Qt, a module left at the top of core/."""
    for d in ("core", "core/formats", "core/engine", "core/net", "app"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "__init__.py").write_text("")
    (tmp_path / "core" / "engine" / "state.py").write_text("X = 1\n")
    (tmp_path / "core" / "formats" / "manifest.py").write_text(
        "def f():\n    from core.engine.state import X\n")
    (tmp_path / "core" / "net" / "tls.py").write_text("import PySide6.QtCore\n")
    (tmp_path / "core" / "stray.py").write_text("")
    assert violations(tmp_path) == [
        "core.formats.manifest (formats) imports core.engine.state (engine)",
        "core.net.tls imports PySide6.QtCore",
        "core.stray: in no package of LAYERS (place it, or add it to TOP)",
    ]
