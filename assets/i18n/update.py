"""Make the translation sources ``assets/i18n/stitch_<lang>.ts`` from the code, and the
``.qm`` files the updater loads from them.

    python assets/i18n/update.py            # update every stitch_*.ts from app/gui
    python assets/i18n/update.py --lang fr  # start a new translation (stitch_fr.ts)
    python assets/i18n/update.py --check    # exit 1 if a .ts is stale or not translated
    python assets/i18n/update.py --release  # also compile each .ts to .qm (pyside6-lrelease)

``pyside6-lupdate`` only finds ``tr(`` calls with no context and never ``tr_noop``, so this
reads app/gui with ``ast``: every ``tr("...", "disambiguation")`` and ``tr_noop("...")``
whose text is a literal (adjacent literals join, as Python joins them). A string that left
the code is dropped from the .ts; a new one is added unfinished, with no translation.
Translations are edited in the .ts (Qt Linguist: ``pyside6-linguist``, or any editor).
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCES = ROOT / "app" / "gui"
CONTEXT = "stitch"  # app/gui/tr.py's CONTEXT
MARKERS = ("tr", "tr_noop")

Key = tuple[str, str]  # (source, disambiguation)


@dataclass
class Message:
    source: str
    comment: str = ""  # the disambiguation
    locations: list[tuple[str, int]] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.source, self.comment)


def extract(folder: Path = SOURCES, root: Path = ROOT) -> list[Message]:
    """Every translatable literal in the ``.py`` files under ``folder``, in file order."""
    found: dict[Key, Message] = {}
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for source, comment, line in calls_in(path.read_text(encoding="utf-8")):
            message = found.setdefault((source, comment), Message(source, comment))
            message.locations.append((rel, line))
    return list(found.values())


def calls_in(code: str) -> list[tuple[str, str, int]]:
    """``(text, disambiguation, line)`` of each ``tr``/``tr_noop`` call with a literal text."""
    out = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else (
            node.func.attr if isinstance(node.func, ast.Attribute) else "")
        if name not in MARKERS or not node.args:
            continue
        text = _literal(node.args[0])
        if text is None:
            continue  # tr(variable): a tr_noop literal elsewhere gives its text
        comment = _literal(node.args[1]) if len(node.args) > 1 and name == "tr" else None
        for kw in node.keywords:
            if kw.arg == "disambiguation":
                comment = _literal(kw.value)
        out.append((text, comment or "", node.lineno))
    return sorted(out, key=lambda t: t[2])


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


# Calls whose string arguments the player reads: a literal or f-string with words there must be
# a tr() call instead. (``ErrorText``: its message, the second argument.)
SHOWN = {
    "setText", "setWindowTitle", "setAccessibleName", "setAccessibleDescription", "setToolTip",
    "setStatusTip", "setWhatsThis", "setPlaceholderText", "setPlainText", "setMarkdown",
    "setHtml", "setInformativeText", "setDetailedText", "setFormat", "addRow", "addTab",
    "setTabText", "addButton", "addItem", "addAction", "setTitle", "_log", "appendPlainText",
    "QLabel", "QPushButton", "QToolButton", "QCheckBox", "QRadioButton", "QGroupBox",
    "QAction", "QMessageBox", "critical", "warning", "information", "question",
    "getExistingDirectory", "getOpenFileName", "getSaveFileName",
}


def bare_strings(code: str, returns: bool = False) -> list[tuple[int, str]]:
    """``(line, text)`` of the words that reach the player without ``tr``: string literals and
    f-strings with letters passed to a call in ``SHOWN`` (or ``ErrorText``'s message), and,
    with ``returns`` (app/gui/text.py, where every function returns what is shown), returned."""
    found: list[tuple[int, str]] = []

    def scan(node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(c.isalpha() for c in node.value):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            words = "".join(v.value for v in node.values
                            if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if any(c.isalpha() for c in words):
                found.append((node.lineno, words))
        elif isinstance(node, ast.IfExp):
            scan(node.body)
            scan(node.orelse)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                scan(v)
        elif isinstance(node, ast.BinOp):
            scan(node.left)
            scan(node.right)
        elif isinstance(node, ast.Tuple | ast.List):
            for v in node.elts:
                scan(v)

    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else (
                node.func.attr if isinstance(node.func, ast.Attribute) else "")
            if name in SHOWN:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    scan(arg)
            elif name == "ErrorText" and len(node.args) > 1:
                scan(node.args[1])
        elif returns and isinstance(node, ast.Return) and node.value is not None:
            scan(node.value)
    return sorted(found)


def bare_strings_in(folder: Path = SOURCES, root: Path = ROOT) -> list[str]:
    """``file:line: text`` for every string of ``bare_strings`` under ``folder``."""
    out = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        code = path.read_text(encoding="utf-8")
        out += [f"{rel}:{line}: {s!r}" for line, s in bare_strings(code, path.name == "text.py")]
    return out


def read_ts(path: Path) -> dict[Key, str]:
    """The finished and unfinished translations in a .ts, by (source, disambiguation)."""
    if not path.is_file():
        return {}
    out = {}
    for message in ET.parse(path).getroot().iter("message"):
        source = message.findtext("source") or ""
        comment = message.findtext("comment") or ""
        out[(source, comment)] = message.findtext("translation") or ""
    return out


def render_ts(language: str, messages: list[Message], translations: dict[Key, str]) -> str:
    """The .ts text (Qt Linguist's format, version 2.1) for ``messages``."""
    ts = ET.Element("TS", version="2.1", language=language, sourcelanguage="en")
    context = ET.SubElement(ts, "context")
    ET.SubElement(context, "name").text = CONTEXT
    for m in messages:
        el = ET.SubElement(context, "message")
        # Files, not lines: the .ts changes when a string does, not when code moves.
        for rel in dict.fromkeys(rel for rel, _ in m.locations):
            ET.SubElement(el, "location", filename=f"../../{rel}")
        ET.SubElement(el, "source").text = m.source
        if m.comment:
            ET.SubElement(el, "comment").text = m.comment
        translation = ET.SubElement(el, "translation")
        done = translations.get(m.key, "")
        if done:
            translation.text = done
        else:
            translation.set("type", "unfinished")
    ET.indent(ts, space="    ")
    body = ET.tostring(ts, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n' + body + "\n"


def ts_files(folder: Path = HERE) -> list[Path]:
    return sorted(folder.glob("stitch_*.ts"))


def language_of(ts: Path) -> str:
    return ts.stem.removeprefix("stitch_")


def untranslated(ts: Path) -> list[str]:
    """Sources in ``ts`` with no translation."""
    return [source for (source, _), done in read_ts(ts).items() if not done]


def lrelease() -> str:
    """The ``pyside6-lrelease`` beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("pyside6-lrelease")
    found = str(beside) if beside.exists() else shutil.which("pyside6-lrelease")
    if not found:
        raise SystemExit("update.py: pyside6-lrelease not found (pip install PySide6)")
    return found


def release(ts: Path, qm: Path) -> None:
    """Compile ``ts`` to ``qm`` with pyside6-lrelease."""
    done = subprocess.run([lrelease(), "-silent", "-nounfinished", str(ts), "-qm", str(qm)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not qm.is_file():
        raise SystemExit(f"update.py: pyside6-lrelease failed on {ts}: {done.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", action="append", default=[], help="also make stitch_LANG.ts")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a .ts is stale or has untranslated text")
    parser.add_argument("--release", action="store_true", help="also write the .qm files")
    args = parser.parse_args(argv)
    messages = extract()
    targets = ts_files() + [HERE / f"stitch_{lang}.ts" for lang in args.lang]
    problems = [f"{where} is shown without tr()" for where in bare_strings_in()]
    for ts in dict.fromkeys(targets):
        text = render_ts(language_of(ts), messages, read_ts(ts))
        current = ts.read_text(encoding="utf-8") if ts.is_file() else ""
        if args.check:
            if text != current:
                problems.append(f"{ts.name}: out of date with the code (run assets/i18n/update.py)")
            problems += [f"{ts.name}: not translated: {s!r}" for s in untranslated(ts)]
            continue
        if text != current:
            ts.write_text(text, encoding="utf-8")
            print(f"updated {ts.relative_to(ROOT)}")
        if args.release:
            release(ts, ts.with_suffix(".qm"))
            print(f"wrote {ts.with_suffix('.qm').relative_to(ROOT)}")
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
