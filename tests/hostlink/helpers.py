"""Helpers for hostlink integration tests: waiting, small configs, a state directory per test."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import psutil

from core.hostlink import records
from core.hostlink.fleet import Fleet
from core.model import ClusterConfig, Host, HostKeyPolicy, HostObservation, HostState, Resources, Service, SshDefaults


class Reachable(Protocol):
    """A test host (real sshd or demo) as the helpers need it."""

    home: Path
    known_hosts: str
    client_key: str


def fresh_cluster(target: Reachable) -> Iterator[str]:
    """A cluster name of its own, so each test has its own state directory on the host; cleaned after."""
    cluster = f"t{uuid.uuid4().hex[:10]}"
    yield cluster
    state = target.home / ".loadmaster" / cluster
    for record in records.read_records(state):
        records.kill(record)
    shutil.rmtree(state, ignore_errors=True)


def cluster(name: str, *hosts: Host, policy: HostKeyPolicy = HostKeyPolicy.STRICT) -> ClusterConfig:
    defaults = SshDefaults(host_key_policy=policy, connect_timeout=3.0)
    return ClusterConfig(name, hosts, (), poll_interval=0.5, failure_timeout=1.5, defaults=defaults)


def fleet_for(target: Reachable, cfg: ClusterConfig, known_hosts: str | None = None, **kwargs: object) -> Fleet:
    return Fleet(cfg, known_hosts=known_hosts or target.known_hosts, client_keys=[target.client_key], **kwargs)  # type: ignore[arg-type]


def service(name: str, command: str) -> Service:
    return Service(name, command, 1, Resources(100, 1 << 20))


def alive(pid: int | None) -> bool:
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
