"""The fleets the console's fake engine is built with: fixed hosts, placements, load figures and events.

Pure data and the deterministic observations of it; what the engine derives (plans, failover,
bounds) comes from the fake engine, which uses the real optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from core import optimizer
from core.engine.api import Snapshot
from core.engine.events import Event, EventKind
from core.model import (
    ClusterConfig,
    Host,
    HostObservation,
    HostState,
    Placement,
    ReplicaId,
    ReplicaStatus,
    Resources,
    Service,
)

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: every fixed time is relative to this
GiB = 1024**3
MiB = 1024**2


# --- the small fleet: every screen has something to show -----------------------------------------


def small_config(*, demo: bool = False) -> ClusterConfig:
    def host(name: str, zone: str, disk: str, cpu: int, mem_gib: int, **extra: str) -> Host:
        labels = {"zone": zone, "disk": disk, **extra}
        return Host(name, "127.0.0.1", labels=labels, capacity=Resources(cpu * 1000, mem_gib * GiB), demo=demo)

    hosts = (
        host("node-a", "eu-1", "hdd", 4, 8),  # db (ssd) fits only node-c, node-e (g is suspect)
        host("node-b", "eu-1", "hdd", 4, 8),
        host("node-c", "eu-2", "ssd", 8, 16),
        host("node-d", "eu-2", "hdd", 2, 4),
        host("node-e", "eu-3", "ssd", 8, 16),
        host("node-f", "eu-3", "hdd", 4, 8),
        host("node-g", "eu-1", "ssd", 2, 4),
        host("node-h", "eu-2", "hdd", 4, 8),
    )
    services = (
        Service("web", "serve", 6, Resources(500, 256 * MiB), max_per_host=2, spread_over="zone", priority=100),
        Service("api", "serve", 4, Resources(1000, 1 * GiB), max_per_host=1, spread_over="zone", priority=90),
        Service(
            "db",
            "db",
            2,
            Resources(2000, 4 * GiB),
            max_per_host=1,
            require={"disk": "ssd"},
            avoid=("cache",),
            priority=200,
        ),
        Service("cache", "cache", 3, Resources(250, 2 * GiB), max_per_host=1, priority=50),
        Service("worker", "work", 8, Resources(750, 512 * MiB), priority=10),
        Service("batch", "batch", 1, Resources(1000, 1 * GiB), require={"gpu": "yes"}),
    )
    return ClusterConfig(name="demo" if demo else "prod-eu", hosts=hosts, services=services, demo=demo)


SMALL_PLACEMENT = {
    "web/0": "node-a",
    "web/1": "node-c",
    "web/2": "node-e",
    "web/3": "node-b",
    "web/4": "node-c",
    "web/5": "node-f",
    "api/0": "node-a",
    "api/1": "node-c",
    "api/2": "node-e",
    "api/3": "node-f",
    "db/0": "node-c",
    "db/1": "node-e",
    "cache/0": "node-a",
    "cache/1": "node-b",
    "cache/2": "node-d",
    "worker/0": "node-b",
    "worker/1": "node-b",
    "worker/2": "node-c",
    "worker/3": "node-d",
    "worker/4": "node-f",
    "worker/5": "node-f",
    "worker/6": "node-g",
    "worker/7": "node-e",
}
SMALL_STATES = {"node-g": HostState.SUSPECT, "node-h": HostState.DOWN}  # the others are up


def small_state(*, demo: bool = False, read_only: bool = False, tick: int = 0) -> Snapshot:
    """The small fleet as its hosts report it, `tick` poll cycles after T0 (nothing derived yet)."""
    config = small_config(demo=demo)
    placement = Placement({ReplicaId.parse(r): h for r, h in SMALL_PLACEMENT.items()})
    states = {h.name: SMALL_STATES.get(h.name, HostState.UP) for h in config.hosts}
    hosts = observe(config, placement, states, T0 + tick, tick)
    return Snapshot(at=T0 + tick, config=config, hosts=hosts, placement=placement, read_only=read_only, demo=demo)


def observe(
    config: ClusterConfig, placement: Placement, states: Mapping[str, HostState], at: float, tick: int
) -> dict[str, HostObservation]:
    """Deterministic observations: load varies with host index and tick, replicas run where placed."""
    by_host: dict[str, list[ReplicaId]] = {h.name: [] for h in config.hosts}
    for replica, name in placement.assignments.items():
        by_host[name].append(replica)
    out = {}
    for i, host in enumerate(config.hosts):
        state = states[host.name]
        alive = state in (HostState.UP, HostState.SUSPECT)
        cap = host.capacity or Resources()
        load = float((17 * i + 11 * tick) % 80 + 5)
        replicas = tuple(
            ReplicaStatus(
                replica=r,
                host=host.name,
                pid=1000 + 10 * i + j,
                running=alive,
                cpu_percent=float((7 * j + 3 * i + tick) % 40) if alive else None,
                rss=(64 + 32 * ((i + j) % 5)) * MiB if alive else None,
                started_at=T0 - 3600,
            )
            for j, r in enumerate(by_host[host.name])
        )
        seen = {HostState.UP: at - 0.5, HostState.SUSPECT: at - 2.0}.get(state, at - 40.0)
        out[host.name] = HostObservation(
            host=host.name,
            state=state,
            at=at,
            capacity=cap,
            cpu_percent=load if alive else None,
            mem_total=cap.mem if alive else None,
            mem_available=int(cap.mem * (0.35 + 0.05 * (i % 5))) if alive else None,
            ncpu=cap.cpu // 1000,
            replicas=replicas,
            error="connection refused" if state is HostState.DOWN else None,
            last_seen=seen,
        )
    return out


def small_events() -> tuple[Event, ...]:
    return (
        Event(T0 - 300, EventKind.HOST_UP, "node-a is up", host="node-a"),
        Event(T0 - 290, EventKind.HOST_UP, "node-c is up", host="node-c"),
        Event(
            T0 - 120, EventKind.REPLICA_STARTED, "web/1 started on node-c", host="node-c", replica=ReplicaId("web", 1)
        ),
        Event(T0 - 60, EventKind.HOST_SUSPECT, "node-g missed 2 polls", host="node-g"),
        Event(T0 - 40, EventKind.HOST_DOWN, "node-h is down: connection refused", host="node-h"),
        Event(T0 - 30, EventKind.PLAN_COMPUTED, "plan computed: 3 actions, frees 1 host"),
        Event(T0 - 20, EventKind.ACTION_FAILED, "start cache/2 on node-d failed: port in use", host="node-d"),
    )


# --- a large fleet for the benchmark ---------------------------------------------------------------


def big_snapshot(hosts: int = 1000, replicas: int = 10_000, services: int = 50) -> Snapshot:
    zones = [f"zone-{z}" for z in range(10)]
    config = ClusterConfig(
        name="big",
        hosts=tuple(
            Host(
                f"host-{i:04d}",
                f"10.0.{i // 250}.{i % 250}",
                labels={"zone": zones[i % len(zones)], "rack": f"r{i // 40}"},
                capacity=Resources(16_000, 64 * GiB),
            )
            for i in range(hosts)
        ),
        services=tuple(
            Service(
                f"svc-{s:02d}", "run", replicas // services, Resources(250 + 50 * (s % 10), (256 + 128 * (s % 8)) * MiB)
            )
            for s in range(services)
        ),
    )
    placement = Placement(
        {
            ReplicaId(svc.name, k): config.hosts[(s * 7 + k * 13) % hosts].name
            for s, svc in enumerate(config.services)
            for k in range(svc.replicas)
        }
    )
    states = {h.name: HostState.UP for h in config.hosts}
    hosts_seen = observe(config, placement, states, T0, 0)
    problem = optimizer.PlacementProblem.from_config(config, {}, states, placement)
    return Snapshot(
        at=T0,
        config=config,
        hosts=hosts_seen,
        placement=placement,
        runs_on=len(placement.hosts_used()),
        fits_on=optimizer.lower_bound(problem),
    )


def big_tick(snapshot: Snapshot, tick: int) -> Snapshot:
    """The next poll cycle: every host reports new load, memory and last-seen; a few replicas moved."""
    at = snapshot.at + 1
    hosts = {
        name: replace(
            obs,
            at=at,
            cpu_percent=float((17 * i + 11 * tick) % 80 + 5),
            mem_available=(obs.mem_total or 0) * ((i + tick) % 7 + 2) // 10,
            last_seen=at - 0.3,
        )
        for i, (name, obs) in enumerate(snapshot.hosts.items())
    }
    assignments = dict(snapshot.placement.assignments)
    names = [h.name for h in snapshot.config.hosts]
    for k, replica in enumerate(list(assignments)[tick % 97 :: 1000]):
        assignments[replica] = names[(tick * 31 + k) % len(names)]
    return replace(snapshot, at=at, hosts=hosts, placement=Placement(assignments))
