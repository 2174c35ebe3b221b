"""After an install succeeded: remember where (``app/installs.py``) and, the first time, make
the shortcuts (``app/shortcuts.py``). Called by ``stitch update`` / ``--update`` and by the
window, only once files are committed in a folder the player confirmed or the config named."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app import installs
from app.config import AppConfig

if TYPE_CHECKING:  # imported when used: a launcher's up-to-date run needs neither
    from app.winregistry import Registry


def remember(cfg: AppConfig, install_dir: Path, version: str | None,
             command: list[str] | None = None, registry: Registry | None = None,
             ) -> tuple[installs.InstallRecord | None, list[str]]:
    """Record the install of ``cfg.product`` in ``install_dir`` at ``version``; make the
    shortcuts when this is the first install recorded there. Returns the record (None when
    the config names no product: nothing to key it on) and warnings for the player (a
    shortcut that could not be made never fails an update). On Windows (or with a
    ``registry`` given, as tests do) the "Add or remove programs" entry is written or
    brought up to date when ``[install] uninstall_entry`` is on."""
    if not cfg.product:
        return None, []
    install_dir = Path(install_dir).resolve()
    old = installs.load(cfg.product)
    first = old is None or Path(old.install_dir) != install_dir
    record = installs.InstallRecord(
        product=cfg.product,
        install_dir=install_dir,
        name=cfg.display_name,
        version=version,
        channel=cfg.channel,
        url=cfg.url,
        config=str(cfg.path),
        pubkeys=list(cfg.pubkeys),
        shortcuts=[] if old is None else list(old.shortcuts),
        registry=[] if old is None else list(old.registry),
    )
    warnings: list[str] = []
    if first:
        from app import shortcuts

        try:
            made = shortcuts.make(cfg, install_dir, command)
        except OSError as e:
            made = []
            warnings.append(f"could not make the shortcuts: {e.strerror or e}"
                            + (f": {e.filename}" if e.filename else ""))
        record.shortcuts = sorted(set(record.shortcuts) | {str(p) for p in made})
    if registry is None and sys.platform == "win32":
        from app.winregistry import WinRegistry

        registry = WinRegistry()
    stale = first or old is None or old.version != version or not old.registry
    if registry is not None and cfg.uninstall_entry and stale:
        try:
            record.registry = [_write_entry(registry, cfg, install_dir, version, command)]
        except OSError as e:
            warnings.append(f"could not write the uninstall entry: {e.strerror or e}")
    if record != old:  # a launcher's every start: no write (and no fsync) when unchanged
        installs.save(record)
    return record, warnings


def _write_entry(registry: Registry, cfg: AppConfig, install_dir: Path, version: str | None,
                 command: list[str] | None) -> str:
    from app import shortcuts
    from app.winregistry import entry_values, write_entry
    from core.engine.state import StateStore

    size = sum(f.size for f in StateStore(install_dir).load().files.values())
    updater = (command or shortcuts.updater_command(cfg.path))[:-2]  # without --config F
    values = entry_values(cfg.display_name or cfg.product, version or "", "",
                          str(install_dir), size, updater, str(cfg.path))
    return write_entry(registry, cfg.product, values)
