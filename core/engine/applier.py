"""Applying plans one at a time: the journal first, then the actions (`apply.apply_plan`), each step said
as an `action.*` event; and rolling forward the plans the journal says were left half-applied.

Owns: the apply lock (one plan at a time, and no repair while one runs), the progress of the plan
being (or last) applied, and the rolling updates stopped by a new copy that failed its check (`rollouts`,
read by the observer's view so that no plan restarts those replicas again).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping

from core.engine.api import ApplyProgress
from core.engine.apply import Limits, apply_plan
from core.engine.events import Emit, EventKind, action_fields
from core.engine.planner import plan_id
from core.engine.ports import ReplicaRuntime
from core.engine.rollout import Rollouts
from core.engine.view import View
from core.model import Action, ClusterConfig, HostObservation, Plan, SolverStatus
from core.store.base import StateStore

# What a plan is applied against, read once the lock is held (a reload may land while a plan waits).
Now = Callable[[], tuple[ClusterConfig, View]]


class Applier:
    def __init__(
        self,
        runtime: ReplicaRuntime,
        journal: StateStore,
        limits: Limits,
        emit: Emit,
        now: Now,
        stopping: Callable[[], bool],
        *,
        frames: Callable[[], Mapping[str, HostObservation]] | None = None,
    ):
        """`frames`: the fleet's latest observations, which new copies must pass their checks in (apply.apply_plan)."""
        self._runtime, self._journal, self._limits, self._emit = runtime, journal, limits, emit
        self._now, self._stopping = now, stopping
        self._frames = frames
        # Rolling updates a failing new copy stopped, kept by the store as the holds are (core.engine.rollout).
        self.rollouts = Rollouts(journal.shared_map("rollouts"), emit)
        self._lock = asyncio.Lock()
        self.progress: ApplyProgress | None = None

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def apply(self, plan: Plan, applied: Callable[[ApplyProgress], Awaitable[None]]) -> ApplyProgress:
        """Journal `plan`, run it, then `applied(progress)` while still holding the lock (so the next plan
        is computed from what this one left)."""
        async with self._lock:
            pid = plan_id(plan)
            self._journal.begin_plan(pid, plan.reason, plan.basis, plan.actions)
            self.progress = ApplyProgress(plan=plan, total=len(plan.actions))
            progress = await self._run(pid, plan)
            await applied(progress)
            return progress

    async def roll_forward(self, cluster: str, at: float, after: Callable[[], object]) -> int:
        """Finish the plans the journal says were being applied; `after()` once each is done. Returns how
        many there were."""
        unfinished = self._journal.unfinished()
        for pid, actions in unfinished:
            todo = [a for a in actions if a.state != "done"]
            self._emit(EventKind.PLAN_APPROVED, f"resuming plan {pid} from the journal: {len(todo)} actions left")
            current = self._now()[1].current
            plan = Plan(
                cluster=cluster, basis="", created_at=at, current=current, target=current,
                actions=tuple(a.action for a in actions), status=SolverStatus.UNKNOWN,
                hosts_used=0, lower_bound=0, gap=0.0, reason="resume",
            )  # fmt: skip
            async with self._lock:
                await self._run(pid, plan, already_done=frozenset(a.seq for a in actions if a.state == "done"))
            after()
        return len(unfinished)

    async def _run(self, pid: str, plan: Plan, *, already_done: frozenset[int] = frozenset()) -> ApplyProgress:
        config, view = self._now()
        progress = await apply_plan(
            pid, plan, config, view.planning, self._runtime, self._journal,
            functools.partial(self._on_progress, pid), limits=self._limits, already_done=already_done,
            stopping=self._stopping,
            running=view.rec.running,  # a resumed plan keeps min_healthy like a fresh one
            frames=self._frames, rollouts=self.rollouts,
        )  # fmt: skip
        self.progress = progress
        return progress

    def _on_progress(self, pid: str, progress: ApplyProgress, action: Action, state: str, error: str | None) -> None:
        self.progress = progress
        host = action.to_host or action.from_host
        # A log pipeline filters on fields, not on the message's words (issue 12, item 14).
        data = action_fields(pid, action)
        if state == "running":
            self._emit(EventKind.ACTION_STARTED, str(action), host=host, replica=action.replica, data=data)
        elif state == "done":
            self._emit(EventKind.ACTION_DONE, str(action), host=host, replica=action.replica, data=data)
        elif state == "failed":
            data["error"] = error or "failed"
            self._emit(EventKind.ACTION_FAILED, f"{action}: {error}", host=host, replica=action.replica, data=data)
