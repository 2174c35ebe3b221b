"""The player-side configuration: ``updater.toml`` beside the updater executable.

This module owns reading and checking that file and turning it into the engine's
``UpdaterConfig``. It never imports Qt (the silent launcher mode uses it too) and never
writes anything. Every problem is a ``ConfigError`` naming the file and, when it can be
found, the line, so a publisher who ships a typo sees where it is.

The file::

    product = "dcrawl"                        # the release's product id; manifests must match
    name = "Dungeon Crawl"                    # shown to the player (default: product)
    url = "https://cdn.example.com/dcrawl/"  # required: the folder holding <channel>/
    channel = "stable"
    install_dir = "."                         # relative to this file's folder, or "ask"
    pubkey = "RWQ..."                         # or pubkeys = ["RWQ...", "RWR..."] (minisign)
    auto_start = false                        # update without waiting for the Update button
    cache_bust = true                         # latest.json asked with ?stitch=<random>

    [launch]                                  # what Play runs, from the install folder
    program = "bin/dcrawl"
    args = ["--fullscreen"]

    [install]                                 # what a first install adds (app/shortcuts.py)
    shortcuts = ["menu", "desktop"]           # default ["menu"]; [] for none
    uninstall_entry = true                    # Windows "Add or remove programs"

    [window]
    title = "Dungeon Crawl updater"
    icon = "dcrawl.png"                       # relative to this file's folder or to assets/
    accent = "#3d7eff"
"""

from __future__ import annotations

import difflib
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.engine.updater import UpdaterConfig
from core.errors import ConfigError

CONFIG_NAME = "updater.toml"
ASK = "ask"  # install_dir value: ask the player where to install
SHORTCUT_KINDS = ("menu", "desktop")

_ACCENT_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_TOML_LINE_RE = re.compile(r"at line (\d+)")
_PRODUCT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as core.formats.manifest requires

# Allowed keys per table ("" is the top level) and their TOML types. A schema as data keeps
# the checks, the unknown-key suggestions and the docs in one place.
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "": {
        "product": str,
        "name": str,
        "url": str,
        "channel": str,
        "install_dir": str,
        "pubkey": str,
        "pubkeys": list,
        "auto_start": bool,
        "cache_bust": bool,
        "launch": dict,
        "window": dict,
        "install": dict,
    },
    "install": {"shortcuts": list, "uninstall_entry": bool},
    "launch": {"program": str, "args": list},
    "window": {"title": str, "icon": str, "accent": str},
}


@dataclass(frozen=True)
class AppConfig:
    """What ``updater.toml`` says, checked and with paths resolved (absolute)."""

    path: Path  # the config file itself
    url: str
    product: str = ""  # release product id ("" = any); see core.formats.manifest
    name: str = ""  # what the player reads ("" = product)
    channel: str = "stable"
    install_dir: Path | None = None  # None: ask the player (install_dir = "ask")
    default_install_dir: Path = Path()  # suggestion for the folder chooser
    pubkeys: tuple[str, ...] = ()
    auto_start: bool = False
    cache_bust: bool = True  # ?stitch=<random> on latest.json (docs/publishing.md)
    program: str = ""  # "" = no Play button; relative paths are inside the install folder
    args: tuple[str, ...] = ()
    title: str = ""  # "" = "<product> updater"
    icon: Path | None = None  # None = the stitch icon from assets/
    accent: str = ""  # "#rrggbb", "" = the palette's highlight colour
    shortcuts: tuple[str, ...] = ("menu",)  # of SHORTCUT_KINDS
    uninstall_entry: bool = True

    @property
    def ask_install_dir(self) -> bool:
        return self.install_dir is None

    @property
    def display_name(self) -> str:
        return self.name or self.product

    @property
    def window_title(self) -> str:
        if self.title:
            return self.title
        return f"{self.display_name} updater" if self.display_name else "Updater"


def default_config_path() -> Path:
    """``updater.toml`` beside the executable when frozen (PyInstaller), else in the
    current directory."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent / CONFIG_NAME
    return Path.cwd() / CONFIG_NAME


def load_config(path: Path) -> AppConfig:
    """Read and check ``path``.

    Raises ``ConfigError`` (with ``path`` and, when known, ``line`` set) if the file is
    missing or unreadable, is not valid TOML, has an unknown key, a value of the wrong type,
    or lacks ``url``.
    """
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found", path=shown) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{shown}: not UTF-8 text ({e.reason})", path=shown) from None
    except OSError as e:
        raise ConfigError(f"{shown}: cannot read: {e.strerror or e}", path=shown) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_LINE_RE.search(str(e))
        # tomllib says "at end of document" for an unfinished last value: that is the last line.
        line = int(m.group(1)) if m else (len(text.splitlines()) if "end of document"
                                           in str(e) else 0)
        raise _error(shown, line, f"not valid TOML: {e}") from None
    return _build(path, text, data)


def to_updater_config(cfg: AppConfig, install_dir: Path) -> UpdaterConfig:
    """The engine's config for updating ``install_dir`` (the chosen or configured folder)."""
    return UpdaterConfig(
        url=cfg.url,
        install_dir=Path(install_dir),
        channel=cfg.channel,
        product=cfg.product,
        pubkeys=cfg.pubkeys,
        cache_bust=cfg.cache_bust,
    )


# --- checking --------------------------------------------------------------------------------


def _error(shown: str, line: int, message: str) -> ConfigError:
    where = f"{shown}, line {line}" if line else shown
    return ConfigError(f"{where}: {message}", path=shown, line=line)


def _find_line(text: str, table: str, key: str | None) -> int:
    """1-based line of ``key`` inside ``[table]`` ("" = top level), or of the table header
    when ``key`` is None; 0 if not found. A plain scan is enough: the file already parsed,
    and a line number is a hint for a human, not data."""
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]\s]+)\s*\]", line)
        if header:
            current = header.group(1).strip("\"'")
            if key is None and current == table:
                return number
            continue
        if key is None:
            continue
        if current == table and re.match(rf"^[\"']?{re.escape(key)}[\"']?\s*[=.]", line):
            return number
        # A dotted key at the top level (launch.program = ...) also belongs to the table.
        if (
            current == ""
            and table
            and re.match(rf"^{re.escape(table)}\s*\.\s*{re.escape(key)}\s*=", line)
        ):
            return number
    return 0


def _check_table(shown: str, text: str, table: str, values: dict[str, Any]) -> None:
    schema = _SCHEMA[table]
    for key, value in values.items():
        line = _find_line(text, table, key)
        if not line and not table and isinstance(value, dict):
            line = _find_line(text, key, None)  # a [table] header rather than a key
        where = f"[{table}] " if table else ""
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise _error(shown, line, f"unknown key {where}'{key}'{suggestion}")
        expected = schema[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            if isinstance(expected, type) and expected is dict:
                line = _find_line(text, key, None) or line
            raise _error(
                shown,
                line,
                f"{where}'{key}' should be {_type_name(expected)}, not {_type_name(type(value))}",
            )
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise _error(shown, line, f"{where}'{key}' should be a list of strings")


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        list: "a list",
        bool: "true or false",
        dict: "a table",
        int: "a number",
        float: "a number",
    }
    if isinstance(t, tuple):
        return " or ".join(names.get(x, x.__name__) for x in t)
    return names.get(t, t.__name__)


def _build(path: Path, text: str, data: dict[str, Any]) -> AppConfig:
    shown = str(path)
    _check_table(shown, text, "", data)
    launch: dict[str, Any] = data.get("launch", {})
    window: dict[str, Any] = data.get("window", {})
    install: dict[str, Any] = data.get("install", {})
    _check_table(shown, text, "launch", launch)
    _check_table(shown, text, "window", window)
    _check_table(shown, text, "install", install)
    shortcuts = tuple(install.get("shortcuts", ("menu",)))
    for kind in shortcuts:
        if kind not in SHORTCUT_KINDS:
            raise _error(
                shown,
                _find_line(text, "install", "shortcuts"),
                f"[install] 'shortcuts' entries are \"menu\" or \"desktop\", not {kind!r}",
            )

    url = data.get("url", "").strip()
    if not url:
        raise _error(shown, _find_line(text, "", "url"), "missing 'url' (the release address)")
    if not re.match(r"^https?://[^/\s]+", url):
        raise _error(
            shown,
            _find_line(text, "", "url"),
            f"'url' should start with http:// or https://, not {url!r}",
        )
    if "pubkey" in data and "pubkeys" in data:
        raise _error(shown, _find_line(text, "", "pubkeys"), "use 'pubkey' or 'pubkeys', not both")
    keys: list[str] = [data["pubkey"]] if "pubkey" in data else list(data.get("pubkeys", []))
    keys = [k.strip() for k in keys]
    for k in keys:
        if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", k):
            line = _find_line(text, "", "pubkey" if "pubkey" in data else "pubkeys")
            raise _error(shown, line, f"public key {k!r} is not minisign base64")

    product = data.get("product", "")
    if product and not _PRODUCT_RE.match(product):
        raise _error(
            shown,
            _find_line(text, "", "product"),
            f"'product' is the release's id (letters, digits, '.', '_', '-'), not {product!r}; "
            "put the name players read in 'name'",
        )
    name = data.get("name", "")

    base = path.resolve().parent
    raw_dir = data.get("install_dir", ".")
    install_dir: Path | None
    if raw_dir.strip().lower() == ASK:
        install_dir = None
        from app.installs import user_install_dir  # per user: never needs elevation

        default_dir = user_install_dir(_folder_name(name or product) or "game")
    else:
        install_dir = (base / Path(raw_dir).expanduser()).resolve()
        default_dir = install_dir

    accent = window.get("accent", "").strip()
    if accent and not _ACCENT_RE.match(accent):
        raise _error(
            shown,
            _find_line(text, "window", "accent"),
            f"[window] 'accent' should be a colour like \"#3d7eff\", not {accent!r}",
        )
    icon: Path | None = None
    if window.get("icon"):
        icon = _resolve_icon(base, window["icon"])
        if icon is None:
            raise _error(
                shown,
                _find_line(text, "window", "icon"),
                f"[window] icon file {window['icon']!r} not found beside the config or in assets/",
            )

    return AppConfig(
        path=path.resolve(),
        url=url,
        product=product,
        name=name,
        channel=data.get("channel", "stable"),
        install_dir=install_dir,
        default_install_dir=default_dir,
        pubkeys=tuple(keys),
        auto_start=data.get("auto_start", False),
        cache_bust=data.get("cache_bust", True),
        program=launch.get("program", ""),
        args=tuple(launch.get("args", ())),
        title=window.get("title", ""),
        icon=icon,
        accent=accent,
        shortcuts=tuple(dict.fromkeys(shortcuts)),
        uninstall_entry=install.get("uninstall_entry", True),
    )


def _folder_name(product: str) -> str:
    """A folder name for the suggested install folder: the product name without characters
    that Windows refuses in paths."""
    return re.sub(r'[<>:"/\\|?*\x00-\x1f]', "", product).strip(" .")


def _resolve_icon(base: Path, name: str) -> Path | None:
    from app.assets import asset_path  # local: keeps config importable without app.assets

    for candidate in (base / name, asset_path(name)):
        if candidate.is_file():
            return candidate.resolve()
    return None
