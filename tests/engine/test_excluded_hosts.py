"""One host's impossible numbers exclude that host from planning, never the whole plan (issue 10, defect 10).

A host that reported a negative MemTotal once stopped every plan of the cluster: the planner raised
"reserve is larger than its capacity" (no reserve was set), on stderr only, every tick. Frames with
impossible numbers are now refused where they are read (tests/hostlink/test_hostile.py); this is the
planner's side, for whatever capacity still cannot hold the host's work: that host is left out with
one `host.excluded` event and the reason on its row, and the rest of the fleet is planned as usual.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from core.engine.engine import Engine
from core.engine.events import EventKind
from core.engine.journal import Journal
from core.model import ClusterConfig, HostObservation, Resources
from tests.fake_fleet import FakeFleet

GIB = 1 << 30


class LyingFleet(FakeFleet):
    """A fake fleet whose probed capacities the test sets per host (the file pins none)."""

    def __init__(self, config: ClusterConfig, probed: dict[str, Resources]):
        super().__init__(config)
        self.probed = probed

    def observations(self) -> Mapping[str, HostObservation]:
        return {
            name: dataclasses.replace(o, capacity=self.probed.get(name, Resources(4000, 8 * GIB)))
            for name, o in super().observations().items()
        }


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def probed_only(config: ClusterConfig, **reserve: Resources) -> ClusterConfig:
    hosts = tuple(dataclasses.replace(h, capacity=None, reserve=reserve.get(h.name, Resources())) for h in config.hosts)
    return dataclasses.replace(config, hosts=hosts)


async def _excluded_run(config: ClusterConfig, fleet: LyingFleet, tmp_path: Path, why: str) -> None:
    engine = Engine(config, fleet, Journal(tmp_path / "journal.db"), workers=1, auto_apply=True)
    queue = engine.subscribe()
    await engine.start(first_contact_timeout=1)
    try:
        # web wants one replica on each of a, b, c: with c left out, two run and one is unplaced; db runs.
        await until(lambda: sorted(r.service for r in fleet.running()) == ["db", "web", "web"])
        assert all(hosts != ["c"] for hosts in fleet.running().values())
        await asyncio.sleep(0.5)  # a few more ticks: still one event, not one per tick
        events = []
        while not queue.empty():
            events.append(queue.get_nowait())
        excluded = [e for e in events if e.kind is EventKind.HOST_EXCLUDED]
        assert [e.host for e in excluded] == ["c"], [e.message for e in excluded]
        assert why in excluded[0].message
        row = engine.snapshot().hosts["c"]
        assert row.error is not None and "excluded from planning" in row.error and why in row.error
        assert engine.snapshot().hosts["a"].error is None
        assert any(r.service == "web" for r in engine.snapshot().unplaced)
    finally:
        await engine.close(grace=5)


async def test_a_negative_memtotal_excludes_that_host_not_the_plan(small_config: ClusterConfig, tmp_path: Path) -> None:
    config = probed_only(small_config)
    fleet = LyingFleet(config, {"c": Resources(4000, -8 * GIB)})
    await _excluded_run(config, fleet, tmp_path, "reported an impossible capacity")


async def test_a_reserve_larger_than_what_a_host_has_excludes_that_host(
    small_config: ClusterConfig, tmp_path: Path
) -> None:
    config = probed_only(small_config, c=Resources(0, 16 * GIB))
    fleet = LyingFleet(config, {})
    await _excluded_run(config, fleet, tmp_path, "reserve is larger than its capacity in mem")
