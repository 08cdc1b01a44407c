"""The default screen: one row per host, updated in place cell by cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input

from console.derive import HostLoad, capacity, host_matcher, host_search_text, mem_used
from console.formatting import age, cpu_bar, level_style, mem_bar, percent, size, sparkline
from console.screens.base import LiveScreen
from core.engine.api import Snapshot
from core.model import HostState

TREND = 10  # samples in the sparkline

STATE_STYLE = {
    HostState.UP: "green",
    HostState.SUSPECT: "bold yellow",
    HostState.DOWN: "bold red",
    HostState.DRAINING: "cyan",
    HostState.KEY_MISMATCH: "bold white on red",
    HostState.UNSUPPORTED: "magenta",
    HostState.UNKNOWN: "dim",
}
STATE_ORDER = {s: i for i, s in enumerate(STATE_STYLE)}


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    render: Callable[[Any], Any]  # signature → cell
    sort_key: Callable[[Any], Any]  # signature → comparable


def _fraction(sig: tuple[int, int]) -> float:
    used, cap = sig
    return used / cap if cap else float(used > 0)


def _state_cell(state: HostState) -> Text:
    return Text(state.value, style=STATE_STYLE.get(state, ""))


def _cpu_cell(value: float | None) -> Text:
    return Text(percent(value), style=level_style(value / 100) if value is not None else "dim", justify="right")


COLUMNS = (
    Column("host", "HOST", 10, str, str),
    Column("state", "STATE", 8, _state_cell, lambda s: STATE_ORDER.get(s, 99)),
    Column("labels", "ZONE/LABELS", 14, str, str),
    Column("cpu_req", "CPU REQ/CAP", 16, lambda s: cpu_bar(*s, width=6), _fraction),
    Column("mem_req", "MEM REQ/CAP", 18, lambda s: mem_bar(*s, width=6), _fraction),
    Column("cpu", "CPU%", 4, _cpu_cell, lambda v: -1.0 if v is None else v),
    Column(
        "trend", "CPU TREND", TREND, lambda s: Text(sparkline(s, TREND), style="cyan"), lambda s: s[-1] if s else -1
    ),
    Column("mem", "MEM USE", 7, lambda v: Text(size(v), justify="right"), lambda v: -1 if v is None else v),
    Column("replicas", "REPL", 4, lambda n: Text(str(n), justify="right"), int),
    Column("seen", "SEEN", 4, lambda s: age(s), lambda s: float("inf") if s is None else s),
)
COLUMN_INDEX = {c.key: i for i, c in enumerate(COLUMNS)}

Signature = tuple[Any, ...]


def host_signature(snapshot: Snapshot, name: str, load: HostLoad | None, trend: tuple[float, ...]) -> Signature:
    """Everything a row shows, as plain values: cells are re-rendered only when their part changes."""
    host = snapshot.config.host(name)
    obs = snapshot.hosts.get(name)
    cap = capacity(snapshot, name)
    load = load or HostLoad()
    zone = host.labels.get("zone", "—")
    others = " ".join(v for k, v in host.labels.items() if k != "zone")
    seen = None if obs is None or obs.last_seen is None else round(snapshot.at - obs.last_seen)
    return (
        name,
        obs.state if obs else HostState.UNKNOWN,
        f"{zone} {others}".strip(),
        (load.cpu, cap.cpu),
        (load.mem, cap.mem),
        None if obs is None else obs.cpu_percent,
        trend[-TREND:],
        mem_used(obs),
        load.replicas,
        seen,
    )


class FleetScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("enter", "details", "Details", show=False),
        Binding("o", "sort_next", "Sort"),
        Binding("O", "sort_reverse", "Reverse", show=False),
        Binding("s", "what_if", "What if"),
        Binding("k", "demo_toggle", "Demo stop/start"),
        Binding("escape", "back", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._signatures: dict[str, Signature] = {}
        self._search: dict[str, str] = {}
        self._filter = ""
        self._sort = "host"
        self._reverse = False
        self._shown: list[str] = []  # host names in the table, in config order

    def compose_body(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column.label, key=column.key, width=column.width)
        yield table
        yield Input(placeholder="filter hosts: substring or regex over name and labels", id="filter")

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#fleet", DataTable)

    @property
    def selected_host(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    # --- drawing

    def show(self, snapshot: Snapshot) -> None:
        app = self.loadmaster
        names = [h.name for h in snapshot.config.hosts]
        changed: dict[str, list[int]] = {}
        old = self._signatures
        new: dict[str, Signature] = {}
        for name in names:
            sig = host_signature(snapshot, name, app.loads.get(name), app.history.samples(name))
            new[name] = sig
            before = old.get(name)
            if before != sig:
                changed[name] = [i for i in range(len(COLUMNS)) if before is None or before[i] != sig[i]]
        self._signatures = new
        if list(old) != names:
            self._search = {h.name: host_search_text(h.name, h.labels) for h in snapshot.config.hosts}
            self._rebuild()
            return
        table = self.table
        visible = set(self._shown)
        sort_index = COLUMN_INDEX[self._sort]
        resort = False
        with self.app.batch_update():
            for name, columns in changed.items():
                if name not in visible:
                    continue
                sig = new[name]
                for i in columns:
                    table.update_cell(name, COLUMNS[i].key, COLUMNS[i].render(sig[i]))
                resort = resort or sort_index in columns
            if resort:
                self._apply_sort()

    def _rebuild(self) -> None:
        """Only when the filter or the host list changes: DataTable cannot hide rows."""
        table = self.table
        keep = self.selected_host
        matches = host_matcher(self._filter)
        self._shown = [n for n in self._signatures if matches(self._search[n])]
        index = COLUMN_INDEX[self._sort]
        key = COLUMNS[index].sort_key
        order = sorted(self._shown, key=lambda n: (key(self._signatures[n][index]), n), reverse=self._reverse)
        with self.app.batch_update():
            table.clear()
            for name in order:
                sig = self._signatures[name]
                table.add_row(*(c.render(v) for c, v in zip(COLUMNS, sig, strict=True)), key=name)
            if keep in self._shown:
                table.move_cursor(row=table.get_row_index(keep), animate=False)
        self._label_columns()

    def _apply_sort(self) -> None:
        index = COLUMN_INDEX[self._sort]
        key = COLUMNS[index].sort_key
        signatures = self._signatures
        keep = self.selected_host
        self.table.sort("host", key=lambda name: (key(signatures[name][index]), name), reverse=self._reverse)
        if keep is not None:
            self.table.move_cursor(row=self.table.get_row_index(keep), animate=False)
        self._label_columns()

    def _label_columns(self) -> None:
        arrow = " ▼" if self._reverse else " ▲"
        for column in COLUMNS:
            label = column.label + (arrow if column.key == self._sort else "")
            self.table.columns[column.key].label = Text(label, style="bold" if column.key == self._sort else "")
        self.table.refresh()

    # --- filter

    def set_filter(self, pattern: str) -> None:
        if pattern != self._filter:
            self._filter = pattern
            self._rebuild()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()
        if not event.value:
            event.input.display = False

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self._filter:
            box.value = ""
            box.display = False
            self.set_filter("")
            self.table.focus()
        else:
            super().action_back()

    # --- sort

    def sort_by(self, column: str, *, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self._reverse if column == self._sort else False
        self._sort, self._reverse = column, reverse
        self._apply_sort()

    def action_sort_next(self) -> None:
        keys = [c.key for c in COLUMNS]
        self.sort_by(keys[(keys.index(self._sort) + 1) % len(keys)], reverse=False)

    def action_sort_reverse(self) -> None:
        self.sort_by(self._sort, reverse=not self._reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    # --- drill down and host actions

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.loadmaster.open_host(str(event.row_key.value))

    def action_details(self) -> None:
        if (host := self.selected_host) is not None:
            self.loadmaster.open_host(host)

    def action_what_if(self) -> None:
        if (host := self.selected_host) is not None:
            self.loadmaster.what_if(host)

    def action_demo_toggle(self) -> None:
        if (host := self.selected_host) is not None:
            self.loadmaster.toggle_demo_host(host)
