"""Per service: desired/running/healthy, where its replicas run, its constraints and why any replica is unplaced.

`/` filters by name, Shift+letter sorts by a column (numbers largest first), Enter opens the service's
detail view (its replicas, events and constraints, whole).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Input, Static

from console.actions import bindings
from console.derive import AutoscaleView, ServiceView, host_matcher, joined, service_views
from console.formatting import cut
from console.messages import CommandLineOpened, ServiceChosen
from console.screens.base import FilteredScreen
from console.screens.detail import DetailScreen, autoscale_line, service_detail
from console.view import ConsoleView
from core.engine.api import Snapshot

# label, key, width, priority (the highest go first when the terminal is narrow; 0 never), sort key
COLUMNS: tuple[tuple[str, str, int, int, Callable[[ServiceView], Any]], ...] = (
    ("SERVICE", "service", 12, 0, lambda v: v.name),
    ("DESIRED", "desired", 7, 1, lambda v: v.desired),
    ("RUNNING", "running", 7, 0, lambda v: v.running),
    ("HEALTHY", "healthy", 7, 1, lambda v: v.healthy),
    ("HOSTS", "hosts", 5, 2, lambda v: len(v.by_host)),
    ("BY ZONE", "zones", 24, 4, lambda v: joined(f"{z}:{n}" for z, n in v.by_zone.items())),
    ("UNPLACED", "unplaced", 8, 1, lambda v: len(v.unplaced)),
    ("CONSTRAINTS", "constraints", 30, 3, lambda v: joined(v.constraints)),
    # only while a service autoscales: measured/target cpu, and the last decision (its words: Enter, or events)
    ("CPU/TARGET", "cpu", 10, 2, lambda v: -1.0 if v.autoscale is None else (v.autoscale.ratio or 0.0)),
    ("LAST SCALE", "scaled", 21, 5, lambda v: v.autoscale.last.at if v.autoscale and v.autoscale.last else 0.0),
)
NUMERIC = {"desired", "running", "healthy", "hosts", "unplaced", "cpu", "scaled"}


def _count(value: int, desired: int) -> Text:
    return Text(str(value), style="green" if value >= desired else "bold red", justify="right")


def _ratio(scale: AutoscaleView | None) -> Text:
    """Measured/target cpu: yellow above the target's tolerance (a scale-up is due), dim below it."""
    if scale is None:
        return Text("—", style="dim", justify="right")
    return Text(scale.ratio_text(), style={"up": "yellow", "down": "dim"}.get(scale.due, ""), justify="right")


AUTOSCALE_COLUMNS = frozenset({"cpu", "scaled"})


def fitting_columns(width: int, autoscaled: bool = False) -> list[int]:
    """Indexes of the columns that fit in `width`, dropping the least important first (the autoscale columns
    only appear while a service autoscales)."""
    keep = [i for i, c in enumerate(COLUMNS) if autoscaled or c[1] not in AUTOSCALE_COLUMNS]
    total = sum(COLUMNS[i][2] + 2 for i in keep) + 2
    for i in sorted(keep, key=lambda i: (-COLUMNS[i][3], -i)):
        if total <= width or COLUMNS[i][3] == 0:
            break
        keep.remove(i)
        total -= COLUMNS[i][2] + 2
    return keep


class ServicesScreen(FilteredScreen):
    SCOPE = "services"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[str, ServiceView] = {}
        self._columns: list[int] = []
        self._sort = ""  # "": the order of cluster.toml
        self._reverse = False
        self._chosen: str | None = None  # `:svc NAME` arrived: put the cursor there once its row exists
        self._autoscaled = False  # some service autoscales: its columns are shown
        self._drawn_snapshot: Snapshot | None = None  # the services were last derived from it …
        self._drawn_events = -1  # … and this many events

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="services", cursor_type="row", zebra_stripes=True)
        yield Static(id="service-detail", classes="panel")
        yield Input(placeholder="filter services: substring or regex over the name", id="filter")

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#services", DataTable)

    def on_mount(self) -> None:
        self._fit()

    def on_resize(self) -> None:
        if self._fit():
            self.arrange_rows()

    def _fit(self) -> bool:
        columns = fitting_columns(self.size.width or 80, self._autoscaled)
        if columns == self._columns:
            return False
        self._columns = columns
        table = self.table
        table.clear(columns=True)
        for i in columns:
            label, key, width = COLUMNS[i][:3]
            table.add_column(label, key=key, width=width)
        return True

    def show(self, view: ConsoleView) -> None:
        # Deriving the services walks every replica (~30 ms at 1,000 hosts): not again for the view already shown
        # (a screen switch back here), as the events are the same when their count is.
        if view.snapshot is self._drawn_snapshot and view.event_count == self._drawn_events:
            self._go_to_chosen()
            self._show_detail()
            return
        self._drawn_snapshot, self._drawn_events = view.snapshot, view.event_count
        views = {v.name: v for v in service_views(view.snapshot, view.events)}
        if views != self._views:
            self._views = views
            self._autoscaled = any(v.autoscale is not None for v in views.values())
            self._fit()
            self.arrange_rows()
        self._go_to_chosen()
        self._show_detail()

    def arrange_rows(self) -> None:
        table = self.table
        current = self.selected
        matches = host_matcher(self._filter)
        shown = [v for v in self._views.values() if matches(v.name)]
        if self._sort:
            key = next(c[4] for c in COLUMNS if c[1] == self._sort)
            shown.sort(key=key, reverse=self._reverse)
        table.clear()
        for service in shown:
            cells = self._cells(service)
            table.add_row(*(cells[i] for i in self._columns), key=service.name)
        for i in self._columns:
            label, column, width = COLUMNS[i][:3]
            marked = column == self._sort
            text = Text(label if not marked else f"{label[: width - 2]} {'▼' if self._reverse else '▲'}")
            table.columns[column].label = text  # type: ignore[index]
        names = [v.name for v in shown]
        if current in names:
            table.move_cursor(row=names.index(current), animate=False)

    def _cells(self, view: ServiceView) -> tuple[object, ...]:
        return (
            view.name,
            Text(str(view.desired), justify="right"),
            _count(view.running, view.desired),
            _count(view.healthy, view.desired),
            Text(str(len(view.by_host)), justify="right"),
            cut(joined(f"{z}:{n}" for z, n in view.by_zone.items()), COLUMNS[5][2]),
            Text(str(len(view.unplaced)), style="bold red" if view.unplaced else "dim", justify="right"),
            cut(joined(view.constraints), COLUMNS[7][2]),
            _ratio(view.autoscale),
            Text("—", style="dim") if view.autoscale is None else cut(view.autoscale.last_text(), COLUMNS[9][2]),
        )

    @property
    def selected(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    # --- sort

    def sort_by(self, column: str, *, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self._reverse if column == self._sort else column in NUMERIC
        self._sort, self._reverse = column, reverse
        self.arrange_rows()

    def action_sort(self, column: str) -> None:
        self.sort_by(column)

    def action_sort_reverse(self) -> None:
        self.sort_by(self._sort, reverse=not self._reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    # --- scale, `:svc NAME`

    def action_scale(self) -> None:
        """k9s' `s`: the command line, filled in with the service and waiting for the count."""
        if (name := self.selected) is not None:
            self.post_message(CommandLineOpened(f"scale {name} "))

    def action_load(self) -> None:
        """Demo fleets: the command line, filled in with the service and waiting for the share of its request."""
        if (name := self.selected) is not None:
            self.post_message(CommandLineOpened(f"load {name} "))

    def on_service_chosen(self, message: ServiceChosen) -> None:
        self._chosen = message.service
        self._go_to_chosen()

    def _go_to_chosen(self) -> None:
        if self._chosen is None or self._chosen not in self._views:
            return
        table = self.table
        if self._chosen not in table.rows:  # filtered away: show every service so the cursor can land
            self.clear_filter()
        table.move_cursor(row=table.get_row_index(self._chosen))
        self._chosen = None

    # --- detail

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_details()

    def action_details(self) -> None:
        name = self.selected
        view = self._views.get(name or "")
        if view is not None:
            self.app.push_screen(DetailScreen(f"Service {view.name}", service_detail(view, self.view.events)))

    def _show_detail(self) -> None:
        view = self._views.get(self.selected or "")
        if view is None:
            return
        text = Text(f"{view.name}", style="bold")
        text.append(f"  {view.running}/{view.desired} running, {view.healthy} healthy")
        if view.starting or view.unhealthy:
            text.append(f", {view.starting} starting, {view.unhealthy} unhealthy", style="yellow")
        text.append("   (Enter: whole detail)\n")
        text.append("Constraints: ", style="bold")
        text.append(joined(view.constraints) + "\n")
        text.append("By zone: ", style="bold")
        text.append(joined(f"{z} {n}" for z, n in view.by_zone.items()) + "\n")
        if view.autoscale is not None:
            text.append("Autoscale: ", style="bold")
            text.append(f"{autoscale_line(view.autoscale)}; last {view.autoscale.last_text()}\n")
        text.append("By host:\n", style="bold")
        for host, replicas in view.by_host.items():
            text.append(f"  {host:<12} {joined(replicas)}\n")
        if view.unplaced:
            text.append("Unplaced:\n", style="bold red")
            for replica, why in view.unplaced.items():
                text.append(f"  {replica}: {why}\n", style="red")
        self.query_one("#service-detail", Static).update(text)
