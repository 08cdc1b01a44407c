"""The pattern-LP bound for vector packing (several dimensions, equal hosts), priced by CP-SAT.

The LP is the one `colgen` solves in one dimension: a column per bin pattern (how many replicas
of each service one host holds), minimise the hosts used, every replica covered. Only the
pricing differs: the most valuable pattern is now a knapsack in every dimension at once, which
no DP over one load handles, so a small CP-SAT model solves it. For any prices pi >= 0 no
placement uses fewer than (pi . counts) / max_p (pi . p) hosts (Farley), and CP-SAT's objective
bound is an upper bound on that maximum even when it stops before proving it, so the bound is
certified after every round. On the vbp Panigrahy instances tried (20-40 items, d = 3) the LP
rounded up was the optimum where the clique and per-dimension bounds were 1-2 below it, and
solve stopped there (class6_20_3_0: OPTIMAL in 2.4 s instead of FEASIBLE after the whole limit).

It costs a CP-SAT solve per column, so it runs only on few services (MAX_TYPES) and within its
share of the budget, paid in deterministic time like every other search here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ortools.sat.python import cp_model

from core.optimizer.colgen import NONZEROS_PER_SECOND, Master, round_up
from core.optimizer.compiled import Compiled, Counts, hosts_independent
from core.optimizer.cpsat import Budget, run
from core.optimizer.patterns import EPS

# More services than this: the LP rarely converged within its share, and the share it took cost the
# repacking an optimum now and then (vbp d=3: 40 and 60 items); at 20-21 it proves the optimum in 1-3 s.
MAX_TYPES = 25
PRICE_SCALE = 10**6  # prices are rounded up to 1e-6 for CP-SAT's integer objective (the bound stays valid)


def lp_bound(c: Compiled, x: Counts, *, budget: Budget, seed: int) -> int:
    """A bound on the hosts the replicas `x` places need (0 when it does not apply): the services
    `x` places may go to every usable host alike, the hosts are equal, and nothing links hosts."""
    services = [s for s in range(c.n_services) if sum(x[s])]
    hosts = [h for h in range(c.n_hosts) if any(c.ub[s][h] for s in services)]
    if not services or len(services) > MAX_TYPES or len(c.dims) < 2 or not hosts_independent(c):
        return 0
    first = hosts[0]
    if any(c.cap[h] != c.cap[first] or not c.takes_new[h] for h in hosts):
        return 0
    if any(c.ub[s][h] != c.ub[s][first] for s in services for h in hosts):
        return 0
    return vector_bound(
        [c.demand[s] for s in services],
        [sum(x[s]) for s in services],
        [c.ub[s][first] for s in services],
        c.cap[first],
        target=len([h for h in range(c.n_hosts) if any(x[s][h] for s in services)]),
        budget=budget,
        seed=seed,
    )


def vector_bound(
    demand: Sequence[Sequence[int]],
    counts: Sequence[int],
    most: Sequence[int],
    cap: Sequence[int],
    *,
    target: int,
    budget: Budget,
    seed: int,
) -> int:
    """Column generation until the bound reaches `target` (a known packing: then it is optimal),
    the LP is solved (nothing prices out), or the budget ends. `most[t]`: at most that many of
    type t on one host (its fit and max_per_host)."""
    n = len(demand)
    master = Master(counts)
    for t in range(n):
        own = [0] * n
        own[t] = max(1, min(counts[t], most[t]))
        master.add(tuple(own))
    best = 0.0
    while budget.left() > 0:
        _, duals = master.solve()
        budget.spend(master.nonzeros / NONZEROS_PER_SECOND)
        model = cp_model.CpModel()
        z = [model.new_int_var(0, min(counts[t], most[t]), f"z{t}") for t in range(n)]
        for d in range(len(cap)):
            model.add(sum(demand[t][d] * z[t] for t in range(n) if demand[t][d]) <= cap[d])
        # rounded up, the prices only overstate a pattern's value: the bound below stays valid
        model.maximize(sum(math.ceil(duals[t] * PRICE_SCALE) * z[t] for t in range(n)))
        solver, status = run(model, budget=budget, seconds=budget.left(), seed=seed, workers=1)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        most_value = solver.best_objective_bound / PRICE_SCALE
        if most_value > EPS:
            best = max(best, sum(p * k for p, k in zip(duals, counts, strict=True)) / most_value)
        if round_up(best) >= target:
            break
        pattern = tuple(int(solver.value(v)) for v in z)
        reduced = 1.0 - sum(p * k for p, k in zip(duals, pattern, strict=True))
        if reduced >= -EPS or not master.add(pattern):
            break  # the LP is solved (or the pricing stopped short of a better column)
    return round_up(best)
