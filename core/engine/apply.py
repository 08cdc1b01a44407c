"""Runs a plan's actions against the fleet: start before stop, bounded parallelism, journaled.

Each step is journaled before it runs. Steps are idempotent on the hosts
(starting a running replica and stopping a stopped one are no-ops), which is
what makes rolling a half-applied plan forward after a crash safe.

Given the fleet's frames (`frames`), a new copy must pass its service's check before the apply goes on
(core.engine.rollout): a restart before the next replica of its service, a move before its source stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from core.engine.api import ApplyProgress
from core.engine.basis import generation
from core.engine.ports import ReplicaRuntime
from core.engine.rollout import HealthGate, Interrupted, Rollouts
from core.errors import LoadmasterError
from core.model import Action, ActionKind, ClusterConfig, HostObservation, HostState, Plan, ReplicaStatus
from core.store.base import StateStore


@dataclass(frozen=True, slots=True)
class Limits:
    per_host: int = 4
    total: int = 16
    stop_grace: float = 5.0


@dataclass
class _Run:
    progress: ApplyProgress
    notify: Callable[[ApplyProgress, Action, str, str | None], None]
    failed: dict[Action, str] = field(default_factory=dict)

    def update(self, action: Action, state: str, error: str | None = None) -> None:
        p = self.progress
        running = tuple(a for a in p.running if a != action)
        done = p.done
        if state == "running":
            running = (*running, action)
        elif state == "done":
            done = (*done, action)
        elif state == "failed":
            self.failed[action] = error or "failed"
        self.progress = replace(p, running=running, done=done, failed=dict(self.failed))
        self.notify(self.progress, action, state, error)


async def apply_plan(
    plan_id: str,
    plan: Plan,
    config: ClusterConfig,
    states: Mapping[str, HostState],
    fleet: ReplicaRuntime,
    journal: StateStore,
    notify: Callable[[ApplyProgress, Action, str, str | None], None],
    *,
    limits: Limits | None = None,
    already_done: frozenset[int] = frozenset(),
    stopping: Callable[[], bool] = lambda: False,
    running: Mapping[str, int] | None = None,
    frames: Callable[[], Mapping[str, HostObservation]] | None = None,
    rollouts: Rollouts | None = None,
) -> ApplyProgress:
    """Apply `plan`; returns the final progress (failures are recorded in it, never raised).

    Once `stopping()` is true no further action begins; those left pending keep the plan
    open in the journal, and the next start rolls it forward. `running` (service → healthy
    replicas now) lets a plain stop or a restart refuse to take a service below its min_healthy.
    `frames` (the fleet's latest observations) gates restarts and moves on the new copy's health;
    a rollout that stops is recorded in `rollouts`, and a service halted there is not restarted.
    """
    limits = limits or Limits()
    services = {s.name: s for s in config.services}
    run = _Run(ApplyProgress(plan=plan, total=len(plan.actions)), notify)
    total = asyncio.Semaphore(limits.total)
    per_host: dict[str, asyncio.Semaphore] = {}

    def host_slot(host: str) -> asyncio.Semaphore:
        return per_host.setdefault(host, asyncio.Semaphore(limits.per_host))

    gate = HealthGate(frames, config.poll_interval) if frames is not None else None

    async def start(action: Action, *, must_run: bool = True) -> ReplicaStatus:
        assert action.to_host is not None
        service = services.get(action.replica.service)
        if service is None:
            raise LoadmasterError(f"{action.replica.service} is not in the cluster file any more")
        async with total, host_slot(action.to_host):
            status = await fleet.start_replica(action.to_host, service, action.replica.index, generation(service))
        if not status.running and must_run:
            raise LoadmasterError(f"{action.replica} did not stay up on {action.to_host}")
        if action.kind is ActionKind.START:
            live[service.name] = live.get(service.name, 0) + 1
        return status

    async def healthy(action: Action, status: ReplicaStatus) -> str | None:
        service = services.get(action.replica.service)
        return await gate.wait(service, status) if gate is not None and service is not None else None

    live = dict(running or {})

    async def stop(action: Action) -> None:
        assert action.from_host is not None
        service = services.get(action.replica.service)
        if (
            action.kind is ActionKind.STOP
            and running is not None
            and service is not None
            and action.replica.index < service.replicas  # scaling down is the file's own decision
            and live.get(service.name, 0) - 1 < service.min_healthy
        ):
            raise LoadmasterError(
                f"refused: stopping {action.replica} would leave {service.name} with "
                f"{live.get(service.name, 0) - 1} running, below min_healthy = {service.min_healthy}"
            )
        if not states.get(action.from_host, HostState.UNKNOWN).reachable:
            # Unreachable: the copy there is stopped as a duplicate once the host returns.
            return
        async with total, host_slot(action.from_host):
            await fleet.stop_replica(action.from_host, action.replica, limits.stop_grace)
        if action.kind is ActionKind.STOP:
            live[action.replica.service] = live.get(action.replica.service, 0) - 1

    restart_locks: dict[str, asyncio.Lock] = {}

    async def restart(action: Action) -> None:
        # Called holding its service's lock (`one`): one replica of a service at a time, each new copy
        # healthy before the next, and only while the others keep min_healthy.
        if gate is not None and (lost := gate.lost()):
            raise Interrupted(f"not begun: {', '.join(lost)} went down; the failover comes first, the rollout after")
        service = services.get(action.replica.service)
        if service is not None and rollouts is not None and rollouts.is_halted(service):
            raise LoadmasterError(f"not restarted: {rollouts.why().get(service.name, 'the rollout stopped')}")
        assert action.from_host is not None
        counted = gate is None or gate.healthy_now(action.from_host, action.replica)
        if (
            service is not None
            and running is not None
            and counted
            and live.get(service.name, 0) - 1 < service.min_healthy
        ):
            raise LoadmasterError(
                f"refused: restarting {action.replica} would leave {service.name} with "
                f"{live.get(service.name, 0) - 1} healthy, below min_healthy = {service.min_healthy}"
            )
        await stop(action)
        status = await start(action, must_run=False)
        if service is None:
            return
        # A new definition that exits at once halts the rollout like one that fails its check (an Interrupted
        # wait goes up as it is: not the definition's failure, so no halt; the rollout is planned again).
        why = (
            await healthy(action, status) if status.running else f"{action.replica} did not stay up on {action.to_host}"
        )
        if why is not None:
            if counted:
                live[service.name] = live.get(service.name, 0) - 1
            if rollouts is not None:
                rollouts.halt(service, action.replica, action.to_host, why)
            raise LoadmasterError(f"rollout of {service.name} stopped: {why}")
        if not counted:  # an unhealthy or starting copy replaced by a healthy one
            live[service.name] = live.get(service.name, 0) + 1

    async def move(action: Action) -> None:
        # The source copy is stopped only once the target copy is healthy. A failover (the source is lost)
        # does not wait: the new copy is the only one, and the wait would hold up the tick (core.engine.rollout).
        assert action.from_host is not None and action.to_host is not None
        status = await start(action)
        if not states.get(action.from_host, HostState.UNKNOWN).reachable:
            return
        try:
            why = await healthy(action, status)
        except Interrupted as exc:
            why = str(exc)
        if why is not None:
            async with total, host_slot(action.to_host):
                await fleet.stop_replica(action.to_host, action.replica, limits.stop_grace)
            raise LoadmasterError(f"{why}: stopped it there, {action.replica} keeps running on {action.from_host}")
        await stop(action)

    async def one(seq: int, action: Action) -> None:
        if seq in already_done:
            run.update(action, "done")
            return
        # A restart waits for the one before it of its service, so it asks whether to begin only then.
        async with (
            restart_locks.setdefault(action.replica.service, asyncio.Lock())
            if action.kind is ActionKind.RESTART
            else contextlib.nullcontext()
        ):
            await act(seq, action)

    async def act(seq: int, action: Action) -> None:
        if stopping():
            skipped.append(seq)
            return
        journal.set_action(plan_id, seq, "running")
        run.update(action, "running")
        try:
            if action.kind is ActionKind.RESTART:
                await restart(action)
            elif action.kind is ActionKind.MOVE:
                await move(action)
            elif action.kind is ActionKind.START:
                await start(action)
            else:
                await stop(action)
        except (TimeoutError, LoadmasterError, OSError) as exc:
            journal.set_action(plan_id, seq, "failed", str(exc))
            run.update(action, "failed", str(exc))
            return
        journal.set_action(plan_id, seq, "done")
        run.update(action, "done")

    skipped: list[int] = []
    indexed = list(enumerate(plan.actions))
    # Starts and moves (each itself start-then-stop) first; plain stops and in-place restarts
    # only after every start has landed, so no service dips below min_healthy meanwhile.
    first = (ActionKind.START, ActionKind.MOVE)
    await asyncio.gather(*(one(i, a) for i, a in indexed if a.kind in first))
    await asyncio.gather(*(one(i, a) for i, a in indexed if a.kind not in first))
    if not skipped:
        journal.finish_plan(plan_id, "failed" if run.failed else "done")
    return run.progress
