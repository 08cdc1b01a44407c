"""Two controllers on one demo fleet (in-process, each with its own SSH fleet and id): one acts, the
other stands by read-only, takes over when the holder is gone, and a take-over fences the holder off."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest

from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.errors import NotHolder
from core.hostlink.demo import HOME_MARK, DemoFleet
from core.hostlink.fleet import Fleet
from core.model import Resources, Service
from tests.conftest import demo_cluster

SERVICES = (
    Service("web", "sleep 603", 4, Resources(500, 256 << 20), max_per_host=2),
    Service("db", "sleep 604", 2, Resources(1000, 1 << 30), max_per_host=1),
)
DESIRED = {str(r) for s in SERVICES for r in s.replica_ids()}


async def until(predicate, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def copies(demo: DemoFleet) -> dict[str, int]:
    """Service → processes running its command on this demo fleet's hosts, counted on the machine (not from
    any record; other tests may run the same commands at the same time): `sleep 603` is web, `sleep 604` db."""
    homes = {str(demo.workdir / "hosts" / h.name / "home") for h in demo.hosts}
    out = {"web": 0, "db": 0}
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd[:1] != ["sleep"] or cmd[1:] not in (["603"], ["604"]):
            continue
        try:
            if proc.environ().get(HOME_MARK) not in homes:
                continue
        except psutil.Error:
            continue
        out["web" if cmd[1] == "603" else "db"] += 1
    return out


def controller(demo: DemoFleet, name: str, journal: Path, **kw: object) -> tuple[Engine, list[EventKind]]:
    fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key], controller=name)
    engine = Engine(demo.config, fleet, Journal(journal), auto_apply=True, failover_auto=True, workers=1, **kw)
    kinds: list[EventKind] = []
    queue = engine.subscribe()

    async def follow() -> None:
        while True:
            event = await queue.get()
            kinds.append(event.kind)
            if event.kind is not EventKind.STATE_UPDATED:
                print(name, event.kind.value, event.message)  # shown when the test fails

    asyncio.get_running_loop().create_task(follow())
    return engine, kinds


@pytest.mark.parametrize("shared_journal", [True, False], ids=["one-journal", "two-journals"])
async def test_two_controllers_started_together_one_acts_the_other_takes_over_when_it_is_gone(
    demo_fleet, tmp_path, shared_journal
):
    config = demo_cluster(4, services=SERVICES, poll_interval=0.3, failure_timeout=1.5)
    demo = await demo_fleet(config)
    a, a_events = controller(demo, "ctl-a", tmp_path / "a.db")
    b, b_events = controller(demo, "ctl-b", tmp_path / ("a.db" if shared_journal else "b.db"))
    try:
        await asyncio.gather(a.start(), b.start())
        await until(lambda: set(map(str, a.snapshot().running())) == DESIRED, 20, "every replica runs")
        await asyncio.sleep(1.5)  # both have had several ticks
        roles = {e.snapshot().controller.role.value for e in (a, b)}  # type: ignore[union-attr]
        assert roles == {"acting", "standby"}, roles
        holder, standby = (a, b) if a.snapshot().controller.role.value == "acting" else (b, a)  # type: ignore[union-attr]
        standby_events = b_events if holder is a else a_events
        assert EventKind.ACTION_STARTED not in standby_events
        assert EventKind.CONTROLLER_STANDBY in standby_events
        assert EventKind.REPLICA_FOREIGN not in standby_events, "the holder's replicas are not foreign to a standby"
        assert copies(demo) == {"web": 4, "db": 2}
        seen = standby.snapshot()
        assert seen.read_only and seen.controller is not None and seen.controller.holder is not None
        assert seen.controller.holder.holder == holder.snapshot().controller.me  # type: ignore[union-attr]
        with pytest.raises(NotHolder):
            await standby.approve(await standby.plan())

        await holder.close()
        took = await until(lambda: EventKind.CONTROLLER_ACTING in standby_events, 10, "the standby takes over")
        assert took <= config.failure_timeout + 2.0, took
        assert not standby.snapshot().read_only
        await asyncio.sleep(1.0)
        assert copies(demo) == {"web": 4, "db": 2}
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_take_over_fences_the_live_holder_off(demo_fleet, tmp_path):
    config = demo_cluster(3, services=SERVICES[:1], poll_interval=0.3, failure_timeout=1.5)
    demo = await demo_fleet(config)
    a, a_events = controller(demo, "ctl-a", tmp_path / "a.db")
    try:
        await a.start()
        await until(lambda: len(a.snapshot().running()) == 4, 20, "every replica runs")
        b, b_events = controller(demo, "ctl-b", tmp_path / "b.db", take_over=True)
        try:
            await b.start()
            await until(lambda: EventKind.CONTROLLER_ACTING in b_events, 2, "the new controller acts")
            await until(lambda: EventKind.CONTROLLER_FENCED in a_events, 5, "the old holder sees it is fenced")
            assert a.snapshot().read_only and not b.snapshot().read_only
            await asyncio.sleep(1.0)
            assert copies(demo)["web"] == 4
        finally:
            await b.close()
    finally:
        await a.close()
