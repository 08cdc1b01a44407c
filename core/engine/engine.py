"""The engine: observe → repair → plan → approve → apply → verify, for the console and the daemon alike.

Each stage owns its part of the state (each says which at its top); the engine joins them:
- `observer.Observer`: host states, replica records, our unseen starts/stops → one `View` per tick;
- `repairer.Repairer`: restarts in place with backoff, extra copies, dead records;
- `autopilot.Autopilot`: what each tick does by itself (failover, drift plans, retries);
- `planner.Planner`: plans, failover plans made ahead, bounds (the optimizer runs in threads);
- `approval.Approval`: the plan that waits, why, a reload's guard rails, the auto-apply policy;
- `applier.Applier`: one plan at a time, journal first, and roll-forward; `fencing.Fencing`: one
  acting controller; `holds.Holds`: cordoned and drained hosts; `bus.Bus`: the event stream.
The engine itself owns the desired state (`_config`), the switches (read-only, auto-apply, failover),
the life cycle and the operations a person asks for (`EngineAPI`). All host I/O goes through the fleet port.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Callable, Mapping

from core.engine import plancheck
from core.engine.api import ApplyProgress, Snapshot
from core.engine.applier import Applier
from core.engine.apply import Limits
from core.engine.approval import Approval
from core.engine.autopilot import Autopilot, Moment
from core.engine.basis import stale
from core.engine.bus import Bus
from core.engine.config_changes import config_changes
from core.engine.events import Event, EventKind
from core.engine.fencing import fencing_for
from core.engine.holds import Holds, HostHold
from core.engine.ledger import Ledger
from core.engine.observer import Observer
from core.engine.operator import OperatorCalls
from core.engine.planfile import failover_document, plan_document, write
from core.engine.planner import Planner, plan_id
from core.engine.policy import DriftCheck, Hold, placement_key
from core.engine.ports import DemoControl, FleetPort
from core.engine.repairer import Repairer
from core.engine.view import View
from core.errors import ReadOnly, StalePlan, UnknownHost
from core.model import (
    ClusterConfig,
    FailoverPlan,
    HostState,
    Plan,
)
from core.store.base import StateStore
from core.store.election import Election

__all__ = ["DemoControl", "Engine", "plan_id"]

log = logging.getLogger("loadmaster.engine")


class Engine(OperatorCalls):
    def __init__(
        self,
        config: ClusterConfig,
        fleet: FleetPort,
        journal: StateStore,
        *,
        read_only: bool = False,
        auto_apply: bool | None = None,
        failover_auto: bool | None = None,
        demo: DemoControl | None = None,
        seed: int = 0,
        workers: int | None = None,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        take_over: bool = False,
        election: Election | None = None,
    ):
        """`take_over`: claim the hosts' fences even while another controller holds them live; `election`: clustered."""
        self._config = config
        self.revision: str | None = None  # of the cluster file adopted last, if said (file watches skip it)
        self._fleet = fleet
        self._journal = journal
        self.read_only = read_only
        self.ticking = False  # the API's thread lets a tick under way go first (core/api/server.py)
        # What the command line said (None: follow [policy] auto_apply, also after a reload).
        self._auto_apply_flag, self._failover_auto_flag = auto_apply, failover_auto
        self.auto_apply = config.policy.auto_apply if auto_apply is None else auto_apply
        # The daemon fails over on its own; the console does so only when auto-apply is on.
        self.failover_auto = self.auto_apply if failover_auto is None else failover_auto
        self._demo = demo
        self._limits, self._clock = limits or Limits(), clock

        self._bus = Bus(journal, clock)
        self._emit = self._bus.emit
        self._ledger = Ledger(journal)
        self._observer = Observer(config, fleet, clock, self._emit, self._ledger)
        self._fencing = fencing_for(election, fleet, journal, config.failure_timeout, self._emit, clock)
        self._take_over = take_over
        # Every start and stop goes through the observer (remembered until seen) and the fence guard
        # (a host that refuses it as fenced makes this controller stand by).
        # and the ledger (journaled before a start, after a stop: journal first).
        self._runtime = self._ledger.recording(self._fencing.guard(self._observer.runtime), lambda: self._fencing.epoch)
        self._repairer = Repairer(self._runtime, clock, self._emit)
        # Cordoned and drained hosts, kept by the store so that a restart (or a new leader) keeps them.
        self._holds = Holds(journal.shared_map("holds"))
        self._observer.holds = self._holds.all()
        self._planner = Planner(clock, self._emit, seed=seed, workers=workers)
        self._approval = Approval()
        self._auto = self._approval.auto
        self._applier = Applier(self._runtime, journal, self._limits, self._emit, lambda: (self._config, self._view),
                                lambda: self._closing, frames=fleet.observations)  # fmt: skip
        self._rollouts = self._observer.rollouts = self._applier.rollouts  # rolling updates a failing copy stopped
        self._autopilot = Autopilot(self._planner, self._approval, self._emit, self._moment, self._apply)
        self._retries = self._autopilot.retries
        self._drift = DriftCheck()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # -- life cycle ------------------------------------------------------------

    async def start(
        self, *, first_contact_timeout: float | None = None, run_loop: bool = True, roll_forward: bool = True
    ) -> None:
        """Connect, wait for a first word from every host (bounded), roll unfinished plans forward.

        One-shot commands (status, plan) pass `run_loop=False`: they look once and change nothing.
        `apply` passes `roll_forward=False`: it refuses a bad or stale plan before the journal's
        unfinished plan changes the fleet, and rolls forward (`roll_forward()`) only then.
        """
        await self._fleet.start()
        await self._observer.first_contact(first_contact_timeout or self._config.defaults.connect_timeout)
        self._observe()
        if not self.read_only:
            await self._fencing.take(self._view.observations, force=self._take_over)
            self._took_over()
        if roll_forward:
            await self.roll_forward()
        if run_loop:
            # What start-up made (modules, the config, the fleet's records) lives as long as the engine, and a
            # full collection walked all of it about once a second: 20-40 ms on the event loop at 10,000
            # replicas, the benchmark's worst stalls. Frozen, collections walk only what the ticks make.
            gc.freeze()
            self._tasks.append(asyncio.create_task(self._loop(), name="engine-loop"))

    async def close(self, grace: float = 60.0) -> None:
        """Let the actions in flight finish (no new one begins; the journal keeps the rest), then disconnect."""
        self._closing = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._planner.cancel()
        await self._fleet.close()
        self._journal.retry(force=True)
        if self._journal.backlog:
            self._emit(EventKind.JOURNAL_UNWRITABLE, f"{self._journal.backlog} journal entries could not be written "
                       f"before exit: {self._journal.trouble}", data={"backlog": self._journal.backlog})  # fmt: skip

    async def _loop(self) -> None:
        interval = max(0.1, min(0.5, self._config.poll_interval / 2))
        while not self._closing:
            self.ticking = True
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop the engine; the next one retries
                log.exception("engine tick failed")
            finally:
                self.ticking = False
            await asyncio.sleep(interval)

    # -- the tick ----------------------------------------------------------------

    def _observe(self) -> list[tuple[str, HostState, HostState]]:
        return self._observer.observe(self._config, self._repairer.given_up)

    @property
    def _view(self) -> View:
        return self._observer.view

    def _took_over(self) -> None:
        """This controller acts now: re-read what the journal says is ours (a controller we took over from
        may have written it, if it shared the journal) and look again with that."""
        if self._acting:
            self._ledger.reload()
            self._observe()
            self._approval.stood_by()  # the plans made meanwhile were held for nobody: plan again

    def _moment(self) -> Moment:
        return Moment(self._config, self._view, self._clock(), self._acting, self.auto_apply, self.failover_auto)

    @property
    def _acting(self) -> bool:
        """This controller changes the fleet: not --read-only, and no other controller holds the hosts' fences."""
        return not self.read_only and not self._fencing.standing_by

    async def _tick(self) -> None:
        self._journal.retry()  # what a full or locked journal could not take, once it can
        if self._holds.refresh():  # `loadmaster drain|uncordon` in another process
            self._observer.holds = self._holds.all()
            self._auto.forget()
        transitions = await self._observer.observe_off_loop(self._config, self._repairer.given_up)
        if not self.read_only and not self._applier.busy:
            was_acting = self._acting
            await self._fencing.watch(self._view.observations)
            if self._acting and not was_acting:
                self._took_over()
                await self.roll_forward()
                transitions += self._observer.down_besides(transitions)  # down while we stood by: ours now
            elif not self._acting and await self._fencing.follow():
                self._ledger.reload()  # what the acting controller journaled: its replicas are not foreign
        for host, _before, after in transitions:
            if after is HostState.DOWN:
                await self._autopilot.host_down(host)
        if not self._applier.busy:
            if self._acting:
                await self._repairer.tidy(self._config, self._view.rec, self._limits.stop_grace)
            # read-only or standing by, plans are computed and shown, never applied; the drift check
            # reads every replica, so it runs in a thread like the view's derivation (the View is immutable)
            await self._autopilot.drift(await self._drift(self._view))
        self._planner.refresh_failover(self._view)
        self._note_drained()
        self._emit(EventKind.STATE_UPDATED, "")

    # -- apply -----------------------------------------------------------------------

    def check_stale(self, plan: Plan) -> list[str]:
        return stale(plan, self._view.basis, self._view.fingerprint)

    def check_plan(self, plan: Plan, source: str) -> None:
        plancheck.check(plan, self._config, source)

    async def apply_file_plan(self, plan: Plan, *, force: bool = False, source: str = "plan") -> ApplyProgress:
        self.check_plan(plan, source)  # --force overrides staleness, never a malformed plan
        self._refuse_unless_applicable(plan, force=force)
        return await self._apply(plan)

    def _refuse_unless_applicable(self, plan: Plan, *, force: bool) -> None:
        self._refuse_unless_acting("apply")
        reasons = self.check_stale(plan)
        if reasons and not force:
            raise StalePlan(reasons)

    def _refuse_unless_acting(self, what: str) -> None:
        if self.read_only:
            raise ReadOnly(what)
        self._fencing.refuse_if_standing_by(what)

    async def _apply(self, plan: Plan) -> ApplyProgress:
        return await self._applier.apply(plan, functools.partial(self._applied, plan))

    async def _applied(self, plan: Plan, progress: ApplyProgress) -> None:
        pid = plan_id(plan)
        self._observer.intend(plan.target)
        self._approval.settled(plan)
        self._retries.record(progress, self._clock(), halted=self._rollouts.halted)
        failed = len(progress.failed)
        self._emit(EventKind.APPLY_FINISHED, f"applied {plan.reason} plan: {len(progress.done)} done, {failed} failed",
                   data={"plan": pid, "done": len(progress.done), "failed": failed})  # fmt: skip
        await self._observer.observe_off_loop(self._config, self._repairer.given_up)

    async def roll_forward(self) -> int:
        """Finish the plans the journal says were being applied (only while this controller acts);
        returns how many there were."""
        if not self._acting:
            return 0
        return await self._applier.roll_forward(self._config.name, self._clock(), self._observe)

    # -- EngineAPI -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        obs = self._fleet.observations()
        hosts = self._observer.rows(self._config, obs)
        view = self._view
        states = self._observer.states
        reachable = {n for n, s in states.items() if s.reachable}
        return Snapshot(
            at=self._clock(),
            config=self._config,
            hosts=hosts,
            placement=view.current,
            failover=self._planner.failover,
            pending=self._approval.pending,
            pending_why=self._approval.why,
            applying=self._applier.progress,
            unplaced=self._planner.unplaced,
            fits_on=self._planner.fits_on(view),
            runs_on=len({h for h in view.current.assignments.values() if h in reachable}),
            auto_apply=self.auto_apply,
            read_only=not self._acting,
            controller=self._fencing.status(obs),
            foreign=self._observer.foreign,
            demo=self._demo is not None,
            solving=self._planner.solving_since is not None,
            solve_progress=self._planner.solve_progress(),
            retrying={r: str(retry) for r, retry in self._retries.pending.items()},
            holds=self._holds.words(),
            rollouts_halted=self._rollouts.why(),
        )

    def subscribe(self) -> asyncio.Queue[Event]:
        return self._bus.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._bus.unsubscribe(queue)

    def recent_events(self) -> tuple[Event, ...]:
        return self._bus.recent()

    async def plan(self, *, repack: bool = False) -> Plan:
        """A plan for the current state; `repack` packs onto the fewest hosts even if that moves replicas."""
        self._observe()
        plan = await self._planner.compute(
            self._view, reason="repack" if repack else "rebalance", moves_first=not repack
        )
        self._approval.wait(plan, Hold("waits for approval (asked for)", for_a_person=True))
        return plan

    async def approve(self, plan: Plan) -> None:
        self._refuse_unless_applicable(plan, force=False)
        # Announced (and journaled) only once nothing can refuse it: the journal must not record
        # approvals that never happened.
        self._emit(EventKind.PLAN_APPROVED, f"plan {plan_id(plan)} approved ({len(plan.actions)} actions)")
        self._approval.looked()
        await self._apply(plan)

    async def reject(self, plan: Plan) -> None:
        self._refuse_unless_acting("reject")  # a rejection is a change too (journaled, drops the pending plan)
        self._journal.record_rejected(plan_id(plan), plan.reason, plan.basis)
        self._approval.settled(plan)
        self._approval.looked()
        self._emit(EventKind.PLAN_REJECTED, f"plan {plan_id(plan)} rejected")

    def what_if(self, host: str) -> FailoverPlan:
        return self._planner.what_if(self._view, host)

    def export(self, plan: Plan, path: str, fmt: str) -> None:
        write(plan_document(plan, self._config, self._view.usable), path, fmt)

    def export_failover(self, path: str, fmt: str) -> None:
        view = self._view
        write(failover_document(self._config.name, self._clock(), view.basis, self._planner.failover), path, fmt)

    async def wait_failover(self, timeout: float = 30.0) -> None:
        await self._planner.wait_failover(lambda: self._view, timeout)

    def reload(self, config: ClusterConfig, *, guarded: bool = True, revision: str | None = None) -> list[str]:
        """Adopt a new desired state (the file was edited); the next tick plans for the difference.

        The plans that follow a reload wait for a person when they would stop more than
        `[policy] max_stops_per_reload` replicas or the reload removed hosts that are up (`guarded`;
        a front end that made the change itself and means it, such as the autoscaler, passes False).
        An edit of constraints, resources, labels or the strategy is planned for even when nothing is
        missing; an edit of the policy alone re-asks a held plan at the next tick.

        Returns what changed, in the words of the `config.reloaded` event (its `changes` field). `revision`:
        the file's (core.desired's), when the caller read or wrote it.
        """
        self.revision = revision
        before = self._config
        self._approval.reloaded(before, config, self._observer.states, guarded=guarded)
        self._autopilot.replan = self._autopilot.replan or placement_key(before) != placement_key(config)
        changes = config_changes(before, config)
        self._config = config
        if self._auto_apply_flag is None:  # `auto_apply = false` in the file takes effect now, not at a restart
            self.auto_apply = config.policy.auto_apply
            if self._failover_auto_flag is None:
                self.failover_auto = self.auto_apply
        self._fleet.update_config(config)
        self._auto.forget()
        self._retries.forget()  # a new desired state: its own plan supersedes what was being retried
        self._rollouts.forget(config.services)  # a service defined anew rolls out again
        self._observe()  # the view (basis, drift, problems) now speaks of the new file
        if self._approval.pending is not None and self.check_stale(self._approval.pending):
            self._approval.drop()  # planned from the old file: the next tick plans from the new one
        said = "; ".join(changes) if changes else "nothing that matters changed"
        self._emit(EventKind.CONFIG_RELOADED, f"{config.source} reloaded: {said}",
                   data={"changes": changes, "hosts": len(config.hosts), "services": len(config.services)})  # fmt: skip
        return changes

    # -- cordon / drain ------------------------------------------------------------------------

    def _set_hold(self, what: str, host: str, hold: HostHold | None) -> None:
        if self.read_only:
            raise ReadOnly(f"{what} {host}")
        names = [h.name for h in self._config.hosts]
        if host not in names:
            raise UnknownHost(self._config.source, host, names)
        self._holds.set(host, hold)
        self._observer.holds = self._holds.all()
        self._auto.forget()  # the drift signature may be the same; the hosts it may use are not
        self._observe()

    async def cordon(self, host: str) -> None:
        """No new replica goes to `host`; what runs there stays."""
        self._set_hold("cordon", host, HostHold.CORDON)
        self._emit(EventKind.HOST_CORDONED, f"{host} cordoned: it takes no new replicas", host=host)

    async def drain(self, host: str) -> Plan | None:
        """Cordon `host` and move its replicas off now (the operator's word is the plan's approval; each
        service keeps `min_healthy`, as in every plan). Returns the plan applied, None if nothing ran there."""
        self._set_hold("drain", host, HostHold.DRAIN)
        on = self._view.current.on_host(host)
        self._emit(EventKind.HOST_DRAINING, f"{host} draining: {len(on)} replicas to move off", host=host,
                   data={"replicas": len(on)})  # fmt: skip
        plan = None
        if on and self._fencing.standing_by:
            # Another controller acts on the cluster: it re-reads the hold at its next tick and moves them.
            return None
        if on:
            plan = await self._planner.compute(self._view, reason="drain")
            if plan.actions:
                self._emit(EventKind.PLAN_APPROVED, f"plan {plan_id(plan)} approved by the drain of {host} "
                           f"({len(plan.actions)} actions)", host=host)  # fmt: skip
                await self._apply(plan)
        self._note_drained()
        return plan

    async def uncordon(self, host: str) -> None:
        """Lift a cordon or a drain: the host takes replicas again (nothing moves back by itself)."""
        was = self._holds.get(host)
        self._set_hold("uncordon", host, None)
        said = "was not cordoned" if was is None else f"was {'draining' if was is HostHold.DRAIN else 'cordoned'}"
        self._emit(EventKind.HOST_UNCORDONED, f"{host} uncordoned ({said}): it takes replicas again", host=host)

    def _note_drained(self) -> None:
        for host in self._holds.newly_drained(self._view.states, self._view.current):
            self._emit(EventKind.HOST_DRAINED, f"{host} drained: it runs no replica", host=host)

    async def step_down(self) -> str:  # clustered mode: give up the lead (core.engine.elected)
        return await self._fencing.step_down()

    def record(self, kind: EventKind, message: str, *, data: Mapping[str, object] | None = None) -> None:
        """An event a front end made happen (e.g. who changed the file through the API): journaled and
        streamed like the engine's own."""
        self._emit(kind, message, data=data)
