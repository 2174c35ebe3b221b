"""The words of the window's repair and uninstall (app/gui/text.py), and the one bar a
repair shows (app/repair.py's folding of the verify's and the update's progress)."""

from __future__ import annotations

from pathlib import Path

from app.gui import text
from app.repair import REPAIR_SHARE, RepairResult, _Bar
from core.engine.updater import Outcome, UpdateResult
from core.progress import Phase, Progress


def result(damaged: tuple[str, ...] = (), missing: tuple[str, ...] = (),
           downloaded: int = 0, to_version: str = "1.1") -> RepairResult:
    update = None
    if damaged or missing:
        update = UpdateResult(Outcome.UPDATED, "1.1", to_version, downloaded + 5000, 0,
                              len(damaged) + len(missing), 0, 3, bytes_content=downloaded)
    return RepairResult("dcrawl", "1.1", 12, damaged, missing, update)


def test_repair_words() -> None:
    clean = result()
    assert clean.repaired == 0 and clean.downloaded == 0
    assert text.repair_heading(clean.repaired) == "All files are intact"
    assert text.repair_message(clean, "Dungeon Crawl") == (
        "All 12 files of Dungeon Crawl 1.1 are intact. Nothing was downloaded.")
    assert text.repair_message(clean) == "All 12 files of 1.1 are intact. Nothing was downloaded."

    two = result(damaged=("data/big.pak",), missing=("readme.txt",), downloaded=1_200_000)
    assert text.repair_heading(two.repaired) == "Files repaired"
    # The file content downloaded, not the indexes fetched to plan it.
    assert text.repair_message(two) == "Repaired 2 files, downloaded 1.2 MB."
    one = result(damaged=("a",), downloaded=23_091)
    assert text.repair_message(one) == "Repaired 1 file, downloaded 23.1 kB."
    newer = result(damaged=("a",), downloaded=900, to_version="1.2")
    assert newer.version_after == "1.2"
    assert text.repair_message(newer) == ("Repaired 1 file, downloaded 900 bytes. "
                                          "The game was also updated to version 1.2.")
    assert text.repair_stopped(True) == (
        "Repair cancelled", "The repair was cancelled. Your files were not changed.")
    assert text.repair_stopped(False) == ("The repair did not finish", "")
    assert text.more_menu() == ("&More", "&Verify and repair files", "&Uninstall…")


def test_uninstall_words() -> None:
    folder = Path("/home/ann/Games/Dungeon Crawl")
    title, question, remove, keep = text.uninstall_question(
        "Dungeon Crawl", "1.1", folder, 3, ["saves/slot1.sav"])
    assert title == "Uninstall Dungeon Crawl?" and (remove, keep) == ("&Uninstall",
                                                                      "&Keep the game")
    assert question == (
        f"This removes Dungeon Crawl 1.1 from {folder}: its 3 files, its shortcuts and the "
        "updater's records of it. Files you made there stay (1 file: saves/slot1.sav).")
    many = [f"shot{i}.png" for i in range(8)]
    _, question, _, _ = text.uninstall_question("Dungeon Crawl", "1.1", folder, 1, many)
    assert question.endswith("(8 files: shot0.png, shot1.png, shot2.png, shot3.png, "
                             "shot4.png and 3 more).")
    assert "its 1 file," in question
    _, question, _, _ = text.uninstall_question("Dungeon Crawl", "1.1", folder, 3, [])
    assert question.endswith("There are no files of yours in that folder.")

    assert text.uninstalled("Dungeon Crawl", folder, 3, [], []) == (
        "Dungeon Crawl was uninstalled", f"Removed 3 files from {folder}.")
    assert text.uninstalled("Dungeon Crawl", folder, 3, ["a.sav"], ["/x.desktop: busy"])[1] == (
        f"Removed 3 files from {folder}. Kept 1 file you made: a.sav. "
        "Not removed: /x.desktop: busy.")
    assert text.uninstall_failed("cannot remove play.py (in use by game (pid 7)); nothing "
                                 "was removed") == (
        "Could not uninstall: Cannot remove play.py (in use by game (pid 7)); nothing was "
        "removed.")


def test_one_bar_for_verify_then_repair() -> None:
    sent: list[Progress] = []
    bar = _Bar(sent.append)
    bar.verify(Progress(Phase.CHECK, 0, 3, message="waiting for the lock"))  # the verify's
    bar.verify(Progress(Phase.VERIFY, 0, 1000))
    bar.verify(Progress(Phase.VERIFY, 600, 1000))
    bar.verify(Progress(Phase.VERIFY, 1000, 1000))
    bar.verify(Progress(Phase.DONE, 1, 1))  # not passed on: the repair follows
    bar.update(Progress(Phase.CHECK, 1, 3))  # the update's total is not known yet
    bar.update(Progress(Phase.SCAN, 10, 50, overall_done=10, overall_total=50))
    bar.update(Progress(Phase.DOWNLOAD, 40, 50, overall_done=40, overall_total=50))
    bar.update(Progress(Phase.SCAN, 0, 50, overall_done=0, overall_total=50))  # late value
    bar.update(Progress(Phase.DONE, 1, 1))
    bar.done()
    first = sent.pop(0)
    assert (first.phase, first.total, first.message) == (Phase.VERIFY, 0, "waiting for the lock")
    fractions = [p.fraction for p in sent]
    reserve = 1000 * REPAIR_SHARE
    assert [p.phase for p in sent] == [Phase.VERIFY] * 3 + [
        Phase.CHECK, Phase.SCAN, Phase.DOWNLOAD, Phase.SCAN, Phase.DONE]
    assert fractions[:3] == [0.0, 600 / (1000 + reserve), 1000 / (1000 + reserve)]
    assert fractions[3] == fractions[2]  # the check holds the bar
    assert fractions[4] == (1000 + 0.2 * reserve) / (1000 + reserve)
    assert fractions[5] == (1000 + 0.8 * reserve) / (1000 + reserve)
    assert fractions[6] == fractions[5]  # never backwards
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert all(p.overall_done <= p.overall_total for p in sent)


def test_log_lines() -> None:
    assert text.maintenance_log("damaged", "data/big.pak") == "damaged: data/big.pak"
    assert text.maintenance_log("missing", "readme.txt") == "missing: readme.txt"
    assert text.maintenance_log("kept") == "Uninstall not confirmed: nothing removed"
    assert text.maintenance_log("not removed", "/x.desktop: busy") == (
        "Warning: not removed: /x.desktop: busy")
    assert text.repairing_line(Path("/g")) == "Verifying and repairing files in /g"
