"""An in-memory EngineAPI for console tests and the console benchmark.

A scripted stand-in for the engine, not a second one: its state is the Snapshot a test gives
it (or `publish`es), and everything the engine would derive from that state comes from the
engine's own parts — plans and failover plans from the real optimizer (one worker, fixed seed),
staleness from the real plan basis, exports from the real plan-file writer. What it adds is what
a console test must script: fixed times (every time is the snapshot's), a solve held at halfway,
apply steps that take time or fail, and a demo host that takes `failure_timeout` to go down.
It is held to `EngineAPI` by tests/contract, like the real engine.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import replace

from core import optimizer
from core.engine.api import ApplyProgress, Snapshot, SolveProgress
from core.engine.basis import basis_of, fingerprint, what_changed
from core.engine.config_changes import config_changes
from core.engine.events import Event, EventKind
from core.engine.planfile import plan_document, write
from core.errors import LoadmasterError, ReadOnly, StalePlan
from core.model import (
    Action,
    ActionKind,
    Basis,
    ClusterConfig,
    FailoverPlan,
    HostObservation,
    HostState,
    Placement,
    Plan,
    ReplicaId,
    diff_actions,
)
from tests.console.fleet_data import observe, small_state

SOLVER_TIME_LIMIT = 2.0  # deterministic time: the small fleets here are proven optimal long before
INJECTED_ERROR = "exit status 1: address in use"


def _problem(snapshot: Snapshot) -> optimizer.PlacementProblem:
    states = {n: o.state for n, o in snapshot.hosts.items()}
    probed = {n: o.capacity for n, o in snapshot.hosts.items() if o.capacity is not None}
    return optimizer.PlacementProblem.from_config(snapshot.config, probed, states, snapshot.placement)


def derive(snapshot: Snapshot) -> Snapshot:
    """What the engine publishes besides the observations: failover plans, the bound, hosts in use."""
    problem = _problem(snapshot)
    reachable = {n for n, o in snapshot.hosts.items() if o.state.reachable}
    return replace(
        snapshot,
        failover=optimizer.failover_plans(problem, snapshot.placement),
        fits_on=optimizer.lower_bound(problem),
        runs_on=len(set(snapshot.placement.assignments.values()) & reachable),
    )


def basis(snapshot: Snapshot) -> tuple[str, Basis]:
    assumed = basis_of(snapshot.config, snapshot.hosts, snapshot.placement)
    return fingerprint(assumed), assumed


def compute_plan(
    snapshot: Snapshot, *, repack: bool, progress: Callable[[int, int | None], None] | None = None
) -> tuple[Plan, int]:
    """The plan the engine would make of `snapshot`, and the solver's proven bound."""
    result = optimizer.solve(
        _problem(snapshot),
        time_limit=SOLVER_TIME_LIMIT,
        seed=0,
        workers=1,
        progress=progress,
        moves_first=not repack,
    )
    fp, assumed = basis(snapshot)
    plan = Plan(
        cluster=snapshot.config.name,
        basis=fp,
        created_at=snapshot.at,
        current=snapshot.placement,
        target=result.placement,
        actions=diff_actions(snapshot.placement, result.placement),
        status=result.status,
        hosts_used=result.hosts_used,
        lower_bound=result.lower_bound,
        gap=result.gap,
        unplaced=result.unplaced,
        reason="repack" if repack else "rebalance",
        assumed=assumed,
    )
    return plan, result.lower_bound


@functools.cache
def _small(demo: bool) -> Snapshot:
    snap = derive(small_state(demo=demo))
    plan, bound = compute_plan(snap, repack=True)
    return replace(snap, pending=plan, unplaced=plan.unplaced, fits_on=max(snap.fits_on or 0, bound))


def small_snapshot(*, demo: bool = False, read_only: bool = False, tick: int = 0) -> Snapshot:
    """The small fleet as the engine shows it after the operator asked for a repack (so a plan is pending)."""
    derived = _small(demo)
    state = small_state(demo=demo, read_only=read_only, tick=tick)
    return replace(derived, at=state.at, hosts=state.hosts, read_only=read_only)


def _improvements(reports: list[tuple[int, int | None]]) -> SolveProgress:
    """The solver's reports as the engine counts them: the best so far, the bound, improving placements."""
    best: int | None = None
    found = 0
    for hosts, _ in reports:
        found += best is None or hosts < best
        best = hosts if best is None else min(best, hosts)
    return SolveProgress(0.0, best, reports[-1][1] if reports else None, found)


class FakeEngine:
    """EngineAPI over an in-memory Snapshot; `calls` records every call a front end made to change or ask."""

    def __init__(
        self,
        snapshot: Snapshot,
        events: Iterable[Event] = (),
        *,
        plan_delay: float = 0.0,
        apply_delay: float = 0.0,
        failing: Iterable[ReplicaId] = (),
        failure_timeout: float = 0.0,
        failover_auto: bool | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._events = list(events)
        self._queues: list[asyncio.Queue[Event]] = []
        self.plan_delay = plan_delay  # seconds a solve appears to take (the real solve is done first)
        # Set by a test that must look at the console mid-solve however slow the machine is:
        # the solve waits here, at its halfway point, until the test sets it.
        self.halfway: asyncio.Event | None = None
        self.apply_delay = apply_delay
        self.failing = frozenset(failing)  # starting these replicas fails with INJECTED_ERROR
        self.failure_timeout = failure_timeout  # a stopped demo host is suspect this long, then down
        # Like the engine: failover applies itself when auto-apply is on, else it waits for approval.
        self.failover_auto = snapshot.auto_apply if failover_auto is None else failover_auto
        self.calls: list[tuple[str, object]] = []
        self.logs: asyncio.Queue[bytes | None] = asyncio.Queue()  # what `replica_log` streams
        self.log_closed = False
        self.tick_count = 0

    # -- reading -----------------------------------------------------------------------------------

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
        return optimizer.failover_for(_problem(self._snapshot), self._snapshot.placement, [host])

    def export(self, plan: Plan, path: str, fmt: str) -> None:
        self.calls.append(("export", (path, fmt)))
        capacities = {h.name: h.usable(self._snapshot.hosts[h.name].capacity) for h in self._snapshot.config.hosts}
        write(plan_document(plan, self._snapshot.config, capacities), path, fmt)

    # -- scripting it from a test ------------------------------------------------------------------

    def emit(self, kind: EventKind, message: str, **fields: object) -> None:
        event = Event(self._snapshot.at, kind, message, **fields)  # type: ignore[arg-type]
        if kind is not EventKind.STATE_UPDATED:
            self._events.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def publish(self, snapshot: Snapshot) -> None:
        """Show `snapshot` from now on, as it is (a test's word for what the engine sees)."""
        self._snapshot = snapshot
        self.emit(EventKind.STATE_UPDATED, "")

    def tick(self) -> None:
        """One more poll cycle: new load figures, one second later."""
        self.tick_count += 1
        snap = self._snapshot
        self.publish(replace(snap, at=snap.at + 1, hosts=self._observe(snap.placement, at=snap.at + 1)))

    def _observe(
        self, placement: Placement, changes: dict[str, HostState] | None = None, at: float | None = None
    ) -> dict[str, HostObservation]:
        snap = self._snapshot
        states = {n: o.state for n, o in snap.hosts.items()} | (changes or {})
        return observe(snap.config, placement, states, snap.at if at is None else at, self.tick_count)

    def _republish(self, placement: Placement, changes: dict[str, HostState] | None = None) -> None:
        """The fleet changed: new observations, and what the engine derives from them."""
        hosts = self._observe(placement, changes)
        self.publish(derive(replace(self._snapshot, placement=placement, hosts=hosts)))

    # -- changing ----------------------------------------------------------------------------------

    def _refuse_if_read_only(self, what: str) -> None:
        if self._snapshot.read_only:
            raise ReadOnly(what)

    async def plan(self, *, repack: bool = False) -> Plan:
        self.calls.append(("plan", "repack" if repack else None))
        self.publish(replace(self._snapshot, solving=True, solve_progress=SolveProgress(0.0)))
        reports: list[tuple[int, int | None]] = []
        snap = self._snapshot
        plan, bound = await asyncio.to_thread(
            compute_plan, snap, repack=repack, progress=lambda best, lb: reports.append((best, lb))
        )
        await asyncio.sleep(self.plan_delay / 2)
        halfway = replace(_improvements(reports), elapsed=self.plan_delay / 2)
        self.publish(replace(self._snapshot, solve_progress=halfway))
        if self.halfway is not None:
            await self.halfway.wait()
        await asyncio.sleep(self.plan_delay / 2)
        fits_on = max(self._snapshot.fits_on or 0, bound)
        done = replace(self._snapshot, solving=False, solve_progress=None, fits_on=fits_on)
        self.publish(replace(done, pending=plan, unplaced=plan.unplaced))
        self.emit(
            EventKind.PLAN_COMPUTED,
            f"plan ({plan.reason}): {len(plan.actions)} actions, {plan.hosts_used} hosts, "
            f"{plan.status.value.lower()}, lower bound {plan.lower_bound}",
        )
        return plan

    def _stale(self, plan: Plan) -> list[str]:
        fp, now = basis(self._snapshot)
        if plan.basis == fp:
            return []
        if plan.assumed is None:
            return ["the plan does not say what it was computed from"]
        return what_changed(plan.assumed, now) or ["the fleet changed since the plan was made"]

    async def approve(self, plan: Plan) -> None:
        self.calls.append(("approve", plan))
        self._refuse_if_read_only("approve")
        reasons = self._stale(plan)
        if reasons:
            raise StalePlan(reasons)
        self.emit(EventKind.PLAN_APPROVED, f"plan approved ({len(plan.actions)} actions)")
        await self._apply(plan)

    async def _apply(self, plan: Plan) -> None:
        progress = ApplyProgress(plan, total=len(plan.actions))
        assignments = dict(self._snapshot.placement.assignments)
        for action in plan.actions:
            host = action.to_host or action.from_host
            progress = replace(progress, running=(action,))
            self.publish(replace(self._snapshot, applying=progress))
            self.emit(EventKind.ACTION_STARTED, str(action), host=host, replica=action.replica)
            await asyncio.sleep(self.apply_delay)
            if action.replica in self.failing and action.kind is not ActionKind.STOP:
                progress = replace(progress, running=(), failed={**progress.failed, action: INJECTED_ERROR})
                self.emit(EventKind.ACTION_FAILED, f"{action}: {INJECTED_ERROR}", host=host, replica=action.replica)
                continue
            if action.kind is ActionKind.STOP:
                assignments.pop(action.replica, None)
            elif action.to_host is not None:
                assignments[action.replica] = action.to_host
            progress = replace(progress, running=(), done=(*progress.done, action))
            self.emit(EventKind.ACTION_DONE, str(action), host=host, replica=action.replica)
        pending = self._snapshot.pending
        if pending is not None and (pending.basis, pending.actions) == (plan.basis, plan.actions):
            pending = None
        self._republish(Placement(assignments))
        self.publish(replace(self._snapshot, pending=pending, applying=progress))
        self.emit(
            EventKind.APPLY_FINISHED,
            f"applied {plan.reason} plan: {len(progress.done)} done, {len(progress.failed)} failed",
        )

    async def reject(self, plan: Plan) -> None:
        self.calls.append(("reject", plan))
        self._refuse_if_read_only("reject")
        pending = self._snapshot.pending
        if pending is not None and (pending.basis, pending.actions) == (plan.basis, plan.actions):
            self.publish(replace(self._snapshot, pending=None))
        self.emit(EventKind.PLAN_REJECTED, "plan rejected")

    async def stop_demo_host(self, host: str) -> None:
        self.calls.append(("stop_demo_host", host))
        self._refuse_outside_demo("stop", host)
        self._republish(self._snapshot.placement, {host: HostState.SUSPECT})
        self.emit(EventKind.HOST_SUSPECT, f"{host} is suspect", host=host)
        await asyncio.sleep(self.failure_timeout)
        self._republish(self._snapshot.placement, {host: HostState.DOWN})
        self.emit(EventKind.HOST_DOWN, f"{host} is down: connection lost", host=host)
        await self._fail_over(host)

    async def _fail_over(self, host: str) -> None:
        """What the engine does when a host goes down: re-place its replicas, or propose to."""
        snap = self._snapshot
        ready = optimizer.failover_for(_problem(snap), snap.placement, [host])
        target = Placement({**snap.placement.assignments, **ready.moves})  # the unplaced stay on the lost host
        fp, assumed = basis(snap)
        plan = Plan(
            cluster=snap.config.name, basis=fp, created_at=snap.at, current=snap.placement, target=target,
            actions=diff_actions(snap.placement, target), status=ready.status,
            hosts_used=len(set(target.assignments.values())), lower_bound=snap.fits_on or 0, gap=0.0,
            unplaced=ready.unplaced, reason=f"failover:{host}", assumed=assumed,
        )  # fmt: skip
        if not plan.actions:
            return
        message = f"{host} is down: {len(plan.actions)} replicas to re-place"
        if self.failover_auto and not snap.read_only:
            self.emit(EventKind.FAILOVER_STARTED, message, host=host)
            await self._apply(plan)
        else:
            self.emit(EventKind.PLAN_COMPUTED, message, host=host)
            self.publish(replace(self._snapshot, pending=plan))

    async def set_demo_load(self, service: str, share: float) -> str:
        self.calls.append(("set_demo_load", service, share))
        if not self._snapshot.demo:
            raise LoadmasterError(f"not a demo fleet: cannot set the load of {service}")
        self._refuse_if_read_only(f"set the load of {service}")
        return f"{service}: each replica burns {share:g} of its request"

    async def wedge_demo_replica(self, replica: ReplicaId) -> str:
        self.calls.append(("wedge_demo_replica", str(replica)))
        host = self._snapshot.placement.assignments.get(replica, "")
        self._refuse_outside_demo("wedge", str(replica))
        self.emit(EventKind.DEMO_WEDGED, f"{replica} wedged on {host}", host=host, replica=replica)
        return host

    async def restore_demo_host(self, host: str) -> None:
        self.calls.append(("restore_demo_host", host))
        self._refuse_outside_demo("restore", host)
        self._republish(self._snapshot.placement, {host: HostState.UP})
        self.emit(EventKind.HOST_UP, f"{host} is up", host=host)

    def _refuse_outside_demo(self, verb: str, host: str) -> None:
        if not self._snapshot.demo:
            raise LoadmasterError(f"not a demo fleet: cannot {verb} demo host {host}")
        self._refuse_if_read_only(f"{verb} demo host {host}")

    # -- the desired state and holds (recorded; the real engine's behaviour is tested in tests/engine) ----------

    def reload(self, config: ClusterConfig) -> list[str]:
        self.calls.append(("reload", config))
        changes = config_changes(self._snapshot.config, config)
        self.publish(replace(self._snapshot, config=config))
        self.emit(EventKind.CONFIG_RELOADED, f"{config.source} reloaded: " + ("; ".join(changes) or "no change"))
        return changes

    def record(self, kind: EventKind, message: str, *, data: Mapping[str, object] | None = None) -> None:
        self.calls.append(("record", (kind, message)))
        self.emit(kind, message, data=dict(data or {}))

    def _hold(self, verb: str, host: str, word: str | None) -> None:
        self.calls.append((verb, host))
        self._refuse_if_read_only(f"{verb} {host}")
        holds = {k: v for k, v in self._snapshot.holds.items() if k != host}
        self.publish(replace(self._snapshot, holds=holds | ({host: word} if word else {})))

    async def cordon(self, host: str) -> None:
        self._hold("cordon", host, "cordoned")

    async def drain(self, host: str) -> Plan | None:
        self._hold("drain", host, "drained")
        return None

    async def uncordon(self, host: str) -> None:
        self._hold("uncordon", host, None)

    def trust_host_key(self, host: str, fingerprint: str) -> str:
        self.calls.append(("trust_host_key", f"{host} {fingerprint}"))
        self._refuse_if_read_only(f"trust {host}'s host key")
        return "/tmp/known_hosts"

    def replica_log(self, host: str, replica: ReplicaId, lines: int, *, follow: bool = False) -> AsyncIterator[bytes]:
        """What a test puts in `logs` (a queue of chunks; None ends the stream), read as a host's log would be."""
        self.calls.append(("replica_log", f"{replica}@{host}"))

        async def stream() -> AsyncIterator[bytes]:
            try:
                while (chunk := await self.logs.get()) is not None:
                    yield chunk
            finally:
                self.log_closed = True

        return stream()

    async def stop_replica(self, replica: ReplicaId) -> ApplyProgress:
        self.calls.append(("stop_replica", str(replica)))
        self._refuse_if_read_only(f"stop {replica}")
        action = Action(ActionKind.STOP, replica, self._snapshot.placement.host_of(replica))
        plan = replace(self._snapshot.pending, actions=(action,)) if self._snapshot.pending else None
        assert plan is not None, "the small snapshot has a pending plan to borrow the fields of"
        return ApplyProgress(plan, total=1, done=(action,))

    async def restart_replica(self, replica: ReplicaId) -> ApplyProgress:
        self.calls.append(("restart_replica", str(replica)))
        self._refuse_if_read_only(f"restart {replica}")
        host = self._snapshot.placement.host_of(replica)
        action = Action(ActionKind.RESTART, replica, host, host)
        plan = replace(self._snapshot.pending, actions=(action,)) if self._snapshot.pending else None
        assert plan is not None, "the small snapshot has a pending plan to borrow the fields of"
        return ApplyProgress(plan, total=1, done=(action,))
