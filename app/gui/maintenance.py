"""The window's secondary actions once a release is installed: "Verify and repair files" and
"Uninstall…", under a More button beside Details on the Up-to-date, Done and error screens.

Repair runs ``app/repair.py`` (the engine's verify, then an update that downloads only the
damaged chunks) on the window's worker thread, in the window's RUNNING state: the same bar,
phases, status line, file table, log, Pause and Cancel as an update. It ends on DONE with its
own heading and message ("Repaired 2 files, downloaded 1.2 MB." / "All files are intact"),
or on ERROR with the failure's words under "The repair did not finish"; Retry there runs the
repair again.

Uninstall asks first (``confirm``: a stand-in in tests), naming what is removed and what
stays, then runs ``app/uninstall.py``'s ``Plan`` on the GUI thread (renames inside the
folder, then removal: no download, nothing to wait for) and ends on a final screen with
Close only. A file in use or a folder that is no install is said in the window's warning
line, and nothing is removed.

The window calls ``show_state()`` at the end of its own ``_show_state()``, so this module
adjusts the screen after the window has decided it, and ``retry()`` first from its Retry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox, QToolButton, QWidget

from app.config import AppConfig
from app.gui import text
from app.gui.desktop import confirm
from app.gui.model import OverallProgress
from app.gui.states import State
from app.gui.view import BAR_MAX, UpdaterView
from app.gui.worker import UpdateSession
from app.rate import RateMeter
from app.repair import RepairResult, repair
from core.engine.updater import UpdatePlan, UpdateResult
from core.progress import Phase, Progress


class WindowState(Protocol):
    """What this module uses of ``app.gui.window.UpdaterWindow`` beyond its widgets
    (``UpdaterView``): a protocol, so that this module does not import the window."""

    config: AppConfig
    install_dir: Path
    session: UpdateSession
    state: State
    error_kind: str
    plan: UpdatePlan | None
    result: UpdateResult | None
    _folder_confirmed: bool
    _overall: OverallProgress
    _meter: RateMeter
    _phase: Phase | None
    _started: bool
    _last_progress: Progress | None

    def _show_state(self) -> None: ...
    def _finish_close(self) -> None: ...


if TYPE_CHECKING:
    class Window(UpdaterView, WindowState):
        """The window as this module sees it: its widgets and its states."""

ConfirmUninstall = Callable[[QWidget, tuple[str, str, str, str]], bool]


def ask_uninstall(parent: QWidget, words: tuple[str, str, str, str]) -> bool:
    """The real confirmation: a warning box whose default answer keeps the game."""
    return confirm(parent, QMessageBox.Icon.Warning, words)


@contextlib.contextmanager
def _busy() -> Iterator[None]:
    """The wait cursor while the GUI thread works on files."""
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        yield
    finally:
        QApplication.restoreOverrideCursor()


@dataclass(frozen=True)
class _Final:
    """What a finished repair or uninstall shows on the DONE screen."""

    heading: str
    message: str
    playable: bool


class Maintenance(QObject):
    """Repair and uninstall for ``window``; owns the More button and its menu."""

    def __init__(self, window: Window, confirm: ConfirmUninstall = ask_uninstall
                 ) -> None:
        super().__init__(window)
        self.window = window
        self.confirm = confirm
        self.task = ""  # "repair" while one runs, and after it until the next check
        self.repair_result: RepairResult | None = None
        self.uninstalled = False
        self._final: _Final | None = None

        more, repair_words, uninstall_words = text.more_menu()
        self.more_button = QToolButton(window)
        self.more_button.setObjectName("More")
        self.more_button.setText(more)
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.more_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        menu = QMenu(self.more_button)
        self.repair_action = QAction(repair_words, menu)
        self.uninstall_action = QAction(uninstall_words, menu)
        menu.addAction(self.repair_action)
        menu.addAction(self.uninstall_action)
        self.more_button.setMenu(menu)
        window.button_row.insertWidget(1, self.more_button)
        QWidget.setTabOrder(window.close_button, self.more_button)
        self.more_button.hide()

        self.repair_action.triggered.connect(self.start_repair)
        self.uninstall_action.triggered.connect(self.uninstall)
        window.session.signals.ran.connect(self._on_ran)

    # --- actions --------------------------------------------------------------------------

    def available(self) -> bool:
        """A release is installed in the window's folder and the window is at rest."""
        from core.engine.state import StateStore

        w = self.window
        return (w.state in (State.DONE, State.UP_TO_DATE, State.ERROR) and not self.uninstalled
                and w._folder_confirmed
                and StateStore(w.install_dir).installed_manifest() is not None)

    def start_repair(self) -> None:
        """Verify every file of the installed release and repair what is damaged."""
        from app.config import to_updater_config

        if not self.available():
            return
        w = self.window
        self.task = "repair"
        self.repair_result = None
        self._final = None
        w.state = State.RUNNING
        w.error_kind = ""
        w.plan = None
        w.result = None
        w._phase = None
        w._started = False  # Retry here repairs again (retry() below), not an update
        w._last_progress = None
        w._overall.reset()
        w.bar.setValue(0)
        w.files.clear()
        w.current_file.clear()
        w.warning.clear()
        w._meter = RateMeter()
        w.heading.setText(text.PHASE_TITLES[Phase.VERIFY])
        w.status.setText(text.PHASE_TITLES[Phase.VERIFY] + "…")
        w._log(text.repairing_line(w.install_dir))
        config = to_updater_config(w.config, w.install_dir)
        w.session.run_job(lambda factory, progress, cancel: repair(config, factory, progress,
                                                                   cancel))
        w._show_state()

    def retry(self) -> bool:
        """Retry after a repair that stopped: repair again. False: not a repair's error."""

        if self.task != "repair" or self.window.state is not State.ERROR:
            return False
        self.start_repair()
        return True

    def uninstall(self) -> None:
        """Ask, then remove the release's files, ``.stitch/``, the shortcuts and the entry;
        the files the player made stay."""
        from app.uninstall import Plan, forget
        from core.errors import StitchError

        if not self.available():
            return
        w = self.window
        folder = Path(w.install_dir).resolve()
        try:
            with _busy():
                plan = Plan.of(folder)
        except (StitchError, OSError) as e:
            self._refused(e)
            return
        name = w.config.display_name or plan.product or folder.name
        words = text.uninstall_question(name, plan.version, folder, len(plan.release),
                                        plan.kept)
        if not self.confirm(w, words):
            w._log(text.maintenance_log("kept"))
            return
        w._log(text.maintenance_log("uninstalling", f"{name} {plan.version}: {folder}"))
        try:
            with _busy():
                plan.remove()  # another run holding the install: busy at once, nothing removed
        except (StitchError, OSError) as e:  # busy, in use or not allowed: all put back
            self._refused(e)
            return
        try:
            left = forget(plan, w.config.product or plan.product)
        except OSError as e:  # the install is gone; its record could not be removed
            left = [f"{e.filename or 'install record'}: {e.strerror or e}"]
        for line in left:
            w._log(text.maintenance_log("not removed", line))
        self.uninstalled = True
        self.task = ""
        heading, message = text.uninstalled(name, folder, plan.removed, plan.kept, left)
        w._log(message)
        self._final = _Final(heading, message, playable=False)
        w.warning.clear()
        w.state = State.DONE
        w._show_state()

    def _refused(self, e: BaseException) -> None:
        reason = (e.strerror or str(e)) if isinstance(e, OSError) else str(e)
        line = text.uninstall_failed(reason)
        self.window._log(line)
        self.window.warning.setText(line)
        self.window.warning.show()
        self.window.fit_content()

    # --- from the worker and the window ---------------------------------------------------

    def _on_ran(self, result: object) -> None:

        w = self.window
        if not isinstance(result, RepairResult) or w.state not in (State.RUNNING,
                                                                     State.CANCELLING):
            return
        self.repair_result = result
        w.state = State.DONE
        w.bar.setValue(round(w._overall.finish() * BAR_MAX))
        heading = text.repair_heading(result.repaired)
        message = text.repair_message(result, w.config.display_name)
        w._log(message)
        for p in result.damaged:
            w._log(text.maintenance_log("damaged", p), stamp=False)
        for p in result.missing:
            w._log(text.maintenance_log("missing", p), stamp=False)
        self._final = _Final(heading, message, playable=True)
        if result.update is not None and result.version_after != result.version:
            from app.remember import remember

            try:  # the repair installed a newer release: the record says which
                for warning in remember(w.config, w.install_dir, result.version_after)[1]:
                    w._log(text.maintenance_log("warning", warning))
            except OSError as e:
                w._log(text.maintenance_log("warning", str(e.strerror or e)))
        w._show_state()
        w._finish_close()

    def show_state(self) -> None:
        """Called at the end of the window's ``_show_state()``."""

        w = self.window
        s = w.state
        if s in (State.CHECKING, State.READY):  # a new check: the window's own screens
            self.task = ""
            self._final = None
        if s is State.DONE and self._final is not None:
            w.heading.setText(self._final.heading)
            w.message.setText(self._final.message)
            w.status.setText(text.PHASE_TITLES[Phase.DONE])
            if not self._final.playable:  # uninstalled: nothing left to show progress of
                w.play_button.hide()
                w.bar.hide()
                w.subheading.setText(w.config.display_name)
                for b in (w.update_button, w.retry_button, w.play_button):
                    b.setDefault(False)
                w.close_button.setDefault(True)
                w.close_button.setFocus(Qt.FocusReason.OtherFocusReason)
        elif s is State.ERROR and self.task == "repair":
            heading, message = text.repair_stopped(w.error_kind == "cancelled")
            w.heading.setText(heading)
            if message:
                w.message.setText(message)
        self.more_button.setVisible(self.available())
        w.fit_content(shrink=s in (State.DONE, State.UP_TO_DATE, State.ERROR))
