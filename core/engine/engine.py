"""The engine: observe → plan → approve → apply → verify, for the console and the daemon alike.

All host I/O goes through the fleet port, all placement through the optimizer
(run in a thread: CP-SAT releases the GIL, the event loop stays free).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Protocol, TypeVar

from core import optimizer
from core.engine.api import ApplyProgress, Snapshot, SolveProgress
from core.engine.apply import Limits, apply_plan
from core.engine.basis import basis_of, fingerprint, generation, what_changed
from core.engine.events import Event, EventKind
from core.engine.journal import Journal
from core.engine.planfile import failover_document, plan_document, write
from core.engine.ports import FleetPort, ReplicaRuntime
from core.engine.reconcile import reconcile
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
    ReplicaStatus,
    Resources,
    Service,
    SolverStatus,
    diff_actions,
)
from core.optimizer import PlacementProblem

log = logging.getLogger("loadmaster.engine")
T = TypeVar("T")

_HOST_EVENTS = {
    HostState.UP: EventKind.HOST_UP,
    HostState.SUSPECT: EventKind.HOST_SUSPECT,
    HostState.DOWN: EventKind.HOST_DOWN,
    HostState.KEY_MISMATCH: EventKind.HOST_KEY_MISMATCH,
    HostState.UNSUPPORTED: EventKind.HOST_UNSUPPORTED,
}
RESTART_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)  # then the replica is moved instead


class DemoControl(Protocol):
    async def crash(self, host: str) -> None: ...

    async def restore(self, host: str) -> None: ...


class _Expecting:
    """Every start and stop the engine makes goes through here, so it is remembered until seen."""

    def __init__(self, fleet: ReplicaRuntime, expect: Callable[[str, ReplicaId, ReplicaStatus | None], None]):
        self._fleet, self._expect = fleet, expect

    async def start_replica(self, host: str, service: Service, index: int, generation: str) -> ReplicaStatus:
        status = await self._fleet.start_replica(host, service, index, generation)
        self._expect(host, status.replica, status if status.running else None)
        return status

    async def stop_replica(self, host: str, replica: ReplicaId, grace: float = 5.0) -> None:
        await self._fleet.stop_replica(host, replica, grace)
        self._expect(host, replica, None)


def plan_id(plan: Plan) -> str:
    body = plan.basis + "|" + ";".join(str(a) for a in plan.actions)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class Engine:
    def __init__(
        self,
        config: ClusterConfig,
        fleet: FleetPort,
        journal: Journal,
        *,
        read_only: bool = False,
        auto_apply: bool | None = None,
        failover_auto: bool | None = None,
        demo: DemoControl | None = None,
        seed: int = 0,
        workers: int = 2,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._config = config
        self._fleet = fleet
        self._journal = journal
        self.read_only = read_only
        self.auto_apply = config.policy.auto_apply if auto_apply is None else auto_apply
        # The daemon fails over on its own; the console does so only when auto-apply is on.
        self.failover_auto = self.auto_apply if failover_auto is None else failover_auto
        self._demo = demo
        self._seed, self._workers, self._limits, self._clock = seed, workers, limits or Limits(), clock

        self._states: dict[str, HostState] = {}
        self._back_since: dict[str, float] = {}  # host → when it came back after being lost
        self._ever_lost: set[str] = set()
        self._records: dict[str, tuple[ReplicaStatus, ...]] = {}
        # host → replica → (status after our start, or None after our stop; when), until a frame shows it
        self._expected: dict[str, dict[ReplicaId, tuple[ReplicaStatus | None, float]]] = {}
        self._runtime = _Expecting(fleet, self._expect)
        self._rec = reconcile(config, {}, {})
        self._intended: Placement | None = None
        self._pending: Plan | None = None
        self._applying: ApplyProgress | None = None
        self._apply_lock = asyncio.Lock()
        self._solving_since: float | None = None
        self._solve_progress: tuple[int | None, int | None, int] = (None, None, 0)  # best, bound, reports
        self._failover: tuple[FailoverPlan, ...] = ()
        self._failover_basis = ""
        # Fewest hosts that could hold the desired state: the quick bound, raised by a solve's proven
        # bound for the same hosts and config (moves don't change it, host states and the file do).
        self._quick_bound: int | None = None
        self._unplaced: Mapping[ReplicaId, str] = {}  # from the latest plan of any kind, applied or not
        self._solved_bound: tuple[object, int] | None = None
        self._restarts: dict[tuple[ReplicaId, str], tuple[int, float]] = {}
        self._given_up: set[tuple[ReplicaId, str]] = set()
        self._drift_seen = ""
        self._last_auto = 0.0
        self._events: collections.deque[Event] = collections.deque(maxlen=2000)
        self._queues: list[asyncio.Queue[Event]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[object]] = set()
        self._closing = False

    # -- life cycle ------------------------------------------------------------

    async def start(self, *, first_contact_timeout: float | None = None, run_loop: bool = True) -> None:
        """Connect, wait for a first word from every host (bounded), roll unfinished plans forward.

        One-shot commands (status, plan) pass `run_loop=False`: they look once and change nothing.
        """
        await self._fleet.start()
        deadline = self._clock() + (first_contact_timeout or self._config.defaults.connect_timeout)
        while self._clock() < deadline:
            obs = self._fleet.observations()
            if all(o.state is not HostState.UNKNOWN for o in obs.values()):
                break
            await asyncio.sleep(0.05)
        self._observe()
        if not self.read_only:
            await self._roll_forward()
        if run_loop:
            self._tasks.append(asyncio.create_task(self._loop(), name="engine-loop"))

    async def close(self, grace: float = 60.0) -> None:
        """Let the actions in flight finish (no new one begins; the journal keeps the rest), then disconnect."""
        self._closing = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        for task in (*self._tasks, *self._busy):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._busy, return_exceptions=True)
        await self._fleet.close()

    async def _loop(self) -> None:
        interval = max(0.1, min(0.5, self._config.poll_interval / 2))
        while not self._closing:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop the engine; the next one retries
                log.exception("engine tick failed")
            await asyncio.sleep(interval)

    # -- observe ---------------------------------------------------------------

    def _planning_states(self) -> dict[str, HostState]:
        """Host states as the optimizer should see them: a host back from the dead settles first."""
        now, settle = self._clock(), self._config.policy.settle
        out = {}
        for host, state in self._states.items():
            back = self._back_since.get(host)
            out[host] = HostState.SUSPECT if state is HostState.UP and back and now - back < settle else state
        return out

    def _observe(self) -> list[tuple[str, HostState, HostState]]:
        """Pull the fleet's observations; returns the host state transitions."""
        transitions = []
        now = self._clock()
        for name, obs in self._fleet.observations().items():
            before = self._states.get(name, HostState.UNKNOWN)
            if obs.state is not before:
                transitions.append((name, before, obs.state))
                self._states[name] = obs.state
                if obs.state in (HostState.DOWN, HostState.KEY_MISMATCH):
                    self._ever_lost.add(name)
                if obs.state is HostState.UP and name in self._ever_lost:
                    self._back_since[name] = now
                kind = _HOST_EVENTS.get(obs.state)
                if kind is not None:
                    detail = f": {obs.error}" if obs.error else ""
                    self._emit(kind, f"{name} is {obs.state.value}{detail}", host=name)
            if obs.state.reachable:
                replicas = self._with_expected(name, obs.replicas, now)
                if before.reachable:  # a host that just came back reports its dead, not crashed, replicas
                    self._note_replica_changes(name, replicas)
                self._records[name] = replicas
        self._rec = reconcile(
            self._config, self._planning_states(), self._records, self._intended, frozenset(self._given_up)
        )
        return transitions

    def _with_expected(self, host: str, reported: tuple[ReplicaStatus, ...], now: float) -> tuple[ReplicaStatus, ...]:
        """The host's report, corrected by our own starts and stops that its probe has not shown yet.

        Without this, the frame that left the host just before a start lands would make the
        replica look missing, and the next plan would start it a second time elsewhere.
        """
        expected = self._expected.get(host)
        if not expected:
            return reported
        replicas = {r.replica: r for r in reported}
        horizon = self._config.failure_timeout + 3 * self._config.poll_interval
        for replica, (status, at) in list(expected.items()):
            seen = replicas.get(replica)
            confirmed = seen is None if status is None else seen is not None and seen.running
            if confirmed or now - at > horizon:
                del expected[replica]
            elif status is None:
                replicas.pop(replica, None)
            else:
                replicas[replica] = status
        return tuple(replicas.values())

    def _expect(self, host: str, replica: ReplicaId, status: ReplicaStatus | None) -> None:
        self._expected.setdefault(host, {})[replica] = (status, self._clock())

    def _note_replica_changes(self, host: str, replicas: tuple[ReplicaStatus, ...]) -> None:
        before = {r.replica: r for r in self._records.get(host, ())}
        for r in replicas:
            old = before.get(r.replica)
            if old is not None and old.running and not r.running:
                self._emit(EventKind.REPLICA_CRASHED, f"{r.replica} exited on {host}", host=host, replica=r.replica)

    # -- the tick ----------------------------------------------------------------

    async def _tick(self) -> None:
        transitions = self._observe()
        for host, _before, after in transitions:
            if after is HostState.DOWN:
                await self._on_host_down(host)
        if not self._apply_lock.locked():
            if not self.read_only:
                await self._tidy()
            await self._on_drift()  # under --read-only, plans are computed and shown, never applied
        self._refresh_failover()
        self._emit(EventKind.STATE_UPDATED, "")

    async def _tidy(self) -> None:
        """Exactly-once repair that needs no plan: extra copies, dead records, crashed replicas."""
        for replica, host in self._rec.duplicates:
            await self._quietly(self._runtime.stop_replica(host, replica, self._limits.stop_grace))
            self._emit(EventKind.REPLICA_STOPPED, f"{replica} also ran on {host}: stopped that copy", host, replica)
        for replica, host in self._rec.stale:
            await self._quietly(self._runtime.stop_replica(host, replica, 0))
        now = self._clock()
        services = {s.name: s for s in self._config.services}
        for replica, host in self._rec.crashed:
            service = services.get(replica.service)
            if service is None or replica.index >= service.replicas:
                await self._quietly(self._runtime.stop_replica(host, replica, 0))
                continue
            attempts, not_before = self._restarts.get((replica, host), (0, 0.0))
            if now < not_before:
                continue
            if attempts >= len(RESTART_BACKOFF):
                self._given_up.add((replica, host))
                self._emit(EventKind.REPLICA_CRASHED, f"{replica} keeps crashing on {host}: moving it", host, replica)
                continue
            self._restarts[(replica, host)] = (attempts + 1, now + RESTART_BACKOFF[attempts])
            status = await self._quietly(self._runtime.start_replica(host, service, replica.index, generation(service)))
            if isinstance(status, ReplicaStatus) and status.running:
                self._emit(EventKind.REPLICA_STARTED, f"{replica} restarted in place on {host}", host, replica)

    async def _quietly(self, aw: Awaitable[T]) -> T | None:
        """Run a clean-up step; a failure is an event, not a reason to stop the loop."""
        try:
            return await aw
        except (TimeoutError, LoadmasterError, OSError) as exc:
            self._emit(EventKind.ACTION_FAILED, str(exc))
            return None

    def _drift(self) -> str:
        """A signature of how the fleet differs from the file; empty when it matches."""
        states = self._planning_states()
        desired = {r for s in self._config.services for r in s.replica_ids()}
        current = self._rec.current.assignments
        missing = sorted(
            str(r) for r in desired if r not in current or not states.get(current[r], HostState.UNKNOWN).reachable
        )
        extra = sorted(str(r) for r in current if r not in desired)
        outdated = sorted(str(a.replica) for a in self._restarts_needed(self._rec.current))
        if not missing and not extra and not outdated:
            return ""
        return "missing:" + ",".join(missing) + "|extra:" + ",".join(extra) + "|outdated:" + ",".join(outdated)

    def _restarts_needed(self, target: Placement) -> list[Action]:
        """Replicas that stay where they run but were started from an older definition of their service."""
        gens = {s.name: generation(s) for s in self._config.services}
        out = []
        for host, records in self._records.items():
            if not self._states.get(host, HostState.UNKNOWN).reachable:
                continue
            for r in records:
                want = gens.get(r.replica.service)
                if r.running and want and r.generation and r.generation != want and target.host_of(r.replica) == host:
                    out.append(Action(ActionKind.RESTART, r.replica, host, host))
        return sorted(out, key=lambda a: a.replica)

    async def _on_drift(self) -> None:
        drift = self._drift()
        if not drift:
            self._drift_seen = ""
            return
        if drift == self._drift_seen or self._solving_since is not None:
            return
        if self._pending is not None and not self.check_stale(self._pending):
            return  # the operator is already looking at a plan for this very state
        self._drift_seen = drift
        plan = await self._compute(reason="drift")
        if not plan.actions:
            return
        if self.auto_apply and not self.read_only and self._within_policy(plan):
            await self._apply(plan)
        else:
            self._pending = plan

    def _within_policy(self, plan: Plan) -> bool:
        """Starts are always allowed; disruptive steps only within max_moves_per_cycle and after cooldown."""
        states = self._planning_states()
        disruptive = [
            a
            for a in plan.actions
            if a.kind is not ActionKind.START and states.get(a.from_host or "", HostState.UNKNOWN).reachable
        ]
        if not disruptive:
            return True
        policy = self._config.policy
        if len(disruptive) > policy.max_moves_per_cycle or self._clock() - self._last_auto < policy.cooldown:
            return False
        self._last_auto = self._clock()
        return True

    async def _on_host_down(self, host: str) -> None:
        plan = await self._failover_plan(host)
        if plan is None or not plan.actions:
            return
        self._emit(
            EventKind.FAILOVER_STARTED if self.failover_auto and not self.read_only else EventKind.PLAN_COMPUTED,
            f"{host} is down: {len(plan.actions)} replicas to re-place",
            host=host,
        )
        if self.failover_auto and not self.read_only:
            await self._apply(plan)
        else:
            self._pending = plan

    # -- planning ------------------------------------------------------------------

    def _capacities(self) -> dict[str, Resources]:
        out = {}
        for host in self._config.hosts:
            obs = self._fleet.observations().get(host.name)
            out[host.name] = host.usable(obs.capacity if obs else None)
        return out

    def _probed(self) -> dict[str, Resources]:
        return {n: o.capacity for n, o in self._fleet.observations().items() if o.capacity is not None}

    def _problem(self) -> PlacementProblem:
        return PlacementProblem.from_config(self._config, self._probed(), self._planning_states(), self._rec.current)

    def _basis(self) -> tuple[str, Basis]:
        hosts = {
            n: replace(o, state=s)
            for n, o in self._fleet.observations().items()
            if (s := self._planning_states().get(n, o.state))
        }
        basis = basis_of(self._config, hosts, self._rec.current)
        return fingerprint(basis), basis

    async def _compute(self, reason: str = "rebalance", *, moves_first: bool = True) -> Plan:
        problem, (fp, basis) = self._problem(), self._basis()
        current = self._rec.current
        self._solving_since = self._clock()
        self._solve_progress = (None, None, 0)
        self._emit(EventKind.STATE_UPDATED, "")
        loop = asyncio.get_running_loop()

        def progress(best: int, bound: int | None) -> None:  # called from the solver's thread
            before, _, found = self._solve_progress
            self._solve_progress = (best, bound, found + (before is None or best < before))
            loop.call_soon_threadsafe(self._emit, EventKind.STATE_UPDATED, "")

        try:
            result = await asyncio.to_thread(
                optimizer.solve,
                problem,
                time_limit=self._config.policy.solver_time_limit,
                seed=self._seed,
                workers=self._workers,
                progress=progress,
                moves_first=moves_first,
            )
        finally:
            self._solving_since = None
        self._solved_bound = (self._bound_key(), result.lower_bound)
        self._unplaced = result.unplaced
        plan = Plan(
            cluster=self._config.name,
            basis=fp,
            created_at=self._clock(),
            current=current,
            target=result.placement,
            actions=diff_actions(current, result.placement) + tuple(self._restarts_needed(result.placement)),
            status=result.status,
            hosts_used=result.hosts_used,
            lower_bound=result.lower_bound,
            gap=result.gap,
            unplaced=result.unplaced,
            reason=reason,
            assumed=basis,
        )
        self._emit(
            EventKind.PLAN_COMPUTED,
            f"plan ({reason}): {len(plan.actions)} actions, {plan.hosts_used} hosts, "
            f"{plan.status.value.lower()}, lower bound {plan.lower_bound}",
            data={"plan": plan_id(plan), "actions": len(plan.actions), "status": plan.status.value},
        )
        return plan

    async def _failover_plan(self, host: str) -> Plan | None:
        current = self._rec.current
        displaced = set(current.on_host(host))
        ready = next((f for f in self._failover if f.scope == "host" and f.target == host), None)
        states = self._planning_states()
        if (
            ready is None
            or set(ready.moves) | set(ready.unplaced) != displaced
            or not all(states.get(h, HostState.UNKNOWN).accepts_work for h in ready.moves.values())
        ):
            ready = await asyncio.to_thread(optimizer.failover_for, self._problem(), current, [host])
        self._unplaced = {**self._unplaced, **ready.unplaced}
        # Replicas with nowhere to go stay assigned to the lost host: stopping them there is moot.
        target = dict(current.assignments)
        target.update(ready.moves)
        fp, basis = self._basis()
        return Plan(
            cluster=self._config.name,
            basis=fp,
            created_at=self._clock(),
            current=current,
            target=Placement(target),
            actions=diff_actions(current, Placement(target)),
            status=ready.status,
            hosts_used=len(set(target.values())),
            lower_bound=self._fits_on() or 0,
            gap=0.0,
            unplaced=ready.unplaced,
            reason=f"failover:{host}",
            assumed=basis,
        )

    def _refresh_failover(self) -> None:
        """Recompute every failover plan when the placement or host states moved (in the background)."""
        fp, _ = self._basis()
        if fp == self._failover_basis or any(t.get_name() == "failover" for t in self._busy):
            return
        self._failover_basis = fp
        problem, current = self._problem(), self._rec.current

        async def run() -> None:
            plans = await asyncio.to_thread(optimizer.failover_plans, problem, current)
            bound = await asyncio.to_thread(optimizer.lower_bound, problem)
            self._failover, self._quick_bound = plans, bound
            self._emit(EventKind.STATE_UPDATED, "")

        self._spawn(run(), "failover")

    def _bound_key(self) -> object:
        return (id(self._config), tuple(sorted(self._planning_states().items())))

    def _fits_on(self) -> int | None:
        solved = self._solved_bound[1] if self._solved_bound and self._solved_bound[0] == self._bound_key() else None
        bounds = [b for b in (self._quick_bound, solved) if b is not None]
        return max(bounds) if bounds else None

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._busy.add(task)
        task.add_done_callback(self._busy.discard)

    # -- apply -----------------------------------------------------------------------

    def check_stale(self, plan: Plan) -> list[str]:
        fp, basis = self._basis()
        if plan.basis == fp:
            return []
        if plan.assumed is None:
            return ["the plan does not say what it was computed from"]
        reasons = what_changed(plan.assumed, basis)
        return reasons or ["the fleet changed since the plan was made"]

    async def apply_file_plan(self, plan: Plan, *, force: bool = False) -> ApplyProgress:
        self._refuse_unless_applicable(plan, force=force)
        return await self._apply(plan)

    def _refuse_unless_applicable(self, plan: Plan, *, force: bool) -> None:
        if self.read_only:
            raise ReadOnly("apply")
        reasons = self.check_stale(plan)
        if reasons and not force:
            raise StalePlan(reasons)

    async def _apply(self, plan: Plan) -> ApplyProgress:
        async with self._apply_lock:
            pid = plan_id(plan)
            self._journal.begin_plan(pid, plan.reason, plan.basis, plan.actions)
            self._applying = ApplyProgress(plan=plan, total=len(plan.actions))
            progress = await apply_plan(
                pid, plan, self._config, self._planning_states(), self._runtime, self._journal,
                self._on_progress, limits=self._limits, stopping=lambda: self._closing, running=self._rec.running,
            )  # fmt: skip
            self._applying = progress
            self._intended = plan.target
            if self._pending is not None and plan_id(self._pending) == pid:
                self._pending = None
            failed = len(progress.failed)
            self._emit(
                EventKind.APPLY_FINISHED,
                f"applied {plan.reason} plan: {len(progress.done)} done, {failed} failed",
                data={"plan": pid, "done": len(progress.done), "failed": failed},
            )
            self._observe()
            return progress

    def _on_progress(self, progress: ApplyProgress, action: Action, state: str, error: str | None) -> None:
        self._applying = progress
        host = action.to_host or action.from_host
        if state == "running":
            self._emit(EventKind.ACTION_STARTED, str(action), host=host, replica=action.replica)
        elif state == "done":
            self._emit(EventKind.ACTION_DONE, str(action), host=host, replica=action.replica)
        elif state == "failed":
            self._emit(EventKind.ACTION_FAILED, f"{action}: {error}", host=host, replica=action.replica)

    async def _roll_forward(self) -> None:
        for pid, actions in self._journal.unfinished():
            todo = [a for a in actions if a.state != "done"]
            self._emit(EventKind.PLAN_APPROVED, f"resuming plan {pid} from the journal: {len(todo)} actions left")
            plan = Plan(
                cluster=self._config.name, basis="", created_at=self._clock(), current=self._rec.current,
                target=self._rec.current, actions=tuple(a.action for a in actions), status=SolverStatus.UNKNOWN,
                hosts_used=0, lower_bound=0, gap=0.0, reason="resume",
            )  # fmt: skip
            done = frozenset(a.seq for a in actions if a.state == "done")
            async with self._apply_lock:
                progress = await apply_plan(
                    pid, plan, self._config, self._planning_states(), self._runtime, self._journal,
                    self._on_progress, limits=self._limits, already_done=done, stopping=lambda: self._closing,
                    running=self._rec.running,  # a resumed plan keeps min_healthy like a fresh one
                )  # fmt: skip
                self._applying = progress
            self._observe()

    # -- EngineAPI -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        obs = self._fleet.observations()
        hosts: dict[str, HostObservation] = {}
        for h in self._config.hosts:
            o = obs.get(h.name) or HostObservation(h.name, HostState.UNKNOWN, self._clock())
            hosts[h.name] = o
        reachable = {n for n, s in self._states.items() if s.reachable}
        pending = self._pending
        solving = self._solving_since is not None
        return Snapshot(
            at=self._clock(),
            config=self._config,
            hosts=hosts,
            placement=self._rec.current,
            failover=self._failover,
            pending=pending,
            applying=self._applying,
            unplaced=self._unplaced,
            fits_on=self._fits_on(),
            runs_on=len({h for h in self._rec.current.assignments.values() if h in reachable}),
            auto_apply=self.auto_apply,
            read_only=self.read_only,
            demo=self._demo is not None,
            solving=solving,
            solve_progress=SolveProgress(self._clock() - self._solving_since, *self._solve_progress)
            if self._solving_since is not None  # an injected clock may read 0
            else None,
        )

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    def recent_events(self) -> tuple[Event, ...]:
        return tuple(self._events)

    def _emit(
        self,
        kind: EventKind,
        message: str,
        host: str | None = None,
        replica: ReplicaId | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        event = Event(self._clock(), kind, message, host, replica, dict(data or {}))
        if kind is not EventKind.STATE_UPDATED:
            self._events.append(event)
            self._journal.log_event(event.at, event.as_json())
        for queue in self._queues:
            if queue.full():  # a stalled reader loses old events, never blocks the engine
                queue.get_nowait()
            queue.put_nowait(event)

    async def plan(self, *, repack: bool = False) -> Plan:
        """A plan for the current state; `repack` packs onto the fewest hosts even if that moves replicas."""
        self._observe()
        plan = await self._compute(reason="repack" if repack else "rebalance", moves_first=not repack)
        self._pending = plan
        return plan

    async def approve(self, plan: Plan) -> None:
        self._refuse_unless_applicable(plan, force=False)
        # Announced (and journaled) only once nothing can refuse it: the journal must not record
        # approvals that never happened.
        self._emit(EventKind.PLAN_APPROVED, f"plan {plan_id(plan)} approved ({len(plan.actions)} actions)")
        await self._apply(plan)

    async def reject(self, plan: Plan) -> None:
        if self.read_only:  # a rejection is a change too (journaled, drops the pending plan)
            raise ReadOnly("reject")
        self._journal.record_rejected(plan_id(plan), plan.reason, plan.basis)
        if self._pending is not None and plan_id(self._pending) == plan_id(plan):
            self._pending = None
        self._emit(EventKind.PLAN_REJECTED, f"plan {plan_id(plan)} rejected")

    def what_if(self, host: str) -> FailoverPlan:
        ready = next((f for f in self._failover if f.scope == "host" and f.target == host), None)
        return ready or optimizer.failover_for(self._problem(), self._rec.current, [host])

    def export(self, plan: Plan, path: str, fmt: str) -> None:
        write(plan_document(plan, self._config, self._capacities()), path, fmt)

    def export_failover(self, path: str, fmt: str) -> None:
        _, basis = self._basis()
        write(failover_document(self._config.name, self._clock(), basis, self._failover), path, fmt)

    async def wait_failover(self, timeout: float = 30.0) -> None:
        deadline = self._clock() + timeout
        self._refresh_failover()
        while self._busy and self._clock() < deadline:
            await asyncio.sleep(0.05)

    async def stop_demo_host(self, host: str) -> None:
        if self._demo is None:
            raise LoadmasterError("not a demo fleet: there is no demo host to stop")
        if self.read_only:
            raise ReadOnly(f"stop demo host {host}")
        await self._demo.crash(host)

    async def restore_demo_host(self, host: str) -> None:
        if self._demo is None:
            raise LoadmasterError("not a demo fleet: there is no demo host to restore")
        if self.read_only:
            raise ReadOnly(f"restore demo host {host}")
        await self._demo.restore(host)

    def reload(self, config: ClusterConfig) -> None:
        """Adopt a new desired state (the file was edited); the next tick plans for the difference."""
        self._config = config
        self._fleet.update_config(config)
        self._drift_seen = ""
        self._emit(EventKind.CONFIG_RELOADED, f"{config.source} reloaded: {len(config.hosts)} hosts, "
                   f"{len(config.services)} services")  # fmt: skip

    def record(self, kind: EventKind, message: str, *, data: Mapping[str, object] | None = None) -> None:
        """An event a front end made happen (e.g. who changed the file through the API): journaled and
        streamed like the engine's own."""
        self._emit(kind, message, data=data)
