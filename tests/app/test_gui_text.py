"""Every string the player reads, exactly."""

from __future__ import annotations

import pytest
from gui_fakes import make_check, make_plan

from app.gui import text
from app.rate import RateMeter
from core.engine.updater import Outcome, UpdateResult
from core.errors import (
    CancelledError,
    ContentError,
    DowngradeError,
    FormatError,
    HashMismatchError,
    HTTPStatusError,
    InstallBusyError,
    NetworkError,
    NotEnoughSpaceError,
    RangeError,
    SignatureError,
)
from core.progress import Phase, Progress


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (1000, "1.0 kB"),
        (1536, "1.5 kB"),
        (38_200_000, "38.2 MB"),
        (41_000_000, "41.0 MB"),
        (99_949_999, "99.9 MB"),
        (512_000_000, "512 MB"),
        (999_960, "1.0 MB"),
        (999_999_999, "1.0 GB"),
        (4_100_000_000, "4.1 GB"),
        (120_000_000_000, "120 GB"),
        (5 * 10**18, "5000 PB"),
    ],
)
def test_human_size(n: int, shown: str) -> None:
    assert text.human_size(n) == shown


def test_speed_and_time() -> None:
    assert text.human_speed(12_300_000) == "12.3 MB/s"
    assert text.time_left(2.2) == "about 3 s left"
    assert text.time_left(0.01) == "about 1 s left"
    assert text.time_left(59) == "about 59 s left"
    assert text.time_left(150) == "about 3 min left"
    assert text.time_left(3600 + 5 * 60) == "about 1 h 5 min left"
    assert text.time_left(7200) == "about 2 h left"
    assert text.time_left(None) == ""
    assert text.time_left(float("inf")) == ""


def test_download_status_line() -> None:
    p = Progress(
        Phase.DOWNLOAD, 38_200_000, 41_000_000, bytes_local=4_100_000_000, bytes_network=38_300_000,
        download_done=38_200_000, download_total=41_000_000,
    )
    assert text.status_line(p, speed=12_300_000, eta=2.3) == (
        "Downloading 38.2 MB of 41.0 MB · 4.1 GB reused · 12.3 MB/s · about 3 s left"
    )
    # A first install reuses nothing of the player's (zeros are not their files).
    assert text.status_line(p, first_install=True) == "Downloading 38.2 MB of 41.0 MB"
    # Bytes fetched ahead while local chunks are copied: the download's figures already.
    p = Progress(Phase.REBUILD, 5, 10, download_done=1_000_000, download_total=2_000_000)
    assert text.status_line(p) == "Downloading 1.0 MB of 2.0 MB"
    # A rebuild with nothing to download is the rebuild's own figures.
    assert text.status_line(Progress(Phase.REBUILD, 5_000, 10_000)) == (
        "Rebuilding files · 5.0 kB of 10.0 kB"
    )
    # Before the speed is known, and with nothing reused: no empty parts.
    p = Progress(Phase.DOWNLOAD, 0, 41_000_000)
    assert text.status_line(p) == "Downloading 0 bytes of 41.0 MB"
    # A value without a total falls back to the plan's.
    assert text.status_line(Progress(Phase.DOWNLOAD, 5), download_total=2000) == (
        "Downloading 5 bytes of 2.0 kB"
    )


def test_other_status_lines() -> None:
    assert text.status_line(Progress(Phase.CHECK, 1, 3)) == "Checking for updates…"
    assert text.status_line(Progress(Phase.SCAN, 1_000_000, 4_000_000)) == (
        "Scanning local files · 1.0 MB of 4.0 MB"
    )
    assert text.status_line(Progress(Phase.VERIFY, 0, 0)) == "Verifying files"
    assert text.status_line(Progress(Phase.INSTALL, 1, 3)) == "Installing · 1 of 3 files"
    assert text.status_line(Progress(Phase.INSTALL, 1, 1)) == "Installing · 1 of 1 file"
    assert text.status_line(Progress(Phase.DONE, 1, 1)) == "Done"


def test_rate_meter_smooths_and_forgets_pauses() -> None:
    m = RateMeter(half_life=1.0, warmup=1.0)
    assert m.speed is None
    for i in range(11):  # 10 MB/s steady for a second
        m.add(i * 0.1, i * 1_000_000)
    assert m.speed == pytest.approx(10_000_000)
    assert m.eta(20_000_000) == pytest.approx(2.0)
    # A pause of 60 s with no bytes must not read as a slow link afterwards.
    m.pause()
    m.add(61.0, 10_000_000)
    m.add(61.1, 11_000_000)
    assert m.speed == pytest.approx(10_000_000)
    # A sudden stall lowers the estimate gradually, not to zero at once.
    m.add(62.1, 11_000_000)
    assert 0 < (m.speed or 0) < 10_000_000


def test_rate_meter_needs_warmup() -> None:
    m = RateMeter(warmup=1.0)
    m.add(0.0, 0)
    m.add(0.5, 5_000_000)
    assert m.speed is None
    assert m.eta(1000) is None


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (
            NetworkError("connection refused", url="http://x/"),
            "network",
            "The update server could not be reached. Check your connection and try again.",
        ),
        (
            HTTPStatusError("404", url="http://x/a", status_code=404),
            "network",
            "The update server does not have this release (error 404). Try again later.",
        ),
        (
            HTTPStatusError("503", status_code=503),
            "network",
            "The update server is having trouble (error 503). Try again in a few minutes.",
        ),
        (
            RangeError("bad Content-Range"),
            "network",
            "The update server sent a reply the updater could not use. Try again later; "
            "if it keeps happening, tell the publisher.",
        ),
        (
            SignatureError("bad signature"),
            "content",
            "The update is not signed by the publisher, so it was not installed. "
            "Nothing was changed.",
        ),
        (
            DowngradeError("older", installed="2.0", offered="1.9"),
            "content",
            "The server offers an older version (1.9) than the one you have (2.0), so it was "
            "not installed. Nothing was changed.",
        ),
        (
            HashMismatchError("mismatch"),
            "content",
            "A downloaded file arrived damaged. Nothing was changed. Try again; if it keeps "
            "happening, tell the publisher.",
        ),
        (
            FormatError("bad fidx"),
            "content",
            "The update on the server is damaged or incomplete. Nothing was changed. "
            "Try again later.",
        ),
        (
            CancelledError("cancelled"),
            "cancelled",
            "The update was cancelled. Your files were not changed.",
        ),
        (
            InstallBusyError("another update of this game is running (pid 7)", pid=7),
            "busy",
            "Another update of this game is running. Wait for it to finish, then try again.",
        ),
        (
            NotEnoughSpaceError(4_200_000_000, 1_100_000_000, "/games"),
            "disk",
            "There is not enough free disk space: 4.2 GB needed, 1.1 GB free. "
            "Free some space and try again.",
        ),
        (
            PermissionError(13, "Permission denied", "/games/x"),
            "disk",
            "The updater is not allowed to change the files in the game folder. Close the game "
            "if it is running, or choose another folder, and try again.",
        ),
        (
            ValueError("boom"),
            "internal",
            "Something unexpected went wrong in the updater. Try again; if it keeps happening, "
            "send the details to the publisher.",
        ),
    ],
)
def test_error_words(exc: BaseException, kind: str, words: str) -> None:
    described = text.describe_error(exc)
    assert (described.kind, described.message) == (kind, words)
    assert "Traceback" not in described.detail
    assert described.detail.startswith(type(exc).__name__ + ": ")


def test_error_detail_carries_fields() -> None:
    try:
        try:
            raise OSError("socket closed")
        except OSError as e:
            raise HTTPStatusError("403 Forbidden", url="http://cdn/x", status_code=403) from e
    except ContentError:
        raise AssertionError("wrong family") from None
    except HTTPStatusError as e:
        detail = text.describe_error(e).detail
    assert detail == (
        "HTTPStatusError: 403 Forbidden\nurl: http://cdn/x\nstatus_code: 403\n"
        "caused by OSError: socket closed"
    )


def test_summaries() -> None:
    check = make_check("1.0", "1.1")
    plan = make_plan(check, download=41_000_000, reused=4_100_000_000, free=120_000_000_000)
    assert text.version_change(check) == "1.0 → 1.1"
    assert text.version_change(make_check(None, "1.1")) == "1.1 (new install)"
    assert text.reuse_line(plan) == "4.1 GB (99% saved)"
    assert text.disk_line(plan) == "4.1 GB needed · 120 GB free"
    assert text.enough_space(plan)
    result = UpdateResult(Outcome.UPDATED, "1.0", "1.1", 41_000_000, 4_100_000_000, 2, 0, 3)
    assert text.done_message(result, "Dungeon Crawl") == (
        "Updated Dungeon Crawl from 1.0 to 1.1. Downloaded 41.0 MB, reused 4.1 GB from your "
        "existing files."
    )
    first = UpdateResult(Outcome.UPDATED, None, "1.0", 50_000_000, 0, 3, 0, 3)
    assert text.done_message(first) == "Installed 1.0. Downloaded 50.0 MB."
    same = UpdateResult(Outcome.UP_TO_DATE, "1.1", "1.1", 0, 0, 0, 0, 1)
    assert text.done_message(same, "Dungeon Crawl") == (
        "Dungeon Crawl is up to date (version 1.1)."
    )


def test_stopped_line() -> None:
    assert text.stopped_line(Phase.DOWNLOAD) == "Stopped while downloading"
    assert text.stopped_line(Phase.CHECK) == "Stopped while checking for updates"
    assert text.stopped_line(Phase.SCAN, cancelled=True) == ("Cancelled while scanning local files")
    assert text.stopped_line(None) == "Stopped"


def test_sentence() -> None:
    assert text.sentence("the release is not signed: its origin cannot be checked") == (
        "The release is not signed: its origin cannot be checked."
    )
    assert text.sentence("Done!") == "Done!"
    assert text.sentence("") == ""
