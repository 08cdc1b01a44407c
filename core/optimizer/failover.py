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

The plans for every host and label value, and their refresh, are `failover_book`'s.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

from ortools.sat.python import cp_model

from core.errors import InvalidProblem
from core.model import FailoverPlan, HostState, Placement, ReplicaId, SolverStatus
from core.optimizer.compiled import compile_problem, weights
from core.optimizer.cpsat import Budget, run
from core.optimizer.explain import amount
from core.optimizer.greedy import Put, Room, first_fit, place_spread
from core.optimizer.problem import HostSpec, PlacementProblem
from core.optimizer.solve import solve

FULL_RESOLVE_MAX_REPLICAS = 2000  # above this a re-solve that moves others is too slow for a what-if
EXACT_SECONDS = 0.4  # of search for the displaced replicas greedy left over (0.1 deterministic units)


class FailoverContext:
    """The placement's loads and counts, computed once and shared by every plan.

    A plan reads them sparsely: its own puts go to small overlays, and its candidate hosts come from
    one order sorted here, merged lazily with the few hosts the plan itself touched, so that a plan
    costs about what it moves rather than the fleet's size (5,000 host plans over 5,000 hosts would
    otherwise sort 5,000 hosts per displaced service each)."""

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
        present: list[set[int]] = [set() for _ in range(n_h)]
        for replica, host in placement.assignments.items():
            s, h = self.service_index.get(replica.service), self.host_index.get(host)
            if s is None or h is None or replica.index >= c.replicas[s]:
                continue
            self.count[s][h] += 1
            self.on_host[h].append(replica)
            present[h].add(s)
            for d, need in enumerate(c.demand[s]):
                self.residual[h][d] -= need
        self.present = [frozenset(p) for p in present]
        self.placement = placement
        self.used = {h for h in range(n_h) if present[h]}
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
        self.value_total = [[sum(self.count[s][h] for h in hosts) for hosts in values]
                            for s, values in enumerate(self.same_value)]  # fmt: skip
        # hosts each service may go to at all (labels, state, one replica fits an empty host)
        self.eligible = [[h for h in range(n_h) if c.ub[s][h] > 0] for s in range(c.n_services)]
        # every host in the order plans try them (in use first, then fullest), before any plan's own puts
        self.key = [(h not in self.used, self._slack(self.residual[h], h), h) for h in range(n_h)]
        self.order = sorted(range(n_h), key=self.key.__getitem__)
        self._group_order: dict[int, tuple[dict[int, int], list[list[int]]]] = {}
        self.degraded = frozenset(
            c.problem.services[s].name for s in range(c.n_services) if sum(self.count[s]) < c.replicas[s]
        )

    def plan(self, lost: Sequence[int], scope: str, target: str) -> FailoverPlan:
        c = self.c
        lost_set = set(lost)
        displaced: dict[int, list[ReplicaId]] = {}
        for h in lost:
            for r in self.on_host[h]:
                displaced.setdefault(self.service_index[r.service], []).append(r)
        added: dict[tuple[int, int], int] = {}  # (service, host) → replicas this plan puts there
        added_on: dict[int, set[int]] = {}
        residual: dict[int, list[int]] = {}
        moves: dict[ReplicaId, str] = {}

        def count_of(s: int, h: int) -> int:
            return 0 if h in lost_set else self.count[s][h] + added.get((s, h), 0)

        def res(h: int) -> list[int]:
            if h not in residual:
                residual[h] = list(self.residual[h])
            return residual[h]

        def present(h: int) -> set[int]:
            return (set() if h in lost_set else set(self.present[h])) | added_on.get(h, set())

        def room(s: int, h: int) -> int:
            if c.conflicts[s] and c.conflicts[s] & present(h):
                return 0
            return min(c.max_per_host[s] - count_of(s, h), c.fits_count(s, res(h)))

        waiting = {s: sorted(replicas) for s, replicas in displaced.items()}

        def put(s: int, h: int, n: int) -> None:
            for replica in waiting[s][:n]:
                moves[replica] = c.problem.hosts[h].name
            del waiting[s][:n]
            added[s, h] = added.get((s, h), 0) + n
            added_on.setdefault(h, set()).add(s)
            row = res(h)
            for d, need in enumerate(c.demand[s]):
                row[d] -= need * n

        for s in sorted(displaced, key=lambda s: (-c.problem.services[s].priority, -sum(c.demand[s]), s)):
            self._place(s, len(waiting[s]), lost_set, residual, room, put)
        left = {s: rs for s, rs in waiting.items() if rs}

        status, others_moved = SolverStatus.OPTIMAL, 0
        if left:
            extra = self._exact(left, lost_set, count_of, res, present)
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
        return FailoverPlan(
            scope=scope,
            target=target,
            lost_hosts=tuple(c.problem.hosts[h].name for h in lost),
            moves=moves,
            unplaced=unplaced,
            degraded=tuple(sorted(self.degraded | {r.service for r in unplaced})),
            status=status,
            others_moved=others_moved,
        )

    def _slack(self, residual: list[int], h: int) -> float:
        return sum(r / cap for r, cap in zip(residual, self.c.cap[h], strict=True) if cap)

    def _place(self, s: int, n: int, lost: set[int], touched: dict[int, list[int]], room: Room, put: Put) -> None:
        """Greedy's placement of n displaced replicas of s over the hosts that may take them, in the order
        (in use first, fullest first) as of now: `order` for the hosts this plan has not `touched`, merged
        with the touched ones sorted by their residual now. A spread service one replica at a time into
        the group that has the fewest of it."""
        c = self.c
        skip = lost | touched.keys()
        fresh = sorted(((h not in self.used, self._slack(row, h), h), h) for h, row in touched.items() if h not in lost)
        ub = c.ub[s]
        groups = c.zones[s]
        group_of, group_order = self._groups(s) if groups else ({}, [])

        def candidates(static: Iterable[int], gi: int | None = None) -> Iterator[int]:
            ahead = ((self.key[h], h) for h in static if ub[h] > 0 and h not in skip)
            own = [(k, h) for k, h in fresh if ub[h] > 0 and (gi is None or group_of.get(h) == gi)]
            return (h for _, h in heapq.merge(ahead, own))

        if not groups:
            first_fit(s, n, candidates(self.order), room, put)
            return
        label = c.problem.services[s].spread_over
        assert label is not None
        per_group = list(self.value_total[s])
        value_index = {c.problem.hosts[g[0]].labels[label]: gi for gi, g in enumerate(groups)}
        for h in lost:  # the lost hosts' replicas no longer count where they ran
            gi = value_index.get(c.problem.hosts[h].labels.get(label, ""))
            if gi is not None:
                per_group[gi] -= self.count[s][h]
        place_spread(s, n, [candidates(order, gi) for gi, order in enumerate(group_order)], per_group, room, put)

    def _groups(self, s: int) -> tuple[dict[int, int], list[list[int]]]:
        """For a spread service: host → its group, and each group's hosts in `order` (made once per service)."""
        if s not in self._group_order:
            groups = self.c.zones[s] or ()
            group_of = {h: gi for gi, g in enumerate(groups) for h in g}
            ordered: list[list[int]] = [[] for _ in groups]
            for h in self.order:
                if h in group_of:
                    ordered[group_of[h]].append(h)
            self._group_order[s] = (group_of, ordered)
        return self._group_order[s]

    def _exact(
        self,
        left: dict[int, list[ReplicaId]],
        lost: set[int],
        count_of: Callable[[int, int], int],
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
                k = min(len(replicas), c.max_per_host[s] - count_of(s, h), c.fits_count(s, res(h)))
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
    ctx = FailoverContext(problem, placement)
    unknown = sorted(set(lost_hosts) - ctx.host_index.keys())
    if unknown:
        raise InvalidProblem([f'failover for unknown host "{h}"' for h in unknown])
    lost = sorted(ctx.host_index[h] for h in set(lost_hosts))
    return ctx.plan(lost, scope, target if target is not None else ",".join(problem.hosts[h].name for h in lost))
