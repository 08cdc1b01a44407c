"""SVG snapshots of the main screens with fixed data (fixed times, no live clock, no blinking cursor).

Regenerate after an intended change with `pytest tests/console/test_console_snapshots.py --snapshot-update`
and look at the report before committing the new SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from console.app import LoadmasterApp
from tests.console.fleet_data import small_events

SIZE = (120, 40)
TICKS = 6  # poll cycles before the picture, so sparklines have a history


def app_after_ticks(
    fake: ModuleType, **snapshot_args: Any
) -> tuple[LoadmasterApp, Callable[[Pilot[None]], Awaitable[None]]]:
    engine = fake.FakeEngine(fake.small_snapshot(**snapshot_args), small_events())
    app = LoadmasterApp(engine)

    async def prepare(pilot: Pilot[None]) -> None:
        for widget in app.query(Input):
            widget.cursor_blink = False
        for _ in range(TICKS):
            engine.tick()
            await pilot.pause()

    return app, prepare


def test_fleet_screen(fake: ModuleType, snap_compare: Any) -> None:
    app, prepare = app_after_ticks(fake)
    assert snap_compare(app, terminal_size=SIZE, run_before=prepare)


def test_fleet_screen_read_only_filtered_and_sorted(fake: ModuleType, snap_compare: Any) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(demo=True))
    app = LoadmasterApp(engine, read_only=True)

    async def prepare(pilot: Pilot[None]) -> None:
        box = app.screen.query_one("#filter", Input)
        box.cursor_blink = False
        await pilot.press("slash", *"ssd", "enter", "o", "o", "o", "O")

    assert snap_compare(app, terminal_size=SIZE, run_before=prepare)


def test_plan_screen(fake: ModuleType, snap_compare: Any) -> None:
    app, prepare = app_after_ticks(fake)
    assert snap_compare(app, press=["3"], terminal_size=SIZE, run_before=prepare)


def test_failover_screen(fake: ModuleType, snap_compare: Any) -> None:
    app, prepare = app_after_ticks(fake)
    assert snap_compare(app, press=["4", "down", "down"], terminal_size=SIZE, run_before=prepare)


def test_host_screen(fake: ModuleType, snap_compare: Any) -> None:
    app, prepare = app_after_ticks(fake)
    assert snap_compare(app, press=["down", "down", "enter"], terminal_size=SIZE, run_before=prepare)
