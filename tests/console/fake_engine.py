"""An in-memory EngineAPI for console tests and the console benchmark.

It holds a Snapshot and changes it the way the real engine would be seen to
from outside (events, solving flag, apply progress, stale and read-only
refusals), with a tiny greedy placer standing in for the optimizer. No SSH, no
solver, no clock: every time comes from the snapshot, so screens render the
same every run.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace

from core.engine.api import ApplyProgress, Snapshot, SolveProgress
from core.engine.events import Event, EventKind
from core.errors import LoadmasterError, ReadOnly, StalePlan
from core.model import (
    ActionKind,
    ClusterConfig,
    FailoverPlan,
    Host,
    HostObservation,
    HostState,
    Placement,
    Plan,
    ReplicaId,
    ReplicaStatus,
    Resources,
    Service,
    SolverStatus,
    diff_actions,
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
        host("node-a", "eu-1", "ssd", 4, 8),
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


_SMALL_PLACEMENT = {
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
_SMALL_STATES = {"node-g": HostState.SUSPECT, "node-h": HostState.DOWN}


def small_snapshot(*, demo: bool = False, read_only: bool = False, tick: int = 0) -> Snapshot:
    config = small_config(demo=demo)
    placement = Placement({ReplicaId.parse(r): h for r, h in _SMALL_PLACEMENT.items()})
    states = {h.name: _SMALL_STATES.get(h.name, HostState.UP) for h in config.hosts}
    snap = Snapshot(
        at=T0 + tick,
        config=config,
        hosts=observe(config, placement, states, T0 + tick, tick),
        placement=placement,
        unplaced={ReplicaId("batch", 0): "no host has label gpu=yes"},
        read_only=read_only,
        demo=demo,
    )
    snap = with_derived(snap)
    return replace(snap, pending=rebalance_plan(snap))


def observe(
    config: ClusterConfig, placement: Placement, states: Mapping[str, HostState], at: float, tick: int
) -> dict[str, HostObservation]:
    """Deterministic observations: load varies with host index and tick, replicas run where placed."""
    by_host: dict[str, list[ReplicaId]] = {h.name: [] for h in config.hosts}
    for replica, host in placement.assignments.items():
        by_host[host].append(replica)
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


# --- a tiny greedy placer standing in for the optimizer ---------------------------------------------


def _service_map(config: ClusterConfig) -> dict[str, Service]:
    return {s.name: s for s in config.services}


def _place(
    snapshot: Snapshot, assignments: dict[ReplicaId, str], displaced: Iterable[ReplicaId], barred: set[str]
) -> tuple[dict[ReplicaId, str], dict[ReplicaId, str]]:
    """Put each displaced replica on the first host (by name) with room that obeys the service's rules."""
    services = _service_map(snapshot.config)
    assignments = dict(assignments)
    moves: dict[ReplicaId, str] = {}
    unplaced: dict[ReplicaId, str] = {}
    for replica in sorted(displaced):
        service = services[replica.service]
        assignments.pop(replica, None)
        for host in sorted(snapshot.config.hosts, key=lambda h: h.name):
            obs = snapshot.hosts.get(host.name)
            if host.name in barred or obs is None or obs.state is not HostState.UP or not service.matches(host):
                continue
            here = [r for r, h in assignments.items() if h == host.name]
            if (
                service.max_per_host is not None
                and sum(r.service == service.name for r in here) >= service.max_per_host
            ):
                continue
            if any(r.service in service.avoid or service.name in services[r.service].avoid for r in here):
                continue
            used = Resources(
                sum(services[r.service].resources.cpu for r in here),
                sum(services[r.service].resources.mem for r in here),
            )
            if not (used + service.resources).fits(host.usable(obs.capacity)):
                continue
            assignments[replica] = host.name
            moves[replica] = host.name
            break
        else:
            need = ", ".join(f"{k}={v}" for k, v in service.require.items())
            unplaced[replica] = "no up host with room" + (f" that has {need}" if need else "")
    return moves, unplaced


def failover_plan(snapshot: Snapshot, scope: str, target: str, lost: tuple[str, ...]) -> FailoverPlan:
    current = dict(snapshot.placement.assignments)
    displaced = [r for r, h in current.items() if h in lost]
    moves, unplaced = _place(snapshot, current, displaced, set(lost))
    degraded = tuple(sorted({r.service for r in unplaced}))
    return FailoverPlan(scope, target, lost, moves, unplaced, degraded)


def failover_plans(snapshot: Snapshot) -> tuple[FailoverPlan, ...]:
    config = snapshot.config
    plans = [failover_plan(snapshot, "host", h.name, (h.name,)) for h in config.hosts]
    for zone in sorted({h.labels["zone"] for h in config.hosts if "zone" in h.labels}):
        lost = tuple(h.name for h in config.hosts if h.labels.get("zone") == zone)
        plans.append(failover_plan(snapshot, "zone", zone, lost))
    return tuple(plans)


def lower_bound(snapshot: Snapshot) -> int:
    services = _service_map(snapshot.config)
    cpu = sum(services[r.service].resources.cpu for r in snapshot.placement.assignments)
    mem = sum(services[r.service].resources.mem for r in snapshot.placement.assignments)
    caps = [h.usable(snapshot.hosts[h.name].capacity) for h in snapshot.config.hosts]
    return max(math.ceil(cpu / max(c.cpu for c in caps)), math.ceil(mem / max(c.mem for c in caps)), 1)


def with_derived(snapshot: Snapshot) -> Snapshot:
    """Failover plans, bound and hosts in use, as the engine would publish them."""
    snap = replace(snapshot, runs_on=len(snapshot.placement.hosts_used()), fits_on=lower_bound(snapshot))
    return replace(snap, failover=failover_plans(snap))


def rebalance_plan(snapshot: Snapshot) -> Plan | None:
    """Empty the least-loaded up host if its replicas fit elsewhere, and move replicas off hosts that are down."""
    current = dict(snapshot.placement.assignments)
    up = {n for n, o in snapshot.hosts.items() if o.state is HostState.UP}
    stranded = [r for r, h in current.items() if h not in up]
    counts = {h: sum(1 for x in current.values() if x == h) for h in up}
    used = sorted((c, h) for h, c in counts.items() if c)
    victim = used[0][1] if used else None
    displaced = stranded + [r for r, h in current.items() if h == victim]
    moves, unplaced = _place(snapshot, current, displaced, {victim} if victim else set())
    target = {**current, **moves}
    for r in unplaced:
        target.pop(r, None)
    target_placement = Placement(target)
    actions = diff_actions(snapshot.placement, target_placement)
    if not actions:
        return None
    hosts_used = len(target_placement.hosts_used())
    bound = min(snapshot.fits_on or hosts_used, hosts_used)
    return Plan(
        cluster=snapshot.config.name,
        basis=f"basis-{snapshot.at:.0f}",
        created_at=snapshot.at,
        current=snapshot.placement,
        target=target_placement,
        actions=actions,
        status=SolverStatus.OPTIMAL if bound == hosts_used else SolverStatus.FEASIBLE,
        hosts_used=hosts_used,
        lower_bound=bound,
        gap=(hosts_used - bound) / hosts_used if hosts_used else 0.0,
        unplaced={**snapshot.unplaced, **unplaced},
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
    snap = Snapshot(at=T0, config=config, hosts=observe(config, placement, states, T0, 0), placement=placement)
    return replace(snap, runs_on=len(placement.hosts_used()), fits_on=lower_bound(snap))


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


# --- the engine -------------------------------------------------------------------------------------


class FakeEngine:
    """EngineAPI over an in-memory Snapshot; `calls` records every call that would change something."""

    def __init__(
        self,
        snapshot: Snapshot,
        events: Iterable[Event] = (),
        *,
        plan_delay: float = 0.0,
        apply_delay: float = 0.0,
        failing: Iterable[ReplicaId] = (),
        failure_timeout: float = 0.0,
    ) -> None:
        self._snapshot = snapshot
        self._events = list(events)
        self._queues: list[asyncio.Queue[Event]] = []
        self.plan_delay = plan_delay
        # Set by a test that must look at the console mid-solve however slow the machine is:
        # the solve waits here, at its halfway point, until the test sets it.
        self.halfway: asyncio.Event | None = None
        self.apply_delay = apply_delay
        self.failing = frozenset(failing)
        self.failure_timeout = failure_timeout
        self.calls: list[tuple[str, object]] = []
        self.tick_count = 0

    # reading
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    def recent_events(self) -> tuple[Event, ...]:
        return tuple(self._events[-500:])

    def what_if(self, host: str) -> FailoverPlan:
        self.calls.append(("what_if", host))
        return failover_plan(self._snapshot, "host", host, (host,))

    # driving it from a test
    def emit(self, kind: EventKind, message: str, **fields: object) -> None:
        event = Event(self._snapshot.at, kind, message, **fields)  # type: ignore[arg-type]
        if kind is not EventKind.STATE_UPDATED:
            self._events.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def publish(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.emit(EventKind.STATE_UPDATED, "")

    def tick(self) -> None:
        """One more poll cycle of the small fleet: new load figures, one second later."""
        self.tick_count += 1
        snap = self._snapshot
        states = {n: o.state for n, o in snap.hosts.items()}
        hosts = observe(snap.config, snap.placement, states, snap.at + 1, self.tick_count)
        self.publish(replace(snap, at=snap.at + 1, hosts=hosts))

    # changing
    def _refuse_if_read_only(self, what: str) -> None:
        if self._snapshot.read_only:
            raise ReadOnly(what)

    async def plan(self, *, repack: bool = False) -> Plan:
        self.calls.append(("plan", "repack" if repack else None))
        self.publish(replace(self._snapshot, solving=True, solve_progress=SolveProgress(0.0)))
        await asyncio.sleep(self.plan_delay / 2)
        self.publish(replace(self._snapshot, solve_progress=SolveProgress(self.plan_delay / 2, 6, 4, 2)))
        if self.halfway is not None:
            await self.halfway.wait()
        await asyncio.sleep(self.plan_delay / 2)
        plan = rebalance_plan(self._snapshot)
        if plan is None:
            self.publish(replace(self._snapshot, solving=False, solve_progress=None))
            raise LoadmasterError("nothing to change: the placement is already optimal")
        self.publish(replace(self._snapshot, solving=False, solve_progress=None, pending=plan))
        self.emit(EventKind.PLAN_COMPUTED, f"plan computed: {len(plan.actions)} actions")
        return plan

    async def approve(self, plan: Plan) -> None:
        self.calls.append(("approve", plan))
        self._refuse_if_read_only("approve")
        pending = self._snapshot.pending
        if pending is None or pending.basis != plan.basis:
            raise StalePlan(["the fleet changed since the plan was computed"])
        self.emit(EventKind.PLAN_APPROVED, f"plan approved: {len(plan.actions)} actions")
        progress = ApplyProgress(plan, total=len(plan.actions))
        assignments = dict(self._snapshot.placement.assignments)
        for action in plan.actions:
            progress = replace(progress, running=(action,))
            self.publish(replace(self._snapshot, applying=progress))
            self.emit(EventKind.ACTION_STARTED, str(action), replica=action.replica)
            await asyncio.sleep(self.apply_delay)
            if action.replica in self.failing:
                failed = {**progress.failed, action: "exit status 1: address in use"}
                progress = replace(progress, running=(), failed=failed)
                self.emit(EventKind.ACTION_FAILED, f"{action} failed", replica=action.replica)
                continue
            if action.kind is ActionKind.STOP:
                assignments.pop(action.replica, None)
            else:
                assignments[action.replica] = action.to_host  # type: ignore[assignment]
            progress = replace(progress, running=(), done=(*progress.done, action))
            self.emit(EventKind.ACTION_DONE, str(action), replica=action.replica)
        placement = Placement(assignments)
        snap = replace(self._snapshot, placement=placement, pending=None, applying=progress)
        states = {n: o.state for n, o in snap.hosts.items()}
        snap = replace(snap, hosts=observe(snap.config, placement, states, snap.at, self.tick_count))
        self.publish(with_derived(snap))
        self.emit(EventKind.APPLY_FINISHED, f"apply finished: {len(progress.done)} done, {len(progress.failed)} failed")

    async def reject(self, plan: Plan) -> None:
        self.calls.append(("reject", plan))
        self._refuse_if_read_only("reject")
        self.publish(replace(self._snapshot, pending=None))
        self.emit(EventKind.PLAN_REJECTED, "plan rejected")

    def export(self, plan: Plan, path: str, fmt: str) -> None:
        self.calls.append(("export", (path, fmt)))
        rows = [
            {"kind": a.kind.value, "replica": str(a.replica), "from": a.from_host or "", "to": a.to_host or ""}
            for a in plan.actions
        ]
        with open(path, "w", encoding="utf-8", newline="") as f:
            if fmt == "json":
                json.dump({"cluster": plan.cluster, "basis": plan.basis, "actions": rows}, f, indent=2)
            elif fmt == "csv":
                writer = csv.DictWriter(f, fieldnames=["kind", "replica", "from", "to"])
                writer.writeheader()
                writer.writerows(rows)
            elif fmt == "toml":
                f.write(f'cluster = "{plan.cluster}"\nbasis = "{plan.basis}"\n')
                for row in rows:
                    f.write("\n[[actions]]\n" + "".join(f'{k} = "{v}"\n' for k, v in row.items()))
            else:
                raise LoadmasterError(f"unknown plan format {fmt!r} (use json, csv or toml)")

    async def stop_demo_host(self, host: str) -> None:
        self.calls.append(("stop_demo_host", host))
        self._refuse_if_read_only("stop demo host")
        self._set_state(host, HostState.SUSPECT)
        await asyncio.sleep(self.failure_timeout)
        self._set_state(host, HostState.DOWN)
        self.emit(EventKind.HOST_DOWN, f"{host} is down: connection lost", host=host)
        plan = failover_plan(self._snapshot, "host", host, (host,))
        self.emit(EventKind.FAILOVER_STARTED, f"failover of {host}: {len(plan.moves)} replicas move", host=host)
        assignments = {**self._snapshot.placement.assignments, **plan.moves}
        for replica in plan.unplaced:
            assignments.pop(replica)
        self._republish(Placement(assignments))

    async def restore_demo_host(self, host: str) -> None:
        self.calls.append(("restore_demo_host", host))
        self._refuse_if_read_only("restore demo host")
        self._set_state(host, HostState.UP)
        self.emit(EventKind.HOST_UP, f"{host} is up", host=host)

    def _set_state(self, host: str, state: HostState) -> None:
        self._republish(self._snapshot.placement, {host: state})

    def _republish(self, placement: Placement, changes: Mapping[str, HostState] | None = None) -> None:
        snap = self._snapshot
        states = {n: o.state for n, o in snap.hosts.items()} | dict(changes or {})
        hosts = observe(snap.config, placement, states, snap.at, self.tick_count)
        self.publish(with_derived(replace(snap, placement=placement, hosts=hosts)))
