"""SVG snapshots of the main screens with fixed data (fixed times, no live clock, no blinking cursor).

Regenerate after an intended change with `pytest tests/console/test_console_snapshots.py --snapshot-update`
and look at the report before committing the new SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.app import LoadmasterApp
from core.engine.events import Event, EventKind
from core.model import Autoscale
from tests.console.fleet_data import T0, small_events

TICKS = 6  # poll cycles before the picture, so sparklines have a history
LOG = (
    b"".join(f"2026-12-01T03:{i:02d}:00Z GET /items/{i} 200 {3 * i} ms\n".encode() for i in range(12))
    + b"2026-12-01T03:12:00Z ERROR a line longer than any terminal: "
    + b"x" * 220
    + b"\n"
)


def app_after_ticks(
    fake: ModuleType, **snapshot_args: Any
) -> tuple[LoadmasterApp, Callable[[Pilot[None]], Awaitable[None]]]:
    engine = fake.FakeEngine(fake.small_snapshot(**snapshot_args), small_events())
    engine.logs.put_nowait(LOG)  # what a replica's log view shows
    app = LoadmasterApp(engine)

    async def prepare(pilot: Pilot[None]) -> None:
        for widget in app.query(Input):
            widget.cursor_blink = False
        for _ in range(TICKS):
            engine.tick()
            await pilot.pause()

    return app, prepare


SIZES = {"80x24": (80, 24), "200x60": (200, 60)}  # the size operators still use, and a large one
# Every screen, detail view and dialog, reached by the keys an operator presses.
VIEWS = {
    "fleet": [],
    "host": ["down", "down", "enter"],
    "services": ["2"],
    "plan": ["3"],
    "failover": ["4", "down", "down"],
    "events": ["5"],
    "help": ["question_mark"],
    "approve": ["3", "a"],
    "export": ["3", "e"],
    "what_if": ["s"],
    "plan_action_detail": ["3", "enter"],
    "event_detail": ["5", "enter"],
    "service_detail": ["2", "enter"],
    "replica_log": ["down", "down", "enter", "l"],
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("view", list(VIEWS))
def test_every_view(fake: ModuleType, snap_compare: Any, view: str, size: str) -> None:
    app, prepare = app_after_ticks(fake)

    async def run_before(pilot: Pilot[None]) -> None:
        await prepare(pilot)
        await pilot.press(*VIEWS[view])
        await pilot.pause()
        for widget in app.screen.query(Input):
            widget.cursor_blink = False

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


def test_fleet_screen_read_only_filtered_and_sorted(fake: ModuleType, snap_compare: Any) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(demo=True))
    app = LoadmasterApp(engine, read_only=True)

    async def prepare(pilot: Pilot[None]) -> None:
        box = app.screen.query_one("#filter", Input)
        box.cursor_blink = False
        await pilot.press("slash", *"ssd", "enter", "S", "O")

    assert snap_compare(app, terminal_size=SIZES["80x24"], run_before=prepare)


@pytest.mark.parametrize("size", list(SIZES))
def test_services_of_an_autoscaled_fleet(fake: ModuleType, snap_compare: Any, size: str) -> None:
    """web autoscales: its measured/target cpu and last decision in the services table (CPU/TARGET, LAST SCALE,
    dropped first at 80 columns) and the panel below it."""
    snap = fake.small_snapshot(demo=True)  # a demo fleet: `l` sets a service's load
    services = tuple(
        replace(s, autoscale=Autoscale(4, 12, 0.6)) if s.name == "web" else s for s in snap.config.services
    )
    decision = Event(
        T0 - 10, EventKind.AUTOSCALE_UP, "autoscale.up web 4→6: cpu 0.92 of requested, target 0.6",
        data={"service": "web", "from": 4, "to": 6, "ratio": 0.92, "target": 0.6},
    )  # fmt: skip
    engine = fake.FakeEngine(replace(snap, config=replace(snap.config, services=services)), (*small_events(), decision))
    app = LoadmasterApp(engine)

    async def run_before(pilot: Pilot[None]) -> None:
        for _ in range(TICKS):
            engine.tick()
            await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        for widget in app.screen.query(Input):
            widget.cursor_blink = False

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
