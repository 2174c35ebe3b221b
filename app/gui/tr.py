"""The window's translation hook: every string a player reads goes through ``tr``.

``tr("Update")`` asks the QTranslator installed on the application (the system locale's
``.qm`` from ``assets/i18n/``, see ``install_translator``) and gives the English source when
there is none, or when Qt is not loaded (the text functions are unit-tested without a Qt
application). Format after translating: ``tr("{size} left").format(size=...)``, so
translators move the placeholders.

The sources live in ``assets/i18n/stitch_<lang>.ts``, made from the code by
``assets/i18n/update.py`` (it reads every ``tr("...")`` and ``tr_noop("...")`` in app/gui);
``pyside6-lrelease`` compiles them to the ``.qm`` files the updater loads.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QCoreApplication, QTranslator

CONTEXT = "stitch"
LANG_ENV = "STITCH_LANG"  # "de", "fr_CA": the player's choice over the system locale


def tr(text: str, disambiguation: str | None = None, n: int = -1) -> str:
    """``text`` in the player's language (English when no translation is installed)."""
    try:
        from PySide6.QtCore import QCoreApplication
    except ImportError:  # the CLI without the gui extra
        return text
    return QCoreApplication.translate(CONTEXT, text, disambiguation, n)


def tr_noop(text: str) -> str:
    """Mark ``text`` for translation where it is defined (a table built at import, before a
    translator exists); translate it with ``tr`` where it is shown."""
    return text


def install_translator(
    app: QCoreApplication, language: str | None = None
) -> QTranslator | None:
    """Install the translation for ``language`` (``"de"``, ``"de_AT"``), else ``$STITCH_LANG``,
    else the system locale (its list of UI languages, most preferred first; ``de_AT`` falls
    back to ``stitch_de.qm``). Returns the translator installed, or None when there is no
    translation for that language (English stays)."""
    from PySide6.QtCore import QLocale, QTranslator

    from app.assets import asset_path

    language = language or os.environ.get(LANG_ENV, "")
    locale = QLocale(language) if language else QLocale.system()
    folder = asset_path("i18n")
    for name in ui_languages(locale.uiLanguages()):
        if name == "en":
            return None  # English preferred over any translation we have: the source text
        qm = folder / f"stitch_{name}.qm"
        if qm.is_file():
            translator = QTranslator(app)
            if translator.load(str(qm)):
                app.installTranslator(translator)
                return translator
            translator.deleteLater()
    return None


def ui_languages(preferred: list[str]) -> list[str]:
    """The ``.qm`` names to try, best first: ``["de-AT", "en-US"]`` gives ``["de_AT", "de",
    "en"]`` (the search ends at English, the language of the source text)."""
    out: list[str] = []
    for tag in preferred:
        parts = tag.replace("-", "_").split("_")
        for name in ("_".join(parts), parts[0].lower()):
            if name and name not in out:
                out.append(name)
    return out
