"""Per service: desired/running/healthy, where its replicas run, its constraints and why any replica is unplaced."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from console.derive import ServiceView, joined, service_views
from console.screens.base import LiveScreen
from console.view import ConsoleView

COLUMNS = (
    ("SERVICE", "service", 12),
    ("DESIRED", "desired", 7),
    ("RUNNING", "running", 7),
    ("HEALTHY", "healthy", 7),
    ("HOSTS", "hosts", 5),
    ("BY ZONE", "zones", 24),
    ("UNPLACED", "unplaced", 8),
    ("CONSTRAINTS", "constraints", 30),
)


def _count(value: int, desired: int) -> Text:
    return Text(str(value), style="green" if value >= desired else "bold red", justify="right")


class ServicesScreen(LiveScreen):
    SCOPE = "services"

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[str, ServiceView] = {}

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="services", cursor_type="row", zebra_stripes=True)
        yield Static(id="service-detail", classes="panel")

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one("#services", DataTable)
        for label, key, width in COLUMNS:
            table.add_column(label, key=key, width=width)

    def show(self, view: ConsoleView) -> None:
        table: DataTable[Any] = self.query_one("#services", DataTable)
        views = {v.name: v for v in service_views(view.snapshot)}
        if list(views) != list(self._views):
            table.clear()
            for name in views:
                table.add_row(*self._cells(views[name]), key=name)
        else:
            for name, service in views.items():
                if service != self._views[name]:
                    for (_, key, _), cell in zip(COLUMNS, self._cells(service), strict=True):
                        table.update_cell(name, key, cell)
        self._views = views
        self._show_detail()

    def _cells(self, view: ServiceView) -> tuple[object, ...]:
        return (
            view.name,
            Text(str(view.desired), justify="right"),
            _count(view.running, view.desired),
            _count(view.healthy, view.desired),
            Text(str(len(view.by_host)), justify="right"),
            joined(f"{z}:{n}" for z, n in view.by_zone.items()),
            Text(str(len(view.unplaced)), style="bold red" if view.unplaced else "dim", justify="right"),
            joined(view.constraints),
        )

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        table: DataTable[Any] = self.query_one("#services", DataTable)
        if not table.row_count:
            return
        name = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        view = self._views.get(name)
        if view is None:
            return
        text = Text(f"{view.name}", style="bold")
        text.append(f"  {view.running}/{view.desired} running, {view.healthy} healthy")
        if view.starting or view.unhealthy:
            text.append(f", {view.starting} starting, {view.unhealthy} unhealthy", style="yellow")
        text.append("\n")
        text.append("Constraints: ", style="bold")
        text.append(joined(view.constraints) + "\n")
        text.append("By zone: ", style="bold")
        text.append(joined(f"{z} {n}" for z, n in view.by_zone.items()) + "\n")
        text.append("By host:\n", style="bold")
        for host, replicas in view.by_host.items():
            text.append(f"  {host:<12} {joined(replicas)}\n")
        if view.unplaced:
            text.append("Unplaced:\n", style="bold red")
            for replica, why in view.unplaced.items():
                text.append(f"  {replica}: {why}\n", style="red")
        self.query_one("#service-detail", Static).update(text)
