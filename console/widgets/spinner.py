"""A one-line spinner with a message, animated only while shown."""

from __future__ import annotations

from textual.timer import Timer
from textual.widgets import Static

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Spinner(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._frame = 0
        self._message = ""
        self._timer: Timer | None = None

    def start(self, message: str) -> None:
        self._message = message
        self.display = True
        if self._timer is None:
            self._timer = self.set_interval(0.1, self._advance)
        self._render_frame()

    def stop(self) -> None:
        self.display = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _advance(self) -> None:
        self._frame = (self._frame + 1) % len(FRAMES)
        self._render_frame()

    def _render_frame(self) -> None:
        self.update(f"{FRAMES[self._frame]} {self._message}")
