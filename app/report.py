"""Progress output for the command line and for launchers: ``--progress text|json|none``.

``json`` prints one JSON object per line on stdout (documented in README.md): progress lines
``{"event": "progress", ...}`` and one final ``{"event": "result", ...}`` or
``{"event": "error", ...}`` line. ``text`` prints a human line to stderr, rewritten in place
on a terminal. Speed and time left are computed from this session only.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import IO, Any

from app.rate import RateMeter
from core.progress import Phase, Progress

PHASE_WORDS = {
    Phase.CHECK: "checking for updates",
    Phase.SCAN: "scanning local files",
    Phase.PLAN: "planning",
    Phase.DOWNLOAD: "downloading",
    Phase.REBUILD: "rebuilding",
    Phase.VERIFY: "verifying",
    Phase.INSTALL: "installing",
    Phase.DONE: "done",
}


class Reporter:
    """Receives engine progress and writes it out in one of the three modes."""

    def __init__(self, mode: str, out: IO[str] | None = None) -> None:
        self.mode = mode
        self.out = out if out is not None else (sys.stdout if mode == "json" else sys.stderr)
        self.rate = RateMeter()
        self._last_text = 0.0
        self._tty = mode == "text" and self.out.isatty()
        self._phase: Phase | None = None
        self._pct: int | None = None

    def emit(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.out.flush()

    def __call__(self, p: Progress) -> None:
        speed, eta = 0.0, None
        transferring = p.download_total > 0 and p.phase in (Phase.REBUILD, Phase.DOWNLOAD)
        if transferring:
            # The download's own bytes (fetched ahead during the rebuild included), never
            # the indexes fetched while planning: speed and time left of the download.
            self.rate.add(time.monotonic(), p.download_done)
            speed = self.rate.speed or 0.0
            eta = self.rate.eta(p.download_total - p.download_done)
        if self.mode == "json":
            obj: dict[str, Any] = {
                "event": "progress", "phase": p.phase.value, "done": p.done,
                "total": p.total, "overall_done": p.overall_done,
                "overall_total": p.overall_total, "download_done": p.download_done,
                "download_total": p.download_total, "bytes_local": p.bytes_local,
                "bytes_network": p.bytes_network, "speed": round(speed),
                "eta": None if eta is None else round(eta, 1), "file": p.current,
            }
            if p.message:
                obj["message"] = p.message
            self.emit(obj)
        elif self.mode == "text":
            if p.message:
                return
            now = time.monotonic()
            changed = p.phase is not self._phase
            self._phase = p.phase
            fraction = p.fraction
            if fraction is None and p.total and p.phase is not Phase.CHECK:
                fraction = p.done / p.total  # verify: the phase's own share
            pct = None if fraction is None else math.floor(100 * fraction)
            if not changed and (now - self._last_text < (0.2 if self._tty else 1.0)
                                or (pct == self._pct and not self._tty)):
                return
            self._last_text = now
            self._pct = pct
            line = PHASE_WORDS[p.phase] + ("" if pct is None else f" {pct:3d}%")
            if transferring:
                line += f"  {mb(p.download_done)} of {mb(p.download_total)} downloaded"
                if p.bytes_local:
                    line += f", {mb(p.bytes_local)} from disk"
                if speed:
                    line += f", {mb(int(speed))}/s"
                if eta is not None:
                    line += f", about {math.ceil(eta)} s left"
            if self._tty:
                self.out.write("\r\x1b[K" + line)
                if p.phase is Phase.DONE:
                    self.out.write("\n")
            else:
                self.out.write(line + "\n")
            self.out.flush()

    def line(self, text: str) -> None:
        """A human message (not in json mode, where everything is structured)."""
        if self.mode == "text":
            if self._tty:
                self.out.write("\r\x1b[K")
            self.out.write(text + "\n")
            self.out.flush()


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
