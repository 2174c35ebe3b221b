"""The bar's position and the file table, without a window."""

from __future__ import annotations

from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app.gui.model import FileTableModel, OverallProgress
from core.progress import Phase, Progress


def test_overall_progress_is_the_engines_fraction_never_backwards() -> None:
    bar = OverallProgress()

    def at(phase: Phase, done: int, total: int) -> float:
        return bar.update(Progress(phase, overall_done=done, overall_total=total))

    seen = [
        at(Phase.CHECK, 0, 0),  # no total yet: stays at 0
        at(Phase.SCAN, 50, 400),
        at(Phase.PLAN, 100, 200),  # the plan's real figure: a step forward
        at(Phase.REBUILD, 150, 200),
        at(Phase.DOWNLOAD, 120, 200),  # late or repeated values never pull it back
        at(Phase.DOWNLOAD, 190, 200),
        at(Phase.VERIFY, 200, 200),
        bar.update(Progress(Phase.DONE)),
    ]
    assert seen == [0.0, 0.125, 0.5, 0.75, 0.75, 0.95, 1.0, 1.0]
    bar.reset()
    assert at(Phase.CHECK, 0, 0) == 0.0


def test_file_model_appends_rows_and_changes_one_cell(qtbot: QtBot) -> None:
    model = FileTableModel()
    ModelTester(qtbot).check(model, force_py=True)  # Qt's model consistency checks
    assert model.rowCount() == 0 and model.columnCount() == 2
    assert model.headerData(0, __import__("PySide6").QtCore.Qt.Orientation.Horizontal) == "File"

    with qtbot.waitSignal(model.rowsInserted, timeout=1000):
        model.observe(Progress(Phase.SCAN, current="data/big.pak"))
    model.observe(Progress(Phase.SCAN))  # no file: nothing to record
    model.observe(Progress(Phase.SCAN, current="readme.txt"))
    assert model.rowCount() == 2

    changes: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda a, b, _roles: changes.append((a.row(), a.column(), b.row(), b.column()))
    )
    model.observe(Progress(Phase.DOWNLOAD, current="data/big.pak"))
    model.observe(Progress(Phase.DOWNLOAD, current="data/big.pak"))  # same: no signal
    assert changes == [(0, FileTableModel.ACTIVITY, 0, FileTableModel.ACTIVITY)]
    assert model.data(model.index(0, 0)) == "data/big.pak"
    assert model.data(model.index(0, 1)) == "downloading"
    assert model.data(model.index(1, 1)) == "scanned"
    assert model.data(model.index(5, 0)) is None

    model.clear()
    assert model.rowCount() == 0
