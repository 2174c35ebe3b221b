"""``state.json`` as written (``core.engine.state``): what is read back is what was saved,
whatever a file's name holds, one file per line."""

from __future__ import annotations

import json

import pytest

from core.engine.state import InstalledFile, InstalledState
from core.errors import FormatError

NAMES = ["plain.txt", 'a], "b', 'q"], "z', "tab\there", "ünï/cødé.pak", "x]\n, y", "]", '"']


def state(names: list[str]) -> InstalledState:
    files = {n: InstalledFile(f"{i:064x}", i, 10**18 + i, 7 * i) for i, n in enumerate(names)}
    return InstalledState("game", "stable", "1.2.3", files, ["RWQkey"])


def test_state_round_trips_every_name() -> None:
    s = state(NAMES)
    data = s.to_json()
    back = InstalledState.from_json(data)
    assert back.files == s.files
    assert (back.product, back.channel, back.version, back.pinned_keys) == (
        "game", "stable", "1.2.3", ["RWQkey"])
    assert json.loads(data)["files"] == {n: [f.sha256, f.size, f.mtime_ns, f.ino]
                                         for n, f in s.files.items()}


def test_state_has_one_file_per_line() -> None:
    data = state(NAMES).to_json()
    assert data.endswith(b"\n")
    lines = data.decode().splitlines()
    assert len(lines) == 1 + len(NAMES)  # the header, then one file per line
    for line, name in zip(lines[1:], sorted(NAMES), strict=True):
        assert json.dumps(name) in line


def test_a_damaged_state_is_a_format_error() -> None:
    data = state(NAMES).to_json()
    with pytest.raises(FormatError):
        InstalledState.from_json(data[: len(data) // 2])
