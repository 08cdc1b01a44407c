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

from core.optimizer.bounds import l2_bound
from core.optimizer.cpsat import Budget, run
from core.optimizer.repack import Neighbourhood, repack

Bins = list[list[int]]  # per host: how many replicas of each type

# Measured on Falkenauer T and Schwerin: the LP relaxation drives arc-flow search, so both
# workers use the full linearisation; worker 0 also probes the objective from the lower bound up.
# Measured on Falkenauer U/T and Schwerin (10 s each): the whole model solved graphs up to about
# 10,000 arcs, repacking the larger ones.
WHOLE_FIRST_MAX_ARCS = 10_000
WHOLE_FIRST_SHARE = 0.9  # of the budget for the whole model when it goes first
REPACK_SHARE = 0.6  # of the budget for repacking when it goes first
# A round is one arc-flow model over ~16 bins' items: cheap to build and often proven, so rounds
# are larger and longer than `solve`'s, whose rounds each run the whole placement pipeline.
REPACK = Neighbourhood(rounds=60, loose=6, others=10, seconds=1.0)
FLAVOURS = (
    {"linearization_level": 2, "use_objective_lb_search": True},
    {"linearization_level": 2, "search_branching": cp_model.PSEUDO_COST_SEARCH},
)


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


def _compress(
    arcs: list[tuple[int, int, int]], sizes: Sequence[int], capacity: int
) -> tuple[list[tuple[int, int, int]], dict[int, int]]:
    """Brandão & Pedroso's main compression: move every node as far right as its continuations allow.

    label(capacity) = capacity; label(u) = min over item arcs u -> v of label(v) - size. Nodes
    with equal labels merge, which shrinks the graph several-fold while every path still fits
    (each arc spans at least its item's size) and every packing still has a path.
    """
    out: dict[int, list[tuple[int, int]]] = {}
    nodes: set[int] = set()
    for a, b, t in arcs:
        nodes.update((a, b))
        if t >= 0:
            out.setdefault(a, []).append((b, t))
    label = {capacity: capacity}
    for u in sorted(nodes, reverse=True):
        if u != capacity:
            label[u] = min([capacity] + [label[v] - sizes[t] for v, t in out.get(u, ())])
    merged = {(label[a], label[b], t) for a, b, t in arcs if t >= 0}
    merged.update((label[u], capacity, -1) for u in nodes if label[u] != capacity)
    return sorted(merged), label


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
    budget: Budget,
    seed: int,
    workers: int,
) -> tuple[Bins, bool] | None:
    """Fewest bins for `counts[t]` items of size `sizes[t]`; None when nothing better than `hint` was found.

    The better of `hint` and minimum bin slack starts. Two searches improve it: CP-SAT on the
    whole arc-flow model, and repacking a few bins at a time. A small graph goes to the whole
    model first (it usually proves the optimum outright); on a large one the whole model rarely
    finishes, so repacking goes first. Returns the bins and whether they are proven fewest.
    """
    given = [b for b in hint if any(b)]
    best = min(given, min_slack(sizes, counts, capacity), key=len)
    proven = len(best) <= lb
    small = _arc_count(sizes, counts, capacity) <= WHOLE_FIRST_MAX_ARCS
    for step in ("whole", "repack") if small else ("repack", "whole"):
        if proven or budget.left() <= 0:
            break
        if step == "whole":
            share = WHOLE_FIRST_SHARE if small else 1.0
            found = _solve_flow(
                sizes,
                counts,
                capacity,
                best=best,
                lb=lb,
                budget=budget,
                seconds=budget.left() * share,
                seed=seed,
                workers=workers,
            )
            if found is not None and len(found[0]) <= len(best):
                best, proven = found
        else:
            share = 1.0 if small else REPACK_SHARE
            best = _repack(best, sizes, capacity, lb=lb, budget=budget.share(share), seed=seed)
            proven = len(best) <= lb
    if proven or len(best) < len(given):
        return best, proven
    return None


def _arc_count(sizes: Sequence[int], counts: Sequence[int], capacity: int) -> int:
    order = sorted(range(len(sizes)), key=lambda t: (-sizes[t], t))
    return len(_compress(_graph(sizes, counts, capacity, order), sizes, capacity)[0])


def _repack(bins: Bins, sizes: Sequence[int], capacity: int, *, lb: int, budget: Budget, seed: int) -> Bins:
    """The bins with room left plus a few random full ones are packed again exactly (arc-flow on
    a few dozen items); fewer bins replace them (see `repack`)."""

    def load(b: list[int]) -> int:
        return sum(sizes[t] * n for t, n in enumerate(b))

    def resolve(chosen: list[list[int]], part: Budget, round_seed: int) -> Bins | None:
        counts = [sum(b[t] for b in chosen) for t in range(len(sizes))]
        sub_lb = l2_bound([(sizes[t], n) for t, n in enumerate(counts) if n], capacity)
        if sub_lb >= len(chosen):
            return None
        found = _solve_flow(
            sizes,
            counts,
            capacity,
            best=chosen,
            lb=sub_lb,
            budget=part,
            seconds=part.left(),
            seed=round_seed,
            workers=1,
        )
        return None if found is None else found[0]

    return repack(
        bins, fill=lambda b: load(b) / capacity, resolve=resolve, size=REPACK, lb=lb, budget=budget, seed=seed
    )


def _solve_flow(
    sizes: Sequence[int],
    counts: Sequence[int],
    capacity: int,
    *,
    best: Bins,
    lb: int,
    budget: Budget,
    seconds: float,
    seed: int,
    workers: int,
) -> tuple[Bins, bool] | None:
    """CP-SAT on the arc-flow model for `seconds` of `budget`, hinted with `best`; None when it finds nothing."""
    if min(seconds, budget.left()) <= 0:
        return None
    order = sorted(range(len(sizes)), key=lambda t: (-sizes[t], t))
    arcs, label = _compress(_graph(sizes, counts, capacity, order), sizes, capacity)
    source = label[0]
    ub = len(best)
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
        if node not in (source, capacity):
            m.add(sum(into.get(node, [])) == sum(out.get(node, [])))
    for t, vs in by_type.items():
        m.add(sum(vs) == counts[t])
    hosts = sum(out[source])
    m.add(hosts >= lb)
    m.add(hosts <= ub)
    m.minimize(hosts)
    used: dict[tuple[int, int, int], int] = {}
    for bin_counts in best:
        if any(bin_counts):
            for a, b, t in _path_of(bin_counts, sizes, order, capacity):
                if label[a] != label[b]:
                    arc = (label[a], label[b], t)
                    used[arc] = used.get(arc, 0) + 1
    for arc, v in flow.items():
        m.add_hint(v, used.get(arc, 0))

    solver, status = run(m, budget=budget, seconds=seconds, seed=seed, workers=workers, flavours=FLAVOURS)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    left = {arc: solver.value(v) for arc, v in flow.items() if solver.value(v)}
    succ: dict[int, list[tuple[int, int, int]]] = {}
    for arc in sorted(left):
        succ.setdefault(arc[0], []).append(arc)
    bins: Bins = []
    for _ in range(solver.value(hosts)):
        node, contents = source, [0] * len(sizes)
        while node != capacity:
            arc = next(a for a in succ[node] if left[a] > 0)
            left[arc] -= 1
            if arc[2] >= 0:
                contents[arc[2]] += 1
            node = arc[1]
        bins.append(contents)
    return bins, status == cp_model.OPTIMAL


def min_slack(sizes: Sequence[int], counts: Sequence[int], capacity: int) -> Bins:
    """One bin at a time, the largest item left plus the subset of the rest that fills it best.

    Minimum bin slack (Gupta & Ho) with an exact subset-sum per bin, as a bitset over loads
    (Python integers): cheap, and it fills bins exactly whenever an exact fill exists, which is
    where first-fit decreasing does worst.
    """
    items = sorted((t for t in range(len(sizes)) for _ in range(counts[t])), key=lambda t: (-sizes[t], t))
    full = (1 << (capacity + 1)) - 1
    bins: Bins = []
    while items:
        first, rest = items[0], items[1:]
        room = capacity - sizes[first]
        masks = [1]
        for t in rest:
            masks.append((masks[-1] | (masks[-1] << sizes[t])) & full)
        best = (masks[-1] & ((1 << (room + 1)) - 1)).bit_length() - 1
        chosen, load = [], best
        for i in range(len(rest), 0, -1):
            if not (masks[i - 1] >> load) & 1:
                chosen.append(i - 1)
                load -= sizes[rest[i - 1]]
        contents = [0] * len(sizes)
        contents[first] += 1
        for i in chosen:
            contents[rest[i]] += 1
        bins.append(contents)
        taken = set(chosen)
        items = [t for i, t in enumerate(rest) if i not in taken]
    return bins
