"""Lower bounds on the number of hosts any placement needs.

Each bound is valid on its own, so the answer is their maximum: per dimension the
fewest hosts whose summed capacity covers the demand (largest hosts first), the
Martello–Toth L2 bound for a dimension in which all usable hosts are equal, and
ceil(replicas / max_per_host) per service.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate

from core.optimizer.compiled import Compiled, compile_problem
from core.optimizer.problem import PlacementProblem


def lower_bound(problem: PlacementProblem) -> int:
    """Fewest hosts that could hold every replica that can be placed at all."""
    c = compile_problem(problem)
    return hosts_lower_bound(c, [min(c.replicas[s], sum(c.ub[s])) for s in range(c.n_services)])


def hosts_lower_bound(c: Compiled, placed: Sequence[int]) -> int:
    """A bound for placing `placed[s]` replicas of each service s."""
    if not any(placed):
        return 0
    usable = [h for h in range(c.n_hosts) if c.takes_new[h] or any(c.cur[s][h] for s in range(c.n_services))]
    best = 0
    for s, n in enumerate(placed):
        if n:
            best = max(best, -(-n // c.max_per_host[s]))
    for d in range(len(c.dims)):
        need = sum(c.demand[s][d] * n for s, n in enumerate(placed))
        if need <= 0:
            continue
        caps = sorted((c.cap[h][d] for h in usable), reverse=True)
        covered, k = 0, 0
        for cap in caps:
            if covered >= need:
                break
            covered += cap
            k += 1
        best = max(best, k if covered >= need else len(caps) + 1)
        if caps and caps[0] == caps[-1] and caps[0] > 0:
            items = [(c.demand[s][d], n) for s, n in enumerate(placed) if n and c.demand[s][d] > 0]
            best = max(best, l2_bound(items, caps[0]))
    return best


def continuous_bound(sizes: Sequence[tuple[int, int]], capacity: int) -> int:
    """ceil(total size / capacity) for (size, count) items."""
    return -(-sum(w * n for w, n in sizes) // capacity)


def l2_bound(items: Sequence[tuple[int, int]], capacity: int) -> int:
    """Martello–Toth L2 for one dimension; `items` are (size, count) with size <= capacity.

    For each threshold K <= C/2: items larger than C-K each need their own bin (J1); items in
    (C/2, C-K] each need a bin too (J2) and leave room that only items of size >= K (J3) could
    use; whatever of J3 does not fit into that room needs further bins.
    """
    if not items:
        return 0
    count_by: dict[int, int] = {}
    for w, n in items:
        count_by[w] = count_by.get(w, 0) + n
    sizes = sorted(count_by)
    counts = [count_by[w] for w in sizes]
    cum_n = [0, *accumulate(counts)]
    cum_w = [0, *accumulate(w * n for w, n in zip(sizes, counts, strict=True))]

    def span(lo_exclusive: float, hi_inclusive: float) -> tuple[int, int]:
        """(count, total size) of items with lo < w <= hi."""
        i = bisect.bisect_right(sizes, lo_exclusive)
        j = bisect.bisect_right(sizes, hi_inclusive)
        return cum_n[j] - cum_n[i], cum_w[j] - cum_w[i]

    best = continuous_bound(items, capacity)
    half = capacity / 2
    for k in [0, *(w for w in sizes if w <= half)]:
        n1, _ = span(capacity - k, capacity)
        n2, w2 = span(half, capacity - k)
        _, w3 = span(k - 0.5, half)
        room = n2 * capacity - w2
        extra = max(0, -(-(w3 - room) // capacity))
        best = max(best, n1 + n2 + extra)
    return best
