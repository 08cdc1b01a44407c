"""The console's dialogs: Textual's modal screen, with the screen behind it tinted once per dialog.

Textual tints the screen behind a modal (every segment of every line) at each paint of the modal, and opening
one paints it several times: four renders of the 1,000-host fleet table and their tinting were a third of a
dialog's key-press-to-paint time. The screen behind does not repaint while a dialog covers it, so the first
tinting stands for all of them, until the terminal's size changes.
"""

from __future__ import annotations

from typing import TypeVar

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from textual.renderables.background_screen import BackgroundScreen
from textual.screen import ModalScreen

ResultT = TypeVar("ResultT")


class _TintedOnce:
    def __init__(self, behind: BackgroundScreen) -> None:
        self.behind = behind
        self._lines: tuple[tuple[int, int | None], list[Segment]] | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        size = (options.max_width, options.height)
        if self._lines is None or self._lines[0] != size:
            self._lines = (size, list(console.render(self.behind, options)))
        return self._lines[1]


class Dialog(ModalScreen[ResultT]):
    _tinted: _TintedOnce | None = None

    def render(self) -> RenderableType:
        behind = super().render()
        if not isinstance(behind, BackgroundScreen):
            return behind
        if self._tinted is None or self._tinted.behind.screen is not behind.screen:
            self._tinted = _TintedOnce(behind)
        return self._tinted
