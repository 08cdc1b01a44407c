"""Plans never act on a host that cannot be reached (issue 12, item 12).

A host whose sshd stopped answering is SUSPECT until `failure_timeout` declares it DOWN. A stop, move or
restart there would fail (`0 done, 2 failed` on a real fleet), so what runs there waits in the plan, with
the reason, until the host answers again or is declared down (then failover moves it)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from core import config as config_io
from core.engine.engine import Engine
from core.engine.events import Event, EventKind
from core.engine.journal import Journal
from core.model import ActionKind, HostState, Placement, ReplicaId
from tests.fake_fleet import FakeFleet

TWO = """
[cluster]
name = "t"
poll_interval = "100ms"
failure_timeout = "30s"

[policy]
solver_time_limit = "2s"
settle = "0s"

[[hosts]]
name = "a"
address = "10.0.0.1"
capacity = { cpu = 4, mem = "8GiB" }

[[hosts]]
name = "c"
address = "10.0.0.3"
capacity = { cpu = 4, mem = "8GiB" }

[[services]]
name = "web"
command = "sleep 1000"
replicas = 2
cpu = 1
mem = "1GiB"
"""


@asynccontextmanager
async def running(toml: str, placement: Placement, tmp_path: Path) -> AsyncIterator[tuple[Engine, FakeFleet]]:
    """An engine over a fleet already running `placement`, started under epoch 0, which its journal trusts."""
    config = config_io.parse(toml, "two.toml")
    fleet = FakeFleet(config)
    fleet.run(placement)
    for records in fleet.records.values():
        records.update({r: dataclasses.replace(status, epoch=0) for r, status in records.items()})
    journal = Journal(tmp_path / "j.db")
    journal.trust_epoch(0, "-")
    engine = Engine(config, fleet, journal, workers=1)
    await engine.start(first_contact_timeout=1)
    try:
        yield engine, fleet
    finally:
        await engine.close(grace=5)


async def _until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_repack_leaves_the_replica_on_a_suspect_host_where_it_runs(tmp_path: Path) -> None:
    web0, web1 = ReplicaId("web", 0), ReplicaId("web", 1)
    async with running(TWO, Placement({web0: "a", web1: "c"}), tmp_path) as (engine, fleet):
        await _suspect_repack(engine, fleet, web1)


async def _suspect_repack(engine: Engine, fleet: FakeFleet, web1: ReplicaId) -> None:
    await _until(lambda: engine.snapshot().placement.host_of(web1) == "c")
    fleet.states["c"] = HostState.SUSPECT  # its sshd paused: the records are still the last ones seen
    await _until(lambda: engine.snapshot().hosts["c"].state is HostState.SUSPECT)

    plan = await engine.plan(repack=True)  # packing both onto a would free c
    assert [a for a in plan.actions if "c" in (a.from_host, a.to_host)] == []
    assert plan.target.host_of(web1) == "c"
    assert "c is suspect" in plan.waiting[web1] and "declared down" in plan.waiting[web1]

    fleet.states["c"] = HostState.UP  # back: the same repack now moves it
    await _until(lambda: engine.snapshot().hosts["c"].state is HostState.UP)
    plan = await engine.plan(repack=True)
    assert [a.kind for a in plan.actions] == [ActionKind.MOVE] and not plan.waiting


async def test_a_stop_on_a_suspect_host_waits_too(tmp_path: Path) -> None:
    """Scaling down picks the replica on the unreachable host; the stop waits instead of failing."""
    extra = ReplicaId("web", 1)
    one = TWO.replace("replicas = 2", "replicas = 1")
    async with running(one, Placement({ReplicaId("web", 0): "a", extra: "c"}), tmp_path) as (engine, fleet):
        await _until(lambda: engine.snapshot().placement.host_of(extra) == "c")
        fleet.states["c"] = HostState.SUSPECT
        await _until(lambda: engine.snapshot().hosts["c"].state is HostState.SUSPECT)
        queue = engine.subscribe()
        plan = await engine.plan()
        assert plan.actions == () and extra in plan.waiting
        computed = [e for e in _drain(queue) if e.kind is EventKind.PLAN_COMPUTED]
        assert computed and "1 replicas wait for unreachable hosts" in computed[-1].message
        assert computed[-1].data["waiting"] == {"web/1": plan.waiting[extra]}


def _drain(queue: asyncio.Queue[Event]) -> list[Event]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out
