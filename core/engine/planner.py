"""Plan: placement problems from a `View`, plans from the optimizer, failover plans ahead of time, bounds.

State owned here, and who changes it (all of it is what the planner last computed; the engine only reads it):
- the solve in progress (`solving_since`, `_solve_progress`): `compute`, and the solver's thread through
  its progress callback;
- the precomputed failover plans (`failover`) and the basis they were computed from: `refresh_failover`,
  whose work runs in a background task owned here (`busy`, `cancel`);
- the quick lower bound and a solve's proven one (`fits_on`): `refresh_failover` and `compute`;
- `unplaced`, from the latest plan of any kind, applied or not: `compute` and `failover_plan`.

The optimizer runs in threads (CP-SAT releases the GIL), and so does building its problem from a
`View` (immutable, so safe to read there): the event loop stays free for the hosts.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine, Mapping

from core import optimizer
from core.engine.api import SolveProgress
from core.engine.events import Emit, EventKind
from core.engine.view import View
from core.errors import LoadmasterError
from core.model import (
    Action,
    ActionKind,
    FailoverPlan,
    HostState,
    Placement,
    Plan,
    ReplicaId,
    SolverStatus,
    diff_actions,
)
from core.optimizer import PlacementProblem


def plan_id(plan: Plan) -> str:
    body = plan.basis + "|" + ";".join(str(a) for a in plan.actions)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def problem_of(view: View) -> PlacementProblem:
    return PlacementProblem.from_config(view.config, view.probed, view.planning, view.current)


def one_replica_plan(view: View, replica: ReplicaId, kind: ActionKind, now: float) -> Plan:
    """An operator's action on one replica where it runs (restart in place, or stop), as a one-action plan:
    applied like any plan (journaled, fenced, refused below min_healthy). LoadmasterError when the replica runs
    nowhere or on a host that cannot be reached now (the action would only fail there)."""
    verb = kind.value
    host = view.current.host_of(replica)
    state = view.states.get(host, HostState.UNKNOWN) if host else None
    if host is None or state is not HostState.UP:
        where = f"its host {host} is {state}" if host else "it runs nowhere"
        raise LoadmasterError(f"{verb} {replica}: {where}; nothing to {verb}")
    action = Action(kind, replica, host, host if kind is ActionKind.RESTART else None)
    target = Placement({r: h for r, h in view.current.assignments.items() if r != replica or action.to_host})
    return Plan(
        cluster=view.config.name, basis=view.fingerprint, created_at=now, current=view.current, target=target,
        actions=(action,), status=SolverStatus.UNKNOWN, hosts_used=0, lower_bound=0, gap=0.0, reason=verb,
    )  # fmt: skip


def _bound_key(view: View) -> object:
    # Moves don't change the fewest hosts needed; host states and the file do.
    return (id(view.config), tuple(sorted(view.planning.items())))


# Observed states of a host nothing can be done on now, and that is not (yet) declared lost either: what
# runs there stays in a plan until the host answers again or goes DOWN (then failover moves it).
WAITS_FOR = {
    HostState.SUSPECT: "missed its polls",
    HostState.UNKNOWN: "not contacted yet",
}


def wait_for_unreachable(view: View, target: Placement) -> tuple[Placement, dict[ReplicaId, str]]:
    """`target` with every replica on a host that cannot be reached now left where it runs, and why each waits.

    A stop or a move off such a host would fail (its sshd does not answer), and a restart there too; the
    solver only knows the host takes nothing new. Leaving the replica where it is never overfills a host
    that can be reached: the replica stays on a host that takes no new work."""
    states, current = view.states, view.current
    unreachable = {h: s for h, s in states.items() if s in WAITS_FOR}
    unreachable.update((h.name, HostState.UNKNOWN) for h in view.config.hosts if h.name not in states)
    waiting: dict[ReplicaId, str] = {}
    if not unreachable:
        return target, waiting
    outdated = {a.replica for a in view.restarts_needed(current)}
    kept = dict(target.assignments)
    for replica, host in current.assignments.items():
        state = unreachable.get(host)
        if state is not None and (kept.get(replica) != host or replica in outdated):
            kept[replica] = host
            why = f"{host} is {state.value} ({WAITS_FOR[state]})"
            waiting[replica] = f"{why}: waits until it answers or is declared down"
    return (Placement(kept) if waiting else target), waiting


class Planner:
    def __init__(self, clock: Callable[[], float], emit: Emit, *, seed: int, workers: int | None):
        """`workers`: CP-SAT workers per solve; None follows `[policy] solver_workers`."""
        self._clock, self._emit, self._seed, self._workers = clock, emit, seed, workers
        self.solving_since: float | None = None
        self._solve_progress: tuple[int | None, int | None, int] = (None, None, 0)  # best, bound, reports
        self.failover: tuple[FailoverPlan, ...] = ()
        self._failover_basis = ""
        self._failover_book: optimizer.FailoverBook | None = None  # what the next refresh may keep
        # Fewest hosts that could hold the desired state: the quick bound, raised by a solve's proven
        # bound for the same hosts and config.
        self._quick_bound: int | None = None
        self._solved_bound: tuple[object, int] | None = None
        self.unplaced: Mapping[ReplicaId, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the snapshot shows ------------------------------------------------------

    def solve_progress(self) -> SolveProgress | None:
        if self.solving_since is None:  # not `if not`: an injected clock may read 0
            return None
        return SolveProgress(self._clock() - self.solving_since, *self._solve_progress)

    def fits_on(self, view: View) -> int | None:
        solved = self._solved_bound[1] if self._solved_bound and self._solved_bound[0] == _bound_key(view) else None
        bounds = [b for b in (self._quick_bound, solved) if b is not None]
        return max(bounds) if bounds else None

    # -- plans ------------------------------------------------------------------------

    async def compute(
        self, view: View, reason: str = "rebalance", *, moves_first: bool = True, announce: bool = True
    ) -> Plan:
        """A plan for `view`; `announce=False` leaves the plan.computed event to the caller (`announce`),
        which knows whether the plan is applied or why it waits."""
        self.solving_since = self._clock()
        self._solve_progress = (None, None, 0)
        self._emit(EventKind.STATE_UPDATED, "")
        loop = asyncio.get_running_loop()

        def progress(best: int, bound: int | None) -> None:  # called from the solver's thread
            before, _, found = self._solve_progress
            self._solve_progress = (best, bound, found + (before is None or best < before))
            loop.call_soon_threadsafe(self._emit, EventKind.STATE_UPDATED, "")

        def solve() -> optimizer.PlacementResult:
            return optimizer.solve(
                problem_of(view),
                time_limit=view.config.policy.solver_time_limit,
                seed=self._seed,
                workers=self._workers or optimizer.solver_workers(view.config.policy.solver_workers),
                progress=progress,
                moves_first=moves_first,
            )

        try:
            result = await asyncio.to_thread(solve)
        finally:
            self.solving_since = None
        self._solved_bound = (_bound_key(view), result.lower_bound)
        self.unplaced = result.unplaced
        current = view.current
        target, waiting = wait_for_unreachable(view, result.placement)
        restarts = [a for a in view.restarts_needed(target) if a.replica not in waiting]
        plan = Plan(
            cluster=view.config.name,
            basis=view.fingerprint,
            created_at=self._clock(),
            current=current,
            target=target,
            actions=diff_actions(current, target) + tuple(restarts),
            waiting=waiting,
            status=result.status,
            hosts_used=result.hosts_used,
            lower_bound=result.lower_bound,
            gap=result.gap,
            unplaced=result.unplaced,
            reason=reason,
            assumed=view.basis,
        )
        if announce:
            self.announce(plan)
        return plan

    def announce(self, plan: Plan, *, pending: str | None = None) -> None:
        """plan.computed, saying why the plan waits when it does (`pending`)."""
        waits = f"; pending: {pending}" if pending else ""
        data: dict[str, object] = {"plan": plan_id(plan), "actions": len(plan.actions), "status": plan.status.value}
        if pending:
            data["pending"] = pending
        if plan.waiting:  # replicas on hosts that cannot be reached: no action touches them yet
            data["waiting"] = {str(r): why for r, why in plan.waiting.items()}
            waits += f"; {len(plan.waiting)} replicas wait for unreachable hosts"
        self._emit(
            EventKind.PLAN_COMPUTED,
            f"plan ({plan.reason}): {len(plan.actions)} actions, {plan.hosts_used} hosts, "
            f"{plan.status.value.lower()}, lower bound {plan.lower_bound}{waits}",
            data=data,
        )

    async def failover_plan(self, view: View, host: str) -> Plan:
        """Where `host`'s replicas go now that it is lost: the plan made ahead if it still fits, else a new one.
        Built in a thread: the target and its actions read every replica."""
        current = view.current
        ready = self.ready_for(view, host)
        lower_bound, now = self.fits_on(view) or 0, self._clock()

        def build() -> tuple[FailoverPlan, Plan]:
            made = ready or optimizer.failover_for(problem_of(view), current, [host])
            # Replicas with nowhere to go stay assigned to the lost host: stopping them there is moot.
            target = Placement({**current.assignments, **made.moves})
            return made, Plan(
                cluster=view.config.name,
                basis=view.fingerprint,
                created_at=now,
                current=current,
                target=target,
                actions=diff_actions(current, target),
                status=made.status,
                hosts_used=len(target.hosts_used()),
                lower_bound=lower_bound,
                gap=0.0,
                unplaced=made.unplaced,
                reason=f"failover:{host}",
                assumed=view.basis,
            )

        made, plan = await asyncio.to_thread(build)
        self.unplaced = {**self.unplaced, **made.unplaced}
        return plan

    def ready_for(self, view: View, host: str) -> FailoverPlan | None:
        """The failover plan made ahead for `host`, if it still covers what runs there and its targets take work."""
        ready = next((f for f in self.failover if f.scope == "host" and f.target == host), None)
        if ready is None:
            return None
        displaced = set(view.current.on_host(host))
        planning = view.planning
        if set(ready.moves) | set(ready.unplaced) != displaced or not all(
            planning.get(h, HostState.UNKNOWN).accepts_work for h in ready.moves.values()
        ):
            return None
        return ready

    def what_if(self, view: View, host: str) -> FailoverPlan:
        ready = next((f for f in self.failover if f.scope == "host" and f.target == host), None)
        return ready or optimizer.failover_for(problem_of(view), view.current, [host])

    def refresh_failover(self, view: View) -> None:
        """Bring the failover plans up to date when the placement or host states moved (in the background):
        only the plans whose hosts or targets changed are made again (`optimizer.refresh_failover`)."""
        if view.fingerprint == self._failover_basis or self.busy:
            return
        self._failover_basis = view.fingerprint
        book = self._failover_book

        def work() -> tuple[optimizer.FailoverBook, int]:
            problem = problem_of(view)
            labels = optimizer.spread_labels(view.config.services)  # a plan per zone, rack, … a service spreads over
            made = optimizer.refresh_failover(book, problem, view.current, labels=labels)
            return made, optimizer.lower_bound(problem)

        async def run() -> None:
            made, self._quick_bound = await asyncio.to_thread(work)
            self._failover_book, self.failover = made, made.plans
            self._emit(EventKind.STATE_UPDATED, "")

        self._spawn(run(), "failover")

    def failover_made_for(self, view: View) -> bool:
        """The failover plans are those of `view`, and none is being computed."""
        return not self.busy and self._failover_basis == view.fingerprint

    async def wait_failover(self, view: Callable[[], View], timeout: float) -> None:
        # A refresh asked while another solve runs is skipped, so one ask and a wait for idle could return
        # the plans of an older view: ask until the plans are those of the view current at the time.
        deadline = self._clock() + timeout
        while self._clock() < deadline:
            self.refresh_failover(view())
            if self.failover_made_for(view()):
                return
            await asyncio.sleep(0.05)

    # -- background work ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
