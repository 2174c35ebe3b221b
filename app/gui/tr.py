"""The window's translation hook: every string a player reads goes through ``tr``.

``tr("Update")`` asks the QTranslator installed on the application (the system locale's
``.qm`` from ``assets/i18n/``) and gives the English source when there is none, or when Qt
is not loaded (the text functions are unit-tested without a Qt application). Format after
translating: ``tr("{size} left").format(size=...)``, so translators move the placeholders.
"""

from __future__ import annotations

CONTEXT = "stitch"


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
