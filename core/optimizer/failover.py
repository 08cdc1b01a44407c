"""Failover plans: where a lost host's (or a label value's, e.g. a zone's) replicas go, moving
nothing else if possible.

Only the displaced replicas are placed, against the capacity the survivors have left,
so one plan costs a pass over the candidate hosts per displaced service. Greedy's first fit
goes first (hosts already in use, fullest that still fits first, so spare hosts stay free;
a spread service into its emptiest group first); when it leaves replicas over, a small
CP-SAT model over the displaced replicas alone tries again; only if that fails too, and the
cluster is small enough to re-solve quickly, are other replicas allowed to move, or to stop
for replicas of higher priority. Such a plan counts them in `others_moved`, and lists the
stopped ones in `unplaced` with the reason.

Which labels get a plan per value: every label a service spreads over (`spread_labels`),
since spreading over a label is how a service asks to survive losing one of its values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from core.errors import InvalidProblem
from core.model import FailoverPlan, HostState, Placement, ReplicaId, Service, SolverStatus
from core.optimizer.compiled import compile_problem, used_hosts, weights
from core.optimizer.cpsat import Budget, run
from core.optimizer.explain import amount
from core.optimizer.greedy import first_fit, place_spread
from core.optimizer.problem import HostSpec, PlacementProblem
from core.optimizer.solve import solve

FULL_RESOLVE_MAX_REPLICAS = 2000  # above this a re-solve that moves others is too slow for a what-if
EXACT_SECONDS = 0.4  # of search for the displaced replicas greedy left over (0.1 deterministic units)


@dataclass(frozen=True, slots=True)
class FailoverSummary:
    """Can the cluster lose any one host (N+1)? any one value of each label (e.g. a zone, a rack)?"""

    n_plus_one: bool
    label_safe: bool | None  # None when no plan per label value was made
    hosts_at_risk: tuple[str, ...]  # hosts whose loss leaves replicas unplaced
    values_at_risk: tuple[str, ...]  # "label=value" (e.g. "zone=z1") whose loss leaves replicas unplaced


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
        self.used = set(used_hosts(c, self.count))
        # per spread service and group: every host with the group's label value, so that replicas
        # running on a host s could not be placed on now (e.g. a SUSPECT one) count towards evenness
        with_value: dict[tuple[str, str], list[int]] = {}
        for h, spec in enumerate(problem.hosts):
            for item in spec.labels.items():
                with_value.setdefault(item, []).append(h)
        self.same_value = [
            [with_value[label, problem.hosts[g[0]].labels[label]] for g in groups] if groups and label else []
            for label, groups in zip((s.spread_over for s in problem.services), c.zones, strict=True)
        ]
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
            if c.conflicts[s] and c.conflicts[s] & present(h):
                return 0
            return min(c.max_per_host[s] - count[s][h], c.fits_count(s, res(h)))

        waiting = {s: sorted(replicas) for s, replicas in displaced.items()}

        def put(s: int, h: int, n: int) -> None:
            for replica in waiting[s][:n]:
                moves[replica] = c.problem.hosts[h].name
            del waiting[s][:n]
            count[s][h] += n
            for d, need in enumerate(c.demand[s]):
                res(h)[d] -= need * n

        for s in sorted(displaced, key=lambda s: (-c.problem.services[s].priority, -sum(c.demand[s]), s)):
            candidates = [h for h in self.eligible[s] if h not in lost_set]
            candidates.sort(key=lambda h: (h not in self.used, self._slack(res(h), h), h))
            self._place(s, len(waiting[s]), candidates, count, room, put)
        left = {s: rs for s, rs in waiting.items() if rs}

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

    def _slack(self, residual: list[int], h: int) -> float:
        return sum(r / cap for r, cap in zip(residual, self.c.cap[h], strict=True) if cap)

    def _place(
        self,
        s: int,
        n: int,
        candidates: list[int],
        count: dict[int, list[int]],
        room: Callable[[int, int], int],
        put: Callable[[int, int, int], None],
    ) -> None:
        """Greedy's placement of n displaced replicas of s over `candidates` (in this order); a spread
        service one replica at a time into the group that has the fewest of it."""
        c = self.c
        groups = c.zones[s]
        if not groups:
            first_fit(s, n, candidates, room, put)
            return
        rank = {h: i for i, h in enumerate(candidates)}
        place_spread(
            s,
            n,
            [sorted((h for h in g if h in rank), key=rank.__getitem__) for g in groups],
            [sum(count[s][h] for h in self.same_value[s][gi]) for gi in range(len(groups))],
            room,
            put,
        )

    def _exact(
        self,
        left: dict[int, list[ReplicaId]],
        lost: set[int],
        count: dict[int, list[int]],
        res: Callable[[int], list[int]],
        present: Callable[[int], set[int]],
    ) -> dict[ReplicaId, int]:
        """CP-SAT over the replicas greedy could not place, on what the survivors have left."""
        c = self.c
        m = cp_model.CpModel()
        x = {}
        for s, replicas in left.items():
            for h in self.eligible[s]:
                if h in lost or c.conflicts[s] & present(h):
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
        solver, status = run(m, budget=Budget.of(EXACT_SECONDS), seconds=EXACT_SECONDS, seed=0, workers=1)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
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
        blocked = [h for h in survivors if c.conflicts[s] & {t for t in range(c.n_services) if self.count[t][h]}]
        if blocked and len(blocked) == len(survivors):
            names = " or ".join(sorted(c.problem.services[t].name for t in c.conflicts[s]))
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


def spread_labels(services: Iterable[Service]) -> tuple[str, ...]:
    """Every label some service spreads over, sorted: the labels a failover plan per value is made for."""
    return tuple(sorted({s.spread_over for s in services if s.spread_over is not None}))


def failover_plans(
    problem: PlacementProblem, placement: Placement, *, labels: Iterable[str] | None = None
) -> tuple[FailoverPlan, ...]:
    """One plan per host (in problem order), then for each of `labels` (in order; by default
    `spread_labels` of the problem's services) one plan per value of it (sorted)."""
    ctx = _Context(problem, placement)
    plans = [ctx.plan([h], "host", spec.name) for h, spec in enumerate(problem.hosts)]
    for label in spread_labels(problem.services) if labels is None else labels:
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
        values_at_risk=tuple(f"{p.scope}={p.target}" for p in values if not p.survives),
    )
