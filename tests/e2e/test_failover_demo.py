"""The engine over the embedded demo fleet in-process: a crashed host is failed over, nothing doubles."""

from __future__ import annotations

import asyncio
import time

from core.engine.engine import Engine
from core.engine.journal import Journal
from core.hostlink.demo import DemoFleet
from core.hostlink.fleet import Fleet
from core.model import HostState, ReplicaId, Resources, Service
from tests.conftest import demo_cluster


async def until(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def auto_engine(demo_fleet, config, tmp_path) -> tuple[Engine, DemoFleet]:
    """An auto-applying engine over a started demo fleet of `config`."""
    demo = await demo_fleet(config)
    fleet = Fleet(demo.config, known_hosts=demo.known_hosts, client_keys=[demo.client_key])
    engine = Engine(demo.config, fleet, Journal(tmp_path / "j.db"), auto_apply=True, demo=demo, workers=1)
    await engine.start()
    return engine, demo


async def test_crashed_host_is_down_within_the_timeout_and_its_replicas_run_elsewhere(demo_fleet, tmp_path):
    services = (
        Service("web", "sleep 600", 4, Resources(500, 256 << 20), max_per_host=2),
        Service("db", "sleep 601", 1, Resources(1000, 1 << 30)),
    )
    config = demo_cluster(4, services=services, poll_interval=0.5, failure_timeout=1.5)
    engine, _demo = await auto_engine(demo_fleet, config, tmp_path)
    try:
        desired = {r for s in services for r in s.replica_ids()}
        await until(lambda: set(engine.snapshot().running()) == desired, 20)
        await engine.wait_failover()
        victim = engine.snapshot().running()[ReplicaId("db", 0)][0]
        displaced = {r for r, hosts in engine.snapshot().running().items() if victim in hosts}
        crashed_at = time.monotonic()
        await engine.stop_demo_host(victim)
        down_after = await until(lambda: engine.snapshot().hosts[victim].state is HostState.DOWN, 10)
        assert down_after <= config.failure_timeout + config.poll_interval + 0.5
        await until(lambda: all(r in engine.snapshot().running() for r in displaced), 10)
        mttr = time.monotonic() - crashed_at
        assert mttr < 5, mttr
        assert all(victim not in hosts for hosts in engine.snapshot().running().values())

        await engine.restore_demo_host(victim)
        await until(lambda: engine.snapshot().hosts[victim].state is HostState.UP, 10)
        await asyncio.sleep(1.5)
        assert set(engine.snapshot().running()) == desired
        assert all(len(hosts) == 1 for hosts in engine.snapshot().running().values())
    finally:
        await engine.close()


async def test_cut_off_host_copies_are_stopped_when_it_returns(demo_fleet, tmp_path):
    services = (Service("web", "sleep 602", 3, Resources(500, 256 << 20), max_per_host=1),)
    config = demo_cluster(4, services=services, poll_interval=0.5, failure_timeout=1.5)
    engine, demo = await auto_engine(demo_fleet, config, tmp_path)
    try:
        desired = set(services[0].replica_ids())
        await until(lambda: set(engine.snapshot().running()) == desired, 20)
        victim = engine.snapshot().running()[ReplicaId("web", 0)][0]
        await demo.cut_off(victim)  # a partition: its replica keeps running, unseen
        await until(lambda: engine.snapshot().hosts[victim].state is HostState.DOWN, 10)
        await until(lambda: ReplicaId("web", 0) in engine.snapshot().running(), 10)
        await demo.restore(victim)
        await until(lambda: engine.snapshot().hosts[victim].state is HostState.UP, 15)
        # the partitioned copy came back alongside the failed-over one: one of them is stopped
        await until(
            lambda: (
                all(len(h) == 1 for h in engine.snapshot().running().values())
                and set(engine.snapshot().running()) == desired
            ),
            15,
        )
    finally:
        await engine.close()
