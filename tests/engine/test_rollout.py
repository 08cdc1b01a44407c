"""Issue 11, build 2: rolling updates and moves gated on the new copy's health (core.engine.rollout),
over the in-memory fleet whose records carry the health a check would report."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from console.commands.status import render, status_document
from core.engine.apply import apply_plan
from core.engine.basis import generation
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.engine.rollout import Rollouts, budget
from core.model import (
    Action,
    ActionKind,
    CheckKind,
    Health,
    HealthCheck,
    HostState,
    Placement,
    Plan,
    ReplicaId,
    SolverStatus,
)
from core.store.shared_map import FileMap, MapError
from tests.engine.test_engine import until
from tests.fake_fleet import FakeFleet

W = [ReplicaId("web", i) for i in range(3)]
UP = HostState.UP
CHECK = HealthCheck(CheckKind.TCP, interval=0.2, timeout=0.1, grace=0.2, unhealthy_after=1)


def checked(config, **changes):
    """`config` with a check on web (and `changes` to its definition)."""
    web = dataclasses.replace(config.service("web"), check=CHECK, **changes)
    return dataclasses.replace(config, services=tuple(web if s.name == "web" else s for s in config.services))


def plan_of(*actions):
    p = Placement()
    return Plan("t", "b", 0.0, p, p, tuple(actions), SolverStatus.OPTIMAL, 0, 0, 0.0)


async def old_web(fleet, config):
    """web/0..2 on a, b, c, healthy, started from a definition older than `config`'s."""
    old = dataclasses.replace(config.service("web"), command="sleep 999")
    for i, host in enumerate("abc"):
        await fleet.start_replica(host, old, i, generation(old))
        fleet.set_health(host, W[i], Health.HEALTHY)


def restarts():
    return plan_of(*(Action(ActionKind.RESTART, W[i], h, h) for i, h in enumerate("abc")))


async def apply(config, fleet, plan, tmp_path, **kw):
    journal = Journal(tmp_path / "j.db")
    journal.begin_plan("p", "test", "b", plan.actions)
    states = {h: fleet.states[h] for h in "abc"}
    kw.setdefault("running", {"web": 3})
    progress = await apply_plan(
        "p", plan, config, states, fleet, journal, lambda *a: None, frames=fleet.observations, **kw
    )
    return progress, journal


async def test_a_rollout_replaces_one_replica_at_a_time_each_healthy_before_the_next(tmp_path, small_config):
    config = checked(small_config)
    fleet = FakeFleet(config)
    await old_web(fleet, config)
    fleet.new_health["web"] = Health.STARTING
    worst, flips = 3, []

    async def checks():  # each new copy passes its check 0.3 s after it started
        nonlocal worst
        while True:
            for host, recs in fleet.records.items():
                for r in list(recs.values()):
                    if r.health is Health.STARTING and asyncio.get_running_loop().time() - since[r.pid] > 0.3:
                        fleet.set_health(host, r.replica, Health.HEALTHY)
                        flips.append(r.replica)
            worst = min(worst, sum(1 for recs in fleet.records.values() for r in recs.values() if r.healthy))
            await asyncio.sleep(0.02)

    since: dict[int | None, float] = {}
    real_start = fleet.start_replica

    async def start(*a, **k):
        status = await real_start(*a, **k)
        since[status.pid] = asyncio.get_running_loop().time()
        return status

    fleet.start_replica = start
    task = asyncio.create_task(checks())
    try:
        progress, journal = await apply(config, fleet, restarts(), tmp_path)
    finally:
        task.cancel()
    assert not progress.failed and len(progress.done) == 3
    assert flips == W  # every new copy passed its check, in order
    assert worst == 2  # never two down at once (min_healthy = 2)
    new = generation(config.service("web"))
    assert all(fleet.records[h][W[i]].generation == new for i, h in enumerate("abc"))
    assert journal.plan_status("p") == "done"


async def test_a_new_copy_that_fails_its_check_stops_the_rollout_and_keeps_the_old_replicas(tmp_path, small_config):
    config = checked(small_config)
    fleet = FakeFleet(config)
    await old_web(fleet, config)
    fleet.new_health["web"] = Health.UNHEALTHY
    events = []
    rollouts = Rollouts(
        FileMap(tmp_path / "rollouts.json"), lambda kind, message, **k: events.append((kind, message, k))
    )
    progress, journal = await apply(config, fleet, restarts(), tmp_path, rollouts=rollouts)
    assert [r for _, r in fleet.starts[3:]] == [W[0]]  # after the three old ones: only web/0 was replaced
    old = generation(dataclasses.replace(config.service("web"), command="sleep 999"))
    assert [fleet.records[h][W[i]].generation for i, h in enumerate("bc", 1)] == [old, old]  # still serving
    assert all(fleet.records[h][W[i]].healthy for i, h in enumerate("bc", 1))
    errors = sorted(progress.failed.values())
    assert errors[2].startswith("rollout of web stopped: web/0 on a failed its check (unhealthy)")
    assert errors[0].startswith("not restarted: rollout of web stopped: web/0 on a") and len(errors) == 3
    assert [a.state for a in journal.actions("p")] == ["failed"] * 3
    assert rollouts.halted == {"web": generation(config.service("web"))}
    [(kind, message, fields)] = events
    assert kind is EventKind.ROLLOUT_HALTED and "web/0" in message and fields["replica"] == W[0]
    # the same definition again: halted, nothing restarted; another definition rolls out again
    assert rollouts.is_halted(config.service("web"))
    kept = Rollouts(FileMap(tmp_path / "rollouts.json"))  # a restarted controller knows
    assert kept.halted == rollouts.halted and kept.why() == rollouts.why()
    assert rollouts.forget(checked(small_config, command="sleep 3000").services) == ["web"]
    assert not rollouts.halted


async def test_a_new_copy_never_healthy_stops_the_rollout_after_its_budget(tmp_path, small_config):
    config = checked(small_config)
    fleet = FakeFleet(config)
    await old_web(fleet, config)
    fleet.new_health["web"] = Health.STARTING  # never passes, never fails: a check that hangs
    allowed = budget(config.service("web"), config.poll_interval)
    t0 = asyncio.get_running_loop().time()
    progress, _ = await apply(config, fleet, restarts(), tmp_path, rollouts=Rollouts())
    took = asyncio.get_running_loop().time() - t0
    assert allowed <= took < allowed + 1.0
    assert any(f"not healthy within {allowed:.1f} s (still starting)" in e for e in progress.failed.values())
    assert len(fleet.starts) == 4


async def test_a_move_stops_the_source_only_once_the_target_is_healthy(tmp_path, small_config):
    config = checked(small_config)
    fleet = FakeFleet(config)
    web = config.service("web")
    await fleet.start_replica("a", web, 0, generation(web))
    fleet.set_health("a", W[0], Health.HEALTHY)
    fleet.new_health["web"] = Health.STARTING
    stopped_at = []
    real_stop = fleet.stop_replica

    async def stop(host, replica, grace=5.0):
        stopped_at.append((host, fleet.records["b"][replica].health))
        await real_stop(host, replica, grace)

    fleet.stop_replica = stop

    async def passes():
        await until(lambda: W[0] in fleet.records["b"])
        await asyncio.sleep(0.4)
        assert fleet.running() == {W[0]: ["a", "b"]}  # both copies while the new one starts
        fleet.set_health("b", W[0], Health.HEALTHY)

    task = asyncio.create_task(passes())
    progress, _ = await apply(config, fleet, plan_of(Action(ActionKind.MOVE, W[0], "a", "b")), tmp_path)
    await task
    assert not progress.failed
    assert stopped_at == [("a", Health.HEALTHY)]
    assert fleet.running() == {W[0]: ["b"]}


async def test_a_move_whose_new_copy_fails_keeps_the_old_copy(tmp_path, small_config):
    config = checked(small_config)
    fleet = FakeFleet(config)
    web = config.service("web")
    await fleet.start_replica("a", web, 0, generation(web))
    fleet.new_health["web"] = Health.UNHEALTHY
    progress, _ = await apply(config, fleet, plan_of(Action(ActionKind.MOVE, W[0], "a", "b")), tmp_path)
    [error] = progress.failed.values()
    assert "failed its check" in error and "keeps running on a" in error
    assert fleet.running() == {W[0]: ["a"]}  # the new copy stopped, the old one never touched
    assert fleet.stops == [("b", W[0])]


async def test_a_failover_move_does_not_wait_for_the_new_copy(tmp_path, small_config):
    # its source is lost: the new copy is the only one, and waiting would hold up the engine's tick
    config = checked(small_config)
    fleet = FakeFleet(config)
    web = config.service("web")
    await fleet.start_replica("a", web, 0, generation(web))
    fleet.states["a"] = HostState.DOWN
    fleet.new_health["web"] = Health.STARTING  # never passes
    t0 = asyncio.get_running_loop().time()
    progress, _ = await apply(config, fleet, plan_of(Action(ActionKind.MOVE, W[0], "a", "b")), tmp_path)
    assert asyncio.get_running_loop().time() - t0 < 0.5
    assert not progress.failed and fleet.running() == {W[0]: ["a", "b"]}


async def test_a_host_going_down_interrupts_a_rollout_without_halting_it(tmp_path, small_config):
    config = checked(small_config)
    fleet = FakeFleet(config)
    await old_web(fleet, config)
    fleet.new_health["web"] = Health.STARTING

    async def fail_c():
        await until(lambda: len(fleet.starts) == 4)  # web/0's new copy is being waited for
        fleet.states["c"] = HostState.DOWN
        fleet.changed("c")

    task = asyncio.create_task(fail_c())
    rollouts = Rollouts()
    t0 = asyncio.get_running_loop().time()
    progress, _ = await apply(config, fleet, restarts(), tmp_path, rollouts=rollouts)
    await task
    assert asyncio.get_running_loop().time() - t0 < 1.0  # well within web/0's budget: the failover comes first
    errors = sorted(progress.failed.values())
    assert len(errors) == 3 and all("c went down" in e for e in errors), errors
    assert errors[0] == "c went down while web/0 on a started" and errors[1].startswith("not begun: c went down")
    assert not rollouts.halted  # the new definition did not fail: the next plan rolls it out
    assert len(fleet.starts) == 4  # web/1 and web/2 were not touched


async def test_the_engine_halts_a_failing_rollout_and_resumes_on_a_new_definition(engine_of, small_config, tmp_path):
    small_config = dataclasses.replace(small_config, policy=dataclasses.replace(small_config.policy, cooldown=0.0))
    config = checked(small_config)
    engine, fleet = await engine_of(config, auto_apply=True)
    await until(lambda: {r for r in fleet.running() if r.service == "web"} == set(W))
    for host, recs in fleet.records.items():
        for r in list(recs.values()):
            fleet.set_health(host, r.replica, Health.HEALTHY)
    before = len(fleet.starts)
    fleet.new_health["web"] = Health.UNHEALTHY
    broken = checked(small_config, command="sleep 2000")
    engine.reload(broken)
    await until(lambda: engine.snapshot().rollouts_halted, timeout=10)
    halted = [e for e in engine.recent_events() if e.kind is EventKind.ROLLOUT_HALTED]
    assert len(halted) == 1 and "rollout of web stopped: web/" in halted[0].message
    failed = halted[0].replica
    await asyncio.sleep(3.0)  # past the first retries' backoff: no other replica is restarted
    # (the failed copy itself is restarted in place with backoff, as any unhealthy replica)
    assert {r for _, r in fleet.starts[before:]} == {failed}
    serving = [r for recs in fleet.records.values() for r in recs.values() if r.healthy and r.replica.service == "web"]
    assert len(serving) == 2
    assert not engine.snapshot().retrying
    doc = status_document(engine.snapshot())  # `loadmaster status` says it, also from another process
    assert [h["service"] for h in doc["rollouts_halted"]] == ["web"]
    assert "rolling updates stopped" in render(doc) and "web: rollout of web stopped: web/" in render(doc)
    assert Rollouts(FileMap(tmp_path / "j0.rollouts.json")).why() == engine.snapshot().rollouts_halted
    # the operator fixes the file: the rollout goes on (and replaces the failed copy too)
    fleet.new_health["web"] = Health.HEALTHY
    fixed = checked(small_config, command="sleep 3000")
    engine.reload(fixed)
    new = generation(fixed.service("web"))
    await until(
        lambda: sorted(r.replica for recs in fleet.records.values() for r in recs.values() if r.generation == new) == W,
        timeout=15,
    )
    assert not engine.snapshot().rollouts_halted


def test_a_damaged_rollouts_file_is_named(tmp_path):
    path = tmp_path / "journal.rollouts.json"
    path.write_text('{"web": 3}')
    with pytest.raises(MapError, match=r"journal.rollouts.json: is not .*fix or remove it \(it lists rolling"):
        Rollouts(FileMap(path))
