"""Diving on the pattern LP: fix the bins the LP is surest of, re-solve, repeat.

Each step solves the pattern LP (column generation, `colgen.py`) for the items not yet packed,
fixes every pattern the LP uses at least once (as many times as its value rounds down to), or
one of the most used when none reaches 1, and goes on with the items left. The LP bound of what
is left prunes: when the bins fixed plus that bound exceed the target, this dive cannot reach it.
A dive with a random generator picks among the most used patterns at random (weighted by use),
so several dives explore different packings; without one it always takes the most used.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from core.optimizer.colgen import Master, relax
from core.optimizer.patterns import Pattern

INTEGRAL = 1e-6
# A random dive picks among this many of the most used patterns. Measured on the 9 Hard28
# instances the first dive misses, 20 dives each: 3 choices found 4 optima, 6 found 6.
CHOICES = 6


@dataclass(frozen=True, slots=True)
class Dive:
    bins: tuple[Pattern, ...]  # fixed, in order
    residual: tuple[int, ...]  # items left, per type
    reached: bool  # every item packed within the target
    columns: tuple[Pattern, ...]  # every pattern the LP generated (seeds the next dive)
    cost: float  # seconds of budget the work is worth (deterministic)


def dive(
    sizes: Sequence[int],
    counts: Sequence[int],
    capacity: int,
    *,
    target: int,
    columns: Sequence[Pattern] = (),
    max_cost: float = math.inf,
    rng: random.Random | None = None,
) -> Dive:
    """Dive towards `target` bins; `columns` (from an earlier LP) seed the master."""
    master = Master(counts)
    for p in columns:
        master.add(p)
    residual = list(counts)
    fixed: list[Pattern] = []
    cost = 0.0

    def take(p: Pattern) -> bool:
        nonlocal residual
        if any(n > m for n, m in zip(p, residual, strict=True)):
            return False
        fixed.append(p)
        residual = [m - n for n, m in zip(p, residual, strict=True)]
        return True

    while any(residual):
        r = relax(sizes, residual, capacity, master=master, to_optimum=True, max_cost=max_cost - cost)
        cost += r.cost
        if len(fixed) + r.bound > target or cost >= max_cost:
            return Dive(tuple(fixed), tuple(residual), False, tuple(master.columns), cost)
        used = sorted((i for i in range(len(r.columns)) if r.x[i] > INTEGRAL), key=lambda i: (-r.x[i], i))
        sure = [i for i in used if r.x[i] >= 1 - INTEGRAL]
        for i in sure:
            for _ in range(math.floor(r.x[i] + INTEGRAL)):
                take(r.columns[i])
        if not sure:
            top = used[:CHOICES]
            pick = top[0] if rng is None else rng.choices(top, weights=[r.x[j] for j in top])[0]
            take(r.columns[pick])
    return Dive(tuple(fixed), tuple(residual), len(fixed) <= target, tuple(master.columns), cost)
