"""``stitch uninstall``: remove exactly what a release installed, keep what the player made.

The folder comes from ``--dir``, else the config's ``install_dir``, else the remembered
install (``app/installs.py``). It must be a stitch install (``.stitch/state.json`` naming an
installed version), or nothing is touched (exit 2). An interrupted update is finished first
(``core.engine.commit.recover``), so the installed state is exact.

Removal is all or nothing for the release's files: each is first moved into
``.stitch/uninstalling/`` (a rename inside the folder); if one cannot be moved (in use on
Windows, no permission), the ones already moved are put back, the file is named with the
programs holding it, and the command fails (exit 5) with the install as it was. Then the
moved files, ``.stitch/``, the release's now-empty folders, the shortcuts made for this
install and its record are removed. Files the player made (saves, screenshots, settings not
in the release) stay, and are listed; the install folder itself goes only when empty.

The removal holds the install lock (``core/engine/lock.py``), as an update does: a launcher's
``--update`` starting meanwhile waits for it, and an update already running makes the
uninstall wait ``--lock-wait`` seconds, then exit 8 with nothing removed. The question is
asked without the lock, so what is removed is listed again under it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from app import installs, shortcuts
from app.config import AppConfig, default_config_path, load_config
from app.winregistry import Registry
from core.engine import lock
from core.engine.commit import recover
from core.engine.state import STATE_DIR, StateStore
from core.errors import ConfigError, ContentError
from core.formats.manifest import parse_manifest
from core.fsutil import inside

_SHOW_KEPT = 10  # files the player made, listed by name; the rest counted


def run(args: argparse.Namespace, ask: Callable[[str], str] = input,
        registry: Registry | None = None) -> int:
    config_path = getattr(args, "uninstall_config", None) or args.config
    cfg: AppConfig | None = None
    if config_path is not None:
        cfg = load_config(config_path)
    elif args.dir is None and default_config_path().is_file():
        cfg = load_config(default_config_path())
    folder = find_folder(args.dir, cfg)
    plan = Plan.of(folder)
    name = (cfg.display_name if cfg else "") or plan.product or folder.name
    if not args.yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise ConfigError("uninstall asks for confirmation: pass --yes to run without it")
        answer = ask(f"Remove {name} {plan.version} ({len(plan.release)} files) from "
                     f"{folder}? Files you made there stay. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 6  # EXIT_CANCELLED (app/cli.py)
    plan.remove(wait=getattr(args, "lock_wait", lock.DEFAULT_WAIT),
                on_wait=lambda line: print(f"stitch: {line}", file=sys.stderr))
    left = forget(plan, (cfg.product if cfg else "") or plan.product, registry)
    print(f"removed {name} {plan.version}: {plan.removed} files from {folder}")
    if plan.kept:
        shown = ", ".join(plan.kept[:_SHOW_KEPT])
        more = f" and {len(plan.kept) - _SHOW_KEPT} more" if len(plan.kept) > _SHOW_KEPT else ""
        print(f"kept {len(plan.kept)} files you made, in {folder}: {shown}{more}")
    for line in left:
        print(f"stitch: warning: not removed: {line}", file=sys.stderr)
    return 0


def forget(plan: Plan, product: str, registry: Registry | None = None) -> list[str]:
    """After ``plan.remove()``: the shortcuts, the "Add or remove programs" entry and the
    record of ``product``'s install, when the record is of ``plan``'s folder. Returns what
    could not be removed, one line each (the install itself is gone either way)."""
    record = installs.load(product)
    left: list[str] = []
    if record is None or Path(record.install_dir).resolve() != plan.folder.resolve():
        return left
    left = shortcuts.remove(record.shortcuts)
    if record.registry and registry is None and sys.platform == "win32":
        from app.winregistry import WinRegistry

        registry = WinRegistry()
    if registry is not None:
        for key in record.registry:
            try:
                registry.delete_key(key)
            except OSError as e:
                left.append(f"{key}: {e.strerror or e}")
    installs.forget(product)
    return left


def find_folder(given: Path | None, cfg: AppConfig | None) -> Path:
    if given is not None:
        return Path(given).resolve()
    if cfg is not None and cfg.install_dir is not None:
        return cfg.install_dir
    if cfg is not None:
        record = installs.load(cfg.product)
        if record is not None:
            return Path(record.install_dir).resolve()
    raise ConfigError("no install folder: pass --dir, or a config whose install is remembered")


class Plan:
    """What uninstalling ``folder`` removes and keeps."""

    def __init__(self, folder: Path, store: StateStore, product: str, version: str,
                 release: list[str], kept: list[str]) -> None:
        self.folder = folder
        self.store = store
        self.product = product
        self.version = version
        self.release = release  # relative paths, "/"-separated
        self.kept = kept
        self.removed = 0

    @classmethod
    def of(cls, folder: Path) -> Plan:
        store = StateStore(folder)
        if not (store.root / "state.json").is_file():
            raise ConfigError(f"{folder} is not a stitch install (no {STATE_DIR}/state.json): "
                              "nothing removed")
        recover(store)  # an update cut off mid-commit: finish it, so the state is exact
        state = store.load()
        if state.version is None:
            raise ConfigError(f"{folder}: its {STATE_DIR}/state.json is damaged or names no "
                              "installed release: nothing removed")
        paths = set(state.files)
        data = store.installed_manifest()
        if data is not None:
            with contextlib.suppress(ContentError):  # the state alone still says what is ours
                paths |= {f.path for f in parse_manifest(data).files}
        release = sorted(paths)
        for rel in release:
            inside(folder, rel)  # refuses a path that would leave the folder
        ours = set(release)
        kept = []
        for root, dirs, files in os.walk(folder):
            rel_root = Path(root).relative_to(folder).as_posix()
            if rel_root == ".":
                dirs[:] = [d for d in dirs if d != STATE_DIR]
            for f in files:
                rel = f if rel_root == "." else f"{rel_root}/{f}"
                if rel not in ours:
                    kept.append(rel)
        return cls(folder, store, state.product, state.version, release, sorted(kept))

    def remove(self, wait: float = 0.0, on_wait: Callable[[str], None] | None = None) -> None:
        """Remove the release's files and ``.stitch/`` under the install lock, waiting for
        another run up to ``wait`` seconds (``InstallBusyError`` then, nothing removed). What
        is removed and kept is listed again under the lock: an update may have run since."""
        with lock.acquire(self.store.root, wait=wait, on_wait=on_wait,
                          what="update of this game") as held:
            now = Plan.of(self.folder)
            self.version, self.release, self.kept = now.version, now.release, now.kept
            self._move_out()
            for entry in list(self.store.root.iterdir()):  # all but the lock, still held
                if entry != held.path:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
        shutil.rmtree(self.store.root)  # the lock file, once released (Windows keeps it open)
        self._remove_folders()

    def _move_out(self) -> None:
        """Every release file into ``.stitch/uninstalling/``, or none (``OSError`` naming
        the file that could not move)."""
        trash = self.store.root / "uninstalling"
        shutil.rmtree(trash, ignore_errors=True)
        trash.mkdir(parents=True)
        moved: list[tuple[Path, Path]] = []
        for n, rel in enumerate(self.release):
            src = inside(self.folder, rel)
            if not src.exists() and not src.is_symlink():
                continue
            dst = trash / str(n)
            try:
                os.replace(src, dst)
            except OSError as e:
                for back_src, back_dst in reversed(moved):  # put the install back as it was
                    os.replace(back_dst, back_src)
                shutil.rmtree(trash, ignore_errors=True)
                raise _in_use(src, rel, e) from None
            moved.append((src, dst))
        self.removed = len(moved)

    def _remove_folders(self) -> None:
        for rel in sorted(self.release, key=lambda r: -r.count("/")):
            parts = rel.split("/")[:-1]
            while parts:  # the release's folders, when nothing the player made is left in them
                try:
                    self.folder.joinpath(*parts).rmdir()
                except OSError:
                    break
                parts.pop()
        if not self.kept:
            with contextlib.suppress(OSError):
                self.folder.rmdir()


def _in_use(path: Path, rel: str, e: OSError) -> OSError:
    from core.system.winfiles import holders

    who = ", ".join(str(h) for h in holders([path]))
    reason = f"in use by {who}" if who else (e.strerror or str(e))
    return OSError(e.errno or 13, f"cannot remove {rel} ({reason}); nothing was removed",
                   str(path))
