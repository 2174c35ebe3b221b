"""The window's widgets and layout, without the update's states.

``UpdaterView`` builds every widget once, in reading order, with mnemonics and a tab order;
``app.gui.window.UpdaterWindow`` subclasses it and decides what is visible when. Keeping the
two apart keeps each under a few hundred lines and lets the layout change without touching
the state machine.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QSize, Qt, QTime
from PySide6.QtGui import QFont, QIcon, QKeyEvent, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui import text
from app.gui.model import FileTableModel
from app.gui.tr import tr
from core.progress import Phase

BAR_MAX = 1000  # the bar's range: fine enough that a 4 GB update moves it every 4 MB


class UpdaterView(QWidget):
    """Widgets only. Subclasses connect the buttons and call ``request_cancel()``."""

    def __init__(self, title: str, icon: QIcon, subtitle: str) -> None:
        super().__init__()
        self.files = FileTableModel(self)
        self._build(title, icon, subtitle)

    def request_cancel(self) -> bool:  # overridden by the window
        return False

    def _build(self, title: str, icon: QIcon, subtitle: str) -> None:
        self.setObjectName("UpdaterWindow")
        self.setWindowTitle(title)
        self.setWindowIcon(icon)
        self.setMinimumWidth(640)

        self.icon_label = QLabel()
        self.icon_label.setPixmap(icon.pixmap(QSize(48, 48), self.devicePixelRatioF()))
        self.heading = QLabel(text.phase_title(Phase.CHECK))
        self.heading.setObjectName("Heading")
        self.heading.setWordWrap(True)  # a long game name, a wordy language: more lines
        self.subheading = QLabel(subtitle)
        self.subheading.setObjectName("Subheading")
        self.subheading.setWordWrap(True)
        head_text = QVBoxLayout()
        head_text.setSpacing(2)
        head_text.addWidget(self.heading)
        head_text.addWidget(self.subheading)
        head = QHBoxLayout()
        head.addWidget(self.icon_label, 0, Qt.AlignmentFlag.AlignTop)
        head.addSpacing(8)
        head.addLayout(head_text, 1)

        self.bar = QProgressBar()
        self.bar.setRange(0, BAR_MAX)
        self.bar.setAccessibleName(tr("Overall progress"))
        self.status = QLabel(" ")
        self.status.setObjectName("StatusLine")
        self.status.setWordWrap(True)
        self.current_file = QLabel("")
        self.current_file.setObjectName("CurrentFile")
        self.current_file.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # What will happen, shown before a byte is downloaded.
        self.summary = QFrame()
        self.summary.setObjectName("Summary")
        form = QFormLayout(self.summary)
        self.summary_form = form
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.version_value = QLabel()
        self.download_value = QLabel()
        self.reuse_value = QLabel()
        self.disk_value = QLabel()
        self.folder_value = QLabel()
        self.folder_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_value.setWordWrap(True)
        self.change_button = QPushButton(tr("C&hange…"))
        # In a widget of its own: QFormLayout gives a nested layout the height of one line,
        # whatever its wrapped path needs; a widget's height for its width it honours.
        folder_row = QWidget()
        folder_layout = QHBoxLayout(folder_row)
        folder_layout.setContentsMargins(0, 0, 0, 0)
        folder_layout.addWidget(self.folder_value, 1)
        folder_layout.addWidget(self.change_button, 0, Qt.AlignmentFlag.AlignTop)
        form.addRow(tr("Version:"), self.version_value)
        form.addRow(tr("Download:"), self.download_value)
        form.addRow(tr("Reused from your files:"), self.reuse_value)
        form.addRow(tr("Disk space:"), self.disk_value)
        form.addRow(tr("Install to:"), folder_row)
        self.warning = QLabel()
        self.warning.setObjectName("Warning")
        self.warning.setWordWrap(True)
        self.notes_label = QLabel(tr("What's new"))
        self.notes_label.setObjectName("NotesLabel")
        self.notes = QTextBrowser()
        self.notes.setObjectName("Notes")
        self.notes.setOpenExternalLinks(True)
        # Room for about six lines before a scrollbar, twelve at most.
        line = self.notes.fontMetrics().lineSpacing()
        self.notes.setMinimumHeight(6 * line + 16)
        self.notes.setMaximumHeight(12 * line + 16)
        self.notes.setAccessibleName(tr("Release notes"))

        # Errors and the end: plain words, the technical text one click away.
        self.message = QLabel()
        self.message.setObjectName("Message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_icon = QLabel()  # beside the message when an attempt ended early
        self.state_icon.setObjectName("StateIcon")
        self.state_icon.hide()
        self.error_details_button = QPushButton(tr("&Show details"))
        self.error_details_button.setCheckable(True)
        self.error_details_button.toggled.connect(self._toggle_error_detail)
        self.error_detail = QPlainTextEdit()
        self.error_detail.setObjectName("ErrorDetail")
        self.error_detail.setReadOnly(True)
        self.error_detail.setMaximumHeight(96)
        self.error_detail.setAccessibleName(tr("Technical details"))

        # The collapsible details: a log and the files touched.
        self.details_button = QToolButton()
        self.details_button.setObjectName("DetailsToggle")
        self.details_button.setText(tr("&Details"))
        self.details_button.setCheckable(True)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.details_button.toggled.connect(self._toggle_details)
        self.log = QPlainTextEdit()
        self.log.setObjectName("Log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)  # a long update must not grow memory without end
        self.log.setAccessibleName(tr("Details log"))
        self.files_view = QTableView()
        self.files_view.setModel(self.files)
        self.files_view.verticalHeader().hide()
        self.files_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.files_view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.details = QTabWidget()
        self.details.addTab(self.log, tr("Log"))
        self.details.addTab(self.files_view, tr("Files"))
        self.details.setMinimumHeight(160)
        self.details.hide()

        self.pause_button = QPushButton(tr("&Pause"))
        self.cancel_button = QPushButton(tr("&Cancel"))
        self.retry_button = QPushButton(tr("&Retry"))
        self.update_button = QPushButton(tr("&Update"))
        self.play_button = QPushButton(tr("&Play"))
        self.close_button = QPushButton(tr("C&lose"))
        for primary in (self.update_button, self.retry_button, self.play_button):
            primary.setObjectName("Primary")
        buttons = QHBoxLayout()
        buttons.addWidget(self.details_button)
        buttons.addStretch(1)
        for b in (
            self.pause_button,
            self.cancel_button,
            self.retry_button,
            self.update_button,
            self.play_button,
            self.close_button,
        ):
            buttons.addWidget(b)

        root = QVBoxLayout(self)
        root.setContentsMargins(18, 16, 18, 14)
        root.setSpacing(10)
        root.addLayout(head)
        root.addWidget(self.bar)
        root.addWidget(self.status)
        root.addWidget(self.current_file)
        root.addWidget(self.summary)
        root.addWidget(self.warning)
        root.addWidget(self.notes_label)
        root.addWidget(self.notes)
        message_row = QHBoxLayout()
        message_row.addWidget(self.state_icon, 0, Qt.AlignmentFlag.AlignTop)
        message_row.addWidget(self.message, 1)
        root.addLayout(message_row)
        error_row = QHBoxLayout()
        error_row.addWidget(self.error_details_button)
        error_row.addStretch(1)
        root.addLayout(error_row)
        root.addWidget(self.error_detail)
        root.addWidget(self.details, 1)
        root.addStretch(0)
        root.addLayout(buttons)
        self.button_row = buttons  # app/gui/maintenance.py adds its button here
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

        # Keyboard order follows reading order: the main action first, details last.
        order: list[QWidget] = [
            self.change_button,
            self.update_button,
            self.retry_button,
            self.play_button,
            self.pause_button,
            self.cancel_button,
            self.close_button,
            self.error_details_button,
            self.details_button,
            self.details,
        ]
        for first, second in itertools.pairwise(order):
            QWidget.setTabOrder(first, second)

    def fit_content(self, shrink: bool = False) -> None:
        """Grow the window when its content no longer fits its height (a status line that
        wraps, a long path, a large font or scale): rows are never squashed or cut. Grows
        only, unless ``shrink`` (a final screen: no blank space where the plan was)."""
        layout = self.layout()
        if layout is None or not self.isVisible():
            return
        layout.activate()
        need = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else (
            layout.totalSizeHint().height())
        if self.height() < need or (shrink and self.height() > need):
            self.resize(self.width(), need)

    def set_notes(self, markdown: str) -> None:
        """The release notes, their headings at the size of the text (bold): a "# 1.1" in
        the notes must not shout louder than the window's own heading."""
        if self.notes.property("markdown") == markdown:
            return  # unchanged: keep where the player scrolled to
        self.notes.setProperty("markdown", markdown)
        self.notes.setMarkdown(markdown)
        plain = QTextCharFormat()
        plain.setProperty(QTextFormat.Property.FontSizeAdjustment, 0)
        plain.setFontWeight(QFont.Weight.Bold)
        block = self.notes.document().begin()
        while block.isValid():
            if block.blockFormat().headingLevel():
                cursor = QTextCursor(block)
                cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock,
                                    QTextCursor.MoveMode.KeepAnchor)
                cursor.mergeCharFormat(plain)
            block = block.next()

    def set_stopped_look(self, cancelled: bool) -> None:
        """An error or a cancel: a warning or information icon, and the message's
        ``tone`` ("error" / "cancelled") for the style sheet."""
        pixmap = QStyle.StandardPixmap.SP_MessageBoxInformation if cancelled else (
            QStyle.StandardPixmap.SP_MessageBoxCritical)
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize)
        self.state_icon.setPixmap(
            self.style().standardIcon(pixmap).pixmap(QSize(size, size), self.devicePixelRatioF()))
        self.state_icon.setAccessibleName(tr("Cancelled") if cancelled else tr("Error"))
        tone = "cancelled" if cancelled else "error"
        if self.message.property("tone") != tone:
            self.message.setProperty("tone", tone)
            self.message.style().unpolish(self.message)
            self.message.style().polish(self.message)

    def _log(self, line: str, stamp: bool = True) -> None:
        prefix = QTime.currentTime().toString("HH:mm:ss") + "  " if stamp else "          "
        self.log.appendPlainText(prefix + line)

    def _toggle_details(self, shown: bool) -> None:
        self.details_button.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )
        self.details.setVisible(shown)
        self.fit_content(shrink=True)

    def _toggle_error_detail(self, shown: bool) -> None:
        self.error_detail.setVisible(shown)
        self.error_details_button.setText(tr("&Hide details") if shown else tr("&Show details"))
        self.fit_content(shrink=True)

    def default_button(self) -> QPushButton | None:
        for b in (self.update_button, self.retry_button, self.play_button, self.close_button):
            if b.isDefault() and b.isVisible() and b.isEnabled():
                return b
        return None

    # --- Qt events ----------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # A QWidget window has no dialog default-button handling: Enter presses the default
        # button unless a button has focus (then Qt's own Space/Enter handling applies).
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            focused = self.focusWidget()
            if isinstance(focused, QPushButton | QToolButton):
                focused.click()
                return
            default = self.default_button()
            if default is not None:
                default.click()
                return
        if key == Qt.Key.Key_Escape:
            self.request_cancel()
            return
        super().keyPressEvent(event)


def clipped_widgets(root: QWidget) -> list[str]:
    """The visible labels and buttons under ``root`` that are smaller than they need to be,
    as ``"text": has WxH, needs WxH``: a label's size hint (its height for its width when it
    wraps), a button's size hint. Empty when nothing is cut. Used by the layout tests and
    docs/screenshots.py at each scale and language."""
    from PySide6.QtWidgets import QAbstractButton

    out = []
    widgets: list[QLabel | QAbstractButton] = [*root.findChildren(QLabel),
                                               *root.findChildren(QAbstractButton)]
    for widget in widgets:
        if not widget.isVisible() or widget.width() <= 0:
            continue
        g, hint = widget.geometry(), widget.sizeHint()
        wraps = isinstance(widget, QLabel) and widget.wordWrap()
        need_w = 0 if wraps else hint.width()
        need_h = widget.heightForWidth(g.width()) if wraps else hint.height()
        if g.width() < need_w or g.height() < need_h:
            name = widget.text() or widget.objectName() or type(widget).__name__
            out.append(f"{name[:60]!r}: has {g.width()}x{g.height()}, needs {need_w}x{need_h}")
    return out
