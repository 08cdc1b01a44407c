"""The engine's event stream, newest at the bottom, filterable by substring or regex."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Input

from console.actions import bindings
from console.derive import host_matcher
from console.formatting import clock, cut
from console.screens.base import FilteredScreen
from console.screens.detail import DetailScreen, event_detail
from console.view import ConsoleView
from core.engine.events import Event, EventKind

KIND_STYLE = {
    EventKind.HOST_DOWN: "bold red",
    EventKind.HOST_KEY_MISMATCH: "bold red",
    EventKind.HOST_MISBEHAVING: "bold red",
    EventKind.ACTION_FAILED: "bold red",
    EventKind.REPLICA_CRASHED: "red",
    EventKind.CONFIG_INVALID: "red",
    EventKind.HOST_SUSPECT: "yellow",
    EventKind.FAILOVER_STARTED: "yellow",
    EventKind.HOST_UP: "green",
    EventKind.ACTION_DONE: "green",
    EventKind.APPLY_FINISHED: "green",
}


FIXED = (("TIME", "time", 8), ("EVENT", "kind", 17), ("HOST", "host", 10))
FIXED_WIDTH = sum(width + 2 for _, _, width in FIXED) + 2 + 2  # cell padding, the message's own, the scrollbar


def event_text(event: Event) -> str:
    """What the filter searches."""
    return " ".join(filter(None, (event.kind.value, event.host, str(event.replica or ""), event.message)))


class EventsScreen(FilteredScreen):
    SCOPE = "events"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self) -> None:
        super().__init__()
        self._seen = 0  # view.event_count when last drawn
        self._rows = 0  # row keys: a running number
        self._shown: dict[str, Event] = {}  # row key → its event, for the detail view
        self._message_width = 0

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter events: substring or regex over kind, host, replica and message", id="filter")

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        """The message takes what the terminal has left (cut with …; Enter shows it whole)."""
        table: DataTable[Any] = self.query_one("#events", DataTable)
        width = max(20, (self.size.width or 80) - FIXED_WIDTH)
        if width == self._message_width:
            return
        self._message_width = width
        table.clear(columns=True)
        for label, key, size in (*FIXED, ("MESSAGE", "msg", width)):
            table.add_column(label, key=key, width=size)

    def on_resize(self) -> None:
        before = self._message_width
        self._add_columns()
        if self._message_width != before:
            self.arrange_rows()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#events", DataTable)

    def show(self, view: ConsoleView) -> None:
        fresh = view.event_count - self._seen
        if not fresh:
            return
        if self._seen == 0 or fresh > len(view.events) or self.table.row_count > 2 * len(view.events):
            self.arrange_rows()
            return
        self._append(view.events[-fresh:])
        self._seen = view.event_count

    def arrange_rows(self) -> None:
        view = self.view
        self.table.clear()
        self._shown = {}
        self._seen = view.event_count
        self._append(view.events)

    def _append(self, events: Sequence[Event]) -> None:
        table = self.table
        follow = table.cursor_row >= table.row_count - 1
        matches = host_matcher(self._filter)
        for event in events:
            if not matches(event_text(event)):
                continue
            table.add_row(
                clock(event.at),
                Text(event.kind.value, style=KIND_STYLE.get(event.kind, "")),
                event.host or "",
                cut(event.message, self._message_width),
                key=str(self._rows),
            )
            self._shown[str(self._rows)] = event
            self._rows += 1
        if follow and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_details()

    def action_details(self) -> None:
        """The event under the cursor, whole: its message is never cut here."""
        table = self.table
        if not table.row_count:
            return
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        event = self._shown.get(key)
        if event is not None:
            self.app.push_screen(DetailScreen(f"Event: {event.kind.value}", event_detail(event)))
