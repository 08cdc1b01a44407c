"""Policy: when the fleet has drifted from the file, and whether a drift plan may apply on its own.

State owned here, and who changes it:
- `_drift_seen`, the drift last planned for (so one drift is planned once): `planned` and `forget`,
  called by the engine's tick and by a reload;
- `_last_auto`, when a disruptive plan was last applied automatically (the cooldown): `record_auto`
  only, called by the engine right before it applies such a plan. `already_planned` and `verdict`
  only look.

A plan that may not apply on its own says why (`Hold`): a cooldown passes by itself (`until`), a
limit passes when the policy changes; the engine asks again each tick, so a held plan is applied
as soon as its reason is gone, or replaced when the fleet moved on. Guard rails on a reload (too
many stops, hosts that are up removed) hold a plan for a person, whatever the policy.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from core.engine.view import View
from core.model import Action, ActionKind, ClusterConfig, HostState, Plan

DEFAULT_MAX_STOPS_PERCENT = 25.0


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a plan waits instead of applying on its own."""

    reason: str  # e.g. "cooldown until 14:02:11", "over max_moves_per_cycle (12 moves, limit 10)"
    until: float | None = None  # when the reason passes by itself; None: a policy change or a person
    for_a_person: bool = False  # a guard rail: only an approval applies it


def placement_key(config: ClusterConfig) -> str:
    """What placement depends on besides replica counts: constraints, resources, host labels and
    capacities, the strategy. An edit of any of them is planned for, like an edit of `replicas`."""
    services = [
        (s.name, s.resources, s.max_per_host, s.spread_over, sorted(s.require.items()), s.avoid, s.priority)
        for s in config.services
    ]
    hosts = [(h.name, sorted(h.labels.items()), h.capacity, h.reserve) for h in config.hosts]
    return repr((services, hosts, config.policy.strategy))


def stop_limit(config: ClusterConfig, running: int) -> int:
    """How many replicas a plan after a reload may stop on its own (`[policy] max_stops_per_reload`)."""
    limit = config.policy.max_stops_per_reload
    if limit is None:
        return math.floor(running * DEFAULT_MAX_STOPS_PERCENT / 100)
    return limit


def reload_guard(before: ClusterConfig, after: ClusterConfig, states: Mapping[str, HostState]) -> list[str]:
    """Reasons a reload's plans wait for a person regardless of the stops they make: hosts that are up removed."""
    kept = {h.name for h in after.hosts}
    gone = sorted(
        h.name for h in before.hosts if h.name not in kept and states.get(h.name, HostState.UNKNOWN).reachable
    )
    if not gone:
        return []
    return [f"the reload removes hosts that are up: {', '.join(gone)}"]


def _stays(state: HostState) -> bool:
    """A replica on a host in this state runs and may stay (one on a draining host must move off)."""
    return state.reachable and state is not HostState.DRAINING


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
        elif _stays(planning.get(host, HostState.UNKNOWN)):
            live[r.service] += 1
    outdated = view.restarts_needed(view.current)
    if live == wanted and not extra and not outdated:
        return ""
    missing = sorted(
        str(r)
        for s in view.config.services
        for r in s.replica_ids()
        if r not in where or not _stays(planning.get(where[r], HostState.UNKNOWN))
    )
    # The hosts that can take replicas are part of it: a drift planned while they could not (every host
    # down: infeasible, nothing to apply, no failure to retry) is planned again when one comes back.
    takers = sorted(h for h, state in planning.items() if _stays(state))
    return (
        "missing:" + ",".join(missing)
        + "|extra:" + ",".join(sorted(str(r) for r in extra))
        + "|outdated:" + ",".join(sorted(str(a.replica) for a in outdated))
        + "|hosts:" + ",".join(takers)
    )  # fmt: skip


class DriftCheck:
    """`drift` of each tick's view, in a thread (it reads every replica), and again only for a view derived
    anew: a view that kept its predecessor's reconciliation has the same config, host states and records
    (`observer._Pulled.derive`), so the same drift — the steady state, 30 ms at 50,000 replicas per tick."""

    def __init__(self) -> None:
        self._last: tuple[View, str] | None = None

    async def __call__(self, view: View) -> str:
        last = self._last
        if last is not None:
            before, signature = last
            if before.rec is view.rec and before.config is view.config and before.halted == view.halted:
                return signature
        signature = await asyncio.to_thread(drift, view)
        self._last = (view, signature)
        return signature


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

    def verdict(self, config: ClusterConfig, plan: Plan, planning: Mapping[str, HostState], now: float) -> Hold | None:
        """None when `plan` may apply on its own: starts always; disruptive steps within
        max_moves_per_cycle and after the cooldown. Otherwise why not, and until when."""
        disruptive = _disruptive(plan, planning)
        if not disruptive:
            return None
        policy = config.policy
        if len(disruptive) > policy.max_moves_per_cycle:
            return Hold(
                f"over max_moves_per_cycle ({len(disruptive)} disruptive moves, limit {policy.max_moves_per_cycle})"
            )
        ready = self._last_auto + policy.cooldown
        if now < ready:
            return Hold(f"cooldown until {time.strftime('%H:%M:%S', time.localtime(ready))}", until=ready)
        return None

    def record_auto(self, plan: Plan, planning: Mapping[str, HostState], now: float) -> None:
        """`plan` is being applied automatically: a disruptive one starts the cooldown."""
        if _disruptive(plan, planning):
            self._last_auto = now
