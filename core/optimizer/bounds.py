"""Lower bounds on the number of hosts any placement needs.

Each bound is valid on its own, so the answer is their maximum: per dimension the
fewest hosts whose summed capacity covers the demand (largest hosts first), the
Martello–Toth L2 bound for a dimension in which all usable hosts are equal,
ceil(replicas / max_per_host) per service, and, when all usable hosts are equal, the clique
bound of vector packing (`clique_bound`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate

import numpy as np
import numpy.typing as npt

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
    caps_all = {c.cap[h] for h in usable}
    if len(caps_all) == 1:
        best = max(best, clique_bound([(c.demand[s], n) for s, n in enumerate(placed) if n], caps_all.pop()))
    return best


def clique_bound(items: Sequence[tuple[Sequence[int], int]], capacity: Sequence[int]) -> int:
    """A bound for vector packing of (demand per dimension, count) items into equal bins.

    Two items that overflow some dimension together never share a bin, so a set of such items
    (a clique of the conflict graph, found greedily: largest first, under a few orders) needs a
    bin each. The other items can use the room in a clique item's bin only when they fit next to
    it, so per dimension whatever exceeds that usable room needs further bins (as L2 does in 1-D).
    """
    if not items:
        return 0
    demand = np.array([d for d, _ in items], dtype=np.int64).reshape(len(items), len(capacity))
    count = np.array([n for _, n in items], dtype=np.int64)
    cap = np.array(capacity, dtype=np.int64)
    if (cap <= 0).any():
        return 0
    apart: npt.NDArray[np.bool_] = np.asarray(((demand[:, None, :] + demand[None, :, :]) > cap).any(axis=2))
    # apart[i, j]: items i and j never share a bin
    share = demand / cap
    best = 0
    for key in (share.max(axis=1), share.sum(axis=1), apart.sum(axis=1).astype(np.float64)):
        clique: list[int] = []
        for i in sorted(range(len(items)), key=lambda i: (-key[i], i)):
            if all(apart[i, j] for j in clique):
                clique.append(i)
        inside = np.zeros(len(items), dtype=np.int64)  # replicas of each item type in the clique
        for i in clique:
            inside[i] = count[i] if apart[i, i] else 1
        rest = count - inside  # the items outside the clique
        extra = 0
        for d in range(len(capacity)):
            usable = 0
            for i in clique:
                fits_with = (~apart[i]) * rest * demand[:, d]  # what may share i's bin, in dimension d
                usable += int(inside[i]) * min(int(cap[d] - demand[i, d]), int(fits_with.sum()))
            extra = max(extra, -(-(int((rest * demand[:, d]).sum()) - usable) // int(cap[d])))
        best = max(best, int(inside.sum()) + extra)
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
