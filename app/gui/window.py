"""The player's window: what is happening, what it will cost, pause, cancel, retry, play.

The window owns the states of one updater run and the widgets; the engine runs in an
``UpdateSession`` (app/gui/worker.py) and reaches the widgets only through queued signals.
Everything the window says comes from app/gui/text.py. The three things that would block a
test (the cancel confirmation, the folder chooser, starting the game) are passed in.

States::

    CHECKING ──planned──▶ READY ──Update──▶ RUNNING ──finished──▶ DONE
        │ └─checked(up to date)──▶ UP_TO_DATE                  │
        └──────────── failed ──▶ ERROR ◀──── failed ───────────┘
                                   └──Retry──▶ CHECKING
    CHECKING / RUNNING ──Cancel (confirmed)──▶ CANCELLING ──▶ ERROR (cancelled) or closed

With ``install_dir = "ask"`` and no remembered install (app/installs.py) the folder is asked
before CHECKING (no folder chosen: ERROR, nothing written anywhere). In ERROR after a network
failure, Play is offered beside Retry when the installed release is complete (app/offline.py).
Verify and repair files, and Uninstall…, are app/gui/maintenance.py's (the More button).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QWidget

from app import installs
from app.config import AppConfig, to_updater_config
from app.gui import text
from app.gui.desktop import app_icon, ask_cancel, launch_detached, pick_folder, style_sheet
from app.gui.maintenance import Maintenance, WindowState
from app.gui.model import OverallProgress
from app.gui.states import State
from app.gui.tr import tr
from app.gui.view import BAR_MAX, UpdaterView
from app.gui.worker import UpdaterFactory, UpdateSession
from app.rate import RateMeter
from core.engine.updater import CheckResult, UpdatePlan, UpdateResult
from core.errors import CancelledError
from core.progress import Phase, Progress

if TYPE_CHECKING:
    from app.gui.maintenance import Window

__all__ = ["BAR_MAX", "State", "UpdaterWindow", "launch_detached"]

ConfirmCancel = Callable[[QWidget], bool]
ChooseFolder = Callable[[QWidget, str, Path], "Path | None"]
Launcher = Callable[[Sequence[str], Path], None]


class UpdaterWindow(UpdaterView):
    """The updater's only window. Call ``start()`` once it is shown."""

    def __init__(
        self,
        config: AppConfig,
        *,
        factory: UpdaterFactory | None = None,
        confirm_cancel: ConfirmCancel = ask_cancel,
        choose_folder: ChooseFolder = pick_folder,
        launcher: Launcher = launch_detached,
        auto_start: bool | None = None,
        progress_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config.window_title, app_icon(config), config.display_name or config.url)
        self.config = config
        self.confirm_cancel = confirm_cancel
        self.choose_folder = choose_folder
        self.launcher = launcher
        self.auto_start = config.auto_start if auto_start is None else auto_start
        self._clock = clock
        self.install_dir: Path = config.install_dir or config.default_install_dir
        # "ask": the folder remembered from an earlier install (app/installs.py), else the
        # player confirms one before anything is checked or written.
        self._folder_confirmed = config.install_dir is not None
        record = installs.load(config.product) if config.ask_install_dir else None
        if record is not None:
            self.install_dir = record.install_dir
            self._folder_confirmed = True
        self._folder_note = ""  # told once planned: an unwritable folder was replaced
        self.offline_version: str | None = None  # playable without the server (ERROR state)
        self.state = State.CHECKING
        self.error_kind = ""
        self.check_result: CheckResult | None = None
        self.plan: UpdatePlan | None = None
        self.result: UpdateResult | None = None
        self._phase: Phase | None = None
        self._overall = OverallProgress()
        self._meter = RateMeter()
        self._close_pending = False
        self._started = False  # this attempt got past the plan (the Update button)
        self._last_progress: Progress | None = None
        self._resume = False  # Retry after a started attempt: go on without a second click

        self.session = UpdateSession(factory, progress_interval, parent=self)
        sig = self.session.signals
        sig.progress.connect(self._on_progress)
        sig.checked.connect(self._on_checked)
        sig.planned.connect(self._on_planned)
        sig.finished.connect(self._on_finished)
        sig.failed.connect(self._on_failed)

        self.change_button.clicked.connect(self.change_folder)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.request_cancel)
        self.retry_button.clicked.connect(self.retry)
        self.update_button.clicked.connect(self.start_update)
        self.play_button.clicked.connect(self.play)
        self.close_button.clicked.connect(self.close)
        # More: verify and repair, uninstall. ``Window`` is this class as that module sees
        # it: an UpdaterView (it is one) with every WindowState member (mypy checks ``state``).
        state: WindowState = self
        self.maintenance = Maintenance(cast("Window", state))
        self.setStyleSheet(style_sheet(config.accent, self.palette()))
        self._show_state()

    def start(self) -> None:
        """Begin: check for updates and plan (after asking for the folder, the first time)."""
        if self._folder_confirmed:
            self._begin_check()
        else:
            self._ask_first()

    def _ask_first(self) -> None:
        """A first install with ``install_dir = "ask"``: the folder before anything else, so
        nothing is written (not even the check's cache) in a folder the player did not pick."""
        chosen = self.choose_folder(self, self._folder_caption(), self.install_dir)
        if chosen is None:
            self._on_failed("cancelled", tr(text.NO_FOLDER_CHOSEN), text.NO_FOLDER_CHOSEN)
            return
        self._use_folder(Path(chosen))
        self._begin_check()

    def _folder_caption(self, needed: int = 0) -> str:
        name = self.config.display_name
        words = (tr("Choose where to install {name}") if name
                 else tr("Choose where to install the game"))
        caption = words.format(name=name)
        if needed:
            caption += " " + tr("({size} needed)").format(size=text.human_size(needed))
        return caption

    def _use_folder(self, chosen: Path) -> None:
        """Take the player's folder; one this user cannot write to (Program Files) is
        replaced by the per-user folder, and the player is told before anything downloads.
        A folder that does not exist yet is fine: it is created when the install starts."""
        self._folder_confirmed = True
        self._folder_note = ""
        per_user = installs.user_install_dir(self.config.default_install_dir.name)
        if not installs.writable(chosen) and chosen != per_user and installs.writable(per_user):
            self._folder_note = text.unwritable_folder(chosen, per_user)
            self._log(tr("Cannot write to {chosen}; using {per_user}").format(
                chosen=chosen, per_user=per_user))
            chosen = per_user
        self.install_dir = chosen

    def start_update(self) -> None:
        """The Update / Install button: run the plan shown."""
        if self.state is not State.READY or self.plan is None:
            return
        self.state = State.RUNNING
        self._started = True
        self._resume = False
        self._meter = RateMeter()
        self._log(tr("Updating in {folder}").format(folder=self.install_dir))
        self.session.apply(self.install_dir)
        self._show_state()

    def toggle_pause(self) -> None:
        if self.state not in (State.CHECKING, State.RUNNING):
            return
        if self.session.paused:
            self.session.resume()
            self._log(tr("Resumed"))
        else:
            self.session.pause()
            self._meter.pause()
            self._log(tr("Paused"))
        if self._last_progress is not None:
            self._show_status(self._last_progress)  # no speed or time left while paused
        self._show_state()

    def request_cancel(self) -> bool:
        """Cancel (asking first while work is under way). Returns True if cancelling or
        closing, False if the player chose to go on."""
        if self.state in (State.CHECKING, State.RUNNING):
            if not self.confirm_cancel(self):
                return False
            self.state = State.CANCELLING
            self._log(tr("Cancelling…"))
            self.session.cancel()
            self._show_state()
            return True
        if self.state is State.CANCELLING:
            return True
        self.close()
        return True

    def retry(self) -> None:
        """Try again. After an attempt that had started updating, this goes on where it
        stopped (what was downloaded is kept) without asking for Update again."""
        if self.state is State.ERROR:
            if self.maintenance.retry():  # a repair that stopped: repair again
                return
            self._resume = self._started
            self.start()

    def change_folder(self) -> None:
        """Let the player pick the install folder (first install), then plan again there."""
        if self.state is not State.READY:
            return
        needed = self.plan.disk_needed if self.plan else 0
        chosen = self.choose_folder(self, self._folder_caption(needed), self.install_dir)
        if chosen is None or Path(chosen) == self.install_dir:
            return
        self._use_folder(Path(chosen))
        self._log(tr("Install folder: {folder}").format(folder=self.install_dir))
        self._begin_check()

    def play(self) -> None:
        """Start the configured program from the install folder, then close."""
        if not self.config.program:
            return
        program = Path(self.config.program)
        if not program.is_absolute() and (self.install_dir / program).exists():
            command = str(self.install_dir / program)
        else:
            command = shutil.which(self.config.program) or self.config.program
        argv = [command, *self.config.args]
        self._log(tr("Starting {command}").format(command=" ".join(argv)))
        try:
            self.launcher(argv, self.install_dir)
        except OSError as e:
            self.warning.setText(
                tr("Could not start the game: {error}").format(error=e.strerror or e))
            self.warning.show()
            return
        self.close()

    @property
    def first_install(self) -> bool:
        """Nothing is installed yet (as far as the check knows)."""
        return self.check_result is not None and self.check_result.installed_version is None

    @property
    def exit_code(self) -> int:
        """0 when the install is current, 1 after an error or a cancel."""
        return 0 if self.state in (State.DONE, State.UP_TO_DATE) else 1

    # --- worker signals (GUI thread) ----------------------------------------------------------

    def _on_progress(self, p: Progress) -> None:
        if self.state not in (State.CHECKING, State.RUNNING, State.CANCELLING):
            return
        if p.phase is not self._phase:
            self._phase = p.phase
            self._log(text.phase_title(p.phase))
        if p.message:
            for line in p.message.splitlines():
                self._log(line, stamp=False)
        self.bar.setValue(round(self._overall.update(p) * BAR_MAX))
        self.files.observe(p)
        self._last_progress = p
        speed = eta = None
        if self.session.paused:
            self._meter.pause()  # what drains from socket buffers is no speed
        elif p.phase in (Phase.REBUILD, Phase.DOWNLOAD) and p.download_total:
            # The download's own bytes, fetched ahead during the rebuild included.
            self._meter.add(self._clock(), p.download_done)
            speed = self._meter.speed
            eta = self._meter.eta(p.download_total - p.download_done)
        self._show_status(p, speed, eta)
        self.current_file.setText(p.current)
        self.current_file.setVisible(bool(p.current))  # no empty line under the status
        self.setWindowTitle(self._title())
        self.fit_content()
        if self.state is not State.CANCELLING:
            self._set_heading()

    def _show_status(
        self, p: Progress, speed: float | None = None, eta: float | None = None
    ) -> None:
        download_total = self.plan.bytes_to_download if self.plan else 0
        if self.session.paused:
            self.status.setText(text.paused_line(p, download_total))
            return
        self.status.setText(
            text.status_line(
                p,
                download_total=download_total,
                speed=speed,
                eta=eta,
                first_install=self.first_install,
            )
        )

    def _on_checked(self, check: CheckResult) -> None:
        self.check_result = check
        if self._stopped_by_cancel():
            return
        self._log(
            tr("Offered version {offered}; installed {installed}").format(
                offered=check.offered_version, installed=check.installed_version or tr("nothing"))
        )
        for w in check.warnings:
            self._log(tr("Warning: {warning}").format(warning=w))
        if check.up_to_date:
            self.state = State.UP_TO_DATE
            self.bar.setValue(round(self._overall.finish() * BAR_MAX))
            self._show_state()
            self._finish_close()

    def _on_planned(self, plan: UpdatePlan) -> None:
        self.plan = plan
        self.check_result = plan.check
        if self._stopped_by_cancel():
            return
        self.state = State.READY
        if self.session.paused:  # paused as planning ended: the plan waits for a click anyway
            self.session.resume()
        self._log(
            tr("Plan: download {download} in about {requests} requests, reuse {reused}").format(
                download=text.human_size(plan.bytes_to_download),
                requests=plan.requests_estimate, reused=text.human_size(plan.bytes_reused))
        )
        notes = [self._folder_note] if self._folder_note else []
        notes += [text.sentence(w) for w in plan.check.warnings]
        if notes:
            self.warning.setText(" ".join(notes))
        self._show_state()
        first = plan.check.installed_version is None
        chosen_by_player = first and self.config.ask_install_dir
        if self._resume and text.enough_space(plan):
            self._log(tr("Continuing where it stopped"))
            self.start_update()
        elif self.auto_start and not chosen_by_player and text.enough_space(plan):
            self.start_update()

    def _on_finished(self, result: UpdateResult) -> None:
        self.result = result
        self.state = State.DONE
        self.bar.setValue(round(self._overall.finish() * BAR_MAX))
        self._log(text.done_message(result, self.config.display_name))
        try:  # where it went, for the next run (and the first time, the shortcuts)
            from app.remember import remember

            for w in remember(self.config, self.install_dir, result.to_version)[1]:
                self._log(tr("Warning: {warning}").format(warning=w))
        except Exception as e:  # the game is installed: a record or shortcut
            # that could not be made is a warning, never a Done screen left half-drawn)
            self._log(tr("Warning: could not remember the install folder: {error}").format(
                error=getattr(e, "strerror", None) or e))
        self._show_state()
        self._finish_close()

    def _on_failed(self, kind: str, message: str, detail: str) -> None:
        self.state = State.ERROR
        self.error_kind = kind
        self.offline_version = None
        if kind == "cancelled" and detail != text.NO_FOLDER_CHOSEN:
            message = text.cancelled_message(self.first_install)
        if kind == "network" and self.config.program and self._folder_confirmed:
            from app.offline import playable_version

            self.offline_version = playable_version(self.install_dir)
        if self.offline_version is not None:
            message = text.offline_message(self.offline_version, self.config.display_name)
        self.message.setText(message)
        self.error_detail.setPlainText(detail)
        self.status.setText(text.stopped_line(self._phase, cancelled=kind == "cancelled"))
        self._log(tr("Failed: {reason}").format(reason=detail.splitlines()[0] if detail else kind))
        self._show_state()
        self._finish_close()

    # --- helpers ------------------------------------------------------------------------------

    def _begin_check(self) -> None:
        self.state = State.CHECKING
        self.error_kind = ""
        self.plan = None
        self.result = None
        self._phase = None
        if not self._resume:
            # A new attempt; one that goes on where the last stopped keeps the bar where it
            # was (its own figures start again from the scan of what was kept, below it).
            self._overall.reset()
            self.bar.setValue(0)
        self._started = False
        self.files.clear()
        self.status.setText(tr("{phase}…").format(phase=text.phase_title(Phase.CHECK)))
        self.current_file.clear()
        self.warning.clear()
        self.session.prepare(to_updater_config(self.config, self.install_dir))
        self._show_state()

    def _stopped_by_cancel(self) -> bool:
        """A check or plan that finished just as Cancel was pressed counts as cancelled."""
        if self.state is not State.CANCELLING:
            return False
        words = text.describe_error(CancelledError("cancelled"))
        self._on_failed(words.kind, words.message, words.detail)
        return True

    def _finish_close(self) -> None:
        if self._close_pending:
            self.close()

    def _set_heading(self) -> None:
        if self.session.paused and self.state in (State.CHECKING, State.RUNNING):
            self.heading.setText(tr("Paused"))
        elif self._phase is not None:
            self.heading.setText(text.phase_title(self._phase))

    def _show_state(self) -> None:
        """Make the widgets match ``self.state``: one place decides what is visible."""
        s = self.state
        check, plan = self.check_result, self.plan
        product = self.config.display_name
        working = s in (State.CHECKING, State.RUNNING)
        paused = working and self.session.paused

        if s is State.READY and check is not None:
            first = check.installed_version is None
            what = f"{product} {check.offered_version}" if product else check.offered_version
            self.heading.setText(
                (tr("Ready to install {what}") if first
                 else tr("Update available: {what}")).format(what=what)
            )
            self.update_button.setText(tr("&Install") if first else tr("&Update"))
            if plan is not None:
                self.status.setText(text.ready_line(plan))
        elif s is State.DONE and self.result is not None:
            self.heading.setText(tr("Done"))
            self.message.setText(text.done_message(self.result, product))
            self.status.setText(tr("Done"))
        elif s is State.UP_TO_DATE and check is not None:
            self.heading.setText(tr("Up to date"))
            self.message.setText(text.up_to_date_message(check.offered_version, product))
            self.status.setText(tr("No update needed"))
        elif s is State.ERROR:
            self.heading.setText(
                text.stopped_heading(
                    self.error_kind == "cancelled", self._started, self.first_install
                )
            )
        elif s is State.CANCELLING:
            self.heading.setText(tr("Cancelling…"))
        else:
            self._set_heading()

        if check is not None:
            finished = s in (State.DONE, State.UP_TO_DATE)
            self.subheading.setText(
                (f"{product} · " if product else "")
                + tr("Version {version}").format(version=text.version_line(check, finished))
            )
        if plan is not None:
            self.version_value.setText(text.version_change(plan.check))
            self.download_value.setText(text.download_line(plan))
            self.reuse_value.setText(text.reuse_line(plan))
            self.disk_value.setText(text.disk_line(plan))
            self.folder_value.setText(str(self.install_dir))
            self.set_notes(plan.check.notes)
        enough = plan is None or text.enough_space(plan)
        if plan is not None and not enough and s is State.READY:
            self.warning.setText(
                tr("There is not enough free disk space for this update. "
                   "Free some space, then choose Retry.")
                if plan.check.installed_version
                else tr("There is not enough free disk space there. Choose another folder.")
            )

        show_plan = plan is not None and s in (State.READY, State.RUNNING, State.CANCELLING)
        first_install = check is not None and check.installed_version is None
        self.summary.setVisible(show_plan)
        # The version is under the heading already: not a third time in the summary.
        self.summary_form.setRowVisible(self.version_value, False)
        # A first install reuses nothing of the player's: no "0 bytes (0% saved)" row.
        self.summary_form.setRowVisible(self.reuse_value, not first_install)
        # An attempt that ended early is not progress: no bar, an icon and a coloured edge.
        failed = s is State.ERROR
        self.bar.setVisible(not failed)
        self.state_icon.setVisible(failed)
        if failed:
            self.set_stopped_look(self.error_kind == "cancelled")
        self.change_button.setVisible(s is State.READY and first_install)
        self.notes.setVisible(show_plan and bool(plan and plan.check.notes))
        self.notes_label.setVisible(self.notes.isVisibleTo(self))
        self.warning.setVisible(bool(self.warning.text()))
        self.current_file.setVisible(
            (working or s is State.CANCELLING) and bool(self.current_file.text()))
        self.message.setVisible(s in (State.DONE, State.UP_TO_DATE, State.ERROR))
        # A plain cancel has nothing technical to show.
        self.error_details_button.setVisible(s is State.ERROR and self.error_kind != "cancelled")
        if s is not State.ERROR:
            self.error_details_button.setChecked(False)
        self.error_detail.setVisible(s is State.ERROR and self.error_details_button.isChecked())

        self.pause_button.setVisible(working)
        self.pause_button.setText(tr("&Resume") if paused else tr("&Pause"))
        self.bar.setProperty("paused", paused)
        self.bar.style().unpolish(self.bar)
        self.bar.style().polish(self.bar)
        self.cancel_button.setVisible(
            s in (State.CHECKING, State.RUNNING, State.CANCELLING, State.READY)
        )
        self.cancel_button.setEnabled(s is not State.CANCELLING)
        self.update_button.setVisible(s is State.READY)
        self.update_button.setEnabled(s is State.READY and enough)
        self.retry_button.setVisible(s is State.ERROR)
        has_program = bool(self.config.program)
        self.play_button.setVisible(has_program and (
            s in (State.DONE, State.UP_TO_DATE)
            or (s is State.ERROR and self.offline_version is not None)))
        self.close_button.setVisible(s in (State.DONE, State.UP_TO_DATE, State.ERROR))

        default = {
            State.READY: self.update_button,
            State.ERROR: self.retry_button,
            State.DONE: self.play_button if has_program else self.close_button,
            State.UP_TO_DATE: self.play_button if has_program else self.close_button,
        }.get(s)
        for b in (self.update_button, self.retry_button, self.play_button, self.close_button):
            b.setDefault(b is default)
        if default is not None and default.isVisible() and default.isEnabled():
            default.setFocus(Qt.FocusReason.OtherFocusReason)
        self.setWindowTitle(self._title())
        self.fit_content(shrink=s in (State.DONE, State.UP_TO_DATE, State.ERROR))
        self.maintenance.show_state()

    def _title(self) -> str:
        base = self.config.window_title
        if self.state is State.RUNNING:
            return tr("{percent}% · {title}").format(
                percent=self.bar.value() * 100 // BAR_MAX, title=base)
        return base

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.state in (State.CHECKING, State.RUNNING, State.CANCELLING):
            # Closing is Cancel: never leave the engine running behind a closed window.
            if self.state is not State.CANCELLING and not self.request_cancel():
                event.ignore()
                return
            self._close_pending = True
            event.ignore()
            return
        self.session.stop()
        event.accept()
