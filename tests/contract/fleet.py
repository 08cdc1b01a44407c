"""The fleet both engines of the contract start from: four hosts in two zones, everything already running."""

from __future__ import annotations

from core.model import ClusterConfig, Host, Placement, Policy, ReplicaId, Resources, Service

GiB = 1 << 30


def _host(name: str, zone: str, disk: str) -> Host:
    return Host(name, "127.0.0.1", labels={"zone": zone, "disk": disk}, capacity=Resources(4000, 8 * GiB), demo=True)


CONFIG = ClusterConfig(
    name="contract",
    hosts=(_host("h1", "z1", "ssd"), _host("h2", "z1", "hdd"), _host("h3", "z2", "ssd"), _host("h4", "z2", "hdd")),
    services=(
        Service("web", "sleep 1000", 3, Resources(500, 512 << 20), max_per_host=1, spread_over="zone"),
        Service("db", "sleep 1000", 1, Resources(1000, 2 * GiB), require={"disk": "ssd"}),
        Service("worker", "sleep 1000", 4, Resources(500, 512 << 20)),
    ),
    poll_interval=0.1,
    failure_timeout=0.3,
    demo=True,
    policy=Policy(solver_time_limit=2.0, settle=0.0),
)
# Spread over all four hosts, obeying every rule: a plain plan keeps it, a repack empties hosts.
RUNNING = Placement(
    {
        ReplicaId("web", 0): "h1",
        ReplicaId("web", 1): "h2",
        ReplicaId("web", 2): "h3",
        ReplicaId("db", 0): "h3",
        ReplicaId("worker", 0): "h1",
        ReplicaId("worker", 1): "h2",
        ReplicaId("worker", 2): "h4",
        ReplicaId("worker", 3): "h4",
    }
)
