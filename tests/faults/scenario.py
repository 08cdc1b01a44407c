"""What the scenarios share: the services, the replicas they declare, the time limits, a start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.model import ReplicaId
from tests.faults.census import census
from tests.faults.controller import Controller
from tests.faults.netns import NetnsFleet
from tests.faults.settle import until_exact

# 4 hosts of 2 cores: 5 cores of replicas, so any one host's can run on the other three.
SERVICES = """
[[services]]
name = "web"
command = "sleep 86401"
replicas = 6
cpu = "500m"
mem = "256MiB"
max_per_host = 2

[[services]]
name = "db"
command = "sleep 86402"
replicas = 2
cpu = 1
mem = "1GiB"
max_per_host = 1
"""
DESIRED = {ReplicaId("web", i) for i in range(6)} | {ReplicaId("db", i) for i in range(2)}
PLACED_WITHIN = 45.0  # first placement: daemon start-up (imports), first frames, a solve, the starts
FAILED_OVER_WITHIN = 12.0  # failure_timeout 1.5 s + keepalive + a failover solve on a loaded 2-core machine


def busiest(fleet: NetnsFleet) -> str:
    """The host running the most replicas (the fault that displaces the most)."""
    per_host: dict[str, int] = {}
    for copies in census(fleet.pids()).values():
        for c in copies:
            per_host[c.host] = per_host.get(c.host, 0) + 1
    return max(sorted(per_host), key=lambda h: per_host[h])


def placed(
    netns_fleet: Callable[..., NetnsFleet], controllers: Callable[..., Controller], tmp_path: Path, hosts: int = 4
) -> tuple[NetnsFleet, Controller]:
    fleet = netns_fleet(hosts)
    config = tmp_path / "cluster.toml"
    config.write_text(fleet.cluster_toml(SERVICES))
    controller = controllers(config, tmp_path / "controller")
    until_exact(fleet, DESIRED, PLACED_WITHIN)
    return fleet, controller
