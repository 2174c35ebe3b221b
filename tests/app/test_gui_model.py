"""The bar's position and the file table, without a window."""

from __future__ import annotations

from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app.gui.model import FileTableModel, OverallProgress
from core.progress import Phase, Progress


def test_overall_progress_never_runs_backwards() -> None:
    bar = OverallProgress()
    seen = [
        bar.update(Progress(Phase.CHECK, 0, 3)),
        bar.update(Progress(Phase.CHECK, 3, 3)),
        bar.update(Progress(Phase.SCAN, 50, 100)),
        bar.update(Progress(Phase.SCAN, 100, 100)),
        bar.update(Progress(Phase.PLAN, 1, 1)),
        # The engine rebuilds before it downloads: segments follow arrival, not enum order.
        bar.update(Progress(Phase.REBUILD, 10, 10)),
        bar.update(Progress(Phase.DOWNLOAD, 0, 100)),
        bar.update(Progress(Phase.DOWNLOAD, 60, 100)),
        bar.update(Progress(Phase.DOWNLOAD, 40, 100)),  # a retry lowered the count
        bar.update(Progress(Phase.SCAN, 0, 100)),  # a phase seen again
        bar.update(Progress(Phase.VERIFY, 5, 10)),
        bar.update(Progress(Phase.INSTALL, 0, 0)),  # no total: start of its segment
        bar.update(Progress(Phase.DONE, 1, 1)),
    ]
    assert seen == sorted(seen)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen[1] == 0.03 and seen[3] == 0.15  # CHECK is 3%, SCAN 12%
    assert seen[6] == seen[5] == 0.37  # DOWNLOAD begins where REBUILD ended
    assert seen[7] == 0.37 + 0.45 * 0.6
    assert seen[8] == seen[7]
    bar.reset()
    assert bar.update(Progress(Phase.CHECK, 0, 3)) == 0.0


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
