"""One replica's log (`l` on a replica in host detail): its last lines from its host, then what it writes, live.

The app reads the log through the engine (`EngineAPI.replica_log`, hostlink's log reader on the host) in a
worker and hands each chunk to `add`; this screen keeps the last KEEP lines, shows those matching the `/`
filter (substring or regex, as the fleet's), and says when the stream ends or fails. Log text is host-supplied:
shown with control and bidi characters as visible escapes, never as markup.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Input, Log, Static

from console.actions import bindings
from console.derive import host_matcher
from console.formatting import literal
from console.widgets.footer import ConsoleFooter

KEEP = 5000  # lines kept for the filter; the screen shows the matching ones


class LogScreen(Screen[None]):
    SCOPE = "log"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self, host: str, replica: str, lines: int) -> None:
        super().__init__()
        self.host, self.replica, self.lines = host, replica, lines
        self._kept: deque[str] = deque(maxlen=KEEP)
        self._partial = ""  # a line still being written: shown once its newline arrives
        self._filter = ""
        self._state = "reading…"
        self._drawn = False  # composed: until then what arrives is only kept (the reader starts with the screen)

    def compose(self) -> ComposeResult:
        yield Static(id="log-title")
        yield Log(id="log", max_lines=KEEP, auto_scroll=True)
        yield Input(placeholder="filter lines: substring or regex", id="filter")
        yield ConsoleFooter(compact=True)

    def on_mount(self) -> None:
        """What arrived before the screen was drawn (the reader starts with it) is shown now."""
        self._drawn = True
        self.query_one("#filter", Input).display = False
        self.query_one(Log).write_lines(self._kept)
        self._show_title()

    # --- fed by the app's worker

    def add(self, chunk: bytes) -> None:
        """Bytes as the host's log has them; complete lines are kept and shown (when they match the filter)."""
        text = self._partial + chunk.decode("utf-8", "replace")
        *lines, self._partial = text.split("\n")
        matches = host_matcher(self._filter)
        shown = []
        for line in lines:
            line = literal(line).plain
            self._kept.append(line)
            if matches(line):
                shown.append(line)
        if shown and self._drawn:
            self.query_one(Log).write_lines(shown)
        self._show_title()

    def ended(self, why: str) -> None:
        """The stream ended (`why`: "ended", or the error that ended it)."""
        if self._partial:
            self.add(b"\n")
        self._state = why
        self._show_title()

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(self._kept)

    @property
    def shown(self) -> tuple[str, ...]:
        return tuple(self.query_one(Log).lines)

    def _show_title(self) -> None:
        if not self._drawn:
            return
        title = Text()
        title.append(f" {literal(self.replica).plain} ", style="bold reverse")
        title.append(f" on {literal(self.host).plain}  the last {self.lines} lines, then live · ")
        title.append(self._state, style="red" if self._state not in ("reading…", "following", "ended") else "dim")
        if self._filter:
            title.append(f"  filter: {literal(self._filter).plain}", style="yellow")
        self.query_one("#log-title", Static).update(title)

    def following(self) -> None:
        self._state = "following"
        self._show_title()

    # --- keys

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._filter = event.value
        matches = host_matcher(self._filter)
        log = self.query_one(Log)
        log.clear()
        log.write_lines([line for line in self._kept if matches(line)])
        self._show_title()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one(Log).focus()

    def action_close(self) -> None:
        """Esc: clear the filter first, then close (the app's reader stops with the screen)."""
        box = self.query_one("#filter", Input)
        if box.display or self._filter:
            box.value = ""
            box.display = False
            self.query_one(Log).focus()
            return
        self.dismiss(None)
