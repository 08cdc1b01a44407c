"""Failover plans: where a lost host's (or zone's) replicas go, moving nothing else if possible.

Only the displaced replicas are placed, against the capacity the survivors have left,
so one plan costs a pass over the candidate hosts per displaced service. Greedy goes
first (hosts already in use, fullest that still fits first, so spare hosts stay free);
when it leaves replicas over, a small CP-SAT model over the displaced replicas alone tries
again; only if that fails too, and the cluster is small enough to re-solve quickly, are
other replicas allowed to move, or to stop for replicas of higher priority. Such a plan
counts them in `others_moved`, and lists the stopped ones in `unplaced` with the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from core.errors import InvalidProblem
from core.model import FailoverPlan, HostState, Placement, ReplicaId, SolverStatus
from core.optimizer.compiled import compile_problem, weights
from core.optimizer.explain import amount
from core.optimizer.problem import HostSpec, PlacementProblem
from core.optimizer.solve import solve

FULL_RESOLVE_MAX_REPLICAS = 2000  # above this a re-solve that moves others is too slow for a what-if
EXACT_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class FailoverSummary:
    """Can the cluster lose any one host (N+1)? any one value of the label (e.g. a zone)?"""

    n_plus_one: bool
    label_safe: bool | None  # None when no plan per label value was made
    hosts_at_risk: tuple[str, ...]  # hosts whose loss leaves replicas unplaced
    values_at_risk: tuple[str, ...]


class _Context:
    """The placement's loads and counts, computed once and shared by every plan."""

    def __init__(self, problem: PlacementProblem, placement: Placement):
        self.problem = problem
        self.c = c = compile_problem(PlacementProblem(problem.hosts, problem.services, Placement(), problem.strategy))
        self.host_index = {h.name: i for i, h in enumerate(problem.hosts)}
        self.service_index = {s.name: i for i, s in enumerate(problem.services)}
        self.weight = weights(c)
        n_h = c.n_hosts
        self.count = [[0] * n_h for _ in range(c.n_services)]
        self.residual = [list(row) for row in c.cap]
        self.on_host: list[list[ReplicaId]] = [[] for _ in range(n_h)]
        for replica, host in placement.assignments.items():
            s, h = self.service_index.get(replica.service), self.host_index.get(host)
            if s is None or h is None or replica.index >= c.replicas[s]:
                continue
            self.count[s][h] += 1
            self.on_host[h].append(replica)
            for d, need in enumerate(c.demand[s]):
                self.residual[h][d] -= need
        self.placement = placement
        self.conflicts: list[set[int]] = [set() for _ in range(c.n_services)]
        for a, b in c.avoid_pairs:
            self.conflicts[a].add(b)
            self.conflicts[b].add(a)
        # hosts each service may go to at all (labels, state, one replica fits an empty host)
        self.eligible = [[h for h in range(n_h) if c.ub[s][h] > 0] for s in range(c.n_services)]

    def plan(self, lost: Sequence[int], scope: str, target: str) -> FailoverPlan:
        c = self.c
        lost_set = set(lost)
        displaced: dict[int, list[ReplicaId]] = {}
        for h in lost:
            for r in self.on_host[h]:
                displaced.setdefault(self.service_index[r.service], []).append(r)
        count = {s: list(self.count[s]) for s in displaced}
        residual: dict[int, list[int]] = {}
        moves: dict[ReplicaId, str] = {}
        for h in lost:
            for s in displaced:
                count[s][h] = 0

        def res(h: int) -> list[int]:
            if h not in residual:
                residual[h] = list(self.residual[h])
            return residual[h]

        def present(h: int) -> set[int]:
            return {t for t in range(c.n_services) if (count[t][h] if t in count else self.count[t][h])}

        def room(s: int, h: int) -> int:
            if self.conflicts[s] and self.conflicts[s] & present(h):
                return 0
            return min(c.max_per_host[s] - count[s][h], c.fits_count(s, res(h)))

        order = sorted(displaced, key=lambda s: (-c.problem.services[s].priority, -sum(c.demand[s]), s))
        left: dict[int, list[ReplicaId]] = {}
        for s in order:
            replicas = sorted(displaced[s])
            candidates = [h for h in self.eligible[s] if h not in lost_set]
            candidates.sort(key=lambda h: (not self._used(h), self._slack(res(h), h), h))
            placed_to = self._place(s, len(replicas), candidates, count, room)
            for replica, h in zip(replicas, placed_to, strict=False):
                moves[replica] = c.problem.hosts[h].name
                count[s][h] += 1
                for d, need in enumerate(c.demand[s]):
                    res(h)[d] -= need
            if len(placed_to) < len(replicas):
                left[s] = replicas[len(placed_to) :]

        status, others_moved = SolverStatus.OPTIMAL, 0
        if left:
            extra = self._exact(left, lost_set, count, res, present)
            for replica, h in extra.items():
                moves[replica] = c.problem.hosts[h].name
                left[self.service_index[replica.service]].remove(replica)
            left = {s: rs for s, rs in left.items() if rs}
        evicted: list[ReplicaId] = []
        if left and len(self.placement.assignments) <= FULL_RESOLVE_MAX_REPLICAS:
            new_moves, moved, still, dropped = self._resolve_moving_others(lost_set)
            out_before = sum(self.weight[s] * len(rs) for s, rs in left.items())
            out_after = sum(self.weight[s] * len(rs) for s, rs in still.items())
            out_after += sum(self.weight[self.service_index[r.service]] for r in dropped)
            if out_after < out_before:
                moves, left, evicted = new_moves, still, dropped
                others_moved, status = moved + len(dropped), SolverStatus.FEASIBLE
        unplaced = {}
        for s, replicas in left.items():
            why = self._why(s, lost_set)
            for r in replicas:
                unplaced[r] = why
        lost_names = ", ".join(c.problem.hosts[h].name for h in lost)
        for r in evicted:
            unplaced[r] = f"stopped to make room for higher-priority replicas from {lost_names}"
        if unplaced:
            status = SolverStatus.INFEASIBLE
        degraded = tuple(
            sorted(
                {c.problem.services[s].name for s in range(c.n_services) if sum(self.count[s]) < c.replicas[s]}
                | {r.service for r in unplaced}
            )
        )
        return FailoverPlan(
            scope=scope,
            target=target,
            lost_hosts=tuple(c.problem.hosts[h].name for h in lost),
            moves=moves,
            unplaced=unplaced,
            degraded=degraded,
            status=status,
            others_moved=others_moved,
        )

    def _used(self, h: int) -> bool:
        return bool(self.on_host[h])

    def _slack(self, residual: list[int], h: int) -> float:
        return sum(r / cap for r, cap in zip(residual, self.c.cap[h], strict=True) if cap)

    def _place(self, s: int, n: int, candidates: list[int], count: dict[int, list[int]], room) -> list[int]:
        """Hosts for n replicas of s; for a spread service, the group with the fewest replicas first."""
        c = self.c
        out: list[int] = []
        spec = c.problem.services[s]
        if spec.spread_over is None:
            for h in candidates:
                k = min(n - len(out), room(s, h))
                if k > 0:
                    out.extend([h] * k)
                    if len(out) == n:
                        break
            return out
        groups: dict[str, list[int]] = {}
        for h in candidates:
            groups.setdefault(c.problem.hosts[h].labels[spec.spread_over], []).append(h)
        per_group = {
            v: sum(count[s][h] for h in range(c.n_hosts) if c.problem.hosts[h].labels.get(spec.spread_over) == v)
            for v in groups
        }
        cursor = dict.fromkeys(groups, 0)
        taken: dict[int, int] = {}
        for _ in range(n):
            for v in sorted(groups, key=lambda v: (per_group[v], v)):
                hosts = groups[v]
                while cursor[v] < len(hosts) and room(s, hosts[cursor[v]]) - taken.get(hosts[cursor[v]], 0) <= 0:
                    cursor[v] += 1
                if cursor[v] < len(hosts):
                    h = hosts[cursor[v]]
                    out.append(h)
                    # the caller applies capacity after this call, so reserve here for the next replica
                    taken[h] = taken.get(h, 0) + 1
                    per_group[v] += 1
                    break
            else:
                break
        return out

    def _exact(self, left: dict[int, list[ReplicaId]], lost: set[int], count, res, present) -> dict[ReplicaId, int]:
        """CP-SAT over the replicas greedy could not place, on what the survivors have left."""
        c = self.c
        m = cp_model.CpModel()
        x = {}
        for s, replicas in left.items():
            for h in self.eligible[s]:
                if h in lost:
                    continue
                if self.conflicts[s] & {
                    t for t in range(c.n_services) if (count[t][h] if t in count else self.count[t][h])
                }:
                    continue
                k = min(len(replicas), c.max_per_host[s] - count[s][h], c.fits_count(s, res(h)))
                if k > 0:
                    x[s, h] = m.new_int_var(0, k, f"x{s}_{h}")
        if not x:
            return {}
        hosts = sorted({h for _, h in x})
        for h in hosts:
            for d in range(len(c.dims)):
                terms = [c.demand[s][d] * v for (s, hh), v in x.items() if hh == h and c.demand[s][d]]
                if terms:
                    m.add(sum(terms) <= res(h)[d])
            for s, t in c.avoid_pairs:
                if (s, h) in x and (t, h) in x:
                    a, b = m.new_bool_var(""), m.new_bool_var("")
                    m.add(x[s, h] == 0).only_enforce_if(~a)
                    m.add(x[t, h] == 0).only_enforce_if(~b)
                    m.add_bool_or([~a, ~b])
        for s, replicas in left.items():
            m.add(sum(v for (ss, _), v in x.items() if ss == s) <= len(replicas))
        m.maximize(sum(self.weight[s] * v for (s, _), v in x.items()))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.max_deterministic_time = EXACT_SECONDS
        solver.parameters.max_time_in_seconds = EXACT_SECONDS * 3
        if solver.solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return {}
        out: dict[ReplicaId, int] = {}
        for s, replicas in left.items():
            todo = list(replicas)
            for (ss, h), v in sorted(x.items()):
                if ss == s:
                    for _ in range(solver.value(v)):
                        out[todo.pop(0)] = h
        return out

    def _resolve_moving_others(
        self, lost: set[int]
    ) -> tuple[dict[ReplicaId, str], int, dict[int, list[ReplicaId]], list[ReplicaId]]:
        """Re-solve the whole placement without the lost hosts: (moves, others moved, lost replicas
        left over by service, other replicas stopped to make room for more important ones)."""
        p = self.problem
        hosts = tuple(
            HostSpec(h.name, h.capacity, h.labels, HostState.DOWN if i in lost else h.state)
            for i, h in enumerate(p.hosts)
        )
        result = solve(PlacementProblem(hosts, p.services, self.placement, p.strategy), time_limit=1.0, workers=1)
        lost_names = {p.hosts[h].name for h in lost}
        moves: dict[ReplicaId, str] = {}
        others = 0
        left: dict[int, list[ReplicaId]] = {}
        dropped: list[ReplicaId] = []
        for replica, host in self.placement.assignments.items():
            s = self.service_index.get(replica.service)
            if s is None or replica.index >= self.c.replicas[s]:
                continue
            new = result.placement.host_of(replica)
            if new is None:
                if host in lost_names:
                    left.setdefault(s, []).append(replica)
                else:
                    dropped.append(replica)
            elif new != host:
                moves[replica] = new
                others += host not in lost_names
        return moves, others, left, dropped

    def _why(self, s: int, lost: set[int]) -> str:
        c = self.c
        spec = c.problem.services[s]
        lost_names = ", ".join(sorted(c.problem.hosts[h].name for h in lost))
        survivors = [h for h in self.eligible[s] if h not in lost]
        if not survivors:
            where = f" matching {dict(spec.require)}" if spec.require else ""
            return f"{spec.name} has no other host{where} that is up once {lost_names} is lost"
        if spec.max_per_host is not None and len(survivors) * spec.max_per_host < c.replicas[s]:
            need = -(-c.replicas[s] // spec.max_per_host)
            return (
                f"{spec.name} needs {need} hosts with max_per_host={spec.max_per_host} "
                f"but only {len(survivors)} remain without {lost_names}"
            )
        alive = [h for h in range(c.n_hosts) if h not in lost and c.takes_new[h]]
        for d, dim in enumerate(c.dims):
            need = sum(c.demand[t][d] * sum(self.count[t]) for t in range(c.n_services))
            have = sum(c.cap[h][d] for h in alive)
            if need > have:
                return f"{dim} short by {amount(dim, need - have)} without {lost_names}"
        blocked = [h for h in survivors if self.conflicts[s] & {t for t in range(c.n_services) if self.count[t][h]}]
        if blocked and len(blocked) == len(survivors):
            names = " or ".join(sorted(c.problem.services[t].name for t in self.conflicts[s]))
            return f"{spec.name} avoids {names} and every remaining host it may use runs {names}"
        per = ", ".join(amount(dim, c.demand[s][d]) for d, dim in enumerate(c.dims) if c.demand[s][d])
        return f"no remaining host has room for {spec.name} ({per} per replica) without {lost_names}"


def failover_for(
    problem: PlacementProblem,
    placement: Placement,
    lost_hosts: Collection[str],
    *,
    scope: str = "host",
    target: str | None = None,
) -> FailoverPlan:
    """The plan if `lost_hosts` died now (an unknown host name is an error)."""
    ctx = _Context(problem, placement)
    unknown = sorted(set(lost_hosts) - ctx.host_index.keys())
    if unknown:
        raise InvalidProblem([f'failover for unknown host "{h}"' for h in unknown])
    lost = sorted(ctx.host_index[h] for h in set(lost_hosts))
    return ctx.plan(lost, scope, target if target is not None else ",".join(problem.hosts[h].name for h in lost))


def failover_plans(
    problem: PlacementProblem, placement: Placement, *, label: str | None = "zone"
) -> tuple[FailoverPlan, ...]:
    """One plan per host (in problem order), then one per value of `label` (sorted)."""
    ctx = _Context(problem, placement)
    plans = [ctx.plan([h], "host", spec.name) for h, spec in enumerate(problem.hosts)]
    if label is not None:
        values = sorted({spec.labels[label] for spec in problem.hosts if label in spec.labels})
        for value in values:
            lost = [h for h, spec in enumerate(problem.hosts) if spec.labels.get(label) == value]
            plans.append(ctx.plan(lost, label, value))
    return tuple(plans)


def summarize(plans: Sequence[FailoverPlan]) -> FailoverSummary:
    hosts = [p for p in plans if p.scope == "host"]
    values = [p for p in plans if p.scope != "host"]
    return FailoverSummary(
        n_plus_one=all(p.survives for p in hosts),
        label_safe=all(p.survives for p in values) if values else None,
        hosts_at_risk=tuple(p.target for p in hosts if not p.survives),
        values_at_risk=tuple(p.target for p in values if not p.survives),
    )
