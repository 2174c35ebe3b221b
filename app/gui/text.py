"""Everything the window says, as pure functions: sizes, times, status lines, error words.

No Qt here, so every string the player reads is unit-tested exactly. Sizes use decimal
units (1 MB = 1,000,000 bytes), as disk vendors and most file managers do. Every sentence
goes through ``app.gui.tr.tr`` (English without a translator) and is formatted after it is
translated, so a translation moves the ``{placeholders}``; tables built at import are marked
with ``tr_noop`` and translated where they are read (``phase_title``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.gui.tr import tr, tr_noop
from core.engine.updater import CheckResult, Outcome, UpdatePlan, UpdateResult
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

if TYPE_CHECKING:
    from app.repair import RepairResult

_UNITS = ("kB", "MB", "GB", "TB", "PB")

# Headings, in the order phases happen; shown as they happen.
PHASE_TITLES: dict[Phase, str] = {
    Phase.CHECK: tr_noop("Checking for updates"),
    Phase.SCAN: tr_noop("Scanning local files"),
    Phase.PLAN: tr_noop("Planning the update"),
    Phase.DOWNLOAD: tr_noop("Downloading"),
    Phase.REBUILD: tr_noop("Rebuilding files"),
    Phase.VERIFY: tr_noop("Verifying files"),
    Phase.INSTALL: tr_noop("Installing"),
    Phase.DONE: tr_noop("Done"),
}
# "Stopped while …": the phase as the end of that sentence (a translation may need another
# word order than the heading's).
_PHASE_WHILE: dict[Phase, str] = {
    Phase.CHECK: tr_noop("Stopped while checking for updates"),
    Phase.SCAN: tr_noop("Stopped while scanning local files"),
    Phase.PLAN: tr_noop("Stopped while planning the update"),
    Phase.DOWNLOAD: tr_noop("Stopped while downloading"),
    Phase.REBUILD: tr_noop("Stopped while rebuilding files"),
    Phase.VERIFY: tr_noop("Stopped while verifying files"),
    Phase.INSTALL: tr_noop("Stopped while installing"),
}
_CANCELLED_WHILE: dict[Phase, str] = {
    Phase.CHECK: tr_noop("Cancelled while checking for updates"),
    Phase.SCAN: tr_noop("Cancelled while scanning local files"),
    Phase.PLAN: tr_noop("Cancelled while planning the update"),
    Phase.DOWNLOAD: tr_noop("Cancelled while downloading"),
    Phase.REBUILD: tr_noop("Cancelled while rebuilding files"),
    Phase.VERIFY: tr_noop("Cancelled while verifying files"),
    Phase.INSTALL: tr_noop("Cancelled while installing"),
}


def phase_title(phase: Phase) -> str:
    """The heading of ``phase`` in the player's language."""
    return tr(PHASE_TITLES[phase])


def _number(value: float, decimals: int) -> str:
    """``1.5`` with the translation's decimal separator (``1,5`` in German)."""
    shown = f"{value:.{decimals}f}"
    return shown.replace(".", tr(".", "decimal separator")) if decimals else shown


def human_size(n: int) -> str:
    """``0 bytes``, ``1 byte``, ``999 bytes``, ``1.5 kB``, ``38.2 MB``, ``512 MB``, ``4.1 GB``."""
    if n < 1000:
        return tr("1 byte") if n == 1 else tr("{n} bytes").format(n=max(n, 0))
    value = float(n)
    for unit in _UNITS:
        value /= 1000
        # Round first, so 999,960 bytes reads "1.0 MB" and not "1000 kB".
        shown = round(value, 1) if value < 100 else round(value)
        if shown < 1000 or unit == _UNITS[-1]:
            number = _number(shown, 1 if value < 100 else 0)
            return tr("{number} {unit}", "a size").format(number=number, unit=unit)
    raise AssertionError("unreachable")


def human_speed(bytes_per_second: float) -> str:
    """``12.3 MB/s``."""
    return tr("{size}/s", "a speed").format(size=human_size(round(bytes_per_second)))


def human_duration(seconds: float) -> str:
    """``3 s``, ``2 min``, ``1 h 5 min``: rounded up to whole seconds, then to minutes above
    a minute (a countdown that says "0 s" while still working reads as a bug)."""
    s = max(1, math.ceil(seconds))
    if s < 60:
        return tr("{s} s").format(s=s)
    minutes = math.floor(s / 60 + 0.5)  # half up: round() would make 150 s "2 min"
    if minutes < 60:
        return tr("{minutes} min").format(minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if minutes:
        return tr("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
    return tr("{hours} h").format(hours=hours)


def time_left(seconds: float | None) -> str:
    """``about 3 s left``; ``""`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    return tr("about {duration} left").format(duration=human_duration(seconds))


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
            parts = [tr("Downloading {done} of {total}").format(
                done=human_size(done), total=human_size(total))]
            if p.bytes_local and not first_install:
                parts.append(tr("{size} reused").format(size=human_size(p.bytes_local)))
            if speed:
                parts.append(human_speed(speed))
            left = time_left(eta)
            if left:
                parts.append(left)
            return " · ".join(parts)
    if p.phase in (Phase.SCAN, Phase.REBUILD, Phase.VERIFY):
        line = phase_title(p.phase)
        if p.total:
            line += " · " + tr("{done} of {total}").format(
                done=human_size(p.done), total=human_size(p.total))
        return line
    if p.phase is Phase.INSTALL:
        if p.total:
            words = (tr("Installing · {done} of {total} file") if p.total == 1
                     else tr("Installing · {done} of {total} files"))
            return words.format(done=p.done, total=p.total)
        return tr("Installing")
    if p.phase is Phase.DONE:
        return tr("Done")
    return tr("{phase}…").format(phase=phase_title(p.phase))


def paused_line(p: Progress, download_total: int = 0) -> str:
    """The status line while paused: no speed, no time left. ``Paused — 12.3 MB of 31.5 MB``
    while downloading, ``Paused`` otherwise."""
    total = p.download_total or download_total
    if p.phase in (Phase.REBUILD, Phase.DOWNLOAD) and total > 0:
        done = p.download_done if p.download_total else p.done
        return tr("Paused — {done} of {total}").format(
            done=human_size(done), total=human_size(total))
    return tr("Paused")


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
            "cancelled", tr("The update was cancelled. Your files were not changed."), detail
        )
    if isinstance(exc, InstallBusyError):
        return ErrorText(
            "busy",
            tr("Another update of this game is running. Wait for it to finish, then try "
               "again."),
            detail,
        )
    if isinstance(exc, DownloadError):
        return ErrorText("network", _download_words(exc), detail)
    if isinstance(exc, ContentError):
        return ErrorText("content", _content_words(exc), detail)
    if isinstance(exc, ConfigError):
        return ErrorText(
            "config",
            tr("The updater's settings file has a problem, so it cannot update. "
               "Tell the publisher of the game."),
            detail,
        )
    if isinstance(exc, NotEnoughSpaceError):
        return ErrorText(
            "disk",
            tr("There is not enough free disk space: {needed} needed, {free} free. Free some "
               "space and try again.").format(needed=human_size(exc.needed),
                                              free=human_size(exc.available)),
            detail,
        )
    if isinstance(exc, PermissionError):
        return ErrorText(
            "disk",
            tr("The updater is not allowed to change the files in the game folder. "
               "Close the game if it is running, or choose another folder, and try again."),
            detail,
        )
    if isinstance(exc, OSError):
        return ErrorText(
            "disk",
            tr("A file on this computer could not be read or written. "
               "Check that the disk is connected and not full, and try again."),
            detail,
        )
    return ErrorText(
        "internal",
        tr("Something unexpected went wrong in the updater. Try again; if it keeps "
           "happening, send the details to the publisher."),
        detail,
    )


def _download_words(exc: DownloadError) -> str:
    if isinstance(exc, HTTPStatusError) and exc.status_code:
        code = exc.status_code
        if code == 404:
            words = tr("The update server does not have this release (error {code}). "
                       "Try again later.")
        elif code in (401, 403, 410):
            words = tr("The update server refused the download (error {code}). "
                       "Try again later.")
        elif code >= 500 or code == 429:
            words = tr("The update server is having trouble (error {code}). "
                       "Try again in a few minutes.")
        else:
            words = tr("The update server answered with an error (error {code}). "
                       "Try again later.")
        return words.format(code=code)
    if isinstance(exc, RangeError):
        return tr(
            "The update server sent a reply the updater could not use. Try again later; "
            "if it keeps happening, tell the publisher."
        )
    return tr("The update server could not be reached. Check your connection and try again.")


def _content_words(exc: ContentError) -> str:
    if isinstance(exc, SignatureError):
        return tr("The update is not signed by the publisher, so it was not installed. "
                  "Nothing was changed.")
    if isinstance(exc, DowngradeError):
        if exc.offered and exc.installed:
            words = tr("The server offers an older version ({offered}) than the one you have "
                       "({installed}), so it was not installed. Nothing was changed.")
        else:
            words = tr("The server offers an older version than the one you have, so it was "
                       "not installed. Nothing was changed.")
        return words.format(offered=exc.offered, installed=exc.installed)
    if isinstance(exc, ExpiredError):
        return tr("The update on the server has expired, so it was not installed. "
                  "Nothing was changed.")
    if isinstance(exc, UnsafePathError):
        return tr("The update tried to write outside the game folder, so it was refused. "
                  "Nothing was changed.")
    if isinstance(exc, HashMismatchError):
        return tr("A downloaded file arrived damaged. Nothing was changed. Try again; if it "
                  "keeps happening, tell the publisher.")
    return tr("The update on the server is damaged or incomplete. Nothing was changed. "
              "Try again later.")


def _detail(exc: BaseException) -> str:
    """The technical text for "Show details": type, message, and the fields errors carry.
    Never a traceback: the player may paste this into a forum. Not translated on purpose:
    it is the engine's own English, for the publisher's support."""
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
        return tr("{version} (new install)").format(version=check.offered_version)
    if check.installed_version == check.offered_version:
        return check.offered_version
    return f"{check.installed_version} → {check.offered_version}"


def reuse_line(plan: UpdatePlan) -> str:
    """``4.1 GB (99% saved)``: taken from the installed files (not what an earlier attempt
    downloaded, which ``download_line`` tells)."""
    old = plan.bytes_reused - plan.bytes_resumed
    saved = percent_saved(old, plan.bytes_to_download + plan.bytes_resumed)
    return tr("{size} ({percent}% saved)").format(size=human_size(old), percent=saved)


def download_line(plan: UpdatePlan) -> str:
    """``38.2 MB``, or ``125 MB (26.0 MB already downloaded)`` after a stopped attempt."""
    line = human_size(plan.bytes_to_download)
    if plan.bytes_resumed:
        line += " " + tr("({size} already downloaded)").format(
            size=human_size(plan.bytes_resumed))
    return line


def ready_line(plan: UpdatePlan) -> str:
    """The status line under the plan, before the Update button is pressed."""
    if plan.bytes_resumed:
        return tr("{size} already downloaded: it continues where it stopped.").format(
            size=human_size(plan.bytes_resumed))
    return tr("Nothing has been downloaded yet.")


def disk_line(plan: UpdatePlan) -> str:
    """``4.2 GB needed · 120 GB free``."""
    return tr("{needed} needed · {free} free").format(
        needed=human_size(plan.disk_needed), free=human_size(plan.disk_free))


def enough_space(plan: UpdatePlan) -> bool:
    return plan.disk_free >= plan.disk_needed


def done_message(result: UpdateResult, product: str = "") -> str:
    """What the window says when the update finished, in the plan's categories: downloaded
    now, downloaded by an earlier attempt, reused from the installed files."""
    if result.outcome is Outcome.UP_TO_DATE:
        return up_to_date_message(result.to_version, product)
    first = result.from_version is None
    if first:
        head = (tr("Installed {product} {version}.") if product
                else tr("Installed {version}."))
    else:
        head = (tr("Updated {product} from {old} to {version}.") if product
                else tr("Updated from {old} to {version}."))
    head = head.format(product=product, old=result.from_version, version=result.to_version)
    now = human_size(result.bytes_content or result.bytes_downloaded)
    before = human_size(result.bytes_resumed)
    old = result.bytes_reused - result.bytes_resumed
    reused = human_size(old)
    if old > 0 and not first:
        line = (tr("Downloaded {now} (and {before} before it was stopped), reused {reused} "
                   "from your existing files.") if result.bytes_resumed
                else tr("Downloaded {now}, reused {reused} from your existing files."))
    else:
        line = (tr("Downloaded {now} (and {before} before it was stopped).")
                if result.bytes_resumed else tr("Downloaded {now}."))
    return f"{head} {line.format(now=now, before=before, reused=reused)}"


def up_to_date_message(version: str, product: str = "") -> str:
    if product:
        return tr("{product} is up to date (version {version}).").format(
            product=product, version=version)
    return tr("The game is up to date (version {version}).").format(version=version)


def stopped_line(phase: Phase | None, cancelled: bool = False) -> str:
    """The status line once an attempt ended early: ``Stopped while downloading``."""
    if phase is None or phase is Phase.DONE:
        return tr("Cancelled") if cancelled else tr("Stopped")
    return tr((_CANCELLED_WHILE if cancelled else _PHASE_WHILE)[phase])


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
    if not started:
        return tr("Cancelled") if cancelled else tr("Could not check for updates")
    if cancelled:
        return tr("Installation cancelled") if first_install else tr("Update cancelled")
    return (tr("The installation did not finish") if first_install
            else tr("The update did not finish"))


def cancelled_message(first_install: bool) -> str:
    if first_install:
        return tr("The installation was cancelled. What was downloaded is kept for next time.")
    return tr("The update was cancelled. Your files were not changed.")


def cancel_question(first_install: bool) -> tuple[str, str, str, str]:
    """The cancel confirmation: title, text, the button that stops, the one that goes on."""
    if first_install:
        return (
            tr("Stop the installation?"),
            tr("Stop the installation? What was already downloaded is kept for next time."),
            tr("&Stop download"),
            tr("&Keep downloading"),
        )
    return (
        tr("Stop the update?"),
        tr("Stop the update? Your files stay as they were; what was already downloaded is "
           "kept for next time."),
        tr("&Stop download"),
        tr("&Keep downloading"),
    )


def version_line(check: CheckResult, finished: bool) -> str:
    """The version under the heading: ``1.0 → 1.1``; once done, the version alone."""
    return check.offered_version if finished else version_change(check)


NO_FOLDER_CHOSEN = tr_noop(
    "No folder was chosen, so nothing was installed. Choose Retry to pick one.")


def unwritable_folder(chosen: Path, per_user: Path) -> str:
    """Said before downloading when the chosen folder needs administrator rights."""
    return tr("You cannot install in {chosen} without administrator rights, so the game will "
              "go in your own folder, {per_user}. Choose Change… to pick another.").format(
        chosen=chosen, per_user=per_user)


def offline_message(version: str, product: str = "") -> str:
    """The server could not be reached, but a complete install can still be played."""
    if product:
        return tr("Couldn't check for updates — you can still play {product} {version}.").format(
            product=product, version=version)
    return tr("Couldn't check for updates — you can still play {version}.").format(
        version=version)


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
