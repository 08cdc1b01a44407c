import asyncio

from core.engine.apply import apply_plan
from core.engine.journal import Journal
from core.model import Action, ActionKind, HostState, Placement, Plan, ReplicaId, SolverStatus
from tests.fake_fleet import FakeFleet

W = [ReplicaId("web", i) for i in range(3)]
UP = HostState.UP


def plan_of(*actions):
    p = Placement()
    return Plan("t", "b", 0.0, p, p, tuple(actions), SolverStatus.OPTIMAL, 0, 0, 0.0)


async def test_move_starts_before_it_stops(tmp_path, small_config):
    fleet = FakeFleet(small_config)
    svc = small_config.service("web")
    await fleet.start_replica("a", svc, 0, "g")
    order = []
    real_start, real_stop = fleet.start_replica, fleet.stop_replica

    async def start(*a, **k):
        order.append("start")
        return await real_start(*a, **k)

    async def stop(*a, **k):
        order.append("stop")
        return await real_stop(*a, **k)

    fleet.start_replica, fleet.stop_replica = start, stop
    journal = Journal(tmp_path / "j.db")
    plan = plan_of(Action(ActionKind.MOVE, W[0], "a", "b"))
    journal.begin_plan("p1", "test", "b", plan.actions)
    progress = await apply_plan("p1", plan, small_config, {"a": UP, "b": UP}, fleet, journal, lambda *a: None)
    assert order == ["start", "stop"]
    assert fleet.running() == {W[0]: ["b"]}
    assert progress.finished and not progress.failed
    assert [a.state for a in journal.actions("p1")] == ["done"]
    assert journal.plan_status("p1") == "done"


async def test_failed_start_leaves_the_source_running(tmp_path, small_config):
    fleet = FakeFleet(small_config)
    await fleet.start_replica("a", small_config.service("web"), 0, "g")
    fleet.fail_starts_on.add("b")
    journal = Journal(tmp_path / "j.db")
    plan = plan_of(Action(ActionKind.MOVE, W[0], "a", "b"))
    journal.begin_plan("p", "test", "b", plan.actions)
    progress = await apply_plan("p", plan, small_config, {"a": UP, "b": UP}, fleet, journal, lambda *a: None)
    assert fleet.running() == {W[0]: ["a"]}
    assert "start failed" in next(iter(progress.failed.values()))
    assert journal.actions("p")[0].state == "failed" and journal.plan_status("p") == "failed"


async def test_stops_wait_for_every_start(tmp_path, small_config):
    fleet = FakeFleet(small_config)
    svc = small_config.service("web")
    await fleet.start_replica("a", svc, 2, "g")
    seen_running_at_stop = []
    real_stop = fleet.stop_replica

    async def stop(host, replica, grace=5.0):
        seen_running_at_stop.append(len(fleet.running()))
        await real_stop(host, replica, grace)

    fleet.stop_replica = stop
    plan = plan_of(
        Action(ActionKind.STOP, W[2], from_host="a"),
        Action(ActionKind.START, W[0], to_host="b"),
        Action(ActionKind.START, W[1], to_host="c"),
    )
    await apply_plan("p", plan, small_config, {h: UP for h in "abc"}, fleet, Journal(tmp_path / "j"), lambda *a: None)
    assert seen_running_at_stop == [3]
    assert sorted(fleet.running()) == [W[0], W[1]]


async def test_move_off_a_lost_host_only_starts(tmp_path, small_config):
    fleet = FakeFleet(small_config)
    await fleet.start_replica("a", small_config.service("web"), 0, "g")
    fleet.states["a"] = HostState.DOWN
    plan = plan_of(Action(ActionKind.MOVE, W[0], "a", "b"))
    states = {"a": HostState.DOWN, "b": UP}
    progress = await apply_plan("p", plan, small_config, states, fleet, Journal(tmp_path / "j"), lambda *a: None)
    assert not progress.failed
    assert sorted(fleet.running()[W[0]]) == ["a", "b"]  # a's copy is stopped as a duplicate when a returns


async def test_per_host_parallelism_is_bounded(tmp_path, small_config):
    from core.engine.apply import Limits

    fleet = FakeFleet(small_config)
    active, peak = 0, 0
    real_start = fleet.start_replica

    async def start(*a, **k):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return await real_start(*a, **k)

    fleet.start_replica = start
    svc = small_config.service("web")
    plan = plan_of(*(Action(ActionKind.START, ReplicaId("web", i), to_host="a") for i in range(8)))
    await apply_plan(
        "p", plan, small_config, {"a": UP}, fleet, Journal(tmp_path / "j"), lambda *a: None, limits=Limits(per_host=2)
    )
    assert peak == 2
    assert len(fleet.running()) == 8 and svc.replicas == 3  # the plan, not the file, says what to start


async def test_stopping_leaves_the_rest_pending_for_roll_forward(tmp_path, small_config):
    fleet = FakeFleet(small_config)
    journal = Journal(tmp_path / "j.db")
    started = []

    def notify(progress, action, state, error):
        if state == "done":
            started.append(action)

    plan = plan_of(*(Action(ActionKind.START, W[i], to_host="abc"[i]) for i in range(3)))
    journal.begin_plan("p", "test", "b", plan.actions)
    await apply_plan(
        "p", plan, small_config, {h: UP for h in "abc"}, fleet, journal, notify,
        stopping=lambda: len(started) >= 1,
    )  # fmt: skip
    states = [a.state for a in journal.actions("p")]
    assert states.count("pending") >= 1
    assert journal.plan_status("p") == "applying"
    assert [pid for pid, _ in journal.unfinished()] == ["p"]
    # roll forward: done ones are skipped, the rest run once
    done = frozenset(a.seq for a in journal.actions("p") if a.state == "done")
    before = len(fleet.starts)
    await apply_plan("p", plan, small_config, {h: UP for h in "abc"}, fleet, journal, lambda *a: None,
                     already_done=done)  # fmt: skip
    assert len(fleet.starts) - before == 3 - len(done)
    assert journal.plan_status("p") == "done"
    assert all(len(hosts) == 1 for hosts in fleet.running().values()) and len(fleet.running()) == 3


async def test_a_stop_never_takes_a_service_below_min_healthy(tmp_path, small_config):
    fleet = FakeFleet(small_config)
    svc = small_config.service("web")  # replicas 3, min_healthy 2
    for i, host in enumerate("ab"):
        await fleet.start_replica(host, svc, i, "g")
    journal = Journal(tmp_path / "j")
    plan = plan_of(Action(ActionKind.STOP, W[0], from_host="a"))
    journal.begin_plan("p", "test", "b", plan.actions)
    states = {h: UP for h in "abc"}
    progress = await apply_plan("p", plan, small_config, states, fleet, journal, lambda *a: None, running={"web": 2})
    assert "below min_healthy = 2" in next(iter(progress.failed.values()))
    assert sorted(fleet.running()) == [W[0], W[1]]
    # a replica beyond the declared count (the file scaled down) may always go
    extra = ReplicaId("web", 5)
    await fleet.start_replica("c", svc, 5, "g")
    plan = plan_of(Action(ActionKind.STOP, extra, from_host="c"))
    await apply_plan("q", plan, small_config, states, fleet, journal, lambda *a: None, running={"web": 2})
    assert extra not in fleet.running()


def test_the_event_log_keeps_only_the_newest(tmp_path, monkeypatch):
    from core.engine import journal as journal_module

    monkeypatch.setattr(journal_module, "EVENTS_KEPT", 1500)
    journal = Journal(tmp_path / "j.db")
    for i in range(3000):
        journal.log_event(float(i), {"i": i})
    rows = journal._db.execute("SELECT min(at), max(at), count(*) FROM events").fetchone()
    assert rows == (1500.0, 2999.0, 1500)
