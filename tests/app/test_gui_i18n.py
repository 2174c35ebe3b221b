"""Translations: every string the window shows goes through ``tr``, is in every .ts and is
translated there; the shipped .qm is what pyside6-lrelease makes of the .ts; with the German
translation installed, the text functions and the window speak German in every state."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from gui_fakes import Script, make_check, make_plan
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel
from pytestqt.qtbot import QtBot
from test_gui_window import WAIT, Recorder, assert_unique_mnemonics, make_window

from app.gui import text
from app.gui.tr import install_translator, tr, ui_languages
from app.gui.window import State
from core.errors import HTTPStatusError, NetworkError
from core.progress import Phase, Progress

REPO = Path(__file__).resolve().parents[2]
I18N = REPO / "assets" / "i18n"


def _load_update() -> ModuleType:
    spec = importlib.util.spec_from_file_location("i18n_update", I18N / "update.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


update = _load_update()


@pytest.fixture
def german(qapp: QApplication) -> Iterator[None]:
    translator = install_translator(qapp, "de")
    assert translator is not None
    yield
    qapp.removeTranslator(translator)


# --- the sources ------------------------------------------------------------------------------


def test_extraction_reads_tr_and_tr_noop_literals() -> None:
    code = '''
from app.gui.tr import tr, tr_noop
TABLE = {1: tr_noop("Checking for updates")}
def f(n):
    label = tr(TABLE[n])  # a variable: its text comes from the tr_noop above
    return tr("Downloading {done} "
              "of {total}").format(done=1, total=n) + tr(".", "decimal separator")
'''
    assert update.calls_in(code) == [
        ("Checking for updates", "", 3),
        ("Downloading {done} of {total}", "", 6),
        (".", "decimal separator", 7),
    ]


def test_a_string_shown_without_tr_is_caught() -> None:
    code = '''
def build(self, product, e):
    self.heading.setText("Repairing files")
    self.button = QPushButton(tr("&Repair"))
    self._log(f"Removed {product}")
    self.status.setText(" ")
    self.warning.setText(tr("x") if e else "Could not start")
    return ErrorText("network", "The server is down", str(e))
'''
    assert update.bare_strings(code) == [
        (3, "Repairing files"), (5, "Removed "), (7, "Could not start"),
        (8, "The server is down"),
    ]
    assert update.bare_strings('def f(n):\n    return f"{n} bytes"\n', returns=True) == [
        (2, " bytes")]


def test_every_string_in_the_code_is_in_every_ts_and_translated() -> None:
    """Fails when the code has a string a .ts lacks (run assets/i18n/update.py, then
    translate it), a translation is missing, or the window shows a string without tr()."""
    assert update.ts_files(), "no translation shipped"
    assert update.main(["--check"]) == 0
    messages = update.extract()
    assert len(messages) > 100
    for ts in update.ts_files():
        done = update.read_ts(ts)
        for m in messages:
            assert done.get(m.key), f"{ts.name}: {m.source!r} not translated"
            # The placeholders survive translation: .format() would raise, or drop a value.
            want = sorted(re.findall(r"\{\w+\}", m.source))
            assert sorted(re.findall(r"\{\w+\}", done[m.key])) == want, m.source
            # A mnemonic stays a mnemonic (Alt+letter on the button).
            assert ("&" in m.source) == ("&" in done[m.key]), m.source


def test_the_shipped_qm_is_what_lrelease_makes_of_the_ts(tmp_path: Path) -> None:
    for ts in update.ts_files():
        qm = tmp_path / ts.with_suffix(".qm").name
        update.release(ts, qm)
        assert qm.read_bytes() == ts.with_suffix(".qm").read_bytes(), (
            f"{ts.name} changed: run assets/i18n/update.py --release")


def test_the_language_search_ends_at_english() -> None:
    assert ui_languages(["de-AT", "en-US"]) == ["de_AT", "de", "en_US", "en"]
    assert ui_languages(["fr_CA"]) == ["fr_CA", "fr"]


def test_translator_by_name_and_none_for_english_or_unknown(qapp: QApplication) -> None:
    assert install_translator(qapp, "en_GB") is None
    assert install_translator(qapp, "fr") is None
    assert QCoreApplication.translate("stitch", "&Cancel") == "&Cancel"
    translator = install_translator(qapp, "de_AT")  # falls back to stitch_de.qm
    assert translator is not None
    try:
        assert tr("&Cancel") == "&Abbrechen"
    finally:
        qapp.removeTranslator(translator)
    assert tr("&Cancel") == "&Cancel"


PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.gui.tr import install_translator, tr
print(install_translator(app) is not None, tr("&Retry"))
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "de_DE.UTF-8"}, "True &Erneut versuchen"),  # the system locale
        ({"LANG": "en_US.UTF-8", "STITCH_LANG": "de"}, "True &Erneut versuchen"),  # the override
        ({"LANG": "en_US.UTF-8"}, "False &Retry"),
        ({"LANG": "C"}, "False &Retry"),
    ],
)
def test_the_system_locale_or_stitch_lang_picks_the_translation(
    env: dict[str, str], expected: str
) -> None:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LANG", "LANGUAGE", "STITCH_LANG") and not k.startswith("LC_")}
    r = subprocess.run([sys.executable, "-c", PROBE, str(REPO)],
                       env={**clean, "QT_QPA_PLATFORM": "offscreen", **env},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected


# --- German, shown --------------------------------------------------------------------------


@pytest.mark.usefixtures("german")
def test_text_functions_speak_german() -> None:
    assert text.human_size(1536) == "1,5 kB"
    assert text.human_size(512_000_000) == "512 MB"
    assert text.human_size(5) == "5 Bytes"
    assert text.time_left(3600 + 5 * 60) == "noch etwa 1 Std. 5 Min."
    p = Progress(Phase.DOWNLOAD, 38_200_000, 41_000_000, bytes_local=4_100_000_000,
                 download_done=38_200_000, download_total=41_000_000)
    assert text.status_line(p, speed=12_300_000, eta=2.3) == (
        "38,2 MB von 41,0 MB heruntergeladen · 4,1 GB wiederverwendet · 12,3 MB/s · "
        "noch etwa 3 s")
    assert text.paused_line(p) == "Pausiert – 38,2 MB von 41,0 MB"
    assert text.stopped_line(Phase.DOWNLOAD, cancelled=True) == "Beim Herunterladen abgebrochen"
    assert text.describe_error(HTTPStatusError("x", status_code=503)).message == (
        "Der Update-Server hat Probleme (Fehler 503). Versuche es in ein paar Minuten erneut.")
    assert text.describe_error(NetworkError("x")).message.startswith(
        "Der Update-Server ist nicht erreichbar.")
    plan = make_plan(make_check("1.0", "1.1"), download=41_000_000, reused=4_100_000_000)
    assert text.reuse_line(plan) == "4,1 GB (99 % gespart)"
    assert text.cancel_question(False)[2:] == ("Download &stoppen", "&Weiter herunterladen")


# Words of the English window: none may be visible once the translation is installed.
ENGLISH = re.compile(r"\b(the|of|to|your|is|was|and|Update available|Downloading|Cancel|"
                     r"Retry|Done|Close|Play|Resume|needed|free|saved|Version:)\b")


def english_left(w) -> list[str]:  # type: ignore[no-untyped-def]
    """Visible texts of labels and buttons still in English (the install path excepted)."""
    out = []
    for widget in [*w.findChildren(QLabel), *w.findChildren(QAbstractButton)]:
        if widget.isVisible() and widget is not w.folder_value and ENGLISH.search(widget.text()):
            out.append(widget.text())
    if ENGLISH.search(w.windowTitle().replace(w.config.window_title, "")):
        out.append(w.windowTitle())
    return out


@pytest.mark.usefixtures("german")
def test_the_window_speaks_german_in_each_state(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.check = make_check("1.0", "1.1", notes="## 1.1\n\n- New level")
    script.plan = make_plan(script.check, download=41_000_000, reused=4_100_000_000)
    script.gate = threading.Event()
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.READY, timeout=WAIT)
    assert w.heading.text() == "Update verfügbar: Dungeon Crawl 1.1"
    assert w.subheading.text() == "Dungeon Crawl · Version 1.0 → 1.1"
    assert w.update_button.text() == "Ak&tualisieren"
    assert w.disk_value.text() == "4,1 GB benötigt · 1,0 TB frei"
    assert w.notes_label.text() == "Neuigkeiten"
    assert english_left(w) == []
    assert_unique_mnemonics(w)

    w.update_button.click()
    qtbot.waitUntil(lambda: script.in_download.is_set() and w.state is State.RUNNING,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: "heruntergeladen" in w.status.text(), timeout=WAIT)
    assert re.match(r"[\d,]+ (Bytes|kB|MB) von 41,0 MB heruntergeladen · 4,1 GB wiederverwendet",
                    w.status.text()), w.status.text()
    assert w.cancel_button.text() == "&Abbrechen"
    assert english_left(w) == []
    assert_unique_mnemonics(w)
    w.pause_button.click()
    assert w.heading.text() == "Pausiert" and w.pause_button.text() == "&Fortsetzen"
    assert w.status.text().startswith("Pausiert – ")
    assert english_left(w) == []
    w.pause_button.click()
    w.details_button.setChecked(True)
    assert w.details.tabText(0) == "Protokoll" and w.details.tabText(1) == "Dateien"
    assert w.files.headerData(0, w.files_view.horizontalHeader().orientation()) == "Datei"

    w.cancel_button.click()  # the recorder confirms
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "Update abgebrochen"
    assert w.retry_button.text() == "&Erneut versuchen"
    assert w.message.text() == (
        "Das Update wurde abgebrochen. Deine Dateien wurden nicht verändert.")
    assert english_left(w) == []
    assert_unique_mnemonics(w)

    script.gate.set()
    w.retry_button.click()  # goes on where it stopped, to the end
    qtbot.waitUntil(lambda: w.state is State.DONE, timeout=WAIT)
    assert w.heading.text() == "Fertig"
    assert w.message.text().startswith("Dungeon Crawl wurde von 1.0 auf 1.1 aktualisiert.")
    assert w.play_button.text() == "&Spielen" and w.close_button.text() == "S&chließen"
    assert english_left(w) == []
    assert_unique_mnemonics(w)


@pytest.mark.usefixtures("german")
def test_german_errors_first_install_and_up_to_date(
    qtbot: QtBot, tmp_path: Path, fake_factory, script: Script
) -> None:
    script.check_error = NetworkError("connection refused")
    w, _ = make_window(qtbot, tmp_path, fake_factory)
    qtbot.waitUntil(lambda: w.state is State.ERROR, timeout=WAIT)
    assert w.heading.text() == "Suche nach Updates nicht möglich"
    assert w.error_details_button.text() == "Details an&zeigen"
    w.error_details_button.setChecked(True)
    assert w.error_details_button.text() == "Details aus&blenden"
    assert english_left(w) == []
    assert_unique_mnemonics(w)
    w.close()

    script.check = make_check(None, "1.1")
    script.plan = make_plan(script.check)
    rec = Recorder(folder=tmp_path / "elsewhere")
    first, rec = make_window(qtbot, tmp_path / "first", fake_factory, rec=rec)
    qtbot.waitUntil(lambda: first.state is State.READY, timeout=WAIT)
    assert first.heading.text() == "Bereit zur Installation von Dungeon Crawl 1.1"
    assert first.update_button.text() == "&Installieren"
    assert first.change_button.text() == "Ä&ndern …"
    assert english_left(first) == []
    assert_unique_mnemonics(first)
    first.change_button.click()
    assert rec.captions[-1].startswith("Wähle, wo Dungeon Crawl installiert werden soll (")
    first.close()

    script.check = make_check("1.1", "1.1")
    current, _ = make_window(qtbot, tmp_path / "current", fake_factory)
    qtbot.waitUntil(lambda: current.state is State.UP_TO_DATE, timeout=WAIT)
    assert current.heading.text() == "Auf dem neuesten Stand"
    assert current.message.text() == (
        "Dungeon Crawl ist auf dem neuesten Stand (Version 1.1).")
    assert english_left(current) == []


def test_lrelease_is_where_the_build_finds_it() -> None:
    """The .qm files are committed; remaking them needs pyside6-lrelease, which comes with
    the gui extra's PySide6 (this venv's bin/ or PATH)."""
    assert Path(update.lrelease()).exists() or shutil.which(update.lrelease())
