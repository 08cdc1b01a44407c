"""The default screen: one row per host, updated in place cell by cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Input

from console.actions import bindings
from console.derive import HostLoad, down_reason, host_matcher, host_search_text, mem_used
from console.formatting import age, cpu_bar, cut, level_style, mem_bar, percent, size, sparkline
from console.messages import DemoHostToggled, HostHoldAsked, HostOpened, WhatIfAsked
from console.screens.base import FilteredScreen
from console.view import ConsoleView
from console.widgets.keyed_table import Cell, KeyedTable, TableColumn
from core.engine.api import Snapshot
from core.model import Host, HostState, Resources

TREND = 10  # samples in the sparkline

STATE_STYLE = {
    HostState.UP: "green",
    HostState.SUSPECT: "bold yellow",
    HostState.DOWN: "bold red",
    HostState.DRAINING: "cyan",
    HostState.KEY_MISMATCH: "bold white on red",
    HostState.UNSUPPORTED: "magenta",
    HostState.MISBEHAVING: "bold magenta",
    HostState.UNKNOWN: "dim",
}
STATE_ORDER = {s: i for i, s in enumerate(STATE_STYLE)}
STATE_WIDTH = 13  # "down: new key", "down: refused": all columns still fit 120; at 80 SEEN gives way


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    render: Callable[[Any], Any]  # signature → cell
    sort_key: Callable[[Any], Any]  # signature → comparable
    priority: int  # at a narrow terminal the highest numbers are dropped first; 0 never is
    numeric: bool = True  # sorted largest first when chosen


def sort_label(label: str, width: int, reverse: bool, sorted_here: bool) -> Text:
    """A header label; the sort mark always shows, the label is cut (with …) to make room for it."""
    if not sorted_here:
        return Text(label)
    room = width - 2
    shown = label if len(label) <= room else label[: max(0, room - 1)] + "…"
    return Text(f"{shown} {'▼' if reverse else '▲'}", style="bold")


def _fraction(sig: tuple[int, int]) -> float:
    used, cap = sig
    return used / cap if cap else float(used > 0)


def _state_cell(sig: tuple[HostState, str | None, str | None]) -> Text:
    state, hold, reason = sig
    if hold is not None and state is HostState.UP:  # an operator's hold says more than "up" (cordoned, drained)
        return Text(hold, style="bold yellow")
    text = Text(state.value, style=STATE_STYLE.get(state, ""))
    if reason is not None and reason != state.value:  # why it is not up; host detail has the whole error
        text.append(f": {reason}", style=STATE_STYLE.get(state, ""))
    return cut(text, STATE_WIDTH)


def _cpu_cell(value: float | None) -> Text:
    return Text(percent(value), style=level_style(value / 100) if value is not None else "dim", justify="right")


COLUMNS = (
    Column("host", "HOST", 10, str, str, 0, numeric=False),
    Column(
        "state", "STATE", STATE_WIDTH, _state_cell, lambda s: (STATE_ORDER.get(s[0], 99), s[1] or ""), 0, numeric=False
    ),
    Column("labels", "ZONE/LABELS", 14, str, str, 6, numeric=False),
    Column("cpu_req", "CPU REQ/CAP", 16, lambda s: cpu_bar(s[0], s[1], width=6), _fraction, 1),
    Column("mem_req", "MEM REQ/CAP", 18, lambda s: mem_bar(s[0], s[1], width=6), _fraction, 1),
    Column("cpu", "CPU%", 4, _cpu_cell, lambda v: -1.0 if v is None else v, 3),
    Column(
        "trend", "CPU TREND", TREND, lambda s: Text(sparkline(s, TREND), style="cyan"), lambda s: s[-1] if s else -1, 7
    ),
    Column("mem", "MEM USE", 7, lambda v: Text(size(v), justify="right"), lambda v: -1 if v is None else v, 5),
    Column("replicas", "REPL", 4, lambda n: Text(str(n), justify="right"), int, 2),
    Column("seen", "SEEN", 4, lambda s: age(s), lambda s: float("inf") if s is None else s, 4),
)
COLUMN_INDEX = {c.key: i for i, c in enumerate(COLUMNS)}

Signature = tuple[Any, ...]


def host_signature(
    snapshot: Snapshot, host: Host, cap: Resources, load: HostLoad | None, trend: tuple[float, ...]
) -> Signature:
    """Everything a row shows, as plain values: cells are re-rendered only when their part changes."""
    obs = snapshot.hosts.get(host.name)
    load = load or HostLoad()
    zone = host.labels.get("zone", "—")
    others = " ".join(v for k, v in host.labels.items() if k != "zone")
    seen = None if obs is None or obs.last_seen is None else round(snapshot.at - obs.last_seen)
    live = obs if obs is not None and obs.state.reachable else None  # a down host's figures are history
    return (
        host.name,
        (obs.state if obs else HostState.UNKNOWN, snapshot.holds.get(host.name), down_reason(obs)),
        f"{zone} {others}".strip(),
        (load.cpu, cap.cpu),
        (load.mem, cap.mem),
        live.cpu_percent if live else None,
        trend[-TREND:],
        mem_used(live),
        load.replicas,
        seen,
    )


class FleetScreen(FilteredScreen):
    SCOPE = "fleet"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self) -> None:
        super().__init__()
        self._signatures: dict[str, Signature] = {}
        self._cells: dict[str, list[Cell | None]] = {}  # rendered lazily, per changed cell
        self._search: dict[str, str] = {}
        self._sort = "host"
        self._reverse = False

    def compose_body(self) -> ComposeResult:
        columns = [TableColumn(c.key, c.label, c.width, c.priority) for c in COLUMNS]
        yield KeyedTable(columns, self.row_cells, id="fleet")
        yield Input(placeholder="filter hosts: substring or regex over name and labels", id="filter")

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#fleet", KeyedTable)

    @property
    def selected_host(self) -> str | None:
        return self.table.cursor_key

    def row_cells(self, name: str) -> list[Cell]:
        """A host's cells, rendering only those whose part of the signature changed since last drawn."""
        cells = self._cells[name]
        sig = self._signatures[name]
        for i, cell in enumerate(cells):
            if cell is None:
                cells[i] = COLUMNS[i].render(sig[i])
        return cells  # type: ignore[return-value]

    # --- drawing

    def show(self, view: ConsoleView) -> None:
        snapshot = view.snapshot
        old = self._signatures
        new: dict[str, Signature] = {}
        changed: list[str] = []
        sort_index = COLUMN_INDEX[self._sort]
        resort = False
        for host in snapshot.config.hosts:
            name = host.name
            cap = view.capacities.of(snapshot, host)
            sig = host_signature(snapshot, host, cap, view.loads.get(name), view.history.samples(name))
            new[name] = sig
            before = old.get(name)
            if before is None:
                self._cells[name] = [None] * len(COLUMNS)
            elif before != sig:
                cells = self._cells[name]
                for i, (a, b) in enumerate(zip(before, sig, strict=True)):
                    if a != b:
                        cells[i] = None
                        resort = resort or i == sort_index
                changed.append(name)
        self._signatures = new
        if list(old) != list(new):
            self._search = {h.name: host_search_text(h.name, h.labels) for h in snapshot.config.hosts}
            self._cells = {name: self._cells.get(name, [None] * len(COLUMNS)) for name in new}
            self.arrange_rows()
            return
        self.table.changed(changed)
        if resort:
            self.arrange_rows()

    def arrange_rows(self) -> None:
        """Filter and sort: the table shows the matching hosts in order; no row is rebuilt."""
        matches = host_matcher(self._filter)
        index = COLUMN_INDEX[self._sort]
        key = COLUMNS[index].sort_key
        shown = [n for n in self._signatures if matches(self._search[n])]
        signatures = self._signatures
        shown.sort(key=lambda n: (key(signatures[n][index]), n), reverse=self._reverse)
        self.table.show(shown)
        for column in COLUMNS:
            label = sort_label(column.label, column.width, self._reverse, column.key == self._sort)
            self.table.set_label(column.key, label)

    # --- sort

    def sort_by(self, column: str, *, reverse: bool | None = None) -> None:
        """Sort by `column`; a new numeric column sorts largest first (k9s), the same column again flips."""
        if reverse is None:
            reverse = not self._reverse if column == self._sort else COLUMNS[COLUMN_INDEX[column]].numeric
        self._sort, self._reverse = column, reverse
        self.arrange_rows()

    def action_sort(self, column: str) -> None:
        self.sort_by(column)

    def action_sort_reverse(self) -> None:
        self.sort_by(self._sort, reverse=not self._reverse)

    def on_keyed_table_header_selected(self, event: KeyedTable.HeaderSelected) -> None:
        self.sort_by(event.column)

    # --- drill down and host actions

    def on_keyed_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.post_message(HostOpened(event.key))

    def action_details(self) -> None:
        if (host := self.selected_host) is not None:
            self.post_message(HostOpened(host))

    def action_what_if(self) -> None:
        if (host := self.selected_host) is not None:
            self.post_message(WhatIfAsked(host))

    def action_demo_toggle(self) -> None:
        if (host := self.selected_host) is not None:
            self.post_message(DemoHostToggled(host))

    def action_hold(self, verb: str) -> None:
        if (host := self.selected_host) is not None:
            self.post_message(HostHoldAsked(host, verb))
