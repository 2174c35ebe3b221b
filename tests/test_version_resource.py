"""packaging/stitch_bundle.py's Windows version resource numbers: every PEP 440 version gets
four 16-bit numbers that Windows (Explorer, installers, antivirus allow-lists) orders as the
versions are ordered, pre-releases below their final release; what does not fit is a clear
error, not a silent wrap or a tie (docs/publishing.md, "Version resource")."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "stitch_bundle_for_version", REPO_ROOT / "packaging" / "stitch_bundle.py")
assert _spec is not None and _spec.loader is not None
sb = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = sb
_spec.loader.exec_module(sb)


@pytest.mark.parametrize(("version", "numbers"), [
    ("1.2.3", (1, 2, 3, 40000)),
    ("1.2.3rc1", (1, 2, 3, 30001)),
    ("1.2.3-rc.1", (1, 2, 3, 30001)),  # the manifest's spelling, normalised as PEP 440 does
    ("1.2.3c2", (1, 2, 3, 30002)),
    ("1.2.3a1", (1, 2, 3, 10001)),
    ("1.2.3alpha1", (1, 2, 3, 10001)),
    ("1.2.3b12", (1, 2, 3, 20012)),
    ("1.2.3.dev4", (1, 2, 3, 4)),
    ("1.2.3.post1", (1, 2, 3, 40001)),
    ("1.2.3rc1+g1234abc", (1, 2, 3, 30001)),  # the local part is left out
    ("2", (2, 0, 0, 40000)),
    ("0.1.0", (0, 1, 0, 40000)),
    ("65535.65535.65535.post25535", (65535, 65535, 65535, 65535)),
])
def test_mapping(version: str, numbers: tuple[int, int, int, int]) -> None:
    assert sb.version_tuple(version) == numbers


def test_pre_releases_are_distinct_and_ordered_below_the_final() -> None:
    ordered = ["1.2.2", "1.2.3.dev1", "1.2.3.dev2", "1.2.3a1", "1.2.3a2", "1.2.3b1",
               "1.2.3rc1", "1.2.3rc2", "1.2.3", "1.2.3.post1", "1.2.4.dev0", "1.3.0a1",
               "2.0.0"]
    tuples = [sb.version_tuple(v) for v in ordered]
    assert tuples == sorted(tuples)
    assert len(set(tuples)) == len(tuples)  # 1.2.3rc1 and 1.2.3 no longer tie
    assert all(0 <= n <= 0xFFFF for t in tuples for n in t)


@pytest.mark.parametrize(("version", "message"), [
    ("70000.1.1", "the major number 70000 does not fit"),
    ("1.65536.0", "the minor number 65536 does not fit"),
    ("1.2.99999", "the patch number 99999 does not fit"),
    ("1.2.3rc10000", "the rc number 10000 does not fit"),
    ("1.2.3.dev10000", "the dev number 10000 does not fit"),
    ("1.2.3.post25536", "the post number 25536 does not fit"),
    ("1.2.3.4", "at most three release numbers"),
    ("1.2.3rc1.dev1", "a dev release of a pre- or post-release"),
    ("1.2.3rc1.post1", "a post-release of a pre-release"),
    ("banana", "not a PEP 440 version"),
])
def test_what_does_not_fit_is_a_clear_error(version: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        sb.version_tuple(version)
    assert repr(version) in str(info.value)


def test_the_resource_text_carries_the_mapped_numbers() -> None:
    text = sb.version_info_text("1.2.3rc1", "stitch")
    assert "filevers=(1, 2, 3, 30001)" in text and "prodvers=(1, 2, 3, 30001)" in text
    assert "StringStruct('FileVersion', '1.2.3rc1')" in text  # the full string as well
    with pytest.raises(ValueError, match="does not fit"):
        sb.version_info_text("1.2.70000", "stitch")
