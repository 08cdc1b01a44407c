"""Pilot tests: every screen and key of the console, driven against the in-memory engine."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from console.actions import ACTIONS, key_label
from console.app import LoadmasterApp
from console.palette import available
from console.screens.confirm import ConfirmScreen
from console.screens.detail import DetailScreen
from console.screens.events import EventsScreen
from console.screens.export import ExportScreen
from console.screens.failover import FailoverScreen
from console.screens.fleet import COLUMNS, FleetScreen
from console.screens.help import HelpScreen
from console.screens.host import HostScreen
from console.screens.plan import PlanScreen
from console.screens.services import ServicesScreen
from console.screens.whatif import WhatIfScreen
from console.widgets.keyed_table import KeyedTable
from console.widgets.spinner import Spinner
from core.engine.events import EventKind
from core.model import Action, ActionKind, HostState, ReplicaId
from tests.console.fleet_data import small_events

SIZE = (120, 40)


def rows(table: DataTable[Any] | KeyedTable) -> list[str]:
    if isinstance(table, KeyedTable):
        return table.visible_keys
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


def cell(table: DataTable[Any] | KeyedTable, row: str, column: str) -> str:
    value = table.get_cell(row, column)
    return getattr(value, "plain", str(value))


def text_of(widget: Static) -> str:
    return str(widget.render())


async def settle(app: LoadmasterApp, pilot: Pilot[None]) -> None:
    """Wait for the engine calls in flight (the event follower runs for the app's lifetime)."""
    busy = [w for w in app.workers if w.group != "engine-events"]
    if busy:  # an empty list would mean "all workers", the follower included
        await app.workers.wait_for_complete(busy)
    await pilot.pause()
    await pilot.pause()


def palette_titles(app: LoadmasterApp) -> list[str]:
    return [action.title for action, _node in available(app, app.screen)]


def notifications(app: LoadmasterApp) -> list[str]:
    return [n.message for n in app._notifications]


# --- fleet


async def test_fleet_lists_every_host_with_requested_capacity_and_live_use(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.table
        assert rows(table) == [f"node-{c}" for c in "abcdefgh"]
        assert cell(table, "node-c", "cpu_req").endswith("4.75/8.0")  # 4750m of 8 cores, exactly (item 11)
        assert cell(table, "node-c", "mem_req").endswith("6.0/16.0G")
        assert cell(table, "node-h", "state") == "down: refused"
        assert cell(table, "node-h", "seen") == "40s"
        assert cell(table, "node-c", "replicas").strip() == "5"
        summary = text_of(app.screen.query_one("#summary", Static))
        assert "6 up · 1 suspect · 1 down" in summary
        assert "fits on 5 hosts, runs on 7" in summary
        assert "plan pending: 9 actions" in summary
        assert "auto-apply off" in summary
        assert "READ-ONLY" not in summary


async def test_fleet_updates_changed_cells_in_place_without_rebuilding(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.table
        rearranged: list[object] = []
        drawn: list[tuple[str, int]] = []
        table.show = lambda keys: rearranged.append(keys)  # type: ignore[method-assign]
        original = table._cell_strip

        def spy(value: object, width: int) -> object:
            drawn.append((getattr(value, "plain", str(value)), width))
            return original(value, width)  # type: ignore[arg-type]

        table._cell_strip = spy  # type: ignore[method-assign]
        before = {name: list(screen.row_cells(name)) for name in rows(table)}
        engine.tick()
        await pilot.pause()
        assert rearranged == []  # same rows, same order: nothing rebuilt or re-sorted
        after = {name: screen.row_cells(name) for name in rows(table)}
        changed = {
            (name, c.key) for name in after for i, c in enumerate(COLUMNS) if after[name][i] is not before[name][i]
        }
        assert ("node-a", "cpu") in changed and ("node-a", "trend") in changed
        assert {key for _, key in changed} <= {"cpu", "trend"}  # the rest kept their rendered cells
        assert ("node-h", "cpu") not in changed  # a down host has no new figures
        assert len(drawn) == len(changed)  # only the changed cells were drawn again
        assert cell(table, "node-a", "cpu") != getattr(before["node-a"][COLUMNS.index(COLUMNS[5])], "plain", "")


async def test_filter_by_substring_regex_and_label(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.table
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#filter", Input)
        await pilot.press(*"eu-2")
        assert rows(table) == ["node-c", "node-d", "node-h"]
        app.screen.query_one("#filter", Input).value = "^node-[ab] "
        await pilot.pause()
        assert rows(table) == ["node-a", "node-b"]
        app.screen.query_one("#filter", Input).value = "disk=ssd"
        await pilot.pause()
        assert rows(table) == ["node-c", "node-e", "node-g"]
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is table and table.row_count == 3
        await pilot.press("escape")  # clears it
        assert table.row_count == 8
        assert not app.screen.query_one("#filter", Input).display


async def test_sort_by_key_reverse_and_header_click(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.table
        await pilot.press("S")  # Shift+S: by state (k9s: Shift+letter per column)
        assert rows(table)[-2:] == ["node-g", "node-h"]  # up, …, suspect, down
        assert str(table._labels["state"]) == "STATE ▲"
        await pilot.press("O")
        assert rows(table)[:2] == ["node-h", "node-g"]
        await pilot.press("U")  # a numeric column: busiest first, and its narrow header keeps the mark
        cpu = [app.view.snapshot.hosts[h].cpu_percent or -1 for h in rows(table)]
        assert cpu == sorted(cpu, reverse=True)
        assert str(table._labels["cpu"]).endswith("▼") and len(str(table._labels["cpu"])) <= 4
        # click the REPL header: numeric, so most replicas first; a second click flips it
        x = sum(c.width + 2 for c in COLUMNS[: [c.key for c in COLUMNS].index("replicas")]) + 2
        await pilot.click("#fleet", offset=(x, 0))
        counts = [int(cell(table, r, "replicas")) for r in rows(table)]
        assert counts == sorted(counts, reverse=True)
        await pilot.click("#fleet", offset=(x, 0))
        counts = [int(cell(table, r, "replicas")) for r in rows(table)]
        assert counts == sorted(counts)


async def test_sorted_order_follows_live_updates(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.sort_by("cpu", reverse=True)
        for _ in range(3):
            engine.tick()
            await pilot.pause()
            cpu = [engine.snapshot().hosts[h].cpu_percent or -1 for h in rows(app.screen.table)]
            assert cpu == sorted(cpu, reverse=True)


async def test_enter_drills_down_to_host_detail_and_escape_returns(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot(), small_events()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "enter")  # node-c
        assert isinstance(app.screen, HostScreen) and app.screen.host == "node-c"
        replicas: DataTable[Any] = app.screen.query_one("#host-replicas", DataTable)
        assert rows(replicas) == ["api/1", "db/0", "web/1", "web/4", "worker/2"]
        assert cell(replicas, "db/0", "cpu_req") == "2.0"
        assert cell(replicas, "db/0", "state") == "running"
        info = text_of(app.screen.query_one("#host-info", Static))
        assert "node-c" in info and "4.75/8.0" in info
        assert "node-c is up" in text_of(app.screen.query_one("#host-events", Static))
        failover = text_of(app.screen.query_one("#host-failover", Static))
        assert "db degraded" in failover and "db/0 unplaced" in failover
        await pilot.press("down", "down")
        app.engine.tick()  # type: ignore[attr-defined]
        await pilot.pause()
        assert replicas.cursor_row == 2  # a poll does not throw the operator's place away
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_what_if_shows_the_plan_and_changes_nothing(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    before = engine.snapshot()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "s")  # node-c
        await settle(app, pilot)
        assert isinstance(app.screen, WhatIfScreen)
        assert app.screen.plan.target == "node-c" and not app.screen.plan.survives
        assert engine.calls == [("what_if", "node-c")]
        assert engine.snapshot() is before
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


# --- services, failover, events


async def test_services_screen_shows_counts_placement_and_unplaced_reasons(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert isinstance(app.screen, ServicesScreen)
        table: DataTable[Any] = app.screen.query_one("#services", DataTable)
        assert rows(table) == ["web", "api", "db", "cache", "worker", "batch"]
        assert cell(table, "worker", "healthy") == "7"
        assert cell(table, "web", "zones") == "eu-1:2, eu-2:2, eu-3:2"
        detail = app.screen.query_one("#service-detail", Static)
        assert "node-c       web/1, web/4" in text_of(detail)
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert 'batch/0: batch has require={gpu="yes"} but no host has those labels' in text_of(detail)
        assert "requires gpu=yes" in text_of(detail)


async def test_failover_screen_highlights_degrading_hosts_and_zones(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, FailoverScreen)
        table: DataTable[Any] = screen.query_one("#failover", DataTable)
        assert len(rows(table)) == 8 + 3
        assert cell(table, "host:node-c", "survives") == "NO"
        assert "red" in str(table.get_cell("host:node-c", "target").style)
        assert cell(table, "host:node-a", "survives") == "yes"
        headline = text_of(screen.query_one("#failover-headline", Static))
        assert "Losing any of node-c, node-e degrades a service" in headline
        await pilot.press("down", "down", "s")
        await settle(app, pilot)
        assert isinstance(app.screen, WhatIfScreen) and app.screen.plan.target == "node-c"
        await pilot.press("escape", "ctrl+end")
        await pilot.pause()
        assert screen.selected is not None and screen.selected.scope == "zone"
        assert "s" not in {k for k, b in screen.active_bindings.items() if b.enabled}  # no what-if for a zone
        await pilot.press("ctrl+home", "enter")
        assert isinstance(app.screen, HostScreen) and app.screen.host == "node-a"


async def test_events_screen_follows_the_stream_and_filters(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(), small_events())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        assert isinstance(app.screen, EventsScreen)
        table = app.screen.table
        assert table.row_count == 7
        engine.emit(EventKind.HOST_DOWN, "node-b is down: connection lost", host="node-b")
        await pilot.pause()
        await pilot.pause()
        assert table.row_count == 8
        assert cell(table, rows(table)[-1], "msg") == "node-b is down: connection lost"
        assert "node-b is down: connection lost" in notifications(app)
        await pilot.press("slash", *"host.down")
        assert table.row_count == 2
        app.screen.query_one("#filter", Input).value = "node-[bh]"
        await pilot.pause()
        assert table.row_count == 2
        await pilot.press("escape")
        assert table.row_count == 8
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


# --- plan: approve, reject, export, re-plan


async def test_approve_asks_first_and_cancel_changes_nothing(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, PlanScreen)
        actions: DataTable[Any] = app.screen.query_one("#plan-actions", DataTable)
        assert [cell(actions, str(i), "action") for i in range(9)] == [
            "move cache/1 node-b → node-f",
            "move web/2 node-e → node-a",
            "move web/3 node-b → node-f",
            "move worker/0 node-b → node-c",
            "move worker/1 node-b → node-e",
            "move worker/3 node-d → node-e",
            "move worker/4 node-f → node-e",
            "move worker/5 node-f → node-e",
            "move worker/6 node-g → node-e",
        ]
        util: DataTable[Any] = app.screen.query_one("#plan-util", DataTable)
        assert cell(util, "node-b", "cpu") == " 56% →   0%" and cell(util, "node-b", "freed") == "freed"
        summary = text_of(app.screen.query_one("#plan-summary", Static))
        assert "INFEASIBLE: 1 replica cannot be placed · uses 5 hosts · frees 2 hosts (node-b, node-g)" in summary
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        assert "9 moves, 0 starts, 0 stops" in app.screen.question
        assert "services touched: cache, web, worker" in app.screen.question
        await pilot.press("enter")  # the focused button is Cancel
        await settle(app, pilot)
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("a", "n")
        await pilot.press("a", "escape")
        await settle(app, pilot)
        assert engine.calls == []
        assert engine.snapshot().pending is not None


async def test_approve_dialog_counts_restarts(fake: ModuleType) -> None:
    """A plan that only restarts (a changed definition) must not read as "0 moves, 0 starts, 0 stops"."""
    from dataclasses import replace

    snapshot = fake.small_snapshot()
    restart = Action(ActionKind.RESTART, ReplicaId("db", 0), "node-c", "node-c")
    pending = replace(snapshot.pending, target=snapshot.placement, actions=(restart,))
    app = LoadmasterApp(fake.FakeEngine(replace(snapshot, pending=pending)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert "0 moves, 0 starts, 0 stops, 1 restart" in text_of(app.screen.query_one("#plan-summary", Static))
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        assert "0 moves, 0 starts, 0 stops, 1 restart" in app.screen.question
        assert "services touched: db" in app.screen.question


async def test_approve_applies_with_per_action_progress(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(), apply_delay=0.05, failing=[ReplicaId("worker", 3)])
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "a", "y")
        await pilot.pause(0.07)
        assert app.screen.query_one("#apply-row").display
        await settle(app, pilot)
        assert [c[0] for c in engine.calls] == ["approve"]
        actions: DataTable[Any] = app.screen.query_one("#plan-actions", DataTable)
        statuses = [cell(actions, str(i), "status") for i in range(9)]
        # cut with a visible … in the table; Enter on it shows the whole error (issue 12 item 4)
        assert statuses == ["✓ done"] * 5 + ["✗ exit status 1: addres…"] + ["✓ done"] * 3  # 5: worker/3
        actions.move_cursor(row=5)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        body = text_of(app.screen.query_one("#detail-body", Static))
        assert "failed: exit status 1: address in use" in body and "Why" in body and '"actions"' in body
        await pilot.press("escape")
        assert isinstance(app.screen, PlanScreen)
        label = text_of(app.screen.query_one("#apply-label", Static))
        assert "9/9 actions · 1 failed · finished" in label
        assert "Last applied plan" in text_of(app.screen.query_one("#plan-summary", Static))
        assert engine.snapshot().placement.host_of(ReplicaId("cache", 1)) == "node-f"
        assert engine.snapshot().placement.host_of(ReplicaId("worker", 3)) == "node-d"  # its move failed
        await pilot.press("a")  # a finished plan: the key says why it does nothing (item 8)
        await settle(app, pilot)
        assert any("already applied (8 done, 1 failed)" in m for m in notifications(app))
        assert not isinstance(app.screen, ConfirmScreen)


async def test_stale_plan_is_reported_not_crashed(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "a")
        # the fleet moves on while the dialog is open: node-b, which the plan empties, goes down
        snap = engine.snapshot()
        engine.publish(
            replace(snap, hosts={**snap.hosts, "node-b": replace(snap.hosts["node-b"], state=HostState.DOWN)})
        )
        await pilot.press("y")
        await settle(app, pilot)
        assert app.is_running
        assert any("plan is stale" in m and "node-b is down" in m for m in notifications(app))
        assert engine.snapshot().pending is not None


async def test_reject_drops_the_pending_plan(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "r")
        await settle(app, pilot)
        assert [c[0] for c in engine.calls] == ["reject"]
        assert engine.snapshot().pending is None
        assert "No pending plan." in text_of(app.screen.query_one("#plan-summary", Static))
        await pilot.press("a", "r", "e")  # nothing to do: each key says why instead of doing nothing
        await settle(app, pilot)
        said = notifications(app)
        assert sum("no pending plan: press p" in m for m in said) == 2
        assert any("no plan to export" in m for m in said)
        assert [c[0] for c in engine.calls] == ["reject"] and isinstance(app.screen, PlanScreen)


async def test_export_writes_a_valid_file_in_each_format(fake: ModuleType, tmp_path: Path) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        for fmt in ("json", "csv", "toml"):
            await pilot.press("e")
            assert isinstance(app.screen, ExportScreen)
            path_box = app.screen.query_one("#export-path", Input)
            assert re.fullmatch(r"plan-prod-eu-\d{8}-\d{6}\.json", path_box.value)
            await pilot.click(f"#fmt-{fmt}")
            assert path_box.value.endswith(f".{fmt}")  # the suffix follows the format
            await pilot.click("#fmt-json")
            path_box.value = str(tmp_path / f"plan.{fmt}")  # and the format follows the suffix typed
            await pilot.pause()
            path_box.focus()
            await pilot.press("enter")
            await settle(app, pilot)
            assert isinstance(app.screen, PlanScreen)
        shown = engine.snapshot().pending.actions
        data = json.loads((tmp_path / "plan.json").read_text())
        assert [a["replica"] for a in data["actions"]] == [str(a.replica) for a in shown]
        with (tmp_path / "plan.csv").open() as f:
            assert [r["to"] for r in csv.DictReader(f)] == [a.to_host for a in shown]
        toml = tomllib.loads((tmp_path / "plan.toml").read_text())
        assert toml["cluster"] == "prod-eu" and len(toml["actions"]) == len(shown) == 9
        assert [c for c in engine.calls if c[0] == "export"] == [
            ("export", (str(tmp_path / f"plan.{fmt}"), fmt)) for fmt in ("json", "csv", "toml")
        ]
        assert any(f"plan written to {tmp_path / 'plan.csv'} (csv)" in m for m in notifications(app))
        await pilot.press("e", "escape")
        assert isinstance(app.screen, PlanScreen)


async def test_export_csv_name_writes_csv_to_an_absolute_path(
    fake: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan.csv` was written as JSON: the radio stayed on json and won over the name (issue 12 item 5)."""
    monkeypatch.chdir(tmp_path)
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "e")
        app.screen.query_one("#export-path", Input).value = "plan.csv"
        await pilot.press("enter")
        await settle(app, pilot)
        with (tmp_path / "plan.csv").open() as f:
            assert len(list(csv.DictReader(f))) == 9
        assert any(f"plan written to {tmp_path / 'plan.csv'} (csv)" in m for m in notifications(app))


async def test_export_error_is_a_notification(fake: ModuleType, tmp_path: Path) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "e")
        app.screen.query_one("#export-path", Input).value = str(tmp_path / "missing-dir" / "plan.json")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.is_running
        assert any("No such file or directory" in m for m in notifications(app))


async def test_replan_runs_in_a_worker_with_a_spinner(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(), plan_delay=1.0)
    engine.halfway = asyncio.Event()
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "r")
        await settle(app, pilot)
        await pilot.press("p")
        spinner = app.screen.query_one("#solving", Spinner)
        for _ in range(100):  # the solver is held at halfway: the UI still answers
            await pilot.pause(0.05)
            if "best so far" in text_of(spinner):
                break
        assert spinner.display
        assert "solving… 0.5s · best so far 7 hosts · bound 7 · 1 solutions" in text_of(spinner)
        assert "p" not in {k for k, b in app.screen.active_bindings.items() if b.enabled}
        await pilot.press("1")
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("3")
        engine.halfway.set()
        for _ in range(100):
            await pilot.pause(0.05)
            if engine.snapshot().pending is not None:
                break
        await settle(app, pilot)
        assert not spinner.display
        assert engine.snapshot().pending is not None
        assert "Pending plan" in text_of(app.screen.query_one("#plan-summary", Static))


async def test_repack_asks_the_engine_for_the_fewest_hosts(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "R")
        await settle(app, pilot)
        assert ("plan", "repack") in engine.calls


# --- read-only, demo, help, palette, escape


async def test_read_only_hides_and_refuses_every_change(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(demo=True))
    app = LoadmasterApp(engine, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "READ-ONLY" in text_of(app.screen.query_one("#summary", Static))
        assert "x" not in app.screen.active_bindings and "d" not in app.screen.active_bindings
        await pilot.press("x", "d")
        await pilot.press("3")
        shown = app.screen.active_bindings
        assert "a" not in shown and "r" not in shown
        assert {"e", "p"} <= set(shown)  # exporting or computing a plan changes no host
        await pilot.press("a", "r")
        await settle(app, pilot)
        assert isinstance(app.screen, PlanScreen)
        titles = palette_titles(app)
        assert not any(t.startswith(("Approve", "Reject")) for t in titles)
        assert any(t.startswith("Export") for t in titles)
        app.approve(engine.snapshot().pending)  # even called directly, the app refuses
        await settle(app, pilot)
        assert engine.calls == []
        assert any("--read-only" in m for m in notifications(app))


async def test_engine_side_read_only_is_honoured(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(read_only=True))
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert app.read_only and "a" not in app.screen.active_bindings


async def test_demo_key_stops_and_restarts_a_demo_host(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot(demo=True), failover_auto=True)  # as in the demo's cluster.toml
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")  # on node-a: asks first
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmScreen) and "Stop demo host node-a?" in app.screen.question
        assert engine.calls == []
        await pilot.press("y")
        await settle(app, pilot)
        table = app.screen.table
        assert engine.calls[0] == ("stop_demo_host", "node-a")
        assert cell(table, "node-a", "state") == "down: refused"
        assert engine.snapshot().placement.on_host("node-a") == ()  # failed over
        assert any("node-a is down: 3 replicas to re-place" in m for m in notifications(app))
        await pilot.press("x")  # bringing it back needs no confirmation
        await settle(app, pilot)
        assert engine.calls[-1] == ("restore_demo_host", "node-a")
        assert engine.snapshot().hosts["node-a"].state is HostState.UP


async def test_demo_key_is_absent_outside_the_demo(fake: ModuleType) -> None:
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "x" not in app.screen.active_bindings
        await pilot.press("x")
        await settle(app, pilot)
        assert engine.calls == []


async def test_help_lists_each_action_once_with_keys_as_typed(fake: ModuleType) -> None:
    """Help once repeated Textual's `tab Focus Next` and `ctrl+c, super+c` in every section and showed `slash`."""
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.sections[0][0] == "Plan (3)"
        text = "\n".join(str(s.render()) for s in app.screen.query(Static))
        for action in ACTIONS:
            assert action.title in text
        for typed in ("/", "?", "Ctrl+P", "Esc", "Shift+R"):
            assert f"  {typed} " in text, typed
        for noise in ("slash", "question_mark", "Focus Next", "shift+tab", "super+c", "Copy selected"):
            assert noise not in text, noise
        await pilot.press("escape")
        assert isinstance(app.screen, PlanScreen)


def test_every_key_is_bound_once_per_scope() -> None:
    seen: dict[tuple[str, str], str] = {}
    for action in ACTIONS:
        if action.scope in ("app", "screen"):
            scopes: tuple[str, ...] = ("app", "screen")
        elif action.scope in ("detail", "log"):  # a view of its own: the live screens' keys do not reach it
            scopes = (action.scope, "app")
        else:
            scopes = (action.scope, "app", "screen")
        for key in action.keys.split(","):
            for scope in scopes:
                assert (scope, key) not in seen, f"{key_label(key)} is {seen[(scope, key)]} and {action.title}"
            seen[(action.scope, key)] = action.title


@pytest.mark.parametrize("read_only", [False, True])
async def test_help_scrolls_at_the_smallest_size_even_read_only(fake: ModuleType, read_only: bool) -> None:
    """The help once stored the struck keys in `self.disabled`, Textual's own flag: read-only, it froze."""
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot(demo=True)), read_only=read_only)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert not app.screen.disabled
        body = app.screen.query_one("#help", VerticalScroll)
        assert body.max_scroll_y > 0  # the keys do not fit in 24 lines
        await pilot.press("end")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y
        text = "\n".join(str(s.render()) for s in app.screen.query(Static))
        assert ("disabled (--read-only)" in text) is read_only


async def test_textual_logging_reaches_the_app_logger(fake: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event log once was `App._log`, Textual's devtools writer: with devtools attached, any log crashed."""
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot(), small_events()))
    monkeypatch.setattr(LoadmasterApp, "_is_devtools_connected", property(lambda _self: True))
    async with app.run_test(size=SIZE) as pilot:
        app.log("a line for the devtools console", answer=42)
        app.log.system("switching screens logs too")
        await pilot.press("5")
        assert isinstance(app.screen, EventsScreen) and app.screen.table.row_count == 7


async def test_palette_offers_each_action_once_in_loadmasters_words(fake: ModuleType) -> None:
    """The palette listed `Filter` and `Filter (slash)`, `Quit` twice, and Textual's Keys/Maximize/Focus Next."""
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        expected = palette_titles(app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        shown = [str(o.prompt).split("\n")[0] for o in app.screen.query_one("CommandList").options]  # type: ignore[attr-defined]
        assert sorted(shown) == sorted(set(expected)) and len(expected) == len(set(expected))
        for noise in ("Keys", "Maximize", "Focus Next", "Theme", "Screenshot"):
            assert not any(noise in line for line in shown), noise
        assert any(line.startswith("Filter hosts") for line in shown)
        await pilot.press("escape", "3")
        titles = palette_titles(app)
        for expected in ("Approve", "Reject", "Export", "Plan now", "Repack"):
            assert any(t.startswith(expected) for t in titles), expected
        await pilot.press("ctrl+p", *"Failover")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FailoverScreen)


async def test_escape_goes_back_from_everywhere(fake: ModuleType) -> None:
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        for key in "2345":
            await pilot.press(key)
            assert not isinstance(app.screen, FleetScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, FleetScreen), key
        await pilot.press("enter")
        assert isinstance(app.screen, HostScreen)
        await pilot.press("s")
        await settle(app, pilot)
        for expected in (HostScreen, FleetScreen):
            await pilot.press("escape")
            assert isinstance(app.screen, expected)
        await pilot.press("question_mark", "escape", "3", "e", "escape", "escape")
        assert isinstance(app.screen, FleetScreen)


async def test_number_keys_always_reach_their_screen(fake: ModuleType) -> None:
    """From host detail `1` did nothing, and Enter → 5 → 1 landed on host detail again (issue 12 item 8)."""
    app = LoadmasterApp(fake.FakeEngine(fake.small_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        assert isinstance(app.screen, HostScreen)
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("enter", "5")
        await pilot.pause()
        assert isinstance(app.screen, EventsScreen)
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("enter", "2")
        await pilot.pause()
        assert isinstance(app.screen, ServicesScreen)
        await pilot.press("escape")  # back one level: the top of a screen goes back to the fleet
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen) and len(app.screen_stack) == 1


async def test_a_plan_with_nothing_to_change_is_not_pending_work(fake: ModuleType) -> None:
    """`p` with nothing to change left "plan pending: 0 actions" in the header (issue 12 item 8)."""
    engine = fake.FakeEngine(fake.small_snapshot())
    pending = engine.snapshot().pending
    assert pending is not None
    engine.publish(replace(engine.snapshot(), pending=replace(pending, actions=())))
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        header = text_of(app.screen.query_one("#summary", Static))
        assert "plan pending" not in header and "no pending plan" in header
        await pilot.press("a")
        await settle(app, pilot)
        assert any("nothing to approve" in m for m in notifications(app))
        assert not isinstance(app.screen, ConfirmScreen)


async def test_a_screen_switch_back_neither_restyles_nor_derives_again(
    fake: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12's key-press target: a resumed screen was restyled whole (emptying every render cache) and the
    services derived again from every replica, unchanged. A new snapshot is still derived when the screen returns."""
    import console.screens.services as services_module

    derived: list[object] = []
    real = services_module.service_views
    monkeypatch.setattr(services_module, "service_views", lambda *a: derived.append(a[0]) or real(*a))
    engine = fake.FakeEngine(fake.small_snapshot())
    app = LoadmasterApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "1")
        await pilot.pause()
        count = len(derived)
        restyled: list[object] = []
        update_styles = app.update_styles
        monkeypatch.setattr(
            app, "update_styles", lambda node, animate=True: restyled.append(node) or update_styles(node, animate)
        )
        await pilot.press("2")
        await pilot.pause()
        assert isinstance(app.screen, ServicesScreen)
        assert len(derived) == count, "the same view was derived again"
        assert app.screen not in restyled, "the resumed screen was restyled whole"
        await pilot.press("1")
        engine.publish(replace(engine.snapshot()))
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        assert len(derived) == count + 1 and derived[-1] is engine.snapshot()
