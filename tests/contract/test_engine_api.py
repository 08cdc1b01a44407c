"""The contract of `EngineAPI`, run on the real engine and on the console's fake alike (see conftest.py)."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from core.engine.api import EngineAPI, Snapshot
from core.engine.basis import fingerprint
from core.engine.events import Event, EventKind
from core.engine.planfile import read_plan
from core.errors import LoadmasterError, ReadOnly, StalePlan
from core.model import HostState, Plan, diff_actions
from tests.contract.conftest import Make
from tests.contract.fleet import CONFIG, RUNNING


async def until(api: EngineAPI, predicate: Callable[[Snapshot], bool], timeout: float = 20.0) -> Snapshot:
    """The first snapshot for which `predicate` holds (the real engine gets there on its own ticks)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate(snapshot := api.snapshot()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {snapshot}")
        await asyncio.sleep(0.02)
    return snapshot


async def next_of(queue: asyncio.Queue[Event], kind: EventKind, timeout: float = 20.0) -> Event:
    """The next event of `kind` (the real engine reports what it saw at its next tick)."""
    async with asyncio.timeout(timeout):
        while (event := await queue.get()).kind is not kind:
            pass
    return event


def drain(queue: asyncio.Queue[Event]) -> list[EventKind]:
    kinds = []
    while not queue.empty():
        kinds.append(queue.get_nowait().kind)
    return [k for k in kinds if k is not EventKind.STATE_UPDATED]


def same_plan(a: Plan | None, b: Plan) -> bool:
    return a is not None and (a.basis, a.actions, a.target) == (b.basis, b.actions, b.target)


def busiest(snapshot: Snapshot) -> str:
    return max(snapshot.config.hosts, key=lambda h: len(snapshot.placement.on_host(h.name))).name


# -- the snapshot -------------------------------------------------------------------------------


async def test_snapshot_shows_every_host_what_runs_and_a_failover_plan_per_host_then_zone(make: Make) -> None:
    api = await make()
    snap = await until(api, lambda s: len(s.failover) == 6)
    assert list(snap.hosts) == [h.name for h in CONFIG.hosts]
    assert all(o.state is HostState.UP for o in snap.hosts.values())
    assert snap.placement == RUNNING
    assert snap.running() == {r: [h] for r, h in RUNNING.assignments.items()}
    assert snap.runs_on == 4
    assert snap.fits_on is not None and 1 <= snap.fits_on <= 4
    assert [(f.scope, f.target) for f in snap.failover] == [
        *(("host", h.name) for h in CONFIG.hosts),
        ("zone", "z1"),
        ("zone", "z2"),
    ]
    assert (snap.pending, snap.solving, snap.solve_progress, snap.read_only, snap.demo) == (
        None,
        False,
        None,
        False,
        False,
    )


async def test_snapshot_says_read_only_and_demo(make: Make) -> None:
    snap = (await make(read_only=True, demo=True)).snapshot()
    assert snap.read_only and snap.demo


# -- plan, approve, reject ---------------------------------------------------------------------------


async def test_a_plan_is_computed_from_the_snapshot_and_becomes_pending(make: Make) -> None:
    api = await make()
    queue = api.subscribe()
    plan = await api.plan(repack=True)
    snap = api.snapshot()
    assert same_plan(snap.pending, plan) and not snap.solving
    assert plan.reason == "repack" and plan.cluster == CONFIG.name
    assert plan.current == RUNNING
    assert plan.assumed is not None and plan.basis == fingerprint(plan.assumed)
    assert dict(plan.assumed.placement) == dict(RUNNING.assignments)
    assert plan.actions == diff_actions(plan.current, plan.target)
    assert set(plan.target.assignments) == set(RUNNING.assignments)  # everything still placed
    assert plan.hosts_used == len(set(plan.target.assignments.values())) < 4  # a repack frees hosts
    assert plan.lower_bound <= plan.hosts_used
    assert plan.gap == pytest.approx((plan.hosts_used - plan.lower_bound) / plan.hosts_used)
    assert EventKind.PLAN_COMPUTED in drain(queue)


async def test_the_snapshot_says_solving_while_a_plan_is_computed(make: Make) -> None:
    api = await make()
    solving = asyncio.create_task(api.plan(repack=True))
    await asyncio.sleep(0)  # the call runs up to the solver's thread
    during = api.snapshot()
    assert during.solving and during.solve_progress is not None
    await solving
    after = api.snapshot()
    assert not after.solving and after.solve_progress is None


async def test_a_plain_plan_leaves_a_fleet_that_keeps_every_rule_where_it_is(make: Make) -> None:
    api = await make()
    plan = await api.plan()
    assert plan.reason == "rebalance" and plan.actions == () and plan.target == RUNNING
    assert same_plan(api.snapshot().pending, plan)


async def test_approve_applies_the_plan_and_reports_each_action(make: Make) -> None:
    api = await make()
    plan = await api.plan(repack=True)
    queue = api.subscribe()
    await api.approve(plan)
    snap = await until(api, lambda s: s.placement == plan.target)
    assert snap.pending is None
    assert snap.applying is not None and snap.applying.finished
    assert len(snap.applying.done) == len(plan.actions) and not snap.applying.failed
    assert snap.runs_on == plan.hosts_used
    kinds = drain(queue)
    assert kinds[0] is EventKind.PLAN_APPROVED and kinds[-1] is EventKind.APPLY_FINISHED
    assert kinds.count(EventKind.ACTION_DONE) == len(plan.actions)


async def test_a_plan_the_fleet_has_moved_past_is_refused_as_stale_and_changes_nothing(make: Make) -> None:
    api = await make()
    plan = await api.plan(repack=True)
    await api.approve(plan)
    moved = await until(api, lambda s: s.placement == plan.target)
    queue = api.subscribe()
    with pytest.raises(StalePlan) as refused:
        await api.approve(plan)  # it assumed the placement before itself
    assert any("now runs on" in reason for reason in refused.value.reasons)
    assert api.snapshot().placement == moved.placement
    assert EventKind.PLAN_APPROVED not in drain(queue)  # nothing was approved


async def test_a_host_lost_since_the_plan_makes_it_stale_with_the_reason(make: Make) -> None:
    api = await make(demo=True)
    plan = await api.plan(repack=True)
    await api.stop_demo_host("h4")
    await until(api, lambda s: s.pending is not None and s.pending.reason == "failover:h4")
    with pytest.raises(StalePlan) as refused:
        await api.approve(plan)
    assert "h4 is down since the plan was made (it was up)" in refused.value.reasons


async def test_reject_drops_the_pending_plan_and_changes_nothing(make: Make) -> None:
    api = await make()
    plan = await api.plan(repack=True)
    queue = api.subscribe()
    await api.reject(plan)
    snap = api.snapshot()
    assert snap.pending is None and snap.placement == RUNNING
    assert drain(queue) == [EventKind.PLAN_REJECTED]


# -- read-only -----------------------------------------------------------------------------------------


async def test_read_only_computes_and_shows_plans_but_refuses_every_change(make: Make) -> None:
    api = await make(read_only=True, demo=True)
    plan = await api.plan(repack=True)  # computing a plan changes no host
    assert same_plan(api.snapshot().pending, plan)
    queue = api.subscribe()
    refused = [
        api.approve(plan),
        api.reject(plan),
        api.stop_demo_host("h1"),
        api.restore_demo_host("h1"),
        api.set_demo_load("web", 0.5),
    ]
    for call in refused:
        with pytest.raises(ReadOnly):
            await call
    snap = api.snapshot()
    assert snap.placement == RUNNING and same_plan(snap.pending, plan)
    assert snap.hosts["h1"].state is HostState.UP
    assert not {EventKind.PLAN_APPROVED, EventKind.PLAN_REJECTED} & set(drain(queue))


# -- export ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "toml"])
async def test_export_writes_a_plan_file_that_reads_back_as_the_plan(make: Make, tmp_path: Path, fmt: str) -> None:
    api = await make()
    plan = await api.plan(repack=True)
    path = tmp_path / f"plan.{fmt}"
    api.export(plan, str(path), fmt)
    back = read_plan(path)
    assert (back.basis, back.actions, back.target, back.current) == (plan.basis, plan.actions, plan.target, RUNNING)
    assert (back.status, back.hosts_used, back.lower_bound, back.reason) == (
        plan.status,
        plan.hosts_used,
        plan.lower_bound,
        plan.reason,
    )


async def test_export_as_csv_lists_one_row_per_action(make: Make, tmp_path: Path) -> None:
    api = await make()
    plan = await api.plan(repack=True)
    path = tmp_path / "plan.csv"
    api.export(plan, str(path), "csv")
    with path.open() as f:
        rows = [(r["action"], r["replica"], r["from"], r["to"]) for r in csv.DictReader(f)]
    assert rows == [(a.kind.value, str(a.replica), a.from_host or "", a.to_host or "") for a in plan.actions]


async def test_export_in_an_unknown_format_is_refused_and_writes_nothing(make: Make, tmp_path: Path) -> None:
    api = await make()
    plan = await api.plan(repack=True)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="unknown format"):
        api.export(plan, str(out / "plan.xml"), "xml")
    assert list(out.iterdir()) == []


# -- what if ---------------------------------------------------------------------------------------------


async def test_what_if_re_places_that_hosts_replicas_elsewhere_and_changes_nothing(make: Make) -> None:
    api = await make()
    before = await until(api, lambda s: len(s.failover) == 6)
    host = busiest(before)
    queue = api.subscribe()
    plan = api.what_if(host)
    assert (plan.scope, plan.target, plan.lost_hosts) == ("host", host, (host,))
    assert set(plan.moves) | set(plan.unplaced) == set(RUNNING.on_host(host))
    assert plan.survives and host not in plan.moves.values()
    after = api.snapshot()
    assert (after.placement, after.pending) == (before.placement, before.pending)
    assert drain(queue) == []


# -- demo hosts ------------------------------------------------------------------------------------------


async def test_stopping_a_demo_host_fails_it_over_and_restoring_brings_it_back(make: Make) -> None:
    api = await make(demo=True, failover_auto=True)
    host = busiest(api.snapshot())
    queue = api.subscribe()
    await api.stop_demo_host(host)
    snap = await until(api, lambda s: s.hosts[host].state is HostState.DOWN and not s.placement.on_host(host))
    assert set(snap.placement.assignments) == set(RUNNING.assignments)  # every replica re-placed
    kinds = drain(queue)
    assert EventKind.HOST_DOWN in kinds and EventKind.FAILOVER_STARTED in kinds
    await api.restore_demo_host(host)
    assert (await next_of(queue, EventKind.HOST_UP)).host == host
    assert api.snapshot().hosts[host].state is HostState.UP


async def test_without_auto_failover_a_lost_host_leaves_a_failover_plan_to_approve(make: Make) -> None:
    api = await make(demo=True)
    host = busiest(api.snapshot())
    await api.stop_demo_host(host)
    snap = await until(api, lambda s: s.pending is not None and s.pending.reason == f"failover:{host}")
    pending = snap.pending
    assert pending is not None
    assert {a.replica for a in pending.actions} == set(RUNNING.on_host(host))
    assert snap.placement.on_host(host) == RUNNING.on_host(host)  # nothing moved yet
    await api.approve(pending)
    await until(api, lambda s: not s.placement.on_host(host))


async def test_demo_controls_are_refused_outside_a_demo(make: Make) -> None:
    api = await make()
    for call in (api.stop_demo_host("h1"), api.restore_demo_host("h1"), api.set_demo_load("web", 0.5)):
        with pytest.raises(LoadmasterError, match="not a demo fleet"):
            await call


# -- events ----------------------------------------------------------------------------------------------


async def test_events_reach_each_subscriber_until_it_unsubscribes_and_stay_in_recent_events(make: Make) -> None:
    api = await make()
    first, second = api.subscribe(), api.subscribe()
    plan = await api.plan(repack=True)
    api.unsubscribe(first)
    await api.reject(plan)
    assert drain(first) == [EventKind.PLAN_COMPUTED]
    assert drain(second) == [EventKind.PLAN_COMPUTED, EventKind.PLAN_REJECTED]
    recent = [e.kind for e in api.recent_events()]
    assert EventKind.STATE_UPDATED not in recent
    assert recent[-2:] == [EventKind.PLAN_COMPUTED, EventKind.PLAN_REJECTED]  # oldest first
