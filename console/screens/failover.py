"""For every host and zone: does the cluster survive losing it, and what would move. Degraded rows stand out."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from console.actions import bindings
from console.derive import joined
from console.formatting import cut
from console.messages import HostOpened, WhatIfAsked
from console.screens.base import LiveScreen
from console.view import ConsoleView
from console.widgets.failover_text import failover_text
from core.model import FailoverPlan

COLUMNS = (
    ("SCOPE", "scope", 6),
    ("LOST", "target", 10),
    ("SURVIVES", "survives", 8),
    ("MOVES", "moves", 5),
    ("UNPLACED", "unplaced", 8),
    ("OTHERS MOVED", "others", 12),
    ("DEGRADED SERVICES", "degraded", 30),
)
DEGRADED_MIN = 10


def degraded_width(width: int) -> int:
    """The last column takes what the others leave (each cell pads 1 either side; 2 for the scrollbar),
    at least DEGRADED_MIN: at 80 columns it is cut, with a visible `…`; wide terminals show more of it."""
    others = sum(w + 2 for _, _, w in COLUMNS[:-1]) + 2 + 2
    return max(DEGRADED_MIN, width - others)


def plan_key(plan: FailoverPlan) -> str:
    return f"{plan.scope}:{plan.target}"


def _cells(plan: FailoverPlan, degraded: int) -> tuple[object, ...]:
    style = "" if plan.survives else "bold red"
    return (
        Text(plan.scope, style=style),
        Text(plan.target, style=style),
        Text("yes", style="green") if plan.survives else Text("NO", style="bold white on red"),
        Text(str(len(plan.moves)), justify="right", style=style),
        Text(str(len(plan.unplaced)), justify="right", style=style),
        Text(str(plan.others_moved), justify="right", style=style),
        cut(joined(plan.degraded, empty=""), degraded, style=style),
    )


class FailoverScreen(LiveScreen):
    SCOPE = "failover"
    BINDINGS: ClassVar[list[BindingType]] = bindings(SCOPE)

    def __init__(self) -> None:
        super().__init__()
        self._plans: dict[str, FailoverPlan] = {}
        self._degraded = 0  # the last column's width, fitted to the terminal

    def compose_body(self) -> ComposeResult:
        yield Static(id="failover-headline")
        yield DataTable(id="failover", cursor_type="row", zebra_stripes=True)
        yield Static(id="failover-detail", classes="panel")

    def on_mount(self) -> None:
        self._fit()

    def on_resize(self) -> None:
        if self._fit():
            self.show(self.view)

    def _fit(self) -> bool:
        degraded = degraded_width(self.size.width or 80)
        if degraded == self._degraded:
            return False
        self._degraded = degraded
        table: DataTable[Any] = self.query_one("#failover", DataTable)
        table.clear(columns=True)
        self._plans = {}  # every row again, cut to the new width
        for label, key, width in COLUMNS[:-1]:
            table.add_column(label, key=key, width=width)
        label, key, _ = COLUMNS[-1]
        table.add_column(cut(label, degraded), key=key, width=degraded)
        return True

    def show(self, view: ConsoleView) -> None:
        plans = {plan_key(p): p for p in view.snapshot.failover}
        table: DataTable[Any] = self.query_one("#failover", DataTable)
        if list(plans) != list(self._plans):
            table.clear()
            for key, plan in plans.items():
                table.add_row(*_cells(plan, self._degraded), key=key)
        else:
            for key, plan in plans.items():
                if plan != self._plans[key]:
                    for (_, column, _), cell in zip(COLUMNS, _cells(plan, self._degraded), strict=True):
                        table.update_cell(key, column, cell)
        self._plans = plans
        lost = [p.target for p in plans.values() if p.scope == "host" and not p.survives]
        headline = Text()
        if not plans:
            headline.append("No failover plans computed yet.", style="dim")
        elif lost:
            headline.append(f"Losing any of {', '.join(lost)} degrades a service.", style="bold red")
        else:
            headline.append("The cluster survives the loss of any single host.", style="bold green")
        zones = [p.target for p in plans.values() if p.scope != "host" and not p.survives]
        if zones:
            headline.append(f"  Zones it cannot lose: {', '.join(zones)}.", style="red")
        self.query_one("#failover-headline", Static).update(headline)
        self._show_detail()

    @property
    def selected(self) -> FailoverPlan | None:
        table: DataTable[Any] = self.query_one("#failover", DataTable)
        if not table.row_count:
            return None
        return self._plans.get(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()
        self.refresh_bindings()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_details()

    def _show_detail(self) -> None:
        plan = self.selected
        self.query_one("#failover-detail", Static).update(failover_text(plan) if plan else "")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("what_if", "details"):
            plan = self.selected
            return True if plan is not None and plan.scope == "host" else None
        return super().check_action(action, parameters)

    def action_what_if(self) -> None:
        plan = self.selected
        if plan is not None and plan.scope == "host":
            self.post_message(WhatIfAsked(plan.target))

    def action_details(self) -> None:
        plan = self.selected
        if plan is not None and plan.scope == "host":
            self.post_message(HostOpened(plan.target))
