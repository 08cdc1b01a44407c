"""The placement pipeline: greedy, bounds, then CP-SAT stages that each stop at their bound.

1. greedy first-fit decreasing under a few size orders, then emptying the least loaded hosts
   into the others' room (binpack); the best is the incumbent and hint;
2. a stage is skipped when the incumbent already meets that stage's bound (all placeable
   replicas placed and spread even; every replica that may stay stays; hosts = lower bound);
3. otherwise the CP-SAT counts model solves the stage from the incumbent; for "fewest hosts"
   over identical hosts in one dimension with no constraints between replicas the arc-flow
   model takes over, since it is much stronger there.
`time_limit` is shared by all stages; each stage gets a share of what is left.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence

from core.errors import InvalidProblem
from core.model import Placement, ReplicaId, SolverStatus, Strategy
from core.optimizer import arcflow
from core.optimizer.bounds import hosts_lower_bound
from core.optimizer.compiled import (
    Compiled,
    Counts,
    compile_problem,
    hosts_used,
    max_load_permille,
    moves_of,
    objective_terms,
    spread_excess,
    to_placement,
    weights,
)
from core.optimizer.cpsat import (
    MAX_EXACT_VARS,
    Budget,
    CountsModel,
    hosts_worth_modelling,
    model_size,
    neighbourhood,
)
from core.optimizer.explain import explain
from core.optimizer.greedy import ORDERS, consolidate, greedy_counts
from core.optimizer.problem import PlacementProblem, PlacementResult


def greedy(problem: PlacementProblem) -> PlacementResult:
    """First-fit decreasing alone: the baseline (and what `solve` starts from)."""
    start = time.monotonic()
    c = compile_problem(problem)
    binpack = problem.strategy is Strategy.BINPACK
    x = greedy_counts(c, order=ORDERS[0], binpack=binpack)
    proven = {"A": _placed_at_bound(c, x), "B": _stay_at_bound(c, x)}
    return _result(c, x, proven, hosts_bound=None, binpack=binpack, start=start, seed=0)


def solve(
    problem: PlacementProblem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    workers: int = 2,
    progress: Callable[[int, int | None], None] | None = None,
    moves_first: bool = True,
) -> PlacementResult:
    """The best placement found within `time_limit` seconds of search, all stages together.

    The limit is counted in CP-SAT's deterministic time so that the same problem and seed give the
    same placement; a slow machine may take longer, up to about twice the limit. `progress`, if
    given, is called (from the solving thread) with the hosts the best placement so far uses and
    the lower bound known so far, after greedy and after each stage, so a screen can show them.
    `moves_first=False` is a repack: the fewest hosts no longer wait on the fewest moves (replicas
    still stay where the packing allows), for an operator who asks to free hosts.
    """
    bad = []
    if not time_limit > 0:
        bad.append(f"time_limit must be more than 0 seconds, got {time_limit!r}")
    if workers < 1:
        bad.append(f"workers must be 1 or more, got {workers!r}")
    if seed < 0:
        bad.append(f"seed must be 0 or more, got {seed!r}")
    if bad:
        raise InvalidProblem(bad)
    return _solve(
        problem, Budget.of(time_limit), seed=seed, workers=workers, progress=progress, moves_first=moves_first
    )


def _solve(
    problem: PlacementProblem,
    budget: Budget,
    *,
    seed: int,
    workers: int,
    repack: bool = True,
    progress: Callable[[int, int | None], None] | None = None,
    moves_first: bool = True,
) -> PlacementResult:
    """`repack`: False inside a repacking round, whose problem is already a dozen hosts."""
    start = time.monotonic()
    c = compile_problem(problem)
    binpack = problem.strategy is Strategy.BINPACK
    x = min((greedy_counts(c, order=o, binpack=binpack) for o in ORDERS), key=lambda x: _rank(c, x, binpack))
    if binpack:
        x = min((x, consolidate(c, x)), key=lambda x: _rank(c, x, binpack))
    proven: dict[str, bool] = {}
    model: CountsModel | None = None

    exact = True  # False when the fewest-hosts stage only searched around the incumbent

    def get_model(only_fewer_hosts: bool = False) -> CountsModel | None:
        """The model (built once); None when even the neighbourhood would be too large to build."""
        nonlocal model, exact
        if model is None:
            hosts: Sequence[int] = range(c.n_hosts)
            if only_fewer_hosts:
                hosts = hosts_worth_modelling(c, x)
                if model_size(c, hosts) > MAX_EXACT_VARS:
                    hosts, exact = neighbourhood(c, x), False
            if model_size(c, hosts) > MAX_MODEL_VARS:
                return None
            model = CountsModel(c, binpack=binpack, hosts=hosts)
        return model

    def report(bound: float | None) -> None:
        if progress is not None:
            progress(hosts_used(c, x), int(bound) if bound is not None and binpack else None)

    report(hosts_lower_bound(c, [sum(x[s]) for s in range(c.n_services)]))
    proven["A"] = _placed_at_bound(c, x)
    if not proven["A"] and budget.left() > 0 and (m := get_model()) is not None:
        r = m.solve_stage("A", x, budget=budget, seconds=budget.left() * 0.3, seed=seed, workers=workers)
        x, proven["A"] = r.x, r.proven

    # A repack does not minimise moves before hosts: stage B is not part of its objective.
    proven["B"] = _stay_at_bound(c, x) or not moves_first
    if not proven["B"] and budget.left() > 0 and (m := get_model()) is not None:
        m.fix_to(x, "A")
        r = m.solve_stage("B", x, budget=budget, seconds=budget.left() * 0.4, seed=seed, workers=workers)
        x, proven["B"] = r.x, r.proven

    placed = [sum(x[s]) for s in range(c.n_services)]
    hosts_bound: float | None = hosts_lower_bound(c, placed) if binpack else None
    report(hosts_bound)
    stage_c_done = binpack and hosts_used(c, x) <= (hosts_bound or 0)
    proven["C"] = stage_c_done
    if not stage_c_done and budget.left() > 0:
        flow = _arcflow_shape(c, x) if binpack else None
        if flow is not None:
            x, proven["C"], hosts_bound = _solve_arcflow(c, x, flow, hosts_bound or 0, budget, seed, workers)
        else:
            if binpack and repack and _repackable(c):
                x = _repack_hosts(c, x, lb=int(hosts_bound or 0), budget=budget.share(REPACK_SHARE), seed=seed)
            m = get_model(only_fewer_hosts=binpack)
            if m is not None:
                m.fix_to(x, "A")
                if moves_first:
                    m.fix_to(x, "B")
                m.fix_to(x, "counts")
                r = m.solve_stage(
                    "C", x, budget=budget, seconds=budget.left(), seed=seed, workers=workers, lb=int(hosts_bound or 0)
                )
                x, proven["C"] = r.x, r.proven and exact
                if binpack and r.bound is not None and exact:
                    hosts_bound = max(hosts_bound or 0, r.bound)
        report(hosts_bound)
    return _result(c, x, proven, hosts_bound=hosts_bound, binpack=binpack, start=start, seed=seed)


MAX_MODEL_VARS = 100_000  # a larger model takes longer to build than a plan may take; greedy's answer stands
REPACK_SHARE = 0.5  # of the fewest-hosts budget spent repacking a few hosts at a time
REPACK_ROUNDS = 80
REPACK_LOOSE = 4  # least filled hosts per round
REPACK_NEIGHBOURS = 8  # further used hosts per round, at random
REPACK_SECONDS = 0.3


def _repackable(c: Compiled) -> bool:
    """Repacking a subset of hosts alone is valid when no rule links replicas across hosts
    (spread, avoid) and nothing runs yet (moves would need the whole picture)."""
    return not c.avoid_pairs and not any(c.zones) and not any(map(any, c.cur)) and not any(c.displaced)


def _repack_hosts(c: Compiled, x: Counts, *, lb: int, budget: Budget, seed: int) -> Counts:
    """Large-neighbourhood search: the least filled hosts plus a few random used ones are solved
    again as a problem of their own (this same pipeline, on a dozen hosts); when their replicas
    fit on fewer of them, that packing replaces theirs. Rounds are counted, so the result
    depends only on the input and seed (see `Budget`).
    """
    rng = random.Random(seed)
    x = [row[:] for row in x]
    problem = c.problem
    for round_no in range(REPACK_ROUNDS):
        used = [h for h in range(c.n_hosts) if any(x[s][h] for s in range(c.n_services))]
        if len(used) <= lb or budget.left() <= 0:
            break
        fill = {h: sum(_share(c, x, h)) for h in used}
        loose = sorted(used, key=lambda h: (fill[h], h))[:REPACK_LOOSE]
        rest = [h for h in used if h not in loose]
        chosen = sorted(loose + rng.sample(rest, min(len(rest), REPACK_NEIGHBOURS)))
        services = [
            dataclasses.replace(problem.services[s], replicas=sum(x[s][h] for h in chosen)) for s in range(c.n_services)
        ]
        sub = PlacementProblem(tuple(problem.hosts[h] for h in chosen), tuple(services), strategy=Strategy.BINPACK)
        part = budget.share(1.0, at_most=REPACK_SECONDS)
        found = _solve(sub, part, seed=seed + round_no, workers=1, repack=False)
        if found.unplaced or found.hosts_used >= len(chosen):
            continue
        names = {problem.hosts[h].name: h for h in chosen}
        index = {svc.name: s for s, svc in enumerate(problem.services)}
        for h in chosen:
            for s in range(c.n_services):
                x[s][h] = 0
        for replica, name in found.placement.assignments.items():
            x[index[replica.service]][names[name]] += 1
    return x


def _share(c: Compiled, x: Counts, h: int) -> list[float]:
    return [
        sum(c.demand[s][d] * x[s][h] for s in range(c.n_services)) / c.cap[h][d]
        for d in range(len(c.dims))
        if c.cap[h][d]
    ]


def _rank(c: Compiled, x: Counts, binpack: bool) -> tuple[int, int, int, int]:
    w = weights(c)
    placed_weight = sum(w[s] * sum(x[s]) for s in range(c.n_services))
    last = hosts_used(c, x) if binpack else max_load_permille(c, x)
    return (-placed_weight, spread_excess(c, x), moves_of(c, x), last)


def _placed_at_bound(c: Compiled, x: Counts) -> bool:
    best = all(sum(x[s]) >= min(c.replicas[s], sum(c.ub[s])) for s in range(c.n_services))
    return best and spread_excess(c, x) == 0


def _stay_at_bound(c: Compiled, x: Counts) -> bool:
    """True when no placement of the same weight moves fewer replicas than `x`.

    When every service has as many replicas placed as it can have at all, every placement of
    equal weight places the same counts, and then a running replica that may stay where it
    is (its host keeps it and has room for it alone) is the only kind that need not move.
    """
    if moves_of(c, x) == 0:
        return True
    if not all(sum(x[s]) == min(c.replicas[s], sum(c.ub[s])) for s in range(c.n_services)):
        return False
    least = 0
    for s in range(c.n_services):
        running = sum(c.cur[s]) + c.displaced[s]
        may_stay = sum(min(c.cur[s][h], c.ub[s][h]) for h in range(c.n_hosts))
        least += max(0, min(running, sum(x[s])) - may_stay)
    return moves_of(c, x) <= least


def _arcflow_shape(c: Compiled, x: Counts) -> tuple[int, list[int]] | None:
    """(dimension, hosts) when fewest hosts is plain 1-D bin packing over identical hosts, else None."""
    if c.avoid_pairs or any(c.zones) or any(any(row) for row in c.cur) or any(c.displaced):
        return None
    active = [d for d in range(len(c.dims)) if any(c.demand[s][d] for s in range(c.n_services))]
    services = [s for s in range(c.n_services) if sum(x[s])]
    if len(active) != 1 or not services:
        return None
    d = active[0]
    hosts = [h for h in range(c.n_hosts) if any(c.ub[s][h] for s in services)]
    if any(not c.takes_new[h] or c.cap[h] != c.cap[hosts[0]] for h in hosts):
        return None
    for s in services:
        if c.max_per_host[s] < c.replicas[s] or any(c.ub[s][h] != c.ub[s][hosts[0]] for h in hosts):
            return None
    return d, hosts


def _solve_arcflow(
    c: Compiled, x: Counts, shape: tuple[int, list[int]], lb: float, budget: Budget, seed: int, workers: int
) -> tuple[Counts, bool, float]:
    d, hosts = shape
    services = [s for s in range(c.n_services) if sum(x[s])]
    hint = [[x[s][h] for s in services] for h in hosts if any(x[s][h] for s in services)]
    found = arcflow.pack(
        [c.demand[s][d] for s in services],
        [sum(x[s]) for s in services],
        c.cap[hosts[0]][d],
        hint=hint,
        lb=int(lb),
        budget=budget,
        seed=seed,
        workers=workers,
    )
    if found is None or len(found[0]) > len(hint):
        return x, False, lb
    bins, proven = found
    out = [[0] * c.n_hosts for _ in range(c.n_services)]
    for h, contents in zip(hosts, bins, strict=False):
        for i, s in enumerate(services):
            out[s][h] = contents[i]
    return out, proven, (len(bins) if proven else lb)


def _result(
    c: Compiled,
    x: Counts,
    proven: dict[str, bool],
    *,
    hosts_bound: float | None,
    binpack: bool,
    start: float,
    seed: int,
) -> PlacementResult:
    placement = to_placement(c, x)
    unplaced = _unplaced(c, x, placement, seed)
    used = hosts_used(c, x)
    bound = hosts_lower_bound(c, [sum(x[s]) for s in range(c.n_services)])
    if hosts_bound is not None:
        bound = max(bound, int(-(-hosts_bound // 1)))
    bound = min(bound, used)
    if unplaced:
        status = SolverStatus.INFEASIBLE if proven.get("A") else SolverStatus.UNKNOWN
    elif all(proven.get(k, False) for k in ("A", "B")) and (used <= bound or proven.get("C", False)):
        status = SolverStatus.OPTIMAL
    else:
        status = SolverStatus.FEASIBLE
    if binpack and proven.get("C") and proven.get("A") and proven.get("B"):
        bound = used
    return PlacementResult(
        placement=placement,
        unplaced=unplaced,
        status=status,
        objective=objective_terms(c, x, binpack),
        hosts_used=used,
        lower_bound=bound,
        gap=(used - bound) / used if used else 0.0,
        wall_time=time.monotonic() - start,
        seed=seed,
    )


def _unplaced(c: Compiled, x: Counts, placement: Placement, seed: int) -> dict[ReplicaId, str]:
    reasons = explain(c, x, seed=seed)
    out: dict[ReplicaId, str] = {}
    for s, service in enumerate(c.problem.services):
        for replica in service.replica_ids():
            if placement.host_of(replica) is None:
                out[replica] = reasons.get(s, "not placed")
    return out
