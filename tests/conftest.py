"""Shared fixtures: real OpenSSH sshd servers and embedded demo fleets on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from core.hostlink.demo import DemoFleet
from core.model import ClusterConfig, Host, Resources, Service
from tests.sshd import Sshd, free_port_block, start_sshd

# Locally hypothesis explores new examples each run; in CI the same examples run every time,
# so a landing is never blocked by a case no one has seen (failures found locally are kept
# in .hypothesis/ and replayed).
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


@pytest.fixture
def sshd_factory() -> Iterator[Callable[..., Sshd]]:
    """Start real sshd servers (`sshd_factory(address="127.0.0.3")`); all are stopped afterwards."""
    started: list[Sshd] = []

    def start(address: str = "127.0.0.2", **kwargs: object) -> Sshd:
        server = start_sshd(address, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.cleanup()


@pytest.fixture
def sshd(sshd_factory: Callable[..., Sshd]) -> Sshd:
    """One real sshd on 127.0.0.2 letting the test user in with `sshd.client_key`."""
    return sshd_factory()


DEMO_CAPACITY = Resources(2000, 4 << 30)


def demo_cluster(
    hosts: int = 2,
    *,
    name: str = "t",
    services: tuple[Service, ...] = (),
    capacity: Resources = DEMO_CAPACITY,
    poll_interval: float = 0.5,
    failure_timeout: float = 1.5,
) -> ClusterConfig:
    """A demo cluster of `hosts` hosts on free loopback ports (named h1, h2, …), with free ports after them
    for a few extra hosts (`DemoFleet(extra_hosts=…)`)."""
    base = free_port_block("127.0.0.1", hosts + 4)
    return ClusterConfig(
        name=name,
        hosts=tuple(
            Host(f"h{i}", "127.0.0.1", base + i - 1, capacity=capacity, demo=True) for i in range(1, hosts + 1)
        ),
        services=services,
        poll_interval=poll_interval,
        failure_timeout=failure_timeout,
        demo=True,
    )


@pytest.fixture
async def demo_fleet(tmp_path: Path) -> AsyncIterator[Callable[[ClusterConfig], Awaitable[DemoFleet]]]:
    """Start a DemoFleet for a config (see `demo_cluster`); stopped, with its processes, afterwards."""
    fleets: list[DemoFleet] = []

    async def start(config: ClusterConfig, extra_hosts: int = 0) -> DemoFleet:
        fleet = DemoFleet(config, tmp_path / f"demo{len(fleets)}", extra_hosts=extra_hosts)
        await fleet.start()
        fleets.append(fleet)
        return fleet

    yield start
    for fleet in fleets:
        await fleet.stop()
