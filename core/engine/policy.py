"""Policy: when the fleet has drifted from the file, and whether a drift plan may apply on its own.

State owned here, and who changes it:
- `_drift_seen`, the drift last planned for (so one drift is planned once): `planned` and `forget`,
  called by the engine's tick and by a reload;
- `_last_auto`, when a disruptive plan was last applied automatically (the cooldown): `record_auto`
  only, called by the engine right before it applies such a plan. `already_planned` and `allows`
  only look.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.engine.observer import View
from core.model import Action, ActionKind, ClusterConfig, HostState, Plan


def drift(view: View) -> str:
    """A signature of how the fleet differs from the file; empty when it matches."""
    wanted = {s.name: s.replicas for s in view.config.services}
    where, planning = view.current.assignments, view.planning
    # Every tick asks, and nearly always the answer is "no drift": count, without building sets of ids
    # (replica ids are unique, so as many live ones below the declared count as declared means all).
    live: dict[str, int] = dict.fromkeys(wanted, 0)
    extra = []
    for r, host in where.items():
        if r.index >= wanted.get(r.service, 0):
            extra.append(r)
        elif planning.get(host, HostState.UNKNOWN).reachable:
            live[r.service] += 1
    outdated = view.restarts_needed(view.current)
    if live == wanted and not extra and not outdated:
        return ""
    missing = sorted(
        str(r)
        for s in view.config.services
        for r in s.replica_ids()
        if r not in where or not planning.get(where[r], HostState.UNKNOWN).reachable
    )
    return (
        "missing:" + ",".join(missing)
        + "|extra:" + ",".join(sorted(str(r) for r in extra))
        + "|outdated:" + ",".join(sorted(str(a.replica) for a in outdated))
    )  # fmt: skip


def _disruptive(plan: Plan, planning: Mapping[str, HostState]) -> list[Action]:
    # Starting what is missing disturbs nothing; so does moving a replica off a host that is gone.
    return [
        a
        for a in plan.actions
        if a.kind is not ActionKind.START and planning.get(a.from_host or "", HostState.UNKNOWN).reachable
    ]


class AutoApply:
    def __init__(self) -> None:
        self._drift_seen = ""
        self._last_auto = 0.0

    def forget(self) -> None:
        """The fleet matches the file again, or the file changed: the next drift is new."""
        self._drift_seen = ""

    def already_planned(self, signature: str) -> bool:
        return signature == self._drift_seen

    def planned(self, signature: str) -> None:
        """A plan is being computed for `signature`: the same drift is not planned again."""
        self._drift_seen = signature

    def allows(self, config: ClusterConfig, plan: Plan, planning: Mapping[str, HostState], now: float) -> bool:
        """Starts are always allowed; disruptive steps only within max_moves_per_cycle and after cooldown."""
        disruptive = _disruptive(plan, planning)
        if not disruptive:
            return True
        policy = config.policy
        return len(disruptive) <= policy.max_moves_per_cycle and now - self._last_auto >= policy.cooldown

    def record_auto(self, plan: Plan, planning: Mapping[str, HostState], now: float) -> None:
        """`plan` is being applied automatically: a disruptive one starts the cooldown."""
        if _disruptive(plan, planning):
            self._last_auto = now
