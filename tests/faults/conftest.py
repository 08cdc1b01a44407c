"""Fixtures of the fault suite: a fleet of namespaced sshd hosts, and controllers over it.

Where namespaces cannot be made (not root, iproute2/nftables/sshd missing, a container
without the rights) every test here fails under CI=true with the reason, and skips elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.controller import Controller
from tests.faults.netns import NetnsFleet, leftovers, run_prefix, unavailable
from tests.sshd import missing

pytestmark = [pytest.mark.sshd, pytest.mark.slow]


@pytest.fixture
def netns_fleet(tmp_path: Path) -> Iterator[Callable[..., NetnsFleet]]:
    """`netns_fleet(hosts, hostile=(...))` starts one fleet for the test; torn down afterwards,
    and the teardown must leave nothing of it on the machine."""
    problem = unavailable()
    if problem is not None:
        missing(f"the fault suite cannot build its fleet: {problem}")
    made: list[NetnsFleet] = []

    def make(hosts: int = 4, **kwargs: object) -> NetnsFleet:
        assert not made, "one fleet per test: the run's names would collide"
        fleet = NetnsFleet(tmp_path / run_prefix(), hosts, **kwargs)  # type: ignore[arg-type]
        fleet.start()
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()
        assert leftovers(fleet.prefix) == []


@pytest.fixture
def controllers(netns_fleet: Callable[..., NetnsFleet]) -> Iterator[Callable[..., Controller]]:
    """`controllers(config, home, name=...)` starts a `loadmaster run --headless --auto-apply`;
    each is stopped (SIGTERM, then SIGKILL) after the test, before the fleet goes (hence the
    dependency on `netns_fleet`)."""
    started: list[Controller] = []

    def start(config: Path, home: Path, **kwargs: object) -> Controller:
        controller = Controller(config, home, **kwargs)  # type: ignore[arg-type]
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.terminate(timeout=15)
