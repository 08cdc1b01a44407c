"""The engine over an in-memory fleet with the real optimizer: drift, failover, stale plans, policy."""

import asyncio
import dataclasses

import pytest

from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.errors import ReadOnly, StalePlan
from core.model import ActionKind, HostState, ReplicaId
from tests.fake_fleet import FakeFleet


async def until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def desired(config):
    return {r for s in config.services for r in s.replica_ids()}


async def test_drift_becomes_a_pending_plan_without_auto_apply(engine_of, small_config):
    engine, fleet = await engine_of(small_config)
    await until(lambda: engine.snapshot().pending is not None)
    plan = engine.snapshot().pending
    assert {a.replica for a in plan.actions} == desired(small_config)
    assert fleet.starts == []  # nothing changes until approved
    await engine.approve(plan)
    assert set(fleet.running()) == desired(small_config)
    assert all(len(h) == 1 for h in fleet.running().values())
    # web has max_per_host = 1
    assert len({fleet.running()[ReplicaId("web", i)][0] for i in range(3)}) == 3
    assert engine.snapshot().pending is None


async def test_auto_apply_places_everything_and_fails_over(engine_of, small_config):
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    await engine.wait_failover()
    victim = fleet.running()[ReplicaId("db", 0)][0]
    ready = engine.what_if(victim)
    assert ReplicaId("db", 0) in ready.moves and "web" in ready.degraded  # web: 3 hosts, max_per_host=1
    queue = engine.subscribe()
    fleet.states[victim] = HostState.DOWN
    await until(lambda: all(fleet.running().get(r, []) == [victim, h] for r, h in ready.moves.items()))
    kinds = []
    while not queue.empty():
        kinds.append(queue.get_nowait().kind)
    assert EventKind.HOST_DOWN in kinds and EventKind.FAILOVER_STARTED in kinds
    # the host comes back with its old copies still running: they are stopped as duplicates
    fleet.states[victim] = HostState.UP
    await until(lambda: all(len(h) == 1 for h in fleet.running().values()))
    assert set(fleet.running()) == desired(small_config)


async def test_console_mode_failover_waits_for_approval(engine_of, small_config):
    engine, fleet = await engine_of(small_config)
    await engine.approve(await engine.plan())
    await engine.wait_failover()
    victim = fleet.running()[ReplicaId("db", 0)][0]
    fleet.states[victim] = HostState.DOWN
    await until(lambda: (p := engine.snapshot().pending) is not None and p.reason == f"failover:{victim}")
    assert all(victim not in hosts or len(hosts) == 1 for hosts in fleet.running().values())


async def test_stale_plan_is_refused_with_reasons(engine_of, small_config):
    engine, fleet = await engine_of(small_config)
    plan = await engine.plan()
    fleet.states["c"] = HostState.DOWN
    await until(lambda: engine.snapshot().hosts["c"].state is HostState.DOWN)
    await asyncio.sleep(0.3)
    with pytest.raises(StalePlan) as err:
        await engine.approve(plan)
    assert "c is down since the plan was made (it was up)" in err.value.reasons
    assert fleet.starts == []


async def test_config_change_is_stale_and_replanned(engine_of, small_config):
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    old_plan = await engine.plan()
    services = tuple(dataclasses.replace(s, replicas=2) if s.name == "web" else s for s in small_config.services)
    engine.reload(dataclasses.replace(small_config, services=services))
    assert "web has 2 replicas in the cluster file, the plan assumed 3" in engine.check_stale(old_plan)
    await until(lambda: ReplicaId("web", 2) not in fleet.running())


async def test_crashed_replica_restarts_in_place(engine_of, small_config):
    _engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    replica = ReplicaId("web", 1)
    host = fleet.running()[replica][0]
    fleet.crash_replica(host, replica)
    await until(lambda: fleet.running().get(replica) == [host])
    assert fleet.starts.count((host, replica)) == 2


async def test_a_replica_the_kernel_killed_for_its_memory_is_reported_oom_killed_and_restarted(engine_of, small_config):
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    replica = ReplicaId("web", 0)
    host = fleet.running()[replica][0]
    fleet.crash_replica(host, replica, oom_killed=True)
    await until(lambda: fleet.starts.count((host, replica)) == 2)
    crashes = [e for e in engine.recent_events() if e.kind is EventKind.REPLICA_CRASHED]
    assert [e.message for e in crashes] == [f"web/0 was oom-killed (over its memory limit) on {host}"]
    assert crashes[0].as_json()["oom_killed"] is True


@pytest.mark.parametrize(
    ("status", "said", "fields"),
    [
        (3, "exited with code 3", {"exit_code": 3}),
        (0, "exited with code 0", {"exit_code": 0}),
        (137, "was killed by SIGKILL", {"signal": "SIGKILL"}),  # sh's 128 + 9
        (143, "was killed by SIGTERM", {"signal": "SIGTERM"}),
        (None, "exited", {}),  # nobody recorded it (an older runtime): said as before
    ],
)
async def test_replica_crashed_says_the_exit_code_or_the_signal(engine_of, small_config, status, said, fields):
    """Issue 12, item 14: `replica.crashed` carries how the replica ended, in its message and as fields."""
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    replica = ReplicaId("web", 0)
    host = fleet.running()[replica][0]
    fleet.crash_replica(host, replica, exit_status=status)
    await until(lambda: fleet.starts.count((host, replica)) == 2)
    [crash] = [e for e in engine.recent_events() if e.kind is EventKind.REPLICA_CRASHED]
    assert crash.message == f"web/0 {said} on {host}"
    assert {k: v for k, v in crash.as_json().items() if k in ("exit_code", "signal", "oom_killed")} == fields


async def test_read_only_changes_nothing_but_still_shows_the_plan(engine_of, small_config):
    engine, fleet = await engine_of(small_config, read_only=True, auto_apply=True)
    await until(lambda: engine.snapshot().pending is not None)  # drift is planned and shown
    with pytest.raises(ReadOnly):
        await engine.approve(engine.snapshot().pending)
    fleet.states["a"] = HostState.DOWN  # nor does a failure make it act
    await asyncio.sleep(0.5)
    assert fleet.starts == [] and fleet.stops == []


async def test_plans_are_deterministic(engine_of, small_config):
    e1, _ = await engine_of(small_config)
    e2, _ = await engine_of(small_config)
    p1, p2 = await e1.plan(), await e2.plan()
    assert p1.target == p2.target and p1.actions == p2.actions and p1.basis == p2.basis


async def test_rejected_plan_is_dropped(engine_of, small_config):
    engine, _fleet = await engine_of(small_config)
    plan = await engine.plan()
    await engine.reject(plan)
    assert engine.snapshot().pending is None
    assert any(e.kind is EventKind.PLAN_REJECTED for e in engine.recent_events())


async def test_changed_command_restarts_replicas_in_place_one_at_a_time(engine_of, small_config):
    from core.engine.basis import generation

    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    where = {r: hosts[0] for r, hosts in fleet.running().items()}
    lowest = []
    real_stop = fleet.stop_replica

    async def stop(host, replica, grace=5.0):
        await real_stop(host, replica, grace)
        lowest.append(sum(1 for r in fleet.running() if r.service == "web"))

    fleet.stop_replica = stop
    web = dataclasses.replace(small_config.service("web"), command="sleep 2000")
    services = tuple(web if s.name == "web" else s for s in small_config.services)
    engine.reload(dataclasses.replace(small_config, services=services))
    new = generation(web)
    await until(
        lambda: all(fleet.records[h][r].generation == new for r, h in where.items() if r.service == "web"), timeout=15
    )
    assert {r: hosts[0] for r, hosts in fleet.running().items()} == where  # in place, nothing moved
    assert min(lowest) == 2  # min_healthy = 2: never two web replicas down at once
    assert any(e.message.startswith("restart web/") for e in engine.recent_events())


async def test_a_host_that_comes_back_takes_no_new_work_until_it_settles(engine_of, small_config):
    config = dataclasses.replace(small_config, policy=dataclasses.replace(small_config.policy, settle=1.5))
    engine, fleet = await engine_of(config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(config))
    victim = fleet.running()[ReplicaId("web", 0)][0]
    fleet.states[victim] = HostState.DOWN
    await until(lambda: any(e.kind is EventKind.HOST_DOWN and e.host == victim for e in engine.recent_events()))
    fleet.states[victim] = HostState.UP
    down_at = next(e.at for e in engine.recent_events() if e.kind is EventKind.HOST_DOWN and e.host == victim)
    await until(
        lambda: any(
            e.kind is EventKind.HOST_UP and e.host == victim and e.at >= down_at for e in engine.recent_events()
        )
    )
    plan = await engine.plan()  # web needs the host back (3 replicas, max_per_host = 1)
    assert all(a.to_host != victim for a in plan.actions)
    assert plan.assumed.hosts[victim] == "suspect"  # settling: keeps what it has, takes nothing new
    await asyncio.sleep(1.5)
    plan = await engine.plan()
    assert plan.assumed.hosts[victim] == "up"


async def test_repack_frees_a_host_that_a_rebalance_keeps(engine_of, small_config):
    from core.engine.basis import generation

    engine, fleet = await engine_of(small_config)
    svc = small_config.service("db")
    await fleet.start_replica("c", svc, 0, generation(svc))  # db alone on c, where a or b have room for it
    web = small_config.service("web")
    for i, host in enumerate("ab"):
        await fleet.start_replica(host, web, i, generation(web))
    services = (dataclasses.replace(web, replicas=2, max_per_host=None), svc)
    engine.reload(dataclasses.replace(small_config, services=services))
    steady = await engine.plan()
    assert steady.actions == () and steady.hosts_used == 3
    repack = await engine.plan(repack=True)
    # 2 × web (1 cpu, 1 GiB) + db (2 cpu, 2 GiB) fill one 4-cpu, 8 GiB host: one replica stays, two move to it
    assert repack.reason == "repack" and repack.hosts_used == 1 == repack.lower_bound
    assert [a.kind for a in repack.actions] == [ActionKind.MOVE, ActionKind.MOVE]
    assert len(set(repack.target.assignments.values())) == 1


def journaled_kinds(path):
    import json
    import sqlite3

    with sqlite3.connect(path) as db:
        return [json.loads(doc)["event"] for (doc,) in db.execute("SELECT doc FROM events ORDER BY rowid")]


async def test_a_refused_approval_is_neither_announced_nor_journaled(engine_of, small_config, tmp_path):
    engine, _fleet = await engine_of(small_config, read_only=True)  # journal j0.db
    with pytest.raises(ReadOnly):
        await engine.approve(await engine.plan())
    engine2, fleet2 = await engine_of(small_config)  # journal j1.db
    stale = await engine2.plan()
    fleet2.states["c"] = HostState.DOWN
    await until(lambda: any(e.kind is EventKind.HOST_DOWN for e in engine2.recent_events()))
    with pytest.raises(StalePlan):
        await engine2.approve(stale)
    approved = EventKind.PLAN_APPROVED
    for e, journal in ((engine, "j0.db"), (engine2, "j1.db")):
        assert approved not in [ev.kind for ev in e.recent_events()]
        assert approved.value not in journaled_kinds(tmp_path / journal)
    await engine2.approve(await engine2.plan())  # an approval that happens is announced and journaled, once
    assert [ev.kind for ev in engine2.recent_events()].count(approved) == 1
    assert journaled_kinds(tmp_path / "j1.db").count(approved.value) == 1


async def test_a_solve_shows_its_progress_when_the_clock_reads_zero(tmp_path, small_config, monkeypatch):
    import threading

    from core import optimizer

    gate, real_solve = threading.Event(), optimizer.solve

    def held(*args, **kwargs):
        gate.wait(10)
        return real_solve(*args, **kwargs)

    monkeypatch.setattr(optimizer, "solve", held)
    engine = Engine(small_config, FakeFleet(small_config), Journal(tmp_path / "j.db"), workers=1, clock=lambda: 0.0)
    await engine.start(first_contact_timeout=1, run_loop=False)
    task = asyncio.create_task(engine.plan())
    try:
        await until(lambda: engine.snapshot().solving)
        progress = engine.snapshot().solve_progress
    finally:
        gate.set()
        await task
        await engine.close()
    assert progress is not None and progress.elapsed == 0.0


async def test_roll_forward_keeps_min_healthy(tmp_path, small_config):
    from core.engine.basis import generation
    from core.model import Action

    fleet = FakeFleet(small_config)
    web = small_config.service("web")  # 3 replicas, min_healthy = 2
    for i, host in enumerate("ab"):
        await fleet.start_replica(host, web, i, generation(web))
    journal = Journal(tmp_path / "j.db")
    # a plan that was being applied when the controller stopped: its stop is not done yet
    journal.begin_plan("p", "test", "b", (Action(ActionKind.STOP, ReplicaId("web", 0), from_host="a"),))
    engine = Engine(small_config, fleet, journal, workers=1)
    await engine.start(first_contact_timeout=1, run_loop=False)
    await engine.close()
    assert sorted(fleet.running()) == [ReplicaId("web", 0), ReplicaId("web", 1)]
    [step] = journal.actions("p")
    assert step.state == "failed" and "below min_healthy = 2" in (step.error or "")


async def test_a_host_lying_about_start_times_cannot_make_the_controller_stop_the_real_replicas(tmp_path, small_config):
    # Issue 10, defect 6: a host reporting svc/0..2 with started_at=1 made the controller stop the real
    # replicas elsewhere (the copy that had "served longest" was kept). Its records are evidence, not
    # authority: the journal never started those copies there, so they are foreign and left alone.
    from core.model import ReplicaStatus

    fleet = FakeFleet(small_config)
    first = Engine(small_config, fleet, Journal(tmp_path / "j.db"), workers=1, auto_apply=True)
    await first.start(first_contact_timeout=1)
    try:
        await until(lambda: set(fleet.running()) == desired(small_config))
    finally:
        await first.close(grace=5)
    real = {r: hosts[0] for r, hosts in fleet.running().items()}
    liar = real[ReplicaId("web", 2)]  # a host running one real web copy reports the other two as well
    for i in range(3):
        replica = ReplicaId("web", i)
        if real[replica] != liar:
            fleet.records[liar][replica] = ReplicaStatus(replica, liar, pid=4242 + i, running=True, started_at=1.0)

    second = Engine(small_config, fleet, Journal(tmp_path / "j.db"), workers=1, auto_apply=True)  # a restart
    seen = second.subscribe()
    await second.start(first_contact_timeout=1)
    try:
        await asyncio.sleep(1.0)  # several ticks: tidy and drift have had their go
        assert fleet.stops == [], f"stopped {fleet.stops}"
        assert all(real[r] in fleet.running()[r] for r in real), "a real copy was stopped"
        foreign = sorted((r.replica, r.host) for r in second.snapshot().foreign)
        assert foreign == sorted((ReplicaId("web", i), liar) for i in range(3) if real[ReplicaId("web", i)] != liar)
        events = []
        while not seen.empty():
            events.append(seen.get_nowait())
        assert sorted((e.replica, e.host) for e in events if e.kind is EventKind.REPLICA_FOREIGN) == foreign
        assert all(len(hosts) == 1 for r, hosts in second.snapshot().running().items() if r.service == "db")
    finally:
        await second.close(grace=5)


async def test_a_failed_start_is_retried_with_backoff_and_shown_until_it_succeeds(engine_of, small_config):
    # Issue 10, defect 2 (the engine's half): a start that failed (the state directory briefly unwritable)
    # was never tried again — the drift it left looked already planned for — and status showed 7/8 for good.
    fleet_fails = {"a", "b", "c"}
    engine, fleet = await engine_of(small_config, auto_apply=True)
    fleet.fail_starts_on.update(fleet_fails)
    await until(lambda: engine.snapshot().retrying)
    first = dict(engine.snapshot().retrying)
    assert all(why.startswith("retrying (1): ") and "start failed" in why for why in first.values()), first
    await until(lambda: any(why.startswith("retrying (2): ") for why in engine.snapshot().retrying.values()), 5)
    fleet.fail_starts_on.clear()  # the directory is writable again
    await until(lambda: set(fleet.running()) == desired(small_config), 10)
    await until(lambda: not engine.snapshot().retrying, 5)


async def test_what_every_host_lost_is_started_again_when_they_come_back(engine_of, small_config):
    # CI (ha/test_cli, drain): with every host down the drift's plan was infeasible, nothing was applied, so
    # nothing waited for a retry, and hosts coming back left the drift unchanged — "already planned": the
    # fleet stayed empty until something else changed.
    engine, fleet = await engine_of(small_config, auto_apply=True)
    await until(lambda: set(fleet.running()) == desired(small_config))
    for host in "abc":
        await fleet.crash(host)
    await until(lambda: all(o.state is HostState.DOWN for o in engine.snapshot().hosts.values()))
    await until(
        lambda: any(
            e.kind is EventKind.PLAN_COMPUTED and "infeasible" in e.message and "drift" in e.message
            for e in engine.recent_events()
        )
    )
    for host in "abc":
        await fleet.restore(host)
    await until(lambda: set(fleet.running()) == desired(small_config))
