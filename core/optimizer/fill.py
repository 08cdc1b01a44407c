"""One host at a time, as full as it can be: a start for fewest hosts on constrained fleets.

Greedy and the repacking rounds leave a 1,000-host fleet with zones, `avoid` and `max_per_host`
well above its bound (issue 13: seed 9 of `benchmarks/scale.py`, 305 hosts after greedy and 275
after repacking, against a cpu bound of 253 that only the largest hosts, each all but full,
can meet). The bin-at-a-time heuristics of bin packing (minimum bin slack; Fleszar &
Charalambous) do better there: take the largest host, choose what it runs from everything still
to place by a small knapsack (CP-SAT over one host: a count per service), then the next host.

Each host's knapsack holds the per-host rules (capacity, `require`, `max_per_host`, `avoid`).
A spread service's replicas are shared out between the groups of its label first, as evenly as
they go (the larger groups take the odd ones), and a host takes only its own group's share, so
the result is spread as evenly as it can be. The knapsack's objective, in this order: most
replicas of services with a `max_per_host` (each needs many distinct hosts, and left to the end
it opens hosts for a few replicas each), most of the scarcest dimension, then most of the others.

Hosts of one kind (same capacity, bounds and groups) get the same knapsack, and what is left
only shrinks, so a host's answer is reused for the next host of its kind as long as enough is
left for it: an optimal choice from a larger pool is optimal from a smaller one that still
holds it (and a knapsack cut short by its limit is still a good choice there). Seed 9's 254
hosts took 141 knapsacks; a new one starts from its kind's last answer.

It applies where nothing runs yet (no move to count) and the literature's families cannot run
(`families.applies`: they need a fleet with no spread or avoid); a fleet too large for them
is served too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ortools.sat.python import cp_model

from core.optimizer.compiled import Compiled, Counts
from core.optimizer.cpsat import DETERMINISTIC_PER_SECOND, Budget

# Deterministic seconds per knapsack: at 0.02 and 0.005 the fleets of benchmarks/scale.py packed no better,
# and 5,000 hosts took 30 s to fill at 0.02.
PER_HOST = 0.002

Pool = dict[tuple[int, int], int]  # (service, group: -1 when it does not spread) → replicas left to place


def fill_hosts(c: Compiled, *, budget: Budget, seed: int) -> Counts:
    """A packing built host by host, largest hosts first; replicas it cannot place stay out
    (the caller ranks it against the other starts, which counts them)."""
    group_of = _groups(c)
    pool = _shares(c)
    usable = [h for h in range(c.n_hosts) if c.takes_new[h]]
    total_cap = [sum(c.cap[h][d] for h in usable) or 1 for d in range(len(c.dims))]
    need = [sum(c.demand[s][d] * c.replicas[s] for s in range(c.n_services)) for d in range(len(c.dims))]
    scarce = max(range(len(c.dims)), key=lambda d: (need[d] / total_cap[d], -d), default=None)
    order = sorted(usable, key=lambda h: (-sum(c.cap[h][d] / total_cap[d] for d in range(len(c.dims))), h))
    x = [[0] * c.n_hosts for _ in range(c.n_services)]
    left = sum(pool.values())
    known: dict[tuple[object, ...], tuple[int, ...]] = {}
    for h in order:
        if left == 0 or budget.left() <= 0:
            break
        keys = [(s, -1 if groups is None else groups.get(h, -2)) for s, groups in enumerate(group_of)]
        avail = [min(c.ub[s][h], pool.get(key, 0)) for s, key in enumerate(keys)]
        if not any(avail):
            continue
        kind = (c.cap[h], tuple(c.ub[s][h] for s in range(c.n_services)), tuple(k for _, k in keys))
        counts = known.get(kind)
        if counts is None or any(n > a for n, a in zip(counts, avail, strict=True)):
            counts = known[kind] = _knapsack(c, h, avail, scarce, hint=counts, budget=budget, seed=seed)
        for s, n in enumerate(counts):
            if n:
                x[s][h] = n
                pool[keys[s]] -= n
                left -= n
    return x


def _groups(c: Compiled) -> list[dict[int, int] | None]:
    """For each spread service, the group index of every host in one of its groups."""
    out: list[dict[int, int] | None] = []
    for groups in c.zones:
        out.append(None if groups is None else {h: g for g, hosts in enumerate(groups) for h in hosts})
    return out


def _shares(c: Compiled) -> Pool:
    """Replicas to place per service and group: a spread service's split as evenly as they go."""
    pool: Pool = {}
    for s, groups in enumerate(c.zones):
        if groups is None:
            pool[s, -1] = c.replicas[s]
            continue
        k = len(groups)
        base, odd = divmod(c.replicas[s], k) if k else (0, 0)
        larger = sorted(range(k), key=lambda g: (-len(groups[g]), g))[:odd]
        for g in range(k):
            pool[s, g] = base + (g in larger)
    return pool


def _knapsack(
    c: Compiled,
    h: int,
    avail: Sequence[int],
    scarce: int | None,
    *,
    hint: Sequence[int] | None,
    budget: Budget,
    seed: int,
) -> tuple[int, ...]:
    """How many replicas of each service host h takes, at most `avail[s]` (see the module docstring);
    `hint`: the last answer for a host of this kind, which what is left no longer holds."""
    m = cp_model.CpModel()
    live = [s for s in range(c.n_services) if avail[s]]
    n = {s: m.new_int_var(0, avail[s], f"n{s}") for s in live}
    for s in live:
        if hint is not None:
            m.add_hint(n[s], min(hint[s], avail[s]))
    for d in range(len(c.dims)):
        m.add(sum(c.demand[s][d] * n[s] for s in live) <= c.cap[h][d])
    for s, t in c.avoid_pairs:
        if s in n and t in n:
            s_out = m.new_bool_var(f"out{s}_{t}")
            m.add(n[s] == 0).only_enforce_if(s_out)
            m.add(n[t] == 0).only_enforce_if(s_out.Not())

    # Three objectives in one sum, each level's weight above all that the levels below can add. Sizes are
    # millionths of the host (thousandths below the scarce dimension), so bytes of memory cannot overflow.
    # A replica too small to register at either level (or asking for nothing) counts one at the lowest, so
    # that it is still worth placing.
    def share(s: int, d: int | None, unit: int) -> int:  # None: no service asks for any resource
        return unit * c.demand[s][d] // c.cap[h][d] if d is not None and c.cap[h][d] else 0

    low = {s: sum(share(s, e, 1000) for e in range(len(c.dims)) if e != scarce) for s in live}
    unseen = [s for s in live if not low[s] and not share(s, scarce, 10**6)]
    for s in unseen:
        low[s] = 1
    room = 1000 * len(c.dims) + sum(avail[s] for s in unseen) + 1
    full = room * (10**6 + 1)
    limited = {s: int(c.max_per_host[s] < c.replicas[s]) for s in live}
    if full * (sum(avail) + 1) >= 2**62:  # beyond CP-SAT's integers: this host is left empty, the start ranks last
        return tuple(0 for _ in range(c.n_services))
    m.maximize(sum((limited[s] * full + share(s, scarce, 10**6) * room + low[s]) * n[s] for s in live))
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = 1
    p.random_seed = seed
    p.max_deterministic_time = PER_HOST
    p.max_time_in_seconds = max(0.05, budget.deadline - time.monotonic())
    status = solver.solve(m)
    budget.spend(solver.deterministic_time / DETERMINISTIC_PER_SECOND)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return tuple(0 for _ in range(c.n_services))
    return tuple(solver.value(n[s]) if s in n else 0 for s in range(c.n_services))
