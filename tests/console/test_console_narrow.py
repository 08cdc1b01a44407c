"""At 80 columns the failover table's last column ends in `…` when cut (issue 12, items 3 and 4)."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

from textual.widgets import DataTable, Static

from console.app import LoadmasterApp
from console.derive import joined
from console.screens.failover import FailoverScreen
from tests.console.test_console_app import cell


async def test_the_failover_tables_degraded_services_end_in_an_ellipsis_when_cut(fake: ModuleType) -> None:
    snapshot = fake.small_snapshot()
    lost = replace(snapshot.failover[0], degraded=("batch", "cache", "web", "worker", "payments-api"))
    engine = fake.FakeEngine(replace(snapshot, failover=(lost, *snapshot.failover[1:])))
    key, whole = f"{lost.scope}:{lost.target}", joined(lost.degraded, empty="")
    app = LoadmasterApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        assert isinstance(app.screen, FailoverScreen)
        table: DataTable[Any] = app.screen.query_one("#failover", DataTable)
        shown = cell(table, key, "degraded")
        assert len(whole) > len(shown) and shown.endswith("…") and whole.startswith(shown[:-1])
        # the column fits the screen: the table's last column ends inside 80 columns
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80 - 2
        headline = app.screen.query_one("#failover-headline", Static).render_line(0).text.rstrip()
        assert headline.endswith("…")  # "… Zones it cannot lose: eu-1, eu-2." is longer than 80
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        assert cell(table, key, "degraded") == whole
