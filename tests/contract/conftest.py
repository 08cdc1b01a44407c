"""The two engines the contract holds: the real `Engine` over an in-memory fleet, and the console's fake.

Both start from the same fleet (fleet.py: `CONFIG`, everything in `RUNNING` already running), so every
contract test states one expectation and runs it on each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from core.engine.api import EngineAPI, Snapshot
from core.engine.engine import Engine
from core.engine.journal import Journal
from core.model import HostState
from tests.console.fake_engine import FakeEngine, derive
from tests.console.fleet_data import T0, observe
from tests.contract.fleet import CONFIG, RUNNING
from tests.fake_fleet import FakeFleet

Make = Callable[..., Awaitable[EngineAPI]]


@pytest.fixture(params=["engine", "fake"])
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Make]:
    """`await make(read_only=…, demo=…, failover_auto=…)`: an engine of the kind under test over the fleet."""
    engines: list[Engine] = []

    async def real(*, read_only: bool = False, demo: bool = False, failover_auto: bool | None = None) -> EngineAPI:
        config = replace(CONFIG, demo=demo)
        fleet = FakeFleet(config)
        fleet.run(RUNNING)
        journal = Journal(tmp_path / f"journal{len(engines)}.db")
        for replica, host in RUNNING.assignments.items():  # what runs was started by this cluster's controller
            journal.record_placed(replica, host, 0)
        engine = Engine(
            config, fleet, journal, read_only=read_only, failover_auto=failover_auto, demo=fleet if demo else None,
            workers=1,
        )  # fmt: skip
        engines.append(engine)
        await engine.start(first_contact_timeout=1)
        await engine.wait_failover()
        return engine

    async def fake(*, read_only: bool = False, demo: bool = False, failover_auto: bool | None = None) -> EngineAPI:
        config = replace(CONFIG, demo=demo)
        states = {h.name: HostState.UP for h in config.hosts}
        hosts = observe(config, RUNNING, states, T0, 0)
        snapshot = Snapshot(at=T0, config=config, hosts=hosts, placement=RUNNING, read_only=read_only, demo=demo)
        return FakeEngine(derive(snapshot), failover_auto=failover_auto)

    yield real if request.param == "engine" else fake
    for engine in engines:
        await engine.close(grace=5)
