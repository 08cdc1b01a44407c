"""Waiting for the fleet's real processes to reach an end state, and holding it."""

from __future__ import annotations

import time
from collections.abc import Iterable

from core.model import ReplicaId
from tests.faults.census import census, problems
from tests.faults.netns import NetnsFleet


def count(fleet: NetnsFleet, desired: Iterable[ReplicaId], *, without: Iterable[str] = ()) -> list[str]:
    """What is wrong with the replicas on every host except `without` (empty: each desired
    replica runs exactly once, nothing else runs; copies frozen on a hung host do not count)."""
    skip = set(without)
    return problems(census({h: p for h, p in fleet.pids().items() if h not in skip}), desired)


def until_exact(
    fleet: NetnsFleet,
    desired: Iterable[ReplicaId],
    timeout: float,
    *,
    without: Iterable[str] = (),
    hold: float = 0.0,
) -> float:
    """Seconds until every desired replica runs exactly once (hosts in `without` left out), then
    still so for `hold` seconds — a late duplicate or a late stop fails it. Raises with the count."""
    wanted, start = set(desired), time.monotonic()
    wrong = count(fleet, wanted, without=without)
    while wrong:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not exactly once after {timeout:g} s: {wrong}")
        time.sleep(0.1)
        wrong = count(fleet, wanted, without=without)
    reached = time.monotonic() - start
    while time.monotonic() - start < reached + hold:
        wrong = count(fleet, wanted, without=without)
        assert not wrong, f"exactly once at {reached:.1f} s, then: {wrong}"
        time.sleep(0.2)
    return reached
