"""The Windows "Add or remove programs" entry of an install (``[install] uninstall_entry``).

Written per user, so no elevation: ``HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\
CurrentVersion\\Uninstall\\stitch-<product>``, with the values Windows' Settings and Control
Panel read::

    DisplayName           REG_SZ     the game's name
    DisplayVersion        REG_SZ     the installed version
    Publisher             REG_SZ     the config's name for the publisher ("" = the name)
    DisplayIcon           REG_SZ     the updater executable (its icon)
    InstallLocation       REG_SZ     the install folder
    EstimatedSize         REG_DWORD  the release's size in KiB
    UninstallString       REG_SZ     "<updater>" uninstall --config "<updater.toml>"
    QuietUninstallString  REG_SZ     the same with --yes
    NoModify, NoRepair    REG_DWORD  1

The registry is reached through the ``Registry`` protocol: ``WinRegistry`` (``winreg``, on
Windows only) in the product, a dictionary in the tests on any system.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

UNINSTALL_KEY = r"Software\Microsoft\Windows\CurrentVersion\Uninstall"
REG_SZ = 1
REG_DWORD = 4


class Registry(Protocol):
    """The few HKEY_CURRENT_USER operations the entry needs."""

    def set_values(self, key: str, values: dict[str, tuple[int, str | int]]) -> None: ...
    def delete_key(self, key: str) -> bool: ...


class WinRegistry:
    """The real registry (HKEY_CURRENT_USER), through ``winreg``."""

    def set_values(self, key: str, values: dict[str, tuple[int, str | int]]) -> None:
        import winreg  # type: ignore[import-not-found,unused-ignore]

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0,  # type: ignore[attr-defined,unused-ignore]
                                winreg.KEY_SET_VALUE) as k:  # type: ignore[attr-defined,unused-ignore]
            for name, (kind, value) in values.items():
                winreg.SetValueEx(k, name, 0, kind, value)  # type: ignore[attr-defined,unused-ignore]

    def delete_key(self, key: str) -> bool:
        import winreg  # type: ignore[import-not-found,unused-ignore]

        try:
            winreg.DeleteKey(winreg.HKEY_CURRENT_USER, key)  # type: ignore[attr-defined,unused-ignore]
        except FileNotFoundError:
            return False
        return True


def key_for(product: str) -> str:
    return f"{UNINSTALL_KEY}\\stitch-{product}"


def entry_values(name: str, version: str, publisher: str, install_dir: str, size: int,
                 updater: Sequence[str], config: str) -> dict[str, tuple[int, str | int]]:
    """The values of the entry. ``updater``: the command that starts the updater (the
    executable, or Python and its arguments)."""
    import subprocess

    uninstall = subprocess.list2cmdline([*updater, "uninstall", "--config", config])
    return {
        "DisplayName": (REG_SZ, name),
        "DisplayVersion": (REG_SZ, version),
        "Publisher": (REG_SZ, publisher or name),
        "DisplayIcon": (REG_SZ, updater[0]),
        "InstallLocation": (REG_SZ, install_dir),
        "EstimatedSize": (REG_DWORD, min(0xFFFFFFFF, (size + 1023) // 1024)),
        "UninstallString": (REG_SZ, uninstall),
        "QuietUninstallString": (REG_SZ, uninstall + " --yes"),
        "NoModify": (REG_DWORD, 1),
        "NoRepair": (REG_DWORD, 1),
    }


def write_entry(registry: Registry, product: str,
                values: dict[str, tuple[int, str | int]]) -> str:
    """Write the entry; returns its key (recorded, so uninstall removes it)."""
    key = key_for(product)
    registry.set_values(key, values)
    return key
