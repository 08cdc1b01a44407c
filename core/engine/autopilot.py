"""What the engine does by itself at each tick, after observing: re-place the replicas of a host that went
down, plan for drift, apply what the policy allows (or hold it for a person, or for the policy to ask
again), and retry failed actions.

Owns: `replan` (a reload changed what placement depends on: plan even without drift) and the retries of
failed actions (`retries`). The plan that waits is the approve stage's (`approval.Approval`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.engine.api import ApplyProgress
from core.engine.approval import Approval
from core.engine.basis import stale
from core.engine.events import Emit, EventKind
from core.engine.planner import Planner, plan_id
from core.engine.policy import Hold
from core.engine.retry import Retries
from core.engine.view import View
from core.model import ClusterConfig, Plan


@dataclass(frozen=True, slots=True)
class Moment:
    """What a decision is made from: the file, the fleet as last observed, and what this controller may do."""

    config: ClusterConfig
    view: View
    now: float
    acting: bool  # changes the fleet: not read-only, not standing by
    auto_apply: bool
    failover_auto: bool

    def stale(self, plan: Plan) -> list[str]:
        return stale(plan, self.view.basis, self.view.fingerprint)


class Autopilot:
    def __init__(
        self,
        planner: Planner,
        approval: Approval,
        emit: Emit,
        moment: Callable[[], Moment],
        apply: Callable[[Plan], Awaitable[ApplyProgress]],
    ):
        self._planner, self._approval, self._emit = planner, approval, emit
        self._moment, self._apply = moment, apply
        self._auto = approval.auto
        self.retries = Retries()
        self.replan = False

    async def host_down(self, host: str) -> None:
        m = self._moment()
        plan = await self._planner.failover_plan(m.view, host)
        if not plan.actions:
            return
        acting = m.failover_auto and m.acting
        self._emit(
            EventKind.FAILOVER_STARTED if acting else EventKind.PLAN_COMPUTED,
            f"{host} is down: {len(plan.actions)} replicas to re-place",
            host=host,
        )
        if acting:
            await self._apply(plan)
        else:
            self._approval.wait(plan, Hold("failover waits for approval", for_a_person=True))

    async def drift(self, signature: str) -> None:
        """`signature`: what is missing or extra (`policy.drift`), empty when the fleet is as the file says."""
        if await self._release_held():
            return
        m = self._moment()
        if not signature and not self.replan:
            self._auto.forget()
            self.retries.forget()  # nothing left to do: no failure waits for a retry
            return
        if m.acting and self.retries.due(m.now):
            self._auto.forget()  # the same drift, planned again: the failed actions are retried
        if self._planner.solving_since is not None:
            return
        pending = self._approval.pending
        if pending is not None and not m.stale(pending):
            return  # the operator (or the policy) holds a plan for this very state already
        if pending is not None:  # the fleet or the file moved on: a new plan replaces it
            self._approval.drop()
            self._auto.forget()
        wanted = signature + ("|replan" if self.replan else "")
        if self._auto.already_planned(wanted):
            return
        self._auto.planned(wanted)
        reason = "drift" if signature else "config"  # a constraint or policy edit, nothing missing
        self.replan = False
        plan = await self._planner.compute(m.view, reason=reason, announce=False)
        m = self._moment()  # the solve took a while
        hold = None
        if plan.actions:
            hold = self._approval.hold_for(plan, m.config, m.view, acting=m.acting, auto_apply=m.auto_apply,
                                           now=m.now)  # fmt: skip
        self._planner.announce(plan, pending=hold.reason if hold else None)
        if not plan.actions:
            return
        if hold is None:
            self._auto.record_auto(plan, m.view.planning, m.now)
            await self._apply(plan)
        else:
            self._approval.wait(plan, hold)

    async def _release_held(self) -> bool:
        """A plan the policy held is asked again each tick; True when it was applied now."""
        m = self._moment()
        released = self._approval.released(m.config, m.view, m.now, acting=m.acting, stale=m.stale)
        if released is None:
            return False
        plan, reason = released
        self._emit(EventKind.PLAN_APPROVED, f"plan {plan_id(plan)} applies now: {reason} no longer holds it")
        await self._apply(plan)
        return True
