"""Clustered mode end to end, in-process: engines on one demo fleet (real asyncssh hosts, the real shell
runtime and its fences), each with its own SSH fleet, its own EtcdStore and its own Election on a real
3-member etcd. One leads and acts; the others stand by; a takeover rolls forward what the old leader
left; a deposed leader's actions are refused by the hosts; quorum loss stops the leader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from console.derive import FleetSummary
from console.widgets.summary import summary_text
from core.api.leader import controller_document
from core.engine.engine import Engine
from core.engine.events import Event, EventKind
from core.errors import Fenced, LoadmasterError, NotHolder
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.model import Action, ActionKind, ReplicaId, Resources, Service
from core.store.election import Election
from core.store.etcd import EtcdClient
from core.store.etcd_store import EtcdStore
from core.store.localetcd import LocalEtcd
from tests.conftest import demo_cluster
from tests.e2e.test_two_controllers import copies

SERVICES = (
    Service("web", "sleep 603", 4, Resources(500, 256 << 20), max_per_host=2),
    Service("db", "sleep 604", 2, Resources(1000, 1 << 30), max_per_host=1),
)
TIMEOUT = 6.0  # the lease TTL (3 s by default; 6 here: a machine shared with other test runs starves loops)


async def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@dataclass
class Daemon:
    name: str
    engine: Engine
    election: Election
    store: EtcdStore
    fleet: Fleet
    events: list[Event] = field(default_factory=list)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    @property
    def acting(self) -> bool:
        return not self.engine.snapshot().read_only

    async def crash(self) -> None:
        """As kill -9: the lease is not given back, nothing is flushed."""
        for task in self.election._tasks:
            task.cancel()
        await self.engine.close(grace=0)


@pytest.fixture
async def daemons(etcd: LocalEtcd, prefix: str, tmp_path: Path, demo_fleet):  # type: ignore[no-untyped-def]
    made: list[Daemon] = []
    config = demo_cluster(4, services=SERVICES, poll_interval=0.3, failure_timeout=TIMEOUT)
    demo: DemoFleet = await demo_fleet(config)

    async def make(name: str, *, start: bool = True) -> Daemon:
        client = EtcdClient(etcd.endpoints, timeout=1.0)
        store = await EtcdStore(client, prefix, tmp_path / name).open()
        election = Election(client, prefix, name, TIMEOUT, poll=0.1)
        fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key], controller=name)
        engine = Engine(demo.config, fleet, store, auto_apply=True, failover_auto=True, workers=1, election=election)
        d = Daemon(name, engine, election, store, fleet)
        queue = engine.subscribe()

        async def follow() -> None:
            while True:
                event = await queue.get()
                if event.kind is not EventKind.STATE_UPDATED:
                    d.events.append(event)
                    print(name, event.kind.value, event.message)  # shown when the test fails

        asyncio.get_running_loop().create_task(follow())
        if start:
            await election.start()
            await engine.start()
        made.append(d)
        return d

    yield demo, make
    for d in made:
        await d.engine.close(grace=1)
        await d.election.close()
        await d.store.aclose()


async def test_one_leader_acts_and_a_standby_takes_over_after_kill(daemons) -> None:  # type: ignore[no-untyped-def]
    demo, make = daemons
    ds = [await make(n) for n in ("a", "b", "c")]
    await until(lambda: copies(demo) == {"web": 4, "db": 2}, 30, "every replica runs once")
    await until(lambda: sum(d.acting for d in ds) == 1, TIMEOUT, "exactly one acts")
    leader = next(d for d in ds if d.acting)
    others = [d for d in ds if d is not leader]
    for d in others:
        snap = d.engine.snapshot()
        assert snap.read_only and snap.controller is not None and snap.controller.leader == leader.name
        assert EventKind.ACTION_STARTED not in d.kinds()
        # status, the console header and the API say the same words
        assert controller_document(d.engine)["words"] == f"standby (leader: {leader.name})"
        header = summary_text(snap, FleetSummary(4, 0, 0, Resources(0, 0), Resources(0, 0)), read_only=True).plain
        assert f"STANDBY (leader: {leader.name})" in header
        with pytest.raises(NotHolder):  # a console on a standby is read-only
            await d.engine.approve(await d.engine.plan())
    assert controller_document(leader.engine)["words"] == "leader"
    epoch = leader.election.epoch
    await leader.crash()
    took = await until(lambda: any(d.acting for d in others), 2 * TIMEOUT + 4, "a standby takes over")
    # The target (failure_timeout + 2 s) is benchmarks/ha.py's to measure, on its own; here, on a machine shared
    # with other test runs, the bound is looser but still says the lease, not a host timeout, decided it.
    assert took <= TIMEOUT + 4.0, took
    new = next(d for d in others if d.acting)
    assert new.election.epoch > epoch
    acting = [e for e in new.events if e.kind is EventKind.CONTROLLER_ACTING]
    assert acting and acting[-1].data["epoch"] == new.election.epoch
    await asyncio.sleep(1.0)
    assert copies(demo) == {"web": 4, "db": 2}
    assert sum(d.acting for d in others) == 1


async def test_step_down_through_the_engine_hands_the_lead_over(daemons) -> None:  # type: ignore[no-untyped-def]
    demo, make = daemons
    a = await make("a")
    await until(lambda: a.acting, 10, "a leads")
    b = await make("b")
    with pytest.raises(LoadmasterError):
        await b.engine.step_down()  # b does not lead: it says who does
    await a.engine.step_down()  # as SIGUSR1 and POST /v1/leader/step-down do
    assert not a.acting  # at once, not at the next tick
    await until(lambda: b.acting, 2 * TIMEOUT + 4, "b takes the lead")
    await asyncio.sleep(1.0)
    assert not a.acting and copies(demo) == {"web": 4, "db": 2}


async def test_a_drain_given_to_any_controller_holds_across_a_takeover(daemons) -> None:  # type: ignore[no-untyped-def]
    demo, make = daemons
    a = await make("a")
    await until(lambda: copies(demo) == {"web": 4, "db": 2}, 30, "every replica runs once")
    b = await make("b")
    await until(lambda: b.engine.snapshot().controller.leader == "a", 5, "b knows a leads")  # type: ignore[union-attr]
    busiest = max(("h1", "h2", "h3", "h4"), key=lambda h: len(a.engine.snapshot().placement.on_host(h)))
    assert await b.engine.drain(busiest) is None  # a standby does not move replicas: the leader does
    await until(lambda: a.engine.snapshot().holds.get(busiest) == "drained", 15, "the leader drains it")
    await a.crash()
    await until(lambda: b.acting, 2 * TIMEOUT + 4, "b takes over")
    # The new leader has the hold from etcd: the host stays empty while b plans for the whole fleet.
    await asyncio.sleep(2.0)
    assert b.engine.snapshot().holds.get(busiest) in ("draining", "drained")
    assert b.engine.snapshot().placement.on_host(busiest) == () and copies(demo) == {"web": 4, "db": 2}
    await b.engine.uncordon(busiest)
    assert b.engine.snapshot().holds == {}


async def test_the_new_leader_rolls_forward_a_half_applied_plan(daemons, etcd: LocalEtcd, prefix: str,
                                                                tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    demo, make = daemons
    # What a leader killed mid-apply leaves in etcd: a plan begun, its first action done, the second not.
    old = await EtcdStore(EtcdClient(etcd.endpoints), prefix, tmp_path / "old").open()
    actions = (Action(ActionKind.START, ReplicaId("db", 0), None, "h1"),
               Action(ActionKind.START, ReplicaId("db", 1), None, "h2"))  # fmt: skip
    old.begin_plan("half", "drift", "", actions)
    old.set_action("half", 0, "done")
    old.set_action("half", 1, "running")
    await old.aclose()
    d = await make("b")
    await until(lambda: copies(demo) == {"web": 4, "db": 2}, 30, "every replica runs once")
    resumed = [e for e in d.events if e.kind is EventKind.PLAN_APPROVED and "resuming plan half" in e.message]
    assert resumed and "1 actions left" in resumed[0].message
    first = next(e for e in d.events if e.kind is EventKind.ACTION_STARTED)
    assert "db/1" in first.message and "h2" in first.message  # the action left over, before any new plan
    assert d.store.plan_status("half") == "done"


async def test_a_deposed_leader_is_refused_by_the_hosts_and_starts_nothing(daemons) -> None:  # type: ignore[no-untyped-def]
    demo, make = daemons
    a = await make("a")
    await until(lambda: copies(demo) == {"web": 4, "db": 2}, 30, "every replica runs once")
    b = await make("b")
    await until(lambda: b.engine.snapshot().controller.leader == "a", 5, "b knows a leads")  # type: ignore[union-attr]
    # a is paused: its lease runs out (no keepalive) while b takes the hosts over with a higher epoch.
    for task in a.election._tasks:
        task.cancel()
    await until(lambda: b.acting, TIMEOUT + 4, "b takes over")
    # a wakes up believing it leads: its own guard refuses at once (its lease ran out by its clock) ...
    web = SERVICES[0]
    with pytest.raises(NotHolder):
        await a.engine._runtime.start_replica("h1", web, 0, "g")
    # ... and had it already passed that check, the hosts refuse its token: every host b touched.
    fenced = 0
    for host in ("h1", "h2", "h3", "h4"):
        with pytest.raises(Fenced):
            await a.fleet.start_replica(host, web, 0, "g")
        fenced += 1
    assert fenced == 4
    await asyncio.sleep(1.0)
    assert copies(demo) == {"web": 4, "db": 2}  # nothing ran twice


async def test_member_loss_one_of_three_changes_nothing_two_stop_the_leader_until_quorum_returns(
    daemons, etcd: LocalEtcd
) -> None:  # type: ignore[no-untyped-def]
    demo, make = daemons
    a = await make("a")
    await until(lambda: copies(demo) == {"web": 4, "db": 2}, 30, "every replica runs once")
    etcd.stop_member("m0")
    await asyncio.sleep(TIMEOUT * 1.5)
    assert a.acting and EventKind.CONTROLLER_FENCED not in a.kinds()
    etcd.stop_member("m1")
    await until(lambda: not a.acting, TIMEOUT + 2, "the leader stops acting")
    await until(lambda: EventKind.CONTROLLER_FENCED in a.kinds(), 2, "it says so")
    said = [e for e in a.events if e.kind is EventKind.CONTROLLER_FENCED]
    assert "lost the lead" in said[-1].message
    await demo.crash("h4")  # a failure while nobody may act: nothing is started
    await asyncio.sleep(TIMEOUT)
    assert EventKind.ACTION_STARTED not in a.kinds()[a.kinds().index(EventKind.CONTROLLER_FENCED) :]
    etcd.start_member("m0")
    etcd.start_member("m1")
    await until(lambda: a.acting, 30, "the leader acts again once quorum returns")
    await until(lambda: copies(demo) == {"web": 4, "db": 2}, 30, "h4's replicas run elsewhere")
