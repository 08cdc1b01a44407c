"""The local host (`address = "local"`): psutil observations and the same runtime, no SSH."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from core.hostlink.fleet import Fleet
from core.model import ClusterConfig, Host, HostState, ReplicaId, Resources, Service
from tests.hostlink.helpers import until, until_state

SLEEP = Service("nap", "exec sleep 60", 1, Resources(100, 1 << 20))


async def test_local_host_is_observed_through_psutil_and_runs_replicas(tmp_path: Path) -> None:
    cfg = ClusterConfig("t", (Host("me", "local"),), (SLEEP,), poll_interval=0.3, state_dir=str(tmp_path / "state"))
    fleet = Fleet(cfg)
    await fleet.start()
    try:
        await until_state(fleet, "me", HostState.UP, 3)
        await until(lambda: fleet.observations()["me"].cpu_percent is not None, 2, "a cpu rate")
        obs = fleet.observations()["me"]
        assert obs.ncpu == psutil.cpu_count() and obs.mem_total == psutil.virtual_memory().total
        assert obs.capacity == Resources(1000 * (psutil.cpu_count() or 0), psutil.virtual_memory().total)
        started = await fleet.start_replica("me", SLEEP, 0, "g1")
        assert started.running and (tmp_path / "state" / "replicas").is_dir()
        await until(lambda: [r.running for r in fleet.observations()["me"].replicas] == [True], 2, "replica seen")
        (seen,) = fleet.observations()["me"].replicas
        assert seen.replica == ReplicaId("nap", 0) and seen.pid == started.pid and seen.generation == "g1"
        os.killpg(started.pid or 0, signal.SIGKILL)
        await until(lambda: [r.running for r in fleet.observations()["me"].replicas] == [False], 2, "death seen")
        await fleet.stop_replica("me", ReplicaId("nap", 0))
        assert await fleet.list_replicas("me") == ()
    finally:
        await fleet.close()
