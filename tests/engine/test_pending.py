"""Pending means pending, and guard rails on reload (issue 10 defects 5, 7, 8; build 5 and 6).

A plan held back by the policy says why (`cooldown until …`, `over max_moves_per_cycle`), in
plan.computed and in the snapshot, and is applied once the reason passes or the policy changes; a
constraint edit is planned for like a replica edit; a reload whose plan would stop more than
`max_stops_per_reload` replicas, or that removes hosts that are up, waits for a person.
"""

from __future__ import annotations

import dataclasses
import time

from core.engine.events import EventKind
from core.model import ReplicaId
from tests.engine.test_engine import desired, until


def with_policy(config, **policy):
    return dataclasses.replace(config, policy=dataclasses.replace(config.policy, **policy))


def with_replicas(config, **replicas):
    services = tuple(dataclasses.replace(s, replicas=replicas.get(s.name, s.replicas)) for s in config.services)
    return dataclasses.replace(config, services=services)


def computed(engine):
    return [e for e in engine.recent_events() if e.kind is EventKind.PLAN_COMPUTED]


async def test_a_plan_held_by_the_cooldown_says_so_and_applies_when_it_passes(engine_of, small_config):
    """Defect 7: a plan deferred by the cooldown stayed unapplied after the cooldown passed."""
    offset = [0.0]
    config = with_policy(small_config, cooldown=60.0)
    engine, fleet = await engine_of(config, auto_apply=True, clock=lambda: time.time() + offset[0])
    await until(lambda: set(fleet.running()) == desired(config))
    engine.reload(with_replicas(config, web=2), guarded=False)  # a stop: disruptive, applied, cooldown starts
    await until(lambda: ReplicaId("web", 2) not in fleet.running())
    engine.reload(with_replicas(config, web=2, db=0), guarded=False)  # the next stop waits for the cooldown
    await until(lambda: engine.snapshot().pending is not None, timeout=30)
    snap = engine.snapshot()
    assert snap.pending_why is not None and snap.pending_why.startswith("cooldown until "), snap.pending_why
    last = computed(engine)[-1]
    assert last.data["pending"] == snap.pending_why and "pending: cooldown" in last.message
    assert ReplicaId("db", 0) in fleet.running()
    offset[0] += 61
    await until(lambda: ReplicaId("db", 0) not in fleet.running() and engine.snapshot().pending is None)


async def test_a_plan_over_max_moves_applies_once_the_limit_is_raised(engine_of, small_config):
    """Defect 7: raising max_moves_per_cycle (and SIGHUP) did not apply the deferred plan."""
    config = with_policy(small_config, max_moves_per_cycle=0, cooldown=0.0)
    engine, fleet = await engine_of(config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(config))
    engine.reload(with_replicas(config, web=2), guarded=False)
    await until(lambda: engine.snapshot().pending is not None, timeout=30)
    assert engine.snapshot().pending_why == "over max_moves_per_cycle (1 disruptive moves, limit 0)"
    assert ReplicaId("web", 2) in fleet.running()
    engine.reload(with_policy(with_replicas(config, web=2), max_moves_per_cycle=5))  # the policy edit alone
    await until(lambda: ReplicaId("web", 2) not in fleet.running() and engine.snapshot().pending is None)


async def test_adding_require_to_a_running_service_moves_it(engine_of, small_config):
    """Defect 8: adding `require` to a running service reloaded the file and planned nothing."""
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    [host] = fleet.running()[ReplicaId("db", 0)]
    zone = "z1" if host == "c" else "z2"  # a zone db does not run in
    services = tuple(
        dataclasses.replace(s, require={"zone": zone}) if s.name == "db" else s for s in small_config.services
    )
    engine.reload(dataclasses.replace(small_config, services=services))
    wanted = {h.name for h in small_config.hosts if h.labels["zone"] == zone}
    await until(
        lambda: set(fleet.running().get(ReplicaId("db", 0), [])) <= wanted and fleet.running().get(ReplicaId("db", 0))
    )
    assert any(e.message.startswith("plan (config)") for e in computed(engine))


async def test_a_reload_that_would_stop_too_much_waits_for_a_person(engine_of, small_config):
    """Defect 5 (the guard rail): a half-written file, 3 hosts and no services, made a plan of stops
    that the daemon applied at once."""
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    engine.reload(dataclasses.replace(small_config, services=()))
    await until(lambda: engine.snapshot().pending is not None, timeout=30)
    why = engine.snapshot().pending_why
    assert why == "waits for approval: the reload's plan stops 4 replicas, more than max_stops_per_reload (1)", why
    assert fleet.stops == [] and set(fleet.running()) == desired(small_config)
    engine.reload(small_config)  # the file is whole again: nothing to do
    await until(lambda: engine.snapshot().pending is None)
    assert fleet.stops == []


async def test_max_stops_per_reload_sets_the_limit(engine_of, small_config):
    config = with_policy(small_config, max_stops_per_reload=4, cooldown=0.0)
    engine, fleet = await engine_of(config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(config))
    engine.reload(dataclasses.replace(config, services=()))
    await until(lambda: not fleet.running())


async def test_a_reload_that_removes_a_host_that_is_up_waits_for_a_person(engine_of, small_config):
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    before = list(fleet.starts)
    [gone] = fleet.running()[ReplicaId("db", 0)]  # db has somewhere to go; web (max_per_host = 1) may not
    kept = tuple(h for h in small_config.hosts if h.name != gone)
    engine.reload(dataclasses.replace(small_config, hosts=kept))
    await until(lambda: engine.snapshot().pending is not None, timeout=30)
    assert engine.snapshot().pending_why == f"waits for approval: the reload removes hosts that are up: {gone}"
    assert fleet.starts == before
    await engine.approve(engine.snapshot().pending)
    assert engine.snapshot().pending is None
