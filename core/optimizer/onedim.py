"""Fewest identical bins in one dimension: bound, incumbent, dive, repair.

The fewest-hosts stage hands over here when it is plain one-dimensional bin packing (identical
hosts, one dimension that binds, no rule between replicas; see `solve._one_dim_shape`):
1. the incumbent is the better of the caller's packing and minimum bin slack;
2. column generation proves a lower bound (`colgen.py`); at that bound the incumbent is optimal;
3. otherwise dives on the pattern LP (`dive.py`) look for a packing with as many bins as the
   bound, the first following the LP, the others choosing at random among its favourite patterns;
   when every dive gets stuck, the last bins fixed by those that got closest are undone and the
   items they and the rest hold (a few dozen) are packed exactly by CP-SAT on the arc-flow model;
4. whatever budget is left goes to the arc-flow search over the whole problem (`arcflow.pack`).
All work is counted, not timed, so the same input and seed give the same bins.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from core.optimizer import arcflow
from core.optimizer.arcflow import Bins, min_slack
from core.optimizer.colgen import relax
from core.optimizer.cpsat import Budget
from core.optimizer.dive import Dive, dive
from core.optimizer.patterns import grain_for

BOUND_SHARE = 0.3  # of the budget, at most, for the bound
MAX_DIVES = 40  # the first follows the LP, the others pick at random among its favourites
DIVES_SHARE = 0.5  # of what is left after the bound, for all dives together
REPAIRS = 3  # dives repaired, those that left the fewest items first
REPAIR_ITEMS = 60  # the repair packs at least this many items again
REPAIR_SHARE = 0.3  # of what is left, per repair, at most REPAIR_SECONDS
REPAIR_SECONDS = 1.5


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
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Bins, bool, int]:
    """(bins, proven fewest, lower bound) for `counts[t]` items of size `sizes[t]`; never more bins
    than `hint`. `progress`, if given, hears (bins, bound) whenever either improves."""
    given = [list(b) for b in hint if any(b)]
    best = min(given, min_slack(sizes, counts, capacity), key=len) if given else min_slack(sizes, counts, capacity)
    told = (len(best) + 1, lb)

    def tell() -> None:
        nonlocal told
        if progress is not None and (len(best), lb) != told:
            told = (len(best), lb)
            progress(*told)

    tell()
    columns: tuple[tuple[int, ...], ...] = ()
    # On a coarse pricing grid (capacity 100,000 × 200 sizes) the bound is weak and the arc-flow
    # graph has ~1e5 nodes: building it took 12-27 s beyond the limit on Scholl's set 3 and never
    # beat greedy there. Such instances only dive, with the whole budget.
    exact = grain_for(sizes, counts, capacity) == 1
    if exact and len(best) > lb and budget.left() > 0:
        r = relax(
            sizes,
            counts,
            capacity,
            columns=[tuple(b) for b in best],
            target=len(best),
            max_cost=budget.left() * BOUND_SHARE,
        )
        budget.spend(r.cost)
        lb = max(lb, r.bound)
        columns = r.columns
        tell()
    # Dives are cheap (a fraction of a second each) and the repairs are not (CP-SAT), so all
    # dives come first and only the ones that got closest are repaired.
    rng = random.Random(seed)
    stuck: list[Dive] = []
    diving = budget.left() * (DIVES_SHARE if exact else 1.0)
    for attempt in range(MAX_DIVES):
        if len(best) <= lb or diving <= 0 or budget.left() <= 0:
            break
        # aim at one bin fewer than the incumbent: the LP steers the dive either way, and a dive
        # that cannot reach the bound may still end with a better packing than the incumbent
        d = dive(
            sizes,
            counts,
            capacity,
            target=len(best) - 1,
            columns=columns,
            max_cost=diving,
            rng=rng if attempt else None,
        )
        budget.spend(d.cost)
        diving -= d.cost
        columns = d.columns
        if d.reached:
            best = [list(p) for p in d.bins]
            tell()
        else:
            stuck.append(d)
    for d in sorted(stuck, key=lambda d: sum(d.residual))[: REPAIRS if exact else 0]:  # stable: ties by dive order
        if len(best) <= lb or budget.left() <= 0:
            break
        part = budget.share(REPAIR_SHARE, at_most=REPAIR_SECONDS)
        repaired = _repair(sizes, capacity, d.bins, d.residual, target=lb, budget=part, seed=seed, workers=workers)
        if len(repaired) < len(best):
            best = repaired
            tell()
    if exact and len(best) > lb and budget.left() > 0:
        found = arcflow.pack(sizes, counts, capacity, hint=best, lb=lb, budget=budget, seed=seed, workers=workers)
        if found is not None and len(found[0]) <= len(best):
            best = found[0]
            if found[1]:  # the arc-flow model proved these bins fewest
                lb = max(lb, len(best))
            tell()
    return best, len(best) <= lb, lb


def _repair(
    sizes: Sequence[int],
    capacity: int,
    fixed: Sequence[Sequence[int]],
    residual: Sequence[int],
    *,
    target: int,
    budget: Budget,
    seed: int,
    workers: int,
) -> Bins:
    """Undo the last fixed bins until at least REPAIR_ITEMS items are loose, pack those exactly."""
    keep = list(fixed)
    left = list(residual)
    while keep and sum(left) < REPAIR_ITEMS:
        undone = keep.pop()
        left = [a + b for a, b in zip(left, undone, strict=True)]
    start = min_slack(sizes, left, capacity)
    goal = max(0, target - len(keep))
    if len(start) > goal:
        found = arcflow.pack(sizes, left, capacity, hint=start, lb=goal, budget=budget, seed=seed, workers=workers)
        if found is not None:
            start = found[0]
    return [list(b) for b in keep] + [list(b) for b in start]
