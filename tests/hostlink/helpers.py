"""Waiting helpers for hostlink integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from core.hostlink.fleet import Fleet
from core.model import HostObservation, HostState


async def until(check: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> float:
    """Seconds until `check()` holds; fails the test with `what` after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def until_state(fleet: Fleet, host: str, state: HostState, timeout: float) -> HostObservation:
    def now() -> str:
        o = fleet.observations()[host]
        return f"{host} {state.value} (is {o.state.value}: {o.error})"

    await until(lambda: fleet.observations()[host].state is state, timeout, now)
    return fleet.observations()[host]
