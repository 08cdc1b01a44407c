"""Arc-flow model (Valério de Carvalho) for "fewest identical hosts" in one dimension.

When the hosts left to choose between are identical and only one dimension matters,
minimising hosts is one-dimensional bin packing, and the arc-flow graph is a far
stronger CP-SAT model than counts per host: node = load of a host so far, an arc of
type t adds one replica of size w_t, and a loss arc closes the host. Every host's
contents is a path from 0 to the capacity, so the number of paths is the number of
hosts. Items enter a path largest first (types sorted by size), which keeps the graph
small without losing any packing.
"""

from __future__ import annotations

from collections.abc import Sequence

from ortools.sat.python import cp_model

from core.optimizer.cpsat import run

Bins = list[list[int]]  # per host: how many replicas of each type


def _graph(
    sizes: Sequence[int], counts: Sequence[int], capacity: int, order: Sequence[int]
) -> list[tuple[int, int, int]]:
    """Arcs (tail, head, type); type -1 is a loss arc to `capacity`."""
    nodes = {0}
    arcs: set[tuple[int, int, int]] = set()
    for t in order:
        w, n = sizes[t], counts[t]
        new: set[int] = set()
        for a in sorted(nodes):
            b = a
            for _ in range(n):
                if b + w > capacity:
                    break
                arcs.add((b, b + w, t))
                b += w
                new.add(b)
        nodes |= new
    arcs.update((a, capacity, -1) for a in nodes if a != capacity)
    return sorted(arcs)


def _path_of(
    bin_counts: Sequence[int], sizes: Sequence[int], order: Sequence[int], capacity: int
) -> list[tuple[int, int, int]]:
    arcs, load = [], 0
    for t in order:
        for _ in range(bin_counts[t]):
            arcs.append((load, load + sizes[t], t))
            load += sizes[t]
    if load != capacity:
        arcs.append((load, capacity, -1))
    return arcs


def pack(
    sizes: Sequence[int],
    counts: Sequence[int],
    capacity: int,
    *,
    hint: Bins,
    lb: int,
    seconds: float,
    seed: int,
    workers: int,
) -> tuple[Bins, bool] | None:
    """Fewest bins for `counts[t]` items of size `sizes[t]`; None when nothing better than `hint` was found.

    Returns the bins and whether they are proven fewest.
    """
    order = sorted(range(len(sizes)), key=lambda t: (-sizes[t], t))
    arcs = _graph(sizes, counts, capacity, order)
    ub = len(hint)
    m = cp_model.CpModel()
    flow = {}
    for a, b, t in arcs:
        flow[a, b, t] = m.new_int_var(0, ub if t < 0 else min(ub, counts[t]), f"f{a}_{b}_{t}")
    into: dict[int, list] = {}
    out: dict[int, list] = {}
    by_type: dict[int, list] = {}
    for (a, b, t), v in flow.items():
        out.setdefault(a, []).append(v)
        into.setdefault(b, []).append(v)
        if t >= 0:
            by_type.setdefault(t, []).append(v)
    for node in set(into) | set(out):
        if node not in (0, capacity):
            m.add(sum(into.get(node, [])) == sum(out.get(node, [])))
    for t, vs in by_type.items():
        m.add(sum(vs) == counts[t])
    hosts = sum(out[0])
    m.add(hosts >= lb)
    m.add(hosts <= ub)
    m.minimize(hosts)
    used: dict[tuple[int, int, int], int] = {}
    for bin_counts in hint:
        if any(bin_counts):
            for arc in _path_of(bin_counts, sizes, order, capacity):
                used[arc] = used.get(arc, 0) + 1
    for arc, v in flow.items():
        m.add_hint(v, used.get(arc, 0))

    solver, status = run(m, seconds=seconds, seed=seed, workers=workers)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    left = {arc: solver.value(v) for arc, v in flow.items() if solver.value(v)}
    succ: dict[int, list[tuple[int, int, int]]] = {}
    for arc in sorted(left):
        succ.setdefault(arc[0], []).append(arc)
    bins: Bins = []
    for _ in range(solver.value(hosts)):
        node, contents = 0, [0] * len(sizes)
        while node != capacity:
            arc = next(a for a in succ[node] if left[a] > 0)
            left[arc] -= 1
            if arc[2] >= 0:
                contents[arc[2]] += 1
            node = arc[1]
        bins.append(contents)
    return bins, status == cp_model.OPTIMAL
