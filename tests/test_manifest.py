"""Manifest and pointer parsing: shapes, bounds, path safety, version order."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import FormatError, StitchError, UnsafePathError
from core.formats.manifest import (
    FileEntry,
    Manifest,
    Pointer,
    check_path,
    encode_manifest,
    encode_pointer,
    parse_manifest,
    parse_pointer,
    version_key,
)

H = "ab" * 32


def _manifest(**kw: object) -> dict[str, object]:
    obj: dict[str, object] = {
        "format": "stitch.release/1", "product": "game", "channel": "stable",
        "version": "1.0.0", "created": "2026-11-28T07:00:00Z", "expires": None,
        "files": [{"path": "data/a.pak", "size": 10, "sha256": H, "fidx_sha256": H,
                   "fidx_size": 112, "executable": False}],
    }
    obj.update(kw)
    return obj


def _bytes(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_round_trip() -> None:
    m = Manifest("game", "stable", "1.2.3", "2026-11-28T07:00:00Z",
                 (FileEntry("bin/run", 5, H, H, 112, True),), notes="hi")
    again = parse_manifest(encode_manifest(m))
    assert again.files == m.files and again.version == "1.2.3" and again.notes == "hi"
    assert encode_manifest(again) == encode_manifest(m)


@pytest.mark.parametrize("path", [
    "../x", "../../etc/passwd", "/etc/x", "C:\\x", "c:x", "\\\\server\\share\\x", "a\\b",
    "a/../b", "./a", "a//b", "a/", "", "x\x00y", "CON", "con.txt", "dir/NUL", "lpt1.log",
    "a.", "a ", "a/b.", "what?", "a:b", ".stitch/state.json", "x" * 5000,
    "COM1/a", "a/Aux.x.y", "dir/nul", "a/b/", "-/x" * 1400,
])
def test_unsafe_paths_rejected(path: str) -> None:
    with pytest.raises(UnsafePathError):
        check_path(path)
    obj = _manifest(files=[{"path": path, "size": 1, "sha256": H, "fidx_sha256": H,
                            "fidx_size": 112}])
    with pytest.raises((UnsafePathError, FormatError)):
        parse_manifest(_bytes(obj))


@pytest.mark.parametrize("path", ["a", "data/a.pak", "Ünïcode/файл.bin", "a b/c d", "sub/.stitch",
                                  "x.tar.gz", "console.txt", "a-b_c/D.e.f",
                                  "com10/x", "_/-"])
def test_safe_paths_accepted(path: str) -> None:
    assert check_path(path) == path


def test_case_insensitive_duplicates_rejected() -> None:
    files = [{"path": p, "size": 1, "sha256": H, "fidx_sha256": H, "fidx_size": 112}
             for p in ("Data/A.pak", "data/a.PAK")]
    with pytest.raises(UnsafePathError):
        parse_manifest(_bytes(_manifest(files=files)))


def test_file_inside_a_file_rejected() -> None:
    files = [{"path": p, "size": 1, "sha256": H, "fidx_sha256": H, "fidx_size": 112}
             for p in ("a", "a/b")]
    with pytest.raises(UnsafePathError):
        parse_manifest(_bytes(_manifest(files=files)))


@pytest.mark.parametrize("change", [
    {"format": "stitch.release/2"}, {"version": "../1"}, {"product": ""},
    {"created": "yesterday"}, {"expires": "2026-13-01T00:00:00Z"}, {"files": "nope"},
    {"files": [{"path": "a", "size": -1, "sha256": H, "fidx_sha256": H, "fidx_size": 1}]},
    {"files": [{"path": "a", "size": True, "sha256": H, "fidx_sha256": H, "fidx_size": 1}]},
    {"files": [{"path": "a", "size": 1, "sha256": "zz", "fidx_sha256": H, "fidx_size": 1}]},
    {"files": [{"path": "a", "size": 1 << 41, "sha256": H, "fidx_sha256": H,
                "fidx_size": 1}]},
])
def test_bad_manifests_rejected(change: dict[str, object]) -> None:
    with pytest.raises(FormatError):
        parse_manifest(_bytes(_manifest(**change)))


def test_manifest_size_bounded_before_parsing() -> None:
    with pytest.raises(FormatError):
        parse_manifest(b" " * (64 << 20) + b"{}")


def test_expiry() -> None:
    m = parse_manifest(_bytes(_manifest(expires="2000-01-01T00:00:00Z")))
    assert m.expired()
    assert not parse_manifest(_bytes(_manifest(expires="2999-01-01T00:00:00Z"))).expired()


def test_pointer_round_trip_and_rejects() -> None:
    p = Pointer("1.0.0", "1.0.0/release.json", H)
    assert parse_pointer(encode_pointer(p)) == p
    for bad in (b"[]", b"{", _bytes({"format": "stitch.pointer/1", "version": "1",
                                      "manifest": "../x", "sha256": H}),
                b"x" * 100_000):
        with pytest.raises(StitchError):
            parse_pointer(bad)


def test_version_order() -> None:
    order = ["0.9", "1.0.0-rc1", "1.0.0", "1.0.1", "1.2", "1.10.0", "2.0.0-beta", "2.0.0",
             "2024.1.1"]
    assert sorted(order, key=version_key) == order


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_only_stitch_errors(data: bytes) -> None:
    for parse in (parse_manifest, parse_pointer):
        with contextlib.suppress(StitchError):
            parse(data)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                         max_size=4),
                    max_leaves=20))
def test_fuzz_json_shapes(value: object) -> None:
    obj = _manifest()
    obj["files"] = [value] if not isinstance(value, list) else value
    with contextlib.suppress(StitchError):
        parse_manifest(_bytes(obj))

