"""Everything the window says, as pure functions: sizes, times, status lines, error words.

No Qt here, so every string the player reads is unit-tested exactly. Sizes use decimal
units (1 MB = 1,000,000 bytes), as disk vendors and most file managers do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.gui.tr import tr
from core.errors import (
    CancelledError,
    ConfigError,
    ContentError,
    DowngradeError,
    DownloadError,
    ExpiredError,
    HashMismatchError,
    HTTPStatusError,
    InstallBusyError,
    NotEnoughSpaceError,
    RangeError,
    SignatureError,
    UnsafePathError,
)
from core.progress import Phase, Progress
from core.updater import CheckResult, Outcome, UpdatePlan, UpdateResult

if TYPE_CHECKING:
    from app.repair import RepairResult

_UNITS = ("kB", "MB", "GB", "TB", "PB")

# Headings, in the order phases happen; shown as they happen.
PHASE_TITLES: dict[Phase, str] = {
    Phase.CHECK: "Checking for updates",
    Phase.SCAN: "Scanning local files",
    Phase.PLAN: "Planning the update",
    Phase.DOWNLOAD: "Downloading",
    Phase.REBUILD: "Rebuilding files",
    Phase.VERIFY: "Verifying files",
    Phase.INSTALL: "Installing",
    Phase.DONE: "Done",
}


def human_size(n: int) -> str:
    """``0 bytes``, ``1 byte``, ``999 bytes``, ``1.5 kB``, ``38.2 MB``, ``512 MB``, ``4.1 GB``."""
    if n < 1000:
        return "1 byte" if n == 1 else f"{max(n, 0)} bytes"
    value = float(n)
    for unit in _UNITS:
        value /= 1000
        # Round first, so 999,960 bytes reads "1.0 MB" and not "1000 kB".
        shown = round(value, 1) if value < 100 else round(value)
        if shown < 1000 or unit == _UNITS[-1]:
            return f"{shown:.1f} {unit}" if value < 100 else f"{shown:.0f} {unit}"
    raise AssertionError("unreachable")


def human_speed(bytes_per_second: float) -> str:
    """``12.3 MB/s``."""
    return f"{human_size(round(bytes_per_second))}/s"


def human_duration(seconds: float) -> str:
    """``3 s``, ``2 min``, ``1 h 5 min``: rounded up to whole seconds, then to minutes above
    a minute (a countdown that says "0 s" while still working reads as a bug)."""
    s = max(1, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    minutes = math.floor(s / 60 + 0.5)  # half up: round() would make 150 s "2 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def time_left(seconds: float | None) -> str:
    """``about 3 s left``; ``""`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    return f"about {human_duration(seconds)} left"


def percent_saved(reused: int, downloaded: int) -> int:
    """Share of the needed bytes that came from disk, floored (so 99.9% never reads 100%)."""
    total = reused + downloaded
    return 0 if total <= 0 else math.floor(100 * reused / total)


def status_line(
    p: Progress,
    *,
    download_total: int = 0,
    speed: float | None = None,
    eta: float | None = None,
    first_install: bool = False,
) -> str:
    """The one line under the bar. While bytes arrive (the download runs during the rebuild
    too) it is the download's own "X of Y" in bytes. ``download_total`` is the plan's bytes
    to download, used when the progress value carries no total; ``first_install``: nothing
    is "reused" (the zeros of a new file are not the player's files)."""
    if p.phase in (Phase.REBUILD, Phase.DOWNLOAD):
        total = p.download_total or download_total
        done = p.download_done
        if not p.download_total and p.phase is Phase.DOWNLOAD:
            total, done = p.total or download_total, p.done
        if total > 0:
            parts = [f"Downloading {human_size(done)} of {human_size(total)}"]
            if p.bytes_local and not first_install:
                parts.append(f"{human_size(p.bytes_local)} reused")
            if speed:
                parts.append(human_speed(speed))
            left = time_left(eta)
            if left:
                parts.append(left)
            return " · ".join(parts)
    if p.phase in (Phase.SCAN, Phase.REBUILD, Phase.VERIFY):
        line = PHASE_TITLES[p.phase]
        if p.total:
            line += f" · {human_size(p.done)} of {human_size(p.total)}"
        return line
    if p.phase is Phase.INSTALL:
        if p.total:
            noun = "file" if p.total == 1 else "files"
            return f"Installing · {p.done} of {p.total} {noun}"
        return "Installing"
    if p.phase is Phase.DONE:
        return "Done"
    return PHASE_TITLES[p.phase] + "…"


def paused_line(p: Progress, download_total: int = 0) -> str:
    """The status line while paused: no speed, no time left. ``Paused — 12.3 MB of 31.5 MB``
    while downloading, ``Paused`` otherwise."""
    total = p.download_total or download_total
    if p.phase in (Phase.REBUILD, Phase.DOWNLOAD) and total > 0:
        done = p.download_done if p.download_total else p.done
        return f"Paused — {human_size(done)} of {human_size(total)}"
    return "Paused"


# --- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorText:
    """An error as the player sees it: a family, plain words, and the technical text."""

    kind: str  # "network", "content", "cancelled", "config", "disk", "internal"
    message: str
    detail: str

    @property
    def retryable(self) -> bool:
        return self.kind in ("network", "disk", "cancelled", "content", "internal")


def describe_error(exc: BaseException) -> ErrorText:
    """Plain words for ``exc``, chosen by its family and fields, never by parsing its text."""
    detail = _detail(exc)
    if isinstance(exc, CancelledError):
        return ErrorText(
            "cancelled", "The update was cancelled. Your files were not changed.", detail
        )
    if isinstance(exc, InstallBusyError):
        return ErrorText(
            "busy",
            "Another update of this game is running. Wait for it to finish, then try again.",
            detail,
        )
    if isinstance(exc, DownloadError):
        return ErrorText("network", _download_words(exc), detail)
    if isinstance(exc, ContentError):
        return ErrorText("content", _content_words(exc), detail)
    if isinstance(exc, ConfigError):
        return ErrorText(
            "config",
            "The updater's settings file has a problem, so it cannot update. "
            "Tell the publisher of the game.",
            detail,
        )
    if isinstance(exc, NotEnoughSpaceError):
        return ErrorText(
            "disk",
            f"There is not enough free disk space: {human_size(exc.needed)} needed, "
            f"{human_size(exc.available)} free. Free some space and try again.",
            detail,
        )
    if isinstance(exc, PermissionError):
        return ErrorText(
            "disk",
            "The updater is not allowed to change the files in the game folder. "
            "Close the game if it is running, or choose another folder, and try again.",
            detail,
        )
    if isinstance(exc, OSError):
        return ErrorText(
            "disk",
            "A file on this computer could not be read or written. "
            "Check that the disk is connected and not full, and try again.",
            detail,
        )
    return ErrorText(
        "internal",
        "Something unexpected went wrong in the updater. Try again; if it keeps happening, "
        "send the details to the publisher.",
        detail,
    )


def _download_words(exc: DownloadError) -> str:
    if isinstance(exc, HTTPStatusError) and exc.status_code:
        code = exc.status_code
        if code == 404:
            return f"The update server does not have this release (error {code}). Try again later."
        if code in (401, 403, 410):
            return f"The update server refused the download (error {code}). Try again later."
        if code >= 500 or code == 429:
            return (
                f"The update server is having trouble (error {code}). Try again in a few minutes."
            )
        return f"The update server answered with an error (error {code}). Try again later."
    if isinstance(exc, RangeError):
        return (
            "The update server sent a reply the updater could not use. Try again later; "
            "if it keeps happening, tell the publisher."
        )
    return "The update server could not be reached. Check your connection and try again."


def _content_words(exc: ContentError) -> str:
    unchanged = "Nothing was changed."
    if isinstance(exc, SignatureError):
        return f"The update is not signed by the publisher, so it was not installed. {unchanged}"
    if isinstance(exc, DowngradeError):
        older = f" ({exc.offered})" if exc.offered else ""
        yours = f" ({exc.installed})" if exc.installed else ""
        return (
            f"The server offers an older version{older} than the one you have{yours}, "
            f"so it was not installed. {unchanged}"
        )
    if isinstance(exc, ExpiredError):
        return f"The update on the server has expired, so it was not installed. {unchanged}"
    if isinstance(exc, UnsafePathError):
        return f"The update tried to write outside the game folder, so it was refused. {unchanged}"
    if isinstance(exc, HashMismatchError):
        return (
            f"A downloaded file arrived damaged. {unchanged} Try again; if it keeps "
            "happening, tell the publisher."
        )
    return f"The update on the server is damaged or incomplete. {unchanged} Try again later."


def _detail(exc: BaseException) -> str:
    """The technical text for "Show details": type, message, and the fields errors carry.
    Never a traceback: the player may paste this into a forum."""
    lines = [f"{type(exc).__name__}: {exc}"]
    for name in (
        "url",
        "status_code",
        "path",
        "expected",
        "actual",
        "installed",
        "offered",
        "line",
        "needed",
        "available",
        "filename",
    ):
        value = getattr(exc, name, None)
        if value not in (None, "", 0):
            lines.append(f"{name}: {value}")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        lines.append(f"caused by {type(cause).__name__}: {cause}")
    return "\n".join(lines)


# --- summaries -------------------------------------------------------------------------------


def version_change(check: CheckResult) -> str:
    """``1.0 → 1.1``, or ``1.1 (new install)``."""
    if check.installed_version is None:
        return f"{check.offered_version} (new install)"
    if check.installed_version == check.offered_version:
        return check.offered_version
    return f"{check.installed_version} → {check.offered_version}"


def reuse_line(plan: UpdatePlan) -> str:
    """``4.1 GB (99% saved)``: taken from the installed files (not what an earlier attempt
    downloaded, which ``download_line`` tells)."""
    old = plan.bytes_reused - plan.bytes_resumed
    saved = percent_saved(old, plan.bytes_to_download + plan.bytes_resumed)
    return f"{human_size(old)} ({saved}% saved)"


def download_line(plan: UpdatePlan) -> str:
    """``38.2 MB``, or ``125 MB (26.0 MB already downloaded)`` after a stopped attempt."""
    line = human_size(plan.bytes_to_download)
    if plan.bytes_resumed:
        line += f" ({human_size(plan.bytes_resumed)} already downloaded)"
    return line


def ready_line(plan: UpdatePlan) -> str:
    """The status line under the plan, before the Update button is pressed."""
    if plan.bytes_resumed:
        return (f"{human_size(plan.bytes_resumed)} already downloaded: "
                "it continues where it stopped.")
    return "Nothing has been downloaded yet."


def disk_line(plan: UpdatePlan) -> str:
    """``4.2 GB needed · 120 GB free``."""
    return f"{human_size(plan.disk_needed)} needed · {human_size(plan.disk_free)} free"


def enough_space(plan: UpdatePlan) -> bool:
    return plan.disk_free >= plan.disk_needed


def done_message(result: UpdateResult, product: str = "") -> str:
    """What the window says when the update finished, in the plan's categories: downloaded
    now, downloaded by an earlier attempt, reused from the installed files."""
    if result.outcome is Outcome.UP_TO_DATE:
        return up_to_date_message(result.to_version, product)
    name = f"{product} " if product else ""
    first = result.from_version is None
    head = (
        f"Installed {name}{result.to_version}."
        if first
        else f"Updated {name}from {result.from_version} to {result.to_version}."
    )
    now = result.bytes_content or result.bytes_downloaded
    line = f"Downloaded {human_size(now)}"
    if result.bytes_resumed:
        line += f" (and {human_size(result.bytes_resumed)} before it was stopped)"
    old = result.bytes_reused - result.bytes_resumed
    if old > 0 and not first:
        line += f", reused {human_size(old)} from your existing files"
    return f"{head} {line}."


def up_to_date_message(version: str, product: str = "") -> str:
    name = product or "The game"
    return f"{name} is up to date (version {version})."


def stopped_line(phase: Phase | None, cancelled: bool = False) -> str:
    """The status line once an attempt ended early: ``Stopped while downloading``."""
    verb = "Cancelled" if cancelled else "Stopped"
    if phase is None or phase is Phase.DONE:
        return verb
    return f"{verb} while {PHASE_TITLES[phase][0].lower()}{PHASE_TITLES[phase][1:]}"


def sentence(line: str) -> str:
    """An engine message as a sentence: capital first letter, final full stop."""
    line = line.strip()
    if not line:
        return line
    line = line[0].upper() + line[1:]
    return line if line[-1] in ".!?" else line + "."


# --- words that depend on a first install or an update ----------------------------------------


def stopped_heading(cancelled: bool, started: bool, first_install: bool) -> str:
    """The heading once an attempt ended early. "The update did not finish" only when an
    update had started (a failed check started nothing)."""
    work = "installation" if first_install else "update"
    if cancelled:
        return f"{work.capitalize()} cancelled" if started else "Cancelled"
    return f"The {work} did not finish" if started else "Could not check for updates"


def cancelled_message(first_install: bool) -> str:
    if first_install:
        return "The installation was cancelled. What was downloaded is kept for next time."
    return "The update was cancelled. Your files were not changed."


def cancel_question(first_install: bool) -> tuple[str, str, str, str]:
    """The cancel confirmation: title, text, the button that stops, the one that goes on."""
    if first_install:
        return (
            "Stop the installation?",
            "Stop the installation? What was already downloaded is kept for next time.",
            "&Stop download",
            "&Keep downloading",
        )
    return (
        "Stop the update?",
        "Stop the update? Your files stay as they were; what was already downloaded is "
        "kept for next time.",
        "&Stop download",
        "&Keep downloading",
    )


def version_line(check: CheckResult, finished: bool) -> str:
    """The version under the heading: ``1.0 → 1.1``; once done, the version alone."""
    return check.offered_version if finished else version_change(check)


NO_FOLDER_CHOSEN = "No folder was chosen, so nothing was installed. Choose Retry to pick one."


def unwritable_folder(chosen: Path, per_user: Path) -> str:
    """Said before downloading when the chosen folder needs administrator rights."""
    return (f"You cannot install in {chosen} without administrator rights, so the game will "
            f"go in your own folder, {per_user}. Choose Change… to pick another.")


def offline_message(version: str, product: str = "") -> str:
    """The server could not be reached, but a complete install can still be played."""
    what = f"{product} {version}" if product else version
    return f"Couldn't check for updates — you can still play {what}."


# --- maintenance: verify and repair, uninstall (app/gui/maintenance.py) ------------------------

_SHOW_NAMES = 5  # files the player made, named in the uninstall question and its result


def files_count(n: int) -> str:
    """``1 file``, ``12 files``."""
    return tr("1 file") if n == 1 else tr("{n} files").format(n=n)


def _named(paths: Sequence[str]) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 3 more``."""
    shown = ", ".join(paths[:_SHOW_NAMES])
    if len(paths) > _SHOW_NAMES:
        return tr("{names} and {n} more").format(names=shown, n=len(paths) - _SHOW_NAMES)
    return shown


def more_menu() -> tuple[str, str, str]:
    """The secondary actions' button and its two entries."""
    return tr("&More"), tr("&Verify and repair files"), tr("&Uninstall…")


def repair_heading(repaired: int) -> str:
    return tr("Files repaired") if repaired else tr("All files are intact")


def repair_message(result: RepairResult, product: str = "") -> str:
    """The end of a verify and repair: ``Repaired 2 files, downloaded 1.2 MB.``, or
    ``All 12 files of Dungeon Crawl 1.1 are intact. Nothing was downloaded.``"""
    if result.update is None:
        what = f"{product} {result.version}" if product else result.version
        return tr("All {files} of {what} are intact. Nothing was downloaded.").format(
            files=files_count(result.files), what=what)
    line = tr("Repaired {files}, downloaded {size}.").format(
        files=files_count(result.repaired), size=human_size(result.downloaded))
    if result.version_after != result.version:
        line += " " + tr("The game was also updated to version {version}.").format(
            version=result.version_after)
    return line


def repair_stopped(cancelled: bool) -> tuple[str, str]:
    """Heading and message when a repair ended early (a failure keeps its own words)."""
    if cancelled:
        return tr("Repair cancelled"), tr("The repair was cancelled. Your files were not "
                                          "changed.")
    return tr("The repair did not finish"), ""


def repairing_line(folder: Path) -> str:
    """The details log's line as a repair starts."""
    return tr("Verifying and repairing files in {folder}").format(folder=folder)


def uninstall_question(name: str, version: str, folder: Path, files: int,
                       kept: Sequence[str]) -> tuple[str, str, str, str]:
    """The uninstall confirmation: title, text, the button that removes, the one that keeps.
    It names what goes (the release's files, the shortcuts, the updater's state) and what
    stays (the files the player made there)."""
    text = tr("This removes {name} {version} from {folder}: its {files}, its shortcuts and "
              "the updater's records of it.").format(
        name=name, version=version, folder=folder, files=files_count(files))
    if kept:
        text += " " + tr("Files you made there stay ({files}: {names}).").format(
            files=files_count(len(kept)), names=_named(kept))
    else:
        text += " " + tr("There are no files of yours in that folder.")
    return (tr("Uninstall {name}?").format(name=name), text, tr("&Uninstall"),
            tr("&Keep the game"))


def uninstalled(name: str, folder: Path, removed: int, kept: Sequence[str],
                left: Sequence[str]) -> tuple[str, str]:
    """Heading and message once uninstalled: what went, what stayed, and anything that
    could not be removed (a shortcut, the uninstall entry)."""
    message = tr("Removed {files} from {folder}.").format(files=files_count(removed),
                                                           folder=folder)
    if kept:
        message += " " + tr("Kept {files} you made: {names}.").format(
            files=files_count(len(kept)), names=_named(kept))
    if left:
        message += " " + tr("Not removed: {items}.").format(items="; ".join(left))
    return tr("{name} was uninstalled").format(name=name), message


def uninstall_failed(reason: str) -> str:
    """Said when nothing was uninstalled (a file in use, not an install)."""
    return tr("Could not uninstall: {reason}").format(reason=sentence(reason))


def maintenance_log(event: str, detail: str = "") -> str:
    """The details log's lines of a repair or an uninstall: ``damaged: data/big.pak``."""
    lines = {
        "damaged": tr("damaged: {detail}"),
        "missing": tr("missing: {detail}"),
        "kept": tr("Uninstall not confirmed: nothing removed"),
        "uninstalling": tr("Uninstalling {detail}"),
        "not removed": tr("Warning: not removed: {detail}"),
        "warning": tr("Warning: {detail}"),
    }
    return lines[event].format(detail=detail)
