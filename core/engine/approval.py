"""The approve stage: the plan shown for approval, why it waits, and the guard rails a reload sets.

Owns, and only it changes: `pending` and `hold` (why it waits: asked again each tick unless it is for a
person), the last reload's guard rails (`_guard`: reasons to hold its plans for a person; `_after_reload`:
plans count their stops against `max_stops_per_reload` until a person acts), and the policy's
bookkeeping (`auto`: a drift planned once, the auto-apply cooldown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from core.engine.planner import plan_id
from core.engine.policy import AutoApply, Hold, reload_guard, stop_limit
from core.engine.view import View
from core.model import ActionKind, ClusterConfig, HostState, Plan


class Approval:
    def __init__(self) -> None:
        self.auto = AutoApply()
        self.pending: Plan | None = None
        self.hold: Hold | None = None
        self._guard: list[str] = []
        self._after_reload = False

    @property
    def why(self) -> str | None:
        return self.hold.reason if self.pending is not None and self.hold is not None else None

    def wait(self, plan: Plan, hold: Hold) -> None:
        self.pending, self.hold = plan, hold

    def drop(self) -> None:
        self.pending = self.hold = None

    def stood_by(self) -> None:
        """This controller acts now: what it planned while standing by waited for nobody; plan afresh."""
        self.drop()
        self.auto.forget()

    def settled(self, plan: Plan) -> None:
        """`plan` was applied or rejected: it waits no more."""
        if self.pending is not None and plan_id(self.pending) == plan_id(plan):
            self.drop()

    def looked(self) -> None:
        """A person approved or rejected a plan: the reload's guard rails are spent."""
        self._guard, self._after_reload = [], False

    def reloaded(
        self, before: ClusterConfig, after: ClusterConfig, states: Mapping[str, HostState], *, guarded: bool
    ) -> None:
        if after != before:  # the same file read again (SIGHUP, or the watch after an API write) guards nothing
            self._guard = reload_guard(before, after, states) if guarded else []
            self._after_reload = guarded

    def hold_for(
        self, plan: Plan, config: ClusterConfig, view: View, *, acting: bool, auto_apply: bool, now: float
    ) -> Hold | None:
        """Why `plan` may not apply on its own now (None: it may)."""
        guard = list(self._guard)
        if self._after_reload:
            stops = sum(1 for a in plan.actions if a.kind is ActionKind.STOP)
            limit = stop_limit(config, sum(view.rec.running.values()))
            if stops > limit:
                guard.append(f"the reload's plan stops {stops} replicas, more than max_stops_per_reload ({limit})")
        if guard:
            return Hold("waits for approval: " + "; ".join(guard), for_a_person=True)
        if not acting:
            return Hold("read-only or standing by: shown, never applied", for_a_person=True)
        if not auto_apply:
            return Hold("waits for approval (auto-apply is off)", for_a_person=True)
        return self.auto.verdict(config, plan, view.planning, now)

    def released(
        self, config: ClusterConfig, view: View, now: float, *, acting: bool, stale: Callable[[Plan], list[str]]
    ) -> tuple[Plan, str] | None:
        """The plan the policy held whose reason has passed (the cooldown ran out, the limit was raised), with
        that reason, recorded as applied on its own; None when nothing may go. A stale held plan is left to
        be replaced by a plan for what is now."""
        plan, hold = self.pending, self.hold
        if plan is None or hold is None or hold.for_a_person or not acting or stale(plan):
            return None
        verdict = self.auto.verdict(config, plan, view.planning, now)
        if verdict is not None:
            self.hold = verdict
            return None
        self.auto.record_auto(plan, view.planning, now)
        return plan, hold.reason
