"""What the window shows, as data: the overall bar's position and the table of files.

``OverallProgress`` is the engine's own overall fraction (``Progress.fraction``: the work
done, bytes read + copied + downloaded each weighed by its cost, out of the plan's total),
held so it never runs backwards. The window, its title and a launcher reading
``--progress json`` show the same figure. ``FileTableModel`` lists the files the engine
reported working on, with what it last did to each; it emits ``dataChanged`` for the one
cell that changed, never a reset, so a view's selection and scroll position survive
thousands of updates.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.gui.tr import tr, tr_noop
from core.progress import Phase, Progress

_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()  # the invisible root; a table has no children under its rows


class OverallProgress:
    """One number in [0, 1] for the whole update, monotonic over the object's life.

    The engine computes it (``Progress.fraction``) and already keeps it monotonic within an
    attempt; this holds it across values the window receives late or twice, and keeps 0
    while the engine does not know the total yet (the check)."""

    def __init__(self) -> None:
        self._value = 0.0

    @property
    def value(self) -> float:
        return self._value

    def update(self, p: Progress) -> float:
        """Fold in ``p`` and return the new value (never lower than before)."""
        fraction = p.fraction
        if fraction is not None:
            self._value = max(self._value, min(1.0, max(0.0, fraction)))
        return self._value

    def finish(self) -> float:
        self._value = 1.0
        return self._value

    def reset(self) -> None:
        """Start over (a retry after an error is a new attempt)."""
        self._value = 0.0


# What the Activity column says for a file the engine is on, per phase.
_ACTIVITY: dict[Phase, str] = {
    Phase.CHECK: tr_noop("checking"),
    Phase.SCAN: tr_noop("scanned"),
    Phase.PLAN: tr_noop("planned"),
    Phase.DOWNLOAD: tr_noop("downloading"),
    Phase.REBUILD: tr_noop("rebuilt"),
    Phase.VERIFY: tr_noop("verified"),
    Phase.INSTALL: tr_noop("installed"),
    Phase.DONE: tr_noop("done"),
}


class FileTableModel(QAbstractTableModel):
    """Files the update touched: path and last activity. Rows are only appended."""

    FILE, ACTIVITY = range(2)
    HEADERS = (tr_noop("File"), tr_noop("Activity"))

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._paths: list[str] = []
        self._activity: list[str] = []
        self._row_of: dict[str, int] = {}

    # Qt interface ---------------------------------------------------------------------------

    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._paths)

    def columnCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._paths):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if index.column() == self.FILE:
                return self._paths[index.row()]
            if index.column() == self.ACTIVITY:
                return self._activity[index.row()]
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation is Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.HEADERS)
        ):
            return tr(self.HEADERS[section])
        return None

    # Feeding --------------------------------------------------------------------------------

    def observe(self, p: Progress) -> None:
        """Record that the engine is on ``p.current`` in ``p.phase``."""
        if not p.current:
            return
        activity = tr(_ACTIVITY[p.phase])
        row = self._row_of.get(p.current)
        if row is None:
            row = len(self._paths)
            self.beginInsertRows(QModelIndex(), row, row)
            self._paths.append(p.current)
            self._activity.append(activity)
            self._row_of[p.current] = row
            self.endInsertRows()
        elif self._activity[row] != activity:
            self._activity[row] = activity
            cell = self.index(row, self.ACTIVITY)
            self.dataChanged.emit(cell, cell, [Qt.ItemDataRole.DisplayRole])

    def clear(self) -> None:
        if not self._paths:
            return
        self.beginResetModel()  # a new attempt starts a new list; only here is a reset right
        self._paths.clear()
        self._activity.clear()
        self._row_of.clear()
        self.endResetModel()
