"""Runs a plan's actions against the fleet: start before stop, bounded parallelism, journaled.

Each step is journaled before it runs. Steps are idempotent on the hosts
(starting a running replica and stopping a stopped one are no-ops), which is
what makes rolling a half-applied plan forward after a crash safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from core.engine.api import ApplyProgress
from core.engine.basis import generation
from core.engine.ports import ReplicaRuntime
from core.errors import LoadmasterError
from core.model import Action, ActionKind, ClusterConfig, HostState, Plan
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
) -> ApplyProgress:
    """Apply `plan`; returns the final progress (failures are recorded in it, never raised).

    Once `stopping()` is true no further action begins; those left pending keep the plan
    open in the journal, and the next start rolls it forward. `running` (service → live
    replicas now) lets a plain stop refuse to take a service below its min_healthy.
    """
    limits = limits or Limits()
    services = {s.name: s for s in config.services}
    run = _Run(ApplyProgress(plan=plan, total=len(plan.actions)), notify)
    total = asyncio.Semaphore(limits.total)
    per_host: dict[str, asyncio.Semaphore] = {}

    def host_slot(host: str) -> asyncio.Semaphore:
        return per_host.setdefault(host, asyncio.Semaphore(limits.per_host))

    async def start(action: Action) -> None:
        assert action.to_host is not None
        service = services.get(action.replica.service)
        if service is None:
            raise LoadmasterError(f"{action.replica.service} is not in the cluster file any more")
        async with total, host_slot(action.to_host):
            status = await fleet.start_replica(action.to_host, service, action.replica.index, generation(service))
        if not status.running:
            raise LoadmasterError(f"{action.replica} did not stay up on {action.to_host}")
        if action.kind is ActionKind.START:
            live[service.name] = live.get(service.name, 0) + 1

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
        # One replica of a service at a time, and only while the others keep min_healthy.
        async with restart_locks.setdefault(action.replica.service, asyncio.Lock()):
            service = services.get(action.replica.service)
            if service is not None and running is not None and live.get(service.name, 0) - 1 < service.min_healthy:
                raise LoadmasterError(
                    f"refused: restarting {action.replica} would leave {service.name} with "
                    f"{live.get(service.name, 0) - 1} running, below min_healthy = {service.min_healthy}"
                )
            await stop(action)
            await start(action)

    async def one(seq: int, action: Action) -> None:
        if seq in already_done:
            run.update(action, "done")
            return
        if stopping():
            skipped.append(seq)
            return
        journal.set_action(plan_id, seq, "running")
        run.update(action, "running")
        try:
            if action.kind is ActionKind.RESTART:
                await restart(action)
            if action.kind in (ActionKind.START, ActionKind.MOVE):
                await start(action)
            if action.kind in (ActionKind.STOP, ActionKind.MOVE):
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
