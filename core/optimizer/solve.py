"""The placement pipeline: greedy, bounds, then CP-SAT stages that each stop at their bound.

1. greedy first-fit decreasing under a few size orders and, for binpack, the vector-packing
   families of the literature (`families`), then emptying the least loaded hosts into the
   others' room (binpack); on a constrained fleet too large for an exact counts model, also the
   largest hosts filled one at a time (`fill`); the best is the incumbent and hint;
2. a stage is skipped when the incumbent already meets that stage's bound (all placeable
   replicas placed and spread even; every replica that may stay stays; hosts = lower bound);
3. otherwise the CP-SAT counts model solves the stage from the incumbent; "fewest hosts" that is
   plain one-dimensional bin packing (identical hosts, one dimension binds, no rule between
   replicas, nothing running; see `_one_dim_shape`) goes to `onedim.pack` instead (pattern-LP
   bound, LP dives, arc-flow CP-SAT), which is far stronger there.
`time_limit` is shared by all stages; each stage gets a share of what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from core.errors import InvalidProblem
from core.model import Placement, ReplicaId, SolverStatus, Strategy
from core.optimizer import onedim
from core.optimizer.bounds import hosts_lower_bound
from core.optimizer.compiled import (
    Compiled,
    Counts,
    compile_problem,
    hosts_independent,
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
    Stage,
    hosts_worth_modelling,
    model_size,
    neighbourhood,
)
from core.optimizer.explain import explain
from core.optimizer.families import applies as families_apply
from core.optimizer.families import family_starts
from core.optimizer.fill import fill_hosts
from core.optimizer.greedy import ORDERS, consolidate, greedy_counts
from core.optimizer.problem import PlacementProblem, PlacementResult
from core.optimizer.repack_hosts import repack_hosts, separable
from core.optimizer.vectorlp import lp_bound


def greedy(problem: PlacementProblem) -> PlacementResult:
    """First-fit decreasing alone: the baseline (and what `solve` starts from)."""
    start = time.monotonic()
    c = compile_problem(problem)
    binpack = problem.strategy is Strategy.BINPACK
    x = greedy_counts(c, order=ORDERS[0], binpack=binpack)
    proven = {Stage.PLACE: _placed_at_bound(c, x), Stage.MOVES: _stay_at_bound(c, x)}
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
    starts = [greedy_counts(c, order=o, binpack=binpack, limited_first=f) for o in ORDERS for f in (False, True)]
    if binpack and repack:  # the literature's vector-packing heuristics (not inside a repacking round: cost)
        starts += family_starts(c)
    x = min(starts, key=lambda x: _rank(c, x, binpack))
    if binpack and repack and _fill_applies(c, x):
        x = min((x, fill_hosts(c, budget=budget.share(FILL_SHARE), seed=seed)), key=lambda x: _rank(c, x, binpack))
    if binpack:
        x = min((x, consolidate(c, x)), key=lambda x: _rank(c, x, binpack))
    proven: dict[Stage, bool] = {}
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
    proven[Stage.PLACE] = _placed_at_bound(c, x)
    if not proven[Stage.PLACE] and budget.left() > 0 and (m := get_model()) is not None:
        r = m.solve_stage(Stage.PLACE, x, budget=budget, seconds=budget.left() * 0.3, seed=seed, workers=workers)
        x, proven[Stage.PLACE] = r.x, r.proven

    # A repack does not minimise moves before hosts: that stage is not part of its objective.
    proven[Stage.MOVES] = _stay_at_bound(c, x) or not moves_first
    if not proven[Stage.MOVES] and budget.left() > 0 and (m := get_model()) is not None:
        m.fix_to(x, Stage.PLACE)
        r = m.solve_stage(Stage.MOVES, x, budget=budget, seconds=budget.left() * 0.4, seed=seed, workers=workers)
        x, proven[Stage.MOVES] = r.x, r.proven

    placed = [sum(x[s]) for s in range(c.n_services)]
    hosts_bound: float | None = hosts_lower_bound(c, placed) if binpack else None
    report(hosts_bound)
    hosts_done = binpack and hosts_used(c, x) <= (hosts_bound or 0)
    proven[Stage.HOSTS] = hosts_done
    if not hosts_done and budget.left() > 0:
        independent = binpack and hosts_independent(c)
        flow = _one_dim_shape(c, x) if independent else None
        if flow is not None:
            x, proven[Stage.HOSTS], hosts_bound = _pack_one_dim(
                c, x, flow, hosts_bound or 0, budget, seed, workers, progress
            )
        else:
            if independent and repack:  # the pattern LP may prove x optimal (few services), else repack
                hosts_bound = max(hosts_bound or 0, lp_bound(c, x, budget=budget.share(LP_SHARE), seed=seed))
            # Rounds on constrained fleets only where the counts model cannot be exact (1,000 hosts): on a
            # smaller fleet CP-SAT over every host proves more in the same time than rounds find.
            large = not independent and model_size(c, hosts_worth_modelling(c, x)) > MAX_EXACT_VARS
            rounds = binpack and repack and (independent or (large and separable(c)))
            if rounds and hosts_used(c, x) > (hosts_bound or 0):
                x = repack_hosts(
                    c, x, lb=int(hosts_bound or 0), budget=budget.share(REPACK_SHARE), seed=seed, solve=_solve_round
                )
            proven[Stage.HOSTS] = binpack and hosts_used(c, x) <= (hosts_bound or 0)
            m = None if proven[Stage.HOSTS] else get_model(only_fewer_hosts=binpack)
            if m is not None:
                m.fix_to(x, Stage.PLACE)
                if moves_first:
                    m.fix_to(x, Stage.MOVES)
                m.fix_counts(x)
                r = m.solve_stage(
                    Stage.HOSTS,
                    x,
                    budget=budget,
                    seconds=budget.left(),
                    seed=seed,
                    workers=workers,
                    lb=int(hosts_bound or 0),
                )
                x, proven[Stage.HOSTS] = r.x, r.proven and exact
                if binpack and r.bound is not None and exact:
                    hosts_bound = max(hosts_bound or 0, r.bound)
        report(hosts_bound)
    return _result(c, x, proven, hosts_bound=hosts_bound, binpack=binpack, start=start, seed=seed)


MAX_MODEL_VARS = 100_000  # a larger model takes longer to build than a plan may take; greedy's answer stands
REPACK_SHARE = 0.5  # of the fewest-hosts budget spent repacking a few hosts at a time
LP_SHARE = 0.3  # of the fewest-hosts budget for the pattern-LP bound (vectorlp), before repacking
FILL_SHARE = 0.3  # of the whole budget, at most, for filling one host at a time (`fill`); it takes far less


def _solve_round(sub: PlacementProblem, budget: Budget, seed: int) -> PlacementResult:
    """One round of `repack_hosts`: this pipeline on a dozen hosts, one worker, no repacking inside."""
    return _solve(sub, budget, seed=seed, workers=1, repack=False)


def _fill_applies(c: Compiled, x: Counts) -> bool:
    """Filling host by host (`fill`) where the counts model cannot be exact (a neighbourhood of 1,000
    hosts) and nothing else packs well: nothing runs yet, and spread or avoid keep the families out.
    On smaller fleets CP-SAT over every host did better from greedy's start than from this one."""
    return separable(c) and not families_apply(c) and model_size(c, hosts_worth_modelling(c, x)) > MAX_EXACT_VARS


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


def _one_dim_shape(c: Compiled, x: Counts) -> tuple[int, list[int]] | None:
    """(dimension, hosts) when fewest hosts is plain 1-D bin packing over identical hosts, else None.

    Only asked when `hosts_independent(c)` (no avoid, no spread, nothing running: no rule links
    replicas on different hosts). Then it is 1-D bin packing when every host that may take these
    replicas has the same capacity and takes new work, every service may go to all of them (a
    `require` that splits the hosts, or a `max_per_host`, keeps the counts model), and one
    dimension binds: for every service and every other dimension, its share of a host is no larger
    than in that one, so any host that fits in that dimension fits in all.
    """
    services = [s for s in range(c.n_services) if sum(x[s])]
    if not services:
        return None
    hosts = [h for h in range(c.n_hosts) if any(c.ub[s][h] for s in services)]
    cap = c.cap[hosts[0]]
    if any(not c.takes_new[h] or c.cap[h] != cap for h in hosts):
        return None
    for s in services:
        if c.max_per_host[s] < c.replicas[s] or any(c.ub[s][h] != c.ub[s][hosts[0]] for h in hosts):
            return None
    for d in range(len(c.dims)):
        # demand[s][e] / cap[e] <= demand[s][d] / cap[d], in integers
        if (
            cap[d] > 0
            and all(c.demand[s][d] > 0 for s in services)
            and all(
                c.demand[s][e] * cap[d] <= c.demand[s][d] * cap[e]
                for s in services
                for e in range(len(c.dims))
                if e != d
            )
        ):
            return d, hosts
    return None


def _pack_one_dim(
    c: Compiled,
    x: Counts,
    shape: tuple[int, list[int]],
    lb: float,
    budget: Budget,
    seed: int,
    workers: int,
    progress: Callable[[int, int | None], None] | None,
) -> tuple[Counts, bool, float]:
    """Fewest hosts as 1-D bin packing (`onedim.pack`: LP bound, dives, arc-flow); never more than `x` uses."""
    d, hosts = shape
    services = [s for s in range(c.n_services) if sum(x[s])]
    hint = [[x[s][h] for s in services] for h in hosts if any(x[s][h] for s in services)]
    bins, proven, bound = onedim.pack(
        [c.demand[s][d] for s in services],
        [sum(x[s]) for s in services],
        c.cap[hosts[0]][d],
        hint=hint,
        lb=int(lb),
        budget=budget,
        seed=seed,
        workers=workers,
        progress=progress,
    )
    if len(bins) > len(hint) or len(bins) > len(hosts):
        return x, False, max(lb, bound)
    out = [[0] * c.n_hosts for _ in range(c.n_services)]
    for h, contents in zip(hosts, bins, strict=False):
        for i, s in enumerate(services):
            out[s][h] = contents[i]
    return out, proven, (len(bins) if proven else max(lb, bound))


def _result(
    c: Compiled,
    x: Counts,
    proven: dict[Stage, bool],
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
    placed_and_stayed = proven.get(Stage.PLACE, False) and proven.get(Stage.MOVES, False)
    if unplaced:
        status = SolverStatus.INFEASIBLE if proven.get(Stage.PLACE) else SolverStatus.UNKNOWN
    elif placed_and_stayed and (used <= bound or proven.get(Stage.HOSTS, False)):
        status = SolverStatus.OPTIMAL
    else:
        status = SolverStatus.FEASIBLE
    if binpack and placed_and_stayed and proven.get(Stage.HOSTS):
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
